//! `MvuPe<SIMD, P, A, Y>`: one processing element of the binary matrix-vector unit.
//!
//! Computes y = Σ w·x over a fan-in of `n` binary lanes (±1, bit 1 = +1), `SIMD` lanes
//! per beat, exactly as `bnnforge_model::kernels::binary_dot` (y = 2·agree − n =
//! n − 2·disagree).
//!
//! ```text
//!            beat t                           t+1                     t+2
//!  x[SIMD] ─┐
//!           (^)─ PopcountTree ─[pc]─┐
//!  w[SIMD] ─┘    (disagreements)    (+)──[acc A bits]──┐         y = n − 2·total
//!                         first? 0 : acc ─┘            └─ total ─[y Y bits]──► y
//!  in_valid, first, last ──────────[d1]──────────────────────────[out_valid]──► out_valid
//! ```
//!
//! The PE counts *disagreements* (popcount of `x ^ w`), so lanes that are zero in both
//! `x` and `w` add nothing: a fan-in that is not a multiple of `SIMD` is padded with
//! zeros in the last beat (weights and activations alike). Two register stages: the
//! popcount is registered (`pc`), then accumulated; `y` and `out_valid` are registered,
//! so a dot product whose `last` beat enters at cycle t leaves at cycle t+2. Beats may
//! come back to back or with gaps (`in_valid` low); a new dot product may start in the
//! cycle after the previous `last`.
//!
//! Parameters (checked by [`MvuPe::new`]):
//! - `SIMD` (1..=64): lanes per beat.
//! - `P` = clog2(SIMD + 1): width of one beat's popcount.
//! - `A` = clog2(n + 1): the accumulator, exactly wide enough for n disagreements.
//! - `Y` = A + 1: the signed result, exactly `int_width(-n, n)`.
//! - `n` (run-time argument, 1 ≤ n < 2^A): the fan-in in lanes; held as a `Constant`.
//!
//! Ports:
//! - `clock` (in): rising edge.
//! - `in_valid` (in): a beat is present on `x`, `w`, `first`, `last`.
//! - `first` (in): this beat starts a dot product (the accumulator restarts).
//! - `last` (in): this beat ends it; its y appears two cycles later.
//! - `x`, `w` (in, `Bits<SIMD>`): activation and weight bits of the beat.
//! - `out_valid` (out, registered): `y` holds a finished dot product this cycle.
//! - `y` (out, registered, `Signed<Y>`): the dot product, two's complement.
//!
//! The caller keeps beats of a dot product contiguous in order (`first` … `last`);
//! a single-beat dot product has both `first` and `last` set.

use crate::clog2_plus1;
use crate::popcount::PopcountTree;
use rust_hdl::prelude::*;

/// One binary MVU processing element (see the module documentation).
#[derive(LogicBlock)]
pub struct MvuPe<const SIMD: usize, const P: usize, const A: usize, const Y: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// A beat is present.
    pub in_valid: Signal<In, Bit>,
    /// The beat starts a dot product.
    pub first: Signal<In, Bit>,
    /// The beat ends a dot product.
    pub last: Signal<In, Bit>,
    /// Activation bits (1 = +1).
    pub x: Signal<In, Bits<SIMD>>,
    /// Weight bits (1 = +1).
    pub w: Signal<In, Bits<SIMD>>,
    /// `y` holds a result.
    pub out_valid: Signal<Out, Bit>,
    /// The dot product, n − 2·disagreements.
    pub y: Signal<Out, Signed<Y>>,
    tree: PopcountTree<SIMD, P>,
    // stage 1: the beat's popcount and its control bits
    pc: DFF<Bits<P>>,
    v1: DFF<Bit>,
    first1: DFF<Bit>,
    last1: DFF<Bit>,
    // stage 2: the running sum and the result
    acc: DFF<Bits<A>>,
    total: Signal<Local, Bits<A>>,
    yreg: DFF<Bits<Y>>,
    vout: DFF<Bit>,
    fan_in: Constant<Bits<Y>>,
}

impl<const SIMD: usize, const P: usize, const A: usize, const Y: usize> MvuPe<SIMD, P, A, Y> {
    /// A PE for dot products over `n` lanes; panics unless the widths are exact.
    pub fn new(n: u64) -> Self {
        assert!(
            (1..=64).contains(&SIMD),
            "MvuPe: SIMD = {SIMD} not in 1..=64"
        );
        assert_eq!(
            P,
            clog2_plus1(SIMD as u64),
            "MvuPe: P must be clog2(SIMD + 1)"
        );
        assert!(n >= 1, "MvuPe: fan-in n must be at least 1");
        assert_eq!(
            A,
            clog2_plus1(n),
            "MvuPe: A must be clog2(n + 1) for n = {n}"
        );
        assert_eq!(Y, A + 1, "MvuPe: Y must be A + 1");
        assert!(Y <= 64, "MvuPe: fan-in too large");
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            x: Default::default(),
            w: Default::default(),
            out_valid: Default::default(),
            y: Default::default(),
            tree: PopcountTree::new(),
            pc: Default::default(),
            v1: Default::default(),
            first1: Default::default(),
            last1: Default::default(),
            acc: Default::default(),
            total: Default::default(),
            yreg: Default::default(),
            vout: Default::default(),
            fan_in: Constant::new(n.into()),
        }
    }
}

impl<const SIMD: usize, const P: usize, const A: usize, const Y: usize> Logic
    for MvuPe<SIMD, P, A, Y>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, pc, v1, first1, last1, acc, yreg, vout);
        // stage 1: disagreements of this beat
        self.tree.bits.next = self.x.val() ^ self.w.val();
        self.pc.d.next = self.tree.count.val();
        self.v1.d.next = self.in_valid.val();
        self.first1.d.next = self.first.val();
        self.last1.d.next = self.last.val();
        // stage 2: accumulate; a dot product's sum never exceeds n < 2^A
        self.total.next = self.acc.q.val() + bit_cast::<A, P>(self.pc.q.val());
        if self.first1.q.val() {
            self.total.next = bit_cast::<A, P>(self.pc.q.val());
        }
        self.vout.d.next = false;
        if self.v1.q.val() {
            self.acc.d.next = self.total.val();
            if self.last1.q.val() {
                self.yreg.d.next = self.fan_in.val() - (bit_cast::<Y, A>(self.total.val()) << 1);
                self.vout.d.next = true;
            }
        }
        self.out_valid.next = self.vout.q.val();
        self.y.next = signed_cast(self.yreg.q.val());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{ice40_stats, iverilog_vectors, sign_extend};
    use crate::testutil;
    use bnnforge_model::kernels::binary_dot;
    use rand::Rng;
    use std::sync::{Arc, Mutex};

    /// One beat as the testbench drives it.
    #[derive(Clone, Copy, Debug)]
    struct Beat {
        valid: bool,
        first: bool,
        last: bool,
        x: u64,
        w: u64,
    }

    fn lane_mask(k: usize) -> u64 {
        if k >= 64 {
            u64::MAX
        } else {
            (1u64 << k) - 1
        }
    }

    /// Random dot products over `n` lanes cut into SIMD-lane beats, with random bubbles,
    /// and the model's answer for each.
    fn stimulus(rng: &mut impl Rng, simd: usize, n: u64, dots: usize) -> (Vec<Beat>, Vec<i64>) {
        let beats_per_dot = (n as usize).div_ceil(simd);
        let mut beats = vec![];
        let mut want = vec![];
        for _ in 0..dots {
            let mut y = 0;
            // agreement bias per dot product, so |y| near n is exercised too
            let bias = rng.gen_range(0..4);
            for b in 0..beats_per_dot {
                let lanes = simd.min(n as usize - b * simd);
                let m = lane_mask(lanes);
                let x = rng.gen::<u64>() & m;
                let w = match bias {
                    0 => x,
                    1 => !x & m,
                    _ => rng.gen::<u64>() & m,
                };
                y += binary_dot(x, w, lanes as u32);
                while rng.gen_bool(0.2) {
                    // a bubble with garbage on the data lines
                    beats.push(Beat {
                        valid: false,
                        first: rng.gen(),
                        last: rng.gen(),
                        x: rng.gen::<u64>() & lane_mask(simd),
                        w: rng.gen::<u64>() & lane_mask(simd),
                    });
                }
                beats.push(Beat {
                    valid: true,
                    first: b == 0,
                    last: b + 1 == beats_per_dot,
                    x,
                    w,
                });
            }
            want.push(y);
        }
        (beats, want)
    }

    fn run<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        rng: &mut impl Rng,
        n: u64,
        dots: usize,
    ) {
        let (beats, want) = stimulus(rng, SIMD, n, dots);
        let got = Arc::new(Mutex::new(Vec::<i64>::new()));
        let sink = got.clone();
        let cycles = beats.len() + 4;
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<MvuPe<SIMD, P, A, Y>>| {
            x.clock.next = !x.clock.val()
        });
        sim.add_testbench(move |mut sim: Sim<MvuPe<SIMD, P, A, Y>>| {
            let mut x = sim.init()?;
            for t in 0..cycles {
                let b = beats.get(t).copied().unwrap_or(Beat {
                    valid: false,
                    first: false,
                    last: false,
                    x: 0,
                    w: 0,
                });
                x.in_valid.next = b.valid;
                x.first.next = b.first;
                x.last.next = b.last;
                x.x.next = b.x.into();
                x.w.next = b.w.into();
                wait_clock_cycle!(sim, clock, x);
                if x.out_valid.val() {
                    let y = x.y.val().bigint();
                    sink.lock().unwrap().push(i64::try_from(y).unwrap());
                }
            }
            sim.done(x)
        });
        let mut uut = MvuPe::<SIMD, P, A, Y>::new(n);
        uut.connect_all();
        sim.run(Box::new(uut), 10 * (cycles as u64 + 10)).unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(got, want, "MvuPe<SIMD={SIMD}> n={n}");
    }

    #[test]
    fn matches_binary_dot_over_a_parameter_matrix() {
        let mut rng = testutil::rng("mvu_pe");
        // <SIMD, P, A, Y>(n): P = clog2(SIMD+1), A = clog2(n+1), Y = A+1
        run::<1, 1, 1, 2>(&mut rng, 1, 20);
        run::<1, 1, 3, 4>(&mut rng, 5, 20);
        run::<2, 2, 3, 4>(&mut rng, 7, 20);
        run::<4, 3, 2, 3>(&mut rng, 3, 20); // fan-in below SIMD
        run::<4, 3, 4, 5>(&mut rng, 9, 20);
        run::<8, 4, 7, 8>(&mut rng, 72, 12);
        run::<16, 5, 5, 6>(&mut rng, 16, 20);
        run::<32, 6, 8, 9>(&mut rng, 144, 10);
        run::<64, 7, 7, 8>(&mut rng, 64, 20);
        run::<64, 7, 10, 11>(&mut rng, 576, 6);
    }

    /// The generated Verilog, run in Icarus Verilog on the same kind of stimulus.
    fn run_verilog<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        rng: &mut impl Rng,
        n: u64,
        dots: usize,
    ) {
        let (beats, want) = stimulus(rng, SIMD, n, dots);
        let mut uut = MvuPe::<SIMD, P, A, Y>::new(n);
        uut.connect_all();
        let v = generate_verilog(&uut);
        let mut vectors: Vec<Vec<u128>> = beats
            .iter()
            .map(|b| {
                let bits = [b.valid, b.first, b.last].map(|f| f as u128);
                vec![bits[0], bits[1], bits[2], b.x as u128, b.w as u128]
            })
            .collect();
        vectors.extend((0..3).map(|_| vec![0; 5]));
        let inputs = [
            ("in_valid", 1),
            ("first", 1),
            ("last", 1),
            ("x", SIMD),
            ("w", SIMD),
        ];
        let rows = iverilog_vectors(
            &format!("mvu_pe_iv{SIMD}_{n}"),
            &v,
            Some("clock"),
            &inputs,
            &[("out_valid", 1), ("y", Y)],
            &vectors,
        )
        .unwrap();
        let got: Vec<i64> = rows
            .iter()
            .filter(|r| r[0] == 1)
            .map(|r| sign_extend(r[1], Y) as i64)
            .collect();
        assert_eq!(got, want, "Verilog MvuPe<SIMD={SIMD}> n={n}");
    }

    #[test]
    fn generated_verilog_matches_binary_dot() {
        let mut rng = testutil::rng("mvu_pe_verilog");
        run_verilog::<1, 1, 3, 4>(&mut rng, 5, 20);
        run_verilog::<4, 3, 2, 3>(&mut rng, 3, 20);
        run_verilog::<8, 4, 7, 8>(&mut rng, 72, 20);
        run_verilog::<64, 7, 10, 11>(&mut rng, 576, 10);
    }

    #[test]
    #[should_panic(expected = "A must be clog2(n + 1)")]
    fn rejects_an_accumulator_of_the_wrong_width() {
        let _ = MvuPe::<8, 4, 6, 7>::new(64);
    }

    #[test]
    fn synthesises_clean_with_exact_registers() {
        let mut uut = MvuPe::<64, 7, 10, 11>::new(576);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_mvu_pe", &v).unwrap();
        let s = ice40_stats("mvu_pe_64_576", &v, "top").unwrap();
        println!("MvuPe<SIMD=64, n=576> on synth_ice40: {s}");
        // pc 7 + v1/first1/last1 3 + acc 10 + y 11 + out_valid 1 = 32, less y's LSB,
        // which is n's LSB for every result (y = n - 2·total), a constant yosys removes
        assert_eq!(
            s.dff, 31,
            "registers are not exactly as wide as needed: {s}"
        );
        assert!(s.lut4 <= 240, "MvuPe<64> costs {s}");
    }
}
