//! `AdderNode<W>`: one node of an adder tree, `s = a + b` modulo 2^W, combinational. A
//! block of its own because rust-hdl kernels cannot hold arrays of signals: a tree is
//! `Vec`s of these nodes ([`crate::blocks::popcount`]). The tree sizes `W` so the sum
//! never wraps; narrower operands arrive zero-extended and yosys trims the unused bits.
//!
//! Ports: `a`, `b: Bits<W>` (in), `s: Bits<W>` (out). Generic: `W` ≥ 1.
//!
//! [`SumNode<I, O>`]: `s = a + b` on `I`-bit operands into `O` bits, `O` ≤ I + 1 as wide
//! as the caller's sums reach (a node of level I of a popcount tree: I + 1, its root: the
//! count's width). Exact widths let yosys's `alumacc` merge a chain of nodes into one
//! `$macc` whether or not the design is flattened ([`crate::blocks::popcount::PopcountPipe`]).

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

/// `s = a + b`, `I`-bit operands, `O`-bit sum (see the module documentation).
#[derive(LogicBlock)]
pub struct SumNode<const I: usize, const O: usize> {
    /// First operand.
    pub a: Signal<In, Bits<I>>,
    /// Second operand.
    pub b: Signal<In, Bits<I>>,
    /// The sum, exact.
    pub s: Signal<Out, Bits<O>>,
}

impl<const I: usize, const O: usize> Default for SumNode<I, O> {
    fn default() -> Self {
        assert!(
            I >= 1 && (1..=I + 1).contains(&O),
            "SumNode needs 1 <= O <= I + 1 (I = {I}, O = {O})"
        );
        Self {
            a: Default::default(),
            b: Default::default(),
            s: Default::default(),
        }
    }
}

impl<const I: usize, const O: usize> Logic for SumNode<I, O> {
    #[hdl_gen]
    fn update(&mut self) {
        self.s.next = bit_cast::<O, I>(self.a.val()) + bit_cast::<O, I>(self.b.val());
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

    #[test]
    fn sum_node_is_exact_in_sim_and_clean_in_yosys() {
        let mut uut = SumNode::<3, 4>::default();
        uut.connect_all();
        for a in 0..8u64 {
            for b in 0..8u64 {
                uut.a.next = a.into();
                uut.b.next = b.into();
                assert!(simulate(&mut uut, 10));
                assert_eq!(uut.s.val().to_u64(), a + b, "{a} + {b}");
            }
        }
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_sum_node", &v).unwrap();
    }
}
