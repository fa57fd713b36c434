//! Helpers for the blocks' tests: Icarus Verilog runs of generated Verilog. (The seeded
//! generator is `bnnforge_model::random::test_rng`; the stream testbench is
//! `crate::stream::testbench`.)

use crate::synth::scratch_dir;
use std::process::Command;

/// What [`iverilog_vectors`] returns for an output with an undefined bit.
pub const UNDEFINED: u128 = u128::MAX;

/// A port of the design under test, by name and width in bits.
pub type Port<'a> = (&'a str, usize);

/// Run the generated Verilog itself (not rust-hdl's simulation of it) in Icarus
/// Verilog, cycle by cycle, and return the outputs.
///
/// `vectors[t]` gives the value of each of `inputs` in cycle t (in order). With a
/// `clock`, inputs are applied while the clock is low and `outputs` are sampled just
/// after the following rising edge, like rust-hdl's `wait_clock_cycle!`; without one,
/// the design is combinational and outputs are sampled after the inputs settle. Values
/// are unsigned bit patterns of at most 128 bits; an output with an undefined (x/z)
/// bit reads as [`UNDEFINED`]. Module `top` is instantiated.
pub fn iverilog_vectors(
    name: &str,
    verilog: &str,
    clock: Option<&str>,
    inputs: &[Port],
    outputs: &[Port],
    vectors: &[Vec<u128>],
) -> Result<Vec<Vec<u128>>, String> {
    let conns: Vec<String> = inputs
        .iter()
        .chain(outputs)
        .map(|(p, _)| format!(".{p}({p})"))
        .collect();
    iverilog_wired(name, verilog, clock, inputs, outputs, "", &conns, vectors)
}

/// [`iverilog_vectors`] with the testbench's `inputs` and `outputs` as signals of its
/// own, declared before `decls` (more Verilog of the testbench) and wired to the
/// design's ports by `conns` (`.port(expression)`, the clock apart): a port may take a
/// concatenation of several signals, or be wider than one value can be.
#[allow(clippy::too_many_arguments)]
pub fn iverilog_wired(
    name: &str,
    verilog: &str,
    clock: Option<&str>,
    inputs: &[Port],
    outputs: &[Port],
    decls: &str,
    conns: &[String],
    vectors: &[Vec<u128>],
) -> Result<Vec<Vec<u128>>, String> {
    let dir = scratch_dir(name);
    let mut tb = String::from("`timescale 1ns/1ps\nmodule tb;\n");
    if let Some(c) = clock {
        tb += &format!("reg {c} = 0;\n");
    }
    for (p, w) in inputs {
        tb += &format!("reg [{}:0] {p} = 0;\n", w - 1);
    }
    for (p, w) in outputs {
        tb += &format!("wire [{}:0] {p};\n", w - 1);
    }
    tb += decls;
    let conns: Vec<String> = clock
        .iter()
        .map(|c| format!(".{c}({c})"))
        .chain(conns.iter().cloned())
        .collect();
    tb += &format!("top dut({});\ninitial begin\n", conns.join(", "));
    let fmt: Vec<&str> = outputs.iter().map(|_| "%h").collect();
    let args: Vec<&str> = outputs.iter().map(|(p, _)| *p).collect();
    let display = format!("  $display(\"{}\", {});\n", fmt.join(" "), args.join(", "));
    for v in vectors {
        assert_eq!(v.len(), inputs.len(), "one value per input port");
        for ((p, w), x) in inputs.iter().zip(v) {
            tb += &format!("  {p} = {w}'h{x:x};\n");
        }
        match clock {
            Some(c) => tb += &format!("  #5 {c} = 1; #1;\n{display}  #4 {c} = 0;\n"),
            None => tb += &format!("  #1;\n{display}"),
        }
    }
    tb += "  $finish;\nend\nendmodule\n";
    std::fs::write(dir.join("design.v"), verilog).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("tb.v"), tb).map_err(|e| e.to_string())?;
    let comp = Command::new("iverilog")
        .current_dir(&dir)
        .args(["-g2005", "-o", "sim", "tb.v", "design.v"])
        .output()
        .map_err(|e| format!("cannot run iverilog: {e}"))?;
    if !comp.status.success() {
        return Err(format!(
            "iverilog failed on {name}: {}",
            String::from_utf8_lossy(&comp.stderr)
        ));
    }
    let run = Command::new("vvp")
        .current_dir(&dir)
        .args(["-n", "sim"])
        .output()
        .map_err(|e| format!("cannot run vvp: {e}"))?;
    let text = String::from_utf8_lossy(&run.stdout);
    let mut rows = vec![];
    for line in text.lines() {
        let vals: Vec<&str> = line.split_whitespace().collect();
        if vals.len() != outputs.len() || line.starts_with("VCD") {
            continue;
        }
        if !vals.iter().all(|v| {
            v.chars()
                .all(|c| c.is_ascii_hexdigit() || "xXzZ".contains(c))
        }) {
            continue;
        }
        rows.push(
            vals.iter()
                .map(|s| u128::from_str_radix(s, 16).unwrap_or(UNDEFINED))
                .collect(),
        );
    }
    if rows.len() != vectors.len() {
        return Err(format!(
            "{name}: {} output rows for {} vectors:\n{text}",
            rows.len(),
            vectors.len()
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

/// Sign-extend the low `bits` bits of `x`.
pub fn sign_extend(x: u128, bits: usize) -> i128 {
    let shift = 128 - bits;
    ((x << shift) as i128) >> shift
}
