//! `LaneConverter<IB, IW, OW, BW>`: re-packs IL-lane beats into OL-lane beats of the same
//! element width, frame by frame, for any IL, OL (3 → 2 too). Used only where neither lane
//! count divides the other (else [`RatioLaneConverter`]). A frame starts on a new beat on
//! both sides; the unused lanes of its last beat are zero on the output and ignored on
//! the input. How it works: `hdl/DESIGN.md`, "Lane converters".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`; reset required before use.
//!
//! Generics (checked by [`LaneConverter::new`]):
//! - `IB` ≥ 1: element bits (1 for binary);
//! - `IW` = IL·IB, `OW` = OL·IB: beat widths;
//! - `BW` = C·IB (deduced), the buffer, C = IL + OL + max(IL, OL) − 1 ([`buffer_lanes`]).
//!
//! Run-time: `elements` per frame, in 1..2^24 ([`FRAME_BITS`]).
//!
//! Cycles per frame: max(⌈E/IL⌉, ⌈E/OL⌉) (a frame boundary may add one cycle when neither
//! count divides E). Latency (first input beat into an idle converter to its first output
//! beat): ⌈min(OL, E)/IL⌉ + 1.
//!
//! [`RatioLaneConverter`]: crate::stream::ratio_lane_converter::RatioLaneConverter

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{Formula, Memory};
use crate::engines::{Carries, EngineSpec, Span, StreamTiming};
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Width of the frame position counters.
pub const FRAME_BITS: usize = 24;

/// Buffer lanes a converter from `il` to `ol` lanes needs for full rate.
pub const fn buffer_lanes(il: usize, ol: usize) -> usize {
    il + ol + if il > ol { il } else { ol } - 1
}

/// Frame-aware lane converter (see the module documentation).
#[derive(LogicBlock)]
pub struct LaneConverter<const IB: usize, const IW: usize, const OW: usize, const BW: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// Input beat: IL lanes of IB bits.
    pub in_data: Signal<In, Bits<IW>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The converter takes the beat if `in_valid` (state only).
    pub in_ready: Signal<Out, Bit>,
    /// Output beat: OL lanes of IB bits (registered).
    pub out_data: Signal<Out, Bits<OW>>,
    /// An output beat is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the output beat this cycle.
    pub out_ready: Signal<In, Bit>,
    store: DFF<Bits<BW>>,
    n: DFF<Bits<16>>,
    in_rem: DFF<Bits<FRAME_BITS>>,
    out_rem: DFF<Bits<FRAME_BITS>>,
    od: DFF<Bits<OW>>,
    ov: DFF<Bit>,
    kk: Signal<Local, Bits<16>>,
    k: Signal<Local, Bits<16>>,
    m: Signal<Local, Bits<16>>,
    free: Signal<Local, Bit>,
    emit: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    shifted: Signal<Local, Bits<BW>>,
    beat: Signal<Local, Bits<IW>>,
    ib: Constant<Bits<16>>,
    il: Constant<Bits<16>>,
    ol: Constant<Bits<16>>,
    il_f: Constant<Bits<FRAME_BITS>>,
    ol_f: Constant<Bits<FRAME_BITS>>,
    room: Constant<Bits<16>>,
    frame: Constant<Bits<FRAME_BITS>>,
    in_mask: Constant<Bits<IW>>,
    out_mask: Constant<Bits<OW>>,
    _il: usize,
    _ol: usize,
    _e: usize,
}

impl<const IB: usize, const IW: usize, const OW: usize, const BW: usize>
    LaneConverter<IB, IW, OW, BW>
{
    /// A converter for frames of `elements` elements.
    pub fn new(elements: usize) -> Self {
        assert!(IB >= 1, "LaneConverter: IB = {IB} must be at least 1");
        assert!(
            IW >= IB && IW % IB == 0,
            "LaneConverter: IW = {IW} is not a whole number of {IB}-bit lanes"
        );
        assert!(
            OW >= IB && OW % IB == 0,
            "LaneConverter: OW = {OW} is not a whole number of {IB}-bit lanes"
        );
        let (il, ol) = (IW / IB, OW / IB);
        let c = buffer_lanes(il, ol);
        assert_eq!(
            BW,
            c * IB,
            "LaneConverter: BW must be (IL + OL + max(IL, OL) - 1) * IB = {}",
            c * IB
        );
        assert!(BW < 1 << 15, "LaneConverter: buffer of {BW} bits too wide");
        assert!(
            elements >= 1 && elements < 1 << FRAME_BITS,
            "LaneConverter: {elements} elements per frame not in 1..2^{FRAME_BITS}"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            store: Default::default(),
            n: Default::default(),
            in_rem: Default::default(),
            out_rem: Default::default(),
            od: Default::default(),
            ov: Default::default(),
            kk: Default::default(),
            k: Default::default(),
            m: Default::default(),
            free: Default::default(),
            emit: Default::default(),
            take: Default::default(),
            shifted: Default::default(),
            beat: Default::default(),
            ib: Constant::new((IB as u64).into()),
            il: Constant::new((il as u64).into()),
            ol: Constant::new((ol as u64).into()),
            il_f: Constant::new((il as u64).into()),
            ol_f: Constant::new((ol as u64).into()),
            room: Constant::new(((c - il) as u64).into()),
            frame: Constant::new((elements as u64).into()),
            in_mask: Constant::new(Bits::<IW>::mask()),
            out_mask: Constant::new(Bits::<OW>::mask()),
            _il: il,
            _ol: ol,
            _e: elements,
        }
    }

    /// Input beats per frame.
    pub fn in_beats(&self) -> u64 {
        self._e.div_ceil(self._il) as u64
    }

    /// Output beats per frame.
    pub fn out_beats(&self) -> u64 {
        self._e.div_ceil(self._ol) as u64
    }

    /// This converter's [`LanesSpec`].
    pub fn spec(&self) -> LanesSpec {
        LanesSpec {
            bits: IB,
            in_lanes: self._il,
            out_lanes: self._ol,
            elements: self._e,
        }
    }

    /// Cycles per frame at full rate ([`LanesSpec::cycles`]).
    pub fn cycles_per_frame(&self) -> u64 {
        self.spec().cycles()
    }

    /// First input beat of a frame (converter idle) to its first output beat.
    pub fn latency(&self) -> u64 {
        self.spec().latency()
    }
}

impl<const IB: usize, const IW: usize, const OW: usize, const BW: usize> Logic
    for LaneConverter<IB, IW, OW, BW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, store, n, in_rem, out_rem, od, ov);
        // output side: kk elements of the current frame can leave in one beat
        self.kk.next = self.ol.val();
        if self.out_rem.q.val() < self.ol_f.val() {
            self.kk.next = bit_cast::<16, FRAME_BITS>(self.out_rem.q.val());
        }
        self.free.next = !self.ov.q.val() || self.out_ready.val();
        self.emit.next = self.free.val() && (self.n.q.val() >= self.kk.val());
        self.k.next = 0.into();
        if self.emit.val() {
            self.k.next = self.kk.val();
        }
        // input side: m elements of the beat belong to the frame
        self.m.next = self.il.val();
        if self.in_rem.q.val() < self.il_f.val() {
            self.m.next = bit_cast::<16, FRAME_BITS>(self.in_rem.q.val());
        }
        self.in_ready.next = self.n.q.val() <= self.room.val();
        self.take.next = self.in_valid.val() && (self.n.q.val() <= self.room.val());
        self.beat.next = self.in_data.val()
            & (self.in_mask.val() >> ((self.il.val() - self.m.val()) * self.ib.val()));
        self.shifted.next = self.store.q.val() >> (self.k.val() * self.ib.val());
        self.store.d.next = self.shifted.val();
        self.n.d.next = self.n.q.val() - self.k.val();
        if self.take.val() {
            self.store.d.next = self.shifted.val()
                | (bit_cast::<BW, IW>(self.beat.val())
                    << ((self.n.q.val() - self.k.val()) * self.ib.val()));
            self.n.d.next = self.n.q.val() - self.k.val() + self.m.val();
            self.in_rem.d.next = self.in_rem.q.val() - bit_cast::<FRAME_BITS, 16>(self.m.val());
            if self.in_rem.q.val() == bit_cast::<FRAME_BITS, 16>(self.m.val()) {
                self.in_rem.d.next = self.frame.val();
            }
        }
        if self.emit.val() {
            self.od.d.next = bit_cast::<OW, BW>(self.store.q.val())
                & (self.out_mask.val() >> ((self.ol.val() - self.kk.val()) * self.ib.val()));
            self.ov.d.next = true;
            self.out_rem.d.next = self.out_rem.q.val() - bit_cast::<FRAME_BITS, 16>(self.kk.val());
            if self.out_rem.q.val() == bit_cast::<FRAME_BITS, 16>(self.kk.val()) {
                self.out_rem.d.next = self.frame.val();
            }
        } else if self.free.val() {
            self.ov.d.next = false;
        }
        self.out_valid.next = self.ov.q.val();
        self.out_data.next = self.od.q.val();
        if self.reset.val() {
            self.store.d.next = 0.into();
            self.n.d.next = 0.into();
            self.in_rem.d.next = self.frame.val();
            self.out_rem.d.next = self.frame.val();
            self.ov.d.next = false;
        }
    }
}

/// The cycle model of a [`LaneConverter`]: the elements buffered (`n`), the elements
/// left of the frame on each side and the output register's valid.
#[derive(Clone, Debug)]
pub struct LanesTiming {
    il: usize,
    ol: usize,
    room: usize,
    frame: usize,
    n: usize,
    in_rem: usize,
    out_rem: usize,
    ov: bool,
}

impl StreamTiming for LanesTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.n <= self.room
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.ov
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let free = !self.ov || out_fire[0];
        let kk = self.ol.min(self.out_rem);
        let emit = free && self.n >= kk;
        let k = if emit { kk } else { 0 };
        let m = self.il.min(self.in_rem);
        self.n -= k;
        if in_fire[0] {
            self.n += m;
            self.in_rem = if self.in_rem == m {
                self.frame
            } else {
                self.in_rem - m
            };
        }
        if emit {
            self.ov = true;
            self.out_rem = if self.out_rem == kk {
                self.frame
            } else {
                self.out_rem - kk
            };
        } else if free {
            self.ov = false;
        }
    }
}

/// A [`LaneConverter`] in a design: `bits`-bit elements from `in_lanes` to `out_lanes`
/// lanes (neither a multiple of the other), frames of `elements`.
#[derive(Clone, Debug, PartialEq)]
pub struct LanesSpec {
    pub bits: usize,
    pub in_lanes: usize,
    pub out_lanes: usize,
    pub elements: usize,
}

/// The output span of a lane converter (either kind) from `il` to `ol` lanes of
/// `elements` per frame, whose first output beat comes `latency` cycles after the first
/// input beat when the input is at full rate. An output beat leaves a fixed delay after
/// the input beat holding its last element arrives (that delay is `latency` less the
/// input beats before that beat of the first output), and at most one leaves a cycle:
/// a widening converter follows its input's pace, whatever it is, and a narrowing one
/// sends the beats of the last input beat one a cycle after it.
pub fn converter_span(
    il: usize,
    ol: usize,
    elements: usize,
    latency: u64,
    input: Span,
    beats: u64,
) -> Span {
    let (il, ol, e) = (il as u64, ol as u64, elements as u64);
    // the input beat holding the last element of output beat j
    let needs = |j: u64| (((j + 1) * ol).min(e) - 1) / il;
    let delay = latency - needs(0);
    let first = input.beat(needs(0)) + delay;
    let last_in = needs(beats - 1);
    let after_last_in = (0..beats)
        .rev()
        .take_while(|&j| needs(j) == last_in)
        .count() as u64;
    let last = (input.beat(last_in) + delay + after_last_in - 1).max(first + beats - 1);
    Span { first, last, beats }
}

/// Lane converter: LUT4 = c + a·BW + b·BW·[IB not a power of two].
const LANES_LUT: [f64; 3] = [267.100, 9.420, 4.167];
/// Lane converter: DFF = c + a·BW + b·(IW + OW).
const LANES_DFF: [f64; 3] = [64.904, 1.266, 0.000];

impl EngineSpec for LanesSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        let (il, ol, e) = (self.in_lanes, self.out_lanes, self.elements);
        Box::new(LanesTiming {
            il,
            ol,
            room: buffer_lanes(il, ol) - il,
            frame: e,
            n: 0,
            in_rem: e,
            out_rem: e,
            ov: false,
        })
    }
    fn name(&self) -> &'static str {
        "lanes"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    fn generics(&self) -> Vec<usize> {
        let (ib, il, ol) = (self.bits, self.in_lanes, self.out_lanes);
        vec![ib, il * ib, ol * ib, buffer_lanes(il, ol) * ib]
    }
    /// The busier side's beats, plus a cycle at a frame boundary when neither lane
    /// count divides the frame.
    fn cycles(&self) -> u64 {
        let (e, il, ol) = (self.elements, self.in_lanes, self.out_lanes);
        e.div_ceil(il).max(e.div_ceil(ol)) as u64 + (e % il != 0 && e % ol != 0) as u64
    }
    fn latency(&self) -> u64 {
        self.out_lanes.min(self.elements).div_ceil(self.in_lanes) as u64 + 1
    }
    fn span(&self, input: Span, beats: u64) -> Span {
        let (il, ol, e) = (self.in_lanes, self.out_lanes, self.elements);
        converter_span(il, ol, e, self.latency(), input, beats)
    }
    fn memory_bits(&self) -> u64 {
        0
    }
    fn memories(&self) -> Vec<Memory> {
        vec![]
    }
    /// Dominated by the buffer's lane shifters (≈ 9 LUT4 per buffer bit, half as much
    /// again when IB is not a power of two and lane offsets need a multiplier) and the
    /// two frame counters.
    fn logic(&self, _: &[Memory], _io: f64) -> Formula {
        let g = self.generics();
        let (iw, ow, bw) = (g[1], g[2], g[3] as f64);
        let odd = if self.bits.is_power_of_two() {
            0.0
        } else {
            1.0
        };
        (
            LANES_LUT[0] + LANES_LUT[1] * bw + LANES_LUT[2] * bw * odd,
            LANES_DFF[0] + LANES_DFF[1] * bw + LANES_DFF[2] * (iw + ow) as f64,
        )
    }
    fn carries(&self) -> Carries {
        Carries::Input
    }
}

/// Emitter of engine `i` of `d` (a [`LanesSpec`]).
pub fn emit<const IB: usize, const IW: usize, const OW: usize, const BW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, s) = engine::<LanesSpec>(d, i, &[IB, IW, OW, BW]);
    let b = LaneConverter::<IB, IW, OW, BW>::new(s.elements);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;
    use rand::Rng;

    single_stream_dut!(LaneConverter<IB, IW, OW, BW>, IW, OW, [const IB: usize, const IW: usize, const OW: usize, const BW: usize]);

    /// Spans measured in the co-simulation of TFC-W1A1 and random-3 (a probed top
    /// logging each handshake's cycle): widening follows a slow input's pace, narrowing
    /// sends the beats of the last input beat one a cycle.
    #[test]
    fn converter_spans_are_the_measured_ones() {
        let span = |first, last, beats| Span { first, last, beats };
        // 784 elements, 1 → 16 lanes behind the input threshold (full rate)
        let s = converter_span(1, 16, 784, 16, span(5, 788, 784), 49);
        assert_eq!(s, span(21, 789, 49));
        // 64 elements, 4 → 8 lanes after an MVTU answering every 49 cycles
        let s = converter_span(4, 8, 64, 2, span(803, 1538, 16), 8);
        assert_eq!(s, span(853, 1539, 8));
        // 17 → 1 beat, all of one frame: the last input beat first
        let s = converter_span(1, 17, 17, 17, span(455, 679, 17), 1);
        assert_eq!(s, span(680, 680, 1));
    }

    /// `frames` random frames of `elements` elements of `ib` bits through a lane
    /// converter between `iw`- and `ow`-bit beats (`make`) under random stalls
    /// (`p_in`, `p_out`): the output is the frames repacked, each frame from a new beat
    /// with zero lanes past its end (the input's lanes there hold random bits); the run
    /// is replayed in Icarus when `icarus` gives a scratch name's prefix; its handshakes
    /// are those of the cycle model `model`.
    pub(crate) fn check_repacking<D: StreamDut>(
        rng: &mut impl Rng,
        make: impl Fn() -> D,
        model: Box<dyn StreamTiming>,
        (ib, iw, ow): (usize, usize, usize),
        (elements, frames): (usize, usize),
        (p_in, p_out): (f64, f64),
        icarus: Option<&str>,
    ) {
        let (il, ol) = (iw / ib, ow / ib);
        let emask = (1u128 << ib) - 1;
        let data: Vec<Vec<u128>> = (0..frames)
            .map(|_| (0..elements).map(|_| rng.gen::<u128>() & emask).collect())
            .collect();
        let mut garbage = || rng.gen::<u128>() & emask;
        let ins = vec![pack_frames(&data, il, ib, &mut garbage)];
        let want = pack_frames(&data, ol, ib, &mut || 0);
        let beats = ins[0].len().max(want.len());
        let cycles = (beats as f64 / p_in.min(p_out)) as usize * 2 + 40;
        let pat = Pattern::random(rng, 1, 1, cycles, p_in, p_out);
        let name = icarus.map(|p| format!("{p}_{il}_{ol}_{ib}_{elements}"));
        let tr = sim_and_icarus(make, &ins, &pat, name.as_deref());
        let label = format!(
            "{} {il}x{ib} -> {ol}x{ib}, E = {elements}, p_in {p_in} p_out {p_out}",
            std::any::type_name::<D>()
        );
        assert_eq!(tr.out_data(0), want, "{label}");
        tr.assert_timing(&label, model);
    }

    fn run<const IB: usize, const IW: usize, const OW: usize, const BW: usize>(
        rng: &mut impl Rng,
        (elements, frames): (usize, usize),
        stalls: (f64, f64),
        verilog: bool,
    ) {
        let make = || LaneConverter::<IB, IW, OW, BW>::new(elements);
        let icarus = verilog.then_some("lanes");
        let model = make().spec().timing();
        check_repacking(
            rng,
            make,
            model,
            (IB, IW, OW),
            (elements, frames),
            stalls,
            icarus,
        );
    }

    #[test]
    fn repacks_frames_under_random_stalls_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("lane_converter");
        // <IB, IW = IL*IB, OW = OL*IB, BW = (IL + OL + max - 1)*IB>
        run::<8, 32, 8, 64>(&mut rng, (10, 6), (0.7, 0.8), true); // 4 -> 1
        run::<8, 8, 32, 64>(&mut rng, (10, 6), (0.8, 0.7), true); // 1 -> 4
        run::<4, 12, 8, 28>(&mut rng, (7, 8), (0.6, 0.6), true); // 3 -> 2
        run::<4, 8, 12, 28>(&mut rng, (7, 8), (0.9, 0.5), true); // 2 -> 3
        run::<1, 1, 1, 2>(&mut rng, (5, 10), (0.7, 0.7), true); // binary, 1 -> 1
        run::<1, 3, 5, 12>(&mut rng, (13, 8), (0.8, 0.8), true); // binary 3 -> 5
        run::<1, 64, 16, 143>(&mut rng, (200, 3), (0.9, 0.9), false); // binary 64 -> 16
        run::<5, 10, 10, 25>(&mut rng, (2, 20), (0.5, 0.9), true); // equal lanes
        run::<3, 9, 6, 21>(&mut rng, (1, 20), (0.8, 0.8), false); // E below both lane counts
    }

    /// No stalls: the frame interval and the first-beat latency, as documented.
    fn rate<const IB: usize, const IW: usize, const OW: usize, const BW: usize>(elements: usize) {
        let uut = LaneConverter::<IB, IW, OW, BW>::new(elements);
        let (il, ol) = (IW / IB, OW / IB);
        let frames = 12;
        let data: Vec<Vec<u128>> = (0..frames)
            .map(|f| {
                (0..elements)
                    .map(|i| ((f * 7 + i) as u128) & ((1 << IB) - 1))
                    .collect()
            })
            .collect();
        let ins = vec![pack_frames(&data, il, IB, &mut || 0)];
        let want = pack_frames(&data, ol, IB, &mut || 0);
        let cycles = frames * uut.cycles_per_frame() as usize * 2 + 30;
        let pat = Pattern::full_rate(1, 1, cycles, 0..0);
        let tr = run_sim(LaneConverter::<IB, IW, OW, BW>::new(elements), &ins, &pat);
        assert_eq!(tr.out_data(0), want);
        tr.assert_timing(
            &format!("{il} -> {ol}, E = {elements}"),
            uut.spec().timing(),
        );
        let ob = uut.out_beats() as usize;
        let ib = uut.in_beats() as usize;
        let latency = tr.latency();
        // steady state: between the first output beats of frames 2 and frames - 1
        let span = tr.outs[0][(frames - 1) * ob].1 - tr.outs[0][2 * ob].1;
        let per_frame = span as f64 / (frames - 3) as f64;
        let in_span = tr.ins[0][(frames - 1) * ib] - tr.ins[0][2 * ib];
        println!(
            "LaneConverter {il} -> {ol} lanes, E = {elements}: {per_frame:.2} cycles/frame \
             (documented {}), input {:.2}, latency {latency} (documented {})",
            uut.cycles_per_frame(),
            in_span as f64 / (frames - 3) as f64,
            uut.latency()
        );
        assert_eq!(
            latency,
            uut.latency(),
            "latency {il} -> {ol}, E = {elements}"
        );
        assert!(
            per_frame <= uut.cycles_per_frame() as f64 + 1.0,
            "{il} -> {ol}, E = {elements}: {per_frame} cycles per frame"
        );
    }

    #[test]
    fn full_rate_and_latency() {
        rate::<8, 32, 8, 64>(10);
        rate::<8, 8, 32, 64>(10);
        rate::<8, 32, 32, 88>(64);
        rate::<4, 12, 8, 28>(12);
        rate::<4, 12, 8, 28>(7);
        rate::<4, 8, 12, 28>(12);
        rate::<4, 8, 12, 28>(7);
        rate::<1, 64, 16, 143>(784);
    }

    #[test]
    #[should_panic(expected = "LaneConverter: BW must be")]
    fn rejects_a_wrong_buffer_width() {
        let _ = LaneConverter::<8, 32, 8, 56>::new(10);
    }

    #[test]
    fn synthesises_clean() {
        let mut uut = LaneConverter::<8, 32, 8, 64>::new(3072);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_lane_converter", &v).unwrap();
        let s = ice40_stats("lanes_4x8_1x8", &v, "top").unwrap();
        println!("LaneConverter 4x8 -> 1x8 bits (E = 3072) on synth_ice40: {s}");
        let mut uut = LaneConverter::<1, 3, 5, 12>::new(1000);
        uut.connect_all();
        let s = ice40_stats("lanes_3x1_5x1", &generate_verilog(&uut), "top").unwrap();
        println!("LaneConverter 3x1 -> 5x1 bits (E = 1000) on synth_ice40: {s}");
        let mut uut = LaneConverter::<8, 8, 32, 64>::new(3072);
        uut.connect_all();
        let s = ice40_stats("lanes_1x8_4x8", &generate_verilog(&uut), "top").unwrap();
        println!("LaneConverter 1x8 -> 4x8 bits (E = 3072) on synth_ice40: {s}");
    }
}
