//! `StreamFifo<W, A>`: a ready/valid FIFO of run-time depth, `depth` ≤ 2^A entries in a
//! rust-hdl `RAM` (block RAM when deep enough) followed by a two-entry output stage, so
//! the output is registered and the rate one beat per cycle despite the RAM's read cycle.
//! Used on residual branches. Structure: `hdl/DESIGN.md`, "FIFO".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data`, `out_data: Bits<W>`;
//! `in_ready` is `!full` (a register).
//!
//! Generics (checked by [`StreamFifo::new`]): `W` ≥ 1 beat bits; `A` in 1..=16 address
//! bits. Run-time: `depth` in 1..=2^A.
//!
//! Cycles per frame: one beat per cycle (depth ≥ 2; depth 1: every other cycle).
//! Latency: [`LATENCY`] (3: a beat taken at edge t is offered from cycle t + 3).
//! Capacity: `depth` + 2 beats.

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, mem_sum, Formula, Memory};
use crate::engines::{Carries, EngineSpec, StreamTiming};
use crate::stream::skid_buffer::SkidTiming;
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Ready/valid FIFO in block RAM (see the module documentation).
#[derive(LogicBlock)]
pub struct StreamFifo<const W: usize, const A: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: the FIFO empties.
    pub reset: Signal<In, Bit>,
    /// Input beat.
    pub in_data: Signal<In, Bits<W>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The FIFO takes the beat if `in_valid` (state only: not full).
    pub in_ready: Signal<Out, Bit>,
    /// Output beat (registered).
    pub out_data: Signal<Out, Bits<W>>,
    /// An output beat is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the output beat this cycle.
    pub out_ready: Signal<In, Bit>,
    ram: RAM<Bits<W>, A>,
    wptr: DFF<Bits<A>>,
    rptr: DFF<Bits<A>>,
    full: DFF<Bit>,
    rv: DFF<Bit>,
    main: DFF<Bits<W>>,
    mv: DFF<Bit>,
    skid: DFF<Bits<W>>,
    sv: DFF<Bit>,
    // RAM not empty (wptr != rptr or full), kept as a flag: 0 at power-on as the
    // pointers
    nonempty: DFF<Bit>,
    // entries in the RAM modulo 2^A (full and nonempty tell 0 from 2^A)
    cnt: DFF<Bits<A>>,
    one: Constant<Bits<A>>,
    // sv | rv: the skid or the RAM's read register holds a beat
    srbusy: DFF<Bit>,
    write: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    wnext: Signal<Local, Bits<A>>,
    rnext: Signal<Local, Bits<A>>,
    last: Constant<Bits<A>>,
    _depth: usize,
}

impl<const W: usize, const A: usize> StreamFifo<W, A> {
    /// A FIFO of `depth` RAM entries (capacity `depth + 2` beats).
    pub fn new(depth: usize) -> Self {
        assert!(W >= 1, "StreamFifo: W = {W} must be at least 1");
        assert!((1..=16).contains(&A), "StreamFifo: A = {A} not in 1..=16");
        assert!(
            depth >= 1 && depth <= 1 << A,
            "StreamFifo: depth {depth} not in 1..=2^{A}"
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
            ram: Default::default(),
            wptr: Default::default(),
            rptr: Default::default(),
            full: Default::default(),
            rv: Default::default(),
            main: Default::default(),
            mv: Default::default(),
            skid: Default::default(),
            sv: Default::default(),
            nonempty: Default::default(),
            cnt: Default::default(),
            one: Constant::new(1.into()),
            srbusy: Default::default(),
            write: Default::default(),
            issue: Default::default(),
            wnext: Default::default(),
            rnext: Default::default(),
            last: Constant::new(((depth - 1) as u64).into()),
            _depth: depth,
        }
    }

    /// Beats the FIFO holds when its output is stalled.
    pub fn capacity(&self) -> usize {
        self._depth + 2
    }

    /// One beat per cycle at full rate (depth ≥ 2).
    pub fn cycles_per_frame(&self) -> u64 {
        if self._depth >= 2 {
            1
        } else {
            2
        }
    }

    /// Cycles from a beat taken (empty FIFO) to the same beat offered.
    pub fn latency(&self) -> u64 {
        LATENCY
    }
}

impl<const W: usize, const A: usize> Logic for StreamFifo<W, A> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, wptr, rptr, full, rv, main, mv, skid, sv, nonempty, cnt, srbusy);
        self.ram.read_clock.next = self.clock.val();
        self.ram.write_clock.next = self.clock.val();
        // write side
        self.in_ready.next = !self.full.q.val();
        self.write.next = self.in_valid.val() && !self.full.q.val();
        self.wnext.next = self.wptr.q.val() + 1;
        if self.wptr.q.val() == self.last.val() {
            self.wnext.next = 0.into();
        }
        self.ram.write_address.next = self.wptr.q.val();
        self.ram.write_data.next = self.in_data.val();
        self.ram.write_enable.next = self.write.val();
        // read side: issue when the beat read will find a place next cycle
        self.issue.next = self.nonempty.q.val()
            && (!self.mv.q.val() || self.out_ready.val() || !self.srbusy.q.val());
        // srbusy = sv | rv, kept as a register of its own: the issue is one LUT
        self.srbusy.d.next =
            (self.mv.q.val() && !self.out_ready.val() && (self.sv.q.val() || self.rv.q.val()))
                || self.issue.val();
        self.rnext.next = self.rptr.q.val() + 1;
        if self.rptr.q.val() == self.last.val() {
            self.rnext.next = 0.into();
        }
        self.ram.read_address.next = self.rptr.q.val();
        self.rv.d.next = self.issue.val();
        if self.write.val() {
            self.wptr.d.next = self.wnext.val();
        }
        if self.issue.val() {
            self.rptr.d.next = self.rnext.val();
        }
        // a write alone adds an entry (full at depth − 1 + 1), a read alone takes one
        // (empty at 1 − 1)
        if self.write.val() && !self.issue.val() {
            self.cnt.d.next = self.cnt.q.val() + 1;
            self.nonempty.d.next = true;
            if self.cnt.q.val() == self.last.val() {
                self.full.d.next = true;
            }
        }
        if self.issue.val() && !self.write.val() {
            self.cnt.d.next = self.cnt.q.val() - 1;
            self.full.d.next = false;
            if self.cnt.q.val() == self.one.val() {
                self.nonempty.d.next = false;
            }
        }
        // output stage: main register and skid (a read beat never finds both occupied)
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
            self.rptr.d.next = 0.into();
            self.full.d.next = false;
            self.rv.d.next = false;
            self.mv.d.next = false;
            self.sv.d.next = false;
            self.nonempty.d.next = false;
            self.cnt.d.next = 0.into();
            self.srbusy.d.next = false;
        }
    }
}

/// Cycles from a beat taken to the same beat offered, empty FIFO.
pub const LATENCY: u64 = 3;

/// The cycle model of a [`StreamFifo`]: the RAM's entry count and flags, the read
/// register's valid (`rv`), the output stage ([`SkidTiming`]) and `srbusy`, each
/// updated as its register is.
#[derive(Clone, Debug)]
pub struct FifoTiming {
    depth: usize,
    count: usize,
    full: bool,
    nonempty: bool,
    rv: bool,
    srbusy: bool,
    out: SkidTiming,
}

impl FifoTiming {
    pub fn new(depth: usize) -> Self {
        Self {
            depth,
            count: 0,
            full: false,
            nonempty: false,
            rv: false,
            srbusy: false,
            out: SkidTiming::default(),
        }
    }
}

impl StreamTiming for FifoTiming {
    fn in_ready(&self, _k: usize) -> bool {
        !self.full
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.out.main_v
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let (write, taken) = (in_fire[0], out_fire[0]);
        let mv = self.out.main_v;
        let issue = self.nonempty && (!mv || taken || !self.srbusy);
        self.srbusy = (mv && !taken && (self.out.skid_v || self.rv)) || issue;
        if write && !issue {
            self.count += 1;
            self.nonempty = true;
            self.full = self.count == self.depth;
        }
        if issue && !write {
            self.count -= 1;
            self.full = false;
            self.nonempty = self.count != 0;
        }
        self.out.clock(self.rv, taken);
        self.rv = issue;
    }
}

/// A [`StreamFifo`] in a design: `depth` beats of `width` bits, frames of `beats`.
#[derive(Clone, Debug, PartialEq)]
pub struct FifoSpec {
    pub width: usize,
    pub depth: usize,
    pub beats: usize,
}

impl FifoSpec {
    /// Generic `A`: address bits of `depth` words.
    pub fn addr_bits(&self) -> usize {
        crate::address_bits(self.depth)
    }
}

/// StreamFifo LUT4: coefficients of [1, W, A, RAM] (the constant includes the flags
/// kept beside the count, measured on 4 FIFOs of TFC-W1A1 and `random-3`).
const FIFO_LUT: [f64; 4] = [18.712, 1.003, 5.651, 1.007];
/// StreamFifo DFF: coefficients of [1, W, A, RAM] (same 4 FIFOs, within 8 %).
const FIFO_DFF: [f64; 4] = [14.887, 2.615, 3.219, 0.821];

impl EngineSpec for FifoSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(FifoTiming::new(self.depth))
    }
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    fn generics(&self) -> Vec<usize> {
        vec![self.width, self.addr_bits()]
    }
    fn cycles(&self) -> u64 {
        self.beats as u64
    }
    fn latency(&self) -> u64 {
        LATENCY
    }
    fn memory_bits(&self) -> u64 {
        (self.depth * self.width) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        vec![Memory::ram(self.width, 1 << self.addr_bits())]
    }
    fn logic(&self, ms: &[Memory], _io: f64) -> Formula {
        let r = mem_sum(ms, |_| true);
        let f = |ram: f64| [1.0, self.width as f64, self.addr_bits() as f64, ram];
        (dot(&FIFO_LUT, &f(r.0)), dot(&FIFO_DFF, &f(r.1)))
    }
    fn carries(&self) -> Carries {
        Carries::Input
    }
}

/// Emitter of engine `i` of `d` (a [`FifoSpec`]).
pub fn emit<const W: usize, const A: usize>(_: &Network, d: &Design, i: usize) -> String {
    let (e, s) = engine::<FifoSpec>(d, i, &[W, A]);
    let b = StreamFifo::<W, A>::new(s.depth);
    let (c, l) = (e.cycles * b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;

    single_stream_dut!(StreamFifo<W, A>, W, W, [const W: usize, const A: usize]);

    fn run<const W: usize, const A: usize>(
        rng: &mut impl rand::Rng,
        depth: usize,
        beats: usize,
        p_in: f64,
        p_out: f64,
        verilog: bool,
    ) {
        let data = vec![random_beats(rng, beats, W)];
        let cycles = (beats as f64 / p_in.min(p_out)) as usize * 2 + depth + 20;
        let pat = Pattern::random(rng, 1, 1, cycles, p_in, p_out);
        let name = format!("fifo_{W}_{A}_{depth}");
        let make = || StreamFifo::<W, A>::new(depth);
        let tr = sim_and_icarus(make, &data, &pat, verilog.then_some(name.as_str()));
        let label = format!("StreamFifo<{W}, {A}> depth {depth} p_in {p_in} p_out {p_out}");
        assert_eq!(tr.out_data(0), data[0], "{label}");
        tr.assert_timing(&label, Box::new(FifoTiming::new(depth)));
        // occupancy never exceeds the capacity (and reaches it when the output stalls)
        let cap = depth + 2;
        let mut max_fill = 0;
        for (i, &t) in tr.ins[0].iter().enumerate() {
            let out_before = tr.outs[0].iter().filter(|o| o.1 < t).count();
            max_fill = max_fill.max(i + 1 - out_before);
        }
        assert!(max_fill <= cap, "{label}: {max_fill} beats inside");
    }

    #[test]
    fn keeps_order_under_random_stalls_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("stream_fifo");
        run::<8, 1>(&mut rng, 1, 60, 0.7, 0.7, true);
        run::<8, 1>(&mut rng, 2, 100, 0.9, 0.4, false);
        run::<1, 3>(&mut rng, 5, 200, 0.6, 0.8, true);
        run::<16, 4>(&mut rng, 16, 300, 0.9, 0.3, true);
        run::<16, 4>(&mut rng, 16, 300, 0.3, 0.9, false);
        run::<33, 6>(&mut rng, 40, 300, 0.8, 0.8, true);
        run::<100, 5>(&mut rng, 32, 200, 0.95, 0.95, false);
    }

    #[test]
    fn full_rate_latency_and_capacity() {
        let mut rng = bnnforge_model::random::test_rng("stream_fifo_rate");
        let fifo = StreamFifo::<8, 4>::new(10);
        let n = 60;
        let data = vec![random_beats(&mut rng, n, 8)];
        // no stalls: one beat per cycle, latency 3
        let pat = Pattern::full_rate(1, 1, n + 20, 0..0);
        let tr = run_sim(StreamFifo::<8, 4>::new(10), &data, &pat);
        assert_eq!(tr.out_data(0), data[0]);
        assert_eq!(tr.latency(), fifo.latency());
        assert_eq!(tr.out_span(0), n, "not full rate");
        assert_eq!(tr.in_span(0), n, "input not full rate");
        // output stalled for 40 cycles: exactly depth + 2 beats go in
        let pat = Pattern::full_rate(1, 1, n + 80, 0..40);
        let tr = run_sim(StreamFifo::<8, 4>::new(10), &data, &pat);
        assert_eq!(tr.out_data(0), data[0]);
        assert_eq!(tr.taken_before(0, 40), fifo.capacity(), "capacity");
        tr.assert_timing(
            "StreamFifo<8, 4> depth 10 stalled",
            Box::new(FifoTiming::new(10)),
        );
    }

    #[test]
    #[should_panic(expected = "StreamFifo: depth 17 not in 1..=2^4")]
    fn rejects_a_depth_beyond_the_address_width() {
        let _ = StreamFifo::<8, 4>::new(17);
    }

    #[test]
    fn deep_fifo_goes_to_block_ram() {
        let mut uut = StreamFifo::<16, 9>::new(512);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_stream_fifo", &v).unwrap();
        let s = ice40_stats("fifo_16x512", &v, "top").unwrap();
        println!("StreamFifo<16, 9> depth 512 on synth_ice40: {s}");
        assert!(s.bram >= 2, "FIFO storage not in block RAM: {s}");
        assert!(s.lut4 <= 120, "StreamFifo<16, 9> costs {s}");
        let mut uut = StreamFifo::<32, 7>::new(100);
        uut.connect_all();
        let s = ice40_stats("fifo_32x100", &generate_verilog(&uut), "top").unwrap();
        println!("StreamFifo<32, 7> depth 100 on synth_ice40: {s}");
        assert!(s.bram >= 1, "FIFO storage not in block RAM: {s}");
    }
}
