//! `WeightMemory<SIMD, WA>`: the weights of one PE of an [`Mvtu`], one `SIMD`-bit word per
//! beat, in a `SyncROM` (block RAM when worthwhile), read data registered again in the
//! fabric; a ROM kept in logic deeper than 64 words is banked ([`weight_banks`];
//! `hdl/DESIGN.md`, "Weight memory"). FINN's layout: word nf·SF + sf holds neuron
//! nf·PE + p's weights for input lanes sf·SIMD .. (sf+1)·SIMD, lane i in bit i, 1 = +1
//! ([`pe_weight_words`]).
//!
//! Ports: `clock`, `address: Bits<WA>` (in), `data: Bits<SIMD>` (out, registered).
//!
//! Generics (checked by [`WeightMemory::new`]): `SIMD` in 1..=64; `WA` in 1..=20 =
//! clog2(NF·SF) (deduced, [`address_bits`](crate::address_bits)). Run-time: the words.
//! Latency: `data` is the word addressed [`WMEM_LATENCY`] (2) edges earlier.
//!
//! [`Mvtu`]: crate::engines::mvtu::Mvtu

use rust_hdl::prelude::*;

/// Rising edges from `address` to its word on `data`.
pub const WMEM_LATENCY: u64 = 2;

/// Per-PE weight storage (see the module documentation).
#[derive(LogicBlock)]
pub struct WeightMemory<const SIMD: usize, const WA: usize> {
    /// Clock; the read is registered on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Word address, `nf·SF + sf`.
    pub address: Signal<In, Bits<WA>>,
    /// The addressed word, two cycles later.
    pub data: Signal<Out, Bits<SIMD>>,
    banks: Vec<SyncROM<Bits<SIMD>, WA>>,
    // the address, registered: its low bits choose the bank after the read
    alo: DFF<Bits<WA>>,
    // the 2:1 muxes, level by level (r/2, r/4, … nodes; rust-hdl indexes only with
    // loop variables and literals, so a Vec per level)
    mux1: Vec<BankMux<SIMD>>,
    mux2: Vec<BankMux<SIMD>>,
    mux3: Vec<BankMux<SIMD>>,
    mux4: Vec<BankMux<SIMD>>,
    _r: usize,
    // the word's source: _top[0] = 1 for one bank, _top[l] = 1 when level l is the root
    _top: [usize; 5],
    shift: Constant<Bits<WA>>,
    dreg: DFF<Bits<SIMD>>,
}

/// `out = sel ? b : a`: one node of a [`WeightMemory`]'s bank mux tree.
#[derive(LogicBlock, Default)]
pub struct BankMux<const W: usize> {
    pub a: Signal<In, Bits<W>>,
    pub b: Signal<In, Bits<W>>,
    pub sel: Signal<In, Bit>,
    pub out: Signal<Out, Bits<W>>,
}

impl<const W: usize> Logic for BankMux<W> {
    #[hdl_gen]
    fn update(&mut self) {
        self.out.next = self.a.val();
        if self.sel.val() {
            self.out.next = self.b.val();
        }
    }
}

/// Banks of a weight memory of `simd`-bit words and `wa` address bits: 2^wa / 64 (at
/// most 16) when yosys 0.23 keeps the ROM in logic (`ice40_blocks`) and it is deeper
/// than 64 words, else 1.
pub fn weight_banks(simd: usize, wa: usize) -> usize {
    let m = crate::compile::resources::Memory {
        width: simd,
        depth: 1 << wa,
        kind: crate::compile::resources::MemKind::Rom,
        count: 1,
        role: crate::compile::resources::Role::Weights,
        family: crate::boards::Family::Ice40,
    };
    if wa > 6 && wa <= 10 && crate::compile::resources::ice40_blocks(&m).is_none() {
        1 << (wa - 6)
    } else {
        1
    }
}

/// The weight words of every PE: `rows[o]` are the `n` weights (±1) of neuron `o` in
/// stream order; result `[p][nf·SF + sf]`, lanes beyond `n` zero.
pub fn pe_weight_words(rows: &[Vec<i8>], pe: usize, simd: usize) -> Vec<Vec<u64>> {
    assert!(
        pe >= 1 && rows.len() % pe == 0,
        "pe_weight_words: PE {pe} must divide {}",
        rows.len()
    );
    assert!(
        (1..=64).contains(&simd),
        "pe_weight_words: SIMD {simd} not in 1..=64"
    );
    let n = rows[0].len();
    let sf = n.div_ceil(simd);
    let nf = rows.len() / pe;
    (0..pe)
        .map(|p| {
            let mut words = Vec::with_capacity(nf * sf);
            for f in 0..nf {
                let row = &rows[f * pe + p];
                assert_eq!(row.len(), n, "pe_weight_words: rows of different lengths");
                for s in 0..sf {
                    let mut w = 0u64;
                    for i in 0..simd {
                        let j = s * simd + i;
                        if j < n && row[j] > 0 {
                            w |= 1 << i;
                        }
                    }
                    words.push(w);
                }
            }
            words
        })
        .collect()
}

impl<const SIMD: usize, const WA: usize> WeightMemory<SIMD, WA> {
    /// A memory holding `words` (each below 2^SIMD) at addresses 0, 1, ….
    pub fn new(words: &[u64]) -> Self {
        assert!(
            (1..=64).contains(&SIMD),
            "WeightMemory: SIMD = {SIMD} not in 1..=64"
        );
        assert!(
            (1..=20).contains(&WA),
            "WeightMemory: WA = {WA} not in 1..=20"
        );
        assert!(
            !words.is_empty() && words.len() <= 1 << WA,
            "WeightMemory: {} words do not fit 2^{WA}",
            words.len()
        );
        if SIMD < 64 {
            assert!(
                words.iter().all(|&w| w >> SIMD == 0),
                "WeightMemory: a word is wider than SIMD = {SIMD}"
            );
        }
        let r = weight_banks(SIMD, WA);
        let banks = (0..r)
            .map(|b| {
                SyncROM::new(
                    words
                        .iter()
                        .enumerate()
                        .filter(|(a, _)| a % r == b)
                        .map(|(a, &w)| (Bits::<WA>::from((a / r) as u64), Bits::<SIMD>::from(w)))
                        .collect(),
                )
            })
            .collect();
        let level = |l: usize| (0..r >> l).map(|_| BankMux::default()).collect();
        let mut top = [0; 5];
        top[r.trailing_zeros() as usize] = 1;
        Self {
            clock: Default::default(),
            address: Default::default(),
            data: Default::default(),
            banks,
            alo: Default::default(),
            mux1: level(1),
            mux2: level(2),
            mux3: level(3),
            mux4: level(4),
            _r: r,
            _top: top,
            shift: Constant::new((r.trailing_zeros() as u64).into()),
            dreg: Default::default(),
        }
    }
}

impl<const SIMD: usize, const WA: usize> Logic for WeightMemory<SIMD, WA> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, alo, dreg);
        for b in 0..self._r {
            self.banks[b].clock.next = self.clock.val();
            self.banks[b].address.next = self.address.val() >> self.shift.val();
        }
        self.alo.d.next = self.address.val();
        // level 1 picks between banks, the others between nodes; bit l - 1 selects
        for k in 0..self.mux1.len() {
            self.mux1[k].a.next = self.banks[2 * k].data.val();
            self.mux1[k].b.next = self.banks[2 * k + 1].data.val();
            self.mux1[k].sel.next = self.alo.q.val().get_bit(0);
        }
        for k in 0..self.mux2.len() {
            self.mux2[k].a.next = self.mux1[2 * k].out.val();
            self.mux2[k].b.next = self.mux1[2 * k + 1].out.val();
            self.mux2[k].sel.next = self.alo.q.val().get_bit(1);
        }
        for k in 0..self.mux3.len() {
            self.mux3[k].a.next = self.mux2[2 * k].out.val();
            self.mux3[k].b.next = self.mux2[2 * k + 1].out.val();
            self.mux3[k].sel.next = self.alo.q.val().get_bit(2);
        }
        for k in 0..self.mux4.len() {
            self.mux4[k].a.next = self.mux3[2 * k].out.val();
            self.mux4[k].b.next = self.mux3[2 * k + 1].out.val();
            self.mux4[k].sel.next = self.alo.q.val().get_bit(3);
        }
        for _k in 0..self._top[0] {
            self.dreg.d.next = self.banks[0].data.val();
        }
        for _k in 0..self._top[1] {
            self.dreg.d.next = self.mux1[0].out.val();
        }
        for _k in 0..self._top[2] {
            self.dreg.d.next = self.mux2[0].out.val();
        }
        for _k in 0..self._top[3] {
            self.dreg.d.next = self.mux3[0].out.val();
        }
        for _k in 0..self._top[4] {
            self.dreg.d.next = self.mux4[0].out.val();
        }
        self.data.next = self.dreg.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;
    use rand::Rng;

    fn run<const SIMD: usize, const WA: usize>(rng: &mut impl Rng, depth: usize) {
        let mask = if SIMD == 64 {
            u64::MAX
        } else {
            (1 << SIMD) - 1
        };
        let words: Vec<u64> = (0..depth).map(|_| rng.gen::<u64>() & mask).collect();
        let addrs: Vec<usize> = (0..100).map(|_| rng.gen_range(0..depth)).collect();
        let mut uut = WeightMemory::<SIMD, WA>::new(&words);
        uut.connect_all();
        let v = generate_verilog(&uut);
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<WeightMemory<SIMD, WA>>| {
            x.clock.next = !x.clock.val()
        });
        let (a2, w2) = (addrs.clone(), words.clone());
        sim.add_testbench(move |mut sim: Sim<WeightMemory<SIMD, WA>>| {
            let mut x = sim.init()?;
            for (k, &a) in a2.iter().enumerate() {
                x.address.next = (a as u64).into();
                wait_clock_cycle!(sim, clock, x);
                if k >= 1 {
                    // the word addressed WMEM_LATENCY edges ago
                    sim_assert_eq!(sim, x.data.val().to_u64(), w2[a2[k - 1]], x);
                }
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 10 * 110).unwrap();
        let vectors: Vec<Vec<u128>> = addrs.iter().map(|&a| vec![a as u128]).collect();
        let rows = iverilog_vectors(
            &format!("wmem{SIMD}_{depth}"),
            &v,
            Some("clock"),
            &[("address", WA)],
            &[("data", SIMD)],
            &vectors,
        )
        .unwrap();
        for (r, &a) in rows.iter().skip(1).zip(&addrs) {
            assert_eq!(r[0] as u64, words[a], "Verilog WeightMemory<{SIMD}> at {a}");
        }
    }

    #[test]
    fn reads_back_its_words_in_sim_and_verilog() {
        let mut rng = bnnforge_model::random::test_rng("weight_memory");
        run::<1, 1>(&mut rng, 2);
        run::<16, 8>(&mut rng, 196);
        run::<64, 5>(&mut rng, 27);
        // in logic, banked: 2 banks of 64 words, 16 banks (the last one short)
        assert_eq!((weight_banks(1, 7), weight_banks(1, 10)), (2, 16));
        assert_eq!((weight_banks(16, 8), weight_banks(1, 11)), (1, 1));
        run::<1, 7>(&mut rng, 128);
        run::<1, 10>(&mut rng, 1000);
        run::<4, 8>(&mut rng, 200);
    }

    #[test]
    fn layout_is_finn_order() {
        // 4 neurons, n = 5, PE = 2, SIMD = 2: SF = 3 words per neuron, NF = 2
        let rows: Vec<Vec<i8>> = (0..4)
            .map(|o| {
                (0..5)
                    .map(|j| if (o + j) % 2 == 0 { 1 } else { -1 })
                    .collect()
            })
            .collect();
        let w = pe_weight_words(&rows, 2, 2);
        // PE 0 holds neurons 0 and 2 (both +1 at even j): lanes j=0,2,4 → 0b01, 0b01, 0b01
        assert_eq!(w[0], vec![0b01, 0b01, 0b01, 0b01, 0b01, 0b01]);
        // PE 1 holds neurons 1 and 3 (+1 at odd j), the last word has lane j=5 beyond n
        assert_eq!(w[1], vec![0b10, 0b10, 0b00, 0b10, 0b10, 0b00]);
    }

    #[test]
    fn a_large_layer_goes_to_block_ram() {
        // TFC's 784 → 64 layer at PE = SIMD = 16: each PE holds 4 · 49 = 196 words
        let mut rng = bnnforge_model::random::test_rng("weight_memory_synth");
        let words: Vec<u64> = (0..196).map(|_| rng.gen::<u64>() & 0xffff).collect();
        let mut uut = WeightMemory::<16, 8>::new(&words);
        uut.connect_all();
        let v = generate_verilog(&uut);
        let s = ice40_stats("wmem_16x196", &v, "top").unwrap();
        println!("WeightMemory<SIMD=16, 196 words> on synth_ice40: {s}");
        assert_eq!(s.bram, 1, "weights not in one block RAM: {s}");
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn rejects_too_many_words() {
        let _ = WeightMemory::<4, 2>::new(&[0; 5]);
    }
}
