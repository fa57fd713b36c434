//! bnnforge: turns a trained binary neural network (network format 1) into a verified
//! FPGA accelerator for the open toolchains.
//!
//! Every error a user can cause ends as one line on stderr and exit status 2, with no
//! output file left behind; an external tool that is missing or fails (`synth`) is one
//! line naming it and its log, exit status 1.

mod commands;
mod engines;
mod flow;
mod host;
mod import;
mod mnist;
mod netlist;

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
        /// the fastest folding whose estimate fits LUT4,BRAM (iCE40 logic cells, counted
        /// as LUT4 + 1/2 DFF, and 4-kbit block RAMs, e.g. 4000,20)
        #[arg(long, value_name = "LUT4,BRAM")]
        budget: Option<String>,
        /// the fastest folding that fits a device: up5k (iCE40 UP5K, 90 % of its 5280
        /// logic cells and its 30 block RAMs, less the board core's 1400 cells and 5 block
        /// RAMs), ulx3s-85f or ulx3s-12f (ECP5 LFE5U-85F or -12F of the ULX3S: 90 % of
        /// their LUT4s and their 18-kbit EBRs, less the board core's 2700 LUT4 and 1 EBR)
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
        /// simulate yosys's netlist for this FPGA family (ice40 or ecp5) instead of the RTL
        #[arg(long, value_parser = ["ice40", "ecp5"])]
        netlist: Option<String>,
    },
    /// Run a batch on a board over its serial port (the infer contract), checked
    /// against the software model
    Run {
        /// the network (format 1 YAML) the board was built for
        model: PathBuf,
        /// the board's serial port (or `bnnforge board-sim`'s pseudo-terminal)
        #[arg(long)]
        port: String,
        /// inputs: [N, *input.shape], any integer dtype
        #[arg(long)]
        input: PathBuf,
        /// where to write the board's outputs: I64 [N, K]
        #[arg(long)]
        output: PathBuf,
        /// the serial line's baud rate
        #[arg(long, default_value_t = 115_200)]
        baud: u32,
        /// do not compare the board's outputs with the software model
        #[arg(long)]
        no_check: bool,
        /// labels [N]; prints the accuracy of the argmax prediction
        #[arg(long)]
        labels: Option<PathBuf>,
        /// longest silence while an answer is due, in milliseconds
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// attempts per frame after the first
        #[arg(long, default_value_t = 8)]
        retries: u32,
    },
    /// Measure a board: exact cycles per frame on the board (BENCH) and frames/s over
    /// the link
    BenchBoard {
        /// the network (format 1 YAML) the board was built for
        model: PathBuf,
        /// the board's serial port
        #[arg(long)]
        port: String,
        /// the serial line's baud rate
        #[arg(long, default_value_t = 115_200)]
        baud: u32,
        /// frames per measurement
        #[arg(long, default_value_t = 1000)]
        count: u32,
        /// longest silence while an answer is due, in milliseconds
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Load a bitstream onto a board with its programmer (iceprog, openFPGALoader)
    Flash {
        /// a `bnnforge synth` folder, or a bitstream (.bin, .bit)
        bitstream: PathBuf,
        /// the board (icebreaker, ulx3s-85f, ulx3s-12f; default: the synth folder's, else
        /// icebreaker)
        #[arg(long)]
        board: Option<String>,
        /// load into the FPGA's configuration RAM (lost at power-off; the default)
        #[arg(long, conflicts_with = "flash")]
        sram: bool,
        /// write the board's configuration flash
        #[arg(long)]
        flash: bool,
    },
    /// Simulate a board (accelerator + UART core in Verilator) behind a pseudo-terminal
    /// and print its path, for `bnnforge run --port PATH`
    BoardSim {
        /// the network (format 1 YAML), or a `bnnforge build`/`synth` folder
        model: PathBuf,
        /// the board whose clock is simulated
        #[arg(long, default_value = "icebreaker")]
        board: String,
        /// the simulated UART's baud rate
        #[arg(long, default_value_t = 3_000_000)]
        baud: u32,
        /// per-byte faults on the line, both ways: corrupt=P,drop=P,delay=P
        #[arg(long)]
        faults: Option<String>,
        /// seed of the faults
        #[arg(long, default_value_t = 1)]
        fault_seed: u64,
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
    // `bnnforge build … | head` ends quietly when the reader goes, as other command-line
    // tools do, instead of panicking on a closed stdout (Rust ignores SIGPIPE by default).
    // SAFETY: no other thread exists yet, and SIG_DFL installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    // the software model's popcount path (BNNFORGE_SIMD), checked before any model runs
    if let Err(e) = bnnforge_model::simd::Path::from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Infer {
            model,
            input,
            output,
            labels,
            threads,
        } => commands::infer::run(&model, &input, &output, labels.as_deref(), threads),
        Command::Run {
            model,
            port,
            input,
            output,
            baud,
            no_check,
            labels,
            timeout_ms,
            retries,
        } => commands::run::run(&commands::run::RunArgs {
            model: &model,
            port: &port,
            input: &input,
            output: &output,
            baud,
            check: !no_check,
            labels: labels.as_deref(),
            timeout_ms,
            retries,
        }),
        Command::BenchBoard {
            model,
            port,
            baud,
            count,
            timeout_ms,
        } => commands::bench_board::run(&model, &port, baud, count, timeout_ms),
        Command::Flash {
            bitstream,
            board,
            sram: _,
            flash,
        } => commands::flash::run(&bitstream, board.as_deref(), flash),
        Command::BoardSim {
            model,
            board,
            baud,
            faults,
            fault_seed,
        } => commands::board_sim::run(&model, &board, baud, faults.as_deref(), fault_seed),
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
            netlist,
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
            netlist.as_deref().and_then(netlist::Family::parse),
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
