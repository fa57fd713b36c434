//! `bnnforge infer`: the software model over a batch, as the spec's command line says.

use bnnforge_model::error::InFile;
use bnnforge_model::{npy, Error, Model, Result};
use std::path::Path;
use std::time::Instant;

pub fn run(
    model: &Path,
    input: &Path,
    output: &Path,
    labels: Option<&Path>,
    threads: Option<usize>,
) -> Result<()> {
    let net = bnnforge_model::load(model)?;
    let (n, xs) = npy::read_inputs(input, &net.input)?;
    // read the labels before computing, so a bad label file leaves no output behind
    let k = net.output_shape().len();
    let labels = labels.map(|p| read_labels(p, n, k)).transpose()?;
    let m = Model::new(&net);
    let start = Instant::now();
    let ys = super::pool(threads)?.install(|| m.eval_batch(&xs));
    let secs = start.elapsed().as_secs_f64();
    npy::write_i64(output, &[n, k], &ys)?;
    eprintln!(
        "{n} frames, {k} outputs each, {:.1} ms ({:.0} frames/s)",
        secs * 1e3,
        n as f64 / secs.max(1e-9)
    );
    if let Some(labels) = labels {
        let correct = ys
            .chunks(k.max(1))
            .zip(&labels)
            .filter(|(y, &l)| super::argmax(y) as i64 == l)
            .count();
        println!(
            "accuracy: {correct}/{n} ({:.2} %)",
            100.0 * correct as f64 / n.max(1) as f64
        );
    }
    Ok(())
}

/// Labels: an integer vector of one label per frame, each an output index below `k`.
pub fn read_labels(path: &Path, n: usize, k: usize) -> Result<Vec<i64>> {
    let a = npy::read_ints(path)?;
    if a.shape != [n] {
        return Err(Error::new(format!(
            "labels have shape {:?}, expected [{n}] (one per input frame)",
            a.shape
        )))
        .in_file(path);
    }
    if let Some(i) = a.data.iter().position(|&l| l < 0 || l >= k as i64) {
        return Err(Error::new(format!(
            "label {} of frame {i} is not an output index 0..{k}",
            a.data[i]
        )))
        .in_file(path);
    }
    Ok(a.data)
}
