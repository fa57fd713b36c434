//! `MvuIntPe<SIMD, IB, IW, P, A>`: one processing element of the integer-input
//! matrix-vector unit: y = Σ w·x over the beats of a dot product, SIMD lanes of `IB`-bit
//! x (two's complement when `signed`) per beat, w = ±1 (bit 1 = +1). Lane terms, one
//! carry-save adder tree, accumulator modulo 2^A (exact because y lies in [lo, hi]):
//! `hdl/DESIGN.md`, "Integer PE". A lane with x = 0 adds 0 (fan-in padding).
//!
//! Ports: `clock`; in `in_valid`, `first` (restart), `last` (end), `x: Bits<IW>` (lane i
//! at bits [i·IB, (i+1)·IB)), `w: Bits<SIMD>`; out, registered, `out_valid` and
//! `y: Bits<A>` (signed when [`MvuIntPe::y_signed`]).
//!
//! Generics (checked by [`MvuIntPe::new`]): `SIMD` 1..=64; `IB` 1..=32; deduced `IW` =
//! SIMD·IB, `P` = clog2(SIMD + 1), `A` = `int_width(lo, hi)`. Run-time: `signed`, `lo`, `hi`.
//!
//! Cycles: one beat per cycle, gaps allowed, a new dot product right after `last`.
//! Latency: y of a `last` beat at t is out at t + [`INT_PE_LATENCY`] (2).

use crate::bits_to_hold;
use crate::blocks::adder_node::AdderNode;
use crate::blocks::popcount::PopcountTree;
use bnnforge_model::kernels::int_width;
use rust_hdl::prelude::*;

/// Cycles from a `last` beat at the PE's inputs to its `out_valid`.
pub const INT_PE_LATENCY: u64 = 2;

/// One lane of an integer beat as a tree leaf: v = (x_i ^ s) ^ (w_i ? 0 : 1…1).
/// A block of its own because rust-hdl kernels cannot slice a signal at an offset that
/// depends on a const generic (`IB`): the offsets are `Constant`s here.
#[derive(LogicBlock)]
pub struct IntLaneTerm<const SIMD: usize, const IB: usize, const IW: usize, const A: usize> {
    /// The whole beat.
    pub x: Signal<In, Bits<IW>>,
    /// The beat's weight bits.
    pub w: Signal<In, Bits<SIMD>>,
    /// The lane's leaf value, 0 ..= 2^IB − 1, zero-extended (or cut) to A bits.
    pub v: Signal<Out, Bits<A>>,
    lane: Signal<Local, Bits<IB>>,
    xoff: Constant<Bits<16>>,
    woff: Constant<Bits<16>>,
    sbit: Constant<Bits<IB>>,
    ones: Constant<Bits<IB>>,
}

impl<const SIMD: usize, const IB: usize, const IW: usize, const A: usize>
    IntLaneTerm<SIMD, IB, IW, A>
{
    /// The leaf of lane `lane`; `signed` selects offset binary (s = 2^(IB−1)).
    pub fn new(lane: usize, signed: bool) -> Self {
        assert!(
            lane < SIMD && IW == SIMD * IB && (1..=32).contains(&IB),
            "IntLaneTerm: lane {lane} of {SIMD} lanes of {IB} bits in {IW} bits"
        );
        Self {
            x: Default::default(),
            w: Default::default(),
            v: Default::default(),
            lane: Default::default(),
            xoff: Constant::new(((lane * IB) as u64).into()),
            woff: Constant::new((lane as u64).into()),
            sbit: Constant::new((if signed { 1u64 << (IB - 1) } else { 0 }).into()),
            ones: Constant::new(((1u64 << IB) - 1).into()),
        }
    }
}

impl<const SIMD: usize, const IB: usize, const IW: usize, const A: usize> Logic
    for IntLaneTerm<SIMD, IB, IW, A>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.lane.next = bit_cast::<IB, IW>(self.x.val() >> self.xoff.val()) ^ self.sbit.val();
        self.v.next = bit_cast::<A, IB>(self.lane.val());
        // a shift, not get_bit: w is a Verilog scalar when SIMD = 1
        if !bit_cast::<1, SIMD>(self.w.val() >> self.woff.val()).any() {
            self.v.next = bit_cast::<A, IB>(self.lane.val() ^ self.ones.val());
        }
    }
}

/// One integer-input MVU processing element (see the module documentation).
#[derive(LogicBlock)]
pub struct MvuIntPe<
    const SIMD: usize,
    const IB: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// A beat is present.
    pub in_valid: Signal<In, Bit>,
    /// The beat starts a dot product.
    pub first: Signal<In, Bit>,
    /// The beat ends a dot product.
    pub last: Signal<In, Bit>,
    /// Input lanes, lane i at bits [i·IB, (i+1)·IB).
    pub x: Signal<In, Bits<IW>>,
    /// Weight bits (1 = +1).
    pub w: Signal<In, Bits<SIMD>>,
    /// `y` holds a result.
    pub out_valid: Signal<Out, Bit>,
    /// The dot product (two's complement when the range is signed).
    pub y: Signal<Out, Bits<A>>,
    lanes: Vec<IntLaneTerm<SIMD, IB, IW, A>>,
    // the adder tree over the lanes padded to Q = 2^ceil(log2 SIMD) leaves: node m < Q/2
    // adds lanes 2m and 2m+1, node m ≥ Q/2 adds nodes 2m − Q and 2m + 1 − Q; root Q − 2
    nodes: Vec<AdderNode<A>>,
    negs: PopcountTree<SIMD, P>,
    sum: Signal<Local, Bits<A>>,
    nz: Signal<Local, Bits<A>>,
    beat: Signal<Local, Bits<A>>,
    // stage 1
    part: DFF<Bits<A>>,
    v1: DFF<Bit>,
    first1: DFF<Bit>,
    last1: DFF<Bit>,
    // stage 2
    acc: DFF<Bits<A>>,
    total: Signal<Local, Bits<A>>,
    vout: DFF<Bit>,
    // unsigned inputs subtract nz·2^IB, signed ones SIMD·s
    unsigned_x: Constant<Bit>,
    ib: Constant<Bits<8>>,
    offset: Constant<Bits<A>>,
    // loop bounds: full lane pairs, [first, end) of the odd-lane node, of the zero
    // nodes, of the upper nodes, [Q, Q + 1) to bind Q to a loop variable, [root, root
    // + 1), and 1 when SIMD = 1 (no tree)
    _pairs: usize,
    _odd: [usize; 2],
    _zero: [usize; 2],
    _upper: [usize; 2],
    _q: [usize; 2],
    _root: [usize; 2],
    _single: usize,
    _signed: bool,
    _range: (i64, i64),
}

impl<const SIMD: usize, const IB: usize, const IW: usize, const P: usize, const A: usize>
    MvuIntPe<SIMD, IB, IW, P, A>
{
    /// A PE for `IB`-bit inputs (two's complement when `signed`) whose dot products all
    /// lie in `lo..=hi`; panics unless the widths are exactly those of the module
    /// documentation.
    pub fn new(signed: bool, lo: i64, hi: i64) -> Self {
        assert!(
            (1..=64).contains(&SIMD),
            "MvuIntPe: SIMD = {SIMD} not in 1..=64"
        );
        assert!((1..=32).contains(&IB), "MvuIntPe: IB = {IB} not in 1..=32");
        assert_eq!(IW, SIMD * IB, "MvuIntPe: IW must be SIMD · IB");
        assert_eq!(
            P,
            bits_to_hold(SIMD as u64),
            "MvuIntPe: P must be clog2(SIMD + 1)"
        );
        assert!(lo <= hi, "MvuIntPe: empty range {lo}..={hi}");
        let (a, _) = int_width(lo as i128, hi as i128);
        assert_eq!(
            A, a as usize,
            "MvuIntPe: A must be the width of the accumulator range {lo}..={hi}"
        );
        let mask = if A >= 64 { u64::MAX } else { (1u64 << A) - 1 };
        let offset = if signed {
            (SIMD as u64 * (1u64 << (IB - 1))) & mask
        } else {
            0
        };
        let q = SIMD.next_power_of_two();
        let tree = SIMD > 1;
        let half = q / 2;
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            x: Default::default(),
            w: Default::default(),
            out_valid: Default::default(),
            y: Default::default(),
            lanes: (0..SIMD).map(|i| IntLaneTerm::new(i, signed)).collect(),
            nodes: (0..q.saturating_sub(1))
                .map(|_| AdderNode::default())
                .collect(),
            negs: PopcountTree::new(),
            sum: Default::default(),
            nz: Default::default(),
            beat: Default::default(),
            part: Default::default(),
            v1: Default::default(),
            first1: Default::default(),
            last1: Default::default(),
            acc: Default::default(),
            total: Default::default(),
            vout: Default::default(),
            unsigned_x: Constant::new(!signed),
            ib: Constant::new((IB as u64).into()),
            offset: Constant::new(offset.into()),
            _pairs: if tree { SIMD / 2 } else { 0 },
            _odd: if tree {
                [SIMD / 2, SIMD.div_ceil(2)]
            } else {
                [0, 0]
            },
            _zero: if tree {
                [SIMD.div_ceil(2), half]
            } else {
                [0, 0]
            },
            _upper: if tree { [half, q - 1] } else { [0, 0] },
            _q: if tree { [q, q + 1] } else { [0, 0] },
            _root: if tree { [q - 2, q - 1] } else { [0, 0] },
            _single: !tree as usize,
            _signed: signed,
            _range: (lo, hi),
        }
    }

    /// Whether `y` is two's complement (the range reaches below 0).
    pub fn y_signed(&self) -> bool {
        self._range.0 < 0
    }

    /// Whether the input lanes are two's complement.
    pub fn x_signed(&self) -> bool {
        self._signed
    }

    /// The accumulator range the PE was built for.
    pub fn range(&self) -> (i64, i64) {
        self._range
    }
}

impl<const SIMD: usize, const IB: usize, const IW: usize, const P: usize, const A: usize> Logic
    for MvuIntPe<SIMD, IB, IW, P, A>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, part, v1, first1, last1, acc, vout);
        // stage 1: lane leaves, their sum, the count of -1 weights
        for i in 0..SIMD {
            self.lanes[i].x.next = self.x.val();
            self.lanes[i].w.next = self.w.val();
        }
        for m in 0..self._pairs {
            self.nodes[m].a.next = self.lanes[2 * m].v.val();
            self.nodes[m].b.next = self.lanes[2 * m + 1].v.val();
        }
        for m in self._odd[0]..self._odd[1] {
            self.nodes[m].a.next = self.lanes[2 * m].v.val();
            self.nodes[m].b.next = 0.into();
        }
        for m in self._zero[0]..self._zero[1] {
            self.nodes[m].a.next = 0.into();
            self.nodes[m].b.next = 0.into();
        }
        // (q is a one-iteration loop: Vec indices in kernels may only use loop variables)
        for q in self._q[0]..self._q[1] {
            for m in self._upper[0]..self._upper[1] {
                self.nodes[m].a.next = self.nodes[2 * m - q].s.val();
                self.nodes[m].b.next = self.nodes[2 * m + 1 - q].s.val();
            }
        }
        for r in self._root[0]..self._root[1] {
            self.sum.next = self.nodes[r].s.val();
        }
        for r in 0..self._single {
            self.sum.next = self.lanes[r].v.val();
        }
        self.negs.bits.next = !self.w.val();
        self.nz.next = bit_cast::<A, P>(self.negs.count.val());
        self.beat.next = self.sum.val() + self.nz.val() - self.offset.val();
        if self.unsigned_x.val() {
            self.beat.next = self.sum.val() + self.nz.val() - (self.nz.val() << self.ib.val());
        }
        self.part.d.next = self.beat.val();
        self.v1.d.next = self.in_valid.val();
        self.first1.d.next = self.first.val();
        self.last1.d.next = self.last.val();
        // stage 2: accumulate modulo 2^A; the accumulator is the output register
        self.total.next = self.acc.q.val() + self.part.q.val();
        if self.first1.q.val() {
            self.total.next = self.part.q.val();
        }
        if self.v1.q.val() {
            self.acc.d.next = self.total.val();
        }
        self.vout.d.next = self.v1.q.val() & self.last1.q.val();
        self.out_valid.next = self.vout.q.val();
        self.y.next = self.acc.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil::{iverilog_vectors, sign_extend};
    use rand::Rng;
    use std::sync::{Arc, Mutex};

    /// One beat as the testbench drives it: lanes as integers, weights as ±1.
    #[derive(Clone, Debug)]
    struct Beat {
        valid: bool,
        first: bool,
        last: bool,
        x: Vec<i64>,
        w: Vec<i8>,
    }

    struct Case {
        signed: bool,
        ib: usize,
        /// the accumulator range of the weight rows, as `LayerInfo::acc` computes it
        range: (i64, i64),
        beats: Vec<Beat>,
        want: Vec<i64>,
    }

    fn x_range(ib: usize, signed: bool) -> (i64, i64) {
        if signed {
            (-(1i64 << (ib - 1)), (1i64 << (ib - 1)) - 1)
        } else {
            (0, (1i64 << ib) - 1)
        }
    }

    /// The hull of Σ w·x over `rows` for x in `x`, every term's range widened to 0
    /// (the rule of `Network`'s accumulator range).
    fn acc_range(rows: &[Vec<i8>], x: (i64, i64)) -> (i64, i64) {
        let (plo, phi) = (x.0.min(0), x.1.max(0));
        let mut r = (i64::MAX, i64::MIN);
        for row in rows {
            let pos = row.iter().filter(|&&w| w > 0).count() as i64;
            let neg = row.len() as i64 - pos;
            r.0 = r.0.min(pos * plo - neg * phi);
            r.1 = r.1.max(pos * phi - neg * plo);
        }
        r
    }

    /// `rows` weight rows of `n` lanes (`mode`: 0 random, 1 all +1, 2 all −1, 3 mostly
    /// +1), and `dots` dot products over them cut into SIMD-lane beats with bubbles.
    fn case(
        rng: &mut impl Rng,
        simd: usize,
        ib: usize,
        signed: bool,
        n: usize,
        mode: u8,
        dots: usize,
    ) -> Case {
        let (xlo, xhi) = x_range(ib, signed);
        // the rows fix the range: mode 0 has an all +1 and an all -1 row besides a
        // random one, mode 3 one -1 weight per row
        let rows: Vec<Vec<i8>> = (0..3)
            .map(|r| {
                let neg = rng.gen_range(0..n);
                (0..n)
                    .map(|j| match (mode, r) {
                        (1, _) | (0, 0) => 1,
                        (2, _) | (0, 1) => -1,
                        (3, _) => {
                            if j == neg {
                                -1
                            } else {
                                1
                            }
                        }
                        _ => {
                            if rng.gen() {
                                1
                            } else {
                                -1
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let range = acc_range(&rows, (xlo, xhi));
        let mut beats = vec![];
        let mut want = vec![];
        for _ in 0..dots {
            let row = &rows[rng.gen_range(0..rows.len())];
            // push some dot products to an end of the range
            let kind = rng.gen_range(0..5);
            let x: Vec<i64> = (0..n)
                .map(|j| match kind {
                    0 => {
                        if row[j] > 0 {
                            xhi
                        } else {
                            xlo
                        }
                    }
                    1 => {
                        if row[j] > 0 {
                            xlo
                        } else {
                            xhi
                        }
                    }
                    _ => match rng.gen_range(0..6) {
                        0 => xlo,
                        1 => xhi,
                        2 => 0,
                        _ => rng.gen_range(xlo..=xhi),
                    },
                })
                .collect();
            want.push(row.iter().zip(&x).map(|(&w, &x)| w as i64 * x).sum());
            let nb = n.div_ceil(simd);
            for b in 0..nb {
                while rng.gen_bool(0.2) {
                    // a bubble with garbage on the data lines
                    beats.push(Beat {
                        valid: false,
                        first: rng.gen(),
                        last: rng.gen(),
                        x: (0..simd).map(|_| rng.gen_range(xlo..=xhi)).collect(),
                        w: (0..simd).map(|_| if rng.gen() { 1 } else { -1 }).collect(),
                    });
                }
                // lanes beyond n: x = 0 and a random weight
                let lane = |i: usize| b * simd + i;
                beats.push(Beat {
                    valid: true,
                    first: b == 0,
                    last: b + 1 == nb,
                    x: (0..simd)
                        .map(|i| if lane(i) < n { x[lane(i)] } else { 0 })
                        .collect(),
                    w: (0..simd)
                        .map(|i| {
                            if lane(i) < n {
                                row[lane(i)]
                            } else if rng.gen() {
                                1
                            } else {
                                -1
                            }
                        })
                        .collect(),
                });
            }
        }
        Case {
            signed,
            ib,
            range,
            beats,
            want,
        }
    }

    fn x_word(b: &Beat, ib: usize) -> u128 {
        let m = (1u128 << ib) - 1;
        b.x.iter().enumerate().fold(0, |acc, (i, &v)| {
            acc | ((v as i128 as u128 & m) << (i * ib))
        })
    }

    fn w_word(b: &Beat) -> u64 {
        b.w.iter()
            .enumerate()
            .fold(0, |acc, (i, &w)| acc | (((w > 0) as u64) << i))
    }

    /// x as rust-hdl bits, lane by lane (IW may exceed 128).
    fn x_bits<const IW: usize>(b: &Beat, ib: usize) -> Bits<IW> {
        let m = (1u64 << ib) - 1;
        b.x.iter()
            .enumerate()
            .fold(Bits::<IW>::default(), |acc, (i, &v)| {
                acc | (Bits::<IW>::from(v as u64 & m) << ((i * ib) as u64))
            })
    }

    fn value(y: u64, a: usize, signed: bool) -> i64 {
        if signed {
            sign_extend(y as u128, a) as i64
        } else {
            y as i64
        }
    }

    fn run<const SIMD: usize, const IB: usize, const IW: usize, const P: usize, const A: usize>(
        rng: &mut impl Rng,
        signed: bool,
        n: usize,
        mode: u8,
        dots: usize,
    ) {
        let c = case(rng, SIMD, IB, signed, n, mode, dots);
        let uut = MvuIntPe::<SIMD, IB, IW, P, A>::new(c.signed, c.range.0, c.range.1);
        let ysigned = uut.y_signed();
        let got = Arc::new(Mutex::new(Vec::<i64>::new()));
        let sink = got.clone();
        let cycles = c.beats.len() + 4;
        let beats = c.beats.clone();
        let mut sim = Simulation::new();
        sim.add_clock(5, |x: &mut Box<MvuIntPe<SIMD, IB, IW, P, A>>| {
            x.clock.next = !x.clock.val()
        });
        sim.add_testbench(move |mut sim: Sim<MvuIntPe<SIMD, IB, IW, P, A>>| {
            let mut x = sim.init()?;
            for t in 0..cycles {
                match beats.get(t) {
                    Some(b) => {
                        x.in_valid.next = b.valid;
                        x.first.next = b.first;
                        x.last.next = b.last;
                        x.x.next = x_bits::<IW>(b, IB);
                        x.w.next = w_word(b).into();
                    }
                    None => x.in_valid.next = false,
                }
                wait_clock_cycle!(sim, clock, x);
                if x.out_valid.val() {
                    let y = x.y.val().to_u64();
                    sink.lock().unwrap().push(value(y, A, ysigned));
                }
            }
            sim.done(x)
        });
        let mut uut = uut;
        uut.connect_all();
        sim.run(Box::new(uut), 10 * (cycles as u64 + 10)).unwrap();
        let got = got.lock().unwrap().clone();
        assert_eq!(
            got, c.want,
            "MvuIntPe<SIMD={SIMD}, IB={IB}> signed={signed} n={n} mode={mode} range {:?}",
            c.range
        );
    }

    #[test]
    fn matches_the_dot_product_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("mvu_int_pe");
        // <SIMD, IB, IW = SIMD·IB, P = clog2(SIMD+1), A = width of the range>
        // (signed x, n, weight mode: 0 random, 1 all +1, 2 all -1, 3 mostly +1)
        run::<1, 8, 8, 1, 11>(&mut rng, false, 3, 0, 20); // SIMD 1: no tree
        run::<1, 4, 4, 1, 6>(&mut rng, true, 3, 2, 20);
        run::<2, 2, 4, 2, 4>(&mut rng, false, 4, 1, 20); // unsigned y: [0, 12]
        run::<3, 8, 24, 2, 14>(&mut rng, false, 27, 0, 12); // first conv layer, 3x3x3
        run::<3, 8, 24, 2, 13>(&mut rng, true, 27, 3, 12);
        run::<4, 1, 4, 3, 4>(&mut rng, false, 8, 1, 20); // 1-bit unsigned lanes
        run::<4, 8, 32, 3, 13>(&mut rng, false, 10, 0, 20); // last beat padded with x = 0
        run::<4, 6, 24, 3, 9>(&mut rng, true, 7, 0, 20);
        run::<5, 3, 15, 3, 7>(&mut rng, true, 10, 2, 20); // odd SIMD
        run::<8, 4, 32, 4, 9>(&mut rng, true, 16, 0, 20);
        run::<16, 8, 128, 5, 14>(&mut rng, false, 32, 0, 10);
        run::<16, 8, 128, 5, 13>(&mut rng, false, 32, 1, 10); // unsigned y: [0, 8160]
        run::<32, 2, 64, 6, 9>(&mut rng, true, 96, 0, 10);
        run::<64, 8, 512, 7, 17>(&mut rng, false, 256, 0, 4);
        run::<64, 8, 512, 7, 16>(&mut rng, true, 128, 2, 4);
    }

    /// The generated Verilog, run in Icarus Verilog on the same kind of stimulus.
    fn run_verilog<
        const SIMD: usize,
        const IB: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
    >(
        rng: &mut impl Rng,
        signed: bool,
        n: usize,
        mode: u8,
        dots: usize,
    ) {
        let c = case(rng, SIMD, IB, signed, n, mode, dots);
        let mut uut = MvuIntPe::<SIMD, IB, IW, P, A>::new(c.signed, c.range.0, c.range.1);
        let ysigned = uut.y_signed();
        uut.connect_all();
        let v = generate_verilog(&uut);
        let mut vectors: Vec<Vec<u128>> = c
            .beats
            .iter()
            .map(|b| {
                vec![
                    b.valid as u128,
                    b.first as u128,
                    b.last as u128,
                    x_word(b, c.ib),
                    w_word(b) as u128,
                ]
            })
            .collect();
        vectors.extend((0..3).map(|_| vec![0; 5]));
        let inputs = [
            ("in_valid", 1),
            ("first", 1),
            ("last", 1),
            ("x", IW),
            ("w", SIMD),
        ];
        let rows = iverilog_vectors(
            &format!("mvu_int_pe_iv{SIMD}_{IB}_{n}"),
            &v,
            Some("clock"),
            &inputs,
            &[("out_valid", 1), ("y", A)],
            &vectors,
        )
        .unwrap();
        let got: Vec<i64> = rows
            .iter()
            .filter(|r| r[0] == 1)
            .map(|r| value(r[1] as u64, A, ysigned))
            .collect();
        assert_eq!(
            got, c.want,
            "Verilog MvuIntPe<SIMD={SIMD}, IB={IB}> signed={signed} n={n}"
        );
    }

    #[test]
    fn generated_verilog_matches_the_dot_product() {
        let mut rng = bnnforge_model::random::test_rng("mvu_int_pe_verilog");
        run_verilog::<1, 8, 8, 1, 11>(&mut rng, false, 3, 0, 20);
        run_verilog::<2, 2, 4, 2, 4>(&mut rng, false, 4, 1, 20);
        run_verilog::<3, 8, 24, 2, 13>(&mut rng, true, 27, 3, 12);
        run_verilog::<5, 3, 15, 3, 7>(&mut rng, true, 10, 2, 20);
        run_verilog::<4, 6, 24, 3, 9>(&mut rng, true, 7, 0, 20);
        run_verilog::<16, 8, 128, 5, 14>(&mut rng, false, 32, 0, 20);
    }

    #[test]
    #[should_panic(expected = "A must be the width of the accumulator range")]
    fn rejects_an_accumulator_of_the_wrong_width() {
        // 8-bit unsigned, n = 27 mixed weights: [-6885, 6885] needs 14 bits
        let _ = MvuIntPe::<3, 8, 24, 2, 16>::new(false, -6885, 6885);
    }

    #[test]
    #[should_panic(expected = "IW must be SIMD · IB")]
    fn rejects_a_wrong_input_width() {
        let _ = MvuIntPe::<4, 8, 31, 3, 10>::new(false, -300, 300);
    }

    #[test]
    fn synthesises_clean_with_exact_registers() {
        // <SIMD, IB, IW, P, A>, signed, range: figures for typical first layers
        fn stats<
            const SIMD: usize,
            const IB: usize,
            const IW: usize,
            const P: usize,
            const A: usize,
        >(
            signed: bool,
            lo: i64,
            hi: i64,
        ) -> crate::synth::Ice40Stats {
            let mut uut = MvuIntPe::<SIMD, IB, IW, P, A>::new(signed, lo, hi);
            uut.connect_all();
            let v = generate_verilog(&uut);
            let s = ice40_stats(&format!("mvu_int_pe_{SIMD}_{IB}_{A}"), &v, "top").unwrap();
            println!(
                "MvuIntPe<SIMD={SIMD}, IB={IB}> {} x, y in {lo}..={hi} ({A} bits) on synth_ice40: {s}",
                if signed { "signed" } else { "unsigned" }
            );
            // part A + acc A + v1, first1, last1, out_valid (yosys may merge copies of
            // part's sign bits, which a short beat sum repeats)
            assert!(s.dff <= 2 * A + 4, "more registers than needed: {s}");
            s
        }
        // conv 3x3 on 3 channels of 8-bit pixels (CNV's first layer), SIMD = 3
        let s = stats::<3, 8, 24, 2, 14>(false, -6885, 6885);
        assert!(s.lut4 <= 120, "{s}");
        // 16 lanes of 8-bit pixels (an MNIST dense layer at SIMD 16, n = 784)
        let s = stats::<16, 8, 128, 5, 19>(false, -199920, 199920);
        assert!(s.lut4 <= 460, "{s}");
        // 64 lanes of 4-bit signed values (after a residual add), n = 576
        let s = stats::<64, 4, 256, 7, 14>(true, -4608, 4608);
        assert!(s.lut4 <= 1200, "{s}");
    }
}
