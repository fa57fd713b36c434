//! `bnnforge sim`: the spec's `infer` contract, computed by the generated Verilog in
//! Verilator (never by the software model, which only checks it).

use crate::netlist::{self, Family, Netlist, NetlistError};
use bnnforge_hdl::compile::design::Design;
use bnnforge_hdl::compile::folding::Fold;
use bnnforge_hdl::compile::probe;
use bnnforge_hdl::compile::timing::{self, FrameTimes};
use bnnforge_model::{npy, Error, Model, Network, Result};
use bnnforge_testbench::{
    run_stream, BuildConfig, Manifest, Sim, StreamFormat, StreamOptions, Trace,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Co-simulation options.
pub struct SimArgs<'a> {
    pub design: Option<&'a Path>,
    pub folding: Option<&'a Path>,
    pub target: Option<u64>,
    pub stall: f64,
    pub seed: u64,
    pub wave: Option<&'a Path>,
    pub quiet: bool,
}

impl<'a> SimArgs<'a> {
    /// A built design at full rate, no waveform.
    pub fn full_rate(design: &'a Path, quiet: bool) -> Self {
        SimArgs {
            design: Some(design),
            folding: None,
            target: None,
            stall: 0.0,
            seed: 1,
            wave: None,
            quiet,
        }
    }
}

/// What a co-simulation measured.
pub struct Cosim {
    /// the Verilog's outputs, frame after frame (flattened C, H, W)
    pub outputs: Vec<i64>,
    pub frames: usize,
    /// (frame, index, verilog, model) of every differing value
    pub mismatches: Vec<(usize, usize, i64, i64)>,
    pub cycles_per_frame: u64,
    pub latency_cycles: u64,
    /// measured mean interval between frames (None for one frame)
    pub interval: Option<f64>,
    pub max_latency: u64,
    /// the first frame's latency (an idle pipeline), comparable to the manifest's
    pub first_latency: u64,
    /// at full rate: the design's cycle model run on the same frames (chunks from
    /// reset, as measured): its mean interval and first-frame latency
    pub predicted: Option<(Option<f64>, u64)>,
    pub cycles: u64,
    pub sim_secs: f64,
    pub verilate_secs: f64,
    pub verilator_cached: bool,
    /// on a mismatch: the first layer whose values differ (see [`diagnose`]), or why it
    /// could not be found
    pub first_layer: Option<String>,
}

fn tb(e: bnnforge_testbench::Error) -> Error {
    Error::new(e.to_string().lines().next().unwrap_or("").to_string())
}

/// CHW frame → HWC stream order.
pub fn hwc(net: &Network, frame: &[i64]) -> Vec<i64> {
    let s = net.input.shape;
    let (c, h, w) = (s.c, s.h, s.w);
    let mut v = Vec::with_capacity(frame.len());
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                v.push(frame[(ch * h + y) * w + x]);
            }
        }
    }
    v
}

/// Runs `xs` (frames of the network input, CHW) through the design in `dir`, with the
/// model as the reference.
pub fn cosim(net: &Network, dir: &Path, xs: &[i64], args: &SimArgs) -> Result<Cosim> {
    cosim_on(net, dir, xs, args, None).map_err(Failure::into_error)
}

/// Why a co-simulation stopped: bad input (exit status 2) or a tool that failed on the
/// netlist (exit status 1).
pub enum Failure {
    Input(Error),
    /// one line, naming the tool and its log
    Tool(String),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::Input(e) => e,
            Failure::Tool(m) => Error::new(m),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Input(e)
    }
}

/// Verilator's failure on a netlist, its whole output kept beside the netlist.
fn netlist_tool_error(n: &Netlist, e: bnnforge_testbench::Error) -> Failure {
    match e {
        bnnforge_testbench::Error::Tool {
            tool,
            first_error,
            log,
        } => {
            let path = n.verilog.with_file_name("verilator.log");
            let _ = std::fs::write(&path, log);
            Failure::Tool(format!(
                "{tool} failed on the {} netlist: {first_error} (log: {})",
                n.family.display(),
                path.display()
            ))
        }
        e => Failure::Input(tb(e)),
    }
}

/// [`cosim`] of the design's RTL, or of its synthesised `netlist` (a mismatch is then
/// still diagnosed on the RTL, whose streams can be probed).
pub fn cosim_on(
    net: &Network,
    dir: &Path,
    xs: &[i64],
    args: &SimArgs,
    netlist: Option<&Netlist>,
) -> std::result::Result<Cosim, Failure> {
    let m = Manifest::load(dir).map_err(tb)?;
    let fmt: StreamFormat = m.stream_format().map_err(tb)?;
    let mut cfg: BuildConfig = m.build_config();
    if let Some(n) = netlist {
        cfg = n.build_config(&cfg);
    }
    if let Some(w) = args.wave {
        cfg = cfg.trace(if w.extension().is_some_and(|e| e == "fst") {
            Trace::Fst
        } else {
            Trace::Vcd
        });
    }
    let t0 = Instant::now();
    let spinner = (!args.quiet).then(|| {
        let p = ProgressBar::new_spinner();
        p.set_message(if netlist.is_some() {
            "verilating the netlist with the cell models (cached after the first time)"
        } else {
            "verilating the design (cached after the first time)"
        });
        p.enable_steady_tick(std::time::Duration::from_millis(200));
        p
    });
    let model = cfg.build();
    if let Some(p) = spinner {
        p.finish_and_clear();
    }
    let model = match (model, netlist) {
        (Ok(model), _) => model,
        (Err(e), Some(n)) => return Err(netlist_tool_error(n, e)),
        (Err(e), None) => return Err(tb(e).into()),
    };
    if let Some(n) = netlist {
        n.check(&model.warnings).map_err(Failure::Tool)?;
    }
    let verilate_secs = t0.elapsed().as_secs_f64();
    let mut sim = Sim::new(&model, args.wave).map_err(tb)?;
    let n_in = net.input.shape.len();
    let k = net.output_shape().len();
    let frames = xs.len() / n_in.max(1);
    let reference = Model::new(net);
    let bar = (!args.quiet && frames > 1).then(|| {
        let p = ProgressBar::new(frames as u64);
        p.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} frames ({eta})")
                .expect("template"),
        );
        p.set_message("co-simulating");
        p
    });
    let t1 = Instant::now();
    // chunks keep the progress bar moving; each chunk streams frames back to back
    let chunk = frames.clamp(1, 256);
    let mut outputs = Vec::with_capacity(frames * k);
    let mut mismatches = vec![];
    let mut first_layer = None;
    let mut diagnose_secs = 0.0;
    let mut intervals = vec![];
    // the cycle model's intervals of the same chunks (at full rate only)
    let design = if args.stall == 0.0 {
        Some(design_of(net, dir, &m)?)
    } else {
        None
    };
    let mut predicted_intervals = vec![];
    let mut predicted_latency = None;
    let mut model_runs: std::collections::HashMap<usize, Vec<FrameTimes>> = Default::default();
    let (mut cycles, mut max_latency, mut first_latency) = (0, 0, None);
    let preamble = m.load_beats().map_err(tb)?;
    for (ci, part) in xs.chunks(chunk * n_in).enumerate() {
        let stream: Vec<Vec<i64>> = part.chunks(n_in).map(|f| hwc(net, f)).collect();
        let opts = StreamOptions {
            max_cycles: (m.cycles_per_frame.unwrap_or(1) + m.latency_cycles.unwrap_or(1))
                .saturating_mul(stream.len() as u64 + 2)
                .saturating_mul(if args.stall > 0.0 { 8 } else { 2 })
                .saturating_add(100_000),
            // a deep network (CNV) moves no beat for a whole frame interval between outputs
            idle_timeout: (m.cycles_per_frame.unwrap_or(0) + m.latency_cycles.unwrap_or(0))
                .saturating_mul(if args.stall > 0.0 { 4 } else { 2 })
                .max(100_000),
            // a design with weights in SPRAM takes them after every reset
            preamble: preamble.clone(),
            ..StreamOptions::stalls(args.seed.wrapping_add(ci as u64), args.stall, args.stall)
        };
        let run = run_stream(&mut sim, &fmt, &stream, &opts).map_err(tb)?;
        cycles += run.total_cycles;
        max_latency = max_latency.max(run.max_latency());
        if first_latency.is_none() {
            first_latency = run.frames.first().map(|f| f.latency());
        }
        if let Some(i) = run.interval() {
            intervals.push((i, run.frames.len() - 1));
        }
        if let Some(d) = &design {
            let times = model_runs
                .entry(stream.len())
                .or_insert_with(|| timing::run(d, stream.len()));
            predicted_latency.get_or_insert(times[0].last_output - times[0].first_input);
            if let Some(i) = timing::mean_interval(times) {
                predicted_intervals.push((i, times.len() - 1));
            }
        }
        for (fi, (f, y)) in part.chunks(n_in).zip(&run.outputs).enumerate() {
            let frame = ci * chunk + fi;
            let want = reference.eval(f);
            for (j, (&a, &b)) in y.iter().zip(&want).enumerate() {
                if a != b {
                    mismatches.push((frame, j, a, b));
                    if first_layer.is_none() {
                        // the same frames and stalls again, every stream logged
                        let t = Instant::now();
                        let upto = &part[..(fi + 1) * n_in];
                        first_layer = Some(match diagnose(net, dir, upto, &opts, &m, ci * chunk) {
                            Ok(Some(d)) if netlist.is_some() => {
                                format!("{d} (the RTL, probed, differs too)")
                            }
                            Ok(Some(d)) => d,
                            Ok(None) if netlist.is_some() => {
                                "the RTL matches the model on these frames (every stream \
                                     probed): the difference is in the netlist"
                                    .to_string()
                            }
                            Ok(None) => "every stream matched the model when probed: the \
                                             difference did not reproduce (timing-dependent?)"
                                .to_string(),
                            Err(e) => {
                                format!("the first differing layer could not be found: {e}")
                            }
                        });
                        diagnose_secs += t.elapsed().as_secs_f64();
                    }
                }
            }
            outputs.extend_from_slice(y);
        }
        if let Some(b) = &bar {
            b.inc(part.len() as u64 / n_in as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mean = |v: &[(f64, usize)]| {
        let n: usize = v.iter().map(|(_, n)| n).sum();
        (n > 0).then(|| v.iter().map(|(i, n)| i * *n as f64).sum::<f64>() / n as f64)
    };
    let interval = mean(&intervals);
    let predicted = predicted_latency.map(|l| (mean(&predicted_intervals), l));
    Ok(Cosim {
        outputs,
        frames,
        mismatches,
        cycles_per_frame: m.cycles_per_frame.unwrap_or(0),
        latency_cycles: m.latency_cycles.unwrap_or(0),
        interval,
        max_latency,
        first_latency: first_latency.unwrap_or(0),
        predicted,
        cycles,
        sim_secs: t1.elapsed().as_secs_f64() - diagnose_secs,
        verilate_secs,
        verilator_cached: model.cache_hit,
        first_layer,
    })
}

/// A stable 64-bit FNV-1a hash (names the probe's and the netlists' cache folders).
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>, mut h: u64) -> u64 {
    for b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The design of the build folder `dir` (manifest `m`), recomputed from the manifest's
/// folding; its top must be the manifest's.
pub fn design_of(net: &Network, dir: &Path, m: &Manifest) -> Result<Design> {
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(&dir.join("manifest.json")))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::new(format!("not JSON: {e}")).in_file(&dir.join("manifest.json")))?;
    let folds = net
        .layers
        .iter()
        .map(|l| {
            let f = &json["folding"][&l.name];
            match (f["pe"].as_u64(), f["simd"].as_u64()) {
                (Some(pe), Some(simd)) => Ok(Fold {
                    pe: pe as usize,
                    simd: simd as usize,
                }),
                _ => Err(Error::new(format!(
                    "the manifest has no folding for layer `{}`",
                    l.name
                ))),
            }
        })
        .collect::<Result<Vec<Fold>>>()?;
    let mut d = Design::new(net, &folds).map_err(Error::new)?;
    let spram: Vec<usize> = json["engines"]
        .as_array()
        .map(|es| {
            (0..es.len())
                .filter(|&i| es[i]["kind"].as_str() == Some("mvtu-spram"))
                .collect()
        })
        .unwrap_or_default();
    d.set_spram(&spram).map_err(Error::new)?;
    if d.top != m.top {
        return Err(Error::new(format!(
            "the manifest's top `{}` is not this network's `{}`",
            m.top, d.top
        )));
    }
    Ok(d)
}

/// Runs frames `xs` (C, H, W, back to back) with the stream options `opts` through a
/// copy of the design in `dir` whose top logs every stream's handshakes, and names the
/// first layer whose values differ from the model (`first` numbers the first frame in
/// the message), or None when every stream matches. The design is recomputed from the manifest's folding; its engines'
/// Verilog is the one in `dir`, so a broken file is diagnosed as it is.
pub fn diagnose(
    net: &Network,
    dir: &Path,
    xs: &[i64],
    opts: &StreamOptions,
    m: &Manifest,
    first: usize,
) -> Result<Option<String>> {
    let d = design_of(net, dir, m)?;
    // a folder per design (hash of its Verilog), so the probed build is cached too
    let mut h = fnv1a(d.top.bytes(), 0xcbf2_9ce4_8422_2325);
    for f in &m.verilog {
        let v = std::fs::read(f).map_err(|e| Error::new(format!("cannot read: {e}")).in_file(f))?;
        h = fnv1a(v, h);
    }
    let probe_dir =
        bnnforge_testbench::default_cache_dir().join(format!("probe-{}-{h:016x}", d.top));
    std::fs::create_dir_all(&probe_dir)
        .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&probe_dir))?;
    let log = probe_dir.join("streams.log");
    let top = probe_dir.join(format!("{}.v", d.top));
    let log_str = log
        .to_str()
        .filter(|s| !s.contains(['"', '\\']))
        .ok_or_else(|| Error::new("the cache path cannot be written into Verilog").in_file(&log))?;
    std::fs::write(&top, d.top_verilog_probed(log_str))
        .map_err(|e| Error::new(format!("cannot write: {e}")).in_file(&top))?;
    let mut cfg = m.build_config();
    let top_name = format!("{}.v", d.top);
    cfg.verilog
        .retain(|f| f.file_name().is_none_or(|n| n != top_name.as_str()));
    cfg.verilog.push(top.clone());
    let model = cfg.build().map_err(tb)?;
    let fmt: StreamFormat = m.stream_format().map_err(tb)?;
    let n_in = net.input.shape.len();
    let frames: Vec<Vec<i64>> = xs.chunks(n_in).map(|f| f.to_vec()).collect();
    let stream: Vec<Vec<i64>> = frames.iter().map(|f| hwc(net, f)).collect();
    {
        let mut sim = Sim::new(&model, None).map_err(tb)?;
        run_stream(&mut sim, &fmt, &stream, opts).map_err(tb)?;
    }
    let text = std::fs::read_to_string(&log)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(&log))?;
    let beats = probe::parse_log(&d, &text).map_err(Error::new)?;
    let reference = Model::new(net);
    let layers: Vec<Vec<Vec<i64>>> = frames.iter().map(|f| reference.eval_layers(f)).collect();
    Ok(
        probe::first_difference(net, &d, &frames, &layers, &beats).map(|mut diff| {
            diff.frame += first;
            diff.describe(net, &d)
        }),
    )
}

/// The netlist of the design in `dir` (cached, or one yosys run now).
fn synthesise(dir: &Path, family: Family, quiet: bool) -> std::result::Result<Netlist, Failure> {
    let m = Manifest::load(dir).map_err(tb)?;
    let spinner = (!quiet).then(|| {
        let p = ProgressBar::new_spinner();
        p.set_message(format!(
            "yosys: synthesising the design for {} (cached after the first time)",
            family.display()
        ));
        p.enable_steady_tick(std::time::Duration::from_millis(200));
        p
    });
    let n = netlist::synthesise(&m, family, &bnnforge_testbench::default_cache_dir());
    if let Some(p) = spinner {
        p.finish_and_clear();
    }
    n.map_err(|e| match e {
        NetlistError::Tool(m) => Failure::Tool(m),
        NetlistError::Io(m) => Failure::Input(Error::new(m)),
    })
}

/// Builds `model` into `dir` unless `args.design` names a built design.
pub fn design_dir(model: &Path, args: &SimArgs) -> Result<(PathBuf, bool)> {
    if let Some(d) = args.design {
        if !d.join("manifest.json").is_file() {
            return Err(Error::new("no manifest.json: not a bnnforge build folder").in_file(d));
        }
        return Ok((d.to_path_buf(), false));
    }
    let dir = std::env::temp_dir().join(format!("bnnforge-sim-{}", std::process::id()));
    super::build::build(model, &dir, args.folding, args.target)?;
    Ok((dir, true))
}

/// `bnnforge sim`; with `netlist`, of the design synthesised by yosys for that family.
pub fn run(
    model: &Path,
    input: &Path,
    output: &Path,
    args: &SimArgs,
    netlist: Option<Family>,
) -> Result<()> {
    if !(0.0..1.0).contains(&args.stall) {
        return Err(Error::new(format!(
            "--stall {} must be a probability in [0, 1)",
            args.stall
        )));
    }
    let net = bnnforge_model::load(model)?;
    let (n, xs) = npy::read_inputs(input, &net.input)?;
    let (dir, temporary) = design_dir(model, args)?;
    let result = match netlist {
        Some(family) => synthesise(&dir, family, args.quiet).and_then(|n| {
            let c = cosim_on(&net, &dir, &xs, args, Some(&n))?;
            Ok((c, Some(n)))
        }),
        None => cosim_on(&net, &dir, &xs, args, None).map(|c| (c, None)),
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (c, synthesised) = match result {
        Ok(r) => r,
        Err(Failure::Input(e)) => return Err(e),
        Err(Failure::Tool(m)) => {
            // not bad input: a tool failed on a valid design
            eprintln!("error: {m}");
            std::process::exit(1);
        }
    };
    let k = net.output_shape().len();
    npy::write_i64(output, &[n, k], &c.outputs)?;
    // what computed the outputs, in the messages
    let (what, short) = match &synthesised {
        Some(n) => (format!("the {} netlist", n.family.display()), "netlist"),
        None => ("the Verilog".to_string(), "Verilog"),
    };
    println!(
        "{} frames: {} mismatches against the model",
        c.frames,
        c.mismatches.len()
    );
    if let Some(&(f, j, a, b)) = c.mismatches.first() {
        println!("first mismatch: frame {f}, output {j}: {short} {a}, model {b}");
    }
    if let Some(l) = &c.first_layer {
        println!("{l}");
    }
    // the cycle model's figures for these very frames, when run at full rate
    let (model_interval, model_latency) = match c.predicted {
        Some((Some(i), l)) => (
            format!(", {i:.1} by the cycle model"),
            format!(", {l} by the cycle model"),
        ),
        Some((None, l)) => (String::new(), format!(", {l} by the cycle model")),
        None => (String::new(), String::new()),
    };
    match c.interval {
        Some(i) => println!(
            "cycles per frame: {i:.1} measured{}{model_interval}, {} in the manifest ({:+.1} %)",
            if args.stall > 0.0 {
                " (with stalls)"
            } else {
                ""
            },
            c.cycles_per_frame,
            100.0 * (i / c.cycles_per_frame.max(1) as f64 - 1.0)
        ),
        None => println!(
            "cycles per frame: {} in the manifest (one frame: no interval measured)",
            c.cycles_per_frame
        ),
    }
    println!(
        "latency: {} cycles measured on the first frame ({} the largest, frames queued)\
         {model_latency}, {} in the manifest",
        c.first_latency, c.max_latency, c.latency_cycles
    );
    if let Some(n) = &synthesised {
        println!(
            "ran the {} netlist (yosys {} of the design, cell models {}): yosys {}; {}",
            n.family.display(),
            n.family.synth(),
            n.cells.display(),
            if n.cached {
                "cached".to_string()
            } else {
                format!("{:.1} s", n.yosys_secs)
            },
            n.verilog.display()
        );
        if let Some(c) = n.family.caveat() {
            println!("the {} netlist has {c}", n.family.display());
        }
    }
    println!(
        "simulated {} cycles in {:.2} s ({:.2} M cycles/s, {:.0} frames/s); verilator build {:.1} s{}",
        c.cycles,
        c.sim_secs,
        c.cycles as f64 / c.sim_secs.max(1e-9) / 1e6,
        c.frames as f64 / c.sim_secs.max(1e-9),
        c.verilate_secs,
        if c.verilator_cached { " (cached)" } else { "" }
    );
    if let Some(w) = args.wave {
        println!("waveform: {}", w.display());
    }
    if !c.mismatches.is_empty() {
        // not bad input but a failed verification: exit status 1, the outputs written
        eprintln!(
            "error: {what} differs from the model in {} values (first: frame {}, output {}: \
             {short} {}, model {}); {}",
            c.mismatches.len(),
            c.mismatches[0].0,
            c.mismatches[0].1,
            c.mismatches[0].2,
            c.mismatches[0].3,
            c.first_layer.as_deref().unwrap_or("")
        );
        std::process::exit(1);
    }
    Ok(())
}
