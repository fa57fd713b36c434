//! Helpers for the blocks' tests: a seeded random generator that can be replayed.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// A random generator for one test. Its seed comes from `BNNFORGE_SEED` when set (to
/// replay a failure), otherwise from the clock; it is printed either way, so a failing
/// run shows the value to replay with (`BNNFORGE_SEED=<seed> cargo test ...`).
pub fn rng(test: &str) -> StdRng {
    let seed = match std::env::var("BNNFORGE_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .expect("BNNFORGE_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    println!("{test}: seed {seed} (replay with BNNFORGE_SEED={seed})");
    StdRng::seed_from_u64(seed)
}
