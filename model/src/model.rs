//! The bit-exact software model: the golden reference for the hardware.
//!
//! [`Model::new`] prepares a validated [`Network`] once (weights bit-packed and permuted
//! to the layout below, thresholds sorted, pad contributions precomputed); evaluation
//! is then allocation-light and runs frames of a batch on all cores.
//!
//! Layout of every activation: pixels in H, W order, and for each pixel its channels
//! (HWC, the order the hardware streams). Binary values are packed one bit per
//! channel (1 = +1) in `wpp = ⌈C/64⌉` words per pixel, bits above C zero; integers are
//! one i64 per element. A vector `[F]` is a map `[F, 1, 1]`, so the channel of element i
//! is always `i % C`. Input and output use the spec's C, H, W order.
//!
//! Binary dot products use Σ w·x = n − 2·popcount(x XOR w) on the packed words, on
//! the popcount path of [`crate::simd`] the model was built for; the validation in
//! [`Network::new`] proves every accumulator fits i64.

use crate::network::{Kind, Network, Op, Shape, Src};
use crate::simd::{PackedRows, Path};
use bitvec::prelude::*;
use rayon::prelude::*;

/// An activation in HWC layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// `wpp` words per pixel
    Bin(Vec<u64>),
    Int(Vec<i64>),
}

fn wpp(c: usize) -> usize {
    c.div_ceil(64)
}

/// Sets the bit of channel `ch` of the pixel that starts at word `pixel_word`.
#[inline]
fn set_channel(words: &mut [u64], pixel_word: usize, ch: usize) {
    words
        .view_bits_mut::<Lsb0>()
        .set(pixel_word * 64 + ch, true);
}

/// The mask of the valid channel bits of word `i` of a pixel with `c` channels.
fn channel_mask(c: usize, i: usize) -> u64 {
    let lo = i * 64;
    let n = c.saturating_sub(lo).min(64);
    if n == 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Bit b set where `vs[b] > 0`, for up to 64 values.
fn positive_bits(vs: &[i64]) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
    if let Ok(vs) = <&[i64; 64]>::try_from(vs) {
        // SAFETY: this build targets CPUs with SSE4.2 (the cfg above)
        return unsafe { positive_bits_sse(vs) };
    }
    vs.iter()
        .enumerate()
        .fold(0u64, |w, (b, &v)| w | ((v > 0) as u64) << b)
}

/// [`positive_bits`] of 64 values, 16 per `pmovmskb`: `pcmpgtq` masks narrowed to
/// bytes. A binary input frame of a dense layer is 1024 such values: packed one by
/// one, they took a fifth of the time of a 1024x1024 binary dense layer.
#[cfg(all(target_arch = "x86_64", target_feature = "sse4.2"))]
#[target_feature(enable = "sse4.2")]
fn positive_bits_sse(vs: &[i64; 64]) -> u64 {
    use std::arch::x86_64::*;
    let zero = _mm_setzero_si128();
    let mut w = 0u64;
    for (q, v) in vs.chunks_exact(16).enumerate() {
        // the masks of 16 values as i64 pairs, then the low i32 of each (4 per vector),
        // then i16 and i8
        let mut m = [zero; 8];
        for (i, m) in m.iter_mut().enumerate() {
            *m = _mm_cmpgt_epi64(_mm_set_epi64x(v[2 * i + 1], v[2 * i]), zero);
        }
        let mut four = [zero; 4];
        for (i, f) in four.iter_mut().enumerate() {
            let (a, b) = (_mm_castsi128_ps(m[2 * i]), _mm_castsi128_ps(m[2 * i + 1]));
            *f = _mm_castps_si128(_mm_shuffle_ps::<0b10_00_10_00>(a, b));
        }
        let lo = _mm_packs_epi32(four[0], four[1]);
        let hi = _mm_packs_epi32(four[2], four[3]);
        let bits = _mm_movemask_epi8(_mm_packs_epi16(lo, hi)) as u32 as u64;
        w |= bits << (16 * q);
    }
    w
}

impl Act {
    /// Element `i` (HWC index) of an activation with `c` channels, binary as ±1.
    #[inline]
    fn get(&self, c: usize, i: usize) -> i64 {
        match self {
            Act::Int(v) => v[i],
            Act::Bin(words) => {
                let (p, ch) = (i / c, i % c);
                let bit = words[p * wpp(c) + ch / 64] >> (ch % 64) & 1;
                2 * bit as i64 - 1
            }
        }
    }

    /// From values in C, H, W order (binary as ±1).
    pub fn from_chw(shape: Shape, binary: bool, x: &[i64]) -> Act {
        let (c, hw) = (shape.c, shape.pixels());
        if binary {
            let wp = wpp(c);
            if hw == 1 {
                // a vector: 64 consecutive values per word
                return Act::Bin(x.chunks(64).map(positive_bits).collect());
            }
            let mut words = vec![0u64; hw * wp];
            for (ch, plane) in x.chunks_exact(hw).enumerate() {
                let (word, bit) = (ch / 64, ch % 64);
                if wp == 1 {
                    // one word per pixel: a loop the compiler vectorises
                    for (w, &v) in words.iter_mut().zip(plane) {
                        *w |= ((v > 0) as u64) << bit;
                    }
                } else {
                    for (px, &v) in words.chunks_exact_mut(wp).zip(plane) {
                        px[word] |= ((v > 0) as u64) << bit;
                    }
                }
            }
            Act::Bin(words)
        } else if hw == 1 {
            Act::Int(x.to_vec())
        } else {
            let mut v = vec![0i64; hw * c];
            for ch in 0..c {
                for p in 0..hw {
                    v[p * c + ch] = x[ch * hw + p];
                }
            }
            Act::Int(v)
        }
    }

    /// To values in C, H, W order (binary as ±1).
    pub fn to_chw(&self, shape: Shape) -> Vec<i64> {
        let mut out = vec![0i64; shape.len()];
        self.write_chw(shape, &mut out);
        out
    }

    /// [`Act::to_chw`] into `out`, which has `shape.len()` values.
    pub fn write_chw(&self, shape: Shape, out: &mut [i64]) {
        let (c, hw) = (shape.c, shape.pixels());
        assert_eq!(out.len(), c * hw, "output length");
        match self {
            Act::Int(v) if hw == 1 => out.copy_from_slice(v),
            Act::Int(v) => {
                // a transpose in tiles of 8 pixels: each channel's 8 values fill one
                // cache line of `out` while the tile's pixels stay in cache
                for p0 in (0..hw).step_by(8) {
                    let p1 = (p0 + 8).min(hw);
                    for ch in 0..c {
                        for p in p0..p1 {
                            out[ch * hw + p] = v[p * c + ch];
                        }
                    }
                }
            }
            Act::Bin(words) => {
                for (p, px) in words.chunks_exact(wpp(c)).enumerate() {
                    for ch in 0..c {
                        out[ch * hw + p] = 2 * (px[ch / 64] >> (ch % 64) & 1) as i64 - 1;
                    }
                }
            }
        }
    }
}

/// One layer, prepared for evaluation.
enum Exec {
    DenseBin {
        /// fan-in
        n: i64,
        /// packed weight words per row (the input's HWC word layout)
        row_words: usize,
        w: PackedRows,
        bias: Vec<i64>,
    },
    /// Integer input of at most [`MAX_PLANES`] bits, as bit planes: Σ w·x =
    /// Σ_b ±2^b·(2·popcount(plane_b AND w⁺) − popcount(plane_b)), the top plane negative
    /// when the input is signed.
    DensePlanes {
        planes: u32,
        signed: bool,
        /// packed words per row and per plane (the input's HWC word layout)
        row_words: usize,
        /// bit set where the weight is +1
        w: PackedRows,
        /// popcount of each row of `w`
        wpop: Vec<i64>,
        bias: Vec<i64>,
    },
    DenseInt {
        n: usize,
        /// `[out][n]` in HWC input order
        w: Vec<i8>,
        bias: Vec<i64>,
    },
    ConvBin {
        geo: ConvGeometry,
        pad: i8,
        /// `[out]` rows of `[k·k][wpp]` words
        w: PackedRows,
        /// popcount of each `[out][k·k]` weight group (for pad value 0)
        wpop: Vec<u32>,
        bias: Vec<i64>,
    },
    ConvInt {
        geo: ConvGeometry,
        /// `[out][k·k][C]`
        w: Vec<i8>,
        bias: Vec<i64>,
    },
    Threshold {
        c: usize,
        count: usize,
        /// `[C][count]`, each row sorted ascending
        sorted: Vec<i64>,
        flip: Vec<bool>,
        binary_out: bool,
    },
    Add,
    MaxPool {
        k: usize,
        s: usize,
    },
    SumPool,
}

#[derive(Clone, Copy)]
struct ConvGeometry {
    input: Shape,
    out: Shape,
    k: usize,
    s: usize,
    p: usize,
}

impl ConvGeometry {
    /// Input pixel of kernel position (ky, kx) for output pixel (oy, ox), or None when
    /// it falls in the padding.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (oy * self.s + ky).checked_sub(self.p)?;
        let ix = (ox * self.s + kx).checked_sub(self.p)?;
        (iy < self.input.h && ix < self.input.w).then_some(iy * self.input.w + ix)
    }
}

/// The prepared, bit-exact model of a network.
pub struct Model {
    net: Network,
    exec: Vec<Exec>,
    path: Path,
}

impl Model {
    /// The model on the popcount path of [`Path::selected`] (`BNNFORGE_SIMD`, else the
    /// fastest this CPU has).
    pub fn new(net: &Network) -> Model {
        Model::with_path(net, Path::selected())
    }

    /// The model on a given popcount path (one the CPU lacks runs the portable one).
    pub fn with_path(net: &Network, path: Path) -> Model {
        let path = if path.available() {
            path
        } else {
            Path::Portable
        };
        let exec = net
            .layers
            .iter()
            .zip(net.info())
            .map(|(l, info)| {
                let (ishape, ikind) = net.src_shape_kind(info.srcs[0]);
                prepare(&l.op, ishape, ikind, info.shape, path)
            })
            .collect();
        Model {
            net: net.clone(),
            exec,
            path,
        }
    }

    /// The popcount path this model runs on.
    pub fn path(&self) -> Path {
        self.path
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Number of values in one input frame.
    pub fn input_len(&self) -> usize {
        self.net.input.shape.len()
    }

    /// Number of values in one output frame.
    pub fn output_len(&self) -> usize {
        self.net.output_shape().len()
    }

    /// Evaluates every layer of one frame; returns each layer's activation (HWC) in the
    /// network's layer order (unused layers are still evaluated: validation guarantees
    /// every layer reaches the output).
    pub fn eval_acts(&self, x: &[i64]) -> Vec<Act> {
        let (_, acts) = self.eval_first(x, self.exec.len());
        acts.into_iter()
            .map(|a| a.expect("every layer evaluated"))
            .collect()
    }

    /// The input activation and those of the first `count` layers in evaluation order.
    fn eval_first(&self, x: &[i64], count: usize) -> (Act, Vec<Option<Act>>) {
        assert_eq!(x.len(), self.input_len(), "frame length");
        let input = Act::from_chw(self.net.input.shape, self.net.input.kind().is_binary(), x);
        let mut acts: Vec<Option<Act>> = vec![None; self.exec.len()];
        for &i in &self.net.order()[..count] {
            let info = &self.net.info()[i];
            let operands: Vec<&Act> = info
                .srcs
                .iter()
                .map(|&s| operand(&input, &acts, s))
                .collect();
            let (ishape, _) = self.net.src_shape_kind(info.srcs[0]);
            let a = run(&self.exec[i], &operands, ishape, info.shape);
            acts[i] = Some(a);
        }
        (input, acts)
    }

    /// One frame: input values in C, H, W order, the output values (flattened C, H, W).
    pub fn eval(&self, x: &[i64]) -> Vec<i64> {
        let o = self.net.output_index();
        let shape = self.net.info()[o].shape;
        match self.eval_acts(x).swap_remove(o) {
            // a vector of integers is already in C, H, W order: no copy
            Act::Int(v) if shape.pixels() == 1 => v,
            a => a.to_chw(shape),
        }
    }

    /// [`Model::eval`] into `out`, which has [`Model::output_len`] values.
    pub fn eval_into(&self, x: &[i64], out: &mut [i64]) {
        let o = self.net.output_index();
        let info = &self.net.info()[o];
        // every layer reaches the output, so it is the last one evaluated
        let before = self.exec.len() - 1;
        if let (
            Exec::DenseBin {
                n,
                row_words,
                w,
                bias,
            },
            Some(&last),
        ) = (&self.exec[o], self.net.order().last())
        {
            assert_eq!(last, o, "the output layer is evaluated last");
            // a binary dense output layer (the common classifier) writes `out` itself:
            // a vector is in C, H, W order already
            let (input, acts) = self.eval_first(x, before);
            if let Act::Bin(xw) = operand(&input, &acts, info.srcs[0]) {
                return dense_bin(*n, &xw[..*row_words], w, bias, out);
            }
        }
        self.eval_acts(x)[o].write_chw(info.shape, out);
    }

    /// Every layer's values of one frame in C, H, W order, in layer order.
    pub fn eval_layers(&self, x: &[i64]) -> Vec<Vec<i64>> {
        self.eval_acts(x)
            .iter()
            .zip(self.net.info())
            .map(|(a, info)| a.to_chw(info.shape))
            .collect()
    }

    /// A batch of frames laid end to end, evaluated on all cores of the current rayon
    /// pool. Returns the outputs laid end to end.
    pub fn eval_batch(&self, xs: &[i64]) -> Vec<i64> {
        let mut out = vec![0i64; xs.len() / self.input_len() * self.output_len()];
        self.eval_batch_into(xs, &mut out);
        out
    }

    /// [`Model::eval_batch`] into `out`, which has [`Model::output_len`] values per frame.
    pub fn eval_batch_into(&self, xs: &[i64], out: &mut [i64]) {
        let (n_in, n_out) = (self.input_len(), self.output_len());
        assert_eq!(xs.len() % n_in, 0, "batch length");
        assert_eq!(out.len(), xs.len() / n_in * n_out, "output length");
        out.par_chunks_mut(n_out)
            .zip(xs.par_chunks(n_in))
            .for_each(|(o, x)| self.eval_into(x, o));
    }
}

/// Dense weights `[out, C·H·W]` (C, H, W column order) packed into the binary word
/// layout of an HWC input (bit set for +1): returns the words per row and the words.
fn pack_dense(weight: &[i8], out: usize, c: usize, hw: usize) -> (usize, Vec<u64>) {
    let (n, wp) = (c * hw, wpp(c));
    let row_words = hw * wp;
    let mut w = vec![0u64; out * row_words];
    for o in 0..out {
        for ch in 0..c {
            for p in 0..hw {
                if weight[o * n + ch * hw + p] > 0 {
                    set_channel(&mut w, o * row_words + p * wp, ch);
                }
            }
        }
    }
    (row_words, w)
}

fn prepare(op: &Op, ishape: Shape, ikind: Kind, oshape: Shape, path: Path) -> Exec {
    let binary = ikind.is_binary();
    let bias_of = |b: &Option<crate::network::Param<i64>>, out: usize| {
        b.as_ref().map_or_else(|| vec![0; out], |b| b.data.clone())
    };
    match op {
        Op::Dense { out, weight, bias } => {
            let (c, hw) = (ishape.c, ishape.pixels());
            let n = c * hw;
            // weight column j is CHW index (ch, p); the input is HWC
            if binary {
                let (row_words, w) = pack_dense(&weight.data, *out, c, hw);
                Exec::DenseBin {
                    n: n as i64,
                    row_words,
                    w: PackedRows::new(w, row_words, path),
                    bias: bias_of(bias, *out),
                }
            } else if let (planes @ 1..=MAX_PLANES, signed) = ikind.width() {
                let (row_words, w) = pack_dense(&weight.data, *out, c, hw);
                let wpop = w
                    .chunks_exact(row_words)
                    .map(|r| r.iter().map(|v| v.count_ones() as i64).sum())
                    .collect();
                Exec::DensePlanes {
                    planes,
                    signed,
                    row_words,
                    w: PackedRows::new(w, row_words, path),
                    wpop,
                    bias: bias_of(bias, *out),
                }
            } else {
                let mut w = vec![0i8; out * n];
                for o in 0..*out {
                    for ch in 0..c {
                        for p in 0..hw {
                            w[o * n + p * c + ch] = weight.data[o * n + ch * hw + p];
                        }
                    }
                }
                Exec::DenseInt {
                    n,
                    w,
                    bias: bias_of(bias, *out),
                }
            }
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
            let (c, k) = (ishape.c, *kernel);
            let kk = k * k;
            let geo = ConvGeometry {
                input: ishape,
                out: oshape,
                k,
                s: *stride,
                p: *padding,
            };
            // weight [o][ch][ky][kx] at ((o·C + ch)·k + ky)·k + kx
            let wt = |o: usize, ch: usize, pos: usize| weight.data[(o * c + ch) * kk + pos];
            if binary {
                let wp = wpp(c);
                let mut w = vec![0u64; out * kk * wp];
                let mut wpop = vec![0u32; out * kk];
                for o in 0..*out {
                    for pos in 0..kk {
                        for ch in 0..c {
                            if wt(o, ch, pos) > 0 {
                                set_channel(&mut w, (o * kk + pos) * wp, ch);
                                wpop[o * kk + pos] += 1;
                            }
                        }
                    }
                }
                Exec::ConvBin {
                    geo,
                    pad: *pad_value,
                    w: PackedRows::new(w, kk * wp, path),
                    wpop,
                    bias: bias_of(bias, *out),
                }
            } else {
                let mut w = vec![0i8; out * kk * c];
                for o in 0..*out {
                    for pos in 0..kk {
                        for ch in 0..c {
                            w[(o * kk + pos) * c + ch] = wt(o, ch, pos);
                        }
                    }
                }
                Exec::ConvInt {
                    geo,
                    w,
                    bias: bias_of(bias, *out),
                }
            }
        }
        Op::Threshold {
            bits,
            thresholds,
            flip,
        } => {
            let c = ishape.c;
            let count = thresholds.dims[1];
            let mut sorted = thresholds.data.clone();
            for row in sorted.chunks_mut(count) {
                row.sort_unstable();
            }
            let flip = flip.as_ref().map_or_else(
                || vec![false; c],
                |f| f.data.iter().map(|&v| v == 1).collect(),
            );
            Exec::Threshold {
                c,
                count,
                sorted,
                flip,
                binary_out: *bits == 1,
            }
        }
        Op::Add => Exec::Add,
        Op::MaxPool { kernel, stride } => Exec::MaxPool {
            k: *kernel,
            s: *stride,
        },
        Op::SumPool => Exec::SumPool,
    }
}

fn run(exec: &Exec, xs: &[&Act], ishape: Shape, oshape: Shape) -> Act {
    let x = xs[0];
    match (exec, x) {
        (
            Exec::DenseBin {
                n,
                row_words,
                w,
                bias,
            },
            Act::Bin(xw),
        ) => {
            let mut v = vec![0i64; bias.len()];
            dense_bin(*n, &xw[..*row_words], w, bias, &mut v);
            Act::Int(v)
        }
        (
            Exec::DensePlanes {
                planes,
                signed,
                row_words,
                w,
                wpop,
                bias,
            },
            Act::Int(xv),
        ) => dense_planes(*planes, *signed, *row_words, w, wpop, bias, xv, ishape.c),
        (Exec::DenseInt { n, w, bias }, Act::Int(xv)) => Act::Int(
            w.chunks_exact(*n)
                .zip(bias)
                .map(|(row, b)| row.iter().zip(xv).map(|(&w, &x)| w as i64 * x).sum::<i64>() + b)
                .collect(),
        ),
        (
            Exec::ConvBin {
                geo,
                pad,
                w,
                wpop,
                bias,
            },
            Act::Bin(xw),
        ) => conv_bin(geo, *pad, w, wpop, bias, xw),
        (Exec::ConvInt { geo, w, bias }, Act::Int(xv)) => conv_int(geo, w, bias, xv),
        (
            Exec::Threshold {
                c,
                count,
                sorted,
                flip,
                binary_out,
            },
            _,
        ) => {
            let n = ishape.len();
            let count_of = |i: usize| {
                let ch = i % c;
                crate::kernels::threshold_count_sorted(
                    x.get(*c, i),
                    &sorted[ch * count..(ch + 1) * count],
                    flip[ch],
                )
            };
            if let (true, Act::Int(v)) = (*binary_out, x) {
                // the common case (an accumulator to one bit): pixel by pixel, no division
                let wp = wpp(*c);
                let mut words = vec![0u64; ishape.pixels() * wp];
                for (px, ys) in words.chunks_exact_mut(wp).zip(v.chunks_exact(*c)) {
                    for (ch, &y) in ys.iter().enumerate() {
                        let t = &sorted[ch * count..(ch + 1) * count];
                        let bit = crate::kernels::threshold_count_sorted(y, t, flip[ch]);
                        px[ch / 64] |= (bit as u64) << (ch % 64);
                    }
                }
                Act::Bin(words)
            } else if *binary_out {
                let wp = wpp(*c);
                let mut words = vec![0u64; ishape.pixels() * wp];
                for i in 0..n {
                    if count_of(i) == 1 {
                        let (p, ch) = (i / c, i % c);
                        set_channel(&mut words, p * wp, ch);
                    }
                }
                Act::Bin(words)
            } else {
                Act::Int((0..n).map(|i| count_of(i) as i64).collect())
            }
        }
        (Exec::Add, _) => {
            let c = ishape.c;
            Act::Int(
                (0..ishape.len())
                    .map(|i| xs.iter().map(|a| a.get(c, i)).sum())
                    .collect(),
            )
        }
        (Exec::MaxPool { k, s }, _) => maxpool(x, ishape, oshape, *k, *s),
        (Exec::SumPool, _) => {
            let c = ishape.c;
            let mut sums = vec![0i64; c];
            for i in 0..ishape.len() {
                sums[i % c] += x.get(c, i);
            }
            Act::Int(sums)
        }
        _ => unreachable!("validation matched each op to its operand kind"),
    }
}

/// The activation a layer reads from `src`.
fn operand<'a>(input: &'a Act, acts: &'a [Option<Act>], src: Src) -> &'a Act {
    match src {
        Src::Input => input,
        Src::Layer(j) => acts[j].as_ref().expect("topological order"),
    }
}

/// `out[o] = n − 2·popcount(x XOR w_o) + bias[o]`: a binary dense layer.
fn dense_bin(n: i64, x: &[u64], w: &PackedRows, bias: &[i64], out: &mut [i64]) {
    // the popcounts of 256 rows at a time, on the stack
    w.xor_popcount_chunks(x, |first, d| {
        let (o, b) = (&mut out[first..][..d.len()], &bias[first..][..d.len()]);
        #[cfg(target_arch = "x86_64")]
        if crate::simd::Path::Avx2.available() {
            // SAFETY: `dense_out_avx2` needs AVX2, which the CPU has (checked above)
            unsafe { dense_out_avx2(n, d, b, o) };
            return;
        }
        dense_out(n, d, b, o);
    });
}

/// `o[i] = n − 2·d[i] + b[i]`.
#[inline(always)]
fn dense_out(n: i64, d: &[u32], b: &[i64], o: &mut [i64]) {
    for ((o, &d), b) in o.iter_mut().zip(d).zip(b) {
        *o = n - 2 * d as i64 + b;
    }
}

/// [`dense_out`] four outputs to a 256-bit vector: for the 1024 outputs of a
/// 1024x1024 binary dense layer, the 128-bit loop of the x86-64-v2 build took about a
/// tenth of a frame's time with the AVX2 popcount path, this about half as long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dense_out_avx2(n: i64, d: &[u32], b: &[i64], o: &mut [i64]) {
    use std::arch::x86_64::*;
    assert!(
        d.len() == o.len() && b.len() == o.len(),
        "one count and bias per output"
    );
    let nv = _mm256_set1_epi64x(n);
    let whole = o.len() / 4 * 4;
    for i in (0..whole).step_by(4) {
        // SAFETY: elements i..i + 4 of `d`, `b` and `o` exist (i + 4 ≤ whole ≤ len);
        // every load and store is unaligned
        unsafe {
            let dv = _mm256_cvtepu32_epi64(_mm_loadu_si128(d.as_ptr().add(i).cast()));
            let bv = _mm256_loadu_si256(b.as_ptr().add(i).cast());
            let r = _mm256_add_epi64(_mm256_sub_epi64(nv, _mm256_add_epi64(dv, dv)), bv);
            _mm256_storeu_si256(o.as_mut_ptr().add(i).cast(), r);
        }
    }
    dense_out(n, &d[whole..], &b[whole..], &mut o[whole..]);
}

/// Integer inputs up to this many bits take the bit-plane path of dense layers.
const MAX_PLANES: u32 = 12;

#[allow(clippy::too_many_arguments)]
fn dense_planes(
    planes: u32,
    signed: bool,
    row_words: usize,
    w: &PackedRows,
    wpop: &[i64],
    bias: &[i64],
    xv: &[i64],
    c: usize,
) -> Act {
    let wp = wpp(c);
    // plane b holds bit b of every value (two's complement), in the binary word layout
    let mut bits = vec![0u64; planes as usize * row_words];
    for (i, &x) in xv.iter().enumerate() {
        let (p, ch) = (i / c, i % c);
        for b in 0..planes as usize {
            if (x >> b) & 1 == 1 {
                set_channel(&mut bits[b * row_words..], p * wp, ch);
            }
        }
    }
    let weight_of = |b: u32| {
        if signed && b == planes - 1 {
            -(1i64 << b)
        } else {
            1i64 << b
        }
    };
    // with agree = popcount(row AND plane): 2·agree − popcount(plane) =
    // popcount(row) − popcount(row XOR plane)
    let mut y = bias.to_vec();
    let mut d = vec![0u32; bias.len()];
    for (b, plane) in bits.chunks_exact(row_words).enumerate() {
        w.xor_popcount(plane, &mut d);
        let k = weight_of(b as u32);
        for ((y, &d), &p) in y.iter_mut().zip(&d).zip(wpop) {
            *y += k * (p - d as i64);
        }
    }
    Act::Int(y)
}

fn conv_bin(
    geo: &ConvGeometry,
    pad: i8,
    w: &PackedRows,
    wpop: &[u32],
    bias: &[i64],
    xw: &[u64],
) -> Act {
    let c = geo.input.c;
    let wp = wpp(c);
    let kk = geo.k * geo.k;
    let group = kk * wp;
    // the words of a padded position: −1 is all zero bits, +1 all valid channel bits
    let pad_words: Vec<u64> = (0..wp)
        .map(|i| if pad > 0 { channel_mask(c, i) } else { 0 })
        .collect();
    let mut patch = vec![0u64; group];
    let mut skipped: Vec<usize> = Vec::with_capacity(kk);
    let mut out = Vec::with_capacity(geo.out.len());
    let mut d = vec![0u32; bias.len()];
    for oy in 0..geo.out.h {
        for ox in 0..geo.out.w {
            skipped.clear();
            for ky in 0..geo.k {
                for kx in 0..geo.k {
                    let pos = ky * geo.k + kx;
                    let dst = &mut patch[pos * wp..(pos + 1) * wp];
                    match geo.source(oy, ox, ky, kx) {
                        Some(pix) => dst.copy_from_slice(&xw[pix * wp..(pix + 1) * wp]),
                        None => {
                            dst.copy_from_slice(&pad_words);
                            if pad == 0 {
                                skipped.push(pos);
                            }
                        }
                    }
                }
            }
            // with pad 0 a skipped position holds zero words: its XOR popcount is the
            // weights' popcount, removed again below
            let n = ((kk - skipped.len()) * c) as i64;
            w.xor_popcount(&patch, &mut d);
            if skipped.is_empty() {
                out.extend(d.iter().zip(bias).map(|(&d, b)| n - 2 * d as i64 + b));
            } else {
                for (o, (&d, b)) in d.iter().zip(bias).enumerate() {
                    let skip: u32 = skipped.iter().map(|&pos| wpop[o * kk + pos]).sum();
                    out.push(n - 2 * (d - skip) as i64 + b);
                }
            }
        }
    }
    Act::Int(out)
}

fn conv_int(geo: &ConvGeometry, w: &[i8], bias: &[i64], xv: &[i64]) -> Act {
    let c = geo.input.c;
    let kk = geo.k * geo.k;
    // the k·k·C inputs under the kernel, in the weights' [k·k][C] order; integer inputs
    // are padded with 0, so a padded position adds nothing
    let mut patch = vec![0i64; kk * c];
    let mut out = Vec::with_capacity(geo.out.len());
    for oy in 0..geo.out.h {
        for ox in 0..geo.out.w {
            for ky in 0..geo.k {
                for kx in 0..geo.k {
                    let pos = ky * geo.k + kx;
                    let dst = &mut patch[pos * c..(pos + 1) * c];
                    match geo.source(oy, ox, ky, kx) {
                        Some(pix) => dst.copy_from_slice(&xv[pix * c..(pix + 1) * c]),
                        None => dst.fill(0),
                    }
                }
            }
            out.extend(w.chunks_exact(kk * c).zip(bias).map(|(wo, b)| {
                wo.iter()
                    .zip(&patch)
                    .map(|(&w, &x)| w as i64 * x)
                    .sum::<i64>()
                    + b
            }));
        }
    }
    Act::Int(out)
}

fn maxpool(x: &Act, ishape: Shape, oshape: Shape, k: usize, s: usize) -> Act {
    let c = ishape.c;
    match x {
        Act::Bin(words) => {
            // max of ±1 values is the OR of their bits
            let wp = wpp(c);
            let mut out = vec![0u64; oshape.pixels() * wp];
            for oy in 0..oshape.h {
                for ox in 0..oshape.w {
                    let dst = (oy * oshape.w + ox) * wp;
                    for ky in 0..k {
                        for kx in 0..k {
                            let src = ((oy * s + ky) * ishape.w + ox * s + kx) * wp;
                            for i in 0..wp {
                                out[dst + i] |= words[src + i];
                            }
                        }
                    }
                }
            }
            Act::Bin(out)
        }
        Act::Int(v) => {
            let mut out = vec![i64::MIN; oshape.len()];
            for oy in 0..oshape.h {
                for ox in 0..oshape.w {
                    let dst = (oy * oshape.w + ox) * c;
                    for ky in 0..k {
                        for kx in 0..k {
                            let src = ((oy * s + ky) * ishape.w + ox * s + kx) * c;
                            for ch in 0..c {
                                out[dst + ch] = out[dst + ch].max(v[src + ch]);
                            }
                        }
                    }
                }
            }
            Act::Int(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_bits_of_extreme_values() {
        let vals = [
            i64::MIN,
            i64::MIN + 1,
            -2,
            -1,
            0,
            1,
            2,
            i64::MAX - 1,
            i64::MAX,
        ];
        for len in [1, 5, 63, 64, 65, 128, 130] {
            for shift in 0..vals.len() {
                let x: Vec<i64> = (0..len)
                    .map(|i| vals[(i * 7 + shift) % vals.len()])
                    .collect();
                let Act::Bin(got) = Act::from_chw(Shape::vector(len), true, &x) else {
                    panic!("binary")
                };
                let mut want = vec![0u64; len.div_ceil(64)];
                for (i, &v) in x.iter().enumerate() {
                    want[i / 64] |= ((v > 0) as u64) << (i % 64);
                }
                assert_eq!(got, want, "{len} values from {shift}");
            }
        }
    }
}
