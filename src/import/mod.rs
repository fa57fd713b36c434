//! `bnnforge import`: trained networks from other tools as exactly equivalent format-1
//! networks.
//!
//! - [`bnn_pynq`]: Xilinx BNN-PYNQ's packed parameter files (LFC-W1A1, LFC-W1A2, CNV-W1A1);
//! - [`onnx`]: FINN/Brevitas ONNX graphs of binary MLPs (e.g. TFC-W1A1).

pub mod bnn_pynq;
pub mod onnx;
pub mod onnx_proto;

use bnnforge_model::{Error, InputSpec, Layer, Op, Param, Result, Shape};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// A BNN-PYNQ parameter directory (L-P-weights.bin, L-P-thres.bin)
    BnnPynq {
        /// the directory holding the .bin files
        dir: PathBuf,
        /// the network: lfc-w1a1, lfc-w1a2 or cnv-w1a1
        #[arg(long)]
        arch: String,
        /// where to write the network YAML (its .safetensors goes beside it)
        #[arg(long)]
        out: PathBuf,
    },
    /// A FINN ONNX graph of a binary MLP (MatMul, BatchNorm, MultiThreshold, TopK)
    Onnx {
        /// the .onnx file
        model: PathBuf,
        /// where to write the network YAML (its .safetensors goes beside it)
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: ImportCommand) -> Result<()> {
    let (net, out) = match cmd {
        ImportCommand::BnnPynq { dir, arch, out } => {
            let arch = bnn_pynq::Arch::parse(&arch)?;
            (bnn_pynq::import(&dir, arch)?, out)
        }
        ImportCommand::Onnx { model, out } => {
            let name = name_from_path(&out)?;
            (onnx::import(&model, &name)?, out)
        }
    };
    bnnforge_model::save(&net, &out)?;
    println!(
        "wrote {} ({} layers, input {:?}, output {} values)",
        out.display(),
        net.layers.len(),
        net.input.shape.dims(),
        net.output_shape().len()
    );
    Ok(())
}

/// A network name ([a-z0-9_-]+) from the output file's stem.
fn name_from_path(out: &Path) -> Result<String> {
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| Error::new("the output file needs a name").in_file(out))?;
    let name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(name)
}

/// The MNIST input of the imported networks: raw pixels, 8-bit unsigned, [1, 28, 28].
pub(crate) fn mnist_input() -> InputSpec {
    InputSpec {
        shape: Shape::map(1, 28, 28),
        bits: 8,
        signed: false,
    }
}

/// A layer with an explicit input.
pub(crate) fn layer_from(name: &str, input: &str, op: Op) -> Layer {
    Layer {
        name: name.to_string(),
        inputs: vec![input.to_string()],
        op,
    }
}

/// `dense` with ±1 weights `[out, in]` (row-major) and no bias.
pub(crate) fn dense(name: &str, out: usize, inputs: usize, weight: Vec<i8>) -> Op {
    debug_assert_eq!(weight.len(), out * inputs);
    Op::Dense {
        out,
        weight: Param::new(format!("{name}.w"), vec![out, inputs], weight),
        bias: None,
    }
}

/// `threshold` with `per` thresholds per channel (`[C, per]`, row-major) and an optional
/// flip per channel (left out when no channel flips).
pub(crate) fn threshold(name: &str, bits: u32, per: usize, t: Vec<i64>, flip: Vec<u8>) -> Op {
    let c = t.len() / per;
    debug_assert_eq!(per, (1usize << bits) - 1);
    let flip = if flip.iter().any(|&f| f != 0) {
        Some(Param::new(format!("{name}.f"), vec![c], flip))
    } else {
        None
    };
    Op::Threshold {
        bits,
        thresholds: Param::new(format!("{name}.t"), vec![c, per], t),
        flip,
    }
}
