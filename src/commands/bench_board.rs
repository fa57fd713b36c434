//! `bnnforge bench-board`: tells the accelerator and the serial link apart. BENCH runs
//! one frame `count` times back to back on the board and counts the board's cycles; the
//! difference of two counts (1 and N + 1 frames) divided by N is the exact cycles per
//! frame, free of the link and of the pipeline's fill. FRAME round trips measure the
//! link.

use super::run::{open, Expected, Failure};
use crate::host::{packet_bytes, Host, Options, Verdict};
use bnnforge_model::{Error, Model, Result};
use bnnforge_testbench::protocol::{INFO_BYTES, OVERHEAD_BYTES};
use std::path::Path;
use std::time::{Duration, Instant};

/// What the board measured.
pub struct BoardBench {
    /// (cycles per frame measured, the manifest's)
    pub cycles_per_frame: f64,
    pub manifest_cycles: u32,
    pub clock_hz: u32,
    pub baud: u32,
    /// frames/s the line allows with `bnnforge run`'s traffic (FRAME + INFO out,
    /// RESULT + INFO back)
    pub link_bound: f64,
    /// frames/s measured with `bnnforge run`'s traffic
    pub link_measured: f64,
    pub link_frames: usize,
}

fn fail(port: &str, f: Failure) -> Error {
    match f {
        Failure::Input(e) => e,
        Failure::Board(e) => {
            eprintln!("error: {port}: {e}");
            std::process::exit(1);
        }
    }
}

/// Benchmarks the board behind `port` running `model`'s network.
pub fn measure(
    model: &Path,
    port: &str,
    opts: Options,
    count: u32,
) -> std::result::Result<BoardBench, Failure> {
    let net = bnnforge_model::load(model)?;
    let exp = Expected::of(&net, model)?;
    let link = open(port, opts.baud)?;
    let mut host = Host::new(link, opts);
    let info = host.info().map_err(Failure::Board)?;
    if let Some(r) = exp.refusal(&info, &net.name) {
        return Err(Failure::Input(Error::new(r)));
    }
    // a valid frame whatever the input type: 1 is +1 for binary and in range otherwise
    let n_in = net.input.shape.len();
    let xs = vec![1i64; n_in];
    let frame = exp.encode(&net, &xs)?.remove(0);
    let rb = exp.result_bytes();
    // the board's time for `c` frames, generously (a simulated board is slower)
    let patience = |c: u32| {
        Duration::from_secs_f64(
            100.0 * c as f64 * info.cycles_per_frame.max(1) as f64 / info.clock_hz.max(1) as f64,
        )
    };
    let (c1, y1) = host
        .bench(1, &frame, rb, patience(1))
        .map_err(Failure::Board)?;
    let (cn, yn) = host
        .bench(count + 1, &frame, rb, patience(count + 1))
        .map_err(Failure::Board)?;
    let want = Model::new(&net).eval(&xs);
    for (what, y) in [("BENCH 1", &y1), ("BENCH N+1", &yn)] {
        if exp.decode(y) != want {
            return Err(Failure::Board(format!(
                "{what}: the board's output differs from the model's"
            )));
        }
    }
    // the link: `bnnforge run`'s traffic for up to 200 frames
    let m = count.clamp(1, 200) as usize;
    let frames = vec![frame.clone(); m];
    let t = Instant::now();
    host.run_frames(&frames, rb, &mut |_, _| Verdict::Accept, &mut |_| {})
        .map_err(Failure::Board)?;
    let secs = t.elapsed().as_secs_f64();
    let out = packet_bytes(frame.len()) + OVERHEAD_BYTES;
    let back = packet_bytes(rb) + packet_bytes(INFO_BYTES);
    Ok(BoardBench {
        cycles_per_frame: (cn.saturating_sub(c1)) as f64 / count.max(1) as f64,
        manifest_cycles: info.cycles_per_frame,
        clock_hz: info.clock_hz,
        baud: info.baud,
        link_bound: info.baud as f64 / 10.0 / out.max(back) as f64,
        link_measured: m as f64 / secs.max(1e-9),
        link_frames: m,
    })
}

pub fn run(model: &Path, port: &str, baud: u32, count: u32, timeout_ms: u64) -> Result<()> {
    if count == 0 {
        return Err(Error::new("--count must be at least 1"));
    }
    if timeout_ms == 0 || baud == 0 {
        return Err(Error::new("--timeout-ms and --baud must be at least 1"));
    }
    let opts = Options {
        timeout: Duration::from_millis(timeout_ms),
        retries: 8,
        baud,
    };
    let b = measure(model, port, opts, count).map_err(|f| fail(port, f))?;
    println!(
        "accelerator: {:.2} cycles per frame measured on the board (BENCH {} and 1), {} in the \
         manifest ({:+.1} %)",
        b.cycles_per_frame,
        count + 1,
        b.manifest_cycles,
        100.0 * (b.cycles_per_frame / b.manifest_cycles.max(1) as f64 - 1.0)
    );
    println!(
        "accelerator: {:.0} frames/s at the board's {:.1} MHz",
        b.clock_hz as f64 / b.cycles_per_frame.max(1e-9),
        b.clock_hz as f64 / 1e6
    );
    println!(
        "link: {:.1} frames/s at most at {} baud (FRAME + INFO out, RESULT + INFO back); \
         {:.1} frames/s measured over {} frames",
        b.link_bound, b.baud, b.link_measured, b.link_frames
    );
    println!(
        "bound by the {}",
        if b.link_measured < b.clock_hz as f64 / b.cycles_per_frame.max(1e-9) {
            "link: the accelerator waits for frames"
        } else {
            "accelerator"
        }
    );
    Ok(())
}
