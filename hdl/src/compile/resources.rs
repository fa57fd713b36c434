//! Resource estimate: iCE40 LUT4s, flip-flops and `SB_RAM40_4K` block RAMs of a
//! [`Design`], per engine and in total, without running yosys (microseconds per design,
//! so the budget search of [`crate::compile::budget`] can try every folding).
//!
//! The figures stand for what yosys 0.23 `synth_ice40` makes of each engine's Verilog; a
//! design is the sum of its engines plus the top's frame counter (`TOP`).
//! - Block RAMs: exact. [`engine_memories`] lists every memory of an engine and
//!   [`ice40_blocks`] applies yosys's own mapping rule (`memory_libmap` with
//!   `ice40/brams.txt`).
//! - Memories left in logic: [`ROM_BIT_LUTS`] per ROM bit column; a RAM's read mux,
//!   write decode and words, or the bypass yosys adds around a RAM in block RAM
//!   ([`memory_logic`]).
//! - Logic: a linear formula per engine kind over a few structural features
//!   ([`EngineSpec::logic`](crate::engines::EngineSpec::logic)), its coefficients, named
//!   constants beside each engine, fitted to synthesised engines.
//!
//! The rule, the fits and the measured error: `hdl/DESIGN.md`, "Resource estimate". The
//! test `tests::estimate_matches_yosys_on_engines` synthesises twelve engines of TFC-W1A1
//! and `random-3` and fails beyond 25 % per engine or 10 % in sum.

use crate::compile::design::{Design, Engine};
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

impl Cost {
    /// iCE40 logic cells, a LUT4 and a DFF each, counted as LUT4 + ½·DFF: nextpnr pairs a
    /// DFF only with the LUT that feeds it, so pipeline and shift registers take cells of
    /// their own. Against nextpnr-ice40 0.4's packing of TFC-W1A1 with the board core
    /// (less its 1400 cells, [`crate::compile::budget::BOARD_CORE_CELLS`]): default
    /// folding 3118 cells (this count 3122), 392 cycles 3955 (3564, −10 %), 196 cycles
    /// 5923 (5104, −14 %): register-heavy foldings are under-counted, which the device
    /// headroom covers.
    pub fn logic_cells(&self) -> u64 {
        self.lut4 + self.dff / 2
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

impl Memory {
    /// One memory of `width` × `depth` of `kind`, holding [`Role::Other`].
    pub fn new(width: usize, depth: usize, kind: MemKind) -> Memory {
        Memory {
            width,
            depth,
            kind,
            count: 1,
            role: Role::Other,
        }
    }
    /// A [`MemKind::Rom`].
    pub fn rom(width: usize, depth: usize) -> Memory {
        Memory::new(width, depth, MemKind::Rom)
    }
    /// A [`MemKind::Ram`].
    pub fn ram(width: usize, depth: usize) -> Memory {
        Memory::new(width, depth, MemKind::Ram)
    }
    /// `count` copies.
    pub fn times(self, count: usize) -> Memory {
        Memory { count, ..self }
    }
    /// Holding `role`.
    pub fn holding(self, role: Role) -> Memory {
        Memory { role, ..self }
    }
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
pub const ICE40_GEOMETRIES: [(usize, usize); 4] = [(2, 2048), (4, 1024), (8, 512), (16, 256)];

/// Block RAMs yosys 0.23's `memory_libmap` gives one copy of `m` on iCE40, or `None`
/// when it is cheaper in logic (the rule: `hdl/DESIGN.md`, "Resource estimate").
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

/// LUT4s and DFFs of memory `m` (all copies) outside block RAM: the logic of a memory
/// left in logic, or the bypass yosys adds around a RAM in block RAM.
pub fn memory_logic(m: &Memory) -> (f64, f64) {
    let (w, d, n) = (m.width as f64, m.depth, m.count as f64);
    match (ice40_blocks(m), m.kind) {
        (Some(_), MemKind::Ram) => (
            n * (w + crate::address_bits(d) as f64 / 2.0),
            n * (w + crate::address_bits(d) as f64 + 1.0),
        ),
        (Some(_), _) => (0.0, 0.0),
        (None, MemKind::Rom) => {
            let a = crate::address_bits(d).min(ROM_BIT_LUTS.len() - 1);
            (n * w * ROM_BIT_LUTS[a], n * w)
        }
        (None, _) => {
            let mux = (2 * (d - 1)).div_ceil(3) as f64;
            (n * (w * mux + 1.3 * d as f64), n * w * (d as f64 + 1.0))
        }
    }
}

/// The memories of engine `e` ([`EngineSpec::memories`](crate::engines::EngineSpec::memories)).
pub fn engine_memories(e: &Engine) -> Vec<Memory> {
    e.kind.spec().memories()
}

/// What the estimate stands for, written into manifests.
pub const MODEL: &str =
    "iCE40 cells after yosys 0.23 synth_ice40, estimated by bnnforge (hdl/DESIGN.md, Resource estimate)";

/// A LUT4 and a DFF estimate.
pub type Formula = (f64, f64);

/// `Σ c[i]·f[i]`.
pub fn dot(c: &[f64], f: &[f64]) -> f64 {
    debug_assert_eq!(c.len(), f.len());
    c.iter().zip(f).map(|(a, b)| a * b).sum()
}

/// LUT4s and DFFs of the memories of `ms` that `pick` accepts.
pub fn mem_sum(ms: &[Memory], pick: impl Fn(&Memory) -> bool) -> (f64, f64) {
    ms.iter()
        .filter(|m| pick(m))
        .map(memory_logic)
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The LUT4 and DFF formulas of engine `e` (memories included).
fn logic(d: &Design, e: &Engine) -> Formula {
    let width = |s: &[usize]| s.iter().map(|&i| d.streams[i].width()).sum::<usize>() as f64;
    let io = width(&e.inputs) + width(&e.outputs);
    e.kind.spec().logic(&engine_memories(e), io)
}

/// The estimate of one engine of `d`.
pub fn engine_cost(d: &Design, e: &Engine) -> Cost {
    let (lut, dff) = logic(d, e);
    Cost {
        lut4: lut.max(0.0).round() as u64,
        dff: dff.max(0.0).round() as u64,
        bram: engine_memories(e)
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
         exact, LUT4 within a few % per design, see hdl/DESIGN.md, Resource estimate):\n\
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
    use crate::compile::emit;
    use crate::compile::folding::{default_target, plan};
    use crate::engines::{mvtu, mvtu_int, residual_adder, sliding_window, threshold_engine};
    use crate::stream::{fifo, lane_converter, ratio_lane_converter};
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
            (
                &tfc,
                &dt,
                0,
                threshold_engine::emit::<8, 8, 9, 10, 1, 1, 1, 1>,
            ),
            (&tfc, &dt, 1, ratio_lane_converter::emit::<1, 1, 16, 4, 6>),
            (&tfc, &dt, 4, ratio_lane_converter::emit::<1, 4, 8, 1, 3>),
            (&tfc, &dt, 7, ratio_lane_converter::emit::<1, 1, 8, 3, 3>),
            (&tfc, &dt, 2, fifo::emit::<16, 6>),
            (
                &tfc,
                &dt,
                3,
                mvtu::emit::<16, 16, 5, 10, 11, 10, 6, 4, 12, 1, 1, 1, 4>,
            ),
            (
                &tfc,
                &dt,
                6,
                mvtu::emit::<8, 8, 4, 7, 8, 9, 3, 6, 9, 1, 1, 1, 1>,
            ),
            (&tfc, &dt, 10, fifo::emit::<1, 6>),
            (
                &tfc,
                &dt,
                11,
                mvtu::emit::<1, 1, 1, 7, 8, 10, 6, 4, 9, 1, 1, 8, 8>,
            ),
            (&r3, &dr, 2, sliding_window::emit::<1, 1, 5>),
            (&r3, &dr, 14, residual_adder::emit::<3, 18, 5, 10>),
            (
                &r3,
                &dr,
                18,
                mvtu_int::emit::<9, 2, 18, 4, 11, 11, 8, 6, 3, 12, 1, 1, 1, 7>,
            ),
            (&r3, &dr, 16, lane_converter::emit::<2, 4, 18, 38>),
            (&r3, &dr, 20, lane_converter::emit::<1, 7, 3, 16>),
            (&r3, &dr, 30, ratio_lane_converter::emit::<1, 1, 17, 5, 1>),
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
                let bits: u64 = engine_memories(e)
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
