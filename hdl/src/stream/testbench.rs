//! The stream testbench of the blocks' and engines' tests: a block with `INS` input and
//! `OUTS` output ready/valid streams runs in rust-hdl's simulator under a stall pattern
//! (random on both sides), with the engine contract's protocol rules checked in every
//! cycle; the run's inputs are then replayed on the block's generated Verilog in Icarus,
//! whose outputs must equal rust-hdl's in every cycle.

use crate::compile::timing::StreamTiming;
use crate::testutil::{iverilog_wired, Port};
use rand::Rng;
use rust_hdl::prelude::*;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// The ports of a block with `INS` input streams and `OUTS` output streams, named as in
/// `ENGINES.md`: `in_…`/`out_…`; several streams listed under one prefix are packed
/// ports (stream 0 in the low bits; outputs share the data).
pub trait StreamDut: Block + Send + 'static {
    fn clock(&mut self) -> &mut Signal<In, Clock>;
    fn set_reset(&mut self, r: bool);
    /// Port name prefix and data width of each input stream.
    fn ins(&self) -> Vec<(String, usize)>;
    /// Port name prefix and data width of each output stream.
    fn outs(&self) -> Vec<(String, usize)>;
    fn set_in(&mut self, k: usize, valid: bool, data: u128);
    fn in_ready(&self, k: usize) -> bool;
    fn set_out_ready(&mut self, k: usize, ready: bool);
    fn out(&self, k: usize) -> (bool, u128);
    /// Whether the block may offer a frame's first output beats before it takes that
    /// frame's input (a window whose first windows lie wholly in the padding): then a
    /// beat after the expected ones is the next frame's, not a fault.
    fn emits_ahead(&self) -> bool {
        false
    }
}

/// [`StreamDut`] for a block with the contract's ports of one input and one output
/// stream (`clock`, `reset`, `in_data`/`in_valid`/`in_ready`, `out_data`/`out_valid`/
/// `out_ready`): `single_stream_dut!(Type<A, B>, in width, out width, [const A: usize,
/// const B: usize])`, with `, emits_ahead` after the generics for a block that does
/// ([`StreamDut::emits_ahead`]).
macro_rules! single_stream_dut {
    (@ahead) => {
        false
    };
    (@ahead emits_ahead) => {
        true
    };
    ($t:ty, $iw:expr, $ow:expr, [$($g:tt)*] $(, $ahead:ident)?) => {
        const _: () = {
            use rust_hdl::prelude::*;
            impl<$($g)*> $crate::stream::testbench::StreamDut for $t {
                fn clock(&mut self) -> &mut Signal<In, Clock> {
                    &mut self.clock
                }
                fn set_reset(&mut self, r: bool) {
                    self.reset.next = r;
                }
                fn ins(&self) -> Vec<(String, usize)> {
                    vec![("in".into(), $iw)]
                }
                fn outs(&self) -> Vec<(String, usize)> {
                    vec![("out".into(), $ow)]
                }
                fn set_in(&mut self, _k: usize, valid: bool, data: u128) {
                    self.in_valid.next = valid;
                    self.in_data.next = data.to_bits();
                }
                fn in_ready(&self, _k: usize) -> bool {
                    self.in_ready.val()
                }
                fn set_out_ready(&mut self, _k: usize, ready: bool) {
                    self.out_ready.next = ready;
                }
                fn out(&self, _k: usize) -> (bool, u128) {
                    (self.out_valid.val(), self.out_data.val().to_u128())
                }
                fn emits_ahead(&self) -> bool {
                    $crate::stream::testbench::single_stream_dut!(@ahead $($ahead)?)
                }
            }
        };
    };
}
pub(crate) use single_stream_dut;

/// Cycles run after the last expected output beat of a run with [`Pattern::until`]:
/// every output ready, nothing offered, and no beat may come out (unless the block
/// [emits ahead](StreamDut::emits_ahead)).
pub const DRAIN: usize = 20;

/// Per cycle: for each input, whether it offers its next beat (once offered, a beat
/// stays offered until taken); for each output, whether it is ready.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub offer: Vec<Vec<bool>>,
    pub ready: Vec<Vec<bool>>,
    /// Reset is high in the first `reset` cycles (no beat offered then).
    pub reset: usize,
    /// Stop once every output stream has this many beats (then [`DRAIN`] cycles), not
    /// at the end of the pattern.
    pub until: Option<usize>,
}

impl Pattern {
    /// `cycles` cycles; input k offers with probability `p_in`, outputs are ready with
    /// probability `p_out` (1.0 = never stalls).
    pub fn random(
        rng: &mut impl Rng,
        ins: usize,
        outs: usize,
        cycles: usize,
        p_in: f64,
        p_out: f64,
    ) -> Self {
        let mut gen = |n: usize, p: f64| -> Vec<Vec<bool>> {
            (0..n)
                .map(|_| (0..cycles).map(|_| rng.gen_bool(p)).collect())
                .collect()
        };
        let offer = gen(ins, p_in);
        let ready = gen(outs, p_out);
        Self {
            offer,
            ready,
            reset: 3,
            until: None,
        }
    }

    /// `cycles` cycles without a stall, but for the outputs' during `stalled`.
    pub fn full_rate(ins: usize, outs: usize, cycles: usize, stalled: Range<usize>) -> Self {
        let ready = (0..cycles).map(|t| !stalled.contains(&t)).collect();
        Self {
            offer: vec![vec![true; cycles]; ins],
            ready: vec![ready; outs],
            reset: 3,
            until: None,
        }
    }

    /// The same pattern, stopped once every output has `beats` beats.
    pub fn until(self, beats: usize) -> Self {
        Self {
            until: Some(beats),
            ..self
        }
    }

    pub fn cycles(&self) -> usize {
        self.offer
            .first()
            .or(self.ready.first())
            .map(|v| v.len())
            .unwrap_or(0)
    }
}

/// What a run produced: per output stream (data, cycle) of each beat taken; per input
/// stream the cycle each beat was taken; and every cycle's inputs and outputs, for the
/// replay in Icarus.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub outs: Vec<Vec<(u128, usize)>>,
    pub ins: Vec<Vec<usize>>,
    /// Per cycle the values driven: reset, each input's valid and data, each output's
    /// ready.
    pub vectors: Vec<Vec<u128>>,
    /// Per cycle just after the rising edge: each input's ready, each output's valid
    /// and data.
    pub rows: Vec<Vec<u128>>,
    /// Per cycle after reset, the handshakes before the edge, for [`Trace::assert_timing`].
    pub handshakes: Vec<Handshake>,
    in_ports: Vec<(String, usize)>,
    out_ports: Vec<(String, usize)>,
}

/// One cycle's valid and ready of every input and output stream.
#[derive(Clone, Debug, Default)]
pub struct Handshake {
    pub in_valid: Vec<bool>,
    pub in_ready: Vec<bool>,
    pub out_valid: Vec<bool>,
    pub out_ready: Vec<bool>,
}

impl Trace {
    /// The block's cycle model `model` (in its state just after reset) has the run's
    /// `in_ready` and `out_valid` in every cycle after reset, fed the run's `in_valid`
    /// and `out_ready`; panics at the first cycle that differs.
    pub fn assert_timing(&self, label: &str, mut model: Box<dyn StreamTiming>) {
        for (t, h) in self.handshakes.iter().enumerate() {
            let in_ready: Vec<bool> = (0..h.in_ready.len())
                .map(|k| model.in_ready_given(k, &h.in_valid))
                .collect();
            let out_valid: Vec<bool> = (0..h.out_valid.len()).map(|k| model.out_valid(k)).collect();
            assert!(
                in_ready == h.in_ready && out_valid == h.out_valid,
                "{label}: the cycle model differs from rust-hdl {t} cycles after reset: \
                 in_ready {in_ready:?} vs {:?}, out_valid {out_valid:?} vs {:?} (in_valid {:?}, \
                 out_ready {:?}; beats so far in {:?}, out {:?})",
                h.in_ready,
                h.out_valid,
                h.in_valid,
                h.out_ready,
                self.handshakes[..t]
                    .iter()
                    .map(|h| h
                        .in_valid
                        .iter()
                        .zip(&h.in_ready)
                        .filter(|(v, r)| **v && **r)
                        .count())
                    .sum::<usize>(),
                self.handshakes[..t]
                    .iter()
                    .map(|h| h
                        .out_valid
                        .iter()
                        .zip(&h.out_ready)
                        .filter(|(v, r)| **v && **r)
                        .count())
                    .sum::<usize>(),
            );
            let in_fire: Vec<bool> = h
                .in_valid
                .iter()
                .zip(&in_ready)
                .map(|(v, r)| *v && *r)
                .collect();
            let out_fire: Vec<bool> = h
                .out_ready
                .iter()
                .zip(&out_valid)
                .map(|(r, v)| *v && *r)
                .collect();
            model.clock(&in_fire, &out_fire);
        }
    }

    pub fn out_data(&self, k: usize) -> Vec<u128> {
        self.outs[k].iter().map(|b| b.0).collect()
    }

    /// Cycles from output `k`'s first beat to its last, both counted: its beat count
    /// when it never stalled.
    pub fn out_span(&self, k: usize) -> usize {
        self.outs[k].last().unwrap().1 + 1 - self.outs[k][0].1
    }

    /// The same of input `k`.
    pub fn in_span(&self, k: usize) -> usize {
        self.ins[k].last().unwrap() + 1 - self.ins[k][0]
    }

    /// Beats input `k` took before cycle `t`.
    pub fn taken_before(&self, k: usize, t: usize) -> usize {
        self.ins[k].iter().filter(|&&c| c < t).count()
    }

    /// Cycles from the first input beat taken to the first output beat taken.
    pub fn latency(&self) -> u64 {
        (self.outs[0][0].1 - self.ins[0][0]) as u64
    }

    /// Mean cycles per frame of a run of `frames` frames of equally many output beats:
    /// between the last beats of the first and the last frame, over the frames between.
    pub fn cycles_per_frame(&self, frames: usize) -> u64 {
        assert!(frames >= 2, "cycles per frame needs two frames or more");
        let per = self.outs[0].len() / frames;
        let span = self.outs[0][frames * per - 1].1 - self.outs[0][per - 1].1;
        span as u64 / (frames as u64 - 1)
    }

    /// [`Self::cycles_per_frame`] is exactly `cpf` (printed with `label`).
    pub fn assert_cycles_per_frame(&self, frames: usize, cpf: u64, label: &str) {
        let measured = self.cycles_per_frame(frames);
        println!("{label}: cycles/frame {measured} (formula {cpf})");
        assert_eq!(measured, cpf, "{label}: cycles per frame");
    }

    /// Cycles between the first output beats of the last two of `frames` frames of
    /// equally many output beats: the steady-state frame interval.
    pub fn last_frame_interval(&self, frames: usize) -> u64 {
        assert!(frames >= 2, "a frame interval needs two frames or more");
        let per = self.outs[0].len() / frames;
        (self.outs[0][(frames - 1) * per].1 - self.outs[0][(frames - 2) * per].1) as u64
    }
}

/// Run `dut` in rust-hdl's simulator with inputs `data[k]` under `pat`. Also checks
/// the contract's protocol rules at every cycle: an offered output beat stays offered
/// and unchanged until taken; `in_ready` does not change when any `out_ready`
/// changes; `out_valid` does not change when any `in_valid` changes; with
/// [`Pattern::until`], no beat after the expected ones (unless the block
/// [emits ahead](StreamDut::emits_ahead)).
pub fn run_sim<D: StreamDut>(mut dut: D, data: &[Vec<u128>], pat: &Pattern) -> Trace {
    dut.connect_all();
    let (in_ports, out_ports) = (dut.ins(), dut.outs());
    let quiet_drain = !dut.emits_ahead();
    let (ins, outs) = (in_ports.len(), out_ports.len());
    assert_eq!(data.len(), ins);
    let cycles = pat.cycles();
    let data = data.to_vec();
    let pat = pat.clone();
    let trace = Arc::new(Mutex::new(Trace {
        outs: vec![vec![]; outs],
        ins: vec![vec![]; ins],
        in_ports,
        out_ports,
        ..Trace::default()
    }));
    let sink = trace.clone();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let err_sink = errors.clone();
    let mut sim = Simulation::new();
    // period 100: rising edges at 50, 150, ...; inputs change at 5, 10, 15 (+100k),
    // outputs after the edge are read at 55
    sim.add_clock(50, |x: &mut Box<D>| {
        let c = x.clock();
        c.next = !c.val()
    });
    sim.add_testbench(move |mut sim: Sim<D>| {
        let mut x = sim.init()?;
        let mut idx = vec![0usize; ins];
        let mut offering = vec![false; ins];
        let mut prev_out: Vec<Option<u128>> = vec![None; outs];
        // cycles of the drain so far, once every expected beat is out
        let mut drained: Option<usize> = None;
        x = sim.wait(5, x)?;
        for t in 0..cycles + DRAIN {
            if drained.is_none() && t >= cycles || drained == Some(DRAIN) {
                break;
            }
            let drain = drained.is_some();
            let reset = t < pat.reset;
            x.set_reset(reset);
            // a block that emits ahead keeps its next frame's beat offered in the drain
            let ready: Vec<bool> = (0..outs)
                .map(|k| if drain { quiet_drain } else { pat.ready[k][t] })
                .collect();
            let valid: Vec<bool> = (0..ins)
                .map(|k| {
                    !reset && !drain && (offering[k] || (pat.offer[k][t] && idx[k] < data[k].len()))
                })
                .collect();
            let beat = |k: usize, v: bool| if v { data[k][idx[k]] } else { 0 };
            // probe 1: every out_ready flipped
            for k in 0..ins {
                x.set_in(k, valid[k], beat(k, valid[k]));
            }
            for k in 0..outs {
                x.set_out_ready(k, !ready[k]);
            }
            x = sim.wait(5, x)?;
            let ready_flipped: Vec<bool> = (0..ins).map(|k| x.in_ready(k)).collect();
            // probe 2: every in_valid flipped
            for k in 0..ins {
                x.set_in(k, !valid[k], beat(k, valid[k]));
            }
            for k in 0..outs {
                x.set_out_ready(k, ready[k]);
            }
            x = sim.wait(5, x)?;
            let valid_flipped: Vec<bool> = (0..outs).map(|k| x.out(k).0).collect();
            // the real values
            let mut vector = vec![reset as u128];
            for k in 0..ins {
                x.set_in(k, valid[k], beat(k, valid[k]));
                vector.extend([valid[k] as u128, beat(k, valid[k])]);
            }
            vector.extend(ready.iter().map(|&r| r as u128));
            x = sim.wait(5, x)?;
            let mut tr = sink.lock().unwrap();
            let mut errs = err_sink.lock().unwrap();
            tr.vectors.push(vector);
            if !reset {
                tr.handshakes.push(Handshake {
                    in_valid: valid.clone(),
                    in_ready: (0..ins).map(|k| x.in_ready(k)).collect(),
                    out_valid: (0..outs).map(|k| x.out(k).0).collect(),
                    out_ready: ready.clone(),
                });
            }
            for k in 0..ins {
                if x.in_ready(k) != ready_flipped[k] {
                    errs.push(format!(
                        "cycle {t}: in_ready of input {k} follows out_ready"
                    ));
                }
                if valid[k] && x.in_ready(k) {
                    tr.ins[k].push(t);
                    idx[k] += 1;
                    offering[k] = false;
                } else {
                    offering[k] = valid[k];
                }
            }
            for k in 0..outs {
                let (v, d) = x.out(k);
                if v != valid_flipped[k] {
                    errs.push(format!(
                        "cycle {t}: out_valid of output {k} follows in_valid"
                    ));
                }
                if let Some(p) = prev_out[k] {
                    if !v || d != p {
                        errs.push(format!(
                            "cycle {t}: output {k} beat {p:x} withdrawn or changed"
                        ));
                    }
                }
                prev_out[k] = None;
                if v && drain && quiet_drain {
                    errs.push(format!("cycle {t}: output {k} beat {d:x} beyond the last"));
                }
                if v && ready[k] {
                    tr.outs[k].push((d, t));
                } else if v && !reset {
                    prev_out[k] = Some(d);
                }
            }
            drop(errs);
            drop(tr);
            x = sim.wait(35, x)?;
            let mut row: Vec<u128> = (0..ins).map(|k| x.in_ready(k) as u128).collect();
            for k in 0..outs {
                let (v, d) = x.out(k);
                row.extend([v as u128, d]);
            }
            let mut tr = sink.lock().unwrap();
            tr.rows.push(row);
            drained = match drained {
                Some(n) => Some(n + 1),
                None => pat
                    .until
                    .filter(|&n| tr.outs.iter().all(|o| o.len() >= n))
                    .map(|_| 0),
            };
            drop(tr);
            x = sim.wait(50, x)?;
        }
        sim.done(x)
    });
    sim.run(Box::new(dut), 100 * ((cycles + DRAIN) as u64 + 2))
        .unwrap();
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "protocol violations: {errors:#?}");
    let t = trace.lock().unwrap().clone();
    t
}

/// Replay the run `tr` on the Verilog `verilog` (top module `top`, ports as the run's
/// block has them) in Icarus: the same inputs in every cycle, and every output must be
/// the same as in rust-hdl in every cycle (data only while valid). Streams under one
/// prefix are connected as the structural top does
/// (`crate::compile::top::TopBuilder::engine`): valid, ready and input data as Verilog
/// concatenations, stream 0 lowest; one data port shared by the outputs.
pub fn icarus_replay(name: &str, verilog: &str, tr: &Trace) {
    let mut inputs: Vec<(String, usize)> = vec![("reset".into(), 1)];
    let mut outputs: Vec<(String, usize)> = vec![];
    for (k, (_, w)) in tr.in_ports.iter().enumerate() {
        inputs.extend([(format!("i{k}_valid"), 1), (format!("i{k}_data"), *w)]);
        outputs.push((format!("i{k}_ready"), 1));
    }
    for (k, (_, w)) in tr.out_ports.iter().enumerate() {
        inputs.push((format!("o{k}_ready"), 1));
        outputs.extend([(format!("o{k}_valid"), 1), (format!("o{k}_data"), *w)]);
    }
    let (decls, mut conns) = packed_ports(&tr.in_ports, &tr.out_ports);
    conns.insert(0, ".reset(reset)".into());
    let rows = iverilog_wired(
        name,
        verilog,
        Some("clock"),
        &as_ports(&inputs),
        &as_ports(&outputs),
        &decls,
        &conns,
        &tr.vectors,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ins = tr.in_ports.len();
    for (t, (a, b)) in rows.iter().zip(&tr.rows).enumerate() {
        let same_ready = a[..ins] == b[..ins];
        // an output's data is only meaningful while it is valid
        let same_out = a[ins..]
            .chunks(2)
            .zip(b[ins..].chunks(2))
            .all(|(x, y)| x[0] == y[0] && (y[0] == 0 || x[1] == y[1]));
        assert!(
            same_ready && same_out,
            "{name}: Icarus and rust-hdl differ in cycle {t} (ready of each input, then \
             valid and data of each output): {a:x?} vs {b:x?}"
        );
    }
    assert_eq!(rows.len(), tr.rows.len(), "{name}: cycle count");
}

fn as_ports(v: &[(String, usize)]) -> Vec<Port<'_>> {
    v.iter().map(|(p, w)| (p.as_str(), *w)).collect()
}

/// The testbench's per-stream signals (`i{k}_…`, `o{k}_…`) on the DUT's ports:
/// declarations and `.port(signal)` connections. Streams that share a port prefix are
/// one packed port.
fn packed_ports(ins: &[(String, usize)], outs: &[(String, usize)]) -> (String, Vec<String>) {
    fn groups(streams: &[(String, usize)]) -> Vec<(String, Vec<usize>)> {
        let mut g: Vec<(String, Vec<usize>)> = vec![];
        for (k, (p, _)) in streams.iter().enumerate() {
            match g.iter_mut().find(|(q, _)| q == p) {
                Some((_, v)) => v.push(k),
                None => g.push((p.clone(), vec![k])),
            }
        }
        g
    }
    let cat = |side: &str, ks: &[usize], s: &str| -> String {
        let v: Vec<String> = ks.iter().rev().map(|k| format!("{side}{k}_{s}")).collect();
        if v.len() == 1 {
            v[0].clone()
        } else {
            format!("{{{}}}", v.join(", "))
        }
    };
    let (mut decls, mut conns) = (String::new(), vec![]);
    for (p, ks) in groups(ins) {
        for s in ["data", "valid", "ready"] {
            conns.push(format!(".{p}_{s}({})", cat("i", &ks, s)));
        }
    }
    for (p, ks) in groups(outs) {
        conns.push(format!(".{p}_data(o{}_data)", ks[0]));
        for k in &ks[1..] {
            decls += &format!("assign o{k}_data = o{}_data;\n", ks[0]);
        }
        for s in ["valid", "ready"] {
            conns.push(format!(".{p}_{s}({})", cat("o", &ks, s)));
        }
    }
    (decls, conns)
}

/// The block's Verilog as the compiler writes it (`module_tree`, top module `top`).
pub fn verilog_of<D: StreamDut>(mut dut: D) -> String {
    dut.connect_all();
    crate::compile::module_tree::module_tree(&dut, "top").unwrap()
}

/// `make()` run under `pat` in rust-hdl and, with `icarus` (a scratch name), the run
/// replayed on its Verilog in Icarus, cycle for cycle.
pub fn sim_and_icarus<D: StreamDut>(
    make: impl Fn() -> D,
    data: &[Vec<u128>],
    pat: &Pattern,
    icarus: Option<&str>,
) -> Trace {
    let tr = run_sim(make(), data, pat);
    if let Some(name) = icarus {
        icarus_replay(name, &verilog_of(make()), &tr);
    }
    tr
}

/// An engine with one input and one output stream (`make`, of `cycles_per_frame`
/// `cpf` and latency `lat`) on `frames` frames of `beats`, whose output must be `want`:
/// at full rate, where the latency must be `lat`, then under random stalls on both
/// streams (an input beat offered with probability 0.7 a cycle, the output ready with
/// 0.6), the stalled run replayed in Icarus when `icarus` names a scratch directory,
/// and at full rate with the output held for a frame (up to 300 cycles) early on.
/// Each run stops once `want` is out. Both runs' handshakes must be those of the
/// engine's cycle model `model` ([`Trace::assert_timing`]). Returns the full-rate
/// trace, for its intervals.
#[allow(clippy::too_many_arguments)]
pub fn check_engine<D: StreamDut>(
    label: &str,
    make: impl Fn() -> D,
    beats: &[u128],
    want: &[u128],
    frames: usize,
    (cpf, lat): (u64, u64),
    rng: &mut impl Rng,
    icarus: Option<&str>,
    model: Option<&dyn Fn() -> Box<dyn StreamTiming>>,
) -> Trace {
    let max_cycles = frames * cpf as usize * 4 + beats.len() + want.len() + 300;
    let data = [beats.to_vec()];
    let pat = Pattern::full_rate(1, 1, max_cycles, 0..0).until(want.len());
    let full = run_sim(make(), &data, &pat);
    assert_eq!(full.out_data(0), want, "full rate {label}");
    println!("{label}: latency {} (formula {lat})", full.latency());
    assert_eq!(full.latency(), lat, "latency {label}");
    let pat = Pattern::random(rng, 1, 1, max_cycles * 4, 0.7, 0.6).until(want.len());
    let stalled = sim_and_icarus(&make, &data, &pat, icarus);
    assert_eq!(stalled.out_data(0), want, "with stalls {label}");
    // the output held for a frame (at most 300 cycles) while the input keeps offering:
    // every queue and buffer fills, none may overflow
    let held = 10..10 + cpf.min(300) as usize + 20;
    let pat = Pattern::full_rate(1, 1, max_cycles + held.len(), held).until(want.len());
    let held = run_sim(make(), &data, &pat);
    assert_eq!(held.out_data(0), want, "output held {label}");
    if let Some(m) = model {
        full.assert_timing(&format!("full rate {label}"), m());
        stalled.assert_timing(&format!("with stalls {label}"), m());
        held.assert_timing(&format!("output held {label}"), m());
    }
    full
}

/// Frames of elements of `bits` bits as beats of `lanes` lanes, element i of a beat in
/// bits [i·bits, (i+1)·bits), each frame from a new beat, the lanes past a frame's end
/// filled by `fill`.
pub fn pack_frames(
    frames: &[Vec<u128>],
    lanes: usize,
    bits: usize,
    fill: &mut dyn FnMut() -> u128,
) -> Vec<u128> {
    let mut beats = vec![];
    for f in frames {
        for chunk in f.chunks(lanes) {
            let mut beat = 0u128;
            for i in 0..lanes {
                let v = chunk.get(i).copied().unwrap_or_else(&mut *fill);
                beat |= v << (i * bits);
            }
            beats.push(beat);
        }
    }
    beats
}

/// Random beats of `w` bits.
pub fn random_beats(rng: &mut impl Rng, n: usize, w: usize) -> Vec<u128> {
    let mask = if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    };
    (0..n).map(|_| rng.gen::<u128>() & mask).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::fifo::{FifoTiming, StreamFifo};
    use crate::stream::skid_buffer::SkidBuffer;

    /// A register slice with the skid buffer's ports but a combinational `in_ready`:
    /// the same beats, taken in other cycles under output stalls.
    const ONE_ENTRY: &str = "module top(input clock, input reset,
  input [7:0] in_data, input in_valid, output in_ready,
  output reg [7:0] out_data, output reg out_valid, input out_ready);
assign in_ready = !out_valid || out_ready;
always @(posedge clock)
  if (reset) out_valid <= 0;
  else if (in_ready) begin out_valid <= in_valid; out_data <= in_data; end
endmodule
";

    #[test]
    #[should_panic(expected = "Icarus and rust-hdl differ in cycle")]
    fn the_replay_finds_verilog_that_is_not_the_simulated_block() {
        let mut rng = bnnforge_model::random::test_rng("testbench_replay");
        let data = vec![random_beats(&mut rng, 40, 8)];
        // the output stalls every third cycle: the skid buffer takes a beat there, the
        // one-entry slice does not
        let mut pat = Pattern::full_rate(1, 1, 80, 0..0);
        for t in (0..80).step_by(3) {
            pat.ready[0][t] = false;
        }
        let tr = run_sim(SkidBuffer::<8>::new(), &data, &pat);
        assert_eq!(tr.out_data(0), data[0]);
        icarus_replay("testbench_replay", ONE_ENTRY, &tr);
    }

    #[test]
    #[should_panic(expected = "FIFO of 4 as one of 5: the cycle model differs from rust-hdl")]
    fn the_cycle_check_finds_a_model_of_another_block() {
        let mut rng = bnnforge_model::random::test_rng("testbench_cycle_model");
        let data = vec![random_beats(&mut rng, 40, 8)];
        // the output stalls from cycle 3 on: a FIFO of 5 entries (+ 2 in its output
        // stage) takes a beat more than one of 4
        let pat = Pattern::full_rate(1, 1, 30, 3..30);
        let tr = run_sim(StreamFifo::<8, 3>::new(4), &data, &pat);
        tr.assert_timing("FIFO of 4", Box::new(FifoTiming::new(4)));
        tr.assert_timing("FIFO of 4 as one of 5", Box::new(FifoTiming::new(5)));
    }
}
