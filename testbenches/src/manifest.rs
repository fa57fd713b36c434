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
    /// The weight load a design with weights in SPRAM takes on `s_axis` after reset.
    pub weight_load: Option<WeightLoad>,
}

/// `weight_load` of the manifest: `words` 16-bit words in `file` (one a line, hex), sent
/// `bits_per_beat` bits a beat, low bits first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightLoad {
    pub file: PathBuf,
    pub words: usize,
    pub bits_per_beat: u32,
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
        let weight_load = match v.get("weight_load") {
            None => None,
            Some(w) => {
                let words = w.get("words").and_then(Value::as_u64).filter(|&n| n >= 1);
                let bits = w
                    .get("bits_per_beat")
                    .and_then(Value::as_u64)
                    .filter(|b| [1, 2, 4, 8, 16].contains(b));
                let f = w.get("file").and_then(Value::as_str);
                match (words, bits, f) {
                    (Some(n), Some(b), Some(f)) => Some(WeightLoad {
                        file: dir.join(f),
                        words: n as usize,
                        bits_per_beat: b as u32,
                    }),
                    _ => {
                        return Err(bad("`weight_load` needs `file`, `words` (at least 1) and \
                             `bits_per_beat` (1, 2, 4, 8 or 16)"))
                    }
                }
            }
        };
        Ok(Manifest {
            top,
            verilog,
            weight_load,
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

    /// The beats of the weight load (empty without one): each word of its file split
    /// into `bits_per_beat`-bit beats, low bits first; an error for a file that is not
    /// `words` lines of at most four hex digits.
    pub fn load_beats(&self) -> Result<Vec<u64>> {
        let Some(w) = &self.weight_load else {
            return Ok(Vec::new());
        };
        let text =
            std::fs::read_to_string(&w.file).map_err(|e| io_err("cannot read", &w.file, e))?;
        let bad = |what: String| Error::Input(format!("{}: {what}", w.file.display()));
        let words = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let t = l.trim();
                if t.is_empty() || t.len() > 4 {
                    return Err(bad(format!("line {}: expected a 16-bit hex word", i + 1)));
                }
                u16::from_str_radix(t, 16)
                    .map_err(|_| bad(format!("line {}: `{t}` is not a hex word", i + 1)))
            })
            .collect::<Result<Vec<u16>>>()?;
        if words.len() != w.words {
            return Err(bad(format!(
                "{} words, the manifest says {}",
                words.len(),
                w.words
            )));
        }
        Ok(crate::load_beats(&words, w.bits_per_beat))
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
