//! FINN/QONNX ONNX graphs of binary networks (MLPs such as FINN's TFC-W1A1, and
//! convolutional and residual networks) as exactly equivalent format-1 networks on raw
//! 8-bit pixels.
//!
//! The graph is walked node by node (ONNX keeps nodes in topological order) with a
//! symbolic value per tensor:
//! - `Const`: an initializer or anything computed from initializers only (weights through
//!   `Quant`/`BipolarQuant`/`Transpose`, …);
//! - `Pixels`: an elementwise function of the raw input pixel, kept as its value for each
//!   of the 256 pixel values (the graph's float input is taken to carry pixels 0..255);
//! - `Lin`: a·y + b per element, y the integer output of a format-1 layer (±1 for a 1-bit
//!   threshold, the count n for a multi-bit one, Σ w·x for conv/dense, the sum for add),
//!   with a and b per element of that layer and `perm`, the layer's element behind each
//!   element of the ONNX tensor (layout ops move elements, never values);
//! - `Index`: the TopK(1) index of class scores (the prediction).
//!
//! Folding, per node (everything else is rejected with a one-line error naming the node):
//! - Conv / MatMul / Gemm on `Lin` (or on `Pixels` that are affine in the pixel) with
//!   weights ±s_o per output channel and one input gain α: a conv/dense layer on y,
//!   a_o = s_o·α, b_o = s_o·Σ sign(w)·b_in + bias. ONNX pads with float 0, which is
//!   y = −b/α: it must be 0 for integer inputs and −1, 0 or +1 for binary ones (`pad_value`).
//! - Add/Sub/Mul/Div by constants and BatchNormalization: a and b per element.
//! - Add of two values with the same gains and layout: an `add` layer.
//! - MaxPool (gain ≥ 0), GlobalAveragePool, ReduceSum/ReduceMean over H, W: `maxpool`,
//!   `sumpool`.
//! - MultiThreshold (x ≥ t, out_scale·n + out_bias), BipolarQuant (x ≥ 0) and Quant
//!   (its rounding steps) on a value: a `threshold` layer, each float threshold folded to
//!   an integer one: a·y + b ≥ t ⇔ y ≥ ⌈(t − b)/a⌉ for a > 0, y ≤ ⌊(t − b)/a⌋ (flip) for
//!   a < 0, constant for a = 0. A quotient within 1e-9 of an integer without being one is
//!   rejected rather than guessed. One threshold gives a binary layer, k > 1 a
//!   ⌈log2(k + 1)⌉-bit one (padded with never-reached thresholds). Format 1 has one
//!   threshold set per channel: elements of a channel must fold to the same set.
//! - Relu, only before a threshold (MaxPool may come between): max(0, v) ≥ t is v ≥ t for
//!   t > 0, else always true.
//! - Reshape/Flatten/Squeeze/Unsqueeze/Transpose/Identity: layout only.
//!
//! The graph's output (class scores or a TopK index) becomes the last layer's integer y,
//! which needs its affine map to be one positive gain for every element (the argmax is
//! then unchanged) and one offset, or offsets per class that are whole multiples of the
//! gain (a bias quantized at the accumulator's scale), which become a dense layer's bias.
//!
//! [`import`] can compare the result with [`super::onnx_eval`], a float evaluation of the
//! graph, on random frames (`bnnforge import onnx --check N`).

use super::onnx_proto::{ModelProto, NodeProto, FLOAT};
use super::{dense, threshold};
use bnnforge_model::network::INPUT;
use bnnforge_model::{Error, InputSpec, Layer, Network, Op, Param, Result, Shape};
use std::collections::HashMap;
use std::path::Path;

/// Largest ONNX file read.
const MAX_BYTES: u64 = 1 << 30;
/// Largest number of levels of a `Quant` on activations (2^8).
const MAX_QUANT_BITS: f64 = 8.0;

#[derive(Clone, Debug)]
struct Pix {
    shape: Vec<usize>,
    perm: Vec<usize>,
    table: Vec<f64>,
}

#[derive(Clone, Debug)]
struct Lin {
    shape: Vec<usize>,
    perm: Vec<usize>,
    layer: String,
    a: Vec<f64>,
    b: Vec<f64>,
}

#[derive(Clone, Debug)]
enum Val {
    Const {
        shape: Vec<usize>,
        data: Vec<f64>,
    },
    Pixels(Pix),
    Lin(Lin),
    /// max(0, ·) of a `Lin`: only a threshold (MultiThreshold, Quant) may use it
    Relu(Lin),
    TopKValues,
    /// the index, and the scores it ranks: tensor name, their gain and offset
    Index {
        layer: String,
        scores: String,
        a: f64,
        b: f64,
    },
}

impl Val {
    fn shape(&self) -> Option<&[usize]> {
        match self {
            Val::Const { shape, .. } => Some(shape),
            Val::Pixels(p) => Some(&p.shape),
            Val::Lin(l) | Val::Relu(l) => Some(&l.shape),
            _ => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Val::Const { .. } => "a constant",
            Val::Pixels(_) => "the (not yet binarized) input",
            Val::Lin(_) => "a layer's output",
            Val::Relu(_) => "a Relu's output (only a threshold or Quant may take it)",
            Val::TopKValues => "TopK values",
            Val::Index { .. } => "a TopK index",
        }
    }
}

type Res<T> = std::result::Result<T, String>;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

fn identity(n: usize) -> Vec<usize> {
    (0..n).collect()
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &x)| i == x)
}

/// How the graph's output relates to the network's integer output y.
struct OutMap {
    /// the graph output (scores, or a TopK index)
    output: String,
    /// the scores: their tensor, and the gain and offset: scores = a·y + b
    scores: String,
    a: f64,
    b: f64,
    topk: bool,
}

/// Imports `path` as the format-1 network `name`, then compares it with the float
/// evaluation of the graph ([`super::onnx_eval`]) on `check` random pixel frames (from
/// `seed`): every score must be a·y + b and a TopK index the argmax of y.
pub fn import(path: &Path, name: &str, check: usize, seed: u64) -> Result<Network> {
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
    let (net, map) = convert(&model, name).map_err(err)?;
    self_check(&model, &net, &map, check, seed).map_err(err)?;
    Ok(net)
}

fn self_check(model: &ModelProto, net: &Network, map: &OutMap, n: usize, seed: u64) -> Res<()> {
    if n == 0 {
        return Ok(());
    }
    let m = bnnforge_model::Model::new(net);
    let len = net.input.shape.len();
    let mut shape = vec![1];
    shape.extend(net.input.shape.dims());
    let frames = bnnforge_model::random::random_frames(&net.input, n, seed);
    for (i, px) in frames.chunks(len).enumerate() {
        let x = super::onnx_eval::Tensor {
            shape: shape.clone(),
            data: px.iter().map(|&p| p as f64).collect(),
        };
        let env = super::onnx_eval::eval(model, x).map_err(|e| format!("check: {e}"))?;
        let y = m.eval(px);
        let f = &env[&map.scores].data;
        let fail = |what: String| format!("check on random frame {i} (seed {seed}): {what}");
        if f.len() != y.len() {
            return Err(fail(format!("{} scores for {} outputs", f.len(), y.len())));
        }
        for (j, (&fv, &yv)) in f.iter().zip(&y).enumerate() {
            let want = map.a * yv as f64 + map.b;
            if (fv - want).abs() > 1e-6 * (1.0 + fv.abs()) {
                return Err(fail(format!(
                    "score {j} is {fv} in the float graph, {want} = {}·{yv} + {} from the network",
                    map.a, map.b
                )));
            }
        }
        if map.topk {
            let best = (0..y.len()).fold(0, |b, k| if y[k] > y[b] { k } else { b });
            let got = env[&map.output].data[0];
            if got != best as f64 {
                return Err(fail(format!("TopK gives {got}, the network {best}")));
            }
        }
    }
    Ok(())
}

struct Builder {
    vals: HashMap<String, Val>,
    layers: Vec<Layer>,
    /// next number per layer-name prefix
    counts: HashMap<&'static str, usize>,
    /// format-1 shape and binary-ness of every emitted layer (and of the input)
    info: HashMap<String, (Shape, bool)>,
    /// the dense layer whose bias took the output's offsets per class
    biased: Option<String>,
}

fn convert(model: &ModelProto, name: &str) -> Res<(Network, OutMap)> {
    let g = model.graph.as_ref().ok_or("no graph")?;
    let mut b = Builder {
        vals: HashMap::new(),
        layers: Vec::new(),
        counts: HashMap::new(),
        info: HashMap::new(),
        biased: None,
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
    if in_shape.len() > bnnforge_model::network::MAX_ELEMENTS {
        return Err(format!("graph input '{}' is too large", gin.name));
    }
    let mut onnx_shape = vec![1usize];
    onnx_shape.extend(in_shape.dims());
    b.info.insert(INPUT.to_string(), (in_shape, false));
    b.vals.insert(
        gin.name.clone(),
        Val::Pixels(Pix {
            perm: identity(in_shape.len()),
            shape: onnx_shape,
            table: (0..256).map(|p| p as f64).collect(),
        }),
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
    let (out, map) = match b.vals.get(oname) {
        Some(Val::Index {
            layer,
            scores,
            a,
            b,
        }) => (
            layer.clone(),
            OutMap {
                output: oname.clone(),
                scores: scores.clone(),
                a: *a,
                b: *b,
                topk: true,
            },
        ),
        Some(Val::Lin(l)) => {
            let l = l.clone();
            let (a, off) = b.output_affine(&l)?;
            (
                l.layer.clone(),
                OutMap {
                    output: oname.clone(),
                    scores: oname.clone(),
                    a,
                    b: off,
                    topk: false,
                },
            )
        }
        Some(v) => {
            return Err(format!(
                "the graph output '{oname}' is {}, expected class scores or a TopK index",
                v.kind()
            ))
        }
        None => return Err(format!("the graph output '{oname}' is never computed")),
    };
    if out == INPUT {
        return Err(format!("the graph output '{oname}' is the input itself"));
    }
    if let Some(l) = &b.biased {
        if b.layers.iter().any(|x| x.inputs.contains(l)) {
            return Err(format!(
                "the class scores of '{l}' have offsets per class (folded into its bias) but \
                 also feed other layers"
            ));
        }
        if *l != out {
            return Err(format!(
                "the class scores of '{l}' are not the graph's output"
            ));
        }
    }
    let input = InputSpec {
        shape: in_shape,
        bits: 8,
        signed: false,
    };
    let net = Network::new(name.to_string(), input, b.layers, out)
        .map_err(|e| format!("the graph does not make a valid network: {e}"))?;
    Ok((net, map))
}

impl Builder {
    /// The output's affine map (a, b): scores = a·y + b must keep the order of the layer's
    /// values and their positions: one gain a > 0 for every element, in the layer's order.
    /// Offsets per class that are whole multiples of a (as a bias quantized at the
    /// accumulator's scale gives) become the bias of the last dense layer.
    fn output_affine(&mut self, l: &Lin) -> Res<(f64, f64)> {
        if !is_identity(&l.perm) {
            return Err("the output's elements are reordered against its layer".into());
        }
        let a = l.a[0];
        let differ = "the class scores have a different scale or offset per class, which can \
                      reorder them";
        if l.a.iter().any(|&x| x != a) || a.is_nan() {
            return Err(differ.into());
        }
        if a <= 0.0 {
            return Err(format!(
                "the class scores have gain {a}, which does not keep their order"
            ));
        }
        if l.b.iter().all(|&x| x == l.b[0]) {
            return Ok((a, l.b[0]));
        }
        let b0 = l.b.iter().copied().fold(f64::INFINITY, f64::min);
        let d: Vec<f64> = l.b.iter().map(|&x| (x - b0) / a).collect();
        if d.iter()
            .any(|&x| !x.is_finite() || (x - x.round()).abs() > 1e-6 * x.abs().max(1.0))
        {
            return Err(format!(
                "{differ} (only offsets that are whole multiples of the scale fold into a bias)"
            ));
        }
        let name = l.layer.clone();
        let layer = self.layers.iter_mut().find(|x| x.name == name);
        match layer.map(|x| &mut x.op) {
            Some(Op::Dense { out, bias, .. }) if bias.is_none() => {
                let v = d.iter().map(|x| x.round() as i64).collect();
                *bias = Some(Param::new(format!("{name}.b"), vec![*out], v));
            }
            _ => {
                return Err(format!(
                    "{differ} (offsets fold only into the bias of a dense layer)"
                ))
            }
        }
        self.biased = Some(name);
        Ok((a, b0))
    }
}

fn attr_f(node: &NodeProto, name: &str, default: f64) -> f64 {
    node.attr(name).map_or(default, |a| a.f as f64)
}
fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attr(name).map_or(default, |a| a.i)
}
fn attr_s(node: &NodeProto, name: &str, default: &str) -> String {
    node.attr(name).map_or(default.to_string(), |a| {
        String::from_utf8_lossy(&a.s).into()
    })
}
fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attr(name).map(|a| a.ints.clone())
}

/// An integer threshold on y: y ≥ t, y ≤ t, or a constant outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Ge(i64),
    Le(i64),
    Always,
    Never,
}

/// The condition "a·y + b ≥ t" (or "> t" when `strict`) over integers y.
fn fold(a: f64, b: f64, t: f64, strict: bool) -> Res<Cmp> {
    if !(a.is_finite() && b.is_finite() && t.is_finite()) {
        return Err(format!(
            "non-finite folded values (gain {a}, offset {b}, threshold {t})"
        ));
    }
    if a == 0.0 {
        let yes = if strict { b > t } else { b >= t };
        return Ok(if yes { Cmp::Always } else { Cmp::Never });
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
    // a > 0: y ≥ q (strict: y > q); a < 0: y ≤ q (strict: y < q)
    Ok(match (a > 0.0, strict) {
        (true, false) => Cmp::Ge(to_i64(q.ceil())),
        (true, true) => Cmp::Ge(to_i64(q.floor() + 1.0)),
        (false, false) => Cmp::Le(to_i64(q.floor())),
        (false, true) => Cmp::Le(to_i64(q.ceil() - 1.0)),
    })
}

/// The integer threshold of "a·y + b ≥ t" over integers y: (threshold, flip).
#[cfg(test)]
fn fold_threshold(a: f64, b: f64, t: f64) -> Res<(i64, u8)> {
    Ok(match fold(a, b, t, false)? {
        Cmp::Ge(x) => (x, 0),
        Cmp::Le(x) => (x, 1),
        Cmp::Always => (i64::MIN, 0),
        Cmp::Never => (i64::MAX, 0),
    })
}

/// The pixel threshold giving `bits[p]` for every pixel value p.
fn pixel_cmp(bits: &[bool]) -> Res<Cmp> {
    let ones: Vec<usize> = (0..bits.len()).filter(|&p| bits[p]).collect();
    let (Some(&lo), Some(&hi)) = (ones.first(), ones.last()) else {
        return Ok(Cmp::Never);
    };
    if hi - lo + 1 != ones.len() {
        return Err("the input binarization is not one threshold on the pixel value".into());
    }
    if hi == bits.len() - 1 {
        Ok(Cmp::Ge(lo as i64)) // p ≥ lo (lo = 0: always)
    } else if lo == 0 {
        Ok(Cmp::Le(hi as i64)) // p ≤ hi
    } else {
        Err("the input binarization is a band of pixel values, not one threshold".into())
    }
}

/// The pixel threshold of `bits` as (threshold, flip).
#[cfg(test)]
fn pixel_threshold(bits: &[bool]) -> Res<(i64, u8)> {
    Ok(match pixel_cmp(bits)? {
        Cmp::Ge(x) => (x, 0),
        Cmp::Le(x) => (x, 1),
        Cmp::Always => (0, 0),
        Cmp::Never => (i64::MAX, 0),
    })
}

/// For each element of a tensor of shape `out`, the index of the element of a tensor of
/// shape `cs` broadcast against it (numpy rules; `cs` must not widen `out`).
fn broadcast_index(out: &[usize], cs: &[usize]) -> Res<Vec<usize>> {
    if cs.len() > out.len() {
        return Err(format!(
            "constant of shape {cs:?} against a value of shape {out:?}"
        ));
    }
    let off = out.len() - cs.len();
    for (i, &d) in cs.iter().enumerate() {
        if d != 1 && d != out[off + i] {
            return Err(format!(
                "constant of shape {cs:?} does not broadcast to {out:?}"
            ));
        }
    }
    let n = numel(out);
    let mut idx = Vec::with_capacity(n);
    for j in 0..n {
        let (mut rem, mut k, mut stride) = (j, 0usize, 1usize);
        for d in (0..out.len()).rev() {
            let i = rem % out[d];
            rem /= out[d];
            if d >= off {
                let cd = cs[d - off];
                if cd != 1 {
                    k += i * stride;
                }
                stride *= cd;
            }
        }
        idx.push(k);
    }
    Ok(idx)
}

/// The value of a (possibly broadcast) constant at every element of `out`.
fn spread(out: &[usize], cs: &[usize], cd: &[f64]) -> Res<Vec<f64>> {
    if numel(cs) != cd.len() {
        return Err(format!("constant of shape {cs:?} has {} values", cd.len()));
    }
    Ok(broadcast_index(out, cs)?
        .into_iter()
        .map(|k| cd[k])
        .collect())
}

/// Transpose of a tensor of shape `shape` by `perm`: (new shape, for each output element
/// the input element).
fn transpose_index(shape: &[usize], perm: &[usize]) -> Res<(Vec<usize>, Vec<usize>)> {
    let r = shape.len();
    let mut seen = vec![false; r];
    for &p in perm {
        if p >= r || std::mem::replace(&mut seen[p], true) {
            return Err(format!("perm {perm:?} is not a permutation of {r} axes"));
        }
    }
    if perm.len() != r {
        return Err(format!("perm {perm:?} for a tensor of rank {r}"));
    }
    let new: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut strides = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let n = numel(shape);
    let mut src = Vec::with_capacity(n);
    for j in 0..n {
        let mut rem = j;
        let mut k = 0;
        for d in (0..r).rev() {
            let i = rem % new[d];
            rem /= new[d];
            k += i * strides[perm[d]];
        }
        src.push(k);
    }
    Ok((new, src))
}

/// Per-channel values of `v` over a format-1 layer of shape `s`, checking that every
/// element of a channel has the same one.
fn per_channel(v: &[f64], s: Shape, what: &str) -> Res<Vec<f64>> {
    let hw = s.h * s.w;
    let mut out = Vec::with_capacity(s.c);
    for c in 0..s.c {
        let x = v[c * hw];
        if v[c * hw..(c + 1) * hw].iter().any(|&y| y != x) {
            return Err(format!("the {what} differs within channel {c}"));
        }
        out.push(x);
    }
    Ok(out)
}

/// ±1 weights and a scale s > 0 from `w` = ±s.
fn signs(w: &[f64], which: &str) -> Res<(Vec<i8>, f64)> {
    let s = w[0].abs();
    if !(s > 0.0 && s.is_finite()) {
        return Err(format!("{which}: weight {} is not ±s with s > 0", w[0]));
    }
    if let Some(x) = w.iter().find(|x| x.abs() != s) {
        return Err(format!(
            "{which}: weights {} and {x} differ in magnitude: only ±1 weights are supported (times one scale per output channel)",
            w[0]
        ));
    }
    Ok((w.iter().map(|&x| if x > 0.0 { 1 } else { -1 }).collect(), s))
}

/// One gain for every element.
fn one_gain(a: &[f64]) -> Res<f64> {
    let g = a[0];
    if a.iter().any(|&x| (x - g).abs() > 1e-12 * g.abs()) {
        return Err(
            "its input has different scales per element, which ±1 weights cannot absorb".into(),
        );
    }
    if g == 0.0 || !g.is_finite() {
        return Err(format!("its input has scale {g}"));
    }
    Ok(g)
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

    fn has_input(node: &NodeProto, i: usize) -> bool {
        node.input.get(i).is_some_and(|s| !s.is_empty())
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

    fn next_name(&mut self, prefix: &'static str) -> String {
        let n = self.counts.entry(prefix).or_insert(0);
        let name = match (prefix, *n) {
            ("bin", 0) => "bin".to_string(),
            _ => format!("{prefix}{n}"),
        };
        *n += 1;
        name
    }

    fn push_named(&mut self, name: String, inputs: Vec<String>, op: Op, info: (Shape, bool)) {
        self.info.insert(name.clone(), info);
        self.layers.push(Layer { name, inputs, op });
    }

    fn layer_shape(&self, layer: &str) -> Shape {
        self.info[layer].0
    }

    /// The value as a·y + b of a layer: `Pixels` must be affine in the pixel.
    fn lin(&self, v: &Val) -> Res<Lin> {
        match v {
            Val::Lin(l) => Ok(l.clone()),
            Val::Pixels(p) => {
                let (b, a) = (p.table[0], p.table[1] - p.table[0]);
                let big = p.table.iter().fold(0f64, |m, x| m.max(x.abs()));
                for (i, &t) in p.table.iter().enumerate() {
                    if (t - (b + a * i as f64)).abs() > 1e-9 * big {
                        return Err(
                            "its input is a non-linear function of the pixels; only an affine \
                             one can feed a layer"
                                .into(),
                        );
                    }
                }
                let n = p.perm.len();
                Ok(Lin {
                    shape: p.shape.clone(),
                    perm: p.perm.clone(),
                    layer: INPUT.to_string(),
                    a: vec![a; n],
                    b: vec![b; n],
                })
            }
            other => Err(format!(
                "its input is {}, expected a layer's output",
                other.kind()
            )),
        }
    }

    /// A value in NCHW layout over a feature-map layer: (C, H, W).
    fn nchw(&self, l: &Lin) -> Res<(usize, usize, usize)> {
        let [1, c, h, w] = l.shape[..] else {
            return Err(format!(
                "input of shape {:?}, expected [1, C, H, W]",
                l.shape
            ));
        };
        if !is_identity(&l.perm) || self.layer_shape(&l.layer) != Shape::map(c, h, w) {
            return Err(format!(
                "input is not layer '{}' in NCHW order (a Transpose before it?)",
                l.layer
            ));
        }
        Ok((c, h, w))
    }

    fn node(&mut self, node: &NodeProto) -> Res<()> {
        let std_domain = node.domain.is_empty() || node.domain == "ai.onnx";
        let finn = node.domain.starts_with("finn")
            || node.domain.starts_with("qonnx")
            || node.domain == "onnx.brevitas";
        match (node.op_type.as_str(), std_domain, finn) {
            ("Relu", true, _) => {
                let v = self.input(node, 0)?.clone();
                let l = self.lin(&v)?;
                self.set(node, 0, Val::Relu(l))
            }
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
            ("Transpose", true, _) => {
                let v = self.transpose(node)?;
                self.set(node, 0, v)
            }
            ("Add" | "Sub" | "Mul" | "Div", true, _) => {
                let v = self.elementwise(node)?;
                self.set(node, 0, v)
            }
            ("BatchNormalization", true, _) => {
                let v = self.batchnorm(node)?;
                self.set(node, 0, v)
            }
            ("MatMul" | "Gemm", true, _) => {
                let v = self.matmul(node)?;
                self.set(node, 0, v)
            }
            ("Conv", true, _) => {
                let v = self.conv(node)?;
                self.set(node, 0, v)
            }
            ("MaxPool", true, _) => {
                let v = self.maxpool(node)?;
                self.set(node, 0, v)
            }
            ("GlobalAveragePool" | "ReduceSum" | "ReduceMean", true, _) => {
                let v = self.sumpool(node)?;
                self.set(node, 0, v)
            }
            ("MultiThreshold", _, true) => {
                let v = self.multithreshold(node)?;
                self.set(node, 0, v)
            }
            ("BipolarQuant", _, true) => {
                let v = self.bipolar_quant(node)?;
                self.set(node, 0, v)
            }
            ("Quant" | "IntQuant", _, true) => {
                let v = self.quant(node)?;
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
                let Val::Lin(l) = self.input(node, 0)?.clone() else {
                    return Err("TopK must take the last layer's scores".into());
                };
                let axis = attr_i(node, "axis", -1);
                let last = l.shape.len() as i64 - 1;
                if (axis != -1 && axis != last) || l.shape[l.shape.len() - 1] != l.a.len() {
                    return Err("TopK must run along the class axis".into());
                }
                let (a, b) = self.output_affine(&l)?;
                self.set(node, 0, Val::TopKValues)?;
                if node.output.len() > 1 {
                    let idx = Val::Index {
                        layer: l.layer,
                        scores: node.input[0].clone(),
                        a,
                        b,
                    };
                    self.set(node, 1, idx)?;
                }
                Ok(())
            }
            (op, _, _) => Err(format!(
                "unsupported op '{op}' (domain '{}'); supported: Conv, MatMul, Gemm (±1 \
                 weights), MaxPool, GlobalAveragePool, ReduceSum/ReduceMean, Add, \
                 BatchNormalization, MultiThreshold, Quant, BipolarQuant, Relu before a \
                 threshold, Sub/Mul/Div by constants, Reshape/Flatten/Squeeze/Unsqueeze/Transpose/Identity, TopK",
                node.domain
            )),
        }
    }

    fn transpose(&self, node: &NodeProto) -> Res<Val> {
        let v = self.input(node, 0)?.clone();
        let shape = v.shape().ok_or("cannot transpose this value")?.to_vec();
        let perm: Vec<usize> = match attr_ints(node, "perm") {
            Some(p) => p
                .iter()
                .map(|&x| usize::try_from(x).map_err(|_| format!("perm {p:?}")))
                .collect::<Res<_>>()?,
            None => (0..shape.len()).rev().collect(),
        };
        let (new, src) = transpose_index(&shape, &perm)?;
        Ok(match v {
            Val::Const { data, .. } => Val::Const {
                shape: new,
                data: src.iter().map(|&k| data[k]).collect(),
            },
            Val::Pixels(p) => Val::Pixels(Pix {
                shape: new,
                perm: src.iter().map(|&k| p.perm[k]).collect(),
                table: p.table,
            }),
            Val::Lin(l) => Val::Lin(Lin {
                shape: new,
                perm: src.iter().map(|&k| l.perm[k]).collect(),
                ..l
            }),
            Val::Relu(l) => Val::Relu(Lin {
                shape: new,
                perm: src.iter().map(|&k| l.perm[k]).collect(),
                ..l
            }),
            other => other,
        })
    }

    /// Add/Sub/Mul/Div of a value and a constant, or Add of two values.
    fn elementwise(&mut self, node: &NodeProto) -> Res<Val> {
        let op = node.op_type.as_str();
        let (x, y) = (self.input(node, 0)?.clone(), self.input(node, 1)?.clone());
        if let (
            Val::Const {
                shape: s1,
                data: d1,
            },
            Val::Const {
                shape: s2,
                data: d2,
            },
        ) = (&x, &y)
        {
            return const_binary(op, s1, d1, s2, d2);
        }
        // (value, constant shape, constant data, constant on the left)
        let (v, cs, cd, left) = match (x, y) {
            (v, Val::Const { shape, data }) => (v, shape, data, false),
            (Val::Const { shape, data }, v) => (v, shape, data, true),
            (x, y) if op == "Add" => return self.add(&x, &y),
            _ => {
                return Err(format!(
                    "{op} of two computed values is not supported (only Add, the residual sum)"
                ))
            }
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
            Val::Pixels(p) if cd.len() == 1 && cs.len() <= p.shape.len() => {
                let c = cd[0];
                let table = p.table.iter().map(|&t| apply(t, c)).collect();
                Ok(Val::Pixels(Pix { table, ..p }))
            }
            v @ (Val::Pixels(_) | Val::Lin(_)) => {
                let Lin {
                    shape,
                    perm,
                    layer,
                    mut a,
                    mut b,
                } = self.lin(&v)?;
                let c = spread(&shape, &cs, &cd)?;
                for (j, &e) in perm.iter().enumerate() {
                    let (ai, bi, ci) = (a[e], b[e], c[j]);
                    (a[e], b[e]) = match (op, left) {
                        ("Add", _) => (ai, bi + ci),
                        ("Mul", _) => (ai * ci, bi * ci),
                        ("Sub", false) => (ai, bi - ci),
                        ("Sub", true) => (-ai, ci - bi),
                        _ => (ai / ci, bi / ci),
                    };
                }
                Ok(Val::Lin(Lin {
                    shape,
                    perm,
                    layer,
                    a,
                    b,
                }))
            }
            other => Err(format!("{op} on {} is not supported", other.kind())),
        }
    }

    /// The residual sum of two layers' values with equal gains: an `add` layer.
    fn add(&mut self, x: &Val, y: &Val) -> Res<Val> {
        let (l1, l2) = (self.lin(x)?, self.lin(y)?);
        if l1.shape != l2.shape {
            return Err(format!(
                "operands of shapes {:?} and {:?} (only equal shapes are supported)",
                l1.shape, l2.shape
            ));
        }
        let (s1, s2) = (self.layer_shape(&l1.layer), self.layer_shape(&l2.layer));
        if l1.perm != l2.perm || s1 != s2 {
            return Err(format!(
                "operands '{}' and '{}' have different layouts",
                l1.layer, l2.layer
            ));
        }
        for e in 0..l1.a.len() {
            let (g1, g2) = (l1.a[e], l2.a[e]);
            if (g1 - g2).abs() > 1e-12 * g1.abs().max(g2.abs()) {
                return Err(format!(
                    "operands '{}' and '{}' have different scales ({g1} and {g2}); an integer \
                     add needs equal ones",
                    l1.layer, l2.layer
                ));
            }
        }
        let name = self.next_name("add");
        let bin = false;
        self.push_named(
            name.clone(),
            vec![l1.layer.clone(), l2.layer.clone()],
            Op::Add,
            (s1, bin),
        );
        let b = l1.b.iter().zip(&l2.b).map(|(p, q)| p + q).collect();
        Ok(Val::Lin(Lin {
            layer: name,
            b,
            ..l1
        }))
    }

    fn batchnorm(&self, node: &NodeProto) -> Res<Val> {
        if attr_i(node, "training_mode", 0) != 0 {
            return Err("training mode is not supported".into());
        }
        if node.output.iter().filter(|o| !o.is_empty()).count() > 1 {
            return Err("only the inference form (one output) is supported".into());
        }
        let v = self.input(node, 0)?.clone();
        let Lin {
            shape,
            perm,
            layer,
            mut a,
            mut b,
        } = self
            .lin(&v)
            .map_err(|e| format!("BatchNormalization: {e}"))?;
        if shape.len() < 2 {
            return Err(format!("input of shape {shape:?} has no channel axis"));
        }
        let ch = shape[1];
        let inner = numel(&shape[2..]);
        let eps = attr_f(node, "epsilon", 1e-5);
        let mut p = Vec::new();
        for i in 1..5 {
            let (s, d) = self.constant(node, i)?;
            if d.len() != ch || s.len() != 1 {
                return Err(format!("parameter {i} has shape {s:?}, expected [{ch}]"));
            }
            p.push(d);
        }
        let (gamma, beta, mean, var) = (&p[0], &p[1], &p[2], &p[3]);
        for (j, &e) in perm.iter().enumerate() {
            let c = (j / inner) % ch;
            let s = (var[c] + eps).sqrt();
            if !(s > 0.0 && s.is_finite()) {
                return Err(format!("channel {c}: variance {} gives no scale", var[c]));
            }
            let k = gamma[c] / s;
            a[e] *= k;
            b[e] = (b[e] - mean[c]) * k + beta[c];
        }
        Ok(Val::Lin(Lin {
            shape,
            perm,
            layer,
            a,
            b,
        }))
    }

    /// MatMul by `[in, out]` or Gemm (`transA` 0): a `dense` layer.
    fn matmul(&mut self, node: &NodeProto) -> Res<Val> {
        let (ws, w) = self.constant(node, 1)?;
        let [r, c] = ws[..] else {
            return Err(format!("weights of shape {ws:?}, expected a matrix"));
        };
        let gemm = node.op_type == "Gemm";
        let trans_b = gemm && attr_i(node, "transB", 0) != 0;
        if gemm && attr_i(node, "transA", 0) != 0 {
            return Err("Gemm with transA is not supported".into());
        }
        let (k, n) = if trans_b { (c, r) } else { (r, c) };
        let alpha = if gemm {
            attr_f(node, "alpha", 1.0)
        } else {
            1.0
        };
        // w_at(i, o): the weight of input i for output o
        let w_at = |i: usize, o: usize| alpha * if trans_b { w[o * k + i] } else { w[i * n + o] };
        let mut bias = vec![0.0; n];
        if gemm && Self::has_input(node, 2) {
            let (cs, cd) = self.constant(node, 2)?;
            let beta = attr_f(node, "beta", 1.0);
            bias = spread(&[n], &cs, &cd)?.iter().map(|x| x * beta).collect();
        }
        let v = self.input(node, 0)?.clone();
        let l = self.lin(&v)?;
        let xs = &l.shape;
        if xs.last() != Some(&k) || numel(xs) != k {
            return Err(format!(
                "input of shape {xs:?} does not match weights [{k}, {n}]"
            ));
        }
        let alpha_in = one_gain(&l.a)?;
        let mut wt = vec![0i8; k * n];
        let mut a = Vec::with_capacity(n);
        let mut b = Vec::with_capacity(n);
        for o in 0..n {
            let col: Vec<f64> = (0..k).map(|i| w_at(i, o)).collect();
            let (sg, s) = signs(&col, &format!("output {o}"))?;
            let mut off = 0.0;
            for (j, &e) in l.perm.iter().enumerate() {
                wt[o * k + e] = sg[j];
                off += sg[j] as f64 * l.b[e];
            }
            a.push(s * alpha_in);
            b.push(s * off + bias[o]);
        }
        let name = self.next_name("fc");
        self.push_named(
            name.clone(),
            vec![l.layer.clone()],
            dense(&name, n, k, wt),
            (Shape::vector(n), false),
        );
        let mut shape = xs.clone();
        *shape.last_mut().unwrap() = n;
        Ok(Val::Lin(Lin {
            shape,
            perm: identity(n),
            layer: name,
            a,
            b,
        }))
    }

    /// Square kernel, equal strides and equal pads of a Conv or MaxPool: (k, s, p).
    fn window(
        &self,
        node: &NodeProto,
        kdefault: Option<usize>,
        sdefault: usize,
    ) -> Res<(usize, usize, usize)> {
        let ap = attr_s(node, "auto_pad", "NOTSET");
        if ap != "NOTSET" {
            return Err(format!("auto_pad {ap} is not supported (give pads)"));
        }
        if let Some(d) = attr_ints(node, "dilations") {
            if d.iter().any(|&x| x != 1) {
                return Err(format!("dilations {d:?} are not supported"));
            }
        }
        if attr_i(node, "ceil_mode", 0) != 0 {
            return Err("ceil_mode is not supported".into());
        }
        let k = match (attr_ints(node, "kernel_shape"), kdefault) {
            (Some(ks), _) => match ks[..] {
                [a, b] if a == b && a > 0 => a as usize,
                _ => {
                    return Err(format!(
                        "kernel {ks:?}: only square 2-D kernels are supported"
                    ))
                }
            },
            (None, Some(k)) => k,
            (None, None) => return Err("no kernel_shape".into()),
        };
        let s = match attr_ints(node, "strides") {
            Some(st) => match st[..] {
                [a, b] if a == b && a > 0 => a as usize,
                _ => return Err(format!("strides {st:?}: only equal strides are supported")),
            },
            None => sdefault,
        };
        let p = match attr_ints(node, "pads") {
            Some(ps) => match ps[..] {
                [a, b, c, d] if a == b && b == c && c == d && a >= 0 => a as usize,
                _ => {
                    return Err(format!(
                        "pads {ps:?}: only equal pads on all sides are supported"
                    ))
                }
            },
            None => 0,
        };
        let lim = bnnforge_model::network::MAX_KERNEL;
        if k > lim || s > lim || p > lim {
            return Err(format!("kernel {k}, stride {s} or padding {p} above {lim}"));
        }
        Ok((k, s, p))
    }

    fn conv(&mut self, node: &NodeProto) -> Res<Val> {
        if attr_i(node, "group", 1) != 1 {
            return Err(format!(
                "group {} is not supported (only group 1)",
                attr_i(node, "group", 1)
            ));
        }
        let (ws, w) = self.constant(node, 1)?;
        let [o, wc, kh, kw] = ws[..] else {
            return Err(format!("weights of shape {ws:?}, expected [O, C, k, k]"));
        };
        if kh != kw {
            return Err(format!(
                "kernel {kh}×{kw}: only square kernels are supported"
            ));
        }
        let (k, s, p) = self.window(node, Some(kh), 1)?;
        if k != kh {
            return Err(format!("kernel_shape {k} differs from the weights' {kh}"));
        }
        let v = self.input(node, 0)?.clone();
        let l = self.lin(&v)?;
        let (c, h, wd) = self.nchw(&l)?;
        if c != wc {
            return Err(format!(
                "weights of shape {ws:?} for an input of {c} channels"
            ));
        }
        if h + 2 * p < k || wd + 2 * p < k {
            return Err(format!(
                "kernel {k} is larger than the padded input {h}×{wd} (padding {p})"
            ));
        }
        let mut bias = vec![0.0; o];
        if Self::has_input(node, 2) {
            let (cs, cd) = self.constant(node, 2)?;
            bias = spread(&[o], &cs, &cd)?;
        }
        let lshape = self.layer_shape(&l.layer);
        let binary = self.info[&l.layer].1;
        let alpha = one_gain(&l.a)?;
        let b_in = per_channel(&l.b, lshape, "input offset")?;
        // ONNX pads with float 0, i.e. y = −b/α
        let mut pad_value = 0i8;
        if p > 0 {
            let pv: Vec<f64> = b_in.iter().map(|&b| -b / alpha).collect();
            let r = pv[0].round();
            let ok = pv.iter().all(|&x| (x - r).abs() <= 1e-9)
                && if binary { r.abs() <= 1.0 } else { r == 0.0 };
            if !ok {
                return Err(format!(
                    "zero padding of an input whose zero is y = {} (it must be 0{}, the same for every channel)",
                    pv[0],
                    if binary { ", −1 or +1" } else { "" }
                ));
            }
            pad_value = r as i8;
        }
        let kk = c * k * k;
        let mut wt = Vec::with_capacity(o * kk);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for oc in 0..o {
            let (sg, sc) = signs(&w[oc * kk..(oc + 1) * kk], &format!("output channel {oc}"))?;
            let mut off = 0.0;
            for (i, &x) in sg.iter().enumerate() {
                off += x as f64 * b_in[i / (k * k)];
            }
            wt.extend(sg);
            a.push(sc * alpha);
            b.push(sc * off + bias[oc]);
        }
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
        let name = self.next_name("conv");
        let op = Op::Conv {
            out: o,
            kernel: k,
            stride: s,
            padding: p,
            pad_value,
            weight: Param::new(format!("{name}.w"), vec![o, c, k, k], wt),
            bias: None,
        };
        self.push_named(
            name.clone(),
            vec![l.layer.clone()],
            op,
            (Shape::map(o, oh, ow), false),
        );
        let hw = oh * ow;
        let n = o * hw;
        Ok(Val::Lin(Lin {
            shape: vec![1, o, oh, ow],
            perm: identity(n),
            layer: name,
            a: (0..n).map(|e| a[e / hw]).collect(),
            b: (0..n).map(|e| b[e / hw]).collect(),
        }))
    }

    fn maxpool(&mut self, node: &NodeProto) -> Res<Val> {
        if attr_i(node, "storage_order", 0) != 0 || node.output.len() > 1 {
            return Err("only MaxPool without indices is supported".into());
        }
        let (k, s, p) = self.window(node, None, 1)?;
        if p != 0 {
            return Err("padded MaxPool is not supported".into());
        }
        let v = self.input(node, 0)?.clone();
        // the maximum of max(0, v) is max(0, the maximum of v) for gains ≥ 0
        let (l, relu) = match v {
            Val::Relu(l) => (l, true),
            v => (self.lin(&v)?, false),
        };
        let (c, h, w) = self.nchw(&l)?;
        if h < k || w < k {
            return Err(format!("kernel {k} is larger than the input {h}×{w}"));
        }
        let shape = self.layer_shape(&l.layer);
        let a = per_channel(&l.a, shape, "scale")?;
        let b = per_channel(&l.b, shape, "offset")?;
        if let Some(i) = a.iter().position(|&x| x < 0.0) {
            return Err(format!(
                "channel {i} has a negative scale, which turns the maximum into a minimum"
            ));
        }
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
        let binary = self.info[&l.layer].1;
        let name = self.next_name("pool");
        self.push_named(
            name.clone(),
            vec![l.layer.clone()],
            Op::MaxPool {
                kernel: k,
                stride: s,
            },
            (Shape::map(c, oh, ow), binary),
        );
        let hw = oh * ow;
        let n = c * hw;
        let out = Lin {
            shape: vec![1, c, oh, ow],
            perm: identity(n),
            layer: name,
            a: (0..n).map(|e| a[e / hw]).collect(),
            b: (0..n).map(|e| b[e / hw]).collect(),
        };
        Ok(if relu { Val::Relu(out) } else { Val::Lin(out) })
    }

    /// GlobalAveragePool, or ReduceSum/ReduceMean over axes 2 and 3: a `sumpool` layer.
    fn sumpool(&mut self, node: &NodeProto) -> Res<Val> {
        let op = node.op_type.as_str();
        let mut keep = true;
        if op != "GlobalAveragePool" {
            let axes = match attr_ints(node, "axes") {
                Some(a) => a,
                None if Self::has_input(node, 1) => self
                    .constant(node, 1)?
                    .1
                    .iter()
                    .map(|&x| x as i64)
                    .collect(),
                None => return Err("a reduction over all axes is not supported".into()),
            };
            let mut ax = norm_axes(&axes, 4)?;
            ax.sort();
            if ax != [2, 3] {
                return Err(format!(
                    "axes {axes:?}: only the reduction over H and W is supported"
                ));
            }
            keep = attr_i(node, "keepdims", 1) != 0;
        }
        let v = self.input(node, 0)?.clone();
        let l = self.lin(&v)?;
        let (c, h, w) = self.nchw(&l)?;
        let shape = self.layer_shape(&l.layer);
        let a = per_channel(&l.a, shape, "scale")?;
        let b = per_channel(&l.b, shape, "offset")?;
        let hw = (h * w) as f64;
        // Σ (a·y + b) = a·Σy + hw·b; the mean divides both by hw
        let (a, b): (Vec<f64>, Vec<f64>) = if op == "ReduceSum" {
            (a, b.iter().map(|x| x * hw).collect())
        } else {
            (a.iter().map(|x| x / hw).collect(), b)
        };
        let name = self.next_name("sum");
        self.push_named(
            name.clone(),
            vec![l.layer.clone()],
            Op::SumPool,
            (Shape::vector(c), false),
        );
        Ok(Val::Lin(Lin {
            shape: if keep { vec![1, c, 1, 1] } else { vec![1, c] },
            perm: identity(c),
            layer: name,
            a,
            b,
        }))
    }

    fn multithreshold(&mut self, node: &NodeProto) -> Res<Val> {
        let (tshape, t) = self.constant(node, 1)?;
        let (rows, per) = match tshape[..] {
            [r, p] if r > 0 && p > 0 => (r, p),
            _ => return Err(format!("thresholds of shape {tshape:?}, expected [C, B]")),
        };
        let v = self.input(node, 0)?.clone();
        let shape = v.shape().ok_or("cannot threshold this value")?.to_vec();
        let layout = attr_s(node, "data_layout", "NCHW");
        // the channel of ONNX element j
        let n = numel(&shape);
        let chan: Vec<usize> = match (layout.as_str(), shape.len()) {
            ("NCHW" | "NC", 2 | 4) => {
                let inner = numel(&shape[2..]);
                (0..n).map(|j| (j / inner) % shape[1]).collect()
            }
            ("NHWC", r @ (2 | 4)) => (0..n).map(|j| j % shape[r - 1]).collect(),
            (l, _) => {
                return Err(format!(
                    "data layout {l} for shape {shape:?} is not supported"
                ))
            }
        };
        let nch = match layout.as_str() {
            "NHWC" => shape[shape.len() - 1],
            _ => shape[1],
        };
        if rows != 1 && rows != nch {
            return Err(format!("{rows} rows of thresholds for {nch} channels"));
        }
        let scale = attr_f(node, "out_scale", 1.0);
        let bias = attr_f(node, "out_bias", 0.0);
        let thr: Vec<Vec<(f64, bool)>> = (0..n)
            .map(|j| {
                let r = if rows == 1 { 0 } else { chan[j] };
                t[r * per..(r + 1) * per]
                    .iter()
                    .map(|&x| (x, false))
                    .collect()
            })
            .collect();
        self.emit_threshold(&v, per, &thr, &vec![(scale, bias); n])
    }

    fn bipolar_quant(&mut self, node: &NodeProto) -> Res<Val> {
        let (ss, sd) = self.constant(node, 1)?;
        let v = self.input(node, 0)?.clone();
        let shape = v.shape().ok_or("cannot quantize this value")?.to_vec();
        let s = spread(&shape, &ss, &sd)?;
        if let Val::Const { data, .. } = &v {
            let data = data
                .iter()
                .zip(&s)
                .map(|(&x, &sc)| if x >= 0.0 { sc } else { -sc })
                .collect();
            return Ok(Val::Const { shape, data });
        }
        // sign(x)·s = 2s·[x ≥ 0] − s
        let n = numel(&shape);
        let thr = vec![vec![(0.0, false)]; n];
        let ab: Vec<(f64, f64)> = s.iter().map(|&sc| (2.0 * sc, -sc)).collect();
        self.emit_threshold(&v, 1, &thr, &ab)
    }

    fn quant(&mut self, node: &NodeProto) -> Res<Val> {
        let v = self.input(node, 0)?.clone();
        let shape = v.shape().ok_or("cannot quantize this value")?.to_vec();
        let (ss, sd) = self.constant(node, 1)?;
        let (zs, zd) = self.constant(node, 2)?;
        let (_, bw) = self.constant(node, 3)?;
        let [bits] = bw[..] else {
            return Err("the bit width must be a scalar".into());
        };
        let signed = attr_i(node, "signed", 1) != 0;
        let narrow = attr_i(node, "narrow", 0) != 0;
        let mode = attr_s(node, "rounding_mode", "ROUND");
        let (lo, hi) = quant_range(bits, signed, narrow)?;
        let s = spread(&shape, &ss, &sd)?;
        let z = spread(&shape, &zs, &zd)?;
        if let Val::Const { data, .. } = &v {
            let data = (0..data.len())
                .map(|j| quant_value(data[j], s[j], z[j], lo, hi, &mode))
                .collect::<Res<_>>()?;
            return Ok(Val::Const { shape, data });
        }
        if bits > MAX_QUANT_BITS {
            return Err(format!(
                "a {bits}-bit Quant on activations (at most {MAX_QUANT_BITS} bits)"
            ));
        }
        // q = clip(round(x/s + z), lo, hi) = lo + #{m in lo+1..=hi : round(x/s + z) ≥ m};
        // round(u) ≥ m ⇔ u ≥ m − ½ (ROUND, ties to even: u > m − ½ when m is odd),
        // u > m − 1 (CEIL), u ≥ m (FLOOR)
        let levels = (hi - lo) as usize;
        let n = numel(&shape);
        let mut thr = Vec::with_capacity(n);
        let mut ab = Vec::with_capacity(n);
        for j in 0..n {
            if !(s[j] > 0.0 && s[j].is_finite() && z[j].is_finite()) {
                return Err(format!("scale {} and zero point {}", s[j], z[j]));
            }
            let ts = (lo + 1..=hi)
                .map(|m| {
                    let m = m as f64;
                    let (u, strict) = match mode.as_str() {
                        "ROUND" => (m - 0.5, m.rem_euclid(2.0) == 1.0),
                        "CEIL" => (m - 1.0, true),
                        _ => (m, false),
                    };
                    ((u - z[j]) * s[j], strict)
                })
                .collect();
            thr.push(ts);
            ab.push((s[j], (lo as f64 - z[j]) * s[j]));
        }
        if !matches!(mode.as_str(), "ROUND" | "CEIL" | "FLOOR") {
            return Err(format!("rounding mode {mode} is not supported"));
        }
        self.emit_threshold(&v, levels, &thr, &ab)
    }

    /// A threshold layer on `v`: ONNX element j counts the thresholds `thr[j]` it reaches
    /// (x ≥ t, or x > t when marked strict), and its value is scale·n + bias with
    /// `ab[j]` = (scale, bias).
    fn emit_threshold(
        &mut self,
        v: &Val,
        count: usize,
        thr: &[Vec<(f64, bool)>],
        ab: &[(f64, f64)],
    ) -> Res<Val> {
        let (shape, perm, src) = match v {
            Val::Pixels(p) => (p.shape.clone(), p.perm.clone(), INPUT.to_string()),
            Val::Lin(l) | Val::Relu(l) => (l.shape.clone(), l.perm.clone(), l.layer.clone()),
            other => return Err(format!("thresholding {} is not supported", other.kind())),
        };
        if count == 0 || count > (1 << bnnforge_model::network::MAX_THRESHOLD_BITS) - 1 {
            return Err(format!("{count} thresholds per channel"));
        }
        let lshape = self.layer_shape(&src);
        let hw = lshape.h * lshape.w;
        let mut per_chan: Vec<Option<Vec<Cmp>>> = vec![None; lshape.c];
        for (j, &e) in perm.iter().enumerate() {
            let cmps: Vec<Cmp> = thr[j]
                .iter()
                .map(|&(t, strict)| match v {
                    Val::Pixels(p) => {
                        let bits: Vec<bool> = p
                            .table
                            .iter()
                            .map(|&x| if strict { x > t } else { x >= t })
                            .collect();
                        pixel_cmp(&bits)
                    }
                    Val::Lin(l) => fold(l.a[e], l.b[e], t, strict),
                    // max(0, v) ≥ t is v ≥ t for t > 0, always true for t < 0
                    Val::Relu(l) if t > 0.0 || (t == 0.0 && strict) => {
                        fold(l.a[e], l.b[e], t, strict)
                    }
                    Val::Relu(_) => Ok(Cmp::Always),
                    _ => unreachable!(),
                })
                .collect::<Res<_>>()?;
            let c = e / hw;
            match &per_chan[c] {
                None => per_chan[c] = Some(cmps),
                Some(prev) if *prev == cmps => {}
                Some(_) => {
                    return Err(format!(
                        "the folded thresholds differ within channel {c} of '{src}' (format 1 \
                         has one set per channel)"
                    ))
                }
            }
        }
        let bits = if count == 1 {
            1
        } else {
            usize::BITS - count.leading_zeros()
        };
        let per = (1usize << bits) - 1;
        let (mut ts, mut flips) = (Vec::new(), Vec::new());
        for (c, cmps) in per_chan.into_iter().enumerate() {
            let cmps = cmps.expect("every channel has elements");
            let up = cmps.iter().any(|x| matches!(x, Cmp::Ge(_)));
            let down = cmps.iter().any(|x| matches!(x, Cmp::Le(_)));
            if up && down {
                return Err(format!("channel {c} mixes rising and falling thresholds"));
            }
            let flip = down;
            for i in 0..per {
                let x = cmps.get(i).copied().unwrap_or(Cmp::Never);
                ts.push(match (x, flip) {
                    (Cmp::Ge(t) | Cmp::Le(t), _) => t,
                    (Cmp::Always, false) | (Cmp::Never, true) => i64::MIN,
                    (Cmp::Always, true) | (Cmp::Never, false) => i64::MAX,
                });
            }
            flips.push(flip as u8);
        }
        let name = self.next_name(if src == INPUT { "bin" } else { "t" });
        self.push_named(
            name.clone(),
            vec![src],
            threshold(&name, bits, per, ts, flips),
            (lshape, bits == 1),
        );
        // a binary layer gives y = 2n − 1, so n = (y + 1)/2
        let n = lshape.len();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        for (j, &e) in perm.iter().enumerate() {
            let (sc, bi) = ab[j];
            (a[e], b[e]) = if bits == 1 {
                (sc / 2.0, sc / 2.0 + bi)
            } else {
                (sc, bi)
            };
        }
        Ok(Val::Lin(Lin {
            shape,
            perm,
            layer: name,
            a,
            b,
        }))
    }
}

/// The integer range of a QONNX `Quant`.
fn quant_range(bits: f64, signed: bool, narrow: bool) -> Res<(i64, i64)> {
    if !(bits >= 1.0 && bits <= 32.0 && bits.fract() == 0.0) {
        return Err(format!("bit width {bits} (only whole widths 1..32)"));
    }
    let b = bits as u32;
    Ok(if signed {
        let lo = -(1i64 << (b - 1));
        (if narrow { lo + 1 } else { lo }, (1i64 << (b - 1)) - 1)
    } else {
        let hi = (1i64 << b) - 1;
        (0, if narrow { hi - 1 } else { hi })
    })
}

/// QONNX `Quant` of one value: (clip(round(x/s + z), lo, hi) − z)·s.
fn quant_value(x: f64, s: f64, z: f64, lo: i64, hi: i64, mode: &str) -> Res<f64> {
    let u = x / s + z;
    let r = match mode {
        "ROUND" => u.round_ties_even(),
        "CEIL" => u.ceil(),
        "FLOOR" => u.floor(),
        m => return Err(format!("rounding mode {m} is not supported")),
    };
    Ok((r.clamp(lo as f64, hi as f64) - z) * s)
}

/// Add/Sub/Mul/Div of two constants (numpy broadcasting).
fn const_binary(op: &str, s1: &[usize], d1: &[f64], s2: &[usize], d2: &[f64]) -> Res<Val> {
    let r = s1.len().max(s2.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; r - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (p1, p2) = (pad(s1), pad(s2));
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        if p1[i] != p2[i] && p1[i] != 1 && p2[i] != 1 {
            return Err(format!(
                "constants of shapes {s1:?} and {s2:?} do not broadcast"
            ));
        }
        out.push(p1[i].max(p2[i]));
    }
    let (x, y) = (spread(&out, &p1, d1)?, spread(&out, &p2, d2)?);
    let data = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| match op {
            "Add" => a + b,
            "Sub" => a - b,
            "Mul" => a * b,
            _ => a / b,
        })
        .collect();
    Ok(Val::Const { shape: out, data })
}

fn with_shape(v: Val, new: Vec<usize>) -> Res<Val> {
    let old = v.shape().ok_or("cannot reshape this value")?;
    if numel(old) != numel(&new) {
        return Err(format!("cannot reshape {old:?} to {new:?}"));
    }
    Ok(match v {
        Val::Const { data, .. } => Val::Const { shape: new, data },
        Val::Pixels(p) => Val::Pixels(Pix { shape: new, ..p }),
        Val::Lin(l) => Val::Lin(Lin { shape: new, ..l }),
        Val::Relu(l) => Val::Relu(Lin { shape: new, ..l }),
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
        // brute force against the definition, both strictnesses
        for (a, b) in [
            (0.37, -1.9),
            (-1.3, 0.45),
            (2.0, 3.0),
            (-0.25, -0.5),
            (1.0, 0.0),
        ] {
            for strict in [false, true] {
                for t in [0.1, 1.0, -2.0] {
                    let c = fold(a, b, t, strict).unwrap();
                    for y in -50i64..50 {
                        let v = a * y as f64 + b;
                        let want = if strict { v > t } else { v >= t };
                        let got = match c {
                            Cmp::Ge(x) => y >= x,
                            Cmp::Le(x) => y <= x,
                            Cmp::Always => true,
                            Cmp::Never => false,
                        };
                        assert_eq!(want, got, "a {a} b {b} t {t} strict {strict} y {y}");
                    }
                }
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
        // [1, 2, 3] transposed to [3, 2, 1]... as (0, 2, 1): [1, 3, 2]
        let (s, src) = transpose_index(&[1, 2, 3], &[0, 2, 1]).unwrap();
        assert_eq!(s, vec![1, 3, 2]);
        assert_eq!(src, vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(
            broadcast_index(&[1, 2, 3], &[2, 1]).unwrap(),
            vec![0, 0, 0, 1, 1, 1]
        );
        assert!(broadcast_index(&[1, 2, 3], &[3, 1]).is_err());
    }

    #[test]
    fn quant_ties_and_ranges() {
        assert_eq!(quant_range(4.0, false, false).unwrap(), (0, 15));
        assert_eq!(quant_range(2.0, true, true).unwrap(), (-1, 1));
        assert_eq!(quant_value(2.5, 1.0, 0.0, 0, 15, "ROUND").unwrap(), 2.0);
        assert_eq!(quant_value(3.5, 1.0, 0.0, 0, 15, "ROUND").unwrap(), 4.0);
        assert_eq!(quant_value(99.0, 0.5, 0.0, 0, 15, "ROUND").unwrap(), 7.5);
    }
}
