//! Resource estimate: iCE40 LUT4s, flip-flops and `SB_RAM40_4K` block RAMs of a
//! [`Design`], per engine and in total, without running yosys (microseconds per design,
//! so the budget search of [`crate::budget`] can try every folding).
//!
//! The figures stand for what yosys 0.23 `synth_ice40` makes of each engine's Verilog;
//! a whole design is the sum of its engines plus the top's frame counter (`TOP`),
//! which yosys confirms within ~1 % (TFC-W1A1, 784 cycles: 1825 estimated, 1807 LUT4 in
//! yosys on the whole design; 20 = 20 BRAM).
//!
//! **Block RAMs: exact.** [`engine_memories`] lists every memory of an engine and
//! [`ice40_blocks`] re-computes yosys's own decision (`memory_libmap` with
//! `ice40/brams.txt`, read in yosys's source and checked on its debug output):
//!
//! ```text
//!  memory of W bits × D words (rust-hdl RAM/SyncROM: D = 2^address bits;
//!                              LineRam, FrameRam: the real depth)
//!  block cost = min over the geometries (width, depth) ∈ {2×2048, 4×1024, 8×512, 16×256} of
//!               64·⌈⌈D/depth⌉·W / width⌉                        (blocks)
//!             + ½·(⌈D/depth⌉ − 1)·W  (+ ½·⌈D/depth⌉ for a RAM)    (read mux, write decode)
//!             + 2·emulation   (ROM 1; RAM 7: read-first + collision bypass; FrameRam 1)
//!  logic cost = ⌊W·D/16⌋ (ROM)  or  W·D (RAM)
//!  block RAM with that geometry's block count when block cost < logic cost
//! ```
//! So a ROM goes to block RAM from about 1 kbit (weights of 64 words × 64 bits stay in
//! logic: 4 blocks cost 258 ≥ 256), a RAM from 79 bits. Checked on all 671 engines below:
//! 0 differences.
//!
//! **Memories left in logic**: a ROM costs per bit column [`ROM_BIT_LUTS`] LUT4s (random
//! contents, measured on standalone ROMs: 1 up to 16 words, then about D/9), a RAM
//! `W·⌈2(D−1)/3⌉ + 1.3·D` LUT4 (read mux, write decode) and `W·(D+1)` DFF; a RAM in block
//! RAM adds yosys's bypass, about `W + A/2` LUT4 and `W + A + 1` DFF (`memory_logic`).
//!
//! **Logic per engine**: a linear formula per engine kind over a few structural features,
//! its coefficients fitted (non-negative least squares, weights 1/√LUT4) to synthesised
//! engines; the constants below list the features. In words (LUT4):
//!
//! | engine | LUT4 ≈ |
//! |---|---|
//! | mvtu | 24 + 36·PE + 2.9·L (L = PE·SIMD lanes; 2.3·L with 4-word, 1.1·L with 2-word weight ROMs, which yosys folds into the XNORs) + 1.6·PE·A + 0.86·weight ROM + 0.68·threshold ROMs + 1.34·RAMs |
//! | mvtu_int | 63 + 36·PE + 3.5·L (L = PE·SIMD·IB) + 0.53·PE·A + 0.95·weight ROM + 0.85·threshold ROMs + 1.40·RAMs |
//! | threshold | 10 + 1.06·threshold ROMs + 2.7·queue RAM (one copy) |
//! | lanes (general) | 267 + 9.4·BW + 4.2·BW if IB is not a power of two (BW buffer bits; [`lane_converter`]) |
//! | lanes (ratio) | 4.2 + 0.96·select bits + 1.6·JB + 1.7·FB (if the frame's last beat is short) + 0.13·masked bits; DFF counted exactly ([`ratio_lane_converter`]) |
//! | fifo | 19 + W + 5.7·A + RAM |
//! | window | −4 + 3.5·io + line RAM + 37.7·CW + 13.8·CW if its words are not a power of two (CW: counter bits, [`WindowConfig::counter_bits`](crate::sliding_window::WindowConfig::counter_bits)) |
//! | maxpool | 286 + 5.1·io + RAMs + 8.2·N + 3.7·N if its window's words are not a power of two (N = CW + GW + PW counter bits) |
//! | sumpool, reorder, fork, add | 36 + 4.4·io + 1.4·(GW + PW), 45 + 2.4·A + 2.4·B, 14 + 0.4·W·ways, 5.5 + 0.57·OW + 1.17·(inputs − 1)·OW |
//!
//! **Measured error** against yosys 0.23 `synth_ice40` of 671 engines from 55 designs
//! (TFC-W1A1 at 10 foldings, 36 random networks at their default folding, 4 conv/maxpool
//! networks at 4 targets each); a design is the sum of its engines:
//!
//! | | LUT4 mean / 90th pct. / worst | DFF mean / worst | BRAM |
//! |---|---|---|---|
//! | per engine (all 671) | 5.8 % / 14.0 % / 52 % (an adder of 40 LUT4; mvtu: 47 %, 122 LUT4) | 7.3 % / 48 % | exact |
//! | mvtu (115), mvtu_int (65) | 9.9 % / 21 % / 47 %, 7.3 % / 15 % / 25 % | 13 %, 12 % | exact |
//! | lanes (134), fifo (159) | 6.4 % / 14 % / 36 %, 2.9 % / 6.7 % / 11 % | 5.4 %, 4.9 % | exact |
//! | per design (55) | 3.2 % mean, 12.5 % worst, bias −0.9 % | 4.5 % / 16.5 % | exact |
//! | hold-out: fitted on the first 22 designs, tried on the other 33 | engines 7.5 %, designs 5.9 % mean, 31 % worst (a maxpool network: one maxpool in the first set) | 6.0 % / 21 % | exact |
//!
//! The window and pool formulas were re-fitted when their counters became exactly as
//! wide as their configuration needs (they were 16 bits, the pools' pixel counter 32):
//! on 8 windows (CW 4–16, 2×2 over 1×4×3 to 3×3 over 16×32×32), 5 maxpools and 2
//! sumpools synthesised by the block tests, within 7 % each (the table above
//! stands for the former fit).
//!
//! The pipelined matrix-vector, threshold and FIFO engines (registered block-RAM reads,
//! pipelined popcount, registered flags) were re-fitted on their engines of TFC-W1A1 and
//! `random-3` only (12 engines; the constants' comments say which coefficients); the
//! table above stands for the former engines.
//!
//! The test `tests::estimate_matches_yosys_on_engines` synthesises twelve engines of
//! TFC-W1A1 and `random-3` and fails beyond 25 % per engine or 10 % in sum.
//!
//! Re-fitting: every coefficient is a named constant below. The general lane converter
//! (318–1653 LUT4, now only used when neither lane count divides the other) is one
//! function, [`lane_converter`], with its own two constants; the ratio converter
//! (6–145 LUT4) is [`ratio_lane_converter`], fitted on the 11 cases of its
//! `synthesises_small` test. The error table below predates the ratio converter
//! (its `lanes` row is the general converter's).

use crate::design::{Design, Engine, EngineKind};
use std::ops::{Add, AddAssign};

/// iCE40 cells of an engine or a design.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub lut4: u64,
    pub dff: u64,
    /// `SB_RAM40_4K` (4 kbit)
    pub bram: u64,
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            lut4: self.lut4 + o.lut4,
            dff: self.dff + o.dff,
            bram: self.bram + o.bram,
        }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

impl std::fmt::Display for Cost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} LUT4, {} DFF, {} BRAM",
            self.lut4, self.dff, self.bram
        )
    }
}

/// The estimate of a whole design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// per engine, in [`Design::engines`] order
    pub engines: Vec<Cost>,
    /// the structural top (frame counter of `m_axis_tlast`)
    pub top: Cost,
    pub total: Cost,
}

/// How a memory's ports behave, which decides what yosys emulates around a block RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// `SyncROM`: one registered read port, initialised contents.
    Rom,
    /// rust-hdl `RAM` or `LineRam`: one write and one registered read port on one clock,
    /// old data on a collision (yosys adds read-first emulation and a bypass).
    Ram,
    /// `FrameRam`: like `Ram` but marked `no_rw_check` (nothing emulated).
    RamNoRwCheck,
}

/// One memory (a yosys `$mem` cell) of an engine, `count` identical copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub width: usize,
    pub depth: usize,
    pub kind: MemKind,
    pub count: usize,
    /// what the memory holds, for the logic formulas
    pub role: Role,
}

/// What a memory is for inside its engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Weights,
    Thresholds,
    /// anything else: buffers, queues, bias
    Other,
}

/// SB_RAM40_4K geometries (data bits, words).
const ICE40_GEOMETRIES: [(usize, usize); 4] = [(2, 2048), (4, 1024), (8, 512), (16, 256)];

/// Block RAMs yosys 0.23's `memory_libmap` gives one copy of `m` on iCE40, or `None`
/// when it is cheaper in logic (see the module documentation).
pub fn ice40_blocks(m: &Memory) -> Option<u64> {
    // emulation score: 1 for an unshared read port, + 3 read-first + 3 transparency
    let emu = match m.kind {
        MemKind::Rom | MemKind::RamNoRwCheck => 1.0,
        MemKind::Ram => 7.0,
    };
    let best = ICE40_GEOMETRIES
        .iter()
        .map(|&(width, words)| {
            let rows = m.depth.div_ceil(words);
            let blocks = (rows * m.width).div_ceil(width);
            let mux = 0.5 * ((rows - 1) * m.width) as f64;
            let demux = if m.kind != MemKind::Rom && rows > 1 {
                0.5 * rows as f64
            } else {
                0.0
            };
            (
                64.0 * blocks as f64 + mux + demux + 2.0 * emu,
                blocks as u64,
            )
        })
        // the first of equal costs, as yosys
        .fold(None, |b: Option<(f64, u64)>, c| match b {
            Some(b) if b.0 <= c.0 => Some(b),
            _ => Some(c),
        })
        .expect("four geometries");
    let bits = (m.width * m.depth) as f64;
    // yosys compares against the logic cost truncated to an integer
    let logic = match m.kind {
        MemKind::Rom => (bits / 16.0).floor(),
        _ => bits,
    };
    (best.0 < logic).then_some(best.1)
}

/// LUT4s per bit column of a ROM in logic with 2^a words (random contents), measured.
pub const ROM_BIT_LUTS: [f64; 11] = [0.0, 0.5, 0.75, 1.0, 1.0, 3.3, 6.9, 14.0, 26.0, 60.0, 146.0];

fn clog2(n: usize) -> usize {
    crate::design::addr_bits(n)
}

/// LUT4s and DFFs of memory `m` (all copies) outside block RAM: the logic of a memory
/// left in logic, or the bypass yosys adds around a RAM in block RAM.
fn memory_logic(m: &Memory) -> (f64, f64) {
    let (w, d, n) = (m.width as f64, m.depth, m.count as f64);
    match (ice40_blocks(m), m.kind) {
        (Some(_), MemKind::Ram) => (
            n * (w + clog2(d) as f64 / 2.0),
            n * (w + clog2(d) as f64 + 1.0),
        ),
        (Some(_), _) => (0.0, 0.0),
        (None, MemKind::Rom) => {
            let a = clog2(d).min(ROM_BIT_LUTS.len() - 1);
            (n * w * ROM_BIT_LUTS[a], n * w)
        }
        (None, _) => {
            let mux = (2 * (d - 1)).div_ceil(3) as f64;
            (n * (w * mux + 1.3 * d as f64), n * w * (d as f64 + 1.0))
        }
    }
}

/// Flip-flops of a [`PopcountPipe`](crate::popcount::PopcountPipe) of `n` bits after
/// yosys: its level-2 nodes of min(3, W) bits and level-4 nodes of min(5, W) bits
/// (W = clog2(n + 1)).
fn popcount_pipe_dff(n: usize) -> usize {
    let w = crate::clog2_plus1(n as u64);
    n.div_ceil(4) * w.min(3) + n.div_ceil(16) * w.min(5)
}

fn pow2(bits: usize) -> usize {
    1usize << bits
}

/// The memories of engine `e` of `d` (one entry per kind of memory, with its count).
pub fn engine_memories(d: &Design, e: &Engine) -> Vec<Memory> {
    let g = &e.generics;
    let mem = |width: usize, depth: usize, kind: MemKind, count: usize, role: Role| Memory {
        width,
        depth,
        kind,
        count,
        role,
    };
    match &e.kind {
        EngineKind::Mvtu { threshold, .. } | EngineKind::MvtuInt { threshold, .. } => {
            let m = MacGenerics::of(e);
            let pe = e.fold.pe;
            let mut v = vec![
                // per PE its weights; the input replay buffer; the result queue
                // a deep ROM in logic is split into banks of 64 words (WeightMemory)
                mem(
                    m.simd,
                    pow2(m.wa) / crate::weight_memory::weight_banks(m.simd, m.wa),
                    MemKind::Rom,
                    pe * crate::weight_memory::weight_banks(m.simd, m.wa),
                    Role::Weights,
                ),
                mem(m.iw, pow2(m.ba), MemKind::Ram, 1, Role::Other),
                mem(
                    m.ow,
                    crate::mvtu::FIFO_DEPTH,
                    MemKind::Ram,
                    crate::mvtu::queue_copies(m.ow),
                    Role::Other,
                ),
            ];
            if threshold.is_some() {
                // per PE K threshold words and the flip bits, per neuron fold
                v.push(mem(
                    m.u,
                    pow2(m.ca),
                    MemKind::Rom,
                    pe * m.k,
                    Role::Thresholds,
                ));
                v.push(mem(1, pow2(m.ca), MemKind::Rom, pe, Role::Thresholds));
            } else {
                v.push(mem(m.ob, pow2(m.ca), MemKind::Rom, pe, Role::Other));
            }
            v
        }
        EngineKind::Threshold { .. } => {
            // [IB, IW, Y, U, K, B, CA, OW]
            let (u, k, ca, ow) = (g[3], g[4], g[6], g[7]);
            let l = e.fold.pe;
            vec![
                mem(u, pow2(ca), MemKind::Rom, l * k, Role::Thresholds),
                mem(1, pow2(ca), MemKind::Rom, l, Role::Thresholds),
                mem(
                    ow,
                    crate::mvtu::FIFO_DEPTH,
                    MemKind::Ram,
                    crate::mvtu::queue_copies(ow),
                    Role::Other,
                ),
            ]
        }
        EngineKind::Fifo { .. } => vec![mem(g[0], pow2(g[1]), MemKind::Ram, 1, Role::Other)],
        EngineKind::Window(cfg) => vec![mem(
            cfg.out_width(),
            cfg.words(),
            MemKind::Ram,
            1,
            Role::Other,
        )],
        EngineKind::MaxPool(cfg) => {
            let w = cfg.window();
            vec![
                mem(w.out_width(), w.words(), MemKind::Ram, 1, Role::Other),
                // the running maxima of the channel groups
                mem(
                    cfg.lanes * cfg.bits,
                    cfg.channels / cfg.lanes,
                    MemKind::Ram,
                    1,
                    Role::Other,
                ),
            ]
        }
        EngineKind::SumPool(cfg) => vec![mem(
            g[1],
            cfg.channels / cfg.lanes,
            MemKind::Ram,
            1,
            Role::Other,
        )],
        EngineKind::Reorder { c, h, w } => {
            let bits = d.streams[e.inputs[0]].elem.bits;
            vec![mem(
                bits,
                2 * c * h * w,
                MemKind::RamNoRwCheck,
                1,
                Role::Other,
            )]
        }
        EngineKind::Add { .. } | EngineKind::Fork { .. } | EngineKind::Lanes { .. } => vec![],
    }
}

/// The widths of a matrix-vector engine, read from its generics (`Mvtu`:
/// `[SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW]`; `MvtuInt` has `IB` after SIMD).
struct MacGenerics {
    simd: usize,
    ib: usize,
    iw: usize,
    a: usize,
    wa: usize,
    ba: usize,
    ca: usize,
    u: usize,
    k: usize,
    ob: usize,
    ow: usize,
}

impl MacGenerics {
    fn of(e: &Engine) -> MacGenerics {
        let g = &e.generics;
        let int = matches!(e.kind, EngineKind::MvtuInt { .. }) as usize;
        MacGenerics {
            simd: g[0],
            ib: if int == 1 { g[1] } else { 1 },
            iw: g[1 + int],
            a: g[3 + int],
            wa: g[5 + int],
            ba: g[6 + int],
            ca: g[7 + int],
            u: g[8 + int],
            k: g[9 + int],
            ob: g[11 + int],
            ow: g[12 + int],
        }
    }
}

/// What the estimate stands for, written into manifests.
pub const MODEL: &str =
    "iCE40 cells after yosys 0.23 synth_ice40, estimated (bnnforge_hdl::resources)";

/// A LUT4 and a DFF formula: `c0 + Σ coefficient · feature`.
type Formula = (f64, f64);

/// LUT4s and DFFs of a lane converter: `IB`-bit elements, `IL` → `OL` lanes, a buffer of
/// `BW` bits (`C·IB`). Dominated by the buffer's lane shifters (≈ 9 LUT4 per buffer bit,
/// half as much again when IB is not a power of two and lane offsets need a multiplier)
/// and the two 24-bit frame counters (≈ 170 carry cells and 270 LUT4 whatever the width).
/// Kept alone so it can be re-fitted when the converter changes.
pub fn lane_converter(ib: usize, iw: usize, ow: usize, bw: usize) -> Formula {
    let bw = bw as f64;
    let odd = if ib.is_power_of_two() { 0.0 } else { 1.0 };
    (
        LANES_LUT[0] + LANES_LUT[1] * bw + LANES_LUT[2] * bw * odd,
        LANES_DFF[0] + LANES_DFF[1] * bw + LANES_DFF[2] * (iw + ow) as f64,
    )
}

/// LUT4s and DFFs of a ratio lane converter: `IB`-bit elements, `IL` → `OL` lanes (one
/// a multiple m of the other), frames of `elements`. Only the frame's last wide beat can
/// differ from the others (r < m narrow beats, or a partial last input beat); when it
/// does not, yosys drops the frame counter. DFFs are counted structurally (exact on the
/// 11 cases measured): widening gathers OW − IW bits beside the OW-bit output register
/// (plus IW bits and a flag when r = 1), narrowing holds IW bits beside it; then the
/// valid flags, the beat counter (JB bits) and, when the last beat is special, the
/// frame counter (FB bits). LUT4s: the select bits (narrowing 2 per input bit; widening
/// the output bits that differ on a short last beat), the counters, the masked lanes.
pub fn ratio_lane_converter(ib: usize, il: usize, ol: usize, elements: usize) -> Formula {
    let [_, iw, ow, jb, fb] = crate::ratio_lane_converter::ratio_generics(ib, il, ol, elements);
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

/// Ratio lane converter LUT4: coefficients of [1, select bits, JB, FB if the frame's
/// last beat is special, masked bits]; fitted on 11 cases (1 → 16 … 64 → 16 lanes,
/// 1 to 8-bit elements; within 10 %, most within 4 %).
const RATIO_LUT: [f64; 5] = [4.216, 0.963, 1.619, 1.719, 0.133];

/// Lane converter: LUT4 = c + a·BW + b·BW·[IB not a power of two].
const LANES_LUT: [f64; 3] = [267.100, 9.420, 4.167];
/// Lane converter: DFF = c + a·BW + b·(IW + OW).
const LANES_DFF: [f64; 3] = [64.904, 1.266, 0.000];

// ---- fitted coefficients (see the module documentation for the data)

/// Mvtu LUT4: coefficients of [1, PE, lanes (weights ≥ 8 words), lanes (4 words), lanes (2 words), PE·A, weight ROM, threshold ROMs, RAMs].
/// The first two re-fitted for the pipelined engine (registered block-RAM reads,
/// registered issue flags) on 6 engines of TFC-W1A1 and `random-3`: about 36 LUT4 per
/// PE (the registered read enables and the lane's output muxes), the other
/// coefficients kept from the 671-engine fit.
const MVTU_LUT: [f64; 9] = [
    23.600, 36.200, 2.896, 2.322, 1.122, 1.598, 0.862, 0.675, 1.338,
];
/// Mvtu DFF: coefficients of [1, PE·A, PE·clog2(SIMD+1), ROMs, RAMs, IW+OW, PE·K·U,
/// PE·(SIMD + popcount pipeline bits)]. The pipelined engine registers each PE's
/// weight word (SIMD), its popcount every two adder levels ([`popcount_pipe_dff`]) and
/// its threshold words (K·U) once more; the last two coefficients and the constant
/// re-fitted on the 6 engines above (within 21 %, most within 5 %).
const MVTU_DFF: [f64; 8] = [78.718, 2.769, 1.195, 0.000, 0.939, 1.725, 1.432, 1.330];
/// MvtuInt LUT4: coefficients as [`MVTU_LUT`]; the first two re-fitted on 2 engines
/// (the per-PE share taken from the binary engine).
const MVTU_INT_LUT: [f64; 9] = [
    62.800, 36.200, 3.453, 3.013, 0.595, 0.532, 0.953, 0.854, 1.396,
];
/// MvtuInt DFF: coefficients as [`MVTU_DFF`] (its PEs have no popcount pipeline, so the
/// last feature is PE·SIMD); the registered weight and threshold words' share and the
/// constant fitted on 2 engines.
const MVTU_INT_DFF: [f64; 8] = [51.737, 2.265, 2.907, 0.096, 1.356, 0.284, 1.630, 1.630];
/// ThresholdEngine LUT4: coefficients of [1, threshold ROMs, queue RAM (one copy)].
/// Re-fitted on 4 engines (TFC-W1A1's and `random-3`'s, within 1 %) for the pipelined
/// compare (registered threshold reads and input) and the queue read from two copies
/// (their write port is shared, so one copy is counted).
const THRESHOLD_LUT: [f64; 3] = [10.390, 1.064, 2.689];
/// ThresholdEngine DFF: coefficients of [1, L·K·U, threshold ROMs, queue RAM (one
/// copy)]; the threshold words are registered on their way to the compare (≈ 2.4 DFF
/// per threshold bit). Re-fitted on the same 4 engines (within 17 %): yosys merges the
/// copies' identical storage flip-flops.
const THRESHOLD_DFF: [f64; 4] = [43.858, 2.439, 0.000, 0.084];
/// StreamFifo LUT4: coefficients of [1, W, A, RAM]; the constant raised by 9 for the
/// flags kept beside the count (measured on 4 FIFOs of TFC-W1A1 and `random-3`).
const FIFO_LUT: [f64; 4] = [18.712, 1.003, 5.651, 1.007];
/// StreamFifo DFF: coefficients of [1, W, A, RAM]; the constant raised by 11 for the
/// registered count flags (same 4 FIFOs, within 8 %).
const FIFO_DFF: [f64; 4] = [14.887, 2.615, 3.219, 0.821];
/// SlidingWindow LUT4: coefficients of [1, io, line RAM, counter bits CW, CW if the
/// words are not a power of two] (the RAM's coefficient is fixed at 1).
const WINDOW_LUT: [f64; 5] = [-4.230, 3.475, 1.0, 37.723, 13.840];
/// SlidingWindow DFF: coefficients of [1, io, line RAM, CW, CW if the words are not a
/// power of two].
const WINDOW_DFF: [f64; 5] = [12.283, 2.718, 1.0, 12.048, 3.086];
/// MaxPool LUT4: coefficients of [1, io, RAMs, counter bits N = CW + GW + PW, N if the
/// window's words are not a power of two].
const MAXPOOL_LUT: [f64; 5] = [286.379, 5.059, 1.0, 8.231, 3.742];
/// MaxPool DFF: coefficients of [1, io, RAMs, N, N if the window's words are not a power
/// of two].
const MAXPOOL_DFF: [f64; 5] = [100.380, 4.661, 1.0, 3.307, 0.720];
/// SumPool LUT4: coefficients of [1, io, RAM, counter bits GW + PW] (the first three
/// fitted on 5 engines, all with C = L, at 16 + 32 counter bits; the counters' share
/// from one engine at both widths).
const SUMPOOL_LUT: [f64; 4] = [36.255, 4.414, 1.0, 1.375];
/// SumPool DFF: coefficients of [1, io, RAM, GW + PW].
const SUMPOOL_DFF: [f64; 4] = [18.302, 2.752, 1.0, 1.0];
/// ChwReorder LUT4: coefficients of [1, A, B, RAM].
const REORDER_LUT: [f64; 4] = [44.763, 2.439, 2.355, 0.000];
/// ChwReorder DFF: coefficients of [1, A, B, RAM].
const REORDER_DFF: [f64; 4] = [12.834, 2.787, 1.928, 0.000];
/// StreamFork LUT4: coefficients of [1, W·ways].
const FORK_LUT: [f64; 2] = [13.638, 0.402];
/// StreamFork DFF: coefficients of [1, W·ways].
const FORK_DFF: [f64; 2] = [5.850, 1.162];
/// ResidualAdder LUT4: coefficients of [1, OW, (inputs − 1)·OW].
const ADD_LUT: [f64; 3] = [5.528, 0.566, 1.167];
/// ResidualAdder DFF: coefficients of [1, io].
const ADD_DFF: [f64; 2] = [0.892, 0.881];

/// `Σ c[i]·f[i]`.
fn dot(c: &[f64], f: &[f64]) -> f64 {
    debug_assert_eq!(c.len(), f.len());
    c.iter().zip(f).map(|(a, b)| a * b).sum()
}

/// LUT4s and DFFs of the memories of `ms` with role `role` (all roles when `None`).
fn mem_sum(ms: &[Memory], pick: impl Fn(&Memory) -> bool) -> (f64, f64) {
    ms.iter()
        .filter(|m| pick(m))
        .map(memory_logic)
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The LUT4 and DFF formulas of engine `e` (memories included).
fn logic(d: &Design, e: &Engine) -> Formula {
    let ms = engine_memories(d, e);
    let width = |s: &[usize]| s.iter().map(|&i| d.streams[i].width()).sum::<usize>() as f64;
    let io = width(&e.inputs) + width(&e.outputs);
    let g = &e.generics;
    let pe = e.fold.pe as f64;
    match &e.kind {
        EngineKind::Mvtu { threshold, .. } | EngineKind::MvtuInt { threshold, .. } => {
            let m = MacGenerics::of(e);
            let lanes = pe * (m.simd * m.ib) as f64;
            // weights in a 2- or 4-word ROM are nearly constants, which yosys folds into
            // the XNOR/adder lanes; from 8 words on they are a ROM of their own
            let (deep, four, two) = match m.wa {
                0 | 1 => (0.0, 0.0, lanes),
                2 => (0.0, lanes, 0.0),
                _ => (lanes, 0.0, 0.0),
            };
            let weights = mem_sum(&ms, |x| x.role == Role::Weights);
            let thr = mem_sum(&ms, |x| x.role == Role::Thresholds);
            let other = mem_sum(&ms, |x| x.role == Role::Other && x.kind == MemKind::Ram);
            // banked weights: a 2:1 mux per bank boundary and bit (WeightMemory)
            let banks = crate::weight_memory::weight_banks(m.simd, m.wa) as f64;
            let romw = if m.wa > 2 {
                weights.0 + pe * m.simd as f64 * (banks - 1.0)
            } else {
                0.0
            };
            let pa = pe * m.a as f64;
            let kthr = if threshold.is_some() {
                pe * (m.k * m.u) as f64
            } else {
                0.0
            };
            let lut = [1.0, pe, deep, four, two, pa, romw, thr.0, other.0];
            // registers per PE beside the accumulator: the weight word and, in the
            // binary PE, the popcount pipeline
            let binary = matches!(e.kind, EngineKind::Mvtu { .. });
            let pipe = if binary { popcount_pipe_dff(m.simd) } else { 0 };
            let dff = [
                1.0,
                pa,
                pe * clog2(m.simd + 1) as f64,
                weights.1 + thr.1,
                other.1,
                (m.iw + m.ow) as f64,
                kthr,
                pe * (m.simd + pipe) as f64,
            ];
            if binary {
                (dot(&MVTU_LUT, &lut), dot(&MVTU_DFF, &dff))
            } else {
                (dot(&MVTU_INT_LUT, &lut), dot(&MVTU_INT_DFF, &dff))
            }
        }
        EngineKind::Threshold { .. } => {
            let thr = mem_sum(&ms, |x| x.role == Role::Thresholds);
            // the queue's copies share their write port and their identical storage
            // flip-flops are merged: one copy counted
            let copies = crate::mvtu::queue_copies(g[7]) as f64;
            let q = mem_sum(&ms, |x| x.role == Role::Other);
            let q = (q.0 / copies, q.1 / copies);
            let cmp = pe * (g[4] * g[3]) as f64;
            (
                dot(&THRESHOLD_LUT, &[1.0, thr.0, q.0]),
                dot(&THRESHOLD_DFF, &[1.0, cmp, thr.1, q.1]),
            )
        }
        EngineKind::Lanes { ratio: false, .. } => lane_converter(g[0], g[1], g[2], g[3]),
        EngineKind::Lanes {
            ratio: true,
            elements,
        } => ratio_lane_converter(g[0], g[1] / g[0], g[2] / g[0], *elements),
        EngineKind::Fifo { .. } => {
            let r = mem_sum(&ms, |_| true);
            let f = |ram: f64| [1.0, g[0] as f64, g[1] as f64, ram];
            (dot(&FIFO_LUT, &f(r.0)), dot(&FIFO_DFF, &f(r.1)))
        }
        EngineKind::Window(_) | EngineKind::MaxPool(_) => {
            let r = mem_sum(&ms, |_| true);
            // the line buffer wraps around for free only at a power of two
            let odd = if ms[0].depth.is_power_of_two() {
                0.0
            } else {
                1.0
            };
            // counter bits: the window's CW; the pool's CW + GW + PW
            let (lut, dff, cw) = if matches!(e.kind, EngineKind::Window(_)) {
                (&WINDOW_LUT, &WINDOW_DFF, g[2])
            } else {
                (&MAXPOOL_LUT, &MAXPOOL_DFF, g[1] + g[2] + g[3])
            };
            let cw = cw as f64;
            (
                dot(lut, &[1.0, io, r.0, cw, odd * cw]),
                dot(dff, &[1.0, io, r.1, cw, odd * cw]),
            )
        }
        EngineKind::SumPool(_) => {
            let r = mem_sum(&ms, |_| true);
            let cw = (g[2] + g[3]) as f64;
            (
                dot(&SUMPOOL_LUT, &[1.0, io, r.0, cw]),
                dot(&SUMPOOL_DFF, &[1.0, io, r.1, cw]),
            )
        }
        EngineKind::Reorder { .. } => {
            let r = mem_sum(&ms, |_| true);
            let f = |ram: f64| [1.0, g[1] as f64, g[0] as f64, ram];
            (dot(&REORDER_LUT, &f(r.0)), dot(&REORDER_DFF, &f(r.1)))
        }
        EngineKind::Fork { ways } => {
            let w = (g[0] * ways) as f64;
            (dot(&FORK_LUT, &[1.0, w]), dot(&FORK_DFF, &[1.0, w]))
        }
        EngineKind::Add { kinds } => {
            let ow = width(&e.outputs);
            let adders = (kinds.len() - 1) as f64 * ow;
            (dot(&ADD_LUT, &[1.0, ow, adders]), dot(&ADD_DFF, &[1.0, io]))
        }
    }
}

/// The estimate of one engine of `d`.
pub fn engine_cost(d: &Design, e: &Engine) -> Cost {
    let (lut, dff) = logic(d, e);
    Cost {
        lut4: lut.max(0.0).round() as u64,
        dff: dff.max(0.0).round() as u64,
        bram: engine_memories(d, e)
            .iter()
            .map(|m| ice40_blocks(m).unwrap_or(0) * m.count as u64)
            .sum(),
    }
}

/// The structural top: the output frame counter and its compare (measured with TFC).
const TOP: Cost = Cost {
    lut4: 12,
    dff: 8,
    bram: 0,
};

/// The estimate of a whole design: every engine, the top, the total.
pub fn estimate(d: &Design) -> Estimate {
    let engines: Vec<Cost> = d.engines.iter().map(|e| engine_cost(d, e)).collect();
    let total = engines.iter().fold(TOP, |a, &b| a + b);
    Estimate {
        engines,
        top: TOP,
        total,
    }
}

/// The report's table of estimates: per engine and the total.
pub fn report(d: &Design, est: &Estimate) -> String {
    let mut r = format!(
        "resource estimate (iCE40 cells after yosys 0.23 synth_ice40; block RAMs \
         exact, LUT4 within a few % per design, see bnnforge_hdl::resources):\n\
         {:<4} {:<10} {:>7} {:>7} {:>5}\n",
        "#", "engine", "LUT4", "DFF", "BRAM"
    );
    for (i, (e, c)) in d.engines.iter().zip(&est.engines).enumerate() {
        r += &format!(
            "{:<4} {:<10} {:>7} {:>7} {:>5}\n",
            i,
            e.kind.name(),
            c.lut4,
            c.dff,
            c.bram
        );
    }
    r += &format!(
        "{:<4} {:<10} {:>7} {:>7} {:>5}\n{:<4} {:<10} {:>7} {:>7} {:>5}\n",
        "-",
        "top",
        est.top.lut4,
        est.top.dff,
        est.top.bram,
        "",
        "total",
        est.total.lut4,
        est.total.dff,
        est.total.bram
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit;
    use crate::folding::{default_target, plan};
    use crate::synth::ice40_stats;
    use bnnforge_model::Network;
    use std::collections::BTreeMap;

    fn rom(width: usize, depth: usize) -> Memory {
        Memory {
            width,
            depth,
            kind: MemKind::Rom,
            count: 1,
            role: Role::Other,
        }
    }

    fn ram(width: usize, depth: usize) -> Memory {
        Memory {
            kind: MemKind::Ram,
            ..rom(width, depth)
        }
    }

    /// Cases yosys 0.23 decided (each seen in a synthesised engine): a ROM needs about
    /// 1 kbit per block, a RAM only 78 bits, and ties go to logic.
    #[test]
    fn block_ram_rule_matches_yosys_cases() {
        assert_eq!(ice40_blocks(&rom(16, 256)), Some(1)); // 4096 bits, cost 66 < 256
        assert_eq!(ice40_blocks(&rom(64, 64)), None); // 4 blocks cost 258 ≥ 256
        assert_eq!(ice40_blocks(&rom(9, 64)), None); // thresholds: 36 < 66
        assert_eq!(ice40_blocks(&rom(16, 1024)), Some(4)); // 4×1024, 4 wide
        assert_eq!(ice40_blocks(&rom(16, 4096)), Some(16));
        assert_eq!(ice40_blocks(&rom(56, 512)), Some(7));
        assert_eq!(ice40_blocks(&rom(1, 4096)), Some(1));
        assert_eq!(ice40_blocks(&ram(8, 8)), None); // 64 bits < 78
        assert_eq!(ice40_blocks(&ram(16, 8)), Some(1)); // 128 bits > 78
        assert_eq!(ice40_blocks(&ram(80, 8)), Some(5));
        assert_eq!(ice40_blocks(&ram(56, 16)), Some(4));
        assert_eq!(ice40_blocks(&ram(1, 64)), None);
        // FrameRam (no_rw_check) needs no emulation: 66 < 72
        let frame = Memory {
            kind: MemKind::RamNoRwCheck,
            ..rom(4, 18)
        };
        assert_eq!(ice40_blocks(&frame), Some(1));
    }

    fn load(rel: &str) -> Network {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel);
        bnnforge_model::load(&p).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn default_design(net: &Network) -> Design {
        let p = plan(net, &BTreeMap::new(), Some(default_target(net))).unwrap();
        Design::new(net, &p.folds).unwrap()
    }

    /// Per-engine tolerance of the LUT4 and DFF estimates in this test, and of their sum
    /// over the engines tested (the documented errors are below both).
    const ENGINE_TOLERANCE: f64 = 0.25;
    const SUM_TOLERANCE: f64 = 0.10;

    /// The estimate against yosys itself: engines of TFC-W1A1 and of `random-3` (every
    /// kind but the fork and the reorder, binary and integer, weights in block RAM and in
    /// logic) are generated and synthesised with `synth_ice40`; block RAMs must be equal,
    /// LUT4 and DFF within [`ENGINE_TOLERANCE`] each and [`SUM_TOLERANCE`] in sum.
    #[test]
    fn estimate_matches_yosys_on_engines() {
        let tfc = load("models/tfc-w1a1.yaml");
        let dt = default_design(&tfc);
        let r3 = load("examples/random-3.yaml");
        let dr = default_design(&r3);
        // (network, design, engine, emitter compiled for that engine's widths)
        let cases: Vec<(&Network, &Design, usize, emit::Emitter)> = vec![
            (&tfc, &dt, 0, emit::threshold::<8, 8, 9, 10, 1, 1, 1, 1>),
            (&tfc, &dt, 1, emit::ratio_lanes::<1, 1, 16, 4, 6>),
            (&tfc, &dt, 4, emit::ratio_lanes::<1, 4, 8, 1, 3>),
            (&tfc, &dt, 7, emit::ratio_lanes::<1, 1, 8, 3, 3>),
            (&tfc, &dt, 2, emit::fifo::<16, 6>),
            (
                &tfc,
                &dt,
                3,
                emit::mvtu::<16, 16, 5, 10, 11, 10, 6, 4, 12, 1, 1, 1, 4>,
            ),
            (
                &tfc,
                &dt,
                6,
                emit::mvtu::<8, 8, 4, 7, 8, 9, 3, 6, 9, 1, 1, 1, 1>,
            ),
            (&tfc, &dt, 10, emit::fifo::<1, 6>),
            (
                &tfc,
                &dt,
                11,
                emit::mvtu::<1, 1, 1, 7, 8, 10, 6, 4, 9, 1, 1, 8, 8>,
            ),
            (&r3, &dr, 2, emit::window::<1, 1, 5>),
            (&r3, &dr, 14, emit::add::<3, 18, 5, 10>),
            (
                &r3,
                &dr,
                18,
                emit::mvtu_int::<9, 2, 18, 4, 11, 11, 8, 6, 3, 12, 1, 1, 1, 7>,
            ),
            (&r3, &dr, 16, emit::lanes::<2, 4, 18, 38>),
            (&r3, &dr, 20, emit::lanes::<1, 7, 3, 16>),
            (&r3, &dr, 30, emit::ratio_lanes::<1, 1, 17, 5, 1>),
        ];
        let (mut sum_est, mut sum_meas) = (Cost::default(), Cost::default());
        let mut failures = vec![];
        for (net, d, i, emitter) in cases {
            let e = &d.engines[i];
            let verilog = emitter(net, d, i);
            let s = ice40_stats(&e.module, &verilog, &e.module).unwrap();
            let est = engine_cost(d, e);
            let meas = Cost {
                lut4: s.lut4 as u64,
                dff: s.dff as u64,
                bram: s.bram as u64,
            };
            let err = |a: u64, b: u64| (a as f64 - b as f64) / b.max(1) as f64;
            println!(
                "{:<24} estimate {est}  yosys {meas}  LUT4 {:+.1} %  DFF {:+.1} %",
                e.module,
                100.0 * err(est.lut4, meas.lut4),
                100.0 * err(est.dff, meas.dff)
            );
            if est.bram != meas.bram
                || err(est.lut4, meas.lut4).abs() > ENGINE_TOLERANCE
                || err(est.dff, meas.dff).abs() > ENGINE_TOLERANCE
            {
                failures.push(format!("{}: estimate {est}, yosys {meas}", e.module));
            }
            sum_est += est;
            sum_meas += meas;
        }
        let err = |a: u64, b: u64| (a as f64 - b as f64) / b as f64;
        println!(
            "sum: estimate {sum_est}, yosys {sum_meas}: LUT4 {:+.1} %, DFF {:+.1} %",
            100.0 * err(sum_est.lut4, sum_meas.lut4),
            100.0 * err(sum_est.dff, sum_meas.dff)
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert!(err(sum_est.lut4, sum_meas.lut4).abs() <= SUM_TOLERANCE);
        assert!(err(sum_est.dff, sum_meas.dff).abs() <= SUM_TOLERANCE);
    }

    /// Every engine kind has a formula that gives something sensible on random designs,
    /// and the total is the engines plus the top.
    #[test]
    fn estimates_of_random_designs_add_up() {
        use bnnforge_model::random::{random_network, RandomConfig};
        for seed in 0..40 {
            let net = random_network(seed, &RandomConfig::default());
            let Ok(d) = Design::new(
                &net,
                &plan(&net, &BTreeMap::new(), Some(default_target(&net)))
                    .unwrap()
                    .folds,
            ) else {
                continue;
            };
            let est = estimate(&d);
            let sum = est.engines.iter().fold(est.top, |a, &b| a + b);
            assert_eq!(sum, est.total, "seed {seed}");
            for (e, c) in d.engines.iter().zip(&est.engines) {
                assert!(c.lut4 >= 5 && c.dff >= 5, "seed {seed}: {} {c}", e.module);
                let bits: u64 = engine_memories(&d, e)
                    .iter()
                    .filter(|m| ice40_blocks(m).is_some())
                    .map(|m| (m.width * m.depth * m.count) as u64)
                    .sum();
                // a block holds 4 kbit at most
                assert!(c.bram * 4096 >= bits, "seed {seed}: {} {c}", e.module);
            }
        }
    }
}
