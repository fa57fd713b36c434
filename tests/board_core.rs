//! The board core (`hdl/board/`, `bnnforge_hdl::boards::core`) around the golden designs of
//! `generated/`, in Verilator, spoken to over its simulated UART with the protocol codec
//! of `bnnforge_testbench::protocol`: every answer of board protocol 1, checked against
//! the software model; error answers and resynchronisation; lint and synthesis.

mod common;

use bnnforge_hdl::boards::core::{board_core_files, board_core_module, BoardCoreParams};
use bnnforge_testbench::protocol::{
    self, decode_elements, encode_elements, error_code, kind, Info, Packet, Received, Receiver,
};
use bnnforge_testbench::{BoardSim, Manifest};
use common::repo;
use std::path::{Path, PathBuf};

const CLOCK_HZ: u32 = 48_000_000;
const BAUD: u32 = 3_000_000;

/// The board core's parameters for the design in `dir` (its manifest).
fn params(m: &Manifest, clock_hz: u32, baud: u32) -> BoardCoreParams {
    BoardCoreParams {
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
        network_hash: m.network_hash.expect("a manifest with network_hash"),
        cycles_per_frame: m
            .cycles_per_frame
            .expect("a manifest with cycles_per_frame"),
    }
}

/// Writes the board core's files into `out`; returns their paths.
fn write_core(p: &BoardCoreParams, out: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    board_core_files(p)
        .into_iter()
        .map(|(name, text)| {
            let f = out.join(name);
            std::fs::write(&f, text).unwrap();
            f
        })
        .collect()
}

/// A simulated board and the host's side of the line.
struct Board {
    sim: BoardSim,
    rx: Receiver,
    p: BoardCoreParams,
    m: Manifest,
}

impl Board {
    fn new(design: &str, tmp: &Path) -> Board {
        let m = Manifest::load(&repo().join("generated").join(design)).unwrap();
        let p = params(&m, CLOCK_HZ, BAUD);
        let mut verilog = m.verilog.clone();
        verilog.extend(write_core(&p, &tmp.join(design)));
        let t = std::time::Instant::now();
        let sim = BoardSim::build(&verilog, &board_core_module(&p), CLOCK_HZ, BAUD)
            .unwrap_or_else(|e| panic!("{design}: {e}"));
        println!(
            "{design}: board core built in {:.1} s ({} cycles a bit)",
            t.elapsed().as_secs_f64(),
            sim.cycles_per_bit()
        );
        Board {
            sim,
            rx: Receiver::new(),
            p,
            m,
        }
    }

    fn send(&mut self, p: &Packet) {
        self.sim.write(&p.encode());
    }

    /// Runs until `n` packets have come back (or `max_cycles` pass: a failure).
    fn recv(&mut self, n: usize, max_cycles: u64) -> Vec<Packet> {
        let start = self.sim.cycle();
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                self.sim.cycle() - start < max_cycles,
                "only {} of {n} answers after {max_cycles} cycles",
                got.len()
            );
            for b in self.sim.run(2_000).unwrap() {
                match self.rx.push(b) {
                    Some(Received::Packet(p)) => got.push(p),
                    Some(Received::BadCrc { kind }) => {
                        panic!("the board sent a packet of type {kind:#04x} with a bad CRC")
                    }
                    None => {}
                }
            }
        }
        got
    }

    fn recv1(&mut self) -> Packet {
        self.recv(1, 2_000_000).remove(0)
    }

    /// Runs `cycles` and checks that nothing comes back.
    fn silence(&mut self, cycles: u64) {
        let bytes = self.sim.run(cycles).unwrap();
        assert!(bytes.is_empty(), "unexpected bytes {bytes:02x?}");
    }

    fn frame_bytes(&self, x: &[i64]) -> Vec<u8> {
        encode_elements(x, self.p.in_bits, self.p.in_signed).expect("a valid frame")
    }

    fn frame(&self, x: &[i64]) -> Packet {
        Packet::new(kind::FRAME, self.frame_bytes(x))
    }

    fn bench(&self, count: u32, x: &[i64]) -> Packet {
        let mut v = count.to_le_bytes().to_vec();
        v.extend(self.frame_bytes(x));
        Packet::new(kind::BENCH, v)
    }

    fn values(&self, payload: &[u8]) -> Vec<i64> {
        let v = decode_elements(payload, self.p.out_bits, self.p.out_signed).unwrap();
        assert_eq!(v.len(), self.p.out_elements, "values in the answer");
        v
    }

    fn expect_result(&mut self, want: &[i64]) {
        let a = self.recv1();
        assert_eq!(a.kind, kind::RESULT, "answer {a:?}");
        assert_eq!(self.values(&a.payload), want);
    }

    fn expect_error(&mut self, code: u8) {
        let a = self.recv1();
        assert_eq!(
            (a.kind, a.payload.clone()),
            (kind::ERROR, vec![code]),
            "expected ERROR {code}"
        );
        assert!(self.sim.leds().1, "the error LED is lit after an ERROR");
    }

    /// BENCH of `count` runs: (cycles, values).
    fn run_bench(&mut self, count: u32, x: &[i64]) -> (u64, Vec<i64>) {
        let p = self.bench(count, x);
        self.send(&p);
        let runs = count as u64 * self.m.cycles_per_frame.unwrap();
        let a = self.recv(1, 2_000_000 + 2 * runs).remove(0);
        assert_eq!(a.kind, kind::BENCH_REPLY, "answer {a:?}");
        let cycles = u64::from_le_bytes(a.payload[..8].try_into().unwrap());
        (cycles, self.values(&a.payload[8..]))
    }

    fn check_info(&mut self) {
        self.send(&Packet::new(kind::INFO, vec![]));
        let a = self.recv1();
        assert_eq!(a.kind, kind::INFO_REPLY);
        let info = Info::decode(&a.payload).expect("an INFO payload");
        let p = &self.p;
        assert_eq!(
            info,
            Info {
                protocol: 1,
                network_hash: self.m.network_hash.unwrap(),
                clock_hz: p.clock_hz,
                baud: p.baud,
                in_elements: p.in_elements as u32,
                in_bits: p.in_bits as u8,
                in_signed: p.in_signed,
                out_elements: p.out_elements as u32,
                out_bits: p.out_bits as u8,
                out_signed: p.out_signed,
                cycles_per_frame: p.cycles_per_frame as u32,
            }
        );
    }
}

/// CHW values → HWC (stream order) for a `c × h × w` tensor.
fn hwc(x: &[i64], c: usize, h: usize, w: usize) -> Vec<i64> {
    let mut v = Vec::with_capacity(x.len());
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                v.push(x[(ch * h + y) * w + xx]);
            }
        }
    }
    v
}

/// The network's frames in stream order and the model's outputs in stream order.
fn reference(net_file: &Path, frames: &[Vec<i64>]) -> (Vec<Vec<i64>>, Vec<Vec<i64>>) {
    let net = bnnforge_model::load(net_file).unwrap();
    let model = bnnforge_model::Model::new(&net);
    let s = net.input.shape;
    let o = net.output_shape();
    let ins = frames.iter().map(|f| hwc(f, s.c, s.h, s.w)).collect();
    let outs = frames
        .iter()
        .map(|f| hwc(&model.eval(f), o.c, o.h, o.w))
        .collect();
    (ins, outs)
}

/// The first `n` MNIST test images, 784 pixels each.
fn mnist(n: usize) -> Vec<Vec<i64>> {
    use std::io::Read;
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(repo().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap(),
    );
    let mut raw = vec![];
    gz.read_to_end(&mut raw).unwrap();
    raw[16..16 + n * 784]
        .chunks(784)
        .map(|c| c.iter().map(|&p| p as i64).collect())
        .collect()
}

/// TFC (8-bit unsigned pixels in, 10 signed 8-bit scores out) at 48 MHz and 3 Mbaud:
/// every answer of the protocol, the errors, resynchronisation, BENCH's cycle count.
#[test]
fn tfc_board_core_answers_every_packet() {
    let tmp = tempfile::tempdir().unwrap();
    let (xs, ys) = reference(&repo().join("models/tfc-w1a1.yaml"), &mnist(6));
    let mut b = Board::new("tfc-w1a1", tmp.path());
    let t = std::time::Instant::now();
    let c0 = b.sim.cycle();

    // INFO
    b.check_info();
    assert!(b.sim.leds().0, "the activity LED is lit after an answer");

    // one frame, bit-exact; then the UART cycles a frame takes
    let f0 = b.sim.cycle();
    b.send(&b.frame(&xs[0]));
    b.expect_result(&ys[0]);
    let per_frame = b.sim.cycle() - f0;

    // two frames back to back (the second arrives while the first is computed)
    let f1 = b.sim.cycle();
    b.send(&b.frame(&xs[1]));
    b.send(&b.frame(&xs[2]));
    let r = b.recv(2, 3_000_000);
    for (a, y) in r.iter().zip(&ys[1..3]) {
        assert_eq!(a.kind, kind::RESULT);
        assert_eq!(&b.values(&a.payload), y);
    }
    let two = b.sim.cycle() - f1;
    println!(
        "tfc-w1a1: one frame over the UART in {per_frame} cycles, two pipelined in {two} \
         ({} cycles a bit; {} bytes in, {} out)",
        b.sim.cycles_per_bit(),
        xs[0].len() + protocol::OVERHEAD_BYTES,
        ys[0].len() + protocol::OVERHEAD_BYTES
    );

    // BENCH: the cycle count grows by the manifest's interval per extra run
    let (c1, v1) = b.run_bench(1, &xs[3]);
    let (c5, v5) = b.run_bench(5, &xs[3]);
    assert_eq!(v1, ys[3]);
    assert_eq!(v5, ys[3]);
    let cpf = b.m.cycles_per_frame.unwrap();
    println!(
        "tfc-w1a1: BENCH 1 run {c1} cycles, 5 runs {c5}: {} cycles a frame (manifest {cpf})",
        (c5 - c1) as f64 / 4.0
    );
    assert_eq!((c5 - c1) % 4, 0, "BENCH 1: {c1}, BENCH 5: {c5}");
    assert_eq!((c5 - c1) / 4, cpf, "BENCH 1: {c1}, BENCH 5: {c5}");
    assert!(c1 >= cpf, "one run takes at least a frame's interval: {c1}");

    // a bad CRC: ERROR 1, nothing reaches the accelerator, the next frame is right
    let mut bad = b.frame(&xs[4]).encode();
    bad[100] ^= 0x21;
    b.sim.write(&bad);
    b.expect_error(error_code::BAD_CRC);
    b.send(&b.frame(&xs[4]));
    b.expect_result(&ys[4]);

    // garbage between packets is skipped
    b.sim.write(&[0x00, 0x13, 0xff, 0x5b]);
    b.send(&Packet::new(kind::INFO, vec![]));
    b.sim.write(&[0x42, 0x81, 0x00]);
    b.send(&b.frame(&xs[5]));
    let r = b.recv(2, 3_000_000);
    assert_eq!(r[0].kind, kind::INFO_REPLY);
    assert_eq!(
        (r[1].kind, b.values(&r[1].payload)),
        (kind::RESULT, ys[5].clone())
    );

    // a stray 0xB5 starts a packet that never ends: dropped after 20 ms of silence
    b.sim.write(&[0x17, 0xb5, 0x02]);
    b.silence(CLOCK_HZ as u64 / 50 + 4_000);
    b.send(&b.frame(&xs[0]));
    b.expect_result(&ys[0]);

    // a packet cut off mid-way: no answer; the next packet is answered
    let cut = b.frame(&xs[1]).encode();
    b.sim.write(&cut[..300]);
    b.silence(300 * 10 * b.sim.cycles_per_bit() + CLOCK_HZ as u64 / 50 + 4_000);
    b.send(&b.frame(&xs[1]));
    b.expect_result(&ys[1]);

    // wrong lengths, an unknown type, a BENCH of no runs
    b.send(&Packet::new(kind::FRAME, vec![0; xs[0].len() - 1]));
    b.expect_error(error_code::WRONG_LENGTH);
    b.send(&Packet::new(kind::INFO, vec![1]));
    b.expect_error(error_code::WRONG_LENGTH);
    b.send(&Packet::new(0x07, vec![1, 2, 3]));
    b.expect_error(error_code::UNKNOWN_TYPE);
    b.send(&Packet::new(0x82, vec![]));
    b.expect_error(error_code::UNKNOWN_TYPE);
    let p = b.bench(0, &xs[2]);
    b.send(&p);
    b.expect_error(error_code::OUT_OF_RANGE);
    // answers keep their packets' order, errors and frames mixed
    b.send(&b.frame(&xs[2]));
    b.send(&Packet::new(0x55, vec![]));
    b.send(&Packet::new(kind::INFO, vec![]));
    let r = b.recv(3, 3_000_000);
    let kinds: Vec<u8> = r.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [kind::RESULT, kind::ERROR, kind::INFO_REPLY]);
    assert_eq!(b.values(&r[0].payload), ys[2]);

    println!(
        "tfc-w1a1: {} cycles simulated in {:.1} s",
        b.sim.cycle() - c0,
        t.elapsed().as_secs_f64()
    );
}

/// random-3 (2-bit signed elements in, one signed 8-bit value out): the element coding
/// both ways, out-of-range elements refused, BENCH's answer.
#[test]
fn random_3_board_core_codes_elements_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let net_file = repo().join("examples/random-3.yaml");
    let net = bnnforge_model::load(&net_file).unwrap();
    let (n, data) =
        bnnforge_model::npy::read_inputs(&repo().join("examples/random-3-input.npy"), &net.input)
            .unwrap();
    let len = data.len() / n;
    let frames: Vec<Vec<i64>> = data.chunks(len).map(<[i64]>::to_vec).collect();
    let (xs, ys) = reference(&net_file, &frames);
    let mut b = Board::new("random-3", tmp.path());
    assert!(b.p.in_signed && b.p.in_bits == 2, "{:?}", b.p);
    b.check_info();
    for (x, y) in xs.iter().zip(&ys).take(4) {
        b.send(&b.frame(x));
        b.expect_result(y);
    }
    // 2-bit signed: 0xfe (-2) and 0x01 are in range, 0x02 and 0xfd are not
    for bad in [0x02u8, 0xfd, 0x7f, 0x80] {
        let mut payload = b.frame_bytes(&xs[0]);
        payload[7] = bad;
        b.send(&Packet::new(kind::FRAME, payload));
        b.expect_error(error_code::OUT_OF_RANGE);
    }
    let (cycles, v) = b.run_bench(3, &xs[1]);
    assert_eq!(v, ys[1]);
    println!("random-3: BENCH of 3 runs: {cycles} cycles");
    // more than 2^16 runs: the run counters' high halves (they take the low halves'
    // borrow a cycle late) count too
    let long = (1u32 << 16) + 2;
    let t = std::time::Instant::now();
    let (c_long, v) = b.run_bench(long, &xs[1]);
    assert_eq!(v, ys[1]);
    let cpf = b.m.cycles_per_frame.unwrap();
    assert_eq!(
        c_long - cycles,
        (long as u64 - 3) * cpf,
        "BENCH of {long} runs: {c_long} cycles, of 3: {cycles}"
    );
    println!(
        "random-3: BENCH of {long} runs: {c_long} cycles ({:.1} s simulated)",
        t.elapsed().as_secs_f64()
    );
    // a long BENCH holds one frame buffer: the next frame waits in the other, and a
    // third frame (breaking the host's rule of two unanswered) finds no room: ERROR 1
    let runs = 100;
    let p = b.bench(runs, &xs[2]);
    b.send(&p);
    b.send(&b.frame(&xs[3]));
    b.send(&b.frame(&xs[0]));
    let r = b.recv(3, 3_000_000);
    let kinds: Vec<u8> = r.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [kind::BENCH_REPLY, kind::RESULT, kind::ERROR]);
    let cycles = u64::from_le_bytes(r[0].payload[..8].try_into().unwrap());
    let frame_cycles = (b.frame_bytes(&xs[0]).len() + protocol::OVERHEAD_BYTES) as u64
        * 10
        * b.sim.cycles_per_bit();
    assert!(
        cycles > 2 * frame_cycles,
        "the BENCH ({cycles} cycles) must outlast two frames on the line ({frame_cycles} each)"
    );
    assert_eq!(b.values(&r[0].payload[8..]), ys[2]);
    assert_eq!(b.values(&r[1].payload), ys[3]);
    assert_eq!(r[2].payload, [error_code::BAD_CRC]);
    // three frames back to back, each answered in order
    for i in 0..3 {
        b.send(&b.frame(&xs[i]));
    }
    let r = b.recv(3, 3_000_000);
    for (a, y) in r.iter().zip(&ys) {
        assert_eq!((a.kind, &b.values(&a.payload)), (kind::RESULT, y));
    }
}

/// `verilator --lint-only -Wall` finds nothing in the board core at several parameter
/// sets, nor in TFC's wrapper with its accelerator.
#[test]
fn board_core_is_lint_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Manifest::load(&repo().join("generated/tfc-w1a1")).unwrap();
    let p = params(&m, CLOCK_HZ, BAUD);
    let files = write_core(&p, tmp.path());
    let fixed: Vec<&PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with(format!("{}.v", board_core_module(&p))))
        .collect();
    let lint = |top: &str, extra: &[String], files: &[&PathBuf]| {
        let out = std::process::Command::new("verilator")
            .args(["--lint-only", "-Wall", "--top-module", top])
            .args(extra)
            .args(files)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.trim().is_empty(),
            "{top} {extra:?}:\n{text}"
        );
    };
    for g in [
        "",
        "-GIN_BITS=1 -GLANES=7 -GIN_ELEMENTS=45 -GOUT_BITS=1 -GOUT_SIGNED=0 -GOUT_ELEMENTS=3",
        "-GIN_BITS=2 -GIN_SIGNED=1 -GIN_ELEMENTS=45 -GOUT_BITS=8 -GOUT_ELEMENTS=1",
        "-GIN_BITS=12 -GIN_SIGNED=1 -GLANES=3 -GOUT_BITS=32 -GCLOCK_HZ=12000000 -GBAUD=115200",
    ] {
        let args: Vec<String> = g.split_whitespace().map(str::to_string).collect();
        lint("bnnforge_board", &args, &fixed);
    }
    let mut all: Vec<&PathBuf> = m.verilog.iter().collect();
    all.extend(files.iter());
    lint(&board_core_module(&p), &[], &all);
}

/// yosys `synth_ice40` of the board core at TFC's parameters (alone, so its own cells
/// are counted): no latch, no multiple or missing driver (`check -assert`), frame
/// buffers in block RAM.
#[test]
fn board_core_synthesises_for_ice40() {
    let m = Manifest::load(&repo().join("generated/tfc-w1a1")).unwrap();
    let p = params(&m, CLOCK_HZ, BAUD);
    let mut verilog: String = board_core_files(&p)
        .into_iter()
        .filter(|(n, _)| *n != format!("{}.v", board_core_module(&p)))
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n");
    // the core with TFC's parameters, its streams as ports
    verilog.push_str(&format!(
        "module board_only (input wire clk, input wire rst, input wire uart_rx,
  output wire uart_tx, output wire led_activity, output wire led_error,
  output wire [{iw}:0] s_axis_tdata, output wire s_axis_tvalid, input wire s_axis_tready,
  input wire [{ow}:0] m_axis_tdata, input wire m_axis_tvalid, output wire m_axis_tready,
  input wire m_axis_tlast);
  bnnforge_board #(.CLOCK_HZ({clk}), .BAUD({baud}), .IN_BITS({ib}), .IN_SIGNED({is}),
    .LANES({lanes}), .IN_ELEMENTS({ie}), .OUT_BITS({ob}), .OUT_SIGNED({os}),
    .OUT_ELEMENTS({oe}), .NETWORK_HASH(64'h{hash:016x}), .CYCLES_PER_FRAME({cpf})) core (
    .clk(clk), .rst(rst), .uart_rx(uart_rx), .uart_tx(uart_tx),
    .led_activity(led_activity), .led_error(led_error),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
    .m_axis_tlast(m_axis_tlast));
endmodule
",
        iw = p.lanes * p.in_bits as usize - 1,
        ow = p.out_bits - 1,
        clk = p.clock_hz,
        baud = p.baud,
        ib = p.in_bits,
        is = u8::from(p.in_signed),
        lanes = p.lanes,
        ie = p.in_elements,
        ob = p.out_bits,
        os = u8::from(p.out_signed),
        oe = p.out_elements,
        hash = p.network_hash,
        cpf = p.cycles_per_frame,
    ));
    let stats = bnnforge_hdl::synth::ice40_stats("board-core", &verilog, "board_only")
        .unwrap_or_else(|e| panic!("{e}"));
    println!("board core at TFC's parameters on iCE40: {stats}");
    // two frames of 784 bytes: 12,544 bits, four 4-kbit block RAMs at least
    assert!(stats.bram >= 4, "frame buffers not in block RAM: {stats}");
    assert!(stats.lut4 > 0 && stats.dff > 0, "{stats}");
}
