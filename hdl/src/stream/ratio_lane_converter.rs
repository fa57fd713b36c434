//! `RatioLaneConverter<IB, IW, OW, JB, FB>`: re-packs IL-lane beats into OL-lane beats
//! when one lane count is a whole multiple m ≥ 2 of the other, frame by frame; the cheap
//! case of [`LaneConverter`]. Widening gathers m input beats into one output beat;
//! narrowing sends each input beat as m sub-beats. A frame starts on a new beat on both
//! sides; the unused lanes of its last output beat are zero. How it works: `hdl/DESIGN.md`,
//! "Lane converters".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`; reset required before use.
//!
//! Generics (checked by [`RatioLaneConverter::new`], computed by [`ratio_generics`]):
//! - `IB` ≥ 1: element bits (1 for binary);
//! - `IW` = IL·IB, `OW` = OL·IB: beat widths, IL | OL or OL | IL, IL ≠ OL;
//! - `JB` = ⌈log2 m⌉ (deduced): beat counter within the wide beat;
//! - `FB` = bits of ⌈E / max(IL, OL)⌉ − 1, at least 1 (deduced): wide-beat counter.
//!
//! Run-time: `elements` E ≥ 1 per frame.
//!
//! Cycles per frame: max(⌈E/IL⌉, ⌈E/OL⌉), no gap between frames. Latency (first input
//! beat into an idle converter to its first output beat): ⌈min(OL, E)/IL⌉ (1 when
//! narrowing).
//!
//! [`LaneConverter`]: crate::stream::lane_converter::LaneConverter

use crate::bits_to_hold;
use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{Formula, Memory};
use crate::engines::{Carries, EngineSpec, Span, StreamTiming};
use crate::stream::lane_converter::converter_span;
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Whether `il` → `ol` lanes is a whole ratio this block handles (IL | OL or OL | IL,
/// IL ≠ OL).
pub const fn is_ratio(il: usize, ol: usize) -> bool {
    il != ol && il >= 1 && ol >= 1 && (ol % il == 0 || il % ol == 0)
}

/// The const generics `[IB, IW, OW, JB, FB]` of a converter from `il` to `ol` lanes of
/// `ib` bits over frames of `elements` elements.
pub fn ratio_generics(ib: usize, il: usize, ol: usize, elements: usize) -> [usize; 5] {
    assert!(is_ratio(il, ol), "RatioLaneConverter: {il} -> {ol} lanes");
    let m = il.max(ol) / il.min(ol);
    let wide_beats = elements.div_ceil(il.max(ol));
    [
        ib,
        il * ib,
        ol * ib,
        bits_to_hold(m as u64 - 1),
        bits_to_hold(wide_beats as u64 - 1),
    ]
}

/// Lane converter for whole ratios (see the module documentation).
#[derive(LogicBlock)]
pub struct RatioLaneConverter<
    const IB: usize,
    const IW: usize,
    const OW: usize,
    const JB: usize,
    const FB: usize,
> {
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
    /// widening: the input beats gathered so far (top lanes newest)
    acc: DFF<Bits<OW>>,
    /// widening with r = 1: `acc` holds a completed beat for the output register
    pend: DFF<Bit>,
    /// narrowing: the sub-beats of the current input beat not yet sent (next lowest)
    sh: DFF<Bits<IW>>,
    /// narrowing: `sh` holds sub-beats to send
    busy: DFF<Bit>,
    /// narrow beats gathered into (widening) or sent from (narrowing) the wide beat
    j: DFF<Bits<JB>>,
    /// wide beat within the frame
    fc: DFF<Bits<FB>>,
    od: DFF<Bits<OW>>,
    ov: DFF<Bit>,
    free: Signal<Local, Bit>,
    last: Signal<Local, Bit>,
    lim: Signal<Local, Bits<JB>>,
    fin: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    beat: Signal<Local, Bits<IW>>,
    x: Signal<Local, Bits<OW>>,
    xs: Signal<Local, Bits<OW>>,
    widen: Constant<Bit>,
    single: Constant<Bit>,
    m_last: Constant<Bits<JB>>,
    r_last: Constant<Bits<JB>>,
    fc_last: Constant<Bits<FB>>,
    iw_c: Constant<Bits<16>>,
    ow_c: Constant<Bits<16>>,
    top_c: Constant<Bits<16>>,
    pad_c: Constant<Bits<16>>,
    tail_mask: Constant<Bits<IW>>,
    _il: usize,
    _ol: usize,
    _e: usize,
}

impl<const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize>
    RatioLaneConverter<IB, IW, OW, JB, FB>
{
    /// A converter for frames of `elements` elements.
    pub fn new(elements: usize) -> Self {
        assert!(IB >= 1, "RatioLaneConverter: IB = {IB} must be at least 1");
        assert!(
            IW >= IB && IW % IB == 0,
            "RatioLaneConverter: IW = {IW} is not a whole number of {IB}-bit lanes"
        );
        assert!(
            OW >= IB && OW % IB == 0,
            "RatioLaneConverter: OW = {OW} is not a whole number of {IB}-bit lanes"
        );
        let (il, ol) = (IW / IB, OW / IB);
        assert!(
            is_ratio(il, ol),
            "RatioLaneConverter: {il} -> {ol} lanes is not a whole ratio m >= 2 \
             (use LaneConverter)"
        );
        assert!(
            elements >= 1,
            "RatioLaneConverter: a frame needs at least 1 element"
        );
        assert!(
            IW.max(OW) < 1 << 15,
            "RatioLaneConverter: beat of {} bits too wide",
            IW.max(OW)
        );
        let g = ratio_generics(IB, il, ol, elements);
        assert_eq!(
            JB, g[3],
            "RatioLaneConverter: JB must be ceil(log2 m) = {} for {il} -> {ol} lanes",
            g[3]
        );
        assert_eq!(
            FB,
            g[4],
            "RatioLaneConverter: FB must be the bits of {} wide beats - 1 = {}",
            elements.div_ceil(il.max(ol)),
            g[4]
        );
        let Shape {
            widen,
            m,
            wide_beats,
            r,
        } = Shape::of(il, ol, elements);
        // lanes of the frame's last input beat that belong to the frame
        let tail = elements - (elements.div_ceil(il) - 1) * il;
        let c16 = |v: usize| Constant::new((v as u64).into());
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            acc: Default::default(),
            pend: Default::default(),
            sh: Default::default(),
            busy: Default::default(),
            j: Default::default(),
            fc: Default::default(),
            od: Default::default(),
            ov: Default::default(),
            free: Default::default(),
            last: Default::default(),
            lim: Default::default(),
            fin: Default::default(),
            take: Default::default(),
            beat: Default::default(),
            x: Default::default(),
            xs: Default::default(),
            widen: Constant::new(widen),
            single: Constant::new(widen && r == 1),
            m_last: Constant::new(((m - 1) as u64).into()),
            r_last: Constant::new(((r - 1) as u64).into()),
            fc_last: Constant::new(((wide_beats - 1) as u64).into()),
            iw_c: c16(IW),
            ow_c: c16(OW),
            top_c: c16(if widen { OW - IW } else { 0 }),
            pad_c: c16(if widen { (m - r) * IW } else { 0 }),
            tail_mask: Constant::new(Bits::<IW>::mask() >> (((il - tail) * IB) as u64)),
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

    /// This converter's [`RatioLanesSpec`].
    pub fn spec(&self) -> RatioLanesSpec {
        RatioLanesSpec {
            bits: IB,
            in_lanes: self._il,
            out_lanes: self._ol,
            elements: self._e,
        }
    }

    /// Cycles per frame at full rate: the busier side's beats.
    pub fn cycles_per_frame(&self) -> u64 {
        self.spec().cycles()
    }

    /// First input beat of a frame (converter idle) to its first output beat.
    pub fn latency(&self) -> u64 {
        self.spec().latency()
    }
}

impl<const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize> Logic
    for RatioLaneConverter<IB, IW, OW, JB, FB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, acc, pend, sh, busy, j, fc, od, ov);
        self.free.next = !self.ov.q.val() || self.out_ready.val();
        self.last.next = self.fc.q.val() == self.fc_last.val();
        self.lim.next = self.m_last.val();
        if self.last.val() {
            self.lim.next = self.r_last.val();
        }
        self.fin.next = self.j.q.val() == self.lim.val();
        // in_ready straight from registers and constants, in one unconditional statement
        // (no local signal in between: Verilator orders a process's outputs by all of its
        // inputs once locals are involved, and would see a loop through in_valid)
        self.in_ready.next = (self.widen.val() && self.single.val() && !self.pend.q.val())
            || (self.widen.val()
                && !self.single.val()
                && !(self.ov.q.val()
                    && (((self.fc.q.val() == self.fc_last.val())
                        && (self.j.q.val() == self.r_last.val()))
                        || ((self.fc.q.val() != self.fc_last.val())
                            && (self.j.q.val() == self.m_last.val())))))
            || (!self.widen.val() && !self.busy.q.val());
        self.take.next = self.in_valid.val()
            && ((self.widen.val() && self.single.val() && !self.pend.q.val())
                || (self.widen.val()
                    && !self.single.val()
                    && !(self.ov.q.val()
                        && (((self.fc.q.val() == self.fc_last.val())
                            && (self.j.q.val() == self.r_last.val()))
                            || ((self.fc.q.val() != self.fc_last.val())
                                && (self.j.q.val() == self.m_last.val())))))
                || (!self.widen.val() && !self.busy.q.val()));
        // the frame's last input beat: lanes beyond the frame are zeroed
        self.beat.next = self.in_data.val();
        if self.last.val() && (self.fin.val() || !self.widen.val()) {
            self.beat.next = self.in_data.val() & self.tail_mask.val();
        }
        self.x.next = (self.acc.q.val() >> self.iw_c.val())
            | (bit_cast::<OW, IW>(self.beat.val()) << self.top_c.val());
        self.out_valid.next = self.ov.q.val();
        self.out_data.next = self.od.q.val();
        if self.free.val() {
            self.ov.d.next = false;
        }
        if self.widen.val() {
            // r = 1: a completed beat that found the output register busy waits in acc
            if self.single.val() && self.pend.q.val() && self.free.val() {
                self.od.d.next = self.acc.q.val();
                self.ov.d.next = true;
                self.pend.d.next = false;
            }
            self.xs.next = self.x.val();
            if self.last.val() {
                self.xs.next = self.x.val() >> self.pad_c.val();
            }
            if self.take.val() {
                self.acc.d.next = self.x.val();
                self.j.d.next = self.j.q.val() + 1;
                if self.fin.val() {
                    self.j.d.next = 0.into();
                    self.fc.d.next = self.fc.q.val() + 1;
                    if self.last.val() {
                        self.fc.d.next = 0.into();
                    }
                    if self.single.val() && (self.pend.q.val() || !self.free.val()) {
                        self.acc.d.next = self.xs.val();
                        self.pend.d.next = true;
                    } else {
                        self.od.d.next = self.xs.val();
                        self.ov.d.next = true;
                    }
                }
            }
        } else {
            if self.busy.q.val() {
                if self.free.val() {
                    self.od.d.next = bit_cast::<OW, IW>(self.sh.q.val());
                    self.ov.d.next = true;
                    self.sh.d.next = self.sh.q.val() >> self.ow_c.val();
                    self.j.d.next = self.j.q.val() + 1;
                    if self.fin.val() {
                        self.busy.d.next = false;
                        self.j.d.next = 0.into();
                        self.fc.d.next = self.fc.q.val() + 1;
                        if self.last.val() {
                            self.fc.d.next = 0.into();
                        }
                    }
                }
            } else if self.take.val() {
                self.sh.d.next = self.beat.val();
                self.busy.d.next = true;
                if self.free.val() {
                    self.od.d.next = bit_cast::<OW, IW>(self.beat.val());
                    self.ov.d.next = true;
                    self.sh.d.next = self.beat.val() >> self.ow_c.val();
                    self.j.d.next = 1.into();
                    if self.fin.val() {
                        // the frame's last beat has a single sub-beat
                        self.busy.d.next = false;
                        self.j.d.next = 0.into();
                        self.fc.d.next = self.fc.q.val() + 1;
                        if self.last.val() {
                            self.fc.d.next = 0.into();
                        }
                    }
                }
            }
        }
        if self.reset.val() {
            self.busy.d.next = false;
            self.pend.d.next = false;
            self.j.d.next = 0.into();
            self.fc.d.next = 0.into();
            self.ov.d.next = false;
        }
    }
}

/// A [`RatioLaneConverter`] in a design: `bits`-bit elements from `in_lanes` to
/// `out_lanes` lanes (one a multiple of the other), frames of `elements`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioLanesSpec {
    pub bits: usize,
    pub in_lanes: usize,
    pub out_lanes: usize,
    pub elements: usize,
}

/// A frame's beats in a ratio converter: `widen` (OL > IL), the ratio `m`, the wide
/// beats per frame and `r`, the narrow beats in the frame's last wide beat.
struct Shape {
    widen: bool,
    m: usize,
    wide_beats: usize,
    r: usize,
}

impl Shape {
    fn of(il: usize, ol: usize, elements: usize) -> Shape {
        let m = il.max(ol) / il.min(ol);
        let (in_beats, out_beats) = (elements.div_ceil(il), elements.div_ceil(ol));
        let wide_beats = in_beats.min(out_beats);
        Shape {
            widen: ol > il,
            m,
            wide_beats,
            r: in_beats.max(out_beats) - (wide_beats - 1) * m,
        }
    }
}

/// The cycle model of a [`RatioLaneConverter`]: its counters (`j` within the wide beat,
/// `fc` wide beats of the frame) and flags (`pend`, `busy`, the output's valid).
#[derive(Clone, Debug)]
pub struct RatioLanesTiming {
    widen: bool,
    single: bool,
    m_last: usize,
    r_last: usize,
    fc_last: usize,
    pend: bool,
    busy: bool,
    j: usize,
    fc: usize,
    ov: bool,
}

impl RatioLanesTiming {
    fn fin(&self) -> bool {
        let lim = if self.fc == self.fc_last {
            self.r_last
        } else {
            self.m_last
        };
        self.j == lim
    }
    /// The frame's wide-beat counter after its wide beat ends.
    fn next_fc(&self) -> usize {
        if self.fc == self.fc_last {
            0
        } else {
            self.fc + 1
        }
    }
}

impl StreamTiming for RatioLanesTiming {
    fn in_ready(&self, _k: usize) -> bool {
        if !self.widen {
            !self.busy
        } else if self.single {
            !self.pend
        } else {
            !(self.ov && self.fin())
        }
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.ov
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let free = !self.ov || out_fire[0];
        let (take, fin, next_fc) = (in_fire[0], self.fin(), self.next_fc());
        let mut ov = self.ov && !free;
        if self.widen {
            let pend = self.pend;
            if self.single && pend && free {
                ov = true;
                self.pend = false;
            }
            if take {
                self.j += 1;
                if fin {
                    self.j = 0;
                    self.fc = next_fc;
                    if self.single && (pend || !free) {
                        self.pend = true;
                    } else {
                        ov = true;
                    }
                }
            }
        } else if self.busy {
            if free {
                ov = true;
                self.j += 1;
                if fin {
                    (self.busy, self.j, self.fc) = (false, 0, next_fc);
                }
            }
        } else if take {
            self.busy = true;
            if free {
                ov = true;
                self.j = 1;
                if fin {
                    (self.busy, self.j, self.fc) = (false, 0, next_fc);
                }
            }
        }
        self.ov = ov;
    }
}

/// Ratio lane converter LUT4: coefficients of [1, select bits, JB, FB if the frame's
/// last beat is special, masked bits].
const RATIO_LUT: [f64; 5] = [4.216, 0.963, 1.619, 1.719, 0.133];

impl EngineSpec for RatioLanesSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        let Shape {
            widen,
            m,
            wide_beats,
            r,
        } = Shape::of(self.in_lanes, self.out_lanes, self.elements);
        Box::new(RatioLanesTiming {
            widen,
            single: widen && r == 1,
            m_last: m - 1,
            r_last: r - 1,
            fc_last: wide_beats - 1,
            pend: false,
            busy: false,
            j: 0,
            fc: 0,
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
        ratio_generics(self.bits, self.in_lanes, self.out_lanes, self.elements).to_vec()
    }
    /// The busier side's beats: no gap between frames.
    fn cycles(&self) -> u64 {
        let (e, il, ol) = (self.elements, self.in_lanes, self.out_lanes);
        e.div_ceil(il).max(e.div_ceil(ol)) as u64
    }
    /// The output beat leaves with its last input beat.
    fn latency(&self) -> u64 {
        self.out_lanes.min(self.elements).div_ceil(self.in_lanes) as u64
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
    /// Only the frame's last wide beat can differ from the others (r < m narrow beats,
    /// or a partial last input beat); when it does not, yosys drops the frame counter.
    /// DFFs are counted structurally: widening gathers OW − IW bits beside the OW-bit
    /// output register (plus IW bits and a flag when r = 1), narrowing holds IW bits
    /// beside it; then the valid flags, the beat counter (JB bits) and, when the last
    /// beat is special, the frame counter (FB bits). LUT4s: the select bits (narrowing 2
    /// per input bit; widening the output bits that differ on a short last beat), the
    /// counters, the masked lanes.
    fn logic(&self, _: &[Memory], _io: f64) -> Formula {
        let (ib, il, ol, elements) = (self.bits, self.in_lanes, self.out_lanes, self.elements);
        let [_, iw, ow, jb, fb] = ratio_generics(ib, il, ol, elements);
        let m = il.max(ol) / il.min(ol);
        let (in_beats, out_beats) = (elements.div_ceil(il), elements.div_ceil(ol));
        let wide_beats = in_beats.min(out_beats);
        let r = in_beats.max(out_beats) - (wide_beats - 1) * m;
        let masked = (il - (elements - (in_beats - 1) * il)) * ib;
        let special = r != m || masked > 0;
        let fc = if special { fb } else { 0 };
        let (sel, regs) = if ol > il {
            let single = r == 1 && m > 1;
            let short = if r != m { ow - (m - r) * iw } else { 0 };
            let sel = short + if single { ow } else { 0 };
            let regs = 2 * ow - iw + 1 + if single { iw + 1 } else { 0 };
            (sel, regs)
        } else {
            (2 * iw, iw + ow + 2)
        };
        (
            RATIO_LUT[0]
                + RATIO_LUT[1] * sel as f64
                + RATIO_LUT[2] * jb as f64
                + RATIO_LUT[3] * fc as f64
                + RATIO_LUT[4] * masked as f64,
            (regs + jb + fc) as f64,
        )
    }
    fn carries(&self) -> Carries {
        Carries::Input
    }
}

/// Emitter of engine `i` of `d` (a [`RatioLanesSpec`]).
pub fn emit<const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, s) = engine::<RatioLanesSpec>(d, i, &[IB, IW, OW, JB, FB]);
    let b = RatioLaneConverter::<IB, IW, OW, JB, FB>::new(s.elements);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::lane_converter::tests::check_repacking;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;
    use rand::Rng;

    single_stream_dut!(RatioLaneConverter<IB, IW, OW, JB, FB>, IW, OW, [const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize]);

    /// Random frames through the block under random stalls, against the reference, in
    /// rust-hdl and (when `verilog`) in Icarus, cycle for cycle.
    fn run<const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize>(
        rng: &mut impl Rng,
        (elements, frames): (usize, usize),
        stalls: (f64, f64),
        verilog: bool,
    ) {
        let make = || RatioLaneConverter::<IB, IW, OW, JB, FB>::new(elements);
        let icarus = verilog.then_some("ratio_lanes");
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
    fn generics_are_checked_and_computed() {
        assert_eq!(ratio_generics(1, 1, 16, 784), [1, 1, 16, 4, 6]);
        assert_eq!(ratio_generics(1, 4, 8, 64), [1, 4, 8, 1, 3]);
        assert_eq!(ratio_generics(8, 4, 1, 10), [8, 32, 8, 2, 2]);
        assert_eq!(ratio_generics(2, 2, 8, 1), [2, 4, 16, 2, 1]);
        assert!(is_ratio(3, 6) && is_ratio(6, 2) && !is_ratio(3, 2) && !is_ratio(4, 4));
    }

    #[test]
    fn repacks_frames_under_random_stalls_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("ratio_lane_converter");
        // <IB, IW, OW, JB, FB> as ratio_generics(IB, IL, OL, E)
        // widening
        run::<1, 1, 16, 4, 6>(&mut rng, (784, 3), (0.8, 0.6), true); // TFC input, 1 -> 16
        run::<1, 4, 8, 1, 3>(&mut rng, (64, 8), (0.7, 0.7), true); // TFC, 4 -> 8
        run::<1, 4, 8, 1, 3>(&mut rng, (59, 8), (0.9, 0.4), true); // partial last beats
        run::<1, 1, 8, 3, 3>(&mut rng, (61, 6), (0.6, 0.9), true); // 1 -> 8, last gathers 5
        run::<4, 8, 24, 2, 1>(&mut rng, (7, 12), (0.8, 0.8), true); // 2 -> 6, r = 1
        run::<2, 4, 16, 2, 1>(&mut rng, (1, 20), (0.7, 0.7), true); // E = 1
        run::<8, 8, 16, 1, 3>(&mut rng, (12, 8), (1.0, 0.5), true); // 1 -> 2, slow consumer

        // narrowing
        run::<8, 32, 8, 2, 2>(&mut rng, (10, 8), (0.7, 0.8), true); // 4 -> 1
        run::<1, 16, 1, 4, 6>(&mut rng, (784, 2), (0.8, 0.8), true); // 16 -> 1
        run::<3, 18, 6, 2, 2>(&mut rng, (13, 10), (0.5, 0.9), true); // 6 -> 2, r = 1
        run::<2, 8, 4, 1, 1>(&mut rng, (1, 20), (0.8, 0.8), true); // E = 1
        run::<1, 8, 4, 1, 2>(&mut rng, (30, 8), (0.4, 1.0), true); // 8 -> 4, slow producer
        run::<4, 64, 16, 2, 3>(&mut rng, (100, 6), (0.9, 0.9), false); // 16 -> 4, E % 16 = 4
    }

    /// No stalls: the frame interval and the first-beat latency, exactly as documented.
    fn rate<const IB: usize, const IW: usize, const OW: usize, const JB: usize, const FB: usize>(
        elements: usize,
    ) {
        let uut = RatioLaneConverter::<IB, IW, OW, JB, FB>::new(elements);
        let (il, ol) = (IW / IB, OW / IB);
        let frames = 10;
        let data: Vec<Vec<u128>> = (0..frames)
            .map(|f| {
                (0..elements)
                    .map(|i| ((f * 5 + i * 3) as u128) & ((1 << IB) - 1))
                    .collect()
            })
            .collect();
        let ins = vec![pack_frames(&data, il, IB, &mut || 0)];
        let want = pack_frames(&data, ol, IB, &mut || 0);
        let cycles = frames * uut.cycles_per_frame() as usize + 40;
        let pat = Pattern::full_rate(1, 1, cycles, 0..0);
        let tr = run_sim(
            RatioLaneConverter::<IB, IW, OW, JB, FB>::new(elements),
            &ins,
            &pat,
        );
        assert_eq!(tr.out_data(0), want);
        tr.assert_timing(
            &format!("{il} -> {ol}, E = {elements}"),
            uut.spec().timing(),
        );
        let (ob, ib) = (uut.out_beats() as usize, uut.in_beats() as usize);
        let latency = tr.latency();
        // every frame after the first: the cycles between its first beats and the
        // previous frame's, on both sides
        for f in 1..frames {
            let out = tr.outs[0][f * ob].1 - tr.outs[0][(f - 1) * ob].1;
            let inp = tr.ins[0][f * ib] - tr.ins[0][(f - 1) * ib];
            assert_eq!(
                (out as u64, inp as u64),
                (uut.cycles_per_frame(), uut.cycles_per_frame()),
                "{il} -> {ol} lanes, E = {elements}: frame {f} (output, input cycles)"
            );
        }
        println!(
            "RatioLaneConverter {il} -> {ol} lanes, E = {elements}: {} cycles/frame, \
             latency {latency} (documented {})",
            uut.cycles_per_frame(),
            uut.latency()
        );
        assert_eq!(
            latency,
            uut.latency(),
            "latency {il} -> {ol}, E = {elements}"
        );
    }

    #[test]
    fn full_rate_and_latency() {
        rate::<1, 1, 16, 4, 6>(784);
        rate::<1, 4, 8, 1, 3>(64);
        rate::<1, 1, 8, 3, 3>(64);
        rate::<1, 4, 8, 1, 3>(59);
        rate::<4, 8, 24, 2, 1>(7);
        rate::<2, 4, 16, 2, 1>(1);
        rate::<8, 32, 8, 2, 2>(10);
        rate::<3, 18, 6, 2, 2>(13);
        rate::<2, 8, 4, 1, 1>(1);
        rate::<1, 16, 1, 4, 6>(784);
    }

    #[test]
    #[should_panic(expected = "RatioLaneConverter: JB must be")]
    fn rejects_a_wrong_counter_width() {
        let _ = RatioLaneConverter::<1, 1, 16, 3, 6>::new(784);
    }

    #[test]
    #[should_panic(expected = "is not a whole ratio")]
    fn rejects_a_non_ratio() {
        let _ = RatioLaneConverter::<1, 3, 2, 1, 1>::new(6);
    }

    fn stats<
        const IB: usize,
        const IW: usize,
        const OW: usize,
        const JB: usize,
        const FB: usize,
    >(
        elements: usize,
    ) {
        let mut uut = RatioLaneConverter::<IB, IW, OW, JB, FB>::new(elements);
        uut.connect_all();
        let v = generate_verilog(&uut);
        let (il, ol) = (IW / IB, OW / IB);
        let name = format!("ratio_lanes_{il}x{IB}_{ol}x{IB}_{elements}");
        yosys_validate(&name, &v).unwrap();
        let s = ice40_stats(&name, &v, "top").unwrap();
        println!(
            "RatioLaneConverter {il}x{IB} -> {ol}x{IB} bits (E = {elements}) on synth_ice40: {s}"
        );
    }

    #[test]
    fn synthesises_small() {
        stats::<1, 1, 16, 4, 6>(784);
        stats::<1, 4, 8, 1, 3>(64);
        stats::<1, 1, 8, 3, 3>(64);
        stats::<8, 32, 8, 2, 10>(3072);
        stats::<2, 4, 20, 3, 1>(20);
        stats::<1, 16, 1, 4, 6>(784);
        stats::<8, 8, 16, 1, 7>(200);
        stats::<4, 16, 64, 2, 6>(1000);
        stats::<4, 32, 16, 1, 2>(30);
        stats::<1, 64, 16, 2, 4>(784);
        stats::<2, 2, 16, 3, 4>(100);
    }
}
