//! End-to-end tests of the harness on the hand-written fixtures in `tests/fixtures/sums.v`.
//!
//! Random tests print their seed; set `BNNFORGE_SEED` to replay one.

use bnnforge_model::random::{clock_seed, env_seed, seeded, Rng, SeededRng};
use bnnforge_testbench::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sums.v")
}

fn build(top: &str, in_width: u32, out_width: u32) -> Model {
    match BuildConfig::new(&[fixture()], top, in_width, out_width).build() {
        Ok(m) => m,
        Err(e) => panic!("building {top}: {e}"),
    }
}

/// A fresh folder under the system temp directory.
fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("bnnforge-tb-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `BNNFORGE_SEED` alone when set, else three fixed seeds and one from the clock.
fn seeds() -> Vec<u64> {
    match env_seed().unwrap_or_else(|e| panic!("{e}")) {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3, clock_seed()],
    }
}

const U8X4: StreamFormat = StreamFormat {
    lanes: 4,
    input: ElemFormat::Unsigned(8),
    output: ElemFormat::Unsigned(16),
    out_elements: 4,
};

const S12X8: StreamFormat = StreamFormat {
    lanes: 8,
    input: ElemFormat::Signed(12),
    output: ElemFormat::Signed(24),
    out_elements: 4,
};

/// What `sums_core` computes for one frame.
fn reference(frame: &[i64]) -> Vec<i64> {
    let sum = frame.iter().sum();
    let even = frame.iter().step_by(2).sum();
    let max = *frame.iter().max().unwrap();
    vec![sum, even, max, 0]
}

/// Compares per frame, naming the first frame that differs.
fn assert_outputs(got: &[Vec<i64>], expected: &[Vec<i64>], seed: u64) {
    assert_eq!(got.len(), expected.len(), "seed {seed}: frame count");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != expected[i]) {
        panic!(
            "seed {seed}: frame {i}: got {:?}, expected {:?}",
            got[i], expected[i]
        );
    }
}

fn random_frames(rng: &mut SeededRng, n: usize, len: usize, lo: i64, hi: i64) -> Vec<Vec<i64>> {
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| match rng.gen_range(0..8) {
                    0 => lo,
                    1 => hi,
                    _ => rng.gen_range(lo..=hi),
                })
                .collect()
        })
        .collect()
}

fn check_timing(run: &StreamRun) {
    for (i, t) in run.frames.iter().enumerate() {
        assert!(t.first_input <= t.last_input, "frame {i}: {t:?}");
        assert!(t.last_input < t.first_output, "frame {i}: {t:?}");
        assert!(t.first_output + 3 <= t.last_output, "frame {i}: {t:?}");
        if i > 0 {
            let p = run.frames[i - 1];
            assert!(p.last_input < t.first_input, "frames {i}: {p:?} {t:?}");
            assert!(p.last_output < t.first_output, "frames {i}: {p:?} {t:?}");
        }
    }
    assert_eq!(run.total_cycles, run.frames.last().unwrap().last_output + 1);
}

#[test]
fn u8x4_matches_reference_under_random_stalls() {
    let model = build("sums_u8x4", 32, 16);
    for seed in seeds() {
        eprintln!("u8x4: seed {seed} (replay: BNNFORGE_SEED={seed})");
        let mut rng = seeded(seed);
        let frames = random_frames(&mut rng, 60, 10, 0, 255);
        let expected: Vec<Vec<i64>> = frames.iter().map(|f| reference(f)).collect();
        for (input_stall, output_stall) in [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.3, 0.7)] {
            let opts = StreamOptions::stalls(rng.gen::<u64>(), input_stall, output_stall);
            let mut sim = Sim::with_options(
                &model,
                &SimOptions {
                    trace: None,
                    random_init: Some(rng.gen::<u32>()),
                },
            )
            .unwrap();
            let run = run_stream(&mut sim, &U8X4, &frames, &opts).unwrap_or_else(|e| {
                panic!("seed {seed}, stalls {input_stall}/{output_stall}: {e}")
            });
            assert_outputs(&run.outputs, &expected, seed);
            assert_eq!(run.input_beats, 60 * 3);
            check_timing(&run);
            if input_stall == 0.0 && output_stall == 0.0 {
                // 3 beats a frame plus one bubble while the result moves on: 4 cycles a frame;
                // first beat at cycle c, last beat c+2, result c+3, values c+4 … c+7.
                assert_eq!(run.interval(), Some(4.0));
                assert!(
                    run.frames.iter().all(|t| t.latency() == 7),
                    "{:?}",
                    run.frames
                );
                assert_eq!(run.total_cycles, 60 * 4 + 4);
            } else {
                assert!(run.interval().unwrap() > 4.0);
            }
        }
    }
}

#[test]
fn wide_signed_fixture_matches_reference() {
    // 8 lanes × 12 bits = a 96-bit input port (Verilator's VlWide<3>), signed in and out.
    let model = build("sums_s12x8", 96, 24);
    for seed in seeds() {
        eprintln!("s12x8: seed {seed} (replay: BNNFORGE_SEED={seed})");
        let mut rng = seeded(seed);
        let mut frames = random_frames(&mut rng, 40, 20, -2048, 2047);
        frames.push(vec![-2048; 20]);
        frames.push(vec![2047; 20]);
        frames.push((0..20).map(|i| if i % 2 == 0 { -1 } else { 0 }).collect());
        let expected: Vec<Vec<i64>> = frames.iter().map(|f| reference(f)).collect();
        assert!(expected.iter().any(|o| o[0] < -30_000 && o[2] == -2048));
        let mut sim = Sim::new(&model, None).unwrap();
        let opts = StreamOptions::stalls(rng.gen::<u64>(), 0.4, 0.4);
        let run = run_stream(&mut sim, &S12X8, &frames, &opts)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_outputs(&run.outputs, &expected, seed);
        check_timing(&run);
    }
}

#[test]
fn misplaced_tlast_is_reported() {
    let bad = build("sums_badlast", 32, 16);
    let frames = vec![vec![1i64; 10]; 3];
    let mut sim = Sim::new(&bad, None).unwrap();
    let err = run_stream(&mut sim, &U8X4, &frames, &StreamOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(
        err.to_string()
            .contains("m_axis_tlast on value 2 of frame 0, expected only on value 3"),
        "{err}"
    );

    // A correct design checked against the wrong frame length is reported both ways.
    let good = build("sums_u8x4", 32, 16);
    let mut sim = Sim::new(&good, None).unwrap();
    let short = StreamFormat {
        out_elements: 3,
        ..U8X4
    };
    let err = run_stream(&mut sim, &short, &frames, &StreamOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("m_axis_tlast missing on value 2 of frame 0"),
        "{err}"
    );
    let mut sim = Sim::new(&good, None).unwrap();
    let long = StreamFormat {
        out_elements: 5,
        ..U8X4
    };
    let err = run_stream(&mut sim, &long, &frames, &StreamOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("m_axis_tlast on value 3 of frame 0"),
        "{err}"
    );

    // Elements that do not fit the format are refused before anything runs.
    let mut sim = Sim::new(&good, None).unwrap();
    let err = run_stream(
        &mut sim,
        &U8X4,
        &[vec![256i64; 10]],
        &StreamOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
}

#[test]
fn stuck_design_times_out() {
    let model = build("stuck", 32, 16);
    let mut sim = Sim::new(&model, None).unwrap();
    let opts = StreamOptions {
        idle_timeout: 500,
        ..StreamOptions::default()
    };
    let t = Instant::now();
    let err = run_stream(&mut sim, &U8X4, &vec![vec![3i64; 10]; 4], &opts).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("no transfer for 500 cycles"), "{msg}");
    assert!(
        msg.contains("12 of 12 input beats taken, 0 frames"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn unstable_output_and_stop_are_reported() {
    let model = build("wobbly", 32, 16);
    let mut sim = Sim::new(&model, None).unwrap();
    let fmt = StreamFormat {
        out_elements: 1,
        ..U8X4
    };
    let frames = vec![vec![1i64; 4]; 50];
    let err = run_stream(&mut sim, &fmt, &frames, &StreamOptions::stalls(9, 0.0, 0.9)).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(err.to_string().contains("m_axis_tvalid dropped"), "{err}");

    // `$stop` inside the model is an error of the step, not an abort of the process.
    let mut sim = Sim::new(&model, None).unwrap();
    sim.reset(2).unwrap();
    let ok = sim.step(&Inputs {
        rst: false,
        s_tdata: &[0x1234],
        s_tvalid: true,
        m_tready: true,
    });
    assert!(ok.is_ok());
    let err = sim
        .step(&Inputs {
            rst: false,
            s_tdata: &[0xdead_beef],
            s_tvalid: true,
            m_tready: true,
        })
        .unwrap_err();
    assert!(matches!(err, Error::Sim(_)), "{err}");
    assert!(err.to_string().contains("$stop"), "{err}");
    assert!(err.to_string().contains("sums.v:"), "{err}");
}

#[test]
fn low_level_api_reads_wide_ports() {
    // Drive the 96-bit port directly and read the registered sums back.
    let model = build("sums_s12x8", 96, 24);
    let mut sim = Sim::new(&model, None).unwrap();
    sim.reset(3).unwrap();
    let frame: Vec<i64> = (0..20).map(|i| (i * 211 % 4096) - 2048).collect();
    let beats = pack_frame(8, ElemFormat::Signed(12), &frame).unwrap();
    for b in &beats {
        sim.set_inputs(&Inputs {
            rst: false,
            s_tdata: b,
            s_tvalid: true,
            m_tready: false,
        });
        let out = sim.eval().unwrap();
        assert!(out.s_tready && !out.m_tvalid);
        sim.tick().unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        let out = sim
            .step(&Inputs {
                rst: false,
                s_tdata: &[],
                s_tvalid: false,
                m_tready: true,
            })
            .unwrap();
        if out.m_tvalid {
            assert_eq!(sim.m_tdata().len(), 1);
            got.push(ElemFormat::Signed(24).decode(sim.m_tdata()[0]));
        }
    }
    assert_eq!(got, reference(&frame));
    assert_eq!(sim.cycle(), 3 + 3 + 10);
}

#[test]
fn second_build_is_a_cache_hit() {
    // A copy of the fixture with a unique comment, so the first build is always cold.
    let dir = temp_dir("cache");
    let src = dir.join("sums.v");
    let text = std::fs::read_to_string(fixture()).unwrap();
    std::fs::write(&src, format!("{text}\n// {}\n", dir.display())).unwrap();
    let cfg = BuildConfig::new(&[&src], "sums_u8x4", 32, 16);
    let cold = cfg.build().unwrap();
    assert!(!cold.cache_hit);
    let warm = cfg.build().unwrap();
    eprintln!(
        "cold build {:?}, cached build {:?}",
        cold.build_time, warm.build_time
    );
    assert!(warm.cache_hit);
    assert_eq!(warm.so_path, cold.so_path);
    assert!(warm.build_time < Duration::from_millis(50), "{warm:?}");
    // Any input of the key changes the entry.
    let other = BuildConfig::new(&[&src], "sums_u8x4", 32, 16).verilator_arg("-DUNUSED_DEFINE");
    std::fs::write(&src, format!("{text}\n// {} changed\n", dir.display())).unwrap();
    let changed = cfg.build().unwrap();
    assert!(!changed.cache_hit);
    assert_ne!(changed.so_path, cold.so_path);
    let other = other.build().unwrap();
    assert_ne!(other.so_path, changed.so_path);
    // The cached library works.
    let mut sim = Sim::new(&warm, None).unwrap();
    let run = run_stream(
        &mut sim,
        &U8X4,
        &[vec![5i64; 10]],
        &StreamOptions::default(),
    )
    .unwrap();
    assert_eq!(run.outputs, vec![vec![50, 25, 5, 0]]);
    for m in [&cold, &changed, &other] {
        std::fs::remove_dir_all(&m.dir).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_designs_and_tools_are_errors_not_panics() {
    let dir = temp_dir("broken");
    let broken = dir.join("broken.v");
    std::fs::write(
        &broken,
        "module broken(input clk);\n  wire x = ;\nendmodule\n",
    )
    .unwrap();
    let err = BuildConfig::new(&[&broken], "broken", 32, 16)
        .build()
        .unwrap_err();
    match &err {
        Error::Tool {
            tool, first_error, ..
        } => {
            assert_eq!(tool, "verilator");
            assert!(first_error.starts_with("%Error"), "{first_error}");
            assert!(first_error.contains("broken.v:2"), "{first_error}");
        }
        other => panic!("expected a tool error, got {other}"),
    }

    // Wrong port widths are caught before compiling.
    let err = BuildConfig::new(&[fixture()], "sums_u8x4", 64, 16)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Ports(_)), "{err}");
    assert!(
        err.to_string()
            .contains("`s_axis_tdata` is 32 bit(s) wide, expected 64"),
        "{err}"
    );
    // So is a top without the spec's ports.
    std::fs::write(
        &broken,
        "module lonely(input clk, output q);\n  assign q = clk;\nendmodule\n",
    )
    .unwrap();
    let err = BuildConfig::new(&[&broken], "lonely", 32, 16)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("missing input `rst`"), "{err}");
    assert!(err.to_string().contains("unexpected output `q`"), "{err}");

    // No such top, no such file, no verilator.
    let err = BuildConfig::new(&[fixture()], "nope", 32, 16)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Tool { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = BuildConfig::new(&[dir.join("missing.v")], "x", 32, 16)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    let mut cfg = BuildConfig::new(&[fixture()], "sums_u8x4", 32, 16);
    cfg.verilator = PathBuf::from("/nonexistent/verilator");
    let err = cfg.build().unwrap_err();
    assert!(matches!(err, Error::ToolMissing { .. }), "{err}");

    // A trace asked of a library built without one.
    let model = build("sums_u8x4", 32, 16);
    let err = Sim::new(&model, Some(&dir.join("x.vcd"))).err().unwrap();
    assert!(matches!(err, Error::Input(_)), "{err}");
    // A stream format that does not match the ports.
    let mut sim = Sim::new(&model, None).unwrap();
    let err = run_stream(
        &mut sim,
        &S12X8,
        &[vec![0i64; 20]],
        &StreamOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn waveforms_are_written() {
    let dir = temp_dir("wave");
    let frames = vec![vec![7i64; 10]; 3];
    for (trace, name) in [(Trace::Vcd, "run.vcd"), (Trace::Fst, "run.fst")] {
        let model = BuildConfig::new(&[fixture()], "sums_u8x4", 32, 16)
            .trace(trace)
            .build()
            .unwrap();
        let path = dir.join(name);
        let run = {
            let mut sim = Sim::new(&model, Some(&path)).unwrap();
            run_stream(&mut sim, &U8X4, &frames, &StreamOptions::default()).unwrap()
        };
        assert_eq!(run.outputs, vec![vec![70, 35, 7, 0]; 3]);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 200, "{name}: {} bytes", bytes.len());
        if trace == Trace::Vcd {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("$enddefinitions"));
            assert!(text.contains(" m_axis_tdata "));
            assert!(text.contains(" s_axis_tready "));
            // Two time steps per cycle: reset (4) + streamed + drain (16) cycles.
            let cycles = 4 + run.total_cycles + 16;
            let last = format!("\n#{}\n", 2 * cycles - 1);
            assert!(text.contains(&last), "no {last:?} in the VCD");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_drives_build_and_stream() {
    let dir = temp_dir("manifest");
    std::fs::copy(fixture(), dir.join("sums.v")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        r#"{ "format": 1, "top": "sums_u8x4", "verilog": ["sums.v"],
             "input":  { "bits": 8, "signed": false, "lanes": 4, "elements": 10 },
             "output": { "bits": 16, "signed": false, "elements": 4 },
             "cycles_per_frame": 4, "latency_cycles": 7, "extra": "ignored" }"#,
    )
    .unwrap();
    let m = Manifest::load(&dir).unwrap();
    assert_eq!(m.top, "sums_u8x4");
    assert_eq!(m.verilog, vec![dir.join("sums.v")]);
    assert_eq!(m.input.lanes, 4);
    assert_eq!(m.stream_format().unwrap(), U8X4);
    let model = m.build_config().build().unwrap();
    let mut sim = Sim::new(&model, None).unwrap();
    let frames: Vec<Vec<i64>> = (0..8)
        .map(|f| (0..10).map(|i| (f * 31 + i * 17) % 256).collect())
        .collect();
    let run = run_stream(
        &mut sim,
        &m.stream_format().unwrap(),
        &frames,
        &StreamOptions::default(),
    )
    .unwrap();
    let expected: Vec<Vec<i64>> = frames.iter().map(|f| reference(f)).collect();
    assert_eq!(run.outputs, expected);
    assert_eq!(run.interval(), Some(m.cycles_per_frame.unwrap() as f64));
    assert_eq!(run.max_latency(), m.latency_cycles.unwrap());

    std::fs::write(dir.join("manifest.json"), r#"{ "format": 1, "top": "x" }"#).unwrap();
    let err = Manifest::load(&dir).unwrap_err();
    assert!(
        err.to_string()
            .contains("manifest.json: missing list `verilog`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `weight_load` of a manifest: its words split into beats, low bits first; a file of
/// the wrong length or a bad word, and a bad `weight_load`, are one-line errors.
#[test]
fn manifest_weight_load_is_read_and_checked() {
    let dir = temp_dir("weight_load");
    let manifest = |load: &str| {
        std::fs::write(
            dir.join("manifest.json"),
            format!(
                r#"{{ "format": 1, "top": "t", "verilog": ["t.v"],
                     "input":  {{ "bits": 8, "signed": false, "lanes": 1, "elements": 4 }},
                     "output": {{ "bits": 1, "signed": false, "elements": 1 }}{load} }}"#
            ),
        )
        .unwrap();
        Manifest::load(&dir)
    };
    let m = manifest("").unwrap();
    assert_eq!(m.weight_load, None);
    assert_eq!(m.load_beats().unwrap(), Vec::<u64>::new());
    let load = r#", "weight_load": { "file": "w.hex", "words": 2, "bits_per_beat": 8 }"#;
    std::fs::write(dir.join("w.hex"), "abcd\n0102\n").unwrap();
    let m = manifest(load).unwrap();
    assert_eq!(m.load_beats().unwrap(), vec![0xcd, 0xab, 0x02, 0x01]);
    assert_eq!(
        bnnforge_testbench::load_beats(&[0xabcd], 4),
        vec![0xd, 0xc, 0xb, 0xa]
    );
    for (text, what) in [
        ("abcd\n", "1 words, the manifest says 2"),
        ("abcd\nxyz\n", "line 2: `xyz` is not a hex word"),
        ("abcd\n12345\n", "line 2: expected a 16-bit hex word"),
    ] {
        std::fs::write(dir.join("w.hex"), text).unwrap();
        let err = manifest(load)
            .unwrap()
            .load_beats()
            .unwrap_err()
            .to_string();
        assert!(err.contains(what) && !err.contains('\n'), "{err}");
    }
    let err = manifest(r#", "weight_load": { "file": "w.hex", "words": 2, "bits_per_beat": 3 }"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`bits_per_beat` (1, 2, 4, 8 or 16)"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn simulation_speed() {
    let model = build("sums_u8x4", 32, 16);
    let mut sim = Sim::new(&model, None).unwrap();
    let frames: Vec<Vec<i64>> = (0..50_000)
        .map(|f| (0..10).map(|i| (f + i) % 256).collect())
        .collect();
    let t = Instant::now();
    let run = run_stream(
        &mut sim,
        &U8X4,
        &frames,
        &StreamOptions::stalls(5, 0.2, 0.2),
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let rate = run.total_cycles as f64 / secs;
    eprintln!(
        "run_stream: {} cycles in {secs:.3} s = {:.1} M cycles/s",
        run.total_cycles,
        rate / 1e6
    );
    assert_eq!(run.outputs.len(), 50_000);
    assert!(rate > 500_000.0, "{rate} cycles/s");
}
