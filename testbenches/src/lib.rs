//! bnnforge-testbench: a thin Verilator co-simulation harness.
//!
//! * [`BuildConfig`] verilates a design whose top has exactly the ports of the spec
//!   ("The generated accelerator"), compiles it together with a generated C-ABI shim into a
//!   shared library and caches it under a content hash ([`Model`]).
//! * [`Sim`] loads that library in-process and drives the ports one clock at a time
//!   (optionally dumping a VCD or FST waveform).
//! * [`BoardSim`] runs a board core (`<net>_board_core`, [`Ports::Board`]) and talks to
//!   it over its UART, bytes in and out.
//! * [`run_stream`] is the AXI-stream driver: it packs element frames into beats, applies
//!   independent random stalls on both sides, checks the output protocol (`tlast`, stable
//!   data under backpressure) and measures timing.
//!
//! See `testbenches/README.md` for an overview and measured speed.

mod board;
mod build;
mod manifest;
pub mod protocol;
mod sim;
mod stream;

pub use board::{BoardSim, RESET_CYCLES};
pub use build::{default_cache_dir, BuildConfig, Model, Ports, Trace, HARNESS_VERSION};
pub use manifest::{Manifest, StreamSpec, WeightLoad};
pub use sim::{Inputs, Outputs, Sim, SimOptions};
pub use stream::{
    load_beats, pack_frame, run_stream, ElemFormat, FrameTiming, StreamFormat, StreamOptions,
    StreamRun,
};

use std::fmt;

/// Every failure of the harness. Nothing in this crate panics on bad designs or inputs.
#[derive(Debug)]
pub enum Error {
    /// An external tool (verilator, g++) could not be started.
    ToolMissing { tool: String, detail: String },
    /// A tool ran and failed. `first_error` is its first error line, `log` the whole output.
    Tool {
        tool: String,
        first_error: String,
        log: String,
    },
    /// The design's top ports do not match the spec or the widths asked for.
    Ports(String),
    /// File system trouble (path named in the message).
    Io(String),
    /// The shared library could not be loaded or is not what was expected.
    Load(String),
    /// The simulation itself failed ($fatal, $stop, an error inside the model).
    Sim(String),
    /// Input elements that do not fit the stream format, or bad options.
    Input(String),
    /// The design broke the stream protocol (misplaced `tlast`, extra output, unstable data).
    Protocol(String),
    /// The design stopped making progress.
    Timeout(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ToolMissing { tool, detail } => {
                write!(f, "cannot run `{tool}` (is it installed?): {detail}")
            }
            Error::Tool {
                tool, first_error, ..
            } => write!(f, "{tool} failed: {first_error}"),
            Error::Ports(m) => write!(f, "port mismatch: {m}"),
            Error::Io(m) => write!(f, "i/o error: {m}"),
            Error::Load(m) => write!(f, "cannot load simulation library: {m}"),
            Error::Sim(m) => write!(f, "simulation error: {m}"),
            Error::Input(m) => write!(f, "bad input: {m}"),
            Error::Protocol(m) => write!(f, "protocol violation: {m}"),
            Error::Timeout(m) => write!(f, "timeout: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Io(format!("{what} {}: {e}", path.display()))
}
