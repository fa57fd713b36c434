//! `bnnforge bench` and `BNNFORGE_SIMD`: each popcount path the CPU has is measured and
//! compared with the portable one; `portable` measures it alone; a bad value is one line
//! on stderr and exit 2.

use bnnforge_model::simd::Path;
use std::process::Command;

fn bench(simd: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bnnforge"))
        .args(["bench", "--seconds", "0.05"])
        .env("BNNFORGE_SIMD", simd)
        .output()
        .expect("run bnnforge")
}

/// The measurement lines of one layer and thread count, by path name.
fn lines<'a>(out: &'a str, layer: &str, threads: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.contains(layer) && l.contains(threads))
        .collect()
}

#[test]
fn bench_reports_every_path_and_the_ratio() {
    let o = bench("auto");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let paths = Path::all_available();
    for layer in ["dense 1024x1024", "conv 3x3 64->64 @32x32"] {
        let ls = lines(&out, layer, "1 thread ");
        assert_eq!(ls.len(), paths.len(), "{out}");
        for (l, p) in ls.iter().zip(&paths) {
            assert!(l.contains(p.name()), "{l}");
            assert!(l.contains("G binary MACs/s"), "{l}");
            // every path but the portable one is compared with it
            assert_eq!(l.contains("x portable"), *p != Path::Portable, "{l}");
        }
    }
    let o = bench("portable");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("popcount paths: portable)"), "{out}");
    assert!(!out.contains("avx2 "), "{out}");
    assert!(!out.contains("avx512 "), "{out}");
}

#[test]
fn bad_simd_value_exits_2_with_one_line() {
    let o = bench("sse9");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("BNNFORGE_SIMD") && err.contains("'sse9'"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    for path in [Path::Avx2, Path::Avx512] {
        if path.available() {
            println!("{} available: cannot check its refusal here", path.name());
        } else {
            let o = bench(path.name());
            assert_eq!(o.status.code(), Some(2), "{}", path.name());
        }
    }
}
