//! A small float (f64) evaluator of ONNX graphs for the ops the importer supports: the
//! reference the imported integer networks are checked against. It interprets the graph
//! generically (numpy broadcasting, the ONNX and QONNX definitions of each op) and shares
//! nothing with the importer's folding but the protobuf messages.
//!
//! Batch size 1. Conv/MaxPool: 2-D, group 1, any kernel, stride, padding; MaxPool pads
//! with −∞. MultiThreshold: out_scale·#{k : x ≥ t[c][k]} + out_bias (NCHW or NHWC).
//! Quant: (clip(round(x/s + z), lo, hi) − z)·s. BipolarQuant: s if x ≥ 0 else −s.

use super::onnx_proto::{ModelProto, NodeProto};
use std::collections::HashMap;

/// A dense tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

type Res<T> = std::result::Result<T, String>;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

fn attr_i(n: &NodeProto, k: &str, d: i64) -> i64 {
    n.attr(k).map_or(d, |a| a.i)
}
fn attr_f(n: &NodeProto, k: &str, d: f64) -> f64 {
    n.attr(k).map_or(d, |a| a.f as f64)
}
fn attr_ints(n: &NodeProto, k: &str) -> Option<Vec<i64>> {
    n.attr(k).map(|a| a.ints.clone())
}
fn attr_s(n: &NodeProto, k: &str, d: &str) -> String {
    n.attr(k)
        .map_or(d.to_string(), |a| String::from_utf8_lossy(&a.s).into())
}

fn bcast(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Res<Tensor> {
    let r = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; r - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let mut shape = Vec::with_capacity(r);
    for i in 0..r {
        if sa[i] != sb[i] && sa[i] != 1 && sb[i] != 1 {
            return Err(format!(
                "shapes {:?} and {:?} do not broadcast",
                a.shape, b.shape
            ));
        }
        shape.push(sa[i].max(sb[i]));
    }
    let n = numel(&shape);
    let mut data = Vec::with_capacity(n);
    for j in 0..n {
        let (mut rem, mut ia, mut ib, mut st_a, mut st_b) = (j, 0, 0, 1, 1);
        for d in (0..r).rev() {
            let i = rem % shape[d];
            rem /= shape[d];
            if sa[d] != 1 {
                ia += i * st_a;
            }
            if sb[d] != 1 {
                ib += i * st_b;
            }
            st_a *= sa[d];
            st_b *= sb[d];
        }
        data.push(f(a.data[ia], b.data[ib]));
    }
    Ok(Tensor { shape, data })
}

/// Runs `model` on `input` (its one graph input); every computed tensor by name.
pub fn eval(model: &ModelProto, input: Tensor) -> Res<HashMap<String, Tensor>> {
    let g = model.graph.as_ref().ok_or("no graph")?;
    let mut env: HashMap<String, Tensor> = HashMap::new();
    for t in &g.initializer {
        env.insert(
            t.name.clone(),
            Tensor {
                shape: t.shape()?,
                data: t.values_f64()?,
            },
        );
    }
    let gin = g
        .input
        .iter()
        .find(|i| !env.contains_key(&i.name))
        .ok_or("no graph input")?;
    env.insert(gin.name.clone(), input);
    for n in &g.node {
        let outs = node(n, &env).map_err(|e| format!("node '{}' ({}): {e}", n.name, n.op_type))?;
        for (name, t) in n.output.iter().zip(outs) {
            env.insert(name.clone(), t);
        }
    }
    Ok(env)
}

fn node(n: &NodeProto, env: &HashMap<String, Tensor>) -> Res<Vec<Tensor>> {
    let inp = |i: usize| -> Res<&Tensor> {
        let name = n.input.get(i).ok_or(format!("no input {i}"))?;
        env.get(name).ok_or(format!("input '{name}' not computed"))
    };
    let has = |i: usize| n.input.get(i).is_some_and(|s| !s.is_empty());
    let one = |t: Tensor| Ok(vec![t]);
    match n.op_type.as_str() {
        "Identity" => one(inp(0)?.clone()),
        "Reshape" => {
            let x = inp(0)?;
            let target = &inp(1)?.data;
            let total = numel(&x.shape);
            let mut shape: Vec<usize> = Vec::new();
            let mut infer = None;
            for (i, &t) in target.iter().enumerate() {
                match t as i64 {
                    -1 => {
                        infer = Some(i);
                        shape.push(1)
                    }
                    0 => shape.push(x.shape[i]),
                    t => shape.push(t as usize),
                }
            }
            if let Some(i) = infer {
                shape[i] = total / numel(&shape);
            }
            if numel(&shape) != total {
                return Err(format!("cannot reshape {:?} to {target:?}", x.shape));
            }
            one(Tensor {
                shape,
                data: x.data.clone(),
            })
        }
        "Flatten" => {
            let x = inp(0)?;
            let r = x.shape.len() as i64;
            let a = attr_i(n, "axis", 1);
            let a = (if a < 0 { a + r } else { a }) as usize;
            one(Tensor {
                shape: vec![numel(&x.shape[..a]), numel(&x.shape[a..])],
                data: x.data.clone(),
            })
        }
        "Squeeze" | "Unsqueeze" => {
            let x = inp(0)?;
            let axes: Vec<i64> = match attr_ints(n, "axes") {
                Some(a) => a,
                None if has(1) => inp(1)?.data.iter().map(|&v| v as i64).collect(),
                None => vec![],
            };
            let squeeze = n.op_type == "Squeeze";
            let rank = x.shape.len() + if squeeze { 0 } else { axes.len() };
            let norm: Vec<usize> = axes
                .iter()
                .map(|&a| (if a < 0 { a + rank as i64 } else { a }) as usize)
                .collect();
            let shape: Vec<usize> = if squeeze {
                (0..rank)
                    .filter(|i| !(norm.contains(i) || norm.is_empty() && x.shape[*i] == 1))
                    .map(|i| x.shape[i])
                    .collect()
            } else {
                let mut it = x.shape.iter();
                (0..rank)
                    .map(|i| {
                        if norm.contains(&i) {
                            1
                        } else {
                            *it.next().unwrap()
                        }
                    })
                    .collect()
            };
            one(Tensor {
                shape,
                data: x.data.clone(),
            })
        }
        "Transpose" => {
            let x = inp(0)?;
            let r = x.shape.len();
            let perm: Vec<usize> = attr_ints(n, "perm")
                .map(|p| p.iter().map(|&v| v as usize).collect())
                .unwrap_or_else(|| (0..r).rev().collect());
            let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
            let mut st = vec![1; r];
            for d in (0..r.saturating_sub(1)).rev() {
                st[d] = st[d + 1] * x.shape[d + 1];
            }
            let data = (0..x.data.len())
                .map(|j| {
                    let (mut rem, mut k) = (j, 0);
                    for d in (0..r).rev() {
                        k += (rem % shape[d]) * st[perm[d]];
                        rem /= shape[d];
                    }
                    x.data[k]
                })
                .collect();
            one(Tensor { shape, data })
        }
        "Relu" => {
            let x = inp(0)?;
            one(Tensor {
                shape: x.shape.clone(),
                data: x.data.iter().map(|&v| v.max(0.0)).collect(),
            })
        }
        "Add" => one(bcast(inp(0)?, inp(1)?, |a, b| a + b)?),
        "Sub" => one(bcast(inp(0)?, inp(1)?, |a, b| a - b)?),
        "Mul" => one(bcast(inp(0)?, inp(1)?, |a, b| a * b)?),
        "Div" => one(bcast(inp(0)?, inp(1)?, |a, b| a / b)?),
        "BatchNormalization" => {
            let x = inp(0)?;
            let (g, b, m, v) = (inp(1)?, inp(2)?, inp(3)?, inp(4)?);
            let eps = attr_f(n, "epsilon", 1e-5);
            let c = x.shape[1];
            let inner = numel(&x.shape[2..]);
            let data = x
                .data
                .iter()
                .enumerate()
                .map(|(j, &xv)| {
                    let ch = (j / inner) % c;
                    (xv - m.data[ch]) / (v.data[ch] + eps).sqrt() * g.data[ch] + b.data[ch]
                })
                .collect();
            one(Tensor {
                shape: x.shape.clone(),
                data,
            })
        }
        "MatMul" | "Gemm" => {
            let (x, w) = (inp(0)?, inp(1)?);
            let tb = n.op_type == "Gemm" && attr_i(n, "transB", 0) != 0;
            let (k, m) = if tb {
                (w.shape[1], w.shape[0])
            } else {
                (w.shape[0], w.shape[1])
            };
            let rows = x.data.len() / k;
            if x.shape.last() != Some(&k) {
                return Err(format!("{:?} times {:?}", x.shape, w.shape));
            }
            let alpha = if n.op_type == "Gemm" {
                attr_f(n, "alpha", 1.0)
            } else {
                1.0
            };
            let mut data = vec![0.0; rows * m];
            for r in 0..rows {
                for o in 0..m {
                    let mut s = 0.0;
                    for i in 0..k {
                        let wv = if tb {
                            w.data[o * k + i]
                        } else {
                            w.data[i * m + o]
                        };
                        s += x.data[r * k + i] * wv;
                    }
                    data[r * m + o] = alpha * s;
                }
            }
            let mut shape = x.shape.clone();
            *shape.last_mut().unwrap() = m;
            let mut y = Tensor { shape, data };
            if n.op_type == "Gemm" && has(2) {
                let beta = attr_f(n, "beta", 1.0);
                let c = inp(2)?;
                y = bcast(&y, c, |a, b| a + beta * b)?;
            }
            one(y)
        }
        "Conv" | "MaxPool" => {
            let x = inp(0)?;
            let conv = n.op_type == "Conv";
            let [1, c, h, w] = x.shape[..] else {
                return Err(format!("input {:?}", x.shape));
            };
            let (o, k) = if conv {
                let ws = &inp(1)?.shape;
                (ws[0], ws[2])
            } else {
                (
                    c,
                    attr_ints(n, "kernel_shape").ok_or("no kernel")?[0] as usize,
                )
            };
            let s = attr_ints(n, "strides").map_or(1, |v| v[0] as usize);
            let p = attr_ints(n, "pads").map_or(0, |v| v[0] as usize);
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let mut data = vec![0.0; o * oh * ow];
            for oc in 0..o {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = if conv { 0.0 } else { f64::NEG_INFINITY };
                        let chans = if conv { 0..c } else { oc..oc + 1 };
                        for ic in chans {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let (iy, ix) = (
                                        (y * s + ky) as i64 - p as i64,
                                        (xx * s + kx) as i64 - p as i64,
                                    );
                                    let inside = iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < h
                                        && (ix as usize) < w;
                                    let v = if inside {
                                        x.data[(ic * h + iy as usize) * w + ix as usize]
                                    } else if conv {
                                        0.0
                                    } else {
                                        f64::NEG_INFINITY
                                    };
                                    if conv {
                                        acc += v * inp(1)?.data[((oc * c + ic) * k + ky) * k + kx];
                                    } else {
                                        acc = acc.max(v);
                                    }
                                }
                            }
                        }
                        if conv && has(2) {
                            acc += inp(2)?.data[oc];
                        }
                        data[(oc * oh + y) * ow + xx] = acc;
                    }
                }
            }
            one(Tensor {
                shape: vec![1, o, oh, ow],
                data,
            })
        }
        "GlobalAveragePool" | "ReduceSum" | "ReduceMean" => {
            let x = inp(0)?;
            let [1, c, h, w] = x.shape[..] else {
                return Err(format!("input {:?}", x.shape));
            };
            let keep = n.op_type == "GlobalAveragePool" || attr_i(n, "keepdims", 1) != 0;
            let mean = n.op_type != "ReduceSum";
            let data = (0..c)
                .map(|ch| {
                    let s: f64 = x.data[ch * h * w..(ch + 1) * h * w].iter().sum();
                    if mean {
                        s / (h * w) as f64
                    } else {
                        s
                    }
                })
                .collect();
            one(Tensor {
                shape: if keep { vec![1, c, 1, 1] } else { vec![1, c] },
                data,
            })
        }
        "MultiThreshold" => {
            let (x, t) = (inp(0)?, inp(1)?);
            let (rows, per) = (t.shape[0], t.shape[1]);
            if x.shape.len() != 2 && x.shape.len() != 4 {
                return Err(format!(
                    "input of shape {:?} (only NC and NCHW/NHWC)",
                    x.shape
                ));
            }
            let nhwc = attr_s(n, "data_layout", "NCHW") == "NHWC";
            let r = x.shape.len();
            let (c, inner) = if nhwc {
                (x.shape[r - 1], 1)
            } else {
                (x.shape[1], numel(&x.shape[2..]))
            };
            let (sc, bi) = (attr_f(n, "out_scale", 1.0), attr_f(n, "out_bias", 0.0));
            let data = x
                .data
                .iter()
                .enumerate()
                .map(|(j, &v)| {
                    let ch = if rows == 1 { 0 } else { (j / inner) % c };
                    let cnt = t.data[ch * per..(ch + 1) * per]
                        .iter()
                        .filter(|&&tt| v >= tt)
                        .count();
                    sc * cnt as f64 + bi
                })
                .collect();
            one(Tensor {
                shape: x.shape.clone(),
                data,
            })
        }
        "BipolarQuant" => one(bcast(
            inp(0)?,
            inp(1)?,
            |x, s| if x >= 0.0 { s } else { -s },
        )?),
        "Quant" | "IntQuant" => {
            let x = inp(0)?;
            let bits = inp(3)?.data[0] as u32;
            let signed = attr_i(n, "signed", 1) != 0;
            let narrow = attr_i(n, "narrow", 0) != 0;
            let (lo, hi) = if signed {
                let lo = -(2f64.powi(bits as i32 - 1));
                (
                    if narrow { lo + 1.0 } else { lo },
                    2f64.powi(bits as i32 - 1) - 1.0,
                )
            } else {
                let hi = 2f64.powi(bits as i32) - 1.0;
                (0.0, if narrow { hi - 1.0 } else { hi })
            };
            let mode = attr_s(n, "rounding_mode", "ROUND");
            // u = x/s + z, then (clip(round(u)) − z)·s, with s and z broadcast
            let s = bcast(x, inp(1)?, |_, s| s)?;
            let z = bcast(x, inp(2)?, |_, z| z)?;
            let data = (0..x.data.len())
                .map(|j| {
                    let u = x.data[j] / s.data[j] + z.data[j];
                    let r = match mode.as_str() {
                        "CEIL" => u.ceil(),
                        "FLOOR" => u.floor(),
                        _ => u.round_ties_even(),
                    };
                    (r.clamp(lo, hi) - z.data[j]) * s.data[j]
                })
                .collect();
            one(Tensor {
                shape: x.shape.clone(),
                data,
            })
        }
        "TopK" => {
            let x = inp(0)?;
            let m = *x.shape.last().unwrap();
            let mut best = 0;
            for i in 1..m {
                if x.data[i] > x.data[best] {
                    best = i;
                }
            }
            Ok(vec![
                Tensor {
                    shape: vec![1, 1],
                    data: vec![x.data[best]],
                },
                Tensor {
                    shape: vec![1, 1],
                    data: vec![best as f64],
                },
            ])
        }
        op => Err(format!("op {op} is not evaluated")),
    }
}
