//! The AXI-stream driver of the spec's accelerator ports.

use crate::{Error, Inputs, Result, Sim};
use bnnforge_model::random::{seeded, Rng};

/// How one element is encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemFormat {
    /// A binary value −1 / +1, one bit, 1 for +1 (the spec's `bits: 1`).
    Binary,
    /// An unsigned integer of that many bits (2 … 64).
    Unsigned(u32),
    /// A two's complement integer of that many bits (1 … 64).
    Signed(u32),
}

impl ElemFormat {
    /// The spec's (`bits`, `signed`) pair: `bits: 1` unsigned is binary (±1).
    pub fn from_spec(bits: u32, signed: bool) -> Result<ElemFormat> {
        match (bits, signed) {
            (0, _) | (65.., _) => Err(Error::Input(format!(
                "element width {bits} is outside 1 … 64 bits"
            ))),
            (1, false) => Ok(ElemFormat::Binary),
            (b, true) => Ok(ElemFormat::Signed(b)),
            (b, false) => Ok(ElemFormat::Unsigned(b)),
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            ElemFormat::Binary => 1,
            ElemFormat::Unsigned(b) | ElemFormat::Signed(b) => b,
        }
    }

    fn mask(self) -> u64 {
        let b = self.bits();
        if b >= 64 {
            u64::MAX
        } else {
            (1u64 << b) - 1
        }
    }

    /// The wire bits of a value, or `None` when it does not fit.
    pub fn encode(self, v: i64) -> Option<u64> {
        match self {
            ElemFormat::Binary => match v {
                1 => Some(1),
                -1 => Some(0),
                _ => None,
            },
            ElemFormat::Unsigned(b) => {
                (v >= 0 && (b >= 64 || (v as u64) >> b == 0)).then_some(v as u64)
            }
            ElemFormat::Signed(b) => {
                let lo = if b >= 64 {
                    i64::MIN
                } else {
                    -(1i64 << (b - 1))
                };
                let hi = if b >= 64 {
                    i64::MAX
                } else {
                    (1i64 << (b - 1)) - 1
                };
                (lo..=hi).contains(&v).then_some(v as u64 & self.mask())
            }
        }
    }

    /// The value of wire bits (higher bits ignored; sign-extended when signed).
    pub fn decode(self, raw: u64) -> i64 {
        let raw = raw & self.mask();
        match self {
            ElemFormat::Binary => {
                if raw == 1 {
                    1
                } else {
                    -1
                }
            }
            ElemFormat::Unsigned(_) => raw as i64,
            ElemFormat::Signed(b) => {
                let shift = 64 - b;
                ((raw << shift) as i64) >> shift
            }
        }
    }
}

/// The stream shape of an accelerator (the spec's manifest `input` / `output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamFormat {
    pub lanes: usize,
    pub input: ElemFormat,
    pub output: ElemFormat,
    /// Output values per frame (`m_axis_tlast` on the last of them).
    pub out_elements: usize,
}

impl StreamFormat {
    /// Width of `s_axis_tdata`.
    pub fn in_width(&self) -> u32 {
        self.lanes as u32 * self.input.bits()
    }

    /// Width of `m_axis_tdata`.
    pub fn out_width(&self) -> u32 {
        self.output.bits()
    }
}

/// Packs one frame into beats: element i of a beat in bits [i·bits, (i+1)·bits) of the
/// little-endian word array, a new beat every `lanes` elements, unused lanes zero.
pub fn pack_frame(lanes: usize, elem: ElemFormat, frame: &[i64]) -> Result<Vec<Vec<u64>>> {
    let words = beat_words(lanes, elem)?;
    let mut flat = Vec::new();
    pack_into(&mut flat, lanes, elem, frame)?;
    Ok(flat.chunks(words).map(<[u64]>::to_vec).collect())
}

fn beat_words(lanes: usize, elem: ElemFormat) -> Result<usize> {
    if lanes == 0 {
        return Err(Error::Input("lanes must be at least 1".into()));
    }
    Ok((lanes * elem.bits() as usize).div_ceil(64))
}

/// Appends the beats of `frame` to `out` (`beat_words` words each); returns the beat count.
fn pack_into(out: &mut Vec<u64>, lanes: usize, elem: ElemFormat, frame: &[i64]) -> Result<usize> {
    let words = beat_words(lanes, elem)?;
    let bits = elem.bits() as usize;
    for (b, chunk) in frame.chunks(lanes).enumerate() {
        let base = out.len();
        out.resize(base + words, 0);
        let beat = &mut out[base..];
        for (i, &v) in chunk.iter().enumerate() {
            let raw = elem.encode(v).ok_or_else(|| {
                Error::Input(format!(
                    "element {} = {v} does not fit {elem:?}",
                    b * lanes + i
                ))
            })?;
            let off = i * bits;
            let (w, s) = (off / 64, off % 64);
            beat[w] |= raw << s;
            if s + bits > 64 {
                beat[w + 1] |= raw >> (64 - s);
            }
        }
    }
    Ok(frame.len().div_ceil(lanes))
}

/// The beats of a weight load (`StreamOptions::preamble`): each 16-bit word split into
/// `bits_per_beat`-bit values (1, 2, 4, 8 or 16), low bits first.
pub fn load_beats(words: &[u16], bits_per_beat: u32) -> Vec<u64> {
    let b = bits_per_beat;
    assert!([1, 2, 4, 8, 16].contains(&b), "load_beats: {b} bits a beat");
    let mask = (1u64 << b) - 1;
    words
        .iter()
        .flat_map(|&x| (0..16 / b).map(move |k| (x as u64 >> (k * b)) & mask))
        .collect()
}

/// Options of [`run_stream`].
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// Seed of the stall pattern and of the junk data driven while `s_axis_tvalid` is low.
    pub seed: u64,
    /// Probability that the driver withholds the next input beat in a cycle (a beat once
    /// offered stays offered until taken, as AXI-stream requires).
    pub input_stall: f64,
    /// Probability that `m_axis_tready` is low in a cycle.
    pub output_stall: f64,
    /// Cycles of `rst` high before streaming.
    pub reset_cycles: u32,
    /// Error out after this many cycles without any transfer on either side.
    pub idle_timeout: u64,
    /// Error out after this many cycles in all.
    pub max_cycles: u64,
    /// Cycles run after the last expected value, with `m_axis_tready` high, to catch extra
    /// output values.
    pub drain_cycles: u32,
    /// Beats sent after reset before the first frame (each value in the beat's low bits):
    /// the weight load of a design with weights in SPRAM ([`Manifest::load_beats`]
    /// (crate::Manifest::load_beats)).
    pub preamble: Vec<u64>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            seed: 1,
            input_stall: 0.0,
            output_stall: 0.0,
            reset_cycles: 4,
            idle_timeout: 100_000,
            max_cycles: u64::MAX,
            drain_cycles: 16,
            preamble: Vec::new(),
        }
    }
}

impl StreamOptions {
    /// No stalls; for measuring steady-state timing.
    pub fn full_speed() -> Self {
        StreamOptions::default()
    }

    /// Independent random stalls on both streams.
    pub fn stalls(seed: u64, input_stall: f64, output_stall: f64) -> Self {
        StreamOptions {
            seed,
            input_stall,
            output_stall,
            ..StreamOptions::default()
        }
    }
}

/// Cycle numbers of one frame, counted from the first cycle after reset; an input or output
/// "cycle" is the clock edge at which that transfer happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTiming {
    pub first_input: u64,
    pub last_input: u64,
    pub first_output: u64,
    pub last_output: u64,
}

impl FrameTiming {
    /// Cycles from the frame's first input beat to its last output value.
    pub fn latency(&self) -> u64 {
        self.last_output - self.first_input
    }
}

/// What [`run_stream`] observed.
#[derive(Clone, Debug)]
pub struct StreamRun {
    /// Output values per frame (sign-extended when signed, ±1 when binary).
    pub outputs: Vec<Vec<i64>>,
    pub frames: Vec<FrameTiming>,
    /// Cycles from reset release to the last output transfer, inclusive.
    pub total_cycles: u64,
    /// Input beats transferred.
    pub input_beats: u64,
}

impl StreamRun {
    /// Mean cycles between consecutive frames' last outputs (the steady-state interval when
    /// run without stalls); `None` for fewer than two frames.
    pub fn interval(&self) -> Option<f64> {
        let n = self.frames.len();
        (n >= 2).then(|| {
            (self.frames[n - 1].last_output - self.frames[0].last_output) as f64 / (n - 1) as f64
        })
    }

    /// The largest per-frame latency.
    pub fn max_latency(&self) -> u64 {
        self.frames
            .iter()
            .map(FrameTiming::latency)
            .max()
            .unwrap_or(0)
    }
}

/// Resets the design, streams `frames` through it and collects the outputs.
///
/// Checks, as errors: elements that do not fit the input format; `m_axis_tlast` missing on
/// the last value of a frame or present on another; `m_axis_tdata`/`tlast` changing or
/// `m_axis_tvalid` dropping while a value waits for `m_axis_tready`; output values beyond the
/// last frame (during `drain_cycles`); input beats left untaken once every output is out;
/// no transfer for `idle_timeout` cycles; `$finish`/`$stop`/`$fatal` in the design.
pub fn run_stream<F: AsRef<[i64]>>(
    sim: &mut Sim,
    fmt: &StreamFormat,
    frames: &[F],
    opts: &StreamOptions,
) -> Result<StreamRun> {
    if fmt.in_width() != sim.in_width() || fmt.out_width() != sim.out_width() {
        return Err(Error::Input(format!(
            "stream format needs ports of {}/{} bits, the design has {}/{}",
            fmt.in_width(),
            fmt.out_width(),
            sim.in_width(),
            sim.out_width()
        )));
    }
    if fmt.out_elements == 0 {
        return Err(Error::Input("out_elements must be at least 1".into()));
    }
    for p in [opts.input_stall, opts.output_stall] {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::Input(format!(
                "stall probability {p} is outside [0, 1)"
            )));
        }
    }
    // Beats back to back in `flat`; per beat: (frame index, first of frame, last of frame).
    let words = beat_words(fmt.lanes, fmt.input)?;
    let mut flat: Vec<u64> = Vec::new();
    let mut beats: Vec<(usize, bool, bool)> = Vec::new();
    for &p in &opts.preamble {
        if sim.in_width() < 64 && p >> sim.in_width() != 0 {
            return Err(Error::Input(format!(
                "preamble beat {p:#x} is wider than s_axis_tdata ({} bits)",
                sim.in_width()
            )));
        }
        flat.push(p);
        flat.extend(std::iter::repeat_n(0, words - 1));
        beats.push((usize::MAX, false, false));
    }
    for (f, frame) in frames.iter().enumerate() {
        let n = pack_into(&mut flat, fmt.lanes, fmt.input, frame.as_ref())
            .map_err(|e| Error::Input(format!("frame {f}: {e}")))?;
        if n == 0 {
            return Err(Error::Input(format!("frame {f} is empty")));
        }
        beats.extend((0..n).map(|i| (f, i == 0, i + 1 == n)));
    }
    let n_frames = frames.len();
    let mut rng = seeded(opts.seed);
    sim.reset(opts.reset_cycles)?;

    let in_words = (sim.in_width() as usize).div_ceil(64);
    let mut junk = vec![0u64; in_words];
    let mut outputs: Vec<Vec<i64>> = Vec::with_capacity(n_frames);
    let mut current: Vec<i64> = Vec::with_capacity(fmt.out_elements);
    let mut timing = vec![FrameTiming::default(); n_frames];
    let mut next_beat = 0usize;
    let mut offering = false;
    // An output value offered but not taken last cycle: it must be offered again unchanged.
    let mut waiting = false;
    let mut waiting_data = vec![0u64; sim.m_tdata().len()];
    let mut waiting_last = false;
    let mut last_progress = 0u64;
    let mut cycle = 0u64;

    while outputs.len() < n_frames {
        if cycle >= opts.max_cycles {
            return Err(Error::Timeout(format!(
                "{} cycles elapsed with {} of {n_frames} frames out",
                cycle,
                outputs.len()
            )));
        }
        if cycle - last_progress > opts.idle_timeout {
            return Err(Error::Timeout(format!(
                "no transfer for {} cycles (at cycle {cycle}): {next_beat} of {} input beats \
                 taken, {} frames and {} values of frame {} out",
                opts.idle_timeout,
                beats.len(),
                outputs.len(),
                current.len(),
                outputs.len()
            )));
        }
        if !offering && next_beat < beats.len() {
            offering = !rng.gen_bool(opts.input_stall);
        }
        let m_ready = !rng.gen_bool(opts.output_stall);
        let data: &[u64] = if offering {
            &flat[next_beat * words..(next_beat + 1) * words]
        } else {
            for w in junk.iter_mut() {
                *w = rng.gen();
            }
            &junk
        };
        let out = sim.step(&Inputs {
            rst: false,
            s_tdata: data,
            s_tvalid: offering,
            m_tready: m_ready,
        })?;
        if sim.finished() {
            return Err(Error::Sim(format!(
                "the design called $finish at cycle {cycle}"
            )));
        }
        let frame_now = outputs.len();
        if waiting {
            if !out.m_tvalid {
                return Err(Error::Protocol(format!(
                    "cycle {cycle}: m_axis_tvalid dropped before value {} of frame {frame_now} \
                     was accepted",
                    current.len()
                )));
            }
            if waiting_data != sim.m_tdata() || waiting_last != out.m_tlast {
                return Err(Error::Protocol(format!(
                    "cycle {cycle}: m_axis_tdata/tlast changed under backpressure at value {} \
                     of frame {frame_now}",
                    current.len()
                )));
            }
        }
        if offering && out.s_tready {
            let (f, first, last) = beats[next_beat];
            if first && f != usize::MAX {
                timing[f].first_input = cycle;
            }
            if last && f != usize::MAX {
                timing[f].last_input = cycle;
            }
            next_beat += 1;
            offering = false;
            last_progress = cycle;
        }
        if out.m_tvalid && m_ready {
            let idx = current.len();
            current.push(fmt.output.decode(sim.m_tdata()[0]));
            if idx == 0 {
                timing[frame_now].first_output = cycle;
            }
            let is_last = idx + 1 == fmt.out_elements;
            if is_last && !out.m_tlast {
                return Err(Error::Protocol(format!(
                    "cycle {cycle}: m_axis_tlast missing on value {idx} of frame {frame_now}, \
                     the last of {} values",
                    fmt.out_elements
                )));
            }
            if !is_last && out.m_tlast {
                return Err(Error::Protocol(format!(
                    "cycle {cycle}: m_axis_tlast on value {idx} of frame {frame_now}, expected \
                     only on value {}",
                    fmt.out_elements - 1
                )));
            }
            if is_last {
                timing[frame_now].last_output = cycle;
                outputs.push(std::mem::replace(
                    &mut current,
                    Vec::with_capacity(fmt.out_elements),
                ));
            }
            last_progress = cycle;
        }
        waiting = out.m_tvalid && !m_ready;
        if waiting {
            waiting_data.copy_from_slice(sim.m_tdata());
            waiting_last = out.m_tlast;
        }
        cycle += 1;
    }
    let total_cycles = cycle;
    if next_beat < beats.len() {
        return Err(Error::Protocol(format!(
            "all {n_frames} frames' outputs came out but only {next_beat} of {} input beats \
             were taken",
            beats.len()
        )));
    }
    let idle = Inputs {
        rst: false,
        s_tdata: &[],
        s_tvalid: false,
        m_tready: true,
    };
    for i in 0..opts.drain_cycles {
        let out = sim.step(&idle)?;
        if out.m_tvalid {
            return Err(Error::Protocol(format!(
                "cycle {}: an output value beyond the last of {n_frames} frames",
                total_cycles + u64::from(i)
            )));
        }
    }
    Ok(StreamRun {
        outputs,
        frames: timing,
        total_cycles,
        input_beats: next_beat as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let s12 = ElemFormat::Signed(12);
        for v in [-2048, -1, 0, 1, 2047] {
            assert_eq!(s12.decode(s12.encode(v).unwrap()), v);
        }
        assert_eq!(s12.encode(2048), None);
        assert_eq!(s12.encode(-2049), None);
        assert_eq!(s12.encode(-1), Some(0xfff));
        let u8f = ElemFormat::Unsigned(8);
        assert_eq!(u8f.encode(255), Some(255));
        assert_eq!(u8f.encode(256), None);
        assert_eq!(u8f.encode(-1), None);
        assert_eq!(ElemFormat::from_spec(1, false).unwrap(), ElemFormat::Binary);
        assert_eq!(ElemFormat::Binary.encode(-1), Some(0));
        assert_eq!(ElemFormat::Binary.encode(0), None);
        assert_eq!(ElemFormat::Binary.decode(1), 1);
        let s64 = ElemFormat::Signed(64);
        assert_eq!(s64.decode(s64.encode(i64::MIN).unwrap()), i64::MIN);
        assert!(ElemFormat::from_spec(65, true).is_err());
    }

    #[test]
    fn packs_lanes_across_word_boundaries() {
        // 8 lanes × 12 bits = 96 bits: lane 5 straddles bits 60..72.
        let frame: Vec<i64> = (0..10).map(|i| if i == 5 { -1 } else { i }).collect();
        let beats = pack_frame(8, ElemFormat::Signed(12), &frame).unwrap();
        assert_eq!(beats.len(), 2);
        assert_eq!(beats[0].len(), 2);
        let get = |b: &[u64], i: usize| -> u64 {
            let off = i * 12;
            let mut v = b[off / 64] >> (off % 64);
            if off % 64 + 12 > 64 {
                v |= b[off / 64 + 1] << (64 - off % 64);
            }
            v & 0xfff
        };
        for (i, &v) in frame[..8].iter().enumerate() {
            assert_eq!(get(&beats[0], i), (v as u64) & 0xfff, "lane {i}");
        }
        assert_eq!(get(&beats[1], 0), 8);
        assert_eq!(get(&beats[1], 1), 9);
        for i in 2..8 {
            assert_eq!(get(&beats[1], i), 0, "unused lane {i} must be zero");
        }
        assert!(pack_frame(8, ElemFormat::Signed(12), &[4096]).is_err());
    }
}
