//! `ThresholdEngine`: the standalone `threshold` op on a stream, where a threshold does
//! not follow a dense/conv (the [`Mvtu`] fuses those): raw pixels, after `add`, after
//! `sumpool`. The stream is HWC, L elements a beat, L independent of C: lane l of beat b
//! holds channel (b·L + l) mod C, a pattern that repeats every P = C / gcd(C, L) beats, so
//! lane l's [`ThresholdUnit`] holds P rows (channels l, l + L, … mod C), addressed by the
//! beat's place cb in the period (L dividing C: the C/L channel beats of a pixel; C
//! dividing L: one row, several pixels a beat). Each input
//! lane (binary ±1, unsigned or signed) becomes a `Signed<Y>`; thresholds are clamped and
//! flips folded as in `ThresholdUnit`. Out: the count (B > 1) or the bit (B = 1, 1 = +1).
//! The pipeline does not stall: beats issue while fewer than 16 results are in flight or
//! queued (credits); after a synchronous reset it waits 5 cycles for stale results.
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`.
//!
//! Generics (checked by [`ThresholdEngine::new`]): free `IB` (input lane bits), `B`
//! (output lane bits) and L (through `IW` = L·IB, `OW` = L·B; L divides the elements of a
//! frame); deduced `Y` (2 binary, IB + 1 unsigned, IB signed), `U` = Y + 1, `K` = 2^B − 1,
//! `CA` = clog2(P).
//!
//! Cycles per frame: elements / L. Latency: [`LATENCY`] (5).
//!
//! [`Mvtu`]: crate::engines::mvtu::Mvtu

use crate::blocks::threshold_unit::ThresholdUnit;
use crate::compile::design::{Design, Elem};
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, mem_sum, Formula, Memory, Role};
use crate::engines::mvtu::{queue_copies, CreditQueue, CreditTiming, LaneInsert, FIFO_DEPTH};
use crate::engines::{Carries, EngineSpec, StreamTiming};

/// First input beat to first output beat: the [`ThresholdUnit`]'s 3 cycles and the 2
/// through the [`CreditQueue`].
pub const LATENCY: u64 = crate::blocks::threshold_unit::LATENCY + 2;
use bnnforge_model::network::{Network, Op};
use rust_hdl::prelude::*;

/// One input lane as a `Signed<Y>` value: bits `[offset, offset + IB)` of `data`,
/// binary (±1), zero- or sign-extended.
#[derive(LogicBlock)]
pub struct LaneValue<const IW: usize, const IB: usize, const Y: usize> {
    /// The beat.
    pub data: Signal<In, Bits<IW>>,
    /// The lane's value.
    pub y: Signal<Out, Signed<Y>>,
    raw: Signal<Local, Bits<IB>>,
    ext: Signal<Local, Bits<Y>>,
    offset: Constant<Bits<16>>,
    half: Constant<Bits<IB>>,
    high: Constant<Bits<Y>>,
    minus_one: Constant<Bits<Y>>,
    // loop bounds: 1 when the beat is a single bit (a Verilog scalar), else the slice;
    // 1 for binary, signed and plain lanes respectively
    _scalar: usize,
    _slice: usize,
    _binary: usize,
    _signed: usize,
}

/// How input lanes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    /// 1 bit, 1 = +1, 0 = −1
    Binary,
    Unsigned,
    Signed,
}

impl LaneKind {
    /// The `Y` a lane of `ib` bits needs.
    pub fn y_bits(self, ib: usize) -> usize {
        match self {
            LaneKind::Binary => 2,
            LaneKind::Unsigned => ib + 1,
            LaneKind::Signed => ib.max(2),
        }
    }
}

impl<const IW: usize, const IB: usize, const Y: usize> LaneValue<IW, IB, Y> {
    /// The value of lane `lane`.
    pub fn new(lane: usize, kind: LaneKind) -> Self {
        assert!(
            IB >= 1 && (lane + 1) * IB <= IW && Y == kind.y_bits(IB) && Y <= 64,
            "LaneValue: lane {lane} of {IB} bits in {IW}, Y = {Y} for {kind:?}"
        );
        assert!(
            kind != LaneKind::Binary || IB == 1,
            "LaneValue: binary lanes are 1 bit"
        );
        let ones = |k: usize| if k >= 64 { u64::MAX } else { (1u64 << k) - 1 };
        Self {
            data: Default::default(),
            y: Default::default(),
            raw: Default::default(),
            ext: Default::default(),
            offset: Constant::new(((lane * IB) as u64).into()),
            half: Constant::new((1u64 << (IB - 1)).into()),
            high: Constant::new((ones(Y) & !ones(IB)).into()),
            minus_one: Constant::new(ones(Y).into()),
            _scalar: (IW == 1) as usize,
            _slice: (IW > 1) as usize,
            _binary: (kind == LaneKind::Binary) as usize,
            _signed: (kind == LaneKind::Signed) as usize,
        }
    }
}

impl<const IW: usize, const IB: usize, const Y: usize> Logic for LaneValue<IW, IB, Y> {
    #[hdl_gen]
    fn update(&mut self) {
        self.raw.next = bit_cast::<IB, IW>(self.data.val());
        for _i in 0..self._slice {
            self.raw.next = self.data.val().get_bits::<IB>(self.offset.val().index());
        }
        for _i in 0..self._scalar {
            self.raw.next = bit_cast::<IB, IW>(self.data.val());
        }
        self.ext.next = bit_cast::<Y, IB>(self.raw.val());
        for _i in 0..self._signed {
            if self.raw.val() >= self.half.val() {
                self.ext.next = bit_cast::<Y, IB>(self.raw.val()) | self.high.val();
            }
        }
        for _i in 0..self._binary {
            self.ext.next = self.minus_one.val();
            if self.raw.val().any() {
                self.ext.next = 1.into();
            }
        }
        self.y.next = signed_cast(self.ext.val());
    }
}

/// The standalone threshold engine (see the module documentation).
#[derive(LogicBlock)]
pub struct ThresholdEngine<
    const IB: usize,
    const IW: usize,
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
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
    cb: DFF<Bits<CA>>,
    credits: DFF<Bits<5>>,
    drain: DFF<Bits<3>>,
    // can_issue, registered: computed from the next credits and drain
    room: DFF<Bit>,
    credits_up: Signal<Local, Bit>,
    credits_down: Signal<Local, Bit>,
    can_issue: Signal<Local, Bit>,
    fire: Signal<Local, Bit>,
    pop: Signal<Local, Bit>,
    lanes: Vec<LaneValue<IW, IB, Y>>,
    thr: Vec<ThresholdUnit<Y, U, K, B, CA>>,
    ins: Vec<LaneInsert<OW, B>>,
    fifo: CreditQueue<OW>,
    cb_last: Constant<Bits<CA>>,
    credit_limit: Constant<Bits<5>>,
    credit_limit_m1: Constant<Bits<5>>,
    _l: usize,
    _last: usize,
    _info: ThresholdEngineInfo,
}

/// Run-time parameters of a [`ThresholdEngine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdEngineInfo {
    pub lanes: usize,
    pub channels: usize,
    /// elements per frame
    pub elements: usize,
}

impl<
        const IB: usize,
        const IW: usize,
        const Y: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const CA: usize,
        const OW: usize,
    > ThresholdEngine<IB, IW, Y, U, K, B, CA, OW>
{
    /// An engine for lanes of `kind` with values in `lo..=hi`, `thresholds[c]` (K values)
    /// and `flip[c]` per channel, `elements` per frame. L = IW / IB = OW / B.
    pub fn new(
        kind: LaneKind,
        lo: i64,
        hi: i64,
        thresholds: &[Vec<i64>],
        flip: &[bool],
        elements: usize,
    ) -> Self {
        assert!(
            IB >= 1 && IW % IB == 0,
            "ThresholdEngine: IW = {IW} must be L · IB"
        );
        let l = IW / IB;
        assert_eq!(OW, l * B, "ThresholdEngine: OW must be L · B = {}", l * B);
        let c = thresholds.len();
        assert!(c >= 1, "ThresholdEngine: no channels");
        let period = channel_period(c, l);
        assert!(
            period <= 1 << CA,
            "ThresholdEngine: a period of {period} beats does not fit CA = {CA}"
        );
        assert!(
            elements >= 1 && elements % c == 0 && elements % l == 0,
            "ThresholdEngine: {elements} elements are not whole pixels of {c} channels \
             in whole beats of {l} lanes"
        );
        assert_eq!(flip.len(), c, "ThresholdEngine: one flip flag per channel");
        let (rlo, rhi) = match kind {
            LaneKind::Binary => (-1, 1),
            LaneKind::Unsigned => (0, ((1u128 << IB) - 1) as i64),
            LaneKind::Signed => (-(1i64 << (IB - 1)), (1i64 << (IB - 1)) - 1),
        };
        assert!(
            rlo <= lo && lo <= hi && hi <= rhi,
            "ThresholdEngine: range {lo}..={hi} not within {IB}-bit {kind:?} lanes"
        );
        let thr = (0..l)
            .map(|lane| {
                let ch = |b: usize| (b * l + lane) % c;
                let rows: Vec<Vec<i64>> = (0..period).map(|b| thresholds[ch(b)].clone()).collect();
                let fl: Vec<bool> = (0..period).map(|b| flip[ch(b)]).collect();
                ThresholdUnit::new(lo, hi, &rows, &fl)
            })
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
            cb: Default::default(),
            credits: Default::default(),
            drain: Default::default(),
            room: Default::default(),
            credits_up: Default::default(),
            credits_down: Default::default(),
            can_issue: Default::default(),
            fire: Default::default(),
            pop: Default::default(),
            lanes: (0..l).map(|i| LaneValue::new(i, kind)).collect(),
            thr,
            ins: (0..l).map(LaneInsert::new).collect(),
            fifo: Default::default(),
            cb_last: Constant::new(((period - 1) as u64).into()),
            credit_limit: Constant::new((FIFO_DEPTH as u64).into()),
            credit_limit_m1: Constant::new((FIFO_DEPTH as u64 - 1).into()),
            _l: l,
            _last: l - 1,
            _info: ThresholdEngineInfo {
                lanes: l,
                channels: c,
                elements,
            },
        }
    }

    /// The engine of threshold layer `layer` of `net` (its input's kind and range).
    pub fn from_network(net: &Network, layer: usize) -> Self {
        let Op::Threshold {
            thresholds, flip, ..
        } = &net.layers[layer].op
        else {
            panic!("ThresholdEngine: layer {layer} is not a threshold");
        };
        let (ishape, ikind) = net.src_shape_kind(net.info()[layer].srcs[0]);
        let (lo, hi) = ikind.range();
        let kind = match ikind.width() {
            _ if ikind.is_binary() => LaneKind::Binary,
            (_, true) => LaneKind::Signed,
            (_, false) => LaneKind::Unsigned,
        };
        let k = thresholds.dims[1];
        let c = ishape.c;
        Self::new(
            kind,
            lo,
            hi,
            &thresholds
                .data
                .chunks(k)
                .map(|r| r.to_vec())
                .collect::<Vec<_>>(),
            &(0..c)
                .map(|i| flip.as_ref().is_some_and(|f| f.data[i] == 1))
                .collect::<Vec<_>>(),
            ishape.len(),
        )
    }

    pub fn info(&self) -> ThresholdEngineInfo {
        self._info
    }

    /// Cycles per frame at full rate ([`frame_cycles`]).
    pub fn cycles_per_frame(&self) -> u64 {
        frame_cycles(self._info.elements, self._info.lanes)
    }

    /// First input beat to first output beat: [`LATENCY`] cycles.
    pub fn latency(&self) -> u64 {
        LATENCY
    }
}

impl<
        const IB: usize,
        const IW: usize,
        const Y: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const CA: usize,
        const OW: usize,
    > Logic for ThresholdEngine<IB, IW, Y, U, K, B, CA, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, cb, credits, drain, room);
        // (credits < limit and no drain) is registered, from the next values
        self.can_issue.next = self.room.q.val();
        self.in_ready.next = self.can_issue.val();
        self.fire.next = self.can_issue.val() & self.in_valid.val();
        self.pop.next = self.out_ready.val() & self.fifo.valid.val();
        // room' = (credits' < limit) & (drain' == 0), each case from registers only
        self.credits_up.next = self.fire.val() & !self.pop.val();
        self.credits_down.next = !self.fire.val() & self.pop.val();
        self.room.d.next = self.credits.q.val() < self.credit_limit.val();
        if self.credits_up.val() {
            self.credits.d.next = self.credits.q.val() + 1;
            self.room.d.next = self.credits.q.val() < self.credit_limit_m1.val();
        }
        if self.credits_down.val() {
            self.credits.d.next = self.credits.q.val() - 1;
            self.room.d.next = true;
        }
        if self.drain.q.val() != 0 {
            self.drain.d.next = self.drain.q.val() - 1;
            if self.drain.q.val() != 1 {
                self.room.d.next = false;
            }
        }
        if self.fire.val() {
            self.cb.d.next = self.cb.q.val() + 1;
            if self.cb.q.val() == self.cb_last.val() {
                self.cb.d.next = 0.into();
            }
        }
        for l in 0..self._l {
            self.lanes[l].data.next = self.in_data.val();
            self.thr[l].clock.next = self.clock.val();
            self.thr[l].in_valid.next = self.fire.val();
            self.thr[l].ch.next = self.cb.q.val();
            self.thr[l].y.next = self.lanes[l].y.val();
            self.ins[l].v.next = self.thr[l].n.val();
        }
        self.ins[0].prev.next = 0.into();
        for l in 1..self._l {
            self.ins[l].prev.next = self.ins[l - 1].out.val();
        }
        self.fifo.clock.next = self.clock.val();
        self.fifo.reset.next = self.reset.val();
        self.fifo.write.next = self.thr[0].out_valid.val() & (self.drain.q.val() == 0);
        for l in self._last..self._l {
            self.fifo.data_in.next = self.ins[l].out.val();
        }
        self.fifo.read.next = self.out_ready.val();
        self.out_valid.next = self.fifo.valid.val();
        self.out_data.next = self.fifo.data_out.val();
        if self.reset.val() {
            self.cb.d.next = 0.into();
            self.credits.d.next = 0.into();
            self.drain.d.next = 5.into();
            self.room.d.next = false;
        }
    }
}

/// Beats before the lanes' channels repeat: lane l of beat b holds channel
/// (b·lanes + l) mod channels.
pub fn channel_period(channels: usize, lanes: usize) -> usize {
    let (mut a, mut b) = (channels, lanes);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    channels / a
}

/// Cycles per frame at full rate: one beat of `lanes` elements per cycle.
pub fn frame_cycles(elements: usize, lanes: usize) -> u64 {
    (elements / lanes) as u64
}

/// The cycle model of a [`ThresholdEngine`]: its result path ([`CreditTiming`]), each
/// beat taken a result queued the [`ThresholdUnit`]'s 3 cycles later. Exact: `in_ready`
/// is the register room, and no other state decides a handshake.
#[derive(Clone, Debug)]
pub struct ThresholdTiming(CreditTiming);

impl StreamTiming for ThresholdTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.0.room()
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.0.out_valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        self.0.clock(in_fire[0], out_fire[0]);
    }
}

/// A [`ThresholdEngine`] in a design: standalone threshold layer `layer` at `lanes`
/// lanes.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdSpec {
    pub layer: usize,
    pub lanes: usize,
    /// input element
    pub input: Elem,
    pub channels: usize,
    /// elements per frame
    pub elements: usize,
    /// output bits B
    pub bits: usize,
    /// threshold words in the engine: a word per channel and level, repeated when the
    /// lanes' channel period holds a channel in several lanes
    pub words: usize,
}

impl ThresholdSpec {
    /// The engine of threshold layer `layer` of `net` at `lanes` lanes.
    pub fn new(net: &Network, layer: usize, lanes: usize) -> ThresholdSpec {
        let Op::Threshold {
            bits, thresholds, ..
        } = &net.layers[layer].op
        else {
            panic!("layer {layer} is not a threshold");
        };
        let (ishape, ikind) = net.src_shape_kind(net.info()[layer].srcs[0]);
        ThresholdSpec {
            layer,
            lanes,
            input: Elem::of(ikind),
            channels: ishape.c,
            elements: ishape.len(),
            bits: *bits as usize,
            words: thresholds.data.len() / ishape.c * channel_period(ishape.c, lanes) * lanes,
        }
    }

    /// Generic `Y`: bits of an input lane as a signed value.
    fn y(&self) -> usize {
        let e = self.input;
        if e.binary {
            2
        } else if e.signed {
            e.bits
        } else {
            e.bits + 1
        }
    }

    /// Generic `CA`: address bits of the beats of a channel period.
    fn ca(&self) -> usize {
        crate::address_bits(channel_period(self.channels, self.lanes))
    }
}

/// ThresholdEngine LUT4: coefficients of [1, threshold ROMs, queue RAM (one copy)],
/// fitted on 4 pipelined engines of TFC-W1A1 and `random-3` (within 1 %).
const THRESHOLD_LUT: [f64; 3] = [10.390, 1.064, 2.689];
/// ThresholdEngine DFF: coefficients of [1, L·K·U, threshold ROMs, queue RAM (one
/// copy)]; the threshold words are registered on their way to the compare. Same 4
/// engines (within 17 %); yosys merges the queue copies' identical flip-flops.
const THRESHOLD_DFF: [f64; 4] = [43.858, 2.439, 0.000, 0.084];

/// LUT4s a lane's comparator saves when its thresholds are constants (a channel period
/// of one beat, [`CompareBit::constant`](crate::blocks::compare_bit::CompareBit::constant)):
/// measured on TFC's input threshold at 49 lanes of 8-bit pixels, 347 → 159 LUT4.
const CONST_COMPARE_LUT: f64 = 3.84;

impl EngineSpec for ThresholdSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(ThresholdTiming(CreditTiming::new(
            self.ready_after_reset(),
            crate::blocks::threshold_unit::LATENCY,
        )))
    }
    fn name(&self) -> &'static str {
        "threshold"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    /// `[IB, IW, Y, U, K, B, CA, OW]`.
    fn generics(&self) -> Vec<usize> {
        let (ib, l, b, y) = (self.input.bits, self.lanes, self.bits, self.y());
        vec![ib, l * ib, y, y + 1, (1 << b) - 1, b, self.ca(), l * b]
    }
    fn cycles(&self) -> u64 {
        frame_cycles(self.elements, self.lanes)
    }
    fn latency(&self) -> u64 {
        LATENCY
    }
    /// The 5 cycles of the drain set on reset.
    fn ready_after_reset(&self) -> u64 {
        5
    }
    fn memory_bits(&self) -> u64 {
        (self.words * (self.y() + 1)) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        let (u, k, l) = (self.y() + 1, (1 << self.bits) - 1, self.lanes);
        let words = 1 << self.ca();
        let ow = l * self.bits;
        vec![
            Memory::rom(u, words).times(l * k).holding(Role::Thresholds),
            Memory::rom(1, words).times(l).holding(Role::Thresholds),
            Memory::ram(ow, FIFO_DEPTH).times(queue_copies(ow)),
        ]
    }
    fn logic(&self, ms: &[Memory], _io: f64) -> Formula {
        let thr = mem_sum(ms, |x| x.role == Role::Thresholds);
        // the queue's copies share their write port and storage flip-flops: one counted
        let copies = queue_copies(self.lanes * self.bits) as f64;
        let q = mem_sum(ms, |x| x.role == Role::Other);
        let q = (q.0 / copies, q.1 / copies);
        let cmp = (self.lanes * ((1 << self.bits) - 1) * (self.y() + 1)) as f64;
        // constant thresholds (measured with one per lane): the compare folds, and
        // yosys drops the registers that held the threshold words
        let one = self.constant_thresholds() == Some(1);
        let (constant, cmp) = if one {
            (CONST_COMPARE_LUT * self.lanes as f64, 0.0)
        } else {
            (0.0, cmp)
        };
        (
            dot(&THRESHOLD_LUT, &[1.0, thr.0, q.0]) - constant,
            dot(&THRESHOLD_DFF, &[1.0, cmp, thr.1, q.1]),
        )
    }
    fn constant_thresholds(&self) -> Option<usize> {
        (channel_period(self.channels, self.lanes) == 1).then_some((1 << self.bits) - 1)
    }
    fn carries(&self) -> Carries {
        Carries::Layer(self.layer)
    }
}

/// Emitter of engine `i` of `d` (a [`ThresholdSpec`]).
pub fn emit<
    const IB: usize,
    const IW: usize,
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, s) = engine::<ThresholdSpec>(d, i, &[IB, IW, Y, U, K, B, CA, OW]);
    let b = ThresholdEngine::<IB, IW, Y, U, K, B, CA, OW>::from_network(net, s.layer);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::{check_engine, single_stream_dut};
    use crate::synth::ice40_stats;
    use bnnforge_model::network::{InputSpec, Layer, Param, Shape};
    use bnnforge_model::Model;
    use rand::Rng;

    single_stream_dut!(
        ThresholdEngine<IB, IW, Y, U, K, B, CA, OW>,
        IW,
        OW,
        [const IB: usize, const IW: usize, const Y: usize, const U: usize, const K: usize,
         const B: usize, const CA: usize, const OW: usize]
    );

    /// A one-layer network: a threshold of `bits` on the input (`ibits`, `signed`),
    /// thresholds placed among the values of `frames`.
    fn net(
        rng: &mut impl Rng,
        shape: Shape,
        ibits: u32,
        signed: bool,
        bits: u32,
        frames: &[Vec<i64>],
    ) -> Network {
        let input = InputSpec {
            shape,
            bits: ibits,
            signed,
        };
        let k = (1usize << bits) - 1;
        let hw = shape.pixels();
        let mut t = vec![];
        for c in 0..shape.c {
            for _ in 0..k {
                let v = frames[rng.gen_range(0..frames.len())][c * hw + rng.gen_range(0..hw)];
                t.push(match rng.gen_range(0..12) {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    2 => rng.gen(),
                    _ => v + rng.gen_range(-1..=1),
                });
            }
        }
        let flip: Vec<u8> = (0..shape.c).map(|_| rng.gen_range(0..2)).collect();
        let layer = Layer {
            name: "th".into(),
            inputs: vec!["input".into()],
            op: Op::Threshold {
                bits,
                thresholds: Param::new("th.t", vec![shape.c, k], t),
                flip: Some(Param::new("th.f", vec![shape.c], flip)),
            },
        };
        Network::new("t".into(), input, vec![layer], "th".into()).unwrap()
    }

    fn run<
        const IB: usize,
        const IW: usize,
        const Y: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const CA: usize,
        const OW: usize,
    >(
        rng: &mut impl Rng,
        shape: Shape,
        ibits: u32,
        signed: bool,
        n_frames: usize,
        verilog: bool,
    ) {
        let kind = InputSpec {
            shape,
            bits: ibits,
            signed,
        }
        .kind();
        let (lo, hi) = kind.range();
        let frames: Vec<Vec<i64>> = (0..n_frames)
            .map(|_| {
                (0..shape.len())
                    .map(|_| {
                        let v = rng.gen_range(lo..=hi);
                        if kind.is_binary() {
                            if v > 0 {
                                1
                            } else {
                                -1
                            }
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        let net = net(rng, shape, ibits, signed, B as u32, &frames);
        let model = Model::new(&net);
        let l = IW / IB;
        let (c, hw) = (shape.c, shape.pixels());
        let imask = (1u128 << IB) - 1;
        let mut beats = vec![];
        let mut want = vec![];
        for f in &frames {
            let y = model.eval(f);
            // the stream is HWC, L elements a beat
            for e0 in (0..c * hw).step_by(l) {
                let (mut bi, mut bo) = (0u128, 0u128);
                for i in 0..l {
                    let (p, ch) = ((e0 + i) / c, (e0 + i) % c);
                    let x = f[ch * hw + p];
                    let xe = if kind.is_binary() {
                        (x > 0) as u128
                    } else {
                        x as i128 as u128 & imask
                    };
                    bi |= xe << (i * IB);
                    let v = y[ch * hw + p];
                    let ve = if B == 1 { (v > 0) as u128 } else { v as u128 };
                    bo |= ve << (i * B);
                }
                beats.push(bi);
                want.push(bo);
            }
        }
        let build = || ThresholdEngine::<IB, IW, Y, U, K, B, CA, OW>::from_network(&net, 0);
        let label = format!(
            "ThresholdEngine<IB={IB}, B={B}> {shape} lanes {l} bits {ibits} signed {signed}"
        );
        let u = build();
        let timing = (u.cycles_per_frame(), u.latency());
        let name = format!("thr_engine_{IB}_{B}_{l}");
        let icarus = verilog.then_some(name.as_str());
        let spec = ThresholdSpec::new(&net, 0, l);
        assert_eq!(
            spec.generics(),
            [IB, IW, Y, U, K, B, CA, OW],
            "test setup: spec"
        );
        let model = || spec.timing();
        let full = check_engine(
            &label,
            build,
            &beats,
            &want,
            n_frames,
            timing,
            rng,
            icarus,
            Some(&model),
        );
        full.assert_cycles_per_frame(n_frames, timing.0, &label);
    }

    #[test]
    fn matches_the_model_with_stalls() {
        let mut rng = bnnforge_model::random::test_rng("threshold_engine");
        // <IB, IW = L·IB, Y, U = Y+1, K, B, CA, OW = L·B>
        // raw 8-bit pixels binarized, [3, 4, 4], 3 lanes
        run::<8, 24, 9, 10, 1, 1, 1, 3>(&mut rng, Shape::map(3, 4, 4), 8, false, 3, true);
        // signed 5-bit, [8, 2, 2], 2 lanes (4 channel beats), 2-bit output
        run::<5, 10, 5, 6, 3, 2, 2, 4>(&mut rng, Shape::map(8, 2, 2), 5, true, 3, true);
        // binary input, vector [12], 4 lanes, 1-bit output
        run::<1, 4, 2, 3, 1, 1, 2, 4>(&mut rng, Shape::vector(12), 1, false, 4, false);
        // one lane of one bit (scalar ports), 3-bit output
        run::<1, 1, 2, 3, 7, 3, 1, 3>(&mut rng, Shape::map(2, 3, 3), 1, false, 3, true);
        // unsigned 4-bit, 1 lane, [5, 2, 2]
        run::<4, 4, 5, 6, 1, 1, 3, 1>(&mut rng, Shape::map(5, 2, 2), 4, false, 2, false);
        // lanes a multiple of the channels: 8-bit pixels [2, 3, 4], 6 lanes (3 pixels a
        // beat, one row a lane)
        run::<8, 48, 9, 10, 1, 1, 1, 6>(&mut rng, Shape::map(2, 3, 4), 8, false, 3, true);
        // neither divides: [4, 3, 3], 6 lanes, a period of 2 beats, 2-bit output
        run::<3, 18, 4, 5, 3, 2, 1, 12>(&mut rng, Shape::map(4, 3, 3), 3, false, 3, false);
        // one channel, 16 binary lanes ([1, 4, 8], the input of an MLP)
        run::<1, 16, 2, 3, 1, 1, 1, 16>(&mut rng, Shape::map(1, 4, 8), 1, false, 2, false);
    }

    #[test]
    fn synthesises_clean() {
        let mut rng = bnnforge_model::random::test_rng("threshold_engine_synth");
        let shape = Shape::map(3, 32, 32);
        let frames = vec![(0..shape.len())
            .map(|_| rng.gen_range(0..256))
            .collect::<Vec<i64>>()];
        let net = net(&mut rng, shape, 8, false, 1, &frames);
        let mut u = ThresholdEngine::<8, 24, 9, 10, 1, 1, 1, 3>::from_network(&net, 0);
        u.connect_all();
        let s = ice40_stats("thr_engine", &generate_verilog(&u), "top").unwrap();
        println!("ThresholdEngine 8-bit unsigned, 3 lanes, 1-bit out, on synth_ice40: {s}");
    }
}
