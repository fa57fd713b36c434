//! `MaxPool<W, CW, GW, PW>`: the maxpool op (kernel k, stride s, overlapping allowed, no
//! padding) on L lanes of B bits. Binary (bit 1 = +1): the OR of the bits; integers: the
//! maximum, signed or unsigned, compared per lane on offset binary. Output in H, W, C
//! order, L lanes per beat.
//!
//! ```text
//!  in ─► SlidingWindow<W, W, CW> (SIMD = L, no padding) ─► k×k patches, (ky, kx, c) order
//!     ─► acc[cg] = first ? x : max(acc[cg], x)   (a LineRam of C/L words, read at the take,
//!        written a cycle later; forwarded when C = L)
//!     ─► on the last kernel position: the result into a 3-entry OutQueue ─► out
//! ```
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data`, `out_data: Bits<W>`.
//!
//! Generics: `W` = L·B; deduced counter widths `CW` (the window's), `GW` (channel group,
//! C/L − 1), `PW` (kernel position, k² − 1) ([`PoolConfig::counter_bits`]). Run-time
//! ([`PoolConfig`]): L, B, signedness, sizes, k, s.
//!
//! Cycles per frame: max(H·W·C/L, OH·OW·k²·C/L) (the window's) when H ≥ k + s, else their
//! sum. Latency: the window's + (k² − 1)·C/L + 2. Memory: the window's line buffer
//! (min(k + s, H + k − 1)·W·C·B bits) + C·B accumulator bits.

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{Formula, Memory};
use crate::compile::timing::StreamTiming;
use crate::engines::sliding_window::line_buffer_logic;
use crate::engines::sliding_window::{
    LineRam, OutQueue, SlidingWindow, WindowConfig, WindowTiming, MAX_CW,
};
use crate::engines::sumpool::ReduceTiming;
use crate::engines::{Carries, EngineSpec};
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// Parameters of a [`MaxPool`] (run-time values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bits per element (1 for binary).
    pub bits: usize,
    /// Lanes per beat, in and out (divides C).
    pub lanes: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Integers are two's complement (false: unsigned; binary is unsigned 1-bit).
    pub signed: bool,
}

/// The most lanes of `bits`-bit elements a [`MaxPool`] takes: its beats go through a
/// window (SIMD = lanes, no pad flag), whose beat is at most
/// [`MAX_BEAT`](crate::engines::sliding_window::MAX_BEAT) bits.
pub fn max_lanes(bits: usize) -> usize {
    crate::engines::sliding_window::max_simd(bits, false)
}

impl PoolConfig {
    /// The window the pool reads through.
    pub fn window(&self) -> WindowConfig {
        WindowConfig {
            bits: self.bits,
            in_lanes: self.lanes,
            simd: self.lanes,
            channels: self.channels,
            height: self.height,
            width: self.width,
            kernel: self.kernel,
            stride: self.stride,
            padding: 0,
            pad_value: 0,
            binary: false,
        }
    }
    /// The counter widths, the const generics `CW`, `GW`, `PW` of [`MaxPool`]: the
    /// window's ([`WindowConfig::counter_bits`]), the channel-group counter and
    /// accumulator address (C/L − 1) and the kernel-position counter (k² − 1).
    pub fn counter_bits(&self) -> [usize; 3] {
        [
            self.window().counter_bits(),
            crate::bits_to_hold((self.channels / self.lanes - 1) as u64),
            crate::bits_to_hold((self.kernel * self.kernel - 1) as u64),
        ]
    }
    pub fn out_hw(&self) -> (usize, usize) {
        self.window().out_hw()
    }
    pub fn cycles_per_frame(&self) -> u64 {
        self.window().cycles_per_frame()
    }
    pub fn latency(&self) -> u64 {
        self.window().latency()
            + ((self.kernel * self.kernel - 1) * self.channels / self.lanes) as u64
            + 2
    }
}

/// One lane of the max: `out` holds max(a, b) of lane `off` (other bits 0).
#[derive(LogicBlock)]
pub struct LaneMax<const W: usize> {
    pub a: Signal<In, Bits<W>>,
    pub b: Signal<In, Bits<W>>,
    pub out: Signal<Out, Bits<W>>,
    av: Signal<Local, Bits<W>>,
    bv: Signal<Local, Bits<W>>,
    off: Constant<Bits<8>>,
    mask: Constant<Bits<W>>,
    sign: Constant<Bits<W>>,
}

impl<const W: usize> LaneMax<W> {
    /// Lane at bit offset `off`, `bits` wide, signed or not.
    pub fn new(off: usize, bits: usize, signed: bool) -> Self {
        assert!(
            off + bits <= W && W <= crate::engines::sliding_window::MAX_BEAT,
            "LaneMax: lane outside the word"
        );
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Self {
            a: Default::default(),
            b: Default::default(),
            out: Default::default(),
            av: Default::default(),
            bv: Default::default(),
            off: Constant::new((off as u64).into()),
            mask: Constant::new(mask.into()),
            sign: Constant::new(if signed { 1u64 << (bits - 1) } else { 0 }.into()),
        }
    }
}

impl<const W: usize> Logic for LaneMax<W> {
    #[hdl_gen]
    fn update(&mut self) {
        // offset binary: flipping the sign bit makes a signed compare unsigned
        self.av.next = ((self.a.val() >> self.off.val()) & self.mask.val()) ^ self.sign.val();
        self.bv.next = ((self.b.val() >> self.off.val()) & self.mask.val()) ^ self.sign.val();
        self.out.next = (self.b.val() >> self.off.val()) & self.mask.val();
        if self.av.val() > self.bv.val() {
            self.out.next = (self.a.val() >> self.off.val()) & self.mask.val();
        }
        self.out.next = self.out.val() << self.off.val();
    }
}

/// Max pooling engine (see the module documentation).
#[derive(LogicBlock)]
pub struct MaxPool<const W: usize, const CW: usize, const GW: usize, const PW: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<W>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<W>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    window: SlidingWindow<W, W, CW>,
    acc: LineRam<W, GW>,
    queue: OutQueue<W>,
    lanes: Vec<LaneMax<W>>,
    cg: DFF<Bits<GW>>,
    pos: DFF<Bits<PW>>,
    x1: DFF<Bits<W>>,
    a1: DFF<Bits<GW>>,
    v1: DFF<Bit>,
    first1: DFF<Bit>,
    last1: DFF<Bit>,
    hz1: DFF<Bit>,
    wlast: DFF<Bits<W>>,
    rin_ready: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    occ: Signal<Local, Bits<3>>,
    operand: Signal<Local, Bits<W>>,
    lmax: Signal<Local, Bits<W>>,
    res: Signal<Local, Bits<W>>,
    c_cgl: Constant<Bits<GW>>,
    c_posl: Constant<Bits<PW>>,
    c_cg1: Constant<Bit>,
    _cfg: PoolConfig,
}

impl<const W: usize, const CW: usize, const GW: usize, const PW: usize> MaxPool<W, CW, GW, PW> {
    /// Panics (naming the block) on inconsistent parameters.
    pub fn new(cfg: &PoolConfig) -> Self {
        assert!(cfg.bits >= 1, "MaxPool: bits must be at least 1");
        assert!(
            cfg.lanes >= 1 && cfg.channels % cfg.lanes == 0,
            "MaxPool: lanes {} must divide C = {}",
            cfg.lanes,
            cfg.channels
        );
        assert_eq!(W, cfg.lanes * cfg.bits, "MaxPool: W must be lanes * bits");
        assert!(
            cfg.lanes <= max_lanes(cfg.bits),
            "MaxPool: W = {W} > {} not supported",
            crate::engines::sliding_window::MAX_BEAT
        );
        assert!(
            cfg.kernel >= 1
                && cfg.stride >= 1
                && cfg.kernel <= cfg.height
                && cfg.kernel <= cfg.width,
            "MaxPool: kernel {} / stride {} do not fit {}x{}",
            cfg.kernel,
            cfg.stride,
            cfg.height,
            cfg.width
        );
        let [cw, gw, pw] = cfg.counter_bits();
        assert!(
            CW >= cw && GW >= gw && PW >= pw && GW <= MAX_CW && PW <= MAX_CW,
            "MaxPool: counter bits CW, GW, PW = {CW}, {GW}, {PW}, but this configuration \
             needs {cw}, {gw}, {pw} (at most {MAX_CW})"
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
            window: SlidingWindow::new(&cfg.window()),
            acc: LineRam::new(cg),
            queue: Default::default(),
            lanes: (0..cfg.lanes)
                .map(|l| LaneMax::new(l * cfg.bits, cfg.bits, cfg.signed && cfg.bits > 1))
                .collect(),
            cg: Default::default(),
            pos: Default::default(),
            x1: Default::default(),
            a1: Default::default(),
            v1: Default::default(),
            first1: Default::default(),
            last1: Default::default(),
            hz1: Default::default(),
            wlast: Default::default(),
            rin_ready: Default::default(),
            take: Default::default(),
            occ: Default::default(),
            operand: Default::default(),
            lmax: Default::default(),
            res: Default::default(),
            c_cgl: Constant::new(((cg - 1) as u64).into()),
            c_posl: Constant::new(((cfg.kernel * cfg.kernel - 1) as u64).into()),
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

impl<const W: usize, const CW: usize, const GW: usize, const PW: usize> Logic
    for MaxPool<W, CW, GW, PW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, cg, pos, x1, a1, v1, first1, last1, hz1, wlast);
        self.window.clock.next = self.clock.val();
        self.window.reset.next = self.reset.val();
        self.window.in_data.next = self.in_data.val();
        self.window.in_valid.next = self.in_valid.val();
        self.in_ready.next = self.window.in_ready.val();
        self.acc.clock.next = self.clock.val();
        self.queue.clock.next = self.clock.val();
        self.queue.reset.next = self.reset.val();
        self.queue.out_ready.next = self.out_ready.val();
        self.out_data.next = self.queue.out_data.val();
        self.out_valid.next = self.queue.out_valid.val();
        // take a window beat unless it ends a window and the queue may be full
        // 3 bits: a full queue (3) and a beat in flight make 4, not 0
        self.occ.next = bit_cast::<3, 2>(self.queue.count.val());
        if self.v1.q.val() {
            self.occ.next = bit_cast::<3, 2>(self.queue.count.val()) + 1;
        }
        self.rin_ready.next = (self.pos.q.val() != self.c_posl.val()) | (self.occ.val() <= 2);
        self.window.out_ready.next = self.rin_ready.val();
        self.take.next = self.window.out_valid.val() & self.rin_ready.val();
        self.acc.read_address.next = self.cg.q.val();
        self.v1.d.next = self.take.val();
        self.x1.d.next = self.window.out_data.val();
        self.a1.d.next = self.cg.q.val();
        self.first1.d.next = self.pos.q.val() == 0;
        self.last1.d.next = self.pos.q.val() == self.c_posl.val();
        self.hz1.d.next = self.c_cg1.val() & self.v1.q.val();
        if self.take.val() {
            self.cg.d.next = self.cg.q.val() + 1;
            if self.cg.q.val() == self.c_cgl.val() {
                self.cg.d.next = 0.into();
                self.pos.d.next = self.pos.q.val() + 1;
                if self.pos.q.val() == self.c_posl.val() {
                    self.pos.d.next = 0.into();
                }
            }
        }
        // stage 1: combine with the accumulator
        self.operand.next = self.acc.read_data.val();
        if self.hz1.q.val() {
            self.operand.next = self.wlast.q.val();
        }
        for i in 0..self.lanes.len() {
            self.lanes[i].a.next = self.operand.val();
            self.lanes[i].b.next = self.x1.q.val();
        }
        self.lmax.next = 0.into();
        for i in 0..self.lanes.len() {
            self.lmax.next = self.lmax.val() | self.lanes[i].out.val();
        }
        self.res.next = self.lmax.val();
        if self.first1.q.val() {
            self.res.next = self.x1.q.val();
        }
        self.wlast.d.next = self.res.val();
        self.acc.write_address.next = self.a1.q.val();
        self.acc.write_data.next = self.res.val();
        self.acc.write_enable.next = self.v1.q.val() & !self.last1.q.val();
        self.queue.push.next = self.v1.q.val() & self.last1.q.val();
        self.queue.push_data.next = self.res.val();
        if self.reset.val() {
            self.cg.d.next = 0.into();
            self.pos.d.next = 0.into();
            self.v1.d.next = false;
            self.acc.write_enable.next = false;
            self.queue.push.next = false;
        }
    }
}

/// MaxPool LUT4: coefficients of [1, io, RAMs, counter bits N = CW + GW + PW, N if the
/// window's words are not a power of two].
const MAXPOOL_LUT: [f64; 5] = [286.379, 5.059, 1.0, 8.231, 3.742];
/// MaxPool DFF: coefficients of [1, io, RAMs, N, N if the window's words are not a power
/// of two].
const MAXPOOL_DFF: [f64; 5] = [100.380, 4.661, 1.0, 3.307, 0.720];

impl EngineSpec for PoolConfig {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(PoolTiming::new(self))
    }
    fn name(&self) -> &'static str {
        "maxpool"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    /// `[W, CW, GW, PW]`.
    fn generics(&self) -> Vec<usize> {
        [vec![self.lanes * self.bits], self.counter_bits().to_vec()].concat()
    }
    fn cycles(&self) -> u64 {
        self.cycles_per_frame()
    }
    fn latency(&self) -> u64 {
        PoolConfig::latency(self)
    }
    /// The window's line buffer and the running maxima.
    fn memory_bits(&self) -> u64 {
        (self.window().memory_bits() + self.channels * self.bits) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        let w = self.window();
        vec![
            Memory::ram(w.out_width(), w.words()),
            // the running maxima of the channel groups
            Memory::ram(self.lanes * self.bits, self.channels / self.lanes),
        ]
    }
    fn logic(&self, ms: &[Memory], io: f64) -> Formula {
        let cw = self.counter_bits().iter().sum();
        line_buffer_logic(&MAXPOOL_LUT, &MAXPOOL_DFF, ms, io, cw)
    }
    fn carries(&self) -> Carries {
        Carries::Named
    }
}

/// The cycle model of a [`MaxPool`]: its window's ([`WindowTiming`]) and its max stage's
/// ([`ReduceTiming`] over k² positions), stepped together; the window's `out_ready` is
/// the stage's, a function of the stage's registers, as in the block.
#[derive(Clone, Debug)]
pub struct PoolTiming {
    window: WindowTiming,
    stage: ReduceTiming,
}

impl PoolTiming {
    /// The state right after reset of the pool `c`.
    pub fn new(c: &PoolConfig) -> Self {
        PoolTiming {
            window: WindowTiming::new(&c.window()),
            stage: ReduceTiming::new(c.channels / c.lanes, c.kernel * c.kernel),
        }
    }
}

impl StreamTiming for PoolTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.window.in_ready(0)
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.stage.valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let take = self.window.out_valid(0) && self.stage.ready();
        self.window.clock(in_fire, &[take]);
        self.stage.clock(take, out_fire[0]);
    }
}

/// Emitter of engine `i` of `d` (a [`PoolConfig`]).
pub fn emit<const W: usize, const CW: usize, const GW: usize, const PW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, cfg) = engine::<PoolConfig>(d, i, &[W, CW, GW, PW]);
    let b = MaxPool::<W, CW, GW, PW>::new(cfg);
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
        MaxPool<W, CW, GW, PW>,
        W,
        W,
        [const W: usize, const CW: usize, const GW: usize, const PW: usize]
    );

    fn check<const W: usize, const CW: usize, const GW: usize, const PW: usize>(
        rng: &mut impl Rng,
        c: PoolConfig,
        frames: usize,
        icarus: bool,
    ) {
        let label = format!("{c:?}");
        // counters exactly as wide as the configuration needs
        assert_eq!([CW, GW, PW], c.counter_bits(), "counter bits of {label}");
        let binary = c.bits == 1;
        let net = Network::new(
            "mp".into(),
            InputSpec {
                shape: Shape::map(c.channels, c.height, c.width),
                bits: c.bits as u32,
                signed: c.signed,
            },
            vec![Layer {
                name: "pool".into(),
                inputs: vec!["input".into()],
                op: Op::MaxPool {
                    kernel: c.kernel,
                    stride: c.stride,
                },
            }],
            "pool".into(),
        )
        .unwrap();
        let (oh, ow) = c.out_hw();
        let n = c.channels * c.height * c.width;
        let mut beats = vec![];
        let mut want = vec![];
        for _ in 0..frames {
            let x: Vec<i64> = (0..n)
                .map(|_| {
                    if binary {
                        if rng.gen() {
                            1
                        } else {
                            -1
                        }
                    } else if c.signed {
                        rng.gen_range(-(1i64 << (c.bits - 1))..(1i64 << (c.bits - 1)))
                    } else {
                        rng.gen_range(0..(1i64 << c.bits))
                    }
                })
                .collect();
            beats.extend(beats_of(
                &x, c.channels, c.height, c.width, c.lanes, c.bits, binary,
            ));
            let y = reference::eval(&net, &x);
            want.extend(beats_of(&y, c.channels, oh, ow, c.lanes, c.bits, binary));
        }
        let uut = MaxPool::<W, CW, GW, PW>::new(&c);
        let (cpf, lat) = (uut.cycles_per_frame(), uut.latency());
        let make = || MaxPool::<W, CW, GW, PW>::new(&c);
        let name = format!("maxpool_{W}_{}x{}x{}", c.channels, c.height, c.width);
        let icarus = icarus.then_some(name.as_str());
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
            interval <= cpf + cpf / 8 + 2 * c.width as u64 + 8,
            "frame interval {interval} vs {cpf}: {label}"
        );
    }

    fn cfg(
        bits: usize,
        lanes: usize,
        chw: (usize, usize, usize),
        k: usize,
        s: usize,
        signed: bool,
    ) -> PoolConfig {
        PoolConfig {
            bits,
            lanes,
            channels: chw.0,
            height: chw.1,
            width: chw.2,
            kernel: k,
            stride: s,
            signed,
        }
    }

    #[test]
    fn matches_the_model_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("maxpool");
        check::<2, 6, 1, 2>(&mut rng, cfg(1, 2, (4, 6, 6), 2, 2, false), 3, true);
        check::<1, 6, 1, 2>(&mut rng, cfg(1, 1, (1, 5, 7), 2, 2, false), 3, false); // C = L: forwarding
        check::<4, 6, 1, 4>(&mut rng, cfg(1, 4, (8, 7, 5), 3, 2, false), 3, false); // overlapping
        check::<8, 6, 1, 2>(&mut rng, cfg(4, 2, (4, 4, 6), 2, 1, true), 3, true); // signed
        check::<6, 6, 1, 4>(&mut rng, cfg(3, 2, (2, 6, 6), 3, 3, false), 3, false); // unsigned, C = L
        check::<16, 7, 2, 4>(&mut rng, cfg(8, 2, (6, 4, 4), 4, 1, true), 3, false); // kernel = map
                                                                                    // channel-group and kernel-position counters at 2^GW − 1, 2^PW − 1; a 28×28 map
        check::<1, 7, 2, 2>(&mut rng, cfg(1, 1, (4, 6, 6), 2, 2, false), 3, true);
        check::<1, 8, 1, 2>(&mut rng, cfg(1, 1, (1, 28, 28), 2, 2, false), 3, false);
    }

    /// yosys figures of a pool at its own counter widths.
    fn synth<const W: usize, const CW: usize, const GW: usize, const PW: usize>(
        name: &str,
        c: &PoolConfig,
    ) {
        let mut u = MaxPool::<W, CW, GW, PW>::new(c);
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        let s = ice40_stats(name, &v, "top").unwrap();
        println!(
            "MaxPool<{W}, {CW}, {GW}, {PW}> {}x{}/{} over {}x{}x{}, {}-bit, cycles/frame {}: {s}",
            c.kernel,
            c.kernel,
            c.stride,
            c.channels,
            c.height,
            c.width,
            c.bits,
            c.cycles_per_frame()
        );
    }

    #[test]
    fn synthesises_a_2x2_pool_over_16x32x32() {
        // binary, 16 lanes; at the counter widths it needs and, for comparison, at 16 bits
        let c = cfg(1, 16, (16, 32, 32), 2, 2, false);
        assert_eq!(c.counter_bits(), [8, 1, 2]);
        synth::<16, 8, 1, 2>("maxpool_16x32x32", &c);
        synth::<16, 16, 16, 16>("maxpool_16x32x32_cw16", &c);
        // 4-bit unsigned, 4 lanes
        let c = cfg(4, 4, (16, 32, 32), 2, 2, false);
        assert_eq!(c.counter_bits(), [10, 2, 2]);
        synth::<16, 10, 2, 2>("maxpool_4b", &c);
        // binary 1x28x28
        let c = cfg(1, 1, (1, 28, 28), 2, 2, false);
        assert_eq!(c.counter_bits(), [8, 1, 2]);
        synth::<1, 8, 1, 2>("maxpool_1x28x28", &c);
        synth::<1, 16, 16, 16>("maxpool_1x28x28_cw16", &c);
    }
}
