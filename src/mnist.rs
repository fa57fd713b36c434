//! MNIST's IDX files (images `idx3`, labels `idx1`), plain or gzip-compressed (detected
//! by the gzip magic bytes, not the file name). Every problem is a one-line error naming
//! the file.
//!
//! IDX: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
//! one big-endian u32 per dimension, then the values in row-major order.

use bnnforge_model::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Largest decompressed IDX file read (MNIST's training images are 47 MB).
const MAX_BYTES: u64 = 1 << 30;

/// A stack of 8-bit grey images, `rows × cols` each, laid end to end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

impl Images {
    /// The pixels of image `i`, row by row.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads an IDX file of images (3 dimensions: count, rows, cols).
pub fn read_images(path: &Path) -> Result<Images> {
    let (dims, data) = read_idx(path)?;
    if dims.len() != 3 {
        return Err(Error::new(format!(
            "an image file has 3 dimensions (count, rows, cols), this one has {}",
            dims.len()
        ))
        .in_file(path));
    }
    Ok(Images {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: data,
    })
}

/// Reads an IDX file of labels (1 dimension).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let (dims, data) = read_idx(path)?;
    if dims.len() != 1 {
        return Err(Error::new(format!(
            "a label file has 1 dimension, this one has {}",
            dims.len()
        ))
        .in_file(path));
    }
    Ok(data)
}

/// The dimensions and the unsigned-byte values of an IDX file.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let err = |m: String| Error::new(m).in_file(path);
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(err("is a directory, expected an IDX file".into()));
    }
    let raw = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| err(format!("broken gzip data: {e}")))?;
        if out.len() as u64 > MAX_BYTES {
            return Err(err(format!("decompresses to more than {MAX_BYTES} bytes")));
        }
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(err)
}

fn parse_idx(b: &[u8]) -> std::result::Result<(Vec<usize>, Vec<u8>), String> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err("not an IDX file (it must start with two zero bytes)".into());
    }
    if b[2] != 0x08 {
        return Err(format!(
            "IDX value type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
            b[2]
        ));
    }
    let nd = b[3] as usize;
    if nd == 0 {
        return Err("IDX file with no dimensions".into());
    }
    let head = 4 + 4 * nd;
    if b.len() < head {
        return Err(format!(
            "truncated IDX header: {} bytes, expected {head}",
            b.len()
        ));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes(b[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("IDX dimensions overflow")?;
    if b.len() - head != n {
        return Err(format!(
            "IDX dimensions {dims:?} need {n} values, the file holds {}",
            b.len() - head
        ));
    }
    Ok((dims, b[head..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn plain_and_gzip_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let plain = dir.path().join("a-idx3-ubyte");
        std::fs::write(&plain, &raw).unwrap();
        let gz = dir.path().join("b.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&raw).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let a = read_images(&plain).unwrap();
        assert_eq!(a, read_images(&gz).unwrap());
        assert_eq!((a.count, a.rows, a.cols), (2, 2, 3));
        assert_eq!(a.image(1), &[7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello".to_vec(), "not an IDX file"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "not supported"),
            (vec![0, 0, 8, 3, 0, 0], "truncated IDX header"),
            (idx(&[2, 2, 2], &[0; 7]), "need 8 values, the file holds 7"),
            (vec![0x1f, 0x8b, 1, 2, 3], "broken gzip data"),
            (idx(&[4], &[0; 4]), "3 dimensions"),
        ];
        for (bytes, want) in cases {
            std::fs::write(&p, &bytes).unwrap();
            let e = read_images(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.starts_with(&p.display().to_string()), "{e}");
            assert!(!e.contains('\n'));
        }
        let e = read_labels(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
