//! Measures option (a) of DESIGN.md: dispatching run-time widths onto a bounded menu
//! of const-generic instantiations. This example compiles `MvuPe<SIMD, P, A, Y>` for
//! SIMD ∈ {1, 2, 4, …, 64} × A ∈ 2..=24 (baseline: 1 instantiation) and generates the
//! Verilog of the one a fan-in needs, under a per-layer module name.
//!
//! `cargo run --example menu_dispatch -- SIMD N NAME` prints the layer's Verilog.
//! Built with `--features` nothing special; time it with `cargo build --example`.

use bnnforge_hdl::bits_to_hold;
use bnnforge_hdl::blocks::mvu_pe::MvuPe;
use bnnforge_hdl::compile::module_tree::module_tree;
use rust_hdl::prelude::*;

fn layer<const S: usize, const P: usize, const A: usize, const Y: usize>(
    n: u64,
    name: &str,
) -> Result<String, String> {
    let mut pe = MvuPe::<S, P, A, Y>::new(n, false);
    pe.connect_all();
    module_tree(&pe, name)
}

/// One match arm per (SIMD, P, A, Y) of the menu.
macro_rules! menu {
    ($simd:expr, $a:expr, $n:expr, $name:expr; $(($s:literal, $p:literal, $aa:literal, $y:literal),)*) => {
        match ($simd, $a) {
            $(($s, $aa) => layer::<$s, $p, $aa, $y>($n, $name),)*
            _ => Err(format!("no instantiation for SIMD {} with a {}-bit accumulator", $simd, $a)),
        }
    };
}

fn generate(simd: usize, n: u64, name: &str) -> Result<String, String> {
    let a = bits_to_hold(n);
    menu!(simd, a, n, name;
    (64, 7, 10, 11),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let simd: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(576);
    let name = args.get(3).cloned().unwrap_or_else(|| "layer0_pe".into());
    match generate(simd, n, &name) {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
