//! `StreamFork<N, W>`: broadcasts a ready/valid stream to N consumers (2 ≤ N ≤
//! [`MAX_WAYS`]), each with its own valid and ready. A beat is held in `hold` and
//! offered to every consumer until that one has taken it (bit k of `taken`); it is
//! released in the cycle the last outstanding consumer takes it, so a slow consumer
//! stalls the others without loss or duplication. A [`SkidBuffer`] in front cuts the path
//! from the consumers' readys to `in_ready`.
//!
//! ```text
//!  in ─► SkidBuffer ─► [hold, hv] ──┬──► out_data = hold (shared)
//!                                   └──► out_valid = hv ? ~taken : 0   (N bits)
//! ```
//!
//! Ports: the engine contract with packed outputs (`hdl/ENGINES.md`): `in_data`,
//! `out_data: Bits<W>` (shared by all consumers), `out_valid`, `out_ready: Bits<N>`.
//! Generics (checked by `new`): `N` in 2..=8, `W` ≥ 1.
//!
//! Cycles per frame: one beat per cycle when no consumer stalls. Latency: [`LATENCY`] (2).

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, Formula, Memory};
use crate::engines::{Carries, EngineSpec, StreamTiming};
use crate::stream::skid_buffer::{SkidBuffer, SkidTiming};
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Cycles from a beat taken to the same beat offered on every output.
pub const LATENCY: u64 = 2;

/// The largest number of consumers of one [`StreamFork`] (more: chain forks).
pub const MAX_WAYS: usize = 8;

/// N-way broadcast (see the module documentation).
#[derive(LogicBlock)]
pub struct StreamFork<const N: usize, const W: usize> {
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
    /// The beat, for every consumer (registered).
    pub out_data: Signal<Out, Bits<W>>,
    /// Bit k: consumer k is offered the beat (registered).
    pub out_valid: Signal<Out, Bits<N>>,
    /// Bit k: consumer k takes it.
    pub out_ready: Signal<In, Bits<N>>,
    skid: SkidBuffer<W>,
    hold: DFF<Bits<W>>,
    hv: DFF<Bit>,
    taken: DFF<Bits<N>>,
    advance: Signal<Local, Bit>,
}

impl<const N: usize, const W: usize> StreamFork<N, W> {
    /// An N-way fork of `W`-bit beats.
    pub fn new() -> Self {
        assert!(
            (2..=MAX_WAYS).contains(&N),
            "StreamFork: N = {N} consumers, not in 2..={MAX_WAYS}"
        );
        assert!(W >= 1, "StreamFork: W = {W} must be at least 1");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            skid: SkidBuffer::new(),
            hold: Default::default(),
            hv: Default::default(),
            taken: Default::default(),
            advance: Default::default(),
        }
    }
    /// One beat per cycle.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }
    /// Beat taken at edge t is offered from cycle t + 2.
    pub fn latency(&self) -> u64 {
        LATENCY
    }
}

impl<const N: usize, const W: usize> Default for StreamFork<N, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const W: usize> Logic for StreamFork<N, W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, hold, hv, taken);
        self.skid.clock.next = self.clock.val();
        self.skid.reset.next = self.reset.val();
        self.skid.in_data.next = self.in_data.val();
        self.skid.in_valid.next = self.in_valid.val();
        self.in_ready.next = self.skid.in_ready.val();
        self.out_data.next = self.hold.q.val();
        self.out_valid.next = 0.into();
        if self.hv.q.val() {
            self.out_valid.next = !self.taken.q.val();
        }
        // release the beat once every consumer has taken it or takes it now
        self.advance.next = !self.hv.q.val() || (self.taken.q.val() | self.out_ready.val()).all();
        self.skid.out_ready.next = self.advance.val();
        if self.advance.val() {
            self.hv.d.next = self.skid.out_valid.val();
            self.hold.d.next = self.skid.out_data.val();
            self.taken.d.next = 0.into();
        } else {
            self.taken.d.next = self.taken.q.val() | self.out_ready.val();
        }
        if self.reset.val() {
            self.hv.d.next = false;
            self.taken.d.next = 0.into();
        }
    }
}

/// A [`StreamFork`] in a design: `ways` copies of a stream of `width`-bit beats, frames
/// of `beats`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForkSpec {
    pub ways: usize,
    pub width: usize,
    pub beats: usize,
}

/// The cycle model of a [`StreamFork`]: its input skid stage, the held beat's valid
/// (`hv`) and which outputs have taken it.
#[derive(Clone, Debug)]
pub struct ForkTiming {
    skid: SkidTiming,
    hv: bool,
    taken: Vec<bool>,
}

impl ForkTiming {
    pub fn new(ways: usize) -> Self {
        Self {
            skid: SkidTiming::default(),
            hv: false,
            taken: vec![false; ways],
        }
    }
}

impl StreamTiming for ForkTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.skid.in_ready()
    }
    fn out_valid(&self, k: usize) -> bool {
        self.hv && !self.taken[k]
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let advance = !self.hv || self.taken.iter().zip(out_fire).all(|(t, f)| *t || *f);
        if advance {
            self.hv = self.skid.main_v;
            self.taken.iter_mut().for_each(|t| *t = false);
        } else {
            for (t, f) in self.taken.iter_mut().zip(out_fire) {
                *t |= *f;
            }
        }
        self.skid.clock(in_fire[0], advance);
    }
}

/// StreamFork LUT4: coefficients of [1, ways²] (fitted with that feature).
const FORK_LUT: [f64; 2] = [13.638, 0.402];
/// StreamFork DFF: coefficients of [1, ways²].
const FORK_DFF: [f64; 2] = [5.850, 1.162];

impl EngineSpec for ForkSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(ForkTiming::new(self.ways))
    }
    fn name(&self) -> &'static str {
        "fork"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    fn generics(&self) -> Vec<usize> {
        vec![self.ways, self.width]
    }
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
    fn logic(&self, _: &[Memory], _io: f64) -> Formula {
        let w = (self.ways * self.ways) as f64;
        (dot(&FORK_LUT, &[1.0, w]), dot(&FORK_DFF, &[1.0, w]))
    }
    fn carries(&self) -> Carries {
        Carries::Input
    }
}

/// Emitter of engine `i` of `d` (a [`ForkSpec`]).
pub fn emit<const N: usize, const W: usize>(_: &Network, d: &Design, i: usize) -> String {
    let (e, _) = engine::<ForkSpec>(d, i, &[N, W]);
    let b = StreamFork::<N, W>::new();
    let (c, l) = (e.cycles * b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testbench::*;
    use crate::synth::ice40_stats;
    use rand::Rng;

    impl<const N: usize, const W: usize> StreamDut for StreamFork<N, W> {
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
            vec![("out".into(), W); N]
        }
        fn set_in(&mut self, _k: usize, valid: bool, data: u128) {
            self.in_valid.next = valid;
            self.in_data.next = data.to_bits();
        }
        fn in_ready(&self, _k: usize) -> bool {
            self.in_ready.val()
        }
        fn set_out_ready(&mut self, k: usize, ready: bool) {
            self.out_ready.next = self.out_ready.next.replace_bit(k, ready);
        }
        fn out(&self, k: usize) -> (bool, u128) {
            (
                self.out_valid.val().get_bit(k),
                self.out_data.val().to_u128(),
            )
        }
    }

    /// Every consumer gets every beat, in order, with each consumer and the input
    /// stalled at random; the Verilog in Icarus does the same cycle for cycle.
    fn check<const N: usize, const W: usize>(
        rng: &mut impl Rng,
        beats: usize,
        p_in: f64,
        p_out: f64,
    ) {
        let data = vec![random_beats(rng, beats, W)];
        let cycles = (beats as f64 / (p_in * p_out.powi(N as i32))) as usize + 40;
        let pat = Pattern::random(rng, 1, N, cycles, p_in, p_out);
        let name = format!("fork{N}_{W}");
        let tr = sim_and_icarus(StreamFork::<N, W>::new, &data, &pat, Some(&name));
        let label = format!("StreamFork<{N}, {W}> p_in {p_in} p_out {p_out}");
        for k in 0..N {
            assert_eq!(tr.out_data(k), data[0], "{label}, output {k}");
        }
        tr.assert_timing(&label, Box::new(ForkTiming::new(N)));
    }

    #[test]
    fn every_consumer_gets_every_beat_under_random_stalls() {
        let mut rng = bnnforge_model::random::test_rng("stream_fork");
        check::<2, 1>(&mut rng, 150, 0.8, 0.7);
        check::<2, 16>(&mut rng, 200, 0.6, 0.9);
        check::<3, 8>(&mut rng, 200, 0.9, 0.7);
        check::<3, 70>(&mut rng, 100, 0.7, 0.95);
        check::<4, 12>(&mut rng, 150, 0.9, 0.85);
        check::<5, 3>(&mut rng, 120, 0.8, 0.9);
        check::<8, 100>(&mut rng, 100, 0.9, 0.95);
    }

    #[test]
    fn full_rate_and_latency() {
        let mut rng = bnnforge_model::random::test_rng("stream_fork_rate");
        let n = 40;
        let data = vec![random_beats(&mut rng, n, 8)];
        let pat = Pattern::full_rate(1, 4, n + 20, 0..0);
        let f = StreamFork::<4, 8>::new();
        let tr = run_sim(StreamFork::<4, 8>::new(), &data, &pat);
        for k in 0..4 {
            assert_eq!(tr.out_data(k), data[0]);
            assert_eq!(tr.outs[k][0].1 - tr.ins[0][0], f.latency() as usize);
            assert_eq!(tr.out_span(k), n, "not full rate");
        }
    }

    #[test]
    #[should_panic(expected = "StreamFork: N = 1 consumers, not in 2..=8")]
    fn rejects_one_way() {
        let _ = StreamFork::<1, 8>::new();
    }

    /// The 2- and 3-way forks are held to their LUT4 figures in `hdl/DESIGN.md`'s block
    /// table; the DFF counts are exact.
    #[test]
    fn synthesises_clean() {
        let mut uut = StreamFork::<2, 32>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_stream_fork", &v).unwrap();
        let s2 = ice40_stats("fork2_32", &v, "top").unwrap();
        println!("StreamFork<2, 32> on synth_ice40: {s2}");
        let mut uut = StreamFork::<3, 32>::new();
        uut.connect_all();
        let s3 = ice40_stats("fork3_32", &generate_verilog(&uut), "top").unwrap();
        println!("StreamFork<3, 32> on synth_ice40: {s3}");
        let mut uut = StreamFork::<8, 32>::new();
        uut.connect_all();
        let s8 = ice40_stats("fork8_32", &generate_verilog(&uut), "top").unwrap();
        println!("StreamFork<8, 32> on synth_ice40: {s8}");
        // skid 66 + hold 32 + hv 1 + one taken flag per consumer
        assert_eq!((s2.dff, s3.dff, s8.dff), (101, 102, 107));
        assert!(s2.lut4 <= 45 && s3.lut4 <= 47, "{s2}; {s3}");
    }
}
