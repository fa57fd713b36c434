//! `bnnforge run`: the `infer` contract computed by a board over its serial port
//! (protocol 1, see [`crate::host`]), every answer checked against the software model.

use crate::host::{Host, Link, Options, SerialLink, Stats, Verdict};
use bnnforge_model::{npy, Error, Model, Network, Result};
use bnnforge_testbench::protocol::{decode_elements, element_bytes, encode_elements, Info};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::{Duration, Instant};

/// The command line of `bnnforge run`.
pub struct RunArgs<'a> {
    pub model: &'a Path,
    pub port: &'a str,
    pub input: &'a Path,
    pub output: &'a Path,
    pub baud: u32,
    pub check: bool,
    pub labels: Option<&'a Path>,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// What the board must report in INFO to run `net`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub network_hash: u64,
    pub in_elements: u32,
    pub in_bits: u8,
    pub in_signed: bool,
    pub out_elements: u32,
    pub out_bits: u8,
    pub out_signed: bool,
}

impl Expected {
    /// The stream formats `bnnforge build` gives `net` (they do not depend on folding).
    pub fn of(net: &Network, model: &Path) -> Result<Expected> {
        let d = super::build::design(net, model, None, None)?;
        let (i, o) = (d.input(), d.output());
        Ok(Expected {
            network_hash: net.hash(),
            in_elements: i.elements as u32,
            in_bits: i.elem.bits as u8,
            in_signed: i.elem.signed,
            out_elements: o.elements as u32,
            out_bits: o.elem.bits as u8,
            out_signed: o.elem.signed,
        })
    }

    fn describe(h: u64, ie: u32, ib: u8, is: bool, oe: u32, ob: u8, os: bool) -> String {
        let s = |x: bool| if x { "signed" } else { "unsigned" };
        format!(
            "network {h:016x}, {ie} inputs of {ib} bits {}, {oe} outputs of {ob} bits {}",
            s(is),
            s(os)
        )
    }

    /// None when `info` is this network's board, else the one-line refusal.
    pub fn refusal(&self, info: &Info, name: &str) -> Option<String> {
        let board = Expected {
            network_hash: info.network_hash,
            in_elements: info.in_elements,
            in_bits: info.in_bits,
            in_signed: info.in_signed,
            out_elements: info.out_elements,
            out_bits: info.out_bits,
            out_signed: info.out_signed,
        };
        (board != *self).then(|| {
            format!(
                "the board was built for another network: it reports {}; `{name}` is {} \
                 (no frame sent)",
                Expected::describe(
                    board.network_hash,
                    board.in_elements,
                    board.in_bits,
                    board.in_signed,
                    board.out_elements,
                    board.out_bits,
                    board.out_signed
                ),
                Expected::describe(
                    self.network_hash,
                    self.in_elements,
                    self.in_bits,
                    self.in_signed,
                    self.out_elements,
                    self.out_bits,
                    self.out_signed
                )
            )
        })
    }

    /// Encodes frames (C, H, W, back to back) into FRAME payloads (stream order).
    pub fn encode(&self, net: &Network, xs: &[i64]) -> Result<Vec<Vec<u8>>> {
        let n_in = net.input.shape.len().max(1);
        xs.chunks(n_in)
            .enumerate()
            .map(|(i, f)| {
                encode_elements(
                    &super::sim::hwc(net, f),
                    self.in_bits as u32,
                    self.in_signed,
                )
                .ok_or_else(|| {
                    Error::new(format!(
                        "frame {i} has a value that does not fit the board's {}-bit input",
                        self.in_bits
                    ))
                })
            })
            .collect()
    }

    /// Bytes of a RESULT payload.
    pub fn result_bytes(&self) -> usize {
        self.out_elements as usize * element_bytes(self.out_bits as u32)
    }

    /// The values of a RESULT payload.
    pub fn decode(&self, payload: &[u8]) -> Vec<i64> {
        decode_elements(payload, self.out_bits as u32, self.out_signed).unwrap_or_default()
    }
}

/// Why a board session ended early.
pub enum Failure {
    /// Bad input or the wrong board (exit status 2).
    Input(Error),
    /// The link or the board failed (exit status 1).
    Board(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Input(e)
    }
}

/// What a batch on the board gave.
pub struct BoardRun {
    pub info: Info,
    /// the board's outputs, frame after frame
    pub outputs: Vec<i64>,
    /// (frame, index, board, model) of every differing value (empty unchecked)
    pub mismatches: Vec<(usize, usize, i64, i64)>,
    pub secs: f64,
    pub stats: Stats,
}

/// Opens `port`, checks the board's INFO against `net` and runs `xs` (frames C, H, W) on
/// it; `want` are the model's outputs when checking.
#[allow(clippy::too_many_arguments)]
pub fn on_board(
    net: &Network,
    model: &Path,
    port: &str,
    opts: Options,
    xs: &[i64],
    want: Option<&[i64]>,
    show_progress: bool,
) -> std::result::Result<BoardRun, Failure> {
    let exp = Expected::of(net, model)?;
    let frames = exp.encode(net, xs)?;
    let link = open(port, opts.baud)?;
    run_frames(net, &exp, link, opts, &frames, want, show_progress)
}

/// Opens a serial port: a path that is not there (or not a port) is bad input.
pub fn open(port: &str, baud: u32) -> std::result::Result<SerialLink, Failure> {
    if !Path::new(port).exists() {
        return Err(Failure::Input(Error::new(format!(
            "{port}: no such serial port"
        ))));
    }
    SerialLink::open(port, baud).map_err(|e| Failure::Input(Error::new(e)))
}

fn run_frames<L: Link>(
    net: &Network,
    exp: &Expected,
    link: L,
    opts: Options,
    frames: &[Vec<u8>],
    want: Option<&[i64]>,
    show_progress: bool,
) -> std::result::Result<BoardRun, Failure> {
    let mut host = Host::new(link, opts);
    let info = host.info().map_err(Failure::Board)?;
    if let Some(r) = exp.refusal(&info, &net.name) {
        return Err(Failure::Input(Error::new(r)));
    }
    let k = exp.out_elements as usize;
    let bar = (show_progress && frames.len() > 1).then(|| {
        let p = ProgressBar::new(frames.len() as u64);
        p.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} frames ({per_sec})")
                .expect("template"),
        );
        p.set_message("on the board");
        p
    });
    let t = Instant::now();
    let mut verdict = |i: usize, p: &[u8]| match want {
        Some(w) => {
            let y = exp.decode(p);
            let mine = &w[i * k..(i + 1) * k];
            let next = w.get((i + 1) * k..(i + 2) * k);
            if y != mine && next == Some(y.as_slice()) {
                Verdict::Shifted
            } else {
                Verdict::Accept
            }
        }
        None => Verdict::Accept,
    };
    let result = host.run_frames(frames, exp.result_bytes(), &mut verdict, &mut |n| {
        if let Some(b) = &bar {
            b.set_position(n as u64)
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let answers = result.map_err(Failure::Board)?;
    let secs = t.elapsed().as_secs_f64();
    let outputs: Vec<i64> = answers.iter().flat_map(|a| exp.decode(a)).collect();
    let mut mismatches = vec![];
    if let Some(w) = want {
        for (i, (a, b)) in outputs.iter().zip(w).enumerate() {
            if a != b {
                mismatches.push((i / k.max(1), i % k.max(1), *a, *b));
            }
        }
    }
    Ok(BoardRun {
        info,
        outputs,
        mismatches,
        secs,
        stats: host.stats,
    })
}

pub fn run(a: &RunArgs) -> Result<()> {
    let net = bnnforge_model::load(a.model)?;
    let (n, xs) = npy::read_inputs(a.input, &net.input)?;
    let k = net.output_shape().len();
    let labels = a
        .labels
        .map(|p| super::infer::read_labels(p, n, k))
        .transpose()?;
    if a.timeout_ms == 0 {
        return Err(Error::new("--timeout-ms must be at least 1"));
    }
    if a.baud == 0 {
        return Err(Error::new("--baud must be at least 1"));
    }
    let want = a.check.then(|| Model::new(&net).eval_batch(&xs));
    let opts = Options {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        baud: a.baud,
    };
    let r = match on_board(&net, a.model, a.port, opts, &xs, want.as_deref(), true) {
        Ok(r) => r,
        Err(Failure::Input(e)) => return Err(e),
        Err(Failure::Board(e)) => {
            eprintln!("error: {}: {e}", a.port);
            std::process::exit(1);
        }
    };
    npy::write_i64(a.output, &[n, k], &r.outputs)?;
    let bytes = r.stats.bytes_out.max(r.stats.bytes_in);
    println!(
        "{n} frames on the board ({:016x}, {:.1} MHz, {} baud) in {:.2} s: {:.1} frames/s \
         over the link ({:.1} kB/s)",
        r.info.network_hash,
        r.info.clock_hz as f64 / 1e6,
        r.info.baud,
        r.secs,
        n as f64 / r.secs.max(1e-9),
        bytes as f64 / r.secs.max(1e-9) / 1e3
    );
    if r.stats.anomalies > 0 {
        println!("link: {}", r.stats.summary());
    }
    if a.check {
        println!(
            "{n} frames: {} mismatches against the model",
            r.mismatches.len()
        );
        if let Some(&(f, j, b, m)) = r.mismatches.first() {
            println!("first mismatch: frame {f}, output {j}: board {b}, model {m}");
        }
    }
    if let Some(labels) = labels {
        let correct = r
            .outputs
            .chunks(k.max(1))
            .zip(&labels)
            .filter(|(y, &l)| super::argmax(y) as i64 == l)
            .count();
        println!(
            "accuracy: {correct}/{n} ({:.2} %)",
            100.0 * correct as f64 / n.max(1) as f64
        );
    }
    if let Some(&(f, j, b, m)) = r.mismatches.first() {
        // not bad input but a failed verification: exit status 1, the outputs written
        eprintln!(
            "error: the board differs from the model in {} values (first: frame {f}, \
             output {j}: board {b}, model {m})",
            r.mismatches.len()
        );
        std::process::exit(1);
    }
    Ok(())
}
