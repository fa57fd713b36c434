//! `MvuPe<SIMD, P, A, Y>`: one processing element of the binary matrix-vector unit:
//! y = Σ w·x = n − 2·disagree over n binary lanes (bit 1 = +1), SIMD lanes per beat, as
//! `bnnforge_model::kernels::binary_dot`. In padding mode a beat with `pad` set (a conv
//! padded position, `pad_value` 0) adds 0. Lanes zero in `x` and `w` add nothing.
//! ```text
//!  x ^ w ─► PopcountPipe ─[pc]─ c ─(+)─ total ─[acc]─► n − 2·total (plain) / n − total (padding) ─[y]
//!  c = pc (plain); 2·pc, or the beat's lane count L when padded (padding mode)
//! ```
//! The running y starts at n: its flip-flops load the constant (synchronous set/reset)
//! when a first beat is one stage before the subtraction, which then has no mux.
//! Ports: `clock`; in `in_valid`, `first` (restart), `last` (end), `pad` (padding mode),
//! `x`, `w: Bits<SIMD>`; out, registered, `out_valid`, `y: Signed<Y>`.
//!
//! Generics (checked by [`MvuPe::new`]): `SIMD` in 1..=64; deduced `P` = clog2(SIMD + 1),
//! `A` = clog2(n + 1) (+ 1 in padding mode), `Y` = clog2(n + 1) + 1. Run-time: n ≥ 1, mode.
//!
//! Cycles: one beat per cycle, gaps allowed, a new dot product right after `last`.
//! Latency: y of a `last` beat at t is out at t + [`PE_LATENCY`] (4).

use crate::bits_to_hold;
use crate::blocks::popcount::{PopcountPipe, PIPE_LATENCY};
use rust_hdl::prelude::*;

/// Cycles from a `last` beat at the PE's inputs to its `out_valid`.
pub const PE_LATENCY: u64 = PIPE_LATENCY + 2;

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
    /// The beat is a padded kernel position (padding mode).
    pub pad: Signal<In, Bit>,
    /// Activation bits (1 = +1).
    pub x: Signal<In, Bits<SIMD>>,
    /// Weight bits (1 = +1).
    pub w: Signal<In, Bits<SIMD>>,
    /// `y` holds a result.
    pub out_valid: Signal<Out, Bit>,
    /// The dot product, n − 2·disagreements over the unpadded beats.
    pub y: Signal<Out, Signed<Y>>,
    tree: PopcountPipe<SIMD, P>,
    // the beat's control bits alongside the popcount pipeline's two stages
    va: DFF<Bit>,
    fa: DFF<Bit>,
    la: DFF<Bit>,
    pa: DFF<Bit>,
    vb: DFF<Bit>,
    fb: DFF<Bit>,
    lb: DFF<Bit>,
    pb: DFF<Bit>,
    // stage 3: the beat's popcount and its control bits
    pc: DFF<Bits<P>>,
    v1: DFF<Bit>,
    last1: DFF<Bit>,
    pad1: DFF<Bit>,
    // stage 4: what the beat takes off y, the running y and the result
    c: Signal<Local, Bits<Y>>,
    acc: DFF<Bits<Y>>,
    total: Signal<Local, Bits<Y>>,
    yreg: DFF<Bits<Y>>,
    vout: DFF<Bit>,
    fan_in: Constant<Bits<Y>>,
    padding: Constant<Bit>,
    // lanes of a padded beat: a full one, and the last one of a dot product
    pad_full: Constant<Bits<Y>>,
    pad_tail: Constant<Bits<Y>>,
}

impl<const SIMD: usize, const P: usize, const A: usize, const Y: usize> MvuPe<SIMD, P, A, Y> {
    /// A PE for dot products over `n` lanes, in padding mode when `padding`; panics
    /// unless the widths are exact.
    pub fn new(n: u64, padding: bool) -> Self {
        Self::with_pipe(n, padding, false)
    }

    /// The same PE with the popcount registered late ([`PopcountPipe::late`]: fewer
    /// LUT4s, a longer first stage) when `late`; the latency is the same.
    pub fn with_pipe(n: u64, padding: bool, late: bool) -> Self {
        assert!(
            (1..=64).contains(&SIMD),
            "MvuPe: SIMD = {SIMD} not in 1..=64"
        );
        assert_eq!(
            P,
            bits_to_hold(SIMD as u64),
            "MvuPe: P must be clog2(SIMD + 1)"
        );
        assert!(n >= 1, "MvuPe: fan-in n must be at least 1");
        if padding {
            assert_eq!(
                A,
                bits_to_hold(2 * n),
                "MvuPe: A must be clog2(2n + 1) in padding mode for n = {n}"
            );
        } else {
            assert_eq!(
                A,
                bits_to_hold(n),
                "MvuPe: A must be clog2(n + 1) for n = {n}"
            );
        }
        assert_eq!(
            Y,
            bits_to_hold(n) + 1,
            "MvuPe: Y must be clog2(n + 1) + 1 for n = {n}"
        );
        assert!(Y <= 64, "MvuPe: fan-in too large");
        let simd = SIMD as u64;
        let beats = n.div_ceil(simd);
        // a dot product of one beat reads only `pad_tail`; n keeps `pad_full` in range
        let full = simd.min(n);
        let tail = n - (beats - 1) * simd;
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            pad: Default::default(),
            x: Default::default(),
            w: Default::default(),
            out_valid: Default::default(),
            y: Default::default(),
            tree: PopcountPipe::with(late),
            va: Default::default(),
            fa: Default::default(),
            la: Default::default(),
            pa: Default::default(),
            vb: Default::default(),
            fb: Default::default(),
            lb: Default::default(),
            pb: Default::default(),
            pc: Default::default(),
            v1: Default::default(),
            last1: Default::default(),
            pad1: Default::default(),
            c: Default::default(),
            acc: Default::default(),
            total: Default::default(),
            yreg: Default::default(),
            vout: Default::default(),
            fan_in: Constant::new(n.into()),
            padding: Constant::new(padding),
            pad_full: Constant::new(full.into()),
            pad_tail: Constant::new(tail.into()),
        }
    }
}

impl<const SIMD: usize, const P: usize, const A: usize, const Y: usize> Logic
    for MvuPe<SIMD, P, A, Y>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, va, fa, la, pa, vb, fb, lb, pb, pc, v1, last1, pad1, acc, yreg, vout
        );
        // stages 1-2: disagreements of this beat, through the pipelined tree
        self.tree.clock.next = self.clock.val();
        self.tree.bits.next = self.x.val() ^ self.w.val();
        self.va.d.next = self.in_valid.val();
        self.fa.d.next = self.first.val();
        self.la.d.next = self.last.val();
        self.pa.d.next = self.pad.val();
        self.vb.d.next = self.va.q.val();
        self.fb.d.next = self.fa.q.val();
        self.lb.d.next = self.la.q.val();
        self.pb.d.next = self.pa.q.val();
        // stage 3: the count and the beat's control bits
        self.pc.d.next = self.tree.count.val();
        self.v1.d.next = self.vb.q.val();
        self.last1.d.next = self.lb.q.val();
        self.pad1.d.next = self.pb.q.val();
        // stage 4: what the beat takes off y (2d; padding mode: L when padded), from n
        // at a first beat: one subtraction, y itself is the running sum
        self.c.next = bit_cast::<Y, P>(self.pc.q.val()) << 1;
        if self.padding.val() & self.pad1.q.val() {
            self.c.next = self.pad_full.val();
            if self.last1.q.val() {
                self.c.next = self.pad_tail.val();
            }
        }
        // every partial y lies in [-n, n], which Y bits hold
        self.total.next = self.acc.q.val() - self.c.val();
        self.vout.d.next = false;
        if self.v1.q.val() {
            self.acc.d.next = self.total.val();
            if self.last1.q.val() {
                self.yreg.d.next = self.total.val();
                self.vout.d.next = true;
            }
        }
        // a first beat one stage before: acc starts at n, a constant loaded by the
        // flip-flops' synchronous set/reset, so the subtraction has no mux in front
        // (one LUT4 per bit less); the beat in stage 4 now, if any, is a last one
        if self.vb.q.val() & self.fb.q.val() {
            self.acc.d.next = self.fan_in.val();
        }
        self.out_valid.next = self.vout.q.val();
        self.y.next = signed_cast(self.yreg.q.val());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil::{iverilog_vectors, sign_extend};
    use bnnforge_model::kernels::binary_dot;
    use rand::Rng;
    use std::sync::{Arc, Mutex};

    /// One beat as the testbench drives it.
    #[derive(Clone, Copy, Debug)]
    struct Beat {
        valid: bool,
        first: bool,
        last: bool,
        pad: bool,
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
    /// and the model's answer for each. In padding mode some beats are padded (garbage
    /// on `x` and `w`, adding 0); in the plain mode `pad` carries garbage, which the PE
    /// must ignore.
    fn stimulus(
        rng: &mut impl Rng,
        simd: usize,
        n: u64,
        padding: bool,
        dots: usize,
    ) -> (Vec<Beat>, Vec<i64>) {
        let beats_per_dot = (n as usize).div_ceil(simd);
        let mut beats = vec![];
        let mut want = vec![];
        for _ in 0..dots {
            let mut y = 0;
            // agreement bias per dot product, so |y| near n is exercised too
            let bias = rng.gen_range(0..4);
            // share of padded beats: none, some, or all (y = 0)
            let pad_rate = if padding {
                [0.0, 0.3, 0.6, 1.0][rng.gen_range(0..4)]
            } else {
                0.0
            };
            for b in 0..beats_per_dot {
                let lanes = simd.min(n as usize - b * simd);
                let m = lane_mask(lanes);
                let pad = rng.gen_bool(pad_rate);
                let (x, w) = if pad {
                    (
                        rng.gen::<u64>() & lane_mask(simd),
                        rng.gen::<u64>() & lane_mask(simd),
                    )
                } else {
                    let x = rng.gen::<u64>() & m;
                    let w = match bias {
                        0 => x,
                        1 => !x & m,
                        _ => rng.gen::<u64>() & m,
                    };
                    y += binary_dot(x, w, lanes as u32);
                    (x, w)
                };
                while rng.gen_bool(0.2) {
                    // a bubble with garbage on the data lines
                    beats.push(Beat {
                        valid: false,
                        first: rng.gen(),
                        last: rng.gen(),
                        pad: rng.gen(),
                        x: rng.gen::<u64>() & lane_mask(simd),
                        w: rng.gen::<u64>() & lane_mask(simd),
                    });
                }
                beats.push(Beat {
                    valid: true,
                    first: b == 0,
                    last: b + 1 == beats_per_dot,
                    pad: if padding { pad } else { rng.gen() },
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
        padding: bool,
        dots: usize,
    ) {
        run_form::<SIMD, P, A, Y>(rng, n, padding, dots, false);
    }

    fn run_form<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        rng: &mut impl Rng,
        n: u64,
        padding: bool,
        dots: usize,
        late: bool,
    ) {
        let (beats, want) = stimulus(rng, SIMD, n, padding, dots);
        let got = Arc::new(Mutex::new(Vec::<i64>::new()));
        let sink = got.clone();
        let cycles = beats.len() + PE_LATENCY as usize + 2;
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
                    pad: false,
                    x: 0,
                    w: 0,
                });
                x.in_valid.next = b.valid;
                x.first.next = b.first;
                x.last.next = b.last;
                x.pad.next = b.pad;
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
        let mut uut = MvuPe::<SIMD, P, A, Y>::with_pipe(n, padding, late);
        uut.connect_all();
        sim.run(Box::new(uut), 10 * (cycles as u64 + 10)).unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(
            got, want,
            "MvuPe<SIMD={SIMD}> n={n} padding={padding} late={late}"
        );
    }

    #[test]
    fn matches_binary_dot_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("mvu_pe");
        // plain: <SIMD, P, A, Y>(n): P = clog2(SIMD+1), A = clog2(n+1), Y = A+1
        run::<1, 1, 1, 2>(&mut rng, 1, false, 20);
        run::<1, 1, 3, 4>(&mut rng, 5, false, 20);
        run::<2, 2, 3, 4>(&mut rng, 7, false, 20);
        run::<3, 2, 5, 6>(&mut rng, 27, false, 20); // odd SIMD
        run::<4, 3, 2, 3>(&mut rng, 3, false, 20); // fan-in below SIMD
        run::<4, 3, 4, 5>(&mut rng, 9, false, 20);
        run::<8, 4, 7, 8>(&mut rng, 72, false, 12);
        run::<16, 5, 5, 6>(&mut rng, 16, false, 20);
        run::<32, 6, 8, 9>(&mut rng, 144, false, 10);
        run::<64, 7, 7, 8>(&mut rng, 64, false, 20);
        run::<64, 7, 10, 11>(&mut rng, 576, false, 6);
        // the popcount registered late, plain and padded
        run_form::<49, 6, 10, 11>(&mut rng, 784, false, 6, true);
        run_form::<3, 2, 5, 6>(&mut rng, 27, false, 20, true);
        run_form::<5, 3, 4, 4>(&mut rng, 7, true, 20, true);
        // padding mode: A = clog2(2n+1), Y = clog2(n+1)+1 = A
        run::<1, 1, 2, 2>(&mut rng, 1, true, 20);
        run::<1, 1, 4, 4>(&mut rng, 5, true, 20);
        run::<2, 2, 6, 6>(&mut rng, 18, true, 20);
        run::<3, 2, 5, 5>(&mut rng, 9, true, 20); // odd SIMD
        run::<3, 2, 6, 6>(&mut rng, 27, true, 20);
        run::<4, 3, 7, 7>(&mut rng, 36, true, 20);
        run::<5, 3, 3, 3>(&mut rng, 3, true, 20); // fan-in below SIMD
        run::<5, 3, 4, 4>(&mut rng, 7, true, 20); // last beat of 2 lanes
        run::<7, 3, 7, 7>(&mut rng, 63, true, 12);
        run::<9, 4, 8, 8>(&mut rng, 81, true, 12);
        run::<16, 5, 7, 7>(&mut rng, 40, true, 20); // last beat of 8 lanes
        run::<33, 6, 10, 10>(&mut rng, 297, true, 8);
        run::<63, 6, 11, 11>(&mut rng, 567, true, 6);
        run::<64, 7, 8, 8>(&mut rng, 100, true, 12); // last beat of 36 lanes
        run::<64, 7, 11, 11>(&mut rng, 576, true, 6);
    }

    /// The generated Verilog, run in Icarus Verilog on the same kind of stimulus.
    fn run_verilog<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        rng: &mut impl Rng,
        n: u64,
        padding: bool,
        dots: usize,
    ) {
        run_verilog_form::<SIMD, P, A, Y>(rng, n, padding, dots, false);
    }

    fn run_verilog_form<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        rng: &mut impl Rng,
        n: u64,
        padding: bool,
        dots: usize,
        late: bool,
    ) {
        let (beats, want) = stimulus(rng, SIMD, n, padding, dots);
        let mut uut = MvuPe::<SIMD, P, A, Y>::with_pipe(n, padding, late);
        uut.connect_all();
        let v = generate_verilog(&uut);
        let mut vectors: Vec<Vec<u128>> = beats
            .iter()
            .map(|b| {
                let bits = [b.valid, b.first, b.last, b.pad].map(|f| f as u128);
                vec![bits[0], bits[1], bits[2], bits[3], b.x as u128, b.w as u128]
            })
            .collect();
        vectors.extend((0..PE_LATENCY + 1).map(|_| vec![0; 6]));
        let inputs = [
            ("in_valid", 1),
            ("first", 1),
            ("last", 1),
            ("pad", 1),
            ("x", SIMD),
            ("w", SIMD),
        ];
        let rows = iverilog_vectors(
            &format!("mvu_pe_iv{SIMD}_{n}_{}_{}", padding as u8, late as u8),
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
        assert_eq!(
            got, want,
            "Verilog MvuPe<SIMD={SIMD}> n={n} padding={padding}"
        );
    }

    #[test]
    fn generated_verilog_matches_binary_dot() {
        let mut rng = bnnforge_model::random::test_rng("mvu_pe_verilog");
        run_verilog::<1, 1, 3, 4>(&mut rng, 5, false, 20);
        run_verilog::<4, 3, 2, 3>(&mut rng, 3, false, 20);
        run_verilog::<8, 4, 7, 8>(&mut rng, 72, false, 20);
        run_verilog::<64, 7, 10, 11>(&mut rng, 576, false, 10);
        run_verilog::<1, 1, 4, 4>(&mut rng, 5, true, 20);
        run_verilog::<5, 3, 4, 4>(&mut rng, 7, true, 20);
        run_verilog::<63, 6, 11, 11>(&mut rng, 567, true, 10);
        run_verilog::<64, 7, 8, 8>(&mut rng, 100, true, 10);
        // the popcount registered late
        run_verilog_form::<49, 6, 10, 11>(&mut rng, 784, false, 6, true);
        run_verilog_form::<5, 3, 4, 4>(&mut rng, 7, true, 20, true);
    }

    #[test]
    #[should_panic(expected = "A must be clog2(n + 1)")]
    fn rejects_an_accumulator_of_the_wrong_width() {
        let _ = MvuPe::<8, 4, 6, 7>::new(64, false);
    }

    #[test]
    #[should_panic(expected = "A must be clog2(2n + 1) in padding mode")]
    fn rejects_a_plain_accumulator_in_padding_mode() {
        let _ = MvuPe::<3, 2, 5, 6>::new(27, true);
    }

    /// A 64-lane, 11-bit-y PE's Verilog (module `top`) inside a module `tied` with
    /// `pad` tied low.
    fn tied_low(verilog: &str) -> String {
        format!(
            "{verilog}\nmodule tied(input clock, input in_valid, input first, input last, \
             input [63:0] x, input [63:0] w, output out_valid, output [10:0] y);\n\
             top pe(.clock(clock), .in_valid(in_valid), .first(first), .last(last), \
             .pad(1'b0), .x(x), .w(w), .out_valid(out_valid), .y(y));\nendmodule\n"
        )
    }

    fn stats<const SIMD: usize, const P: usize, const A: usize, const Y: usize>(
        n: u64,
        padding: bool,
    ) -> crate::synth::Ice40Stats {
        let mut uut = MvuPe::<SIMD, P, A, Y>::new(n, padding);
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate(&format!("bnnforge_mvu_pe_{SIMD}_{n}_{padding}"), &v).unwrap();
        let s = ice40_stats(&format!("mvu_pe_{SIMD}_{n}_{padding}"), &v, "top").unwrap();
        println!("MvuPe<SIMD={SIMD}, n={n}, padding={padding}> on synth_ice40: {s}");
        s
    }

    /// Upper bound of the popcount pipeline's registers for `lanes` inputs: 3 bits per
    /// level-2 node, 5 per level-4 node (their maxima 4 and 16), and up to 3 bits more
    /// that yosys 0.23 keeps (PopcountPipe<64> alone: 68 + 3 = 71; inside a PE 69).
    fn pipe_bound(lanes: usize) -> usize {
        3 * lanes.div_ceil(4) + 5 * lanes.div_ceil(16) + 3
    }

    #[test]
    fn synthesises_clean_with_exact_registers() {
        // registers beside the popcount pipeline: the beat's control bits in the
        // pipeline's two stages and in stage 3 (va fa la, vb fb lb, v1 last1: 8; the
        // first flag is read in stage 2; pa, pb and pad1 have no reader in the plain
        // mode, 3 more in the padding mode), pc (P), the running y (acc, Y), the result
        // y (Y) and out_valid
        let rest = |p: usize, y: usize, padding: bool| 8 + 3 * padding as usize + p + 2 * y + 1;
        // 64 lanes, plain: 69 pipeline bits (16·3 at level 2, 4·5 + 1 at level 4,
        // measured) + 38, less 2: from n = 576 in steps of 2·pc, the LSBs of the
        // running y and of the result stay 0 (yosys removes them) = 105
        let s = stats::<64, 7, 10, 11>(576, false);
        assert_eq!(
            s.dff,
            69 + rest(7, 11, false) - 2,
            "registers are not exactly as wide as needed: {s}"
        );
        assert!(s.lut4 <= 240, "MvuPe<64> costs {s}");
        let s = stats::<32, 6, 9, 10>(288, false);
        assert!(
            s.dff <= pipe_bound(32) + rest(6, 10, false),
            "registers of MvuPe<32>: {s}"
        );
        let s = stats::<33, 6, 10, 10>(297, true);
        assert!(
            s.dff <= pipe_bound(33) + rest(6, 10, true),
            "registers of MvuPe<33> in padding mode: {s}"
        );
        let s = stats::<64, 7, 11, 11>(576, true);
        assert!(
            s.dff <= pipe_bound(64) + rest(7, 11, true),
            "registers of MvuPe<64> in padding mode: {s}"
        );
        assert!(s.lut4 <= 260, "MvuPe<64> in padding mode costs {s}");
        // why the mode is a `Constant`: one mode for every layer would be the padding
        // mode with `pad` tied low, which keeps its wider registers in a plain layer.
        // Compared inside a wrapper, as in an engine (yosys maps a PE whose ports are
        // the design's own ports differently; both figures in hdl/DESIGN.md's table).
        let mut plain = MvuPe::<64, 7, 10, 11>::new(576, false);
        plain.connect_all();
        let mut padded = MvuPe::<64, 7, 11, 11>::new(576, true);
        padded.connect_all();
        let p = ice40_stats(
            "mvu_pe_in_plain",
            &tied_low(&generate_verilog(&plain)),
            "tied",
        );
        let t = ice40_stats(
            "mvu_pe_in_tied",
            &tied_low(&generate_verilog(&padded)),
            "tied",
        );
        let (p, t) = (p.unwrap(), t.unwrap());
        println!("MvuPe<SIMD=64, n=576> inside an engine, plain: {p}");
        println!("MvuPe<SIMD=64, n=576> inside an engine, padding mode, pad tied low: {t}");
        // inside a wrapper yosys 0.23 keeps 6 more bits of the popcount pipeline
        // (measured 116 against 108 alone)
        assert!(
            p.dff <= pipe_bound(64) + rest(7, 11, false) + 6,
            "plain MvuPe<64> inside an engine: {p}"
        );
        // the late form where the widest engines use it, a PE of TFC's fc0 at 16 cycles
        // (49 lanes, n = 784): fewer LUT4s than the early form
        let form = |late: bool| {
            let mut pe = MvuPe::<49, 6, 10, 11>::with_pipe(784, false, late);
            pe.connect_all();
            let v = tied_low(&generate_verilog(&pe));
            ice40_stats(&format!("mvu_pe_in_late_{late}"), &v, "tied").unwrap()
        };
        let (early, late) = (form(false), form(true));
        println!("MvuPe<SIMD=49, n=784> inside an engine, early: {early}, late: {late}");
        assert!(late.lut4 < early.lut4, "late {late} against early {early}");
    }
}
