//! The network of format 1 in memory, and its validation.
//!
//! A [`Network`] can only be built through [`Network::new`], which checks everything the
//! spec requires (shapes, tensor sizes, ±1 weights, threshold counts, an acyclic graph in
//! which every layer is reachable and reaches the output) and works out, for every
//! layer, its output shape and the exact range of its values. Every later stage (the
//! model, the hardware generator, the simulator) relies on those checks.

use crate::bail;
use crate::error::Result;
use std::collections::HashMap;
use std::fmt;

/// The reserved name by which a layer refers to the network input.
pub const INPUT: &str = "input";

/// Largest `bits` of an integer network input.
pub const MAX_INPUT_BITS: u32 = 32;
/// Largest `bits` of a threshold op (2^16 − 1 thresholds per channel).
pub const MAX_THRESHOLD_BITS: u32 = 16;
/// Largest kernel, stride and padding of conv and maxpool.
pub const MAX_KERNEL: usize = 1024;
/// Largest number of elements of any tensor or feature map.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// A shape: a feature map `[C, H, W]` or a vector `[F]` (held as `[F, 1, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// false for a vector `[F]`
    pub is_map: bool,
}

impl Shape {
    pub fn map(c: usize, h: usize, w: usize) -> Self {
        Shape {
            c,
            h,
            w,
            is_map: true,
        }
    }
    pub fn vector(f: usize) -> Self {
        Shape {
            c: f,
            h: 1,
            w: 1,
            is_map: false,
        }
    }
    /// From the dims of the YAML (`[C, H, W]` or `[F]`).
    pub fn from_dims(dims: &[usize]) -> Result<Self> {
        let s = match *dims {
            [f] => Shape::vector(f),
            [c, h, w] => Shape::map(c, h, w),
            _ => bail!("shape {dims:?} must be [C, H, W] or [F]"),
        };
        if dims.contains(&0) {
            bail!("shape {dims:?} has a zero dimension");
        }
        if dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_none_or(|n| n > MAX_ELEMENTS)
        {
            bail!("shape {dims:?} has more than {MAX_ELEMENTS} elements");
        }
        Ok(s)
    }
    pub fn dims(&self) -> Vec<usize> {
        if self.is_map {
            vec![self.c, self.h, self.w]
        } else {
            vec![self.c]
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of spatial positions (1 for a vector).
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_map {
            write!(f, "[{}, {}, {}]", self.c, self.h, self.w)
        } else {
            write!(f, "[{}]", self.c)
        }
    }
}

/// What a layer's values are: ±1 bits, or integers in an exact range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Binary,
    Int { lo: i64, hi: i64 },
}

impl Kind {
    /// The value range, ±1 for binary.
    pub fn range(&self) -> (i64, i64) {
        match *self {
            Kind::Binary => (-1, 1),
            Kind::Int { lo, hi } => (lo, hi),
        }
    }
    pub fn is_binary(&self) -> bool {
        matches!(self, Kind::Binary)
    }
    /// Register width and signedness that hold every value (1 bit for binary).
    pub fn width(&self) -> (u32, bool) {
        match *self {
            Kind::Binary => (1, false),
            Kind::Int { lo, hi } => crate::kernels::int_width(lo as i128, hi as i128),
        }
    }
}

/// The network input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub shape: Shape,
    /// 1 for binary (±1), otherwise the integer width
    pub bits: u32,
    pub signed: bool,
}

impl InputSpec {
    pub fn kind(&self) -> Kind {
        match (self.bits, self.signed) {
            (1, _) => Kind::Binary,
            (b, false) => Kind::Int {
                lo: 0,
                hi: ((1u64 << b) - 1) as i64,
            },
            (b, true) => Kind::Int {
                lo: -(1i64 << (b - 1)),
                hi: (1i64 << (b - 1)) - 1,
            },
        }
    }
}

/// A tensor of the safetensors file as a layer uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param<T> {
    /// the tensor's name in the safetensors file
    pub tensor: String,
    pub dims: Vec<usize>,
    pub data: Vec<T>,
}

impl<T> Param<T> {
    pub fn new(tensor: impl Into<String>, dims: Vec<usize>, data: Vec<T>) -> Self {
        Param {
            tensor: tensor.into(),
            dims,
            data,
        }
    }
    fn expect_dims(&self, layer: &str, what: &str, dims: &[usize]) -> Result<()> {
        if self.dims != dims {
            bail!(
                "layer '{layer}': {what} '{}' has shape {:?}, expected {:?}",
                self.tensor,
                self.dims,
                dims
            );
        }
        Ok(())
    }
}

/// One op of the spec with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Dense {
        out: usize,
        /// `[out, in]`, ±1
        weight: Param<i8>,
        bias: Option<Param<i64>>,
    },
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        /// −1, 0 or +1; used for binary inputs only (integer inputs pad with 0)
        pad_value: i8,
        /// `[out, C, k, k]`, ±1
        weight: Param<i8>,
        bias: Option<Param<i64>>,
    },
    Threshold {
        bits: u32,
        /// `[C, 2^bits − 1]`
        thresholds: Param<i64>,
        /// `[C]`, 0 or 1
        flip: Option<Param<u8>>,
    },
    Add,
    MaxPool {
        kernel: usize,
        stride: usize,
    },
    SumPool,
}

impl Op {
    /// The op's name in the YAML.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dense { .. } => "dense",
            Op::Conv { .. } => "conv",
            Op::Threshold { .. } => "threshold",
            Op::Add => "add",
            Op::MaxPool { .. } => "maxpool",
            Op::SumPool => "sumpool",
        }
    }
}

/// A layer: a named op and the names of its inputs (a layer name or [`INPUT`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub inputs: Vec<String>,
    pub op: Op,
}

/// Where a layer's operand comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Src {
    Input,
    Layer(usize),
}

/// What validation works out for a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    pub srcs: Vec<Src>,
    pub shape: Shape,
    pub kind: Kind,
    /// For dense and conv: the exact range of Σ w·x before the bias (the accumulator).
    pub acc: Option<(i64, i64)>,
}

/// A validated network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub input: InputSpec,
    pub layers: Vec<Layer>,
    /// the name of the output layer
    pub output: String,
    info: Vec<LayerInfo>,
    order: Vec<usize>,
    output_index: usize,
}

impl Network {
    /// Checks a network and works out its shapes and value ranges.
    pub fn new(name: String, input: InputSpec, layers: Vec<Layer>, output: String) -> Result<Self> {
        Self::build(name, input, layers, output, true)
    }

    /// As [`Network::new`], but layers need not reach the output: for networks under
    /// construction (the random generator evaluates them to place thresholds).
    pub(crate) fn new_partial(
        name: String,
        input: InputSpec,
        layers: Vec<Layer>,
        output: String,
    ) -> Result<Self> {
        Self::build(name, input, layers, output, false)
    }

    fn build(
        name: String,
        input: InputSpec,
        layers: Vec<Layer>,
        output: String,
        strict: bool,
    ) -> Result<Self> {
        check_name(&name)?;
        if input.bits == 0 || input.bits > MAX_INPUT_BITS {
            bail!(
                "input: bits must be 1 (binary) to {MAX_INPUT_BITS}, not {}",
                input.bits
            );
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, l) in layers.iter().enumerate() {
            if l.name.is_empty() || l.name == INPUT {
                bail!("layer {}: the name '{}' is reserved or empty", i, l.name);
            }
            if index.insert(l.name.as_str(), i).is_some() {
                bail!("layer '{}': the name is used twice", l.name);
            }
        }
        if layers.is_empty() {
            bail!("the network has no layers");
        }
        let Some(&output_index) = index.get(output.as_str()) else {
            bail!("output '{output}' is not a layer");
        };
        let mut srcs = Vec::with_capacity(layers.len());
        for l in &layers {
            let want = if matches!(l.op, Op::Add) {
                "two or more inputs"
            } else {
                "one input"
            };
            let n_ok = if matches!(l.op, Op::Add) {
                l.inputs.len() >= 2
            } else {
                l.inputs.len() == 1
            };
            if !n_ok {
                bail!(
                    "layer '{}': {} takes {want}, has {}",
                    l.name,
                    l.op.name(),
                    l.inputs.len()
                );
            }
            let mut s = Vec::new();
            for name in &l.inputs {
                if name == INPUT {
                    s.push(Src::Input);
                } else if let Some(&j) = index.get(name.as_str()) {
                    s.push(Src::Layer(j));
                } else {
                    bail!("layer '{}': input '{name}' is not a layer", l.name);
                }
            }
            srcs.push(s);
        }
        let order = topological_order(&layers, &srcs)?;

        let mut info: Vec<Option<LayerInfo>> = vec![None; layers.len()];
        for &i in &order {
            let operands: Vec<(Shape, Kind)> = srcs[i]
                .iter()
                .map(|s| match *s {
                    Src::Input => (input.shape, input.kind()),
                    Src::Layer(j) => {
                        let li = info[j].as_ref().expect("topological order");
                        (li.shape, li.kind)
                    }
                })
                .collect();
            let (shape, kind, acc) = analyse(&layers[i], &operands)?;
            let (lo, hi) = kind.range();
            debug_assert!(lo <= hi);
            info[i] = Some(LayerInfo {
                srcs: srcs[i].clone(),
                shape,
                kind,
                acc,
            });
        }
        // after the shapes, whose errors say more about a mistake than reachability does
        if strict {
            check_reaches_output(&layers, &srcs, output_index)?;
        }
        let info = info
            .into_iter()
            .map(|i| i.expect("every layer analysed"))
            .collect();
        Ok(Network {
            name,
            input,
            layers,
            output,
            info,
            order,
            output_index,
        })
    }

    /// Per layer (in file order) its operands, shape and value kind.
    pub fn info(&self) -> &[LayerInfo] {
        &self.info
    }
    /// Layer indices in an order where every layer comes after its inputs.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    pub fn output_index(&self) -> usize {
        self.output_index
    }
    pub fn output_shape(&self) -> Shape {
        self.info[self.output_index].shape
    }
    pub fn output_kind(&self) -> Kind {
        self.info[self.output_index].kind
    }
    /// Shape and kind of an operand.
    pub fn src_shape_kind(&self, s: Src) -> (Shape, Kind) {
        match s {
            Src::Input => (self.input.shape, self.input.kind()),
            Src::Layer(j) => (self.info[j].shape, self.info[j].kind),
        }
    }
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// The network's identity: FNV-1a (64 bit) over its name, input, layers, op
    /// parameters and tensor values (not tensor or file names). The same network gives the
    /// same hash on every machine; `manifest.json` and the board's INFO packet carry it.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.text(&self.name);
        h.dims(&self.input.shape.dims());
        h.num(self.input.bits as i64);
        h.num(self.input.signed as i64);
        for l in &self.layers {
            h.text(&l.name);
            h.num(l.inputs.len() as i64);
            for i in &l.inputs {
                h.text(i);
            }
            h.text(l.op.name());
            match &l.op {
                Op::Dense { out, weight, bias } => {
                    h.num(*out as i64);
                    h.param(weight);
                    h.opt_param(bias);
                }
                Op::Conv {
                    out,
                    kernel,
                    stride,
                    padding,
                    pad_value,
                    weight,
                    bias,
                } => {
                    for v in [*out, *kernel, *stride, *padding] {
                        h.num(v as i64);
                    }
                    h.num(*pad_value as i64);
                    h.param(weight);
                    h.opt_param(bias);
                }
                Op::Threshold {
                    bits,
                    thresholds,
                    flip,
                } => {
                    h.num(*bits as i64);
                    h.param(thresholds);
                    h.opt_param(flip);
                }
                Op::Add | Op::SumPool => {}
                Op::MaxPool { kernel, stride } => {
                    h.num(*kernel as i64);
                    h.num(*stride as i64);
                }
            }
        }
        h.text(&self.output);
        h.0
    }
}

/// FNV-1a over a self-delimiting encoding (lengths before variable parts).
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ x as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn num(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    fn text(&mut self, t: &str) {
        self.num(t.len() as i64);
        self.bytes(t.as_bytes());
    }
    fn dims(&mut self, d: &[usize]) {
        self.num(d.len() as i64);
        for &x in d {
            self.num(x as i64);
        }
    }
    fn param<T: Copy + Into<i64>>(&mut self, p: &Param<T>) {
        self.dims(&p.dims);
        for &v in &p.data {
            self.num(v.into());
        }
    }
    fn opt_param<T: Copy + Into<i64>>(&mut self, p: &Option<Param<T>>) {
        match p {
            None => self.num(0),
            Some(p) => {
                self.num(1);
                self.param(p);
            }
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        bail!("name '{name}' must match [a-z0-9_-]+");
    }
    Ok(())
}

fn topological_order(layers: &[Layer], srcs: &[Vec<Src>]) -> Result<Vec<usize>> {
    // 0 = not visited, 1 = on the stack, 2 = done; iterative to survive deep chains
    let mut state = vec![0u8; layers.len()];
    let mut order = Vec::with_capacity(layers.len());
    for start in 0..layers.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((node, k)) = stack.pop() {
            if k < srcs[node].len() {
                stack.push((node, k + 1));
                if let Src::Layer(j) = srcs[node][k] {
                    match state[j] {
                        0 => {
                            state[j] = 1;
                            stack.push((j, 0));
                        }
                        1 => bail!(
                            "layer '{}': the graph has a cycle through '{}'",
                            layers[node].name,
                            layers[j].name
                        ),
                        _ => {}
                    }
                }
            } else {
                state[node] = 2;
                order.push(node);
            }
        }
    }
    Ok(order)
}

fn check_reaches_output(layers: &[Layer], srcs: &[Vec<Src>], output: usize) -> Result<()> {
    let mut used = vec![false; layers.len()];
    let mut todo = vec![output];
    used[output] = true;
    while let Some(i) = todo.pop() {
        for s in &srcs[i] {
            if let Src::Layer(j) = *s {
                if !used[j] {
                    used[j] = true;
                    todo.push(j);
                }
            }
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        bail!(
            "layer '{}' does not reach the output '{}'",
            layers[i].name,
            layers[output].name
        );
    }
    Ok(())
}

/// i128 range that must fit i64.
fn fit(layer: &str, lo: i128, hi: i128) -> Result<(i64, i64)> {
    match (i64::try_from(lo), i64::try_from(hi)) {
        (Ok(l), Ok(h)) => Ok((l, h)),
        _ => bail!("layer '{layer}': values can reach {lo}..={hi}, beyond the 64-bit range bnnforge supports"),
    }
}

/// Shape, kind and accumulator range of one layer given its operands.
fn analyse(l: &Layer, operands: &[(Shape, Kind)]) -> Result<(Shape, Kind, Option<(i64, i64)>)> {
    let name = l.name.as_str();
    let (ishape, ikind) = operands[0];
    let (xlo, xhi) = ikind.range();
    match &l.op {
        Op::Dense { out, weight, bias } => {
            let n = ishape.len();
            if *out == 0 {
                bail!("layer '{name}': out must be at least 1");
            }
            weight.expect_dims(name, "weight", &[*out, n])?;
            check_pm1(name, weight)?;
            if let Some(b) = bias {
                b.expect_dims(name, "bias", &[*out])?;
            }
            // each input position is a term w·x; pads and zero-padding are not involved
            let (acc, range) = weighted_sum_range(name, &weight.data, n, xlo, xhi, bias.as_ref())?;
            Ok((
                Shape::vector(*out),
                Kind::Int {
                    lo: range.0,
                    hi: range.1,
                },
                Some(acc),
            ))
        }
        Op::Conv {
            out,
            kernel,
            stride,
            padding,
            pad_value,
            weight,
            bias,
        } => {
            if !ishape.is_map {
                bail!("layer '{name}': conv needs a feature map [C, H, W], its input is {ishape}");
            }
            if *out == 0 || *kernel == 0 || *stride == 0 {
                bail!("layer '{name}': out, kernel and stride must be at least 1");
            }
            if ![-1, 0, 1].contains(pad_value) {
                bail!("layer '{name}': pad_value must be -1, 0 or 1, not {pad_value}");
            }
            let (k, s, p) = (*kernel, *stride, *padding);
            if k > MAX_KERNEL || s > MAX_KERNEL || p > MAX_KERNEL {
                bail!("layer '{name}': kernel, stride and padding must be at most {MAX_KERNEL}");
            }
            if ishape.h + 2 * p < k || ishape.w + 2 * p < k {
                bail!("layer '{name}': kernel {k} is larger than the padded input {ishape}");
            }
            weight.expect_dims(name, "weight", &[*out, ishape.c, k, k])?;
            check_pm1(name, weight)?;
            if let Some(b) = bias {
                b.expect_dims(name, "bias", &[*out])?;
            }
            let oh = (ishape.h + 2 * p - k) / s + 1;
            let ow = (ishape.w + 2 * p - k) / s + 1;
            let shape = Shape::map(*out, oh, ow);
            if shape.len() > MAX_ELEMENTS {
                bail!("layer '{name}': output {shape} is too large");
            }
            let (acc, range) = weighted_sum_range(
                name,
                &weight.data,
                ishape.c * k * k,
                xlo,
                xhi,
                bias.as_ref(),
            )?;
            Ok((
                shape,
                Kind::Int {
                    lo: range.0,
                    hi: range.1,
                },
                Some(acc),
            ))
        }
        Op::Threshold {
            bits,
            thresholds,
            flip,
        } => {
            if *bits == 0 || *bits > MAX_THRESHOLD_BITS {
                bail!(
                    "layer '{name}': threshold bits must be 1 to {MAX_THRESHOLD_BITS}, not {bits}"
                );
            }
            let count = (1usize << bits) - 1;
            if thresholds.dims.len() == 2
                && thresholds.dims[0] == ishape.c
                && thresholds.dims[1] != count
            {
                bail!(
                    "layer '{name}': thresholds '{}' has {} per channel, expected 2^{bits} - 1 = {count}",
                    thresholds.tensor,
                    thresholds.dims[1]
                );
            }
            thresholds.expect_dims(name, "thresholds", &[ishape.c, count])?;
            if let Some(f) = flip {
                f.expect_dims(name, "flip", &[ishape.c])?;
                if let Some(v) = f.data.iter().find(|&&v| v > 1) {
                    bail!(
                        "layer '{name}': flip '{}' holds {v}, must be 0 or 1",
                        f.tensor
                    );
                }
            }
            let kind = if *bits == 1 {
                Kind::Binary
            } else {
                Kind::Int {
                    lo: 0,
                    hi: count as i64,
                }
            };
            Ok((ishape, kind, None))
        }
        Op::Add => {
            let (mut lo, mut hi) = (0i128, 0i128);
            for (j, (s, k)) in operands.iter().enumerate() {
                if *s != ishape {
                    bail!(
                        "layer '{name}': add input '{}' has shape {s}, '{}' has {ishape}",
                        l.inputs[j],
                        l.inputs[0]
                    );
                }
                let (a, b) = k.range();
                lo += a as i128;
                hi += b as i128;
            }
            let (lo, hi) = fit(name, lo, hi)?;
            Ok((ishape, Kind::Int { lo, hi }, None))
        }
        Op::MaxPool { kernel, stride } => {
            if !ishape.is_map {
                bail!(
                    "layer '{name}': maxpool needs a feature map [C, H, W], its input is {ishape}"
                );
            }
            if *kernel == 0 || *stride == 0 {
                bail!("layer '{name}': kernel and stride must be at least 1");
            }
            if *kernel > ishape.h || *kernel > ishape.w {
                bail!("layer '{name}': kernel {kernel} is larger than the input {ishape}");
            }
            let shape = Shape::map(
                ishape.c,
                (ishape.h - kernel) / stride + 1,
                (ishape.w - kernel) / stride + 1,
            );
            Ok((shape, ikind, None))
        }
        Op::SumPool => {
            if !ishape.is_map {
                bail!(
                    "layer '{name}': sumpool needs a feature map [C, H, W], its input is {ishape}"
                );
            }
            let n = ishape.pixels() as i128;
            let (lo, hi) = fit(name, n * xlo as i128, n * xhi as i128)?;
            Ok((Shape::vector(ishape.c), Kind::Int { lo, hi }, None))
        }
    }
}

fn check_pm1(name: &str, w: &Param<i8>) -> Result<()> {
    if let Some(i) = w.data.iter().position(|&v| v != 1 && v != -1) {
        bail!(
            "layer '{name}': weight '{}' holds {} at flat index {i}; weights must be -1 or +1",
            w.tensor,
            w.data[i]
        );
    }
    Ok(())
}

/// Ranges of Σ w·x per output row (`fan_in` weights each) over all inputs with values
/// in `xlo..=xhi`. Returns the accumulator range (no bias) and the output range (with
/// bias), the hull over the rows.
///
/// Each term's range is widened to contain 0, so the bounds hold for every partial sum
/// of the accumulation (in any order) and for padded positions, which contribute 0. For
/// the inputs of real networks (unsigned integers, ±1, threshold counts) the terms
/// already span 0 and the bounds are exact.
fn weighted_sum_range(
    name: &str,
    weight: &[i8],
    fan_in: usize,
    xlo: i64,
    xhi: i64,
    bias: Option<&Param<i64>>,
) -> Result<((i64, i64), (i64, i64))> {
    // w = +1 gives x, w = −1 gives −x
    let (plo, phi) = ((xlo as i128).min(0), (xhi as i128).max(0));
    let (mlo, mhi) = (-phi, -plo);
    let (mut acc_lo, mut acc_hi) = (i128::MAX, i128::MIN);
    let (mut out_lo, mut out_hi) = (i128::MAX, i128::MIN);
    for (r, row) in weight.chunks(fan_in.max(1)).enumerate() {
        let pos = row.iter().filter(|&&w| w > 0).count() as i128;
        let neg = row.len() as i128 - pos;
        let lo = pos * plo + neg * mlo;
        let hi = pos * phi + neg * mhi;
        acc_lo = acc_lo.min(lo);
        acc_hi = acc_hi.max(hi);
        let b = bias.map_or(0, |b| b.data[r] as i128);
        out_lo = out_lo.min(lo + b);
        out_hi = out_hi.max(hi + b);
    }
    Ok((fit(name, acc_lo, acc_hi)?, fit(name, out_lo, out_hi)?))
}
