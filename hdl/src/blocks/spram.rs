//! `Spram` and `SpramWeights<SIMD, WA>`: a PE's weights in one iCE40 UltraPlus
//! `SB_SPRAM256KA` (16k × 16 bits, single port, no initial contents), written through a
//! load port before the engine runs (`hdl/DESIGN.md`, "Weights in SPRAM").
//!
//! `Spram` ports: `clock`, `address: Bits<14>`, `write_data: Bits<16>`, `write_enable`
//! (in), `read_data: Bits<16>` (out, registered; unchanged on a write cycle, as the
//! SPRAM's `no_change` port). Run-time: `depth` in 1..=16384 (words simulated).
//!
//! `SpramWeights` ports: `clock`; `address: Bits<WA>` (in), `data: Bits<SIMD>` (out, the
//! addressed word [`WMEM_LATENCY`] edges later, as a
//! [`WeightMemory`](crate::blocks::weight_memory::WeightMemory)); `load_enable`,
//! `load_address: Bits<14>`, `load_data: Bits<16>` (in: write the word, instead of a
//! read). Generics: `SIMD` in 1..=16, `WA` in 1..=14 = clog2(NF·SF).

use crate::blocks::weight_memory::WMEM_LATENCY;
use rust_hdl::prelude::*;

/// Words of one `SB_SPRAM256KA`.
pub const SPRAM_WORDS: usize = 16384;
/// Bits of one `SB_SPRAM256KA` word.
pub const SPRAM_BITS: usize = 16;

/// One `SB_SPRAM256KA`, inferred by yosys from `ram_style = "huge"` (see the module
/// documentation).
#[derive(LogicBlock)]
pub struct Spram {
    pub clock: Signal<In, Clock>,
    pub address: Signal<In, Bits<14>>,
    pub write_data: Signal<In, Bits<16>>,
    pub write_enable: Signal<In, Bit>,
    /// The word at `address` at the last rising edge without a write.
    pub read_data: Signal<Out, Bits<16>>,
    _mem: Vec<Bits<16>>,
}

impl Spram {
    /// A SPRAM of which `depth` words are used (and simulated).
    pub fn new(depth: usize) -> Self {
        assert!(
            (1..=SPRAM_WORDS).contains(&depth),
            "Spram: depth {depth} not in 1..={SPRAM_WORDS}"
        );
        Self {
            clock: Default::default(),
            address: Default::default(),
            write_data: Default::default(),
            write_enable: Default::default(),
            read_data: Default::default(),
            _mem: vec![Bits::default(); depth],
        }
    }
}

impl Logic for Spram {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let a = self.address.val().to_u64() as usize;
            if self.write_enable.val() {
                if let Some(m) = self._mem.get_mut(a) {
                    *m = self.write_data.val();
                }
            } else {
                self.read_data.next = self._mem.get(a).copied().unwrap_or_default();
            }
        }
    }
    fn connect(&mut self) {
        self.read_data.connect();
    }
    fn hdl(&self) -> Verilog {
        // the SPRAM's own port semantics (read or write, output held on a write), so
        // yosys maps it with no logic around it
        Verilog::Custom(format!(
            "\
(* ram_style = \"huge\" *)
reg [15:0] mem[0:{last}];

always @(posedge clock) begin
   if (write_enable) begin
      mem[address] <= write_data;
   end else begin
      read_data <= mem[address];
   end
end
",
            last = self._mem.len() - 1
        ))
    }
}

/// A PE's weights in one SPRAM (see the module documentation).
#[derive(LogicBlock)]
pub struct SpramWeights<const SIMD: usize, const WA: usize> {
    pub clock: Signal<In, Clock>,
    /// Word address, `nf·SF + sf`.
    pub address: Signal<In, Bits<WA>>,
    /// The addressed word, two cycles later.
    pub data: Signal<Out, Bits<SIMD>>,
    /// Write `load_data` at `load_address` this cycle.
    pub load_enable: Signal<In, Bit>,
    pub load_address: Signal<In, Bits<14>>,
    pub load_data: Signal<In, Bits<16>>,
    ram: Spram,
    dreg: DFF<Bits<SIMD>>,
}

impl<const SIMD: usize, const WA: usize> SpramWeights<SIMD, WA> {
    /// Storage for `depth` words (NF·SF), written by the load port.
    pub fn new(depth: usize) -> Self {
        assert!(
            (1..=SPRAM_BITS).contains(&SIMD),
            "SpramWeights: SIMD = {SIMD} not in 1..={SPRAM_BITS}"
        );
        assert!(
            (1..=14).contains(&WA) && depth <= 1 << WA,
            "SpramWeights: {depth} words do not fit WA = {WA} (1..=14)"
        );
        Self {
            clock: Default::default(),
            address: Default::default(),
            data: Default::default(),
            load_enable: Default::default(),
            load_address: Default::default(),
            load_data: Default::default(),
            ram: Spram::new(depth),
            dreg: Default::default(),
        }
    }
}

impl<const SIMD: usize, const WA: usize> Logic for SpramWeights<SIMD, WA> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, dreg);
        self.ram.clock.next = self.clock.val();
        self.ram.write_data.next = self.load_data.val();
        self.ram.write_enable.next = self.load_enable.val();
        self.ram.address.next = bit_cast::<14, WA>(self.address.val());
        if self.load_enable.val() {
            self.ram.address.next = self.load_address.val();
        }
        self.dreg.d.next = bit_cast::<SIMD, 16>(self.ram.read_data.val());
        self.data.next = self.dreg.q.val();
    }
}

/// The read latency is a weight memory's: the engines schedule both alike.
const _: () = assert!(WMEM_LATENCY == 2);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::module_tree::module_tree;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;
    use rand::Rng;

    /// Words written through the load port read back two edges after their address, in
    /// rust-hdl's simulation and in Icarus; yosys maps the memory to one SB_SPRAM256KA
    /// and nothing else but the output register.
    #[test]
    fn loads_then_reads_back_every_word() {
        let mut rng = bnnforge_model::random::test_rng("spram_weights");
        const SIMD: usize = 11;
        const WA: usize = 7;
        let depth = 100;
        let words: Vec<u64> = (0..depth).map(|_| rng.gen_range(0..1u64 << 16)).collect();
        let mut uut = SpramWeights::<SIMD, WA>::new(depth);
        uut.connect_all();
        let v = module_tree(&uut, "top").unwrap();
        // rows: load every word, then read every address in a random order
        let mut vectors = vec![];
        for (a, &w) in words.iter().enumerate() {
            vectors.push(vec![0, 1, a as u128, w as u128]);
        }
        let order: Vec<usize> = (0..depth).map(|_| rng.gen_range(0..depth)).collect();
        for &a in &order {
            vectors.push(vec![a as u128, 0, 0, 0]);
        }
        vectors.push(vec![0, 0, 0, 0]);
        vectors.push(vec![0, 0, 0, 0]);
        let rows = iverilog_vectors(
            "spram_weights",
            &v,
            Some("clock"),
            &[
                ("address", WA),
                ("load_enable", 1),
                ("load_address", 14),
                ("load_data", 16),
            ],
            &[("data", SIMD)],
            &vectors,
        )
        .unwrap();
        // row t shows `data` after edge t: the word addressed at edge t − 1
        for (i, &a) in order.iter().enumerate() {
            let t = depth + i + 1;
            let want = words[a] & ((1 << SIMD) - 1);
            assert_eq!(rows[t][0] as u64, want, "read {i} of address {a} (Icarus)");
        }
        // the same in rust-hdl's simulation
        let mut sim = Simulation::new();
        let (w2, o2) = (words.clone(), order.clone());
        sim.add_clock(5, |x: &mut Box<SpramWeights<SIMD, WA>>| {
            x.clock.next = !x.clock.val()
        });
        sim.add_testbench(move |mut ep: Sim<SpramWeights<SIMD, WA>>| {
            let mut x = ep.init()?;
            for (a, &w) in w2.iter().enumerate() {
                x.load_enable.next = true;
                x.load_address.next = (a as u64).into();
                x.load_data.next = w.into();
                wait_clock_cycle!(ep, clock, x);
            }
            x.load_enable.next = false;
            let mut got = vec![];
            for k in 0..o2.len() + 2 {
                x.address.next = (o2.get(k).copied().unwrap_or(0) as u64).into();
                wait_clock_cycle!(ep, clock, x);
                got.push(x.data.val().to_u64());
            }
            for (i, &a) in o2.iter().enumerate() {
                sim_assert_eq!(ep, got[i + 1], w2[a] & ((1 << SIMD) - 1), x);
            }
            ep.done(x)
        });
        let mut uut2 = SpramWeights::<SIMD, WA>::new(depth);
        uut2.connect_all();
        sim.run(Box::new(uut2), 20_000).unwrap();
        let s = ice40_stats("spram_weights", &v, "top").unwrap();
        assert_eq!((s.spram, s.bram, s.dff), (1, 0, SIMD), "{s}");
        println!("SpramWeights SIMD {SIMD} × {depth}: {s}");
    }
}
