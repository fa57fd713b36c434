//! The ECP5 resource estimate against yosys `synth_ecp5` on whole designs: TFC-W1A1,
//! LFC-W1A1 (default folding and `--device ulx3s-85f`) and twelve random networks, each
//! built by `bnnforge build` and synthesised flattened, as `bnnforge synth` does. Prints
//! the error table of `hdl/DESIGN.md` (Resource estimate, ECP5). Ignored by default:
//! yosys takes about an hour over all of them on a busy machine
//! (`cargo test --test ecp5_estimate -- --ignored --nocapture`).

mod common;

use common::{bnnforge, repo};
use std::path::Path;

/// Builds `model` into `out` with `args` and returns [cycles per frame, the ECP5
/// estimate's total LUT4, FF, EBR, LUT-RAM] and synth_ecp5's [LUT4, FF, EBR, LUT-RAM].
fn measure(model: &Path, out: &Path, args: &[&str]) -> ([u64; 5], [u64; 4]) {
    let o = bnnforge()
        .arg("build")
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: {}",
        model.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let t = &m["estimate"]["ecp5"]["total"];
    let n = |k: &str| t[k].as_u64().unwrap();
    let est = [
        m["cycles_per_frame"].as_u64().unwrap(),
        n("lut4"),
        n("ff"),
        n("ebr"),
        n("lutram"),
    ];
    let verilog: String = m["verilog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f.as_str().unwrap())).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let top = m["top"].as_str().unwrap();
    let s = bnnforge_hdl::synth::ecp5_stats(top, &verilog, top).unwrap();
    let meas = [
        s.fabric_lut4() as u64,
        s.ff as u64,
        s.ebr as u64,
        s.lutram as u64,
    ];
    (est, meas)
}

#[test]
#[ignore = "an hour of yosys: run by hand to measure the ECP5 estimate"]
fn ecp5_estimate_against_synth_ecp5() {
    let tmp = tempfile::tempdir().unwrap();
    let mut designs: Vec<(String, std::path::PathBuf, Vec<&str>)> = vec![
        (
            "TFC-W1A1".into(),
            repo().join("models/tfc-w1a1.yaml"),
            vec![],
        ),
        (
            "LFC-W1A1".into(),
            repo().join("models/lfc-w1a1.yaml"),
            vec![],
        ),
        (
            "LFC-W1A1 --device ulx3s-85f".into(),
            repo().join("models/lfc-w1a1.yaml"),
            vec!["--device", "ulx3s-85f"],
        ),
    ];
    for seed in bnnforge_model::random::test_seeds("ecp5 estimate", 0, 12) {
        let model = tmp.path().join(format!("random-{seed}.yaml"));
        let o = bnnforge()
            .args(["random", "--seed", &seed.to_string(), "--out"])
            .arg(&model)
            .output()
            .unwrap();
        assert!(o.status.success(), "seed {seed}");
        designs.push((format!("random {seed}"), model, vec![]));
    }
    println!("| design | cycles | estimate LUT4 / FF / EBR / LUT-RAM | synth_ecp5 | LUT4 | FF |");
    let mut memory_differs = vec![];
    for (i, (name, model, args)) in designs.iter().enumerate() {
        let (e, m) = measure(model, &tmp.path().join(format!("d{i}")), args);
        let err = |a: u64, b: u64| 100.0 * (a as f64 - b as f64) / b.max(1) as f64;
        println!(
            "| {name} | {} | {} / {} / {} / {} | {} / {} / {} / {} | {:+.1} % | {:+.1} % |",
            e[0],
            e[1],
            e[2],
            e[3],
            e[4],
            m[0],
            m[1],
            m[2],
            m[3],
            err(e[1], m[0]),
            err(e[2], m[1])
        );
        if (e[3], e[4]) != (m[2], m[3]) {
            memory_differs.push(name.clone());
        }
    }
    // the EBR and LUT-RAM rule re-computes yosys's own decision: exact
    assert!(memory_differs.is_empty(), "{memory_differs:?}");
}
