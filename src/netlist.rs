//! The accelerator as the FPGA gets it: yosys's technology netlist (`synth_ice40` or
//! `synth_ecp5`, flattened, `write_verilog -noattr`), and what Verilator needs to
//! simulate it with the cell models of the very yosys that wrote it.
//!
//! [`synthesise`] runs yosys once per design and caches the netlist in the Verilator
//! cache (`netlist-<family>-<top>-<hash>/`, the hash covering the yosys version, the
//! script, the top and every Verilog file's name and contents), so a second run of the
//! same design starts no tool. [`Netlist::build_config`] turns the design's Verilator
//! build into the netlist's.

use bnnforge_testbench::{BuildConfig, Manifest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The FPGA families whose netlist can be simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Lattice iCE40 (`synth_ice40`; `SB_LUT4`, `SB_CARRY`, `SB_DFF*`, `SB_RAM40_4K`).
    Ice40,
    /// Lattice ECP5 (`synth_ecp5`; `LUT4`, `CCU2C`, `TRELLIS_FF`, `DP16KD`, `TRELLIS_DPR16X4`).
    Ecp5,
}

impl Family {
    /// `ice40` or `ecp5` (the name on the command line and of yosys's cell folder).
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "ice40" => Some(Family::Ice40),
            "ecp5" => Some(Family::Ecp5),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Ice40 => "ice40",
            Family::Ecp5 => "ecp5",
        }
    }

    /// The name people write.
    pub fn display(self) -> &'static str {
        match self {
            Family::Ice40 => "iCE40",
            Family::Ecp5 => "ECP5",
        }
    }

    /// The yosys command that synthesises for this family.
    pub fn synth(self) -> &'static str {
        match self {
            Family::Ice40 => "synth_ice40",
            // yosys (0.23, and still 0.70) ships `DP16KD` only as a blackbox in
            // ecp5/cells_sim.v: a netlist with block RAM cannot be simulated with its
            // models, so memories go to LUT RAM (`TRELLIS_DPR16X4`, modelled) and logic
            Family::Ecp5 => "synth_ecp5 -nobram",
        }
    }

    /// What the netlist leaves out of the FPGA's mapping, if anything (for the summary).
    pub fn caveat(self) -> Option<&'static str> {
        match self {
            Family::Ice40 => None,
            Family::Ecp5 => Some(
                "memories in LUT RAM and logic, not DP16KD block RAM: yosys has no \
                 simulation model of DP16KD",
            ),
        }
    }

    /// What Verilator needs to read yosys's cell models (`cells_sim.v`) of this family.
    fn verilator_args(self, cells_dir: &Path) -> Vec<String> {
        let mut args = vec![
            // the models set `timescale 1ps/1ps, the netlist none; with --no-timing the
            // delays are ignored anyway, this only keeps TIMESCALEMOD quiet
            "--timescale".to_string(),
            "1ps/1ps".to_string(),
            // a port left unconnected would read 0 or X where the silicon (and the
            // models' own defaults) read a constant: make it visible (see `check`)
            "-Wwarn-PINMISSING".to_string(),
        ];
        match self {
            Family::Ice40 => {
                // The models give unconnected inputs their silicon value with SystemVerilog
                // port defaults (`input [15:0] MASK = 16'h0000`), which Verilator 5.006
                // cannot parse. This define drops them; every port of every cell in a
                // yosys netlist is connected (`write_verilog` writes constants), which
                // `check` confirms from Verilator's PINMISSING warnings. The timing
                // `specify` blocks stay out: ICE40_HX/LP/U and TIMING are not defined.
                // `SB_RAM40_4K` loads INIT_0..INIT_F in an `initial` loop, which
                // Verilator runs, so the block RAMs start with their contents.
                args.push("-DNO_ICE40_DEFAULT_ASSIGNMENTS".to_string());
            }
            Family::Ecp5 => {
                // cells_sim.v `include`s cells_ff.vh and cells_io.vh from its folder
                args.push(format!("-I{}", cells_dir.display()));
            }
        }
        args
    }
}

/// A synthesised netlist (in the cache).
#[derive(Clone, Debug)]
pub struct Netlist {
    pub family: Family,
    /// The netlist's Verilog.
    pub verilog: PathBuf,
    /// yosys's simulation models of the family's cells (`<datdir>/<family>/cells_sim.v`).
    pub cells: PathBuf,
    /// True when no yosys ran (the netlist came from the cache).
    pub cached: bool,
    /// Wall time of yosys (0 when cached).
    pub yosys_secs: f64,
}

/// Why a netlist could not be made.
#[derive(Debug)]
pub enum NetlistError {
    /// yosys failed or could not be run: one line, naming its log when there is one.
    Tool(String),
    /// The design folder or the cache cannot be used.
    Io(String),
}

impl std::fmt::Display for NetlistError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetlistError::Tool(m) | NetlistError::Io(m) => f.write_str(m),
        }
    }
}

/// Bumped when the cache layout changes (part of every netlist's hash, as the script is).
const NETLIST_VERSION: u32 = 1;
const NETLIST: &str = "netlist.v";
const LOG: &str = "yosys.log";
/// Where the path of the cell models is kept beside a cached netlist.
const CELLS: &str = "cells.txt";

/// The yosys script: the design's files are read before it (yosys's command line).
fn script(family: Family, top: &str) -> String {
    // `check -assert` fails on a multiply driven or undriven wire or a logic loop, which
    // a simulation could otherwise quietly resolve one way. `splitnets` gives every
    // internal bit a wire of its own (the ports stay vectors): Verilator schedules a
    // vector as one variable, so a carry chain threaded through one vector looks like a
    // combinational loop (UNOPTFLAT) that it re-evaluates until it settles.
    // On iCE40 the board flow's post-synthesis map too, so that the netlist simulated is
    // the one placed.
    let after = match family {
        Family::Ice40 => format!("; {}", crate::flow::ice40_after_synth()),
        Family::Ecp5 => String::new(),
    };
    format!(
        "hierarchy -check -top {top}; {} -top {top}{after}; check -assert; stat; splitnets; \
         write_verilog -noattr {NETLIST}",
        family.synth()
    )
}

/// The netlist of the design `m` for `family`: from the cache under `cache_root`, or
/// synthesised now (one yosys run, rerun when ABC aborts).
pub fn synthesise(
    m: &Manifest,
    family: Family,
    cache_root: &Path,
) -> Result<Netlist, NetlistError> {
    let yosys = Command::new("yosys")
        .arg("-V")
        .output()
        .map_err(|e| NetlistError::Tool(format!("cannot run yosys (is it installed?): {e}")))?;
    let mut h = crate::commands::sim::fnv1a(
        format!("netlist {NETLIST_VERSION} {}", family.name()).bytes(),
        0xcbf2_9ce4_8422_2325,
    );
    h = crate::commands::sim::fnv1a(yosys.stdout, h);
    h = crate::commands::sim::fnv1a(script(family, &m.top).bytes(), h);
    h = crate::commands::sim::fnv1a(crate::flow::ICE40_MEMORY_FF.1.bytes(), h);
    for f in &m.verilog {
        let v = std::fs::read(f)
            .map_err(|e| NetlistError::Io(format!("{}: cannot read: {e}", f.display())))?;
        let name = f.file_name().map(|n| n.as_encoded_bytes().to_vec());
        h = crate::commands::sim::fnv1a(name.unwrap_or_default(), h);
        h = crate::commands::sim::fnv1a(v, h);
    }
    let dir = cache_root.join(format!("netlist-{}-{}-{h:016x}", family.name(), m.top));
    let found = |cached: bool, yosys_secs: f64| -> Option<Netlist> {
        let cells = std::fs::read_to_string(dir.join(CELLS)).ok()?;
        let n = Netlist {
            family,
            verilog: dir.join(NETLIST),
            cells: PathBuf::from(cells.trim_end()),
            cached,
            yosys_secs,
        };
        (n.verilog.is_file() && n.cells.is_file()).then_some(n)
    };
    if let Some(n) = found(true, 0.0) {
        return Ok(n);
    }
    std::fs::create_dir_all(cache_root)
        .map_err(|e| NetlistError::Io(format!("{}: cannot create: {e}", cache_root.display())))?;
    // yosys works in a folder of its own, renamed into place when complete, so that a
    // concurrent run of the same design never sees half a netlist
    let tmp = cache_root.join(format!(
        "netlist-{}-{}-{h:016x}.tmp{}",
        family.name(),
        m.top,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| NetlistError::Io(format!("{}: cannot create: {e}", tmp.display())))?;
    let (map_name, map_text) = crate::flow::ICE40_MEMORY_FF;
    std::fs::write(tmp.join(map_name), map_text)
        .map_err(|e| NetlistError::Io(format!("{}: cannot write: {e}", tmp.display())))?;
    let mut args: Vec<String> = ["-q", "-l", LOG, "-p", &script(family, &m.top)]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in &m.verilog {
        let abs = std::fs::canonicalize(f)
            .map_err(|e| NetlistError::Io(format!("{}: cannot find: {e}", f.display())))?;
        args.push(abs.to_string_lossy().into_owned());
    }
    let t = Instant::now();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = bnnforge_hdl::synth::run_yosys(&tmp, &args, LOG, &m.top);
    let yosys_secs = t.elapsed().as_secs_f64();
    let fail = |what: String| -> NetlistError {
        // the log stays, beside where the netlist would have been
        let failed = cache_root.join(format!(
            "netlist-{}-{}-{h:016x}.failed",
            family.name(),
            m.top
        ));
        let _ = std::fs::remove_dir_all(&failed);
        let log = if std::fs::rename(&tmp, &failed).is_ok() {
            failed.join(LOG)
        } else {
            tmp.join(LOG)
        };
        NetlistError::Tool(format!("{what} (log: {})", log.display()))
    };
    let (out, log) = match ran {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(NetlistError::Tool(format!(
                "cannot run yosys (is it installed?): {e}"
            )));
        }
    };
    if !out.status.success() {
        let first = log
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .find(|l| l.starts_with("ERROR"))
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(fail(format!(
            "yosys {} failed on `{}`: {first}",
            family.synth(),
            m.top
        )));
    }
    let Some(cells) = cells_models(&log, family) else {
        return Err(fail(format!(
            "cannot find yosys's {}/cells_sim.v (neither in yosys's log nor from yosys-config \
             --datdir)",
            family.name()
        )));
    };
    if let Some(cell) = unmodelled_cell(&tmp.join(NETLIST), &cells) {
        return Err(fail(format!(
            "the {} netlist uses `{cell}`, which yosys's {} declares as a blackbox (no \
             simulation model)",
            family.display(),
            cells.display()
        )));
    }
    std::fs::write(tmp.join(CELLS), cells.to_string_lossy().as_bytes())
        .map_err(|e| NetlistError::Io(format!("{}: cannot write: {e}", tmp.display())))?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // another process published the same netlist first
        let _ = std::fs::remove_dir_all(&tmp);
    }
    found(false, yosys_secs)
        .ok_or_else(|| NetlistError::Io(format!("cannot move the netlist into {}", dir.display())))
}

/// yosys's `<family>/cells_sim.v`: the file the synthesis itself read (its log names it,
/// `Executing Verilog-2005 frontend: <path>`), else `$(yosys-config --datdir)/<family>/`.
fn cells_models(log: &str, family: Family) -> Option<PathBuf> {
    let tail = format!("{}/cells_sim.v", family.name());
    let from_log = log
        .lines()
        .filter_map(|l| l.split_once("Executing Verilog-2005 frontend: "))
        .map(|(_, p)| PathBuf::from(p.trim()))
        .find(|p| p.ends_with(&tail) && p.is_file());
    from_log.or_else(|| {
        let out = Command::new("yosys-config").arg("--datdir").output().ok()?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(&tail);
        p.is_file().then_some(p)
    })
}

/// The first cell the netlist instantiates that `cells` declares `(* blackbox *)`.
fn unmodelled_cell(netlist: &Path, cells: &Path) -> Option<String> {
    let models = std::fs::read_to_string(cells).ok()?;
    let mut blackboxes = vec![];
    let mut marked = false;
    for line in models.lines().map(str::trim) {
        if line.starts_with("(* blackbox *)") {
            marked = true;
        } else if let Some(rest) = line.strip_prefix("module ") {
            if marked {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                blackboxes.push(name);
            }
            marked = false;
        }
    }
    let text = std::fs::read_to_string(netlist).ok()?;
    // write_verilog puts one cell per line: `  NAME #(` or `  NAME \\instance (`
    text.lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .find(|w| blackboxes.iter().any(|b| b == w))
        .map(str::to_string)
}

impl Netlist {
    /// The Verilator build of this netlist with the cell models, from the design's
    /// build (the same top, port widths, trace and cache).
    pub fn build_config(&self, design: &BuildConfig) -> BuildConfig {
        let mut cfg = design.clone();
        cfg.verilog = vec![self.verilog.clone(), self.cells.clone()];
        let dir = self.cells.parent().unwrap_or(Path::new("."));
        cfg.verilator_args.extend(self.family.verilator_args(dir));
        cfg
    }

    /// Verilator's warnings that mean the netlist would simulate wrongly: on iCE40, a
    /// cell port the netlist leaves unconnected (with the models' port defaults dropped
    /// it would read 0 where the silicon reads the default). ECP5's models have no port
    /// defaults; its netlists leave pins the cell's parameters make unused (`M`, `CE`
    /// under `CEMUX "1"`) open.
    pub fn check(&self, warnings: &[String]) -> Result<(), String> {
        if self.family != Family::Ice40 {
            return Ok(());
        }
        let netlist = self.verilog.to_string_lossy();
        match warnings
            .iter()
            .find(|w| w.contains("PINMISSING") && w.contains(netlist.as_ref()))
        {
            Some(w) => Err(format!("the netlist leaves a cell port unconnected: {w}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blackbox_cell_in_the_netlist_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let cells = dir.path().join("cells_sim.v");
        std::fs::write(
            &cells,
            "module LUT4(input A, output Z);\nendmodule\n(* blackbox *)\nmodule DP16KD(\n  \
             input CLKA\n);\nendmodule\n",
        )
        .unwrap();
        let netlist = dir.path().join("netlist.v");
        let lut = "module top(input a, output z);\n  LUT4 #(\n    .INIT(16'h1)\n  ) \\l  (\n    \
                   .A(a),\n    .Z(z)\n  );\n";
        std::fs::write(&netlist, format!("{lut}endmodule\n")).unwrap();
        assert_eq!(unmodelled_cell(&netlist, &cells), None);
        std::fs::write(
            &netlist,
            format!("{lut}  DP16KD \\ram  (\n    .CLKA(a)\n  );\nendmodule\n"),
        )
        .unwrap();
        assert_eq!(unmodelled_cell(&netlist, &cells).as_deref(), Some("DP16KD"));
    }

    #[test]
    fn the_cell_models_are_the_ones_yosys_read() {
        let dir = tempfile::tempdir().unwrap();
        let cells = dir.path().join("ice40/cells_sim.v");
        std::fs::create_dir_all(cells.parent().unwrap()).unwrap();
        std::fs::write(&cells, "").unwrap();
        let log = format!(
            "1. Executing Verilog-2005 frontend: {}\nParsing Verilog input\n",
            cells.display()
        );
        assert_eq!(cells_models(&log, Family::Ice40), Some(cells));
    }
}
