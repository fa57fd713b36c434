//! The design's cycle model: every engine's handshakes ([`StreamTiming`], one per
//! engine kind, beside its block) stepped together cycle by cycle, no data; gives the
//! frame times of a run, hence the manifest's interval and latency, exactly as the
//! co-simulation measures them.
//!
//! The engine contract (`hdl/ENGINES.md`) has no combinational path from `out_ready` to
//! `in_ready` nor from `in_valid` to `out_valid`: in every cycle each engine's readies
//! and valids are functions of its state, the beats that move are valid ∧ ready, and
//! the clock edge updates every state from them.

use crate::compile::design::Design;

/// An engine's handshakes, cycle by cycle, from the first cycle after reset.
pub trait StreamTiming {
    /// Input `k`'s `in_ready` in this cycle, from the state only (for an engine whose
    /// readies also follow its inputs' valids, the adder: when every input offers).
    fn in_ready(&self, k: usize) -> bool;
    /// Input `k`'s `in_ready` given every input's `in_valid` in this cycle (the adder
    /// takes a beat from all inputs at once); by default [`Self::in_ready`].
    fn in_ready_given(&self, k: usize, _in_valid: &[bool]) -> bool {
        self.in_ready(k)
    }
    /// Output `k`'s `out_valid` in this cycle (from the state only).
    fn out_valid(&self, k: usize) -> bool;
    /// The clock edge, given which inputs and outputs moved a beat in this cycle.
    fn clock(&mut self, in_fire: &[bool], out_fire: &[bool]);
}

/// Cycles of one frame's transfers at `s_axis` and `m_axis`, counted from the first
/// cycle after reset (as `bnnforge_testbench::stream::FrameTiming`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTimes {
    pub first_input: u64,
    pub last_input: u64,
    pub first_output: u64,
    pub last_output: u64,
}

/// Frames the design's steady-state interval is taken over ([`Timing::of`]).
pub const STEADY_FRAMES: usize = 8;

/// The design's interval and latency from its cycle model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Cycles between frames' last output beats, frames back to back at full rate: the
    /// mean over the last half of [`STEADY_FRAMES`] frames, rounded up.
    pub interval: u64,
    /// The first frame's first input beat to its last output beat, idle pipeline.
    pub latency: u64,
}

impl Timing {
    pub fn of(d: &Design) -> Timing {
        let f = run(d, STEADY_FRAMES);
        let half = STEADY_FRAMES / 2;
        let span = f[STEADY_FRAMES - 1].last_output - f[STEADY_FRAMES - 1 - half].last_output;
        Timing {
            interval: span.div_ceil(half as u64),
            latency: f[0].last_output - f[0].first_input,
        }
    }
}

/// The mean cycles between consecutive frames' last outputs (as the co-simulation's
/// `StreamRun::interval`); `None` for fewer than two frames.
pub fn mean_interval(frames: &[FrameTimes]) -> Option<f64> {
    let n = frames.len();
    (n >= 2).then(|| (frames[n - 1].last_output - frames[0].last_output) as f64 / (n - 1) as f64)
}

/// `frames` frames through the design at full rate (every input beat offered from the
/// first cycle after reset, `m_axis` always ready): each frame's transfer cycles.
pub fn run(d: &Design, frames: usize) -> Vec<FrameTimes> {
    let mut engines: Vec<Box<dyn StreamTiming>> =
        d.engines.iter().map(|e| e.kind.spec().timing()).collect();
    let n = d.streams.len();
    // each stream's producer and consumer: (engine, port)
    let mut producer = vec![None; n];
    let mut consumer = vec![None; n];
    for (i, e) in d.engines.iter().enumerate() {
        for (k, &s) in e.inputs.iter().enumerate() {
            consumer[s] = Some((i, k));
        }
        for (k, &s) in e.outputs.iter().enumerate() {
            producer[s] = Some((i, k));
        }
    }
    let (in_beats, out_beats) = (d.streams[0].beats() as u64, d.output().beats() as u64);
    let mut times = vec![FrameTimes::default(); frames];
    let (mut taken, mut given) = (0u64, 0u64);
    let total_in = in_beats * frames as u64;
    let total_out = out_beats * frames as u64;
    let mut in_fire: Vec<Vec<bool>> = d
        .engines
        .iter()
        .map(|e| vec![false; e.inputs.len()])
        .collect();
    let mut out_fire: Vec<Vec<bool>> = d
        .engines
        .iter()
        .map(|e| vec![false; e.outputs.len()])
        .collect();
    let (mut valid, mut ready, mut offered) = (vec![false; n], vec![false; n], vec![]);
    // no beat moves for a while when a slow engine computes, but not for two frames of
    // the slowest engine: then a cycle model deadlocks
    let idle_limit = 2 * d.slowest_engine_cycles() + 100_000;
    let (mut cycle, mut last_move) = (0u64, 0u64);
    while given < total_out {
        assert!(
            cycle - last_move < idle_limit,
            "{}: the cycle model stalls at cycle {cycle} ({taken} input beats taken, {given} \
             output beats out)",
            d.top
        );
        let mut moved = false;
        // valids from the producers' states, then readies (which may follow them)
        for s in 0..n {
            valid[s] = match producer[s] {
                Some((i, k)) => engines[i].out_valid(k),
                None => taken < total_in,
            };
        }
        ready[d.output] = true;
        for (i, e) in d.engines.iter().enumerate() {
            offered.clear();
            offered.extend(e.inputs.iter().map(|&x| valid[x]));
            for (k, &s) in e.inputs.iter().enumerate() {
                ready[s] = engines[i].in_ready_given(k, &offered);
            }
        }
        for s in 0..n {
            let fire = valid[s] && ready[s];
            if let Some((i, k)) = producer[s] {
                out_fire[i][k] = fire;
            }
            if let Some((i, k)) = consumer[s] {
                in_fire[i][k] = fire;
            }
            if !fire {
                continue;
            }
            moved = true;
            if producer[s].is_none() {
                let (f, b) = ((taken / in_beats) as usize, taken % in_beats);
                if b == 0 {
                    times[f].first_input = cycle;
                }
                if b + 1 == in_beats {
                    times[f].last_input = cycle;
                }
                taken += 1;
            }
            if consumer[s].is_none() {
                let (f, b) = ((given / out_beats) as usize, given % out_beats);
                if b == 0 {
                    times[f].first_output = cycle;
                }
                if b + 1 == out_beats {
                    times[f].last_output = cycle;
                }
                given += 1;
            }
        }
        for (i, e) in engines.iter_mut().enumerate() {
            e.clock(&in_fire[i], &out_fire[i]);
        }
        if moved {
            last_move = cycle;
        }
        cycle += 1;
    }
    times
}
