//! Measures option (a) of DESIGN.md: dispatching run-time widths onto a bounded menu
//! of const-generic instantiations. This example compiles `MvuPe<SIMD, P, A, Y>` for
//! SIMD ∈ {1, 2, 4, …, 64} × A ∈ 2..=24 (161 instantiations) and generates the
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
    (1, 1, 2, 3),
    (1, 1, 3, 4),
    (1, 1, 4, 5),
    (1, 1, 5, 6),
    (1, 1, 6, 7),
    (1, 1, 7, 8),
    (1, 1, 8, 9),
    (1, 1, 9, 10),
    (1, 1, 10, 11),
    (1, 1, 11, 12),
    (1, 1, 12, 13),
    (1, 1, 13, 14),
    (1, 1, 14, 15),
    (1, 1, 15, 16),
    (1, 1, 16, 17),
    (1, 1, 17, 18),
    (1, 1, 18, 19),
    (1, 1, 19, 20),
    (1, 1, 20, 21),
    (1, 1, 21, 22),
    (1, 1, 22, 23),
    (1, 1, 23, 24),
    (1, 1, 24, 25),
    (2, 2, 2, 3),
    (2, 2, 3, 4),
    (2, 2, 4, 5),
    (2, 2, 5, 6),
    (2, 2, 6, 7),
    (2, 2, 7, 8),
    (2, 2, 8, 9),
    (2, 2, 9, 10),
    (2, 2, 10, 11),
    (2, 2, 11, 12),
    (2, 2, 12, 13),
    (2, 2, 13, 14),
    (2, 2, 14, 15),
    (2, 2, 15, 16),
    (2, 2, 16, 17),
    (2, 2, 17, 18),
    (2, 2, 18, 19),
    (2, 2, 19, 20),
    (2, 2, 20, 21),
    (2, 2, 21, 22),
    (2, 2, 22, 23),
    (2, 2, 23, 24),
    (2, 2, 24, 25),
    (4, 3, 2, 3),
    (4, 3, 3, 4),
    (4, 3, 4, 5),
    (4, 3, 5, 6),
    (4, 3, 6, 7),
    (4, 3, 7, 8),
    (4, 3, 8, 9),
    (4, 3, 9, 10),
    (4, 3, 10, 11),
    (4, 3, 11, 12),
    (4, 3, 12, 13),
    (4, 3, 13, 14),
    (4, 3, 14, 15),
    (4, 3, 15, 16),
    (4, 3, 16, 17),
    (4, 3, 17, 18),
    (4, 3, 18, 19),
    (4, 3, 19, 20),
    (4, 3, 20, 21),
    (4, 3, 21, 22),
    (4, 3, 22, 23),
    (4, 3, 23, 24),
    (4, 3, 24, 25),
    (8, 4, 2, 3),
    (8, 4, 3, 4),
    (8, 4, 4, 5),
    (8, 4, 5, 6),
    (8, 4, 6, 7),
    (8, 4, 7, 8),
    (8, 4, 8, 9),
    (8, 4, 9, 10),
    (8, 4, 10, 11),
    (8, 4, 11, 12),
    (8, 4, 12, 13),
    (8, 4, 13, 14),
    (8, 4, 14, 15),
    (8, 4, 15, 16),
    (8, 4, 16, 17),
    (8, 4, 17, 18),
    (8, 4, 18, 19),
    (8, 4, 19, 20),
    (8, 4, 20, 21),
    (8, 4, 21, 22),
    (8, 4, 22, 23),
    (8, 4, 23, 24),
    (8, 4, 24, 25),
    (16, 5, 2, 3),
    (16, 5, 3, 4),
    (16, 5, 4, 5),
    (16, 5, 5, 6),
    (16, 5, 6, 7),
    (16, 5, 7, 8),
    (16, 5, 8, 9),
    (16, 5, 9, 10),
    (16, 5, 10, 11),
    (16, 5, 11, 12),
    (16, 5, 12, 13),
    (16, 5, 13, 14),
    (16, 5, 14, 15),
    (16, 5, 15, 16),
    (16, 5, 16, 17),
    (16, 5, 17, 18),
    (16, 5, 18, 19),
    (16, 5, 19, 20),
    (16, 5, 20, 21),
    (16, 5, 21, 22),
    (16, 5, 22, 23),
    (16, 5, 23, 24),
    (16, 5, 24, 25),
    (32, 6, 2, 3),
    (32, 6, 3, 4),
    (32, 6, 4, 5),
    (32, 6, 5, 6),
    (32, 6, 6, 7),
    (32, 6, 7, 8),
    (32, 6, 8, 9),
    (32, 6, 9, 10),
    (32, 6, 10, 11),
    (32, 6, 11, 12),
    (32, 6, 12, 13),
    (32, 6, 13, 14),
    (32, 6, 14, 15),
    (32, 6, 15, 16),
    (32, 6, 16, 17),
    (32, 6, 17, 18),
    (32, 6, 18, 19),
    (32, 6, 19, 20),
    (32, 6, 20, 21),
    (32, 6, 21, 22),
    (32, 6, 22, 23),
    (32, 6, 23, 24),
    (32, 6, 24, 25),
    (64, 7, 2, 3),
    (64, 7, 3, 4),
    (64, 7, 4, 5),
    (64, 7, 5, 6),
    (64, 7, 6, 7),
    (64, 7, 7, 8),
    (64, 7, 8, 9),
    (64, 7, 9, 10),
    (64, 7, 10, 11),
    (64, 7, 11, 12),
    (64, 7, 12, 13),
    (64, 7, 13, 14),
    (64, 7, 14, 15),
    (64, 7, 15, 16),
    (64, 7, 16, 17),
    (64, 7, 17, 18),
    (64, 7, 18, 19),
    (64, 7, 19, 20),
    (64, 7, 20, 21),
    (64, 7, 21, 22),
    (64, 7, 22, 23),
    (64, 7, 23, 24),
    (64, 7, 24, 25),
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
