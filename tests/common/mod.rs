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

/// Changes word 0 of PE 0's weight memory in the design's file `file`: its lowest bit,
/// or every bit of the word when `all`. The memory is one ROM (`$wmem$0$rom`) or banks
/// of consecutive words (`$wmem$0$banks$K`: word 0 of every bank is changed when `all`,
/// of bank 0 otherwise); its contents are packed runs
/// (`localparam [H:0] mem$0 = N'h…;` then a loop copying `mem$0[W*i +: W]` into word
/// `i`), so word 0 is the low W bits of each memory's first run. Returns what it changed.
pub fn break_weights(design: &std::path::Path, file: &str, all: bool) -> String {
    let path = design.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let module_at = |t: &str, name: &str| {
        t.find(&format!("{name}("))
            .filter(|&i| t[..i].ends_with(|c: char| c != ' '))
    };
    let mut done = Vec::new();
    if module_at(&text, "$wmem$0$rom").is_some() {
        let at = module_at(&text, "$wmem$0$rom").unwrap();
        done.push(flip_low_bits(
            &mut text,
            at,
            if all { usize::MAX } else { 1 },
        ));
    } else {
        // banks split the words by address: word 0 of every bank, all its bits if `all`
        let mut k = 0;
        while let Some(at) = module_at(&text, &format!("$wmem$0$banks${k}")) {
            done.push(flip_low_bits(
                &mut text,
                at,
                if all { usize::MAX } else { 1 },
            ));
            k += 1;
            if !all {
                break;
            }
        }
    }
    assert!(!done.is_empty(), "no weight memory of PE 0 in {file}");
    std::fs::write(&path, text).unwrap();
    format!("{file}: weight word 0: {}", done.join(", "))
}

/// Flips the low `count` bits (at most the word width) of word 0 of the first packed
/// run after `from` in `text`; says which hex digits changed.
fn flip_low_bits(text: &mut String, from: usize, count: usize) -> String {
    let lp = from
        + text[from..]
            .find("localparam [")
            .expect("packed memory contents");
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
    let low = |d: &[u32]| {
        d[..w.div_ceil(4)]
            .iter()
            .rev()
            .map(|&x| char::from_digit(x, 16).unwrap())
            .collect::<String>()
    };
    let before = low(&digits);
    for b in 0..count.min(w) {
        digits[b / 4] ^= 1 << (b % 4);
    }
    let after = low(&digits);
    let broken: String = digits
        .iter()
        .rev()
        .map(|&d| char::from_digit(d, 16).unwrap())
        .collect();
    text.replace_range(at..end, &format!("{n}'h{broken}"));
    format!("{before} -> {after}")
}
