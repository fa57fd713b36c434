//! A board core (`<net>_board_core`: `clk, rst, uart_rx, uart_tx, led_activity,
//! led_error`) in Verilator, driven at the UART level: bytes in on `uart_rx` (8N1 at the
//! baud rate, in clock cycles), bytes out decoded from `uart_tx` in Rust.

use crate::sim::{BoardHandle, BoardOutputs};
use crate::{BuildConfig, Error, Model, Result, SimOptions, Trace};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Clock cycles of reset after [`BoardSim::build`].
pub const RESET_CYCLES: u32 = 8;

/// A simulated board: the board core (and its accelerator) one clock at a time.
///
/// Time: [`BoardSim::cycle`] counts rising clock edges since the model was created
/// (reset included). A byte written takes `10 * cycles_per_bit` cycles on `uart_rx`;
/// bytes queued follow each other with no gap.
pub struct BoardSim {
    dut: BoardHandle,
    model: Model,
    cpb: u64,
    cycle: u64,
    outs: BoardOutputs,
    /// Bytes still to send on `uart_rx`.
    queue: VecDeque<u8>,
    /// The byte on the line and the cycle its start bit began.
    sending: Option<(u8, u64)>,
    /// The byte coming in on `uart_tx`: the cycle its start bit began, bits so far.
    receiving: Option<(u64, u16, u32)>,
    /// Bytes from `uart_tx` whose stop bit read low (framing errors).
    pub framing_errors: u64,
}

impl BoardSim {
    /// `verilog`: accelerator files + board core files; `top`: the `<net>_board_core`
    /// module. `clock_hz` and `baud` must be the core's (they fix the cycles per bit).
    /// Builds (or finds in the cache) the library and holds reset for [`RESET_CYCLES`].
    pub fn build(verilog: &[PathBuf], top: &str, clock_hz: u32, baud: u32) -> Result<BoardSim> {
        BoardSim::build_with(verilog, top, clock_hz, baud, None)
    }

    /// [`BoardSim::build`], writing a VCD waveform to `trace` when given.
    pub fn build_with(
        verilog: &[PathBuf],
        top: &str,
        clock_hz: u32,
        baud: u32,
        trace: Option<&Path>,
    ) -> Result<BoardSim> {
        if baud == 0 || (clock_hz as u64 + baud as u64 / 2) / (baud as u64) < 4 {
            return Err(Error::Input(format!(
                "baud rate {baud} needs at least 4 clock cycles a bit at {clock_hz} Hz"
            )));
        }
        let cfg = BuildConfig::board(verilog, top).trace(if trace.is_some() {
            Trace::Vcd
        } else {
            Trace::None
        });
        let model = cfg.build()?;
        BoardSim::new(&model, clock_hz, baud, trace)
    }

    /// A board from a library built with [`BuildConfig::board`].
    pub fn new(model: &Model, clock_hz: u32, baud: u32, trace: Option<&Path>) -> Result<BoardSim> {
        let dut = BoardHandle::new(
            model,
            &SimOptions {
                trace: trace.map(Path::to_path_buf),
                random_init: None,
            },
        )?;
        let cpb = (clock_hz as u64 + baud as u64 / 2) / (baud.max(1) as u64);
        let mut b = BoardSim {
            dut,
            model: model.clone(),
            cpb,
            cycle: 0,
            outs: BoardOutputs {
                tx: true,
                led_activity: false,
                led_error: false,
            },
            queue: VecDeque::new(),
            sending: None,
            receiving: None,
            framing_errors: 0,
        };
        b.reset(RESET_CYCLES)?;
        Ok(b)
    }

    /// The library this board runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Clock cycles a UART bit takes.
    pub fn cycles_per_bit(&self) -> u64 {
        self.cpb
    }

    /// Holds `rst` for `cycles` clocks (the line idle), forgetting queued bytes.
    pub fn reset(&mut self, cycles: u32) -> Result<()> {
        self.queue.clear();
        self.sending = None;
        self.receiving = None;
        let (n, outs) = self.dut.run(true, true, cycles.max(1) as u64, false)?;
        self.cycle += n;
        self.outs = outs;
        Ok(())
    }

    /// Queues bytes onto `uart_rx`: 8N1 at the baud rate, back to back.
    pub fn write(&mut self, bytes: &[u8]) {
        self.queue.extend(bytes.iter().copied());
    }

    /// True while bytes are queued or on the line.
    pub fn rx_busy(&self) -> bool {
        self.sending.is_some() || !self.queue.is_empty()
    }

    /// Rising clock edges so far.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// (led_activity, led_error) now.
    pub fn leds(&self) -> (bool, bool) {
        (self.outs.led_activity, self.outs.led_error)
    }

    /// Advances `cycles` clocks; returns the bytes completed on `uart_tx` meanwhile.
    pub fn run(&mut self, cycles: u64) -> Result<Vec<u8>> {
        let end = self.cycle + cycles;
        let mut out = Vec::new();
        while self.cycle < end {
            // the level on uart_rx now, and until when it holds
            if self.sending.is_none() {
                if let Some(b) = self.queue.pop_front() {
                    self.sending = Some((b, self.cycle));
                }
            }
            let (rx, rx_until) = match self.sending {
                None => (true, end),
                Some((b, start)) => {
                    let bit = (self.cycle - start) / self.cpb;
                    let level = match bit {
                        0 => false,
                        1..=8 => (b >> (bit - 1)) & 1 == 1,
                        _ => true,
                    };
                    (level, start + (bit + 1) * self.cpb)
                }
            };
            // the next cycle uart_tx must be sampled at
            let sample_at = self
                .receiving
                .map(|(start, _, n)| start + self.cpb / 2 + n as u64 * self.cpb);
            let mut until = rx_until.min(end);
            if let Some(t) = sample_at {
                until = until.min(t.max(self.cycle + 1));
            }
            let stop_on_tx = self.receiving.is_none();
            let (n, outs) = self.dut.run(false, rx, until - self.cycle, stop_on_tx)?;
            self.cycle += n;
            self.outs = outs;
            if let Some((_, start)) = self.sending {
                if self.cycle >= start + 10 * self.cpb {
                    self.sending = None;
                }
            }
            match self.receiving {
                None => {
                    if !outs.tx {
                        // the start bit began at the edge just run
                        self.receiving = Some((self.cycle, 0, 0));
                    }
                }
                Some((start, bits, k)) => {
                    if Some(self.cycle) == sample_at {
                        let bits = bits | (u16::from(outs.tx) << k);
                        if k == 9 {
                            self.receiving = None;
                            // start bit low, stop bit high
                            if bits & 1 == 0 && bits >> 9 == 1 {
                                out.push((bits >> 1) as u8);
                            } else {
                                self.framing_errors += 1;
                            }
                        } else {
                            self.receiving = Some((start, bits, k + 1));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
