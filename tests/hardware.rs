//! End to end: `bnnforge build` → the generated Verilog in Verilator (`bnnforge sim`),
//! checked value for value against the software model, with random stalls on both
//! streams; the measured interval between frames against the manifest; the golden
//! files in `generated/`; lint and synthesis; and a broken design that must be caught.

mod common;

use bnnforge_testbench::Manifest;
use common::{bnnforge, break_weights, repo};
use std::path::{Path, PathBuf};
use std::process::Output;

fn ok(what: &str, out: Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn build(model: &Path, out: &Path) -> String {
    build_with(model, out, &[])
}

fn build_with(model: &Path, out: &Path, args: &[&str]) -> String {
    ok(
        &format!("bnnforge build {} {}", model.display(), args.join(" ")),
        bnnforge()
            .arg("build")
            .arg(model)
            .arg("--out")
            .arg(out)
            .args(args)
            .output()
            .unwrap(),
    )
}

/// `bnnforge sim` of `design`; returns its stdout (it fails on any mismatch).
fn sim(model: &Path, design: &Path, input: &Path, stall: f64, seed: u64) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let out = bnnforge()
        .arg("sim")
        .arg(model)
        .arg("--design")
        .arg(design)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(dir.path().join("y.npy"))
        .args(["--stall", &stall.to_string(), "--seed", &seed.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && text.contains(" 0 mismatches") {
        Ok(text)
    } else {
        Err(format!(
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.contains('[')) // progress bars
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// (measured, cycle model, manifest) mean cycles per frame from a full-rate sim's
/// summary.
fn interval(summary: &str) -> (f64, f64, f64) {
    let line = summary
        .lines()
        .find(|l| l.starts_with("cycles per frame:") && l.contains("by the cycle model"))
        .unwrap_or_else(|| panic!("no measured and modelled interval in:\n{summary}"));
    let nums: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[1], nums[2])
}

/// (measured on the first frame, cycle model, manifest) latency in cycles from a
/// full-rate sim's summary.
fn latency(summary: &str) -> (u64, u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.starts_with("latency:") && l.contains("by the cycle model"))
        .unwrap_or_else(|| panic!("no measured and modelled latency in:\n{summary}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    (nums[0], nums[2], nums[3])
}

/// The design's cycle model gives the interval and latency Verilator measured on these
/// frames, to the cycle, and the manifest's latency; the manifest's interval (the
/// steady state) is the measured mean within `tolerance` (a fraction).
fn timing_is_the_cycle_models(what: &str, summary: &str, tolerance: f64) {
    let (measured, model, manifest) = interval(summary);
    assert_eq!(
        measured, model,
        "{what}: {measured} cycles per frame measured, {model} by the cycle model"
    );
    assert!(
        (measured - manifest).abs() <= tolerance * manifest,
        "{what}: {measured} cycles per frame measured, the manifest says {manifest}"
    );
    let (measured, model, manifest) = latency(summary);
    assert_eq!(
        (measured, model),
        (manifest, manifest),
        "{what}: latency measured, by the cycle model, in the manifest"
    );
}

/// Files of a build folder, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The shipped networks: `generated/` is what `bnnforge build` makes today (set
/// BNNFORGE_BLESS=1 to rewrite it), and the golden design matches the model on MNIST
/// images (or the example's inputs) bit for bit, at full rate with the manifest's
/// interval and under random stalls.
#[test]
fn shipped_networks_are_golden_and_cosimulate_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("mnist.npy");
    common::mnist_npy(8, &images);
    let cases: [(&str, PathBuf); 4] = [
        ("tfc-w1a1", repo().join("models/tfc-w1a1.yaml")),
        ("lfc-w1a1", repo().join("models/lfc-w1a1.yaml")),
        ("lfc-w1a2", repo().join("models/lfc-w1a2.yaml")),
        ("random-3", repo().join("examples/random-3.yaml")),
    ];
    let bless = std::env::var_os("BNNFORGE_BLESS").is_some();
    for (name, model) in cases {
        let fresh = tmp.path().join(name);
        println!("{}", build(&model, &fresh).trim());
        let golden = repo().join("generated").join(name);
        if bless {
            let _ = std::fs::remove_dir_all(&golden);
            std::fs::create_dir_all(&golden).unwrap();
            for (f, bytes) in files(&fresh) {
                std::fs::write(golden.join(f), bytes).unwrap();
            }
        }
        let (a, b) = (files(&fresh), files(&golden));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&a),
            names(&b),
            "generated/{name} is stale (BNNFORGE_BLESS=1 rewrites it)"
        );
        for ((f, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x == y,
                "generated/{name}/{f} is stale (BNNFORGE_BLESS=1 rewrites it)"
            );
        }
        let input = if name.starts_with("random") {
            repo().join("examples/random-3-input.npy")
        } else {
            images.clone()
        };
        let s = sim(&model, &golden, &input, 0.0, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name}, full rate:\n{s}");
        timing_is_the_cycle_models(&format!("{name}:\n{s}"), &s, 0.0);
        let s = sim(&model, &golden, &input, 0.3, 7).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name}, 30 % stalls on both streams:\n{s}");
    }
}

/// Estimated LUT4 up to which a random design is synthesised (an UP5K has 5280).
const SYNTH_LUT4: u64 = 4000;

/// Random networks covering every op: each builds, is lint clean, and its Verilog matches
/// the model on random frames with random stalls on both streams, and runs at the
/// manifest's interval at full rate. The first BNNFORGE_SYNTH_NETWORKS (2) that fit an
/// UP5K by the estimate also pass yosys `synth_ice40` with `check -assert`.
/// BNNFORGE_SEED picks the first seed; a failure prints the seed,
/// the network's layers, the first differing layer (from `bnnforge sim`) and the
/// commands that replay it.
#[test]
fn random_networks_cosimulate_bit_exact_with_stalls() {
    let count: u64 = std::env::var("BNNFORGE_RANDOM_NETWORKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seeds = bnnforge_model::random::test_seeds("random networks", 100, count);
    let synth_count: u64 = std::env::var("BNNFORGE_SYNTH_NETWORKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut synthesised = 0;
    let tmp = tempfile::tempdir().unwrap();
    let mut built = 0;
    for seed in seeds {
        let dir = tmp.path().join(seed.to_string());
        std::fs::create_dir(&dir).unwrap();
        let model = dir.join("net.yaml");
        let input = dir.join("x.npy");
        let replay = format!(
            "replay: cargo run --release -- random --seed {seed} --out /tmp/net.yaml --frames 6 \
             --inputs /tmp/x.npy && cargo run --release -- sim /tmp/net.yaml --input /tmp/x.npy \
             --output /tmp/y.npy --stall 0.25 --seed {seed}"
        );
        ok(
            "bnnforge random",
            bnnforge()
                .args([
                    "random",
                    "--seed",
                    &seed.to_string(),
                    "--frames",
                    "6",
                    "--out",
                ])
                .arg(&model)
                .arg("--inputs")
                .arg(&input)
                .output()
                .unwrap(),
        );
        // on failure: the seed, the network (its layer table), the error, the replay
        let fail = |e: &str| -> ! {
            let info = bnnforge().arg("info").arg(&model).output().unwrap();
            panic!(
                "seed {seed}: {e}\nthe network:\n{}\n{replay}",
                String::from_utf8_lossy(&info.stdout)
            )
        };
        let design = dir.join("design");
        let out = bnnforge()
            .arg("build")
            .arg(&model)
            .arg("--out")
            .arg(&design)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            fail(&format!("build failed: {err}"));
        }
        built += 1;
        lint(&design).unwrap_or_else(|e| fail(&e));
        // yosys takes 10 s to minutes a design: the first few that fit an UP5K
        if synthesised < synth_count && estimated_lut4(&design) <= SYNTH_LUT4 {
            let stats = synthesise(&design, &format!("random-{seed}")).unwrap_or_else(|e| fail(&e));
            println!("seed {seed}: lint clean; yosys synth_ice40 clean: {stats}");
            synthesised += 1;
        } else {
            println!("seed {seed}: lint clean");
        }
        let s = sim(&model, &design, &input, 0.25, seed).unwrap_or_else(|e| fail(&e));
        println!(
            "seed {seed}, 25 % stalls: {}",
            s.lines().next().unwrap_or("")
        );
        let s = sim(&model, &design, &input, 0.0, seed).unwrap_or_else(|e| fail(&e));
        println!("seed {seed}, full rate: {}", s.lines().nth(1).unwrap_or(""));
        println!("seed {seed}, full rate: {}", s.lines().nth(2).unwrap_or(""));
        // six frames from reset: a start-up transient may move their mean off the
        // steady state a little
        timing_is_the_cycle_models(&format!("seed {seed}\n{replay}"), &s, 0.05);
    }
    println!("{built} networks linted and co-simulated, {synthesised} synthesised");
    assert_eq!(
        built, count,
        "only {built} of {count} random networks could be built"
    );
}

/// An `add` of 11 inputs over a stream read 11 times: more than one adder (8 inputs)
/// or fork (8 ways) takes, so both are chained, with the widest packed ports and 10
/// branch FIFOs; bit-exact against the model with and without stalls, at the
/// manifest's interval.
#[test]
fn a_wide_add_cosimulates_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let net = bnnforge_model::random::wide_add_network(5, 11);
    let model = tmp.path().join("wide.yaml");
    bnnforge_model::save(&net, &model).unwrap();
    let input = tmp.path().join("x.npy");
    let n = 8;
    let xs = bnnforge_model::random::random_frames(&net.input, n, 5);
    let mut shape = vec![n];
    shape.extend(net.input.shape.dims());
    bnnforge_model::npy::write_i64(&input, &shape, &xs).unwrap();
    let design = tmp.path().join("design");
    println!("{}", build(&model, &design).trim());
    let s = sim(&model, &design, &input, 0.3, 5).unwrap_or_else(|e| panic!("{e}"));
    println!("30 % stalls:\n{s}");
    let s = sim(&model, &design, &input, 0.0, 5).unwrap_or_else(|e| panic!("{e}"));
    println!("full rate:\n{s}");
    timing_is_the_cycle_models(&format!("wide add:\n{s}"), &s, 0.0);
}

/// TFC-W1A1 at 16 cycles a frame: the input threshold takes 49 pixels a beat, fc0 runs
/// PE 64 × SIMD 49; bit-exact on MNIST images at full rate, where Verilator measures the
/// manifest's 16 cycles a frame, and under stalls.
#[test]
fn tfc_at_16_cycles_a_frame_cosimulates_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("mnist.npy");
    common::mnist_npy(12, &images);
    let model = repo().join("models/tfc-w1a1.yaml");
    let design = tmp.path().join("tfc16");
    println!(
        "{}",
        build_with(&model, &design, &["--target-cycles", "16"]).trim()
    );
    let m = Manifest::load(&design.join("manifest.json")).unwrap();
    assert_eq!(m.cycles_per_frame, Some(16));
    let s = sim(&model, &design, &images, 0.0, 1).unwrap_or_else(|e| panic!("{e}"));
    println!("full rate:\n{s}");
    timing_is_the_cycle_models(&format!("tfc at 16:\n{s}"), &s, 0.0);
    let (measured, _, _) = interval(&s);
    assert_eq!(measured, 16.0, "{s}");
    let s = sim(&model, &design, &images, 0.3, 3).unwrap_or_else(|e| panic!("{e}"));
    println!("30 % stalls:\n{s}");
}

/// An SFC-sized MLP (784-256-256-256-10, random weights and thresholds) on the UP5K:
/// its 334,336 weight bits do not fit the 25 block RAMs left beside the board core, so
/// `--device up5k` puts the weights of three dense layers in the four SPRAMs. The
/// estimate fits the budget and yosys agrees (its SPRAMs, block RAMs and logic cells);
/// after the weight load on `s_axis`, the design is bit-exact at full rate (interval and
/// latency those of the cycle model) and under stalls.
#[test]
fn sfc_with_weights_in_spram_fits_the_up5k_and_cosimulates_bit_exact() {
    use bnnforge_model::network::{InputSpec, Shape};
    use bnnforge_model::random::{mlp_network, random_frames, test_seeds};
    let seed = test_seeds("sfc_with_weights_in_spram", 1, 1).start;
    let tmp = tempfile::tempdir().unwrap();
    let input = InputSpec {
        shape: Shape::map(1, 28, 28),
        bits: 8,
        signed: false,
    };
    let net = mlp_network(seed, input.clone(), &[256, 256, 256], 10);
    let model = tmp.path().join("sfc.yaml");
    bnnforge_model::save(&net, &model).unwrap();
    let design = tmp.path().join("sfc");
    println!(
        "{}",
        build_with(&model, &design, &["--device", "up5k"]).trim()
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(design.join("manifest.json")).unwrap())
            .unwrap();
    let total = &json["estimate"]["total"];
    let budget = &json["budget"];
    let (spram, bram) = (
        total["spram"].as_u64().unwrap(),
        total["bram"].as_u64().unwrap(),
    );
    let cells = total["lut4"].as_u64().unwrap() + total["dff"].as_u64().unwrap() / 2;
    assert!(spram >= 1 && spram <= 4, "{total}");
    assert!(bram <= budget["bram"].as_u64().unwrap(), "{total} {budget}");
    assert!(
        cells <= budget["lut4"].as_u64().unwrap(),
        "{total} {budget}"
    );
    let m = Manifest::load(&design.join("manifest.json")).unwrap();
    let words = m.weight_load.as_ref().expect("a weight load").words;
    assert!(words * 16 > 25 * 4096, "{words} words in SPRAM");
    // yosys: the same SPRAMs, and block RAMs and logic cells within the budget
    let verilog: String = m
        .verilog
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let s = bnnforge_hdl::synth::ice40_stats("sfc_up5k", &verilog, &m.top).unwrap();
    println!("yosys synth_ice40: {s}; estimate {total}");
    assert_eq!(s.spram as u64, spram, "{s}");
    assert!(s.bram as u64 <= budget["bram"].as_u64().unwrap(), "{s}");
    assert!(
        (s.lut4 + s.dff / 2) as u64 <= budget["lut4"].as_u64().unwrap(),
        "{s}: over the budget's logic cells {budget}"
    );
    let images = tmp.path().join("x.npy");
    let xs = random_frames(&input, 6, seed);
    bnnforge_model::npy::write_i64(&images, &[6, 1, 28, 28], &xs).unwrap();
    let s = sim(&model, &design, &images, 0.0, 1).unwrap_or_else(|e| panic!("{e}"));
    println!("full rate:\n{s}");
    timing_is_the_cycle_models(&format!("sfc on the up5k:\n{s}"), &s, 0.0);
    let s = sim(&model, &design, &images, 0.3, 3).unwrap_or_else(|e| panic!("{e}"));
    println!("30 % stalls:\n{s}");
}

/// Weights changed in the generated Verilog: `bnnforge sim` must fail (exit 1) naming
/// the frame and the values, and the first layer whose values differ: the last layer
/// for one bit flipped there, a middle layer (whose engine also thresholds) for a whole
/// word inverted there.
#[test]
fn a_flipped_weight_bit_is_caught_and_its_layer_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model = repo().join("models/tfc-w1a1.yaml");
    let design = tmp.path().join("tfc");
    build(&model, &design);
    let images = tmp.path().join("x.npy");
    common::mnist_npy(8, &images);
    let net = bnnforge_model::load(&model).unwrap();
    // the MVTU engines in order: (file, the layer whose values it writes)
    let mut mvtus: Vec<(u32, String)> = files(&design)
        .into_iter()
        .filter(|(f, _)| f.ends_with("_mvtu.v"))
        .map(|(f, _)| {
            let n = f
                .split("_e")
                .nth(1)
                .and_then(|s| s.split('_').next()?.parse().ok());
            (n.unwrap(), f)
        })
        .collect();
    mvtus.sort();
    assert_eq!(mvtus.len(), 4, "TFC has four dense layers");
    let cases = [
        (
            mvtus[3].1.clone(),
            false,
            net.layers.last().unwrap().name.clone(),
        ),
        (mvtus[1].1.clone(), true, "t1".to_string()),
    ];
    for (file, all, layer) in cases {
        let broken = tmp.path().join("broken");
        let _ = std::fs::remove_dir_all(&broken);
        std::fs::create_dir(&broken).unwrap();
        for (f, bytes) in files(&design) {
            std::fs::write(broken.join(f), bytes).unwrap();
        }
        println!("{}", break_weights(&broken, &file, all));
        let err =
            sim(&model, &broken, &images, 0.2, 3).expect_err("changed weights went unnoticed");
        println!("{err}");
        assert!(
            err.contains("mismatches against the model") && err.contains("first mismatch: frame"),
            "the failure must name the frame and values:\n{err}"
        );
        assert!(
            err.contains(&format!("first differing layer: `{layer}`")),
            "the failure must name layer `{layer}`:\n{err}"
        );
    }
}

/// `verilator --lint-only -Wall` on a built design: the error with its warnings, if any.
fn lint(design: &Path) -> Result<(), String> {
    let m = Manifest::load(design).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("verilator")
        .args(["--lint-only", "-Wall", "--top-module", &m.top])
        .args(&m.verilog)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("verilator -Wall:\n{text}"))
    }
}

/// yosys `synth_ice40` of a built design (no latch, no multiple or missing driver, no
/// logic loop: `check -assert`), its cells.
fn synthesise(design: &Path, name: &str) -> Result<bnnforge_hdl::synth::Ice40Stats, String> {
    let m = Manifest::load(design).map_err(|e| e.to_string())?;
    let verilog: String = m
        .verilog
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    bnnforge_hdl::synth::ice40_stats(name, &verilog, &m.top)
}

/// The estimated LUT4 of a built design (its manifest's `estimate`).
fn estimated_lut4(design: &Path) -> u64 {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(design.join("manifest.json")).unwrap())
            .unwrap();
    manifest["estimate"]["total"]["lut4"].as_u64().unwrap()
}

/// `verilator --lint-only -Wall` finds nothing (the waivers rust-hdl's style needs are
/// in the files, explained), and yosys `synth_ice40` finds no latch, no multiple or
/// missing driver; the cell counts are printed.
#[test]
fn generated_verilog_is_lint_clean_and_synthesises() {
    let design = repo().join("generated/tfc-w1a1");
    lint(&design).unwrap_or_else(|e| panic!("{e}"));
    let stats = synthesise(&design, "tfc-w1a1").unwrap_or_else(|e| panic!("{e}"));
    println!("tfc-w1a1 on iCE40: {stats}");
    assert!(stats.lut4 > 0 && stats.bram > 0, "{stats}");
}

/// Convs whose padding is at least the kernel (legal in format 1, as in PyTorch): an
/// integer 1×1 conv with padding 1, a binary 3×3 stride-2 conv with padding 3 (pad 0,
/// the flag) and a 2×2 conv with padding 2 (pad −1), so whole rows and columns of
/// windows lie in the padding. Bit-exact against the model with 30 % stalls on both
/// streams and at full rate, where the measured interval equals the manifest's.
#[test]
fn convs_with_padding_at_least_the_kernel_cosimulate_bit_exact() {
    use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
    use bnnforge_model::random::random_frames;
    let seed = 14;
    let pm1 = |n: usize, s: u64| -> Vec<i8> {
        let spec = InputSpec {
            shape: Shape::vector(n),
            bits: 1,
            signed: false,
        };
        random_frames(&spec, 1, s)
            .into_iter()
            .map(|v| v as i8)
            .collect()
    };
    let conv =
        |name: &str, input: &str, c: usize, out: usize, ksp: (usize, usize, usize), pad: i8| {
            let (k, s, p) = ksp;
            Layer {
                name: name.into(),
                inputs: vec![input.into()],
                op: Op::Conv {
                    out,
                    kernel: k,
                    stride: s,
                    padding: p,
                    pad_value: pad,
                    weight: Param::new(
                        format!("{name}.w"),
                        vec![out, c, k, k],
                        pm1(out * c * k * k, seed + out as u64 + k as u64),
                    ),
                    bias: None,
                },
            }
        };
    let threshold = |name: &str, input: &str, c: usize, t: &[i64]| Layer {
        name: name.into(),
        inputs: vec![input.into()],
        op: Op::Threshold {
            bits: 1,
            thresholds: Param::new(format!("{name}.t"), vec![c, 1], t.to_vec()),
            flip: None,
        },
    };
    let layers = vec![
        conv("conv0", "input", 2, 4, (1, 1, 1), 0),
        threshold("t0", "conv0", 4, &[-1, 0, 2, 1]),
        conv("conv1", "t0", 4, 4, (3, 2, 3), 0),
        threshold("t1", "conv1", 4, &[0, -2, 2, -4]),
        conv("conv2", "t1", 4, 3, (2, 1, 2), -1),
        threshold("t2", "conv2", 3, &[-2, 0, -6]),
        Layer {
            name: "fc".into(),
            inputs: vec!["t2".into()],
            op: Op::Dense {
                out: 5,
                weight: Param::new("fc.w", vec![5, 3 * 8 * 8], pm1(5 * 3 * 8 * 8, seed)),
                bias: None,
            },
        },
    ];
    let input = InputSpec {
        shape: Shape::map(2, 3, 3),
        bits: 4,
        signed: true,
    };
    let net = Network::new("bigpad".into(), input, layers, "fc".into()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("bigpad.yaml");
    bnnforge_model::save(&net, &model).unwrap();
    let n = 8;
    let xs = random_frames(&net.input, n, seed);
    let mut shape = vec![n];
    shape.extend(net.input.shape.dims());
    let input = tmp.path().join("x.npy");
    bnnforge_model::npy::write_i64(&input, &shape, &xs).unwrap();
    let design = tmp.path().join("design");
    println!("{}", build(&model, &design).trim());
    let s = sim(&model, &design, &input, 0.3, seed).unwrap_or_else(|e| panic!("{e}"));
    println!("30 % stalls:\n{s}");
    let s = sim(&model, &design, &input, 0.0, seed).unwrap_or_else(|e| panic!("{e}"));
    println!("full rate:\n{s}");
    timing_is_the_cycle_models(&format!("padding beyond the kernel:\n{s}"), &s, 0.0);
}

/// Two builds of the same widths at once on an empty engine cache both compile the
/// engine program (rustc's intermediate files in folders of their own), both succeed
/// with the same Verilog, and one program is left in the cache.
#[test]
fn concurrent_builds_share_the_engine_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let model = repo().join("examples/random-3.yaml");
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|d| {
            bnnforge()
                .env("BNNFORGE_ENGINE_CACHE", &cache)
                .arg("build")
                .arg(&model)
                .arg("--out")
                .arg(dir.path().join(d))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        ok("a concurrent bnnforge build", c.wait_with_output().unwrap());
    }
    let verilog = |d: &str| -> Vec<(String, Vec<u8>)> {
        files(&dir.path().join(d))
            .into_iter()
            .filter(|(n, _)| n.ends_with(".v"))
            .collect()
    };
    assert!(!verilog("a").is_empty());
    assert!(verilog("a") == verilog("b"), "the two builds differ");
    let programs: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(programs.len(), 1, "{programs:?}");
    let left: Vec<String> = std::fs::read_dir(programs[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = left.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["engines", "main.rs"],
        "left in the cache: {left:?}"
    );
}
