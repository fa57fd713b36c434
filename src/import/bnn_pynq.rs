//! BNN-PYNQ's LFC networks (784-1024-1024-1024-10 MLPs on MNIST) from their packed
//! parameter files, as exactly equivalent format-1 networks on raw pixels.
//!
//! The files (`shared/data/README.md`): `L-P-weights.bin` holds little-endian u64 words,
//! word `nf·SF + sf` of unit P being row `nf·PE + P`, columns `sf·SIMD ..`, LSB first;
//! `L-P-thres.bin` holds little-endian i64 thresholds, `per` of them for row `nf·PE + P`.
//!
//! The integer algebra (y = Σ w·x over the real columns, w, x = ±1 as in format 1):
//! - input: bit = pixel ≥ 128, a `threshold` on the raw pixels with threshold 128;
//! - W1A1: popcount p over the real columns (n of them) counts the agreeing bits, so
//!   y = 2p − n. A pad column whose weight bit is 0 agrees with its input bit 0 and adds
//!   1 to the hardware's popcount, so with z such columns (0 in the shipped files) the
//!   rule p + z > T ⇔ 2p > 2(T − z) ⇔ y > 2(T − z) − n ⇔ y ≥ 2(T − z) − n + 1
//!   (for layer 0, n = 784: y ≥ 2T − 783);
//! - W1A2, layer 0: acc = y + Σ_pad w·(−1) (pad inputs are −1), so acc > t ⇔
//!   y ≥ t + Σ_pad w + 1;
//! - W1A2, later layers: the activation a ∈ {−1, 0, +1} is carried as n = a + 1 ∈ {0, 1, 2},
//!   a 2-bit threshold output (thresholds t0', t1' and i64::MAX, never reached). The next
//!   layer sees y = Σ w·n, and acc = Σ w·(n − 1) = y − S with S = Σ w the row's weight
//!   sum, so acc > t ⇔ y ≥ t + S + 1;
//! - the last layer keeps its 10 real rows (the pad rows are dropped) and its bit, ±1.
//!
//! Shifted thresholds are computed in i128 and saturated to i64: |y| ≤ 2048, so a
//! saturated threshold decides exactly as the unsaturated one would.

use super::{dense, layer_from, mnist_input, threshold};
use bnnforge_model::network::INPUT;
use bnnforge_model::{Error, Network, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    LfcW1A1,
    LfcW1A2,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "lfc-w1a1" | "lfcw1a1" => Ok(Arch::LfcW1A1),
            "lfc-w1a2" | "lfcw1a2" => Ok(Arch::LfcW1A2),
            _ => Err(Error::new(format!(
                "unknown --arch '{s}': expected lfc-w1a1 or lfc-w1a2"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::LfcW1A1 => "lfc-w1a1",
            Arch::LfcW1A2 => "lfc-w1a2",
        }
    }
    fn two_bit(self) -> bool {
        self == Arch::LfcW1A2
    }
}

/// One fully connected layer as BNN-PYNQ stores it.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// rows stored (a multiple of `pe`) and rows that are real neurons
    pub rows: usize,
    pub real_rows: usize,
    /// input columns stored (a multiple of `simd`) and real inputs
    pub cols: usize,
    pub real_cols: usize,
    pub simd: usize,
    pub pe: usize,
}

/// LFC's four layers (the same for W1A1 and W1A2).
pub const LFC: [Geometry; 4] = [
    Geometry {
        rows: 1024,
        real_rows: 1024,
        cols: 832,
        real_cols: 784,
        simd: 64,
        pe: 32,
    },
    Geometry {
        rows: 1024,
        real_rows: 1024,
        cols: 1024,
        real_cols: 1024,
        simd: 32,
        pe: 64,
    },
    Geometry {
        rows: 1024,
        real_rows: 1024,
        cols: 1024,
        real_cols: 1024,
        simd: 64,
        pe: 32,
    },
    Geometry {
        rows: 64,
        real_rows: 10,
        cols: 1024,
        real_cols: 1024,
        simd: 8,
        pe: 16,
    },
];

/// The raw content of one layer: weight bits `[real_rows][cols]` (1 = +1, pad columns
/// included) and `per` thresholds for each real row.
pub struct RawLayer {
    pub bits: Vec<u8>,
    pub thresholds: Vec<i64>,
}

fn read_exact(path: &Path, what: &str, len: usize) -> Result<Vec<u8>> {
    let err = |m: String| Error::new(m).in_file(path);
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read {what}: {e}")))?;
    if !meta.is_file() {
        return Err(err(format!("{what} is not a file")));
    }
    if meta.len() != len as u64 {
        return Err(err(format!(
            "{what} has {} bytes, expected {len}",
            meta.len()
        )));
    }
    let b = std::fs::read(path).map_err(|e| err(format!("cannot read {what}: {e}")))?;
    if b.len() != len {
        return Err(err(format!("{what} has {} bytes, expected {len}", b.len())));
    }
    Ok(b)
}

/// Reads layer `l` of a BNN-PYNQ directory: PE weight and threshold files.
pub fn read_layer(dir: &Path, l: usize, g: &Geometry, per: usize) -> Result<RawLayer> {
    let (nf, sf) = (g.rows / g.pe, g.cols / g.simd);
    let mut bits = vec![0u8; g.real_rows * g.cols];
    let mut thresholds = vec![0i64; g.real_rows * per];
    for p in 0..g.pe {
        let wpath = dir.join(format!("{l}-{p}-weights.bin"));
        let what = format!("layer {l} unit {p} weights ({nf}x{sf} words)");
        let w = read_exact(&wpath, &what, nf * sf * 8)?;
        let words: Vec<u64> = w
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if g.simd < 64 {
            if let Some(i) = words.iter().position(|&x| x >> g.simd != 0) {
                return Err(Error::new(format!(
                    "word {i} has bits set above SIMD = {} (not this --arch's layer {l}?)",
                    g.simd
                ))
                .in_file(&wpath));
            }
        }
        let tpath = dir.join(format!("{l}-{p}-thres.bin"));
        let what = format!("layer {l} unit {p} thresholds ({nf}x{per} values)");
        let t = read_exact(&tpath, &what, nf * per * 8)?;
        let t: Vec<i64> = t
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        for f in 0..nf {
            let row = f * g.pe + p;
            if row >= g.real_rows {
                continue;
            }
            for s in 0..sf {
                let word = words[f * sf + s];
                for j in 0..g.simd {
                    bits[row * g.cols + s * g.simd + j] = ((word >> j) & 1) as u8;
                }
            }
            thresholds[row * per..(row + 1) * per].copy_from_slice(&t[f * per..(f + 1) * per]);
        }
    }
    // one unit more than the architecture has means the files are of another design
    let extra = dir.join(format!("{l}-{}-weights.bin", g.pe));
    if extra.exists() {
        return Err(Error::new(format!(
            "layer {l} has more than {} units: these files are not --arch's layout",
            g.pe
        ))
        .in_file(&extra));
    }
    Ok(RawLayer { bits, thresholds })
}

fn sat(v: i128) -> i64 {
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// The format-1 network of a BNN-PYNQ LFC directory.
pub fn import(dir: &Path, arch: Arch) -> Result<Network> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::new("not a directory").in_file(dir)),
        Err(e) => return Err(Error::new(format!("cannot open directory: {e}")).in_file(dir)),
    }
    let a2 = arch.two_bit();
    let mut layers = vec![layer_from(
        "bin",
        INPUT,
        threshold("bin", 1, 1, vec![128], vec![0]),
    )];
    let mut prev = "bin".to_string();
    for (l, g) in LFC.iter().enumerate() {
        let last = l + 1 == LFC.len();
        let per = if a2 && !last { 2 } else { 1 };
        let raw = read_layer(dir, l, g, per)?;
        let mut weight = Vec::with_capacity(g.real_rows * g.real_cols);
        let mut t = Vec::new();
        for r in 0..g.real_rows {
            let row = &raw.bits[r * g.cols..(r + 1) * g.cols];
            weight.extend(row[..g.real_cols].iter().map(|&b| 2 * b as i8 - 1));
            let pad = &row[g.real_cols..];
            let file_t = &raw.thresholds[r * per..(r + 1) * per];
            if !a2 {
                // popcount p + z > T  ⇔  y = 2p − n ≥ 2(T − z) − n + 1
                let z = pad.iter().filter(|&&b| b == 0).count() as i128;
                let n = g.real_cols as i128;
                t.push(sat(2 * (file_t[0] as i128 - z) - n + 1));
            } else {
                // acc = y − shift, acc > t  ⇔  y ≥ t + shift + 1
                let shift: i128 = if l == 0 {
                    pad.iter().map(|&b| 2 * b as i128 - 1).sum()
                } else {
                    row[..g.real_cols].iter().map(|&b| 2 * b as i128 - 1).sum()
                };
                t.extend(file_t.iter().map(|&x| sat(x as i128 + shift + 1)));
                if !last {
                    t.push(i64::MAX);
                }
            }
        }
        let fc = format!("fc{l}");
        let th = format!("t{l}");
        layers.push(layer_from(
            &fc,
            &prev,
            dense(&fc, g.real_rows, g.real_cols, weight),
        ));
        let (bits, count) = if a2 && !last { (2, 3) } else { (1, 1) };
        layers.push(layer_from(
            &th,
            &fc,
            threshold(&th, bits, count, t, vec![0; g.real_rows]),
        ));
        prev = th;
    }
    let output = format!("t{}", LFC.len() - 1);
    Network::new(arch.name().to_string(), mnist_input(), layers, output)
        .map_err(|e| Error::new(format!("internal error building the network: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_divides() {
        for g in LFC {
            assert_eq!(g.rows % g.pe, 0);
            assert_eq!(g.cols % g.simd, 0);
            assert!(g.real_rows <= g.rows && g.real_cols <= g.cols);
        }
    }

    #[test]
    fn arch_names() {
        assert_eq!(Arch::parse("lfc-w1a1").unwrap(), Arch::LfcW1A1);
        assert_eq!(Arch::parse("lfcW1A2").unwrap(), Arch::LfcW1A2);
        let e = Arch::parse("cnv-w1a1").unwrap_err().to_string();
        assert!(e.contains("expected lfc-w1a1 or lfc-w1a2"), "{e}");
    }
}
