//! Verilate a design, compile it with the C-ABI shim into a shared library, cache it.

use crate::{io_err, Error, Result};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bumped whenever the shim, the compile flags or the cache layout change: it is part of
/// every cache key, so old entries are simply never hit again.
pub const HARNESS_VERSION: u32 = 2;

/// Version of the C ABI between [`crate::Sim`] and the generated shim.
pub(crate) const ABI_VERSION: u32 = 1;

/// The C++ class prefix given to Verilator (`--prefix`), independent of the top's name.
const PREFIX: &str = "Vdut";
const LIB_NAME: &str = "libdut.so";
const META_NAME: &str = "meta.txt";

/// Waveform support compiled into the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trace {
    /// No tracing (fastest model).
    None,
    /// Value change dump (`--trace`).
    Vcd,
    /// Fast signal trace (`--trace-fst`), compressed; needs zlib.
    Fst,
}

impl Trace {
    fn code(self) -> u32 {
        match self {
            Trace::None => 0,
            Trace::Vcd => 1,
            Trace::Fst => 2,
        }
    }
}

/// Which top-level ports the design has, and so which shim wraps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ports {
    /// The nine accelerator ports of the spec (`clk, rst, s_axis_*, m_axis_*`), driven by
    /// [`crate::Sim`].
    Accelerator,
    /// A board core (`clk, rst, uart_rx, uart_tx, led_activity, led_error`), driven by
    /// [`crate::BoardSim`]; the port widths of the config are not used.
    Board,
}

/// What to build. Construct with [`BuildConfig::new`], adjust with the builder methods or the
/// public fields, then call [`BuildConfig::build`].
#[derive(Clone, Debug)]
pub struct BuildConfig {
    /// Verilog source files (their contents and file names are hashed; files pulled in with
    /// `` `include `` are not: change `verilator_args` or the top file to invalidate).
    pub verilog: Vec<PathBuf>,
    /// Top module name.
    pub top: String,
    /// Width of `s_axis_tdata` (lanes · bits).
    pub in_width: u32,
    /// Width of `m_axis_tdata` (bits).
    pub out_width: u32,
    /// The top's port set.
    pub ports: Ports,
    /// Waveform support.
    pub trace: Trace,
    /// Cache root; see [`default_cache_dir`].
    pub cache_dir: PathBuf,
    /// Optimisation flag for the model's hot C++ (`-O2` by default).
    pub opt: String,
    /// Extra arguments for verilator (e.g. `-GLANES=8`, `-Wall`).
    pub verilator_args: Vec<String>,
    /// The verilator executable.
    pub verilator: PathBuf,
    /// The C++ compiler.
    pub cxx: PathBuf,
    /// Parallel compile jobs.
    pub jobs: usize,
}

/// A built (or cached) simulation library.
#[derive(Clone, Debug)]
pub struct Model {
    /// The shared library to load with [`crate::Sim::new`].
    pub so_path: PathBuf,
    /// Its cache directory (holds `build.log`, `shim.cpp`).
    pub dir: PathBuf,
    pub top: String,
    pub in_width: u32,
    pub out_width: u32,
    pub ports: Ports,
    pub trace: Trace,
    /// True when the library came from the cache (no tool was run).
    pub cache_hit: bool,
    /// Wall time of [`BuildConfig::build`].
    pub build_time: Duration,
    /// Verilator's `%Warning` lines (the build does not fail on lint warnings).
    pub warnings: Vec<String>,
}

/// The default cache root: `$BNNFORGE_VERILATOR_CACHE`, else `$CARGO_TARGET_DIR/verilator-cache`,
/// else `verilator-cache` in the cargo target directory that holds the running executable
/// (found by its `CACHEDIR.TAG`), else a folder in the system temp directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BNNFORGE_VERILATOR_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        let d = if d.is_relative() {
            std::env::current_dir().map(|c| c.join(&d)).unwrap_or(d)
        } else {
            d
        };
        return d.join("verilator-cache");
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join("CACHEDIR.TAG").is_file() {
                return dir.join("verilator-cache");
            }
        }
    }
    std::env::temp_dir().join("bnnforge-verilator-cache")
}

impl BuildConfig {
    /// A configuration with the defaults: no trace, `-O2`, [`default_cache_dir`], `verilator`
    /// and `g++` from `PATH`.
    pub fn new<P: AsRef<Path>>(verilog: &[P], top: &str, in_width: u32, out_width: u32) -> Self {
        BuildConfig {
            verilog: verilog.iter().map(|p| p.as_ref().to_path_buf()).collect(),
            top: top.to_string(),
            in_width,
            out_width,
            ports: Ports::Accelerator,
            trace: Trace::None,
            cache_dir: default_cache_dir(),
            opt: "-O2".to_string(),
            verilator_args: Vec::new(),
            verilator: PathBuf::from("verilator"),
            cxx: PathBuf::from("g++"),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
        }
    }

    /// A configuration for a board core top (`clk, rst, uart_rx, uart_tx, led_activity,
    /// led_error`), otherwise as [`BuildConfig::new`].
    pub fn board<P: AsRef<Path>>(verilog: &[P], top: &str) -> Self {
        BuildConfig {
            ports: Ports::Board,
            ..BuildConfig::new(verilog, top, 1, 1)
        }
    }

    pub fn trace(mut self, trace: Trace) -> Self {
        self.trace = trace;
        self
    }

    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    pub fn verilator_arg(mut self, arg: impl Into<String>) -> Self {
        self.verilator_args.push(arg.into());
        self
    }

    /// Build the library, or find it in the cache.
    pub fn build(&self) -> Result<Model> {
        let start = Instant::now();
        if self.in_width == 0 || self.out_width == 0 {
            return Err(Error::Input(format!(
                "port widths must be positive (s_axis_tdata {}, m_axis_tdata {})",
                self.in_width, self.out_width
            )));
        }
        if self.verilog.is_empty() {
            return Err(Error::Input("no Verilog files given".into()));
        }
        if !is_identifier(&self.top) {
            return Err(Error::Input(format!(
                "top `{}` is not a Verilog identifier",
                self.top
            )));
        }
        let version = tool_version(&self.verilator)?;
        let key = self.cache_key(&version)?;
        let dir = self.cache_dir.join(format!("{}-{key}", self.top));
        let mut model = Model {
            so_path: dir.join(LIB_NAME),
            dir: dir.clone(),
            top: self.top.clone(),
            in_width: self.in_width,
            out_width: self.out_width,
            ports: self.ports,
            trace: self.trace,
            cache_hit: true,
            build_time: Duration::ZERO,
            warnings: Vec::new(),
        };
        if let Ok(meta) = fs::read_to_string(dir.join(META_NAME)) {
            if model.so_path.is_file() {
                model.warnings = meta.lines().map(str::to_string).collect();
                model.build_time = start.elapsed();
                return Ok(model);
            }
        }
        fs::create_dir_all(&self.cache_dir)
            .map_err(|e| io_err("cannot create cache directory", &self.cache_dir, e))?;
        let tmp = unique_tmp(&self.cache_dir, &key);
        let result = self.build_into(&tmp, &version);
        match result {
            Ok(warnings) => {
                // Publish atomically. If another builder won the race, use its result.
                if fs::rename(&tmp, &dir).is_err() {
                    let _ = fs::remove_dir_all(&tmp);
                    if !dir.join(META_NAME).is_file() {
                        return Err(Error::Io(format!(
                            "cannot move the build into {}",
                            dir.display()
                        )));
                    }
                }
                model.warnings = warnings;
                model.cache_hit = false;
                model.build_time = start.elapsed();
                Ok(model)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    fn cache_key(&self, verilator_version: &str) -> Result<String> {
        let mut h = Hash128::new();
        h.field(format!("harness {HARNESS_VERSION} abi {ABI_VERSION}").as_bytes());
        h.field(verilator_version.as_bytes());
        h.field(self.top.as_bytes());
        h.field(&self.in_width.to_le_bytes());
        h.field(&self.out_width.to_le_bytes());
        if self.ports == Ports::Board {
            h.field(b"board ports");
        }
        h.field(&self.trace.code().to_le_bytes());
        h.field(self.opt.as_bytes());
        h.field(self.cxx.as_os_str().as_encoded_bytes());
        for a in &self.verilator_args {
            h.field(a.as_bytes());
        }
        for f in &self.verilog {
            let text = fs::read(f).map_err(|e| io_err("cannot read Verilog file", f, e))?;
            h.field(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b""));
            h.field(&text);
        }
        Ok(h.hex())
    }

    /// Runs all tools in `tmp`; returns verilator's warnings.
    fn build_into(&self, tmp: &Path, version: &str) -> Result<Vec<String>> {
        let obj = tmp.join("obj");
        fs::create_dir_all(&obj).map_err(|e| io_err("cannot create", &obj, e))?;
        let mut log = String::new();

        // 1. Verilate.
        let mut cmd = Command::new(&self.verilator);
        cmd.arg("--cc")
            .args(["--prefix", PREFIX, "--top-module", &self.top])
            .arg("--Mdir")
            .arg(&obj)
            .args(["-O3", "--x-assign", "fast", "--x-initial", "unique"])
            .args(["-Wno-fatal", "--no-timing"]);
        match self.trace {
            Trace::None => {}
            Trace::Vcd => {
                cmd.arg("--trace");
            }
            Trace::Fst => {
                cmd.arg("--trace-fst");
            }
        }
        cmd.args(&self.verilator_args);
        for f in &self.verilog {
            let abs = fs::canonicalize(f).map_err(|e| io_err("cannot find", f, e))?;
            cmd.arg(abs);
        }
        let out = run_tool(&mut cmd, "verilator", &mut log, tmp)?;
        let warnings: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("%Warning"))
            .map(str::to_string)
            .collect();

        // 2. Check the ports against the spec.
        let header = obj.join(format!("{PREFIX}.h"));
        let text = fs::read_to_string(&header).map_err(|e| io_err("cannot read", &header, e))?;
        let expected = match self.ports {
            Ports::Accelerator => accelerator_ports(self.in_width, self.out_width),
            Ports::Board => BOARD_PORTS.to_vec(),
        };
        check_ports(&parse_ports(&text), &expected, &self.top)?;

        // 3. Write the shim and group the model's C++ into a few translation units.
        let classes = obj.join(format!("{PREFIX}_classes.mk"));
        let mk = fs::read_to_string(&classes).map_err(|e| io_err("cannot read", &classes, e))?;
        let (fast, slow) = parse_classes(&mk);
        let shim = tmp.join("shim.cpp");
        fs::write(
            &shim,
            match self.ports {
                Ports::Accelerator => shim_source(self.in_width, self.out_width, self.trace),
                Ports::Board => board_shim_source(self.trace),
            },
        )
        .map_err(|e| io_err("cannot write", &shim, e))?;
        // Hot code in up to `jobs` units of balanced size (one per ~256 KB of C++, as each
        // unit pays ~0.5 s to parse Verilator's headers), cold code in one unit at -O1.
        let mut sized: Vec<(u64, String)> = fast
            .into_iter()
            .map(|c| {
                let size = fs::metadata(obj.join(format!("{c}.cpp")))
                    .map(|m| m.len())
                    .unwrap_or(0);
                (size, c)
            })
            .collect();
        let total: u64 = sized.iter().map(|s| s.0).sum();
        let n_fast = (total.div_ceil(256 << 10) as usize).clamp(1, self.jobs.max(1));
        let mut groups: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); n_fast];
        sized.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (size, c) in sized {
            let g = groups.iter_mut().min_by_key(|g| g.0).expect("n_fast >= 1");
            g.0 += size;
            g.1.push(format!("obj/{c}.cpp"));
        }
        groups[0].1.push("shim.cpp".to_string());
        let mut all: Vec<(Vec<String>, String)> = groups
            .into_iter()
            .map(|g| (g.1, self.opt.clone()))
            .collect();
        if !slow.is_empty() {
            let slow = slow.into_iter().map(|c| format!("obj/{c}.cpp")).collect();
            all.push((slow, "-O1".to_string()));
        }
        let mut units: Vec<(PathBuf, String)> = Vec::new();
        for (i, (files, opt)) in all.into_iter().enumerate() {
            let unit = tmp.join(format!("unit{i}.cpp"));
            let mut src = String::new();
            for f in files {
                let _ = writeln!(src, "#include \"{f}\"");
            }
            fs::write(&unit, src).map_err(|e| io_err("cannot write", &unit, e))?;
            units.push((unit, opt));
        }

        // 4. Compile (runtime objects are shared between designs), then link.
        let runtime = self.ensure_runtime(version)?;
        let jobs: Vec<Command> = units
            .iter()
            .map(|(src, opt)| {
                let mut c = self.cxx_command(opt);
                c.arg("-I").arg(&obj).arg("-c").arg(src).arg("-o");
                c.arg(src.with_extension("o"));
                c
            })
            .collect();
        run_parallel(jobs, "g++", self.jobs, &mut log, tmp)?;
        let mut link = Command::new(&self.cxx);
        link.args(["-shared", "-fPIC", "-o"])
            .arg(tmp.join(LIB_NAME));
        for (src, _) in &units {
            link.arg(src.with_extension("o"));
        }
        for o in runtime_objects(self.trace) {
            link.arg(runtime.join(format!("{o}.o")));
        }
        link.args(["-Wl,-z,defs", "-pthread", "-latomic"]);
        if self.trace == Trace::Fst {
            link.arg("-lz");
        }
        run_tool(&mut link, "g++ (link)", &mut log, tmp)?;

        // 5. Tidy up: keep the library, the shim and the log.
        let _ = fs::remove_dir_all(&obj);
        for (src, _) in &units {
            let _ = fs::remove_file(src);
            let _ = fs::remove_file(src.with_extension("o"));
        }
        let _ = fs::write(tmp.join("build.log"), &log);
        let meta = tmp.join(META_NAME);
        fs::write(&meta, warnings.join("\n")).map_err(|e| io_err("cannot write", &meta, e))?;
        Ok(warnings)
    }

    fn cxx_command(&self, opt: &str) -> Command {
        let inc = verilator_include();
        let mut c = Command::new(&self.cxx);
        c.arg(opt)
            .args(["-std=gnu++17", "-fPIC", "-fvisibility=hidden", "-w"])
            .args(["-faligned-new", "-fcf-protection=none"])
            .arg(format!("-I{}", inc.display()))
            .arg(format!("-I{}", inc.join("vltstd").display()))
            .args(["-DVM_COVERAGE=0", "-DVM_SC=0"])
            .arg(format!(
                "-DVM_TRACE={}",
                u8::from(self.trace != Trace::None)
            ))
            .arg(format!(
                "-DVM_TRACE_VCD={}",
                u8::from(self.trace == Trace::Vcd)
            ))
            .arg(format!(
                "-DVM_TRACE_FST={}",
                u8::from(self.trace == Trace::Fst)
            ))
            .args(["-DVL_USER_FATAL", "-DVL_USER_STOP", "-DVL_USER_FINISH"]);
        c
    }

    /// Verilator's runtime (`verilated.cpp` …) compiled once per (verilator, compiler, flags).
    fn ensure_runtime(&self, version: &str) -> Result<PathBuf> {
        let mut h = Hash128::new();
        h.field(format!("runtime {HARNESS_VERSION}").as_bytes());
        h.field(version.as_bytes());
        h.field(self.cxx.as_os_str().as_encoded_bytes());
        h.field(&self.trace.code().to_le_bytes());
        let key = h.hex();
        let dir = self.cache_dir.join(format!("runtime-{key}"));
        if dir.join("ok").is_file() {
            return Ok(dir);
        }
        let tmp = unique_tmp(&self.cache_dir, &key);
        fs::create_dir_all(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        let inc = verilator_include();
        let mut log = String::new();
        let jobs = runtime_objects(self.trace)
            .iter()
            .map(|o| {
                let mut c = self.cxx_command("-O2");
                c.arg("-c")
                    .arg(inc.join(format!("{o}.cpp")))
                    .arg("-o")
                    .arg(tmp.join(format!("{o}.o")));
                c
            })
            .collect();
        let r = run_parallel(jobs, "g++ (verilator runtime)", self.jobs, &mut log, &tmp).and_then(
            |()| fs::write(tmp.join("ok"), version).map_err(|e| io_err("cannot write", &tmp, e)),
        );
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if fs::rename(&tmp, &dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        if dir.join("ok").is_file() {
            Ok(dir)
        } else {
            Err(Error::Io(format!("cannot create {}", dir.display())))
        }
    }
}

fn runtime_objects(trace: Trace) -> Vec<&'static str> {
    let mut v = vec!["verilated", "verilated_threads"];
    match trace {
        Trace::None => {}
        Trace::Vcd => v.push("verilated_vcd_c"),
        Trace::Fst => v.push("verilated_fst_c"),
    }
    v
}

fn verilator_include() -> PathBuf {
    if let Some(root) = std::env::var_os("VERILATOR_ROOT") {
        let p = PathBuf::from(root).join("include");
        if p.is_dir() {
            return p;
        }
    }
    for p in [
        "/usr/share/verilator/include",
        "/usr/local/share/verilator/include",
    ] {
        if Path::new(p).is_dir() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("/usr/share/verilator/include")
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn unique_tmp(root: &Path, key: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    root.join(format!(".tmp-{key}-{}-{n}", std::process::id()))
}

/// Identifies the installed verilator without running it (running `verilator --version`
/// costs ~70 ms, too much for a cache hit): the resolved executable and Verilator's runtime
/// header, each with size and modification time.
fn tool_version(verilator: &Path) -> Result<String> {
    let missing = |detail: String| Error::ToolMissing {
        tool: verilator.display().to_string(),
        detail,
    };
    let exe = if verilator.components().count() > 1 {
        Some(verilator.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(verilator))
                .find(|p| p.is_file())
        })
    }
    .ok_or_else(|| missing("not found in PATH".into()))?;
    let stamp = |p: &Path| -> Result<String> {
        let m = std::fs::metadata(p).map_err(|e| missing(format!("{}: {e}", p.display())))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(format!("{} {} {mtime}", p.display(), m.len()))
    };
    Ok(format!(
        "{}; {}",
        stamp(&exe)?,
        stamp(&verilator_include().join("verilated.h"))?
    ))
}

fn poisoned() -> Error {
    Error::Io("internal lock poisoned".into())
}

fn tool_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// Runs one tool; returns stdout+stderr, or the tool's first error line.
fn run_tool(cmd: &mut Command, what: &str, log: &mut String, cwd: &Path) -> Result<String> {
    cmd.current_dir(cwd);
    let out = cmd.output().map_err(|e| Error::ToolMissing {
        tool: tool_name(cmd),
        detail: e.to_string(),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = writeln!(log, "$ {cmd:?}\n{text}");
    if out.status.success() {
        Ok(text)
    } else {
        Err(Error::Tool {
            tool: what.to_string(),
            first_error: first_error_line(&text)
                .unwrap_or_else(|| format!("exited with {}", out.status)),
            log: text,
        })
    }
}

/// Runs commands, at most `jobs` at a time; the first failure (in order) is returned.
fn run_parallel(
    cmds: Vec<Command>,
    what: &str,
    jobs: usize,
    log: &mut String,
    cwd: &Path,
) -> Result<()> {
    let cmds: Vec<Mutex<Command>> = cmds.into_iter().map(Mutex::new).collect();
    let next = AtomicU64::new(0);
    type Slot = Mutex<Option<(Result<String>, String)>>;
    let results: Vec<Slot> = cmds.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1).min(cmds.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= cmds.len() {
                    break;
                }
                let mut local = String::new();
                let r = match cmds[i].lock() {
                    Ok(mut c) => run_tool(&mut c, what, &mut local, cwd),
                    Err(_) => Err(poisoned()),
                };
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some((r, local));
                }
            });
        }
    });
    let mut first_err = None;
    for r in results {
        if let Some((r, local)) = r.into_inner().ok().flatten() {
            log.push_str(&local);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The first line that looks like an error in a tool's output (`%Error`, `error:`), else the
/// first non-empty line.
pub(crate) fn first_error_line(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with("%Error") || l.contains("error:") || l.contains("Error:"))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
}

#[derive(Debug, PartialEq, Eq)]
struct Port {
    name: String,
    dir: &'static str,
    width: u32,
}

/// Ports from the Verilated header: lines like `VL_INW(&s_axis_tdata,95,0,3);`.
fn parse_ports(header: &str) -> Vec<Port> {
    let mut ports = Vec::new();
    for line in header.lines() {
        let l = line.trim();
        let dir = if l.starts_with("VL_INOUT") {
            "inout"
        } else if l.starts_with("VL_IN") {
            "input"
        } else if l.starts_with("VL_OUT") {
            "output"
        } else {
            continue;
        };
        let (Some(open), Some(close)) = (l.find('('), l.rfind(')')) else {
            continue;
        };
        let args: Vec<&str> = l[open + 1..close].split(',').map(str::trim).collect();
        if args.len() < 3 {
            continue;
        }
        let (Ok(msb), Ok(lsb)) = (args[1].parse::<i64>(), args[2].parse::<i64>()) else {
            continue;
        };
        ports.push(Port {
            name: args[0].trim_start_matches('&').to_string(),
            dir,
            width: ((msb - lsb).unsigned_abs() + 1) as u32,
        });
    }
    ports
}

/// A port the top must have: name, direction, width.
type PortSpec = (&'static str, &'static str, u32);

fn accelerator_ports(in_width: u32, out_width: u32) -> Vec<PortSpec> {
    vec![
        ("clk", "input", 1),
        ("rst", "input", 1),
        ("s_axis_tdata", "input", in_width),
        ("s_axis_tvalid", "input", 1),
        ("s_axis_tready", "output", 1),
        ("m_axis_tdata", "output", out_width),
        ("m_axis_tvalid", "output", 1),
        ("m_axis_tready", "input", 1),
        ("m_axis_tlast", "output", 1),
    ]
}

const BOARD_PORTS: [PortSpec; 6] = [
    ("clk", "input", 1),
    ("rst", "input", 1),
    ("uart_rx", "input", 1),
    ("uart_tx", "output", 1),
    ("led_activity", "output", 1),
    ("led_error", "output", 1),
];

fn check_ports(ports: &[Port], expected: &[PortSpec], top: &str) -> Result<()> {
    let mut problems = Vec::new();
    for &(name, dir, width) in expected {
        match ports.iter().find(|p| p.name == name) {
            None => problems.push(format!("missing {dir} `{name}`")),
            Some(p) if p.dir != dir => {
                problems.push(format!("`{name}` is an {}, expected an {dir}", p.dir))
            }
            Some(p) if p.width != width => problems.push(format!(
                "`{name}` is {} bit(s) wide, expected {width}",
                p.width
            )),
            Some(_) => {}
        }
    }
    for p in ports {
        if !expected.iter().any(|e| e.0 == p.name) {
            problems.push(format!("unexpected {} `{}`", p.dir, p.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Ports(format!(
            "top `{top}`: {}",
            problems.join("; ")
        )))
    }
}

/// (fast, slow) class lists from `<prefix>_classes.mk`.
fn parse_classes(mk: &str) -> (Vec<String>, Vec<String>) {
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    let mut current: Option<bool> = None; // Some(true) = fast list
    for line in mk.lines() {
        let t = line.trim();
        if let Some(var) = t.strip_suffix("+= \\") {
            current = match var.trim() {
                "VM_CLASSES_FAST" | "VM_SUPPORT_FAST" => Some(true),
                "VM_CLASSES_SLOW" | "VM_SUPPORT_SLOW" => Some(false),
                _ => None,
            };
            continue;
        }
        if t.is_empty() || !line.starts_with(char::is_whitespace) {
            current = None;
            continue;
        }
        let name = t.trim_end_matches('\\').trim();
        match current {
            Some(true) => fast.push(name.to_string()),
            Some(false) => slow.push(name.to_string()),
            None => {}
        }
    }
    (fast, slow)
}

/// 128-bit FNV-1a (two independent 64-bit lanes); stable across Rust versions.
struct Hash128(u64, u64);

impl Hash128 {
    fn new() -> Self {
        Hash128(0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142)
    }
    fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            self.1 = (self.1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            self.1 = self.1.rotate_left(5);
        }
    }
    /// A length-prefixed field, so that field boundaries are unambiguous.
    fn field(&mut self, data: &[u8]) {
        self.bytes(&(data.len() as u64).to_le_bytes());
        self.bytes(data);
    }
    fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.0, self.1)
    }
}

/// The C++ shim: a C ABI around the Verilated model. Data ports travel as little-endian
/// arrays of u64 words, whatever Verilator's C type for them (CData … QData or VlWide<N>).
fn shim_source(in_width: u32, out_width: u32, trace: Trace) -> String {
    SHIM_TEMPLATE
        .replace("@COMMON@", SHIM_COMMON)
        .replace("@FATAL@", SHIM_FATAL)
        .replace("@ABI@", &ABI_VERSION.to_string())
        .replace("@IN_WIDTH@", &in_width.to_string())
        .replace("@OUT_WIDTH@", &out_width.to_string())
        .replace("@TRACE@", &trace.code().to_string())
        .replace("@PREFIX@", PREFIX)
}

const SHIM_TEMPLATE: &str = r#"@COMMON@template <class T> inline void bf_put(T& port, const uint64_t* w) { port = static_cast<T>(w[0]); }
template <std::size_t N> inline void bf_put(VlWide<N>& port, const uint64_t* w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = static_cast<EData>(w[i / 2] >> (32 * (i % 2)));
}
template <class T> inline void bf_get(const T& port, uint64_t* w) { w[0] = static_cast<uint64_t>(port); }
template <std::size_t N> inline void bf_get(const VlWide<N>& port, uint64_t* w) {
    for (std::size_t i = 0; i < (N + 1) / 2; ++i) w[i] = 0;
    for (std::size_t i = 0; i < N; ++i) w[i / 2] |= static_cast<uint64_t>(port[i]) << (32 * (i % 2));
}

struct BfSim {
    VerilatedContext* ctx = nullptr;
    @PREFIX@* top = nullptr;
#if VM_TRACE
    BfTrace* tfp = nullptr;
#endif
    uint64_t t = 0;
    bool settled = false;
    std::string err;

    ~BfSim() {
#if VM_TRACE
        if (tfp) { tfp->close(); delete tfp; }
#endif
        delete top;
        delete ctx;
    }
    void dump(uint64_t when) {
#if VM_TRACE
        if (tfp) tfp->dump(when);
#else
        (void)when;
#endif
    }
    int status() const { return ctx->gotFinish() ? 1 : 0; }
    void eval() {
        Verilated::threadContextp(ctx);
        ctx->time(t);
        top->eval();
        settled = true;
    }
    void tick() {
        Verilated::threadContextp(ctx);
        if (!settled) eval();
        dump(t);
        top->clk = 1;
        ctx->time(t + 1);
        top->eval();
        dump(t + 1);
        top->clk = 0;
        t += 2;
        settled = false;
    }
    void set(uint8_t rst, const uint64_t* s_data, uint8_t s_valid, uint8_t m_ready) {
        top->rst = rst;
        bf_put(top->s_axis_tdata, s_data);
        top->s_axis_tvalid = s_valid;
        top->m_axis_tready = m_ready;
        settled = false;
    }
    uint32_t get(uint64_t* m_data) const {
        bf_get(top->m_axis_tdata, m_data);
        return (top->s_axis_tready ? 1u : 0u) | (top->m_axis_tvalid ? 2u : 0u) | (top->m_axis_tlast ? 4u : 0u);
    }
};

}  // namespace

@FATAL@BF_EXPORT uint32_t bf_abi_version(void) { return @ABI@; }
BF_EXPORT uint32_t bf_in_width(void) { return @IN_WIDTH@; }
BF_EXPORT uint32_t bf_out_width(void) { return @OUT_WIDTH@; }
BF_EXPORT uint32_t bf_trace_kind(void) { return @TRACE@; }

BF_EXPORT void* bf_create(const char* trace_path, int rand_reset, uint32_t seed, char* err, size_t errlen) {
    BfSim* s = nullptr;
    try {
        s = new BfSim();
        s->ctx = new VerilatedContext;
        Verilated::threadContextp(s->ctx);
        s->ctx->randReset(rand_reset);
        s->ctx->randSeed(static_cast<int>(seed & 0x7fffffff));
        s->ctx->fatalOnError(true);
        if (trace_path && trace_path[0]) {
#if VM_TRACE
            s->ctx->traceEverOn(true);
#else
            throw BfFatal{"this library was built without waveform tracing"};
#endif
        }
        s->top = new @PREFIX@{s->ctx, "TOP"};
        s->top->clk = 0;
        s->top->rst = 0;
        s->top->s_axis_tvalid = 0;
        s->top->m_axis_tready = 0;
#if VM_TRACE
        if (trace_path && trace_path[0]) {
            s->tfp = new BfTrace;
            s->top->trace(s->tfp, 99);
            s->tfp->open(trace_path);
            if (!s->tfp->isOpen()) throw BfFatal{std::string("cannot open trace file ") + trace_path};
        }
#endif
        return s;
    } catch (const BfFatal& e) {
        bf_copy(e.msg, err, errlen);
    } catch (const std::exception& e) {
        bf_copy(e.what(), err, errlen);
    } catch (...) {
        bf_copy("unknown C++ exception", err, errlen);
    }
    delete s;
    return nullptr;
}

BF_EXPORT void bf_destroy(void* h) {
    BfSim* s = static_cast<BfSim*>(h);
    if (!s) return;
    try {
        Verilated::threadContextp(s->ctx);
        s->top->final();
    } catch (...) {
    }
    delete s;
    Verilated::threadContextp(nullptr);
}

BF_EXPORT const char* bf_error(void* h) { return static_cast<BfSim*>(h)->err.c_str(); }

BF_EXPORT void bf_set_inputs(void* h, uint8_t rst, const uint64_t* s_data, uint8_t s_valid, uint8_t m_ready) {
    static_cast<BfSim*>(h)->set(rst, s_data, s_valid, m_ready);
}

/// Settles the combinational logic for the current inputs (clk low); 0 ok, 1 $finish, -1 error.
BF_EXPORT int bf_eval(void* h) {
    BfSim* s = static_cast<BfSim*>(h);
    BF_TRY(s, s->eval(); return s->status();)
}

/// Reads the outputs as of the last evaluation: bit 0 s_axis_tready, 1 m_axis_tvalid, 2 m_axis_tlast.
BF_EXPORT uint32_t bf_get_outputs(void* h, uint64_t* m_data) { return static_cast<BfSim*>(h)->get(m_data); }

/// One rising clock edge (settling first if needed); 0 ok, 1 $finish, -1 error.
BF_EXPORT int bf_tick(void* h) {
    BfSim* s = static_cast<BfSim*>(h);
    BF_TRY(s, s->tick(); return s->status();)
}

/// One whole cycle in one call: set inputs, settle, sample outputs (what the coming edge
/// sees), clock edge. Returns -1 on error, else flags | (finished << 8).
BF_EXPORT int bf_step(void* h, uint8_t rst, const uint64_t* s_data, uint8_t s_valid, uint8_t m_ready,
                      uint64_t* m_data) {
    BfSim* s = static_cast<BfSim*>(h);
    BF_TRY(s, s->set(rst, s_data, s_valid, m_ready); s->eval(); uint32_t f = s->get(m_data);
           s->tick(); return static_cast<int>(f) | (s->status() << 8);)
}
"#;

/// The shim of a board core (see [`Ports::Board`]).
fn board_shim_source(trace: Trace) -> String {
    BOARD_SHIM_TEMPLATE
        .replace("@COMMON@", SHIM_COMMON)
        .replace("@FATAL@", SHIM_FATAL)
        .replace("@ABI@", &ABI_VERSION.to_string())
        .replace("@TRACE@", &trace.code().to_string())
        .replace("@PREFIX@", PREFIX)
}

const BOARD_SHIM_TEMPLATE: &str = r#"@COMMON@
struct BfBoard {
    VerilatedContext* ctx = nullptr;
    @PREFIX@* top = nullptr;
#if VM_TRACE
    BfTrace* tfp = nullptr;
#endif
    uint64_t t = 0;
    std::string err;

    ~BfBoard() {
#if VM_TRACE
        if (tfp) { tfp->close(); delete tfp; }
#endif
        delete top;
        delete ctx;
    }
    void dump(uint64_t when) {
#if VM_TRACE
        if (tfp) tfp->dump(when);
#else
        (void)when;
#endif
    }
    uint32_t outs() const {
        return (top->uart_tx ? 1u : 0u) | (top->led_activity ? 2u : 0u) | (top->led_error ? 4u : 0u);
    }
    /// One cycle: inputs applied with clk low, settled, rising edge.
    void cycle(uint8_t rst, uint8_t rx) {
        top->rst = rst;
        top->uart_rx = rx;
        ctx->time(t);
        top->eval();
        dump(t);
        top->clk = 1;
        ctx->time(t + 1);
        top->eval();
        dump(t + 1);
        top->clk = 0;
        t += 2;
    }
};
}  // namespace

@FATAL@BF_EXPORT uint32_t bf_abi_version(void) { return @ABI@; }
BF_EXPORT uint32_t bf_board_trace_kind(void) { return @TRACE@; }

BF_EXPORT void* bf_board_create(const char* trace_path, int rand_reset, uint32_t seed, char* err, size_t errlen) {
    BfBoard* s = nullptr;
    try {
        s = new BfBoard();
        s->ctx = new VerilatedContext;
        Verilated::threadContextp(s->ctx);
        s->ctx->randReset(rand_reset);
        s->ctx->randSeed(static_cast<int>(seed & 0x7fffffff));
        s->ctx->fatalOnError(true);
        if (trace_path && trace_path[0]) {
#if VM_TRACE
            s->ctx->traceEverOn(true);
#else
            throw BfFatal{"this library was built without waveform tracing"};
#endif
        }
        s->top = new @PREFIX@{s->ctx, "TOP"};
        s->top->clk = 0;
        s->top->rst = 1;
        s->top->uart_rx = 1;
#if VM_TRACE
        if (trace_path && trace_path[0]) {
            s->tfp = new BfTrace;
            s->top->trace(s->tfp, 99);
            s->tfp->open(trace_path);
            if (!s->tfp->isOpen()) throw BfFatal{std::string("cannot open trace file ") + trace_path};
        }
#endif
        return s;
    } catch (const BfFatal& e) {
        bf_copy(e.msg, err, errlen);
    } catch (const std::exception& e) {
        bf_copy(e.what(), err, errlen);
    } catch (...) {
        bf_copy("unknown C++ exception", err, errlen);
    }
    delete s;
    return nullptr;
}

BF_EXPORT void bf_board_destroy(void* h) {
    BfBoard* s = static_cast<BfBoard*>(h);
    if (!s) return;
    try {
        Verilated::threadContextp(s->ctx);
        s->top->final();
    } catch (...) {
    }
    delete s;
    Verilated::threadContextp(nullptr);
}

BF_EXPORT const char* bf_board_error(void* h) { return static_cast<BfBoard*>(h)->err.c_str(); }

/// Runs up to `max_cycles` cycles with `rst` and `uart_rx` held; with `stop_on_tx`, stops
/// after the first clock edge that changes `uart_tx`. `*done` gets the cycles run, `*outs`
/// the outputs after the last edge (bit 0 uart_tx, 1 led_activity, 2 led_error).
/// Returns 0 ok, 1 $finish, -1 error.
BF_EXPORT int bf_board_run(void* h, uint8_t rst, uint8_t rx, uint64_t max_cycles, uint8_t stop_on_tx,
                           uint64_t* done, uint32_t* outs) {
    BfBoard* s = static_cast<BfBoard*>(h);
    *done = 0;
    try {
        Verilated::threadContextp(s->ctx);
        uint8_t tx = s->top->uart_tx;
        for (uint64_t i = 0; i < max_cycles; ++i) {
            s->cycle(rst, rx);
            *done = i + 1;
            if (s->ctx->gotFinish()) break;
            if (stop_on_tx && s->top->uart_tx != tx) break;
        }
        *outs = s->outs();
        return s->ctx->gotFinish() ? 1 : 0;
    } catch (const BfFatal& e) {
        s->err = e.msg;
    } catch (const std::exception& e) {
        s->err = e.what();
    } catch (...) {
        s->err = "unknown C++ exception";
    }
    return -1;
}
"#;

/// The start of every shim: includes, errors as C++ exceptions, `bf_copy`.
const SHIM_COMMON: &str = r#"// Generated by bnnforge-testbench; do not edit.
#include "@PREFIX@.h"
#include "verilated.h"
#if VM_TRACE_VCD
#include "verilated_vcd_c.h"
typedef VerilatedVcdC BfTrace;
#elif VM_TRACE_FST
#include "verilated_fst_c.h"
typedef VerilatedFstC BfTrace;
#endif
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#define BF_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
struct BfFatal {
    std::string msg;
};

std::string bf_where(const char* filename, int linenum) {
    if (!filename || !filename[0]) return std::string();
    return std::string(filename) + ":" + std::to_string(linenum) + ": ";
}

void bf_copy(const std::string& s, char* buf, size_t len) {
    if (!buf || len == 0) return;
    std::snprintf(buf, len, "%s", s.c_str());
}
"#;

/// Verilator's fatal hooks turned into exceptions, caught at the C boundary by `BF_TRY`.
const SHIM_FATAL: &str = r#"// Legacy time source some runtime paths reference; the context's time is used instead.
double sc_time_stamp() { return 0; }

// Errors inside the model become C++ exceptions, caught at the C boundary below, instead of
// Verilator's default abort() of the whole (test) process.
void vl_finish(const char* filename, int linenum, const char* hier) {
    (void)filename; (void)linenum; (void)hier;
    Verilated::threadContextp()->gotFinish(true);
}
void vl_stop(const char* filename, int linenum, const char* hier) {
    (void)hier;
    Verilated::threadContextp()->gotError(true);
    Verilated::threadContextp()->gotFinish(true);
    throw BfFatal{bf_where(filename, linenum) + "Verilog $stop"};
}
void vl_fatal(const char* filename, int linenum, const char* hier, const char* msg) {
    (void)hier;
    Verilated::threadContextp()->gotError(true);
    Verilated::threadContextp()->gotFinish(true);
    throw BfFatal{bf_where(filename, linenum) + (msg ? msg : "fatal error")};
}

#define BF_TRY(sim, body)                                                       \
    try { body }                                                                \
    catch (const BfFatal& e) { sim->err = e.msg; return -1; }                   \
    catch (const std::exception& e) { sim->err = e.what(); return -1; }         \
    catch (...) { sim->err = "unknown C++ exception"; return -1; }

"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verilated_ports() {
        let h = "    VL_IN8(&clk,0,0);\n    VL_INW(&s_axis_tdata,95,0,3);\n    VL_OUT(&m_axis_tdata,23,0);\n    VL_OUT8(&m_axis_tlast,0,0);\n";
        let p = parse_ports(h);
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[1],
            Port {
                name: "s_axis_tdata".into(),
                dir: "input",
                width: 96
            }
        );
        assert_eq!(p[2].dir, "output");
        assert_eq!(p[2].width, 24);
        let err = check_ports(&p, &accelerator_ports(96, 24), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing input `rst`"), "{err}");
        assert!(!err.contains("s_axis_tdata"), "{err}");
        let err = check_ports(&p, &accelerator_ports(64, 24), "t")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`s_axis_tdata` is 96 bit(s) wide, expected 64"),
            "{err}"
        );
    }

    #[test]
    fn parses_class_lists() {
        let mk = "VM_CLASSES_FAST += \\\n\tVt \\\n\tVt_a \\\n\nVM_CLASSES_SLOW += \\\n\tVt__Slow \\\n\nVM_SUPPORT_FAST += \\\n\tVt__Trace__0 \\\n\nVM_GLOBAL_FAST += \\\n\tverilated \\\n\n";
        let (fast, slow) = parse_classes(mk);
        assert_eq!(fast, vec!["Vt", "Vt_a", "Vt__Trace__0"]);
        assert_eq!(slow, vec!["Vt__Slow"]);
    }

    #[test]
    fn hash_is_stable_and_field_separated() {
        let mut a = Hash128::new();
        a.field(b"ab");
        a.field(b"c");
        let mut b = Hash128::new();
        b.field(b"a");
        b.field(b"bc");
        assert_ne!(a.hex(), b.hex());
        let mut c = Hash128::new();
        c.field(b"ab");
        c.field(b"c");
        assert_eq!(a.hex(), c.hex());
        assert_eq!(a.hex().len(), 32);
    }

    #[test]
    fn first_error_line_prefers_errors() {
        let t = "%Warning-WIDTH: x\n%Error: a.v:3:1: syntax error\nmore";
        assert_eq!(
            first_error_line(t).as_deref(),
            Some("%Error: a.v:3:1: syntax error")
        );
        assert_eq!(first_error_line("\n hello \n").as_deref(), Some("hello"));
    }
}
