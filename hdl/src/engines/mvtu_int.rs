//! `MvtuInt`: the matrix-vector(-threshold) unit of `dense` and `conv` layers on integer
//! inputs (the first layer on 8-bit pixels, layers after `add`, `sumpool` or a multi-bit
//! `threshold`). As [`Mvtu`], with [`MvuIntPe`]s: each neuron computes y = Σ w·x
//! (w = ±1, x an `IB`-bit integer, two's complement when the input range is signed), then
//! thresholds (fused `threshold`, `B` bits) or y + bias (raw, `OB` bits). Conv inputs are
//! padded with 0 by the window; a 0 lane adds 0. Shared structure: `hdl/DESIGN.md`,
//! "Matrix-vector units".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>` (lane i at bits
//! [i·IB, (i+1)·IB)), `out_data: Bits<OW>`.
//!
//! Generics, in this order (checked by [`MvtuInt::new`], computed by
//! [`mvtu_int_generics`]): free `SIMD` (1..=64, divides the fan-in of a dense layer or
//! the input channels of a conv), `IB` (the input range's width, `Kind::width`), `OB`
//! (B with thresholds, else the output range's width); deduced `IW` = SIMD·IB,
//! `P` = clog2(SIMD + 1), `A` (the accumulator range's width, `LayerInfo::acc`), `Y` (A
//! if that range is signed, else A + 1), `WA` = clog2(NF·SF), `BA` = clog2(SF),
//! `CA` = clog2(NF) (at least 1 each), `U` = Y + 1, `K` = 2^B − 1 and `B` (1 and 1 raw),
//! `OW` = PE·OB.
//!
//! Cycles per frame: pixels·NF·SF (NF = out/PE, SF = n/SIMD). Latency: SF + 8 with
//! thresholds, SF + 5 raw ([`engine_latency`]).
//!
//! [`Mvtu`]: crate::engines::mvtu::Mvtu

use crate::address_bits;
use crate::bits_to_hold;
use crate::blocks::mvu_int_pe::{MvuIntPe, INT_PE_LATENCY};
use crate::blocks::weight_memory::{pe_weight_words, WeightMemory};
use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::folding::Fold;
use crate::compile::resources::{Formula, Memory};
use crate::engines::mvtu::MacSpec;
use crate::engines::mvtu::{
    engine_cycles_per_frame, engine_latency, layer_output, output_lanes, stream_weights,
    MvtuControl, MvtuLane, MvtuOutput,
};
use crate::engines::{Carries, EngineSpec, Span};
use bnnforge_model::kernels::int_width;
use bnnforge_model::network::{Kind, Network, Op};
use rust_hdl::prelude::*;

/// Names of the generics of [`MvtuInt`], in declaration order.
pub const MVTU_INT_GENERICS: [&str; 14] = [
    "SIMD", "IB", "IW", "P", "A", "Y", "WA", "BA", "CA", "U", "K", "B", "OB", "OW",
];

/// A PE's `y` (A bits, two's complement when the range is signed) as `Signed<Y>`:
/// Y = A for a signed range, else A + 1 with a 0 on top. A block because a kernel
/// cannot `bit_cast` a signal of a `Vec` element inside a loop (the cast's width is
/// evaluated outside the loop).
#[derive(LogicBlock)]
pub struct SignedY<const A: usize, const Y: usize> {
    pub a: Signal<In, Bits<A>>,
    pub y: Signal<Out, Signed<Y>>,
}

impl<const A: usize, const Y: usize> Default for SignedY<A, Y> {
    fn default() -> Self {
        assert!(
            Y == A || Y == A + 1,
            "SignedY: Y = {Y} must be A = {A} or A + 1"
        );
        Self {
            a: Default::default(),
            y: Default::default(),
        }
    }
}

impl<const A: usize, const Y: usize> Logic for SignedY<A, Y> {
    #[hdl_gen]
    fn update(&mut self) {
        self.y.next = signed_cast(bit_cast::<Y, A>(self.a.val()));
    }
}

/// Integer-input matrix-vector(-threshold) unit (see the module documentation).
#[derive(LogicBlock)]
pub struct MvtuInt<
    const SIMD: usize,
    const IB: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    ctrl: MvtuControl<IW, WA, BA, CA, OW>,
    wmem: Vec<WeightMemory<SIMD, WA>>,
    pes: Vec<MvuIntPe<SIMD, IB, IW, P, A>>,
    ys: Vec<SignedY<A, Y>>,
    lanes: Vec<MvtuLane<Y, U, K, B, CA, OB, OW>>,
    // loop bounds: PEs, the last PE
    _pe: usize,
    _last: usize,
    _info: MvtuIntInfo,
}

/// Run-time parameters of an [`MvtuInt`], for reports and the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MvtuIntInfo {
    pub n: usize,
    pub out: usize,
    pub pe: usize,
    pub simd: usize,
    /// neuron folds, out / PE
    pub nf: usize,
    /// synapse folds, n / SIMD
    pub sf: usize,
    /// vectors per frame (output pixels; 1 for dense)
    pub pixels: usize,
    pub threshold: bool,
    /// the input lanes' range, and whether they are two's complement (lo < 0)
    pub x_range: (i64, i64),
    pub x_signed: bool,
    /// the accumulator range Σ w·x before the bias
    pub acc: (i64, i64),
}

/// What the generics of an engine for `weights`/`bias`/`output` at `pe` × `simd` must
/// be, with inputs in `x`, and the accumulator range; or why there is no such engine.
fn required_generics(
    weights: &[Vec<i8>],
    bias: &[i64],
    output: &MvtuOutput,
    x: (i64, i64),
    pe: usize,
    simd: usize,
) -> Result<([usize; 14], (i64, i64)), String> {
    let out = weights.len();
    if out == 0 {
        return Err("no neurons".into());
    }
    let n = weights[0].len();
    if n == 0 || weights.iter().any(|r| r.len() != n) {
        return Err("weight rows must all have the same, non-zero length".into());
    }
    if bias.len() != out {
        return Err(format!("{} biases for {out} neurons", bias.len()));
    }
    if !(1..=64).contains(&simd) || n % simd != 0 {
        return Err(format!(
            "SIMD = {simd} must be in 1..=64 and divide the fan-in {n}"
        ));
    }
    if pe == 0 || out % pe != 0 {
        return Err(format!("PE = {pe} must divide out = {out}"));
    }
    if x.0 > x.1 {
        return Err(format!("empty input range {}..={}", x.0, x.1));
    }
    let (ib, _) = int_width(x.0 as i128, x.1 as i128);
    let ib = ib as usize;
    if ib > 32 {
        return Err(format!("{ib}-bit inputs (at most 32)"));
    }
    // the model's rule (`Network`): every term's range widened to contain 0
    let (plo, phi) = ((x.0 as i128).min(0), (x.1 as i128).max(0));
    let (mut acc, mut res) = ((i128::MAX, i128::MIN), (i128::MAX, i128::MIN));
    for (row, &b) in weights.iter().zip(bias) {
        let pos = row.iter().filter(|&&w| w > 0).count() as i128;
        let neg = n as i128 - pos;
        let (lo, hi) = (pos * plo - neg * phi, pos * phi - neg * plo);
        acc = (acc.0.min(lo), acc.1.max(hi));
        res = (res.0.min(lo + b as i128), res.1.max(hi + b as i128));
    }
    let fits = |v: i128| i64::try_from(v).is_ok();
    if !(fits(acc.0) && fits(acc.1) && fits(res.0) && fits(res.1)) {
        return Err("values beyond 64 bits".into());
    }
    let a = int_width(acc.0, acc.1).0 as usize;
    let y = a + (acc.0 >= 0) as usize;
    if y < 2 {
        return Err(format!(
            "accumulator range {}..={} is too narrow",
            acc.0, acc.1
        ));
    }
    let (k, b, ob) = match output {
        MvtuOutput::Threshold { thresholds, .. } => {
            let k = thresholds.first().map_or(0, |r| r.len());
            let b = (k + 1).trailing_zeros() as usize;
            if k + 1 != 1 << b || !(1..=8).contains(&b) {
                return Err(format!(
                    "{k} thresholds per channel is not 2^B - 1, B in 1..=8"
                ));
            }
            if y > 62 {
                return Err(format!("a {y}-bit accumulator is too wide for thresholds"));
            }
            (k, b, b)
        }
        MvtuOutput::Raw => (1, 1, int_width(res.0, res.1).0 as usize),
    };
    if ob > 64 {
        return Err(format!("{ob}-bit outputs (at most 64)"));
    }
    let (nf, sf) = (out / pe, n / simd);
    let g = [
        simd,
        ib,
        simd * ib,
        bits_to_hold(simd as u64),
        a,
        y,
        address_bits(nf * sf),
        address_bits(sf),
        address_bits(nf),
        y + 1,
        k,
        b,
        ob,
        pe * ob,
    ];
    Ok((g, (acc.0 as i64, acc.1 as i64)))
}

/// Checks generics `have` (in [`MVTU_INT_GENERICS`] order) against the engine they
/// must build (PE = OW / OB); returns the accumulator range. The check of
/// [`MvtuInt::new`].
fn check_generics(
    have: &[usize],
    weights: &[Vec<i8>],
    bias: &[i64],
    output: &MvtuOutput,
    x: (i64, i64),
) -> Result<(i64, i64), String> {
    if have.len() != 14 {
        return Err(format!("{} generics, not 14", have.len()));
    }
    let (ob, ow) = (have[12], have[13]);
    if ob == 0 || ow % ob != 0 {
        return Err(format!("OW = {ow} must be PE · OB with OB = {ob}"));
    }
    let (want, acc) = required_generics(weights, bias, output, x, ow / ob, have[0])?;
    for (i, name) in MVTU_INT_GENERICS.iter().enumerate() {
        if have[i] != want[i] {
            return Err(format!(
                "generic {name} = {} but the layer needs {} (all: {want:?})",
                have[i], want[i]
            ));
        }
    }
    Ok(acc)
}

/// What an [`MvtuInt`] is built from: weights in stream order, bias, output, pixels,
/// input range.
type LayerParts = (Vec<Vec<i8>>, Vec<i64>, MvtuOutput, usize, (i64, i64));

/// The parts of dense/conv layer `layer` of `net` an [`MvtuInt`] is built from, or why
/// it cannot be one: the layer's input must be integer, and for conv `simd` must divide
/// the input channels (a beat holds channels of one kernel position).
fn layer_parts(
    net: &Network,
    layer: usize,
    threshold: Option<usize>,
    simd: usize,
) -> Result<LayerParts, String> {
    let info = &net.info()[layer];
    let (ishape, kind) = net.src_shape_kind(info.srcs[0]);
    let Kind::Int { lo, hi } = kind else {
        return Err(format!("layer {layer} has a binary input (that is Mvtu's)"));
    };
    if matches!(net.layers[layer].op, Op::Conv { .. }) && (simd == 0 || ishape.c % simd != 0) {
        return Err(format!(
            "SIMD = {simd} must divide the {} input channels of conv layer {layer}",
            ishape.c
        ));
    }
    let (bias, output) = layer_output("MvtuInt", net, layer, threshold);
    Ok((
        stream_weights(net, layer),
        bias,
        output,
        info.shape.pixels(),
        (lo, hi),
    ))
}

/// The widths must be the model's: the accumulator range and, raw, the output width.
fn check_against_model(net: &Network, layer: usize, raw: bool, acc: (i64, i64), ob: usize) {
    let info = &net.info()[layer];
    assert_eq!(
        Some(acc),
        info.acc,
        "MvtuInt: accumulator range of layer {layer} differs from the model's"
    );
    if raw {
        assert_eq!(
            ob,
            info.kind.width().0 as usize,
            "MvtuInt: output width of layer {layer} differs from the model's"
        );
    }
}

/// The const generics of [`MvtuInt`] for dense/conv layer `layer` of `net` (integer
/// input), threshold layer `threshold` fused or raw, at `pe` PEs × `simd` lanes, in
/// declaration order ([`MVTU_INT_GENERICS`]), so that
/// `MvtuInt::<g0, g1, …>::from_network(net, layer, threshold)` builds. Panics when the
/// layer or the folding does not fit (see [`try_mvtu_int_generics`]).
pub fn mvtu_int_generics(
    net: &Network,
    layer: usize,
    threshold: Option<usize>,
    pe: usize,
    simd: usize,
) -> Vec<usize> {
    try_mvtu_int_generics(net, layer, threshold, pe, simd)
        .unwrap_or_else(|e| panic!("MvtuInt: {e}"))
}

/// [`mvtu_int_generics`], or why there is no such engine: a binary input, PE not
/// dividing out, SIMD not in 1..=64 or not dividing the fan-in (dense) or the input
/// channels (conv), widths beyond the blocks' limits.
pub fn try_mvtu_int_generics(
    net: &Network,
    layer: usize,
    threshold: Option<usize>,
    pe: usize,
    simd: usize,
) -> Result<Vec<usize>, String> {
    let (weights, bias, output, _, x) = layer_parts(net, layer, threshold, simd)?;
    let (g, acc) = required_generics(&weights, &bias, &output, x, pe, simd)
        .map_err(|e| format!("layer {layer}: {e}"))?;
    check_against_model(net, layer, threshold.is_none(), acc, g[12]);
    Ok(g.to_vec())
}

impl<
        const SIMD: usize,
        const IB: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > MvtuInt<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    /// An engine for `weights` (`[out][n]` ±1, in stream order, see [`stream_weights`]),
    /// `bias` (`[out]`) and `output`, `pixels` vectors per frame, input lanes in
    /// `x_range` (two's complement when it reaches below 0). PE = OW / OB. Panics unless
    /// every generic is exactly what the layer needs.
    pub fn new(
        weights: &[Vec<i8>],
        bias: &[i64],
        output: &MvtuOutput,
        pixels: usize,
        x_range: (i64, i64),
    ) -> Self {
        let have = [SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW];
        let acc = check_generics(&have, weights, bias, output, x_range)
            .unwrap_or_else(|e| panic!("MvtuInt: {e}"));
        assert!(pixels >= 1, "MvtuInt: pixels must be at least 1");
        let (out, n, pe) = (weights.len(), weights[0].len(), OW / OB);
        let (nf, sf) = (out / pe, n / SIMD);
        let x_signed = x_range.0 < 0;
        let words = pe_weight_words(weights, pe, SIMD);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            ctrl: MvtuControl::new("MvtuInt", nf, sf, INT_PE_LATENCY),
            wmem: words.iter().map(|w| WeightMemory::new(w)).collect(),
            pes: (0..pe)
                .map(|_| MvuIntPe::new(x_signed, acc.0, acc.1))
                .collect(),
            ys: (0..pe).map(|_| SignedY::default()).collect(),
            lanes: output_lanes("MvtuInt", output, bias, pe, acc.0, acc.1),
            _pe: pe,
            _last: pe - 1,
            _info: MvtuIntInfo {
                n,
                out,
                pe,
                simd: SIMD,
                nf,
                sf,
                pixels,
                threshold: matches!(output, MvtuOutput::Threshold { .. }),
                x_range,
                x_signed,
                acc,
            },
        }
    }

    /// The engine of dense or conv layer `layer` of `net` (integer input), with
    /// threshold layer `threshold` fused (it must read `layer`), else raw. Panics when
    /// the generics are not [`mvtu_int_generics`] of the layer at PE = OW / OB.
    pub fn from_network(net: &Network, layer: usize, threshold: Option<usize>) -> Self {
        let (weights, bias, output, pixels, x) =
            layer_parts(net, layer, threshold, SIMD).unwrap_or_else(|e| panic!("MvtuInt: {e}"));
        let u = Self::new(&weights, &bias, &output, pixels, x);
        check_against_model(net, layer, threshold.is_none(), u._info.acc, OB);
        u
    }

    /// The run-time parameters.
    pub fn info(&self) -> MvtuIntInfo {
        self._info
    }

    /// Cycles per frame at full rate: pixels · NF · SF.
    pub fn cycles_per_frame(&self) -> u64 {
        let i = self._info;
        engine_cycles_per_frame(i.pixels, i.nf, i.sf)
    }

    /// First input beat to first output beat at full rate: SF + 8 with thresholds,
    /// SF + 5 raw.
    pub fn latency(&self) -> u64 {
        engine_latency(self._info.sf, self._info.threshold, INT_PE_LATENCY)
    }
}

impl<
        const SIMD: usize,
        const IB: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > Logic for MvtuInt<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.ctrl.clock.next = self.clock.val();
        self.ctrl.reset.next = self.reset.val();
        self.ctrl.in_data.next = self.in_data.val();
        self.ctrl.in_valid.next = self.in_valid.val();
        self.ctrl.out_ready.next = self.out_ready.val();
        self.in_ready.next = self.ctrl.in_ready.val();
        self.out_valid.next = self.ctrl.out_valid.val();
        self.out_data.next = self.ctrl.out_data.val();
        for p in 0..self._pe {
            self.wmem[p].clock.next = self.clock.val();
            self.wmem[p].address.next = self.ctrl.waddr.val();
            self.pes[p].clock.next = self.clock.val();
            self.pes[p].in_valid.next = self.ctrl.pe_valid.val();
            self.pes[p].first.next = self.ctrl.pe_first.val();
            self.pes[p].last.next = self.ctrl.pe_last.val();
            self.pes[p].x.next = self.ctrl.x.val();
            self.pes[p].w.next = self.wmem[p].data.val();
            self.lanes[p].clock.next = self.clock.val();
            self.lanes[p].y_valid.next = self.pes[p].out_valid.val();
            self.lanes[p].ch.next = self.ctrl.ch.val();
            self.lanes[p].ch_pre.next = self.ctrl.ch_pre.val();
        }
        for p in 0..self._pe {
            self.ys[p].a.next = self.pes[p].y.val();
            self.lanes[p].y.next = self.ys[p].y.val();
        }
        self.lanes[0].prev.next = 0.into();
        for p in 1..self._pe {
            self.lanes[p].prev.next = self.lanes[p - 1].out.val();
        }
        self.ctrl.res_write.next = self.lanes[0].valid.val();
        for p in self._last..self._pe {
            self.ctrl.res_data.next = self.lanes[p].out.val();
        }
    }
}

/// An [`MvtuInt`] in a design (integer inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct MvtuIntSpec(pub MacSpec);

impl MvtuIntSpec {
    /// The engine of integer-input MAC layer `layer` of `net`, `threshold` fused, at
    /// `fold`, reading beats of `in_width` bits.
    pub fn new(
        net: &Network,
        layer: usize,
        threshold: Option<usize>,
        fold: Fold,
        in_width: usize,
    ) -> MvtuIntSpec {
        let g = mvtu_int_generics(net, layer, threshold, fold.pe, fold.simd);
        MvtuIntSpec(MacSpec::new(net, layer, threshold, fold, in_width, &g))
    }
}

/// MvtuInt LUT4: coefficients as `MVTU_LUT` of [`Mvtu`](crate::engines::mvtu::Mvtu);
/// the first two fitted on 2 engines (the per-PE share taken from the binary engine).
const MVTU_INT_LUT: [f64; 9] = [
    62.800, 36.200, 3.453, 3.013, 0.595, 0.532, 0.953, 0.854, 1.396,
];
/// MvtuInt DFF: coefficients as `MVTU_DFF` (no popcount pipeline: the last feature is
/// PE·SIMD); the registered weight and threshold words' share and the constant fitted on
/// 2 engines.
const MVTU_INT_DFF: [f64; 8] = [51.737, 2.265, 2.907, 0.096, 1.356, 0.284, 1.630, 1.630];

impl EngineSpec for MvtuIntSpec {
    fn timing(&self) -> Box<dyn crate::compile::timing::StreamTiming> {
        self.0.timing(INT_PE_LATENCY)
    }
    fn name(&self) -> &'static str {
        "mvtu_int"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    fn generics(&self) -> Vec<usize> {
        self.0.g.to_vec(true)
    }
    fn cycles(&self) -> u64 {
        self.0.cycles()
    }
    fn latency(&self) -> u64 {
        self.0.latency(INT_PE_LATENCY)
    }
    fn span(&self, input: Span, beats: u64) -> Span {
        self.0.span(INT_PE_LATENCY, input, beats)
    }
    fn ready_after_reset(&self) -> u64 {
        crate::engines::mvtu::reset_drain(INT_PE_LATENCY)
    }
    fn memory_bits(&self) -> u64 {
        self.0.memory_bits()
    }
    fn memories(&self) -> Vec<Memory> {
        self.0.memories()
    }
    fn logic(&self, ms: &[Memory], _io: f64) -> Formula {
        self.0.logic(&MVTU_INT_LUT, &MVTU_INT_DFF, ms, 0)
    }
    fn acc_bits(&self) -> Option<usize> {
        Some(self.0.g.a)
    }
    fn constant_thresholds(&self) -> Option<usize> {
        self.0.constant_thresholds()
    }
    fn carries(&self) -> Carries {
        self.0.carries()
    }
}

/// Emitter of engine `i` of `d` (an [`MvtuIntSpec`]).
pub fn emit<
    const SIMD: usize,
    const IB: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let g = [SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW];
    let (e, MvtuIntSpec(s)) = engine::<MvtuIntSpec>(d, i, &g);
    let b = MvtuInt::<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
        net,
        s.layer,
        s.threshold,
    );
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::mvtu::test_nets::{
        frame, input, input_beats, layer_net, output_beats, Feed,
    };
    use crate::stream::testbench::{check_engine, single_stream_dut};
    use crate::synth::ice40_stats;
    use bnnforge_model::network::{InputSpec, Shape};
    use bnnforge_model::random::{random_network, RandomConfig};
    use rand::Rng;

    single_stream_dut!(
        MvtuInt<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>,
        IW,
        OW,
        [const SIMD: usize, const IB: usize, const IW: usize, const P: usize, const A: usize,
         const Y: usize, const WA: usize, const BA: usize, const CA: usize, const U: usize,
         const K: usize, const B: usize, const OB: usize, const OW: usize]
    );

    struct Case {
        net: Network,
        mac: usize,
        threshold: Option<usize>,
        pe: usize,
        frames: Vec<Vec<i64>>,
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        rng: &mut impl Rng,
        feed: Feed,
        out: usize,
        conv: Option<(usize, usize, usize, i8)>,
        bias: Option<i64>,
        tbits: Option<u32>,
        pe: usize,
        frames: usize,
    ) -> Case {
        let frames: Vec<Vec<i64>> = (0..frames).map(|_| frame(rng, &feed.input)).collect();
        let mac = feed.mac();
        let net = layer_net(rng, feed, out, conv, bias, tbits, &frames);
        Case {
            net,
            mac,
            threshold: tbits.map(|_| mac + 1),
            pe,
            frames,
        }
    }

    fn feed(shape: Shape, bits: u32, signed: bool) -> Feed {
        Feed::plain(input(shape, bits, signed))
    }

    /// rust-hdl simulation against the model with stalls on both streams, then at full
    /// rate measuring cycles per frame and latency, then (with `verilog`) Icarus.
    fn run<
        const SIMD: usize,
        const IB: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    >(
        rng: &mut impl Rng,
        c: &Case,
        verilog: bool,
    ) {
        let g = mvtu_int_generics(&c.net, c.mac, c.threshold, c.pe, SIMD);
        assert_eq!(
            g,
            [SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW],
            "test case generics differ from mvtu_int_generics"
        );
        let build = || {
            let mut u = MvtuInt::<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
                &c.net,
                c.mac,
                c.threshold,
            );
            u.connect_all();
            u
        };
        let uut = build();
        let info = uut.info();
        let beats: Vec<u128> = c
            .frames
            .iter()
            .flat_map(|f| input_beats(&c.net, c.mac, f, SIMD, false))
            .collect();
        let want: Vec<u128> = c
            .frames
            .iter()
            .flat_map(|f| output_beats(&c.net, f, info.pe, OB))
            .collect();
        let label = format!("MvtuInt {info:?}");
        let timing = (uut.cycles_per_frame(), uut.latency());
        let name = format!("mvtu_int_{}_{}_{}_{IB}", info.n, info.out, info.pe);
        let icarus = verilog.then_some(name.as_str());
        let frames = c.frames.len();
        let fold = Fold {
            pe: c.pe,
            simd: SIMD,
        };
        let spec = MvtuIntSpec::new(&c.net, c.mac, c.threshold, fold, IW);
        assert_eq!(
            (spec.0.nf(), spec.0.sf(), spec.0.threshold.is_some()),
            (info.nf, info.sf, info.threshold),
            "test setup: the spec is another engine"
        );
        let model = || spec.timing();
        let full = check_engine(
            &label,
            build,
            &beats,
            &want,
            frames,
            timing,
            rng,
            icarus,
            Some(&model),
        );
        full.assert_cycles_per_frame(frames, timing.0, &label);
    }

    #[test]
    fn dense_and_conv_match_the_model_with_stalls() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_int");
        let r = &mut rng;
        // <SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
        // dense 24 → 6 on 8-bit unsigned, PE 2, SIMD 4, 1-bit thresholds, bias: SF 6, NF 3
        let f = feed(Shape::vector(24), 8, false);
        let c = case(r, f, 6, None, Some(40), Some(1), 2, 3);
        run::<4, 8, 32, 3, 14, 14, 5, 3, 2, 15, 1, 1, 1, 2>(r, &c, true);
        // dense on a 4-bit signed map [4, 3, 3] → 4, PE 4 (NF 1), SIMD 2, raw + bias
        let f = feed(Shape::map(4, 3, 3), 4, true);
        let c = case(r, f, 4, None, Some(20), None, 4, 3);
        run::<2, 4, 8, 2, 10, 10, 5, 5, 1, 11, 1, 1, 10, 40>(r, &c, false);
        // SF 1: dense 16 → 8 on 2-bit unsigned, PE 2, SIMD 16, 2-bit thresholds
        let f = feed(Shape::vector(16), 2, false);
        let c = case(r, f, 8, None, Some(3), Some(2), 2, 4);
        run::<16, 2, 32, 5, 7, 7, 2, 1, 2, 8, 3, 2, 2, 4>(r, &c, false);
        // conv [3, 6, 6] 8-bit pixels k3 s1 p1 → 4 (a first layer), PE 2, SIMD 3
        let f = feed(Shape::map(3, 6, 6), 8, false);
        let c = case(r, f, 4, Some((3, 1, 1, 0)), Some(100), Some(1), 2, 2);
        run::<3, 8, 24, 2, 14, 14, 5, 4, 1, 15, 1, 1, 1, 2>(r, &c, true);
        // conv [2, 5, 5] 5-bit signed k3 s2 p1 → 6, PE 3, SIMD 1, raw + bias
        let f = feed(Shape::map(2, 5, 5), 5, true);
        let c = case(r, f, 6, Some((3, 2, 1, 0)), Some(10), None, 3, 3);
        run::<1, 5, 5, 1, 10, 10, 6, 5, 1, 11, 1, 1, 10, 30>(r, &c, false);
        // conv [4, 4, 4] 2-bit unsigned k3 p0 → 4, PE 4, SIMD 2, 2-bit thresholds
        let f = feed(Shape::map(4, 4, 4), 2, false);
        let c = case(r, f, 4, Some((3, 1, 0, 0)), Some(4), Some(2), 4, 3);
        run::<2, 2, 4, 2, 8, 8, 5, 5, 1, 9, 3, 2, 2, 8>(r, &c, false);
    }

    #[test]
    fn narrow_and_unsigned_ranges_match_the_model() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_int_ranges");
        let r = &mut rng;
        // after add(input, input) of 3-bit signed values: lanes in [-8, 6], 4 bits
        let f = Feed {
            doubled: true,
            ..feed(Shape::vector(12), 3, true)
        };
        let c = case(r, f, 4, None, Some(5), None, 2, 3);
        run::<4, 4, 16, 3, 8, 8, 3, 2, 1, 9, 1, 1, 8, 16>(r, &c, true);
        // all weights +1 on unsigned inputs: the accumulator [0, 120] is unsigned (A = 7,
        // Y = 8), thresholds without bias, then raw with a bias
        let f = Feed {
            all_plus: true,
            ..feed(Shape::vector(8), 4, false)
        };
        let c = case(r, f.clone(), 4, None, None, Some(1), 4, 3);
        run::<8, 4, 32, 4, 7, 8, 1, 1, 1, 9, 1, 1, 1, 4>(r, &c, false);
        let c = case(r, f, 4, None, Some(7), None, 2, 3);
        run::<4, 4, 16, 3, 7, 8, 2, 1, 1, 9, 1, 1, 8, 16>(r, &c, true);
    }

    /// Every single-generic change of `g` must be refused, except an OB or OW that
    /// selects another PE count (PE = OW / OB) whose generics these are.
    fn only_exact_generics_pass(g: &[usize], parts: &LayerParts) {
        let (w, b, o, _, x) = parts;
        for i in 0..g.len() {
            for d in [-1i64, 1] {
                let mut h = g.to_vec();
                let v = h[i] as i64 + d;
                if v < 0 {
                    continue;
                }
                h[i] = v as usize;
                let other_pe = i >= 12 && h[12] > 0 && h[13] % h[12] == 0;
                assert!(
                    check_generics(&h, w, b, o, *x).is_err() || other_pe,
                    "{} = {v} accepted instead of {}",
                    MVTU_INT_GENERICS[i],
                    g[i]
                );
            }
        }
    }

    #[test]
    fn generics_agree_with_the_constructor_on_random_layers() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_int_generics");
        let cfg = RandomConfig::default();
        let mut layers = 0;
        for _ in 0..300 {
            let net = random_network(rng.gen(), &cfg);
            for (l, info) in net.info().iter().enumerate() {
                let is_mac = matches!(net.layers[l].op, Op::Dense { .. } | Op::Conv { .. });
                let (ishape, kind) = net.src_shape_kind(info.srcs[0]);
                if !is_mac || kind.is_binary() {
                    continue;
                }
                let name = &net.layers[l].name;
                let fused = (0..net.layers.len()).find(|&t| {
                    matches!(net.layers[t].op, Op::Threshold { .. })
                        && net.layers[t].inputs == [name.clone()]
                });
                let out = info.shape.c;
                let divisors =
                    |m: usize| (1..=m.min(64)).filter(|d| m % d == 0).collect::<Vec<_>>();
                // SIMD divides the input channels of a conv, the fan-in of a dense layer
                let unit = match net.layers[l].op {
                    Op::Conv { .. } => ishape.c,
                    _ => ishape.len(),
                };
                let (pes, simds) = (divisors(out), divisors(unit));
                for threshold in [None, fused] {
                    if threshold.is_none() && info.kind.width().0 > 64 {
                        continue;
                    }
                    let pe = pes[rng.gen_range(0..pes.len())];
                    let simd = simds[rng.gen_range(0..simds.len())];
                    let g = mvtu_int_generics(&net, l, threshold, pe, simd);
                    let parts = layer_parts(&net, l, threshold, simd).unwrap();
                    // what the constructor checks, with the generics given
                    let acc = check_generics(&g, &parts.0, &parts.1, &parts.2, parts.4)
                        .unwrap_or_else(|e| panic!("layer {l} of {}: {e}", net.name));
                    assert_eq!(Some(acc), info.acc, "accumulator range");
                    let (iw, _) = kind.width();
                    let (aw, _) = int_width(acc.0 as i128, acc.1 as i128);
                    assert_eq!((g[0], g[1], g[4]), (simd, iw as usize, aw as usize));
                    assert_eq!(g[13], pe * g[12], "OW = PE · OB");
                    only_exact_generics_pass(&g, &parts);
                    layers += 1;
                }
                // foldings that do not fit are refused
                assert!(try_mvtu_int_generics(&net, l, None, out + 1, 1).is_err());
                assert!(try_mvtu_int_generics(&net, l, None, 1, 65).is_err());
            }
        }
        println!("mvtu_int_generics checked on {layers} random layers");
        assert!(layers >= 50, "only {layers} integer-input layers");
    }

    #[test]
    #[should_panic(expected = "generic A = 9 but the layer needs 10")]
    fn rejects_a_narrow_accumulator() {
        // 8-bit unsigned lanes, weights +1 -1 +1: y in [-255, 510], 10 bits
        let w = vec![vec![1i8, -1, 1]; 2];
        let _ = MvtuInt::<1, 8, 8, 1, 9, 9, 2, 2, 1, 10, 1, 1, 1, 2>::new(
            &w,
            &[0, 0],
            &MvtuOutput::Threshold {
                thresholds: vec![vec![0]; 2],
                flip: vec![false; 2],
            },
            1,
            (0, 255),
        );
    }

    #[test]
    #[should_panic(expected = "has a binary input")]
    fn rejects_a_binary_input() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_int_binary");
        let r = &mut rng;
        let f = feed(Shape::vector(8), 1, false);
        let c = case(r, f, 2, None, None, None, 1, 1);
        let _ = mvtu_int_generics(&c.net, 0, None, 1, 8);
    }

    #[test]
    fn synthesises_clean_with_block_ram_weights() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_int_synth");
        let r = &mut rng;
        // the conv case of the stream test: [3, 6, 6] 8-bit k3 → 4, PE 2, SIMD 3
        let f = feed(Shape::map(3, 6, 6), 8, false);
        let c = case(r, f, 4, Some((3, 1, 1, 0)), Some(100), Some(1), 2, 1);
        let mut u = MvtuInt::<3, 8, 24, 2, 14, 14, 5, 4, 1, 15, 1, 1, 1, 2>::from_network(
            &c.net,
            0,
            Some(1),
        );
        u.connect_all();
        let s = ice40_stats("mvtu_int_conv", &generate_verilog(&u), "top").unwrap();
        println!("MvtuInt conv 3x6x6 8-bit k3 -> 4, PE 2, SIMD 3, thresholds: {s}");
        // raw mode, signed lanes: dense [4, 3, 3] 4-bit → 4, PE 4, SIMD 2
        let f = feed(Shape::map(4, 3, 3), 4, true);
        let c = case(r, f, 4, None, Some(20), None, 4, 1);
        let mut u =
            MvtuInt::<2, 4, 8, 2, 10, 10, 5, 5, 1, 11, 1, 1, 10, 40>::from_network(&c.net, 0, None);
        u.connect_all();
        let s = ice40_stats("mvtu_int_raw", &generate_verilog(&u), "top").unwrap();
        println!("MvtuInt dense 4x3x3 4-bit signed -> 4 raw, PE 4, SIMD 2: {s}");
    }

    #[test]
    fn mnist_first_layer_784_to_64_on_8_bit_pixels() {
        // TFC's first layer on 8-bit pixels instead of binarised ones, PE = SIMD = 16
        let mut rng = bnnforge_model::random::test_rng("mvtu_int_tfc");
        let r = &mut rng;
        let input = InputSpec {
            shape: Shape::map(1, 28, 28),
            bits: 8,
            signed: false,
        };
        let c = case(r, Feed::plain(input), 64, None, None, Some(1), 16, 2);
        let g = mvtu_int_generics(&c.net, 0, Some(1), 16, 16);
        assert_eq!(g, [16, 8, 128, 5, 19, 19, 8, 6, 2, 20, 1, 1, 1, 16]);
        let mut u = MvtuInt::<16, 8, 128, 5, 19, 19, 8, 6, 2, 20, 1, 1, 1, 16>::from_network(
            &c.net,
            0,
            Some(1),
        );
        u.connect_all();
        assert_eq!(u.cycles_per_frame(), 196);
        let s = ice40_stats("mvtu_int_tfc", &generate_verilog(&u), "top").unwrap();
        println!("MvtuInt 784 (8-bit) -> 64, PE = SIMD = 16, 1-bit thresholds: {s}");
        assert!(s.bram >= 16, "weights not in block RAM: {s}");
    }
}
