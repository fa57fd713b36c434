//! Per-layer statistics of a network: what `bnnforge info` prints.

use crate::kernels::int_width;
use crate::network::{Kind, Network, Op, Shape};

/// What one layer costs and needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerStats {
    pub name: String,
    pub op: &'static str,
    pub inputs: Vec<String>,
    pub in_shape: Shape,
    pub out_shape: Shape,
    pub out_kind: Kind,
    /// binary or integer multiply-accumulates per frame (dense and conv)
    pub macs: u64,
    /// whether the MACs are binary (XNOR-popcount) ones
    pub binary_macs: bool,
    /// bits of weights, biases, thresholds and flips, each at the width it needs
    pub param_bits: u64,
    /// accumulator width (dense, conv): (bits, signed)
    pub acc_width: Option<(u32, bool)>,
    /// width of each output value: (bits, signed); 1 bit for binary
    pub out_width: (u32, bool),
}

/// Statistics of every layer, in layer order.
pub fn layer_stats(net: &Network) -> Vec<LayerStats> {
    net.layers
        .iter()
        .zip(net.info())
        .map(|(l, info)| {
            let (in_shape, in_kind) = net.src_shape_kind(info.srcs[0]);
            let o = info.shape;
            let values_bits = |v: &[i64]| -> u64 {
                match (v.iter().min(), v.iter().max()) {
                    (Some(&lo), Some(&hi)) => {
                        int_width(lo as i128, hi as i128).0 as u64 * v.len() as u64
                    }
                    _ => 0,
                }
            };
            let (macs, param_bits) = match &l.op {
                Op::Dense { out, weight, bias } => (
                    (*out * in_shape.len()) as u64,
                    weight.data.len() as u64 + bias.as_ref().map_or(0, |b| values_bits(&b.data)),
                ),
                Op::Conv {
                    out,
                    kernel,
                    weight,
                    bias,
                    ..
                } => (
                    (o.pixels() * out * in_shape.c * kernel * kernel) as u64,
                    weight.data.len() as u64 + bias.as_ref().map_or(0, |b| values_bits(&b.data)),
                ),
                Op::Threshold {
                    thresholds, flip, ..
                } => {
                    // a threshold needs no more bits than the values it is compared with, plus one
                    // for "beyond the range"
                    let w = in_kind.width().0 as u64 + 1;
                    (
                        0,
                        thresholds.data.len() as u64 * w
                            + flip.as_ref().map_or(0, |f| f.data.len() as u64),
                    )
                }
                Op::Add | Op::MaxPool { .. } | Op::SumPool => (0, 0),
            };
            LayerStats {
                name: l.name.clone(),
                op: l.op.name(),
                inputs: l.inputs.clone(),
                in_shape,
                out_shape: o,
                out_kind: info.kind,
                macs,
                binary_macs: in_kind.is_binary(),
                param_bits,
                acc_width: info.acc.map(|(lo, hi)| int_width(lo as i128, hi as i128)),
                out_width: info.kind.width(),
            }
        })
        .collect()
}
