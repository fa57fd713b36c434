//! XOR-popcount of packed weight rows against one packed activation: the inner loop of
//! every binary layer of the model, on the portable path (`count_ones`, POPCNT) or on
//! AVX2 (`vpshufb` nibble-table popcount), chosen at run time.
//!
//! Both paths return the same integers for every input; `BNNFORGE_SIMD=portable` forces
//! the portable path (see [`Path::from_env`]).

use crate::{Error, Result};
use std::sync::OnceLock;

/// An implementation of [`xor_popcount_rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `u64::count_ones` (one POPCNT per word on x86-64-v2)
    Portable,
    /// 256-bit `vpshufb` nibble lookups, four words per step (x86-64 with AVX2 only)
    Avx2,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2 => "avx2",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Path::Portable => true,
            Path::Avx2 => avx2(),
        }
    }

    /// The fastest path this CPU has.
    pub fn best() -> Path {
        if avx2() {
            Path::Avx2
        } else {
            Path::Portable
        }
    }

    /// Every path this CPU can run, portable first.
    pub fn all_available() -> Vec<Path> {
        [Path::Portable, Path::Avx2]
            .into_iter()
            .filter(|p| p.available())
            .collect()
    }

    /// The path `BNNFORGE_SIMD` asks for: unset, empty or `auto` is [`Path::best`];
    /// `portable` or `avx2` (an error when the CPU lacks it); anything else is an error.
    pub fn from_env() -> Result<Path> {
        Path::parse(&std::env::var("BNNFORGE_SIMD").unwrap_or_default())
    }

    /// A value of `BNNFORGE_SIMD` (see [`Path::from_env`]).
    pub fn parse(v: &str) -> Result<Path> {
        match v {
            "" | "auto" => Ok(Path::best()),
            "portable" => Ok(Path::Portable),
            "avx2" if avx2() => Ok(Path::Avx2),
            "avx2" => Err(Error::new("BNNFORGE_SIMD=avx2 but this CPU has no AVX2")),
            other => Err(Error::new(format!(
                "BNNFORGE_SIMD must be auto, portable or avx2, not '{other}'"
            ))),
        }
    }

    /// [`Path::from_env`], read once per process; an invalid value falls back to
    /// [`Path::best`] (the CLI rejects it before any model is built).
    pub fn selected() -> Path {
        static SELECTED: OnceLock<Path> = OnceLock::new();
        *SELECTED.get_or_init(|| Path::from_env().unwrap_or_else(|_| Path::best()))
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    // cached by std after the first call: an atomic load and a bit test
    std::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2() -> bool {
    false
}

/// Rows shorter than this stay in the portable layout on the AVX2 path.
pub const MIN_AVX2_WORDS: usize = 3;

/// 256 bits, aligned so that the AVX2 path reads whole blocks with aligned loads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Block(pub [u64; 4]);

/// Weight rows of `L` packed words, laid out for one [`Path`]: plain words for the
/// portable path, rows padded with zero words to whole aligned [`Block`]s for AVX2.
#[derive(Clone, Debug)]
pub struct PackedRows {
    words: usize,
    rows: usize,
    layout: Layout,
}

#[derive(Clone, Debug)]
enum Layout {
    Words(Vec<u64>),
    Blocks(Vec<Block>),
}

impl PackedRows {
    /// Rows of `words` words each, laid end to end in `w`, for `path` (the portable
    /// layout when the CPU lacks `path`).
    pub fn new(w: Vec<u64>, words: usize, path: Path) -> PackedRows {
        let rows = w.len().checked_div(words).unwrap_or(0);
        assert_eq!(rows * words, w.len(), "whole rows");
        // rows of one or two words fill less than a vector, and POPCNT measured faster there
        let layout = if path == Path::Avx2 && avx2() && words >= MIN_AVX2_WORDS {
            let per_row = words.div_ceil(4);
            let mut blocks = vec![Block::default(); rows * per_row];
            for (row, dst) in w.chunks_exact(words).zip(blocks.chunks_exact_mut(per_row)) {
                for (i, &v) in row.iter().enumerate() {
                    dst[i / 4].0[i % 4] = v;
                }
            }
            Layout::Blocks(blocks)
        } else {
            Layout::Words(w)
        };
        PackedRows {
            words,
            rows,
            layout,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The path these rows run on (portable for rows under [`MIN_AVX2_WORDS`]).
    pub fn path(&self) -> Path {
        match self.layout {
            Layout::Words(_) => Path::Portable,
            Layout::Blocks(_) => Path::Avx2,
        }
    }

    /// `out[r] = Σ_i popcount(row_r[i] XOR x[i])` for every row; `x` has `L` words and
    /// `out` one entry per row.
    pub fn xor_popcount(&self, x: &[u64], out: &mut [u32]) {
        assert_eq!(x.len(), self.words, "x of L words");
        assert_eq!(out.len(), self.rows, "one output per row");
        match &self.layout {
            Layout::Words(w) => {
                if self.words == 0 {
                    out.fill(0);
                } else {
                    rows_portable(w, x, out);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Layout::Blocks(b) => {
                // SAFETY: `rows_avx2` is safe code compiled with AVX2 enabled; calling
                // it is sound exactly when the CPU has AVX2, and `Blocks` is only built
                // after `avx2()` confirmed it.
                unsafe { avx2_impl::rows_avx2(b, x, out) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Layout::Blocks(_) => unreachable!("AVX2 layout on a CPU without AVX2"),
        }
    }
}

/// `out[r] = Σ_i popcount(w[r·L + i] XOR x[i])` for every row r of `L = x.len()`
/// words, on `path` (rearranges the rows first; [`PackedRows`] does that once).
pub fn xor_popcount_rows(path: Path, w: &[u64], x: &[u64], out: &mut [u32]) {
    if x.is_empty() {
        out.fill(0);
        return;
    }
    PackedRows::new(w.to_vec(), x.len(), path).xor_popcount(x, out)
}

fn rows_portable(w: &[u64], x: &[u64], out: &mut [u32]) {
    // a fixed length lets the compiler unroll the popcounts of the common row sizes
    // (dense rows of 1024 bits, 3×3 and 5×5 convs of 64 or 128 channels)
    match x.len() {
        1 => rows_fixed::<1>(w, x, out),
        2 => rows_fixed::<2>(w, x, out),
        4 => rows_fixed::<4>(w, x, out),
        9 => rows_fixed::<9>(w, x, out),
        16 => rows_fixed::<16>(w, x, out),
        18 => rows_fixed::<18>(w, x, out),
        25 => rows_fixed::<25>(w, x, out),
        l => {
            for (row, o) in w.chunks_exact(l).zip(out) {
                *o = row.iter().zip(x).map(|(a, b)| (a ^ b).count_ones()).sum();
            }
        }
    }
}

fn rows_fixed<const G: usize>(w: &[u64], x: &[u64], out: &mut [u32]) {
    let x: &[u64; G] = x.try_into().expect("x of G words");
    for (row, o) in w.chunks_exact(G).zip(out) {
        let row: &[u64; G] = row.try_into().expect("row of G words");
        let mut d = 0u32;
        for i in 0..G {
            d += (row[i] ^ x[i]).count_ones();
        }
        *o = d;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_impl {
    //! Muła's nibble-table popcount: each byte's count is `T[lo nibble] + T[hi nibble]`
    //! with `vpshufb` as a 16-entry table lookup; byte counts add up in u8 lanes (at
    //! most 8 per vector, so 31 vectors before a lane can overflow) and `vpsadbw` sums
    //! them into u64 lanes. Four rows at a time share each vector of `x` and one
    //! transposing horizontal sum.
    //!
    //! No raw pointers: vectors are built from `[u64; 4]` with `_mm256_set_epi64x`,
    //! which the compiler turns into one load (aligned for the weight [`Block`]s).

    use super::Block;
    use std::arch::x86_64::*;

    /// Vectors summed in u8 lanes before they are widened (31 · 8 ≤ 255).
    const FLUSH: usize = 31;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn vec(b: &Block) -> __m256i {
        let s = &b.0;
        _mm256_set_epi64x(s[3] as i64, s[2] as i64, s[1] as i64, s[0] as i64)
    }

    /// Words `4i..4i+4` of `x` as a vector, zero past its end like the padded weight rows.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn x_vec(x: &[u64], i: usize) -> __m256i {
        let c = &x[4 * i..x.len().min(4 * i + 4)];
        let mut b = Block::default();
        b.0[..c.len()].copy_from_slice(c);
        vec(&b)
    }

    /// Per-byte popcount of `v`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pop_bytes(v: __m256i) -> __m256i {
        let table = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, //
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        );
        let nibble = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(v, nibble);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
        _mm256_add_epi8(
            _mm256_shuffle_epi8(table, lo),
            _mm256_shuffle_epi8(table, hi),
        )
    }

    /// The popcounts of `R` rows of `xs.len()` blocks against `xs`, each as four u64
    /// lanes to add up.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn block<const R: usize>(rows: [&[Block]; R], xs: &[__m256i]) -> [__m256i; R] {
        let mut acc = [_mm256_setzero_si256(); R];
        for (k, xc) in xs.chunks(FLUSH).enumerate() {
            let mut bytes = [_mm256_setzero_si256(); R];
            // (no closure here: a call out of AVX2 code costs a `vzeroupper` and spills)
            let mut part: [&[Block]; R] = [&[]; R];
            for r in 0..R {
                part[r] = &rows[r][k * FLUSH..k * FLUSH + xc.len()];
            }
            for (i, &xv) in xc.iter().enumerate() {
                for r in 0..R {
                    let v = _mm256_xor_si256(vec(&part[r][i]), xv);
                    bytes[r] = _mm256_add_epi8(bytes[r], pop_bytes(v));
                }
            }
            for r in 0..R {
                let sad = _mm256_sad_epu8(bytes[r], _mm256_setzero_si256());
                acc[r] = _mm256_add_epi64(acc[r], sad);
            }
        }
        acc
    }

    /// `[Σa, Σb, Σc, Σd]` of the u64 lanes of four vectors: [a0+a1, b0+b1, a2+a3, b2+b3]
    /// and the same for c, d, then their 128-bit halves added.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sum4(a: __m256i, b: __m256i, c: __m256i, d: __m256i, o: &mut [u32]) {
        let ab = _mm256_add_epi64(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
        let cd = _mm256_add_epi64(_mm256_unpacklo_epi64(c, d), _mm256_unpackhi_epi64(c, d));
        let s = _mm256_add_epi64(
            _mm256_permute2x128_si256::<0x20>(ab, cd),
            _mm256_permute2x128_si256::<0x31>(ab, cd),
        );
        o[0] = _mm256_extract_epi64::<0>(s) as u32;
        o[1] = _mm256_extract_epi64::<1>(s) as u32;
        o[2] = _mm256_extract_epi64::<2>(s) as u32;
        o[3] = _mm256_extract_epi64::<3>(s) as u32;
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn sum1(a: __m256i) -> u32 {
        let h = _mm_add_epi64(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
        (_mm_extract_epi64::<0>(h) + _mm_extract_epi64::<1>(h)) as u32
    }

    /// Rows of a fixed `N ≤ FLUSH` blocks: `x` stays in registers, the loops unroll and
    /// need no bounds checks.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rows_fixed<const N: usize>(w: &[Block], x: &[u64], out: &mut [u32]) {
        let mut xv = [_mm256_setzero_si256(); N];
        for (i, v) in xv.iter_mut().enumerate() {
            *v = x_vec(x, i);
        }
        let x = xv;
        let (rows, _) = w.as_chunks::<N>();
        let one = |row: &[Block; N]| {
            let mut bytes = _mm256_setzero_si256();
            for i in 0..N {
                bytes = _mm256_add_epi8(bytes, pop_bytes(_mm256_xor_si256(vec(&row[i]), x[i])));
            }
            _mm256_sad_epu8(bytes, _mm256_setzero_si256())
        };
        let mut groups = rows.chunks_exact(4);
        let mut outs = out.chunks_exact_mut(4);
        for (g, o) in (&mut groups).zip(&mut outs) {
            let g: &[[Block; N]; 4] = g.try_into().expect("4 rows");
            let mut bytes = [_mm256_setzero_si256(); 4];
            for i in 0..N {
                for r in 0..4 {
                    let v = _mm256_xor_si256(vec(&g[r][i]), x[i]);
                    bytes[r] = _mm256_add_epi8(bytes[r], pop_bytes(v));
                }
            }
            let z = _mm256_setzero_si256();
            sum4(
                _mm256_sad_epu8(bytes[0], z),
                _mm256_sad_epu8(bytes[1], z),
                _mm256_sad_epu8(bytes[2], z),
                _mm256_sad_epu8(bytes[3], z),
                o,
            );
        }
        for (o, row) in outs.into_remainder().iter_mut().zip(groups.remainder()) {
            *o = sum1(one(row));
        }
    }

    /// See [`super::PackedRows::xor_popcount`]; `w` holds rows of `⌈x.len()/4⌉` blocks.
    #[target_feature(enable = "avx2")]
    pub fn rows_avx2(w: &[Block], x: &[u64], out: &mut [u32]) {
        match x.len().div_ceil(4) {
            1 => return rows_fixed::<1>(w, x, out),
            2 => return rows_fixed::<2>(w, x, out),
            3 => return rows_fixed::<3>(w, x, out),
            4 => return rows_fixed::<4>(w, x, out),
            5 => return rows_fixed::<5>(w, x, out),
            6 => return rows_fixed::<6>(w, x, out),
            7 => return rows_fixed::<7>(w, x, out),
            8 => return rows_fixed::<8>(w, x, out),
            _ => {}
        }
        let mut xs = Vec::with_capacity(x.len().div_ceil(4));
        for i in 0..x.len().div_ceil(4) {
            xs.push(x_vec(x, i));
        }
        let per_row = xs.len();
        let mut rows = w.chunks_exact(per_row);
        let mut outs = out.chunks_exact_mut(4);
        for o in &mut outs {
            let (Some(r0), Some(r1), Some(r2), Some(r3)) =
                (rows.next(), rows.next(), rows.next(), rows.next())
            else {
                unreachable!("four rows per four outputs")
            };
            let [a, b, c, d] = block::<4>([r0, r1, r2, r3], &xs);
            sum4(a, b, c, d, o);
        }
        for (o, row) in outs.into_remainder().iter_mut().zip(rows) {
            let [a] = block::<1>([row], &xs);
            *o = sum1(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(Path::parse("portable").unwrap(), Path::Portable);
        assert_eq!(Path::parse("").unwrap(), Path::best());
        assert_eq!(Path::parse("auto").unwrap(), Path::best());
        assert_eq!(Path::parse("avx2").is_ok(), Path::Avx2.available());
        let e = Path::parse("sse").unwrap_err().to_string();
        assert!(e.contains("'sse'"), "{e}");
    }

    #[test]
    fn small_rows_by_hand() {
        // rows of 5 words: one AVX2 vector and a scalar tail; 6 rows: a block of 4 and 2 more
        let x: Vec<u64> = vec![0, u64::MAX, 0xF0F0, 1 << 63, 7];
        let mut w = Vec::new();
        let mut want = Vec::new();
        for r in 0..6u64 {
            let row: Vec<u64> = x.iter().map(|&v| v ^ ((1u64 << r) - 1)).collect();
            want.push(5 * r as u32);
            w.extend(row);
        }
        for path in Path::all_available() {
            let mut out = vec![0u32; 6];
            xor_popcount_rows(path, &w, &x, &mut out);
            assert_eq!(out, want, "{path:?}");
            assert_eq!(PackedRows::new(w.clone(), 5, path).path(), path);
        }
    }
}
