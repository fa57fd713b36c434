//! Reading and writing format 1: the YAML file and its safetensors file.
//!
//! Every error names the file it is about. Writing is atomic: files are written under a
//! temporary name beside their destination and renamed only when all are complete, so a
//! failure leaves nothing half-written.

use crate::bail;
use crate::error::{Error, Result};
use crate::network::{InputSpec, Layer, Network, Op, Param, Shape, INPUT};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest YAML or safetensors file read (a guard against reading anything huge by mistake).
const MAX_FILE_BYTES: u64 = 4 << 30;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetFile {
    format: u32,
    name: String,
    tensors: String,
    input: InputFile,
    layers: Vec<LayerFile>,
    output: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputFile {
    shape: Vec<usize>,
    bits: u32,
    #[serde(default)]
    signed: bool,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    name: String,
    op: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stride: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    padding: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pad_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bits: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thresholds: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flip: Option<String>,
}

impl LayerFile {
    /// The keys that are set, for checking them against the op.
    fn keys(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                k.push(name)
            }
        };
        add(self.input.is_some(), "input");
        add(self.inputs.is_some(), "inputs");
        add(self.out.is_some(), "out");
        add(self.kernel.is_some(), "kernel");
        add(self.stride.is_some(), "stride");
        add(self.padding.is_some(), "padding");
        add(self.pad_value.is_some(), "pad_value");
        add(self.bits.is_some(), "bits");
        add(self.weight.is_some(), "weight");
        add(self.bias.is_some(), "bias");
        add(self.thresholds.is_some(), "thresholds");
        add(self.flip.is_some(), "flip");
        k
    }
}

/// The keys each op allows besides `name` and `op`.
fn allowed_keys(op: &str) -> Option<&'static [&'static str]> {
    Some(match op {
        "dense" => &["input", "out", "weight", "bias"],
        "conv" => &[
            "input",
            "out",
            "kernel",
            "stride",
            "padding",
            "pad_value",
            "weight",
            "bias",
        ],
        "threshold" => &["input", "bits", "thresholds", "flip"],
        "add" => &["inputs"],
        "maxpool" => &["input", "kernel", "stride"],
        "sumpool" => &["input"],
        _ => return None,
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::new(format!("cannot read {what}: {e}")).in_file(path))?;
    if meta.is_dir() {
        return Err(Error::new(format!("{what} is a directory")).in_file(path));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(
            Error::new(format!("{what} is larger than {MAX_FILE_BYTES} bytes")).in_file(path),
        );
    }
    std::fs::read(path).map_err(|e| Error::new(format!("cannot read {what}: {e}")).in_file(path))
}

/// Loads and validates a network from its YAML file.
pub fn load(yaml_path: &Path) -> Result<Network> {
    let text = read_file(yaml_path, "the network file")?;
    let text =
        String::from_utf8(text).map_err(|_| Error::new("not UTF-8 text").in_file(yaml_path))?;
    let file: NetFile =
        serde_norway::from_str(&text).map_err(|e| Error::new(e.to_string()).in_file(yaml_path))?;
    if file.format != 1 {
        return Err(Error::new(format!(
            "format {} is not supported (only format 1)",
            file.format
        ))
        .in_file(yaml_path));
    }
    let tensor_path = yaml_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&file.tensors);
    let bytes = read_file(&tensor_path, "the tensor file")?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::new(format!("not a valid safetensors file: {e}")).in_file(&tensor_path)
    })?;
    build(file, &tensors).map_err(|e| match e {
        LoadError::Yaml(e) => e.in_file(yaml_path),
        LoadError::Tensor(e) => e.in_file(&tensor_path),
    })
}

/// Which file a load error is about.
enum LoadError {
    Yaml(Error),
    Tensor(Error),
}

impl From<Error> for LoadError {
    fn from(e: Error) -> Self {
        LoadError::Yaml(e)
    }
}

/// Reading a tensor (missing, wrong dtype) is about the tensor file.
fn t<T>(r: Result<T>) -> std::result::Result<T, LoadError> {
    r.map_err(LoadError::Tensor)
}

fn build(file: NetFile, tensors: &SafeTensors) -> std::result::Result<Network, LoadError> {
    let shape =
        Shape::from_dims(&file.input.shape).map_err(|e| Error::new(format!("input: {e}")))?;
    let input = InputSpec {
        shape,
        bits: file.input.bits,
        signed: file.input.signed,
    };
    let mut layers = Vec::with_capacity(file.layers.len());
    let mut prev = INPUT.to_string();
    for lf in file.layers {
        let name = lf.name.clone();
        let Some(allowed) = allowed_keys(&lf.op) else {
            bail!(
                "layer '{name}': unknown op '{}' (dense, conv, threshold, add, maxpool, sumpool)",
                lf.op
            );
        };
        if let Some(k) = lf.keys().into_iter().find(|k| !allowed.contains(k)) {
            bail!("layer '{name}': key '{k}' does not apply to op {}", lf.op);
        }
        let need = |v: Option<usize>, key: &str| -> Result<usize> {
            v.ok_or_else(|| Error::new(format!("layer '{name}': {} needs '{key}'", lf.op)))
        };
        let need_s = |v: &Option<String>, key: &str| -> Result<String> {
            v.clone()
                .ok_or_else(|| Error::new(format!("layer '{name}': {} needs '{key}'", lf.op)))
        };
        let inputs = match &lf.inputs {
            Some(v) => v.clone(),
            None => vec![lf.input.clone().unwrap_or_else(|| prev.clone())],
        };
        let op = match lf.op.as_str() {
            "dense" => Op::Dense {
                out: need(lf.out, "out")?,
                weight: t(read_i8(tensors, &need_s(&lf.weight, "weight")?))?,
                bias: lf
                    .bias
                    .as_deref()
                    .map(|b| t(read_wide(tensors, b)))
                    .transpose()?,
            },
            "conv" => {
                let pad_value = lf.pad_value.unwrap_or(0);
                if ![-1, 0, 1].contains(&pad_value) {
                    bail!("layer '{name}': pad_value must be -1, 0 or 1, not {pad_value}");
                }
                Op::Conv {
                    out: need(lf.out, "out")?,
                    kernel: need(lf.kernel, "kernel")?,
                    stride: lf.stride.unwrap_or(1),
                    padding: lf.padding.unwrap_or(0),
                    pad_value: pad_value as i8,
                    weight: t(read_i8(tensors, &need_s(&lf.weight, "weight")?))?,
                    bias: lf
                        .bias
                        .as_deref()
                        .map(|b| t(read_wide(tensors, b)))
                        .transpose()?,
                }
            }
            "threshold" => Op::Threshold {
                bits: lf
                    .bits
                    .ok_or_else(|| Error::new(format!("layer '{name}': threshold needs 'bits'")))?,
                thresholds: t(read_wide(tensors, &need_s(&lf.thresholds, "thresholds")?))?,
                flip: lf
                    .flip
                    .as_deref()
                    .map(|f| t(read_u8(tensors, f)))
                    .transpose()?,
            },
            "add" => {
                if lf.inputs.is_none() {
                    bail!("layer '{name}': add needs 'inputs' (two or more)");
                }
                Op::Add
            }
            "maxpool" => {
                let kernel = need(lf.kernel, "kernel")?;
                Op::MaxPool {
                    kernel,
                    stride: lf.stride.unwrap_or(kernel),
                }
            }
            "sumpool" => Op::SumPool,
            _ => unreachable!("allowed_keys knows every op"),
        };
        prev = name.clone();
        layers.push(Layer { name, inputs, op });
    }
    Ok(Network::new(file.name, input, layers, file.output)?)
}

fn tensor<'a>(ts: &'a SafeTensors, name: &str) -> Result<safetensors::tensor::TensorView<'a>> {
    ts.tensor(name)
        .map_err(|_| Error::new(format!("tensor '{name}' is missing")))
}

fn read_i8(ts: &SafeTensors, name: &str) -> Result<Param<i8>> {
    let v = tensor(ts, name)?;
    if v.dtype() != Dtype::I8 {
        bail!("tensor '{name}' has dtype {:?}, expected I8", v.dtype());
    }
    Ok(Param::new(
        name,
        v.shape().to_vec(),
        v.data().iter().map(|&b| b as i8).collect(),
    ))
}

fn read_u8(ts: &SafeTensors, name: &str) -> Result<Param<u8>> {
    let v = tensor(ts, name)?;
    if v.dtype() != Dtype::U8 {
        bail!("tensor '{name}' has dtype {:?}, expected U8", v.dtype());
    }
    Ok(Param::new(name, v.shape().to_vec(), v.data().to_vec()))
}

/// I32 or I64, widened to i64.
fn read_wide(ts: &SafeTensors, name: &str) -> Result<Param<i64>> {
    let v = tensor(ts, name)?;
    let data: Vec<i64> = match v.dtype() {
        Dtype::I32 => v
            .data()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
            .collect(),
        Dtype::I64 => v
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        d => bail!("tensor '{name}' has dtype {d:?}, expected I32 or I64"),
    };
    Ok(Param::new(name, v.shape().to_vec(), data))
}

/// Writes `net` as `yaml_path` and a safetensors file beside it named after the YAML file
/// (`x.yaml` → `x.safetensors`). Both appear only when both are complete.
pub fn save(net: &Network, yaml_path: &Path) -> Result<()> {
    let stem = yaml_path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| Error::new("the output file needs a name").in_file(yaml_path))?;
    let tensor_name = format!("{stem}.safetensors");
    let tensor_path = yaml_path.with_file_name(&tensor_name);

    // tensors: (name, dtype, dims, bytes)
    let mut blobs: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    let mut add = |p_name: &str, dtype: Dtype, dims: &[usize], bytes: Vec<u8>| -> Result<()> {
        if let Some((d, s, b)) = blobs.get(p_name) {
            // a tensor shared by two layers must be the same tensor
            if *d != dtype || s != dims || *b != bytes {
                bail!("two different tensors are both named '{p_name}'");
            }
        }
        blobs.insert(p_name.to_string(), (dtype, dims.to_vec(), bytes));
        Ok(())
    };
    let mut layer_files = Vec::new();
    let mut prev = INPUT;
    for l in &net.layers {
        let mut lf = LayerFile {
            name: l.name.clone(),
            op: l.op.name().to_string(),
            ..Default::default()
        };
        if matches!(l.op, Op::Add) {
            lf.inputs = Some(l.inputs.clone());
        } else if l.inputs[0] != prev {
            lf.input = Some(l.inputs[0].clone());
        }
        let i8b = |p: &Param<i8>| p.data.iter().map(|&v| v as u8).collect::<Vec<u8>>();
        let i64b = |p: &Param<i64>| {
            p.data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        match &l.op {
            Op::Dense { out, weight, bias }
            | Op::Conv {
                out, weight, bias, ..
            } => {
                lf.out = Some(*out);
                add(&weight.tensor, Dtype::I8, &weight.dims, i8b(weight))?;
                lf.weight = Some(weight.tensor.clone());
                if let Some(b) = bias {
                    add(&b.tensor, Dtype::I64, &b.dims, i64b(b))?;
                    lf.bias = Some(b.tensor.clone());
                }
                if let Op::Conv {
                    kernel,
                    stride,
                    padding,
                    pad_value,
                    ..
                } = &l.op
                {
                    lf.kernel = Some(*kernel);
                    lf.stride = (*stride != 1).then_some(*stride);
                    lf.padding = (*padding != 0).then_some(*padding);
                    lf.pad_value = (*pad_value != 0).then_some(*pad_value as i64);
                }
            }
            Op::Threshold {
                bits,
                thresholds,
                flip,
            } => {
                lf.bits = Some(*bits);
                add(
                    &thresholds.tensor,
                    Dtype::I64,
                    &thresholds.dims,
                    i64b(thresholds),
                )?;
                lf.thresholds = Some(thresholds.tensor.clone());
                if let Some(f) = flip {
                    add(&f.tensor, Dtype::U8, &f.dims, f.data.clone())?;
                    lf.flip = Some(f.tensor.clone());
                }
            }
            Op::Add | Op::SumPool => {}
            Op::MaxPool { kernel, stride } => {
                lf.kernel = Some(*kernel);
                lf.stride = (*stride != *kernel).then_some(*stride);
            }
        }
        prev = &l.name;
        layer_files.push(lf);
    }
    let file = NetFile {
        format: 1,
        name: net.name.clone(),
        tensors: tensor_name,
        input: InputFile {
            shape: net.input.shape.dims(),
            bits: net.input.bits,
            signed: net.input.signed,
        },
        layers: layer_files,
        output: net.output.clone(),
    };
    let yaml = serde_norway::to_string(&file).map_err(|e| Error::new(e.to_string()))?;
    let yaml = format!("# generated by bnnforge; network format 1\n{yaml}");
    let views: Vec<(String, safetensors::tensor::TensorView)> = blobs
        .iter()
        .map(|(n, (d, s, b))| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::new(format!("tensor '{n}': {e}")))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::new(e.to_string()))?;
    write_all_atomic(&[
        (tensor_path.as_path(), &bytes),
        (yaml_path, yaml.as_bytes()),
    ])
}

/// Writes several files so that either all of them appear, complete, or none does.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, &Path)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        let tmp = temp_name(path);
        if let Err(e) = std::fs::write(&tmp, bytes) {
            cleanup(&temps);
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::new(format!("cannot write: {e}")).in_file(path));
        }
        temps.push((tmp, path));
    }
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(Error::new(format!("cannot write: {e}")).in_file(path));
        }
    }
    Ok(())
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
