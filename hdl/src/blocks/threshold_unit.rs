//! `ThresholdUnit<Y, U, K, B, CA>`: the threshold op on a stream of accumulator values:
//! for y of channel `ch`, n = the number of the channel's K = 2^B − 1 thresholds `T[k]`
//! with y ≥ `T[k]` (y ≤ `T[k]` when the channel's `flip` is set), as
//! `bnnforge_model::kernels::threshold_count`; with B = 1, n is the output bit.
//! Thresholds in K `SyncROM`s (block RAM when worthwhile), read data registered before
//! the comparators; with one channel the words are constants, compared by a mux chain
//! that yosys folds ([`CompareBit::constant`]). How flips and clamping stay exact: `hdl/DESIGN.md`, "Threshold unit".
//!
//! Ports: `clock`; in `in_valid`, `ch: Bits<CA>` (< C), `y: Signed<Y>` (in [lo, hi]); out,
//! registered, `out_valid` and `n: Bits<B>`.
//!
//! Generics (checked by [`ThresholdUnit::new`]): `Y` (y's width, [lo, hi] must fit),
//! `B` ≥ 1, `CA` (C ≤ 2^CA); deduced `U` = Y + 1, `K` = 2^B − 1. Run-time: `lo`, `hi`,
//! `thresholds` (C rows of K), `flip` (C flags).
//!
//! Cycles: one value per cycle. Latency: [`LATENCY`] (3).

use crate::blocks::compare_bit::CompareBit;
use crate::blocks::popcount::PopcountTree;
use rust_hdl::prelude::*;

/// Cycles from `y` to its `n`.
pub const LATENCY: u64 = 3;

/// Per-channel multi-threshold unit (see the module documentation).
#[derive(LogicBlock)]
pub struct ThresholdUnit<
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// `y` and `ch` are valid.
    pub in_valid: Signal<In, Bit>,
    /// Channel of `y`.
    pub ch: Signal<In, Bits<CA>>,
    /// Accumulator value, two's complement.
    pub y: Signal<In, Signed<Y>>,
    /// `n` holds a result.
    pub out_valid: Signal<Out, Bit>,
    /// Number of thresholds reached.
    pub n: Signal<Out, Bits<B>>,
    thr: Vec<SyncROM<Bits<U>, CA>>,
    flips: SyncROM<Bit, CA>,
    y1: DFF<Bits<Y>>,
    v1: DFF<Bit>,
    // the memories' read data registered in the fabric, y and valid alongside
    treg: Vec<DFF<Bits<U>>>,
    freg: DFF<Bit>,
    y2: DFF<Bits<U>>,
    v2: DFF<Bit>,
    yu: Signal<Local, Bits<U>>,
    cmp: Vec<CompareBit<U, K>>,
    tree: PopcountTree<K, B>,
    nreg: DFF<Bits<B>>,
    vout: DFF<Bit>,
    sign: Constant<Bits<Y>>,
    all_ones: Constant<Bits<B>>,
    _last: usize,
}

/// The value stored for threshold `t` of a channel: clamped into [lo, hi + 1] (T + 1
/// first when flipped), then offset by 2^(Y−1). Public so that generators and reports
/// can show what the hardware holds.
pub fn stored_threshold(t: i64, flip: bool, lo: i64, hi: i64, y_bits: usize) -> u64 {
    let t = t as i128 + flip as i128;
    let t = t.clamp(lo as i128, hi as i128 + 1);
    (t + (1i128 << (y_bits - 1))) as u64
}

impl<const Y: usize, const U: usize, const K: usize, const B: usize, const CA: usize>
    ThresholdUnit<Y, U, K, B, CA>
{
    /// Build the unit for values in `lo..=hi`, `thresholds[c]` (K values) and `flip[c]`
    /// per channel c. Panics on any width or shape that does not match.
    pub fn new(lo: i64, hi: i64, thresholds: &[Vec<i64>], flip: &[bool]) -> Self {
        assert!((1..=8).contains(&B), "ThresholdUnit: B = {B} not in 1..=8");
        assert_eq!(K, (1 << B) - 1, "ThresholdUnit: K must be 2^B - 1");
        assert!(
            (2..=62).contains(&Y),
            "ThresholdUnit: Y = {Y} not in 2..=62"
        );
        assert_eq!(U, Y + 1, "ThresholdUnit: U must be Y + 1");
        assert!(lo <= hi, "ThresholdUnit: empty range {lo}..={hi}");
        let half = 1i64 << (Y - 1);
        assert!(
            -half <= lo && hi < half,
            "ThresholdUnit: range {lo}..={hi} does not fit Signed<{Y}>"
        );
        let c = thresholds.len();
        assert!(
            c >= 1 && c <= 1 << CA,
            "ThresholdUnit: {c} channels need 1..=2^{CA}"
        );
        assert_eq!(flip.len(), c, "ThresholdUnit: one flip flag per channel");
        for (i, row) in thresholds.iter().enumerate() {
            assert_eq!(
                row.len(),
                K,
                "ThresholdUnit: channel {i} needs {K} thresholds"
            );
        }
        let thr = (0..K)
            .map(|k| {
                SyncROM::new(
                    (0..c)
                        .map(|ch| {
                            let v = stored_threshold(thresholds[ch][k], flip[ch], lo, hi, Y);
                            (Bits::<CA>::from(ch as u64), Bits::<U>::from(v))
                        })
                        .collect(),
                )
            })
            .collect();
        let flips = SyncROM::new(
            (0..c)
                .map(|ch| (Bits::<CA>::from(ch as u64), flip[ch]))
                .collect(),
        );
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            ch: Default::default(),
            y: Default::default(),
            out_valid: Default::default(),
            n: Default::default(),
            thr,
            flips,
            y1: Default::default(),
            v1: Default::default(),
            treg: (0..K).map(|_| Default::default()).collect(),
            freg: Default::default(),
            y2: Default::default(),
            v2: Default::default(),
            yu: Default::default(),
            // one channel: each ROM holds one word, a constant after flattening
            cmp: (0..K)
                .map(|k| {
                    if c == 1 {
                        CompareBit::constant(k)
                    } else {
                        CompareBit::new(k)
                    }
                })
                .collect(),
            tree: PopcountTree::new(),
            nreg: Default::default(),
            vout: Default::default(),
            sign: Constant::new((1u64 << (Y - 1)).into()),
            all_ones: Constant::new((K as u64).into()),
            _last: K - 1,
        }
    }
}

impl<const Y: usize, const U: usize, const K: usize, const B: usize, const CA: usize> Logic
    for ThresholdUnit<Y, U, K, B, CA>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, y1, v1, freg, y2, v2, nreg, vout);
        // cycle t: address the threshold memories, register y
        for k in 0..K {
            self.thr[k].clock.next = self.clock.val();
            self.thr[k].address.next = self.ch.val();
        }
        self.flips.clock.next = self.clock.val();
        self.flips.address.next = self.ch.val();
        self.y1.d.next = unsigned_cast(self.y.val());
        self.v1.d.next = self.in_valid.val();
        // cycle t+1: the memories' words into fabric registers, y to offset binary
        for k in 0..K {
            self.treg[k].clock.next = self.clock.val();
            self.treg[k].d.next = self.thr[k].data.val();
        }
        self.freg.d.next = self.flips.data.val();
        self.y2.d.next = bit_cast::<U, Y>(self.y1.q.val() ^ self.sign.val());
        self.v2.d.next = self.v1.q.val();
        // cycle t+2: K unsigned comparisons on offset binary, count, flip
        self.yu.next = self.y2.q.val();
        for k in 0..K {
            self.cmp[k].u.next = self.yu.val();
            self.cmp[k].t.next = self.treg[k].q.val();
        }
        self.cmp[0].prev.next = 0.into();
        for k in 1..K {
            self.cmp[k].prev.next = self.cmp[k - 1].out.val();
        }
        // (a one-iteration loop: Vec indices in kernels may only use loop variables)
        for k in self._last..K {
            self.tree.bits.next = self.cmp[k].out.val();
        }
        self.nreg.d.next = self.tree.count.val();
        if self.freg.q.val() {
            self.nreg.d.next = self.tree.count.val() ^ self.all_ones.val();
        }
        self.vout.d.next = self.v2.q.val();
        self.out_valid.next = self.vout.q.val();
        self.n.next = self.nreg.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;
    use bnnforge_model::kernels::threshold_count;
    use rand::Rng;
    use std::sync::{Arc, Mutex};

    /// A random threshold: inside the range, at its edges, or anywhere in i64.
    fn threshold(rng: &mut impl Rng, lo: i64, hi: i64) -> i64 {
        match rng.gen_range(0..8) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => rng.gen(),
            3 => lo + rng.gen_range(-2..=1),
            4 => hi + rng.gen_range(-1..=2),
            _ => rng.gen_range(lo..=hi),
        }
    }

    struct Case {
        lo: i64,
        hi: i64,
        thresholds: Vec<Vec<i64>>,
        flip: Vec<bool>,
        /// (channel, y) per input, with the model's n
        inputs: Vec<(usize, i64, u32)>,
    }

    fn case(rng: &mut impl Rng, y_bits: usize, k: usize, channels: usize, len: usize) -> Case {
        let half = 1i64 << (y_bits - 1);
        let (lo, hi) = if rng.gen_bool(0.5) {
            (-half, half - 1)
        } else {
            let m = rng.gen_range(1..half);
            (-m, m) // an MvuPe's [-n, n]
        };
        let thresholds: Vec<Vec<i64>> = (0..channels)
            .map(|_| (0..k).map(|_| threshold(rng, lo, hi)).collect())
            .collect();
        let flip: Vec<bool> = (0..channels).map(|_| rng.gen()).collect();
        let inputs = (0..len)
            .map(|_| {
                let c = rng.gen_range(0..channels);
                let y = match rng.gen_range(0..4) {
                    0 => lo,
                    1 => hi,
                    _ => rng.gen_range(lo..=hi),
                };
                (c, y, threshold_count(y, &thresholds[c], flip[c]))
            })
            .collect();
        Case {
            lo,
            hi,
            thresholds,
            flip,
            inputs,
        }
    }

    fn run<const Y: usize, const U: usize, const K: usize, const B: usize, const CA: usize>(
        rng: &mut impl Rng,
        channels: usize,
    ) {
        let c = case(rng, Y, K, channels, 200);
        let want: Vec<u64> = c.inputs.iter().map(|i| i.2 as u64).collect();
        let mut uut = ThresholdUnit::<Y, U, K, B, CA>::new(c.lo, c.hi, &c.thresholds, &c.flip);
        uut.connect_all();
        let verilog = generate_verilog(&uut);
        // rust-hdl simulation, with random bubbles
        let got = Arc::new(Mutex::new(Vec::<u64>::new()));
        let sink = got.clone();
        let mut stream: Vec<Option<(usize, i64)>> = vec![];
        for &(ch, y, _) in &c.inputs {
            while rng.gen_bool(0.2) {
                stream.push(None);
            }
            stream.push(Some((ch, y)));
        }
        stream.extend([None; LATENCY as usize + 1]);
        let cycles = stream.len();
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<ThresholdUnit<Y, U, K, B, CA>>| {
            x.clock.next = !x.clock.val()
        });
        let drive = stream.clone();
        sim.add_testbench(move |mut sim: Sim<ThresholdUnit<Y, U, K, B, CA>>| {
            let mut x = sim.init()?;
            for s in &drive {
                x.in_valid.next = s.is_some();
                let (ch, y) = s.unwrap_or((0, 0));
                x.ch.next = (ch as u64).into();
                x.y.next = y.into();
                wait_clock_cycle!(sim, clock, x);
                if x.out_valid.val() {
                    sink.lock().unwrap().push(x.n.val().to_u64());
                }
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 10 * (cycles as u64 + 10)).unwrap();
        let label = format!(
            "ThresholdUnit<Y={Y}, B={B}> C={channels} {}..={}",
            c.lo, c.hi
        );
        assert_eq!(*got.lock().unwrap(), want, "rust-hdl {label}");
        // the generated Verilog in Icarus on the same stream
        let vectors: Vec<Vec<u128>> = stream
            .iter()
            .map(|s| match s {
                Some((ch, y)) => vec![1, *ch as u128, (*y as i128 as u128) & ((1 << Y) - 1)],
                None => vec![0, 0, 0],
            })
            .collect();
        let rows = iverilog_vectors(
            &format!("threshold_iv{Y}_{B}_{channels}"),
            &verilog,
            Some("clock"),
            &[("in_valid", 1), ("ch", CA), ("y", Y)],
            &[("out_valid", 1), ("n", B)],
            &vectors,
        )
        .unwrap();
        let got: Vec<u64> = rows
            .iter()
            .filter(|r| r[0] == 1)
            .map(|r| r[1] as u64)
            .collect();
        assert_eq!(got, want, "Verilog {label}");
    }

    #[test]
    fn matches_threshold_count_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("threshold_unit");
        // <Y, U = Y+1, K = 2^B-1, B, CA>(channels)
        run::<2, 3, 1, 1, 1>(&mut rng, 1);
        run::<4, 5, 1, 1, 3>(&mut rng, 5);
        run::<8, 9, 3, 2, 4>(&mut rng, 16);
        run::<11, 12, 1, 1, 6>(&mut rng, 64);
        run::<12, 13, 15, 4, 5>(&mut rng, 20);
        run::<20, 21, 7, 3, 2>(&mut rng, 3);
    }

    #[test]
    #[should_panic(expected = "K must be 2^B - 1")]
    fn rejects_a_wrong_threshold_count() {
        let _ = ThresholdUnit::<8, 9, 2, 2, 1>::new(-5, 5, &[vec![0, 1]], &[false]);
    }

    #[test]
    fn clamps_out_of_range_thresholds() {
        // y in [-3, 3]: far thresholds become lo or hi + 1, offset by 2^(Y-1) = 4
        assert_eq!(stored_threshold(i64::MIN, false, -3, 3, 3), 1);
        assert_eq!(stored_threshold(i64::MAX, false, -3, 3, 3), 8);
        assert_eq!(stored_threshold(i64::MAX, true, -3, 3, 3), 8);
        assert_eq!(stored_threshold(2, true, -3, 3, 3), 7);
    }

    #[test]
    fn thresholds_go_to_block_ram() {
        let mut rng = bnnforge_model::random::test_rng("threshold_unit_synth");
        let c = case(&mut rng, 11, 1, 256, 0);
        let mut uut = ThresholdUnit::<11, 12, 1, 1, 8>::new(c.lo, c.hi, &c.thresholds, &c.flip);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_threshold_unit", &v).unwrap();
        let s = ice40_stats("threshold_256x1", &v, "top").unwrap();
        println!("ThresholdUnit<Y=11, B=1, C=256> on synth_ice40: {s}");
        assert!(s.bram >= 1, "thresholds not in block RAM: {s}");
        assert!(s.lut4 <= 60, "ThresholdUnit<11, B=1> costs {s}");
        let c = case(&mut rng, 12, 15, 32, 0);
        let mut uut = ThresholdUnit::<12, 13, 15, 4, 5>::new(c.lo, c.hi, &c.thresholds, &c.flip);
        uut.connect_all();
        let s = ice40_stats("threshold_32x15", &generate_verilog(&uut), "top").unwrap();
        println!("ThresholdUnit<Y=12, B=4, C=32> on synth_ice40: {s}");
        // 15 ROMs of 32 x 13 bits are too small for yosys to put in block RAM: they become
        // flip-flops and multiplexers (see DESIGN.md, limits); the count depends on the
        // random thresholds (749..=910 LUT4 seen over seeds), hence the margin
        assert!(s.lut4 <= 1000, "ThresholdUnit<12, B=4> costs {s}");
    }
}
