//! bnnforge: turns a trained binary neural network (network format 1) into a verified
//! FPGA accelerator for the open toolchains.
//!
//! Every error a user can cause ends as one line on stderr and exit status 2, with no
//! output file left behind; an external tool that is missing or fails (`synth`) is one
//! line naming it and its log, exit status 1.

mod commands;
mod engines;
mod flow;
mod import;
mod mnist;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bnnforge",
    version,
    about = "Binary neural network to verified FPGA accelerator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bit-exact software model over a batch of inputs
    Infer {
        /// the network (format 1 YAML)
        model: PathBuf,
        /// inputs: [N, *input.shape], any integer dtype
        #[arg(long)]
        input: PathBuf,
        /// where to write the outputs: I64 [N, K]
        #[arg(long)]
        output: PathBuf,
        /// labels [N]; prints the accuracy of the argmax prediction
        #[arg(long)]
        labels: Option<PathBuf>,
        /// worker threads (default: all cores)
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Per layer: shapes, MACs, parameter bits and the integer width of each value
    Info {
        /// the network (format 1 YAML)
        model: PathBuf,
    },
    /// Write a random network covering the ops of format 1 (and optionally inputs)
    Random {
        /// the seed: the same seed gives the same network
        #[arg(long)]
        seed: u64,
        /// where to write the network YAML (its .safetensors goes beside it)
        #[arg(long)]
        out: PathBuf,
        /// also write this many random input frames
        #[arg(long, requires = "inputs")]
        frames: Option<usize>,
        /// where to write the input frames (.npy)
        #[arg(long)]
        inputs: Option<PathBuf>,
    },
    /// Convert a trained network from another tool into format 1
    Import {
        #[command(subcommand)]
        source: import::ImportCommand,
    },
    /// The shipped real networks (BNN-PYNQ LFC, FINN TFC) on the MNIST test set
    Demo {
        /// only the first N test images
        #[arg(long)]
        frames: Option<usize>,
        /// skip the hardware part (build, Verilator co-simulation, yosys)
        #[arg(long)]
        no_hardware: bool,
    },
    /// Generate the accelerator: Verilog, manifest.json and a report in a folder
    Build {
        /// the network (format 1 YAML)
        model: PathBuf,
        /// the folder to write (replaced as a whole)
        #[arg(long)]
        out: PathBuf,
        /// PE and SIMD per layer (YAML: `layer: {pe: P, simd: S}`); other layers are
        /// folded to keep pace with the slowest given one
        #[arg(long)]
        folding: Option<PathBuf>,
        /// fold every layer to at most this many cycles per frame, as cheaply as possible
        #[arg(long, conflicts_with = "folding")]
        target_cycles: Option<u64>,
        /// the fastest folding whose estimate fits LUT4,BRAM (iCE40 LUT4s and 4-kbit
        /// block RAMs, e.g. 4000,20)
        #[arg(long, value_name = "LUT4,BRAM")]
        budget: Option<String>,
        /// the fastest folding that fits a device: up5k (iCE40 UP5K, 90 % of its 5280
        /// LUT4s and its 30 block RAMs)
        #[arg(long)]
        device: Option<String>,
    },
    /// Run a batch through the generated Verilog in Verilator (the infer contract),
    /// checked against the software model
    Sim {
        /// the network (format 1 YAML)
        model: PathBuf,
        /// inputs: [N, *input.shape], any integer dtype
        #[arg(long)]
        input: PathBuf,
        /// where to write the Verilog's outputs: I64 [N, K]
        #[arg(long)]
        output: PathBuf,
        /// a folder written by `bnnforge build` for this network (default: build now)
        #[arg(long)]
        design: Option<PathBuf>,
        /// folding for the build (see `build`)
        #[arg(long, conflicts_with = "design")]
        folding: Option<PathBuf>,
        /// target cycles per frame for the build (see `build`)
        #[arg(long, conflicts_with_all = ["design", "folding"])]
        target_cycles: Option<u64>,
        /// probability of a stall in any cycle, on each stream independently
        #[arg(long, default_value_t = 0.0)]
        stall: f64,
        /// seed of the stall pattern
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// write a waveform (.vcd, or .fst)
        #[arg(long)]
        wave: Option<PathBuf>,
    },
    /// Place, route and pack the accelerator for a board: bitstream, Fmax, utilisation
    Synth {
        /// the network (format 1 YAML)
        model: PathBuf,
        /// icebreaker, ulx3s-85f or ulx3s-12f
        #[arg(long)]
        board: String,
        /// the folder to write (replaced as a whole)
        #[arg(long)]
        out: PathBuf,
        /// the accelerator clock in MHz (default: the board's, 48 on the iCEBreaker, 50
        /// on the ULX3S); the PLL's nearest frequency not above it is used
        #[arg(long)]
        freq: Option<f64>,
        /// nextpnr runs with seeds 1..=N; the best is kept
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// the UART's baud rate
        #[arg(long, default_value_t = commands::synth::DEFAULT_BAUD)]
        baud: u32,
        /// PE and SIMD per layer (see `build`)
        #[arg(long)]
        folding: Option<PathBuf>,
        /// target cycles per frame (see `build`)
        #[arg(long, conflicts_with = "folding")]
        target_cycles: Option<u64>,
    },
    /// Measure the software model: binary MACs per second on one core and on all
    /// (`--cosim`: the Verilator co-simulation's frames/s and cycles/s)
    Bench {
        /// seconds per measurement
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// measure the Verilator co-simulation of the largest shipped network instead
        #[arg(long)]
        cosim: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Infer {
            model,
            input,
            output,
            labels,
            threads,
        } => commands::infer::run(&model, &input, &output, labels.as_deref(), threads),
        Command::Info { model } => commands::info::run(&model),
        Command::Random {
            seed,
            out,
            frames,
            inputs,
        } => commands::random::run(seed, &out, frames, inputs.as_deref()),
        Command::Import { source } => import::run(source),
        Command::Demo {
            frames,
            no_hardware,
        } => commands::demo::run(frames, !no_hardware),
        Command::Bench { seconds, cosim } => {
            if cosim {
                commands::bench::cosim(seconds)
            } else {
                commands::bench::run(seconds)
            }
        }
        Command::Sim {
            model,
            input,
            output,
            design,
            folding,
            target_cycles,
            stall,
            seed,
            wave,
        } => commands::sim::run(
            &model,
            &input,
            &output,
            &commands::sim::SimArgs {
                design: design.as_deref(),
                folding: folding.as_deref(),
                target: target_cycles,
                stall,
                seed,
                wave: wave.as_deref(),
                quiet: false,
            },
        ),
        Command::Synth {
            model,
            board,
            out,
            freq,
            seeds,
            baud,
            folding,
            target_cycles,
        } => match commands::synth::run(&commands::synth::SynthArgs {
            model: &model,
            board: &board,
            out: &out,
            freq,
            seeds,
            baud,
            folding: folding.as_deref(),
            target: target_cycles,
        }) {
            Ok(()) => Ok(()),
            Err(commands::synth::Failure::Input(e)) => Err(e),
            // a tool that is missing or failed: exit 1
            Err(commands::synth::Failure::Tool(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        Command::Build {
            model,
            out,
            folding,
            target_cycles,
            budget,
            device,
        } => commands::build::choose(
            folding.as_deref(),
            target_cycles,
            budget.as_deref(),
            device.as_deref(),
        )
        .and_then(|how| commands::build::run(&model, &out, &how)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
