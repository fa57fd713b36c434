//! What the integration tests share: where the repository, the shared data and the
//! binary are.

#![allow(dead_code)] // each test uses its part

use std::path::PathBuf;
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's shared data (BNN-PYNQ's and FINN's original files), beside the repo,
/// or `BNNFORGE_SHARED_DATA`.
pub fn shared_data() -> PathBuf {
    let p = std::env::var_os("BNNFORGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    assert!(
        p.join("bnn-pynq").is_dir() && p.join("finn-tfc").is_dir(),
        "{}: the shared data (bnn-pynq/, finn-tfc/) is missing; set BNNFORGE_SHARED_DATA",
        p.display()
    );
    p
}

pub fn bnnforge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bnnforge"))
}
