//! `PopcountTree<N, W>`: the number of ones among `N` bits, a balanced tree of
//! [`AdderNode`]s (`Vec`s, as rust-hdl kernels have no signal arrays); purely
//! combinational. [`PopcountPipe`] is the same tree with two register stages. Every node
//! is `W` bits wide (leaves zero-extended; above the root, `x + 0` nodes carry the sum to
//! level 7); yosys trims each node to the width its operands reach and deletes the `+ 0`
//! nodes, so the netlist is the exact-width tree (`hdl/DESIGN.md`, "Why widths are const
//! generics").
//!
//! Ports: `bits: Bits<N>` (in), `count: Bits<W>` (out).
//!
//! Generics (checked by [`PopcountTree::new`]): `N` in 1..=128; `W` = clog2(N + 1)
//! exactly ([`crate::bits_to_hold`], deduced).
//!
//! Latency: 0 (combinational); `PopcountPipe`: [`PIPE_LATENCY`] (2).

use crate::bits_to_hold;
use crate::blocks::adder_node::{AdderNode, SumNode};
use rust_hdl::prelude::*;

/// Number of adder levels the block always has; bounds `N` to `2^LEVELS`.
pub const LEVELS: usize = 7;

/// Popcount of `N` bits into `W = clog2(N + 1)` bits (see the module documentation).
#[derive(LogicBlock)]
pub struct PopcountTree<const N: usize, const W: usize> {
    /// Bits to count.
    pub bits: Signal<In, Bits<N>>,
    /// Number of ones in `bits`.
    pub count: Signal<Out, Bits<W>>,
    lv1: Vec<AdderNode<W>>,
    lv2: Vec<AdderNode<W>>,
    lv3: Vec<AdderNode<W>>,
    lv4: Vec<AdderNode<W>>,
    lv5: Vec<AdderNode<W>>,
    lv6: Vec<AdderNode<W>>,
    lv7: Vec<AdderNode<W>>,
    // `_pairs[l]`: nodes of level l fed by two nodes of level l-1;
    // `_pass[l]`: 1 if level l is a single `x + 0` node above the root, else 0.
    _pairs: [usize; LEVELS + 1],
    _pass: [usize; LEVELS + 1],
    // level-1 loop bounds: N / 2 full pairs, (N + 1) / 2 with the odd bit (0 for N = 1),
    // all level-1 nodes, and 1 when N = 1 (the input is a scalar)
    _leaf: [usize; 4],
}

impl<const N: usize, const W: usize> PopcountTree<N, W> {
    /// Build the tree; panics unless `1 ≤ N ≤ 128` and `W == clog2(N + 1)`.
    pub fn new() -> Self {
        assert!(
            (1..=1 << LEVELS).contains(&N),
            "PopcountTree: N = {N} must be in 1..=128"
        );
        assert_eq!(
            W,
            bits_to_hold(N as u64),
            "PopcountTree<{N}, W>: W must be clog2(N + 1)"
        );
        let p = N.next_power_of_two();
        let mut pairs = [0; LEVELS + 1];
        let mut pass = [0; LEVELS + 1];
        let mut nodes = [0; LEVELS + 1];
        nodes[0] = p;
        for l in 1..=LEVELS {
            if nodes[l - 1] >= 2 {
                pairs[l] = nodes[l - 1] / 2;
            } else {
                pass[l] = 1;
            }
            nodes[l] = pairs[l] + pass[l];
        }
        let level = |l: usize| (0..nodes[l]).map(|_| AdderNode::default()).collect();
        Self {
            bits: Default::default(),
            count: Default::default(),
            lv1: level(1),
            lv2: level(2),
            lv3: level(3),
            lv4: level(4),
            lv5: level(5),
            lv6: level(6),
            lv7: level(7),
            _pairs: pairs,
            _pass: pass,
            _leaf: [
                N / 2,
                if N > 1 { N.div_ceil(2) } else { 0 },
                nodes[1],
                (N == 1) as usize,
            ],
        }
    }
}

impl<const N: usize, const W: usize> Default for PopcountTree<N, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const W: usize> Logic for PopcountTree<N, W> {
    #[hdl_gen]
    fn update(&mut self) {
        // Level 1 reads the input bits: full pairs, an odd last bit, then zero padding.
        for k in 0..self._leaf[0] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.lv1[k].a.next = 1.into();
            }
            if self.bits.val().get_bit(2 * k + 1) {
                self.lv1[k].b.next = 1.into();
            }
        }
        for k in self._leaf[0]..self._leaf[1] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.lv1[k].a.next = 1.into();
            }
        }
        for k in self._leaf[1]..self._leaf[2] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
        }
        // N = 1: a 1-bit signal is a Verilog scalar, which cannot be bit-selected
        for k in 0..self._leaf[3] {
            if self.bits.val().any() {
                self.lv1[k].a.next = 1.into();
            }
        }
        // Levels 2..=7 add pairs of the level below, or pass its single node on.
        for k in 0..self._pairs[2] {
            self.lv2[k].a.next = self.lv1[2 * k].s.val();
            self.lv2[k].b.next = self.lv1[2 * k + 1].s.val();
        }
        for k in 0..self._pass[2] {
            self.lv2[k].a.next = self.lv1[k].s.val();
            self.lv2[k].b.next = 0.into();
        }
        for k in 0..self._pairs[3] {
            self.lv3[k].a.next = self.lv2[2 * k].s.val();
            self.lv3[k].b.next = self.lv2[2 * k + 1].s.val();
        }
        for k in 0..self._pass[3] {
            self.lv3[k].a.next = self.lv2[k].s.val();
            self.lv3[k].b.next = 0.into();
        }
        for k in 0..self._pairs[4] {
            self.lv4[k].a.next = self.lv3[2 * k].s.val();
            self.lv4[k].b.next = self.lv3[2 * k + 1].s.val();
        }
        for k in 0..self._pass[4] {
            self.lv4[k].a.next = self.lv3[k].s.val();
            self.lv4[k].b.next = 0.into();
        }
        for k in 0..self._pairs[5] {
            self.lv5[k].a.next = self.lv4[2 * k].s.val();
            self.lv5[k].b.next = self.lv4[2 * k + 1].s.val();
        }
        for k in 0..self._pass[5] {
            self.lv5[k].a.next = self.lv4[k].s.val();
            self.lv5[k].b.next = 0.into();
        }
        for k in 0..self._pairs[6] {
            self.lv6[k].a.next = self.lv5[2 * k].s.val();
            self.lv6[k].b.next = self.lv5[2 * k + 1].s.val();
        }
        for k in 0..self._pass[6] {
            self.lv6[k].a.next = self.lv5[k].s.val();
            self.lv6[k].b.next = 0.into();
        }
        for k in 0..self._pairs[7] {
            self.lv7[k].a.next = self.lv6[2 * k].s.val();
            self.lv7[k].b.next = self.lv6[2 * k + 1].s.val();
        }
        for k in 0..self._pass[7] {
            self.lv7[k].a.next = self.lv6[k].s.val();
            self.lv7[k].b.next = 0.into();
        }
        self.count.next = self.lv7[0].s.val();
    }
}

/// Cycles from `bits` to `count` in a [`PopcountPipe`].
pub const PIPE_LATENCY: u64 = 2;

/// [`PopcountTree`] with a register after adder levels 2 and 4, for the iCE40's
/// ~16 ns budget at 60 MHz: every stage is at most two adder levels (three in the
/// last, where a 64-bit count has its 6-bit and 7-bit adders). `count` is the popcount
/// of `bits` two rising edges earlier ([`PIPE_LATENCY`]); a new input every cycle.
///
/// ```text
///  bits ─► lv1 ─► lv2 ─[r2]─► lv3 ─► lv4 ─[r4]─► lv5 ─► lv6 ─► lv7 ─► count
/// ```
///
/// The registers are as wide as the nodes (`W`); yosys removes the bits that stay 0
/// (a node of level l has l + 1 bits), so a 64-bit count costs 16·3 + 4·5 = 68 DFF (yosys 0.23 keeps up to 3 more) and
/// a 16-bit one 4·3 + 5 = 17. A narrow tree (N ≤ 4) still has both registers, as a
/// delay, so the latency does not depend on N.
///
/// [`PopcountPipe::late`] moves the registers to after level 4 and after the root (the
/// count), the same latency, and sizes every node exactly (level l: l-bit operands, l + 1
/// bits; [`SumNode`]): yosys's `alumacc` then makes levels 1–4 one `$macc`, compressed
/// with the XOR in front, in a flattened design as in one synthesised alone (with W-bit
/// nodes `wreduce` trims only some operands once flattened and the chains stay apart).
/// TFC's fc0 at 16 cycles (64 PEs of 49 lanes): 12,110 LUT4 alone, its whole design
/// 15,711 flattened against 17,220 with W-bit nodes; on ECP5 16,691 LUT4 places against
/// 26,192. The price is a stage of four adder levels: on an UP5K a model of such a PE
/// alone reaches 43 MHz instead of 61 (nextpnr 0.4, seed 1). For the widest engines only
/// ([`crate::engines::mvtu::LATE_CUT_LANES`]); the early form keeps W-bit nodes, which
/// `synth_ecp5` maps smaller there (TFC-W1A1 at 784 cycles: 1889 LUT4 places, 2037 with
/// exact nodes).
///
/// Ports: `clock`; `bits` (in, `Bits<N>`); `count` (out, `Bits<W>`).
/// Parameters as [`PopcountTree`]: 1 ≤ N ≤ 128, W = clog2(N + 1).
#[derive(LogicBlock)]
pub struct PopcountPipe<const N: usize, const W: usize> {
    pub clock: Signal<In, Clock>,
    pub bits: Signal<In, Bits<N>>,
    pub count: Signal<Out, Bits<W>>,
    // the early form: W-bit nodes (empty in the late form)
    lv1: Vec<AdderNode<W>>,
    lv2: Vec<AdderNode<W>>,
    r2: Vec<DFF<Bits<W>>>,
    lv3: Vec<AdderNode<W>>,
    lv4: Vec<AdderNode<W>>,
    r4: Vec<DFF<Bits<W>>>,
    lv5: Vec<AdderNode<W>>,
    lv6: Vec<AdderNode<W>>,
    lv7: Vec<AdderNode<W>>,
    // the late form: nodes of exact width (level l sums l-bit operands into l + 1
    // bits, the root into W), empty in the early form
    x1: Vec<SumNode<1, 2>>,
    x2: Vec<SumNode<2, 3>>,
    x3: Vec<SumNode<3, 4>>,
    x4: Vec<SumNode<4, 5>>,
    x4r: Vec<DFF<Bits<5>>>,
    x5: Vec<SumNode<5, 6>>,
    x6: Vec<SumNode<6, 7>>,
    x7: Vec<SumNode<7, W>>,
    x7r: Vec<DFF<Bits<W>>>,
    // loop bounds of the early form (all 0 in the late form) and of the late form
    _pairs: [usize; LEVELS + 1],
    _pass: [usize; LEVELS + 1],
    _leaf: [usize; 4],
    _xpairs: [usize; LEVELS + 1],
    _xpass: [usize; LEVELS + 1],
    _xleaf: [usize; 4],
    // nodes per level: early form, late form
    _nodes: [usize; LEVELS + 1],
    _xnodes: [usize; LEVELS + 1],
}

/// `n` exact-width nodes of one level of the late form.
fn level<const I: usize, const O: usize>(n: usize) -> Vec<SumNode<I, O>> {
    (0..n).map(|_| SumNode::default()).collect()
}

/// `n` registers.
fn regs<const B: usize>(n: usize) -> Vec<DFF<Bits<B>>> {
    (0..n).map(|_| DFF::default()).collect()
}

impl<const N: usize, const W: usize> PopcountPipe<N, W> {
    /// Build the pipelined tree, registered after levels 2 and 4; panics unless
    /// `1 ≤ N ≤ 128` and `W == clog2(N + 1)`.
    pub fn new() -> Self {
        Self::with(false)
    }

    /// The same tree registered after level 4 and after the root (see the type's
    /// documentation).
    pub fn late() -> Self {
        Self::with(true)
    }

    /// [`PopcountPipe::late`] when `late`, else [`PopcountPipe::new`].
    pub fn with(late: bool) -> Self {
        let t = PopcountTree::<N, W>::new();
        let mut nodes = [0; LEVELS + 1];
        for l in 1..=LEVELS {
            nodes[l] = t._pairs[l] + t._pass[l];
        }
        let (e, x) = if late { (0, 1) } else { (1, 0) };
        let early = |l: usize| (0..nodes[l] * e).map(|_| AdderNode::default()).collect();
        let zero = [0; LEVELS + 1];
        Self {
            clock: Default::default(),
            bits: Default::default(),
            count: Default::default(),
            lv1: early(1),
            lv2: early(2),
            r2: regs(nodes[2] * e),
            lv3: early(3),
            lv4: early(4),
            r4: regs(nodes[4] * e),
            lv5: early(5),
            lv6: early(6),
            lv7: early(7),
            x1: level(nodes[1] * x),
            x2: level(nodes[2] * x),
            x3: level(nodes[3] * x),
            x4: level(nodes[4] * x),
            x4r: regs(nodes[4] * x),
            x5: level(nodes[5] * x),
            x6: level(nodes[6] * x),
            x7: level(nodes[7] * x),
            x7r: regs(nodes[7] * x),
            _pairs: if late { zero } else { t._pairs },
            _pass: if late { zero } else { t._pass },
            _leaf: if late { [0; 4] } else { t._leaf },
            _xpairs: if late { t._pairs } else { zero },
            _xpass: if late { t._pass } else { zero },
            _xleaf: if late { t._leaf } else { [0; 4] },
            _nodes: if late { zero } else { nodes },
            _xnodes: if late { nodes } else { zero },
        }
    }
}

impl<const N: usize, const W: usize> Default for PopcountPipe<N, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const W: usize> Logic for PopcountPipe<N, W> {
    #[hdl_gen]
    fn update(&mut self) {
        // ---- the early form
        for k in 0..self._leaf[0] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.lv1[k].a.next = 1.into();
            }
            if self.bits.val().get_bit(2 * k + 1) {
                self.lv1[k].b.next = 1.into();
            }
        }
        for k in self._leaf[0]..self._leaf[1] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.lv1[k].a.next = 1.into();
            }
        }
        for k in self._leaf[1]..self._leaf[2] {
            self.lv1[k].a.next = 0.into();
            self.lv1[k].b.next = 0.into();
        }
        for k in 0..self._leaf[3] {
            if self.bits.val().any() {
                self.lv1[k].a.next = 1.into();
            }
        }
        for k in 0..self._pairs[2] {
            self.lv2[k].a.next = self.lv1[2 * k].s.val();
            self.lv2[k].b.next = self.lv1[2 * k + 1].s.val();
        }
        for k in 0..self._pass[2] {
            self.lv2[k].a.next = self.lv1[k].s.val();
            self.lv2[k].b.next = 0.into();
        }
        // register after level 2
        for k in 0..self._nodes[2] {
            self.r2[k].clock.next = self.clock.val();
            self.r2[k].d.next = self.lv2[k].s.val();
        }
        for k in 0..self._pairs[3] {
            self.lv3[k].a.next = self.r2[2 * k].q.val();
            self.lv3[k].b.next = self.r2[2 * k + 1].q.val();
        }
        for k in 0..self._pass[3] {
            self.lv3[k].a.next = self.r2[k].q.val();
            self.lv3[k].b.next = 0.into();
        }
        for k in 0..self._pairs[4] {
            self.lv4[k].a.next = self.lv3[2 * k].s.val();
            self.lv4[k].b.next = self.lv3[2 * k + 1].s.val();
        }
        for k in 0..self._pass[4] {
            self.lv4[k].a.next = self.lv3[k].s.val();
            self.lv4[k].b.next = 0.into();
        }
        // register after level 4
        for k in 0..self._nodes[4] {
            self.r4[k].clock.next = self.clock.val();
            self.r4[k].d.next = self.lv4[k].s.val();
        }
        for k in 0..self._pairs[5] {
            self.lv5[k].a.next = self.r4[2 * k].q.val();
            self.lv5[k].b.next = self.r4[2 * k + 1].q.val();
        }
        for k in 0..self._pass[5] {
            self.lv5[k].a.next = self.r4[k].q.val();
            self.lv5[k].b.next = 0.into();
        }
        for k in 0..self._pairs[6] {
            self.lv6[k].a.next = self.lv5[2 * k].s.val();
            self.lv6[k].b.next = self.lv5[2 * k + 1].s.val();
        }
        for k in 0..self._pass[6] {
            self.lv6[k].a.next = self.lv5[k].s.val();
            self.lv6[k].b.next = 0.into();
        }
        for k in 0..self._pairs[7] {
            self.lv7[k].a.next = self.lv6[2 * k].s.val();
            self.lv7[k].b.next = self.lv6[2 * k + 1].s.val();
        }
        for k in 0..self._pass[7] {
            self.lv7[k].a.next = self.lv6[k].s.val();
            self.lv7[k].b.next = 0.into();
        }
        for k in 0..self._nodes[7] {
            self.count.next = self.lv7[k].s.val();
        }
        // ---- the late form
        for k in 0..self._xleaf[0] {
            self.x1[k].a.next = 0.into();
            self.x1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.x1[k].a.next = 1.into();
            }
            if self.bits.val().get_bit(2 * k + 1) {
                self.x1[k].b.next = 1.into();
            }
        }
        for k in self._xleaf[0]..self._xleaf[1] {
            self.x1[k].a.next = 0.into();
            self.x1[k].b.next = 0.into();
            if self.bits.val().get_bit(2 * k) {
                self.x1[k].a.next = 1.into();
            }
        }
        for k in self._xleaf[1]..self._xleaf[2] {
            self.x1[k].a.next = 0.into();
            self.x1[k].b.next = 0.into();
        }
        for k in 0..self._xleaf[3] {
            if self.bits.val().any() {
                self.x1[k].a.next = 1.into();
            }
        }
        for k in 0..self._xpairs[2] {
            self.x2[k].a.next = self.x1[2 * k].s.val();
            self.x2[k].b.next = self.x1[2 * k + 1].s.val();
        }
        for k in 0..self._xpass[2] {
            self.x2[k].a.next = self.x1[k].s.val();
            self.x2[k].b.next = 0.into();
        }
        for k in 0..self._xpairs[3] {
            self.x3[k].a.next = self.x2[2 * k].s.val();
            self.x3[k].b.next = self.x2[2 * k + 1].s.val();
        }
        for k in 0..self._xpass[3] {
            self.x3[k].a.next = self.x2[k].s.val();
            self.x3[k].b.next = 0.into();
        }
        for k in 0..self._xpairs[4] {
            self.x4[k].a.next = self.x3[2 * k].s.val();
            self.x4[k].b.next = self.x3[2 * k + 1].s.val();
        }
        for k in 0..self._xpass[4] {
            self.x4[k].a.next = self.x3[k].s.val();
            self.x4[k].b.next = 0.into();
        }
        // register after level 4
        for k in 0..self._xnodes[4] {
            self.x4r[k].clock.next = self.clock.val();
            self.x4r[k].d.next = self.x4[k].s.val();
        }
        for k in 0..self._xpairs[5] {
            self.x5[k].a.next = self.x4r[2 * k].q.val();
            self.x5[k].b.next = self.x4r[2 * k + 1].q.val();
        }
        for k in 0..self._xpass[5] {
            self.x5[k].a.next = self.x4r[k].q.val();
            self.x5[k].b.next = 0.into();
        }
        for k in 0..self._xpairs[6] {
            self.x6[k].a.next = self.x5[2 * k].s.val();
            self.x6[k].b.next = self.x5[2 * k + 1].s.val();
        }
        for k in 0..self._xpass[6] {
            self.x6[k].a.next = self.x5[k].s.val();
            self.x6[k].b.next = 0.into();
        }
        for k in 0..self._xpairs[7] {
            self.x7[k].a.next = self.x6[2 * k].s.val();
            self.x7[k].b.next = self.x6[2 * k + 1].s.val();
        }
        for k in 0..self._xpass[7] {
            self.x7[k].a.next = self.x6[k].s.val();
            self.x7[k].b.next = 0.into();
        }
        // the count registered
        for k in 0..self._xnodes[7] {
            self.x7r[k].clock.next = self.clock.val();
            self.x7r[k].d.next = self.x7[k].s.val();
            self.count.next = self.x7r[k].q.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;
    use rand::Rng;
    use std::sync::{Arc, Mutex};

    fn sweep<const N: usize, const W: usize>(rng: &mut impl Rng, trials: usize) {
        let mut uut = PopcountTree::<N, W>::new();
        uut.connect_all();
        let mask = if N == 64 {
            u64::MAX
        } else {
            (1u64 << N.min(63)) - 1
        };
        let mut cases: Vec<u64> = vec![0, mask];
        cases.extend((0..trials).map(|_| {
            // vary the density so counts near 0 and near N are hit too
            let keep: u64 = rng.gen::<u64>() | rng.gen::<u64>();
            let drop: u64 = rng.gen::<u64>() & rng.gen::<u64>();
            match rng.gen_range(0..3) {
                0 => keep & mask,
                1 => drop & mask,
                _ => rng.gen::<u64>() & mask,
            }
        }));
        for x in cases {
            uut.bits.next = x.into();
            assert!(simulate(&mut uut, 100), "N={N}: did not settle");
            let want = bnnforge_model::kernels::xnor_popcount(x, !0, N as u32);
            assert_eq!(uut.count.val().to_u64(), want as u64, "N={N} bits={x:#x}");
        }
    }

    #[test]
    fn counts_like_the_model_over_widths() {
        let mut rng = bnnforge_model::random::test_rng("popcount");
        sweep::<1, 1>(&mut rng, 4);
        sweep::<2, 2>(&mut rng, 8);
        sweep::<3, 2>(&mut rng, 16);
        sweep::<4, 3>(&mut rng, 32);
        sweep::<5, 3>(&mut rng, 64);
        sweep::<7, 3>(&mut rng, 64);
        sweep::<8, 4>(&mut rng, 64);
        sweep::<15, 4>(&mut rng, 100);
        sweep::<16, 5>(&mut rng, 100);
        sweep::<31, 5>(&mut rng, 100);
        sweep::<32, 6>(&mut rng, 200);
        sweep::<33, 6>(&mut rng, 200);
        sweep::<63, 6>(&mut rng, 200);
        sweep::<64, 7>(&mut rng, 300);
    }

    /// The generated Verilog itself, run in Icarus Verilog, against the model.
    fn verilog_counts<const N: usize, const W: usize>(rng: &mut impl Rng) {
        let mut uut = PopcountTree::<N, W>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        let mask = if N == 64 { u64::MAX } else { (1u64 << N) - 1 };
        let mut xs = vec![0, mask];
        xs.extend((0..200).map(|_| rng.gen::<u64>() & mask));
        let vectors: Vec<Vec<u128>> = xs.iter().map(|&x| vec![x as u128]).collect();
        let name = format!("popcount_iv{N}");
        let rows =
            iverilog_vectors(&name, &v, None, &[("bits", N)], &[("count", W)], &vectors).unwrap();
        for (x, row) in xs.iter().zip(rows) {
            let want = bnnforge_model::kernels::xnor_popcount(*x, !0, N as u32);
            assert_eq!(
                row[0], want as u128,
                "Verilog PopcountTree<{N}> bits={x:#x}"
            );
        }
    }

    #[test]
    fn generated_verilog_counts_like_the_model() {
        let mut rng = bnnforge_model::random::test_rng("popcount_verilog");
        verilog_counts::<1, 1>(&mut rng);
        verilog_counts::<7, 3>(&mut rng);
        verilog_counts::<33, 6>(&mut rng);
        verilog_counts::<64, 7>(&mut rng);
    }

    /// The pipelined tree, fed a new word every cycle, answers each PIPE_LATENCY
    /// cycles later.
    fn pipe_sweep<const N: usize, const W: usize>(rng: &mut impl Rng, trials: usize) {
        pipe_sweep_form::<N, W>(rng, trials, false);
        pipe_sweep_form::<N, W>(rng, trials, true);
    }

    fn pipe_sweep_form<const N: usize, const W: usize>(
        rng: &mut impl Rng,
        trials: usize,
        late: bool,
    ) {
        let mut uut = PopcountPipe::<N, W>::with(late);
        uut.connect_all();
        let mask = if N >= 64 { u64::MAX } else { (1u64 << N) - 1 };
        let xs: Vec<u64> = [0, mask]
            .into_iter()
            .chain((0..trials).map(|_| rng.gen::<u64>() & mask))
            .collect();
        let got = Arc::new(Mutex::new(vec![]));
        let g = got.clone();
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<PopcountPipe<N, W>>| {
            x.clock.next = !x.clock.val()
        });
        let input = xs.clone();
        sim.add_testbench(move |mut sim: Sim<PopcountPipe<N, W>>| {
            let mut x = sim.init()?;
            for k in 0..input.len() + PIPE_LATENCY as usize {
                x.bits.next = input.get(k).copied().unwrap_or(0).into();
                wait_clock_true!(sim, clock, x);
                wait_clock_false!(sim, clock, x);
                g.lock().unwrap().push(x.count.val().to_u64());
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 100_000).unwrap();
        let got = got.lock().unwrap();
        for (k, x) in xs.iter().enumerate() {
            let want = bnnforge_model::kernels::xnor_popcount(*x, !0, N as u32) as u64;
            // sampled after edge k + 1 + (PIPE_LATENCY - 1)
            assert_eq!(
                got[k + PIPE_LATENCY as usize - 1],
                want,
                "PopcountPipe<{N}> (late: {late}) bits={x:#x}"
            );
        }
    }

    #[test]
    fn pipelined_tree_counts_like_the_model() {
        let mut rng = bnnforge_model::random::test_rng("popcount_pipe");
        pipe_sweep::<1, 1>(&mut rng, 8);
        pipe_sweep::<3, 2>(&mut rng, 16);
        pipe_sweep::<4, 3>(&mut rng, 32);
        pipe_sweep::<8, 4>(&mut rng, 64);
        pipe_sweep::<16, 5>(&mut rng, 100);
        pipe_sweep::<17, 5>(&mut rng, 100);
        pipe_sweep::<64, 7>(&mut rng, 200);
        pipe_sweep::<49, 6>(&mut rng, 200);
        let mut uut = PopcountPipe::<64, 7>::new();
        uut.connect_all();
        let s = ice40_stats("popcount_pipe64", &generate_verilog(&uut), "top").unwrap();
        println!("PopcountPipe<64, 7> on synth_ice40: {s}");
        // 16 level-2 nodes of 3 bits and 4 level-4 nodes of 5 bits, and 3 bits more
        // that yosys 0.23 keeps here (measured 71; 69 inside an MvuPe)
        assert!(s.dff <= 71, "PopcountPipe<64, 7> costs {s}");
        // late form: 4 level-4 nodes of 5 bits and the 7-bit count; the bare tree about
        // as large (152 LUT4 against 150): its saving comes with the XOR in front, in a
        // PE (`MvuPe`'s synthesis test)
        let mut late = PopcountPipe::<64, 7>::late();
        late.connect_all();
        let l = ice40_stats("popcount_pipe64_late", &generate_verilog(&late), "top").unwrap();
        println!("PopcountPipe<64, 7>::late on synth_ice40: {l}");
        assert!(
            l.dff <= 4 * 5 + 7 + 3,
            "PopcountPipe<64, 7>::late costs {l}"
        );
        assert!(l.lut4 <= s.lut4 + 4, "late {l} against early {s}");
    }

    #[test]
    #[should_panic(expected = "W must be clog2(N + 1)")]
    fn rejects_a_wrong_width() {
        let _ = PopcountTree::<8, 3>::new();
    }

    #[test]
    fn synthesises_small_and_clean() {
        let mut uut = PopcountTree::<64, 7>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_popcount64", &v).unwrap();
        let s = ice40_stats("popcount64", &v, "top").unwrap();
        println!("PopcountTree<64, 7> on synth_ice40: {s}");
        assert_eq!(s.dff, 0, "combinational block has flip-flops");
        assert!(s.lut4 <= 130, "popcount64 costs {s}");
        let mut uut = PopcountTree::<5, 3>::new();
        uut.connect_all();
        let s = ice40_stats("popcount5", &generate_verilog(&uut), "top").unwrap();
        println!("PopcountTree<5, 3> on synth_ice40: {s}");
        assert!(s.lut4 <= 6, "popcount5 costs {s}");
    }
}
