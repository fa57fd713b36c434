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
