//! The accelerator of a whole network: which engines, with which widths, wired how.
//!
//! [`Design::new`] turns a validated [`Network`] and a folding (one [`Fold`] per layer)
//! into engines joined by ready/valid streams, every width exact and every engine's const
//! generics computed here (the blocks check them again when built); `bnnforge build`
//! instantiates each engine ([`crate::compile::emit`]) and [`Design::top_verilog`] writes
//! the structural top.
//!
//! ```text
//!  s_axis ─► [lanes] ─► SlidingWindow ─► Mvtu(+threshold) ─► Fork ─┬─► Mvtu ─► … ─┐
//!                                                                   └─► Fifo ──────► Add ─► … ─► [lanes→1] ─► [CHW] ─► m_axis
//! ```
//!
//! The mapping rules (fused thresholds, lane converters, forks, adder chains, FIFO sizes
//! on residual branches, the output reorder): `hdl/DESIGN.md`, "How a network maps to
//! engines".

use crate::compile::folding::Fold;
use crate::compile::timing::Timing;
use crate::compile::top::{Stream, TopBuilder};
use crate::engines::chw_reorder::ReorderSpec;
use crate::engines::maxpool::PoolConfig;
use crate::engines::mvtu::MvtuSpec;
use crate::engines::mvtu_int::MvtuIntSpec;
use crate::engines::residual_adder::{add_kind, AddSpec, MAX_INPUTS};
use crate::engines::sliding_window::WindowConfig;
use crate::engines::sumpool::SumConfig;
use crate::engines::threshold_engine::ThresholdSpec;
use crate::engines::Span;
pub use crate::engines::{EngineKind, EngineSpec};
use crate::stream::fifo::FifoSpec;
use crate::stream::fork::{ForkSpec, MAX_WAYS};
use crate::stream::lane_converter::LanesSpec;
use crate::stream::ratio_lane_converter::{is_ratio, RatioLanesSpec};
use bnnforge_model::network::{Network, Op, Src};
use bnnforge_model::Kind;

/// How the elements of a stream are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elem {
    /// bits per element (1 for binary)
    pub bits: usize,
    /// two's complement (integers only)
    pub signed: bool,
    /// ±1 as one bit (1 = +1)
    pub binary: bool,
}

impl Elem {
    /// The encoding of values of `kind`.
    pub fn of(kind: Kind) -> Elem {
        let (bits, signed) = kind.width();
        Elem {
            bits: bits as usize,
            signed: signed && !kind.is_binary(),
            binary: kind.is_binary(),
        }
    }
}

/// A stream between engines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub lanes: usize,
    pub elem: Elem,
    /// elements per frame
    pub elements: usize,
    /// extra top bit of every beat (the sliding window's pad flag)
    pub flag: bool,
    /// expected cycles from the frame's first input beat at `s_axis` to this stream's
    /// first beat, in an idle pipeline
    pub first: u64,
    /// … and to its last beat of the frame
    pub last: u64,
}

impl StreamInfo {
    /// Data bits of a beat.
    pub fn width(&self) -> usize {
        self.lanes * self.elem.bits + self.flag as usize
    }
    /// Beats per frame.
    pub fn beats(&self) -> usize {
        self.elements.div_ceil(self.lanes)
    }
}

/// One engine instance of the design.
#[derive(Clone, Debug, PartialEq)]
pub struct Engine {
    /// Verilog module name (and prefix of its sub-modules)
    pub module: String,
    pub kind: EngineKind,
    /// const generics, in the block's declaration order ([`EngineSpec::generics`])
    pub generics: Vec<usize>,
    /// streams read, in port order
    pub inputs: Vec<usize>,
    /// streams written, in port order
    pub outputs: Vec<usize>,
    /// the layers this engine computes (names), for reports
    pub layers: Vec<String>,
    /// cycles per frame at full rate
    pub cycles: u64,
    /// first input beat to first output beat
    pub latency: u64,
    /// bits of block memory (weights, thresholds, buffers), for reports
    pub memory_bits: u64,
    /// PE and SIMD (MAC engines), lanes (others)
    pub fold: Fold,
    /// accumulator bits (MAC engines)
    pub acc_bits: Option<usize>,
}

/// The whole accelerator.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// top module name
    pub top: String,
    pub engines: Vec<Engine>,
    /// stream 0 is `s_axis`; the last is `m_axis`
    pub streams: Vec<StreamInfo>,
    pub output: usize,
    /// the folding the design was made for, per layer
    pub folds: Vec<Fold>,
    /// the cycle model's interval and latency, once asked for
    timing: TimingCache,
}

/// [`Design::timing`], computed once (designs compare equal whether or not computed).
#[derive(Clone, Debug, Default)]
struct TimingCache(std::sync::OnceLock<Timing>);

impl PartialEq for TimingCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A Verilog identifier from a network name.
pub fn identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "n_");
    }
    s
}

struct Builder<'a> {
    net: &'a Network,
    folds: &'a [Fold],
    prefix: String,
    engines: Vec<Engine>,
    streams: Vec<StreamInfo>,
    /// per layer, the streams its readers still have to take (forks' outputs)
    pending: Vec<Vec<usize>>,
    input_pending: Vec<usize>,
    /// cycles from reset to the first input beat taken: the wait after reset of the
    /// engine reading `s_axis` (the co-simulation offers the first frame at reset)
    origin: u64,
}

impl Design {
    /// The design of `net` under `folds` (one per layer, checked).
    pub fn new(net: &Network, folds: &[Fold]) -> Result<Design, String> {
        if folds.len() != net.layers.len() {
            return Err(format!(
                "{} folds for {} layers",
                folds.len(),
                net.layers.len()
            ));
        }
        for (i, f) in folds.iter().enumerate() {
            crate::compile::folding::check_fold(net, i, *f)?;
        }
        let top = format!("{}_top", identifier(&net.name));
        let mut b = Builder {
            net,
            folds,
            prefix: identifier(&net.name),
            engines: vec![],
            streams: vec![],
            pending: vec![vec![]; net.layers.len()],
            input_pending: vec![],
            origin: 0,
        };
        b.build()?;
        // the widest matrix unit's late-registered popcounts set the design's clock: the
        // others register late too, fewer LUT4s and no slower
        let late = |e: &Engine| matches!(&e.kind, EngineKind::Mvtu(m) if m.0.late);
        if b.engines.iter().any(late) {
            for e in &mut b.engines {
                if let EngineKind::Mvtu(m) = &mut e.kind {
                    m.0.late = !m.0.spram;
                }
            }
        }
        let output = b.streams.len() - 1;
        Ok(Design {
            top,
            engines: b.engines,
            streams: b.streams,
            output,
            folds: folds.to_vec(),
            timing: TimingCache::default(),
        })
    }

    /// The top's input stream.
    pub fn input(&self) -> &StreamInfo {
        &self.streams[0]
    }

    /// The top's output stream (one lane).
    pub fn output(&self) -> &StreamInfo {
        &self.streams[self.output]
    }

    /// The design's Verilog files: the top first, then one per engine.
    pub fn verilog_files(&self) -> Vec<String> {
        std::iter::once(&self.top)
            .chain(self.engines.iter().map(|e| &e.module))
            .map(|m| format!("{m}.v"))
            .collect()
    }

    /// The interval and latency of the design's cycle model ([`Timing::of`]).
    pub fn timing(&self) -> Timing {
        *self.timing.0.get_or_init(|| Timing::of(self))
    }

    /// Cycles between frames at full rate, frames back to back (the cycle model's).
    pub fn cycles_per_frame(&self) -> u64 {
        self.timing().interval
    }

    /// The slowest engine's cycles per frame: the interval the design would have if
    /// its engines never held each other back.
    pub fn slowest_engine_cycles(&self) -> u64 {
        self.slowest_engine().1.max(1)
    }

    /// The slowest engine (the first of equals) and its cycles per frame.
    pub fn slowest_engine(&self) -> (usize, u64) {
        self.engines
            .iter()
            .enumerate()
            .max_by_key(|(i, e)| (e.cycles, usize::MAX - i))
            .map(|(i, e)| (i, e.cycles))
            .unwrap_or((0, 0))
    }

    /// Cycles from a frame's first input beat to its last output beat, idle pipeline
    /// (the cycle model's).
    pub fn latency_cycles(&self) -> u64 {
        self.timing().latency
    }

    /// The engines whose weights are in SPRAM, in design (and load) order.
    pub fn spram_engines(&self) -> Vec<usize> {
        (0..self.engines.len())
            .filter(|&i| matches!(&self.engines[i].kind, EngineKind::Mvtu(m) if m.0.spram))
            .collect()
    }

    /// Words of the SPRAM weight load ([`Design::spram_load_words`]), without the network.
    pub fn spram_words(&self) -> usize {
        self.spram_engines()
            .iter()
            .map(|&i| match &self.engines[i].kind {
                EngineKind::Mvtu(m) => m.0.pe * m.0.nf() * m.0.sf(),
                _ => 0,
            })
            .sum()
    }

    /// The words a design with weights in SPRAM takes on `s_axis` after reset, before
    /// any frame: every SPRAM engine's words in design order (see
    /// [`MvtuSpram`](crate::engines::mvtu_spram::MvtuSpram)); empty without SPRAM.
    pub fn spram_load_words(&self, net: &Network) -> Vec<u16> {
        self.spram_engines()
            .iter()
            .flat_map(|&i| match &self.engines[i].kind {
                EngineKind::Mvtu(m) => {
                    crate::engines::mvtu_spram::load_words(net, m.0.layer, m.0.pe, m.0.g.simd)
                }
                _ => vec![],
            })
            .collect()
    }

    /// Puts the weights of engines `engines` into SPRAM (as a manifest recorded them), or
    /// an error naming one that cannot take it.
    pub fn set_spram(&mut self, engines: &[usize]) -> Result<(), String> {
        for &i in engines {
            let e = self
                .engines
                .get_mut(i)
                .ok_or_else(|| format!("engine {i} does not exist"))?;
            match &mut e.kind {
                EngineKind::Mvtu(m) if m.0.fits_spram() => m.0.spram = true,
                _ => {
                    return Err(format!(
                        "engine {i} ({}) cannot keep its weights in SPRAM",
                        e.module
                    ))
                }
            }
        }
        Ok(())
    }

    /// Moves the weights of binary matrix-vector engines into the UltraPlus's SPRAMs,
    /// one per PE, at most `spram` in all: of the engines whose PEs' weights fit one
    /// SPRAM each (SIMD ≤ 16, NF·SF ≤ 16384), the set that frees the most block RAMs,
    /// then LUT4s (the first such set when several do; at most 12 candidates, the
    /// largest). Returns the SPRAMs used; engines already in SPRAM stay.
    pub fn put_weights_in_spram(&mut self, spram: usize) -> usize {
        let used: usize = self
            .spram_engines()
            .iter()
            .map(|&i| self.engines[i].fold.pe)
            .sum();
        let mut cands: Vec<(usize, usize, (u64, u64))> = vec![];
        for (i, e) in self.engines.iter().enumerate() {
            let EngineKind::Mvtu(m) = &e.kind else {
                continue;
            };
            let m = &m.0;
            if m.spram || !m.fits_spram() {
                continue;
            }
            let before = crate::compile::resources::engine_cost(self, e);
            let mut moved = e.clone();
            if let EngineKind::Mvtu(x) = &mut moved.kind {
                x.0.spram = true;
            }
            let after = crate::compile::resources::engine_cost(self, &moved);
            let saves = (
                before.bram.saturating_sub(after.bram),
                before.lut4.saturating_sub(after.lut4),
            );
            if saves > (0, 0) {
                cands.push((i, m.pe, saves));
            }
        }
        cands.sort_by_key(|c| std::cmp::Reverse(c.2));
        cands.truncate(12);
        let free = spram.saturating_sub(used);
        let mut best: (u64, u64, u32) = (0, 0, 0);
        for set in 1u32..1 << cands.len() {
            let pick = |k: usize| set >> k & 1 == 1;
            let n: usize = (0..cands.len())
                .filter(|&k| pick(k))
                .map(|k| cands[k].1)
                .sum();
            if n > free {
                continue;
            }
            let (b, l) = (0..cands.len())
                .filter(|&k| pick(k))
                .fold((0, 0), |(b, l), k| (b + cands[k].2 .0, l + cands[k].2 .1));
            if (b, l) > (best.0, best.1) {
                best = (b, l, set);
            }
        }
        let mut n = used;
        for (k, c) in cands.iter().enumerate() {
            if best.2 >> k & 1 == 1 {
                if let EngineKind::Mvtu(x) = &mut self.engines[c.0].kind {
                    x.0.spram = true;
                }
                n += c.1;
            }
        }
        n
    }

    /// The structural top module (with the frame counter for `m_axis_tlast`); the
    /// engines' modules are written separately.
    pub fn top_verilog(&self) -> String {
        self.top_with_probe(None)
    }

    /// [`Design::top_verilog`] that also logs every stream's handshakes to the file `log`
    /// (simulation only, see [`TopBuilder::probe`]); stream ids are indices of
    /// [`Design::streams`].
    pub fn top_verilog_probed(&self, log: &str) -> String {
        self.top_with_probe(Some(log))
    }

    fn top_with_probe(&self, log: Option<&str>) -> String {
        let mut t = TopBuilder::new(&self.top, self.input().width(), self.output().width());
        let spram = self.spram_engines();
        let mut wires: Vec<Stream> = Vec::with_capacity(self.streams.len());
        for (i, s) in self.streams.iter().enumerate() {
            wires.push(if i > 0 {
                t.stream(s.width())
            } else if spram.is_empty() {
                t.input()
            } else {
                // the frames behind the weight loader: what the probe logs as stream 0
                t.weight_load(self.spram_words(), spram.len())
                    .expect("weight loader")
            });
        }
        for (i, e) in self.engines.iter().enumerate() {
            // several streams on `in` (adder) or `out` (fork) are packed ports
            let ins: Vec<(&str, &Stream)> = e.inputs.iter().map(|&s| ("in", &wires[s])).collect();
            let outs: Vec<(&str, &Stream)> =
                e.outputs.iter().map(|&s| ("out", &wires[s])).collect();
            let extra = match spram.iter().position(|&k| k == i) {
                Some(k) => vec![
                    ("load_valid", format!("load{k}_valid")),
                    ("load_data", "load_data".to_string()),
                    ("load_pass", format!("load{}_valid", k + 1)),
                ],
                None => vec![],
            };
            t.engine_with(&e.module, &format!("e{i}"), &ins, &outs, &extra);
        }
        t.output(&wires[self.output], self.output().elements as u64)
            .expect("frame counter width");
        if let Some(log) = log {
            let all: Vec<(usize, &Stream)> = wires.iter().enumerate().collect();
            t.probe(log, &all);
        }
        t.finish()
    }

    /// A readable report: per engine its layers, fold, cycles, latency, memory,
    /// accumulator width; the totals.
    pub fn report(&self, net: &Network) -> String {
        let mut r = format!(
            "bnnforge build report: {} ({})\n\n\
             input:  {} elements per frame, {} lanes of {} bits{}\n\
             output: {} elements per frame, 1 lane of {} bits{}\n\n",
            net.name,
            self.top,
            self.input().elements,
            self.input().lanes,
            self.input().elem.bits,
            elem_note(self.input().elem),
            self.output().elements,
            self.output().elem.bits,
            elem_note(self.output().elem),
        );
        r += &format!(
            "{:<4} {:<10} {:<22} {:>5} {:>5} {:>10} {:>9} {:>10} {:>5}\n",
            "#", "engine", "layers", "PE", "SIMD", "cycles", "latency", "mem bits", "acc"
        );
        for (i, e) in self.engines.iter().enumerate() {
            let layers = if e.layers.is_empty() {
                "-".to_string()
            } else {
                e.layers.join("+")
            };
            let (pe, simd) = match e.kind {
                EngineKind::Mvtu(_) | EngineKind::MvtuInt(_) => {
                    (e.fold.pe.to_string(), e.fold.simd.to_string())
                }
                _ => (e.fold.pe.to_string(), "-".to_string()),
            };
            r += &format!(
                "{:<4} {:<10} {:<22} {:>5} {:>5} {:>10} {:>9} {:>10} {:>5}\n",
                i,
                e.kind.name(),
                layers,
                pe,
                simd,
                e.cycles,
                e.latency,
                e.memory_bits,
                e.acc_bits.map_or("-".to_string(), |a| a.to_string())
            );
        }
        let slowest = self.slowest_engine().0;
        r += &format!(
            "\ncycles per frame: {} (cycle model; engine {slowest}, the slowest, takes {})\n\
             latency: {} cycles (cycle model; first input beat to last output beat)\n\
             memory: {} bits\n",
            self.cycles_per_frame(),
            self.slowest_engine_cycles(),
            self.latency_cycles(),
            self.engines.iter().map(|e| e.memory_bits).sum::<u64>()
        );
        r
    }
}

fn elem_note(e: Elem) -> &'static str {
    if e.binary {
        " (binary, 1 = +1)"
    } else if e.signed {
        " (signed)"
    } else {
        " (unsigned)"
    }
}

impl Builder<'_> {
    fn stream(&mut self, lanes: usize, elem: Elem, elements: usize, first: u64) -> usize {
        let last = first + elements.div_ceil(lanes) as u64 - 1;
        self.streams.push(StreamInfo {
            lanes,
            elem,
            elements,
            flag: false,
            first,
            last,
        });
        self.streams.len() - 1
    }

    /// Adds an engine reading `inputs`, writing one new stream per `outs` entry; its
    /// generics, cycles, latency, pace and memory come from its spec.
    fn engine(
        &mut self,
        kind: impl Into<EngineKind>,
        inputs: Vec<usize>,
        outs: Vec<(usize, Elem, usize)>,
        layers: Vec<String>,
        fold: Fold,
    ) -> Vec<usize> {
        let kind: EngineKind = kind.into();
        let spec = kind.spec();
        let latency = spec.latency();
        // an engine still busy after reset holds its inputs back (the whole stream, at
        // most, moves by the wait); times count from the first input beat taken
        if inputs.contains(&0) {
            self.origin = spec.ready_after_reset();
        }
        let ready = spec.ready_after_reset().saturating_sub(self.origin);
        for &s in &inputs {
            let si = &mut self.streams[s];
            if si.first < ready {
                si.last += ready - si.first;
                si.first = ready;
            }
        }
        // the latest input (the adder starts when all its inputs have a beat)
        let input = inputs.iter().fold(
            Span {
                first: 0,
                last: 0,
                beats: 1,
            },
            |a, &s| {
                let si = &self.streams[s];
                Span {
                    first: a.first.max(si.first),
                    last: a.last.max(si.last),
                    beats: si.beats() as u64,
                }
            },
        );
        let outputs: Vec<usize> = outs
            .into_iter()
            .map(|(lanes, elem, elements)| {
                let span = spec.span(input, elements.div_ceil(lanes) as u64);
                let s = self.stream(lanes, elem, elements, span.first);
                self.streams[s].last = span.last;
                s
            })
            .collect();
        let i = self.engines.len();
        self.engines.push(Engine {
            module: format!("{}_e{i}_{}", self.prefix, spec.name()),
            generics: spec.generics(),
            inputs,
            outputs: outputs.clone(),
            layers,
            cycles: spec.cycles(),
            latency,
            memory_bits: spec.memory_bits(),
            fold,
            acc_bits: spec.acc_bits(),
            kind,
        });
        outputs
    }

    /// `s` through a FIFO of `depth` beats in block RAM.
    fn fifo(&mut self, s: usize, depth: usize, label: String) -> usize {
        let si = self.streams[s].clone();
        let spec = FifoSpec {
            width: si.width(),
            depth,
            beats: si.beats(),
        };
        let fold = Fold {
            pe: si.lanes,
            simd: 1,
        };
        let outs = vec![(si.lanes, si.elem, si.elements)];
        self.engine(spec, vec![s], outs, vec![label], fold)[0]
    }

    /// A [`ResidualAdder`](crate::engines::residual_adder::ResidualAdder) of the streams `ins`
    /// (2 to 8, of `kinds`, `fold.pe` lanes each), with a FIFO on every input but the
    /// latest-arriving one; returns the sum's stream.
    fn adder(
        &mut self,
        mut ins: Vec<usize>,
        kinds: Vec<Kind>,
        fold: Fold,
        label: String,
    ) -> Result<usize, String> {
        // FIFOs on all but the latest-arriving input: each holds a whole frame (plus the
        // arrival gap), so the latest branch can take its whole input frame while every
        // other branch, fed by the same forks, runs ahead into its FIFO
        let latest = (0..ins.len())
            .max_by_key(|&k| (self.streams[ins[k]].first, usize::MAX - k))
            .expect("an add has inputs");
        let max_arrival = self.streams[ins[latest]].first;
        // those FIFOs delay their branches by their own latency: an input arriving
        // less than that (plus 2 cycles of estimate) before the latest would then come
        // after it, and the latest branch, holding the difference in its engines' few
        // output registers, would stall the forks of every branch a cycle now and then;
        // a short FIFO on the latest input too keeps the estimated order
        let close = (0..ins.len()).any(|k| {
            k != latest
                && self.streams[ins[k]].first + crate::stream::fifo::LATENCY + 2 > max_arrival
        });
        for k in 0..ins.len() {
            let si = self.streams[ins[k]].clone();
            let depth = if k != latest {
                si.beats().max((max_arrival - si.first) as usize) + 16
            } else if close {
                16
            } else {
                continue;
            };
            ins[k] = self.fifo(ins[k], depth, format!("{label} (branch {k})"));
        }
        let oe = Elem::of(add_kind(&kinds));
        if oe.bits > 64 {
            return Err(format!(
                "layer '{label}': a sum of {} bits (the adder has at most 64)",
                oe.bits
            ));
        }
        let l = fold.pe;
        let elements = self.streams[ins[0]].elements;
        let spec = AddSpec {
            kinds,
            lanes: l,
            beats: elements.div_ceil(l),
        };
        Ok(self.engine(spec, ins, vec![(l, oe, elements)], vec![label], fold)[0])
    }

    /// `s` with `lanes` lanes (a converter if it has others).
    fn lanes(&mut self, s: usize, lanes: usize) -> usize {
        let si = self.streams[s].clone();
        assert!(!si.flag, "no lane conversion of flagged streams");
        if si.lanes == lanes {
            return s;
        }
        let (bits, in_lanes, elements) = (si.elem.bits, si.lanes, si.elements);
        let outs = vec![(lanes, si.elem, elements)];
        let fold = Fold { pe: lanes, simd: 1 };
        let kind: EngineKind = if is_ratio(in_lanes, lanes) {
            RatioLanesSpec {
                bits,
                in_lanes,
                out_lanes: lanes,
                elements,
            }
            .into()
        } else {
            LanesSpec {
                bits,
                in_lanes,
                out_lanes: lanes,
                elements,
            }
            .into()
        };
        self.engine(kind, vec![s], outs, vec![], fold)[0]
    }

    /// The stream a reader of `src` takes next.
    fn take(&mut self, src: Src) -> usize {
        let q = match src {
            Src::Input => &mut self.input_pending,
            Src::Layer(i) => &mut self.pending[i],
        };
        assert!(!q.is_empty(), "a stream was read more often than counted");
        q.remove(0)
    }

    /// Readers of each source, counting an operand listed twice twice.
    fn uses(&self, src: Src) -> usize {
        let mut n = 0;
        for (i, _) in self.net.layers.iter().enumerate() {
            if self.fused_into(i).is_some() {
                continue;
            }
            n += self.net.info()[i]
                .srcs
                .iter()
                .filter(|&&s| s == src)
                .count();
        }
        if src == Src::Layer(self.net.output_index()) {
            n += 1;
        }
        n
    }

    /// The threshold layer fused into MAC layer `i`, if any: `i` binary-input dense or
    /// conv, read only by one threshold layer, and not the network output.
    fn fused_threshold(&self, i: usize) -> Option<usize> {
        let net = self.net;
        if !matches!(net.layers[i].op, Op::Dense { .. } | Op::Conv { .. })
            || i == net.output_index()
        {
            return None;
        }
        let readers: Vec<usize> = (0..net.layers.len())
            .filter(|&j| net.info()[j].srcs.contains(&Src::Layer(i)))
            .collect();
        match readers[..] {
            [t] if matches!(net.layers[t].op, Op::Threshold { .. })
                && net.info()[t].srcs.len() == 1 =>
            {
                Some(t)
            }
            _ => None,
        }
    }

    /// The MAC layer that threshold layer `t` is fused into.
    fn fused_into(&self, t: usize) -> Option<usize> {
        match self.net.info()[t].srcs[..] {
            [Src::Layer(i)] if self.fused_threshold(i) == Some(t) => Some(i),
            _ => None,
        }
    }

    /// Makes `s` available to `uses` readers of `src` (forks when more than one).
    fn publish(&mut self, src: Src, s: usize) {
        let n = self.uses(src);
        let outs = self.fan_out(s, n);
        match src {
            Src::Input => self.input_pending = outs,
            Src::Layer(i) => self.pending[i] = outs,
        }
    }

    fn fan_out(&mut self, s: usize, n: usize) -> Vec<usize> {
        if n <= 1 {
            return vec![s; n];
        }
        let si = self.streams[s].clone();
        let ways = n.min(MAX_WAYS);
        let spec = ForkSpec {
            ways,
            width: si.width(),
            beats: si.beats(),
        };
        let fold = Fold {
            pe: si.lanes,
            simd: 1,
        };
        let copies = vec![(si.lanes, si.elem, si.elements); ways];
        let outs = self.engine(spec, vec![s], copies, vec![], fold);
        let mut all = outs[..ways - 1].to_vec();
        all.extend(self.fan_out(outs[ways - 1], n - (ways - 1)));
        all
    }

    fn build(&mut self) -> Result<(), String> {
        let net = self.net;
        let input = net.input.clone();
        let elem = Elem::of(input.kind());
        // the input's lanes: what its first reader wants
        let first = net
            .order()
            .iter()
            .copied()
            .find(|&i| net.info()[i].srcs.contains(&Src::Input))
            .ok_or("no layer reads the input")?;
        let lanes = self.wanted_lanes(first, None);
        let s = self.stream(lanes, elem, input.shape.len(), 0);
        self.publish(Src::Input, s);
        for &i in net.order() {
            if self.fused_into(i).is_some() {
                continue;
            }
            let out = self.layer(i)?;
            let published = self.fused_threshold(i).unwrap_or(i);
            self.publish(Src::Layer(published), out);
        }
        let oi = net.output_index();
        let s = self.take(Src::Layer(oi));
        let shape = net.output_shape();
        let s = self.lanes(s, 1);
        if shape.pixels() > 1 && shape.c > 1 {
            let si = self.streams[s].clone();
            let spec = ReorderSpec {
                c: shape.c,
                h: shape.h,
                w: shape.w,
                bits: si.elem.bits,
            };
            let outs = vec![(1, si.elem, si.elements)];
            self.engine(spec, vec![s], outs, vec![], Fold { pe: 1, simd: 1 });
        }
        Ok(())
    }

    /// The lanes layer `i` wants on its (first) input, given the producer's lanes.
    fn wanted_lanes(&self, i: usize, have: Option<usize>) -> usize {
        let f = self.folds[i];
        match self.net.layers[i].op {
            Op::Dense { .. } => f.simd,
            Op::Conv { .. } => match have {
                Some(l) if f.simd % l == 0 => l,
                _ => f.simd,
            },
            _ => f.pe,
        }
    }

    fn layer(&mut self, i: usize) -> Result<usize, String> {
        let net = self.net;
        let layer = &net.layers[i];
        let info = &net.info()[i];
        let fold = self.folds[i];
        let name = layer.name.clone();
        let out_kind = info.kind;
        let out_shape = info.shape;
        let srcs = info.srcs.clone();
        match &layer.op {
            Op::Dense { .. } | Op::Conv { .. } => {
                let (ishape, ikind) = net.src_shape_kind(srcs[0]);
                let ie = Elem::of(ikind);
                let s = self.take(srcs[0]);
                let have = self.streams[s].lanes;
                let s = self.lanes(s, self.wanted_lanes(i, Some(have)));
                let s = if let Op::Conv {
                    kernel,
                    stride,
                    padding,
                    pad_value,
                    ..
                } = layer.op
                {
                    let cfg = WindowConfig {
                        bits: ie.bits,
                        in_lanes: self.streams[s].lanes,
                        simd: fold.simd,
                        channels: ishape.c,
                        height: ishape.h,
                        width: ishape.w,
                        kernel,
                        stride,
                        padding,
                        pad_value,
                        binary: ie.binary,
                    };
                    if cfg.words() > 1 << 15 {
                        return Err(format!(
                            "layer '{name}': line buffer of {} words is larger than 2^15",
                            cfg.words()
                        ));
                    }
                    let (oh, ow) = cfg.out_hw();
                    let e = oh * ow * kernel * kernel * ishape.c;
                    let in_last = self.streams[s].last;
                    let wfold = Fold {
                        pe: cfg.in_lanes,
                        simd: fold.simd,
                    };
                    let outs = vec![(fold.simd, ie, e)];
                    let label = vec![format!("{name} (window)")];
                    let o = self.engine(cfg.clone(), vec![s], outs, label, wfold)[0];
                    self.streams[o].flag = cfg.pad_flag();
                    // windows wholly in the bottom padding (p ≥ k) drain after the last input
                    self.streams[o].last = self.streams[o]
                        .last
                        .max(in_last + cfg.latency() + cfg.drain_beats());
                    o
                } else {
                    s
                };
                let threshold = self.fused_threshold(i);
                let (kind, oshape, mut layers) = match threshold {
                    Some(t) => (
                        net.info()[t].kind,
                        net.info()[t].shape,
                        vec![name.clone(), net.layers[t].name.clone()],
                    ),
                    None => (out_kind, out_shape, vec![name.clone()]),
                };
                layers.dedup();
                // the engine takes a vector during its first neuron fold and replays it
                // for the others: a FIFO of one vector lets the producer deliver the next
                // one meanwhile (else the two alternate and the interval nearly doubles)
                let (flag, width) = (self.streams[s].flag, self.streams[s].width());
                let kind_e: EngineKind = if ie.binary {
                    MvtuSpec::new(net, i, threshold, fold, width, flag).into()
                } else {
                    MvtuIntSpec::new(net, i, threshold, fold, width).into()
                };
                let (nf, sf) = match &kind_e {
                    EngineKind::Mvtu(m) => (m.0.nf(), m.0.sf()),
                    EngineKind::MvtuInt(m) => (m.0.nf(), m.0.sf()),
                    _ => unreachable!("a MAC engine"),
                };
                let s = if nf > 1 {
                    let o = self.fifo(s, sf.max(2), format!("{name} (input)"));
                    self.streams[o].flag = flag;
                    o
                } else {
                    s
                };
                let outs = vec![(fold.pe, Elem::of(kind), oshape.len())];
                Ok(self.engine(kind_e, vec![s], outs, layers, fold)[0])
            }
            Op::Threshold { .. } => {
                let s = self.take(srcs[0]);
                let s = self.lanes(s, fold.pe);
                let l = fold.pe;
                let spec = ThresholdSpec::new(net, i, l);
                let outs = vec![(l, Elem::of(out_kind), out_shape.len())];
                let o = self.engine(spec, vec![s], outs, vec![name], fold);
                Ok(o[0])
            }
            Op::MaxPool { kernel, stride } => {
                let (ishape, ikind) = net.src_shape_kind(srcs[0]);
                let s = self.take(srcs[0]);
                let s = self.lanes(s, fold.pe);
                let ie = Elem::of(ikind);
                let cfg = PoolConfig {
                    bits: ie.bits,
                    lanes: fold.pe,
                    channels: ishape.c,
                    height: ishape.h,
                    width: ishape.w,
                    kernel: *kernel,
                    stride: *stride,
                    signed: ie.signed,
                };
                let w = cfg.window();
                if w.words() > 1 << 15 {
                    return Err(format!(
                        "layer '{name}': line buffer of {} words is larger than 2^15",
                        w.words()
                    ));
                }
                let outs = vec![(fold.pe, ie, out_shape.len())];
                let o = self.engine(cfg, vec![s], outs, vec![name], fold);
                Ok(o[0])
            }
            Op::SumPool => {
                let (ishape, ikind) = net.src_shape_kind(srcs[0]);
                let s = self.take(srcs[0]);
                let s = self.lanes(s, fold.pe);
                let ie = Elem::of(ikind);
                let cfg = SumConfig {
                    bits: ie.bits,
                    lanes: fold.pe,
                    channels: ishape.c,
                    height: ishape.h,
                    width: ishape.w,
                    signed: ie.signed,
                    range: Some(ikind.range()),
                };
                let (y, signed) = cfg.out_bits();
                let oe = Elem::of(out_kind);
                if (y, signed) != (oe.bits, oe.signed) {
                    return Err(format!(
                        "layer '{name}': sumpool width {y} differs from the model's {}",
                        oe.bits
                    ));
                }
                let outs = vec![(fold.pe, oe, out_shape.len())];
                let o = self.engine(cfg, vec![s], outs, vec![name], fold);
                Ok(o[0])
            }
            Op::Add => {
                let mut ins = vec![];
                let mut kinds = vec![];
                for &src in &srcs {
                    let s = self.take(src);
                    ins.push(self.lanes(s, fold.pe));
                    kinds.push(net.src_shape_kind(src).1);
                }
                // more inputs than one adder takes: the first ones are summed first, and
                // their sum (exact: ranges add up) is an input of the next adder
                let mut part = 0;
                while ins.len() > MAX_INPUTS {
                    let rest = ins.split_off(MAX_INPUTS);
                    let rest_kinds = kinds.split_off(MAX_INPUTS);
                    let sum = add_kind(&kinds);
                    let s = self.adder(ins, kinds, fold, format!("{name} (part {part})"))?;
                    part += 1;
                    ins = std::iter::once(s).chain(rest).collect();
                    kinds = std::iter::once(sum).chain(rest_kinds).collect();
                }
                debug_assert_eq!(Elem::of(add_kind(&kinds)), Elem::of(out_kind));
                self.adder(ins, kinds, fold, name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::folding::{default_target, plan};
    use bnnforge_model::random::{random_network, RandomConfig};
    use std::collections::BTreeMap;

    /// For random networks: every one has a design, a well-formed graph (every stream
    /// but the output read exactly once, stream 0 the input), the output is one lane of
    /// the model's output kind in C, H, W order, and the interval is the slowest
    /// engine's, at least the folding plan's slowest layer.
    #[test]
    fn random_designs_are_well_formed() {
        let seeds = bnnforge_model::random::test_seeds("random_designs_are_well_formed", 0, 80);
        for seed in seeds {
            let net = random_network(seed, &RandomConfig::default());
            let p = plan(&net, &BTreeMap::new(), Some(default_target(&net))).unwrap();
            let d = Design::new(&net, &p.folds).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let mut reads = vec![0; d.streams.len()];
            let mut writes = vec![0; d.streams.len()];
            for e in &d.engines {
                e.inputs.iter().for_each(|&s| reads[s] += 1);
                e.outputs.iter().for_each(|&s| writes[s] += 1);
                assert!(e.generics.iter().all(|&g| g >= 1), "seed {seed}: {e:?}");
            }
            for s in 0..d.streams.len() {
                let want_reads = (s != d.output) as usize;
                let want_writes = (s != 0) as usize;
                assert_eq!(
                    (reads[s], writes[s]),
                    (want_reads, want_writes),
                    "seed {seed}: stream {s}"
                );
            }
            let o = d.output();
            assert_eq!(o.lanes, 1, "seed {seed}");
            assert_eq!(o.elem, Elem::of(net.output_kind()), "seed {seed}");
            assert_eq!(o.elements, net.output_shape().len(), "seed {seed}");
            assert_eq!(d.input().elements, net.input.shape.len(), "seed {seed}");
            // each MAC engine runs at its layer's planned pace, and the design no faster
            // than its slowest engine (the cycle model: engines may hold each other back)
            for e in &d.engines {
                if let EngineKind::Mvtu(MvtuSpec(m)) | EngineKind::MvtuInt(MvtuIntSpec(m)) = &e.kind
                {
                    let layer = m.layer;
                    assert_eq!(e.cycles, p.cycles[layer], "seed {seed}: {}", e.module);
                }
            }
            let slowest = d.engines.iter().map(|e| e.cycles).max().unwrap();
            assert_eq!(d.slowest_engine_cycles(), slowest, "seed {seed}");
            assert!(d.cycles_per_frame() >= slowest, "seed {seed}");
            assert!(d.latency_cycles() >= o.beats() as u64, "seed {seed}");
        }
    }

    /// Over random networks, folded from the fastest target to the slowest: every engine
    /// stays within its block's beat width (else the engine program panics). Networks
    /// 0..100 always (19 had an 88-bit sumpool), then 40 from a random start.
    #[test]
    fn random_engines_fit_the_blocks() {
        use crate::engines::sliding_window::MAX_BEAT;
        use rand::Rng;
        let mut rng = bnnforge_model::random::test_rng("random_engines_fit_the_blocks");
        let start = rng.gen_range(0..1u64 << 32);
        for seed in (0..100).chain(start..start + 40) {
            let net = random_network(seed, &RandomConfig::default());
            let fast = default_target(&net);
            for target in [Some(1), Some(fast / 4), Some(fast), Some(fast * 16), None] {
                let p = plan(&net, &BTreeMap::new(), target).unwrap();
                let at = format!("network seed {seed}, target {target:?}");
                let d = Design::new(&net, &p.folds).unwrap_or_else(|e| panic!("{at}: {e}"));
                for e in &d.engines {
                    let g = &e.generics;
                    let ok = match &e.kind {
                        EngineKind::Window(_) => g[1] <= MAX_BEAT,
                        EngineKind::MaxPool(_) => g[0] <= MAX_BEAT,
                        EngineKind::SumPool(cfg) => {
                            g[1] <= crate::engines::sumpool::MAX_OW && cfg.out_bits().0 < 64
                        }
                        EngineKind::Mvtu(_) | EngineKind::MvtuInt(_) => {
                            (1..=crate::compile::folding::MAX_SIMD).contains(&g[0])
                        }
                        _ => true,
                    };
                    assert!(ok, "{at}: {} has generics {g:?}", e.module);
                }
            }
        }
    }

    /// A stream read by 11 layers and an add of 11 inputs: forks of 8 and 4 ways
    /// chained, adders of 8 and 4 inputs chained (the first adder's sum is an input of
    /// the second), a FIFO on every adder input, and the top wires them with packed
    /// ports.
    #[test]
    fn wide_fork_and_add_are_chained() {
        let net = bnnforge_model::random::wide_add_network(5, 11);
        let p = plan(&net, &BTreeMap::new(), Some(default_target(&net))).unwrap();
        let d = Design::new(&net, &p.folds).unwrap();
        let forks: Vec<usize> = d
            .engines
            .iter()
            .filter_map(|e| match &e.kind {
                EngineKind::Fork(f) => {
                    assert_eq!(e.generics, [f.ways, d.streams[e.inputs[0]].width()]);
                    Some(f.ways)
                }
                _ => None,
            })
            .collect();
        assert_eq!(forks, [8, 4]);
        let adds: Vec<&Engine> = d
            .engines
            .iter()
            .filter(|e| matches!(e.kind, EngineKind::Add(_)))
            .collect();
        assert_eq!(adds.len(), 2);
        assert_eq!((adds[0].generics[0], adds[1].generics[0]), (8, 4));
        // the FIFO in front of a stream `s`, if any
        let fifo = |s: usize| {
            d.engines
                .iter()
                .find(|f| matches!(f.kind, EngineKind::Fifo(_)) && f.outputs[0] == s)
        };
        let partial = adds[1].inputs[0];
        let partial = fifo(partial).map_or(partial, |f| f.inputs[0]);
        assert_eq!(partial, adds[0].outputs[0], "the partial sum");
        let fifo_fed = |e: &Engine| e.inputs.iter().filter(|&&s| fifo(s).is_some()).count();
        // the branches arrive within a few cycles of each other, so the latest input
        // of each adder gets a short FIFO as well
        assert_eq!((fifo_fed(adds[0]), fifo_fed(adds[1])), (8, 4));
        let EngineKind::Add(AddSpec { kinds, .. }) = &adds[1].kind else {
            unreachable!()
        };
        assert_eq!(
            Elem::of(crate::engines::residual_adder::add_kind(kinds)),
            Elem::of(net.output_kind())
        );
        let top = d.top_verilog();
        assert_eq!(top.matches(".in_valid({").count(), 2, "{top}");
        assert_eq!(top.matches(".out_valid({").count(), 2, "{top}");
    }
}
