//! `bnnforge synth`: a network to a placed, routed, timed bitstream for a board.
//!
//! ```text
//!  MODEL ─► build (DIR/hdl: accelerator Verilog, manifest.json)
//!        ─► board core (UART, packet engine, accelerator) + board top (PLL, reset, pins)
//!        ─► yosys ─► nextpnr × seeds ─► best seed ─► icepack | ecppack
//!        ─► DIR/report.txt, DIR/synth.json
//! ```
//!
//! Bad arguments are [`Failure::Input`] (exit 2, nothing written); a missing or failing
//! tool is [`Failure::Tool`] (exit 1, its log kept in `DIR/logs/`).

use crate::commands::build;
use crate::flow::{self, PnrReport, ToolFailure, Toolchain};
use bnnforge_hdl::boards::core::{board_core_files, board_core_module, BoardCoreParams};
use bnnforge_hdl::boards::top::{board_top_verilog, clock_for, top_name, Clock};
use bnnforge_hdl::boards::{self, Board, Family};
use bnnforge_model::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why `synth` stopped.
#[derive(Debug)]
pub enum Failure {
    /// the user's input: exit 2
    Input(Error),
    /// a tool: exit 1
    Tool(ToolFailure),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Input(e)
    }
}

impl From<ToolFailure> for Failure {
    fn from(e: ToolFailure) -> Self {
        Failure::Tool(e)
    }
}

/// The command line of `synth`.
pub struct SynthArgs<'a> {
    pub model: &'a Path,
    pub board: &'a str,
    pub out: &'a Path,
    /// MHz; default: the board's `default_mhz`
    pub freq: Option<f64>,
    pub seeds: u64,
    pub baud: u32,
    pub folding: Option<&'a Path>,
    pub target: Option<u64>,
}

/// The UART's default rate (the protocol's).
pub const DEFAULT_BAUD: u32 = 115_200;
/// The protocol's fastest rate.
pub const MAX_BAUD: u32 = 3_000_000;
/// One nextpnr run.
struct SeedRun {
    seed: u64,
    report: PnrReport,
    secs: f64,
}

/// The board core (UART, packet engine, accelerator) of a built accelerator: its
/// module and Verilog files (name, text), or why the clock and baud rate cannot make one.
fn board_core(
    model: &Path,
    built: &build::Built,
    clock: &Clock,
    baud: u32,
) -> Result<(String, Vec<(String, String)>)> {
    let net = bnnforge_model::load(model)?;
    let p = BoardCoreParams::new(&net, &built.design, clock.reached_hz.round() as u32, baud);
    p.check()
        .map_err(|e| Error::new(format!("the board core: {e}")))?;
    Ok((board_core_module(&p), board_core_files(&p)))
}

/// A sibling of `out` for building it before it replaces `out`.
fn temp_sibling(out: &Path, what: &str) -> Result<(PathBuf, PathBuf)> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::new("the parent folder does not exist").in_file(out));
    }
    if out.exists() && !out.is_dir() {
        return Err(Error::new("exists and is not a folder").in_file(out));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::new("not a folder name").in_file(out))?
        .to_string_lossy()
        .into_owned();
    Ok((
        parent.join(format!(".{name}.{}.{what}", std::process::id())),
        parent,
    ))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::new(format!("cannot write: {e}")).in_file(path))
}

/// The pin files, built into the binary so that `synth` runs from anywhere.
fn pin_file(board: &Board) -> &'static str {
    match board.constraints {
        "icebreaker.pcf" => include_str!("../../constraints/icebreaker.pcf"),
        "ulx3s_v20.lpf" => include_str!("../../constraints/ulx3s_v20.lpf"),
        other => panic!("no pin file {other} in constraints/"),
    }
}

/// Checks the arguments, builds the design and its board top into `out` (replaced as a
/// whole; untouched on a bad argument), runs the tools and writes the reports.
pub fn run(a: &SynthArgs) -> std::result::Result<(), Failure> {
    let t0 = Instant::now();
    let board = boards::board(a.board).map_err(|e| Error::new(format!("--board: {e}")))?;
    let mhz = a.freq.unwrap_or(board.default_mhz);
    let clock = clock_for(board, mhz).map_err(|e| Error::new(format!("--freq {mhz}: {e}")))?;
    if a.seeds == 0 {
        return Err(Error::new("--seeds must be at least 1").into());
    }
    if a.baud == 0 || a.baud > MAX_BAUD {
        return Err(Error::new(format!(
            "--baud {}: expected 1 to {MAX_BAUD} (the protocol's range)",
            a.baud
        ))
        .into());
    }
    let how = build::choose(a.folding, a.target, None, None)?;
    let tools = flow::find(board.family)?;

    // the design and its board top, in a temporary folder that then replaces `out`
    let (tmp, _) = temp_sibling(a.out, "tmp")?;
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)
        .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&tmp))?;
    println!(
        "synth {} for {} at {:.3} MHz{}",
        a.model.display(),
        board.title,
        clock.reached_hz / 1e6,
        match &clock.pll {
            Some(p) => format!(" ({})", p.describe()),
            None => " (the oscillator)".into(),
        }
    );
    let prepared = (|| -> Result<(build::Built, String, Vec<String>)> {
        let t = Instant::now();
        let built = build::build_how(a.model, &tmp.join("hdl"), &how)?;
        println!(
            "  build: {} engines, {} cycles per frame: {:.1} s",
            built.design.engines.len(),
            built.design.cycles_per_frame(),
            t.elapsed().as_secs_f64()
        );
        let (core, core_files) = board_core(a.model, &built, &clock, a.baud)?;
        let net = core
            .strip_suffix("_board_core")
            .unwrap_or(&core)
            .to_string();
        let top = top_name(&net, board);
        let mut files: Vec<String> = built
            .design
            .verilog_files()
            .iter()
            .map(|f| format!("hdl/{f}"))
            .collect();
        for (name, text) in &core_files {
            write(&tmp.join(name), text)?;
            files.push(name.clone());
        }
        let top_file = format!("{top}.v");
        write(
            &tmp.join(&top_file),
            &format!(
                "{}\n{}",
                bnnforge_hdl::compile::top::GENERATED_HEADER,
                board_top_verilog(board, &top, &core, &clock)
            ),
        )?;
        files.push(top_file);
        write(&tmp.join(board.constraints), pin_file(board))?;
        if board.family == Family::Ice40 {
            let (name, text) = flow::ICE40_MEMORY_FF;
            write(&tmp.join(name), text)?;
        }
        std::fs::create_dir(tmp.join("logs"))
            .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&tmp))?;
        Ok((built, top, files))
    })();
    let (built, top, files) = match prepared {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
    };
    replace_folder(&tmp, a.out)?;
    let dir = a.out;
    let secs_prepare = t0.elapsed().as_secs_f64();

    // yosys (its ABC sometimes aborts on a heap-address assertion: see hdl::synth)
    let json = format!("{top}.json");
    let stat = "logs/yosys-stat.json";
    let coarse = "logs/coarse.il";
    let step = match board.family {
        Family::Ice40 => "yosys synth_ice40",
        Family::Ecp5 => "yosys synth_ecp5",
    };
    let script = flow::yosys_script(board.family, &files, &top, &json, stat, coarse);
    let ylog = dir.join("logs/yosys.log");
    let mut secs_yosys = yosys(step, &tools, &script, dir, &ylog)?;
    let mut cells = yosys_cells(dir, stat, &ylog)?;
    // block RAMs left over take the largest flip-flop memories (iCE40: see
    // flow::memories_for_spare_bram)
    let mut to_bram = BramMove::default();
    if board.family == Family::Ice40 {
        let used = cells.get("SB_RAM40_4K").copied().unwrap_or(0);
        let spare = (board.resources.bram as u64).saturating_sub(used);
        let log = std::fs::read_to_string(&ylog).unwrap_or_default();
        let mems = flow::ff_memories(&log);
        let chosen = flow::memories_for_spare_bram(&mems, spare);
        if !chosen.is_empty() {
            let json2 = format!("logs/{top}.bram.json");
            let stat2 = "logs/yosys-bram-stat.json";
            let log2 = dir.join("logs/yosys-bram.log");
            let script = flow::yosys_bram_script(&top, coarse, &chosen, &json2, stat2);
            // a memory yosys cannot map to block RAM fails this run: the first netlist
            // stands then
            let moved = yosys(
                &format!("yosys: {} flip-flop memories to block RAM", chosen.len()),
                &tools,
                &script,
                dir,
                &log2,
            )
            .and_then(|s| Ok((s, yosys_cells(dir, stat2, &log2)?)));
            let cells2 = match moved {
                Ok((s, c)) => {
                    secs_yosys += s;
                    Some(c)
                }
                Err(e) => {
                    println!("  kept the flip-flop memories: {}", e.0);
                    None
                }
            };
            let fits = |c: &BTreeMap<String, u64>| {
                c.get("SB_RAM40_4K").copied().unwrap_or(0) <= board.resources.bram as u64
            };
            if let Some(cells2) = cells2.filter(fits) {
                std::fs::rename(dir.join(&json2), dir.join(&json))
                    .map_err(|e| ToolFailure(format!("cannot keep the block-RAM netlist: {e}")))?;
                to_bram = BramMove {
                    memories: chosen
                        .iter()
                        .map(|m| format!("{} ({} x {})", m.name, m.words, m.width))
                        .collect(),
                    before: cells,
                };
                cells = cells2;
            }
        }
        let _ = std::fs::remove_file(dir.join(coarse));
    }

    // a netlist with more LUTs or block RAMs than the device has cannot be placed: say
    // so in the device's terms instead of nextpnr's "no BELs remaining"
    if let Some(over) = flow::overflow(board, &cells) {
        return Err(ToolFailure(format!(
            "does not fit the {}: yosys maps it to {over}; fold it slower \
             (--target-cycles) or use a larger board; netlist: {}",
            board.title,
            dir.join(&json).display()
        ))
        .into());
    }

    // nextpnr, one run per seed; the best seed's placed design is kept
    let placed_ext = match board.family {
        Family::Ice40 => "asc",
        Family::Ecp5 => "config",
    };
    let pnr_mhz = clock.reached_hz / 1e6;
    let mut runs: Vec<SeedRun> = vec![];
    for seed in 1..=a.seeds {
        let placed = format!("logs/seed-{seed}.{placed_ext}");
        let report = format!("logs/nextpnr-seed-{seed}.json");
        let log = dir.join(format!("logs/nextpnr-seed-{seed}.log"));
        let args = flow::nextpnr_args(
            board,
            &json,
            board.constraints,
            &placed,
            &report,
            pnr_mhz,
            seed,
        );
        let secs = flow::run(
            &format!("{} seed {seed} of {}", tools.pnr.name, a.seeds),
            &tools.pnr,
            &args,
            dir,
            &log,
        )?;
        let r = std::fs::read_to_string(dir.join(&report))
            .map_err(|e| e.to_string())
            .and_then(|t| PnrReport::parse(&t))
            .map_err(|e| {
                ToolFailure(format!(
                    "{} report unreadable ({e}); log: {}",
                    tools.pnr.name,
                    log.display()
                ))
            })?;
        if let Some((clk, f)) = r.design_clock() {
            println!(
                "    seed {seed}: Fmax {:.2} MHz ({clk}), {}",
                f.achieved_mhz,
                if r.met() { "met" } else { "NOT met" }
            );
        }
        // the 12F's netlist is placed on the 25k die: hold it to the 12F's data sheet
        if let Some(over) = flow::placed_overflow(board, &r.utilization) {
            return Err(ToolFailure(format!(
                "does not fit the {}: nextpnr places it in {over}; fold it slower \
                 (--target-cycles) or use a larger board; log: {}",
                board.title,
                log.display()
            ))
            .into());
        }
        runs.push(SeedRun {
            seed,
            report: r,
            secs,
        });
    }
    let best = runs
        .iter()
        .max_by(|x, y| {
            x.report
                .worst_ratio()
                .partial_cmp(&y.report.worst_ratio())
                .expect("finite")
                .then(y.seed.cmp(&x.seed))
        })
        .expect("at least one seed");
    let placed = format!("{top}.{placed_ext}");
    std::fs::rename(
        dir.join(format!("logs/seed-{}.{placed_ext}", best.seed)),
        dir.join(&placed),
    )
    .map_err(|e| ToolFailure(format!("cannot keep the best seed's placed design: {e}")))?;
    for r in &runs {
        let _ = std::fs::remove_file(dir.join(format!("logs/seed-{}.{placed_ext}", r.seed)));
    }

    // the bitstream
    let bit_ext = match board.family {
        Family::Ice40 => "bin",
        Family::Ecp5 => "bit",
    };
    let bitstream = format!("{top}.{bit_ext}");
    let secs_pack = flow::run(
        tools.pack.name,
        &tools.pack,
        &flow::pack_args(board, &placed, &bitstream),
        dir,
        &dir.join("logs/pack.log"),
    )?;
    let bytes = std::fs::metadata(dir.join(&bitstream))
        .map(|m| m.len())
        .unwrap_or(0);

    let s = Summary {
        board,
        clock: &clock,
        built: &built,
        top: &top,
        tools: &tools,
        cells: &cells,
        to_bram: &to_bram,
        runs: &runs,
        best: best.seed,
        baud: a.baud,
        files: [json.clone(), placed.clone(), bitstream.clone()],
        bitstream_bytes: bytes,
        secs: [
            secs_prepare,
            secs_yosys,
            runs.iter().map(|r| r.secs).sum(),
            secs_pack,
        ],
    };
    let (text, json_value) = s.report();
    write(&dir.join("report.txt"), &text)?;
    write(
        &dir.join("synth.json"),
        &(serde_json::to_string_pretty(&json_value).expect("json") + "\n"),
    )?;
    print!("{}", s.headline());
    println!("report: {}", dir.join("report.txt").display());
    Ok(())
}

/// Runs a yosys script, again (up to three runs) when its ABC aborts on the assertion
/// `bnnforge_hdl::synth::abc_aborted` recognises; seconds taken.
fn yosys(
    step: &str,
    tools: &Toolchain,
    script: &str,
    dir: &Path,
    log: &Path,
) -> std::result::Result<f64, ToolFailure> {
    for attempt in 1..=3 {
        match flow::run(
            step,
            &tools.yosys,
            &["-p".into(), script.to_string()],
            dir,
            log,
        ) {
            Ok(s) => return Ok(s),
            Err(e) => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                if attempt == 3 || !bnnforge_hdl::synth::abc_aborted(&text) {
                    return Err(e);
                }
                println!(
                    "  yosys's ABC aborted on its heap-address assertion: run {} of 3",
                    attempt + 1
                );
            }
        }
    }
    unreachable!("the third run returns")
}

/// yosys's cell counts from its `stat -json` file `stat` in `dir`.
fn yosys_cells(
    dir: &Path,
    stat: &str,
    log: &Path,
) -> std::result::Result<BTreeMap<String, u64>, ToolFailure> {
    std::fs::read_to_string(dir.join(stat))
        .map_err(|e| e.to_string())
        .and_then(|t| flow::yosys_cells(&t))
        .map_err(|e| {
            ToolFailure(format!(
                "yosys statistics unreadable ({e}); log: {}",
                log.display()
            ))
        })
}

/// Flip-flop memories moved into spare block RAMs, and the cells before the move.
#[derive(Default)]
struct BramMove {
    memories: Vec<String>,
    before: BTreeMap<String, u64>,
}

/// Moves `tmp` to `out`, replacing a folder there (moved aside first, so `out` is never
/// half-written).
fn replace_folder(tmp: &Path, out: &Path) -> Result<()> {
    let (old, _) = temp_sibling(out, "old")?;
    if out.exists() {
        std::fs::rename(out, &old)
            .map_err(|e| Error::new(format!("cannot replace: {e}")).in_file(out))?;
    }
    if let Err(e) = std::fs::rename(tmp, out) {
        let _ = std::fs::rename(&old, out);
        let _ = std::fs::remove_dir_all(tmp);
        return Err(Error::new(format!("cannot write: {e}")).in_file(out));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Everything the reports say.
struct Summary<'a> {
    board: &'a Board,
    clock: &'a Clock,
    built: &'a build::Built,
    top: &'a str,
    tools: &'a Toolchain,
    cells: &'a BTreeMap<String, u64>,
    to_bram: &'a BramMove,
    runs: &'a [SeedRun],
    best: u64,
    baud: u32,
    /// netlist, placed design, bitstream
    files: [String; 3],
    bitstream_bytes: u64,
    /// prepare (build + Verilog), yosys, nextpnr (all seeds), pack
    secs: [f64; 4],
}

/// One line of the utilisation table.
struct Use {
    what: &'static str,
    used: u64,
    of: u64,
    source: &'static str,
}

impl Summary<'_> {
    fn best_run(&self) -> &SeedRun {
        self.runs
            .iter()
            .find(|r| r.seed == self.best)
            .expect("best")
    }

    fn utilisation(&self) -> Vec<Use> {
        let res = &self.board.resources;
        let u = &self.best_run().report.utilization;
        let pnr = |k: &str| u.get(k).map(|x| x.0).unwrap_or(0);
        // cells the board table does not count: as many as nextpnr says the device has
        let avail = |k: &str| u.get(k).map(|x| x.1).unwrap_or(0);
        let yosys = |pred: &dyn Fn(&str) -> bool| -> u64 {
            self.cells
                .iter()
                .filter(|(k, _)| pred(k))
                .map(|(_, n)| n)
                .sum()
        };
        match self.board.family {
            Family::Ice40 => vec![
                Use {
                    what: "logic cells (LUT4 + FF)",
                    used: pnr("ICESTORM_LC"),
                    of: res.lut4 as u64,
                    source: "nextpnr ICESTORM_LC",
                },
                Use {
                    what: "LUT4",
                    used: yosys(&|k| k == "SB_LUT4"),
                    of: res.lut4 as u64,
                    source: "yosys SB_LUT4",
                },
                Use {
                    what: "FF",
                    used: yosys(&|k| k.starts_with("SB_DFF")),
                    of: res.ff as u64,
                    source: "yosys SB_DFF*",
                },
                Use {
                    what: "BRAM (4 kbit)",
                    used: pnr("ICESTORM_RAM"),
                    of: res.bram as u64,
                    source: "nextpnr ICESTORM_RAM",
                },
                Use {
                    what: "SPRAM (256 kbit)",
                    used: pnr("ICESTORM_SPRAM"),
                    of: res.spram as u64,
                    source: "nextpnr ICESTORM_SPRAM",
                },
                Use {
                    what: "DSP",
                    used: pnr("ICESTORM_DSP"),
                    of: res.dsp as u64,
                    source: "nextpnr ICESTORM_DSP",
                },
                Use {
                    what: "IO",
                    used: pnr("SB_IO"),
                    of: res.io as u64,
                    source: "nextpnr SB_IO",
                },
                Use {
                    what: "PLL",
                    used: pnr("ICESTORM_PLL"),
                    of: avail("ICESTORM_PLL"),
                    source: "nextpnr ICESTORM_PLL",
                },
            ],
            Family::Ecp5 => vec![
                Use {
                    what: "LUT4",
                    used: pnr("TRELLIS_COMB"),
                    of: res.lut4 as u64,
                    source: "nextpnr TRELLIS_COMB",
                },
                Use {
                    what: "FF",
                    used: pnr("TRELLIS_FF"),
                    of: res.ff as u64,
                    source: "nextpnr TRELLIS_FF",
                },
                Use {
                    what: "BRAM (18 kbit EBR)",
                    used: pnr("DP16KD"),
                    of: res.bram as u64,
                    source: "nextpnr DP16KD",
                },
                Use {
                    what: "LUT-RAM (TRELLIS_RAMW)",
                    used: pnr("TRELLIS_RAMW"),
                    of: avail("TRELLIS_RAMW"),
                    source: "nextpnr TRELLIS_RAMW",
                },
                Use {
                    what: "DSP (MULT18X18D)",
                    used: pnr("MULT18X18D"),
                    of: res.dsp as u64,
                    source: "nextpnr MULT18X18D",
                },
                Use {
                    what: "IO",
                    used: pnr("TRELLIS_IO"),
                    of: res.io as u64,
                    source: "nextpnr TRELLIS_IO",
                },
                Use {
                    what: "PLL",
                    used: pnr("EHXPLLL"),
                    of: avail("EHXPLLL"),
                    source: "nextpnr EHXPLLL",
                },
            ],
        }
    }

    /// Fmax of the design clock over the seeds.
    fn fmax_design(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.report.design_clock().map(|(_, f)| f.achieved_mhz))
            .collect()
    }

    fn cycles_per_frame(&self) -> u64 {
        self.built.design.cycles_per_frame()
    }

    fn frames_per_s(&self) -> f64 {
        self.clock.reached_hz / self.cycles_per_frame() as f64
    }

    fn headline(&self) -> String {
        let best = self.best_run();
        let f = self.fmax_design();
        format!(
            "{}: Fmax {:.2} MHz (best of {} seeds: seed {}; median {:.2}), timing {} at {:.3} MHz; \
             {:.0} frames/s; bitstream {} ({} bytes)\n",
            self.top,
            best.report
                .design_clock()
                .map(|x| x.1.achieved_mhz)
                .unwrap_or(0.0),
            self.runs.len(),
            best.seed,
            flow::median(&f),
            if best.report.met() { "met" } else { "NOT met" },
            self.clock.reached_hz / 1e6,
            self.frames_per_s(),
            self.files[2],
            self.bitstream_bytes
        )
    }

    fn report(&self) -> (String, serde_json::Value) {
        let b = self.board;
        let best = self.best_run();
        let f = self.fmax_design();
        let versions = [
            ("yosys", self.tools.yosys.version()),
            (self.tools.pnr.name, self.tools.pnr.version()),
            (self.tools.pack.name, self.tools.pack.version()),
        ];
        let use_ = self.utilisation();
        let divider = (self.clock.reached_hz / self.baud as f64).round();
        let baud_actual = self.clock.reached_hz / divider;
        let mut t = format!(
            "# generated by bnnforge synth\n\n\
             board: {} ({}, nextpnr --{} --package {}), pins: {}\n\
             top: {} (board core {}_board_core, accelerator {})\n\
             clock: {:.3} MHz requested, {:.3} MHz reached, {}\n\
             UART: {} baud requested; {} clock cycles per bit give {:.0} baud ({:+.2} %)\n\n",
            b.name,
            b.title,
            b.device,
            b.package,
            b.constraints,
            self.top,
            self.top
                .trim_end_matches(&format!("_{}", b.name.replace('-', "_"))),
            self.built.design.top,
            self.clock.requested_hz / 1e6,
            self.clock.reached_hz / 1e6,
            match &self.clock.pll {
                Some(p) => p.describe(),
                None => "the oscillator, no PLL".into(),
            },
            self.baud,
            divider,
            baud_actual,
            (baud_actual / self.baud as f64 - 1.0) * 100.0
        );
        t += "utilisation (best seed):\n";
        for u in &use_ {
            t += &format!(
                "  {:<26} {:>7} of {:>6}  {:>5.1} %   ({})\n",
                u.what,
                u.used,
                u.of,
                if u.of > 0 {
                    100.0 * u.used as f64 / u.of as f64
                } else {
                    0.0
                },
                u.source
            );
        }
        if !self.to_bram.memories.is_empty() {
            let n = |c: &BTreeMap<String, u64>, f: &dyn Fn(&str) -> bool| -> u64 {
                c.iter().filter(|(k, _)| f(k)).map(|(_, n)| n).sum()
            };
            let lut = |k: &str| k == "SB_LUT4";
            let ff = |k: &str| k.starts_with("SB_DFF");
            t += &format!(
                "  spare block RAMs hold {} flip-flop memories (yosys LUT4 {} -> {}, FF {} -> {}): {}\n",
                self.to_bram.memories.len(),
                n(&self.to_bram.before, &lut),
                n(self.cells, &lut),
                n(&self.to_bram.before, &ff),
                n(self.cells, &ff),
                self.to_bram.memories.join(", ")
            );
        }
        t += &format!(
            "\nFmax per seed (nextpnr, MHz; constraint {:.3} MHz):\n",
            self.clock.reached_hz / 1e6
        );
        for r in self.runs {
            let clocks: Vec<String> = r
                .report
                .fmax
                .iter()
                .map(|(k, c)| {
                    format!(
                        "{k} {:.2} (constraint {:.2})",
                        c.achieved_mhz, c.constraint_mhz
                    )
                })
                .collect();
            t += &format!(
                "  seed {}: {}: {}{} ({:.1} s)\n",
                r.seed,
                clocks.join(", "),
                if r.report.met() { "met" } else { "NOT met" },
                if r.seed == self.best { ", best" } else { "" },
                r.secs
            );
        }
        t += &format!(
            "  design clock: best {:.2}, median {:.2}, min {:.2}, max {:.2}\n\
             timing at {:.3} MHz: {}\n\n",
            best.report
                .design_clock()
                .map(|x| x.1.achieved_mhz)
                .unwrap_or(0.0),
            flow::median(&f),
            f.iter().cloned().fold(f64::INFINITY, f64::min),
            f.iter().cloned().fold(0.0, f64::max),
            self.clock.reached_hz / 1e6,
            if best.report.met() {
                "met"
            } else {
                "NOT met (the bitstream is written; the design may fail on the board)"
            }
        );
        t += &format!(
            "throughput: {} cycles per frame (manifest) at {:.3} MHz: {:.1} frames/s\n",
            self.cycles_per_frame(),
            self.clock.reached_hz / 1e6,
            self.frames_per_s()
        );
        if !best.report.met() {
            // what a rebuild with `--freq` at the best seed's Fmax would give
            let fmax = best.report.design_clock().map_or(0.0, |x| x.1.achieved_mhz);
            t += &format!(
                "  at the best seed's Fmax, {fmax:.2} MHz (rebuild with --freq {:.0}): {:.1} frames/s\n",
                fmax.floor(),
                fmax * 1e6 / self.cycles_per_frame() as f64
            );
        }
        t += "\n";
        t += &format!(
            "files: {} (netlist), {} (placed, seed {}), {} (bitstream, {} bytes), hdl/ (accelerator), logs/\n\
             time: build and Verilog {:.1} s, yosys {:.1} s, nextpnr {:.1} s ({} seeds), pack {:.1} s\n\
             tools:\n",
            self.files[0],
            self.files[1],
            self.best,
            self.files[2],
            self.bitstream_bytes,
            self.secs[0],
            self.secs[1],
            self.secs[2],
            self.runs.len(),
            self.secs[3]
        );
        for (n, v) in &versions {
            t += &format!("  {n}: {v}\n");
        }
        let seeds: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|r| {
                let fmax: serde_json::Map<String, serde_json::Value> = r
                    .report
                    .fmax
                    .iter()
                    .map(|(k, c)| {
                        (
                            k.clone(),
                            serde_json::json!({"achieved_mhz": c.achieved_mhz,
                                                "constraint_mhz": c.constraint_mhz}),
                        )
                    })
                    .collect();
                serde_json::json!({
                    "seed": r.seed, "fmax_mhz": fmax, "met": r.report.met(),
                    "design_clock_mhz": r.report.design_clock().map(|x| x.1.achieved_mhz),
                    "seconds": r.secs,
                })
            })
            .collect();
        let utilisation: serde_json::Map<String, serde_json::Value> = use_
            .iter()
            .map(|u| {
                (
                    u.what.to_string(),
                    serde_json::json!({"used": u.used, "available": u.of, "source": u.source}),
                )
            })
            .collect();
        let pnr_util: serde_json::Map<String, serde_json::Value> = best
            .report
            .utilization
            .iter()
            .map(|(k, (u, a))| (k.clone(), serde_json::json!({"used": u, "available": a})))
            .collect();
        let j = serde_json::json!({
            "board": b.name,
            "device": b.device,
            "package": b.package,
            "top": self.top,
            "accelerator": self.built.design.top,
            "clock": {
                "requested_mhz": self.clock.requested_hz / 1e6,
                "reached_mhz": self.clock.reached_hz / 1e6,
                "pll": self.clock.pll.map(|p| p.describe()),
            },
            "baud": self.baud,
            "baud_actual": baud_actual,
            "utilisation": utilisation,
            "nextpnr_utilisation": pnr_util,
            "yosys_cells": self.cells,
            "memories_moved_to_block_ram": self.to_bram.memories,
            "seeds": seeds,
            "best_seed": self.best,
            "fmax_mhz": {
                "best": best.report.design_clock().map(|x| x.1.achieved_mhz),
                "median": flow::median(&f),
            },
            "timing_met": best.report.met(),
            "cycles_per_frame": self.cycles_per_frame(),
            "frames_per_s": self.frames_per_s(),
            "files": {
                "netlist": self.files[0], "placed": self.files[1], "bitstream": self.files[2],
            },
            "bitstream_bytes": self.bitstream_bytes,
            "seconds": {
                "build": self.secs[0], "yosys": self.secs[1], "nextpnr": self.secs[2],
                "pack": self.secs[3],
            },
            "tools": versions.iter().map(|(n, v)| (n.to_string(), serde_json::Value::from(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
        });
        (t, j)
    }
}
