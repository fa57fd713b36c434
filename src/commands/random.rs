//! `bnnforge random`: a seeded random network (and inputs), e.g. to replay a failing
//! co-simulation seed.

use bnnforge_model::random::{random_frames, random_network, RandomConfig};
use bnnforge_model::{npy, Result};
use std::path::Path;

pub fn run(seed: u64, out: &Path, frames: Option<usize>, inputs: Option<&Path>) -> Result<()> {
    let net = random_network(seed, &RandomConfig::default());
    bnnforge_model::save(&net, out)?;
    if let Some(path) = inputs {
        let n = frames.unwrap_or(16);
        let xs = random_frames(&net.input, n, seed);
        let mut shape = vec![n];
        shape.extend(net.input.shape.dims());
        npy::write_i64(path, &shape, &xs)?;
    }
    println!("wrote {} ({} layers)", out.display(), net.layers.len());
    Ok(())
}
