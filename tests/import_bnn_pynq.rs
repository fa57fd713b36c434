//! `bnnforge import bnn-pynq`: the imported LFC networks give, on the whole MNIST test
//! set, exactly the output bits of an independent decoder of BNN-PYNQ's raw files
//! (written here from shared/data/README.md, not from the importer), BNN-PYNQ's published
//! accuracy, and the shipped models/ files equal a fresh import.

#[path = "../src/mnist.rs"]
#[allow(dead_code)]
mod mnist;

mod common;
use bnnforge_model::Model;
use common::*;
use rayon::prelude::*;
use std::path::Path;

/// Runs `bnnforge import bnn-pynq` into `out`, expecting success.
fn import(dir: &Path, arch: &str, out: &Path) {
    let o = bnnforge()
        .args(["import", "bnn-pynq"])
        .arg(dir)
        .args(["--arch", arch, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

struct TestSet {
    images: mnist::Images,
    labels: Vec<u8>,
}

fn test_set() -> TestSet {
    let d = repo().join("data/mnist");
    let images = mnist::read_images(&d.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = mnist::read_labels(&d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (10000, 28, 28));
    assert_eq!(labels.len(), 10000);
    TestSet { images, labels }
}

// ---- the independent decoder, straight from shared/data/README.md ----

/// One layer as stored: per unit P, its u64 words and its thresholds.
struct PeLayer {
    simd: usize,
    pe: usize,
    sf: usize,
    per: usize,
    words: Vec<Vec<u64>>,
    thres: Vec<Vec<i64>>,
}

fn read_u64s(p: &Path) -> Vec<u64> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn load_pe_layer(dir: &Path, l: usize, cols: usize, simd: usize, pe: usize, per: usize) -> PeLayer {
    let words = (0..pe)
        .map(|p| read_u64s(&dir.join(format!("{l}-{p}-weights.bin"))))
        .collect();
    let thres = (0..pe)
        .map(|p| {
            read_u64s(&dir.join(format!("{l}-{p}-thres.bin")))
                .into_iter()
                .map(|x| x as i64)
                .collect()
        })
        .collect();
    PeLayer {
        simd,
        pe,
        sf: cols / simd,
        per,
        words,
        thres,
    }
}

impl PeLayer {
    /// The SIMD-bit weight group `sf` of row `row`: word [P][nf·SF + sf].
    fn word(&self, row: usize, sf: usize) -> u64 {
        self.words[row % self.pe][(row / self.pe) * self.sf + sf]
    }
    fn thresholds(&self, row: usize) -> &[i64] {
        let nf = row / self.pe;
        &self.thres[row % self.pe][nf * self.per..(nf + 1) * self.per]
    }
    fn mask(&self) -> u64 {
        if self.simd == 64 {
            u64::MAX
        } else {
            (1 << self.simd) - 1
        }
    }
    /// Packs per-column bits into this layer's SIMD groups.
    fn pack(&self, bits: &[bool]) -> Vec<u64> {
        let mut v = vec![0u64; self.sf];
        for (j, &b) in bits.iter().enumerate() {
            if b {
                v[j / self.simd] |= 1 << (j % self.simd);
            }
        }
        v
    }
    /// popcount(XNOR) of a row against packed input bits.
    fn popcount(&self, row: usize, x: &[u64]) -> i64 {
        (0..self.sf)
            .map(|s| (!(self.word(row, s) ^ x[s]) & self.mask()).count_ones() as i64)
            .sum()
    }
    /// Σ w·x for x ∈ {−1, 0, +1} given as masks of the +1 and the −1 columns.
    fn signed_sum(&self, row: usize, pos: &[u64], neg: &[u64]) -> i64 {
        (0..self.sf)
            .map(|s| {
                let w = self.word(row, s) & self.mask();
                let (p, n) = (pos[s], neg[s]);
                // Σ_{x=+1} w − Σ_{x=−1} w with w = 2b − 1
                (2 * (w & p).count_ones() as i64 - p.count_ones() as i64)
                    - (2 * (w & n).count_ones() as i64 - n.count_ones() as i64)
            })
            .sum()
    }
}

/// LFC layer shapes: (input columns as stored, SIMD, PE, rows as stored).
const SHAPES: [(usize, usize, usize, usize); 4] = [
    (832, 64, 32, 1024),
    (1024, 32, 64, 1024),
    (1024, 64, 32, 1024),
    (1024, 8, 16, 64),
];

struct Decoder {
    layers: Vec<PeLayer>,
    two_bit: bool,
}

impl Decoder {
    fn new(dir: &Path, two_bit: bool) -> Decoder {
        let layers = SHAPES
            .iter()
            .enumerate()
            .map(|(l, &(cols, simd, pe, _))| {
                let per = if two_bit && l < 3 { 2 } else { 1 };
                load_pe_layer(dir, l, cols, simd, pe, per)
            })
            .collect();
        Decoder { layers, two_bit }
    }

    /// The 10 output bits of one image, and the last layer's (acc, T) per class.
    fn run(&self, pixels: &[u8]) -> (Vec<bool>, Vec<(i64, i64)>) {
        // input bit = pixel ≥ 128; pad columns 784..832 are bit 0
        let mut bits: Vec<bool> = pixels.iter().map(|&p| p >= 128).collect();
        bits.resize(832, false);
        if !self.two_bit {
            for (l, layer) in self.layers.iter().enumerate() {
                let x = layer.pack(&bits);
                let rows = if l == 3 { 10 } else { SHAPES[l].3 };
                let accs: Vec<(i64, i64)> = (0..rows)
                    .map(|r| (layer.popcount(r, &x), layer.thresholds(r)[0]))
                    .collect();
                bits = accs.iter().map(|&(a, t)| a > t).collect();
                if l == 3 {
                    return (bits, accs);
                }
            }
            unreachable!()
        } else {
            // activations −1/0/+1; layer 0: ±1 input, pad inputs −1
            let mut act: Vec<i8> = bits[..784]
                .iter()
                .map(|&b| if b { 1 } else { -1 })
                .collect();
            act.resize(832, -1);
            for (l, layer) in self.layers.iter().enumerate() {
                let pos = layer.pack(&act.iter().map(|&a| a == 1).collect::<Vec<_>>());
                let neg = layer.pack(&act.iter().map(|&a| a == -1).collect::<Vec<_>>());
                if l == 3 {
                    let accs: Vec<(i64, i64)> = (0..10)
                        .map(|r| (layer.signed_sum(r, &pos, &neg), layer.thresholds(r)[0]))
                        .collect();
                    return (accs.iter().map(|&(a, t)| a > t).collect(), accs);
                }
                act = (0..SHAPES[l].3)
                    .map(|r| {
                        let acc = layer.signed_sum(r, &pos, &neg);
                        let t = layer.thresholds(r);
                        -1 + (acc > t[0]) as i8 + (acc > t[1]) as i8
                    })
                    .collect();
            }
            unreachable!()
        }
    }
}

/// BNN-PYNQ's prediction: the highest set output bit, 0 if none.
fn bnn_pynq_class(bits: &[bool]) -> usize {
    bits.iter().rposition(|&b| b).unwrap_or(0)
}

/// Imports `arch`, runs model and decoder on the whole test set; returns the number of
/// correct BNN-PYNQ predictions (after checking that both agree on every output bit).
fn check_network(dirname: &str, arch: &str) -> usize {
    let dir = shared_data().join("bnn-pynq/mnist").join(dirname);
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join(format!("{arch}.yaml"));
    import(&dir, arch, &yaml);
    let net = bnnforge_model::load(&yaml).unwrap();
    assert_eq!(net.input.shape.dims(), vec![1, 28, 28]);
    assert_eq!((net.input.bits, net.input.signed), (8, false));
    let model = Model::new(&net);
    let ts = test_set();
    let xs: Vec<i64> = ts.images.pixels.iter().map(|&p| p as i64).collect();
    let out = model.eval_batch(&xs);
    assert_eq!(out.len(), 10000 * 10);
    assert!(out.iter().all(|&v| v == 1 || v == -1), "outputs are ±1");

    let dec = Decoder::new(&dir, arch == "lfc-w1a2");
    let decoded: Vec<Vec<bool>> = (0..10000)
        .into_par_iter()
        .map(|i| dec.run(ts.images.image(i)).0)
        .collect();
    let mut correct = 0;
    for i in 0..10000 {
        let bits: Vec<bool> = out[i * 10..(i + 1) * 10].iter().map(|&v| v == 1).collect();
        assert_eq!(bits, decoded[i], "image {i}: model and raw decoder differ");
        correct += (bnn_pynq_class(&bits) == ts.labels[i] as usize) as usize;
    }

    // the single test image of BNN-PYNQ: class 3, only bit 3 set
    let one =
        mnist::read_images(&shared_data().join("bnn-pynq/test-images/3.image-idx3-ubyte")).unwrap();
    assert_eq!(one.count, 1);
    let x: Vec<i64> = one.pixels.iter().map(|&p| p as i64).collect();
    let y = model.eval(&x);
    let want: Vec<i64> = (0..10).map(|k| if k == 3 { 1 } else { -1 }).collect();
    assert_eq!(y, want, "3.image gives only bit 3");
    let (bits, accs) = dec.run(&one.pixels);
    assert_eq!(bits, want.iter().map(|&v| v == 1).collect::<Vec<_>>());
    if arch == "lfc-w1a1" {
        assert_eq!(accs[3], (817, 644), "README: acc 817 against T 644");
    }
    correct
}

#[test]
fn lfc_w1a1_is_exact_and_scores_9840() {
    assert_eq!(check_network("lfcW1A1", "lfc-w1a1"), 9840);
}

#[test]
fn lfc_w1a2_is_exact_and_scores_9849() {
    assert_eq!(check_network("lfcW1A2", "lfc-w1a2"), 9849);
}

#[test]
fn shipped_lfc_models_equal_a_fresh_import() {
    let tmp = tempfile::tempdir().unwrap();
    for (dirname, arch) in [("lfcW1A1", "lfc-w1a1"), ("lfcW1A2", "lfc-w1a2")] {
        let dir = shared_data().join("bnn-pynq/mnist").join(dirname);
        let yaml = tmp.path().join(format!("{arch}.yaml"));
        import(&dir, arch, &yaml);
        for ext in ["yaml", "safetensors"] {
            let fresh = std::fs::read(tmp.path().join(format!("{arch}.{ext}"))).unwrap();
            let shipped = std::fs::read(repo().join(format!("models/{arch}.{ext}")))
                .unwrap_or_else(|e| panic!("models/{arch}.{ext}: {e}"));
            assert!(
                fresh == shipped,
                "models/{arch}.{ext} is stale: regenerate it with `bnnforge import bnn-pynq` \
                 (see models/NOTICE.md)"
            );
        }
    }
}

/// Runs `bnnforge import ...`, expecting exit 2, one line on stderr containing `want`,
/// and no output file.
fn expect_error(args: &[&std::ffi::OsStr], want: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("net.yaml");
    let o = bnnforge()
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{args:?}: '{err}' lacks '{want}'");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no output left behind"
    );
}

#[test]
fn bad_bnn_pynq_inputs_exit_2_with_one_line() {
    let good = shared_data().join("bnn-pynq/mnist/lfcW1A1");
    let tmp = tempfile::tempdir().unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);
    let run = |dir: &Path, arch: &str, want: &str| {
        let args = [
            os("import"),
            os("bnn-pynq"),
            dir.as_os_str().to_owned(),
            os("--arch"),
            os(arch),
        ];
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        expect_error(&refs, want);
    };
    run(
        &tmp.path().join("nope"),
        "lfc-w1a1",
        "cannot open directory",
    );
    run(&good.join("0-0-weights.bin"), "lfc-w1a1", "not a directory");
    run(&good, "cnv-w2a2", "unknown --arch 'cnv-w2a2'");
    // W1A1 files read as W1A2: layer 0 has one threshold per row, not two
    run(
        &good,
        "lfc-w1a2",
        "layer 0 unit 0 thresholds (32x2 values) has 256 bytes, expected 512",
    );

    // a copy with one file truncated, then one file missing
    let copy = tmp.path().join("lfc");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&good).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let f = copy.join("2-7-weights.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 5]).unwrap();
    run(
        &copy,
        "lfc-w1a1",
        "2-7-weights.bin: layer 2 unit 7 weights (32x16 words) has 4091 bytes, expected 4096",
    );
    std::fs::write(&f, &bytes).unwrap();
    std::fs::remove_file(copy.join("3-15-thres.bin")).unwrap();
    run(
        &copy,
        "lfc-w1a1",
        "3-15-thres.bin: cannot read layer 3 unit 15 thresholds",
    );
}
