//! `CompareBit<U, K>`: one comparator of a threshold bank: `out` = `prev` with bit
//! `index` set to `u >= t` (unsigned), combinational. Chained `prev ← out` in a `Vec`, it
//! assembles a comparison vector one bit per block, as rust-hdl kernels cannot assign
//! single bits of a local signal; after flattening yosys keeps only the K comparators.
//!
//! Two forms of the same comparison: `u >= t`, which yosys maps to a carry chain (one
//! LUT4 per bit, short and fast whatever `t` is), or, for a `t` that is a constant
//! after flattening ([`CompareBit::constant`]), the bits MSB first through a chain of
//! 2:1 muxes (the highest bit where `u` and `t` differ decides), plain logic that ABC
//! folds with the constant into about U/3 LUT4s (a 12-bit compare: 4 instead of 15).
//!
//! Ports: `u`, `t: Bits<U>` (in), `prev: Bits<K>` (in), `out: Bits<K>` (out).
//!
//! Generics (checked by [`CompareBit::new`]): `U` ≥ 1 operand bits; `K` ≥ 1 vector bits.
//! Run-time: `index` < K (a `Constant`), the form.

use rust_hdl::prelude::*;

/// `out = prev` with bit `index` set to `u >= t` (see the module documentation).
#[derive(LogicBlock)]
pub struct CompareBit<const U: usize, const K: usize> {
    /// Value compared.
    pub u: Signal<In, Bits<U>>,
    /// Threshold it is compared with.
    pub t: Signal<In, Bits<U>>,
    /// Vector coming in.
    pub prev: Signal<In, Bits<K>>,
    /// `prev` with bit `index` replaced by `u >= t`.
    pub out: Signal<Out, Bits<K>>,
    index: Constant<Bits<8>>,
    ge: Signal<Local, Bit>,
    // loop bounds: 1 for the carry chain, else 0; U for the mux chain, else 0
    _alu: usize,
    _mux: usize,
}

impl<const U: usize, const K: usize> CompareBit<U, K> {
    /// The comparator for bit `index` of the vector, as a carry chain.
    pub fn new(index: usize) -> Self {
        Self::with(index, false)
    }

    /// The comparator for bit `index`, as a mux chain: for a `t` that yosys sees as a
    /// constant (a deep mux chain otherwise).
    pub fn constant(index: usize) -> Self {
        // a 1-bit operand is a Verilog scalar, which cannot be bit-selected
        assert!(U >= 2, "CompareBit::constant: U must be at least 2");
        Self::with(index, true)
    }

    fn with(index: usize, mux: bool) -> Self {
        assert!(U >= 1 && K >= 1, "CompareBit: U and K must be at least 1");
        assert!(
            index < K && K <= 255,
            "CompareBit: index {index} not below K = {K}"
        );
        Self {
            u: Default::default(),
            t: Default::default(),
            prev: Default::default(),
            out: Default::default(),
            index: Constant::new((index as u64).into()),
            ge: Default::default(),
            _alu: !mux as usize,
            _mux: if mux { U } else { 0 },
        }
    }
}

impl<const U: usize, const K: usize> Logic for CompareBit<U, K> {
    #[hdl_gen]
    fn update(&mut self) {
        self.ge.next = true;
        for _k in 0..self._alu {
            self.ge.next = self.u.val() >= self.t.val();
        }
        // LSB first, so that the highest differing bit is the last to assign
        for i in 0..self._mux {
            if self.u.val().get_bit(i) != self.t.val().get_bit(i) {
                self.ge.next = self.u.val().get_bit(i);
            }
        }
        self.out.next = self
            .prev
            .val()
            .replace_bit(self.index.val().index(), self.ge.val());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::iverilog_vectors;

    #[test]
    fn inserts_the_comparison_in_sim_and_in_verilog() {
        for mux in [false, true] {
            check_form(mux);
        }
    }

    fn check_form(mux: bool) {
        let mut uut = if mux {
            CompareBit::<3, 5>::constant(3)
        } else {
            CompareBit::<3, 5>::new(3)
        };
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_compare_bit", &v).unwrap();
        let mut vectors = vec![];
        let mut want = vec![];
        for u in 0..8u64 {
            for t in 0..8u64 {
                for prev in [0u64, 0b11111, 0b01000, 0b10101] {
                    uut.u.next = u.into();
                    uut.t.next = t.into();
                    uut.prev.next = prev.into();
                    assert!(simulate(&mut uut, 10));
                    let w = (prev & !0b1000) | (((u >= t) as u64) << 3);
                    assert_eq!(
                        uut.out.val().to_u64(),
                        w,
                        "mux={mux} u={u} t={t} prev={prev:b}"
                    );
                    vectors.push(vec![u as u128, t as u128, prev as u128]);
                    want.push(w as u128);
                }
            }
        }
        let rows = iverilog_vectors(
            "compare_bit",
            &v,
            None,
            &[("u", 3), ("t", 3), ("prev", 5)],
            &[("out", 5)],
            &vectors,
        )
        .unwrap();
        let got: Vec<u128> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(got, want);
    }
}
