//! `bnnforge build`: the network's accelerator as Verilog, `manifest.json` and a report.

use crate::engines;
use bnnforge_hdl::boards::Family;
use bnnforge_hdl::compile::budget::{bram_unit, fold_for_budget, Budget};
use bnnforge_hdl::compile::design::{Design, Elem};
use bnnforge_hdl::compile::folding::{default_target, plan, Fold};
use bnnforge_hdl::compile::resources::{estimate, estimate_on, Cost, Estimate};
use bnnforge_hdl::compile::top::GENERATED_HEADER;
use bnnforge_hdl::stream::weight_load::load_bits_per_beat;
use bnnforge_model::{Error, Network, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How `build` folds the network.
#[derive(Clone, Copy, Debug)]
pub enum How<'a> {
    /// a folding file and/or a target interval; neither: the default balance (see
    /// `default_target`)
    Plan {
        folding: Option<&'a Path>,
        target: Option<u64>,
    },
    /// the fastest folding whose resource estimate fits (`device`: the name it came from)
    Budget {
        budget: Budget,
        device: Option<&'a str>,
    },
}

/// The folding options of the command line, checked: at most one of `--folding`,
/// `--target-cycles`, `--budget`, `--device` (clap already refuses folding with target).
pub fn choose<'a>(
    folding: Option<&'a Path>,
    target: Option<u64>,
    budget: Option<&str>,
    device: Option<&'a str>,
) -> Result<How<'a>> {
    if budget.is_some() && device.is_some() {
        return Err(Error::new(
            "--budget and --device are alternatives: give one of them",
        ));
    }
    let by_budget = if budget.is_some() {
        "--budget"
    } else {
        "--device"
    };
    if (budget.is_some() || device.is_some()) && (folding.is_some() || target.is_some()) {
        let other = if folding.is_some() {
            "--folding"
        } else {
            "--target-cycles"
        };
        return Err(Error::new(format!(
            "{by_budget} chooses the folding itself and cannot be combined with {other}"
        )));
    }
    Ok(match (budget, device) {
        (Some(b), _) => How::Budget {
            budget: Budget::parse(b).map_err(Error::new)?,
            device: None,
        },
        (None, Some(d)) => How::Budget {
            budget: Budget::device(d).map_err(Error::new)?,
            device: Some(d),
        },
        (None, None) => How::Plan { folding, target },
    })
}

/// What a build made.
pub struct Built {
    pub design: Design,
    /// the resource estimate of the design (iCE40)
    pub estimate: Estimate,
    /// the resource estimate of the design on ECP5
    pub ecp5: Estimate,
    pub out: PathBuf,
    pub verilog_bytes: u64,
    pub compile_secs: f64,
    pub generate_secs: f64,
}

/// Reads a folding file: `layer: {pe: P, simd: S}` per layer (simd defaults to 1).
pub fn read_folding(path: &Path) -> Result<BTreeMap<String, Fold>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path))?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct F {
        pe: usize,
        #[serde(default = "one")]
        simd: usize,
    }
    fn one() -> usize {
        1
    }
    let m: BTreeMap<String, F> = serde_norway::from_str(&text).map_err(|e| {
        Error::new(format!("not a folding (layer: {{pe, simd}}): {e}").replace('\n', " "))
            .in_file(path)
    })?;
    Ok(m.into_iter()
        .map(|(k, f)| {
            (
                k,
                Fold {
                    pe: f.pe,
                    simd: f.simd,
                },
            )
        })
        .collect())
}

/// The design of `net` for the given folding or target.
pub fn design(
    net: &Network,
    model: &Path,
    folding: Option<&Path>,
    target: Option<u64>,
) -> Result<Design> {
    let given = match folding {
        Some(f) => read_folding(f)?,
        None => BTreeMap::new(),
    };
    if target == Some(0) {
        return Err(Error::new("--target-cycles must be at least 1"));
    }
    // no folding and no target: the default balance (see `default_target`)
    let target = match (folding, target) {
        (None, None) => Some(default_target(net)),
        _ => target,
    };
    let p = plan(net, &given, target).map_err(|e| match folding {
        Some(f) => Error::new(e).in_file(f),
        None => Error::new(e).in_file(model),
    })?;
    Design::new(net, &p.folds).map_err(|e| Error::new(e).in_file(model))
}

/// How a budget build chose its folding, for the manifest and the report.
struct BudgetInfo<'a> {
    budget: Budget,
    device: Option<&'a str>,
    target: u64,
    candidates: usize,
}

/// The design of `net` chosen `how`.
fn design_how<'a>(
    net: &Network,
    model: &Path,
    how: &How<'a>,
) -> Result<(Design, Option<BudgetInfo<'a>>)> {
    match *how {
        How::Budget { budget, device } => {
            let c = fold_for_budget(net, budget).map_err(|e| Error::new(e).in_file(model))?;
            let info = BudgetInfo {
                budget,
                device,
                target: c.target,
                candidates: c.candidates.len(),
            };
            Ok((c.design, Some(info)))
        }
        How::Plan { folding, target } => Ok((design(net, model, folding, target)?, None)),
    }
}

fn cost_json(c: &Cost) -> serde_json::Value {
    let mut v = serde_json::json!({"lut4": c.lut4, "dff": c.dff, "bram": c.bram});
    if c.spram > 0 {
        v["spram"] = c.spram.into();
    }
    v
}

/// The file of the SPRAM weight words, one 16-bit word a line in hex.
pub const WEIGHTS_FILE: &str = "weights.hex";

fn ecp5_cost_json(c: &Cost) -> serde_json::Value {
    serde_json::json!({"lut4": c.lut4, "ff": c.dff, "ebr": c.bram, "lutram": c.lutram})
}

fn elem_json(e: Elem, lanes: Option<usize>, elements: usize) -> serde_json::Value {
    let mut v = serde_json::json!({
        "bits": e.bits,
        "signed": e.signed,
        "binary": e.binary,
        "elements": elements,
    });
    if let Some(l) = lanes {
        v["lanes"] = l.into();
    }
    v
}

/// The manifest of the spec (and more: the engines, the folding, the resource
/// estimate and, for a budget build, the budget).
fn manifest(
    net: &Network,
    d: &Design,
    files: &[String],
    est: &Estimate,
    ecp5: &Estimate,
    budget: Option<&BudgetInfo>,
) -> String {
    let engines: Vec<serde_json::Value> = d
        .engines
        .iter()
        .zip(&est.engines)
        .map(|(e, c)| {
            serde_json::json!({
                "module": e.module, "kind": e.kind.name(), "layers": e.layers,
                "pe": e.fold.pe, "simd": e.fold.simd, "cycles_per_frame": e.cycles,
                "latency_cycles": e.latency, "memory_bits": e.memory_bits,
                "accumulator_bits": e.acc_bits, "estimate": cost_json(c),
            })
        })
        .collect();
    let folding: serde_json::Map<String, serde_json::Value> = net
        .layers
        .iter()
        .zip(&d.folds)
        .map(|(l, f)| {
            (
                l.name.clone(),
                serde_json::json!({"pe": f.pe, "simd": f.simd}),
            )
        })
        .collect();
    let mut v = serde_json::json!({
        "format": 1,
        "generator": format!("bnnforge {}", env!("CARGO_PKG_VERSION")),
        "network": net.name,
        "network_hash": format!("{:016x}", net.hash()),
        "top": d.top,
        "verilog": files,
        "input": elem_json(d.input().elem, Some(d.input().lanes), d.input().elements),
        "output": elem_json(d.output().elem, None, d.output().elements),
        "cycles_per_frame": d.cycles_per_frame(),
        "latency_cycles": d.latency_cycles(),
        "folding": folding,
        "engines": engines,
        "estimate": {
            "model": bnnforge_hdl::compile::resources::MODEL,
            "top": cost_json(&est.top),
            "total": cost_json(&est.total),
            "ecp5": {
                "model": bnnforge_hdl::compile::resources::MODEL_ECP5,
                "engines": ecp5.engines.iter().map(ecp5_cost_json).collect::<Vec<_>>(),
                "top": ecp5_cost_json(&ecp5.top),
                "total": ecp5_cost_json(&ecp5.total),
            },
        },
    });
    if let Some(b) = budget {
        v["budget"] = serde_json::json!({
            "family": match b.budget.family { Family::Ice40 => "ice40", Family::Ecp5 => "ecp5" },
            "lut4": b.budget.lut4, "bram": b.budget.bram, "device": b.device,
            "target_cycles": b.target, "candidates": b.candidates,
        });
        if b.budget.spram > 0 {
            v["budget"]["spram"] = b.budget.spram.into();
        }
    }
    if !d.spram_engines().is_empty() {
        v["weight_load"] = serde_json::json!({
            "file": WEIGHTS_FILE,
            "words": d.spram_words(),
            "bits_per_beat": load_bits_per_beat(d.input().width()),
        });
    }
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// The report's efficiency line: binary MACs per cycle, and per cycle per LUT4 of
/// `lut4` (the `family` estimate's).
pub fn efficiency(net: &Network, d: &Design, lut4: u64, family: &str) -> String {
    let macs: u64 = bnnforge_model::info::layer_stats(net)
        .iter()
        .filter(|s| s.binary_macs)
        .map(|s| s.macs)
        .sum();
    let per_cycle = macs as f64 / d.cycles_per_frame() as f64;
    format!(
        "efficiency: {macs} binary MACs per frame in {} cycles: {per_cycle:.1} per cycle, \
         {:.3} per cycle per LUT4 ({lut4} LUT4, {family} estimate)\n",
        d.cycles_per_frame(),
        per_cycle / lut4.max(1) as f64
    )
}

/// The report's SPRAM lines (a design with weights in SPRAM only).
fn spram_report(d: &Design) -> String {
    let engines = d.spram_engines();
    if engines.is_empty() {
        return String::new();
    }
    let spram: usize = engines.iter().map(|&i| d.engines[i].fold.pe).sum();
    let names: Vec<String> = engines
        .iter()
        .map(|&i| format!("{} ({})", i, d.engines[i].layers.join("+")))
        .collect();
    let lw = load_bits_per_beat(d.input().width());
    format!(
        "weights in SPRAM: {spram} SB_SPRAM256KA, one per PE of engine {}; after reset \
         s_axis takes their {} words ({WEIGHTS_FILE}) before any frame, {lw} bits a beat \
         (low bits of s_axis_tdata, low bits of a word first): {} beats\n\n",
        names.join(", "),
        d.spram_words(),
        d.spram_words() * (16 / lw)
    )
}

/// The report's budget lines (a budget build only; `est` on the budget's family).
fn budget_report(b: &BudgetInfo, est: &Estimate, d: &Design) -> String {
    let unit = bram_unit(b.budget.family);
    let (what, cells) = match b.budget.family {
        Family::Ice40 => (
            "iCE40 logic cells, LUT4 + 1/2 DFF, and 4-kbit block RAM",
            format!(" ({} logic cells)", est.total.logic_cells()),
        ),
        Family::Ecp5 => ("ECP5 LUT4 and 18-kbit EBR", String::new()),
    };
    format!(
        "\nbudget: {}{} ({what})\n\
         chosen: the fastest of {} candidate foldings that fits: planned for {} cycles per \
         frame, {} cycles per frame, estimated {} LUT4{cells} and {} {unit}\n",
        b.budget,
        b.device
            .map(|n| format!(" (device {n})"))
            .unwrap_or_default(),
        b.candidates,
        b.target,
        d.cycles_per_frame(),
        est.total.lut4,
        est.total.bram
    )
}

/// Builds the accelerator of `model` into `out` (replaced as a whole, or untouched on
/// any error), for the given folding or target.
pub fn build(
    model: &Path,
    out: &Path,
    folding: Option<&Path>,
    target: Option<u64>,
) -> Result<Built> {
    build_how(model, out, &How::Plan { folding, target })
}

/// Builds the accelerator of `model` into `out` folded `how` (`out` is replaced as a
/// whole, or untouched on any error).
pub fn build_how(model: &Path, out: &Path, how: &How) -> Result<Built> {
    let net = bnnforge_model::load(model)?;
    let (d, budget) = design_how(&net, model, how)?;
    let est = estimate(&d);
    let ecp5 = estimate_on(&d, Family::Ecp5);
    let budget_est = match budget.as_ref().map(|b| b.budget.family) {
        Some(Family::Ecp5) => &ecp5,
        _ => &est,
    };
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
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp)
        .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&tmp))?;
    let result = (|| -> Result<Built> {
        let model_abs = std::fs::canonicalize(model)
            .map_err(|e| Error::new(format!("cannot resolve: {e}")).in_file(model))?;
        let (compile_secs, generate_secs) = engines::generate(&d, &model_abs, &tmp)?;
        let files = d.verilog_files();
        let top_file = &files[0];
        let write = |f: &str, text: &str| {
            std::fs::write(tmp.join(f), text)
                .map_err(|e| Error::new(format!("cannot write: {e}")).in_file(&tmp.join(f)))
        };
        write(top_file, &d.top_verilog())?;
        let load = d.spram_load_words(&net);
        if !load.is_empty() {
            let hex: String = load.iter().map(|w| format!("{w:04x}\n")).collect();
            write(WEIGHTS_FILE, &hex)?;
        }
        write(
            "manifest.json",
            &manifest(&net, &d, &files, &est, &ecp5, budget.as_ref()),
        )?;
        write(
            "report.txt",
            &format!(
                "{}\n{}\n{}{}{}\n{}{}{}",
                GENERATED_HEADER.replacen("//", "#", 1),
                d.report(&net),
                spram_report(&d),
                bnnforge_hdl::compile::resources::report(&d, &est),
                efficiency(&net, &d, est.total.lut4, "iCE40"),
                bnnforge_hdl::compile::resources::report(&d, &ecp5),
                efficiency(&net, &d, ecp5.total.lut4, "ECP5"),
                budget
                    .as_ref()
                    .map(|b| budget_report(b, budget_est, &d))
                    .unwrap_or_default()
            ),
        )?;
        let mut bytes = 0;
        for f in &files {
            bytes += std::fs::metadata(tmp.join(f))
                .map_err(|e| Error::new(format!("missing: {e}")).in_file(&tmp.join(f)))?
                .len();
        }
        Ok(Built {
            design: d.clone(),
            estimate: est.clone(),
            ecp5: ecp5.clone(),
            out: out.to_path_buf(),
            verilog_bytes: bytes,
            compile_secs,
            generate_secs,
        })
    })();
    let built = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // swap the new folder in: the old one moves aside first, so `out` is never half-written
    let old = parent.join(format!(".{name}.{}.old", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old)
            .map_err(|e| Error::new(format!("cannot replace: {e}")).in_file(out))?;
    }
    if let Err(e) = std::fs::rename(&tmp, out) {
        let _ = std::fs::rename(&old, out);
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::new(format!("cannot write: {e}")).in_file(out));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(built)
}

/// Why `d` runs slower than `--target-cycles t`: the engine that limits it.
pub fn unmet_target(d: &Design, t: u64) -> String {
    // among the slowest, a layer's engine rather than the converter or FIFO that only
    // keeps its pace
    let (first, cycles) = d.slowest_engine();
    let i = (0..d.engines.len())
        .find(|&k| d.engines[k].cycles == cycles && !d.engines[k].layers.is_empty())
        .unwrap_or(first);
    let e = &d.engines[i];
    let layers = if e.layers.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.layers.join("+"))
    };
    let why = if cycles > t {
        format!(
            "engine {i}, {}{layers}, takes {cycles} cycles a frame: the planner cannot \
             fold it further",
            e.kind.name()
        )
    } else {
        format!(
            "every engine takes at most {t} cycles, but they hold each other back (the \
             slowest, engine {i}, {}{layers}, takes {cycles})",
            e.kind.name()
        )
    };
    format!(
        "--target-cycles {t} not reached: {} cycles per frame; {why}",
        d.cycles_per_frame()
    )
}

pub fn run(model: &Path, out: &Path, how: &How) -> Result<()> {
    let b = build_how(model, out, how)?;
    let d = &b.design;
    println!(
        "{}: {} engines, {} cycles per frame, latency {} cycles, {:.1} MB of Verilog \
         (engine program: compile {:.1} s, generate {:.1} s)",
        b.out.display(),
        d.engines.len(),
        d.cycles_per_frame(),
        d.latency_cycles(),
        b.verilog_bytes as f64 / 1e6,
        b.compile_secs,
        b.generate_secs
    );
    let budget = |f: Family| match how {
        How::Budget { budget, .. } if budget.family == f => format!(" (budget {budget})"),
        _ => String::new(),
    };
    println!(
        "estimate (iCE40, yosys 0.23): {} LUT4, {} DFF, {} BRAM{}{}",
        b.estimate.total.lut4,
        b.estimate.total.dff,
        b.estimate.total.bram,
        match b.estimate.total.spram {
            0 => String::new(),
            n => format!(", {n} SPRAM (weights loaded on s_axis after reset: see the report)"),
        },
        budget(Family::Ice40)
    );
    println!(
        "estimate (ECP5, yosys 0.23): {} LUT4, {} FF, {} EBR, {} LUT-RAM{}",
        b.ecp5.total.lut4,
        b.ecp5.total.dff,
        b.ecp5.total.bram,
        b.ecp5.total.lutram,
        budget(Family::Ecp5)
    );
    if let How::Plan {
        target: Some(t), ..
    } = how
    {
        if d.cycles_per_frame() > *t {
            println!("note: {}", unmet_target(d, *t));
        }
    }
    println!("report: {}", b.out.join("report.txt").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TFC asked for 8 cycles a frame: fc0's 784 inputs take at least 14 beats (SIMD 56,
    /// the widest that divides 784 within the popcount's 64); the note names it. 16 is
    /// reached: the input threshold takes 49 pixels a beat.
    #[test]
    fn an_unreachable_target_names_the_engine_that_limits_it() {
        let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tfc-w1a1.yaml");
        let net = bnnforge_model::load(&model).unwrap();
        let d = design(&net, &model, None, Some(8)).unwrap();
        assert_eq!(d.cycles_per_frame(), 14);
        let note = unmet_target(&d, 8);
        assert_eq!(
            note,
            "--target-cycles 8 not reached: 14 cycles per frame; engine 2, mvtu (fc0+t0), \
             takes 14 cycles a frame: the planner cannot fold it further"
        );
        let d = design(&net, &model, None, Some(16)).unwrap();
        assert_eq!(d.cycles_per_frame(), 16);
        assert_eq!(d.input().lanes, 49);
        let d = design(&net, &model, None, Some(784)).unwrap();
        assert!(d.cycles_per_frame() <= 784);
    }
}
