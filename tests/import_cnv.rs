//! `bnnforge import bnn-pynq --arch cnv-w1a1`: the imported CNV-W1A1 equals an independent
//! decoder of BNN-PYNQ's raw files (written here from shared/data/README.md and
//! BNN-PYNQ's top.cpp, computing as the accelerator does: HWC streams, (ky, kx, c)
//! windows, packed XNOR popcounts, a fixed-point layer 0), layer by layer and on images;
//! BNN-PYNQ's deer is class 4. No CIFAR-10 test set is available, so no accuracy here.

mod common;
use bnnforge_model::{Model, Op};
use common::*;
use std::path::{Path, PathBuf};

fn cnv_dir() -> PathBuf {
    shared_data().join("bnn-pynq/cifar10/cnvW1A1")
}

/// Runs `bnnforge import bnn-pynq DIR --arch cnv-w1a1 --out OUT`, expecting success.
fn import(dir: &Path, out: &Path) {
    let o = bnnforge()
        .args(["import", "bnn-pynq"])
        .arg(dir)
        .args(["--arch", "cnv-w1a1", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// ---- the independent decoder ----

fn read_words(p: &Path) -> Vec<u64> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// One layer as stored: PE units of SF-word rows; `thres[P][nf]` for row nf·PE + P.
struct Stored {
    simd: usize,
    pe: usize,
    sf: usize,
    words: Vec<Vec<u64>>,
    thres: Vec<Vec<i64>>,
}

impl Stored {
    fn load(dir: &Path, l: usize, cols: usize, simd: usize, pe: usize, thresholds: bool) -> Self {
        let words = (0..pe)
            .map(|p| read_words(&dir.join(format!("{l}-{p}-weights.bin"))))
            .collect();
        let thres = (0..pe)
            .map(|p| {
                if thresholds {
                    read_words(&dir.join(format!("{l}-{p}-thres.bin")))
                        .into_iter()
                        .map(|x| x as i64)
                        .collect()
                } else {
                    vec![]
                }
            })
            .collect();
        Stored {
            simd,
            pe,
            sf: cols / simd,
            words,
            thres,
        }
    }
    fn word(&self, row: usize, s: usize) -> u64 {
        self.words[row % self.pe][(row / self.pe) * self.sf + s]
    }
    /// Weight bit of `row`, column `col` (1 = +1).
    fn bit(&self, row: usize, col: usize) -> bool {
        (self.word(row, col / self.simd) >> (col % self.simd)) & 1 == 1
    }
    fn threshold(&self, row: usize) -> i64 {
        self.thres[row % self.pe][row / self.pe]
    }
    /// popcount(XNOR) of `row` against input bits (one per column).
    fn popcount(&self, row: usize, x: &[bool]) -> i64 {
        x.iter()
            .enumerate()
            .filter(|&(j, &b)| self.bit(row, j) == b)
            .count() as i64
    }
}

/// (SIMD, PE) per layer, from BNN-PYNQ's config.h; conv layers take (C_in, pool after).
const FOLD: [(usize, usize); 9] = [
    (3, 16),
    (32, 32),
    (32, 16),
    (32, 16),
    (32, 4),
    (32, 1),
    (4, 1),
    (8, 1),
    (1, 4),
];
const CONV: [(usize, usize, bool); 6] = [
    (3, 64, false),
    (64, 64, true),
    (64, 128, false),
    (128, 128, true),
    (128, 256, false),
    (256, 256, false),
];
const FC: [(usize, usize); 3] = [(256, 512), (512, 512), (512, 64)];

struct Decoder {
    layers: Vec<Stored>,
}

/// A feature map in HWC order (the accelerator's stream order).
struct Hwc<T> {
    dim: usize,
    ch: usize,
    v: Vec<T>,
}

impl<T: Copy> Hwc<T> {
    /// The 3×3 window at (y, x): columns (ky, kx, c), channel innermost.
    fn window(&self, y: usize, x: usize) -> Vec<T> {
        let mut w = Vec::with_capacity(9 * self.ch);
        for ky in 0..3 {
            for kx in 0..3 {
                let base = ((y + ky) * self.dim + x + kx) * self.ch;
                w.extend_from_slice(&self.v[base..base + self.ch]);
            }
        }
        w
    }
}

fn maxpool(m: &Hwc<bool>) -> Hwc<bool> {
    let d = m.dim / 2;
    let mut v = vec![false; d * d * m.ch];
    for y in 0..d {
        for x in 0..d {
            for c in 0..m.ch {
                let at = |yy: usize, xx: usize| m.v[(yy * m.dim + xx) * m.ch + c];
                v[(y * d + x) * m.ch + c] = at(2 * y, 2 * x)
                    || at(2 * y, 2 * x + 1)
                    || at(2 * y + 1, 2 * x)
                    || at(2 * y + 1, 2 * x + 1);
            }
        }
    }
    Hwc {
        dim: d,
        ch: m.ch,
        v,
    }
}

impl Decoder {
    fn new(dir: &Path) -> Decoder {
        let layers = (0..9)
            .map(|l| {
                let cols = if l < 6 { 9 * CONV[l].0 } else { FC[l - 6].0 };
                Stored::load(dir, l, cols, FOLD[l].0, FOLD[l].1, l < 8)
            })
            .collect();
        Decoder { layers }
    }

    /// The 10 popcounts of layer 8 for an input of 8-bit fixed-point values q (value
    /// q/128) given channel-major `[3][32][32]`.
    fn run(&self, q: &[i8]) -> Vec<i64> {
        // interleave channels: HWC
        let mut v = vec![0i8; 3 * 1024];
        for c in 0..3 {
            for p in 0..1024 {
                v[p * 3 + c] = q[c * 1024 + p];
            }
        }
        let input = Hwc { dim: 32, ch: 3, v };
        // layer 0: acc = Σ ±q/128, in units of 1/256 to compare with the raw threshold
        let l0 = &self.layers[0];
        let mut out = Vec::with_capacity(30 * 30 * 64);
        for y in 0..30 {
            for x in 0..30 {
                let w = input.window(y, x);
                for o in 0..64 {
                    let acc: i64 = w
                        .iter()
                        .enumerate()
                        .map(|(j, &e)| {
                            if l0.bit(o, j) {
                                2 * e as i64
                            } else {
                                -2 * e as i64
                            }
                        })
                        .sum();
                    out.push(acc > l0.threshold(o));
                }
            }
        }
        let mut map = Hwc {
            dim: 30,
            ch: 64,
            v: out,
        };
        for (l, &(_, ch_out, pool)) in CONV.iter().enumerate().skip(1) {
            let st = &self.layers[l];
            let d = map.dim - 2;
            let mut v = Vec::with_capacity(d * d * ch_out);
            for y in 0..d {
                for x in 0..d {
                    let w = map.window(y, x);
                    v.extend((0..ch_out).map(|o| st.popcount(o, &w) > st.threshold(o)));
                }
            }
            map = Hwc {
                dim: d,
                ch: ch_out,
                v,
            };
            if pool {
                map = maxpool(&map);
            }
        }
        assert_eq!((map.dim, map.ch), (1, 256));
        let mut bits = map.v;
        for l in 6..8 {
            let st = &self.layers[l];
            bits = (0..FC[l - 6].1)
                .map(|r| st.popcount(r, &bits) > st.threshold(r))
                .collect();
        }
        (0..10).map(|r| self.layers[8].popcount(r, &bits)).collect()
    }
}

/// BNN-PYNQ's host scaling of a pixel, −1 + 2p/255 rounded to 1/128 (half up) and
/// saturated to [−1, 127/128], computed with exact rationals: the raw byte q.
fn host_q(p: u8) -> i8 {
    let num = 256 * p as i64 - 128 * 255; // 128·(2p/255 − 1) = num/255
    let r = (2 * num + 255).div_euclid(510);
    r.clamp(-128, 127) as i8
}

fn deer() -> Vec<i8> {
    let rec = std::fs::read(shared_data().join("bnn-pynq/test-images/deer.bin")).unwrap();
    assert_eq!(rec.len(), 1 + 3072, "one CIFAR-10 record");
    rec[1..].iter().map(|&p| host_q(p)).collect()
}

/// Every layer of the import against the raw files: weights bit by bit (conv weight
/// [o][c][ky][kx] is column (ky·3 + kx)·C + c), and each threshold decides as BNN-PYNQ's
/// comparison over the whole reachable range of the layer's sum.
fn check_layers(net: &bnnforge_model::Network, dec: &Decoder) {
    let ops: Vec<(&str, &Op)> = net
        .layers
        .iter()
        .map(|l| (l.name.as_str(), &l.op))
        .collect();
    let names: Vec<&str> = ops.iter().map(|o| o.0).collect();
    assert_eq!(
        names,
        [
            "conv0", "t0", "conv1", "t1", "pool1", "conv2", "t2", "conv3", "t3", "pool3", "conv4",
            "t4", "conv5", "t5", "fc6", "t6", "fc7", "t7", "fc8"
        ]
    );
    let mut i = 0;
    for l in 0..9 {
        let st = &dec.layers[l];
        let (rows, cols) = if l < 6 {
            (CONV[l].1, 9 * CONV[l].0)
        } else if l < 8 {
            (FC[l - 6].1, FC[l - 6].0)
        } else {
            (10, 512)
        };
        match ops[i].1 {
            Op::Conv {
                out,
                kernel: 3,
                stride: 1,
                padding: 0,
                weight,
                bias: None,
                ..
            } => {
                let c = CONV[l].0;
                assert_eq!((*out, weight.dims.clone()), (rows, vec![rows, c, 3, 3]));
                for o in 0..rows {
                    for ch in 0..c {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let w = weight.data[((o * c + ch) * 3 + ky) * 3 + kx];
                                let b = st.bit(o, (ky * 3 + kx) * c + ch);
                                assert_eq!(w, if b { 1 } else { -1 }, "layer {l} row {o}");
                            }
                        }
                    }
                }
            }
            Op::Dense {
                out,
                weight,
                bias: None,
                ..
            } => {
                assert_eq!((*out, weight.dims.clone()), (rows, vec![rows, cols]));
                for r in 0..rows {
                    for j in 0..cols {
                        let b = st.bit(r, j);
                        assert_eq!(weight.data[r * cols + j], if b { 1 } else { -1 });
                    }
                }
            }
            op => panic!("layer {l}: unexpected {op:?}"),
        }
        i += 1;
        if l == 8 {
            break;
        }
        let Op::Threshold {
            bits: 1,
            thresholds,
            flip: None,
        } = ops[i].1
        else {
            panic!("layer {l}: expected a 1-bit threshold without flip");
        };
        assert_eq!(thresholds.dims, vec![rows, 1]);
        for r in 0..rows {
            let t = thresholds.data[r];
            let raw = st.threshold(r);
            if l == 0 {
                // y = Σ w·q, |y| ≤ 27·128; BNN-PYNQ: y/128 > raw/256
                for y in -27 * 128..=27 * 128i64 {
                    assert_eq!(y >= t, 2 * y > raw, "layer 0 row {r} y {y}");
                }
            } else {
                // y = 2p − n; BNN-PYNQ: p > raw
                let n = cols as i64;
                for p in 0..=n {
                    assert_eq!(2 * p - n >= t, p > raw, "layer {l} row {r} p {p}");
                }
            }
        }
        i += 1;
        if l < 6 && CONV[l].2 {
            assert!(matches!(
                ops[i].1,
                Op::MaxPool {
                    kernel: 2,
                    stride: 2
                }
            ));
            i += 1;
        }
    }
    assert_eq!(i, ops.len());
    assert_eq!(net.output, "fc8");
}

#[test]
fn cnv_w1a1_equals_the_raw_files_and_classifies_the_deer() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("cnv-w1a1.yaml");
    import(&cnv_dir(), &yaml);
    let net = bnnforge_model::load(&yaml).unwrap();
    assert_eq!(net.input.shape.dims(), vec![3, 32, 32]);
    assert_eq!((net.input.bits, net.input.signed), (8, true));
    let dec = Decoder::new(&cnv_dir());
    check_layers(&net, &dec);

    // the deer, through `bnnforge infer` and through the decoder
    let q = deer();
    let x: Vec<i64> = q.iter().map(|&v| v as i64).collect();
    let xin = tmp.path().join("deer.npy");
    let yout = tmp.path().join("deer-out.npy");
    bnnforge_model::npy::write_i64(&xin, &[1, 3, 32, 32], &x).unwrap();
    let o = bnnforge()
        .arg("infer")
        .arg(&yaml)
        .arg("--input")
        .arg(&xin)
        .arg("--output")
        .arg(&yout)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let y = bnnforge_model::npy::read_ints(&yout).unwrap();
    assert_eq!(y.shape, vec![1, 10]);
    let pop = dec.run(&q);
    println!("deer: outputs {:?}, popcounts {pop:?}", y.data);
    let want: Vec<i64> = pop.iter().map(|&p| 2 * p - 512).collect();
    assert_eq!(y.data, want, "model output = 2·popcount − 512");
    let best = (0..10).fold(0, |b, k| if pop[k] > pop[b] { k } else { b });
    assert_eq!(best, 4, "BNN-PYNQ's tests/test_qnn.py: the deer is class 4");

    // random inputs (all 256 byte values reachable) through the model and the decoder
    let seed = bnnforge_model::random::test_seed("random inputs", std::process::id() as u64);
    let model = Model::new(&net);
    let frames = bnnforge_model::random::random_frames(&net.input, 3, seed);
    for f in frames.chunks(3072) {
        let q: Vec<i8> = f.iter().map(|&v| v as i8).collect();
        let want: Vec<i64> = dec.run(&q).iter().map(|&p| 2 * p - 512).collect();
        assert_eq!(model.eval(f), want, "seed {seed}");
    }
}

#[test]
fn shipped_cnv_model_equals_a_fresh_import() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("cnv-w1a1.yaml");
    import(&cnv_dir(), &yaml);
    for ext in ["yaml", "safetensors"] {
        let fresh = std::fs::read(tmp.path().join(format!("cnv-w1a1.{ext}"))).unwrap();
        let shipped = std::fs::read(repo().join(format!("models/cnv-w1a1.{ext}")))
            .unwrap_or_else(|e| panic!("models/cnv-w1a1.{ext}: {e}"));
        assert!(
            fresh == shipped,
            "models/cnv-w1a1.{ext} is stale: regenerate it (see models/NOTICE.md)"
        );
    }
}

/// `bnnforge import bnn-pynq DIR --arch ARCH`: exit 2, one line containing `want`, no
/// output file.
fn expect_error(dir: &Path, arch: &str, want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("net.yaml");
    let o = bnnforge()
        .args(["import", "bnn-pynq"])
        .arg(dir)
        .args(["--arch", arch, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "'{err}' lacks '{want}'");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn bad_cnv_inputs_exit_2_with_one_line() {
    // LFC's files are not CNV's layout
    expect_error(
        &shared_data().join("bnn-pynq/mnist/lfcW1A1"),
        "cnv-w1a1",
        "layer 0 unit 0 weights (4x9 words) has 3328 bytes, expected 288",
    );
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("cnv");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(cnv_dir()).unwrap() {
        let e = e.unwrap();
        let to = copy.join(e.file_name());
        std::fs::copy(e.path(), &to).unwrap();
        let mut perm = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&to, perm).unwrap();
    }
    // a short file
    let f = copy.join("5-0-thres.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 8]).unwrap();
    expect_error(
        &copy,
        "cnv-w1a1",
        "5-0-thres.bin: layer 5 unit 0 thresholds (256x1 values) has 2040 bytes, expected 2048",
    );
    std::fs::write(&f, &bytes).unwrap();
    // a missing file
    std::fs::remove_file(copy.join("8-3-weights.bin")).unwrap();
    expect_error(
        &copy,
        "cnv-w1a1",
        "8-3-weights.bin: cannot read layer 8 unit 3 weights",
    );
    // an empty folder
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    expect_error(&empty, "cnv-w1a1", "0-0-weights.bin: cannot read layer 0");
}
