//! Synthesis checks shared by the blocks' tests: run yosys `synth_ice40` on generated
//! Verilog and read back what it used.
//!
//! Not a hardware block. [`ice40_stats`] writes the Verilog into a fresh temporary
//! directory, flattens it under the given top module, synthesises for iCE40 and parses
//! the `stat` report. It fails (rather than returning numbers) when yosys reports a
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
}

impl fmt::Display for Ice40Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} LUT4, {} carry, {} DFF, {} BRAM",
            self.lut4, self.carry, self.dff, self.bram
        )
    }
}

/// Synthesise `verilog` (top module `top`) with `synth_ice40 -flatten` and return its
/// cell counts, or an error naming the problem (yosys failure, latch, multiple drivers,
/// undriven wire).
pub fn ice40_stats(name: &str, verilog: &str, top: &str) -> Result<Ice40Stats, String> {
    let dir = scratch_dir(name);
    std::fs::write(dir.join("design.v"), verilog).map_err(|e| e.to_string())?;
    let script = format!(
        "read_verilog design.v; hierarchy -check -top {top}; proc; \
         check -assert; synth_ice40 -flatten -top {top}; check -assert; stat"
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
    let mut s = Ice40Stats::default();
    for line in stat.lines() {
        let mut parts = line.split_whitespace();
        let (Some(cell), Some(count)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(count) = count.parse::<usize>() else {
            continue;
        };
        match cell {
            "SB_LUT4" => s.lut4 += count,
            "SB_CARRY" => s.carry += count,
            "SB_RAM40_4K" => s.bram += count,
            c if c.starts_with("SB_DFF") => s.dff += count,
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(s)
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

/// A fresh directory under the system temp dir, unique per process and name.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bnnforge-hdl-{}-{name}", std::process::id()));
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
