//! FINN/Brevitas ONNX graphs of binary MLPs (such as FINN's TFC-W1A1) as exactly
//! equivalent format-1 networks on raw 8-bit pixels.
//!
//! The graph is walked node by node (ONNX keeps nodes in topological order) with a
//! symbolic value per tensor:
//! - `Pixels`: an elementwise function of the raw input pixel, kept as its value for each
//!   of the 256 pixel values (the graph's float input is taken to carry pixels 0..255);
//! - `Bits`: the ±1 output of a threshold layer of the format-1 network;
//! - `Acc`: a_c·y_c + b_c per channel c, with y the integer accumulator Σ w·x of a dense
//!   layer (MatMul by a ±1 matrix), a and b folded from the scalar or per-channel
//!   Mul/Div/Add/Sub and BatchNormalization nodes that follow it;
//! - `Index`: the TopK(1) index of an `Acc` (the prediction).
//!
//! A MultiThreshold (FINN, x ≥ t, bipolar output 2n − 1) or BipolarQuant (x ≥ 0) on
//! `Pixels` becomes a threshold on the raw pixel: the first pixel value whose table entry
//! reaches t (the table must be monotone). On `Acc` it becomes a threshold on y:
//! a·y + b ≥ t ⇔ y ≥ ⌈(t − b)/a⌉ for a > 0, y ≤ ⌊(t − b)/a⌋ (flip) for a < 0, and for
//! a = 0 a constant: threshold i64::MIN (always +1) or i64::MAX (always −1). BatchNorm
//! folds as a' = a·γ/s, b' = (b − μ)·γ/s + β with s = √(var + ε). The quotient is worked
//! out in f64; a quotient within 1e-9 of an integer without being one is rejected
//! rather than guessed (the TFC's nearest is 0.0017 away).
//! The graph's output is the TopK index or the scores of the last dense layer: both
//! become that layer's integer y, which needs the last affine map to be the same for
//! every class with a positive gain (the argmax is then unchanged).
//!
//! Everything else (other ops, multi-bit activations, non-±1 weights, a non-binarized
//! first layer) is rejected with a one-line error naming the node.

use super::onnx_proto::{ModelProto, NodeProto, FLOAT};
use super::{dense, layer_from, threshold};
use bnnforge_model::network::INPUT;
use bnnforge_model::{Error, InputSpec, Network, Result, Shape};
use std::collections::HashMap;
use std::path::Path;

/// Largest ONNX file read.
const MAX_BYTES: u64 = 1 << 30;

#[derive(Clone, Debug)]
enum Val {
    Const {
        shape: Vec<usize>,
        data: Vec<f64>,
    },
    Pixels {
        shape: Vec<usize>,
        table: Vec<f64>,
    },
    Bits {
        shape: Vec<usize>,
        layer: String,
    },
    Acc {
        shape: Vec<usize>,
        layer: String,
        a: Vec<f64>,
        b: Vec<f64>,
    },
    TopKValues,
    Index {
        layer: String,
    },
}

impl Val {
    fn shape(&self) -> Option<&[usize]> {
        match self {
            Val::Const { shape, .. }
            | Val::Pixels { shape, .. }
            | Val::Bits { shape, .. }
            | Val::Acc { shape, .. } => Some(shape),
            _ => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Val::Const { .. } => "a constant",
            Val::Pixels { .. } => "the (not yet binarized) input",
            Val::Bits { .. } => "a binary activation",
            Val::Acc { .. } => "a dense layer's accumulator",
            Val::TopKValues => "TopK values",
            Val::Index { .. } => "a TopK index",
        }
    }
}

type Res<T> = std::result::Result<T, String>;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Imports `path` as the format-1 network `name`.
pub fn import(path: &Path, name: &str) -> Result<Network> {
    let err = |m: String| Error::new(m).in_file(path);
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(err("is a directory, expected an .onnx file".into()));
    }
    if meta.len() > MAX_BYTES {
        return Err(err(format!("larger than {MAX_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let model = ModelProto::parse(&bytes).map_err(err)?;
    convert(&model, name).map_err(err)
}

struct Builder {
    vals: HashMap<String, Val>,
    layers: Vec<bnnforge_model::Layer>,
    dense_count: usize,
    /// the format-1 output length of each emitted layer
    lens: HashMap<String, usize>,
}

fn convert(model: &ModelProto, name: &str) -> Res<Network> {
    let g = model.graph.as_ref().ok_or("no graph")?;
    let mut b = Builder {
        vals: HashMap::new(),
        layers: Vec::new(),
        dense_count: 0,
        lens: HashMap::new(),
    };
    for t in &g.initializer {
        let data = t.values_f64().map_err(|e| format!("initializer {e}"))?;
        b.vals.insert(
            t.name.clone(),
            Val::Const {
                shape: t.shape()?,
                data,
            },
        );
    }
    let inputs: Vec<_> = g
        .input
        .iter()
        .filter(|i| !b.vals.contains_key(&i.name))
        .collect();
    if inputs.len() != 1 {
        return Err(format!(
            "the graph has {} inputs, only graphs with one input are supported",
            inputs.len()
        ));
    }
    let gin = inputs[0];
    let tt = gin
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| format!("graph input '{}' is not a tensor", gin.name))?;
    if tt.elem_type != FLOAT {
        return Err(format!(
            "graph input '{}' has element type {}, expected float",
            gin.name, tt.elem_type
        ));
    }
    let dims: Vec<i64> = tt
        .shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let in_shape = match dims.as_slice() {
        [n, c, h, w] if *n <= 1 && *c > 0 && *h > 0 && *w > 0 => {
            Shape::map(*c as usize, *h as usize, *w as usize)
        }
        [n, f] if *n <= 1 && *f > 0 => Shape::vector(*f as usize),
        _ => {
            return Err(format!(
                "graph input '{}' has shape {dims:?}, expected [1, C, H, W] or [1, F]",
                gin.name
            ))
        }
    };
    let mut onnx_shape = vec![1usize];
    onnx_shape.extend(in_shape.dims());
    b.vals.insert(
        gin.name.clone(),
        Val::Pixels {
            shape: onnx_shape,
            table: (0..256).map(|p| p as f64).collect(),
        },
    );

    for node in &g.node {
        b.node(node).map_err(|e| {
            let who = if node.name.is_empty() {
                node.output.first().cloned().unwrap_or_default()
            } else {
                node.name.clone()
            };
            format!("node '{who}' ({}): {e}", node.op_type)
        })?;
    }

    if g.output.len() != 1 {
        return Err(format!(
            "the graph has {} outputs, only graphs with one output are supported",
            g.output.len()
        ));
    }
    let oname = &g.output[0].name;
    let out = match b.vals.get(oname) {
        Some(Val::Index { layer }) => layer.clone(),
        Some(Val::Bits { layer, .. }) => layer.clone(),
        Some(Val::Acc {
            layer, a, b: off, ..
        }) => {
            uniform_positive(a, off)?;
            layer.clone()
        }
        Some(v) => {
            return Err(format!(
                "the graph output '{oname}' is {}, expected class scores, bits or a TopK index",
                v.kind()
            ))
        }
        None => return Err(format!("the graph output '{oname}' is never computed")),
    };
    let input = InputSpec {
        shape: in_shape,
        bits: 8,
        signed: false,
    };
    Network::new(name.to_string(), input, b.layers, out)
        .map_err(|e| format!("the graph does not make a valid network: {e}"))
}

/// The final affine map a·y + b must keep the argmax of y: one gain > 0 and one offset
/// for every class.
fn uniform_positive(a: &[f64], b: &[f64]) -> Res<()> {
    if a.iter().any(|&x| x != a[0]) || b.iter().any(|&x| x != b[0]) || a[0].is_nan() {
        return Err(
            "the class scores have a different scale or offset per class, which can \
                    reorder them"
                .into(),
        );
    }
    if a[0] <= 0.0 {
        return Err(format!(
            "the class scores have gain {}, which does not keep their order",
            a[0]
        ));
    }
    Ok(())
}

fn attr_f(node: &NodeProto, name: &str, default: f64) -> f64 {
    node.attr(name).map_or(default, |a| a.f as f64)
}
fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attr(name).map_or(default, |a| a.i)
}

impl Builder {
    fn get(&self, name: &str) -> Res<&Val> {
        self.vals
            .get(name)
            .ok_or_else(|| format!("input '{name}' is not computed before it is used"))
    }

    fn input(&self, node: &NodeProto, i: usize) -> Res<&Val> {
        let n = node
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("missing input {i}"))?;
        self.get(n)
    }

    fn constant(&self, node: &NodeProto, i: usize) -> Res<(Vec<usize>, Vec<f64>)> {
        match self.input(node, i)? {
            Val::Const { shape, data } => Ok((shape.clone(), data.clone())),
            v => Err(format!("input {i} must be a constant, it is {}", v.kind())),
        }
    }

    fn set(&mut self, node: &NodeProto, i: usize, v: Val) -> Res<()> {
        let n = node
            .output
            .get(i)
            .ok_or_else(|| format!("missing output {i}"))?;
        self.vals.insert(n.clone(), v);
        Ok(())
    }

    fn node(&mut self, node: &NodeProto) -> Res<()> {
        let std_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        let finn = node.domain.starts_with("finn") || node.domain.starts_with("qonnx");
        match (node.op_type.as_str(), std_domain, finn) {
            ("Identity", true, _) => {
                let v = self.input(node, 0)?.clone();
                self.set(node, 0, v)
            }
            ("Reshape", true, _) => {
                let (_, target) = self.constant(node, 1)?;
                let v = self.input(node, 0)?.clone();
                let old = v.shape().ok_or("cannot reshape this value")?.to_vec();
                let new = reshape_dims(&old, &target)?;
                self.set(node, 0, with_shape(v, new)?)
            }
            ("Flatten", true, _) => {
                let v = self.input(node, 0)?.clone();
                let old = v.shape().ok_or("cannot flatten this value")?.to_vec();
                let axis = attr_i(node, "axis", 1);
                let axis = if axis < 0 {
                    axis + old.len() as i64
                } else {
                    axis
                };
                if axis < 0 || axis as usize > old.len() {
                    return Err(format!("axis {axis} out of range"));
                }
                let (l, r) = old.split_at(axis as usize);
                self.set(node, 0, with_shape(v, vec![numel(l), numel(r)])?)
            }
            ("Squeeze" | "Unsqueeze", true, _) => {
                let axes: Vec<i64> = if let Some(a) = node.attr("axes") {
                    a.ints.clone()
                } else if node.input.len() > 1 {
                    self.constant(node, 1)?
                        .1
                        .iter()
                        .map(|&x| x as i64)
                        .collect()
                } else {
                    Vec::new()
                };
                let v = self.input(node, 0)?.clone();
                let old = v.shape().ok_or("cannot reshape this value")?.to_vec();
                let new = if node.op_type == "Squeeze" {
                    squeeze(&old, &axes)?
                } else {
                    unsqueeze(&old, &axes)?
                };
                self.set(node, 0, with_shape(v, new)?)
            }
            ("Add" | "Sub" | "Mul" | "Div", true, _) => {
                let v = self.elementwise(node)?;
                self.set(node, 0, v)
            }
            ("BatchNormalization", true, _) => {
                let v = self.batchnorm(node)?;
                self.set(node, 0, v)
            }
            ("MatMul", true, _) => {
                let v = self.matmul(node)?;
                self.set(node, 0, v)
            }
            ("MultiThreshold", _, true) => {
                let (tshape, t) = self.constant(node, 1)?;
                let per = match tshape.as_slice() {
                    [_, p] => *p,
                    s => return Err(format!("thresholds of shape {s:?}, expected [C, B]")),
                };
                if per != 1 {
                    return Err(format!(
                        "{per} thresholds per channel (a multi-bit activation); only 1 is supported"
                    ));
                }
                let layout = node.attr("data_layout").map(|a| a.s.clone());
                if layout.is_some_and(|l| l != b"NCHW" && l != b"NC") {
                    return Err("only the NCHW data layout is supported".into());
                }
                let (scale, bias) = (
                    attr_f(node, "out_scale", 1.0),
                    attr_f(node, "out_bias", 0.0),
                );
                if scale != 2.0 || bias != -1.0 {
                    return Err(format!(
                        "output {scale}·n + {bias} is not bipolar (±1); only out_scale 2, out_bias -1 is supported"
                    ));
                }
                let v = self.binarize(node, &t)?;
                self.set(node, 0, v)
            }
            ("BipolarQuant", _, true) => {
                let (_, s) = self.constant(node, 1)?;
                if s.iter().any(|&x| x <= 0.0) {
                    return Err("a BipolarQuant scale must be positive".into());
                }
                if s.iter().any(|&x| x != 1.0) {
                    return Err("a BipolarQuant scale other than 1 is not supported".into());
                }
                let v = self.binarize(node, &[0.0])?;
                self.set(node, 0, v)
            }
            ("TopK", true, _) => {
                let (_, k) = self.constant(node, 1)?;
                if k != [1.0] {
                    return Err(format!("k = {k:?}; only TopK with k = 1 is supported"));
                }
                if attr_i(node, "largest", 1) != 1 {
                    return Err("only TopK of the largest value is supported".into());
                }
                let Val::Acc { shape, layer, a, b } = self.input(node, 0)?.clone() else {
                    return Err("TopK must take the last dense layer's scores".into());
                };
                let axis = attr_i(node, "axis", -1);
                let last = shape.len() as i64 - 1;
                if (axis != -1 && axis != last) || shape[shape.len() - 1] != a.len() {
                    return Err("TopK must run along the class axis".into());
                }
                uniform_positive(&a, &b)?;
                self.set(node, 0, Val::TopKValues)?;
                if node.output.len() > 1 {
                    self.set(node, 1, Val::Index { layer })?;
                }
                Ok(())
            }
            (op, _, _) => Err(format!(
                "unsupported op '{op}' (domain '{}'); supported: MatMul with ±1 weights, \
                 BatchNormalization, MultiThreshold/BipolarQuant, Add/Sub/Mul/Div by constants, \
                 Reshape/Flatten/Squeeze/Unsqueeze/Identity, TopK",
                node.domain
            )),
        }
    }

    /// Add/Sub/Mul/Div of a value and a constant.
    fn elementwise(&self, node: &NodeProto) -> Res<Val> {
        let op = node.op_type.as_str();
        let (x, y) = (self.input(node, 0)?, self.input(node, 1)?);
        // (value, constant shape, constant data, constant on the left)
        let (v, cs, cd, left) = match (x, y) {
            (v, Val::Const { shape, data }) if !matches!(v, Val::Const { .. }) => {
                (v.clone(), shape.clone(), data.clone(), false)
            }
            (Val::Const { shape, data }, v) if !matches!(v, Val::Const { .. }) => {
                (v.clone(), shape.clone(), data.clone(), true)
            }
            _ => return Err("exactly one operand must be a constant".into()),
        };
        if left && op == "Div" {
            return Err("division of a constant by a value is not supported".into());
        }
        // y = f(x, c)
        let apply = |xv: f64, c: f64| match (op, left) {
            ("Add", _) => xv + c,
            ("Mul", _) => xv * c,
            ("Sub", false) => xv - c,
            ("Sub", true) => c - xv,
            _ => xv / c,
        };
        match v {
            Val::Pixels { shape, table } => {
                if cd.len() != 1 || cs.len() > shape.len() {
                    return Err("only a scalar constant can act on the input pixels".into());
                }
                let c = cd[0];
                let table = table.iter().map(|&t| apply(t, c)).collect();
                Ok(Val::Pixels { shape, table })
            }
            Val::Acc {
                shape,
                layer,
                mut a,
                mut b,
            } => {
                let c = per_channel(&shape, &cs, &cd, a.len())?;
                for i in 0..a.len() {
                    let (ai, bi, ci) = (a[i], b[i], c[i]);
                    (a[i], b[i]) = match (op, left) {
                        ("Add", _) => (ai, bi + ci),
                        ("Mul", _) => (ai * ci, bi * ci),
                        ("Sub", false) => (ai, bi - ci),
                        ("Sub", true) => (-ai, ci - bi),
                        _ => (ai / ci, bi / ci),
                    };
                }
                Ok(Val::Acc { shape, layer, a, b })
            }
            other => Err(format!(
                "{op} on {} is not supported (only on the input or an accumulator)",
                other.kind()
            )),
        }
    }

    fn batchnorm(&self, node: &NodeProto) -> Res<Val> {
        if attr_i(node, "training_mode", 0) != 0 {
            return Err("training mode is not supported".into());
        }
        if node.output.iter().filter(|o| !o.is_empty()).count() > 1 {
            return Err("only the inference form (one output) is supported".into());
        }
        let Val::Acc {
            shape,
            layer,
            mut a,
            mut b,
        } = self.input(node, 0)?.clone()
        else {
            return Err("BatchNormalization must follow a dense layer (MatMul)".into());
        };
        if shape.len() < 2 || shape[1] != a.len() {
            return Err(format!(
                "the channel axis 1 of shape {shape:?} is not the {} neurons",
                a.len()
            ));
        }
        let eps = attr_f(node, "epsilon", 1e-5);
        let mut p = Vec::new();
        for i in 1..5 {
            let (s, d) = self.constant(node, i)?;
            if d.len() != a.len() || s.len() != 1 {
                return Err(format!(
                    "parameter {i} has shape {s:?}, expected [{}]",
                    a.len()
                ));
            }
            p.push(d);
        }
        let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
        for c in 0..a.len() {
            let s = (var[c] + eps).sqrt();
            if !(s > 0.0 && s.is_finite()) {
                return Err(format!("channel {c}: variance {} gives no scale", var[c]));
            }
            let k = gamma[c] / s;
            a[c] *= k;
            b[c] = (b[c] - mean[c]) * k + beta[c];
        }
        Ok(Val::Acc { shape, layer, a, b })
    }

    fn matmul(&mut self, node: &NodeProto) -> Res<Val> {
        let (ws, w) = self.constant(node, 1)?;
        let x = self.input(node, 0)?.clone();
        let (xs, src) = match x {
            Val::Bits { shape, layer } => (shape, layer),
            Val::Pixels { .. } => {
                return Err(
                    "MatMul on the input before it is binarized is not supported \
                            (the first layer must take ±1 values)"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "MatMul on {} is not supported (its input must be ±1 values)",
                    other.kind()
                ))
            }
        };
        let [k, n] = ws[..] else {
            return Err(format!("weights of shape {ws:?}, expected [in, out]"));
        };
        if xs.last() != Some(&k) || numel(&xs) != k || self.lens.get(&src) != Some(&k) {
            return Err(format!(
                "input of shape {xs:?} does not match weights [{k}, {n}]"
            ));
        }
        if let Some(i) = w.iter().position(|&v| v != 1.0 && v != -1.0) {
            return Err(format!(
                "weight {} is {}: only ±1 weights are supported",
                i, w[i]
            ));
        }
        // ONNX stores [in, out]; format 1 wants [out, in]
        let mut wt = vec![0i8; k * n];
        for i in 0..k {
            for o in 0..n {
                wt[o * k + i] = w[i * n + o] as i8;
            }
        }
        let name = format!("fc{}", self.dense_count);
        self.dense_count += 1;
        self.layers
            .push(layer_from(&name, &src, dense(&name, n, k, wt)));
        self.lens.insert(name.clone(), n);
        let mut shape = xs.clone();
        *shape.last_mut().unwrap() = n;
        Ok(Val::Acc {
            shape,
            layer: name,
            a: vec![1.0; n],
            b: vec![0.0; n],
        })
    }

    /// value ≥ t[c] → +1, else −1, as a threshold layer.
    fn binarize(&mut self, node: &NodeProto, t: &[f64]) -> Res<Val> {
        match self.input(node, 0)?.clone() {
            Val::Pixels { shape, table } => {
                if t.iter().any(|&x| x != t[0]) {
                    return Err("different thresholds per input position are not supported".into());
                }
                let bits: Vec<bool> = table.iter().map(|&v| v >= t[0]).collect();
                let (thr, flip) = pixel_threshold(&bits)?;
                let name = "bin".to_string();
                self.layers.push(layer_from(
                    &name,
                    INPUT,
                    threshold(&name, 1, 1, vec![thr], vec![flip]),
                ));
                self.lens.insert(name.clone(), numel(&shape));
                Ok(Val::Bits { shape, layer: name })
            }
            Val::Acc { shape, layer, a, b } => {
                let n = a.len();
                if t.len() != 1 && t.len() != n {
                    return Err(format!("{} thresholds for {n} channels", t.len()));
                }
                let mut ts = Vec::with_capacity(n);
                let mut flips = Vec::with_capacity(n);
                for c in 0..n {
                    let tc = if t.len() == 1 { t[0] } else { t[c] };
                    let (thr, flip) =
                        fold_threshold(a[c], b[c], tc).map_err(|e| format!("channel {c}: {e}"))?;
                    ts.push(thr);
                    flips.push(flip);
                }
                let name = format!("t{}", &layer[2..]);
                self.layers
                    .push(layer_from(&name, &layer, threshold(&name, 1, 1, ts, flips)));
                self.lens.insert(name.clone(), n);
                Ok(Val::Bits { shape, layer: name })
            }
            other => Err(format!("thresholding {} is not supported", other.kind())),
        }
    }
}

/// The integer threshold of "a·y + b ≥ t" over integers y: (threshold, flip).
pub fn fold_threshold(a: f64, b: f64, t: f64) -> Res<(i64, u8)> {
    if !(a.is_finite() && b.is_finite() && t.is_finite()) {
        return Err(format!(
            "non-finite folded values (gain {a}, offset {b}, threshold {t})"
        ));
    }
    if a == 0.0 {
        // constant output
        return Ok(if b >= t { (i64::MIN, 0) } else { (i64::MAX, 0) });
    }
    let q = (t - b) / a;
    let r = q.round();
    if q != r && (q - r).abs() < 1e-9 * q.abs().max(1.0) {
        return Err(format!(
            "the folded threshold {q} is too close to an integer to decide in 64-bit floating point"
        ));
    }
    let to_i64 = |x: f64| {
        if x >= i64::MAX as f64 {
            i64::MAX
        } else if x <= i64::MIN as f64 {
            i64::MIN
        } else {
            x as i64
        }
    };
    Ok(if a > 0.0 {
        (to_i64(q.ceil()), 0)
    } else {
        (to_i64(q.floor()), 1)
    })
}

/// The pixel threshold giving `bits[p]` for every pixel value p: (threshold, flip).
fn pixel_threshold(bits: &[bool]) -> Res<(i64, u8)> {
    let ones: Vec<usize> = (0..bits.len()).filter(|&p| bits[p]).collect();
    let (Some(&lo), Some(&hi)) = (ones.first(), ones.last()) else {
        return Ok((i64::MAX, 0)); // never +1
    };
    if hi - lo + 1 != ones.len() {
        return Err("the input binarization is not one threshold on the pixel value".into());
    }
    if hi == bits.len() - 1 {
        Ok((lo as i64, 0)) // p ≥ lo (lo = 0: always)
    } else if lo == 0 {
        Ok((hi as i64, 1)) // p ≤ hi
    } else {
        Err("the input binarization is a band of pixel values, not one threshold".into())
    }
}

/// Per-channel values of a constant broadcast against an accumulator of shape `shape`
/// (channel axis: the one of size `n`, every other axis 1).
fn per_channel(shape: &[usize], cs: &[usize], cd: &[f64], n: usize) -> Res<Vec<f64>> {
    if cd.len() == 1 && cs.len() <= shape.len() {
        return Ok(vec![cd[0]; n]);
    }
    if cs.len() > shape.len() {
        return Err(format!(
            "constant of shape {cs:?} against a value of shape {shape:?}"
        ));
    }
    let off = shape.len() - cs.len();
    for (i, &d) in cs.iter().enumerate() {
        let vd = shape[off + i];
        if d != 1 && d != vd {
            return Err(format!(
                "constant of shape {cs:?} does not broadcast to {shape:?}"
            ));
        }
    }
    if cd.len() != n {
        return Err(format!(
            "constant of shape {cs:?} is not one value per channel"
        ));
    }
    Ok(cd.to_vec())
}

fn with_shape(v: Val, new: Vec<usize>) -> Res<Val> {
    let old = v.shape().ok_or("cannot reshape this value")?;
    if numel(old) != numel(&new) {
        return Err(format!("cannot reshape {old:?} to {new:?}"));
    }
    Ok(match v {
        Val::Const { data, .. } => Val::Const { shape: new, data },
        Val::Pixels { table, .. } => Val::Pixels { shape: new, table },
        Val::Bits { layer, .. } => Val::Bits { shape: new, layer },
        Val::Acc { layer, a, b, .. } => {
            // the neurons must stay on one axis, every other axis of size 1
            if new.iter().any(|&d| d != 1 && d != a.len()) {
                return Err(format!("shape {new:?} splits the {} neurons", a.len()));
            }
            Val::Acc {
                shape: new,
                layer,
                a,
                b,
            }
        }
        other => other,
    })
}

fn reshape_dims(old: &[usize], target: &[f64]) -> Res<Vec<usize>> {
    let total = numel(old);
    let mut new = Vec::new();
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        let t = t as i64;
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                new.push(1);
            }
            0 => new.push(*old.get(i).ok_or("reshape copies a missing dimension")?),
            t if t > 0 => new.push(t as usize),
            _ => return Err(format!("bad reshape target {target:?}")),
        }
    }
    if let Some(i) = infer {
        let rest = numel(&new);
        if rest == 0 || !total.is_multiple_of(rest) {
            return Err(format!("cannot reshape {old:?} to {target:?}"));
        }
        new[i] = total / rest;
    }
    Ok(new)
}

fn norm_axes(axes: &[i64], rank: usize) -> Res<Vec<usize>> {
    axes.iter()
        .map(|&a| {
            let a = if a < 0 { a + rank as i64 } else { a };
            if a < 0 || a as usize >= rank {
                Err(format!("axis {a} out of range"))
            } else {
                Ok(a as usize)
            }
        })
        .collect()
}

fn squeeze(old: &[usize], axes: &[i64]) -> Res<Vec<usize>> {
    let axes = if axes.is_empty() {
        (0..old.len()).filter(|&i| old[i] == 1).collect()
    } else {
        norm_axes(axes, old.len())?
    };
    if axes.iter().any(|&a| old[a] != 1) {
        return Err(format!("cannot squeeze axes {axes:?} of {old:?}"));
    }
    Ok((0..old.len())
        .filter(|i| !axes.contains(i))
        .map(|i| old[i])
        .collect())
}

fn unsqueeze(old: &[usize], axes: &[i64]) -> Res<Vec<usize>> {
    let rank = old.len() + axes.len();
    let axes = norm_axes(axes, rank)?;
    let mut it = old.iter();
    Ok((0..rank)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *it.next().unwrap()
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_signs_and_constants() {
        // 0.5·y + 1 ≥ 0 ⇔ y ≥ −2
        assert_eq!(fold_threshold(0.5, 1.0, 0.0).unwrap(), (-2, 0));
        // 0.5·y + 1.2 ≥ 0 ⇔ y ≥ −2.4 ⇔ y ≥ −2
        assert_eq!(fold_threshold(0.5, 1.2, 0.0).unwrap(), (-2, 0));
        // −0.5·y + 1.2 ≥ 0 ⇔ y ≤ 2.4 ⇔ y ≤ 2 (flip)
        assert_eq!(fold_threshold(-0.5, 1.2, 0.0).unwrap(), (2, 1));
        // −2·y − 4 ≥ 0 ⇔ y ≤ −2 (exact integer kept)
        assert_eq!(fold_threshold(-2.0, -4.0, 0.0).unwrap(), (-2, 1));
        assert_eq!(fold_threshold(0.0, 1.0, 0.0).unwrap(), (i64::MIN, 0));
        assert_eq!(fold_threshold(0.0, 0.0, 0.0).unwrap(), (i64::MIN, 0));
        assert_eq!(fold_threshold(0.0, -1e-9, 0.0).unwrap(), (i64::MAX, 0));
        assert_eq!(fold_threshold(1e-300, -1.0, 0.0).unwrap(), (i64::MAX, 0));
        assert!(fold_threshold(1.0, -3.0 - 1e-12, 0.0).is_err());
        assert!(fold_threshold(f64::NAN, 0.0, 0.0).is_err());
        // brute force against the definition
        for (a, b) in [(0.37, -1.9), (-1.3, 0.45), (2.0, 3.0), (-0.25, -0.5)] {
            let (t, f) = fold_threshold(a, b, 0.1).unwrap();
            for y in -50i64..50 {
                let want = a * y as f64 + b >= 0.1;
                let got = if f == 1 { y <= t } else { y >= t };
                assert_eq!(want, got, "a {a} b {b} y {y}");
            }
        }
    }

    #[test]
    fn pixel_thresholds() {
        let up: Vec<bool> = (0..256).map(|p| p >= 128).collect();
        assert_eq!(pixel_threshold(&up).unwrap(), (128, 0));
        let down: Vec<bool> = (0..256).map(|p| p <= 10).collect();
        assert_eq!(pixel_threshold(&down).unwrap(), (10, 1));
        assert_eq!(pixel_threshold(&[true; 256]).unwrap(), (0, 0));
        assert_eq!(pixel_threshold(&[false; 256]).unwrap(), (i64::MAX, 0));
        let band: Vec<bool> = (0..256).map(|p| (5..9).contains(&p)).collect();
        assert!(pixel_threshold(&band).is_err());
    }

    #[test]
    fn shapes() {
        assert_eq!(
            reshape_dims(&[1, 1, 28, 28], &[1.0, -1.0]).unwrap(),
            vec![1, 784]
        );
        assert_eq!(unsqueeze(&[1, 64], &[2]).unwrap(), vec![1, 64, 1]);
        assert_eq!(squeeze(&[1, 64, 1], &[2]).unwrap(), vec![1, 64]);
        assert!(squeeze(&[1, 64], &[1]).is_err());
    }
}
