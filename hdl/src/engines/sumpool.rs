//! `SumPool<IW, OW, GW, PW>`: global sum pooling: per channel the integer sum over all
//! H×W positions, a vector `[C]`. In: L lanes of B bits, H, W, C order (binary counts as
//! ±1). Out: the C sums in index order, L lanes of Y bits, Y the exact width of
//! H·W·[lo, hi] ([`SumConfig::out_bits`]), two's complement when it has negatives.
//!
//! ```text
//!  in ─► take ─[x1, v1, first1, last1]─► lanes: acc + ext(x) ─► res ─┬─► LineRam acc[cg] (C/L words of OW)
//!   cg ─► LineRam read ─► acc (or the value just written when C = L) │
//!                                            last pixel: res ────────┴─► OutQueue(3) ─► out
//! ```
//! The accumulators of the C/L channel groups are read when a beat is taken and written
//! one cycle later; the last pixel's sums go straight to the output queue.
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`.
//!
//! Generics: `IW` = L·B, `OW` = L·Y; deduced counter widths `GW` (channel group, C/L − 1)
//! and `PW` (pixel, H·W − 1), exactly as wide as needed ([`SumConfig::counter_bits`]).
//! Run-time ([`SumConfig`]): L, B, signedness, C, H, W.
//!
//! Cycles per frame: H·W·C/L. Latency: (H·W − 1)·C/L + 2. Memory: C·Y bits.

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, mem_sum, Formula, Memory};
use crate::compile::timing::StreamTiming;
use crate::engines::sliding_window::{LineRam, OutQueue, QueueTiming, MAX_CW};
use crate::engines::{Carries, EngineSpec, Pace};
use bnnforge_model::kernels::int_width;
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Parameters of a [`SumPool`] (run-time values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumConfig {
    /// Bits per input element (1 for binary ±1).
    pub bits: usize,
    pub lanes: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Two's-complement integer inputs (ignored for binary).
    pub signed: bool,
    /// The inputs' exact value range when it is narrower than the lanes' (the model's
    /// `Kind` range); the output width follows from it. `None`: the full lane range.
    pub range: Option<(i64, i64)>,
}

/// The widest output beat of a [`SumPool`]: its lanes' masks are `u64` constants.
pub const MAX_OW: usize = 64;

/// The most lanes of `y`-bit sums a [`SumPool`] takes (the folding keeps within it).
pub fn max_lanes(y: usize) -> usize {
    MAX_OW / y
}

impl SumConfig {
    /// The most lanes of this pool's sums ([`max_lanes`] of [`SumConfig::out_bits`]).
    pub fn max_lanes(&self) -> usize {
        max_lanes(self.out_bits().0)
    }
    pub fn binary(&self) -> bool {
        self.bits == 1
    }
    /// The input value range.
    pub fn in_range(&self) -> (i64, i64) {
        if self.binary() {
            (-1, 1)
        } else if self.signed {
            (-(1i64 << (self.bits - 1)), (1i64 << (self.bits - 1)) - 1)
        } else {
            (0, (1i64 << self.bits) - 1)
        }
    }
    /// The exact output width Y and signedness of H·W·[lo, hi].
    pub fn out_bits(&self) -> (usize, bool) {
        let n = (self.height * self.width) as i128;
        let (lo, hi) = self.range.unwrap_or_else(|| self.in_range());
        let (w, s) = int_width(n * lo as i128, n * hi as i128);
        (w as usize, s)
    }
    /// The counter widths, the const generics `GW`, `PW` of [`SumPool`]: the
    /// channel-group counter and accumulator address (C/L − 1) and the pixel counter
    /// (H·W − 1).
    pub fn counter_bits(&self) -> [usize; 2] {
        [
            crate::bits_to_hold((self.channels / self.lanes - 1) as u64),
            crate::bits_to_hold((self.height * self.width - 1) as u64),
        ]
    }
    pub fn cycles_per_frame(&self) -> u64 {
        (self.height * self.width * self.channels / self.lanes) as u64
    }
    pub fn latency(&self) -> u64 {
        ((self.height * self.width - 1) * self.channels / self.lanes) as u64 + 2
    }
}

/// One lane: `out` = (lane of `acc`) + ext(lane of `x`), placed at its output offset.
#[derive(LogicBlock)]
pub struct LaneSum<const IW: usize, const OW: usize> {
    pub x: Signal<In, Bits<IW>>,
    pub acc: Signal<In, Bits<OW>>,
    pub out: Signal<Out, Bits<OW>>,
    xv: Signal<Local, Bits<OW>>,
    ext: Signal<Local, Bits<OW>>,
    sum: Signal<Local, Bits<OW>>,
    offi: Constant<Bits<8>>,
    offo: Constant<Bits<8>>,
    maski: Constant<Bits<OW>>,
    masko: Constant<Bits<OW>>,
    signi: Constant<Bits<OW>>,
    binary: Constant<Bit>,
}

impl<const IW: usize, const OW: usize> LaneSum<IW, OW> {
    /// Lane `lane` of `bits`-bit inputs and `y`-bit sums.
    pub fn new(lane: usize, bits: usize, y: usize, binary: bool, signed: bool) -> Self {
        assert!(bits <= y && y < 64 && OW <= MAX_OW, "LaneSum: widths");
        Self {
            x: Default::default(),
            acc: Default::default(),
            out: Default::default(),
            xv: Default::default(),
            ext: Default::default(),
            sum: Default::default(),
            offi: Constant::new(((lane * bits) as u64).into()),
            offo: Constant::new(((lane * y) as u64).into()),
            maski: Constant::new(((1u64 << bits) - 1).into()),
            masko: Constant::new(((1u64 << y) - 1).into()),
            signi: Constant::new(
                if signed && !binary {
                    1u64 << (bits - 1)
                } else {
                    0
                }
                .into(),
            ),
            binary: Constant::new(binary),
        }
    }
}

impl<const IW: usize, const OW: usize> Logic for LaneSum<IW, OW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.xv.next = bit_cast::<OW, IW>(self.x.val() >> self.offi.val()) & self.maski.val();
        // sign extension by (v ^ s) - s; binary: 2·bit - 1
        self.ext.next = (self.xv.val() ^ self.signi.val()) - self.signi.val();
        if self.binary.val() {
            self.ext.next = (self.xv.val() << 1) - 1;
        }
        self.sum.next = ((self.acc.val() >> self.offo.val()) + self.ext.val()) & self.masko.val();
        self.out.next = self.sum.val() << self.offo.val();
    }
}

/// Global sum pooling engine (see the module documentation).
#[derive(LogicBlock)]
pub struct SumPool<const IW: usize, const OW: usize, const GW: usize, const PW: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    acc: LineRam<OW, GW>,
    queue: OutQueue<OW>,
    lanes: Vec<LaneSum<IW, OW>>,
    cg: DFF<Bits<GW>>,
    pix: DFF<Bits<PW>>,
    x1: DFF<Bits<IW>>,
    a1: DFF<Bits<GW>>,
    v1: DFF<Bit>,
    first1: DFF<Bit>,
    last1: DFF<Bit>,
    hz1: DFF<Bit>,
    wlast: DFF<Bits<OW>>,
    rdy: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    occ: Signal<Local, Bits<3>>,
    operand: Signal<Local, Bits<OW>>,
    res: Signal<Local, Bits<OW>>,
    c_cgl: Constant<Bits<GW>>,
    c_pixl: Constant<Bits<PW>>,
    c_cg1: Constant<Bit>,
    _cfg: SumConfig,
}

impl<const IW: usize, const OW: usize, const GW: usize, const PW: usize> SumPool<IW, OW, GW, PW> {
    /// Panics (naming the block) on inconsistent parameters.
    pub fn new(cfg: &SumConfig) -> Self {
        assert!(cfg.bits >= 1, "SumPool: bits must be at least 1");
        assert!(
            cfg.lanes >= 1 && cfg.channels % cfg.lanes == 0,
            "SumPool: lanes {} must divide C = {}",
            cfg.lanes,
            cfg.channels
        );
        assert!(cfg.height * cfg.width >= 1, "SumPool: empty map");

        let (y, _) = cfg.out_bits();
        assert_eq!(IW, cfg.lanes * cfg.bits, "SumPool: IW must be lanes * bits");
        assert_eq!(
            OW,
            cfg.lanes * y,
            "SumPool: OW must be lanes * {y} (the exact sum width)"
        );
        assert!(
            cfg.lanes <= max_lanes(y),
            "SumPool: OW = {OW} > {MAX_OW} not supported"
        );
        let [gw, pw] = cfg.counter_bits();
        assert!(
            GW >= gw && PW >= pw && GW <= MAX_CW && PW <= MAX_CW,
            "SumPool: counter bits GW, PW = {GW}, {PW}, but this configuration needs {gw}, \
             {pw} (at most {MAX_CW})"
        );
        let cg = cfg.channels / cfg.lanes;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            acc: LineRam::new(cg),
            queue: Default::default(),
            lanes: (0..cfg.lanes)
                .map(|l| LaneSum::new(l, cfg.bits, y, cfg.binary(), cfg.signed))
                .collect(),
            cg: Default::default(),
            pix: Default::default(),
            x1: Default::default(),
            a1: Default::default(),
            v1: Default::default(),
            first1: Default::default(),
            last1: Default::default(),
            hz1: Default::default(),
            wlast: Default::default(),
            rdy: Default::default(),
            take: Default::default(),
            occ: Default::default(),
            operand: Default::default(),
            res: Default::default(),
            c_cgl: Constant::new(((cg - 1) as u64).into()),
            c_pixl: Constant::new(((cfg.height * cfg.width - 1) as u64).into()),
            c_cg1: Constant::new(cg == 1),
            _cfg: cfg.clone(),
        }
    }
    pub fn cycles_per_frame(&self) -> u64 {
        self._cfg.cycles_per_frame()
    }
    pub fn latency(&self) -> u64 {
        self._cfg.latency()
    }
}

impl<const IW: usize, const OW: usize, const GW: usize, const PW: usize> Logic
    for SumPool<IW, OW, GW, PW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, cg, pix, x1, a1, v1, first1, last1, hz1, wlast);
        self.acc.clock.next = self.clock.val();
        self.queue.clock.next = self.clock.val();
        self.queue.reset.next = self.reset.val();
        self.queue.out_ready.next = self.out_ready.val();
        self.out_data.next = self.queue.out_data.val();
        self.out_valid.next = self.queue.out_valid.val();
        // 3 bits: a full queue (3) and a beat in flight make 4, not 0
        self.occ.next = bit_cast::<3, 2>(self.queue.count.val());
        if self.v1.q.val() {
            self.occ.next = bit_cast::<3, 2>(self.queue.count.val()) + 1;
        }
        self.rdy.next = (self.pix.q.val() != self.c_pixl.val()) | (self.occ.val() <= 2);
        self.in_ready.next = self.rdy.val();
        self.take.next = self.in_valid.val() & self.rdy.val();
        self.acc.read_address.next = self.cg.q.val();
        self.v1.d.next = self.take.val();
        self.x1.d.next = self.in_data.val();
        self.a1.d.next = self.cg.q.val();
        self.first1.d.next = self.pix.q.val() == 0;
        self.last1.d.next = self.pix.q.val() == self.c_pixl.val();
        self.hz1.d.next = self.c_cg1.val() & self.v1.q.val();
        if self.take.val() {
            self.cg.d.next = self.cg.q.val() + 1;
            if self.cg.q.val() == self.c_cgl.val() {
                self.cg.d.next = 0.into();
                self.pix.d.next = self.pix.q.val() + 1;
                if self.pix.q.val() == self.c_pixl.val() {
                    self.pix.d.next = 0.into();
                }
            }
        }
        // stage 1: add to the accumulator (0 on the first pixel)
        self.operand.next = self.acc.read_data.val();
        if self.hz1.q.val() {
            self.operand.next = self.wlast.q.val();
        }
        if self.first1.q.val() {
            self.operand.next = 0.into();
        }
        for i in 0..self.lanes.len() {
            self.lanes[i].x.next = self.x1.q.val();
            self.lanes[i].acc.next = self.operand.val();
        }
        self.res.next = 0.into();
        for i in 0..self.lanes.len() {
            self.res.next = self.res.val() | self.lanes[i].out.val();
        }
        self.wlast.d.next = self.res.val();
        self.acc.write_address.next = self.a1.q.val();
        self.acc.write_data.next = self.res.val();
        self.acc.write_enable.next = self.v1.q.val() & !self.last1.q.val();
        self.queue.push.next = self.v1.q.val() & self.last1.q.val();
        self.queue.push_data.next = self.res.val();
        if self.reset.val() {
            self.cg.d.next = 0.into();
            self.pix.d.next = 0.into();
            self.v1.d.next = false;
            self.acc.write_enable.next = false;
            self.queue.push.next = false;
        }
    }
}

/// SumPool LUT4: coefficients of [1, io, RAM, counter bits GW + PW].
const SUMPOOL_LUT: [f64; 4] = [36.255, 4.414, 1.0, 1.375];
/// SumPool DFF: coefficients of [1, io, RAM, GW + PW].
const SUMPOOL_DFF: [f64; 4] = [18.302, 2.752, 1.0, 1.0];

impl EngineSpec for SumConfig {
    /// The accumulate stage over H·W positions: the block is that stage.
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(ReduceTiming::new(
            self.channels / self.lanes,
            self.height * self.width,
        ))
    }
    fn name(&self) -> &'static str {
        "sumpool"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    /// `[IW, OW, GW, PW]`.
    fn generics(&self) -> Vec<usize> {
        let y = self.out_bits().0;
        [
            vec![self.lanes * self.bits, self.lanes * y],
            self.counter_bits().to_vec(),
        ]
        .concat()
    }
    fn cycles(&self) -> u64 {
        self.cycles_per_frame()
    }
    fn latency(&self) -> u64 {
        SumConfig::latency(self)
    }
    /// The sums leave after the frame's last pixel.
    fn pace(&self) -> Pace {
        Pace {
            tail: Some(2),
            spacing: 1,
        }
    }
    /// The accumulators.
    fn memory_bits(&self) -> u64 {
        (self.channels * self.out_bits().0) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        vec![Memory::ram(
            self.lanes * self.out_bits().0,
            self.channels / self.lanes,
        )]
    }
    fn logic(&self, ms: &[Memory], io: f64) -> Formula {
        let r = mem_sum(ms, |_| true);
        let cw = self.counter_bits().iter().sum::<usize>() as f64;
        (
            dot(&SUMPOOL_LUT, &[1.0, io, r.0, cw]),
            dot(&SUMPOOL_DFF, &[1.0, io, r.1, cw]),
        )
    }
    fn carries(&self) -> Carries {
        Carries::Named
    }
}

/// The cycle model of a [`SumPool`], and of a [`MaxPool`](crate::engines::maxpool::MaxPool)
/// behind its window: the channel-group and position counters, stage 1's `v1`, `last1`
/// and the queue's count; it takes a beat unless the beat ends the sums and the queue
/// may be full: the block's `rdy`.
#[derive(Clone, Debug)]
pub struct ReduceTiming {
    /// Last channel group, C/L − 1.
    cgl: usize,
    /// Last position, (positions summed or pooled) − 1.
    posl: usize,
    cg: usize,
    pos: usize,
    v1: bool,
    last1: bool,
    queue: QueueTiming,
}

impl ReduceTiming {
    /// Right after reset, over `groups` channel groups and `positions` positions.
    pub fn new(groups: usize, positions: usize) -> Self {
        ReduceTiming {
            cgl: groups - 1,
            posl: positions - 1,
            cg: 0,
            pos: 0,
            v1: false,
            last1: false,
            queue: QueueTiming::default(),
        }
    }
    /// The stage takes a beat this cycle if one is offered.
    pub fn ready(&self) -> bool {
        self.pos != self.posl || self.queue.occ(self.v1) <= 2
    }
    /// The output queue offers a beat.
    pub fn valid(&self) -> bool {
        self.queue.valid()
    }
    /// The clock edge: a beat was taken (`take`), the output was taken (`pop`).
    pub fn clock(&mut self, take: bool, pop: bool) {
        self.queue.clock(self.v1 && self.last1, pop);
        self.v1 = take;
        self.last1 = self.pos == self.posl;
        if take {
            if self.cg < self.cgl {
                self.cg += 1;
            } else {
                self.cg = 0;
                self.pos = if self.pos < self.posl {
                    self.pos + 1
                } else {
                    0
                };
            }
        }
    }
}

impl StreamTiming for ReduceTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.ready()
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        ReduceTiming::clock(self, in_fire[0], out_fire[0]);
    }
}

/// Emitter of engine `i` of `d` (a [`SumConfig`]).
pub fn emit<const IW: usize, const OW: usize, const GW: usize, const PW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, cfg) = engine::<SumConfig>(d, i, &[IW, OW, GW, PW]);
    let b = SumPool::<IW, OW, GW, PW>::new(cfg);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::sliding_window::test_frames::beats_of;
    use crate::stream::testbench::{check_engine, single_stream_dut};
    use crate::synth::ice40_stats;
    use bnnforge_model::{reference, InputSpec, Layer, Network, Op, Shape};
    use rand::Rng;

    single_stream_dut!(
        SumPool<IW, OW, GW, PW>,
        IW,
        OW,
        [const IW: usize, const OW: usize, const GW: usize, const PW: usize]
    );

    fn check<const IW: usize, const OW: usize, const GW: usize, const PW: usize>(
        rng: &mut impl Rng,
        c: SumConfig,
        frames: usize,
        icarus: bool,
    ) {
        let label = format!("{c:?}");
        // counters exactly as wide as the configuration needs
        assert_eq!([GW, PW], c.counter_bits(), "counter bits of {label}");
        let binary = c.binary();
        let (y, _) = c.out_bits();
        let net = Network::new(
            "sp".into(),
            InputSpec {
                shape: Shape::map(c.channels, c.height, c.width),
                bits: c.bits as u32,
                signed: c.signed,
            },
            vec![Layer {
                name: "pool".into(),
                inputs: vec!["input".into()],
                op: Op::SumPool,
            }],
            "pool".into(),
        )
        .unwrap();
        assert_eq!(
            net.info()[0].kind.width().0 as usize,
            y,
            "out_bits agrees with the model's Kind::width"
        );
        let (lo, hi) = c.in_range();
        let n = c.channels * c.height * c.width;
        let mut beats = vec![];
        let mut want = vec![];
        for f in 0..frames {
            let x: Vec<i64> = (0..n)
                .map(|_| {
                    // frame 0 at the extremes, to hit the range's ends
                    let v = match f {
                        0 => hi,
                        1 => lo,
                        _ => rng.gen_range(lo..=hi),
                    };
                    if binary && v == 0 {
                        1
                    } else {
                        v
                    }
                })
                .collect();
            beats.extend(beats_of(
                &x, c.channels, c.height, c.width, c.lanes, c.bits, binary,
            ));
            let s = reference::eval(&net, &x);
            want.extend(beats_of(&s, c.channels, 1, 1, c.lanes, y, false));
        }
        let uut = SumPool::<IW, OW, GW, PW>::new(&c);
        let (cpf, lat) = (uut.cycles_per_frame(), uut.latency());
        let make = || SumPool::<IW, OW, GW, PW>::new(&c);
        let name = format!("sumpool_{IW}_{OW}_{}x{}x{}", c.channels, c.height, c.width);
        let icarus = icarus.then_some(name.as_str());
        println!("{label}: Y = {y}");
        let full = check_engine(
            &label,
            make,
            &beats,
            &want,
            frames,
            (cpf, lat),
            rng,
            icarus,
            Some(&|| c.timing()),
        );
        let interval = full.last_frame_interval(frames);
        println!("{label}: frame interval {interval}, cycles_per_frame {cpf}");
        assert!(
            interval <= cpf + 4,
            "frame interval {interval} vs {cpf}: {label}"
        );
    }

    fn cfg(bits: usize, lanes: usize, chw: (usize, usize, usize), signed: bool) -> SumConfig {
        SumConfig {
            bits,
            lanes,
            channels: chw.0,
            height: chw.1,
            width: chw.2,
            signed,
            range: None,
        }
    }

    #[test]
    fn matches_the_model_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("sumpool");
        // binary: 16 positions, ±16 → 6 bits signed
        check::<2, 12, 1, 4>(&mut rng, cfg(1, 2, (4, 4, 4), false), 4, true);
        check::<1, 6, 1, 4>(&mut rng, cfg(1, 1, (1, 4, 4), false), 4, true); // C = L: forwarding
        check::<4, 8, 1, 1>(&mut rng, cfg(1, 4, (8, 1, 1), false), 4, false); // one pixel: ±1 → 2 bits
                                                                              // unsigned 4-bit over 3x5: 0..225 → 8 bits
        check::<8, 16, 2, 4>(&mut rng, cfg(4, 2, (6, 3, 5), false), 4, true);
        // signed 3-bit over 2x3: -24..18 → 6 bits
        check::<6, 12, 1, 3>(&mut rng, cfg(3, 2, (2, 2, 3), true), 4, false);
        check::<3, 15, 1, 4>(&mut rng, cfg(1, 3, (6, 5, 3), false), 4, false); // ±15 → 5 bits
                                                                               // both counters at their top (3 of 2 bits, 31 of 5 bits): ±32 → 7 bits
        check::<1, 7, 2, 5>(&mut rng, cfg(1, 1, (4, 4, 8), false), 4, true);
    }

    #[test]
    #[should_panic(expected = "SumPool: OW must be")]
    fn rejects_an_inexact_output_width() {
        let _ = SumPool::<1, 8, 1, 4>::new(&cfg(1, 1, (1, 4, 4), false));
    }

    #[test]
    fn synthesises_a_sumpool_over_16x8x8() {
        // binary, 64 positions: -64..64 → 8 bits; 4 lanes
        let c = cfg(1, 4, (16, 8, 8), false);
        assert_eq!(c.counter_bits(), [2, 6]);
        for (name, s) in [
            (
                "SumPool<4, 32, 2, 6>",
                stats::<4, 32, 2, 6>("sumpool_16x8x8", &c),
            ),
            (
                "SumPool<4, 32, 16, 32> (former widths)",
                stats::<4, 32, 16, 32>("sumpool_16x8x8_wide", &c),
            ),
        ] {
            println!(
                "{name} over 16x8x8 binary, cycles/frame {}: {s}",
                c.cycles_per_frame()
            );
        }
    }

    fn stats<const IW: usize, const OW: usize, const GW: usize, const PW: usize>(
        name: &str,
        c: &SumConfig,
    ) -> crate::synth::Ice40Stats {
        let mut u = SumPool::<IW, OW, GW, PW>::new(c);
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        ice40_stats(name, &v, "top").unwrap()
    }
}
