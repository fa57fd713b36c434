//! `ChwReorder<B, A>`: the output reorder engine, one `B`-bit element per beat in H, W, C
//! order in, the same elements in C, H, W order out (the top's flattened output order,
//! spec `network-format.md`), frames back to back. Two frames of N = C·H·W words in one
//! [`FrameRam`] (block RAM): the writer fills one bank while the reader empties the other.
//! When C = 1 or H = W = 1 the permutation is the identity and the design leaves it out.
//! Structure: `hdl/DESIGN.md`, "Output reorder".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data`, `out_data: Bits<B>`.
//!
//! Generics (checked by [`ChwReorder::new`], computed by [`generics`]): `B` ≥ 1 element
//! bits; `A` = clog2(2·C·H·W) in 1..=32 (deduced), the width of every counter.
//! Run-time: C, H, W ≥ 1.
//!
//! Cycles per frame: exactly N. Latency: N + 2 (the whole frame, then the RAM read and
//! the output register). Capacity with the output stalled: 2·N beats (+ 2 when N ≤ 2).
//! Memory: 2·N words of B bits.

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, mem_sum, Formula, MemKind, Memory};
use crate::compile::timing::StreamTiming;
use crate::engines::{Carries, EngineSpec, Pace};
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// RAM address bits for a `[c, h, w]` map: clog2(2·c·h·w) (two frames).
pub fn addr_bits(c: usize, h: usize, w: usize) -> usize {
    let n = elements(c, h, w);
    crate::address_bits(2 * n)
}

/// The const generics `[B, A]` of the [`ChwReorder`] for a `[c, h, w]` map of `bits`-bit
/// elements (what the network assembler dispatches on).
pub fn generics(c: usize, h: usize, w: usize, bits: usize) -> [usize; 2] {
    assert!(
        bits >= 1,
        "ChwReorder: element bits {bits} must be at least 1"
    );
    [bits, addr_bits(c, h, w)]
}

/// C·H·W, checked (every dimension ≥ 1, no overflow, two frames addressable in 32 bits).
fn elements(c: usize, h: usize, w: usize) -> usize {
    assert!(
        c >= 1 && h >= 1 && w >= 1,
        "ChwReorder: map [{c}, {h}, {w}] has an empty dimension"
    );
    c.checked_mul(h)
        .and_then(|x| x.checked_mul(w))
        .filter(|&n| n <= 1 << 31)
        .unwrap_or_else(|| panic!("ChwReorder: map [{c}, {h}, {w}] is larger than 2^31 elements"))
}

/// The two frame banks: `depth` = 2·N words of `B` bits, one write port and one
/// registered read port on one clock (`SB_RAM40_4K` on iCE40). A read and a write of
/// the same address at the same edge read the old word in the simulation; the
/// Verilog marks the memory `no_rw_check`, which lets yosys drop the collision bypass
/// it would otherwise add around the block RAM (registered write address, data and
/// enable, an address comparator and a mux; its cost: `hdl/DESIGN.md`, "Output reorder"):
/// [`ChwReorder`] never uses a read that collides with a write, because the banks it
/// reads and writes differ whenever a read is issued (unused reads may collide).
#[derive(LogicBlock)]
pub struct FrameRam<const B: usize, const A: usize> {
    pub clock: Signal<In, Clock>,
    pub read_address: Signal<In, Bits<A>>,
    /// The word at `read_address` at the last rising edge.
    pub read_data: Signal<Out, Bits<B>>,
    pub write_address: Signal<In, Bits<A>>,
    pub write_data: Signal<In, Bits<B>>,
    pub write_enable: Signal<In, Bit>,
    _mem: Vec<Bits<B>>,
}

impl<const B: usize, const A: usize> FrameRam<B, A> {
    /// A RAM of `depth` words, 1..=2^A.
    pub fn new(depth: usize) -> Self {
        assert!(
            depth >= 1 && (A >= usize::BITS as usize || depth <= 1 << A),
            "FrameRam: depth {depth} not in 1..=2^{A}"
        );
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            write_enable: Default::default(),
            _mem: vec![Bits::default(); depth],
        }
    }
}

impl<const B: usize, const A: usize> Logic for FrameRam<B, A> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            // read before write: a colliding read sees the old word
            let r = self.read_address.val().to_u64() as usize;
            self.read_data.next = self._mem.get(r).copied().unwrap_or_default();
            if self.write_enable.val() {
                let w = self.write_address.val().to_u64() as usize;
                if let Some(m) = self._mem.get_mut(w) {
                    *m = self.write_data.val();
                }
            }
        }
    }
    fn connect(&mut self) {
        self.read_data.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
(* no_rw_check *)
reg [{msb}:0] mem[0:{last}];

always @(posedge clock) begin
   read_data <= mem[read_address];
   if (write_enable) begin
      mem[write_address] <= write_data;
   end
end
",
            msb = B - 1,
            last = self._mem.len() - 1
        ))
    }
}

/// HWC → CHW reorder through a double-buffered RAM (see the module documentation).
#[derive(LogicBlock)]
pub struct ChwReorder<const B: usize, const A: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: both banks and the output empty.
    pub reset: Signal<In, Bit>,
    /// Input element (HWC order).
    pub in_data: Signal<In, Bits<B>>,
    /// An input element is offered.
    pub in_valid: Signal<In, Bit>,
    /// The engine takes the element if `in_valid` (state only: a bank is free).
    pub in_ready: Signal<Out, Bit>,
    /// Output element (CHW order, registered).
    pub out_data: Signal<Out, Bits<B>>,
    /// An output element is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the output element this cycle.
    pub out_ready: Signal<In, Bit>,
    ram: FrameRam<B, A>,
    /// Write address, 0..2N−1 (bank 0 then bank 1).
    wptr: DFF<Bits<A>>,
    /// Frames completely written and not completely read (0, 1, 2).
    frames: DFF<Bits<2>>,
    /// Read address of the next read.
    raddr: DFF<Bits<A>>,
    /// Bank base + channel of the plane being read.
    rstart: DFF<Bits<A>>,
    /// Pixel (h·W + w) of the next read within its plane.
    rpix: DFF<Bits<A>>,
    /// A read was issued at the last edge: its beat is in `ram.read_data`.
    rv: DFF<Bit>,
    main: DFF<Bits<B>>,
    mv: DFF<Bit>,
    skid: DFF<Bits<B>>,
    sv: DFF<Bit>,
    room: Signal<Local, Bit>,
    write: Signal<Local, Bit>,
    wdone: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    plane_end: Signal<Local, Bit>,
    bank0_end: Signal<Local, Bit>,
    rdone: Signal<Local, Bit>,
    /// C: read address step along a plane.
    step: Constant<Bits<A>>,
    /// N: base of bank 1.
    bank1: Constant<Bits<A>>,
    /// N − 1 and 2N − 1: last write address of bank 0 and of bank 1.
    wlast0: Constant<Bits<A>>,
    wlast1: Constant<Bits<A>>,
    /// H·W − 1: last pixel of a plane.
    pix_last: Constant<Bits<A>>,
    /// C − 1 and N + C − 1: `rstart` of the last plane of bank 0 and of bank 1.
    rlast0: Constant<Bits<A>>,
    rlast1: Constant<Bits<A>>,
    _chw: (usize, usize, usize),
}

impl<const B: usize, const A: usize> ChwReorder<B, A> {
    /// A reorder engine for one `[c, h, w]` map per frame.
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        assert!(B >= 1, "ChwReorder: B = {B} must be at least 1");
        let n = elements(c, h, w);
        let want = addr_bits(c, h, w);
        assert!(
            A == want && A <= 32,
            "ChwReorder: A = {A} but a [{c}, {h}, {w}] map needs A = clog2(2·{n}) = {want}"
        );
        let k = |x: usize| Constant::new((x as u64).into());
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            ram: FrameRam::new(2 * n),
            wptr: Default::default(),
            frames: Default::default(),
            raddr: Default::default(),
            rstart: Default::default(),
            rpix: Default::default(),
            rv: Default::default(),
            main: Default::default(),
            mv: Default::default(),
            skid: Default::default(),
            sv: Default::default(),
            room: Default::default(),
            write: Default::default(),
            wdone: Default::default(),
            issue: Default::default(),
            plane_end: Default::default(),
            bank0_end: Default::default(),
            rdone: Default::default(),
            step: k(c),
            bank1: k(n),
            wlast0: k(n - 1),
            wlast1: k(2 * n - 1),
            pix_last: k(h * w - 1),
            rlast0: k(c - 1),
            rlast1: k(n + c - 1),
            _chw: (c, h, w),
        }
    }

    /// Elements per frame, N = C·H·W.
    pub fn elements(&self) -> usize {
        let (c, h, w) = self._chw;
        c * h * w
    }

    /// This engine's [`ReorderSpec`].
    pub fn spec(&self) -> ReorderSpec {
        let (c, h, w) = self._chw;
        ReorderSpec { c, h, w, bits: B }
    }

    /// Cycles per frame at full rate ([`ReorderSpec::cycles`]).
    pub fn cycles_per_frame(&self) -> u64 {
        self.spec().cycles()
    }

    /// First input beat taken to first output beat offered, no stalls.
    pub fn latency(&self) -> u64 {
        self.spec().latency()
    }

    /// Input beats taken while the output is stalled: 2·N, plus 2 when N ≤ 2.
    pub fn capacity(&self) -> usize {
        let n = self.elements();
        2 * n + if n <= 2 { 2 } else { 0 }
    }
}

impl<const B: usize, const A: usize> Logic for ChwReorder<B, A> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, wptr, frames, raddr, rstart, rpix, rv, main, mv, skid, sv);
        self.ram.clock.next = self.clock.val();
        // writer: a bank is free unless both hold unread frames
        self.room.next = self.frames.q.val() != 2;
        self.in_ready.next = self.room.val();
        self.write.next = self.in_valid.val() && self.room.val();
        self.wdone.next = self.write.val()
            && ((self.wptr.q.val() == self.wlast0.val())
                || (self.wptr.q.val() == self.wlast1.val()));
        self.ram.write_address.next = self.wptr.q.val();
        self.ram.write_data.next = self.in_data.val();
        self.ram.write_enable.next = self.write.val();
        if self.write.val() {
            self.wptr.d.next = self.wptr.q.val() + 1;
            if self.wptr.q.val() == self.wlast1.val() {
                self.wptr.d.next = 0.into();
            }
        }
        // reader: a complete frame is there, and the beat will find a place next cycle
        // (main free or being taken, or main alone holding a beat)
        self.issue.next = (self.frames.q.val() != 0)
            && (!self.mv.q.val() || self.out_ready.val() || (!self.sv.q.val() && !self.rv.q.val()));
        self.plane_end.next = self.rpix.q.val() == self.pix_last.val();
        self.bank0_end.next = self.rstart.q.val() == self.rlast0.val();
        self.rdone.next = self.issue.val()
            && self.plane_end.val()
            && (self.bank0_end.val() || (self.rstart.q.val() == self.rlast1.val()));
        self.ram.read_address.next = self.raddr.q.val();
        self.rv.d.next = self.issue.val();
        if self.issue.val() {
            if self.plane_end.val() {
                // next channel's plane, or the other bank's first plane
                self.rpix.d.next = 0.into();
                self.rstart.d.next = self.rstart.q.val() + 1;
                self.raddr.d.next = self.rstart.q.val() + 1;
                if self.rdone.val() {
                    if self.bank0_end.val() {
                        self.rstart.d.next = self.bank1.val();
                        self.raddr.d.next = self.bank1.val();
                    } else {
                        self.rstart.d.next = 0.into();
                        self.raddr.d.next = 0.into();
                    }
                }
            } else {
                self.rpix.d.next = self.rpix.q.val() + 1;
                self.raddr.d.next = self.raddr.q.val() + self.step.val();
            }
        }
        // a bank changes hands: written completely, or read completely (its last read
        // was issued at this edge, so the writer may overwrite it from the next edge)
        if self.wdone.val() && !self.rdone.val() {
            self.frames.d.next = self.frames.q.val() + 1;
        }
        if self.rdone.val() && !self.wdone.val() {
            self.frames.d.next = self.frames.q.val() - 1;
        }
        // output registers: main, and skid while main is stalled (never both plus a read)
        self.out_valid.next = self.mv.q.val();
        self.out_data.next = self.main.q.val();
        if !self.mv.q.val() || self.out_ready.val() {
            if self.sv.q.val() {
                self.main.d.next = self.skid.q.val();
                self.mv.d.next = true;
                self.sv.d.next = false;
            } else {
                self.mv.d.next = self.rv.q.val();
                if self.rv.q.val() {
                    self.main.d.next = self.ram.read_data.val();
                }
            }
        } else if self.rv.q.val() {
            self.skid.d.next = self.ram.read_data.val();
            self.sv.d.next = true;
        }
        if self.reset.val() {
            self.wptr.d.next = 0.into();
            self.frames.d.next = 0.into();
            self.raddr.d.next = 0.into();
            self.rstart.d.next = 0.into();
            self.rpix.d.next = 0.into();
            self.rv.d.next = false;
            self.mv.d.next = false;
            self.sv.d.next = false;
        }
    }
}

/// A [`ChwReorder`] in a design: a `[c, h, w]` map of `bits`-bit elements.
#[derive(Clone, Debug, PartialEq)]
pub struct ReorderSpec {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub bits: usize,
}

/// ChwReorder LUT4: coefficients of [1, A, B, RAM].
const REORDER_LUT: [f64; 4] = [44.763, 2.439, 2.355, 0.000];
/// ChwReorder DFF: coefficients of [1, A, B, RAM].
const REORDER_DFF: [f64; 4] = [12.834, 2.787, 1.928, 0.000];

impl ReorderSpec {
    fn elements(&self) -> usize {
        self.c * self.h * self.w
    }
}

impl EngineSpec for ReorderSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(ReorderTiming::new(self))
    }
    fn name(&self) -> &'static str {
        "reorder"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    fn generics(&self) -> Vec<usize> {
        generics(self.c, self.h, self.w, self.bits).to_vec()
    }
    /// Exactly C·H·W.
    fn cycles(&self) -> u64 {
        self.elements() as u64
    }
    /// C·H·W + 2: the whole frame is written before it is read.
    fn latency(&self) -> u64 {
        self.elements() as u64 + 2
    }
    fn pace(&self) -> Pace {
        Pace {
            tail: Some(3),
            spacing: 1,
        }
    }
    fn memory_bits(&self) -> u64 {
        2 * (self.elements() * self.bits) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        vec![Memory::new(
            self.bits,
            2 * self.elements(),
            MemKind::RamNoRwCheck,
        )]
    }
    fn logic(&self, ms: &[Memory], _io: f64) -> Formula {
        let r = mem_sum(ms, |_| true);
        let g = self.generics();
        let f = |ram: f64| [1.0, g[1] as f64, g[0] as f64, ram];
        (dot(&REORDER_LUT, &f(r.0)), dot(&REORDER_DFF, &f(r.1)))
    }
    fn carries(&self) -> Carries {
        Carries::Chw
    }
}

/// The cycle model of a [`ChwReorder`]: the write position within its bank, the frames
/// held (`frames`), the read position (pixel, plane) within its bank, the read in flight
/// (`rv`) and the output registers' valid bits (`mv`, `sv`); the block's `issue` reads
/// `out_ready` only where `out_valid` is high, so the edge sees it as the output's fire.
#[derive(Clone, Debug)]
pub struct ReorderTiming {
    /// N − 1, H·W − 1, C − 1: the last write of a bank, pixel of a plane, plane.
    nl: usize,
    pixl: usize,
    cl: usize,
    /// `wptr` mod N.
    w: usize,
    frames: u8,
    rpix: usize,
    /// `rstart` less its bank's base.
    plane: usize,
    rv: bool,
    mv: bool,
    sv: bool,
}

impl ReorderTiming {
    /// The state right after reset of the reorder `s`.
    pub fn new(s: &ReorderSpec) -> Self {
        ReorderTiming {
            nl: s.elements() - 1,
            pixl: s.h * s.w - 1,
            cl: s.c - 1,
            w: 0,
            frames: 0,
            rpix: 0,
            plane: 0,
            rv: false,
            mv: false,
            sv: false,
        }
    }
}

impl StreamTiming for ReorderTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.frames != 2
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.mv
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let write = in_fire[0];
        // `!mv || out_ready`: main is free or being taken
        let free = !self.mv || out_fire[0];
        let issue = self.frames != 0 && (free || (!self.sv && !self.rv));
        let wdone = write && self.w == self.nl;
        let plane_end = self.rpix == self.pixl;
        let rdone = issue && plane_end && self.plane == self.cl;
        if write {
            self.w = if wdone { 0 } else { self.w + 1 };
        }
        if issue {
            if plane_end {
                self.rpix = 0;
                self.plane = if rdone { 0 } else { self.plane + 1 };
            } else {
                self.rpix += 1;
            }
        }
        if wdone && !rdone {
            self.frames += 1;
        }
        if rdone && !wdone {
            self.frames -= 1;
        }
        if free {
            if self.sv {
                (self.mv, self.sv) = (true, false);
            } else {
                self.mv = self.rv;
            }
        } else if self.rv {
            self.sv = true;
        }
        self.rv = issue;
    }
}

/// Emitter of engine `i` of `d` (a [`ReorderSpec`]).
pub fn emit<const B: usize, const A: usize>(_: &Network, d: &Design, i: usize) -> String {
    let (e, s) = engine::<ReorderSpec>(d, i, &[B, A]);
    let b = ChwReorder::<B, A>::new(s.c, s.h, s.w);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;
    use bnnforge_model::model::Act;
    use bnnforge_model::Shape;

    single_stream_dut!(ChwReorder<B, A>, B, B, [const B: usize, const A: usize]);

    /// The expected output of frames of HWC elements: each frame in CHW order, by the
    /// obvious permutation, cross-checked with the model's own reorder (`Act::to_chw`).
    fn chw_of(hwc: &[u128], c: usize, h: usize, w: usize) -> Vec<u128> {
        let n = c * h * w;
        let mut out = vec![];
        for frame in hwc.chunks(n) {
            let mut y = vec![0u128; n];
            for p in 0..h * w {
                for ch in 0..c {
                    y[ch * h * w + p] = frame[p * c + ch];
                }
            }
            // the model holds i64 elements: compare bit patterns of up to 64 bits
            if frame.iter().all(|&x| x <= u64::MAX as u128) {
                let model = Act::Int(frame.iter().map(|&x| x as u64 as i64).collect())
                    .to_chw(Shape::map(c, h, w));
                let model: Vec<u128> = model.iter().map(|&x| x as u64 as u128).collect();
                assert_eq!(y, model, "permutation vs bnnforge_model::Act::to_chw");
            }
            out.extend(y);
        }
        out
    }

    /// Random frames through the engine under random stalls, in rust-hdl and (if
    /// `icarus`) in the generated Verilog under the same pattern.
    fn check<const B: usize, const A: usize>(
        rng: &mut impl rand::Rng,
        (c, h, w): (usize, usize, usize),
        frames: usize,
        p_in: f64,
        p_out: f64,
        icarus: bool,
    ) {
        assert_eq!(generics(c, h, w, B), [B, A], "test generics");
        let n = c * h * w;
        let data = vec![random_beats(rng, frames * n, B)];
        let want = chw_of(&data[0], c, h, w);
        let cycles = ((frames * n) as f64 / p_in.min(p_out)) as usize * 2 + 3 * n + 40;
        let pat = Pattern::random(rng, 1, 1, cycles, p_in, p_out);
        let name = format!("chw_{B}_{c}_{h}_{w}");
        let make = || ChwReorder::<B, A>::new(c, h, w);
        let tr = sim_and_icarus(make, &data, &pat, icarus.then_some(name.as_str()));
        let label = format!("ChwReorder<{B}, {A}> [{c}, {h}, {w}] p_in {p_in} p_out {p_out}");
        assert_eq!(tr.out_data(0), want, "{label}");
        tr.assert_timing(&label, make().spec().timing());
    }

    #[test]
    fn reorders_frames_under_random_stalls_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("chw_reorder");
        let r = &mut rng;
        check::<4, 7>(r, (4, 3, 5), 3, 0.7, 0.7, true);
        check::<1, 6>(r, (2, 4, 3), 4, 0.8, 0.5, true); // binary: 1-bit ports
        check::<8, 4>(r, (1, 3, 2), 4, 0.6, 0.9, true); // C = 1 (identity)
        check::<8, 5>(r, (10, 1, 1), 4, 0.9, 0.6, true); // H = W = 1 (a vector)
        check::<3, 1>(r, (1, 1, 1), 6, 0.5, 0.5, true); // one element per frame
        check::<5, 2>(r, (2, 1, 1), 6, 0.7, 0.4, false); // N = 2
        check::<6, 2>(r, (1, 2, 1), 5, 0.4, 0.8, false);
        check::<24, 6>(r, (3, 2, 4), 3, 0.95, 0.3, false);
        check::<16, 8>(r, (7, 5, 3), 3, 0.3, 0.95, false);
        check::<2, 9>(r, (16, 4, 4), 3, 0.9, 0.9, true);
        check::<64, 7>(r, (5, 3, 3), 3, 0.8, 0.6, false);
    }

    /// No stalls: one element per cycle on both sides, frames exactly N cycles apart,
    /// latency N + 2, as documented.
    fn rate<const B: usize, const A: usize>(
        rng: &mut impl rand::Rng,
        (c, h, w): (usize, usize, usize),
    ) {
        let uut = ChwReorder::<B, A>::new(c, h, w);
        let (n, cpf, lat) = (uut.elements(), uut.cycles_per_frame(), uut.latency());
        let frames = 4;
        let data = vec![random_beats(rng, frames * n, B)];
        let pat = Pattern::full_rate(1, 1, frames * n + n + 20, 0..0);
        let model = uut.spec().timing();
        let tr = run_sim(uut, &data, &pat);
        let label = format!("ChwReorder<{B}, {A}> [{c}, {h}, {w}]");
        assert_eq!(tr.out_data(0), chw_of(&data[0], c, h, w), "{label}");
        tr.assert_timing(&label, model);
        let outs: Vec<usize> = tr.outs[0].iter().map(|o| o.1).collect();
        let got_lat = tr.latency();
        let intervals: Vec<u64> = (1..frames)
            .map(|f| (outs[f * n] - outs[(f - 1) * n]) as u64)
            .collect();
        println!("{label}: latency {got_lat} (formula {lat}), frame intervals {intervals:?} (formula {cpf})");
        assert_eq!(got_lat, lat, "latency {label}");
        assert!(
            intervals.iter().all(|&i| i == cpf),
            "cycles per frame {label}: {intervals:?}"
        );
        // not a single stall on either side
        assert_eq!(tr.in_span(0), frames * n, "input stalled: {label}");
        assert_eq!(tr.out_span(0), frames * n, "output stalled: {label}");
    }

    #[test]
    fn full_rate_cycles_per_frame_and_latency_match_the_formulas() {
        let mut rng = bnnforge_model::random::test_rng("chw_reorder_rate");
        let r = &mut rng;
        rate::<4, 11>(r, (16, 8, 8));
        rate::<4, 5>(r, (10, 1, 1));
        rate::<1, 6>(r, (2, 3, 5));
        rate::<8, 4>(r, (1, 2, 3));
        rate::<8, 1>(r, (1, 1, 1));
        rate::<8, 2>(r, (2, 1, 1));
    }

    /// With the output stalled the engine fills both banks (and the output registers
    /// when a frame fits in them), then delivers everything in order.
    fn hold<const B: usize, const A: usize>(
        rng: &mut impl rand::Rng,
        (c, h, w): (usize, usize, usize),
    ) {
        let uut = ChwReorder::<B, A>::new(c, h, w);
        let (n, cap) = (uut.elements(), uut.capacity());
        let frames = 4;
        let stall = 3 * n + 30;
        let data = vec![random_beats(rng, frames * n, B)];
        let pat = Pattern::full_rate(1, 1, stall + frames * n + n + 30, 0..stall);
        let model = uut.spec().timing();
        let tr = run_sim(uut, &data, &pat);
        let label = format!("ChwReorder<{B}, {A}> [{c}, {h}, {w}]");
        assert_eq!(tr.out_data(0), chw_of(&data[0], c, h, w), "{label}");
        tr.assert_timing(&label, model);
        assert_eq!(tr.taken_before(0, stall), cap, "capacity {label}");
    }

    #[test]
    fn holds_two_frames_while_the_output_is_stalled() {
        let mut rng = bnnforge_model::random::test_rng("chw_reorder_hold");
        let r = &mut rng;
        hold::<4, 6>(r, (3, 2, 4));
        hold::<4, 3>(r, (3, 1, 1));
        hold::<4, 2>(r, (1, 2, 1));
        hold::<4, 1>(r, (1, 1, 1));
    }

    #[test]
    #[should_panic(expected = "ChwReorder: A = 6 but a [4, 2, 5] map needs A = clog2(2·40) = 7")]
    fn rejects_a_wrong_address_width() {
        let _ = ChwReorder::<4, 6>::new(4, 2, 5);
    }

    #[test]
    #[should_panic(expected = "ChwReorder: map [0, 2, 2] has an empty dimension")]
    fn rejects_an_empty_map() {
        let _ = ChwReorder::<4, 4>::new(0, 2, 2);
    }

    #[test]
    fn synthesises_with_the_frames_in_block_ram() {
        let mut u = ChwReorder::<4, 11>::new(16, 8, 8);
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        let s = ice40_stats("chw_reorder_16x8x8", &v, "top").unwrap();
        println!("ChwReorder<4, 11> [16, 8, 8] on synth_ice40: {s}");
        assert!(s.bram >= 2, "two 4-kbit frames not in block RAM: {s}");
        // registers: four A-bit counters, main + skid, frames and three flags
        assert!(
            s.dff <= 4 * 11 + 2 * 4 + 5,
            "ChwReorder<4, 11> [16, 8, 8] costs {s}"
        );
        assert_eq!(generics(10, 1, 1, 4), [4, 5]);
        let mut u = ChwReorder::<4, 5>::new(10, 1, 1);
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        let s = ice40_stats("chw_reorder_10x1x1", &v, "top").unwrap();
        println!("ChwReorder<4, 5> [10, 1, 1] on synth_ice40: {s}");
        let mut u = ChwReorder::<24, 5>::new(10, 1, 1);
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        let s = ice40_stats("chw_reorder_10x1x1_24b", &v, "top").unwrap();
        println!("ChwReorder<24, 5> [10, 1, 1] on synth_ice40: {s}");
    }
}
