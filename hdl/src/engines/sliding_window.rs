//! `SlidingWindow<IW, OW, CW>`: the line buffer and window generator in front of a conv.
//! In: a `[C, H, W]` map in H, W, C order, L lanes of B bits. Out: for each output pixel
//! in raster order its k×k patch in (ky, kx, c) order, SIMD lanes per beat (one kernel
//! position per beat), any stride and padding (p ≥ k too: windows wholly in the padding
//! are all pad words). Padded positions read 0 (integers), −1 or +1 (binary); for binary
//! `pad_value` 0 the data lanes are 0 and a top *pad flag* bit is 1. Buffer: R rows of
//! W·C/SIMD words in one [`LineRam`]; memory R·W·C·B bits (+ R·W·C/SIMD flag bits).
//! Structure and flow control: `hdl/DESIGN.md`, "Sliding window".
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`,
//! `out_data: Bits<OW>`.
//!
//! Generics (checked by `new`): `IW` = L·B; `OW` = SIMD·B, + 1 with the pad flag
//! ([`pad_flag`]); `CW` (deduced) = [`WindowConfig::counter_bits`], the width of every
//! counter, constant, adder and RAM address (wider works too), at most [`MAX_CW`].
//! Run-time ([`WindowConfig`]): B, L, SIMD (a multiple of L, dividing C), C, H, W, k, s,
//! p, pad value, binary; an output beat is at most [`MAX_BEAT`] bits ([`max_simd`]).
//!
//! Cycles per frame: between max(H·W·C/L, OH·OW·k²·C/SIMD) and their sum, stepped cycle
//! by cycle by [`WindowConfig::cycles_per_frame`] (the max when the writer stays ahead
//! across frames). Latency: the input beats up to and including pixel
//! (min(H−1, k−1−p), min(W−1, k−1−p)), + 3; 2 when p ≥ k (no input awaited).

use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::compile::resources::{dot, mem_sum, Formula, Memory};
use crate::compile::timing::StreamTiming;
use crate::engines::{Carries, EngineSpec, Span};
use bnnforge_model::Network;
use rust_hdl::prelude::*;

/// The widest counter a window supports (its constants are built from `u64`s and its
/// modular column offset needs 2^CW).
pub const MAX_CW: usize = 32;
/// Shift amounts of the gearbox (at most [`MAX_BEAT`]).
type Sh = Bits<8>;

/// The widest output beat of a window: its pad word is built from a `u64`.
pub const MAX_BEAT: usize = 64;
/// Above this many beats per frame (in + out) the cycle model takes max(in, out)
/// instead of stepping the flow-control rules (a few frames of that many steps).
const STEPPED_BEATS: u64 = 1 << 20;

/// Whether a window's output beats carry the pad flag on top: binary input, padding,
/// value 0 (the PE must tell a padded position from a −1).
pub fn pad_flag(binary: bool, padding: usize, pad_value: i8) -> bool {
    binary && padding > 0 && pad_value == 0
}

/// The largest SIMD of a window on `bits`-bit elements (`flag`: with the pad flag bit),
/// so that its output beat fits [`MAX_BEAT`]. The folding keeps convs and pools within it.
pub fn max_simd(bits: usize, flag: bool) -> usize {
    (MAX_BEAT - flag as usize) / bits
}

/// What a [`SlidingWindow`] is built for (all run-time values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// Bits per element (1 for binary).
    pub bits: usize,
    /// Lanes per input beat (divides `channels`).
    pub in_lanes: usize,
    /// Lanes per output beat (divides `channels`, a multiple of `in_lanes`).
    pub simd: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// −1, 0 or +1; only used for binary inputs (integers pad with 0).
    pub pad_value: i8,
    /// Binary (±1 as one bit) input.
    pub binary: bool,
}

impl WindowConfig {
    /// Whether output beats carry the pad flag on top (binary input, padding, value 0).
    pub fn pad_flag(&self) -> bool {
        pad_flag(self.binary, self.padding, self.pad_value)
    }
    /// Input beat width L·B.
    pub fn in_width(&self) -> usize {
        self.in_lanes * self.bits
    }
    /// Output beat width SIMD·B, plus the flag bit.
    pub fn out_width(&self) -> usize {
        self.simd * self.bits + self.pad_flag() as usize
    }
    /// Output height and width: floor((H + 2p − k)/s) + 1.
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.height + 2 * self.padding - self.kernel) / self.stride + 1,
            (self.width + 2 * self.padding - self.kernel) / self.stride + 1,
        )
    }
    /// Rows held in the line buffer: R = min(k + s, 2H − 1 − T), T = the reader's
    /// highest top row, min(H − 1, max(0, H + p − k)) (clamped to the last row while
    /// the windows lie wholly in the bottom padding, p ≥ k; 0 when the map is shorter
    /// than the kernel's reach, H + p < k). The second bound (only active for maps
    /// hardly taller than the kernel) keeps the writer at most one frame ahead of the
    /// reader, never able to finish that next frame.
    pub fn rows(&self) -> usize {
        let (h, k, p) = (self.height, self.kernel, self.padding);
        let top = (h + p).saturating_sub(k).min(h - 1);
        (k + self.stride).min(2 * h - 1 - top)
    }
    /// RAM words: rows · W · C/SIMD.
    pub fn words(&self) -> usize {
        self.rows() * self.width * (self.channels / self.simd)
    }
    /// Memory bits of the line buffer (data + flag bit when present).
    pub fn memory_bits(&self) -> usize {
        self.words() * self.out_width()
    }
    /// The largest value any run-time counter, constant, RAM address or intermediate
    /// sum of the window holds (all in padded coordinates, column p of the map is 0… of
    /// the padded one; LY, LX = the last output row/column start, (OH − 1)·s, (OW − 1)·s):
    /// - RAM words (`wa + 1`, `rb + W·C/SIMD` before the wrap);
    /// - row bases `rrow + (s mod R)·W·C/SIMD`, `rtop + (H mod R)·W·C/SIMD` before the
    ///   wrap (bases are multiples of W·C/SIMD below the words);
    /// - the writer's row `wyb + H` (compare in the next frame, wyb ≤ H − 1 + p) and
    ///   the reader's `top + R` (top = max(oys, p));
    /// - `oys + s`, `oxs + s`, the needed row/column `oys + k − 1`, `oxs + k − 1` (also the
    ///   bounds of `iyb`, `ixb`), `H + p`, `W + p`;
    /// - the kernel-row offset `koff` ≤ k·C/SIMD and the step `s·C/SIMD`;
    /// - the gearbox's SIMD/L.
    ///
    /// The column offset `coff` (negative at the left padding) and the read address
    /// `rb + coff + koff` are computed modulo 2^CW: a real (unpadded) address is below
    /// the words, so the wrap never matters.
    pub fn counter_max(&self) -> usize {
        let (h, w, k, s, p) = (
            self.height,
            self.width,
            self.kernel,
            self.stride,
            self.padding,
        );
        let cg = self.channels / self.simd;
        let (oh, ow) = self.out_hw();
        let r = self.rows();
        let wcg = w * cg;
        let (ly, lx) = ((oh - 1) * s, (ow - 1) * s);
        [
            self.words(),
            (r - 1 + (s % r).max(h % r)) * wcg,
            h - 1 + p + h,
            ly.max(p) + r,
            ly + s,
            lx + s,
            ly + k - 1,
            lx + k - 1,
            h + p,
            w + p,
            k * cg,
            s * cg,
            self.simd / self.in_lanes,
        ]
        .into_iter()
        .max()
        .unwrap()
    }
    /// The width of the window's counters, its const generic `CW`: the bits of
    /// [`Self::counter_max`].
    pub fn counter_bits(&self) -> usize {
        crate::bits_to_hold((self.counter_max()) as u64)
    }
    pub fn in_beats(&self) -> u64 {
        (self.height * self.width * self.channels / self.in_lanes) as u64
    }
    pub fn out_beats(&self) -> u64 {
        let (oh, ow) = self.out_hw();
        (oh * ow * self.kernel * self.kernel * self.channels / self.simd) as u64
    }
    /// The frame interval of the engine's cycle model ([`WindowTiming`]), stepped cycle
    /// by cycle at full rate (`stepped_cycles_per_frame`). It is max(input beats,
    /// output beats) when the writer can stay ahead of the reader across the frame
    /// boundary, but not on maps of few rows: a 1×4×3 map under a 2×2 kernel with 3
    /// line-buffer rows takes 26 cycles, not 24, because the next frame's second row
    /// waits for the slot of the current frame's last output row. Huge maps (more than
    /// `STEPPED_BEATS` beats) use max(in, out), which they meet.
    pub fn cycles_per_frame(&self) -> u64 {
        if self.in_beats() + self.out_beats() > STEPPED_BEATS {
            self.in_beats().max(self.out_beats())
        } else {
            self.stepped_cycles_per_frame()
        }
    }
    /// The steady-state frame interval of the window's cycle model ([`WindowTiming`])
    /// at full rate (every input beat offered, the output always ready): the cycles
    /// between the first output beats of the last two of 6 frames. About 6 · (in + out)
    /// steps.
    fn stepped_cycles_per_frame(&self) -> u64 {
        let mut m = WindowTiming::new(self);
        let out_beats = self.out_beats();
        let limit = 8 * (self.in_beats() + out_beats) + 100;
        let (mut given, mut starts) = (0u64, vec![]);
        let mut cycle = 0u64;
        while starts.len() < 6 {
            assert!(
                cycle < limit,
                "SlidingWindow: the cycle model stalls for {self:?}"
            );
            let (take, give) = (m.in_ready(0), m.out_valid(0));
            if give {
                if given % out_beats == 0 {
                    starts.push(cycle);
                }
                given += 1;
            }
            m.clock(&[take], &[give]);
            cycle += 1;
        }
        starts[5] - starts[4]
    }
    /// With p ≥ k, the output beats from the first output row whose windows reach the
    /// last input row to the end of the frame: they may all follow the last input beat
    /// (rows of windows wholly in the bottom padding), for the design's latency bound.
    /// 0 when p < k.
    pub fn drain_beats(&self) -> u64 {
        if self.padding < self.kernel {
            return 0;
        }
        let (oh, ow) = self.out_hw();
        let last_row = self.height - 1 + self.padding;
        let first = (0..oh)
            .find(|oy| oy * self.stride + self.kernel > last_row)
            .unwrap_or(oh - 1);
        ((oh - first) * ow * self.kernel * self.kernel * self.channels / self.simd) as u64
    }
    /// First input beat to first output beat, without stalls: the input beats up to
    /// the first window's last real pixel, plus 2. With p ≥ k the first window lies
    /// wholly in the padding and needs no input beat.
    pub fn latency(&self) -> u64 {
        let needed = if self.padding >= self.kernel {
            0
        } else {
            let ny = self.height.min(self.kernel - self.padding) - 1;
            let nx = self.width.min(self.kernel - self.padding) - 1;
            (ny * self.width + nx + 1) * self.channels / self.in_lanes
        };
        needed as u64 + 2
    }
}

/// A simple dual-port RAM (one write port, one registered read port, one clock) whose
/// depth is a run-time value; the Verilog is that of rust-hdl's `RAM` (which yosys maps
/// to block RAM), but `reg [D-1:0] mem[0:depth-1]` is declared with the real depth
/// instead of 2^address-bits, so the address width need not be a const generic.
/// Out-of-range reads return an undefined word (0 in the rust-hdl simulation).
#[derive(LogicBlock)]
pub struct LineRam<const D: usize, const AW: usize> {
    pub clock: Signal<In, Clock>,
    pub read_address: Signal<In, Bits<AW>>,
    pub read_data: Signal<Out, Bits<D>>,
    pub write_address: Signal<In, Bits<AW>>,
    pub write_data: Signal<In, Bits<D>>,
    pub write_enable: Signal<In, Bit>,
    _mem: Vec<Bits<D>>,
}

impl<const D: usize, const AW: usize> LineRam<D, AW> {
    pub fn new(depth: usize) -> Self {
        assert!(
            AW <= MAX_CW && (1..=1 << AW).contains(&depth),
            "LineRam: depth {depth} not in 1..=2^{AW} (AW = {AW} address bits)"
        );
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            write_enable: Default::default(),
            _mem: vec![Bits::default(); depth],
        }
    }
}

impl<const D: usize, const AW: usize> Logic for LineRam<D, AW> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let a = self.read_address.val().to_u64() as usize;
            self.read_data.next = self._mem.get(a).copied().unwrap_or_default();
            if self.write_enable.val() {
                let w = self.write_address.val().to_u64() as usize;
                if w < self._mem.len() {
                    self._mem[w] = self.write_data.val();
                }
            }
        }
    }
    fn connect(&mut self) {
        self.read_data.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
reg [{d}:0] mem[0:{last}];

always @(posedge clock) begin
   read_data <= mem[read_address];
end

always @(posedge clock) begin
   if (write_enable) begin
      mem[write_address] <= write_data;
   end
end
",
            d = D - 1,
            last = self._mem.len() - 1
        ))
    }
}

/// A 3-entry output queue (registers): `out_data`/`out_valid` come straight from
/// flip-flops. `push` must only be asserted when `count` + (beats in flight) allowed it;
/// pushing into a full queue is a bug of the owner (the entry is lost).
#[derive(LogicBlock, Default)]
pub struct OutQueue<const W: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub push: Signal<In, Bit>,
    pub push_data: Signal<In, Bits<W>>,
    pub out_ready: Signal<In, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<W>>,
    /// Entries held (0..=3).
    pub count: Signal<Out, Bits<2>>,
    e0: DFF<Bits<W>>,
    e1: DFF<Bits<W>>,
    e2: DFF<Bits<W>>,
    n: DFF<Bits<2>>,
    pop: Signal<Local, Bit>,
    idx: Signal<Local, Bits<2>>,
}

impl<const W: usize> Logic for OutQueue<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, e0, e1, e2, n);
        self.pop.next = (self.n.q.val() != 0) & self.out_ready.val();
        self.idx.next = self.n.q.val();
        if self.pop.val() {
            self.e0.d.next = self.e1.q.val();
            self.e1.d.next = self.e2.q.val();
            self.idx.next = self.n.q.val() - 1;
        }
        if self.push.val() {
            if self.idx.val() == 0 {
                self.e0.d.next = self.push_data.val();
            }
            if self.idx.val() == 1 {
                self.e1.d.next = self.push_data.val();
            }
            if self.idx.val() == 2 {
                self.e2.d.next = self.push_data.val();
            }
            self.n.d.next = self.idx.val() + 1;
        } else {
            self.n.d.next = self.idx.val();
        }
        if self.reset.val() {
            self.n.d.next = 0.into();
        }
        self.out_valid.next = self.n.q.val() != 0;
        self.out_data.next = self.e0.q.val();
        self.count.next = self.n.q.val();
    }
}

/// Line buffer and window generator (see the module documentation).
#[derive(LogicBlock)]
pub struct SlidingWindow<const IW: usize, const OW: usize, const CW: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    ram: LineRam<OW, CW>,
    queue: OutQueue<OW>,
    // writer
    gi: DFF<Bits<CW>>,
    wcg: DFF<Bits<CW>>,
    wxb: DFF<Bits<CW>>,
    wyb: DFF<Bits<CW>>,
    wa: DFF<Bits<CW>>,
    gacc: DFF<Bits<OW>>,
    fd: DFF<Bits<2>>,
    // reader
    cg: DFF<Bits<CW>>,
    kx: DFF<Bits<CW>>,
    ky: DFF<Bits<CW>>,
    oxs: DFF<Bits<CW>>,
    oys: DFF<Bits<CW>>,
    ixb: DFF<Bits<CW>>,
    iyb: DFF<Bits<CW>>,
    koff: DFF<Bits<CW>>,
    coff: DFF<Bits<CW>>,
    rb: DFF<Bits<CW>>,
    rrow: DFF<Bits<CW>>,
    rtop: DFF<Bits<CW>>,
    v1: DFF<Bit>,
    pad1: DFF<Bit>,
    // combinational
    wok: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    wword: Signal<Local, Bits<OW>>,
    wwrap: Signal<Local, Bit>,
    rwrap: Signal<Local, Bit>,
    top: Signal<Local, Bits<CW>>,
    ny: Signal<Local, Bits<CW>>,
    nx: Signal<Local, Bits<CW>>,
    rdy: Signal<Local, Bit>,
    occ: Signal<Local, Bits<2>>,
    go: Signal<Local, Bit>,
    pad: Signal<Local, Bit>,
    rb_n: Signal<Local, Bits<CW>>,
    rrow_n: Signal<Local, Bits<CW>>,
    rtop_n: Signal<Local, Bits<CW>>,
    oxs_n: Signal<Local, Bits<CW>>,
    oys_n: Signal<Local, Bits<CW>>,
    // run-time constants
    c_iw: Constant<Sh>,
    c_sh: Constant<Sh>,
    c_glast: Constant<Bits<CW>>,
    c_cgl: Constant<Bits<CW>>,
    c_p: Constant<Bits<CW>>,
    c_wlb: Constant<Bits<CW>>,
    c_hlb: Constant<Bits<CW>>,
    c_wp: Constant<Bits<CW>>,
    c_hp: Constant<Bits<CW>>,
    c_h: Constant<Bits<CW>>,
    c_r: Constant<Bits<CW>>,
    c_kl: Constant<Bits<CW>>,
    c_s: Constant<Bits<CW>>,
    c_scg: Constant<Bits<CW>>,
    c_negpcg: Constant<Bits<CW>>,
    c_wcg: Constant<Bits<CW>>,
    c_words: Constant<Bits<CW>>,
    c_wlast: Constant<Bits<CW>>,
    c_swcg: Constant<Bits<CW>>,
    c_hwcg: Constant<Bits<CW>>,
    c_rtop0: Constant<Bits<CW>>,
    c_lastx: Constant<Bits<CW>>,
    c_lasty: Constant<Bits<CW>>,
    c_padw: Constant<Bits<OW>>,
    _cfg: WindowConfig,
}

impl<const IW: usize, const OW: usize, const CW: usize> SlidingWindow<IW, OW, CW> {
    /// Build the window generator; panics (naming the block) on any inconsistent
    /// parameter.
    pub fn new(cfg: &WindowConfig) -> Self {
        let c = cfg;
        let name = "SlidingWindow";
        assert!(c.bits >= 1, "{name}: bits must be at least 1");
        assert!(
            !c.binary || c.bits == 1,
            "{name}: binary elements are 1 bit"
        );
        assert!(c.in_lanes >= 1 && c.simd >= 1, "{name}: lanes must be >= 1");
        assert!(
            c.channels % c.in_lanes == 0,
            "{name}: input lanes {} do not divide C = {}",
            c.in_lanes,
            c.channels
        );
        assert!(
            c.channels % c.simd == 0,
            "{name}: SIMD {} does not divide C = {}",
            c.simd,
            c.channels
        );
        assert!(
            c.simd % c.in_lanes == 0,
            "{name}: SIMD {} must be a multiple of the input lanes {}",
            c.simd,
            c.in_lanes
        );
        assert_eq!(IW, c.in_width(), "{name}: IW must be in_lanes * bits");
        assert_eq!(
            OW,
            c.out_width(),
            "{name}: OW must be simd * bits (+1 pad flag for binary, padding, pad_value 0)"
        );
        assert!(
            c.simd <= max_simd(c.bits, c.pad_flag()),
            "{name}: OW = {OW} > {MAX_BEAT} not supported"
        );
        assert!(
            [-1, 0, 1].contains(&c.pad_value),
            "{name}: pad_value must be -1, 0 or 1"
        );
        assert!(
            c.kernel >= 1 && c.stride >= 1,
            "{name}: kernel and stride must be >= 1"
        );
        assert!(
            c.height + 2 * c.padding >= c.kernel && c.width + 2 * c.padding >= c.kernel,
            "{name}: kernel larger than the padded input"
        );
        assert!(
            CW <= MAX_CW && CW >= c.counter_bits(),
            "{name}: CW = {CW} counter bits, but this configuration needs {} (largest \
             counter value {}; at most {MAX_CW})",
            c.counter_bits(),
            c.counter_max()
        );
        let cg = c.channels / c.simd;
        let (oh, ow) = c.out_hw();
        let r = c.rows();
        let wcg = c.width * cg;
        let words = r * wcg;
        let m = 1u64 << CW;
        let k = |v: usize| Constant::new(Bits::<CW>::from(v as u64));
        let sh = |v: usize| Constant::new(Sh::from(v as u64));
        let dbits = c.simd * c.bits;
        let mut padw: u64 = 0;
        if c.binary && c.pad_value == 1 {
            padw = if dbits >= 64 {
                u64::MAX
            } else {
                (1 << dbits) - 1
            };
        }
        if c.pad_flag() {
            padw |= 1 << dbits;
        }
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            ram: LineRam::new(words),
            queue: Default::default(),
            gi: Default::default(),
            wcg: Default::default(),
            wxb: Default::default(),
            wyb: Default::default(),
            wa: Default::default(),
            gacc: Default::default(),
            fd: Default::default(),
            cg: Default::default(),
            kx: Default::default(),
            ky: Default::default(),
            oxs: Default::default(),
            oys: Default::default(),
            ixb: Default::default(),
            iyb: Default::default(),
            koff: Default::default(),
            coff: Default::default(),
            rb: Default::default(),
            rrow: Default::default(),
            rtop: Default::default(),
            v1: Default::default(),
            pad1: Default::default(),
            wok: Default::default(),
            take: Default::default(),
            wword: Default::default(),
            wwrap: Default::default(),
            rwrap: Default::default(),
            top: Default::default(),
            ny: Default::default(),
            nx: Default::default(),
            rdy: Default::default(),
            occ: Default::default(),
            go: Default::default(),
            pad: Default::default(),
            rb_n: Default::default(),
            rrow_n: Default::default(),
            rtop_n: Default::default(),
            oxs_n: Default::default(),
            oys_n: Default::default(),
            c_iw: sh(IW),
            c_sh: sh(dbits - IW),
            c_glast: k(c.simd / c.in_lanes - 1),
            c_cgl: k(cg - 1),
            c_p: k(c.padding),
            c_wlb: k(c.width - 1 + c.padding),
            c_hlb: k(c.height - 1 + c.padding),
            c_wp: k(c.width + c.padding),
            c_hp: k(c.height + c.padding),
            c_h: k(c.height),
            c_r: k(r),
            c_kl: k(c.kernel - 1),
            c_s: k(c.stride),
            c_scg: k(c.stride * cg),
            c_negpcg: k(((m - (c.padding * cg) as u64) % m) as usize),
            c_wcg: k(wcg),
            c_words: k(words),
            c_wlast: k(words - 1),
            c_swcg: k((c.stride % r) * wcg),
            c_hwcg: k((c.height % r) * wcg),
            c_rtop0: k(((r - c.padding % r) % r) * wcg),
            c_lastx: k((ow - 1) * c.stride),
            c_lasty: k((oh - 1) * c.stride),
            c_padw: Constant::new(padw.into()),
            _cfg: cfg.clone(),
        }
    }

    pub fn config(&self) -> &WindowConfig {
        &self._cfg
    }
    /// max(H·W·C/L, OH·OW·k²·C/SIMD).
    pub fn cycles_per_frame(&self) -> u64 {
        self._cfg.cycles_per_frame()
    }
    /// First input beat to first output beat (see the module documentation).
    pub fn latency(&self) -> u64 {
        self._cfg.latency()
    }
}

impl<const IW: usize, const OW: usize, const CW: usize> Logic for SlidingWindow<IW, OW, CW> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, gi, wcg, wxb, wyb, wa, gacc, fd, cg, kx, ky, oxs, oys, ixb, iyb, koff,
            coff, rb, rrow, rtop, v1, pad1
        );
        self.ram.clock.next = self.clock.val();
        self.queue.clock.next = self.clock.val();
        self.queue.reset.next = self.reset.val();
        self.queue.out_ready.next = self.out_ready.val();
        self.out_data.next = self.queue.out_data.val();
        self.out_valid.next = self.queue.out_valid.val();

        // ---- writer: may it take a beat? (registers only)
        self.top.next = self.oys.q.val();
        if self.oys.q.val() < self.c_p.val() {
            self.top.next = self.c_p.val();
        }
        // windows wholly in the bottom padding (p ≥ k) need no row of this frame
        if self.oys.q.val() > self.c_hlb.val() {
            self.top.next = self.c_hlb.val();
        }
        self.wok.next = false;
        if self.fd.q.val() == 0 {
            self.wok.next = true;
        }
        if self.fd.q.val() == 1 {
            if self.wyb.q.val() < self.top.val() + self.c_r.val() {
                self.wok.next = true;
            }
        }
        if self.fd.q.val() == 2 {
            if self.wyb.q.val() + self.c_h.val() < self.top.val() + self.c_r.val() {
                self.wok.next = true;
            }
        }
        self.in_ready.next = self.wok.val();
        self.take.next = self.in_valid.val() & self.wok.val();
        self.wword.next = (self.gacc.q.val() >> self.c_iw.val())
            | (bit_cast::<OW, IW>(self.in_data.val()) << self.c_sh.val());
        self.ram.write_data.next = self.wword.val();
        self.ram.write_address.next = self.wa.q.val();
        self.ram.write_enable.next = false;
        self.wwrap.next = false;
        if self.take.val() {
            self.gacc.d.next = self.wword.val();
            self.gi.d.next = self.gi.q.val() + 1;
            if self.gi.q.val() == self.c_glast.val() {
                self.gi.d.next = 0.into();
                self.ram.write_enable.next = true;
                self.wa.d.next = self.wa.q.val() + 1;
                if self.wa.q.val() == self.c_wlast.val() {
                    self.wa.d.next = 0.into();
                }
                self.wcg.d.next = self.wcg.q.val() + 1;
                if self.wcg.q.val() == self.c_cgl.val() {
                    self.wcg.d.next = 0.into();
                    self.wxb.d.next = self.wxb.q.val() + 1;
                    if self.wxb.q.val() == self.c_wlb.val() {
                        self.wxb.d.next = self.c_p.val();
                        self.wyb.d.next = self.wyb.q.val() + 1;
                        if self.wyb.q.val() == self.c_hlb.val() {
                            self.wyb.d.next = self.c_p.val();
                            self.wwrap.next = true;
                        }
                    }
                }
            }
        }

        // ---- reader: is the current output pixel's data complete?
        self.ny.next = self.oys.q.val() + self.c_kl.val();
        if self.ny.val() > self.c_hlb.val() {
            self.ny.next = self.c_hlb.val();
        }
        self.nx.next = self.oxs.q.val() + self.c_kl.val();
        if self.nx.val() > self.c_wlb.val() {
            self.nx.next = self.c_wlb.val();
        }
        self.rdy.next = false;
        if self.fd.q.val() == 2 {
            self.rdy.next = true;
        }
        if self.fd.q.val() == 1 {
            if self.wyb.q.val() > self.ny.val() {
                self.rdy.next = true;
            }
            if (self.wyb.q.val() == self.ny.val()) & (self.wxb.q.val() > self.nx.val()) {
                self.rdy.next = true;
            }
        }
        // room in the queue for this beat and the one in flight
        self.occ.next = self.queue.count.val();
        if self.v1.q.val() {
            self.occ.next = self.queue.count.val() + 1;
        }
        self.go.next = self.rdy.val() & (self.occ.val() <= 2) & !self.reset.val();
        self.pad.next = (self.iyb.q.val() < self.c_p.val())
            | (self.iyb.q.val() >= self.c_hp.val())
            | (self.ixb.q.val() < self.c_p.val())
            | (self.ixb.q.val() >= self.c_wp.val());
        self.ram.read_address.next = self.rb.q.val() + self.coff.q.val() + self.koff.q.val();
        self.v1.d.next = self.go.val();
        self.pad1.d.next = self.pad.val();
        // wrapped row bases
        self.rb_n.next = self.rb.q.val() + self.c_wcg.val();
        if self.rb_n.val() >= self.c_words.val() {
            self.rb_n.next = self.rb_n.val() - self.c_words.val();
        }
        self.rrow_n.next = self.rrow.q.val() + self.c_swcg.val();
        if self.rrow_n.val() >= self.c_words.val() {
            self.rrow_n.next = self.rrow_n.val() - self.c_words.val();
        }
        self.rtop_n.next = self.rtop.q.val() + self.c_hwcg.val();
        if self.rtop_n.val() >= self.c_words.val() {
            self.rtop_n.next = self.rtop_n.val() - self.c_words.val();
        }
        self.oxs_n.next = self.oxs.q.val() + self.c_s.val();
        self.oys_n.next = self.oys.q.val() + self.c_s.val();
        self.rwrap.next = false;
        if self.go.val() {
            self.cg.d.next = self.cg.q.val() + 1;
            self.koff.d.next = self.koff.q.val() + 1;
            if self.cg.q.val() == self.c_cgl.val() {
                self.cg.d.next = 0.into();
                self.kx.d.next = self.kx.q.val() + 1;
                self.ixb.d.next = self.ixb.q.val() + 1;
                if self.kx.q.val() == self.c_kl.val() {
                    // next kernel row
                    self.kx.d.next = 0.into();
                    self.ixb.d.next = self.oxs.q.val();
                    self.koff.d.next = 0.into();
                    self.ky.d.next = self.ky.q.val() + 1;
                    self.iyb.d.next = self.iyb.q.val() + 1;
                    self.rb.d.next = self.rb_n.val();
                    if self.ky.q.val() == self.c_kl.val() {
                        // next output pixel
                        self.ky.d.next = 0.into();
                        self.iyb.d.next = self.oys.q.val();
                        self.rb.d.next = self.rrow.q.val();
                        self.oxs.d.next = self.oxs_n.val();
                        self.ixb.d.next = self.oxs_n.val();
                        self.coff.d.next = self.coff.q.val() + self.c_scg.val();
                        if self.oxs.q.val() == self.c_lastx.val() {
                            // next output row
                            self.oxs.d.next = 0.into();
                            self.ixb.d.next = 0.into();
                            self.coff.d.next = self.c_negpcg.val();
                            self.oys.d.next = self.oys_n.val();
                            self.iyb.d.next = self.oys_n.val();
                            self.rrow.d.next = self.rrow_n.val();
                            self.rb.d.next = self.rrow_n.val();
                            if self.oys.q.val() == self.c_lasty.val() {
                                // next frame
                                self.oys.d.next = 0.into();
                                self.iyb.d.next = 0.into();
                                self.rtop.d.next = self.rtop_n.val();
                                self.rrow.d.next = self.rtop_n.val();
                                self.rb.d.next = self.rtop_n.val();
                                self.rwrap.next = true;
                            }
                        }
                    }
                }
            }
        }
        // frame difference: writer frame - reader frame + 1
        if self.wwrap.val() & !self.rwrap.val() {
            self.fd.d.next = self.fd.q.val() + 1;
        }
        if self.rwrap.val() & !self.wwrap.val() {
            self.fd.d.next = self.fd.q.val() - 1;
        }
        // stage 1: RAM data or the pad word into the queue
        self.queue.push.next = self.v1.q.val();
        self.queue.push_data.next = self.ram.read_data.val();
        if self.pad1.q.val() {
            self.queue.push_data.next = self.c_padw.val();
        }
        // synchronous reset
        if self.reset.val() {
            self.gi.d.next = 0.into();
            self.wcg.d.next = 0.into();
            self.wxb.d.next = self.c_p.val();
            self.wyb.d.next = self.c_p.val();
            self.wa.d.next = 0.into();
            self.fd.d.next = 1.into();
            self.cg.d.next = 0.into();
            self.kx.d.next = 0.into();
            self.ky.d.next = 0.into();
            self.oxs.d.next = 0.into();
            self.oys.d.next = 0.into();
            self.ixb.d.next = 0.into();
            self.iyb.d.next = 0.into();
            self.koff.d.next = 0.into();
            self.coff.d.next = self.c_negpcg.val();
            self.rb.d.next = self.c_rtop0.val();
            self.rrow.d.next = self.c_rtop0.val();
            self.rtop.d.next = self.c_rtop0.val();
            self.v1.d.next = false;
            self.ram.write_enable.next = false;
        }
    }
}

/// Test support shared by the window, maxpool and sumpool tests: a stream harness with
/// random stalls on both sides, recording every cycle so the generated Verilog can be
/// replayed in Icarus and compared cycle by cycle.
/// Feature maps as the engines' streams carry them, for the window and pool tests.
#[cfg(test)]
pub(crate) mod test_frames {
    /// A value's bit pattern: 1 for +1 when binary, else the low `bits` bits.
    pub fn enc(v: i64, bits: usize, binary: bool) -> u128 {
        if binary {
            (v > 0) as u128
        } else {
            (v as u128) & ((1u128 << bits) - 1)
        }
    }

    /// Input beats (H, W, C order, L lanes) of a C, H, W frame.
    pub fn beats_of(
        x: &[i64],
        c: usize,
        h: usize,
        w: usize,
        lanes: usize,
        bits: usize,
        binary: bool,
    ) -> Vec<u128> {
        let mut out = vec![];
        for y in 0..h {
            for xx in 0..w {
                for g in 0..c / lanes {
                    let mut b = 0u128;
                    for l in 0..lanes {
                        let ch = g * lanes + l;
                        b |= enc(x[(ch * h + y) * w + xx], bits, binary) << (l * bits);
                    }
                    out.push(b);
                }
            }
        }
        out
    }
}

/// SlidingWindow LUT4: coefficients of [1, io, line RAM, counter bits CW, CW if the
/// words are not a power of two] (the RAM's coefficient is fixed at 1).
const WINDOW_LUT: [f64; 5] = [-4.230, 3.475, 1.0, 37.723, 13.840];
/// SlidingWindow DFF: coefficients of [1, io, line RAM, CW, CW if the words are not a
/// power of two].
const WINDOW_DFF: [f64; 5] = [12.283, 2.718, 1.0, 12.048, 3.086];

/// The counter-and-line-RAM formula shared by the window and the max-pool: `lut`, `dff`
/// coefficients of [1, io, RAMs, counter bits, counter bits if the line RAM's words are
/// not a power of two (it wraps around for free only at a power of two)].
pub(crate) fn line_buffer_logic(
    lut: &[f64; 5],
    dff: &[f64; 5],
    ms: &[Memory],
    io: f64,
    counter_bits: usize,
) -> Formula {
    let r = mem_sum(ms, |_| true);
    let odd = if ms[0].depth.is_power_of_two() {
        0.0
    } else {
        1.0
    };
    let cw = counter_bits as f64;
    (
        dot(lut, &[1.0, io, r.0, cw, odd * cw]),
        dot(dff, &[1.0, io, r.1, cw, odd * cw]),
    )
}

impl EngineSpec for WindowConfig {
    fn timing(&self) -> Box<dyn StreamTiming> {
        Box::new(WindowTiming::new(self))
    }
    fn name(&self) -> &'static str {
        "window"
    }
    fn emitter(&self) -> &'static str {
        concat!(module_path!(), "::emit")
    }
    /// `[IW, OW, CW]`.
    fn generics(&self) -> Vec<usize> {
        vec![self.in_width(), self.out_width(), self.counter_bits()]
    }
    fn cycles(&self) -> u64 {
        self.cycles_per_frame()
    }
    fn latency(&self) -> u64 {
        WindowConfig::latency(self)
    }
    /// The first window waits for the input beat of its last real pixel, whatever the
    /// input's pace ([`Self::latency`] less 2 beats at full rate), then 3 cycles; the
    /// last beat comes no sooner than `latency` after the last input beat.
    fn span(&self, input: Span, beats: u64) -> Span {
        let latency = self.latency();
        let wait = (latency - 2).saturating_sub(1);
        let first = input.beat(wait) + latency - wait;
        let last = (first + beats - 1).max(input.last + latency);
        Span { first, last, beats }
    }
    fn memory_bits(&self) -> u64 {
        WindowConfig::memory_bits(self) as u64
    }
    fn memories(&self) -> Vec<Memory> {
        vec![Memory::ram(self.out_width(), self.words())]
    }
    fn logic(&self, ms: &[Memory], io: f64) -> Formula {
        line_buffer_logic(&WINDOW_LUT, &WINDOW_DFF, ms, io, self.counter_bits())
    }
    fn carries(&self) -> Carries {
        Carries::Window
    }
}

/// The cycle model of an [`OutQueue`]: its entry count, the only state behind its
/// `out_valid`. Its arithmetic is the 2-bit registers' (modulo 4), so the model stays
/// the hardware's even if an owner pushes into a full queue.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueTiming {
    n: u8,
}

impl QueueTiming {
    /// `out_valid`: an entry is held.
    pub fn valid(&self) -> bool {
        self.n != 0
    }
    /// The owners' occupancy: entries + the beat in flight to the queue.
    pub fn occ(&self, in_flight: bool) -> u8 {
        self.n + in_flight as u8
    }
    /// The clock edge: `push` an entry, `pop` the head (taken by the consumer).
    pub fn clock(&mut self, push: bool, pop: bool) {
        let idx = self.n.wrapping_sub(pop as u8) & 3;
        self.n = (idx + push as u8) & 3;
    }
}

/// The cycle model of a [`SlidingWindow`]: the writer's counters (`gi`, `wcg`, `wxb`,
/// `wyb`), the frame difference `fd`, the reader's kernel and output-pixel counters, the
/// read in flight (`v1`) and the queue's count: exactly the registers `in_ready` (`wok`)
/// and `out_valid` come from, updated by the block's own comparisons.
#[derive(Clone, Debug)]
pub struct WindowTiming {
    // constants: last values of the counters, padding, rows
    glast: usize,
    cgl: usize,
    p: usize,
    wlb: usize,
    hlb: usize,
    h: usize,
    r: usize,
    kl: usize,
    s: usize,
    lastx: usize,
    lasty: usize,
    // writer
    gi: usize,
    wcg: usize,
    wxb: usize,
    wyb: usize,
    fd: u8,
    // reader
    cg: usize,
    kx: usize,
    ky: usize,
    oxs: usize,
    oys: usize,
    v1: bool,
    queue: QueueTiming,
}

impl WindowTiming {
    /// The state right after reset of the window `c`.
    pub fn new(c: &WindowConfig) -> Self {
        let (oh, ow) = c.out_hw();
        let p = c.padding;
        WindowTiming {
            glast: c.simd / c.in_lanes - 1,
            cgl: c.channels / c.simd - 1,
            p,
            wlb: c.width - 1 + p,
            hlb: c.height - 1 + p,
            h: c.height,
            r: c.rows(),
            kl: c.kernel - 1,
            s: c.stride,
            lastx: (ow - 1) * c.stride,
            lasty: (oh - 1) * c.stride,
            gi: 0,
            wcg: 0,
            wxb: p,
            wyb: p,
            fd: 1,
            cg: 0,
            kx: 0,
            ky: 0,
            oxs: 0,
            oys: 0,
            v1: false,
            queue: QueueTiming::default(),
        }
    }

    /// The writer may take a beat (`wok`).
    fn wok(&self) -> bool {
        // the reader's top row, clamped to the map's rows in padded coordinates
        let top = self.oys.clamp(self.p, self.hlb);
        match self.fd {
            0 => true,
            1 => self.wyb < top + self.r,
            2 => self.wyb + self.h < top + self.r,
            _ => false,
        }
    }

    /// The reader issues a RAM read (or a pad word) this cycle (`go`).
    fn go(&self) -> bool {
        let ny = (self.oys + self.kl).min(self.hlb);
        let nx = (self.oxs + self.kl).min(self.wlb);
        let rdy =
            self.fd == 2 || (self.fd == 1 && (self.wyb > ny || (self.wyb == ny && self.wxb > nx)));
        rdy && self.queue.occ(self.v1) <= 2
    }
}

impl StreamTiming for WindowTiming {
    fn in_ready(&self, _k: usize) -> bool {
        self.wok()
    }
    fn out_valid(&self, _k: usize) -> bool {
        self.queue.valid()
    }
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]) {
        let go = self.go();
        let mut wwrap = false;
        if in_fire[0] {
            if self.gi < self.glast {
                self.gi += 1;
            } else {
                self.gi = 0;
                if self.wcg < self.cgl {
                    self.wcg += 1;
                } else {
                    self.wcg = 0;
                    if self.wxb < self.wlb {
                        self.wxb += 1;
                    } else {
                        self.wxb = self.p;
                        if self.wyb < self.hlb {
                            self.wyb += 1;
                        } else {
                            self.wyb = self.p;
                            wwrap = true;
                        }
                    }
                }
            }
        }
        let mut rwrap = false;
        if go {
            if self.cg < self.cgl {
                self.cg += 1;
            } else {
                self.cg = 0;
                if self.kx < self.kl {
                    self.kx += 1;
                } else {
                    self.kx = 0;
                    if self.ky < self.kl {
                        self.ky += 1;
                    } else {
                        self.ky = 0;
                        if self.oxs < self.lastx {
                            self.oxs += self.s;
                        } else {
                            self.oxs = 0;
                            if self.oys < self.lasty {
                                self.oys += self.s;
                            } else {
                                self.oys = 0;
                                rwrap = true;
                            }
                        }
                    }
                }
            }
        }
        if wwrap && !rwrap {
            self.fd += 1;
        }
        if rwrap && !wwrap {
            self.fd -= 1;
        }
        self.queue.clock(self.v1, out_fire[0]);
        self.v1 = go;
    }
}

/// Emitter of engine `i` of `d` (a [`WindowConfig`]).
pub fn emit<const IW: usize, const OW: usize, const CW: usize>(
    _: &Network,
    d: &Design,
    i: usize,
) -> String {
    let (e, cfg) = engine::<WindowConfig>(d, i, &[IW, OW, CW]);
    let b = SlidingWindow::<IW, OW, CW>::new(cfg);
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::test_frames::{beats_of, enc};
    use super::*;
    use crate::stream::testbench::{check_engine, single_stream_dut};
    use crate::synth::ice40_stats;
    use bnnforge_model::{reference, InputSpec, Layer, Network, Op, Param, Shape};
    use rand::Rng;

    // a frame's windows wholly in the padding come out before its input
    single_stream_dut!(
        SlidingWindow<IW, OW, CW>,
        IW,
        OW,
        [const IW: usize, const OW: usize, const CW: usize],
        emits_ahead
    );

    /// Random frame in C, H, W order: ±1 for binary, else values of `bits` bits.
    fn frame(rng: &mut impl Rng, c: &WindowConfig, signed: bool) -> Vec<i64> {
        let n = c.channels * c.height * c.width;
        (0..n)
            .map(|_| {
                if c.binary {
                    if rng.gen() {
                        1
                    } else {
                        -1
                    }
                } else if signed {
                    rng.gen_range(-(1i64 << (c.bits - 1))..(1i64 << (c.bits - 1)))
                } else {
                    rng.gen_range(0..(1i64 << c.bits))
                }
            })
            .collect()
    }

    /// The expected patch beats, straight from the spec's conv definition.
    fn patches(c: &WindowConfig, x: &[i64]) -> Vec<u128> {
        let (oh, ow) = c.out_hw();
        let (h, w, p) = (c.height as i64, c.width as i64, c.padding as i64);
        let dbits = c.simd * c.bits;
        let mut out = vec![];
        for oy in 0..oh as i64 {
            for ox in 0..ow as i64 {
                for ky in 0..c.kernel as i64 {
                    for kx in 0..c.kernel as i64 {
                        let iy = oy * c.stride as i64 + ky - p;
                        let ix = ox * c.stride as i64 + kx - p;
                        let padded = iy < 0 || ix < 0 || iy >= h || ix >= w;
                        for g in 0..c.channels / c.simd {
                            let mut b = 0u128;
                            for l in 0..c.simd {
                                let ch = (g * c.simd + l) as i64;
                                let v = if padded {
                                    if c.binary {
                                        c.pad_value as i64
                                    } else {
                                        0
                                    }
                                } else {
                                    x[((ch * h + iy) * w + ix) as usize]
                                };
                                // pad 0 on binary: data 0, flag set
                                let e = if c.binary && v == 0 {
                                    0
                                } else {
                                    enc(v, c.bits, c.binary)
                                };
                                b |= e << (l * c.bits);
                            }
                            if padded && c.pad_flag() {
                                b |= 1 << dbits;
                            }
                            out.push(b);
                        }
                    }
                }
            }
        }
        out
    }

    /// Σ w·x of a one-layer conv over the emitted patch beats, per (oc, oy, ox) in C, H,
    /// W order, decoding each beat as the matrix unit would.
    fn conv_from_beats(
        c: &WindowConfig,
        beats: &[u128],
        wt: &[i8],
        outs: usize,
        signed: bool,
    ) -> Vec<i64> {
        let (oh, ow) = c.out_hw();
        let k = c.kernel;
        let cg = c.channels / c.simd;
        let per_pixel = k * k * cg;
        let dbits = c.simd * c.bits;
        let mut y = vec![0i64; outs * oh * ow];
        for (pix, chunk) in beats.chunks(per_pixel).enumerate() {
            for (i, &b) in chunk.iter().enumerate() {
                let (ky, kx, g) = (i / (k * cg), (i / cg) % k, i % cg);
                let flag = c.pad_flag() && (b >> dbits) & 1 == 1;
                for l in 0..c.simd {
                    let e = (b >> (l * c.bits)) & ((1u128 << c.bits) - 1);
                    let v = if flag {
                        0
                    } else if c.binary {
                        if e == 1 {
                            1
                        } else {
                            -1
                        }
                    } else if signed {
                        crate::testutil::sign_extend(e, c.bits) as i64
                    } else {
                        e as i64
                    };
                    let ch = g * c.simd + l;
                    for oc in 0..outs {
                        y[oc * oh * ow + pix] +=
                            wt[((oc * c.channels + ch) * k + ky) * k + kx] as i64 * v;
                    }
                }
            }
        }
        y
    }

    fn check<const IW: usize, const OW: usize, const CW: usize>(
        rng: &mut impl Rng,
        c: WindowConfig,
        signed: bool,
        icarus: bool,
    ) {
        let frames = 3;
        let label = format!("{c:?} signed={signed}");
        // counters exactly as wide as the configuration needs
        assert_eq!(CW, c.counter_bits(), "counter bits of {label}");
        let xs: Vec<Vec<i64>> = (0..frames).map(|_| frame(rng, &c, signed)).collect();
        let mut beats = vec![];
        let mut want = vec![];
        for x in &xs {
            beats.extend(beats_of(
                x, c.channels, c.height, c.width, c.in_lanes, c.bits, c.binary,
            ));
            want.extend(patches(&c, x));
        }
        // a scratch directory of its own: the tests run in parallel
        let name = format!(
            "window_{IW}_{OW}_{CW}_{}x{}x{}_k{}s{}p{}",
            c.channels, c.height, c.width, c.kernel, c.stride, c.padding
        );
        let uut = SlidingWindow::<IW, OW, CW>::new(&c);
        let (cpf, lat) = (uut.cycles_per_frame(), uut.latency());
        let make = || SlidingWindow::<IW, OW, CW>::new(&c);
        let icarus = icarus.then_some(name.as_str());
        let full = check_engine(
            &label,
            make,
            &beats,
            &want,
            frames,
            (cpf, lat),
            rng,
            icarus,
            Some(&|| c.timing()),
        );
        let interval = full.last_frame_interval(frames);
        println!("{label}: frame interval {interval}, cycles_per_frame {cpf}");
        let ob = c.out_beats() as usize;
        assert!(
            interval <= cpf + cpf / 8 + 2 * c.width as u64 + 8,
            "frame interval {interval} vs cycles_per_frame {cpf}: {label}"
        );
        if c.height < c.kernel + c.stride {
            // small maps: the stepped model of the flow-control rules is exact
            assert_eq!(interval, cpf, "frame interval of a small map: {label}");
        }
        // Σ w·x over the patches equals the model's conv, frame by frame
        let outs = 3;
        let n = outs * c.channels * c.kernel * c.kernel;
        let wt: Vec<i8> = (0..n).map(|_| if rng.gen() { 1 } else { -1 }).collect();
        let net = Network::new(
            "win".into(),
            InputSpec {
                shape: Shape::map(c.channels, c.height, c.width),
                bits: c.bits as u32,
                signed,
            },
            vec![Layer {
                name: "conv".into(),
                inputs: vec!["input".into()],
                op: Op::Conv {
                    out: outs,
                    kernel: c.kernel,
                    stride: c.stride,
                    padding: c.padding,
                    pad_value: c.pad_value,
                    weight: Param::new("w", vec![outs, c.channels, c.kernel, c.kernel], wt.clone()),
                    bias: None,
                },
            }],
            "conv".into(),
        )
        .unwrap();
        for (f, x) in xs.iter().enumerate() {
            let got = conv_from_beats(&c, &want[f * ob..(f + 1) * ob], &wt, outs, signed);
            assert_eq!(got, reference::eval(&net, x), "conv sums frame {f} {label}");
        }
    }

    fn cfg(
        bits: usize,
        in_lanes: usize,
        simd: usize,
        chw: (usize, usize, usize),
        ksp: (usize, usize, usize),
        pad_value: i8,
        binary: bool,
    ) -> WindowConfig {
        WindowConfig {
            bits,
            in_lanes,
            simd,
            channels: chw.0,
            height: chw.1,
            width: chw.2,
            kernel: ksp.0,
            stride: ksp.1,
            padding: ksp.2,
            pad_value,
            binary,
        }
    }

    #[test]
    fn padding_at_least_the_kernel_emits_the_windows_wholly_in_the_padding() {
        let mut rng = bnnforge_model::random::test_rng("sliding_window_big_padding");
        let r = &mut rng;
        // 1×1 with padding 1 (flag for pad 0): a ring of all-padding windows
        check::<1, 3, 4>(r, cfg(1, 1, 2, (2, 4, 5), (1, 1, 1), 0, true), false, true);
        // 3×3 with padding 3, pad −1: the corner windows are all padding
        check::<2, 2, 4>(r, cfg(1, 2, 2, (2, 3, 4), (3, 1, 3), -1, true), false, true);
        // stride 2, padding 5 over a 2×3 map, pad +1
        check::<1, 1, 4>(r, cfg(1, 1, 1, (1, 2, 3), (2, 2, 5), 1, true), false, false);
        // integer input, 1×1 stride 3 padding 2 over a 1×2 map: pad 0 words
        check::<4, 4, 3>(r, cfg(4, 1, 1, (1, 1, 2), (1, 3, 2), 0, false), true, false);
        // a single pixel under padding 2: 24 of the 25 windows are padding
        check::<1, 2, 3>(r, cfg(1, 1, 1, (1, 1, 1), (1, 1, 2), 0, true), false, false);
        // a map shorter than the kernel's reach (H + p < k, p < k): one row buffered
        check::<1, 1, 4>(r, cfg(1, 1, 1, (3, 1, 1), (3, 1, 1), -1, true), false, true);
        check::<2, 4, 4>(
            r,
            cfg(1, 2, 4, (4, 2, 3), (5, 2, 2), -1, true),
            false,
            false,
        );
        // stride 2, padding 4 with a 3×3 kernel, several channel groups per pixel
        check::<2, 5, 5>(r, cfg(1, 2, 4, (4, 6, 5), (3, 2, 4), 0, true), false, false);
    }

    #[test]
    fn emits_the_patches_of_the_spec_over_a_parameter_matrix() {
        let mut rng = bnnforge_model::random::test_rng("sliding_window");
        let r = &mut rng;
        // binary, 3x3 pad 1 with pad value 0 (flag), -1, +1
        check::<2, 5, 5>(r, cfg(1, 2, 4, (4, 5, 6), (3, 1, 1), 0, true), false, true);
        check::<1, 2, 6>(
            r,
            cfg(1, 1, 2, (4, 4, 5), (3, 1, 1), -1, true),
            false,
            false,
        );
        check::<4, 4, 6>(r, cfg(1, 4, 4, (8, 6, 5), (3, 2, 1), 1, true), false, true);
        // no padding, strides, 1x1, kernel = map
        check::<2, 4, 6>(r, cfg(1, 2, 4, (4, 7, 7), (2, 2, 0), 0, true), false, false);
        check::<1, 1, 5>(r, cfg(1, 1, 1, (3, 4, 4), (1, 1, 0), 0, true), false, false);
        check::<2, 2, 5>(r, cfg(1, 2, 2, (2, 3, 3), (3, 1, 0), 0, true), false, false);
        // a map as tall as the kernel, odd channels with the pad-0 flag (random network
        // 101): the next frame overlaps the current one by 9 of 90 beats
        check::<3, 4, 5>(r, cfg(1, 3, 3, (3, 3, 3), (3, 1, 1), 0, true), false, true);
        // kernel larger than the map with padding, stride 3
        check::<1, 3, 3>(r, cfg(1, 1, 2, (2, 2, 3), (3, 1, 2), 0, true), false, false);
        check::<2, 2, 7>(
            r,
            cfg(1, 2, 2, (2, 9, 8), (3, 3, 1), -1, true),
            false,
            false,
        );
        // integer inputs (first layer): unsigned 8-bit RGB, signed 4-bit
        check::<24, 24, 6>(r, cfg(8, 3, 3, (3, 6, 7), (3, 1, 1), 0, false), false, true);
        check::<4, 8, 6>(r, cfg(4, 1, 2, (4, 5, 5), (3, 2, 2), 0, false), true, false);
        check::<8, 16, 5>(
            r,
            cfg(4, 2, 4, (4, 6, 5), (5, 1, 2), 0, false),
            false,
            false,
        );
    }

    /// Counters at the top of their range: maps whose largest counter value is
    /// 2^CW − 1 exactly (each term of `counter_max` in turn), and a 28×28 map.
    #[test]
    fn narrow_counters_at_their_limits() {
        let mut rng = bnnforge_model::random::test_rng("sliding_window_limits");
        let r = &mut rng;
        let limits = [
            // (config, largest value, CW)
            // 4 rows of W·C/SIMD = 7: row base 3·7 + (s mod R)·7 = 63
            (cfg(1, 1, 1, (1, 4, 7), (3, 3, 0), 0, true), 63, 6),
            // tall and narrow: the writer's row wyb + H = 63 + 64 = 127
            (cfg(1, 1, 1, (1, 64, 2), (1, 3, 0), 0, true), 127, 7),
            // 7 rows of 31 pixels · 3 channel groups: rtop + (H mod R)·93 = 6·93 + 5·93
            (cfg(1, 1, 1, (3, 5, 31), (5, 2, 0), 0, true), 1023, 10),
            // 255 RAM words, padding 4 on a 5-row map
            (cfg(1, 1, 1, (1, 5, 51), (5, 1, 4), -1, true), 255, 8),
            // the pad-0 flag on a 28×28 map
            (cfg(1, 2, 2, (2, 28, 28), (3, 1, 1), 0, true), 112, 7),
        ];
        for (c, max, bits) in &limits {
            assert_eq!((c.counter_max(), c.counter_bits()), (*max, *bits), "{c:?}");
        }
        let [a, b, c, d, e] = limits.map(|l| l.0);
        check::<1, 1, 6>(r, a, false, true);
        check::<1, 1, 7>(r, b, false, true);
        check::<1, 1, 10>(r, c, false, false);
        check::<1, 1, 8>(r, d, false, false);
        check::<2, 3, 7>(r, e, false, false);
    }

    #[test]
    #[should_panic(expected = "SlidingWindow: CW = 6 counter bits, but this configuration needs 7")]
    fn rejects_too_narrow_counters() {
        let _ = SlidingWindow::<1, 1, 6>::new(&cfg(1, 1, 1, (1, 64, 2), (1, 3, 0), 0, true));
    }

    #[test]
    #[should_panic(expected = "SlidingWindow: OW must be")]
    fn rejects_a_wrong_output_width() {
        let _ = SlidingWindow::<1, 1, 3>::new(&cfg(1, 1, 1, (4, 4, 4), (3, 1, 1), 0, true));
    }

    /// yosys figures of a window at counter width `CW` (its own, or 16 for comparison).
    fn synth<const IW: usize, const OW: usize, const CW: usize>(
        name: &str,
        c: &WindowConfig,
    ) -> crate::synth::Ice40Stats {
        let mut uut = SlidingWindow::<IW, OW, CW>::new(c);
        uut.connect_all();
        let v = crate::compile::module_tree::module_tree(&uut, "top").unwrap();
        let s = ice40_stats(name, &v, "top").unwrap();
        println!(
            "SlidingWindow<{IW}, {OW}, {CW}> {}x{} over {}x{}x{}, {} memory bits, \
             cycles/frame {}, latency {}: {s}",
            c.kernel,
            c.kernel,
            c.channels,
            c.height,
            c.width,
            c.memory_bits(),
            c.cycles_per_frame(),
            c.latency()
        );
        s
    }

    #[test]
    fn synthesises_a_3x3_window_over_16x32x32() {
        // binary 16 channels, 32x32, 3x3, pad 1 (value -1: no flag), 16 lanes in and out
        let c = cfg(1, 16, 16, (16, 32, 32), (3, 1, 1), -1, true);
        assert_eq!(c.counter_bits(), 8);
        let s = synth::<16, 16, 8>("window_16x32x32", &c);
        assert!(s.bram >= 1, "line buffer not in block RAM: {s}");
        let wide = synth::<16, 16, 16>("window_16x32x32_cw16", &c);
        assert!(
            s.lut4 < wide.lut4,
            "8-bit counters cost more than 16-bit ones"
        );
        // with the pad flag (pad_value 0): 17-bit words
        let c = cfg(1, 16, 16, (16, 32, 32), (3, 1, 1), 0, true);
        synth::<16, 17, 8>("window_16x32x32_flag", &c);
        // a 2x2 kernel over 1x4x3 (4-bit counters) and 3x3 pad 1 over 1x28x28 (7 bits)
        let c = cfg(1, 1, 1, (1, 4, 3), (2, 1, 0), 0, true);
        assert_eq!(c.counter_bits(), 4);
        synth::<1, 1, 4>("window_1x4x3", &c);
        synth::<1, 1, 16>("window_1x4x3_cw16", &c);
        let c = cfg(1, 1, 1, (1, 28, 28), (3, 1, 1), -1, true);
        assert_eq!(c.counter_bits(), 7);
        synth::<1, 1, 7>("window_1x28x28", &c);
        synth::<1, 1, 16>("window_1x28x28_cw16", &c);
    }
}
