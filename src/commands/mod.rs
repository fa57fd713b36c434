//! One module per subcommand.

pub mod bench;
pub mod bench_board;
pub mod board_sim;
pub mod build;
pub mod demo;
pub mod flash;
pub mod infer;
pub mod info;
pub mod random;
pub mod run;
pub mod sim;
pub mod synth;

use bnnforge_model::{Error, Result};

/// A rayon pool of `threads` workers (all cores when None).
pub fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    if threads == Some(0) {
        return Err(Error::new("--threads must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::new(format!("cannot start worker threads: {e}")))
}

/// Index of the largest value, the lowest index on ties (the spec's prediction).
pub fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
