//! The host against the simulated board: `bnnforge board-sim` (board core + accelerator
//! in Verilator behind a pseudo-terminal) and `bnnforge run` / `bench-board` on its
//! path, exactly as on a real board; faults on the line both ways; the wrong board
//! refused; `bnnforge flash` without a board or without its tool; bad input.

mod common;

use common::{bnnforge, repo};
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `bnnforge board-sim`; stopped (stdin closed, then killed) when dropped.
struct Board {
    child: Child,
    port: String,
}

impl Board {
    fn start(design: &Path, args: &[&str]) -> Board {
        let mut child = bnnforge()
            .arg("board-sim")
            .arg(design)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim().is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("board-sim did not start: {err}");
        }
        Board {
            child,
            port: line.trim().to_string(),
        }
    }

    /// Closes stdin (the simulator's signal to stop) and returns its report (stderr).
    fn finish(mut self) -> String {
        drop(self.child.stdin.take());
        let t = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "board-sim did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        err
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        c,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bnnforge infer`'s outputs for `input`.
fn infer(model: &Path, input: &Path, out: &Path) -> Vec<u8> {
    ok(bnnforge()
        .arg("infer")
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out));
    std::fs::read(out).unwrap()
}

fn run_on(board: &Board, model: &Path, input: &Path, out: &Path, extra: &[&str]) -> String {
    ok(bnnforge()
        .arg("run")
        .arg(model)
        .args(["--port", &board.port, "--baud", "3000000"])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(extra))
}

/// A number after `key` in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let i = text
        .find(key)
        .unwrap_or_else(|| panic!("no `{key}` in {text}"));
    text[i + key.len()..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in {text}"))
}

/// TFC on the simulated iCEBreaker: 100 MNIST images bit-exact with `bnnforge infer`,
/// BENCH's cycles per frame equal to the manifest's; then the same 100 through a line
/// that corrupts, drops and delays bytes both ways.
#[test]
fn tfc_on_the_simulated_board_is_bit_exact_with_and_without_faults() {
    let tmp = tempfile::tempdir().unwrap();
    let model = repo().join("models/tfc-w1a1.yaml");
    let design = repo().join("generated/tfc-w1a1");
    let x = tmp.path().join("x.npy");
    common::mnist_npy(100, &x);
    let want = infer(&model, &x, &tmp.path().join("want.npy"));

    let board = Board::start(&design, &[]);
    let y = tmp.path().join("y.npy");
    let text = run_on(&board, &model, &x, &y, &[]);
    println!("{text}");
    assert!(text.contains("100 frames: 0 mismatches"), "{text}");
    assert_eq!(
        std::fs::read(&y).unwrap(),
        want,
        "outputs differ from infer's"
    );
    let bench = ok(bnnforge().arg("bench-board").arg(&model).args([
        "--port",
        &board.port,
        "--baud",
        "3000000",
        "--count",
        "20",
    ]));
    println!("{bench}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(design.join("manifest.json")).unwrap())
            .unwrap();
    let cpf = manifest["cycles_per_frame"].as_u64().unwrap() as f64;
    assert_eq!(
        number_after(&bench, "accelerator:"),
        cpf,
        "BENCH's cycles per frame against the manifest's: {bench}"
    );
    let report = board.finish();
    println!("{report}");
    assert!(report.contains("BENCH 2"), "{report}");

    // about 15 % of the frames (FRAME + INFO out, RESULT + INFO back) hit by a fault
    let seed = bnnforge_model::random::test_seed("fault", 11);
    let faulty = Board::start(
        &design,
        &[
            "--faults",
            "corrupt=1e-4,drop=1e-4,delay=2e-5",
            "--fault-seed",
            &seed.to_string(),
        ],
    );
    let y2 = tmp.path().join("y2.npy");
    let text = run_on(
        &faulty,
        &model,
        &x,
        &y2,
        &["--timeout-ms", "700", "--retries", "20"],
    );
    println!("{text}");
    let report = faulty.finish();
    println!("{report}");
    assert!(text.contains("100 frames: 0 mismatches"), "{text}");
    assert_eq!(
        std::fs::read(&y2).unwrap(),
        want,
        "faulty line: outputs differ"
    );
    assert!(
        !report.contains(
            "host→board: 0 corrupted, 0 dropped, 0 delayed; board→host: 0 corrupted, 0 dropped"
        ),
        "the faults hit nothing: {report}"
    );
}

/// A small random network (45 input bytes a frame) at 1 % corrupted and 1 % dropped
/// bytes both ways: most packets are hit, retries get every frame through.
#[test]
fn one_percent_faults_on_a_small_network() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("r.yaml");
    let x = tmp.path().join("x.npy");
    ok(bnnforge()
        .args(["random", "--seed", "3", "--frames", "12", "--out"])
        .arg(&model)
        .arg("--inputs")
        .arg(&x));
    let want = infer(&model, &x, &tmp.path().join("want.npy"));
    let seed = bnnforge_model::random::test_seed("fault", 5);
    let board = Board::start(
        &repo().join("generated/random-3"),
        &[
            "--faults",
            "corrupt=0.01,drop=0.01",
            "--fault-seed",
            &seed.to_string(),
        ],
    );
    let y = tmp.path().join("y.npy");
    let t = Instant::now();
    let text = run_on(
        &board,
        &model,
        &x,
        &y,
        &["--timeout-ms", "400", "--retries", "300"],
    );
    println!("{text}({:.1} s)", t.elapsed().as_secs_f64());
    let report = board.finish();
    println!("{report}");
    assert!(text.contains("12 frames: 0 mismatches"), "{text}");
    assert_eq!(
        std::fs::read(&y).unwrap(),
        want,
        "outputs differ from infer's"
    );
    assert!(text.contains("recoveries"), "no fault hit a packet: {text}");
}

/// A board built for another network is refused before any frame goes out.
#[test]
fn the_wrong_board_is_refused_before_any_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x.npy");
    common::mnist_npy(3, &x);
    let board = Board::start(&repo().join("generated/random-3"), &[]);
    let out = bnnforge()
        .arg("run")
        .arg(repo().join("models/tfc-w1a1.yaml"))
        .args(["--port", &board.port, "--input"])
        .arg(&x)
        .arg("--output")
        .arg(tmp.path().join("y.npy"))
        .output()
        .unwrap();
    let report = board.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("built for another network") && err.contains("no frame sent"),
        "{err}"
    );
    assert!(!tmp.path().join("y.npy").exists());
    assert!(
        report.contains("received INFO 1, FRAME 0, BENCH 0"),
        "the board saw a frame: {report}"
    );
}

fn one_line_failure(c: &mut Command, code: i32, what: &[&str]) -> Duration {
    let t = Instant::now();
    let out = c.output().unwrap();
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{c:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{c:?}: one line expected: {err}");
    for w in what {
        assert!(err.contains(w), "{c:?}: `{w}` not in: {err}");
    }
    assert!(took < Duration::from_secs(10), "{c:?} took {took:?}");
    took
}

/// No board is attached here: each programmer says so in one line, fast; without the
/// tool on PATH, the tool is named.
#[test]
fn flash_without_a_board_or_without_its_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("top.bin");
    let bit = tmp.path().join("top.bit");
    std::fs::write(&bin, [0u8; 64]).unwrap();
    std::fs::write(&bit, [0u8; 64]).unwrap();
    for (board, file, tool) in [
        ("icebreaker", &bin, "iceprog"),
        ("ulx3s-85f", &bit, "openFPGALoader"),
    ] {
        let took = one_line_failure(
            bnnforge().arg("flash").arg(file).args(["--board", board]),
            1,
            &[tool],
        );
        println!("{board}: no board reported in {took:?}");
        one_line_failure(
            bnnforge()
                .arg("flash")
                .arg(file)
                .args(["--board", board])
                .env("PATH", tmp.path()),
            1,
            &[tool, "not found"],
        );
    }
    // a synth folder with its bitstream in it, and one without
    one_line_failure(
        bnnforge()
            .arg("flash")
            .arg(tmp.path())
            .args(["--board", "icebreaker"]),
        1,
        &["iceprog"],
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    one_line_failure(
        bnnforge()
            .arg("flash")
            .arg(&empty)
            .args(["--board", "icebreaker"]),
        2,
        &["no .bin bitstream"],
    );
    one_line_failure(
        bnnforge().arg("flash").arg(&bin).args(["--board", "arty"]),
        2,
        &["unknown board"],
    );
}

/// A port that is not there and inputs that are not frames: one line, exit status 2.
#[test]
fn bad_port_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x.npy");
    common::mnist_npy(2, &x);
    let model = repo().join("models/tfc-w1a1.yaml");
    let y = tmp.path().join("y.npy");
    one_line_failure(
        bnnforge()
            .arg("run")
            .arg(&model)
            .args(["--port", "/dev/no-such-port", "--input"])
            .arg(&x)
            .arg("--output")
            .arg(&y),
        2,
        &["/dev/no-such-port"],
    );
    let bad = tmp.path().join("bad.npy");
    std::fs::write(&bad, b"not an npy file").unwrap();
    one_line_failure(
        bnnforge()
            .arg("run")
            .arg(&model)
            .args(["--port", "/dev/null", "--input"])
            .arg(&bad)
            .arg("--output")
            .arg(&y),
        2,
        &["bad.npy"],
    );
    one_line_failure(
        bnnforge()
            .arg("board-sim")
            .arg(&model)
            .args(["--faults", "flip=0.1"]),
        2,
        &["unknown fault"],
    );
    assert!(!y.exists());
}
