//! `SkidBuffer<W>`: a two-entry register slice on a ready/valid stream. Passes beats
//! through unchanged and cuts every combinational path between its two sides
//! (`out_valid`/`out_data` from the `main` register, `in_ready` from the `skid`
//! register's state): the block the other stream blocks use to meet the engine contract.
//!
//! ```text
//!  in_data ──┬──► [skid, skid_v] ──┐          in_ready = !skid_v
//!            └───────────────────►(mux)──► [main, main_v] ──► out_data, out_valid
//! ```
//! When `main` is free (empty, or its beat taken this cycle) it loads the skid beat if
//! any, else the input beat; when it is held, an input beat goes into `skid`.
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data`, `out_data: Bits<W>`.
//! Generic: `W` ≥ 1 beat bits. Cycles: one beat per cycle. Latency: 1. Capacity: 2 beats.

use rust_hdl::prelude::*;

/// Two-entry register slice (see the module documentation).
#[derive(LogicBlock)]
pub struct SkidBuffer<const W: usize> {
    /// Clock; everything is sampled on its rising edge.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset, active high: both entries empty.
    pub reset: Signal<In, Bit>,
    /// Input beat.
    pub in_data: Signal<In, Bits<W>>,
    /// An input beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The buffer takes the input beat this cycle if `in_valid` (state only).
    pub in_ready: Signal<Out, Bit>,
    /// Output beat (registered).
    pub out_data: Signal<Out, Bits<W>>,
    /// An output beat is offered (registered).
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the output beat this cycle.
    pub out_ready: Signal<In, Bit>,
    main: DFF<Bits<W>>,
    main_v: DFF<Bit>,
    skid: DFF<Bits<W>>,
    skid_v: DFF<Bit>,
}

impl<const W: usize> SkidBuffer<W> {
    /// A skid buffer for `W`-bit beats.
    pub fn new() -> Self {
        assert!(W >= 1, "SkidBuffer: W = {W} must be at least 1");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            main: Default::default(),
            main_v: Default::default(),
            skid: Default::default(),
            skid_v: Default::default(),
        }
    }

    /// Cycles per frame of `beats` beats at full rate.
    pub fn cycles_per_frame_of(&self, beats: u64) -> u64 {
        beats
    }

    /// One beat per cycle: `cycles_per_frame` of a one-beat frame.
    pub fn cycles_per_frame(&self) -> u64 {
        1
    }

    /// Cycles from a beat taken to the same beat offered.
    pub fn latency(&self) -> u64 {
        1
    }
}

impl<const W: usize> Default for SkidBuffer<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Logic for SkidBuffer<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, main, main_v, skid, skid_v);
        self.in_ready.next = !self.skid_v.q.val();
        self.out_valid.next = self.main_v.q.val();
        self.out_data.next = self.main.q.val();
        if !self.main_v.q.val() || self.out_ready.val() {
            if self.skid_v.q.val() {
                self.main.d.next = self.skid.q.val();
                self.main_v.d.next = true;
                self.skid_v.d.next = false;
            } else {
                self.main_v.d.next = self.in_valid.val();
                if self.in_valid.val() {
                    self.main.d.next = self.in_data.val();
                }
            }
        } else if self.in_valid.val() && !self.skid_v.q.val() {
            self.skid.d.next = self.in_data.val();
            self.skid_v.d.next = true;
        }
        if self.reset.val() {
            self.main_v.d.next = false;
            self.skid_v.d.next = false;
        }
    }
}

/// A stream testbench shared by the stream blocks' tests (skid buffer, FIFO, lane
/// converter, fork, residual adder): the same random stall pattern drives the rust-hdl
/// simulation and the generated Verilog in Icarus, cycle for cycle.
#[cfg(test)]
pub(crate) mod testbench {
    use crate::synth::scratch_dir;
    use rand::Rng;
    use rust_hdl::prelude::*;
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    /// The ports of a block with `INS` input streams and `OUTS` output streams,
    /// named as in `ENGINES.md`: `in_…`/`out_…`; several streams listed under one
    /// prefix are packed ports (stream 0 in the low bits; outputs share the data).
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
    }

    /// Per cycle: for each input, whether it offers its next beat (once offered, a beat
    /// stays offered until taken); for each output, whether it is ready.
    #[derive(Clone, Debug)]
    pub struct Pattern {
        pub offer: Vec<Vec<bool>>,
        pub ready: Vec<Vec<bool>>,
        /// Reset is high in the first `reset` cycles (no beat offered then).
        pub reset: usize,
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

    /// What a run produced: per output stream (data, cycle) of each beat taken; per
    /// input stream the cycle each beat was taken.
    #[derive(Clone, Debug, PartialEq, Eq, Default)]
    pub struct Trace {
        pub outs: Vec<Vec<(u128, usize)>>,
        pub ins: Vec<Vec<usize>>,
    }

    impl Trace {
        pub fn out_data(&self, k: usize) -> Vec<u128> {
            self.outs[k].iter().map(|b| b.0).collect()
        }
    }

    /// Run `dut` in rust-hdl's simulator with inputs `data[k]` under `pat`. Also checks
    /// the contract's protocol rules at every cycle: an offered output beat stays offered
    /// and unchanged until taken; `in_ready` does not change when any `out_ready`
    /// changes; `out_valid` does not change when any `in_valid` changes.
    pub fn run_sim<D: StreamDut>(mut dut: D, data: &[Vec<u128>], pat: &Pattern) -> Trace {
        dut.connect_all();
        let ins = dut.ins().len();
        let outs = dut.outs().len();
        assert_eq!(data.len(), ins);
        let cycles = pat.cycles();
        let data = data.to_vec();
        let pat = pat.clone();
        let trace = Arc::new(Mutex::new(Trace {
            outs: vec![vec![]; outs],
            ins: vec![vec![]; ins],
        }));
        let sink = trace.clone();
        let errors = Arc::new(Mutex::new(Vec::<String>::new()));
        let err_sink = errors.clone();
        let mut sim = Simulation::new();
        // period 100: rising edges at 50, 150, ...; inputs change at 5, 10, 15 (+100k)
        sim.add_clock(50, |x: &mut Box<D>| {
            let c = x.clock();
            c.next = !c.val()
        });
        sim.add_testbench(move |mut sim: Sim<D>| {
            let mut x = sim.init()?;
            let mut idx = vec![0usize; ins];
            let mut offering = vec![false; ins];
            let mut prev_out: Vec<Option<u128>> = vec![None; outs];
            x = sim.wait(5, x)?;
            for t in 0..cycles {
                let reset = t < pat.reset;
                x.set_reset(reset);
                let valid: Vec<bool> = (0..ins)
                    .map(|k| !reset && (offering[k] || (pat.offer[k][t] && idx[k] < data[k].len())))
                    .collect();
                let beat = |k: usize, v: bool| if v { data[k][idx[k]] } else { 0 };
                // probe 1: every out_ready flipped
                for k in 0..ins {
                    x.set_in(k, valid[k], beat(k, valid[k]));
                }
                for k in 0..outs {
                    x.set_out_ready(k, !pat.ready[k][t]);
                }
                x = sim.wait(5, x)?;
                let ready_flipped: Vec<bool> = (0..ins).map(|k| x.in_ready(k)).collect();
                // probe 2: every in_valid flipped
                for k in 0..ins {
                    x.set_in(k, !valid[k], beat(k, valid[k]));
                }
                for k in 0..outs {
                    x.set_out_ready(k, pat.ready[k][t]);
                }
                x = sim.wait(5, x)?;
                let valid_flipped: Vec<bool> = (0..outs).map(|k| x.out(k).0).collect();
                // the real values
                for k in 0..ins {
                    x.set_in(k, valid[k], beat(k, valid[k]));
                }
                x = sim.wait(5, x)?;
                let mut tr = sink.lock().unwrap();
                for k in 0..ins {
                    if x.in_ready(k) != ready_flipped[k] {
                        err_sink.lock().unwrap().push(format!(
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
                        err_sink.lock().unwrap().push(format!(
                            "cycle {t}: out_valid of output {k} follows in_valid"
                        ));
                    }
                    if let Some(p) = prev_out[k] {
                        if !v || d != p {
                            err_sink.lock().unwrap().push(format!(
                                "cycle {t}: output {k} beat {p:x} withdrawn or changed"
                            ));
                        }
                    }
                    prev_out[k] = None;
                    if v && pat.ready[k][t] {
                        tr.outs[k].push((d, t));
                    } else if v && !reset {
                        prev_out[k] = Some(d);
                    }
                }
                drop(tr);
                x = sim.wait(85, x)?;
            }
            sim.done(x)
        });
        sim.run(Box::new(dut), 100 * (cycles as u64 + 2)).unwrap();
        let errors = errors.lock().unwrap();
        assert!(errors.is_empty(), "protocol violations: {errors:#?}");
        let t = trace.lock().unwrap().clone();
        t
    }

    /// Run the Verilog `verilog` (top module `top`, ports of `ins`/`outs` named as by
    /// [`StreamDut`]) in Icarus under the same pattern and return the same trace.
    /// Streams under one prefix are connected as the structural top does
    /// (`crate::compile::top::TopBuilder::engine`): valid, ready and input data as Verilog
    /// concatenations, stream 0 lowest; one data port shared by the outputs.
    pub fn run_icarus(
        name: &str,
        verilog: &str,
        ins: &[(String, usize)],
        outs: &[(String, usize)],
        data: &[Vec<u128>],
        pat: &Pattern,
    ) -> Trace {
        let dir = scratch_dir(name);
        let cycles = pat.cycles();
        let mut tb = String::from(
            "`timescale 1ns/1ps\nmodule tb;\nreg clock = 0;\nreg reset = 1;\ninteger t;\n",
        );
        let mut conns = vec![".clock(clock)".to_string(), ".reset(reset)".to_string()];
        for (k, (_, w)) in ins.iter().enumerate() {
            let n = data[k].len().max(1);
            tb += &format!(
                "reg [{w1}:0] i{k}_data = 0; reg i{k}_valid = 0; wire i{k}_ready;\n\
                 reg [{w1}:0] mem{k} [0:{n1}]; reg [0:0] off{k} [0:{c1}];\n\
                 integer idx{k} = 0; reg offering{k} = 0;\n\
                 initial begin $readmemh(\"in{k}.hex\", mem{k}); $readmemh(\"off{k}.hex\", off{k}); end\n",
                w1 = w - 1,
                n1 = n - 1,
                c1 = cycles - 1
            );
            let hex: Vec<String> = data[k].iter().map(|d| format!("{d:x}")).collect();
            let hex = if hex.is_empty() {
                "0".to_string()
            } else {
                hex.join("\n")
            };
            std::fs::write(dir.join(format!("in{k}.hex")), hex + "\n").unwrap();
            let bits: Vec<&str> = pat.offer[k]
                .iter()
                .map(|&b| if b { "1" } else { "0" })
                .collect();
            std::fs::write(dir.join(format!("off{k}.hex")), bits.join("\n") + "\n").unwrap();
        }
        for (k, (_, w)) in outs.iter().enumerate() {
            tb += &format!(
                "wire [{w1}:0] o{k}_data; wire o{k}_valid; reg o{k}_ready = 0;\n\
                 reg [0:0] rdy{k} [0:{c1}];\n\
                 initial $readmemh(\"rdy{k}.hex\", rdy{k});\n",
                w1 = w - 1,
                c1 = cycles - 1
            );
            let bits: Vec<&str> = pat.ready[k]
                .iter()
                .map(|&b| if b { "1" } else { "0" })
                .collect();
            std::fs::write(dir.join(format!("rdy{k}.hex")), bits.join("\n") + "\n").unwrap();
        }
        let (tb_ports, ports) = packed_ports(ins, outs);
        tb += &tb_ports;
        conns.extend(ports);
        tb += &format!("top dut({});\n", conns.join(", "));
        tb += "initial begin\n  #1;\n";
        tb += &format!("  for (t = 0; t < {cycles}; t = t + 1) begin\n");
        tb += &format!("    reset = (t < {});\n", pat.reset);
        for k in 0..ins.len() {
            tb += &format!(
                "    i{k}_valid = !reset && (offering{k} || (off{k}[t] && idx{k} < {n}));\n\
                 \x20   i{k}_data = i{k}_valid ? mem{k}[idx{k}] : 0;\n",
                n = data[k].len()
            );
        }
        for k in 0..outs.len() {
            tb += &format!("    o{k}_ready = rdy{k}[t];\n");
        }
        tb += "    #1;\n";
        for k in 0..ins.len() {
            tb += &format!(
                "    if (i{k}_valid && i{k}_ready) begin $display(\"I {k} %0d\", t); idx{k} = idx{k} + 1; offering{k} = 0; end\n\
                 \x20   else offering{k} = i{k}_valid;\n"
            );
        }
        for k in 0..outs.len() {
            tb += &format!(
                "    if (o{k}_valid && o{k}_ready) $display(\"O {k} %h %0d\", o{k}_data, t);\n"
            );
        }
        tb += "    #4 clock = 1; #5 clock = 0;\n  end\n  $finish;\nend\nendmodule\n";
        std::fs::write(dir.join("design.v"), verilog).unwrap();
        std::fs::write(dir.join("tb.v"), &tb).unwrap();
        let comp = Command::new("iverilog")
            .current_dir(&dir)
            .args(["-g2005", "-o", "sim", "tb.v", "design.v"])
            .output()
            .expect("cannot run iverilog");
        assert!(
            comp.status.success(),
            "iverilog failed on {name}: {}",
            String::from_utf8_lossy(&comp.stderr)
        );
        let run = Command::new("vvp")
            .current_dir(&dir)
            .args(["-n", "sim"])
            .output()
            .expect("cannot run vvp");
        let text = String::from_utf8_lossy(&run.stdout);
        let mut tr = Trace {
            outs: vec![vec![]; outs.len()],
            ins: vec![vec![]; ins.len()],
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["I", k, t] => tr.ins[k.parse::<usize>().unwrap()].push(t.parse().unwrap()),
                ["O", k, d, t] => tr.outs[k.parse::<usize>().unwrap()].push((
                    u128::from_str_radix(d, 16)
                        .unwrap_or_else(|_| panic!("{name}: undefined output {d}")),
                    t.parse().unwrap(),
                )),
                _ => {}
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        tr
    }

    /// The testbench's per-stream signals (`i{k}_…`, `o{k}_…`) on the DUT's ports:
    /// wire declarations and `.port(signal)` connections. Streams that share a port
    /// prefix are one packed port.
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

    /// Random beats of `w` bits.
    pub fn random_beats(rng: &mut impl Rng, n: usize, w: usize) -> Vec<u128> {
        let mask = if w >= 128 {
            u128::MAX
        } else {
            (1u128 << w) - 1
        };
        (0..n).map(|_| rng.gen::<u128>() & mask).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testbench::*;
    use super::*;
    use crate::synth::ice40_stats;
    use crate::testutil;

    impl<const W: usize> StreamDut for SkidBuffer<W> {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("in".into(), W)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out".into(), W)]
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
    }

    fn run<const W: usize>(rng: &mut impl rand::Rng, beats: usize, p_in: f64, p_out: f64) {
        let data = vec![random_beats(rng, beats, W)];
        let cycles = (beats as f64 / p_in.min(p_out)) as usize * 2 + 20;
        let pat = Pattern::random(rng, 1, 1, cycles, p_in, p_out);
        let tr = run_sim(SkidBuffer::<W>::new(), &data, &pat);
        let label = format!("SkidBuffer<{W}> p_in {p_in} p_out {p_out}");
        assert_eq!(tr.out_data(0), data[0], "rust-hdl {label}");
        let mut uut = SkidBuffer::<W>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        let uut = SkidBuffer::<W>::new();
        let iv = run_icarus(
            &format!("skid_{W}"),
            &v,
            &uut.ins(),
            &uut.outs(),
            &data,
            &pat,
        );
        assert_eq!(iv, tr, "Icarus vs rust-hdl {label}");
    }

    #[test]
    fn passes_every_beat_under_random_stalls_in_sim_and_verilog() {
        let mut rng = testutil::rng("skid_buffer");
        run::<1>(&mut rng, 100, 0.7, 0.6);
        run::<8>(&mut rng, 200, 0.5, 0.9);
        run::<37>(&mut rng, 200, 0.9, 0.5);
        run::<128>(&mut rng, 100, 0.8, 0.8);
    }

    #[test]
    fn full_throughput_and_one_cycle_latency() {
        let mut rng = testutil::rng("skid_buffer_rate");
        let uut = SkidBuffer::<8>::new();
        let n = 50;
        let data = vec![random_beats(&mut rng, n, 8)];
        let pat = Pattern::random(&mut rng, 1, 1, n + 10, 1.0, 1.0);
        let tr = run_sim(SkidBuffer::<8>::new(), &data, &pat);
        assert_eq!(tr.out_data(0), data[0]);
        let first_in = tr.ins[0][0];
        let first_out = tr.outs[0][0].1;
        let last_out = tr.outs[0][n - 1].1;
        assert_eq!(first_out - first_in, uut.latency() as usize, "latency");
        assert_eq!(last_out + 1 - first_out, n, "not one beat per cycle");
        assert_eq!(uut.cycles_per_frame_of(n as u64), n as u64);
    }

    #[test]
    fn synthesises_clean() {
        let mut uut = SkidBuffer::<32>::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        yosys_validate("bnnforge_skid_buffer", &v).unwrap();
        let s = ice40_stats("skid_32", &v, "top").unwrap();
        println!("SkidBuffer<32> on synth_ice40: {s}");
        // 2 x 32 data + 2 valid flip-flops; one 2:1 mux per data bit
        assert_eq!(s.dff, 66, "SkidBuffer<32>: {s}");
        assert!(s.lut4 <= 40, "SkidBuffer<32> costs {s}");
    }
}
