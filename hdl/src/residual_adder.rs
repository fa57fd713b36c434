//! `ResidualAdder2`, `ResidualAdder3`: the spec's `add` on two or three streams.
//!
//! Each input stream carries L lanes of its own element kind (binary, unsigned or
//! signed integer, each in its exact width `Kind::width()`); the output is the
//! elementwise sum in the exact width of the sum's range, which is the sum of the
//! inputs' ranges, as `bnnforge_model::Network` computes it (a binary operand counts
//! as ±1: bit 1 = +1, bit 0 = −1). A beat is consumed from every input at once, when
//! all offer one; the sum goes into a [`SkidBuffer`].
//!
//! ```text
//!  in0_data ─┐   per lane j (AddLane): extend each operand to OB bits
//!  in1_data ─┼─► (binary: ±1, signed: sign-extend, unsigned: zero-extend), add,
//!  in2_data ─┘   insert at lane j ──► SkidBuffer ──► out_data, out_valid
//!  all valid = in0_valid & in1_valid (& in2_valid) ──► skid in_valid
//!  inK_ready = skid.in_ready & all valid
//! ```
//!
//! - Arithmetic is modulo 2^OB: an operand wider than OB is truncated, which is exact
//!   because the true sum fits OB bits (two's complement).
//! - `inK_ready` depends on the skid buffer's state and on the *other* inputs' valids
//!   (AXI-stream allows ready to depend on valid; no valid here depends on a ready),
//!   never on `out_ready`; `out_valid` is a register.
//!
//! Cycles per frame: one beat per cycle when all inputs keep up. Latency: 1 cycle.
//!
//! Parameters (checked by `new`): element widths `B0`, `B1` (`B2`), `OB`; beat widths
//! `W0 = L·B0`, `W1 = L·B1` (`W2 = L·B2`), `OW = L·OB` for one lane count L; `kinds`
//! (run-time): each input's `bnnforge_model::Kind`, whose width must be its `Bk`, and
//! `OB` must be the width of the sum's range.
//!
//! Ports (engine contract, several inputs): `clock`, `reset`, `inK_data: Bits<WK>`,
//! `inK_valid`, `inK_ready` for K = 0, 1 (, 2), `out_data: Bits<OW>`, `out_valid`,
//! `out_ready`. Lane i of every beat at bits [i·B, (i+1)·B).

use crate::skid_buffer::SkidBuffer;
use bnnforge_model::kernels::int_width;
use bnnforge_model::Kind;
use rust_hdl::prelude::*;

/// The kind of `add`'s result, as the model computes it: the sum of the ranges.
pub fn add_kind(kinds: &[Kind]) -> Kind {
    let (lo, hi) = kinds.iter().fold((0i64, 0i64), |(lo, hi), k| {
        let (a, b) = k.range();
        (lo + a, hi + b)
    });
    Kind::Int { lo, hi }
}

/// One lane of the adder: `out = prev | (ext(a lane) + ext(b lane) + ext(c lane)) <<
/// lane offset`. A `Vec` of these chained `prev ← out` assembles the output beat
/// (rust-hdl kernels cannot assign slices of a local signal).
#[derive(LogicBlock)]
pub struct AddLane<
    const B0: usize,
    const B1: usize,
    const B2: usize,
    const OB: usize,
    const W0: usize,
    const W1: usize,
    const W2: usize,
    const OW: usize,
> {
    /// Input beat 0.
    pub a: Signal<In, Bits<W0>>,
    /// Input beat 1.
    pub b: Signal<In, Bits<W1>>,
    /// Input beat 2 (ignored when the adder has two inputs).
    pub c: Signal<In, Bits<W2>>,
    /// Output beat so far (lanes below this one).
    pub prev: Signal<In, Bits<OW>>,
    /// `prev` with this lane's sum inserted.
    pub out: Signal<Out, Bits<OW>>,
    xa: Signal<Local, Bits<B0>>,
    xb: Signal<Local, Bits<B1>>,
    xc: Signal<Local, Bits<B2>>,
    ea: Signal<Local, Bits<OB>>,
    eb: Signal<Local, Bits<OB>>,
    ec: Signal<Local, Bits<OB>>,
    sum: Signal<Local, Bits<OB>>,
    off0: Constant<Bits<16>>,
    off1: Constant<Bits<16>>,
    off2: Constant<Bits<16>>,
    offo: Constant<Bits<16>>,
    half0: Constant<Bits<B0>>,
    half1: Constant<Bits<B1>>,
    half2: Constant<Bits<B2>>,
    hi0: Constant<Bits<OB>>,
    hi1: Constant<Bits<OB>>,
    hi2: Constant<Bits<OB>>,
    sg0: Constant<Bit>,
    sg1: Constant<Bit>,
    sg2: Constant<Bit>,
    bin0: Constant<Bit>,
    bin1: Constant<Bit>,
    bin2: Constant<Bit>,
    use2: Constant<Bit>,
    one: Constant<Bits<OB>>,
    ones: Constant<Bits<OB>>,
}

/// Bits [from, OB) set: what sign extension of a `from`-bit value ORs in.
fn high_mask<const OB: usize>(from: usize) -> Bits<OB> {
    let mut m = Bits::<OB>::default();
    for i in from..OB {
        m = m.replace_bit(i, true);
    }
    m
}

impl<
        const B0: usize,
        const B1: usize,
        const B2: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const W2: usize,
        const OW: usize,
    > AddLane<B0, B1, B2, OB, W0, W1, W2, OW>
{
    /// Lane `lane` of an adder with operand kinds `kinds` (two or three).
    pub fn new(lane: usize, kinds: &[Kind]) -> Self {
        assert!(
            kinds.len() == 2 || kinds.len() == 3,
            "AddLane: 2 or 3 operands"
        );
        let signed = |k: usize| kinds.get(k).map(|x| x.width().1).unwrap_or(false);
        let binary = |k: usize| kinds.get(k).map(|x| x.is_binary()).unwrap_or(false);
        let off = |b: usize| Constant::new(((lane * b) as u64).into());
        let half = |b: usize| 1u64 << (b - 1);
        Self {
            a: Default::default(),
            b: Default::default(),
            c: Default::default(),
            prev: Default::default(),
            out: Default::default(),
            xa: Default::default(),
            xb: Default::default(),
            xc: Default::default(),
            ea: Default::default(),
            eb: Default::default(),
            ec: Default::default(),
            sum: Default::default(),
            off0: off(B0),
            off1: off(B1),
            off2: off(B2),
            offo: off(OB),
            half0: Constant::new(half(B0).into()),
            half1: Constant::new(half(B1).into()),
            half2: Constant::new(half(B2).into()),
            hi0: Constant::new(high_mask::<OB>(B0)),
            hi1: Constant::new(high_mask::<OB>(B1)),
            hi2: Constant::new(high_mask::<OB>(B2)),
            sg0: Constant::new(signed(0)),
            sg1: Constant::new(signed(1)),
            sg2: Constant::new(signed(2)),
            bin0: Constant::new(binary(0)),
            bin1: Constant::new(binary(1)),
            bin2: Constant::new(binary(2)),
            use2: Constant::new(kinds.len() == 3),
            one: Constant::new(1u64.into()),
            ones: Constant::new(Bits::<OB>::mask()),
        }
    }
}

impl<
        const B0: usize,
        const B1: usize,
        const B2: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const W2: usize,
        const OW: usize,
    > Logic for AddLane<B0, B1, B2, OB, W0, W1, W2, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.xa.next = bit_cast::<B0, W0>(self.a.val() >> self.off0.val());
        self.xb.next = bit_cast::<B1, W1>(self.b.val() >> self.off1.val());
        self.xc.next = bit_cast::<B2, W2>(self.c.val() >> self.off2.val());
        self.ea.next = bit_cast::<OB, B0>(self.xa.val());
        if self.sg0.val() && (self.xa.val() >= self.half0.val()) {
            self.ea.next = bit_cast::<OB, B0>(self.xa.val()) | self.hi0.val();
        }
        if self.bin0.val() {
            self.ea.next = self.ones.val();
            if self.xa.val().any() {
                self.ea.next = self.one.val();
            }
        }
        self.eb.next = bit_cast::<OB, B1>(self.xb.val());
        if self.sg1.val() && (self.xb.val() >= self.half1.val()) {
            self.eb.next = bit_cast::<OB, B1>(self.xb.val()) | self.hi1.val();
        }
        if self.bin1.val() {
            self.eb.next = self.ones.val();
            if self.xb.val().any() {
                self.eb.next = self.one.val();
            }
        }
        self.ec.next = bit_cast::<OB, B2>(self.xc.val());
        if self.sg2.val() && (self.xc.val() >= self.half2.val()) {
            self.ec.next = bit_cast::<OB, B2>(self.xc.val()) | self.hi2.val();
        }
        if self.bin2.val() {
            self.ec.next = self.ones.val();
            if self.xc.val().any() {
                self.ec.next = self.one.val();
            }
        }
        if !self.use2.val() {
            self.ec.next = 0.into();
        }
        self.sum.next = self.ea.val() + self.eb.val() + self.ec.val();
        self.out.next = self.prev.val() | (bit_cast::<OW, OB>(self.sum.val()) << self.offo.val());
    }
}

/// Checks shared by both adders; returns the lane count.
fn check_widths(
    name: &str,
    kinds: &[Kind],
    b: &[usize],
    w: &[usize],
    ob: usize,
    ow: usize,
) -> usize {
    assert_eq!(
        kinds.len(),
        b.len(),
        "{name}: {} input kinds needed",
        b.len()
    );
    assert!(ob >= 1 && ob <= 64, "{name}: OB = {ob} not in 1..=64");
    let lanes = ow / ob;
    assert!(
        lanes >= 1 && ow == lanes * ob,
        "{name}: OW = {ow} is not a whole number of {ob}-bit lanes"
    );
    for (k, kind) in kinds.iter().enumerate() {
        let (bits, _) = kind.width();
        assert_eq!(
            b[k], bits as usize,
            "{name}: B{k} must be the width of input {k}'s kind {kind:?} ({bits})"
        );
        assert_eq!(
            w[k],
            lanes * b[k],
            "{name}: W{k} must be {lanes} lanes x B{k}"
        );
    }
    let sum = add_kind(kinds);
    let (lo, hi) = sum.range();
    let (bits, _) = int_width(lo as i128, hi as i128);
    assert_eq!(
        ob, bits as usize,
        "{name}: OB must be the width of the sum's range {lo}..={hi} ({bits})"
    );
    lanes
}

/// Two-input residual adder (see the module documentation).
#[derive(LogicBlock)]
pub struct ResidualAdder2<
    const B0: usize,
    const B1: usize,
    const OB: usize,
    const W0: usize,
    const W1: usize,
    const OW: usize,
> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// Input 0 beat.
    pub in0_data: Signal<In, Bits<W0>>,
    /// Input 0 offers a beat.
    pub in0_valid: Signal<In, Bit>,
    /// Input 0's beat is taken (with input 1's).
    pub in0_ready: Signal<Out, Bit>,
    /// Input 1 beat.
    pub in1_data: Signal<In, Bits<W1>>,
    /// Input 1 offers a beat.
    pub in1_valid: Signal<In, Bit>,
    /// Input 1's beat is taken (with input 0's).
    pub in1_ready: Signal<Out, Bit>,
    /// The sums (registered).
    pub out_data: Signal<Out, Bits<OW>>,
    /// A beat of sums is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    lanes: Vec<AddLane<B0, B1, 1, OB, W0, W1, 1, OW>>,
    skid: SkidBuffer<OW>,
    all: Signal<Local, Bit>,
    _lanes: usize,
    _last: usize,
}

impl<
        const B0: usize,
        const B1: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const OW: usize,
    > ResidualAdder2<B0, B1, OB, W0, W1, OW>
{
    /// An adder of two streams of the given kinds (in the model's terms).
    pub fn new(kinds: [Kind; 2]) -> Self {
        let lanes = check_widths("ResidualAdder2", &kinds, &[B0, B1], &[W0, W1], OB, OW);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in0_data: Default::default(),
            in0_valid: Default::default(),
            in0_ready: Default::default(),
            in1_data: Default::default(),
            in1_valid: Default::default(),
            in1_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            lanes: (0..lanes).map(|j| AddLane::new(j, &kinds)).collect(),
            skid: SkidBuffer::new(),
            all: Default::default(),
            _lanes: lanes,
            _last: lanes - 1,
        }
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beats taken at edge t give a sum offered from cycle t + 1.
    pub fn latency(&self) -> u64 {
        1
    }
}

impl<
        const B0: usize,
        const B1: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const OW: usize,
    > Logic for ResidualAdder2<B0, B1, OB, W0, W1, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        for j in 0..self._lanes {
            self.lanes[j].a.next = self.in0_data.val();
            self.lanes[j].b.next = self.in1_data.val();
            self.lanes[j].c.next = 0.into();
        }
        for j in 0..1 {
            self.lanes[j].prev.next = 0.into();
        }
        for j in 1..self._lanes {
            self.lanes[j].prev.next = self.lanes[j - 1].out.val();
        }
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        for j in self._last..self._lanes {
            self.skid.in_data.next = self.lanes[j].out.val();
        }
        self.all.next = self.in0_valid.val() && self.in1_valid.val();
        self.skid.in_valid.next = self.all.val();
        self.in0_ready.next = self.skid.in_ready.val() && self.all.val();
        self.in1_ready.next = self.skid.in_ready.val() && self.all.val();
        self.skid.out_ready.next = self.out_ready.val();
        self.out_data.next = self.skid.out_data.val();
        self.out_valid.next = self.skid.out_valid.val();
    }
}

/// Three-input residual adder (see the module documentation).
#[derive(LogicBlock)]
pub struct ResidualAdder3<
    const B0: usize,
    const B1: usize,
    const B2: usize,
    const OB: usize,
    const W0: usize,
    const W1: usize,
    const W2: usize,
    const OW: usize,
> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// Input 0 beat.
    pub in0_data: Signal<In, Bits<W0>>,
    /// Input 0 offers a beat.
    pub in0_valid: Signal<In, Bit>,
    /// Input 0's beat is taken (with the others').
    pub in0_ready: Signal<Out, Bit>,
    /// Input 1 beat.
    pub in1_data: Signal<In, Bits<W1>>,
    /// Input 1 offers a beat.
    pub in1_valid: Signal<In, Bit>,
    /// Input 1's beat is taken (with the others').
    pub in1_ready: Signal<Out, Bit>,
    /// Input 2 beat.
    pub in2_data: Signal<In, Bits<W2>>,
    /// Input 2 offers a beat.
    pub in2_valid: Signal<In, Bit>,
    /// Input 2's beat is taken (with the others').
    pub in2_ready: Signal<Out, Bit>,
    /// The sums (registered).
    pub out_data: Signal<Out, Bits<OW>>,
    /// A beat of sums is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    lanes: Vec<AddLane<B0, B1, B2, OB, W0, W1, W2, OW>>,
    skid: SkidBuffer<OW>,
    all: Signal<Local, Bit>,
    _lanes: usize,
    _last: usize,
}

impl<
        const B0: usize,
        const B1: usize,
        const B2: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const W2: usize,
        const OW: usize,
    > ResidualAdder3<B0, B1, B2, OB, W0, W1, W2, OW>
{
    /// An adder of three streams of the given kinds (in the model's terms).
    pub fn new(kinds: [Kind; 3]) -> Self {
        let lanes = check_widths(
            "ResidualAdder3",
            &kinds,
            &[B0, B1, B2],
            &[W0, W1, W2],
            OB,
            OW,
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in0_data: Default::default(),
            in0_valid: Default::default(),
            in0_ready: Default::default(),
            in1_data: Default::default(),
            in1_valid: Default::default(),
            in1_ready: Default::default(),
            in2_data: Default::default(),
            in2_valid: Default::default(),
            in2_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            lanes: (0..lanes).map(|j| AddLane::new(j, &kinds)).collect(),
            skid: SkidBuffer::new(),
            all: Default::default(),
            _lanes: lanes,
            _last: lanes - 1,
        }
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beats taken at edge t give a sum offered from cycle t + 1.
    pub fn latency(&self) -> u64 {
        1
    }
}

impl<
        const B0: usize,
        const B1: usize,
        const B2: usize,
        const OB: usize,
        const W0: usize,
        const W1: usize,
        const W2: usize,
        const OW: usize,
    > Logic for ResidualAdder3<B0, B1, B2, OB, W0, W1, W2, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        for j in 0..self._lanes {
            self.lanes[j].a.next = self.in0_data.val();
            self.lanes[j].b.next = self.in1_data.val();
            self.lanes[j].c.next = self.in2_data.val();
        }
        for j in 0..1 {
            self.lanes[j].prev.next = 0.into();
        }
        for j in 1..self._lanes {
            self.lanes[j].prev.next = self.lanes[j - 1].out.val();
        }
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        for j in self._last..self._lanes {
            self.skid.in_data.next = self.lanes[j].out.val();
        }
        self.all.next = self.in0_valid.val() && self.in1_valid.val() && self.in2_valid.val();
        self.skid.in_valid.next = self.all.val();
        self.in0_ready.next = self.skid.in_ready.val() && self.all.val();
        self.in1_ready.next = self.skid.in_ready.val() && self.all.val();
        self.in2_ready.next = self.skid.in_ready.val() && self.all.val();
        self.skid.out_ready.next = self.out_ready.val();
        self.out_data.next = self.skid.out_data.val();
        self.out_valid.next = self.skid.out_valid.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skid_buffer::testbench::*;
    use crate::synth::{ice40_stats, sign_extend};
    use crate::testutil;
    use rand::Rng;

    impl<
            const B0: usize,
            const B1: usize,
            const OB: usize,
            const W0: usize,
            const W1: usize,
            const OW: usize,
        > StreamDut for ResidualAdder2<B0, B1, OB, W0, W1, OW>
    {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("in0".into(), W0), ("in1".into(), W1)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out".into(), OW)]
        }
        fn set_in(&mut self, k: usize, valid: bool, data: u128) {
            match k {
                0 => {
                    self.in0_valid.next = valid;
                    self.in0_data.next = data.to_bits();
                }
                _ => {
                    self.in1_valid.next = valid;
                    self.in1_data.next = data.to_bits();
                }
            }
        }
        fn in_ready(&self, k: usize) -> bool {
            match k {
                0 => self.in0_ready.val(),
                _ => self.in1_ready.val(),
            }
        }
        fn set_out_ready(&mut self, _k: usize, ready: bool) {
            self.out_ready.next = ready;
        }
        fn out(&self, _k: usize) -> (bool, u128) {
            (self.out_valid.val(), self.out_data.val().to_u128())
        }
    }

    impl<
            const B0: usize,
            const B1: usize,
            const B2: usize,
            const OB: usize,
            const W0: usize,
            const W1: usize,
            const W2: usize,
            const OW: usize,
        > StreamDut for ResidualAdder3<B0, B1, B2, OB, W0, W1, W2, OW>
    {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("in0".into(), W0), ("in1".into(), W1), ("in2".into(), W2)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out".into(), OW)]
        }
        fn set_in(&mut self, k: usize, valid: bool, data: u128) {
            match k {
                0 => {
                    self.in0_valid.next = valid;
                    self.in0_data.next = data.to_bits();
                }
                1 => {
                    self.in1_valid.next = valid;
                    self.in1_data.next = data.to_bits();
                }
                _ => {
                    self.in2_valid.next = valid;
                    self.in2_data.next = data.to_bits();
                }
            }
        }
        fn in_ready(&self, k: usize) -> bool {
            match k {
                0 => self.in0_ready.val(),
                1 => self.in1_ready.val(),
                _ => self.in2_ready.val(),
            }
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

    /// `frames` frames of `elements` elements per input; the per-spec sums per lane.
    fn run_case<D: StreamDut>(
        rng: &mut impl Rng,
        make: &dyn Fn() -> D,
        kinds: &[Kind],
        lanes: usize,
        beats: usize,
        p_in: f64,
        p_out: f64,
        verilog: bool,
    ) {
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
        // the spec: elementwise sum, binary operands as ±1
        let want: Vec<Vec<i64>> = (0..beats)
            .map(|t| {
                (0..lanes)
                    .map(|j| vals.iter().map(|v| v[t][j]).sum())
                    .collect()
            })
            .collect();
        let cycles = (beats as f64 / (p_in.powi(kinds.len() as i32) * p_out)) as usize + 40;
        let pat = Pattern::random(rng, kinds.len(), 1, cycles, p_in, p_out);
        let tr = run_sim(make(), &data, &pat);
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
        let label = format!("add {kinds:?} -> {out:?} ({ob} bits), {lanes} lanes");
        assert_eq!(got, want, "rust-hdl {label}");
        // every input beat taken in the same cycle as the others
        for k in 1..kinds.len() {
            assert_eq!(tr.ins[k], tr.ins[0], "{label}: inputs taken apart");
        }
        if verilog {
            let mut v = make();
            v.connect_all();
            let text = generate_verilog(&v);
            let iv = run_icarus(
                &format!("add{}_{ob}_{lanes}", kinds.len()),
                &text,
                &v.ins(),
                &v.outs(),
                &data,
                &pat,
            );
            assert_eq!(iv, tr, "Icarus vs rust-hdl {label}");
        }
    }

    const BIN: Kind = Kind::Binary;
    const fn int(lo: i64, hi: i64) -> Kind {
        Kind::Int { lo, hi }
    }

    #[test]
    fn sums_match_the_spec_under_random_stalls() {
        let mut rng = testutil::rng("residual_adder");
        // two 4-bit threshold branches: 0..=15 + 0..=15 = 0..=30, 5 bits
        let k = [int(0, 15), int(0, 15)];
        run_case(
            &mut rng,
            &|| ResidualAdder2::<4, 4, 5, 16, 16, 20>::new(k),
            &k,
            4,
            150,
            0.8,
            0.8,
            true,
        );
        // binary + binary: -2..=2, 3 bits signed; 1 lane (scalar ports)
        let k = [BIN, BIN];
        run_case(
            &mut rng,
            &|| ResidualAdder2::<1, 1, 3, 1, 1, 3>::new(k),
            &k,
            1,
            150,
            0.7,
            0.9,
            true,
        );
        // signed accumulator + binary: -20..=20 + ±1 = -21..=21, 6 bits
        let k = [int(-20, 20), BIN];
        run_case(
            &mut rng,
            &|| ResidualAdder2::<6, 1, 6, 48, 8, 48>::new(k),
            &k,
            8,
            150,
            0.9,
            0.6,
            true,
        );
        // an operand wider than the sum: 100..=200 (8 bits) + -200..=-100 (9 bits) = -100..=100 (8 bits)
        let k = [int(100, 200), int(-200, -100)];
        run_case(
            &mut rng,
            &|| ResidualAdder2::<8, 9, 8, 16, 18, 16>::new(k),
            &k,
            2,
            150,
            0.8,
            0.8,
            true,
        );
        // three inputs of three kinds: 0..=7 + -8..=7 + ±1 = -9..=15, 5 bits
        let k = [int(0, 7), int(-8, 7), BIN];
        run_case(
            &mut rng,
            &|| ResidualAdder3::<3, 4, 1, 5, 9, 12, 3, 15>::new(k),
            &k,
            3,
            150,
            0.85,
            0.8,
            true,
        );
        let k = [BIN, BIN, BIN];
        run_case(
            &mut rng,
            &|| ResidualAdder3::<1, 1, 1, 3, 2, 2, 2, 6>::new(k),
            &k,
            2,
            100,
            0.9,
            0.9,
            false,
        );
    }

    #[test]
    fn full_rate_and_latency() {
        let mut rng = testutil::rng("residual_adder_rate");
        let k = [int(0, 15), int(0, 15)];
        let n = 30;
        let data = vec![random_beats(&mut rng, n, 16), random_beats(&mut rng, n, 16)];
        let pat = Pattern::random(&mut rng, 2, 1, n + 10, 1.0, 1.0);
        let uut = ResidualAdder2::<4, 4, 5, 16, 16, 20>::new(k);
        let tr = run_sim(ResidualAdder2::<4, 4, 5, 16, 16, 20>::new(k), &data, &pat);
        assert_eq!(tr.outs[0].len(), n);
        assert_eq!(tr.outs[0][0].1 - tr.ins[0][0], uut.latency() as usize);
        assert_eq!(
            tr.outs[0][n - 1].1 + 1 - tr.outs[0][0].1,
            n,
            "not full rate"
        );
    }

    #[test]
    #[should_panic(expected = "OB must be the width of the sum's range 0..=30 (5)")]
    fn rejects_an_output_width_that_is_not_exact() {
        let k = [int(0, 15), int(0, 15)];
        let _ = ResidualAdder2::<4, 4, 6, 16, 16, 24>::new(k);
    }

    #[test]
    fn synthesises_clean() {
        // 16 lanes of two 4-bit branches -> 5 bits
        let k = [int(0, 15), int(0, 15)];
        let mut uut = ResidualAdder2::<4, 4, 5, 64, 64, 80>::new(k);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_residual_adder", &v).unwrap();
        let s = ice40_stats("add2_16x4", &v, "top").unwrap();
        println!("ResidualAdder2 16 lanes, 4b + 4b -> 5b on synth_ice40: {s}");
        let k = [int(0, 7), int(-8, 7), BIN];
        let mut uut = ResidualAdder3::<3, 4, 1, 5, 24, 32, 8, 40>::new(k);
        uut.connect_all();
        let s = ice40_stats("add3_8", &generate_verilog(&uut), "top").unwrap();
        println!("ResidualAdder3 8 lanes, u3 + s4 + binary -> 5b on synth_ice40: {s}");
    }
}
