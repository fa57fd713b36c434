//! `SkidBuffer<W>`: a two-entry register slice on a ready/valid stream. Passes beats
//! through unchanged and cuts every combinational path between its two sides
//! (`out_valid`/`out_data` from the `main` register, `in_ready` from the `skid`
//! register's state): the block the other stream blocks use to meet the engine contract.
//!
//! ```text
//!  in_data ──┬──► [skid, skid_v] ──┐          in_ready = !skid_v
//!            └───────────────────►(mux)──► [main, main_v] ──► out_data, out_valid
//! ```
//! When `main` is free (empty, or its beat taken this cycle) it loads the skid beat if
//! any, else the input beat; when it is held, an input beat goes into `skid`.
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data`, `out_data: Bits<W>`.
//! Generic: `W` ≥ 1 beat bits. Cycles: one beat per cycle. Latency: 1. Capacity: 2 beats.

use rust_hdl::prelude::*;

/// Two-entry register slice (see the module documentation).
#[derive(LogicBlock)]
pub struct SkidBuffer<const W: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: both entries empty.
    pub reset: Signal<In, Bit>,
    /// Input beat.
    pub in_data: Signal<In, Bits<W>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The buffer takes the input beat this cycle if `in_valid` (state only).
    pub in_ready: Signal<Out, Bit>,
    /// Output beat (registered).
    pub out_data: Signal<Out, Bits<W>>,
    /// An output beat is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the output beat this cycle.
    pub out_ready: Signal<In, Bit>,
    main: DFF<Bits<W>>,
    main_v: DFF<Bit>,
    skid: DFF<Bits<W>>,
    skid_v: DFF<Bit>,
}

impl<const W: usize> SkidBuffer<W> {
    /// A skid buffer for `W`-bit beats.
    pub fn new() -> Self {
        assert!(W >= 1, "SkidBuffer: W = {W} must be at least 1");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            main: Default::default(),
            main_v: Default::default(),
            skid: Default::default(),
            skid_v: Default::default(),
        }
    }

    /// Cycles per frame of `beats` beats at full rate.
    pub fn cycles_per_frame_of(&self, beats: u64) -> u64 {
        beats
    }

    /// One beat per cycle: `cycles_per_frame` of a one-beat frame.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }

    /// Cycles from a beat taken to the same beat offered.
    pub fn latency(&self) -> u64 {
        1
    }
}

/// The cycle model of a [`SkidBuffer`] (and of the same main + skid stage inside other
/// blocks): its two valid flags, updated as the registers are.
#[derive(Clone, Copy, Debug, Default)]
pub struct SkidTiming {
    pub main_v: bool,
    pub skid_v: bool,
}

impl SkidTiming {
    pub fn in_ready(&self) -> bool {
        !self.skid_v
    }
    pub fn out_valid(&self) -> bool {
        self.main_v
    }
    /// The edge: `offered` is the beat entering (`in_valid`, taken when ready), `out_fire`
    /// the output's transfer (`out_ready` only matters while `main_v`).
    pub fn clock(&mut self, offered: bool, out_fire: bool) {
        if !self.main_v || out_fire {
            if self.skid_v {
                (self.main_v, self.skid_v) = (true, false);
            } else {
                self.main_v = offered;
            }
        } else if offered {
            self.skid_v = true;
        }
    }
}

impl crate::compile::timing::StreamTiming for SkidTiming {
    fn in_ready(&self, _k: usize) -> bool {
        SkidTiming::in_ready(self)
    }
    fn out_valid(&self, _k: usize) -> bool {
        SkidTiming::out_valid(self)
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        SkidTiming::clock(self, in_fire[0], out_fire[0])
    }
}

impl<const W: usize> Default for SkidBuffer<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Logic for SkidBuffer<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, main, main_v, skid, skid_v);
        self.in_ready.next = !self.skid_v.q.val();
        self.out_valid.next = self.main_v.q.val();
        self.out_data.next = self.main.q.val();
        if !self.main_v.q.val() || self.out_ready.val() {
            if self.skid_v.q.val() {
                self.main.d.next = self.skid.q.val();
                self.main_v.d.next = true;
                self.skid_v.d.next = false;
            } else {
                self.main_v.d.next = self.in_valid.val();
                if self.in_valid.val() {
                    self.main.d.next = self.in_data.val();
                }
            }
        } else if self.in_valid.val() && !self.skid_v.q.val() {
            self.skid.d.next = self.in_data.val();
            self.skid_v.d.next = true;
        }
        if self.reset.val() {
            self.main_v.d.next = false;
            self.skid_v.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;

    single_stream_dut!(SkidBuffer<W>, W, W, [const W: usize]);

    fn run<const W: usize>(rng: &mut impl rand::Rng, beats: usize, p_in: f64, p_out: f64) {
        let data = vec![random_beats(rng, beats, W)];
        let cycles = (beats as f64 / p_in.min(p_out)) as usize * 2 + 20;
        let pat = Pattern::random(rng, 1, 1, cycles, p_in, p_out);
        let name = format!("skid_{W}");
        let tr = sim_and_icarus(SkidBuffer::<W>::new, &data, &pat, Some(&name));
        let label = format!("SkidBuffer<{W}> p_in {p_in} p_out {p_out}");
        assert_eq!(tr.out_data(0), data[0], "{label}");
        tr.assert_timing(&label, Box::new(SkidTiming::default()));
    }

    #[test]
    fn passes_every_beat_under_random_stalls_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("skid_buffer");
        run::<1>(&mut rng, 100, 0.7, 0.6);
        run::<8>(&mut rng, 200, 0.5, 0.9);
        run::<37>(&mut rng, 200, 0.9, 0.5);
        run::<128>(&mut rng, 100, 0.8, 0.8);
    }

    #[test]
    fn full_throughput_and_one_cycle_latency() {
        let mut rng = bnnforge_model::random::test_rng("skid_buffer_rate");
        let uut = SkidBuffer::<8>::new();
        let n = 50;
        let data = vec![random_beats(&mut rng, n, 8)];
        let pat = Pattern::full_rate(1, 1, n + 10, 0..0);
        let tr = run_sim(SkidBuffer::<8>::new(), &data, &pat);
        assert_eq!(tr.out_data(0), data[0]);
        assert_eq!(tr.latency(), uut.latency(), "latency");
        assert_eq!(tr.out_span(0), n, "not one beat per cycle");
        assert_eq!(uut.cycles_per_frame_of(n as u64), n as u64);
    }

    #[test]
    fn synthesises_clean() {
        let mut uut = SkidBuffer::<32>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_skid_buffer", &v).unwrap();
        let s = ice40_stats("skid_32", &v, "top").unwrap();
        println!("SkidBuffer<32> on synth_ice40: {s}");
        // 2 x 32 data + 2 valid flip-flops; one 2:1 mux per data bit
        assert_eq!(s.dff, 66, "SkidBuffer<32>: {s}");
        assert!(s.lut4 <= 40, "SkidBuffer<32> costs {s}");
    }
}
