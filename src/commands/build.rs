//! `bnnforge build`: the network's accelerator as Verilog, `manifest.json` and a report.

use crate::engines;
use bnnforge_hdl::design::{Design, Elem};
use bnnforge_hdl::folding::{default_target, plan, Fold};
use bnnforge_hdl::top::GENERATED_HEADER;
use bnnforge_model::{Error, Network, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a build made.
pub struct Built {
    pub design: Design,
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

/// The manifest of the spec (and more: the engines and the folding).
pub fn manifest(net: &Network, d: &Design, files: &[String]) -> String {
    let engines: Vec<serde_json::Value> = d
        .engines
        .iter()
        .map(|e| {
            serde_json::json!({
                "module": e.module, "kind": e.kind.name(), "layers": e.layers,
                "pe": e.fold.pe, "simd": e.fold.simd, "cycles_per_frame": e.cycles,
                "latency_cycles": e.latency, "memory_bits": e.memory_bits,
                "accumulator_bits": e.acc_bits,
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
    let v = serde_json::json!({
        "format": 1,
        "generator": format!("bnnforge {}", env!("CARGO_PKG_VERSION")),
        "network": net.name,
        "top": d.top,
        "verilog": files,
        "input": elem_json(d.input().elem, Some(d.input().lanes), d.input().elements),
        "output": elem_json(d.output().elem, None, d.output().elements),
        "cycles_per_frame": d.cycles_per_frame(),
        "latency_cycles": d.latency_cycles(),
        "folding": folding,
        "engines": engines,
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// Builds the accelerator of `model` into `out` (replaced as a whole, or untouched on
/// any error).
pub fn build(
    model: &Path,
    out: &Path,
    folding: Option<&Path>,
    target: Option<u64>,
) -> Result<Built> {
    let net = bnnforge_model::load(model)?;
    let d = design(&net, model, folding, target)?;
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
        write("manifest.json", &manifest(&net, &d, &files))?;
        write(
            "report.txt",
            &format!(
                "{}\n{}",
                GENERATED_HEADER.replacen("//", "#", 1),
                d.report(&net)
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

pub fn run(model: &Path, out: &Path, folding: Option<&Path>, target: Option<u64>) -> Result<()> {
    let b = build(model, out, folding, target)?;
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
    println!("report: {}", b.out.join("report.txt").display());
    Ok(())
}
