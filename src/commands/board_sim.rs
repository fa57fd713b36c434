//! `bnnforge board-sim`: a board in Verilator behind a pseudo-terminal, so that
//! `bnnforge run --port PATH` talks to it exactly as to a real board.
//!
//! The accelerator is wrapped in the board core (`bnnforge_hdl::boards::core`) at the
//! board's clock and the given baud rate; the core's UART timing is simulated in clock
//! cycles. Host bytes go into the core's receive pin no faster than the baud rate allows,
//! the core's answers go back to the pty. Faults (seeded, per byte, both directions):
//! a flipped bit, a lost byte, or a pause of 1 to 40 ms of board time before the byte
//! (longer than the board's 20 ms inter-byte timeout in about half the cases, which cuts
//! a packet off). The slave's path is the only line on stdout; a summary of what the
//! board received and sent goes to stderr at the end, which comes on SIGINT, SIGTERM or
//! SIGHUP, when its parent exits, or (when stdin is a pipe) when stdin is closed.

use crate::host::{Fate, Faults, Injector};
use bnnforge_hdl::boards::board;
use bnnforge_hdl::boards::core::{board_core_files, board_core_module, BoardCoreParams};
use bnnforge_model::{Error, Result};
use bnnforge_testbench::protocol::{kind, Received, Receiver};
use bnnforge_testbench::{BoardSim, Manifest};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A pseudo-terminal in raw mode: the simulator holds the master, the host opens the
/// slave's path. The slave stays open here too, so hosts may come and go.
pub struct Pty {
    pub master: OwnedFd,
    _slave: OwnedFd,
    pub path: PathBuf,
}

impl Pty {
    pub fn open() -> std::result::Result<Pty, String> {
        let p = nix::pty::openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
        let mut t = tcgetattr(p.slave.as_fd()).map_err(|e| format!("tcgetattr: {e}"))?;
        cfmakeraw(&mut t);
        tcsetattr(p.slave.as_fd(), SetArg::TCSANOW, &t).map_err(|e| format!("tcsetattr: {e}"))?;
        let flags =
            fcntl(p.master.as_fd(), FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?;
        fcntl(
            p.master.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| format!("fcntl: {e}"))?;
        let path = nix::unistd::ttyname(p.slave.as_fd()).map_err(|e| format!("ttyname: {e}"))?;
        Ok(Pty {
            master: p.master,
            _slave: p.slave,
            path,
        })
    }

    /// Bytes the host wrote (none when there are none).
    pub fn read(&self) -> std::result::Result<Vec<u8>, String> {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.master.as_fd(), &mut buf) {
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EIO) => Ok(vec![]),
            Err(e) => Err(format!("reading the pty: {e}")),
        }
    }

    /// Writes what the pty takes now; returns how many bytes it took.
    pub fn write(&self, bytes: &[u8]) -> std::result::Result<usize, String> {
        match nix::unistd::write(self.master.as_fd(), bytes) {
            Ok(n) => Ok(n),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EIO) => Ok(0),
            Err(e) => Err(format!("writing the pty: {e}")),
        }
    }

    /// Waits up to `ms` for host bytes.
    pub fn wait(&self, ms: u16) {
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}

/// Packets seen on one side of the line, by type.
#[derive(Default)]
struct Tally {
    rx: Receiver,
    counts: std::collections::BTreeMap<u8, u64>,
    damaged: u64,
}

impl Tally {
    fn push(&mut self, b: u8) {
        match self.rx.push(b) {
            Some(Received::Packet(p)) => *self.counts.entry(p.kind).or_default() += 1,
            Some(Received::BadCrc { .. }) => self.damaged += 1,
            None => {}
        }
    }
    fn count(&self, k: u8) -> u64 {
        self.counts.get(&k).copied().unwrap_or(0)
    }
    fn others(&self, known: &[u8]) -> u64 {
        self.counts
            .iter()
            .filter(|(k, _)| !known.contains(k))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The accelerator's files and the board core's parameters from a build folder.
fn from_folder(dir: &Path, clock_hz: u32, baud: u32) -> Result<(Vec<PathBuf>, BoardCoreParams)> {
    let m = Manifest::load(dir).map_err(|e| Error::new(e.to_string()))?;
    let hash = m.network_hash.ok_or_else(|| {
        Error::new("manifest.json has no network_hash: rebuild with this bnnforge").in_file(dir)
    })?;
    let p = BoardCoreParams {
        accel_top: m.top.clone(),
        clock_hz,
        baud,
        in_bits: m.input.bits,
        in_signed: m.input.signed,
        lanes: m.input.lanes,
        in_elements: m.input.elements,
        out_bits: m.output.bits,
        out_signed: m.output.signed,
        out_elements: m.output.elements,
        network_hash: hash,
        cycles_per_frame: m.cycles_per_frame.unwrap_or(0),
    };
    p.check().map_err(Error::new)?;
    Ok((m.verilog, p))
}

/// Set by SIGINT, SIGTERM and SIGHUP: the loop ends, the summary is printed.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Quits when the parent exits, a piped stdin is closed, or on a signal to stop.
fn watch_parent() -> Arc<AtomicBool> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic
        let _ = unsafe { sigaction(s, &action) };
    }
    let done = Arc::new(AtomicBool::new(false));
    let piped = nix::sys::stat::fstat(std::io::stdin().as_fd())
        .map(|s| s.st_mode & nix::libc::S_IFMT == nix::libc::S_IFIFO)
        .unwrap_or(false);
    if piped {
        let d = done.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            while let Ok(n) = std::io::Read::read(&mut std::io::stdin(), &mut sink) {
                if n == 0 {
                    break;
                }
            }
            d.store(true, Ordering::SeqCst);
        });
    }
    done
}

pub fn run(
    model: &Path,
    board_name: &str,
    baud: u32,
    faults: Option<&str>,
    seed: u64,
) -> Result<()> {
    let b = board(board_name).map_err(Error::new)?;
    let faults = faults
        .map(Faults::parse)
        .transpose()
        .map_err(Error::new)?
        .unwrap_or_default();
    let clock_hz = (b.default_mhz * 1e6).round() as u32;
    // a build folder as it is, or a network built now into a temporary folder
    let temp = std::env::temp_dir().join(format!("bnnforge-board-sim-{}", std::process::id()));
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else {
        std::fs::create_dir_all(&temp)
            .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&temp))?;
        let built = super::build::build(model, &temp.join("build"), None, None);
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e);
        }
        temp.join("build")
    };
    let result = serve(&dir, &temp, b.name, clock_hz, baud, faults, seed);
    let _ = std::fs::remove_dir_all(&temp);
    result
}

fn serve(
    dir: &Path,
    temp: &Path,
    board_name: &str,
    clock_hz: u32,
    baud: u32,
    faults: Faults,
    seed: u64,
) -> Result<()> {
    let (mut verilog, p) = from_folder(dir, clock_hz, baud)?;
    let core_dir = temp.join("core");
    std::fs::create_dir_all(&core_dir)
        .map_err(|e| Error::new(format!("cannot create: {e}")).in_file(&core_dir))?;
    for (name, text) in board_core_files(&p) {
        let f = core_dir.join(name);
        std::fs::write(&f, text)
            .map_err(|e| Error::new(format!("cannot write: {e}")).in_file(&f))?;
        verilog.push(f);
    }
    let top = board_core_module(&p);
    eprintln!(
        "board-sim: verilating {top} ({} at {:.1} MHz, {baud} baud; cached after the first time)",
        board_name,
        clock_hz as f64 / 1e6
    );
    let mut sim = BoardSim::build(&verilog, &top, clock_hz, baud).map_err(|e| {
        Error::new(format!(
            "board-sim: {}",
            e.to_string().lines().next().unwrap_or("")
        ))
    })?;
    let pty = Pty::open().map_err(|e| Error::new(format!("board-sim: {e}")))?;
    eprintln!(
        "board-sim: network {:016x}, {} cycles per frame; faults corrupt={} drop={} delay={} \
         (seed {seed}); stop with Ctrl-C (prints what the board received)",
        p.network_hash, p.cycles_per_frame, faults.corrupt, faults.drop, faults.delay
    );
    println!("{}", pty.path.display());
    let _ = std::io::stdout().flush();

    let done = watch_parent();
    let parent = std::os::unix::process::parent_id();
    let mut up = Injector::new(faults, seed);
    let mut down = Injector::new(faults, seed ^ 0x9e37_79b9_7f4a_7c15);
    let per_us = clock_hz as u64 / 1_000_000;
    let byte_cycles = 10 * p.clocks_per_bit() as u64;
    // the board's inter-byte timeout, and how long to keep simulating after the last byte
    let board_timeout = clock_hz as u64 / 50;
    let idle_after = board_timeout + board_timeout / 4;
    let mut to_board: VecDeque<(u8, u64)> = VecDeque::new();
    let mut to_host: VecDeque<(u8, u64)> = VecDeque::new();
    let mut pause_until = 0u64;
    let mut last_activity = 0u64;
    let (mut seen, mut said) = (Tally::default(), Tally::default());
    let mut last_fed = 0u64;
    let mut out = Vec::new();
    loop {
        if done.load(Ordering::SeqCst)
            || STOP.load(Ordering::SeqCst)
            || std::os::unix::process::parent_id() != parent
        {
            break;
        }
        let now = sim.cycle();
        for x in pty.read().map_err(Error::new)? {
            match up.fate(x) {
                Fate::Lost => {}
                Fate::Arrives { byte, pause_us } => {
                    to_board.push_back((byte, pause_us as u64 * per_us))
                }
            }
        }
        // feed the core's receiver, holding a delayed byte back for its pause
        if now >= pause_until && !sim.rx_busy() && !to_board.is_empty() {
            let mut batch = vec![];
            while let Some(&(byte, pause)) = to_board.front() {
                if pause > 0 {
                    if batch.is_empty() {
                        pause_until = now + pause;
                        to_board[0].1 = 0;
                    }
                    break;
                }
                to_board.pop_front();
                batch.push(byte);
                if batch.len() == 64 {
                    break;
                }
            }
            if !batch.is_empty() {
                if now.saturating_sub(last_fed) > board_timeout {
                    seen.rx.abandon();
                }
                for &x in &batch {
                    seen.push(x);
                }
                sim.write(&batch);
                last_fed = now + batch.len() as u64 * byte_cycles;
                last_activity = now;
            }
        }
        let answer = sim.run(4 * byte_cycles).map_err(|e| {
            Error::new(format!(
                "board-sim: {}",
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
        let now = sim.cycle();
        for x in answer {
            said.push(x);
            last_activity = now;
            match down.fate(x) {
                Fate::Lost => {}
                Fate::Arrives { byte, pause_us } => {
                    let at = to_host.back().map_or(now, |&(_, t)| t.max(now));
                    to_host.push_back((byte, at + pause_us as u64 * per_us));
                }
            }
        }
        while to_host.front().is_some_and(|&(_, t)| t <= now) {
            out.push(to_host.pop_front().unwrap().0);
        }
        if !out.is_empty() {
            let n = pty.write(&out).map_err(Error::new)?;
            out.drain(..n);
            last_activity = now;
        }
        let idle = to_board.is_empty()
            && to_host.is_empty()
            && out.is_empty()
            && !sim.rx_busy()
            && now >= pause_until
            && now.saturating_sub(last_activity) > idle_after;
        if idle {
            seen.rx.abandon();
            pty.wait(50);
        }
    }
    eprintln!(
        "board-sim: the board received INFO {}, FRAME {}, BENCH {}, other {}, damaged {}; \
         sent INFO {}, RESULT {}, BENCH {}, ERROR {}; faults host→board: {} corrupted, {} \
         dropped, {} delayed; board→host: {} corrupted, {} dropped, {} delayed; {} cycles",
        seen.count(kind::INFO),
        seen.count(kind::FRAME),
        seen.count(kind::BENCH),
        seen.others(&[kind::INFO, kind::FRAME, kind::BENCH]),
        seen.damaged,
        said.count(kind::INFO_REPLY),
        said.count(kind::RESULT),
        said.count(kind::BENCH_REPLY),
        said.count(kind::ERROR),
        up.corrupted,
        up.dropped,
        up.delayed,
        down.corrupted,
        down.dropped,
        down.delayed,
        sim.cycle()
    );
    Ok(())
}
