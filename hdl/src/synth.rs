//! Synthesis checks shared by the blocks' tests: run yosys `synth_ice40` or `synth_ecp5`
//! on generated Verilog and read back what it used.
//!
//! Not a hardware block. [`ice40_stats`] writes the Verilog into a fresh temporary
//! directory, flattens it under the given top module, synthesises for iCE40 and parses
//! the `stat` report ([`ecp5_stats`]: the same for ECP5). It fails (rather than returning numbers) when yosys reports a
//! latch, a wire with several drivers, an undriven wire or any error, so a test that
//! reads a LUT count has also checked that the design is clean. [`run_yosys`] is the
//! yosys invocation every caller shares (it reruns yosys when ABC aborts). Icarus runs
//! for the block tests are in the test-only `testutil`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Cells counted after `synth_ice40` of one flattened design.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ice40Stats {
    /// `SB_LUT4` cells.
    pub lut4: usize,
    /// `SB_CARRY` cells.
    pub carry: usize,
    /// Flip-flops of every `SB_DFF*` flavour.
    pub dff: usize,
    /// `SB_RAM40_4K` block RAMs.
    pub bram: usize,
    /// `SB_SPRAM256KA` single-port RAMs (UltraPlus).
    pub spram: usize,
}

impl fmt::Display for Ice40Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} LUT4, {} carry, {} DFF, {} BRAM",
            self.lut4, self.carry, self.dff, self.bram
        )?;
        if self.spram > 0 {
            write!(f, ", {} SPRAM", self.spram)?;
        }
        Ok(())
    }
}

/// Synthesise `verilog` (top module `top`) with `synth_ice40 -flatten` and return its
/// cell counts, or an error naming the problem (yosys failure, latch, multiple drivers,
/// undriven wire).
pub fn ice40_stats(name: &str, verilog: &str, top: &str) -> Result<Ice40Stats, String> {
    let mut s = Ice40Stats::default();
    for (cell, count) in synth_cells(name, verilog, top, "synth_ice40 -flatten")? {
        match cell.as_str() {
            "SB_LUT4" => s.lut4 += count,
            "SB_CARRY" => s.carry += count,
            "SB_RAM40_4K" => s.bram += count,
            "SB_SPRAM256KA" => s.spram += count,
            c if c.starts_with("SB_DFF") => s.dff += count,
            _ => {}
        }
    }
    Ok(s)
}

/// Cells counted after `synth_ecp5` of one flattened design.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ecp5Stats {
    /// `LUT4` cells.
    pub lut4: usize,
    /// `CCU2C` carry cells (two LUT4s each).
    pub ccu2c: usize,
    /// `TRELLIS_DPR16X4` LUT-RAMs.
    pub lutram: usize,
    /// `TRELLIS_FF` flip-flops.
    pub ff: usize,
    /// `DP16KD` block RAMs (18 kbit EBR).
    pub ebr: usize,
    /// `MULT18X18D` multipliers.
    pub dsp: usize,
}

/// LUT4 places of an ECP5 netlist: `LUT4` + 2 per `CCU2C` + 6 per `TRELLIS_DPR16X4` (two
/// slices in RAM mode and one for the write port, as nextpnr's "Total LUT4s" counts
/// them before packing).
pub fn ecp5_lut_places(lut4: usize, ccu2c: usize, dpr16x4: usize) -> usize {
    lut4 + 2 * ccu2c + 6 * dpr16x4
}

impl Ecp5Stats {
    /// LUT4s of the fabric, as the estimate counts them ([`ecp5_lut_places`]).
    pub fn fabric_lut4(&self) -> usize {
        ecp5_lut_places(self.lut4, self.ccu2c, self.lutram)
    }
}

impl fmt::Display for Ecp5Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} LUT4 ({} LUT4, {} CCU2C, {} DPR16X4), {} FF, {} EBR, {} DSP",
            self.fabric_lut4(),
            self.lut4,
            self.ccu2c,
            self.lutram,
            self.ff,
            self.ebr,
            self.dsp
        )
    }
}

/// Synthesise `verilog` (top module `top`) with `synth_ecp5` (which flattens) and return
/// its cell counts, or an error as [`ice40_stats`].
pub fn ecp5_stats(name: &str, verilog: &str, top: &str) -> Result<Ecp5Stats, String> {
    let mut s = Ecp5Stats::default();
    for (cell, count) in synth_cells(name, verilog, top, "synth_ecp5")? {
        match cell.as_str() {
            "LUT4" => s.lut4 += count,
            "CCU2C" => s.ccu2c += count,
            "TRELLIS_DPR16X4" => s.lutram += count,
            "TRELLIS_FF" => s.ff += count,
            "DP16KD" => s.ebr += count,
            "MULT18X18D" => s.dsp += count,
            _ => {}
        }
    }
    Ok(s)
}

/// Runs `synth` (a yosys synthesis command without `-top`) on `verilog` under `top` and
/// returns the cells of its `stat` report by type, after checking the design is clean.
fn synth_cells(
    name: &str,
    verilog: &str,
    top: &str,
    synth: &str,
) -> Result<Vec<(String, usize)>, String> {
    let dir = scratch_dir(name);
    std::fs::write(dir.join("design.v"), verilog).map_err(|e| e.to_string())?;
    let script = format!(
        "read_verilog design.v; hierarchy -check -top {top}; proc; \
         check -assert; {synth} -top {top}; check -assert; stat"
    );
    let (out, log) = run_yosys(
        &dir,
        &["-q", "-l", "yosys.log", "-p", &script],
        "yosys.log",
        name,
    )
    .map_err(|e| format!("cannot run yosys: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "yosys failed on {name}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&log, 30)
        ));
    }
    for bad in [
        "Latch inferred",
        "multiple conflicting drivers",
        "is used but has no driver",
    ] {
        if log.contains(bad) {
            return Err(format!(
                "yosys reports `{bad}` in {name}:\n{}",
                tail(&log, 30)
            ));
        }
    }
    let stat = log
        .rfind("Printing statistics")
        .map(|i| &log[i..])
        .ok_or_else(|| format!("no statistics in yosys log of {name}"))?;
    if stat.to_ascii_uppercase().contains("LATCH") {
        return Err(format!("latch cells left in {name}:\n{stat}"));
    }
    let mut cells = vec![];
    for line in stat.lines() {
        let mut parts = line.split_whitespace();
        let (Some(cell), Some(count)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Ok(count) = count.parse::<usize>() {
            cells.push((cell.to_string(), count));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(cells)
}

/// Runs `yosys args` in `dir`, again (up to `ABC_ATTEMPTS` runs) while it fails because
/// ABC aborted (see [`abc_aborted`]); `log` is the log file the arguments name, relative
/// to `dir`, and `name` names the design in the message about a rerun. Returns the last
/// run's output and log; fails only when yosys cannot be started.
pub fn run_yosys(
    dir: &Path,
    args: &[&str],
    log: &str,
    name: &str,
) -> std::io::Result<(Output, String)> {
    let mut attempt = 1;
    loop {
        let out = Command::new("yosys").current_dir(dir).args(args).output()?;
        let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        if out.status.success() || !abc_aborted(&text) || attempt == ABC_ATTEMPTS {
            return Ok((out, text));
        }
        eprintln!(
            "{name}: yosys's ABC aborted on an address-dependent assertion; run {} of {ABC_ATTEMPTS}",
            attempt + 1
        );
        attempt += 1;
    }
}

/// How many times yosys runs when ABC aborts (see [`abc_aborted`]).
const ABC_ATTEMPTS: usize = 3;

/// Whether yosys failed because ABC aborted on an assertion rather than on the design.
///
/// The `abc` in Debian's yosys 0.23 asserts in `lutpack` (`Lpk_CutTruth`) that the
/// low 32 bits of a heap pointer are not below 0x10000, so it aborts now and then
/// depending only on where the heap lands (berkeley-abc PR #505, yosys issue #1028).
/// Another run, with another address layout, passes; a real design error fails every
/// time and is reported after the last attempt.
pub fn abc_aborted(log: &str) -> bool {
    log.contains("ABC: execution of command") && log.contains("Assertion")
}

/// A fresh directory under the system temp dir, unique per process and call.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    // a number per call: tests in parallel synthesise the same module for iCE40 and ECP5
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bnnforge-hdl-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create scratch directory");
    dir
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_abc_assertion_counts_as_a_tool_abort() {
        // The lines yosys 0.23 logged when CI hit the lutpack assertion.
        let abort = "5.40.1.1. Executing ABC.\n\
            ABC: + lutpack -S 1 \n\
            ABC: berkeley-abc: src/opt/lpk/lpkCut.c:200: Lpk_CutTruth: Assertion \
            `((unsigned)(ABC_PTRUINT_T)pFanin->pCopy) & 0xffff0000' failed.\n\
            ABC: Aborted\n\
            ERROR: ABC: execution of command \"\"berkeley-abc\" -s -f abc.script\" \
            failed: return code 134.";
        assert!(abc_aborted(abort));
        let design_error =
            "ERROR: Module `\\top' referenced in module `\\x' is not part of the design.";
        assert!(!abc_aborted(design_error));
        let latch = "Latch inferred for signal `\\top.\\q' from process";
        assert!(!abc_aborted(latch));
    }

    #[test]
    fn a_real_design_error_is_reported_not_retried_forever() {
        let err = ice40_stats(
            "broken",
            "module top(input a, output b); assign b = c; endmodule",
            "top",
        )
        .unwrap_err();
        assert!(err.contains("broken"), "{err}");
    }
}
