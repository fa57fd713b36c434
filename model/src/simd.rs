//! XOR-popcount of packed weight rows against one packed activation: the inner loop of
//! every binary layer of the model, on the portable path (`count_ones`, POPCNT), on
//! AVX2 or on AVX-512 (`vpopcntq` on 512-bit XORs, eight rows at a time), chosen at run
//! time.
//!
//! AVX2 has two kernels. Layouts of at least 256 rows (dense layers, wide convs) keep
//! their whole blocks of 256 rows transposed, one 256-bit vector per column holding
//! that bit of every row, and add up whole column vectors in bit-sliced counters with
//! a Harley-Seal carry-save adder tree, only over the columns of x's rarer bit value
//! (see `vertical`): about five logic instructions per 256 rows and column, where
//! counting row by row needs a popcount of each row's words. On a 1024×1024 dense
//! layer (Zen 4, one core) that kernel ran at about 3× the portable one where the
//! row-by-row kernel reached 1.9×. Other rows go row by row: `vpshufb` nibble-table
//! popcount after a carry-save adder, with POPCNT on the scalar unit alongside for the
//! last quarter of each row, or half of it on every other pair of 16-word rows.
//!
//! Every path returns the same integers for every input; `BNNFORGE_SIMD` forces one
//! (see [`Path::from_env`]).

use crate::{Error, Result};
use std::sync::OnceLock;

/// An implementation of [`xor_popcount_rows`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `u64::count_ones` (one POPCNT per word on x86-64-v2)
    Portable,
    /// bit-sliced sums of transposed blocks of 256 rows; for fewer rows, 256-bit
    /// `vpshufb` nibble lookups on most of each row, POPCNT on the rest at the same time
    /// (x86-64 with AVX2 only)
    Avx2,
    /// `vpopcntq` on 512-bit vectors (x86-64 with AVX-512F and AVX-512 VPOPCNTDQ only)
    Avx512,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Path::Portable => true,
            Path::Avx2 => avx2(),
            Path::Avx512 => avx512(),
        }
    }

    /// The fastest path this CPU has.
    pub fn best() -> Path {
        if avx512() {
            Path::Avx512
        } else if avx2() {
            Path::Avx2
        } else {
            Path::Portable
        }
    }

    /// Every path this CPU can run, portable first.
    pub fn all_available() -> Vec<Path> {
        [Path::Portable, Path::Avx2, Path::Avx512]
            .into_iter()
            .filter(|p| p.available())
            .collect()
    }

    /// The path `BNNFORGE_SIMD` asks for: unset, empty or `auto` is [`Path::best`];
    /// `portable`, `avx2` or `avx512` (an error when the CPU lacks it); anything else is
    /// an error.
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
            "avx512" if avx512() => Ok(Path::Avx512),
            "avx512" => Err(Error::new(
                "BNNFORGE_SIMD=avx512 but this CPU lacks AVX-512F or AVX-512 VPOPCNTDQ",
            )),
            other => Err(Error::new(format!(
                "BNNFORGE_SIMD must be auto, portable, avx2 or avx512, not '{other}'"
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
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("bmi1")
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vpopcntdq")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512() -> bool {
    false
}

/// Rows shorter than this stay in the portable layout on the AVX2 and AVX-512 paths.
pub const MIN_AVX2_WORDS: usize = 3;

/// 256 bits, aligned so that the AVX2 path reads whole blocks with aligned loads. The
/// AVX-512 path reads two blocks per unaligned 512-bit load: Zen 4 splits it into two
/// 256-bit halves, each then within one cache line, so 64-byte alignment buys nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct Block(pub [u64; 4]);

/// Weight rows of `L` packed words, laid out for one [`Path`]: plain words for the
/// portable path, rows padded with zero words to whole aligned [`Block`]s for AVX2 and
/// AVX-512 (the same layout), except that on AVX2 layouts of at least
/// [`VERTICAL_ROWS`] rows keep their whole blocks of 256 rows transposed.
#[derive(Clone, Debug)]
pub struct PackedRows {
    words: usize,
    rows: usize,
    layout: Layout,
}

#[derive(Clone, Debug)]
enum Layout {
    Words(Vec<u64>),
    /// with the path that reads them (AVX2 or AVX-512) and, for AVX2 rows of 16 words,
    /// the popcount of each row's words that go to POPCNT (see `avx2_impl::rows16`)
    Blocks(Vec<Block>, Path, Vec<u32>),
    /// AVX2 with at least [`VERTICAL_ROWS`] rows: whole blocks of 256 rows transposed,
    /// then the rows after the last whole block
    #[cfg(target_arch = "x86_64")]
    Vertical(vertical::Blocks, Box<PackedRows>),
}

/// AVX2 layouts of this many rows and more (of up to 1023 words) count their whole
/// blocks of 256 rows transposed, in bit-sliced form: on 256 rows or more it measured
/// faster than the row-by-row kernel at every row length tried, from one word up.
pub const VERTICAL_ROWS: usize = 256;

impl PackedRows {
    /// Rows of `words` words each, laid end to end in `w`, for `path` (the portable
    /// layout when the CPU lacks `path`).
    pub fn new(w: Vec<u64>, words: usize, path: Path) -> PackedRows {
        let rows = w.len().checked_div(words).unwrap_or(0);
        assert_eq!(rows * words, w.len(), "whole rows");
        #[cfg(target_arch = "x86_64")]
        if path == Path::Avx2
            && path.available()
            && rows >= VERTICAL_ROWS
            && (1..=vertical::MAX_WORDS).contains(&words)
        {
            let v = vertical::Blocks::new(&w, words);
            let tail = PackedRows::new(w[v.rows() * words..].to_vec(), words, path);
            return PackedRows {
                words,
                rows,
                layout: Layout::Vertical(v, Box::new(tail)),
            };
        }
        // rows of one or two words fill less than a vector, and POPCNT measured faster there
        let vector = matches!(path, Path::Avx2 | Path::Avx512) && path.available();
        let layout = if vector && words >= MIN_AVX2_WORDS {
            let per_row = words.div_ceil(4);
            let mut blocks = vec![Block::default(); rows * per_row];
            for (row, dst) in w.chunks_exact(words).zip(blocks.chunks_exact_mut(per_row)) {
                for (i, &v) in row.iter().enumerate() {
                    dst[i / 4].0[i % 4] = v;
                }
            }
            #[cfg(target_arch = "x86_64")]
            let pw = if path == Path::Avx2 && words == 16 {
                w.chunks_exact(words)
                    .enumerate()
                    .map(|(i, r)| avx2_impl::scalar_pop16(r, i))
                    .collect()
            } else {
                Vec::new()
            };
            #[cfg(not(target_arch = "x86_64"))]
            let pw = Vec::new();
            Layout::Blocks(blocks, path, pw)
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
            Layout::Blocks(_, p, _) => p,
            #[cfg(target_arch = "x86_64")]
            Layout::Vertical(..) => Path::Avx2,
        }
    }

    /// `out[r] = Σ_i popcount(row_r[i] XOR x[i])` for every row; `x` has `L` words and
    /// `out` one entry per row.
    pub fn xor_popcount(&self, x: &[u64], out: &mut [u32]) {
        assert_eq!(out.len(), self.rows, "one output per row");
        self.xor_popcount_from(x, 0, out)
    }

    /// [`PackedRows::xor_popcount`] of rows `first..first + out.len()` only.
    pub fn xor_popcount_from(&self, x: &[u64], first: usize, out: &mut [u32]) {
        assert_eq!(x.len(), self.words, "x of L words");
        assert!(first + out.len() <= self.rows, "rows in range");
        match &self.layout {
            Layout::Words(w) => {
                if self.words == 0 {
                    out.fill(0);
                } else {
                    rows_portable(&w[first * self.words..], x, out);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Layout::Blocks(b, path, pw) => {
                let per_row = self.words.div_ceil(4);
                let b = &b[first * per_row..(first + out.len()) * per_row];
                if *path == Path::Avx512 {
                    // SAFETY: as below, with AVX-512F and VPOPCNTDQ, which `avx512()`
                    // confirmed before this layout was built for `Path::Avx512`.
                    unsafe { avx512_impl::rows_avx512(b, x, out) }
                } else {
                    // SAFETY: `rows_avx2` is safe code compiled with AVX2 enabled; calling
                    // it is sound exactly when the CPU has AVX2, and `Blocks` is only
                    // built for `Path::Avx2` after `avx2()` confirmed it.
                    unsafe { avx2_impl::rows_avx2(b, pw, first, x, out) }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Layout::Vertical(blocks, tail) => {
                let full = blocks.rows();
                let (v, t) = out.split_at_mut(full.saturating_sub(first).min(out.len()));
                if !v.is_empty() {
                    blocks.with_list(x, |l| blocks.count_rows(l, first, v));
                }
                if !t.is_empty() {
                    tail.xor_popcount_from(x, first + v.len() - full, t);
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Layout::Blocks(..) => unreachable!("vector layout on a CPU without vectors"),
        }
    }

    /// [`PackedRows::xor_popcount`] in chunks of up to 256 rows, each handed to `f`
    /// with its first row: no buffer for the counts of every row, and the work on `x`
    /// that all rows share done once.
    pub fn xor_popcount_chunks(&self, x: &[u64], mut f: impl FnMut(usize, &[u32])) {
        assert_eq!(x.len(), self.words, "x of L words");
        match &self.layout {
            #[cfg(target_arch = "x86_64")]
            Layout::Vertical(blocks, tail) => {
                let mut d = vertical::Counts([0; vertical::ROWS]);
                blocks.with_list(x, |l| {
                    for b in 0..blocks.rows() / vertical::ROWS {
                        blocks.count(l, b, &mut d);
                        f(b * vertical::ROWS, &d.0);
                    }
                });
                // (fewer than 256 rows)
                if tail.rows > 0 {
                    let d = &mut d.0[..tail.rows];
                    tail.xor_popcount(x, d);
                    f(blocks.rows(), d);
                }
            }
            _ => {
                let mut d = [0u32; 256];
                for first in (0..self.rows).step_by(d.len()) {
                    let d = &mut d[..(self.rows - first).min(256)];
                    self.xor_popcount_from(x, first, d);
                    f(first, d);
                }
            }
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
    //! Each row is counted in two parts that run side by side: its first `nv` blocks
    //! on the vector unit and its last words with POPCNT on the scalar unit, which the
    //! vector code alone leaves idle (see [`split`]). Four rows at a time share each
    //! vector of `x` and one transposing sum.
    //!
    //! Vector part: a carry-save adder turns three vectors into `ones` and `twos`, with
    //! popcount(v0) + popcount(v1) + popcount(v2) = popcount(ones) + 2·popcount(twos);
    //! Muła's nibble lookup (`vpshufb` as a 16-entry table) then counts them. The
    //! counts of the low nibbles add up in the bytes of `lo`; the high nibbles are
    //! looked up as `c − count` and add up in `hi`, so one `vpsadbw(lo, hi)` (Σ|hi − lo|
    //! over 8 bytes, with hi ≥ lo in every byte) yields Σc − count per 64-bit lane, and
    //! `lo` and `hi` never need adding together.
    //!
    //! Scalar part: POPCNT in inline assembly, as the compiler turned `count_ones` of
    //! four rows in AVX2 code into nibble lookups on the already busy vector unit.

    use super::Block;
    use std::arch::x86_64::*;

    /// Blocks of a row of `words` (≤ 32) words counted on the vector unit, and the
    /// words left to POPCNT. POPCNT takes four instructions a word against under two
    /// for the vector code, but on the integer unit, which the vector code leaves idle:
    /// on rows of 16 words (Zen 4), 3 blocks and 4 words ran at 7.0 G words/s, all 4
    /// blocks at 6.5 and 2 blocks and 8 words at 5.4. Rows of up to 4 words are one
    /// zero-padded block.
    pub const fn split(words: usize) -> (usize, usize) {
        if words <= 4 {
            return (1, 0);
        }
        let mut nv = (3 * words + 8) / 16;
        if nv == 0 {
            nv = 1;
        }
        if nv > words / 4 {
            nv = words / 4;
        }
        (nv, words - 4 * nv)
    }

    /// `hi` receives `C1 − count` for the high nibble of `ones` and `C2 − 2·count` for
    /// that of `twos`: at least C1 + C2 − 12 = 12 per group of three vectors, as much as
    /// `lo` can receive (4 + 2·4). A lone vector adds `C1 − count` (≥ 4 ≥ its `lo`).
    const C1: i8 = 8;
    const C2: i8 = 16;
    /// Every byte of `hi` stays under 256 on the longest vector part (32 words).
    const _: () = assert!(MAX_NV / 3 * (C1 + C2) as usize + MAX_NV % 3 * C1 as usize <= 255);
    const MAX_NV: usize = split(32).0;

    /// Σc over the 32 bytes of a row's vector part: `vpsadbw` lanes add up to this
    /// minus the count.
    const fn bias(nv: usize) -> u32 {
        32 * ((C1 + C2) as u32 * (nv / 3) as u32 + C1 as u32 * (nv % 3) as u32)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn vec(b: &Block) -> __m256i {
        let s = &b.0;
        _mm256_set_epi64x(s[3] as i64, s[2] as i64, s[1] as i64, s[0] as i64)
    }

    /// Up to four words as a zero-padded block.
    fn block(c: &[u64]) -> Block {
        let mut b = Block::default();
        b.0[..c.len()].copy_from_slice(c);
        b
    }

    /// Words `4i..4i+4` of `x` as a vector, zero past its end like the padded weight rows.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn x_vec(x: &[u64], i: usize) -> __m256i {
        vec(&block(&x[(4 * i).min(x.len())..x.len().min(4 * i + 4)]))
    }

    /// `c + k·popcount(n)` for each nibble n, in both 128-bit lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn table(c: i8, k: i8) -> __m256i {
        let t: [i8; 32] = std::array::from_fn(|i| c + k * (i % 16).count_ones() as i8);
        // SAFETY: 32 bytes, an unaligned load
        unsafe { _mm256_loadu_si256(t.as_ptr() as *const __m256i) }
    }

    #[derive(Clone, Copy)]
    struct Tables {
        nibble: __m256i,
        /// count and 2·count, for the low nibbles (into `lo`)
        one: __m256i,
        two: __m256i,
        /// C1 − count and C2 − 2·count, for the high nibbles (into `hi`)
        one_neg: __m256i,
        two_neg: __m256i,
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn tables() -> Tables {
        Tables {
            nibble: _mm256_set1_epi8(0x0f),
            one: table(0, 1),
            two: table(0, 2),
            one_neg: table(C1, -1),
            two_neg: table(C2, -2),
        }
    }

    /// Adds three vectors to the byte counts `lo`, `hi` (see the module documentation).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn group(
        t: &Tables,
        lo: __m256i,
        hi: __m256i,
        v0: __m256i,
        v1: __m256i,
        v2: __m256i,
    ) -> (__m256i, __m256i) {
        let u = _mm256_xor_si256(v0, v1);
        let ones = _mm256_xor_si256(u, v2);
        let twos = _mm256_or_si256(_mm256_and_si256(v0, v1), _mm256_and_si256(u, v2));
        let m = t.nibble;
        let lo1 = _mm256_shuffle_epi8(t.one, _mm256_and_si256(ones, m));
        let lo2 = _mm256_shuffle_epi8(t.two, _mm256_and_si256(twos, m));
        let hi_ones = _mm256_and_si256(_mm256_srli_epi16::<4>(ones), m);
        let hi_twos = _mm256_and_si256(_mm256_srli_epi16::<4>(twos), m);
        let hi1 = _mm256_shuffle_epi8(t.one_neg, hi_ones);
        let hi2 = _mm256_shuffle_epi8(t.two_neg, hi_twos);
        (
            _mm256_add_epi8(lo, _mm256_add_epi8(lo1, lo2)),
            _mm256_add_epi8(hi, _mm256_add_epi8(hi1, hi2)),
        )
    }

    /// Adds one vector to the byte counts.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn single(t: &Tables, lo: __m256i, hi: __m256i, v: __m256i) -> (__m256i, __m256i) {
        let m = t.nibble;
        let l = _mm256_shuffle_epi8(t.one, _mm256_and_si256(v, m));
        let h = _mm256_shuffle_epi8(t.one_neg, _mm256_and_si256(_mm256_srli_epi16::<4>(v), m));
        (_mm256_add_epi8(lo, l), _mm256_add_epi8(hi, h))
    }

    /// For each row of `$rows` (an array of `$r` block slices), `bias(nv) − popcount` of its
    /// first `nv = $xv.len()` blocks XOR `$xv`, as four u64 lanes to add up. A macro:
    /// as a function the compiler kept it out of line, behind a call that spills.
    macro_rules! vector_part {
        ($t:expr, $rows:expr, $xv:expr, $r:literal) => {{
            let (t, rows, xv): (&Tables, [&[Block]; $r], &[__m256i]) = ($t, $rows, $xv);
            let mut lo = [_mm256_setzero_si256(); $r];
            let mut hi = lo;
            let groups = xv.len() / 3;
            for g in 0..groups {
                let i = 3 * g;
                for r in 0..rows.len() {
                    let v0 = _mm256_xor_si256(vec(&rows[r][i]), xv[i]);
                    let v1 = _mm256_xor_si256(vec(&rows[r][i + 1]), xv[i + 1]);
                    let v2 = _mm256_xor_si256(vec(&rows[r][i + 2]), xv[i + 2]);
                    (lo[r], hi[r]) = group(t, lo[r], hi[r], v0, v1, v2);
                }
            }
            for i in 3 * groups..xv.len() {
                for r in 0..rows.len() {
                    let v = _mm256_xor_si256(vec(&rows[r][i]), xv[i]);
                    (lo[r], hi[r]) = single(t, lo[r], hi[r], v);
                }
            }
            let mut sad = lo;
            for r in 0..rows.len() {
                sad[r] = _mm256_sad_epu8(lo[r], hi[r]);
            }
            sad
        }};
    }

    /// Σ popcount(w[i] XOR x[i]) of one block on the scalar unit.
    #[inline]
    fn popcnt_block(w: &Block, x: &[u64; 4]) -> u64 {
        let n: u64;
        // SAFETY: reads the 32 bytes of `w` through a shared reference; POPCNT is part
        // of every x86-64 CPU with AVX2 (and of this crate's x86-64-v2 baseline).
        unsafe {
            std::arch::asm!(
                "mov {n}, qword ptr [{w}]",
                "xor {n}, {x0}",
                "popcnt {n}, {n}",
                "mov {t}, qword ptr [{w} + 8]",
                "xor {t}, {x1}",
                "popcnt {t}, {t}",
                "add {n}, {t}",
                "mov {t}, qword ptr [{w} + 16]",
                "xor {t}, {x2}",
                "popcnt {t}, {t}",
                "add {n}, {t}",
                "mov {t}, qword ptr [{w} + 24]",
                "xor {t}, {x3}",
                "popcnt {t}, {t}",
                "add {n}, {t}",
                w = in(reg) w,
                x0 = in(reg) x[0],
                x1 = in(reg) x[1],
                x2 = in(reg) x[2],
                x3 = in(reg) x[3],
                n = out(reg) n,
                t = out(reg) _,
                options(pure, readonly, nostack),
            );
        }
        n
    }

    /// popcount(w XOR x) of one word on the scalar unit.
    #[inline]
    fn popcnt_word(w: u64, x: u64) -> u64 {
        let n: u64;
        // SAFETY: register operands only; POPCNT as in `popcnt_block`.
        unsafe {
            std::arch::asm!(
                "xor {n}, {x}",
                "popcnt {n}, {n}",
                x = in(reg) x,
                n = inout(reg) w => n,
                options(pure, nomem, nostack),
            );
        }
        n
    }

    /// Σ popcount(w XOR x) over the `$ns` words of a row after its vector part (its
    /// blocks from `$nv` on) against the words `$xs` of `x`. A
    /// macro for the same reason as `vector_part`.
    macro_rules! scalar_part {
        ($row:expr, $nv:expr, $xs:expr, $ns:expr) => {{
            let (row, xs, ns): (&[Block], &[u64], usize) = (&$row[$nv..], $xs, $ns);
            let mut n = 0;
            for b in 0..ns / 4 {
                let x: &[u64; 4] = xs[4 * b..4 * b + 4].try_into().expect("4 words");
                n += popcnt_block(&row[b], x);
            }
            for j in ns / 4 * 4..ns {
                n += popcnt_word(row[j / 4].0[j % 4], xs[j]);
            }
            n as u32
        }};
    }

    /// `k − Σ` of the u64 lanes (each sum under 2^32) of each of four vectors, plus
    /// `s`, into `o` (added to it with `add`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish4(k: u32, sads: [__m256i; 4], s: [u32; 4], add: bool, o: &mut [u32]) {
        // a and b share u64 lanes as (low, high) u32 halves, c and d likewise
        let ab = _mm256_or_si256(sads[0], _mm256_slli_epi64::<32>(sads[1]));
        let cd = _mm256_or_si256(sads[2], _mm256_slli_epi64::<32>(sads[3]));
        // [a0+a1, b0+b1, c0+c1, d0+d1 | a2+a3, b2+b3, c2+c3, d2+d3] as u32
        let abcd = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
        let sum = _mm_add_epi32(
            _mm256_castsi256_si128(abcd),
            _mm256_extracti128_si256::<1>(abcd),
        );
        let s = _mm_setr_epi32(s[0] as i32, s[1] as i32, s[2] as i32, s[3] as i32);
        let r = _mm_add_epi32(_mm_sub_epi32(_mm_set1_epi32(k as i32), sum), s);
        let o: &mut [u32; 4] = (&mut o[..4]).try_into().expect("4 outputs");
        let r = if add {
            _mm_add_epi32(
                r,
                _mm_setr_epi32(o[0] as i32, o[1] as i32, o[2] as i32, o[3] as i32),
            )
        } else {
            r
        };
        // SAFETY: `o` is four u32s, 16 writable bytes; the store is unaligned.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), r) };
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish1(k: u32, sad: __m256i) -> u32 {
        let h = _mm_add_epi64(
            _mm256_castsi256_si128(sad),
            _mm256_extracti128_si256::<1>(sad),
        );
        k - (_mm_extract_epi64::<0>(h) + _mm_extract_epi64::<1>(h)) as u32
    }

    /// Row r is `w[r·stride..][..nv + ⌈ns/4⌉]` (`stride` is the row length with
    /// `WHOLE`): its first `nv = xv.len()` blocks on the vector unit against `xv`, then
    /// `ns = xs.len()` words on the scalar unit against `xs`. `out[r]` is the count
    /// (plus `out[r]` with `add`). Arrays, so that every length is a constant.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rows_split<const WHOLE: bool, V: AsRef<[__m256i]>, S: AsRef<[u64]>>(
        w: &[Block],
        stride: usize,
        xv: &V,
        xs: &S,
        add: bool,
        out: &mut [u32],
    ) {
        let t = tables();
        let (xv, xs) = (xv.as_ref(), xs.as_ref());
        let (nv, ns) = (xv.len(), xs.len());
        let stride = if WHOLE { nv + ns.div_ceil(4) } else { stride };
        let add = add && !WHOLE;
        let k = bias(nv);
        let len = nv + ns.div_ceil(4);
        let mut groups = w.chunks(4 * stride);
        let mut outs = out.chunks_exact_mut(4);
        // (outputs first: a `zip` that ends takes one more item from its first iterator)
        for (o, g) in (&mut outs).zip(&mut groups) {
            let g = &g[..3 * stride + len];
            let (r0, r1) = (&g[..len], &g[stride..stride + len]);
            let (r2, r3) = (&g[2 * stride..2 * stride + len], &g[3 * stride..]);
            let sads = vector_part!(&t, [r0, r1, r2, r3], xv, 4);
            // (no closures over AVX2 code here: they are compiled without AVX2)
            let s = [
                scalar_part!(r0, nv, xs, ns),
                scalar_part!(r1, nv, xs, ns),
                scalar_part!(r2, nv, xs, ns),
                scalar_part!(r3, nv, xs, ns),
            ];
            finish4(k, sads, s, add, o);
        }
        let rest = groups.flat_map(|g| g.chunks(stride));
        for (o, r) in outs.into_remainder().iter_mut().zip(rest) {
            let r = &r[..len];
            let [sad] = vector_part!(&t, [r], xv, 1);
            let n = finish1(k, sad) + scalar_part!(r, nv, xs, ns);
            *o = if add { *o + n } else { n };
        }
    }

    /// Rows of `x.len()` words split as [`split`] says, `stride` blocks apart. Not
    /// inlined: thirty copies in one function exhausted the compiler's inlining budget
    /// and turned the helpers into calls.
    #[inline(never)]
    #[target_feature(enable = "avx2")]
    fn rows_fixed<const NV: usize, const NS: usize>(
        w: &[Block],
        stride: usize,
        x: &[u64],
        add: bool,
        out: &mut [u32],
    ) {
        let mut xv = [_mm256_setzero_si256(); NV];
        for (i, v) in xv.iter_mut().enumerate() {
            *v = x_vec(x, i);
        }
        let xs: [u64; NS] = x[x.len() - NS..].try_into().expect("NS words");
        if stride == NV + NS.div_ceil(4) && !add {
            rows_split::<true, _, _>(w, stride, &xv, &xs, false, out)
        } else {
            rows_split::<false, _, _>(w, stride, &xv, &xs, add, out)
        }
    }

    /// Words per column chunk of rows longer than 32 words: the fastest fixed split.
    const CHUNK: usize = 16;

    /// [`rows_fixed`] for rows of `x.len()` words, up to 32.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn fixed(w: &[Block], stride: usize, x: &[u64], add: bool, out: &mut [u32]) {
        macro_rules! fixed {
            ($($l:literal)*) => {
                match x.len() {
                    $($l => rows_fixed::<{ split($l).0 }, { split($l).1 }>(w, stride, x, add, out),)*
                    l => unreachable!("rows of {l} words"),
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
    }

    /// The first scalar word of row `index` of 16 words: [`rows16`] counts rows 0 and
    /// 1 of every 4 as 3 blocks and 4 words, rows 2 and 3 as 2 blocks and 8 words.
    const fn first_scalar16(index: usize) -> usize {
        if index % 4 < 2 {
            12
        } else {
            8
        }
    }

    /// popcount of the words of row `index`, `row` (16 words), that [`rows16`] counts
    /// with ANDN and POPCNT: it takes Σ popcount(w AND NOT x) over them, three
    /// instructions a word (ANDN reads the weight word from memory, POPCNT, ADD) where
    /// XOR takes four (a load, XOR, POPCNT, ADD), and popcount(w XOR x) =
    /// 2·popcount(w AND NOT x) + popcount(x) − popcount(w). (ANDN, of BMI1, is part of
    /// every CPU that `avx2()` accepts.)
    pub fn scalar_pop16(row: &[u64], index: usize) -> u32 {
        row[first_scalar16(index)..]
            .iter()
            .map(|w| w.count_ones())
            .sum()
    }

    /// Rows of 16 words (a dense row of 1024 bits), four at a time, as one loop of
    /// assembly: rows 0 and 1 as [`rows_split`] for `nv = 3`, `ns = 4`, rows 2 and 3
    /// for `nv = 2`, `ns = 8` (two lone vectors, no carry-save adder), each row's
    /// ANDN-POPCNT words spread through its vector code.
    ///
    /// Why the mix (measured on Zen 4, 1024 rows, one core, cycles per 4 rows): the
    /// vector unit retires about three of these instructions a cycle (each row's
    /// nibble lookups and shifts share two pipes), so with 3 blocks a row the vector
    /// code alone took 32 cycles and the whole loop 34 (the compiled [`rows_split`]
    /// 34.5); the scalar words take about one cycle each, so 2 blocks and 8 words a row
    /// made the scalar unit the slower one (35). Half and half: 29 cycles of vector
    /// code alone, 25 of scalar, 32.5 together, where the two units share the six
    /// instructions a cycle that Zen 4 issues. The compiler's version of this code put
    /// all the scalar code after all the vector code and spilled vectors once ANDN took
    /// its registers; spreading the scalar words measured about 5% faster than not.
    ///
    /// `w` holds `out.len()` (a multiple of 4) rows of 4 blocks, the first of them a
    /// row 0 of 4, and `pw` their [`scalar_pop16`].
    #[target_feature(enable = "avx2")]
    fn rows16(w: &[Block], pw: &[u32], x: &[u64; 16], out: &mut [u32]) {
        assert!(
            out.len() % 4 == 0 && !out.is_empty(),
            "whole groups of 4 rows"
        );
        assert!(
            w.len() >= 4 * out.len() && pw.len() == out.len(),
            "4 blocks a row"
        );
        let t = tables();
        let (x0, x1, x2) = (x_vec(x, 0), x_vec(x, 1), x_vec(x, 2));
        let xpop = |from: usize| x[from..].iter().map(|v| v.count_ones()).sum::<u32>();
        let (k3, k2) = ((bias(3) + xpop(12)) as i32, (bias(2) + xpop(8)) as i32);
        let k = _mm256_setr_epi32(k3, k3, k2, k2, 0, 0, 0, 0);
        // the loop reads each row's popcount from its output, which it then overwrites
        out.copy_from_slice(pw);
        let range = out.as_mut_ptr_range();
        // SAFETY: reads `out.len()` rows of 128 bytes from `w` and reads and writes the
        // 4·out.len() bytes of `out`, in bounds by the asserts above; ANDN and POPCNT as
        // in `scalar_pop16`, AVX2 enabled by this function's caller.
        unsafe {
            std::arch::asm!(
                "2:",
                "andn {a}, {s4}, qword ptr [{w} + 96]",
                "vpxor {v0}, {x0}, ymmword ptr [{w} + 0]",
                "vpxor {v1}, {x1}, ymmword ptr [{w} + 32]",
                "popcnt {a}, {a}",
                "vpxor {v2}, {x2}, ymmword ptr [{w} + 64]",
                "vpxor {v3}, {v0}, {v1}",
                "andn {b}, {s5}, qword ptr [{w} + 104]",
                "vpand {v0}, {v0}, {v1}",
                "vpxor {v1}, {v3}, {v2}",
                "popcnt {b}, {b}",
                "vpand {v3}, {v3}, {v2}",
                "add {a}, {b}",
                "vpor {v0}, {v0}, {v3}",
                "vpsrlw {v2}, {v1}, 4",
                "andn {b}, {s6}, qword ptr [{w} + 112]",
                "vpand {v1}, {v1}, {m}",
                "vpand {v2}, {v2}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v1}, {t1}, {v1}",
                "vpshufb {v2}, {t1n}, {v2}",
                "add {a}, {b}",
                "vpsrlw {v3}, {v0}, 4",
                "andn {b}, {s7}, qword ptr [{w} + 120]",
                "vpand {v0}, {v0}, {m}",
                "vpand {v3}, {v3}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v0}, {t2}, {v0}",
                "vpshufb {v3}, {t2n}, {v3}",
                "add {a}, {b}",
                "vpaddb {v1}, {v1}, {v0}",
                "vpaddb {v2}, {v2}, {v3}",
                "vmovd {c:x}, {a:e}",
                "vpsadbw {v0}, {v1}, {v2}",
                "andn {a}, {s4}, qword ptr [{w} + 224]",
                "vpxor {v1}, {x0}, ymmword ptr [{w} + 128]",
                "vpxor {v2}, {x1}, ymmword ptr [{w} + 160]",
                "popcnt {a}, {a}",
                "vpxor {v3}, {x2}, ymmword ptr [{w} + 192]",
                "vpxor {v4}, {v1}, {v2}",
                "andn {b}, {s5}, qword ptr [{w} + 232]",
                "vpand {v1}, {v1}, {v2}",
                "vpxor {v2}, {v4}, {v3}",
                "popcnt {b}, {b}",
                "vpand {v4}, {v4}, {v3}",
                "add {a}, {b}",
                "vpor {v1}, {v1}, {v4}",
                "vpsrlw {v3}, {v2}, 4",
                "andn {b}, {s6}, qword ptr [{w} + 240]",
                "vpand {v2}, {v2}, {m}",
                "vpand {v3}, {v3}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v2}, {t1}, {v2}",
                "vpshufb {v3}, {t1n}, {v3}",
                "add {a}, {b}",
                "vpsrlw {v4}, {v1}, 4",
                "andn {b}, {s7}, qword ptr [{w} + 248]",
                "vpand {v1}, {v1}, {m}",
                "vpand {v4}, {v4}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v1}, {t2}, {v1}",
                "vpshufb {v4}, {t2n}, {v4}",
                "add {a}, {b}",
                "vpaddb {v2}, {v2}, {v1}",
                "vpaddb {v3}, {v3}, {v4}",
                "vpinsrd {c:x}, {c:x}, {a:e}, 1",
                "vpsadbw {v1}, {v2}, {v3}",
                "vpsllq {v1}, {v1}, 32",
                "vpor {v0}, {v0}, {v1}",
                "andn {a}, {s0}, qword ptr [{w} + 320]",
                "vpxor {v1}, {x0}, ymmword ptr [{w} + 256]",
                "popcnt {a}, {a}",
                "vpxor {v2}, {x1}, ymmword ptr [{w} + 288]",
                "andn {b}, {s1}, qword ptr [{w} + 328]",
                "popcnt {b}, {b}",
                "vpsrlw {v3}, {v1}, 4",
                "add {a}, {b}",
                "vpsrlw {v4}, {v2}, 4",
                "andn {b}, {s2}, qword ptr [{w} + 336]",
                "popcnt {b}, {b}",
                "vpand {v1}, {v1}, {m}",
                "add {a}, {b}",
                "andn {b}, {s3}, qword ptr [{w} + 344]",
                "vpand {v2}, {v2}, {m}",
                "popcnt {b}, {b}",
                "vpand {v3}, {v3}, {m}",
                "add {a}, {b}",
                "andn {b}, {s4}, qword ptr [{w} + 352]",
                "vpand {v4}, {v4}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v1}, {t1}, {v1}",
                "add {a}, {b}",
                "andn {b}, {s5}, qword ptr [{w} + 360]",
                "vpshufb {v2}, {t1}, {v2}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpshufb {v3}, {t1n}, {v3}",
                "andn {b}, {s6}, qword ptr [{w} + 368]",
                "vpshufb {v4}, {t1n}, {v4}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpaddb {v1}, {v1}, {v2}",
                "andn {b}, {s7}, qword ptr [{w} + 376]",
                "vpaddb {v3}, {v3}, {v4}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpsadbw {v1}, {v1}, {v3}",
                "vpinsrd {c:x}, {c:x}, {a:e}, 2",
                "andn {a}, {s0}, qword ptr [{w} + 448]",
                "vpxor {v2}, {x0}, ymmword ptr [{w} + 384]",
                "popcnt {a}, {a}",
                "vpxor {v3}, {x1}, ymmword ptr [{w} + 416]",
                "andn {b}, {s1}, qword ptr [{w} + 456]",
                "popcnt {b}, {b}",
                "vpsrlw {v4}, {v2}, 4",
                "add {a}, {b}",
                "vpsrlw {v5}, {v3}, 4",
                "andn {b}, {s2}, qword ptr [{w} + 464]",
                "popcnt {b}, {b}",
                "vpand {v2}, {v2}, {m}",
                "add {a}, {b}",
                "andn {b}, {s3}, qword ptr [{w} + 472]",
                "vpand {v3}, {v3}, {m}",
                "popcnt {b}, {b}",
                "vpand {v4}, {v4}, {m}",
                "add {a}, {b}",
                "andn {b}, {s4}, qword ptr [{w} + 480]",
                "vpand {v5}, {v5}, {m}",
                "popcnt {b}, {b}",
                "vpshufb {v2}, {t1}, {v2}",
                "add {a}, {b}",
                "andn {b}, {s5}, qword ptr [{w} + 488]",
                "vpshufb {v3}, {t1}, {v3}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpshufb {v4}, {t1n}, {v4}",
                "andn {b}, {s6}, qword ptr [{w} + 496]",
                "vpshufb {v5}, {t1n}, {v5}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpaddb {v2}, {v2}, {v3}",
                "andn {b}, {s7}, qword ptr [{w} + 504]",
                "vpaddb {v4}, {v4}, {v5}",
                "popcnt {b}, {b}",
                "add {a}, {b}",
                "vpsadbw {v2}, {v2}, {v4}",
                "vpinsrd {c:x}, {c:x}, {a:e}, 3",
                "vpsllq {v2}, {v2}, 32",
                "vpor {v1}, {v1}, {v2}",
                "vpunpcklqdq {v2}, {v0}, {v1}",
                "vpunpckhqdq {v0}, {v0}, {v1}",
                "vpaddd {v2}, {v2}, {v0}",
                "vextracti128 {v3:x}, {v2}, 1",
                "vpaddd {v2:x}, {v2:x}, {v3:x}",
                "vpaddd {c:x}, {c:x}, {c:x}",
                "vpsubd {c:x}, {c:x}, {v2:x}",
                "vpaddd {c:x}, {c:x}, {k:x}",
                "vpsubd {c:x}, {c:x}, xmmword ptr [{out}]",
                "vmovdqu xmmword ptr [{out}], {c:x}",
                "add {w}, 512",
                "add {out}, 16",
                "cmp {out}, {end}",
                "jne 2b",

                w = inout(reg) w.as_ptr() => _,
                out = inout(reg) range.start => _,
                end = in(reg) range.end,
                s0 = in(reg) x[8],
                s1 = in(reg) x[9],
                s2 = in(reg) x[10],
                s3 = in(reg) x[11],
                s4 = in(reg) x[12],
                s5 = in(reg) x[13],
                s6 = in(reg) x[14],
                s7 = in(reg) x[15],
                a = out(reg) _,
                b = out(reg) _,
                x0 = in(ymm_reg) x0,
                x1 = in(ymm_reg) x1,
                x2 = in(ymm_reg) x2,
                m = in(ymm_reg) t.nibble,
                t1 = in(ymm_reg) t.one,
                t2 = in(ymm_reg) t.two,
                t1n = in(ymm_reg) t.one_neg,
                t2n = in(ymm_reg) t.two_neg,
                k = in(ymm_reg) k,
                v0 = out(ymm_reg) _,
                v1 = out(ymm_reg) _,
                v2 = out(ymm_reg) _,
                v3 = out(ymm_reg) _,
                v4 = out(ymm_reg) _,
                v5 = out(ymm_reg) _,
                c = out(ymm_reg) _,
                options(nostack),
            );
        }
    }

    /// Row `index` of 16 words alone, split as [`rows16`] splits it.
    #[target_feature(enable = "avx2")]
    fn row16(w: &[Block], index: usize, x: &[u64], out: &mut u32) {
        let (w, out) = (&w[..4], std::slice::from_mut(out));
        if first_scalar16(index) == 12 {
            rows_fixed::<3, 4>(w, 4, x, false, out)
        } else {
            rows_fixed::<2, 8>(w, 4, x, false, out)
        }
    }

    /// See [`super::PackedRows::xor_popcount`]; `w` holds rows of `⌈x.len()/4⌉` blocks,
    /// the first of them row `first` of the layout, and for rows of 16 words `pw` the
    /// [`scalar_pop16`] of every row of the layout. Rows of 16 words go to [`rows16`];
    /// rows longer than 32 words go in column chunks of [`CHUNK`] words, each added to
    /// the counts of the ones before.
    #[target_feature(enable = "avx2")]
    pub fn rows_avx2(w: &[Block], pw: &[u32], first: usize, x: &[u64], out: &mut [u32]) {
        let stride = x.len().div_ceil(4);
        if out.is_empty() {
            return;
        }
        if let Ok(x16) = <&[u64; 16]>::try_from(x) {
            let pw = &pw[first..first + out.len()];
            // rows before the first row 0 of 4 and after the last whole 4, one by one
            let head = ((4 - first % 4) % 4).min(out.len());
            let n = (out.len() - head) / 4 * 4;
            for r in (0..head).chain(head + n..out.len()) {
                row16(&w[4 * r..], first + r, x, &mut out[r]);
            }
            if n > 0 {
                let rows = head..head + n;
                rows16(&w[4 * head..], &pw[rows.clone()], x16, &mut out[rows]);
            }
            return;
        }
        if x.len() <= 32 {
            return fixed(w, stride, x, false, out);
        }
        for (c, xc) in x.chunks(CHUNK).enumerate() {
            fixed(&w[c * CHUNK / 4..], stride, xc, c > 0, out);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vertical {
    //! Weight rows counted 256 at a time in bit-sliced form. A block of 256 rows is
    //! stored transposed: for each column (bit position) of the rows, one 256-bit
    //! vector of that bit of every row, then one zero vector. With x's n1 one bits,
    //! S0 the sum of the column vectors where x is 0 and S1 where it is 1, and T the
    //! popcount of each row (stored with the layout),
    //! popcount(w XOR x) = S0 + n1 − S1 = T + n1 − 2·S1 = 2·S0 + n1 − T,
    //! so each block adds up only the columns of x's rarer bit value, at most half of
    //! them, whole vectors at a time with no work per row.
    //!
    //! The sum runs in bit-sliced counters, planes of 256 lanes (plane k holds bit k of
    //! every row's sum), through a Harley-Seal tree of carry-save adders (a full adder
    //! on whole vectors: five instructions take three vectors of one weight to one of
    //! that weight and one of twice it): 64 column vectors cost 63 adders and leave a
    //! vector of weight 64, which a ripple carry adds to the planes above. The running
    //! plane enters each adder last, one instruction before its new value, so the
    //! adders of a level do not wait on each other. The column offsets come from a list
    //! built once per `x` (a table of each byte's set bits) and read by every block.
    //!
    //! At the end of a block, 8×8 bit transposes of the planes (three rounds of masked
    //! shifts and XORs on whole vectors) give each row's sum as bytes, in an order of
    //! the rows that the lanes are laid out for (see [`lane`]); u16 arithmetic with the
    //! row popcounts then gives the counts.
    //!
    //! Measured on a 1024×1024 dense layer (Zen 4, one core, the kernel alone): summing
    //! S0 and S1 both, all 1024 columns a block, ran at 1.5× the portable kernel,
    //! slower than the row-by-row AVX2 kernel (1.85×); the rarer half alone at 2.5×;
    //! the bit transposes in place of a shift, mask and OR per plane and row byte and
    //! aligned stores, 3×. Trees of 32 or 128 columns in place of 64 measured the
    //! same. Building the list takes about 7% of the kernel's time.

    use super::Block;
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Rows per transposed block: one lane of a 256-bit vector each.
    pub const ROWS: usize = 256;

    /// The longest rows: counts up to 64·1023 fit the u16 lanes of `block`.
    pub const MAX_WORDS: usize = 1023;

    /// The lane of row `r` (< 256) in the column vectors: lane 8s + b (bit b of byte
    /// s) holds row 32b + s, so that one shift of a whole plane lines up bit b of its
    /// 32 bytes, rows 32b..32b+32 in order, at any other bit position.
    const fn lane(r: usize) -> usize {
        8 * (r % 32) + r / 32
    }

    /// Whole blocks of 256 rows of `words` words, transposed.
    #[derive(Clone, Debug)]
    pub struct Blocks {
        words: usize,
        /// per block, 64·words column vectors and a zero vector
        cols: Vec<Block>,
        /// per block, the popcount of each row as u16 lanes, in the order of [`u16_row`]
        pops: Vec<Block>,
        rows: usize,
    }

    /// The row (of 256) of u16 lane e (< 16) of vector v (< 16) of the sums as
    /// `block` unpacks them from the transposed planes.
    const fn u16_row(v: usize, e: usize) -> usize {
        let (b, q) = (v / 2, v % 2);
        32 * b + 8 * q + e % 8 + 16 * (e / 8)
    }

    /// The counts of one block of rows, aligned for whole-vector stores.
    #[repr(C, align(32))]
    pub struct Counts(pub [u32; ROWS]);

    impl Blocks {
        /// The first `w.len() / (256·words)` whole blocks of rows of `words` words
        /// (1..=[`MAX_WORDS`]) of `w`. Only on a CPU with AVX2, which every method
        /// then takes for granted.
        pub fn new(w: &[u64], words: usize) -> Blocks {
            assert!(super::avx2(), "transposed blocks need AVX2");
            assert!((1..=MAX_WORDS).contains(&words), "counts fit 16 bits");
            let stride = 64 * words + 1;
            let blocks = w.len() / (ROWS * words);
            let mut cols = vec![Block::default(); blocks * stride];
            let mut pops = vec![Block::default(); blocks * 16];
            for (b, rows) in w.chunks_exact(ROWS * words).enumerate() {
                let cols = &mut cols[b * stride..][..stride];
                for (r, row) in rows.chunks_exact(words).enumerate() {
                    let l = lane(r);
                    for (i, &v) in row.iter().enumerate() {
                        let mut v = v;
                        while v != 0 {
                            let c = 64 * i + v.trailing_zeros() as usize;
                            cols[c].0[l / 64] |= 1 << (l % 64);
                            v &= v - 1;
                        }
                    }
                }
                for (v, block) in pops[b * 16..][..16].iter_mut().enumerate() {
                    for e in 0..16 {
                        let row = &rows[u16_row(v, e) * words..][..words];
                        let pop: u32 = row.iter().map(|v| v.count_ones()).sum();
                        block.0[e / 4] |= (pop as u64) << (16 * (e % 4));
                    }
                }
            }
            Blocks {
                words,
                cols,
                pops,
                rows: blocks * ROWS,
            }
        }

        pub fn rows(&self) -> usize {
            self.rows
        }

        /// Calls `f` with the [`List`] of `x`.
        pub fn with_list<R>(&self, x: &[u64], f: impl FnOnce(&List) -> R) -> R {
            // SAFETY: `with_list_avx2` is safe code compiled with AVX2, which the CPU
            // has: `new` asserted it before building `self`.
            unsafe { with_list_avx2(x, f) }
        }

        /// popcount(row XOR x) of block `b`'s rows into `out`, with `l` from `x`.
        pub fn count(&self, l: &List, b: usize, out: &mut Counts) {
            // SAFETY: as in `with_list`
            unsafe { self.count_avx2(l, b, out) }
        }

        #[target_feature(enable = "avx2")]
        fn count_avx2(&self, l: &List, b: usize, out: &mut Counts) {
            assert_eq!(l.words, self.words, "a list for rows of this length");
            let stride = 64 * self.words + 1;
            let cols = &self.cols[b * stride..][..stride];
            let pops: &[Block; 16] = self.pops[b * 16..][..16].try_into().expect("16");
            // planes for sums up to 32·words (half the columns)
            match 32 * self.words {
                0..=255 => block::<8>(cols, pops, l, out),
                256..=1023 => block::<10>(cols, pops, l, out),
                _ => block::<16>(cols, pops, l, out),
            }
        }

        /// Rows `first..first + out.len()`, with `l` from `x`.
        pub fn count_rows(&self, l: &List, first: usize, out: &mut [u32]) {
            let mut d = Counts([0; ROWS]);
            let mut done = 0;
            while done < out.len() {
                let row = first + done;
                let (b, skip) = (row / ROWS, row % ROWS);
                let n = (ROWS - skip).min(out.len() - done);
                self.count(l, b, &mut d);
                out[done..done + n].copy_from_slice(&d.0[skip..skip + n]);
                done += n;
            }
        }
    }

    /// `32·p` for the position p of each set bit of each byte, packed as bytes from
    /// the lowest: the byte offsets of those columns from the byte's first column.
    static SET_BITS: [u64; 256] = {
        let mut t = [0u64; 256];
        let mut b = 0;
        while b < 256 {
            let (mut n, mut i) = (0, 0);
            while i < 8 {
                if b >> i & 1 == 1 {
                    t[b] |= (32 * i as u64) << (8 * n);
                    n += 1;
                }
                i += 1;
            }
            b += 1;
        }
        t
    };

    /// The byte offsets of the columns of `x`'s rarer bit value (ones on a tie),
    /// padded with the zero column to a multiple of 8.
    pub struct List<'a> {
        offsets: &'a [u32],
        ones: bool,
        n1: u32,
        words: usize,
    }

    /// Calls `f` with the [`List`] of `x`, in a buffer on the stack for `x` of up to
    /// 32 words (a dense layer of 2048 inputs).
    #[target_feature(enable = "avx2")]
    fn with_list_avx2<R>(x: &[u64], f: impl FnOnce(&List) -> R) -> R {
        let need = List::len_for(x.len());
        // (uninitialised: zeroing the buffer took about as long as filling it)
        let mut stack = [const { MaybeUninit::<u32>::uninit() }; List::len_for(32)];
        let mut heap = Vec::new();
        let buf = if need <= stack.len() {
            &mut stack[..]
        } else {
            heap.reserve_exact(need);
            heap.spare_capacity_mut()
        };
        f(&List::new(x, buf))
    }

    impl<'a> List<'a> {
        /// The buffer length [`List::new`] needs for `x` of `words` words: half the
        /// columns, 8 of padding and 8 for the last whole-vector store.
        const fn len_for(words: usize) -> usize {
            32 * words + 16
        }

        /// The list for `x` in `buf`.
        #[target_feature(enable = "avx2")]
        fn new(x: &[u64], buf: &'a mut [MaybeUninit<u32>]) -> List<'a> {
            let columns = 64 * x.len();
            let buf = &mut buf[..List::len_for(x.len())];
            let n1: u32 = x.iter().map(|v| v.count_ones()).sum();
            let ones = 2 * n1 as usize <= columns;
            let flip = if ones { 0 } else { u64::MAX };
            let mut n = 0;
            for (i, &v) in x.iter().enumerate() {
                let v = v ^ flip;
                let mut base = _mm256_set1_epi32(32 * 64 * i as i32);
                for j in 0..8 {
                    let byte = (v >> (8 * j)) as u8;
                    let off =
                        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(SET_BITS[byte as usize] as i64));
                    // (n + 8 ≤ 32·words + 8: at most half the bits of x are selected)
                    let dst = &mut buf[n..n + 8];
                    // SAFETY: 32 writable bytes, stored unaligned
                    unsafe {
                        _mm256_storeu_si256(dst.as_mut_ptr().cast(), _mm256_add_epi32(off, base))
                    };
                    n += byte.count_ones() as usize;
                    base = _mm256_add_epi32(base, _mm256_set1_epi32(32 * 8));
                }
            }
            let len = n.div_ceil(8) * 8;
            for e in &mut buf[n..len] {
                e.write(32 * columns as u32);
            }
            // SAFETY: entries 0..n were stored above (each store covers the entries up
            // to the next one's start) and n..len just now; MaybeUninit<u32> has the
            // layout of u32.
            let offsets = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u32>(), len) };
            List {
                offsets,
                ones,
                n1,
                words: x.len(),
            }
        }
    }

    /// Three vectors of one weight in, (carry of twice the weight, sum) out; `c`, the
    /// running plane, one instruction from the sum.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn csa(a: __m256i, b: __m256i, c: __m256i) -> (__m256i, __m256i) {
        let u = _mm256_xor_si256(a, b);
        let h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
        (h, _mm256_xor_si256(u, c))
    }

    /// The column at byte offset `off` of `cols`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn col(cols: &[Block], off: u32) -> __m256i {
        debug_assert!((off as usize) < 32 * cols.len());
        // SAFETY: `cols` is one block of columns of the row length of the `List` the
        // offset comes from (`Blocks::count` asserts it), all of whose offsets lie in
        // it; a `Block` is 32 bytes, aligned to 32. (Bounds checks cost more than the
        // column's arithmetic here: the compiler moved those of a whole tree ahead of
        // it and spilled the offsets.)
        unsafe { _mm256_load_si256(cols.as_ptr().cast::<u8>().add(off as usize).cast()) }
    }

    /// The columns at offsets `$i[$o..$o + 2^($k+1)]` added into planes 0..=$k of
    /// `$p`, as the carry of weight 2^($k+1) they leave. A macro: as functions, the
    /// compiler kept some levels out of line and the planes in memory.
    macro_rules! tree {
        ($p:ident, $c:ident, $i:ident, $o:expr, 0) => {{
            let (h, l) = csa(col($c, $i[$o]), col($c, $i[$o + 1]), $p[0]);
            $p[0] = l;
            h
        }};
        ($p:ident, $c:ident, $i:ident, $o:expr, $k:tt, $h:tt, $n:literal) => {{
            let a = tree!($p, $c, $i, $o, $h);
            let b = tree!($p, $c, $i, $o + $n, $h);
            let (h, l) = csa(a, b, $p[$k]);
            $p[$k] = l;
            h
        }};
        ($p:ident, $c:ident, $i:ident, $o:expr, 1) => {
            tree!($p, $c, $i, $o, 1, 0, 2)
        };
        ($p:ident, $c:ident, $i:ident, $o:expr, 2) => {
            tree!($p, $c, $i, $o, 2, 1, 4)
        };
        ($p:ident, $c:ident, $i:ident, $o:expr, 3) => {
            tree!($p, $c, $i, $o, 3, 2, 8)
        };
        ($p:ident, $c:ident, $i:ident, $o:expr, 4) => {
            tree!($p, $c, $i, $o, 4, 3, 16)
        };
        ($p:ident, $c:ident, $i:ident, $o:expr, 5) => {
            tree!($p, $c, $i, $o, 5, 4, 32)
        };
    }

    /// Adds `c` of weight 2^F to the planes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn ripple<const F: usize, const P: usize>(p: &mut [__m256i; P], mut c: __m256i) {
        for k in F..P {
            let t = p[k];
            p[k] = _mm256_xor_si256(t, c);
            c = _mm256_and_si256(t, c);
        }
    }

    /// The planes of the sum of the columns at `list` (a multiple of 8 long).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sum<const P: usize>(cols: &[Block], list: &[u32]) -> [__m256i; P] {
        let mut p = [_mm256_setzero_si256(); P];
        let mut big = list.chunks_exact(64);
        for i in &mut big {
            let i: &[u32; 64] = i.try_into().expect("64 columns");
            let c = tree!(p, cols, i, 0, 5);
            ripple::<6, P>(&mut p, c);
        }
        for i in big.remainder().chunks_exact(8) {
            let i: &[u32; 8] = i.try_into().expect("8 columns");
            let c = tree!(p, cols, i, 0, 2);
            ripple::<3, P>(&mut p, c);
        }
        p
    }

    /// Swaps bit p + S of every byte of each `v[k]` (k without bit S) with bit p of
    /// `v[k + S]` (p without bit S), M the mask of the bits p.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn swap<const S: i32>(v: &mut [__m256i; 8], m: i8) {
        let m = _mm256_set1_epi8(m);
        for k in (0..8).filter(|k| k & S == 0) {
            let (a, b) = (v[k as usize], v[(k + S) as usize]);
            // (16-bit shifts: the mask drops the bits that cross a byte)
            let t = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi16::<S>(a), b), m);
            v[(k + S) as usize] = _mm256_xor_si256(b, t);
            v[k as usize] = _mm256_xor_si256(a, _mm256_slli_epi16::<S>(t));
        }
    }

    /// The 8×8 bit transpose of each byte position: bit b of byte s of `v[k]` becomes
    /// bit k of byte s of vector b.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose8(mut v: [__m256i; 8]) -> [__m256i; 8] {
        swap::<1>(&mut v, 0x55);
        swap::<2>(&mut v, 0x33);
        swap::<4>(&mut v, 0x0f);
        v
    }

    /// popcount(row XOR x) of the 256 rows of one block, `cols`, of popcounts `pops`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn block<const P: usize>(cols: &[Block], pops: &[Block; 16], l: &List, out: &mut Counts) {
        let s = sum::<P>(cols, l.offsets);
        // bit b of byte s of plane k is bit k of the sum of row 32b + s (see `lane`):
        // transposed, byte s of lo[b] and hi[b] are the low and high byte of that sum
        let plane = |k: usize| if k < P { s[k] } else { _mm256_setzero_si256() };
        let lo = transpose8(std::array::from_fn(plane));
        let hi = if P > 8 {
            transpose8(std::array::from_fn(|k| plane(8 + k)))
        } else {
            [_mm256_setzero_si256(); 8]
        };
        // popcount = T + n1 − 2·S1 or 2·S0 + n1 − T, in u16 lanes
        let n1 = _mm256_set1_epi16(l.n1 as i16);
        let p = out.0.as_mut_ptr().cast::<__m256i>();
        for b in 0..8 {
            for q in 0..2 {
                let s = if q == 0 {
                    _mm256_unpacklo_epi8(lo[b], hi[b])
                } else {
                    _mm256_unpackhi_epi8(lo[b], hi[b])
                };
                // SAFETY: a `Block` is 32 bytes, aligned to 32
                let t = unsafe { _mm256_load_si256((&pops[2 * b + q] as *const Block).cast()) };
                let s2 = _mm256_add_epi16(s, s);
                let d = if l.ones {
                    _mm256_sub_epi16(_mm256_add_epi16(t, n1), s2)
                } else {
                    _mm256_add_epi16(_mm256_sub_epi16(n1, t), s2)
                };
                // u16 lanes 0..8 are rows 32b + 8q + 0..8, lanes 8..16 rows 32b + 16 + 8q + 0..8
                let (r0, r1) = (32 * b + 8 * q, 32 * b + 16 + 8 * q);
                // SAFETY: `out` is 256 u32s aligned to 32; r0 and r1 are multiples of 8
                // below 256, so each store covers 32 aligned bytes in it
                unsafe {
                    _mm256_store_si256(
                        p.add(r0 / 8),
                        _mm256_cvtepu16_epi32(_mm256_castsi256_si128(d)),
                    );
                    _mm256_store_si256(
                        p.add(r1 / 8),
                        _mm256_cvtepu16_epi32(_mm256_extracti128_si256::<1>(d)),
                    );
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_impl {
    //! Each row is a run of 512-bit vectors of eight words, the last one a masked load
    //! when the row length is not a multiple of eight (masked-out lanes read as zero and
    //! cannot fault), XORed with the same vectors of `x` and counted by `vpopcntq` into
    //! u64 lanes. Eight rows at a time share each vector of `x`, and one transposing sum
    //! turns their eight accumulators into eight counts at once, where a horizontal sum
    //! per row would cost about as much as counting a 16-word row.

    use super::Block;
    use std::arch::x86_64::*;

    /// Per-lane popcount sums of `R` rows `stride` words apart from `w`, each XOR `x`.
    ///
    /// # Safety
    /// `w + r·stride + i` for every row `r < R` and word `i < x.len()` must be readable.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn counts<const R: usize>(w: *const u64, stride: usize, x: &[u64]) -> [__m512i; R] {
        let xp = x.as_ptr().cast::<i64>();
        let w = w.cast::<i64>();
        let mut acc = [_mm512_setzero_si512(); R];
        let full = x.len() / 8;
        for k in 0..full {
            // SAFETY: words 8k..8k+8 < x.len() of `x` and of each row (the caller's promise)
            unsafe {
                let xv = _mm512_loadu_epi64(xp.add(8 * k));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_loadu_epi64(w.add(r * stride + 8 * k));
                    *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(v, xv)));
                }
            }
        }
        let tail = x.len() % 8;
        if tail != 0 {
            let m: __mmask8 = (1u8 << tail) - 1;
            // SAFETY: only the `tail` words the mask selects are read, all in bounds
            unsafe {
                let xv = _mm512_maskz_loadu_epi64(m, xp.add(8 * full));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_maskz_loadu_epi64(m, w.add(r * stride + 8 * full));
                    *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(v, xv)));
                }
            }
        }
        acc
    }

    /// The sums of the u64 lanes of eight vectors (each sum under 2^32), as eight u32.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sum8(a: [__m512i; 8]) -> __m256i {
        // rows 2i and 2i+1 share u64 lanes as (low, high) u32 halves
        let p0 = _mm512_or_si512(a[0], _mm512_slli_epi64::<32>(a[1]));
        let p1 = _mm512_or_si512(a[2], _mm512_slli_epi64::<32>(a[3]));
        let p2 = _mm512_or_si512(a[4], _mm512_slli_epi64::<32>(a[5]));
        let p3 = _mm512_or_si512(a[6], _mm512_slli_epi64::<32>(a[7]));
        // each 128-bit lane: rows 0..4 (q0) or 4..8 (q1), summed over its two u64 lanes
        let q0 = _mm512_add_epi32(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
        let q1 = _mm512_add_epi32(_mm512_unpacklo_epi64(p2, p3), _mm512_unpackhi_epi64(p2, p3));
        // 128-bit lanes [q0 0+1, q0 2+3, q1 0+1, q1 2+3]
        let r = _mm512_add_epi32(
            _mm512_shuffle_i64x2::<0b10_00_10_00>(q0, q1),
            _mm512_shuffle_i64x2::<0b11_01_11_01>(q0, q1),
        );
        // low 256 bits: [rows 0..4, rows 4..8]
        let s = _mm512_add_epi32(
            _mm512_shuffle_i64x2::<0b00_00_10_00>(r, r),
            _mm512_shuffle_i64x2::<0b00_00_11_01>(r, r),
        );
        _mm512_castsi512_si256(s)
    }

    /// See [`super::PackedRows::xor_popcount`]; `w` holds rows of `⌈x.len()/4⌉` blocks.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub fn rows_avx512(w: &[Block], x: &[u64], out: &mut [u32]) {
        let stride = 4 * x.len().div_ceil(4);
        assert!(
            4 * w.len() >= out.len() * stride,
            "a row of blocks per output"
        );
        let base = w.as_ptr().cast::<u64>();
        let mut groups = out.chunks_exact_mut(8);
        let mut row = 0;
        for o in &mut groups {
            // SAFETY: rows `row..row + 8` lie in `w` (asserted above), x.len() ≤ stride
            // words each; `o` is eight u32s, 32 writable bytes, stored unaligned.
            unsafe {
                let acc = counts::<8>(base.add(row * stride), stride, x);
                _mm256_storeu_si256(o.as_mut_ptr().cast(), sum8(acc));
            }
            row += 8;
        }
        for o in groups.into_remainder() {
            // SAFETY: row `row` lies in `w`, as above
            let [acc] = unsafe { counts::<1>(base.add(row * stride), stride, x) };
            *o = _mm512_reduce_add_epi64(acc) as u32;
            row += 1;
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
        assert_eq!(Path::parse("avx512").is_ok(), Path::Avx512.available());
        assert!(Path::best().available());
        if Path::Avx512.available() {
            assert_eq!(Path::best(), Path::Avx512);
        }
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
