//! `.npy` input and output of the command line, through the `npyz` crate.
//!
//! Inputs may have any integer (or bool) dtype of either byte order; every value is
//! checked against the network input (`bits`, `signed`, or ±1 when binary).

use crate::bail;
use crate::error::{Error, InFile, Result};
use crate::network::{InputSpec, Kind};
use npyz::{TypeChar, WriterBuilder};
use std::path::Path;

/// An integer array: its shape and values in C order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntArray {
    pub shape: Vec<usize>,
    pub data: Vec<i64>,
}

/// Reads an integer `.npy` file.
pub fn read_ints(path: &Path) -> Result<IntArray> {
    read_ints_inner(path).in_file(path)
}

fn read_ints_inner(path: &Path) -> Result<IntArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(format!("cannot read: {e}")))?;
    let file = npyz::NpyFile::new(&bytes[..])
        .map_err(|e| Error::new(format!("not a valid .npy file: {e}")))?;
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    if file.order() != npyz::Order::C {
        bail!("Fortran-ordered arrays are not supported; save it in C order");
    }
    let npyz::DType::Plain(ts) = file.dtype() else {
        bail!("dtype {} is not an integer type", file.dtype().descr());
    };
    let count: usize = shape.iter().product();
    let descr = file.dtype().descr();
    let truncated = |e: std::io::Error| {
        Error::new(format!(
            "truncated or unreadable data ({descr}, shape {shape:?}): {e}"
        ))
    };
    let data: Vec<i64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Bool, 1) => file
            .into_vec::<bool>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 1) => file
            .into_vec::<i8>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 2) => file
            .into_vec::<i16>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 4) => file
            .into_vec::<i32>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Int, 8) => file.into_vec::<i64>().map_err(truncated)?,
        (TypeChar::Uint, 1) => file
            .into_vec::<u8>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Uint, 2) => file
            .into_vec::<u16>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Uint, 4) => file
            .into_vec::<u32>()
            .map_err(truncated)?
            .into_iter()
            .map(i64::from)
            .collect(),
        (TypeChar::Uint, 8) => file
            .into_vec::<u64>()
            .map_err(truncated)?
            .into_iter()
            .map(|v| {
                i64::try_from(v)
                    .map_err(|_| Error::new(format!("value {v} does not fit 64-bit signed")))
            })
            .collect::<Result<_>>()?,
        _ => bail!("dtype {descr} is not an integer type"),
    };
    if data.len() != count {
        bail!(
            "holds {} values, its shape {shape:?} needs {count}",
            data.len()
        );
    }
    Ok(IntArray { shape, data })
}

/// Reads a batch of network inputs: `[N, *input.shape]`, every value valid for the input.
/// Returns the number of frames and the values laid end to end.
pub fn read_inputs(path: &Path, input: &InputSpec) -> Result<(usize, Vec<i64>)> {
    let a = read_ints(path)?;
    let frame = input.shape.dims();
    if a.shape.len() != frame.len() + 1 || a.shape[1..] != frame[..] {
        let want: Vec<String> = std::iter::once("N".to_string())
            .chain(frame.iter().map(|d| d.to_string()))
            .collect();
        return Err(Error::new(format!(
            "shape {:?} does not match the network input [{}]",
            a.shape,
            want.join(", ")
        ))
        .in_file(path));
    }
    check_values(&a.data, input).in_file(path)?;
    Ok((a.shape[0], a.data))
}

/// Checks that every value is a valid network input value.
pub fn check_values(values: &[i64], input: &InputSpec) -> Result<()> {
    let kind = input.kind();
    let bad = |i: usize, v: i64| -> Result<()> {
        let frame = i / input.shape.len().max(1);
        let want = match kind {
            Kind::Binary => "-1 or +1 (binary input)".to_string(),
            Kind::Int { lo, hi } => format!(
                "{lo}..={hi} ({}-bit {})",
                input.bits,
                if input.signed { "signed" } else { "unsigned" }
            ),
        };
        bail!(
            "value {v} at frame {frame}, element {} is outside {want}",
            i % input.shape.len().max(1)
        )
    };
    match kind {
        Kind::Binary => {
            if let Some(i) = values.iter().position(|&v| v != 1 && v != -1) {
                bad(i, values[i])?;
            }
        }
        Kind::Int { lo, hi } => {
            if let Some(i) = values.iter().position(|&v| v < lo || v > hi) {
                bad(i, values[i])?;
            }
        }
    }
    Ok(())
}

/// Encodes an I64 (`<i8`) array of the given shape as `.npy` bytes.
pub fn encode_i64(shape: &[usize], data: &[i64]) -> Result<Vec<u8>> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    let mut buf = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut buf)
        .begin_nd()
        .map_err(|e| Error::new(e.to_string()))?;
    w.extend(data.iter().copied())
        .map_err(|e| Error::new(e.to_string()))?;
    w.finish().map_err(|e| Error::new(e.to_string()))?;
    Ok(buf)
}

/// Writes an I64 array as `.npy`, atomically.
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<()> {
    let bytes = encode_i64(shape, data)?;
    crate::files::write_all_atomic(&[(path, &bytes)])
}
