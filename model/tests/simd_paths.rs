//! The popcount paths against each other: the XOR-popcount kernel on random row shapes
//! (odd word counts, partial 4-row groups, partial 256-bit blocks) and whole random
//! networks with wide layers, every path the CPU has against the portable one.
//!
//! Each test prints its seed; `BNNFORGE_SEED=<seed>` replays it.

use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
use bnnforge_model::random::{clock_seed, seeded, test_seed, Rng, SeededRng};
use bnnforge_model::random::{random_frames, random_network, RandomConfig};
use bnnforge_model::simd::{xor_popcount_rows, PackedRows, Path};
use bnnforge_model::Model;

/// Every path the CPU has, saying which ones these tests skip.
fn paths() -> Vec<Path> {
    for p in [Path::Avx2, Path::Avx512] {
        if !p.available() {
            println!("skipping the {} path: this CPU lacks it", p.name());
        }
    }
    Path::all_available()
}

/// Random words with runs of ones and zeros as well as noise, so byte counts reach 8.
fn word(rng: &mut SeededRng) -> u64 {
    match rng.gen_range(0..4) {
        0 => 0,
        1 => u64::MAX,
        _ => rng.gen(),
    }
}

#[test]
fn kernel_paths_agree() {
    let seed = test_seed("kernel_paths_agree", clock_seed());
    let mut rng = seeded(seed);
    let paths = paths();
    println!("paths: {paths:?}");
    for case in 0..400 {
        // up to 40 words covers every fixed-size AVX2 kernel and the general one;
        // an occasional long row crosses the 31-vector widening of the byte counters
        let words = if case % 50 == 0 {
            rng.gen_range(120..=300)
        } else {
            rng.gen_range(1..=40)
        };
        let rows = rng.gen_range(0..=13);
        // the model keeps bits above the channel count at zero in both operands
        let bits: usize = rng.gen_range(1..=64 * words);
        let mask = |i: usize| {
            let n = bits.saturating_sub(i * 64).min(64);
            if n == 64 {
                u64::MAX
            } else {
                (1u64 << n) - 1
            }
        };
        let x: Vec<u64> = (0..words).map(|i| word(&mut rng) & mask(i)).collect();
        // some cases make rows mostly the complement of x: every byte count at its top
        let opposite = case % 5 == 0;
        let w: Vec<u64> = (0..rows * words)
            .map(|i| {
                let v = if opposite && rng.gen_range(0..16) != 0 {
                    !x[i % words]
                } else {
                    word(&mut rng)
                };
                v & mask(i % words)
            })
            .collect();
        check_rows(
            &paths,
            &w,
            &x,
            &format!("seed {seed}, case {case}: {rows} rows of {words} words, {bits} bits"),
        );
    }
}

/// Every row length up to 70 words and some long ones, with row counts around the
/// 4-row groups of AVX2 and 8-row groups of AVX-512: the AVX2 path splits each row into
/// vector blocks and POPCNT words by its length, and counts rows over 32 words in 16-word
/// column chunks (tails of 1 to 15 words); AVX-512 ends each row in a masked load of 1 to
/// 7 words. Rows are mostly the complement of `x`, so every byte count is at its top.
#[test]
fn kernel_paths_agree_on_every_length() {
    let seed = test_seed("kernel_paths_agree_on_every_length", clock_seed());
    let mut rng = seeded(seed);
    let paths = paths();
    let lengths = (1..=70).chain([95, 128, 150, 300]);
    for words in lengths {
        for rows in [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 17] {
            let x: Vec<u64> = (0..words).map(|_| word(&mut rng)).collect();
            let w: Vec<u64> = (0..rows * words)
                .map(|i| {
                    if rng.gen_range(0..8) == 0 {
                        word(&mut rng)
                    } else {
                        !x[i % words]
                    }
                })
                .collect();
            check_rows(
                &paths,
                &w,
                &x,
                &format!("seed {seed}: {rows} rows of {words} words"),
            );
        }
    }
}

/// Layouts of 256 rows and more, which the AVX2 path stores transposed in blocks of
/// 256 rows (the rest of the rows in its other layout): row counts around whole blocks;
/// row lengths across the three plane counts of its bit-sliced sums (up to 7 words, up
/// to 31, more) and the 16-word dense rows; `x` all zeros, all ones, with exactly half
/// its bits set (where the path switches from summing the columns of x's ones to those
/// of its zeros) or one more or one fewer, and random; rows equal to `x`, its complement
/// (every count 0 or the row length) and random. Every row range is checked against
/// `count_ones`, through `xor_popcount`, `xor_popcount_from` and `xor_popcount_chunks`.
#[test]
fn kernel_paths_agree_on_transposed_blocks() {
    let seed = test_seed("kernel_paths_agree_on_transposed_blocks", clock_seed());
    let mut rng = seeded(seed);
    let paths = paths();
    let shapes = [
        (256, 1),
        (300, 2),
        (511, 3),
        (257, 4),
        (512, 7),
        (256, 8),
        (513, 9),
        (1024, 16),
        (600, 16),
        (256, 17),
        (290, 31),
        (256, 32),
        (260, 33),
        (256, 70),
    ];
    for (case, &(rows, words)) in shapes.iter().enumerate() {
        let columns = 64 * words;
        // x: bits set at `ones` random columns, or random words
        let with_ones = |rng: &mut SeededRng, ones: usize| {
            let mut order: Vec<usize> = (0..columns).collect();
            for i in 0..ones {
                let j = rng.gen_range(i..columns);
                order.swap(i, j);
            }
            let mut x = vec![0u64; words];
            for &c in &order[..ones] {
                x[c / 64] |= 1 << (c % 64);
            }
            x
        };
        let half = columns / 2;
        let xs = [
            vec![0; words],
            vec![u64::MAX; words],
            with_ones(&mut rng, half),
            with_ones(&mut rng, half - 1),
            with_ones(&mut rng, half + 1),
            (0..words).map(|_| word(&mut rng)).collect(),
        ];
        for (k, x) in xs.iter().enumerate() {
            // rows: random, x itself, its complement, and a run of each in between
            let w: Vec<u64> = (0..rows * words)
                .map(|i| match (i / words) % 7 {
                    0 => x[i % words],
                    1 | 2 => !x[i % words],
                    _ => word(&mut rng),
                })
                .collect();
            let what = format!("seed {seed}, case {case}, x {k}: {rows} rows of {words} words");
            check_rows(&paths, &w, x, &what);
            check_ranges(&paths, &w, x, &what);
        }
    }
}

/// The longest rows the transposed layout takes (1023 words: sums and counts up to
/// 65472 in 16 planes), against rows that are x's complement (the largest counts) and
/// equal to it.
#[test]
fn kernel_paths_agree_on_longest_transposed_rows() {
    let seed = test_seed(
        "kernel_paths_agree_on_longest_transposed_rows",
        clock_seed(),
    );
    let mut rng = seeded(seed);
    let paths = paths();
    for words in [1023, 1024] {
        let x: Vec<u64> = (0..words)
            .map(|i| if i % 3 == 0 { u64::MAX } else { word(&mut rng) })
            .collect();
        let w: Vec<u64> = (0..256 * words)
            .map(|i| match (i / words) % 3 {
                0 => !x[i % words],
                1 => x[i % words],
                _ => word(&mut rng),
            })
            .collect();
        let what = format!("seed {seed}: 256 rows of {words} words");
        check_rows(&paths, &w, &x, &what);
        check_ranges(&paths, &w, &x, &what);
    }
}

/// Every path's XOR-popcount of rows `first..first + n` for starts and lengths around
/// the 256-row blocks, and of all rows through `xor_popcount_chunks`, against
/// `count_ones`.
fn check_ranges(paths: &[Path], w: &[u64], x: &[u64], what: &str) {
    let words = x.len();
    let want: Vec<u32> = w
        .chunks_exact(words)
        .map(|r| r.iter().zip(x).map(|(a, b)| (a ^ b).count_ones()).sum())
        .collect();
    let rows = want.len();
    for &path in paths {
        let packed = PackedRows::new(w.to_vec(), words, path);
        for first in [0, 1, 31, 255, 256, 257, 300, 511, 512, rows - 1] {
            for n in [1, 2, 33, 255, 256, 257, 512, rows] {
                if first + n > rows {
                    continue;
                }
                let mut got = vec![u32::MAX; n];
                packed.xor_popcount_from(x, first, &mut got);
                assert_eq!(
                    got,
                    want[first..first + n],
                    "{what}: rows {first}..+{n}, {path:?}"
                );
            }
        }
        let mut got = vec![u32::MAX; rows];
        let mut next = 0;
        packed.xor_popcount_chunks(x, |first, d| {
            assert_eq!(first, next, "{what}: chunks in order, {path:?}");
            assert!(
                !d.is_empty() && d.len() <= 256,
                "{what}: chunk of {}",
                d.len()
            );
            got[first..first + d.len()].copy_from_slice(d);
            next = first + d.len();
        });
        assert_eq!(next, rows, "{what}: chunks cover every row, {path:?}");
        assert_eq!(got, want, "{what}: xor_popcount_chunks {path:?}");
    }
}

/// Every path's XOR-popcount of each row of `w` (rows as long as `x`) with `x`, through
/// `PackedRows` (all rows, and the rows from each of the first few on, which start the
/// AVX2 path's 4-row groups at another row) and `xor_popcount_rows`, equals
/// `count_ones` on the plain words.
fn check_rows(paths: &[Path], w: &[u64], x: &[u64], what: &str) {
    let words = x.len();
    let want: Vec<u32> = w
        .chunks_exact(words)
        .map(|r| r.iter().zip(x).map(|(a, b)| (a ^ b).count_ones()).sum())
        .collect();
    for &path in paths {
        let mut got = vec![u32::MAX; want.len()];
        let packed = PackedRows::new(w.to_vec(), words, path);
        packed.xor_popcount(x, &mut got);
        assert_eq!(got, want, "{what}: {path:?}");
        for first in 1..want.len().min(6) {
            let mut part = vec![u32::MAX; want.len() - first];
            packed.xor_popcount_from(x, first, &mut part);
            assert_eq!(part, want[first..], "{what}: rows from {first}, {path:?}");
        }
        let mut again = vec![u32::MAX; want.len()];
        xor_popcount_rows(path, w, x, &mut again);
        assert_eq!(again, want, "{what}: xor_popcount_rows {path:?}");
    }
}

fn compare(net: &Network, frames: &[i64], what: &str) {
    let portable = Model::with_path(net, Path::Portable);
    for path in paths() {
        let model = Model::with_path(net, path);
        assert_eq!(model.path(), path);
        for (f, x) in frames.chunks(net.input.shape.len()).enumerate() {
            let want = portable.eval_layers(x);
            let got = model.eval_layers(x);
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                assert_eq!(
                    w, g,
                    "{what}: {path:?}, frame {f}, layer '{}' differs from the portable path",
                    net.layers[i].name
                );
            }
        }
    }
}

fn pm1(rng: &mut SeededRng, n: usize) -> Vec<i8> {
    (0..n).map(|_| if rng.gen() { 1 } else { -1 }).collect()
}

#[test]
fn network_paths_agree() {
    let seed = test_seed("network_paths_agree", clock_seed());
    let mut rng = seeded(seed);
    // wide random networks: rows of many words with odd channel counts
    let cfg = RandomConfig {
        max_channels: 150,
        max_hw: 6,
        max_features: 1100,
        ..RandomConfig::default()
    };
    for case in 0..20 {
        let s = rng.gen();
        let net = random_network(s, &cfg);
        compare(
            &net,
            &random_frames(&net.input, 2, s),
            &format!("seed {seed}, case {case} (random network {s})"),
        );
    }
    // single binary dense and conv layers of random odd shapes
    for case in 0..30 {
        let (c, h, w) = (
            rng.gen_range(1..=300),
            rng.gen_range(1..=4),
            rng.gen_range(1..=4),
        );
        let out = rng.gen_range(1..=11);
        let bits = if rng.gen() { 1 } else { rng.gen_range(2..=6) };
        let input = InputSpec {
            shape: Shape::map(c, h, w),
            bits,
            signed: rng.gen(),
        };
        let op = if rng.gen() {
            let n = c * h * w;
            Op::Dense {
                out,
                weight: Param::new("w", vec![out, n], pm1(&mut rng, out * n)),
                bias: Some(Param::new("b", vec![out], vec![rng.gen_range(-9..=9); out])),
            }
        } else {
            let k = rng.gen_range(1..=h.min(w) + 2);
            let p = rng.gen_range(0..=2).max((k + 1).saturating_sub(h.min(w)));
            Op::Conv {
                out,
                kernel: k,
                stride: rng.gen_range(1..=2),
                padding: p,
                pad_value: rng.gen_range(-1..=1),
                weight: Param::new("w", vec![out, c, k, k], pm1(&mut rng, out * c * k * k)),
                bias: None,
            }
        };
        let layers = vec![Layer {
            name: "l".into(),
            inputs: vec!["input".into()],
            op,
        }];
        let net = Network::new("one".into(), input, layers, "l".into())
            .unwrap_or_else(|e| panic!("seed {seed}, case {case}: {e}"));
        compare(
            &net,
            &random_frames(&net.input, 2, rng.gen()),
            &format!("seed {seed}, single layer case {case}"),
        );
    }
}
