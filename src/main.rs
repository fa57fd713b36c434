//! bnnforge: turns a trained binary neural network (network format 1) into a verified
//! FPGA accelerator for the open toolchains.
//!
//! Every error a user can cause ends as one line on stderr and exit status 2, with no
//! output file left behind.

mod commands;
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
    },
    /// Measure the software model: binary MACs per second on one core and on all
    Bench {
        /// seconds per measurement
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
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
        Command::Demo { frames } => commands::demo::run(frames),
        Command::Bench { seconds } => commands::bench::run(seconds),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
