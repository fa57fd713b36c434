//! Measures build times and simulation speed on the test fixture.
//!
//! `cargo run --release -p bnnforge-testbench --example bench [sums_u8x4|sums_s12x8] [FRAMES]`
//! (`OPT=-O3` picks the C++ optimisation level of the model).

use bnnforge_testbench::*;
use std::time::Instant;

fn main() -> Result<()> {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sums.v");
    let top = std::env::args().nth(1).unwrap_or("sums_u8x4".into());
    let n_frames: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let (fmt, elements) = match top.as_str() {
        "sums_s12x8" => (
            StreamFormat {
                lanes: 8,
                input: ElemFormat::Signed(12),
                output: ElemFormat::Signed(24),
                out_elements: 4,
            },
            20,
        ),
        _ => (
            StreamFormat {
                lanes: 4,
                input: ElemFormat::Unsigned(8),
                output: ElemFormat::Unsigned(16),
                out_elements: 4,
            },
            10,
        ),
    };
    let mut cfg = BuildConfig::new(&[fixture], &top, fmt.in_width(), fmt.out_width());
    if let Ok(opt) = std::env::var("OPT") {
        cfg.opt = opt;
    }
    let model = cfg.build()?;
    println!(
        "{top}: build {:?} (cache hit: {})",
        model.build_time, model.cache_hit
    );
    let mut sim = Sim::new(&model, None)?;
    let frames: Vec<Vec<i64>> = (0..n_frames as i64)
        .map(|f| (0..elements).map(|i| (i * 7 + f) % 100).collect())
        .collect();
    for (name, opts) in [
        ("no stalls", StreamOptions::full_speed()),
        ("30%/30% stalls", StreamOptions::stalls(3, 0.3, 0.3)),
    ] {
        let t = Instant::now();
        let run = run_stream(&mut sim, &fmt, &frames, &opts)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "run_stream, {name}: {} cycles in {secs:.3} s = {:.1} M cycles/s; {:.2} cycles/frame, latency {}",
            run.total_cycles,
            run.total_cycles as f64 / secs / 1e6,
            run.interval().unwrap_or(0.0),
            run.max_latency()
        );
    }
    let zeros = [0u64; 2];
    let inputs = Inputs {
        rst: false,
        s_tdata: &zeros,
        s_tvalid: true,
        m_tready: true,
    };
    let n = 5_000_000u64;
    let t = Instant::now();
    for _ in 0..n {
        sim.step(&inputs)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "Sim::step loop: {n} cycles in {secs:.3} s = {:.1} M cycles/s",
        n as f64 / secs / 1e6
    );
    Ok(())
}
