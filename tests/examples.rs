//! The shipped example files are exactly what `bnnforge random` makes today: this test
//! fails when a change to the generator or the file format leaves them stale.

use std::process::Command;

#[test]
fn shipped_example_is_not_stale() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bnnforge"))
        .current_dir(dir.path())
        .args([
            "random",
            "--seed",
            "3",
            "--out",
            "random-3.yaml",
            "--frames",
            "16",
            "--inputs",
            "random-3-input.npy",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for f in [
        "random-3.yaml",
        "random-3.safetensors",
        "random-3-input.npy",
    ] {
        let fresh = std::fs::read(dir.path().join(f)).unwrap();
        let old = std::fs::read(shipped.join(f)).unwrap();
        assert!(fresh == old, "examples/{f} is stale: regenerate it with \
            `bnnforge random --seed 3 --out examples/random-3.yaml --frames 16 --inputs examples/random-3-input.npy`");
    }
}
