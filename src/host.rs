//! The host side of board protocol 1 (`shared/spec/board-protocol.md`): frames out,
//! answers back, over any byte [`Link`] (a serial port, the simulated board's pty, or a
//! test double), with recovery from lost and damaged bytes.
//!
//! # Recovery without sequence numbers
//! A RESULT does not say which frame it answers; the board answers every packet it
//! received whole, in order, so order is all the host has. Every FRAME is followed by an
//! INFO, so the answers alternate RESULT, INFO. A request the board never saw (its start
//! byte lost, or cut off by a pause) shifts that pattern: the host then sees an INFO where
//! a RESULT belongs, or a RESULT where an INFO belongs. A RESULT is accepted only when the
//! INFO after it arrives in place.
//!
//! At most two frames are unanswered (the board has two frame buffers): the next frame
//! goes out while the board computes and answers the last, which keeps the link busy.
//!
//! Any anomaly (an answer with a bad CRC, an ERROR, an unexpected type or length, no
//! answer before the deadline) makes the host stop sending, read until the line has been
//! quiet for the answer timeout (the board has then answered or dropped everything it
//! had: its own inter-byte timeout is 20 ms), and send again, in order, every frame not
//! yet accepted. Each answer that never came lengthens that quiet period by one
//! timeout (up to 16) until a frame is accepted: a packet whose length field was damaged makes
//! the board swallow what follows until its inter-byte timeout, which only a quiet line
//! lets fire (a simulated board counts its 20 ms in clock cycles, slower than a wall
//! clock). Answers are only ever appended for the oldest unaccepted frame, so a
//! frame can neither be skipped nor answered twice. Each frame gets a bounded number of
//! attempts; every read has a deadline, so the host never hangs.
//!
//! After an anomaly the next few frames go one at a time without the INFO: after a quiet
//! line, with a single request outstanding, the only RESULT that can come is its own, so
//! the marker is not needed, and the shorter exchange gets through a bad line more
//! often. On a clean line the pipelined pattern returns.
//!
//! One loss the pattern cannot see: a FRAME and its INFO both lost without a trace while
//! the next pair arrives, so the next frame's RESULT, INFO stand where the lost one's
//! belonged (two start bytes lost in a row: about p² per frame at a per-byte fault rate
//! p). With the model at hand ([`Verdict`]) such an answer is recognised (it is the next
//! frame's output) and treated as an anomaly; without it (`--no-check`) it is not.

use bnnforge_model::random::{seeded, Rng, SeededRng};
use bnnforge_testbench::protocol::{kind, Info, Packet, Received, Receiver, OVERHEAD_BYTES};
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

/// A byte link to a board.
pub trait Link {
    /// Sends all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The bytes that arrived, waiting at most `wait` for the first; empty on a timeout.
    fn recv(&mut self, wait: Duration) -> io::Result<Vec<u8>>;
}

/// A serial port (or the simulated board's pseudo-terminal).
pub struct SerialLink {
    port: Box<dyn serialport::SerialPort>,
}

impl SerialLink {
    /// Opens `path` at `baud`, 8N1, no flow control.
    pub fn open(path: &str, baud: u32) -> Result<SerialLink, String> {
        let port = serialport::new(path, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open()
            .map_err(|e| format!("cannot open serial port {path}: {e}"))?;
        let _ = port.clear(serialport::ClearBuffer::All);
        Ok(SerialLink { port })
    }
}

impl Link for SerialLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // a write that cannot complete (nothing reads the other end) times out
        self.port.set_timeout(Duration::from_secs(2))?;
        io::Write::write_all(&mut self.port, bytes)?;
        io::Write::flush(&mut self.port)
    }

    fn recv(&mut self, wait: Duration) -> io::Result<Vec<u8>> {
        self.port.set_timeout(wait.max(Duration::from_millis(1)))?;
        let mut buf = vec![0u8; 4096];
        match io::Read::read(&mut self.port, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(e),
        }
    }
}

/// How patient the host is.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Longest silence while an answer is due; also how long the line must be quiet
    /// before frames are sent again after an anomaly.
    pub timeout: Duration,
    /// Attempts per frame after the first.
    pub retries: u32,
    /// The line's baud rate: the time to send what is in flight adds to the deadline.
    pub baud: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_millis(1000),
            retries: 8,
            baud: 115_200,
        }
    }
}

/// What went wrong on the way, counted.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Recoveries: line drained and frames sent again.
    pub anomalies: u64,
    /// Answers whose CRC failed.
    pub bad_crc: u64,
    /// ERROR answers.
    pub errors: u64,
    /// Answers of a type or length out of place.
    pub unexpected: u64,
    /// Answers not there before the deadline.
    pub timeouts: u64,
    /// Answers recognised as the next frame's (a lost pair of requests).
    pub shifted: u64,
    /// FRAME packets sent again.
    pub resent: u64,
    /// Bytes sent and received.
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl Stats {
    /// One line for reports.
    pub fn summary(&self) -> String {
        format!(
            "{} recoveries ({} bad CRC, {} ERROR, {} out of place, {} timeouts, {} shifted), \
             {} frames sent again",
            self.anomalies,
            self.bad_crc,
            self.errors,
            self.unexpected,
            self.timeouts,
            self.shifted,
            self.resent
        )
    }
}

/// The caller's judgement of a RESULT payload for frame `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Take it (whether or not it matches the model: mismatches are the caller's report).
    Accept,
    /// It is the answer to a later frame: requests were lost; recover.
    Shifted,
}

/// Frames unanswered at most (the board has two frame buffers).
const WINDOW: usize = 2;
/// Frames sent one at a time, without the INFO marker, after an anomaly.
const CAREFUL_FRAMES: usize = 4;

/// A host talking to one board.
pub struct Host<L: Link> {
    link: L,
    rx: Receiver,
    got: VecDeque<Received>,
    pub opts: Options,
    pub stats: Stats,
    /// The drain's quiet period in timeouts: doubles after each answer that never came
    /// (the board may be swallowing bytes into a packet whose length was damaged, until
    /// its inter-byte timeout, which a simulated board counts slower than a wall clock).
    backoff: u32,
}

fn describe(r: &Option<Received>) -> String {
    match r {
        None => "no answer before the deadline".into(),
        Some(Received::BadCrc { kind }) => format!("an answer (type 0x{kind:02x}) with a bad CRC"),
        Some(Received::Packet(p)) if p.kind == kind::ERROR => format!(
            "ERROR {} ({})",
            p.payload.first().copied().unwrap_or(0),
            match p.payload.first() {
                Some(1) => "bad CRC",
                Some(2) => "unknown type",
                Some(3) => "wrong length",
                Some(4) => "value out of range",
                _ => "unknown code",
            }
        ),
        Some(Received::Packet(p)) => format!(
            "an answer of type 0x{:02x} with {} payload bytes out of place",
            p.kind,
            p.payload.len()
        ),
    }
}

impl<L: Link> Host<L> {
    pub fn new(link: L, opts: Options) -> Host<L> {
        Host {
            link,
            rx: Receiver::new(),
            got: VecDeque::new(),
            opts,
            stats: Stats::default(),
            backoff: 1,
        }
    }

    /// Time to move `bytes` over the line (10 bits a byte).
    pub fn line_time(&self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 10.0 / self.opts.baud.max(1) as f64)
    }

    fn send(&mut self, p: &Packet) -> Result<(), String> {
        let bytes = p.encode();
        self.stats.bytes_out += bytes.len() as u64;
        self.link
            .send(&bytes)
            .map_err(|e| format!("cannot write to the board: {e}"))
    }

    /// The next answer; `None` when the line stays silent for the timeout (plus `extra`)
    /// or no whole packet arrives within a few timeouts.
    fn next(&mut self, extra: Duration) -> Result<Option<Received>, String> {
        let start = Instant::now();
        let cap = start + extra + 4 * self.opts.timeout;
        let mut deadline = start + extra + self.opts.timeout;
        loop {
            if let Some(r) = self.got.pop_front() {
                return Ok(Some(r));
            }
            let now = Instant::now();
            if now >= deadline.min(cap) {
                self.rx.abandon();
                return Ok(None);
            }
            let bytes = self
                .link
                .recv(deadline.min(cap) - now)
                .map_err(|e| format!("cannot read from the board: {e}"))?;
            if !bytes.is_empty() {
                self.stats.bytes_in += bytes.len() as u64;
                deadline = deadline.max(Instant::now() + self.opts.timeout);
            }
            for b in bytes {
                if let Some(r) = self.rx.push(b) {
                    self.got.push_back(r);
                }
            }
        }
    }

    /// Reads until the line has been quiet for the timeout (times the backoff),
    /// dropping everything.
    pub fn drain(&mut self) -> Result<(), String> {
        self.got.clear();
        self.rx.abandon();
        let start = Instant::now();
        let quiet = self.opts.timeout * self.backoff;
        loop {
            let bytes = self
                .link
                .recv(quiet)
                .map_err(|e| format!("cannot read from the board: {e}"))?;
            if bytes.is_empty() {
                break;
            }
            self.stats.bytes_in += bytes.len() as u64;
            if start.elapsed() > 20 * quiet {
                return Err(format!(
                    "the board does not stop sending (still sending after {:.1} s)",
                    start.elapsed().as_secs_f64()
                ));
            }
        }
        self.rx = Receiver::new();
        Ok(())
    }

    fn anomaly(&mut self, r: &Option<Received>) -> Result<(), String> {
        self.stats.anomalies += 1;
        match r {
            None => {
                self.stats.timeouts += 1;
                self.backoff = (self.backoff + 1).min(16);
            }
            Some(Received::BadCrc { .. }) => self.stats.bad_crc += 1,
            Some(Received::Packet(p)) if p.kind == kind::ERROR => self.stats.errors += 1,
            Some(_) => self.stats.unexpected += 1,
        }
        self.drain()
    }

    /// The board's INFO.
    pub fn info(&mut self) -> Result<Info, String> {
        let mut last = String::new();
        for _ in 0..=self.opts.retries {
            self.send(&Packet::new(kind::INFO, vec![]))?;
            let r = self.next(Duration::ZERO)?;
            if let Some(Received::Packet(p)) = &r {
                if p.kind == kind::INFO_REPLY {
                    match Info::decode(&p.payload) {
                        Some(i) if i.protocol == 1 => {
                            self.backoff = 1;
                            return Ok(i);
                        }
                        Some(i) => {
                            return Err(format!(
                                "the board speaks protocol {}, this host protocol 1",
                                i.protocol
                            ))
                        }
                        None => last = "an INFO answer that is not protocol 1's".into(),
                    }
                } else {
                    last = describe(&r);
                }
            } else {
                last = describe(&r);
            }
            self.anomaly(&r)?;
        }
        Err(format!(
            "no INFO answer from the board in {} attempts (last: {last})",
            self.opts.retries + 1
        ))
    }

    /// Sends `frames` (encoded input frames) and returns their RESULT payloads, in order.
    /// `result_bytes` is the payload length a RESULT must have; `verdict` judges each
    /// RESULT before it is accepted; `progress` hears the number of accepted frames.
    pub fn run_frames(
        &mut self,
        frames: &[Vec<u8>],
        result_bytes: usize,
        verdict: &mut dyn FnMut(usize, &[u8]) -> Verdict,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<u8>>, String> {
        let n = frames.len();
        let mut answers: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut in_flight = 0;
        let mut attempts = 0u32;
        let mut sent = vec![false; n];
        // frames still to go one at a time, unmarked, after an anomaly
        let mut careful = 0usize;
        while answers.len() < n {
            let first = answers.len();
            let window = if careful > 0 { 1 } else { WINDOW };
            while in_flight < window && first + in_flight < n {
                let i = first + in_flight;
                if sent[i] {
                    self.stats.resent += 1;
                }
                sent[i] = true;
                let mut bytes = Packet::new(kind::FRAME, frames[i].clone()).encode();
                if careful == 0 {
                    bytes.extend(Packet::new(kind::INFO, vec![]).encode());
                }
                self.stats.bytes_out += bytes.len() as u64;
                self.link
                    .send(&bytes)
                    .map_err(|e| format!("cannot write to the board: {e}"))?;
                in_flight += 1;
            }
            let on_line: usize = (first..first + in_flight)
                .map(|i| frames[i].len() + 2 * OVERHEAD_BYTES)
                .sum();
            let extra = self.line_time(on_line);
            let r = self.next(extra)?;
            let problem = match &r {
                Some(Received::Packet(p))
                    if p.kind == kind::RESULT && p.payload.len() == result_bytes =>
                {
                    // one frame alone after a quiet line: its RESULT can only be its own
                    let r2 = if careful > 0 {
                        None
                    } else {
                        Some(self.next(Duration::ZERO)?)
                    };
                    match &r2 {
                        None => {
                            let _ = verdict(first, &p.payload);
                            answers.push(p.payload.clone());
                            in_flight = 0;
                            attempts = 0;
                            self.backoff = 1;
                            careful -= 1;
                            progress(answers.len());
                            continue;
                        }
                        Some(Some(Received::Packet(q))) if q.kind == kind::INFO_REPLY => {
                            if verdict(first, &p.payload) == Verdict::Accept {
                                answers.push(p.payload.clone());
                                in_flight -= 1;
                                attempts = 0;
                                self.backoff = 1;
                                progress(answers.len());
                                continue;
                            }
                            self.stats.shifted += 1;
                            self.stats.anomalies += 1;
                            self.drain()?;
                            format!(
                                "frame {first} was answered with the next frame's output \
                                 (requests lost)"
                            )
                        }
                        Some(r2) => {
                            let d = describe(r2);
                            self.anomaly(r2)?;
                            format!("{d} after frame {first}'s RESULT")
                        }
                    }
                }
                _ => {
                    let d = describe(&r);
                    self.anomaly(&r)?;
                    d
                }
            };
            in_flight = 0;
            careful = CAREFUL_FRAMES;
            attempts += 1;
            if attempts > self.opts.retries {
                return Err(format!(
                    "frame {first}: no valid answer in {attempts} attempts (last: {problem}); \
                     {}",
                    self.stats.summary()
                ));
            }
        }
        Ok(answers)
    }

    /// Runs `frame` `count` times back to back on the board (BENCH); returns the board's
    /// cycle count and the last output's payload. `extra` is added to the answer's
    /// deadline (the computing time).
    pub fn bench(
        &mut self,
        count: u32,
        frame: &[u8],
        result_bytes: usize,
        extra: Duration,
    ) -> Result<(u64, Vec<u8>), String> {
        let mut payload = count.to_le_bytes().to_vec();
        payload.extend_from_slice(frame);
        let mut last = String::new();
        for _ in 0..=self.opts.retries {
            self.send(&Packet::new(kind::BENCH, payload.clone()))?;
            let r = self.next(extra + self.line_time(payload.len() + OVERHEAD_BYTES))?;
            if let Some(Received::Packet(p)) = &r {
                if p.kind == kind::BENCH_REPLY && p.payload.len() == 8 + result_bytes {
                    let mut c = [0u8; 8];
                    c.copy_from_slice(&p.payload[..8]);
                    self.backoff = 1;
                    return Ok((u64::from_le_bytes(c), p.payload[8..].to_vec()));
                }
            }
            last = describe(&r);
            self.anomaly(&r)?;
        }
        Err(format!(
            "no BENCH answer from the board in {} attempts (last: {last})",
            self.opts.retries + 1
        ))
    }
}

/// Bytes of a FRAME packet of `payload` bytes on the wire.
pub fn packet_bytes(payload: usize) -> usize {
    payload + OVERHEAD_BYTES
}

/// Per-byte fault rates of a simulated line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a byte has one random bit flipped.
    pub corrupt: f64,
    /// Probability that a byte is lost.
    pub drop: f64,
    /// Probability that the line pauses before a byte (1 to 40 ms, sometimes longer
    /// than the board's 20 ms inter-byte timeout).
    pub delay: f64,
}

impl Faults {
    /// Parses `corrupt=P,drop=P,delay=P` (any subset, each P in [0, 1)).
    pub fn parse(s: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("--faults: `{part}` is not NAME=P"))?;
            let p: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("--faults: `{v}` is not a probability"))?;
            if !(0.0..1.0).contains(&p) {
                return Err(format!("--faults: {k}={p} must be in [0, 1)"));
            }
            match k.trim() {
                "corrupt" => f.corrupt = p,
                "drop" => f.drop = p,
                "delay" => f.delay = p,
                other => {
                    return Err(format!(
                        "--faults: unknown fault `{other}` (corrupt, drop, delay)"
                    ))
                }
            }
        }
        Ok(f)
    }
}

/// What happens to one byte on a faulty line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Arrives as it is, or corrupted (the byte given), after a pause of this many
    /// microseconds (0: none).
    Arrives {
        byte: u8,
        pause_us: u32,
    },
    Lost,
}

/// Seeded fault injection, byte by byte.
#[derive(Clone, Debug)]
pub struct Injector {
    pub faults: Faults,
    rng: SeededRng,
    /// Bytes corrupted, dropped, delayed so far.
    pub corrupted: u64,
    pub dropped: u64,
    pub delayed: u64,
}

impl Injector {
    pub fn new(faults: Faults, seed: u64) -> Injector {
        Injector {
            faults,
            rng: seeded(seed),
            corrupted: 0,
            dropped: 0,
            delayed: 0,
        }
    }

    pub fn fate(&mut self, byte: u8) -> Fate {
        if self.rng.gen_bool(self.faults.drop) {
            self.dropped += 1;
            return Fate::Lost;
        }
        let mut b = byte;
        if self.rng.gen_bool(self.faults.corrupt) {
            self.corrupted += 1;
            b ^= 1 << self.rng.gen_range(0..8);
        }
        let mut pause_us = 0;
        if self.rng.gen_bool(self.faults.delay) {
            self.delayed += 1;
            pause_us = self.rng.gen_range(1_000..=40_000);
        }
        Fate::Arrives { byte: b, pause_us }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnnforge_testbench::protocol::{crc16, encode_elements};

    /// An in-memory board as the protocol describes it (answers every whole packet in
    /// order; drops a packet cut off when the host falls silent), behind a faulty line.
    struct FakeBoard {
        rx: Receiver,
        out: VecDeque<u8>,
        up: Injector,
        down: Injector,
        info: Info,
        frames_seen: u64,
    }

    fn fake_info() -> Info {
        Info {
            protocol: 1,
            network_hash: 42,
            clock_hz: 48_000_000,
            baud: 3_000_000,
            in_elements: 5,
            in_bits: 8,
            in_signed: false,
            out_elements: 2,
            out_bits: 16,
            out_signed: true,
            cycles_per_frame: 7,
        }
    }

    /// The fake accelerator: sum and CRC of the frame.
    fn compute(frame: &[u8]) -> Vec<u8> {
        let s: i64 = frame.iter().map(|&b| b as i64).sum();
        encode_elements(&[s, crc16(frame) as i16 as i64], 16, true).unwrap()
    }

    impl FakeBoard {
        fn new(faults: Faults, seed: u64) -> FakeBoard {
            FakeBoard {
                rx: Receiver::new(),
                out: VecDeque::new(),
                up: Injector::new(faults, seed),
                down: Injector::new(faults, seed ^ 0x5555),
                info: fake_info(),
                frames_seen: 0,
            }
        }

        fn answer(&mut self, p: Packet) {
            let a = match p.kind {
                kind::INFO => Packet::new(kind::INFO_REPLY, self.info.encode()),
                kind::FRAME if p.payload.len() == 5 => {
                    self.frames_seen += 1;
                    Packet::new(kind::RESULT, compute(&p.payload))
                }
                kind::BENCH if p.payload.len() == 9 => {
                    let n = u32::from_le_bytes(p.payload[..4].try_into().unwrap()) as u64;
                    let mut v = (n * 7 + 3).to_le_bytes().to_vec();
                    v.extend(compute(&p.payload[4..]));
                    Packet::new(kind::BENCH_REPLY, v)
                }
                kind::FRAME | kind::BENCH => Packet::new(kind::ERROR, vec![3]),
                _ => Packet::new(kind::ERROR, vec![2]),
            };
            for b in a.encode() {
                match self.down.fate(b) {
                    Fate::Lost => {}
                    // a pause on the way back: the host may time out; model it as a cut
                    Fate::Arrives { byte, pause_us } => {
                        if pause_us > 20_000 {
                            continue;
                        }
                        self.out.push_back(byte)
                    }
                }
            }
        }
    }

    impl Link for FakeBoard {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            for &b in bytes {
                match self.up.fate(b) {
                    Fate::Lost => {}
                    Fate::Arrives { byte, pause_us } => {
                        if pause_us > 20_000 {
                            self.rx.abandon();
                        }
                        match self.rx.push(byte) {
                            Some(Received::Packet(p)) => self.answer(p),
                            Some(Received::BadCrc { .. }) => {
                                self.answer(Packet::new(kind::ERROR, vec![1]))
                            }
                            None => {}
                        }
                    }
                }
            }
            Ok(())
        }

        fn recv(&mut self, wait: Duration) -> io::Result<Vec<u8>> {
            if self.out.is_empty() {
                // the host is silent: the board's inter-byte timeout fires
                self.rx.abandon();
                std::thread::sleep(wait.min(Duration::from_micros(200)));
                return Ok(vec![]);
            }
            let n = self.out.len().min(37);
            Ok(self.out.drain(..n).collect())
        }
    }

    fn frames(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut r = seeded(seed);
        (0..n)
            .map(|_| (0..5).map(|_| r.gen::<u8>()).collect())
            .collect()
    }

    fn run(
        faults: Faults,
        seed: u64,
        n: usize,
        check: bool,
    ) -> (Vec<Vec<u8>>, Stats, Vec<Vec<u8>>) {
        let fs = frames(n, seed);
        let want: Vec<Vec<u8>> = fs.iter().map(|f| compute(f)).collect();
        let mut host = Host::new(
            FakeBoard::new(faults, seed),
            Options {
                timeout: Duration::from_millis(2),
                retries: 200,
                baud: 3_000_000,
            },
        );
        let info = host.info().unwrap();
        assert_eq!(info, fake_info());
        let mut verdict = |i: usize, p: &[u8]| {
            if check && p != want[i].as_slice() && want.get(i + 1).is_some_and(|w| w == p) {
                Verdict::Shifted
            } else {
                Verdict::Accept
            }
        };
        let mut last = 0;
        let got = host
            .run_frames(&fs, 4, &mut verdict, &mut |k| {
                assert_eq!(k, last + 1, "progress counts every frame once");
                last = k;
            })
            .unwrap();
        (got, host.stats.clone(), want)
    }

    #[test]
    fn a_clean_line_answers_every_frame_once() {
        let (got, stats, want) = run(Faults::default(), 1, 50, true);
        assert_eq!(got, want);
        assert_eq!(stats.anomalies, 0);
        assert_eq!(stats.resent, 0);
    }

    #[test]
    fn faults_both_ways_still_give_every_answer_in_order() {
        let seed = bnnforge_model::random::test_seed("faults_both_ways", 7);
        for (i, rate) in [0.002, 0.01, 0.02].into_iter().enumerate() {
            let f = Faults {
                corrupt: rate,
                drop: rate,
                delay: rate / 4.0,
            };
            let (got, stats, want) = run(f, seed + i as u64, 300, true);
            println!("rate {rate}: {}", stats.summary());
            assert_eq!(got, want, "rate {rate}");
            assert!(stats.anomalies > 0, "rate {rate}: the faults hit nothing");
        }
    }

    #[test]
    fn a_dead_board_is_reported_not_waited_for() {
        struct Dead;
        impl Link for Dead {
            fn send(&mut self, _: &[u8]) -> io::Result<()> {
                Ok(())
            }
            fn recv(&mut self, wait: Duration) -> io::Result<Vec<u8>> {
                std::thread::sleep(wait);
                Ok(vec![])
            }
        }
        let mut h = Host::new(
            Dead,
            Options {
                timeout: Duration::from_millis(5),
                retries: 3,
                baud: 3_000_000,
            },
        );
        let t = Instant::now();
        let e = h.info().unwrap_err();
        assert!(
            e.contains("no INFO answer") && e.contains("4 attempts"),
            "{e}"
        );
        let e = h
            .run_frames(&frames(3, 1), 4, &mut |_, _| Verdict::Accept, &mut |_| {})
            .unwrap_err();
        assert!(
            e.starts_with("frame 0: no valid answer in 4 attempts"),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn bench_reads_the_cycle_count() {
        let mut h = Host::new(FakeBoard::new(Faults::default(), 1), Options::default());
        let (c, y) = h.bench(10, &[1, 2, 3, 4, 5], 4, Duration::ZERO).unwrap();
        assert_eq!(c, 73);
        assert_eq!(y, compute(&[1, 2, 3, 4, 5]));
    }

    #[test]
    fn faults_parse_and_refuse() {
        let f = Faults::parse("corrupt=0.01,drop=0.02").unwrap();
        assert_eq!((f.corrupt, f.drop, f.delay), (0.01, 0.02, 0.0));
        assert!(Faults::parse("flip=0.1")
            .unwrap_err()
            .contains("unknown fault"));
        assert!(Faults::parse("drop=1.5").unwrap_err().contains("[0, 1)"));
        assert!(Faults::parse("drop").is_err());
    }
}
