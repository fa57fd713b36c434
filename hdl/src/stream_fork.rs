//! `StreamFork2<W>`, `StreamFork3<W>`: broadcast a ready/valid stream to two or three
//! consumers, each with its own ready.
//!
//! A beat is held in the `hold` register and offered on every output until that output
//! has taken it; a per-output `taken` flag remembers who has. The beat is released (and
//! the next one loaded) in the cycle the last outstanding consumer takes it, so the
//! fork runs at one beat per cycle when every consumer keeps up, and a slow consumer
//! stalls the others without loss or duplication. A [`SkidBuffer`] in front cuts the
//! path from the outputs' readys to `in_ready`.
//!
//! ```text
//!                                    ┌──► out0_valid = hv & !taken0, out0_data = hold
//!  in ─► SkidBuffer ─► [hold, hv] ───┼──► out1_valid = hv & !taken1, out1_data = hold
//!        (in_ready)      ▲           └──► (out2 …)
//!                        └─ load when !hv or every output has taken or takes it now
//!                           (taken_k | out_k_ready for all k); taken flags then clear
//! ```
//!
//! Cycles per frame: one beat per cycle when no consumer stalls. Latency: 2 cycles
//! (skid buffer, then the hold register). `outK_valid` depends on registers only.
//!
//! Parameter: `W` ≥ 1, the beat width.
//!
//! Ports (engine contract, several outputs): `clock`, `reset` (synchronous: empty),
//! `in_data: Bits<W>`, `in_valid`, `in_ready`; per output k: `outK_data: Bits<W>`,
//! `outK_valid`, `outK_ready`.
//!
//! rust-hdl has no arrays of ports, and the contract names them `out0_…`, `out1_…`, so
//! the two widths of fork are two blocks (more outputs: chain forks, or add a block).

use crate::skid_buffer::SkidBuffer;
use rust_hdl::prelude::*;

/// Two-way broadcast (see the module documentation).
#[derive(LogicBlock)]
pub struct StreamFork2<const W: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// Input beat.
    pub in_data: Signal<In, Bits<W>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The fork takes the beat if `in_valid` (registered).
    pub in_ready: Signal<Out, Bit>,
    /// Output 0 beat.
    pub out0_data: Signal<Out, Bits<W>>,
    /// Output 0 offers the beat.
    pub out0_valid: Signal<Out, Bit>,
    /// Consumer 0 takes it.
    pub out0_ready: Signal<In, Bit>,
    /// Output 1 beat.
    pub out1_data: Signal<Out, Bits<W>>,
    /// Output 1 offers the beat.
    pub out1_valid: Signal<Out, Bit>,
    /// Consumer 1 takes it.
    pub out1_ready: Signal<In, Bit>,
    skid: SkidBuffer<W>,
    hold: DFF<Bits<W>>,
    hv: DFF<Bit>,
    taken0: DFF<Bit>,
    taken1: DFF<Bit>,
    advance: Signal<Local, Bit>,
}

impl<const W: usize> StreamFork2<W> {
    /// A two-way fork of `W`-bit beats.
    pub fn new() -> Self {
        assert!(W >= 1, "StreamFork2: W = {W} must be at least 1");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out0_data: Default::default(),
            out0_valid: Default::default(),
            out0_ready: Default::default(),
            out1_data: Default::default(),
            out1_valid: Default::default(),
            out1_ready: Default::default(),
            skid: SkidBuffer::new(),
            hold: Default::default(),
            hv: Default::default(),
            taken0: Default::default(),
            taken1: Default::default(),
            advance: Default::default(),
        }
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beat taken at edge t is offered from cycle t + 2.
    pub fn latency(&self) -> u64 {
        2
    }
}

impl<const W: usize> Default for StreamFork2<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Logic for StreamFork2<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, hold, hv, taken0, taken1);
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        self.skid.in_data.next = self.in_data.val();
        self.skid.in_valid.next = self.in_valid.val();
        self.in_ready.next = self.skid.in_ready.val();
        self.out0_data.next = self.hold.q.val();
        self.out1_data.next = self.hold.q.val();
        self.out0_valid.next = self.hv.q.val() && !self.taken0.q.val();
        self.out1_valid.next = self.hv.q.val() && !self.taken1.q.val();
        self.advance.next = !self.hv.q.val()
            || ((self.taken0.q.val() || self.out0_ready.val())
                && (self.taken1.q.val() || self.out1_ready.val()));
        self.skid.out_ready.next = self.advance.val();
        if self.advance.val() {
            self.hv.d.next = self.skid.out_valid.val();
            self.hold.d.next = self.skid.out_data.val();
            self.taken0.d.next = false;
            self.taken1.d.next = false;
        } else {
            self.taken0.d.next = self.taken0.q.val() || self.out0_ready.val();
            self.taken1.d.next = self.taken1.q.val() || self.out1_ready.val();
        }
        if self.reset.val() {
            self.hv.d.next = false;
            self.taken0.d.next = false;
            self.taken1.d.next = false;
        }
    }
}

/// Three-way broadcast (see the module documentation).
#[derive(LogicBlock)]
pub struct StreamFork3<const W: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high.
    pub reset: Signal<In, Bit>,
    /// Input beat.
    pub in_data: Signal<In, Bits<W>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The fork takes the beat if `in_valid` (registered).
    pub in_ready: Signal<Out, Bit>,
    /// Output 0 beat.
    pub out0_data: Signal<Out, Bits<W>>,
    /// Output 0 offers the beat.
    pub out0_valid: Signal<Out, Bit>,
    /// Consumer 0 takes it.
    pub out0_ready: Signal<In, Bit>,
    /// Output 1 beat.
    pub out1_data: Signal<Out, Bits<W>>,
    /// Output 1 offers the beat.
    pub out1_valid: Signal<Out, Bit>,
    /// Consumer 1 takes it.
    pub out1_ready: Signal<In, Bit>,
    /// Output 2 beat.
    pub out2_data: Signal<Out, Bits<W>>,
    /// Output 2 offers the beat.
    pub out2_valid: Signal<Out, Bit>,
    /// Consumer 2 takes it.
    pub out2_ready: Signal<In, Bit>,
    skid: SkidBuffer<W>,
    hold: DFF<Bits<W>>,
    hv: DFF<Bit>,
    taken0: DFF<Bit>,
    taken1: DFF<Bit>,
    taken2: DFF<Bit>,
    advance: Signal<Local, Bit>,
}

impl<const W: usize> StreamFork3<W> {
    /// A three-way fork of `W`-bit beats.
    pub fn new() -> Self {
        assert!(W >= 1, "StreamFork3: W = {W} must be at least 1");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out0_data: Default::default(),
            out0_valid: Default::default(),
            out0_ready: Default::default(),
            out1_data: Default::default(),
            out1_valid: Default::default(),
            out1_ready: Default::default(),
            out2_data: Default::default(),
            out2_valid: Default::default(),
            out2_ready: Default::default(),
            skid: SkidBuffer::new(),
            hold: Default::default(),
            hv: Default::default(),
            taken0: Default::default(),
            taken1: Default::default(),
            taken2: Default::default(),
            advance: Default::default(),
        }
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beat taken at edge t is offered from cycle t + 2.
    pub fn latency(&self) -> u64 {
        2
    }
}

impl<const W: usize> Default for StreamFork3<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Logic for StreamFork3<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, hold, hv, taken0, taken1, taken2);
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        self.skid.in_data.next = self.in_data.val();
        self.skid.in_valid.next = self.in_valid.val();
        self.in_ready.next = self.skid.in_ready.val();
        self.out0_data.next = self.hold.q.val();
        self.out1_data.next = self.hold.q.val();
        self.out2_data.next = self.hold.q.val();
        self.out0_valid.next = self.hv.q.val() && !self.taken0.q.val();
        self.out1_valid.next = self.hv.q.val() && !self.taken1.q.val();
        self.out2_valid.next = self.hv.q.val() && !self.taken2.q.val();
        self.advance.next = !self.hv.q.val()
            || ((self.taken0.q.val() || self.out0_ready.val())
                && (self.taken1.q.val() || self.out1_ready.val())
                && (self.taken2.q.val() || self.out2_ready.val()));
        self.skid.out_ready.next = self.advance.val();
        if self.advance.val() {
            self.hv.d.next = self.skid.out_valid.val();
            self.hold.d.next = self.skid.out_data.val();
            self.taken0.d.next = false;
            self.taken1.d.next = false;
            self.taken2.d.next = false;
        } else {
            self.taken0.d.next = self.taken0.q.val() || self.out0_ready.val();
            self.taken1.d.next = self.taken1.q.val() || self.out1_ready.val();
            self.taken2.d.next = self.taken2.q.val() || self.out2_ready.val();
        }
        if self.reset.val() {
            self.hv.d.next = false;
            self.taken0.d.next = false;
            self.taken1.d.next = false;
            self.taken2.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skid_buffer::testbench::*;
    use crate::synth::ice40_stats;
    use crate::testutil;
    use rand::Rng;

    impl<const W: usize> StreamDut for StreamFork2<W> {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("in".into(), W)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out0".into(), W), ("out1".into(), W)]
        }
        fn set_in(&mut self, _k: usize, valid: bool, data: u128) {
            self.in_valid.next = valid;
            self.in_data.next = data.to_bits();
        }
        fn in_ready(&self, _k: usize) -> bool {
            self.in_ready.val()
        }
        fn set_out_ready(&mut self, k: usize, ready: bool) {
            match k {
                0 => self.out0_ready.next = ready,
                _ => self.out1_ready.next = ready,
            }
        }
        fn out(&self, k: usize) -> (bool, u128) {
            match k {
                0 => (self.out0_valid.val(), self.out0_data.val().to_u128()),
                _ => (self.out1_valid.val(), self.out1_data.val().to_u128()),
            }
        }
    }

    impl<const W: usize> StreamDut for StreamFork3<W> {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("in".into(), W)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out0".into(), W), ("out1".into(), W), ("out2".into(), W)]
        }
        fn set_in(&mut self, _k: usize, valid: bool, data: u128) {
            self.in_valid.next = valid;
            self.in_data.next = data.to_bits();
        }
        fn in_ready(&self, _k: usize) -> bool {
            self.in_ready.val()
        }
        fn set_out_ready(&mut self, k: usize, ready: bool) {
            match k {
                0 => self.out0_ready.next = ready,
                1 => self.out1_ready.next = ready,
                _ => self.out2_ready.next = ready,
            }
        }
        fn out(&self, k: usize) -> (bool, u128) {
            match k {
                0 => (self.out0_valid.val(), self.out0_data.val().to_u128()),
                1 => (self.out1_valid.val(), self.out1_data.val().to_u128()),
                _ => (self.out2_valid.val(), self.out2_data.val().to_u128()),
            }
        }
    }

    fn check<D: StreamDut>(
        rng: &mut impl Rng,
        make: &dyn Fn() -> D,
        name: &str,
        w: usize,
        beats: usize,
        p_in: f64,
        p_out: f64,
    ) {
        let uut = make();
        let outs = uut.outs().len();
        let data = vec![random_beats(rng, beats, w)];
        let cycles = (beats as f64 / (p_in * p_out.powi(outs as i32))) as usize + 40;
        let pat = Pattern::random(rng, 1, outs, cycles, p_in, p_out);
        let tr = run_sim(make(), &data, &pat);
        let label = format!("{name}<{w}> p_in {p_in} p_out {p_out}");
        for k in 0..outs {
            assert_eq!(tr.out_data(k), data[0], "rust-hdl {label}, output {k}");
        }
        let mut v = make();
        v.connect_all();
        let verilog = generate_verilog(&v);
        let iv = run_icarus(
            &format!("{name}_{w}"),
            &verilog,
            &v.ins(),
            &v.outs(),
            &data,
            &pat,
        );
        assert_eq!(iv, tr, "Icarus vs rust-hdl {label}");
    }

    #[test]
    fn every_consumer_gets_every_beat_under_random_stalls() {
        let mut rng = testutil::rng("stream_fork");
        check(&mut rng, &StreamFork2::<1>::new, "fork2", 1, 150, 0.8, 0.7);
        check(
            &mut rng,
            &StreamFork2::<16>::new,
            "fork2",
            16,
            200,
            0.6,
            0.9,
        );
        check(&mut rng, &StreamFork3::<8>::new, "fork3", 8, 200, 0.9, 0.7);
        check(
            &mut rng,
            &StreamFork3::<70>::new,
            "fork3",
            70,
            100,
            0.7,
            0.95,
        );
    }

    #[test]
    fn full_rate_and_latency() {
        let mut rng = testutil::rng("stream_fork_rate");
        let n = 40;
        let data = vec![random_beats(&mut rng, n, 8)];
        let pat = Pattern::random(&mut rng, 1, 3, n + 20, 1.0, 1.0);
        let f = StreamFork3::<8>::new();
        let tr = run_sim(StreamFork3::<8>::new(), &data, &pat);
        for k in 0..3 {
            assert_eq!(tr.out_data(k), data[0]);
            assert_eq!(tr.outs[k][0].1 - tr.ins[0][0], f.latency() as usize);
            assert_eq!(
                tr.outs[k][n - 1].1 + 1 - tr.outs[k][0].1,
                n,
                "not full rate"
            );
        }
    }

    #[test]
    fn synthesises_clean() {
        let mut uut = StreamFork2::<32>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_stream_fork2", &v).unwrap();
        let s = ice40_stats("fork2_32", &v, "top").unwrap();
        println!("StreamFork2<32> on synth_ice40: {s}");
        let mut uut = StreamFork3::<32>::new();
        uut.connect_all();
        let s = ice40_stats("fork3_32", &generate_verilog(&uut), "top").unwrap();
        println!("StreamFork3<32> on synth_ice40: {s}");
    }
}
