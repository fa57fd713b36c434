//! `bnnforge demo`: the shipped real networks on the real MNIST test set, end to end.
//!
//! Runs LFC-W1A1, LFC-W1A2 (BNN-PYNQ) and TFC-W1A1 (FINN) over the 10,000 test images
//! with the bit-exact model and prints each accuracy beside the published figure; then
//! builds TFC-W1A1's accelerator, co-simulates a sample of images in Verilator against
//! the model, and (when yosys is installed) synthesises it for the iCE40 UP5K.

use crate::mnist;
use bnnforge_model::{Model, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a network's output vector becomes a class.
#[derive(Clone, Copy)]
enum Rule {
    /// BNN-PYNQ: the highest output bit that is set (+1), 0 if none
    HighestSetBit,
    /// the spec's prediction: the largest value, the lowest index on ties
    Argmax,
}

impl Rule {
    fn predict(self, y: &[i64]) -> usize {
        match self {
            Rule::HighestSetBit => y.iter().rposition(|&v| v > 0).unwrap_or(0),
            Rule::Argmax => super::argmax(y),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Rule::HighestSetBit => "highest set bit",
            Rule::Argmax => "argmax",
        }
    }
}

/// The shipped networks: file, decision rule, published accuracy.
const NETWORKS: [(&str, Rule, &str); 3] = [
    ("lfc-w1a1", Rule::HighestSetBit, "98.40 % (BNN-PYNQ)"),
    ("lfc-w1a2", Rule::HighestSetBit, "98.49 % (BNN-PYNQ)"),
    ("tfc-w1a1", Rule::Argmax, "92.96 % (FINN graph, float)"),
];

/// The folder that holds `models/` and `data/`: the current one, or the source tree.
fn root() -> PathBuf {
    if Path::new("models").is_dir() && Path::new("data").is_dir() {
        PathBuf::from(".")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

/// The network whose accelerator the demo builds, and how many images it co-simulates.
const HARDWARE_NETWORK: &str = "tfc-w1a1";
const HARDWARE_FRAMES: usize = 200;

pub fn run(frames: Option<usize>, hardware: bool) -> Result<()> {
    let root = root();
    let images = mnist::read_images(&root.join("data/mnist/t10k-images-idx3-ubyte.gz"))?;
    let labels = mnist::read_labels(&root.join("data/mnist/t10k-labels-idx1-ubyte.gz"))?;
    let n = frames
        .unwrap_or(images.count)
        .min(images.count)
        .min(labels.len());
    let xs: Vec<i64> = (0..n)
        .flat_map(|i| images.image(i))
        .map(|&p| p as i64)
        .collect();
    println!("MNIST test set: {n} images, bit-exact software model on all cores\n");
    println!(
        "{:<10} {:<16} {:>22} {:>10}  published",
        "network", "rule", "correct", "frames/s"
    );
    for (name, rule, published) in NETWORKS {
        let net = bnnforge_model::load(&root.join(format!("models/{name}.yaml")))?;
        let model = Model::new(&net);
        let (fin, fout) = (model.input_len(), model.output_len());
        let bar = ProgressBar::new(n as u64).with_message(name);
        bar.set_style(
            ProgressStyle::with_template("{msg:<10} [{bar:30}] {pos}/{len} {per_sec}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let start = Instant::now();
        let mut correct = 0usize;
        // chunks keep the progress bar moving; each chunk runs on all cores
        for (c, chunk) in xs.chunks(fin * 500).enumerate() {
            let ys = model.eval_batch(chunk);
            for (i, y) in ys.chunks(fout).enumerate() {
                if rule.predict(y) == labels[c * 500 + i] as usize {
                    correct += 1;
                }
            }
            bar.inc((chunk.len() / fin) as u64);
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<10} {:<16} {:>22} {:>10.0}  {published}",
            rule.name(),
            format!(
                "{correct}/{n} ({:.2} %)",
                100.0 * correct as f64 / n.max(1) as f64
            ),
            n as f64 / secs
        );
    }
    if hardware {
        let k = HARDWARE_FRAMES.min(n);
        hardware_demo(&root, &xs[..k * 784])?;
    }
    Ok(())
}

/// Images the demo sends over the simulated board's UART.
const BOARD_FRAMES: usize = 36;

/// The board half: the accelerator in the board core, simulated behind a pseudo-terminal
/// (`bnnforge board-sim`), fed MNIST images by the same host as `bnnforge run`. A
/// failure here is reported and does not end the demo.
fn board_demo(net: &bnnforge_model::Network, model: &Path, built: &Path, xs: &[i64]) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let n = xs.len() / 784;
    let ports: Vec<String> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| f.starts_with("ttyUSB") || f.starts_with("ttyACM"))
                .map(|f| format!("/dev/{f}"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "\nBoard: {HARDWARE_NETWORK} on a simulated iCEBreaker (board core + accelerator in \
         Verilator at 48 MHz, 3,000,000 baud, behind a pseudo-terminal)"
    );
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return println!("  skipped: cannot find this program: {e}"),
    };
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("bnnforge board-sim (verilating the board the first time, ~1 min)");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let child = Command::new(exe)
        .arg("board-sim")
        .arg(built)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            spinner.finish_and_clear();
            return println!("  skipped: cannot start bnnforge board-sim: {e}");
        }
    };
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    let _ = std::io::BufReader::new(stdout).read_line(&mut line);
    spinner.finish_and_clear();
    let port = line.trim().to_string();
    if port.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        return println!("  skipped: bnnforge board-sim did not start");
    }
    let want = Model::new(net).eval_batch(xs);
    let opts = crate::host::Options {
        baud: 3_000_000,
        ..Default::default()
    };
    let r = super::run::on_board(net, model, &port, opts, xs, Some(&want), true);
    drop(child.stdin.take());
    let _ = child.wait();
    match r {
        Ok(r) => println!(
            "  {n} MNIST images over the simulated UART: {} mismatches against the model, \
             {:.1} frames/s (simulated; a real board at 3 Mbaud is bound by the line: \
             {:.0} frames/s)",
            r.mismatches.len(),
            n as f64 / r.secs.max(1e-9),
            3_000_000.0 / 10.0 / (784.0 + 12.0)
        ),
        Err(super::run::Failure::Input(e)) => println!("  failed: {e}"),
        Err(super::run::Failure::Board(e)) => println!("  failed: {e}"),
    }
    println!(
        "  with a real board: bnnforge synth {} --board icebreaker --out build-ib && \
         bnnforge flash build-ib --board icebreaker && bnnforge run {} --port {} \
         --input images.npy --output out.npy",
        model.display(),
        model.display(),
        ports.last().map(String::as_str).unwrap_or("/dev/ttyUSB1")
    );
}

/// Build, co-simulate and synthesise the accelerator of [`HARDWARE_NETWORK`].
fn hardware_demo(root: &Path, xs: &[i64]) -> Result<()> {
    let model = root.join(format!("models/{HARDWARE_NETWORK}.yaml"));
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bnnforge-demo")
        .join(HARDWARE_NETWORK);
    std::fs::create_dir_all(out.parent().expect("parent"))
        .map_err(|e| bnnforge_model::Error::new(format!("cannot create {}: {e}", out.display())))?;
    println!("\nHardware: {HARDWARE_NETWORK} accelerator");
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("bnnforge build (the first run compiles the engine program, ~1 min)");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let built = super::build::build(&model, &out, None, None);
    spinner.finish_and_clear();
    let b = built?;
    let d = &b.design;
    println!(
        "  build: {} engines, {} cycles per frame, latency {} cycles, {:.1} MB of Verilog in {}",
        d.engines.len(),
        d.cycles_per_frame(),
        d.latency_cycles(),
        b.verilog_bytes as f64 / 1e6,
        out.display()
    );
    let net = bnnforge_model::load(&model)?;
    let args = super::sim::SimArgs::full_rate(&out, false);
    let c = super::sim::cosim(&net, &out, xs, &args)?;
    println!(
        "  Verilator: {} MNIST images through the Verilog, {} mismatches against the model; \
         {:.1} cycles per frame measured ({} in the manifest), first-frame latency {} cycles",
        c.frames,
        c.mismatches.len(),
        c.interval.unwrap_or(0.0),
        c.cycles_per_frame,
        c.first_latency,
    );
    for (board, mhz) in [("iCEBreaker oscillator", 12.0), ("ULX3S oscillator", 25.0)] {
        println!(
            "  at {mhz} MHz ({board}): {:.0} frames/s",
            mhz * 1e6 / c.cycles_per_frame.max(1) as f64
        );
    }
    println!(
        "  co-simulation speed: {:.2} M cycles/s, {:.0} frames/s (verilator build {:.1} s{})",
        c.cycles as f64 / c.sim_secs.max(1e-9) / 1e6,
        c.frames as f64 / c.sim_secs.max(1e-9),
        c.verilate_secs,
        if c.verilator_cached { ", cached" } else { "" }
    );
    if !c.mismatches.is_empty() {
        return Err(bnnforge_model::Error::new(format!(
            "the Verilog differs from the model ({} values)",
            c.mismatches.len()
        )));
    }
    board_demo(&net, &model, &out, &xs[..xs.len().min(BOARD_FRAMES * 784)]);
    if std::process::Command::new("yosys")
        .arg("-V")
        .output()
        .is_err()
    {
        println!(
            "  yosys not installed: no resource estimate (scripts/install-deps.sh installs it)"
        );
        return Ok(());
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("yosys synth_ice40 (about a minute)");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut verilog = String::new();
    for f in d.verilog_files().iter().map(|f| out.join(f)) {
        verilog += &std::fs::read_to_string(&f).map_err(|e| {
            bnnforge_model::Error::new(format!("{}: cannot read: {e}", f.display()))
        })?;
        verilog += "\n";
    }
    let stats = bnnforge_hdl::synth::ice40_stats("demo", &verilog, &d.top);
    spinner.finish_and_clear();
    match stats {
        Ok(s) => println!(
            "  yosys synth_ice40: {} LUT4, {} carry, {} DFF, {} SB_RAM40_4K \
             (iCE40 UP5K: 5280 LUT4, 30 BRAM)",
            s.lut4, s.carry, s.dff, s.bram
        ),
        Err(e) => println!("  yosys: {}", e.lines().next().unwrap_or("")),
    }
    Ok(())
}
