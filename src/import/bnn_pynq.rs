//! BNN-PYNQ's LFC networks (784-1024-1024-1024-10 MLPs on MNIST) and CNV-W1A1 (a
//! CIFAR-10 CNN) from their packed parameter files, as exactly equivalent format-1
//! networks (LFC on raw pixels, CNV on the 8-bit values BNN-PYNQ's host sends).
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
//!
//! CNV-W1A1 (BNN-PYNQ `bnn/src/network/cnvW1A1/hw/top.cpp`, `config.h`; finn-hlslib):
//! - conv weight columns are ordered (ky, kx, channel), channel innermost (finnthesizer
//!   moves the channel axis last; finn-hlslib's sliding window emits SIMD channel groups
//!   innermost, then kx, then ky); outputs leave pixel by pixel, channel `nf·PE + P`;
//! - input: the host scales a pixel p to −1 + 2p/255 and rounds it to
//!   `ap_fixed<8,1,AP_RND,AP_SAT>`; the network input here is that byte as a signed
//!   integer q (value q/128), `[3, 32, 32]`. Layer 0 accumulates Σ w·q/128 exactly in
//!   `ap_fixed<24,16>`; its threshold file holds the `ap_fixed<64,56>` raw value R (value
//!   R/256), which becomes `ap_fixed<24,16>` (the integer part wraps to 16 bits). So
//!   y/128 > R'/256 ⇔ 2y > R' ⇔ y ≥ ⌊R'/2⌋ + 1;
//! - layers 1–7: popcount p > T with T read as `ap_int<16>`: y ≥ 2T − n + 1 (no pad
//!   columns: every fan-in is a multiple of SIMD); 2×2 max pools (OR) after conv 1 and 3;
//! - layer 8 has no thresholds and passes its popcount p through; format 1 gives
//!   y = 2p − 512 for its 10 real rows, the same argmax (BNN-PYNQ's prediction).

use super::{dense, layer_from, mnist_input, threshold};
use bnnforge_model::network::INPUT;
use bnnforge_model::{Error, Network, Result};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    LfcW1A1,
    LfcW1A2,
    CnvW1A1,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "lfc-w1a1" | "lfcw1a1" => Ok(Arch::LfcW1A1),
            "lfc-w1a2" | "lfcw1a2" => Ok(Arch::LfcW1A2),
            "cnv-w1a1" | "cnvw1a1" => Ok(Arch::CnvW1A1),
            _ => Err(Error::new(format!(
                "unknown --arch '{s}': expected lfc-w1a1, lfc-w1a2 or cnv-w1a1"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::LfcW1A1 => "lfc-w1a1",
            Arch::LfcW1A2 => "lfc-w1a2",
            Arch::CnvW1A1 => "cnv-w1a1",
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
        let t = if per == 0 {
            vec![]
        } else {
            let tpath = dir.join(format!("{l}-{p}-thres.bin"));
            let what = format!("layer {l} unit {p} thresholds ({nf}x{per} values)");
            read_exact(&tpath, &what, nf * per * 8)?
        };
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

/// The format-1 network of a BNN-PYNQ parameter directory.
pub fn import(dir: &Path, arch: Arch) -> Result<Network> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::new("not a directory").in_file(dir)),
        Err(e) => return Err(Error::new(format!("cannot open directory: {e}")).in_file(dir)),
    }
    if arch == Arch::CnvW1A1 {
        return import_cnv(dir);
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

/// One CNV-W1A1 layer: its stored geometry (rows = output channels, columns = k·k·C for
/// a conv) and what follows it.
#[derive(Clone, Copy, Debug)]
pub struct CnvLayer {
    pub geometry: Geometry,
    /// Some(input channels) for a 3×3 conv, None for a dense layer
    pub conv_in: Option<usize>,
    /// a 2×2 max pool follows the threshold
    pub pool: bool,
}

const fn cnv_conv(c_in: usize, out: usize, simd: usize, pe: usize, pool: bool) -> CnvLayer {
    CnvLayer {
        geometry: Geometry {
            rows: out,
            real_rows: out,
            cols: 9 * c_in,
            real_cols: 9 * c_in,
            simd,
            pe,
        },
        conv_in: Some(c_in),
        pool,
    }
}

const fn cnv_fc(rows: usize, real_rows: usize, cols: usize, simd: usize, pe: usize) -> CnvLayer {
    CnvLayer {
        geometry: Geometry {
            rows,
            real_rows,
            cols,
            real_cols: cols,
            simd,
            pe,
        },
        conv_in: None,
        pool: false,
    }
}

/// CNV-W1A1's nine layers (BNN-PYNQ `cnvW1A1/hw/config.h`).
pub const CNV: [CnvLayer; 9] = [
    cnv_conv(3, 64, 3, 16, false),
    cnv_conv(64, 64, 32, 32, true),
    cnv_conv(64, 128, 32, 16, false),
    cnv_conv(128, 128, 32, 16, true),
    cnv_conv(128, 256, 32, 4, false),
    cnv_conv(256, 256, 32, 1, false),
    cnv_fc(512, 512, 256, 4, 1),
    cnv_fc(512, 512, 512, 8, 1),
    cnv_fc(64, 10, 512, 1, 4),
];

/// The raw byte of `ap_fixed<8,1,AP_RND,AP_SAT>` for BNN-PYNQ's host scaling of a pixel
/// (−1 + 2p/255): round(128·(2p/255 − 1)) = p − 128 + [p ≥ 128] (2p/255 is never
/// half-way), saturated to 127.
#[allow(dead_code)] // the host side of the model's input; tested below
pub fn cnv_input(pixel: u8) -> i8 {
    (pixel as i32 - 128 + (pixel >= 128) as i32).min(127) as i8
}

fn import_cnv(dir: &Path) -> Result<Network> {
    use bnnforge_model::{InputSpec, Op, Param, Shape};
    let input = InputSpec {
        shape: Shape::map(3, 32, 32),
        bits: 8,
        signed: true,
    };
    let mut layers = vec![];
    let mut prev = INPUT.to_string();
    for (l, cl) in CNV.iter().enumerate() {
        let g = &cl.geometry;
        let last = l + 1 == CNV.len();
        let raw = read_layer(dir, l, g, if last { 0 } else { 1 })?;
        let name = if cl.conv_in.is_some() {
            format!("conv{l}")
        } else {
            format!("fc{l}")
        };
        let op = match cl.conv_in {
            Some(c) => {
                // file column (ky·3 + kx)·C + c  →  weight [o][c][ky][kx]
                let mut w = vec![0i8; g.real_rows * c * 9];
                for o in 0..g.real_rows {
                    for (j, &b) in raw.bits[o * g.cols..(o + 1) * g.cols].iter().enumerate() {
                        let (k, ch) = (j / c, j % c);
                        w[((o * c + ch) * 3 + k / 3) * 3 + k % 3] = 2 * b as i8 - 1;
                    }
                }
                Op::Conv {
                    out: g.real_rows,
                    kernel: 3,
                    stride: 1,
                    padding: 0,
                    pad_value: 0,
                    weight: Param::new(format!("{name}.w"), vec![g.real_rows, c, 3, 3], w),
                    bias: None,
                }
            }
            None => dense(
                &name,
                g.real_rows,
                g.real_cols,
                raw.bits.iter().map(|&b| 2 * b as i8 - 1).collect(),
            ),
        };
        layers.push(layer_from(&name, &prev, op));
        prev = name.clone();
        if last {
            break;
        }
        let n = g.real_cols as i64;
        let t: Vec<i64> = raw
            .thresholds
            .iter()
            .map(|&r| {
                if l == 0 {
                    // ap_fixed<64,56> → ap_fixed<24,16>: the low 24 bits, sign-extended
                    let r24 = (r << 40) >> 40;
                    (r24 >> 1) + 1
                } else {
                    2 * (r as i16 as i64) - n + 1
                }
            })
            .collect();
        let th = format!("t{l}");
        layers.push(layer_from(
            &th,
            &prev,
            threshold(&th, 1, 1, t, vec![0; g.real_rows]),
        ));
        prev = th;
        if cl.pool {
            let pool = format!("pool{l}");
            layers.push(layer_from(
                &pool,
                &prev,
                Op::MaxPool {
                    kernel: 2,
                    stride: 2,
                },
            ));
            prev = pool;
        }
    }
    Network::new(Arch::CnvW1A1.name().to_string(), input, layers, prev)
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
    fn cnv_geometry_divides() {
        for cl in CNV {
            let g = cl.geometry;
            assert_eq!(g.rows % g.pe, 0);
            assert_eq!(g.cols % g.simd, 0);
        }
    }

    #[test]
    fn cnv_input_is_the_rounded_fixed_point_byte() {
        // round(128·(2p/255 − 1)) computed in exact rationals: (256p − 32640)/255
        for p in 0..=255u8 {
            let num = 256 * p as i64 - 255 * 128;
            let r = (2 * num + 255).div_euclid(2 * 255); // round half up
            assert_eq!(cnv_input(p) as i64, r.min(127), "pixel {p}");
        }
    }

    #[test]
    fn arch_names() {
        assert_eq!(Arch::parse("lfc-w1a1").unwrap(), Arch::LfcW1A1);
        assert_eq!(Arch::parse("lfcW1A2").unwrap(), Arch::LfcW1A2);
        assert_eq!(Arch::parse("cnv-w1a1").unwrap(), Arch::CnvW1A1);
        let e = Arch::parse("cnv-w2a2").unwrap_err().to_string();
        assert!(e.contains("expected lfc-w1a1, lfc-w1a2 or cnv-w1a1"), "{e}");
    }
}
