//! `bnnforge infer` end to end on random networks covering every op and option: the
//! network and inputs go through the files and the command line, and the output file
//! equals the plain reference implementation frame by frame.

use bnnforge_model::{load, npy, reference};
use std::process::Command;

#[test]
fn infer_matches_reference_on_random_networks() {
    // one seed when replaying, else 25 in a row from a fixed start
    let (seed0, count) = match bnnforge_model::random::env_seed().unwrap_or_else(|e| panic!("{e}"))
    {
        Some(seed) => (seed, 1),
        None => (1000, 25),
    };
    println!(
        "seeds {seed0}..{} (replay one: BNNFORGE_SEED=S cargo test --test infer_random)",
        seed0 + count
    );
    let bin = env!("CARGO_BIN_EXE_bnnforge");
    for seed in seed0..seed0 + count {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = seed.to_string();
        let out = Command::new(bin)
            .current_dir(d)
            .args([
                "random", "--seed", &s, "--out", "n.yaml", "--frames", "5", "--inputs", "x.npy",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed {seed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(bin)
            .current_dir(d)
            .args([
                "infer",
                "n.yaml",
                "--input",
                "x.npy",
                "--output",
                "y.npy",
                "--threads",
                "2",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed {seed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let net = load(&d.join("n.yaml")).unwrap();
        let x = npy::read_ints(&d.join("x.npy")).unwrap();
        let y = npy::read_ints(&d.join("y.npy")).unwrap();
        let k = net.output_shape().len();
        assert_eq!(y.shape, vec![5, k], "seed {seed}");
        for (f, (xf, yf)) in x
            .data
            .chunks(net.input.shape.len())
            .zip(y.data.chunks(k))
            .enumerate()
        {
            assert_eq!(
                yf,
                reference::eval(&net, xf),
                "seed {seed}, frame {f} (replay: BNNFORGE_SEED={seed})"
            );
        }
    }
}
