//! `Mvtu`: the matrix-vector(-threshold) unit of `dense` and `conv` layers on binary
//! inputs (FINN's MVTU). For each input vector of n lanes (±1, bit 1 = +1) every neuron
//! computes y = Σ w·x, then either counts its thresholds reached (a fused `threshold`,
//! the bias folded in, `B` bits) or outputs y + bias (raw, `OB` bits, the exact width of
//! the layer's range). SIMD lanes per input beat (SF = n/SIMD beats per vector), PE lanes
//! per output beat (lane p of fold nf = neuron nf·PE + p; NF = out/PE folds, H, W, C
//! order); the first fold takes the vector, the other NF − 1 replay it. One
//! [`WeightMemory`] and one [`MvuPe`] per PE, in padding mode when `IW` = SIMD + 1 (the
//! window's pad flag). Weights in stream order: [`stream_weights`]. Structure, credits
//! and pipelining: `hdl/DESIGN.md`, "Matrix-vector units".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`; after reset the engine drains its PE pipelines first.
//!
//! Generics (checked by [`Mvtu::new`], computed by [`mvtu_generics`]): free `SIMD`,
//! `OB` (output lane bits), `OW` = PE·OB; deduced `IW` (SIMD, + 1 with the pad flag),
//! `P` = clog2(SIMD + 1), `Y` = clog2(n + 1) + 1, `A` (Y − 1, or Y with the pad flag),
//! `U` = Y + 1, `B` = OB and `K` = 2^B − 1 (threshold mode; any valid values raw),
//! `WA` = clog2(NF·SF), `BA` = clog2(SF), `CA` = clog2(NF).
//!
//! Cycles per frame: pixels·NF·SF ([`engine_cycles_per_frame`]). Latency: SF + 10 with
//! thresholds, SF + 7 raw ([`engine_latency`]).

use crate::blocks::mvu_pe::{MvuPe, PE_LATENCY};
use crate::blocks::threshold_unit::ThresholdUnit;
use crate::blocks::weight_memory::weight_banks;
use crate::blocks::weight_memory::{pe_weight_words, WeightMemory};
use crate::compile::design::{Design, Elem};
use crate::compile::emit::{engine, finish};
use crate::compile::folding::{mac_dims, Fold};
use crate::compile::resources::{dot, mem_sum, Formula, MemKind, Memory, Role};
use crate::engines::{Carries, EngineSpec, Span, StreamTiming};
use bnnforge_model::network::{Network, Op};
use rust_hdl::prelude::*;

/// `out = prev | (v << offset)`: one lane of a packed beat; a chain of these packs a
/// `Vec` of lane values (rust-hdl kernels cannot assign slices of a local signal).
#[derive(LogicBlock)]
pub struct LaneInsert<const W: usize, const B: usize> {
    /// The beat so far.
    pub prev: Signal<In, Bits<W>>,
    /// The lane's value.
    pub v: Signal<In, Bits<B>>,
    /// `prev` with the lane ORed in at bit `offset`.
    pub out: Signal<Out, Bits<W>>,
    offset: Constant<Bits<16>>,
}

impl<const W: usize, const B: usize> LaneInsert<W, B> {
    /// The inserter of lane `lane` (bits `lane·B ..`).
    pub fn new(lane: usize) -> Self {
        assert!(
            B >= 1 && (lane + 1) * B <= W,
            "LaneInsert: lane {lane} of {B} bits does not fit {W} bits"
        );
        Self {
            prev: Default::default(),
            v: Default::default(),
            out: Default::default(),
            offset: Constant::new(((lane * B) as u64).into()),
        }
    }
}

impl<const W: usize, const B: usize> Logic for LaneInsert<W, B> {
    #[hdl_gen]
    fn update(&mut self) {
        self.out.next = self.prev.val() | (bit_cast::<W, B>(self.v.val()) << self.offset.val());
    }
}

/// `out = sign_extend(y) + bias` modulo 2^OB: the raw output of one PE.
#[derive(LogicBlock)]
pub struct BiasAdd<const Y: usize, const OB: usize> {
    /// The dot product.
    pub y: Signal<In, Signed<Y>>,
    /// The neuron's bias, modulo 2^OB.
    pub bias: Signal<In, Bits<OB>>,
    /// y + bias, modulo 2^OB.
    pub out: Signal<Out, Bits<OB>>,
    yu: Signal<Local, Bits<Y>>,
    ext: Signal<Local, Bits<OB>>,
    half: Constant<Bits<Y>>,
    high: Constant<Bits<OB>>,
}

impl<const Y: usize, const OB: usize> Default for BiasAdd<Y, OB> {
    fn default() -> Self {
        assert!(
            Y >= 2 && (1..=64).contains(&OB),
            "BiasAdd: Y = {Y}, OB = {OB}"
        );
        let ones = |k: usize| if k >= 64 { u64::MAX } else { (1u64 << k) - 1 };
        Self {
            y: Default::default(),
            bias: Default::default(),
            out: Default::default(),
            yu: Default::default(),
            ext: Default::default(),
            half: Constant::new((1u64 << (Y - 1)).into()),
            high: Constant::new((ones(OB) & !ones(Y)).into()),
        }
    }
}

impl<const Y: usize, const OB: usize> Logic for BiasAdd<Y, OB> {
    #[hdl_gen]
    fn update(&mut self) {
        self.yu.next = unsigned_cast(self.y.val());
        self.ext.next = bit_cast::<OB, Y>(self.yu.val());
        if self.yu.val() >= self.half.val() {
            self.ext.next = bit_cast::<OB, Y>(self.yu.val()) | self.high.val();
        }
        self.out.next = self.ext.val() + self.bias.val();
    }
}

/// Depth of [`CreditQueue`]: more than the cycles from an issued vector's last beat
/// to its result at the queue's output (ISSUE_TO_PE + PE + threshold + 2 ≤ 11 for the
/// binary PEs), so an engine with SF = 1 still issues every cycle.
pub const FIFO_DEPTH: usize = 16;

/// Cycles from a beat's issue (weight address, buffer read) to the PEs' inputs: the
/// buffer RAM's read register and the register after it (the weight memories likewise,
/// [`WMEM_LATENCY`](crate::blocks::weight_memory::WMEM_LATENCY)).
pub const ISSUE_TO_PE: u64 = 2;

/// Vector buffers of a matrix-vector engine of `nf` neuron folds of `sf` beats: 1 when
/// the folds replay a vector of several beats, else 0 (SF = 1: the controller's input
/// register holds the vector; NF = 1: nothing is replayed).
pub fn vector_buffers(nf: usize, sf: usize) -> usize {
    (nf > 1 && sf > 1) as usize
}

/// Lanes (PE·SIMD) from which an [`Mvtu`]'s PEs register their popcount late
/// ([`PopcountPipe::late`](crate::blocks::popcount::PopcountPipe::late)): about 0.66
/// LUT4 fewer a lane for a first PE stage of four adder levels instead of two (a model
/// of such a PE alone on an UP5K: 43 MHz instead of 61). Only engines this wide, where
/// those LUT4s are thousands: the shipped default designs stay below it (TFC fc0 64
/// lanes, LFC 64), a design folded to a few cycles a frame does not (TFC at 16 cycles:
/// fc0 3136 lanes). Once one engine of a design registers late, all its `Mvtu`s do
/// ([`MacSpec::late`]): the clock is the widest engine's anyway (TFC at 16 cycles: fc1,
/// fc2, fc3 late too, 15,511 LUT4 against 15,711).
pub const LATE_CUT_LANES: usize = 1024;

/// Whether an [`Mvtu`] of `pe` PEs of `simd` lanes registers its popcounts late.
pub fn late_cuts(pe: usize, simd: usize) -> bool {
    pe * simd >= LATE_CUT_LANES
}

/// Cycles of a [`ThresholdUnit`] (y to n).
pub const THRESHOLD_LATENCY: u64 = crate::blocks::threshold_unit::LATENCY;

/// A 16-deep ([`FIFO_DEPTH`]) first-word-fall-through queue in a rust-hdl `RAM`, with synchronous reset:
/// not a ready/valid stream FIFO (that is `stream_fifo::StreamFifo`) but the result
/// queue of an engine whose pipeline cannot stall.
/// `valid` comes from a register, `data_out` from the RAM's read register (a queue in
/// block RAM) or from one 2:1 mux after two read registers (a queue in logic, see
/// [`queue_copies`]); `read` pops the head when `valid`. Written entries show at the
/// output two cycles later. The writer must not overflow it (the engines count
/// credits).
///
/// A queue that yosys keeps in logic (W·16 bits, [`queue_copies`]) holds two copies:
/// one read at the head, one at the entry after it, both every cycle; a pop selects the
/// second copy's word in the next cycle. So the pop (the consumer's ready) reaches one
/// mux, not the address of a 16-word read mux (the iCE40's critical path otherwise).
/// A queue in block RAM has one copy, read at the head or, on a pop, the entry after it.
#[derive(LogicBlock)]
pub struct CreditQueue<const W: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub write: Signal<In, Bit>,
    pub data_in: Signal<In, Bits<W>>,
    pub read: Signal<In, Bit>,
    pub valid: Signal<Out, Bit>,
    pub data_out: Signal<Out, Bits<W>>,
    ram: RAM<Bits<W>, 4>,
    // the second copy of a queue in logic, read at rp + 1
    ram1: Vec<RAM<Bits<W>, 4>>,
    // a pop happened in the previous cycle: the head is ram1's word (dual only)
    popd: DFF<Bit>,
    dual: Constant<Bit>,
    _dual: usize,
    wp: DFF<Bits<5>>,
    wpd: DFF<Bits<5>>,
    rp: DFF<Bits<5>>,
    // rp != wpd, registered: computed from the next values, both outcomes of the pop
    // prepared from registers
    nonempty: DFF<Bit>,
    pop: Signal<Local, Bit>,
    // rp + 1, a register of its own (its LSB stored inverted, so that the power-on
    // state, all 0, is consistent): the read address is one mux after registers
    rp1x: DFF<Bits<5>>,
    rp1: Signal<Local, Bits<5>>,
    one: Constant<Bits<5>>,
}

/// Copies of a [`CreditQueue`]'s storage of `w`-bit words: 2 when yosys 0.23 keeps
/// one copy in logic (at most 78 bits, [`ice40_blocks`](crate::compile::resources::ice40_blocks)),
/// 1 in block RAM, where a second copy would cost a block.
pub fn queue_copies(w: usize) -> usize {
    let m = crate::compile::resources::Memory {
        width: w,
        depth: FIFO_DEPTH,
        kind: crate::compile::resources::MemKind::Ram,
        count: 1,
        role: crate::compile::resources::Role::Other,
        family: crate::boards::Family::Ice40,
    };
    if crate::compile::resources::ice40_blocks(&m).is_none() {
        2
    } else {
        1
    }
}

impl<const W: usize> Default for CreditQueue<W> {
    fn default() -> Self {
        let dual = queue_copies(W) - 1;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            write: Default::default(),
            data_in: Default::default(),
            read: Default::default(),
            valid: Default::default(),
            data_out: Default::default(),
            ram: Default::default(),
            ram1: (0..dual).map(|_| Default::default()).collect(),
            popd: Default::default(),
            dual: Constant::new(dual == 1),
            _dual: dual,
            wp: Default::default(),
            wpd: Default::default(),
            rp: Default::default(),
            nonempty: Default::default(),
            pop: Default::default(),
            rp1x: Default::default(),
            rp1: Default::default(),
            one: Constant::new(1.into()),
        }
    }
}

impl<const W: usize> Logic for CreditQueue<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, wp, wpd, rp, nonempty, rp1x, popd);
        self.rp1.next = self.rp1x.q.val() ^ self.one.val();
        self.ram.write_clock.next = self.clock.val();
        self.ram.read_clock.next = self.clock.val();
        self.ram.write_enable.next = self.write.val();
        self.ram.write_address.next = bit_cast::<4, 5>(self.wp.q.val());
        self.ram.write_data.next = self.data_in.val();
        for k in 0..self._dual {
            self.ram1[k].write_clock.next = self.clock.val();
            self.ram1[k].read_clock.next = self.clock.val();
            self.ram1[k].write_enable.next = self.write.val();
            self.ram1[k].write_address.next = bit_cast::<4, 5>(self.wp.q.val());
            self.ram1[k].write_data.next = self.data_in.val();
            self.ram1[k].read_address.next = bit_cast::<4, 5>(self.rp1.val());
        }
        if self.write.val() {
            self.wp.d.next = self.wp.q.val() + 1;
        }
        // an entry is readable once its write has reached the RAM's read register
        self.wpd.d.next = self.wp.q.val();
        self.pop.next = self.read.val() & self.nonempty.q.val();
        self.ram.read_address.next = bit_cast::<4, 5>(self.rp.q.val());
        self.nonempty.d.next = self.rp.q.val() != self.wp.q.val();
        if self.pop.val() {
            self.rp.d.next = self.rp1.val();
            self.rp1x.d.next = (self.rp1.val() + 1) ^ self.one.val();
            if !self.dual.val() {
                self.ram.read_address.next = bit_cast::<4, 5>(self.rp1.val());
            }
            self.nonempty.d.next = self.rp1.val() != self.wp.q.val();
        }
        self.popd.d.next = self.pop.val() & self.dual.val();
        if self.reset.val() {
            self.wp.d.next = 0.into();
            self.wpd.d.next = 0.into();
            self.rp.d.next = 0.into();
            self.rp1x.d.next = 0.into();
            self.nonempty.d.next = false;
        }
        self.valid.next = self.nonempty.q.val();
        self.data_out.next = self.ram.read_data.val();
        for k in 0..self._dual {
            if self.popd.q.val() {
                self.data_out.next = self.ram1[k].read_data.val();
            }
        }
    }
}

/// What the output of an [`Mvtu`] is.
#[derive(Clone, Debug)]
pub enum MvtuOutput {
    /// A fused threshold op: per neuron its 2^B − 1 thresholds and flip flag.
    Threshold {
        thresholds: Vec<Vec<i64>>,
        flip: Vec<bool>,
    },
    /// y + bias as an integer.
    Raw,
}

/// The weights of dense or conv layer `i` of `net` as `[out][n]` ±1 rows in the order
/// the input stream delivers a vector: H, W, C for dense (the spec's columns are C, H,
/// W) and (ky, kx, c), c fastest, for conv.
pub fn stream_weights(net: &Network, i: usize) -> Vec<Vec<i8>> {
    let (ishape, _) = net.src_shape_kind(net.info()[i].srcs[0]);
    let (c, h, w) = (ishape.c, ishape.h, ishape.w);
    match &net.layers[i].op {
        Op::Dense { out, weight, .. } => {
            let n = c * h * w;
            (0..*out)
                .map(|o| {
                    let mut row = Vec::with_capacity(n);
                    for y in 0..h {
                        for x in 0..w {
                            for ch in 0..c {
                                row.push(weight.data[o * n + (ch * h + y) * w + x]);
                            }
                        }
                    }
                    row
                })
                .collect()
        }
        Op::Conv {
            out,
            kernel: k,
            weight,
            ..
        } => (0..*out)
            .map(|o| {
                let mut row = Vec::with_capacity(k * k * c);
                for ky in 0..*k {
                    for kx in 0..*k {
                        for ch in 0..c {
                            row.push(weight.data[((o * c + ch) * k + ky) * k + kx]);
                        }
                    }
                }
                row
            })
            .collect(),
        op => panic!(
            "stream_weights: layer {i} is {}, not dense or conv",
            op.name()
        ),
    }
}

/// The controller shared by the matrix-vector engines ([`Mvtu`] and
/// [`MvtuInt`](crate::engines::mvtu_int::MvtuInt)): everything but the weights, the PEs and the
/// output lanes.
///
/// ```text
///  in_data ─┬─► vbuf RAM[SF] ──────► x = nf==0 ? x1 : vbuf ──► x, pe_valid/first/last (stage 1)
///           │   (no vbuf when SF = 1 or NF = 1: x = x1, which holds the vector)
///           └─[x1]────────────────►
///  sf, nf ─► waddr (issue; the weight memories answer in stage 1)
///  nf ─[nf1]─[nf2]─► ch_pre ─[nf3]─► ch          (the neuron fold of the PEs' results)
///  res_write, res_data ─► CreditQueue (16 deep) ─► out_data / out_valid
/// ```
///
/// Issue: one beat (nf, sf) per cycle while credits last; the first neuron fold takes
/// the vector from `in_data` (and keeps it in `vbuf`), the other NF − 1 folds replay
/// it. A vector's last beat issues only while fewer than 16 results are in flight or
/// queued, so the PE pipeline never needs to stall. A beat issued at t reaches the PEs
/// at t + [`ISSUE_TO_PE`] (x registered after the buffer RAM's read, the weights
/// likewise); the PEs' latency is a constructor argument, so that `ch_pre` is valid one
/// cycle before a result and `ch` with it; `res_write` is ignored while the pipelines
/// drain after reset. `in_ready` and `out_valid` are registers.
///
/// Parameters (checked by [`MvtuControl::new`]): `IW` beat width, `WA`, `BA`, `CA`
/// address widths of NF·SF words, SF beats and NF folds; `OW` result width.
#[derive(LogicBlock)]
pub struct MvtuControl<
    const IW: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const OW: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    /// Weight word `nf·SF + sf` of the beat being issued.
    pub waddr: Signal<Out, Bits<WA>>,
    /// Stage 1: the beat for the PEs.
    pub x: Signal<Out, Bits<IW>>,
    /// Stage 1: the PEs' `in_valid`, `first`, `last`.
    pub pe_valid: Signal<Out, Bit>,
    pub pe_first: Signal<Out, Bit>,
    pub pe_last: Signal<Out, Bit>,
    /// The neuron fold of the results one cycle before the PEs' `out_valid`.
    pub ch_pre: Signal<Out, Bits<CA>>,
    /// The neuron fold of the results in the cycle of the PEs' `out_valid`.
    pub ch: Signal<Out, Bits<CA>>,
    /// A result beat to queue.
    pub res_write: Signal<In, Bit>,
    pub res_data: Signal<In, Bits<OW>>,
    sf: DFF<Bits<BA>>,
    nf: DFF<Bits<CA>>,
    wa: DFF<Bits<WA>>,
    credits: DFF<Bits<5>>,
    drain: DFF<Bits<5>>,
    // can_issue, registered: computed from the next credits and drain
    room: DFF<Bit>,
    credits_up: Signal<Local, Bit>,
    credits_down: Signal<Local, Bit>,
    can_issue: Signal<Local, Bit>,
    fire: Signal<Local, Bit>,
    issue_last: Signal<Local, Bit>,
    pop: Signal<Local, Bit>,
    // the vector buffer, when a vector is replayed beat by beat (NF > 1 and SF > 1)
    vbuf: Vec<RAM<Bits<IW>, BA>>,
    v1: DFF<Bit>,
    first1: DFF<Bit>,
    last1: DFF<Bit>,
    fromin1: DFF<Bit>,
    x1: DFF<Bits<IW>>,
    // stage 2: the beat registered for the PEs (after the buffer RAM and the mux)
    v2: DFF<Bit>,
    first2: DFF<Bit>,
    last2: DFF<Bit>,
    x2: DFF<Bits<IW>>,
    // nfd[k]: the neuron fold issued k + 1 cycles ago
    nfd: Vec<DFF<Bits<CA>>>,
    fifo: CreditQueue<OW>,
    sflx: DFF<Bit>,
    nflx: DFF<Bit>,
    nf_nz: DFF<Bit>,
    rdy: DFF<Bit>,
    sf_at_last: Signal<Local, Bit>,
    nf_at_last: Signal<Local, Bit>,
    // SF − 2 and NF − 2 (the values before the last; 0 when unused), SF = 1, NF = 1
    sf_pen: Constant<Bits<BA>>,
    nf_pen: Constant<Bits<CA>>,
    sf_single: Constant<Bit>,
    nf_single: Constant<Bit>,
    credit_limit: Constant<Bits<5>>,
    credit_limit_m1: Constant<Bits<5>>,
    drain_cycles: Constant<Bits<5>>,
    // loop bounds: the delay line's length, [k, k + 1) for ch_pre and for ch
    _d: usize,
    // 1 with the vector buffer, else 0
    _vb: usize,
    _pre: [usize; 2],
    _ch: [usize; 2],
}

impl<const IW: usize, const WA: usize, const BA: usize, const CA: usize, const OW: usize>
    MvtuControl<IW, WA, BA, CA, OW>
{
    /// The controller of `nf` neuron folds of `sf` beats for PEs whose `out_valid`
    /// follows a `last` beat by `pe_latency` cycles; `engine` names the caller in
    /// panics.
    pub fn new(engine: &str, nf: usize, sf: usize, pe_latency: u64) -> Self {
        assert!(nf >= 1 && sf >= 1, "{engine}: NF = {nf} and SF = {sf}");
        assert!(
            (1..=8).contains(&pe_latency),
            "{engine}: PE latency {pe_latency} not in 1..=8"
        );
        // the fold of a result: issued ISSUE_TO_PE + pe_latency cycles before it
        let d = (ISSUE_TO_PE + pe_latency) as usize;
        assert!(
            sf <= 1 << BA,
            "{engine}: SF = {sf} does not fit BA = {BA} bits"
        );
        assert!(
            nf <= 1 << CA,
            "{engine}: NF = {nf} does not fit CA = {CA} bits"
        );
        assert!(
            nf * sf <= 1 << WA,
            "{engine}: NF·SF = {} does not fit WA = {WA} bits",
            nf * sf
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            waddr: Default::default(),
            x: Default::default(),
            pe_valid: Default::default(),
            pe_first: Default::default(),
            pe_last: Default::default(),
            ch_pre: Default::default(),
            ch: Default::default(),
            res_write: Default::default(),
            res_data: Default::default(),
            sf: Default::default(),
            nf: Default::default(),
            wa: Default::default(),
            credits: Default::default(),
            drain: Default::default(),
            room: Default::default(),
            credits_up: Default::default(),
            credits_down: Default::default(),
            can_issue: Default::default(),
            fire: Default::default(),
            issue_last: Default::default(),
            pop: Default::default(),
            vbuf: (0..vector_buffers(nf, sf))
                .map(|_| Default::default())
                .collect(),
            v1: Default::default(),
            first1: Default::default(),
            last1: Default::default(),
            fromin1: Default::default(),
            x1: Default::default(),
            v2: Default::default(),
            first2: Default::default(),
            last2: Default::default(),
            x2: Default::default(),
            nfd: (0..d).map(|_| Default::default()).collect(),
            fifo: Default::default(),
            sflx: Default::default(),
            nflx: Default::default(),
            nf_nz: Default::default(),
            rdy: Default::default(),
            sf_at_last: Default::default(),
            nf_at_last: Default::default(),
            sf_pen: Constant::new((sf.saturating_sub(2) as u64).into()),
            nf_pen: Constant::new((nf.saturating_sub(2) as u64).into()),
            sf_single: Constant::new(sf == 1),
            nf_single: Constant::new(nf == 1),
            credit_limit: Constant::new((FIFO_DEPTH as u64).into()),
            credit_limit_m1: Constant::new((FIFO_DEPTH as u64 - 1).into()),
            // results of the non-resettable pipelines may reach the queue until then
            drain_cycles: Constant::new(reset_drain(pe_latency).into()),
            _d: d,
            _vb: vector_buffers(nf, sf),
            _pre: [d - 2, d - 1],
            _ch: [d - 1, d],
        }
    }
}

impl<const IW: usize, const WA: usize, const BA: usize, const CA: usize, const OW: usize> Logic
    for MvtuControl<IW, WA, BA, CA, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, sf, nf, wa, credits, drain, room, sflx, nflx, nf_nz, rdy, v1, first1,
            last1, fromin1, x1, v2, first2, last2, x2
        );
        // ---- issue: one beat of (nf, sf) per cycle while credits last
        // (credits < limit and no drain) is registered, from the next values: the same
        // decision, without the compare in the path to `in_ready` and the issue logic
        self.can_issue.next = self.room.q.val();
        // sf == SF − 1, nf == NF − 1 and nf != 0 are flags of their own, updated with the
        // counters (the first two stored XOR "SF = 1" / "NF = 1", the power-on state
        // of counters at 0): no compare between the counters and the issue decision
        self.sf_at_last.next = self.sflx.q.val() ^ self.sf_single.val();
        self.nf_at_last.next = self.nflx.q.val() ^ self.nf_single.val();
        self.in_ready.next = self.rdy.q.val();
        self.fire.next = self.can_issue.val() & (self.nf_nz.q.val() | self.in_valid.val());
        self.issue_last.next = self.fire.val() & self.sf_at_last.val();
        self.pop.next = self.out_ready.val() & self.fifo.valid.val();
        // room' = (credits' < limit) & (drain' == 0), each case from registers only
        self.credits_up.next = self.issue_last.val() & !self.pop.val();
        self.credits_down.next = !self.issue_last.val() & self.pop.val();
        self.room.d.next = self.credits.q.val() < self.credit_limit.val();
        if self.credits_up.val() {
            self.credits.d.next = self.credits.q.val() + 1;
            self.room.d.next = self.credits.q.val() < self.credit_limit_m1.val();
        }
        if self.credits_down.val() {
            self.credits.d.next = self.credits.q.val() - 1;
            self.room.d.next = true;
        }
        if self.drain.q.val() != 0 {
            self.drain.d.next = self.drain.q.val() - 1;
            if self.drain.q.val() != 1 {
                self.room.d.next = false;
            }
        }
        if self.fire.val() {
            self.wa.d.next = self.wa.q.val() + 1;
            self.sf.d.next = self.sf.q.val() + 1;
            self.sflx.d.next = (self.sf.q.val() == self.sf_pen.val()) ^ self.sf_single.val();
            if self.sf_at_last.val() {
                self.sf.d.next = 0.into();
                self.sflx.d.next = false;
                self.nf.d.next = self.nf.q.val() + 1;
                self.nflx.d.next = (self.nf.q.val() == self.nf_pen.val()) ^ self.nf_single.val();
                self.nf_nz.d.next = true;
                if self.nf_at_last.val() {
                    self.nf.d.next = 0.into();
                    self.nflx.d.next = false;
                    self.nf_nz.d.next = false;
                    self.wa.d.next = 0.into();
                }
            }
        }
        self.waddr.next = self.wa.q.val();
        for k in 0..self._vb {
            self.vbuf[k].write_clock.next = self.clock.val();
            self.vbuf[k].read_clock.next = self.clock.val();
            self.vbuf[k].write_enable.next = self.fire.val() & !self.nf_nz.q.val();
            self.vbuf[k].write_address.next = self.sf.q.val();
            self.vbuf[k].write_data.next = self.in_data.val();
            self.vbuf[k].read_address.next = self.sf.q.val();
            self.x1.d.next = self.in_data.val();
        }
        // without a buffer x1 takes each beat from the input and holds it: the one
        // vector beat replayed by every fold (SF = 1), or every beat once (NF = 1)
        for _k in self._vb..1 {
            if self.fire.val() & !self.nf_nz.q.val() {
                self.x1.d.next = self.in_data.val();
            }
        }
        self.v1.d.next = self.fire.val();
        self.first1.d.next = self.sf.q.val() == 0;
        self.last1.d.next = self.sf_at_last.val();
        self.fromin1.d.next = !self.nf_nz.q.val();
        for k in 0..self._d {
            self.nfd[k].clock.next = self.clock.val();
        }
        self.nfd[0].d.next = self.nf.q.val();
        for k in 1..self._d {
            self.nfd[k].d.next = self.nfd[k - 1].q.val();
        }
        // ---- stage 1: the beat from the input or the buffer, registered (stage 2)
        self.x2.d.next = self.x1.q.val();
        for k in 0..self._vb {
            if !self.fromin1.q.val() {
                self.x2.d.next = self.vbuf[k].read_data.val();
            }
        }
        self.v2.d.next = self.v1.q.val();
        self.first2.d.next = self.first1.q.val();
        self.last2.d.next = self.last1.q.val();
        self.x.next = self.x2.q.val();
        self.pe_valid.next = self.v2.q.val();
        self.pe_first.next = self.first2.q.val();
        self.pe_last.next = self.last2.q.val();
        for k in self._pre[0]..self._pre[1] {
            self.ch_pre.next = self.nfd[k].q.val();
        }
        for k in self._ch[0]..self._ch[1] {
            self.ch.next = self.nfd[k].q.val();
        }
        // ---- results
        self.fifo.clock.next = self.clock.val();
        self.fifo.reset.next = self.reset.val();
        self.fifo.write.next = self.res_write.val() & (self.drain.q.val() == 0);
        self.fifo.data_in.next = self.res_data.val();
        self.fifo.read.next = self.out_ready.val();
        self.out_valid.next = self.fifo.valid.val();
        self.out_data.next = self.fifo.data_out.val();
        // ---- synchronous reset of the control state
        if self.reset.val() {
            self.sf.d.next = 0.into();
            self.nf.d.next = 0.into();
            self.wa.d.next = 0.into();
            self.credits.d.next = 0.into();
            self.drain.d.next = self.drain_cycles.val();
            self.room.d.next = false;
            self.sflx.d.next = false;
            self.nflx.d.next = false;
            self.nf_nz.d.next = false;
            self.v1.d.next = false;
            self.v2.d.next = false;
        }
        // in_ready as a register of its own, from the next state
        self.rdy.d.next = self.room.d.val() & !self.nf_nz.d.val();
    }
}

/// One PE's output lane of a matrix-vector engine, shared by [`Mvtu`] and
/// [`MvtuInt`](crate::engines::mvtu_int::MvtuInt): thresholds (the lane is n, `B` bits, two
/// cycles after y) or y + bias (`OB` bits, in the cycle of y), ORed into the beat
/// `prev` at bits [lane·w, (lane+1)·w).
///
/// ```text
///  y, y_valid, ch ────► ThresholdUnit ─► n ─────┐            (threshold mode)
///  y, ch_pre ─► bias ROM ─► BiasAdd ─► y + b ───┤            (raw mode)
///  prev ───────────────────────────────► LaneInsert ─► out, valid
/// ```
///
/// Ports: `clock`; `y_valid`, `y` (`Signed<Y>`) from the PE; `ch` (the neuron fold of
/// y, in its cycle) and `ch_pre` (the same one cycle earlier, for the bias ROM's read
/// register); `prev` the beat of the lanes below; `out` the beat with this lane, and
/// `valid` when it holds a result (`y_valid` delayed by the threshold unit's 3 cycles
/// in threshold mode).
#[derive(LogicBlock)]
pub struct MvtuLane<
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
    const OB: usize,
    const OW: usize,
> {
    pub clock: Signal<In, Clock>,
    pub y_valid: Signal<In, Bit>,
    pub y: Signal<In, Signed<Y>>,
    pub ch: Signal<In, Bits<CA>>,
    pub ch_pre: Signal<In, Bits<CA>>,
    pub prev: Signal<In, Bits<OW>>,
    pub out: Signal<Out, Bits<OW>>,
    pub valid: Signal<Out, Bit>,
    // one of each in its mode, none in the other
    thr: Vec<ThresholdUnit<Y, U, K, B, CA>>,
    bias: Vec<SyncROM<Bits<OB>, CA>>,
    add: Vec<BiasAdd<Y, OB>>,
    ins_t: Vec<LaneInsert<OW, B>>,
    ins_r: Vec<LaneInsert<OW, OB>>,
    _thr: usize,
    _raw: usize,
}

impl<
        const Y: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const CA: usize,
        const OB: usize,
        const OW: usize,
    > MvtuLane<Y, U, K, B, CA, OB, OW>
{
    fn with(
        thr: Vec<ThresholdUnit<Y, U, K, B, CA>>,
        bias: Vec<SyncROM<Bits<OB>, CA>>,
        lane: usize,
    ) -> Self {
        let t = thr.len();
        let r = bias.len();
        Self {
            clock: Default::default(),
            y_valid: Default::default(),
            y: Default::default(),
            ch: Default::default(),
            ch_pre: Default::default(),
            prev: Default::default(),
            out: Default::default(),
            valid: Default::default(),
            thr,
            bias,
            add: (0..r).map(|_| BiasAdd::default()).collect(),
            ins_t: (0..t).map(|_| LaneInsert::new(lane)).collect(),
            ins_r: (0..r).map(|_| LaneInsert::new(lane)).collect(),
            _thr: t,
            _raw: r,
        }
    }

    /// Threshold lane `lane` for y in `lo..=hi`: per neuron fold its K thresholds
    /// (the bias already folded in) and flip flag.
    pub fn threshold(lane: usize, lo: i64, hi: i64, rows: &[Vec<i64>], flip: &[bool]) -> Self {
        Self::with(vec![ThresholdUnit::new(lo, hi, rows, flip)], vec![], lane)
    }

    /// Raw lane `lane`: per neuron fold its bias (modulo 2^OB).
    pub fn raw(lane: usize, bias: &[i64]) -> Self {
        let mask = if OB >= 64 { u64::MAX } else { (1u64 << OB) - 1 };
        let rom = SyncROM::new(
            bias.iter()
                .enumerate()
                .map(|(f, &b)| {
                    (
                        Bits::<CA>::from(f as u64),
                        Bits::<OB>::from(b as u64 & mask),
                    )
                })
                .collect(),
        );
        Self::with(vec![], vec![rom], lane)
    }
}

impl<
        const Y: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const CA: usize,
        const OB: usize,
        const OW: usize,
    > Logic for MvtuLane<Y, U, K, B, CA, OB, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.out.next = self.prev.val();
        self.valid.next = self.y_valid.val();
        for i in 0..self._thr {
            self.thr[i].clock.next = self.clock.val();
            self.thr[i].in_valid.next = self.y_valid.val();
            self.thr[i].ch.next = self.ch.val();
            self.thr[i].y.next = self.y.val();
            self.ins_t[i].prev.next = self.prev.val();
            self.ins_t[i].v.next = self.thr[i].n.val();
            self.out.next = self.ins_t[i].out.val();
            self.valid.next = self.thr[i].out_valid.val();
        }
        for i in 0..self._raw {
            self.bias[i].clock.next = self.clock.val();
            self.bias[i].address.next = self.ch_pre.val();
            self.add[i].y.next = self.y.val();
            self.add[i].bias.next = self.bias[i].data.val();
            self.ins_r[i].prev.next = self.prev.val();
            self.ins_r[i].v.next = self.add[i].out.val();
            self.out.next = self.ins_r[i].out.val();
        }
    }
}

/// The output lanes of a matrix-vector engine with `pe` PEs, for y in `lo..=hi`: PE p
/// holds neurons nf·PE + p. In threshold mode the bias is folded into the thresholds
/// (y + b ≥ T ⇔ y ≥ T − b), clamped to [lo − 1, hi + 1], which keeps every answer for
/// y in [lo, hi]. `engine` names the caller in panics.
#[allow(clippy::too_many_arguments)]
pub(crate) fn output_lanes<
    const Y: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const CA: usize,
    const OB: usize,
    const OW: usize,
>(
    engine: &str,
    output: &MvtuOutput,
    bias: &[i64],
    pe: usize,
    lo: i64,
    hi: i64,
) -> Vec<MvtuLane<Y, U, K, B, CA, OB, OW>> {
    let out = bias.len();
    let nf = out / pe;
    match output {
        MvtuOutput::Threshold { thresholds, flip } => {
            assert_eq!(OB, B, "{engine}: OB must be B in threshold mode");
            assert!(
                thresholds.len() == out && flip.len() == out,
                "{engine}: thresholds and flip need one row per neuron"
            );
            (0..pe)
                .map(|p| {
                    let rows: Vec<Vec<i64>> = (0..nf)
                        .map(|f| {
                            let o = f * pe + p;
                            thresholds[o]
                                .iter()
                                .map(|&t| {
                                    let t = t as i128 - bias[o] as i128;
                                    t.clamp(lo as i128 - 1, hi as i128 + 1) as i64
                                })
                                .collect()
                        })
                        .collect();
                    let fl: Vec<bool> = (0..nf).map(|f| flip[f * pe + p]).collect();
                    MvtuLane::threshold(p, lo, hi, &rows, &fl)
                })
                .collect()
        }
        MvtuOutput::Raw => {
            assert!(Y >= 2, "{engine}: Y too small");
            (0..pe)
                .map(|p| {
                    let b: Vec<i64> = (0..nf).map(|f| bias[f * pe + p]).collect();
                    MvtuLane::raw(p, &b)
                })
                .collect()
        }
    }
}

/// The bias (`[out]`, 0 without one) and the output of dense or conv layer `layer` of
/// `net`, with threshold layer `threshold` fused (it must read `layer`) or raw.
pub(crate) fn layer_output(
    engine: &str,
    net: &Network,
    layer: usize,
    threshold: Option<usize>,
) -> (Vec<i64>, MvtuOutput) {
    let bias: Vec<i64> = match &net.layers[layer].op {
        Op::Dense { bias, out, .. } | Op::Conv { bias, out, .. } => bias
            .as_ref()
            .map_or_else(|| vec![0; *out], |b| b.data.clone()),
        op => panic!(
            "{engine}: layer {layer} is {}, not dense or conv",
            op.name()
        ),
    };
    let output = match threshold {
        None => MvtuOutput::Raw,
        Some(t) => {
            assert_eq!(
                net.layers[t].inputs,
                vec![net.layers[layer].name.clone()],
                "{engine}: the fused threshold must read the layer"
            );
            let Op::Threshold {
                thresholds, flip, ..
            } = &net.layers[t].op
            else {
                panic!("{engine}: layer {t} is not a threshold");
            };
            let k = thresholds.dims[1];
            MvtuOutput::Threshold {
                thresholds: thresholds.data.chunks(k).map(|r| r.to_vec()).collect(),
                flip: (0..bias.len())
                    .map(|c| flip.as_ref().is_some_and(|f| f.data[c] == 1))
                    .collect(),
            }
        }
    };
    (bias, output)
}

/// Cycles per frame of a matrix-vector engine at full rate: pixels · NF · SF.
pub fn engine_cycles_per_frame(pixels: usize, nf: usize, sf: usize) -> u64 {
    (pixels * nf * sf) as u64
}

/// First input beat to first output beat of a matrix-vector engine at full rate whose
/// PEs answer `pe_latency` cycles after a vector's last beat: the SF beats of the first
/// vector (the last one issued at SF − 1), [`ISSUE_TO_PE`], the PE, the threshold
/// unit's [`THRESHOLD_LATENCY`] (threshold mode), and the 2 cycles through the
/// [`CreditQueue`]: SF − 1 + 2 + PE + 3 + 2 with thresholds (SF + 10 for [`MvuPe`]'s
/// 4), SF − 1 + 2 + PE + 2 raw (SF + 7).
pub fn engine_latency(sf: usize, threshold: bool, pe_latency: u64) -> u64 {
    let thr = if threshold { THRESHOLD_LATENCY } else { 0 };
    sf as u64 - 1 + ISSUE_TO_PE + pe_latency + thr + 2
}

/// Cycles after reset during which the control drains the PE pipelines (whose results
/// may reach the queue until then) and takes no input beat: the issue-to-result delay,
/// the threshold unit's, and 2.
pub fn reset_drain(pe_latency: u64) -> u64 {
    ISSUE_TO_PE + pe_latency + THRESHOLD_LATENCY + 2
}

/// The cycle model of a result path that cannot stall (an [`MvtuControl`]'s, a
/// threshold engine's): the credits, the drain counter, the results issued and still in
/// the pipeline, and the [`CreditQueue`]'s write less read pointer and `valid` register.
/// Exact: `room` (credits < 16, no drain) and `valid` are registers of these values, and
/// every result is written `delay` cycles after its issue (issue waits for the drain).
#[derive(Clone, Debug)]
pub struct CreditTiming {
    credits: u64,
    drain: u64,
    // bit d: a result issued d + 1 cycles ago
    flight: u64,
    delay: u64,
    // entries written before this cycle and not popped (the queue's wp − rp)
    stored: u64,
    // the queue's `valid` register
    nonempty: bool,
}

impl CreditTiming {
    /// The state right after reset: `drain` cycles without issue, then a result issued
    /// at t is written into the queue at t + `delay`.
    pub fn new(drain: u64, delay: u64) -> Self {
        assert!(
            (1..64).contains(&delay),
            "CreditTiming: delay {delay} not in 1..64"
        );
        CreditTiming {
            credits: 0,
            drain,
            flight: 0,
            delay,
            stored: 0,
            nonempty: false,
        }
    }

    /// A result may issue in this cycle (the register `room`).
    pub fn room(&self) -> bool {
        self.credits < FIFO_DEPTH as u64 && self.drain == 0
    }

    /// The queue's `valid`.
    pub fn out_valid(&self) -> bool {
        self.nonempty
    }

    /// The clock edge: `issue` when a result issued in this cycle, `pop` when the
    /// queue's head was taken.
    pub fn clock(&mut self, issue: bool, pop: bool) {
        assert!(
            !pop || self.nonempty,
            "CreditTiming: a pop from an empty queue"
        );
        assert!(!issue || self.room(), "CreditTiming: an issue without room");
        let write = (self.flight >> (self.delay - 1)) & 1 == 1;
        // the queue's valid: an entry written before this cycle and not popped in it
        self.nonempty = self.stored - pop as u64 != 0;
        self.stored = self.stored - pop as u64 + write as u64;
        self.credits = self.credits + issue as u64 - pop as u64;
        self.drain = self.drain.saturating_sub(1);
        self.flight = ((self.flight << 1) | issue as u64) & ((1 << self.delay) - 1);
    }
}

/// The cycle model of [`MvtuControl`] (of [`Mvtu`] and
/// [`MvtuInt`](crate::engines::mvtu_int::MvtuInt)): the issue counters sf and nf and the
/// result path ([`CreditTiming`]), a vector's result queued [`ISSUE_TO_PE`] + the PEs'
/// latency (+ [`THRESHOLD_LATENCY`]) after its last beat issues. Exact: `in_ready` is
/// the register room ∧ nf = 0, and a replaying fold (nf ≠ 0) issues whenever there is room.
#[derive(Clone, Debug)]
pub struct MvtuTiming {
    sf: usize,
    nf: usize,
    sfs: usize,
    nfs: usize,
    results: CreditTiming,
}

impl MvtuTiming {
    /// After reset, for `nf` neuron folds of `sf` beats, PEs of `pe_latency`, a fused
    /// threshold or not.
    pub fn new(nf: usize, sf: usize, pe_latency: u64, threshold: bool) -> Self {
        assert!(nf >= 1 && sf >= 1, "MvtuTiming: NF = {nf} and SF = {sf}");
        let thr = if threshold { THRESHOLD_LATENCY } else { 0 };
        MvtuTiming {
            sf: 0,
            nf: 0,
            sfs: sf,
            nfs: nf,
            results: CreditTiming::new(reset_drain(pe_latency), ISSUE_TO_PE + pe_latency + thr),
        }
    }
}

impl StreamTiming for MvtuTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.results.room() && self.nf == 0
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.results.out_valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let fire = in_fire[0] || (self.nf != 0 && self.results.room());
        let last = fire && self.sf + 1 == self.sfs;
        if fire {
            self.sf += 1;
            if last {
                self.sf = 0;
                self.nf = (self.nf + 1) % self.nfs;
            }
        }
        self.results.clock(last, out_fire[0]);
    }
}

/// What an [`Mvtu`] and an [`MvtuSpram`](crate::engines::mvtu_spram::MvtuSpram) are
/// made of besides their weight storage, checked against the generics: the control, the
/// PEs, the output lanes, each PE's weight words, the padding-flag loop bounds.
pub(crate) struct MvtuParts<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
> {
    pub ctrl: MvtuControl<IW, WA, BA, CA, OW>,
    pub pes: Vec<MvuPe<SIMD, P, A, Y>>,
    pub lanes: Vec<MvtuLane<Y, U, K, B, CA, OB, OW>>,
    pub words: Vec<Vec<u64>>,
    pub pad: [usize; 2],
    pub info: MvtuInfo,
}

impl<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > MvtuParts<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    /// The parts of an engine for `weights` (`[out][n]` ±1, stream order), `bias`,
    /// `output`, `pixels` vectors per frame; `engine` names it in panics.
    pub fn new(
        engine: &str,
        weights: &[Vec<i8>],
        bias: &[i64],
        output: &MvtuOutput,
        pixels: usize,
    ) -> Self {
        let out = weights.len();
        assert!(out >= 1, "{engine}: no neurons");
        let n = weights[0].len();
        assert!(
            (1..=64).contains(&SIMD) && n % SIMD == 0,
            "{engine}: SIMD = {SIMD} must be in 1..=64 and divide the fan-in {n}"
        );
        let pad_flag = IW == SIMD + 1;
        assert!(
            IW == SIMD || pad_flag,
            "{engine}: IW must be SIMD or SIMD + 1"
        );
        assert!(
            OB >= 1 && OW % OB == 0,
            "{engine}: OW = {OW} must be PE · OB with OB = {OB}"
        );
        let pe = OW / OB;
        assert!(
            out % pe == 0,
            "{engine}: PE = {pe} (OW / OB) must divide out = {out}"
        );
        assert_eq!(bias.len(), out, "{engine}: one bias per neuron");
        let (nf, sf) = (out / pe, n / SIMD);
        assert!(pixels >= 1, "{engine}: pixels must be at least 1");
        let nn = n as i64;
        MvtuParts {
            ctrl: MvtuControl::new(engine, nf, sf, PE_LATENCY),
            pes: (0..pe)
                .map(|_| MvuPe::with_pipe(n as u64, pad_flag, late_cuts(pe, SIMD)))
                .collect(),
            lanes: output_lanes(engine, output, bias, pe, -nn, nn),
            words: pe_weight_words(weights, pe, SIMD),
            pad: if pad_flag { [SIMD, SIMD + 1] } else { [0, 0] },
            info: MvtuInfo {
                n,
                out,
                pe,
                simd: SIMD,
                nf,
                sf,
                pixels,
                threshold: matches!(output, MvtuOutput::Threshold { .. }),
                pad_flag,
            },
        }
    }
}

/// Matrix-vector(-threshold) unit (see the module documentation).
#[derive(LogicBlock)]
pub struct Mvtu<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    ctrl: MvtuControl<IW, WA, BA, CA, OW>,
    wmem: Vec<WeightMemory<SIMD, WA>>,
    pad1: Signal<Local, Bit>,
    pes: Vec<MvuPe<SIMD, P, A, Y>>,
    lanes: Vec<MvtuLane<Y, U, K, B, CA, OB, OW>>,
    // loop bounds: PEs, [SIMD, SIMD + 1) in padding mode (else empty), the last PE
    _pe: usize,
    _pad: [usize; 2],
    _last: usize,
    _info: MvtuInfo,
}

/// Run-time parameters of an [`Mvtu`], for reports and the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MvtuInfo {
    pub n: usize,
    pub out: usize,
    pub pe: usize,
    pub simd: usize,
    /// neuron folds, out / PE
    pub nf: usize,
    /// synapse folds, n / SIMD
    pub sf: usize,
    /// vectors per frame (output pixels; 1 for dense)
    pub pixels: usize,
    pub threshold: bool,
    pub pad_flag: bool,
}

impl<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > Mvtu<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    /// An MVTU for `weights` (`[out][n]` ±1, in stream order, see [`stream_weights`]),
    /// `bias` (`[out]`), and `output`; `pixels` vectors per frame. PE = OW / OB; the
    /// padding flag is on when IW = SIMD + 1. Panics on any mismatch.
    pub fn new(weights: &[Vec<i8>], bias: &[i64], output: &MvtuOutput, pixels: usize) -> Self {
        let p = MvtuParts::new("Mvtu", weights, bias, output, pixels);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            ctrl: p.ctrl,
            wmem: p.words.iter().map(|w| WeightMemory::new(w)).collect(),
            pad1: Default::default(),
            pes: p.pes,
            lanes: p.lanes,
            _pe: p.info.pe,
            _pad: p.pad,
            _last: p.info.pe - 1,
            _info: p.info,
        }
    }

    /// The MVTU of dense or conv layer `layer` of `net`, with threshold layer
    /// `threshold` fused (it must read `layer`), else raw.
    pub fn from_network(net: &Network, layer: usize, threshold: Option<usize>) -> Self {
        let info = &net.info()[layer];
        let (bias, output) = layer_output("Mvtu", net, layer, threshold);
        Self::new(
            &stream_weights(net, layer),
            &bias,
            &output,
            info.shape.pixels(),
        )
    }

    /// The same engine with its PEs' popcounts registered late when `late` (else after
    /// levels 2 and 4), whatever its own width asks ([`late_cuts`]).
    pub fn with_late_cuts(mut self, late: bool) -> Self {
        let i = self._info;
        self.pes = (0..i.pe)
            .map(|_| MvuPe::with_pipe(i.n as u64, i.pad_flag, late))
            .collect();
        self
    }

    /// The run-time parameters.
    pub fn info(&self) -> MvtuInfo {
        self._info
    }

    /// Cycles per frame at full rate: pixels · NF · SF.
    pub fn cycles_per_frame(&self) -> u64 {
        let i = self._info;
        engine_cycles_per_frame(i.pixels, i.nf, i.sf)
    }

    /// First input beat to first output beat at full rate: SF + 10 with thresholds,
    /// SF + 7 raw ([`engine_latency`]).
    pub fn latency(&self) -> u64 {
        engine_latency(self._info.sf, self._info.threshold, PE_LATENCY)
    }
}

impl<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > Logic for Mvtu<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.ctrl.clock.next = self.clock.val();
        self.ctrl.reset.next = self.reset.val();
        self.ctrl.in_data.next = self.in_data.val();
        self.ctrl.in_valid.next = self.in_valid.val();
        self.ctrl.out_ready.next = self.out_ready.val();
        self.in_ready.next = self.ctrl.in_ready.val();
        self.out_valid.next = self.ctrl.out_valid.val();
        self.out_data.next = self.ctrl.out_data.val();
        // stage 1: a padded kernel position (flag above the lanes) must add 0
        self.pad1.next = false;
        for i in self._pad[0]..self._pad[1] {
            self.pad1.next = self.ctrl.x.val().get_bit(i);
        }
        for p in 0..self._pe {
            self.wmem[p].clock.next = self.clock.val();
            self.wmem[p].address.next = self.ctrl.waddr.val();
            self.pes[p].clock.next = self.clock.val();
            self.pes[p].in_valid.next = self.ctrl.pe_valid.val();
            self.pes[p].first.next = self.ctrl.pe_first.val();
            self.pes[p].last.next = self.ctrl.pe_last.val();
            self.pes[p].w.next = self.wmem[p].data.val();
            self.pes[p].x.next = bit_cast::<SIMD, IW>(self.ctrl.x.val());
            self.pes[p].pad.next = self.pad1.val();
            // outputs: thresholds (y at t+3, n at t+5) or y + bias (t+3)
            self.lanes[p].clock.next = self.clock.val();
            self.lanes[p].y_valid.next = self.pes[p].out_valid.val();
            self.lanes[p].y.next = self.pes[p].y.val();
            self.lanes[p].ch.next = self.ctrl.ch.val();
            self.lanes[p].ch_pre.next = self.ctrl.ch_pre.val();
        }
        self.lanes[0].prev.next = 0.into();
        for p in 1..self._pe {
            self.lanes[p].prev.next = self.lanes[p - 1].out.val();
        }
        self.ctrl.res_write.next = self.lanes[0].valid.val();
        for p in self._last..self._pe {
            self.ctrl.res_data.next = self.lanes[p].out.val();
        }
    }
}

/// One-layer test networks for the matrix-vector engines' tests, and their streams.
#[cfg(test)]
pub(crate) mod test_nets {
    use bnnforge_model::network::{InputSpec, Kind, Layer, Network, Op, Param, Shape, Src};
    use bnnforge_model::Model;
    use rand::Rng;

    /// What feeds the dense/conv layer of a [`layer_net`], and how its weights are drawn.
    #[derive(Clone, Debug)]
    pub struct Feed {
        /// the network input
        pub input: InputSpec,
        /// layer 0 is `add(input, input)`: an integer range that is not a full width
        pub doubled: bool,
        /// all weights +1 (an accumulator range without negative values), else random
        pub all_plus: bool,
    }

    impl Feed {
        /// The network input straight into the layer, random weights.
        pub fn plain(input: InputSpec) -> Self {
            Feed {
                input,
                doubled: false,
                all_plus: false,
            }
        }
        /// Index of the dense/conv layer.
        pub fn mac(&self) -> usize {
            self.doubled as usize
        }
    }

    /// The dense/conv layer (with bias in [−b, b] or not) fed as `feed` says, then, with
    /// `tbits`, a threshold layer whose thresholds are placed among the values the layer
    /// reaches on `frames`.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_net(
        rng: &mut impl Rng,
        feed: Feed,
        out: usize,
        conv: Option<(usize, usize, usize, i8)>,
        bias: Option<i64>,
        tbits: Option<u32>,
        frames: &[Vec<i64>],
    ) -> Network {
        let ishape = feed.input.shape;
        let n = match conv {
            Some((k, ..)) => ishape.c * k * k,
            None => ishape.len(),
        };
        // neuron 0 all +1 and the last one all -1 (unless all are +1), with the bias
        // ends that widen their ranges most: the widths of accumulator and output do
        // not depend on the draw (integer ranges depend on the weights)
        let w: Vec<i8> = (0..out * n)
            .map(|i| match i / n {
                _ if feed.all_plus => 1,
                0 => 1,
                o if o + 1 == out => -1,
                _ if rng.gen() => 1,
                _ => -1,
            })
            .collect();
        let unsigned = feed.input.kind().range().0 >= 0;
        let b = bias.map(|b| {
            let mut v: Vec<i64> = (0..out).map(|_| rng.gen_range(-b..=b)).collect();
            v[out - 1] = if unsigned { -b } else { b };
            v[0] = -v[out - 1];
            Param::new("l.b", vec![out], v)
        });
        let op = match conv {
            None => Op::Dense {
                out,
                weight: Param::new("l.w", vec![out, n], w),
                bias: b,
            },
            Some((k, s, p, pad_value)) => Op::Conv {
                out,
                kernel: k,
                stride: s,
                padding: p,
                pad_value,
                weight: Param::new("l.w", vec![out, ishape.c, k, k], w),
                bias: b,
            },
        };
        let mut layers = vec![];
        if feed.doubled {
            layers.push(Layer {
                name: "sum".into(),
                inputs: vec!["input".into(), "input".into()],
                op: Op::Add,
            });
        }
        layers.push(Layer {
            name: "l".into(),
            inputs: vec![if feed.doubled { "sum" } else { "input" }.into()],
            op,
        });
        let raw = Network::new("t".into(), feed.input.clone(), layers.clone(), "l".into()).unwrap();
        let Some(bits) = tbits else { return raw };
        let model = Model::new(&raw);
        let oshape = raw.output_shape();
        let vals: Vec<Vec<i64>> = frames.iter().map(|f| model.eval(f)).collect();
        let hw = oshape.pixels();
        let k = (1usize << bits) - 1;
        let mut t = vec![];
        for c in 0..oshape.c {
            for _ in 0..k {
                let v = vals[rng.gen_range(0..vals.len())][c * hw + rng.gen_range(0..hw)];
                t.push(match rng.gen_range(0..12) {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    _ => v + rng.gen_range(-1..=1),
                });
            }
        }
        let flip: Vec<u8> = (0..oshape.c).map(|_| rng.gen_range(0..2)).collect();
        layers.push(Layer {
            name: "th".into(),
            inputs: vec!["l".into()],
            op: Op::Threshold {
                bits,
                thresholds: Param::new("th.t", vec![oshape.c, k], t),
                flip: Some(Param::new("th.f", vec![oshape.c], flip)),
            },
        });
        Network::new("t".into(), feed.input, layers, "th".into()).unwrap()
    }

    /// A random input frame (C, H, W): binary ±1 or integers of the input's range;
    /// some frames lean towards one end, so extreme sums occur.
    pub fn frame(rng: &mut impl Rng, input: &InputSpec) -> Vec<i64> {
        let len = input.shape.len();
        let lean = [0.5, 0.95, 0.05][rng.gen_range(0..3)];
        match input.kind() {
            Kind::Binary => (0..len)
                .map(|_| if rng.gen_bool(lean) { 1 } else { -1 })
                .collect(),
            Kind::Int { lo, hi } => (0..len)
                .map(|_| match rng.gen_range(0..4) {
                    0 => rng.gen_range(lo..=hi),
                    _ if rng.gen_bool(lean) => hi,
                    _ => lo,
                })
                .collect(),
        }
    }

    /// The input stream of dense/conv layer `mac` for one network frame, as the engine
    /// takes it: the layer's operand (C, H, W) in H, W, C order (dense) or each output
    /// pixel's window in (ky, kx, c) order (conv), `simd` lanes per beat of the
    /// operand's width (binary: 1 = +1), padded positions as the pad value (integers:
    /// 0), with the padding flag above the lanes when `flag` (binary, pad value 0).
    pub fn input_beats(
        net: &Network,
        mac: usize,
        frame: &[i64],
        simd: usize,
        flag: bool,
    ) -> Vec<u128> {
        let src = net.info()[mac].srcs[0];
        let (ishape, kind) = net.src_shape_kind(src);
        let vals = match src {
            Src::Input => frame.to_vec(),
            Src::Layer(j) => Model::new(net).eval_layers(frame)[j].clone(),
        };
        let (c, h, w) = (ishape.c, ishape.h, ishape.w);
        let bits = kind.width().0 as usize;
        assert!(simd * bits + flag as usize <= 128, "test beats are u128");
        let mask = (1u128 << bits) - 1;
        let lane = |v: i64| {
            if kind.is_binary() {
                (v > 0) as u128
            } else {
                v as i128 as u128 & mask
            }
        };
        let at = |ch: usize, y: usize, x: usize| lane(vals[(ch * h + y) * w + x]);
        // (lanes, padded) of each beat
        let mut beats = vec![];
        match &net.layers[mac].op {
            Op::Dense { .. } => {
                let mut v = vec![];
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..c {
                            v.push(at(ch, y, x));
                        }
                    }
                }
                for chunk in v.chunks(simd) {
                    beats.push((chunk.to_vec(), false));
                }
            }
            Op::Conv {
                kernel: k,
                stride: s,
                padding: p,
                pad_value,
                ..
            } => {
                let pad = if kind.is_binary() {
                    (*pad_value > 0) as u128
                } else {
                    0
                };
                let padded_zero = kind.is_binary() && *pad_value == 0;
                let o = net.info()[mac].shape;
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        for ky in 0..*k {
                            for kx in 0..*k {
                                let iy = (oy * s + ky) as i64 - *p as i64;
                                let ix = (ox * s + kx) as i64 - *p as i64;
                                let inside = iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64;
                                for c0 in (0..c).step_by(simd) {
                                    let lanes: Vec<u128> = (c0..c0 + simd)
                                        .map(|ch| {
                                            if inside {
                                                at(ch, iy as usize, ix as usize)
                                            } else {
                                                pad
                                            }
                                        })
                                        .collect();
                                    beats.push((lanes, !inside && padded_zero));
                                }
                            }
                        }
                    }
                }
            }
            _ => unreachable!("layer {mac} is not dense or conv"),
        }
        beats
            .into_iter()
            .map(|(lanes, padded)| {
                assert!(flag || !padded, "padding with 0 needs the flag");
                let mut b = 0u128;
                for (i, l) in lanes.iter().enumerate() {
                    b |= l << (i * bits);
                }
                if padded {
                    b |= 1 << (simd * bits);
                }
                b
            })
            .collect()
    }

    /// The output beats the model expects for one frame: H, W, C order, PE lanes of
    /// OB bits (binary +1 → 1).
    pub fn output_beats(net: &Network, frame: &[i64], pe: usize, ob: usize) -> Vec<u128> {
        let y = Model::new(net).eval(frame);
        let o = net.output_shape();
        let binary = net.output_kind().is_binary();
        let mask = (1u128 << ob) - 1;
        let mut beats = vec![];
        for px in 0..o.pixels() {
            for c0 in (0..o.c).step_by(pe) {
                let mut b = 0u128;
                for l in 0..pe {
                    let v = y[(c0 + l) * o.pixels() + px];
                    let e = if binary {
                        (v > 0) as u128
                    } else {
                        v as i128 as u128 & mask
                    };
                    b |= e << (l * ob);
                }
                beats.push(b);
            }
        }
        beats
    }

    /// A shape helper for the tests: `[C, H, W]` or `[F]`.
    pub fn input(shape: Shape, bits: u32, signed: bool) -> InputSpec {
        InputSpec {
            shape,
            bits,
            signed,
        }
    }
}

/// The const generics of a matrix-vector engine by name ([`Mvtu`] has all but `ib`,
/// [`MvtuInt`](crate::engines::mvtu_int::MvtuInt) has `ib` after `simd`; see the module
/// documentation for what each is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacGenerics {
    pub simd: usize,
    /// input lane bits (1 for binary inputs)
    pub ib: usize,
    pub iw: usize,
    pub p: usize,
    pub a: usize,
    pub y: usize,
    pub wa: usize,
    pub ba: usize,
    pub ca: usize,
    pub u: usize,
    pub k: usize,
    pub b: usize,
    pub ob: usize,
    pub ow: usize,
}

impl MacGenerics {
    /// From `[SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW]` (`ib` = 1) or the same
    /// with `IB` after `SIMD`.
    pub fn from_slice(g: &[usize]) -> MacGenerics {
        let (ib, r) = match g.len() {
            13 => (1, &g[1..]),
            14 => (g[1], &g[2..]),
            n => panic!("{n} generics for a matrix-vector engine"),
        };
        MacGenerics {
            simd: g[0],
            ib,
            iw: r[0],
            p: r[1],
            a: r[2],
            y: r[3],
            wa: r[4],
            ba: r[5],
            ca: r[6],
            u: r[7],
            k: r[8],
            b: r[9],
            ob: r[10],
            ow: r[11],
        }
    }

    /// In declaration order, `IB` after `SIMD` when `int`.
    pub fn to_vec(&self, int: bool) -> Vec<usize> {
        let g = self;
        let mut v = vec![
            g.simd, g.iw, g.p, g.a, g.y, g.wa, g.ba, g.ca, g.u, g.k, g.b, g.ob, g.ow,
        ];
        if int {
            v.insert(1, g.ib);
        }
        v
    }
}

/// A dense or conv layer's matrix-vector engine in a design: what [`MvtuSpec`] and
/// [`MvtuIntSpec`](crate::engines::mvtu_int::MvtuIntSpec) share.
#[derive(Clone, Debug, PartialEq)]
pub struct MacSpec {
    pub layer: usize,
    /// the fused threshold layer
    pub threshold: Option<usize>,
    pub g: MacGenerics,
    pub pe: usize,
    /// fan-in and outputs of a neuron
    pub n: usize,
    pub out: usize,
    /// vectors per frame (1 for dense)
    pub pixels: usize,
    /// a dense layer answers after its whole input vector
    pub dense: bool,
    /// bits of an input beat (with the pad flag)
    pub in_width: usize,
    /// threshold words of the fused threshold layer
    pub threshold_words: usize,
    /// the weights are in SPRAM ([`MvtuSpram`](crate::engines::mvtu_spram::MvtuSpram),
    /// binary inputs only), chosen by [`Design::put_weights_in_spram`]
    pub spram: bool,
    /// the PEs register their popcounts late (binary inputs): [`late_cuts`] of this
    /// engine, or of any in the design ([`Design::new`](crate::compile::design::Design::new))
    pub late: bool,
}

/// Mvtu LUT4: coefficients of [1, PE, lanes (weights ≥ 8 words), lanes (4 words), lanes
/// (2 words), PE·A, weight ROM, threshold ROMs, RAMs]. The first two fitted on 6
/// pipelined engines of TFC-W1A1 and `random-3` (about 36 LUT4 per PE: registered read
/// enables, the lane's output muxes), the others on 671 engines; PE·A less 0.7 since
/// the accumulator loads n by set/reset (a 49-lane PE of TFC's fc0: 229 → 222 LUT4).
const MVTU_LUT: [f64; 9] = [
    23.600, 36.200, 2.896, 2.322, 1.122, 0.898, 0.862, 0.675, 1.338,
];
/// Mvtu DFF: coefficients of [1, PE·A, PE·clog2(SIMD+1), ROMs, RAMs, IW+OW, PE·K·U,
/// PE·(SIMD + popcount pipeline bits)]: each PE registers its weight word, its popcount
/// every two adder levels ([`popcount_pipe_dff`]) and its threshold words once more;
/// the constant and the last two fitted on the 6 engines above (within 21 %).
const MVTU_DFF: [f64; 8] = [78.718, 2.769, 1.195, 0.000, 0.939, 1.725, 1.432, 1.330];

/// Flip-flops of a [`PopcountPipe`](crate::blocks::popcount::PopcountPipe) of `n` bits
/// after yosys: level-2 nodes of min(3, W) bits and level-4 nodes of min(5, W) bits
/// (W = clog2(n + 1)); registered `late`, level-4 nodes and the W-bit count.
pub fn popcount_pipe_dff(n: usize, late: bool) -> usize {
    let w = crate::bits_to_hold(n as u64);
    let lv4 = n.div_ceil(16) * w.min(5);
    if late {
        lv4 + w
    } else {
        n.div_ceil(4) * w.min(3) + lv4
    }
}

/// LUT4s per lane that a late-registered popcount saves ([`late_cuts`]; measured on TFC's
/// fc0 at 16 cycles, 64 PEs of 49 lanes, synthesised alone: 12,110 LUT4).
const LATE_CUT_LUT_PER_LANE: f64 = 0.66;

/// The same on ECP5, beyond the iCE40 saving the ECP5 formula already scales: its
/// exact-width trees of four adder levels become one `$macc` each, compressed in LUTs
/// rather than carry chains. Whole designs flattened ask 0.79 a lane (TFC at 16
/// cycles, 3688 late lanes) and 0.16 (LFC-W1A1 at `--device ulx3s-85f`, 5684): this
/// value puts both within 7 % (hdl/DESIGN.md, ECP5).
const ECP5_LATE_CUT_LUT_PER_LANE: f64 = 0.5;

/// LUT4s a comparator with a constant threshold saves against the carry chain
/// ([`CompareBit::constant`](crate::blocks::compare_bit::CompareBit::constant)): the
/// threshold units of a matrix-vector engine with one neuron fold (measured in a PE's
/// lane of TFC's fc0: 14 for a 12-bit y, 13 per PE over the whole engine).
pub const CONST_COMPARE_LUT: f64 = 13.0;

impl MacSpec {
    /// The engine of MAC layer `layer` of `net` with `threshold` fused, at `fold`,
    /// reading beats of `in_width` bits, whose const generics are `generics`.
    pub fn new(
        net: &Network,
        layer: usize,
        threshold: Option<usize>,
        fold: Fold,
        in_width: usize,
        generics: &[usize],
    ) -> MacSpec {
        let (out, _, n, pixels) = mac_dims(net, layer).expect("a dense or conv layer");
        let threshold_words = match threshold.map(|t| &net.layers[t].op) {
            Some(Op::Threshold { thresholds, .. }) => thresholds.data.len(),
            _ => 0,
        };
        MacSpec {
            layer,
            threshold,
            g: MacGenerics::from_slice(generics),
            pe: fold.pe,
            n,
            out,
            pixels: pixels as usize,
            dense: matches!(net.layers[layer].op, Op::Dense { .. }),
            in_width,
            threshold_words,
            spram: false,
            late: late_cuts(fold.pe, fold.simd),
        }
    }
    /// Lanes (PE·SIMD) whose popcounts are registered late ([`Self::late`]), else 0.
    pub fn late_lanes(&self) -> f64 {
        self.late as u8 as f64 * (self.pe * self.g.simd) as f64
    }
    /// Neuron folds, out / PE.
    pub fn nf(&self) -> usize {
        self.out / self.pe
    }
    /// See [`EngineSpec::constant_thresholds`].
    pub fn constant_thresholds(&self) -> Option<usize> {
        (self.threshold.is_some() && self.nf() == 1).then_some(self.g.k)
    }
    /// Whether its weights can go in SPRAM, one per PE
    /// ([`fits_spram`](crate::engines::mvtu_spram::fits_spram)).
    pub fn fits_spram(&self) -> bool {
        crate::engines::mvtu_spram::fits_spram(self.pe, self.g.simd, self.nf() * self.sf())
    }
    /// Synapse folds, n / SIMD.
    pub fn sf(&self) -> usize {
        self.n / self.g.simd
    }
    /// Cycles per frame at full rate: pixels · NF · SF.
    pub fn cycles(&self) -> u64 {
        engine_cycles_per_frame(self.pixels, self.nf(), self.sf())
    }
    /// The cycle model ([`MvtuTiming`]), PEs of `pe_latency`.
    pub fn timing(&self, pe_latency: u64) -> Box<dyn StreamTiming> {
        Box::new(MvtuTiming::new(
            self.nf(),
            self.sf(),
            pe_latency,
            self.threshold.is_some(),
        ))
    }
    /// First input beat to first output beat, PEs of `pe_latency`.
    pub fn latency(&self, pe_latency: u64) -> u64 {
        engine_latency(self.sf(), self.threshold.is_some(), pe_latency)
    }
    /// One output beat per SF cycles (a neuron fold), the first when the first vector
    /// (SF input beats; the whole input of a dense layer) is in, the last no sooner
    /// than the last vector: [`Self::latency`] less SF − 1 after its last beat, whatever
    /// the input's pace.
    pub fn span(&self, pe_latency: u64, input: Span, beats: u64) -> Span {
        let sf = self.sf() as u64;
        let after_vector = self.latency(pe_latency) + 1 - sf;
        let first = input.beat(sf - 1) + after_vector;
        let last = (first + (beats - 1) * sf).max(input.last + after_vector);
        Span { first, last, beats }
    }
    /// Weights, thresholds (or biases) and the replay buffer ([`vector_buffers`]).
    pub fn memory_bits(&self) -> u64 {
        let out_words = match self.threshold {
            Some(_) => self.threshold_words * self.g.u,
            None => self.out * self.g.ob,
        };
        let buffer = vector_buffers(self.nf(), self.sf()) * self.sf() * self.in_width;
        (self.out * self.n + out_words + buffer) as u64
    }
    /// Per PE its weights (a deep ROM in logic split into banks of 64 words); the input
    /// replay buffer; the result queue; the thresholds and flip bits (or the biases).
    pub fn memories(&self) -> Vec<Memory> {
        let (m, pe) = (&self.g, self.pe);
        let banks = weight_banks(m.simd, m.wa);
        let weights = if self.spram {
            Memory::new(m.simd, self.nf() * self.sf(), MemKind::Spram).times(pe)
        } else {
            Memory::rom(m.simd, (1 << m.wa) / banks).times(pe * banks)
        };
        let mut v = vec![
            weights.holding(Role::Weights),
            Memory::ram(m.iw, 1 << m.ba).times(vector_buffers(self.nf(), self.sf())),
            Memory::ram(m.ow, FIFO_DEPTH).times(queue_copies(m.ow)),
        ];
        if self.threshold.is_some() {
            v.push(
                Memory::rom(m.u, 1 << m.ca)
                    .times(pe * m.k)
                    .holding(Role::Thresholds),
            );
            v.push(
                Memory::rom(1, 1 << m.ca)
                    .times(pe)
                    .holding(Role::Thresholds),
            );
        } else {
            v.push(Memory::rom(m.ob, 1 << m.ca).times(pe));
        }
        v
    }
    /// The LUT4 and DFF formula with coefficients `lut` and `dff`; `pipe`: the PEs'
    /// popcount pipeline flip-flops.
    pub fn logic(&self, lut: &[f64; 9], dff: &[f64; 8], ms: &[Memory], pipe: usize) -> Formula {
        let m = &self.g;
        let pe = self.pe as f64;
        let lanes = pe * (m.simd * m.ib) as f64;
        // weights in a 2- or 4-word ROM are nearly constants, which yosys folds into
        // the XNOR/adder lanes; from 8 words on they are a ROM of their own
        let (deep, four, two) = match m.wa {
            0 | 1 => (0.0, 0.0, lanes),
            2 => (0.0, lanes, 0.0),
            _ => (lanes, 0.0, 0.0),
        };
        let weights = mem_sum(ms, |x| x.role == Role::Weights);
        let thr = mem_sum(ms, |x| x.role == Role::Thresholds);
        let other = mem_sum(ms, |x| x.role == Role::Other && x.kind == MemKind::Ram);
        // banked weights: a 2:1 mux per bank boundary and bit (WeightMemory)
        let banks = weight_banks(m.simd, m.wa) as f64;
        let romw = if m.wa > 2 {
            weights.0 + pe * m.simd as f64 * (banks - 1.0)
        } else {
            0.0
        };
        let pa = pe * m.a as f64;
        let kthr = if self.threshold.is_some() {
            pe * (m.k * m.u) as f64
        } else {
            0.0
        };
        let fl = [1.0, pe, deep, four, two, pa, romw, thr.0, other.0];
        // one neuron fold: each threshold unit compares with a constant (measured with
        // one threshold; the formula has no term per threshold to correct beyond)
        let constant = if self.constant_thresholds() == Some(1) {
            CONST_COMPARE_LUT * pe
        } else {
            0.0
        };
        let fd = [
            1.0,
            pa,
            pe * crate::address_bits(m.simd + 1) as f64,
            weights.1 + thr.1,
            other.1,
            (m.iw + m.ow) as f64,
            kthr,
            pe * (m.simd + pipe) as f64,
        ];
        // no vector buffer: no mux between it and the input register
        let direct = if vector_buffers(self.nf(), self.sf()) == 0 {
            m.iw as f64
        } else {
            0.0
        };
        (dot(lut, &fl) - constant - direct, dot(dff, &fd))
    }
    /// The model tensor the engine writes: the fused threshold's, else the layer's.
    pub fn carries(&self) -> Carries {
        Carries::Layer(self.threshold.unwrap_or(self.layer))
    }
}

/// An [`Mvtu`] in a design (binary inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct MvtuSpec(pub MacSpec);

impl MvtuSpec {
    /// The engine of binary-input MAC layer `layer` of `net`, `threshold` fused, at
    /// `fold`, reading beats of `in_width` bits (with the pad flag when `pad_flag`).
    pub fn new(
        net: &Network,
        layer: usize,
        threshold: Option<usize>,
        fold: Fold,
        in_width: usize,
        pad_flag: bool,
    ) -> MvtuSpec {
        let g = mvtu_generics(net, layer, threshold, fold, pad_flag);
        MvtuSpec(MacSpec::new(net, layer, threshold, fold, in_width, &g))
    }
}

impl EngineSpec for MvtuSpec {
    fn timing(&self) -> Box<dyn StreamTiming> {
        self.0.timing(PE_LATENCY)
    }
    fn name(&self) -> &'static str {
        if self.0.spram {
            "mvtu-spram"
        } else {
            "mvtu"
        }
    }
    fn emitter(&self) -> &'static str {
        if self.0.spram {
            crate::engines::mvtu_spram::EMITTER
        } else {
            concat!(module_path!(), "::emit")
        }
    }
    fn generics(&self) -> Vec<usize> {
        self.0.g.to_vec(false)
    }
    fn cycles(&self) -> u64 {
        self.0.cycles()
    }
    fn latency(&self) -> u64 {
        self.0.latency(PE_LATENCY)
    }
    fn span(&self, input: Span, beats: u64) -> Span {
        self.0.span(PE_LATENCY, input, beats)
    }
    fn ready_after_reset(&self) -> u64 {
        reset_drain(PE_LATENCY)
    }
    fn memory_bits(&self) -> u64 {
        self.0.memory_bits()
    }
    fn memories(&self) -> Vec<Memory> {
        self.0.memories()
    }
    fn logic(&self, ms: &[Memory], _io: f64) -> Formula {
        let late = self.0.late;
        let (lut, dff) = self.0.logic(
            &MVTU_LUT,
            &MVTU_DFF,
            ms,
            popcount_pipe_dff(self.0.g.simd, late),
        );
        (lut - LATE_CUT_LUT_PER_LANE * self.0.late_lanes(), dff)
    }
    fn acc_bits(&self) -> Option<usize> {
        Some(self.0.g.a)
    }
    fn constant_thresholds(&self) -> Option<usize> {
        self.0.constant_thresholds()
    }
    fn ecp5_lut_saving(&self) -> f64 {
        ECP5_LATE_CUT_LUT_PER_LANE * self.0.late_lanes()
    }
    fn carries(&self) -> Carries {
        self.0.carries()
    }
}

/// The const generics of [`Mvtu`] for MAC layer `layer` (binary input):
/// `[SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW]`. With the padding flag the PEs
/// count in lanes (a padded beat adds SIMD): one accumulator bit more, so A = Y.
pub fn mvtu_generics(
    net: &Network,
    layer: usize,
    threshold: Option<usize>,
    fold: Fold,
    pad_flag: bool,
) -> Vec<usize> {
    let (out, _, n, _) = mac_dims(net, layer).expect("a dense or conv layer");
    let (simd, pe) = (fold.simd, fold.pe);
    let (nf, sf) = (out / pe, n / simd);
    let y = crate::bits_to_hold(n as u64) + 1;
    let a = if pad_flag { y } else { y - 1 };
    let (k, b, ob) = match threshold {
        Some(t) => {
            let Op::Threshold { bits, .. } = net.layers[t].op else {
                unreachable!("fused layer is a threshold")
            };
            let b = bits as usize;
            ((1usize << b) - 1, b, b)
        }
        None => (1, 1, Elem::of(net.info()[layer].kind).bits),
    };
    vec![
        simd,
        simd + pad_flag as usize,
        crate::bits_to_hold(simd as u64),
        a,
        y,
        crate::address_bits(nf * sf),
        crate::address_bits(sf),
        crate::address_bits(nf),
        y + 1,
        k,
        b,
        ob,
        pe * ob,
    ]
}

/// Emitter of engine `i` of `d` (an [`MvtuSpec`]).
pub fn emit<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let g = [SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW];
    let (e, MvtuSpec(s)) = engine::<MvtuSpec>(d, i, &g);
    let b = Mvtu::<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
        net,
        s.layer,
        s.threshold,
    )
    .with_late_cuts(s.late);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::test_nets::{frame, input, input_beats, layer_net, output_beats, Feed};
    use super::*;
    use crate::stream::testbench::{check_engine, single_stream_dut};
    use crate::synth::ice40_stats;
    use bnnforge_model::network::Shape;
    use rand::Rng;

    single_stream_dut!(
        Mvtu<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>,
        IW,
        OW,
        [const SIMD: usize, const IW: usize, const P: usize, const A: usize, const Y: usize,
         const WA: usize, const BA: usize, const CA: usize, const U: usize, const K: usize,
         const B: usize, const OB: usize, const OW: usize]
    );

    struct Case {
        net: Network,
        threshold: bool,
        frames: Vec<Vec<i64>>,
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        rng: &mut impl Rng,
        ishape: Shape,
        out: usize,
        conv: Option<(usize, usize, usize, i8)>,
        bias: Option<i64>,
        tbits: Option<u32>,
        frames: usize,
    ) -> Case {
        let feed = Feed::plain(input(ishape, 1, false));
        let frames: Vec<Vec<i64>> = (0..frames).map(|_| frame(rng, &feed.input)).collect();
        let net = layer_net(rng, feed, out, conv, bias, tbits, &frames);
        Case {
            net,
            threshold: tbits.is_some(),
            frames,
        }
    }

    /// rust-hdl simulation and Icarus against the model, with stalls; then a full-rate
    /// run measuring cycles per frame and latency.
    fn run<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    >(
        rng: &mut impl Rng,
        c: &Case,
        verilog: bool,
    ) {
        let build = || {
            let mut u = Mvtu::<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
                &c.net,
                0,
                c.threshold.then_some(1),
            );
            u.connect_all();
            u
        };
        let uut = build();
        let info = uut.info();
        if !c.threshold {
            assert_eq!(
                c.net.output_kind().width().0 as usize,
                OB,
                "test setup: OB is not the layer's width"
            );
        }
        let (pe, flag) = (info.pe, IW == SIMD + 1);
        let beats: Vec<u128> = c
            .frames
            .iter()
            .flat_map(|f| input_beats(&c.net, 0, f, SIMD, flag))
            .collect();
        let want: Vec<u128> = c
            .frames
            .iter()
            .flat_map(|f| output_beats(&c.net, f, pe, OB))
            .collect();
        let label = format!("Mvtu {info:?}");
        let timing = (uut.cycles_per_frame(), uut.latency());
        let name = format!("mvtu_{}_{}_{}", info.n, info.out, info.pe);
        let icarus = verilog.then_some(name.as_str());
        let frames = c.frames.len();
        let fold = Fold { pe, simd: SIMD };
        let spec = MvtuSpec::new(&c.net, 0, c.threshold.then_some(1), fold, IW, flag);
        assert_eq!(
            (spec.0.nf(), spec.0.sf(), spec.0.threshold.is_some()),
            (info.nf, info.sf, info.threshold),
            "test setup: the spec is another engine"
        );
        let model = || spec.timing();
        let full = check_engine(
            &label,
            build,
            &beats,
            &want,
            frames,
            timing,
            rng,
            icarus,
            Some(&model),
        );
        full.assert_cycles_per_frame(frames, timing.0, &label);
    }

    #[test]
    fn dense_and_conv_match_the_model_with_stalls() {
        let mut rng = bnnforge_model::random::test_rng("mvtu");
        let r = &mut rng;
        // <SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
        // dense 32 → 8, PE 2, SIMD 8, 1-bit thresholds, bias: SF 4, NF 4
        let c = case(r, Shape::vector(32), 8, None, Some(5), Some(1), 4);
        run::<8, 8, 4, 6, 7, 4, 2, 2, 8, 1, 1, 1, 2>(r, &c, true);
        // dense on a map [4, 3, 3] (columns permuted to HWC) → 6, PE 3, SIMD 4, raw + bias
        let c = case(r, Shape::map(4, 3, 3), 6, None, Some(20), None, 3);
        run::<4, 4, 3, 6, 7, 5, 4, 1, 8, 1, 1, 7, 21>(r, &c, true);
        // dense 64 → 4, PE 4 (NF 1: no vector buffer), SIMD 16, 2-bit thresholds
        let c = case(r, Shape::vector(64), 4, None, Some(3), Some(2), 4);
        run::<16, 16, 5, 7, 8, 2, 2, 1, 9, 3, 2, 2, 8>(r, &c, true);
        // SF 1: dense 8 → 16, PE 2, SIMD 8 (every beat ends a vector; x1 holds it)
        let c = case(r, Shape::vector(8), 16, None, None, Some(1), 4);
        run::<8, 8, 4, 4, 5, 3, 1, 3, 6, 1, 1, 1, 2>(r, &c, true);
        // conv [4, 5, 5] k3 s1 p1 pad 0 (padding flag) → 4, PE 2, SIMD 4, thresholds
        let c = case(
            r,
            Shape::map(4, 5, 5),
            4,
            Some((3, 1, 1, 0)),
            Some(2),
            Some(1),
            2,
        );
        run::<4, 5, 3, 7, 7, 5, 4, 1, 8, 1, 1, 1, 2>(r, &c, true);
        // odd SIMD with the padding flag: conv [3, 5, 5] k3 s1 p1 pad 0 → 4, PE 2,
        // SIMD 3 (n 27, A = Y = 6), thresholds
        let c = case(
            r,
            Shape::map(3, 5, 5),
            4,
            Some((3, 1, 1, 0)),
            Some(3),
            Some(1),
            2,
        );
        run::<3, 4, 2, 6, 6, 5, 4, 1, 7, 1, 1, 1, 2>(r, &c, true);
        // conv [5, 4, 4] k3 s1 p2 pad 0 (whole rows of padded positions) → 6, PE 3,
        // SIMD 5 (n 45, A = Y = 7), raw + bias
        let c = case(
            r,
            Shape::map(5, 4, 4),
            6,
            Some((3, 1, 2, 0)),
            Some(10),
            None,
            2,
        );
        run::<5, 6, 3, 7, 7, 5, 4, 1, 8, 1, 1, 7, 21>(r, &c, true);
        // conv [2, 5, 5] k3 s2 p1 pad -1 → 6, PE 3, SIMD 2, raw + bias
        let c = case(
            r,
            Shape::map(2, 5, 5),
            6,
            Some((3, 2, 1, -1)),
            Some(10),
            None,
            3,
        );
        run::<2, 2, 2, 5, 6, 5, 4, 1, 7, 1, 1, 6, 18>(r, &c, false);
    }

    #[test]
    fn tfc_layer_784_to_64_at_pe_simd_16() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_tfc");
        let r = &mut rng;
        let c = case(r, Shape::map(1, 28, 28), 64, None, None, Some(1), 3);
        run::<16, 16, 5, 10, 11, 8, 6, 2, 12, 1, 1, 1, 16>(r, &c, true);
        let mut u =
            Mvtu::<16, 16, 5, 10, 11, 8, 6, 2, 12, 1, 1, 1, 16>::from_network(&c.net, 0, Some(1));
        u.connect_all();
        let v = generate_verilog(&u);
        let s = ice40_stats("mvtu_tfc", &v, "top").unwrap();
        println!("Mvtu 784 -> 64, PE = SIMD = 16, 1-bit thresholds, on synth_ice40: {s}");
        assert!(s.bram >= 16, "weights not in block RAM: {s}");
    }

    #[test]
    fn synthesises_clean_in_raw_and_padding_modes() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_synth");
        let r = &mut rng;
        let c = case(
            r,
            Shape::map(4, 5, 5),
            4,
            Some((3, 1, 1, 0)),
            Some(2),
            Some(1),
            1,
        );
        let mut u = Mvtu::<4, 5, 3, 7, 7, 5, 4, 1, 8, 1, 1, 1, 2>::from_network(&c.net, 0, Some(1));
        u.connect_all();
        let s = ice40_stats("mvtu_pad", &generate_verilog(&u), "top").unwrap();
        println!("Mvtu conv 4x5x5 k3 pad-flag -> 4, PE 2, SIMD 4: {s}");
        let c = case(
            r,
            Shape::map(2, 5, 5),
            6,
            Some((3, 2, 1, -1)),
            Some(10),
            None,
            1,
        );
        let mut u = Mvtu::<2, 2, 2, 5, 6, 5, 4, 1, 7, 1, 1, 6, 18>::from_network(&c.net, 0, None);
        u.connect_all();
        let s = ice40_stats("mvtu_raw", &generate_verilog(&u), "top").unwrap();
        println!("Mvtu conv 2x5x5 k3 s2 raw -> 6, PE 3, SIMD 2: {s}");
    }

    #[test]
    #[should_panic(expected = "A must be clog2(2n + 1) in padding mode")]
    fn rejects_a_plain_accumulator_with_the_padding_flag() {
        let w = vec![vec![1i8; 3]; 2];
        let _ =
            Mvtu::<3, 4, 2, 2, 3, 1, 1, 1, 4, 1, 1, 1, 2>::new(&w, &[0, 0], &MvtuOutput::Raw, 1);
    }
}
