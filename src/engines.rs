//! The engine program: instantiates a design's rust-hdl engines with their exact widths.
//!
//! Engine widths are const generics, so `bnnforge build` writes a small Rust program
//! whose `main` is a table of `bnnforge_hdl::compile::emit` functions instantiated for the
//! design's widths (see `hdl/src/compile/emit.rs`), compiles it with rustc, and runs it to write
//! one Verilog file per engine. This is FINN's approach with HLS templates, with rustc in
//! place of Vivado HLS.
//!
//! Only the table is compiled: it links against the very `bnnforge_hdl` library (and
//! its rust-hdl dependencies) that cargo built for this executable, found in the `deps/`
//! folder beside it (`target/release/deps` after `cargo build --release`,
//! `target/debug/deps` under `cargo test`). Cargo itself cannot reuse those artifacts
//! for a crate outside the workspace (a path dependency's artifact hash depends on the
//! workspace root), and a workspace member would need the same feature unification as
//! both `cargo build` and `cargo test`; rustc with `--extern` needs neither.
//!
//! The program depends only on the widths and that library, not on weights or
//! thresholds (it reads those from the network at run time), so the executable is
//! cached by the hash of both: networks with the same layer widths share it, and a
//! rebuild compiles nothing. Cache: `$BNNFORGE_ENGINE_CACHE` (default
//! `target/bnnforge-engines`), one `engines-<hash>/` per program, the least recently
//! used removed beyond [`KEEP`].

use bnnforge_hdl::compile::design::Design;
use bnnforge_hdl::compile::emit::rust_call;
use bnnforge_hdl::compile::top::GENERATED_HEADER;
use bnnforge_model::{Error, Result};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Engine programs kept in the cache (each ~10 MB).
pub const KEEP: usize = 16;

/// The engine program's source for `design`.
pub fn program(design: &Design) -> String {
    let mut s = format!(
        "{GENERATED_HEADER}\n// The engine program of bnnforge build: one emitter per engine.\n\
         fn main() {{\n    bnnforge_hdl::compile::emit::run(&[\n"
    );
    for (i, e) in design.engines.iter().enumerate() {
        s += &format!("        {}, // {i}: {}\n", rust_call(e), e.module);
    }
    s += "    ]);\n}\n";
    s
}

/// The library the engine program links: this executable's `deps/` folder and the
/// newest `libbnnforge_hdl-*.rlib` in it not newer than the executable (the one cargo
/// linked it with; `cargo build` and `cargo test` keep one per profile and feature set).
fn library() -> Result<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::new(format!("cannot locate the bnnforge executable: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let deps = if dir.ends_with("deps") {
        dir.to_path_buf()
    } else {
        dir.join("deps")
    };
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let built = modified(&exe).unwrap_or_else(SystemTime::now);
    let mut rlibs: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(&deps)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("libbnnforge_hdl-") && n.ends_with(".rlib")
        })
        .filter_map(|p| Some((modified(&p)?, p)))
        .collect();
    rlibs.sort();
    let pick = rlibs
        .iter()
        .rev()
        .find(|(t, _)| *t <= built)
        .or(rlibs.last())
        .map(|(_, p)| p.clone());
    match pick {
        Some(rlib) => Ok((deps, rlib)),
        None => Err(Error::new(format!(
            "bnnforge build compiles its engines against the bnnforge_hdl library cargo built \
             beside it, but {} holds none; run the bnnforge of a cargo target folder \
             (cargo run --release -- build ...)",
            deps.display()
        ))),
    }
}

fn cache_root(deps: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("BNNFORGE_ENGINE_CACHE") {
        return PathBuf::from(dir);
    }
    // deps = <target>/<profile>/deps
    match deps.parent().and_then(Path::parent) {
        Some(target) => target.join("bnnforge-engines"),
        None => deps.join("bnnforge-engines"),
    }
}

/// Removes all but the [`KEEP`] most recently used programs, and the cargo build
/// folders of earlier bnnforge versions (`target/`, `bnnforge-engines-*/`).
fn prune(root: &Path, legacy: bool) {
    let mut used: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if legacy && (name == "target" || name.starts_with("bnnforge-engines-")) {
            let _ = std::fs::remove_dir_all(&path);
        } else if name.starts_with("engines-") && entry.path().is_dir() {
            // a program still compiling (in another build) has no `engines` yet: its
            // folder's time, so that it counts as just used
            let t = std::fs::metadata(path.join("engines"))
                .or_else(|_| std::fs::metadata(&path))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            used.push((t, path));
        }
    }
    used.sort();
    let excess = used.len().saturating_sub(KEEP);
    for (t, path) in &used[..excess] {
        // never one used in the last minutes: concurrent builds may be running it
        if t.elapsed().map_or(false, |age| age < IN_USE) {
            continue;
        }
        let _ = std::fs::remove_dir_all(path);
    }
}

/// How recently used an engine program is kept beyond [`KEEP`] (another build may be
/// compiling or running it).
const IN_USE: std::time::Duration = std::time::Duration::from_secs(600);

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Error::new(format!("{}: cannot write: {e}", path.display())))
}

/// Compiles (or finds) the engine program for `design` and runs it: every engine's
/// Verilog into `out_dir`. Returns the seconds spent compiling and generating.
pub fn generate(design: &Design, model: &Path, out_dir: &Path) -> Result<(f64, f64)> {
    let (deps, rlib) = library()?;
    let src = program(design);
    let mut h = DefaultHasher::new();
    src.hash(&mut h);
    rlib.hash(&mut h);
    if let Ok(m) = std::fs::metadata(&rlib) {
        (m.len(), m.modified().ok()).hash(&mut h);
    }
    let root = cache_root(&deps);
    let dir = root.join(format!("engines-{:016x}", h.finish()));
    let exe = dir.join("engines");
    let t0 = std::time::Instant::now();
    if exe.is_file() {
        // most recently used: kept by `prune`
        if let Ok(f) = std::fs::File::options().append(true).open(&exe) {
            let _ = f.set_modified(SystemTime::now());
        }
    } else {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::new(format!("{}: cannot create: {e}", dir.display())))?;
        let main = dir.join("main.rs");
        write(&main, &src)?;
        // a private folder, its program renamed into place when complete: concurrent
        // builds of the same widths each compile and the last rename wins (rustc's
        // intermediate files are named after the crate, so they need folders of their own)
        let work = dir.join(format!("build.{}", std::process::id()));
        std::fs::create_dir_all(&work)
            .map_err(|e| Error::new(format!("{}: cannot create: {e}", work.display())))?;
        let tmp = work.join("engines");
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(&rustc)
            .args(["--edition", "2021", "--crate-type", "bin"])
            .args(["--crate-name", "bnnforge_engines", "--cap-lints", "allow"])
            // the emitters run once per build: compile the table fast, the library
            // code it calls is already optimised
            .args([
                "-C",
                "opt-level=0",
                "-C",
                "debuginfo=0",
                "-C",
                "strip=debuginfo",
            ])
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg("--extern")
            .arg(format!("bnnforge_hdl={}", rlib.display()))
            .arg(&main)
            .arg("-o")
            .arg(&tmp)
            .current_dir(&work)
            .output()
            .map_err(|e| {
                Error::new(format!(
                    "bnnforge build needs rustc to instantiate the engines: {e}"
                ))
            })?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&work);
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err
                .lines()
                .find(|l| l.starts_with("error"))
                .unwrap_or_else(|| err.lines().last().unwrap_or("no output"));
            return Err(Error::new(format!(
                "compiling the engine program {} failed: {first}",
                main.display()
            )));
        }
        let renamed = std::fs::rename(&tmp, &exe);
        let _ = std::fs::remove_dir_all(&work);
        renamed.map_err(|e| Error::new(format!("{}: cannot write: {e}", exe.display())))?;
        prune(&root, std::env::var_os("BNNFORGE_ENGINE_CACHE").is_none());
    }
    let compile = t0.elapsed().as_secs_f64();
    let folds = out_dir.join("folds.txt");
    let mut text: String = design
        .folds
        .iter()
        .map(|f| format!("{} {}\n", f.pe, f.simd))
        .collect();
    let spram = design.spram_engines();
    if !spram.is_empty() {
        let list: Vec<String> = spram.iter().map(|i| i.to_string()).collect();
        text += &format!("spram {}\n", list.join(" "));
    }
    std::fs::write(&folds, text)
        .map_err(|e| Error::new(format!("{}: cannot write: {e}", folds.display())))?;
    let t1 = std::time::Instant::now();
    let run = Command::new(&exe)
        .arg(model)
        .arg(&folds)
        .arg(out_dir)
        .output()
        .map_err(|e| Error::new(format!("{}: cannot run: {e}", exe.display())))?;
    let _ = std::fs::remove_file(&folds);
    if !run.status.success() {
        let err = String::from_utf8_lossy(&run.stderr);
        let line = err
            .lines()
            .find(|l| l.contains("panicked") || l.contains("assert"))
            .map(|l| l.to_string())
            .unwrap_or_else(|| err.lines().take(3).collect::<Vec<_>>().join(" "));
        let detail = err
            .lines()
            .skip_while(|l| !l.contains("panicked"))
            .nth(1)
            .unwrap_or("");
        return Err(Error::new(format!(
            "generating the engines failed (a bnnforge bug): {line} {detail}"
        )));
    }
    Ok((compile, t1.elapsed().as_secs_f64()))
}
