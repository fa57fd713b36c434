//! `bnnforge demo`: the shipped real networks on the real MNIST test set, end to end.
//!
//! Runs LFC-W1A1, LFC-W1A2 (BNN-PYNQ) and TFC-W1A1 (FINN) over the 10,000 test images
//! with the bit-exact model and prints each accuracy beside the published figure.

use crate::mnist;
use bnnforge_model::{Model, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a network's output vector becomes a class.
#[derive(Clone, Copy)]
enum Rule {
    /// BNN-PYNQ: the highest output bit that is set (+1), 0 if none
    HighestSetBit,
    /// the spec's prediction: the largest value, the lowest index on ties
    Argmax,
}

impl Rule {
    fn predict(self, y: &[i64]) -> usize {
        match self {
            Rule::HighestSetBit => y.iter().rposition(|&v| v > 0).unwrap_or(0),
            Rule::Argmax => super::argmax(y),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Rule::HighestSetBit => "highest set bit",
            Rule::Argmax => "argmax",
        }
    }
}

/// The shipped networks: file, decision rule, published accuracy.
const NETWORKS: [(&str, Rule, &str); 3] = [
    ("lfc-w1a1", Rule::HighestSetBit, "98.40 % (BNN-PYNQ)"),
    ("lfc-w1a2", Rule::HighestSetBit, "98.49 % (BNN-PYNQ)"),
    ("tfc-w1a1", Rule::Argmax, "92.96 % (FINN graph, float)"),
];

/// The folder that holds `models/` and `data/`: the current one, or the source tree.
fn root() -> PathBuf {
    if Path::new("models").is_dir() && Path::new("data").is_dir() {
        PathBuf::from(".")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

pub fn run(frames: Option<usize>) -> Result<()> {
    let root = root();
    let images = mnist::read_images(&root.join("data/mnist/t10k-images-idx3-ubyte.gz"))?;
    let labels = mnist::read_labels(&root.join("data/mnist/t10k-labels-idx1-ubyte.gz"))?;
    let n = frames
        .unwrap_or(images.count)
        .min(images.count)
        .min(labels.len());
    let xs: Vec<i64> = (0..n)
        .flat_map(|i| images.image(i))
        .map(|&p| p as i64)
        .collect();
    println!("MNIST test set: {n} images, bit-exact software model on all cores\n");
    println!(
        "{:<10} {:<16} {:>22} {:>10}  published",
        "network", "rule", "correct", "frames/s"
    );
    for (name, rule, published) in NETWORKS {
        let net = bnnforge_model::load(&root.join(format!("models/{name}.yaml")))?;
        let model = Model::new(&net);
        let (fin, fout) = (model.input_len(), model.output_len());
        let bar = ProgressBar::new(n as u64).with_message(name);
        bar.set_style(
            ProgressStyle::with_template("{msg:<10} [{bar:30}] {pos}/{len} {per_sec}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let start = Instant::now();
        let mut correct = 0usize;
        // chunks keep the progress bar moving; each chunk runs on all cores
        for (c, chunk) in xs.chunks(fin * 500).enumerate() {
            let ys = model.eval_batch(chunk);
            for (i, y) in ys.chunks(fout).enumerate() {
                if rule.predict(y) == labels[c * 500 + i] as usize {
                    correct += 1;
                }
            }
            bar.inc((chunk.len() / fin) as u64);
        }
        bar.finish_and_clear();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<10} {:<16} {:>22} {:>10.0}  {published}",
            rule.name(),
            format!(
                "{correct}/{n} ({:.2} %)",
                100.0 * correct as f64 / n.max(1) as f64
            ),
            n as f64 / secs
        );
    }
    Ok(())
}
