//! `manifest.json` of a generated accelerator (spec: "The generated accelerator").

use crate::{io_err, BuildConfig, ElemFormat, Error, Result, StreamFormat};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One side of the stream as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    pub bits: u32,
    pub signed: bool,
    /// Elements per beat (input only; the output carries one value per beat).
    pub lanes: usize,
    /// Elements per frame.
    pub elements: usize,
}

/// The keys of `manifest.json` the harness uses (others are ignored).
#[derive(Clone, Debug)]
pub struct Manifest {
    pub top: String,
    /// Verilog files, resolved against the manifest's folder.
    pub verilog: Vec<PathBuf>,
    pub input: StreamSpec,
    pub output: StreamSpec,
    pub cycles_per_frame: Option<u64>,
    pub latency_cycles: Option<u64>,
    /// The network's hash (`network_hash`, 16 hex digits), when the manifest has one.
    pub network_hash: Option<u64>,
}

impl Manifest {
    /// Reads `DIR/manifest.json` (or the file itself when given a file).
    pub fn load(path: &Path) -> Result<Manifest> {
        let file = if path.is_dir() {
            path.join("manifest.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|e| io_err("cannot read", &file, e))?;
        let bad = |what: &str| Error::Input(format!("{}: {what}", file.display()));
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        if v.get("format").and_then(Value::as_u64) != Some(1) {
            return Err(bad("`format` must be 1"));
        }
        let top = v
            .get("top")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("missing string `top`"))?
            .to_string();
        let dir = file.parent().unwrap_or(Path::new("."));
        let verilog = v
            .get("verilog")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("missing list `verilog`"))?
            .iter()
            .map(|f| f.as_str().map(|s| dir.join(s)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`verilog` must list file names"))?;
        let side = |key: &str, needs_lanes: bool| -> Result<StreamSpec> {
            let s = v.get(key).ok_or_else(|| bad(&format!("missing `{key}`")))?;
            let num = |k: &str| {
                s.get(k)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad(&format!("`{key}.{k}` must be a non-negative integer")))
            };
            Ok(StreamSpec {
                bits: num("bits")? as u32,
                signed: s
                    .get("signed")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| bad(&format!("`{key}.signed` must be true or false")))?,
                lanes: if needs_lanes {
                    num("lanes")? as usize
                } else {
                    1
                },
                elements: num("elements")? as usize,
            })
        };
        Ok(Manifest {
            top,
            verilog,
            input: side("input", true)?,
            output: side("output", false)?,
            cycles_per_frame: v.get("cycles_per_frame").and_then(Value::as_u64),
            latency_cycles: v.get("latency_cycles").and_then(Value::as_u64),
            network_hash: match v.get("network_hash") {
                None => None,
                Some(h) => Some(
                    h.as_str()
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| bad("`network_hash` must be a string of hex digits"))?,
                ),
            },
        })
    }

    pub fn stream_format(&self) -> Result<StreamFormat> {
        Ok(StreamFormat {
            lanes: self.input.lanes,
            input: ElemFormat::from_spec(self.input.bits, self.input.signed)?,
            output: ElemFormat::from_spec(self.output.bits, self.output.signed)?,
            out_elements: self.output.elements,
        })
    }

    /// A build of this design with the default options.
    pub fn build_config(&self) -> BuildConfig {
        BuildConfig::new(
            &self.verilog,
            &self.top,
            self.input.lanes as u32 * self.input.bits,
            self.output.bits,
        )
    }
}
