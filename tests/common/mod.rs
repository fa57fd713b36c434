//! What the integration tests share: where the repository, the shared data and the
//! binary are.

#![allow(dead_code)] // each test uses its part

use std::path::PathBuf;
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's shared data (BNN-PYNQ's and FINN's original files), beside the repo,
/// or `BNNFORGE_SHARED_DATA`.
pub fn shared_data() -> PathBuf {
    let p = std::env::var_os("BNNFORGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    assert!(
        p.join("bnn-pynq").is_dir() && p.join("finn-tfc").is_dir(),
        "{}: the shared data (bnn-pynq/, finn-tfc/) is missing; set BNNFORGE_SHARED_DATA",
        p.display()
    );
    p
}

pub fn bnnforge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bnnforge"))
}

/// The first `n` MNIST test images as `[n, 1, 28, 28]` u8 in `path`.
pub fn mnist_npy(n: usize, path: &std::path::Path) {
    use npyz::WriterBuilder;
    use std::io::Read;
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(repo().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap(),
    );
    let mut raw = vec![];
    gz.read_to_end(&mut raw).unwrap();
    let px = &raw[16..16 + n * 784];
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[n as u64, 1, 28, 28])
        .writer(std::fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(px.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// Changes word 0 of PE 0's weight ROM in the design's file `file`: its lowest bit, or
/// every bit of the word when `all`. The ROM's contents are packed runs (`localparam
/// [H:0] mem$0 = N'h…;` then a loop copying `mem$0[W*i +: W]` into word `i`), so word 0
/// is the low W bits of the first run. Returns what it changed.
pub fn break_weights(design: &std::path::Path, file: &str, all: bool) -> String {
    let path = design.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let rom = text.find("$wmem$0$rom(").expect("a weight ROM module");
    let lp = rom
        + text[rom..]
            .find("localparam [")
            .expect("packed ROM contents");
    let at = lp + text[lp..].find(" = ").unwrap() + " = ".len();
    let end = at + text[at..].find(';').unwrap();
    let (n, hex) = text[at..end].split_once("'h").expect("a sized hex literal");
    let n: usize = n.parse().unwrap();
    let w: usize = text[end..]
        .split_once("+: ")
        .and_then(|(_, r)| r.split(']').next()?.trim().parse().ok())
        .expect("the loop's word width");
    // hex digits, least significant first, padded to the literal's width
    let mut digits: Vec<u32> = hex.chars().rev().map(|c| c.to_digit(16).unwrap()).collect();
    digits.resize(n.div_ceil(4), 0);
    let flips = if all { w } else { 1 };
    for b in 0..flips {
        digits[b / 4] ^= 1 << (b % 4);
    }
    let broken: String = digits
        .iter()
        .rev()
        .map(|&d| char::from_digit(d, 16).unwrap())
        .collect();
    let word0 = |d: &str| d.chars().rev().take(w.div_ceil(4)).collect::<String>();
    let before = word0(hex);
    std::fs::write(
        &path,
        format!("{}{n}'h{broken}{}", &text[..at], &text[end..]),
    )
    .unwrap();
    format!(
        "{file}: {flips} bit(s) of weight word 0 flipped (low hex digits {} -> {})",
        before.chars().rev().collect::<String>(),
        word0(&broken).chars().rev().collect::<String>()
    )
}
