//! `bnnforge board-sim`: a simulated board behind a pseudo-terminal.

use bnnforge_model::{Error, Result};
use std::path::Path;

pub fn run(
    _model: &Path,
    _board: &str,
    _baud: u32,
    _faults: Option<&str>,
    _seed: u64,
) -> Result<()> {
    Err(Error::new("board-sim: not yet"))
}
