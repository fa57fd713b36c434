//! Instantiating a [`Design`]'s engines with their exact const generics.
//!
//! Engine widths are const generics (rust-hdl types), so the Verilog of an engine can
//! only be produced by code compiled for those widths. `bnnforge build` therefore does
//! what FINN does with its HLS templates: it writes a tiny program whose `main` is
//! [`run`] over a table of the engines' emitters (`emit` in each engine's file), each
//! instantiated with one engine's generics (e.g. `engines::mvtu::emit::<16, 16, 5, …>`),
//! compiles it once (cached by the table's hash), and runs it. [`rust_call`] writes the table entries; every emitter
//! checks that the design asks for exactly the widths it was compiled for, builds the
//! block from the network, checks its cycles and latency against the design's model
//! and returns its module tree.

use crate::compile::design::{Design, Engine};
use crate::compile::folding::Fold;
use crate::compile::module_tree::module_tree;
use crate::compile::top::{with_lint_waivers, GENERATED_HEADER};
use crate::engines::OfKind;
use bnnforge_model::Network;
use rust_hdl::prelude::*;
use std::path::Path;

/// An engine emitter: the Verilog of engine `i` of the design.
pub type Emitter = fn(&Network, &Design, usize) -> String;

/// Engine `i` of `d` and its spec, checked to be an `S` whose generics are `generics`
/// (the widths the emitter was compiled for).
pub fn engine<'a, S: OfKind>(d: &'a Design, i: usize, generics: &[usize]) -> (&'a Engine, &'a S) {
    let e = &d.engines[i];
    let s = S::of(&e.kind)
        .unwrap_or_else(|| panic!("{}: not a {}", e.module, std::any::type_name::<S>()));
    assert_eq!(
        e.generics, generics,
        "engine {} was compiled for other widths",
        e.module
    );
    (e, s)
}

/// The module tree of block `b` as engine `e`, after checking the block's own `cycles`
/// and `latency` against the design's.
pub fn finish<B: Block>(mut b: B, e: &Engine, cycles: u64, latency: u64) -> String {
    assert_eq!(
        (cycles, latency),
        (e.cycles, e.latency),
        "{}: the block's cycles/latency differ from the design's model",
        e.module
    );
    b.connect_all();
    module_tree(&b, &e.module).unwrap_or_else(|err| panic!("{err}"))
}

/// The Rust path of engine `e`'s emitter with its generics, e.g.
/// `bnnforge_hdl::stream::fifo::emit::<8, 5>`.
pub fn rust_call(e: &Engine) -> String {
    let g: Vec<String> = e.generics.iter().map(|g| g.to_string()).collect();
    format!("{}::<{}>", e.kind.spec().emitter(), g.join(", "))
}

/// The engine program's `main`: `ARGS = MODEL.yaml FOLDS OUTDIR`, FOLDS one `pe simd`
/// line per layer (then `spram i j …`, the engines with weights in SPRAM, if any); writes `OUTDIR/<module>.v` for every engine, using `emitters[i]`
/// for engine i.
pub fn run(emitters: &[Emitter]) {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 4, "usage: engines MODEL.yaml FOLDS OUTDIR");
    let net = bnnforge_model::load(Path::new(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&args[2]).expect("folds file");
    let spram: Vec<usize> = text
        .lines()
        .filter_map(|l| l.strip_prefix("spram "))
        .flat_map(|l| l.split_whitespace().map(|x| x.parse().unwrap()))
        .collect();
    let folds: Vec<Fold> = text
        .lines()
        .filter(|l| !l.starts_with("spram"))
        .map(|l| {
            let v: Vec<usize> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            Fold {
                pe: v[0],
                simd: v[1],
            }
        })
        .collect();
    let mut design = Design::new(&net, &folds).unwrap_or_else(|e| panic!("{e}"));
    design.set_spram(&spram).unwrap_or_else(|e| panic!("{e}"));
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
