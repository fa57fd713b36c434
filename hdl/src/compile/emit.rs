//! Instantiating a [`Design`]'s engines with their exact const generics.
//!
//! Engine widths are const generics (rust-hdl types), so the Verilog of an engine can
//! only be produced by code compiled for those widths. `bnnforge build` therefore does
//! what FINN does with its HLS templates: it writes a tiny program whose `main` is
//! [`run`] over a table of this module's emitter functions, each instantiated with one
//! engine's generics (e.g. `emit::mvtu::<16, 16, 5, …>`), compiles it once (cached by the
//! table's hash), and runs it. [`rust_call`] writes the table entries; every emitter
//! checks that the design asks for exactly the widths it was compiled for, builds the
//! block from the network, checks its cycles and latency against the design's model
//! and returns its module tree.

use crate::compile::design::{Design, Engine, EngineKind};
use crate::compile::folding::Fold;
use crate::compile::module_tree::module_tree;
use crate::compile::top::{with_lint_waivers, GENERATED_HEADER};
use crate::engines::chw_reorder::ChwReorder;
use crate::engines::maxpool::MaxPool;
use crate::engines::mvtu::Mvtu;
use crate::engines::mvtu_int::MvtuInt;
use crate::engines::residual_adder::ResidualAdder;
use crate::engines::sliding_window::SlidingWindow;
use crate::engines::sumpool::SumPool;
use crate::engines::threshold_engine::ThresholdEngine;
use crate::stream::fifo::StreamFifo;
use crate::stream::fork::StreamFork;
use crate::stream::lane_converter::LaneConverter;
use crate::stream::ratio_lane_converter::RatioLaneConverter;
use bnnforge_model::Network;
use rust_hdl::prelude::*;
use std::path::Path;

/// An engine emitter: the Verilog of engine `i` of the design.
pub type Emitter = fn(&Network, &Design, usize) -> String;

fn check(e: &Engine, generics: &[usize]) {
    assert_eq!(
        e.generics, generics,
        "engine {} was compiled for other widths",
        e.module
    );
}

fn finish<B: Block>(mut b: B, e: &Engine, cycles: u64, latency: u64) -> String {
    assert_eq!(
        (cycles, latency),
        (e.cycles, e.latency),
        "{}: the block's cycles/latency differ from the design's model",
        e.module
    );
    b.connect_all();
    module_tree(&b, &e.module).unwrap_or_else(|err| panic!("{err}"))
}

/// The Rust path of engine `e`'s emitter, e.g. `bnnforge_hdl::compile::emit::fifo::<8, 5>`.
pub fn rust_call(e: &Engine) -> String {
    let f = match &e.kind {
        EngineKind::Mvtu { .. } => "mvtu",
        EngineKind::MvtuInt { .. } => "mvtu_int",
        EngineKind::Threshold { .. } => "threshold",
        EngineKind::Window(_) => "window",
        EngineKind::MaxPool(_) => "maxpool",
        EngineKind::SumPool(_) => "sumpool",
        EngineKind::Add { .. } => "add",
        EngineKind::Fork { .. } => "fork",
        EngineKind::Fifo { .. } => "fifo",
        EngineKind::Lanes { ratio: false, .. } => "lanes",
        EngineKind::Lanes { ratio: true, .. } => "ratio_lanes",
        EngineKind::Reorder { .. } => "reorder",
    };
    let g: Vec<String> = e.generics.iter().map(|g| g.to_string()).collect();
    format!("bnnforge_hdl::compile::emit::{f}::<{}>", g.join(", "))
}

/// The engine program's `main`: `ARGS = MODEL.yaml FOLDS OUTDIR`, FOLDS one `pe simd`
/// line per layer; writes `OUTDIR/<module>.v` for every engine, using `emitters[i]`
/// for engine i.
pub fn run(emitters: &[Emitter]) {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 4, "usage: engines MODEL.yaml FOLDS OUTDIR");
    let net = bnnforge_model::load(Path::new(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let folds: Vec<Fold> = std::fs::read_to_string(&args[2])
        .expect("folds file")
        .lines()
        .map(|l| {
            let v: Vec<usize> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            Fold {
                pe: v[0],
                simd: v[1],
            }
        })
        .collect();
    let design = Design::new(&net, &folds).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        design.engines.len(),
        emitters.len(),
        "the engine program was generated for another design"
    );
    let out = Path::new(&args[3]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= emitters.len() {
                    break;
                }
                let v = emitters[i](&net, &design, i);
                let path = out.join(format!("{}.v", design.engines[i].module));
                std::fs::write(
                    &path,
                    format!("{GENERATED_HEADER}\n{}", with_lint_waivers(&v)),
                )
                .expect("write engine Verilog");
            });
        }
    });
}

/// [`Mvtu`] of a binary-input dense/conv layer.
pub fn mvtu<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW]);
    let EngineKind::Mvtu { layer, threshold } = e.kind else {
        panic!("{}: not an mvtu", e.module)
    };
    let b =
        Mvtu::<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(net, layer, threshold);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`MvtuInt`] of an integer-input dense/conv layer.
pub fn mvtu_int<
    const SIMD: usize,
    const IB: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW]);
    let EngineKind::MvtuInt { layer, threshold } = e.kind else {
        panic!("{}: not an mvtu_int", e.module)
    };
    let b = MvtuInt::<SIMD, IB, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
        net, layer, threshold,
    );
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`ThresholdEngine`] of a standalone threshold layer.
pub fn threshold<
    const IB: usize,
    const IW: usize,
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[IB, IW, Y, U, K, B, CA, OW]);
    let EngineKind::Threshold { layer } = e.kind else {
        panic!("{}: not a threshold", e.module)
    };
    let b = ThresholdEngine::<IB, IW, Y, U, K, B, CA, OW>::from_network(net, layer);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`SlidingWindow`] in front of a conv.
pub fn window<const IW: usize, const OW: usize, const CW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[IW, OW, CW]);
    let EngineKind::Window(cfg) = &e.kind else {
        panic!("{}: not a window", e.module)
    };
    let b = SlidingWindow::<IW, OW, CW>::new(cfg);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`MaxPool`].
pub fn maxpool<const W: usize, const CW: usize, const GW: usize, const PW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[W, CW, GW, PW]);
    let EngineKind::MaxPool(cfg) = &e.kind else {
        panic!("{}: not a maxpool", e.module)
    };
    let b = MaxPool::<W, CW, GW, PW>::new(cfg);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`SumPool`].
pub fn sumpool<const IW: usize, const OW: usize, const GW: usize, const PW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[IW, OW, GW, PW]);
    let EngineKind::SumPool(cfg) = &e.kind else {
        panic!("{}: not a sumpool", e.module)
    };
    let b = SumPool::<IW, OW, GW, PW>::new(cfg);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`ResidualAdder`] of `kinds.len()` streams.
pub fn add<const N: usize, const IW: usize, const OB: usize, const OW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[N, IW, OB, OW]);
    let EngineKind::Add { kinds } = &e.kind else {
        panic!("{}: not an add", e.module)
    };
    let b = ResidualAdder::<N, IW, OB, OW>::new(kinds);
    // one beat per cycle: the frame's beats
    let c = e.cycles * b.cycles_per_frame();
    let l = b.latency();
    finish(b, e, c, l)
}

/// [`StreamFork`] to `N` consumers.
pub fn fork<const N: usize, const W: usize>(_: &Network, d: &Design, i: usize) -> String {
    let e = &d.engines[i];
    check(e, &[N, W]);
    let EngineKind::Fork { ways } = e.kind else {
        panic!("{}: not a fork", e.module)
    };
    assert_eq!(ways, N, "{}: a fork of {ways} ways", e.module);
    let b = StreamFork::<N, W>::new();
    let (c, l) = (e.cycles * b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`StreamFifo`] on a residual branch.
pub fn fifo<const W: usize, const A: usize>(_: &Network, d: &Design, i: usize) -> String {
    let e = &d.engines[i];
    check(e, &[W, A]);
    let EngineKind::Fifo { depth } = e.kind else {
        panic!("{}: not a fifo", e.module)
    };
    let b = StreamFifo::<W, A>::new(depth);
    let (c, l) = (e.cycles * b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`LaneConverter`].
pub fn lanes<const IB: usize, const IW: usize, const OW: usize, const BW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[IB, IW, OW, BW]);
    let EngineKind::Lanes {
        elements,
        ratio: false,
    } = e.kind
    else {
        panic!("{}: not a general lane converter", e.module)
    };
    let b = LaneConverter::<IB, IW, OW, BW>::new(elements);
    let (il, ol) = (IW / IB, OW / IB);
    // a frame boundary costs a cycle when neither lane count divides the frame
    let c = b.cycles_per_frame() + (elements % il != 0 && elements % ol != 0) as u64;
    let l = b.latency();
    finish(b, e, c, l)
}

/// [`RatioLaneConverter`] (one lane count a multiple of the other).
pub fn ratio_lanes<
    const IB: usize,
    const IW: usize,
    const OW: usize,
    const JB: usize,
    const FB: usize,
>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let e = &d.engines[i];
    check(e, &[IB, IW, OW, JB, FB]);
    let EngineKind::Lanes {
        elements,
        ratio: true,
    } = e.kind
    else {
        panic!("{}: not a ratio lane converter", e.module)
    };
    let b = RatioLaneConverter::<IB, IW, OW, JB, FB>::new(elements);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

/// [`ChwReorder`] at the output.
pub fn reorder<const B: usize, const A: usize>(_: &Network, d: &Design, i: usize) -> String {
    let e = &d.engines[i];
    check(e, &[B, A]);
    let EngineKind::Reorder { c, h, w } = e.kind else {
        panic!("{}: not a reorder", e.module)
    };
    let b = ChwReorder::<B, A>::new(c, h, w);
    let (cy, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, cy, l)
}
