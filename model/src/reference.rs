//! A plain implementation of format 1, written straight from the spec's text with no
//! packing, no layout change and no precomputation. It is slow and obviously right; the
//! tests hold the fast [`crate::Model`] to it on random networks.
//!
//! Values are i64 in C, H, W order; binary values are −1 and +1.

use crate::kernels::threshold_count;
use crate::network::{Network, Op, Src};

/// Every layer's values of one frame, in layer order.
pub fn eval_layers(net: &Network, x: &[i64]) -> Vec<Vec<i64>> {
    let mut vals: Vec<Option<Vec<i64>>> = vec![None; net.layers.len()];
    for &i in net.order() {
        let layer = &net.layers[i];
        let info = &net.info()[i];
        let operands: Vec<&[i64]> = info
            .srcs
            .iter()
            .map(|s| match *s {
                Src::Input => x,
                Src::Layer(j) => vals[j].as_deref().expect("topological order"),
            })
            .collect();
        let (ishape, ikind) = net.src_shape_kind(info.srcs[0]);
        let (c, h, w) = (ishape.c, ishape.h, ishape.w);
        let o = info.shape;
        let xin = operands[0];
        let y: Vec<i64> = match &layer.op {
            Op::Dense { out, weight, bias } => {
                let n = xin.len();
                (0..*out)
                    .map(|r| {
                        let s: i64 = (0..n).map(|j| weight.data[r * n + j] as i64 * xin[j]).sum();
                        s + bias.as_ref().map_or(0, |b| b.data[r])
                    })
                    .collect()
            }
            Op::Conv {
                out,
                kernel: k,
                stride: s,
                padding: p,
                pad_value,
                weight,
                bias,
            } => {
                let pad = if ikind.is_binary() {
                    *pad_value as i64
                } else {
                    0
                };
                let mut y = Vec::new();
                for oc in 0..*out {
                    for oy in 0..o.h {
                        for ox in 0..o.w {
                            let mut acc = bias.as_ref().map_or(0, |b| b.data[oc]);
                            for ic in 0..c {
                                for ky in 0..*k {
                                    for kx in 0..*k {
                                        let iy = (oy * s + ky) as i64 - *p as i64;
                                        let ix = (ox * s + kx) as i64 - *p as i64;
                                        let v =
                                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64
                                            {
                                                pad
                                            } else {
                                                xin[(ic * h + iy as usize) * w + ix as usize]
                                            };
                                        acc += weight.data[((oc * c + ic) * k + ky) * k + kx]
                                            as i64
                                            * v;
                                    }
                                }
                            }
                            y.push(acc);
                        }
                    }
                }
                y
            }
            Op::Threshold {
                bits,
                thresholds,
                flip,
            } => {
                let count = thresholds.dims[1];
                let per_channel = if ishape.is_map { h * w } else { 1 };
                xin.iter()
                    .enumerate()
                    .map(|(idx, &v)| {
                        let ch = idx / per_channel;
                        let f = flip.as_ref().is_some_and(|f| f.data[ch] == 1);
                        let n =
                            threshold_count(v, &thresholds.data[ch * count..(ch + 1) * count], f)
                                as i64;
                        if *bits == 1 {
                            if n == 1 {
                                1
                            } else {
                                -1
                            }
                        } else {
                            n
                        }
                    })
                    .collect()
            }
            Op::Add => (0..xin.len())
                .map(|i| operands.iter().map(|v| v[i]).sum())
                .collect(),
            Op::MaxPool {
                kernel: k,
                stride: s,
            } => {
                let mut y = Vec::new();
                for ch in 0..c {
                    for oy in 0..o.h {
                        for ox in 0..o.w {
                            let mut m = i64::MIN;
                            for ky in 0..*k {
                                for kx in 0..*k {
                                    m = m.max(xin[(ch * h + oy * s + ky) * w + ox * s + kx]);
                                }
                            }
                            y.push(m);
                        }
                    }
                }
                y
            }
            Op::SumPool => (0..c)
                .map(|ch| xin[ch * h * w..(ch + 1) * h * w].iter().sum())
                .collect(),
        };
        debug_assert_eq!(y.len(), o.len());
        vals[i] = Some(y);
    }
    vals.into_iter()
        .map(|v| v.expect("every layer evaluated"))
        .collect()
}

/// The output of one frame.
pub fn eval(net: &Network, x: &[i64]) -> Vec<i64> {
    eval_layers(net, x).swap_remove(net.output_index())
}
