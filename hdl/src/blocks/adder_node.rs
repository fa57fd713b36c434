//! `AdderNode<W>`: one node of an adder tree, `s = a + b` on `W` bits.
//!
//! ```text
//!   a[W] ──┐
//!          (+)── s[W]     combinational, wraps modulo 2^W
//!   b[W] ──┘
//! ```
//!
//! Ports:
//! - `a`, `b` (in, `Bits<W>`): the operands.
//! - `s` (out, `Bits<W>`): `a + b` modulo 2^W. The tree that uses it sizes `W` so the
//!   sum never wraps; operands narrower than `W` arrive zero-extended and yosys
//!   (`wreduce`) trims the unused high bits of each node.
//!
//! Parameter: `W` ≥ 1, the width of operands and result.
//!
//! It exists as its own block because rust-hdl kernels cannot hold arrays of
//! signals: a tree is built from `Vec`s of these nodes (see [`crate::blocks::popcount`]).

use rust_hdl::prelude::*;

/// `s = a + b` on `W` bits (see the module documentation).
#[derive(LogicBlock)]
pub struct AdderNode<const W: usize> {
    /// First operand.
    pub a: Signal<In, Bits<W>>,
    /// Second operand.
    pub b: Signal<In, Bits<W>>,
    /// Sum, modulo 2^W.
    pub s: Signal<Out, Bits<W>>,
}

impl<const W: usize> Default for AdderNode<W> {
    fn default() -> Self {
        assert!(W >= 1, "AdderNode needs W >= 1");
        Self {
            a: Default::default(),
            b: Default::default(),
            s: Default::default(),
        }
    }
}

impl<const W: usize> Logic for AdderNode<W> {
    #[hdl_gen]
    fn update(&mut self) {
        self.s.next = self.a.val() + self.b.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_modulo_width_in_sim_and_is_clean_in_yosys() {
        let mut uut = AdderNode::<3>::default();
        uut.connect_all();
        for a in 0..8u64 {
            for b in 0..8u64 {
                uut.a.next = a.into();
                uut.b.next = b.into();
                assert!(simulate(&mut uut, 10));
                assert_eq!(uut.s.val().to_u64(), (a + b) % 8, "{a} + {b}");
            }
        }
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_adder_node", &v).unwrap();
    }
}
