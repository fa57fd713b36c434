//! `ResidualAdder<N, IW, OB, OW>`: the spec's `add` of N streams (2 ≤ N ≤ [`MAX_INPUTS`]).
//! Each input carries L lanes of its own kind (binary as ±1, unsigned or signed, each in
//! its exact width); the output is the elementwise sum in the exact width of the sum's
//! range, computed modulo 2^OB (exact, as the sum fits). A beat is taken from every input
//! at once, when all offer one; the sum goes into a [`SkidBuffer`].
//!
//! Ports: the engine contract with packed inputs (`hdl/ENGINES.md`): `in_data: Bits<IW>`
//! (operand k at bit W_0 + … + W_(k−1), W_k = L·B_k), `in_valid`, `in_ready: Bits<N>`,
//! `out_data: Bits<OW>`. `in_ready` depends on the skid buffer's state and the inputs'
//! valids, never on `out_ready`.
//!
//! Generics (checked by `new`): `N` inputs; `OB` the output element width, which must be
//! the width of the sum's range; deduced `IW` = L·(B_0 + … + B_(N−1)), `OW` = L·OB.
//! Run-time: `kinds`, each input's `bnnforge_model::Kind` (its width is B_k; offsets and
//! masks are `Constant`s, as they only select wires).
//!
//! Cycles per frame: one beat per cycle when all inputs keep up. Latency: [`LATENCY`] (1).

use crate::compile::design::{Design, Elem};
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, Formula, Memory};
use crate::engines::{Carries, EngineSpec, StreamTiming};
use crate::stream::skid_buffer::{SkidBuffer, SkidTiming};
use bnnforge_model::kernels::int_width;
use bnnforge_model::Kind;
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Beats taken at edge t give a sum offered from cycle t + 1.
pub const LATENCY: u64 = 1;

/// The largest number of inputs of one [`ResidualAdder`].
pub const MAX_INPUTS: usize = 8;

/// The kind of `add`'s result, as the model computes it: the sum of the ranges.
pub fn add_kind(kinds: &[Kind]) -> Kind {
    let (lo, hi) = kinds.iter().fold((0i64, 0i64), |(lo, hi), k| {
        let (a, b) = k.range();
        (lo + a, hi + b)
    });
    Kind::Int { lo, hi }
}

/// Bit offset and width of each operand's beat in the packed `in_data`, for `lanes`
/// lanes of operands of `kinds`.
pub fn operand_slices(kinds: &[Kind], lanes: usize) -> Vec<(usize, usize)> {
    let mut off = 0;
    kinds
        .iter()
        .map(|k| {
            let w = lanes * k.width().0 as usize;
            off += w;
            (off - w, w)
        })
        .collect()
}

/// One operand of one lane: `sum = acc + ext(element)` (or `ext(element)` for the
/// lane's first operand), and `out = prev | sum << lane offset` for its last operand
/// (`prev` otherwise). A `Vec` of these, lane by lane and operand by operand, chained
/// `acc ← sum` and `prev ← out`, builds the output beat (rust-hdl kernels have no
/// arrays of local signals, and cannot assign slices of one).
#[derive(LogicBlock)]
pub struct AddTerm<const IW: usize, const OB: usize, const OW: usize> {
    /// The packed input beats.
    pub data: Signal<In, Bits<IW>>,
    /// The lane's sum of the operands before this one.
    pub acc: Signal<In, Bits<OB>>,
    /// The lane's sum including this operand.
    pub sum: Signal<Out, Bits<OB>>,
    /// Output beat so far (lanes below this one).
    pub prev: Signal<In, Bits<OW>>,
    /// `prev`, with this lane's sum inserted if this is its last operand.
    pub out: Signal<Out, Bits<OW>>,
    x: Signal<Local, Bits<OB>>,
    e: Signal<Local, Bits<OB>>,
    off: Constant<Bits<16>>,
    offo: Constant<Bits<16>>,
    low: Constant<Bits<OB>>,
    sign: Constant<Bits<OB>>,
    hi: Constant<Bits<OB>>,
    bin: Constant<Bit>,
    first: Constant<Bit>,
    last: Constant<Bit>,
    one: Constant<Bits<OB>>,
    ones: Constant<Bits<OB>>,
}

/// Bits [from, to) set.
fn bit_range<const W: usize>(from: usize, to: usize) -> Bits<W> {
    let mut m = Bits::<W>::default();
    for i in from..to.min(W) {
        m = m.replace_bit(i, true);
    }
    m
}

impl<const IW: usize, const OB: usize, const OW: usize> AddTerm<IW, OB, OW> {
    /// Operand `k` (of `kinds`, packed as [`operand_slices`] says) of lane `lane` of
    /// `lanes`.
    pub fn new(lane: usize, lanes: usize, k: usize, kinds: &[Kind]) -> Self {
        let kind = kinds[k];
        let (b, signed) = kind.width();
        let b = b as usize;
        let (base, _) = operand_slices(kinds, lanes)[k];
        // an operand at least OB wide is only truncated; a narrower signed one is
        // sign-extended from its bit b − 1
        let extend = signed && !kind.is_binary() && b < OB;
        Self {
            data: Default::default(),
            acc: Default::default(),
            sum: Default::default(),
            prev: Default::default(),
            out: Default::default(),
            x: Default::default(),
            e: Default::default(),
            off: Constant::new(((base + lane * b) as u64).into()),
            offo: Constant::new(((lane * OB) as u64).into()),
            low: Constant::new(bit_range::<OB>(0, b)),
            sign: Constant::new(if extend {
                bit_range::<OB>(b - 1, b)
            } else {
                Bits::default()
            }),
            hi: Constant::new(if extend {
                bit_range::<OB>(b, OB)
            } else {
                Bits::default()
            }),
            bin: Constant::new(kind.is_binary()),
            first: Constant::new(k == 0),
            last: Constant::new(k + 1 == kinds.len()),
            one: Constant::new(1u64.into()),
            ones: Constant::new(Bits::<OB>::mask()),
        }
    }
}

impl<const IW: usize, const OB: usize, const OW: usize> Logic for AddTerm<IW, OB, OW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.x.next = bit_cast::<OB, IW>(self.data.val() >> self.off.val()) & self.low.val();
        self.e.next = self.x.val();
        if (self.x.val() & self.sign.val()).any() {
            self.e.next = self.x.val() | self.hi.val();
        }
        if self.bin.val() {
            self.e.next = self.ones.val();
            if self.x.val().any() {
                self.e.next = self.one.val();
            }
        }
        self.sum.next = self.acc.val() + self.e.val();
        if self.first.val() {
            self.sum.next = self.e.val();
        }
        self.out.next = self.prev.val();
        if self.last.val() {
            self.out.next =
                self.prev.val() | (bit_cast::<OW, OB>(self.sum.val()) << self.offo.val());
        }
    }
}

/// N-input residual adder (see the module documentation).
#[derive(LogicBlock)]
pub struct ResidualAdder<const N: usize, const IW: usize, const OB: usize, const OW: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// The N input beats, operand 0 in the low bits.
    pub in_data: Signal<In, Bits<IW>>,
    /// Bit k: input k offers a beat.
    pub in_valid: Signal<In, Bits<N>>,
    /// Bit k: input k's beat is taken (with all the others').
    pub in_ready: Signal<Out, Bits<N>>,
    /// The sums (registered).
    pub out_data: Signal<Out, Bits<OW>>,
    /// A beat of sums is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    terms: Vec<AddTerm<IW, OB, OW>>,
    skid: SkidBuffer<OW>,
    all: Signal<Local, Bit>,
    every: Constant<Bits<N>>,
    _terms: usize,
    _last: usize,
    _slices: Vec<(usize, usize)>,
}

impl<const N: usize, const IW: usize, const OB: usize, const OW: usize>
    ResidualAdder<N, IW, OB, OW>
{
    /// An adder of N streams of the given kinds (in the model's terms).
    pub fn new(kinds: &[Kind]) -> Self {
        let name = "ResidualAdder";
        assert!(
            (2..=MAX_INPUTS).contains(&N),
            "{name}: N = {N} inputs, not in 2..={MAX_INPUTS}"
        );
        assert_eq!(kinds.len(), N, "{name}: {N} input kinds needed");
        assert!((1..=64).contains(&OB), "{name}: OB = {OB} not in 1..=64");
        let lanes = OW / OB;
        assert!(
            lanes >= 1 && OW == lanes * OB,
            "{name}: OW = {OW} is not a whole number of {OB}-bit lanes"
        );
        let slices = operand_slices(kinds, lanes);
        let (last_off, last_w) = slices[N - 1];
        let iw = last_off + last_w;
        assert_eq!(
            IW,
            iw,
            "{name}: IW must be {lanes} lanes x the operand widths {:?} = {iw}",
            kinds.iter().map(|k| k.width().0).collect::<Vec<_>>()
        );
        // offsets are 16-bit constants
        assert!(IW < 1 << 16, "{name}: IW = {IW} is wider than 2^16 - 1");
        let (lo, hi) = add_kind(kinds).range();
        let (bits, _) = int_width(lo as i128, hi as i128);
        assert_eq!(
            OB, bits as usize,
            "{name}: OB must be the width of the sum's range {lo}..={hi} ({bits})"
        );
        let terms = (0..lanes)
            .flat_map(|j| (0..N).map(move |k| (j, k)))
            .map(|(j, k)| AddTerm::new(j, lanes, k, kinds))
            .collect();
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            terms,
            skid: SkidBuffer::new(),
            all: Default::default(),
            every: Constant::new(Bits::<N>::mask()),
            _terms: lanes * N,
            _last: lanes * N - 1,
            _slices: slices,
        }
    }
    /// Bit offset and width of operand k's beat in `in_data`.
    pub fn operand(&self, k: usize) -> (usize, usize) {
        self._slices[k]
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beats taken at edge t give a sum offered from cycle t + 1.
    pub fn latency(&self) -> u64 {
        LATENCY
    }
}

impl<const N: usize, const IW: usize, const OB: usize, const OW: usize> Logic
    for ResidualAdder<N, IW, OB, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        for t in 0..self._terms {
            self.terms[t].data.next = self.in_data.val();
        }
        for t in 0..1 {
            self.terms[t].acc.next = 0.into();
            self.terms[t].prev.next = 0.into();
        }
        for t in 1..self._terms {
            self.terms[t].acc.next = self.terms[t - 1].sum.val();
            self.terms[t].prev.next = self.terms[t - 1].out.val();
        }
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        for t in self._last..self._terms {
            self.skid.in_data.next = self.terms[t].out.val();
        }
        self.all.next = self.in_valid.val().all();
        self.skid.in_valid.next = self.all.val();
        self.in_ready.next = 0.into();
        if self.skid.in_ready.val() && self.all.val() {
            self.in_ready.next = self.every.val();
        }
        self.skid.out_ready.next = self.out_ready.val();
        self.out_data.next = self.skid.out_data.val();
        self.out_valid.next = self.skid.out_valid.val();
    }
}

/// The cycle model of a [`ResidualAdder`]: its skid buffer; every input is ready
/// when the skid buffer has room and all inputs offer a beat.
#[derive(Clone, Debug, Default)]
pub struct AddTiming {
    skid: SkidTiming,
}

impl StreamTiming for AddTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.skid.in_ready()
    }
    fn in_ready_given(&self, _k: usize, in_valid: &[bool]) -> bool {
        self.skid.in_ready() && in_valid.iter().all(|v| *v)
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.skid.out_valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        self.skid.clock(in_fire[0], out_fire[0]);
    }
}

/// A [`ResidualAdder`] in a design: streams of `kinds`, `lanes` lanes each, frames of
/// `beats`.
#[derive(Clone, Debug, PartialEq)]
pub struct AddSpec {
    pub kinds: Vec<Kind>,
    pub lanes: usize,
    pub beats: usize,
}

/// ResidualAdder LUT4: coefficients of [1, OW, (inputs − 1)·OW].
const ADD_LUT: [f64; 3] = [5.528, 0.566, 1.167];
/// ResidualAdder DFF: coefficients of [1, io].
const ADD_DFF: [f64; 2] = [0.892, 0.881];

impl AddSpec {
    /// Bits of one lane of the sum.
    pub fn out_bits(&self) -> usize {
        Elem::of(add_kind(&self.kinds)).bits
    }
}

impl EngineSpec for AddSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(AddTiming::default())
    }
    fn name(&self) -> &'static str {
        "add"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    /// `[N, IW, OB, OW]`.
    fn generics(&self) -> Vec<usize> {
        let l = self.lanes;
        let iw = self.kinds.iter().map(|k| Elem::of(*k).bits * l).sum();
        let ob = self.out_bits();
        vec![self.kinds.len(), iw, ob, ob * l]
    }
    /// One beat per cycle.
    fn cycles(&self) -> u64 {
        self.beats as u64
    }
    fn latency(&self) -> u64 {
        LATENCY
    }
    fn memory_bits(&self) -> u64 {
        0
    }
    fn memories(&self) -> Vec<Memory> {
        vec![]
    }
    fn logic(&self, _: &[Memory], io: f64) -> Formula {
        let ow = (self.out_bits() * self.lanes) as f64;
        let adders = (self.kinds.len() - 1) as f64 * ow;
        (dot(&ADD_LUT, &[1.0, ow, adders]), dot(&ADD_DFF, &[1.0, io]))
    }
    fn carries(&self) -> Carries {
        Carries::Named
    }
}

/// Emitter of engine `i` of `d` (an [`AddSpec`]).
pub fn emit<const N: usize, const IW: usize, const OB: usize, const OW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, s) = engine::<AddSpec>(d, i, &[N, IW, OB, OW]);
    let b = ResidualAdder::<N, IW, OB, OW>::new(&s.kinds);
    let (c, l) = (e.cycles * b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;
    use crate::testutil::sign_extend;
    use rand::Rng;

    impl<const N: usize, const IW: usize, const OB: usize, const OW: usize> StreamDut
        for ResidualAdder<N, IW, OB, OW>
    {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            (0..N).map(|k| ("in".into(), self.operand(k).1)).collect()
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out".into(), OW)]
        }
        fn set_in(&mut self, k: usize, valid: bool, data: u128) {
            self.in_valid.next = self.in_valid.next.replace_bit(k, valid);
            let (off, w) = self.operand(k);
            let mut d = self.in_data.next;
            for i in 0..w {
                d = d.replace_bit(off + i, (data >> i) & 1 == 1);
            }
            self.in_data.next = d;
        }
        fn in_ready(&self, k: usize) -> bool {
            self.in_ready.val().get_bit(k)
        }
        fn set_out_ready(&mut self, _k: usize, ready: bool) {
            self.out_ready.next = ready;
        }
        fn out(&self, _k: usize) -> (bool, u128) {
            (self.out_valid.val(), self.out_data.val().to_u128())
        }
    }

    /// A random value of `kind` (edges of the range often).
    fn value(rng: &mut impl Rng, kind: Kind) -> i64 {
        match kind {
            Kind::Binary => {
                if rng.gen() {
                    1
                } else {
                    -1
                }
            }
            Kind::Int { lo, hi } => match rng.gen_range(0..4) {
                0 => lo,
                1 => hi,
                _ => rng.gen_range(lo..=hi),
            },
        }
    }

    /// Encode as the contract says: binary 1 = +1, integers two's complement / plain.
    fn encode(v: i64, kind: Kind) -> u128 {
        let (bits, _) = kind.width();
        match kind {
            Kind::Binary => (v > 0) as u128,
            _ => (v as i128 as u128) & ((1u128 << bits) - 1),
        }
    }

    /// `beats` beats of `lanes` lanes per input of `kinds`, every input and the output
    /// stalled at random; the sums against the model's (elementwise, binary as ±1).
    #[allow(clippy::too_many_arguments)]
    fn run_case<const N: usize, const IW: usize, const OB: usize, const OW: usize>(
        rng: &mut impl Rng,
        kinds: &[Kind],
        lanes: usize,
        beats: usize,
        p_in: f64,
        p_out: f64,
        verilog: bool,
    ) {
        let make = || ResidualAdder::<N, IW, OB, OW>::new(kinds);
        let out = add_kind(kinds);
        let (ob, signed) = out.width();
        let vals: Vec<Vec<Vec<i64>>> = kinds
            .iter()
            .map(|&k| {
                (0..beats)
                    .map(|_| (0..lanes).map(|_| value(rng, k)).collect())
                    .collect()
            })
            .collect();
        let data: Vec<Vec<u128>> = kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let b = k.width().0 as usize;
                vals[i]
                    .iter()
                    .map(|beat| {
                        beat.iter()
                            .enumerate()
                            .fold(0u128, |acc, (j, &v)| acc | encode(v, k) << (j * b))
                    })
                    .collect()
            })
            .collect();
        // the model's `add` (reference.rs): elementwise sum of the operands' values
        let want: Vec<Vec<i64>> = (0..beats)
            .map(|t| {
                (0..lanes)
                    .map(|j| vals.iter().map(|v| v[t][j]).sum())
                    .collect()
            })
            .collect();
        let cycles = (beats as f64 / (p_in.powi(kinds.len() as i32) * p_out)) as usize + 40;
        let pat = Pattern::random(rng, kinds.len(), 1, cycles, p_in, p_out);
        let name = format!("add{N}_{ob}_{lanes}");
        let tr = sim_and_icarus(make, &data, &pat, verilog.then_some(name.as_str()));
        let decode = |beat: u128| -> Vec<i64> {
            (0..lanes)
                .map(|j| {
                    let x = (beat >> (j * ob as usize)) & ((1u128 << ob) - 1);
                    if signed {
                        sign_extend(x, ob as usize) as i64
                    } else {
                        x as i64
                    }
                })
                .collect()
        };
        let got: Vec<Vec<i64>> = tr.out_data(0).into_iter().map(decode).collect();
        let label = format!("add of {N}: {kinds:?} -> {out:?} ({ob} bits), {lanes} lanes, stalls in {p_in} out {p_out}");
        assert_eq!(got, want, "{label}");
        // every input beat taken in the same cycle as the others
        for k in 1..kinds.len() {
            assert_eq!(tr.ins[k], tr.ins[0], "{label}: inputs taken apart");
        }
        tr.assert_timing(&label, Box::new(AddTiming::default()));
    }

    const BIN: Kind = Kind::Binary;
    const fn int(lo: i64, hi: i64) -> Kind {
        Kind::Int { lo, hi }
    }

    /// The matrix: N from 2 to 8; binary, unsigned and signed operands, narrower and
    /// wider than the sum; 1 to 16 lanes (a packed input over 128 bits); stalls.
    #[test]
    fn sums_match_the_model_under_random_stalls() {
        let mut rng = bnnforge_model::random::test_rng("residual_adder");
        // two 4-bit threshold branches: 0..=15 + 0..=15 = 0..=30, 5 bits
        let k = [int(0, 15), int(0, 15)];
        run_case::<2, 32, 5, 20>(&mut rng, &k, 4, 150, 0.8, 0.8, true);
        // binary + binary: -2..=2, 3 bits signed; 1 lane
        let k = [BIN, BIN];
        run_case::<2, 2, 3, 3>(&mut rng, &k, 1, 150, 0.7, 0.9, true);
        // signed accumulator + binary: -20..=20 + ±1 = -21..=21, 6 bits
        let k = [int(-20, 20), BIN];
        run_case::<2, 56, 6, 48>(&mut rng, &k, 8, 150, 0.9, 0.6, false);
        // operands wider than the sum: 100..=200 (8 bits) + -200..=-100 (9 bits) = -100..=100 (8 bits)
        let k = [int(100, 200), int(-200, -100)];
        run_case::<2, 34, 8, 16>(&mut rng, &k, 2, 150, 0.8, 0.8, true);
        // three inputs of three kinds: 0..=7 + -8..=7 + ±1 = -9..=15, 5 bits
        let k = [int(0, 7), int(-8, 7), BIN];
        run_case::<3, 24, 5, 15>(&mut rng, &k, 3, 150, 0.85, 0.8, true);
        // 16 lanes of three 4-bit branches: 192 packed input bits, 0..=45 in 6 bits
        let k = [int(0, 15), int(0, 15), int(0, 15)];
        run_case::<3, 192, 6, 96>(&mut rng, &k, 16, 100, 0.9, 0.9, true);
        // four: ±1 + 0..=3 + -4..=3 + -20..=20 = -25..=27, 6 bits
        let k = [BIN, int(0, 3), int(-4, 3), int(-20, 20)];
        run_case::<4, 24, 6, 12>(&mut rng, &k, 2, 150, 0.9, 0.7, true);
        // five binaries: -5..=5, 4 bits
        let k = [BIN; 5];
        run_case::<5, 20, 4, 16>(&mut rng, &k, 4, 120, 0.95, 0.8, false);
        // eight: 4 × 0..=15, 2 × ±1, 2 × -4..=3 = -10..=68, 8 bits
        let k = [
            int(0, 15),
            BIN,
            int(-4, 3),
            int(0, 15),
            int(0, 15),
            BIN,
            int(-4, 3),
            int(0, 15),
        ];
        run_case::<8, 48, 8, 16>(&mut rng, &k, 2, 120, 0.95, 0.8, true);
    }

    #[test]
    fn full_rate_and_latency() {
        let mut rng = bnnforge_model::random::test_rng("residual_adder_rate");
        let k = [int(0, 15), int(0, 15), BIN, int(-8, 7)];
        let n = 30;
        // 2 lanes: -9..=38, 7 bits
        let uut = ResidualAdder::<4, 26, 7, 14>::new(&k);
        let data: Vec<Vec<u128>> = (0..4)
            .map(|i| random_beats(&mut rng, n, uut.operand(i).1))
            .collect();
        let pat = Pattern::full_rate(4, 1, n + 10, 0..0);
        let tr = run_sim(ResidualAdder::<4, 26, 7, 14>::new(&k), &data, &pat);
        assert_eq!(tr.outs[0].len(), n);
        assert_eq!(tr.latency(), uut.latency());
        assert_eq!(tr.out_span(0), n, "not full rate");
        tr.assert_timing("add of 4 at full rate", Box::new(AddTiming::default()));
    }

    #[test]
    #[should_panic(expected = "OB must be the width of the sum's range 0..=30 (5)")]
    fn rejects_an_output_width_that_is_not_exact() {
        let k = [int(0, 15), int(0, 15)];
        let _ = ResidualAdder::<2, 32, 6, 24>::new(&k);
    }

    #[test]
    #[should_panic(expected = "IW must be 4 lanes x the operand widths [4, 1] = 20")]
    fn rejects_a_packed_width_that_does_not_fit_the_operands() {
        let k = [int(0, 15), BIN];
        let _ = ResidualAdder::<2, 32, 5, 20>::new(&k);
    }

    #[test]
    #[should_panic(expected = "N = 9 inputs, not in 2..=8")]
    fn rejects_more_than_eight_inputs() {
        let k = [BIN; 9];
        let _ = ResidualAdder::<9, 9, 5, 5>::new(&k);
    }

    /// N = 2 and N = 3 are held to their figures in `hdl/DESIGN.md`'s block table; N = 4
    /// is printed.
    #[test]
    fn synthesises_clean() {
        let k = [int(0, 15), int(0, 15)];
        let mut uut = ResidualAdder::<2, 128, 5, 80>::new(&k);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_residual_adder", &v).unwrap();
        let s = ice40_stats("add2_16x4", &v, "top").unwrap();
        println!("ResidualAdder N=2, 16 lanes, 4b + 4b -> 5b on synth_ice40: {s}");
        assert!(
            s.lut4 <= 150 && s.dff <= 162,
            "N=2 costs more than before: {s}"
        );
        let k = [int(0, 7), int(-8, 7), BIN];
        let mut uut = ResidualAdder::<3, 64, 5, 40>::new(&k);
        uut.connect_all();
        let s = ice40_stats("add3_8", &generate_verilog(&uut), "top").unwrap();
        println!("ResidualAdder N=3, 8 lanes, u3 + s4 + binary -> 5b on synth_ice40: {s}");
        assert!(
            s.lut4 <= 134 && s.dff <= 82,
            "N=3 costs more than before: {s}"
        );
        let k = [int(0, 15), int(0, 15), BIN, int(-8, 7)];
        let mut uut = ResidualAdder::<4, 104, 7, 56>::new(&k);
        uut.connect_all();
        let s = ice40_stats("add4_8", &generate_verilog(&uut), "top").unwrap();
        println!("ResidualAdder N=4, 8 lanes, u4 + u4 + binary + s4 -> 7b on synth_ice40: {s}");
    }
}
