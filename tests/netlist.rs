//! What goes on the FPGA, checked bit for bit: `bnnforge sim --netlist ice40` runs yosys's
//! `synth_ice40` netlist of the shipped TFC-W1A1 (technology cells, yosys's own cell
//! models, block RAMs with their initial contents) in Verilator against the model, with
//! random stalls on both streams, cycle for cycle like the RTL; a weight flipped in the
//! design must reach the netlist and be caught; a failing yosys is one line and exit 1.
//!
//! The netlist and its Verilator build are cached (in the Verilator cache) by the
//! design's hash; a cold run takes yosys (~1 min) and a Verilator build (~1–2 min).

mod common;

use common::{bnnforge, break_weights, mnist_npy, repo};
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

/// One yosys or big Verilator build at a time (the tests of this file run in threads).
static HEAVY: Mutex<()> = Mutex::new(());

/// `bnnforge sim` of `design` (the RTL, or the netlist for `family`).
fn sim(design: &Path, input: &Path, stall: f64, seed: u64, family: Option<&str>) -> Output {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = bnnforge();
    cmd.arg("sim")
        .arg(repo().join("models/tfc-w1a1.yaml"))
        .arg("--design")
        .arg(design)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out.path().join("y.npy"))
        .args(["--stall", &stall.to_string(), "--seed", &seed.to_string()]);
    if let Some(f) = family {
        cmd.args(["--netlist", f]);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.contains('[')) // progress bars
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A successful run's summary (no mismatch).
fn passed(what: &str, out: Output) -> String {
    let t = text(&out);
    assert!(
        out.status.success() && t.contains(" 0 mismatches against the model"),
        "{what} failed ({}):\n{t}",
        out.status
    );
    t
}

/// The summary's line starting with `prefix`.
fn line<'a>(summary: &'a str, prefix: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{summary}"))
}

/// The cycle figures of a summary: the interval line, the latency line and the number
/// of simulated cycles (the start of the speed line).
fn cycles(summary: &str) -> (String, String, String) {
    let speed = line(summary, "simulated ");
    (
        line(summary, "cycles per frame:").to_string(),
        line(summary, "latency:").to_string(),
        speed[..speed.find(" in ").unwrap()].to_string(),
    )
}

/// TFC-W1A1's iCE40 netlist computes the model's outputs on MNIST images, with random
/// stalls on both streams and at full rate, in exactly the RTL's cycles (interval,
/// latency and the total count); a second run synthesises and verilates nothing.
#[test]
fn tfc_netlist_cosimulates_bit_exact_in_the_rtls_cycles() {
    let design = repo().join("generated/tfc-w1a1");
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("x.npy");
    let frames = 8;
    mnist_npy(frames, &images);
    let seed =
        bnnforge_model::random::test_seed("stall", bnnforge_model::random::clock_seed() % 10_000);
    let netlist = {
        let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
        passed(
            "the netlist, 25 % stalls",
            sim(&design, &images, 0.25, seed, Some("ice40")),
        )
    };
    println!("netlist, 25 % stalls on both streams:\n{netlist}");
    assert!(
        netlist.contains("ran the iCE40 netlist"),
        "the summary must say it ran the netlist:\n{netlist}"
    );
    assert!(netlist.starts_with(&format!("{frames} frames: 0 mismatches")));
    let rtl = passed(
        "the RTL, 25 % stalls",
        sim(&design, &images, 0.25, seed, None),
    );
    assert_eq!(
        cycles(&netlist),
        cycles(&rtl),
        "the netlist must take the RTL's cycles under the same stalls"
    );
    // at full rate, from the cache: neither yosys nor Verilator runs again
    let netlist = passed(
        "the netlist, full rate",
        sim(&design, &images, 0.0, seed, Some("ice40")),
    );
    println!("netlist, full rate:\n{netlist}");
    assert!(
        line(&netlist, "ran the iCE40 netlist").contains("yosys cached")
            && line(&netlist, "simulated ").ends_with("(cached)"),
        "a second run must come from the caches:\n{netlist}"
    );
    let rtl = passed("the RTL, full rate", sim(&design, &images, 0.0, seed, None));
    assert_eq!(
        cycles(&netlist),
        cycles(&rtl),
        "the netlist's interval must be the RTL's"
    );
    println!("RTL, full rate:\n{rtl}");
}

/// A copy of the shipped design.
fn copy_design(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(repo().join("generated/tfc-w1a1")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// One weight bit of the last layer flipped in the design's Verilog: the new design is
/// synthesised (not the cached netlist of the shipped one), and its netlist fails the
/// check, exit status 1, naming the frame, the values and the layer.
#[test]
fn a_flipped_weight_reaches_the_netlist_and_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken");
    copy_design(&broken);
    let mut mvtus: Vec<(u32, String)> = std::fs::read_dir(&broken)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with("_mvtu.v"))
        .map(|f| {
            let n = f
                .split("_e")
                .nth(1)
                .and_then(|s| s.split('_').next()?.parse().ok());
            (n.unwrap(), f)
        })
        .collect();
    mvtus.sort();
    assert_eq!(mvtus.len(), 4, "TFC has four dense layers");
    println!("{}", break_weights(&broken, &mvtus[3].1, false));
    let images = tmp.path().join("x.npy");
    mnist_npy(8, &images);
    let out = {
        let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
        sim(&broken, &images, 0.2, 3, Some("ice40"))
    };
    let t = text(&out);
    println!("{t}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a mismatch is exit status 1:\n{t}"
    );
    assert!(
        t.contains("ran the iCE40 netlist")
            && t.contains("mismatches against the model")
            && t.contains("first mismatch: frame"),
        "the failure must come from the netlist and name the frame and values:\n{t}"
    );
    let net = bnnforge_model::load(&repo().join("models/tfc-w1a1.yaml")).unwrap();
    let last = &net.layers.last().unwrap().name;
    assert!(
        t.contains(&format!("first differing layer: `{last}`")),
        "the failure must name layer `{last}`:\n{t}"
    );
}

/// yosys failing on a design (here a syntax error) is one line naming yosys and its
/// log, which exists, and exit status 1.
#[test]
fn a_failing_yosys_is_one_line_with_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let design = tmp.path().join("design");
    copy_design(&design);
    let top = std::fs::read_dir(&design)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("_top.v"))
        .unwrap();
    let mut v = std::fs::read_to_string(&top).unwrap();
    v += "\nmodule broken(input a; endmodule\n";
    std::fs::write(&top, v).unwrap();
    let images = tmp.path().join("x.npy");
    mnist_npy(1, &images);
    let out = sim(&design, &images, 0.0, 1, Some("ice40"));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains('[')).collect();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(lines.len(), 1, "one line:\n{err}");
    assert!(lines[0].contains("yosys synth_ice40 failed"), "{err}");
    let log = lines[0]
        .split("(log: ")
        .nth(1)
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no log path in: {}", lines[0]));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("ERROR"), "the log holds yosys's error");
}
