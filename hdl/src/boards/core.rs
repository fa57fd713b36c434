//! The board core: the fixed Verilog of `hdl/board/` (UART, CRC-16, the packet engine of
//! board protocol 1) and a generated wrapper that joins it to one accelerator.
//!
//! The wrapper `<net>_board_core(clk, rst, uart_rx, uart_tx, led_activity, led_error)`
//! instantiates `bnnforge_board #(...)` with the accelerator's stream formats and the
//! accelerator top itself; a board top (PLL, reset, pins) instantiates the wrapper.

use crate::compile::design::Design;
use bnnforge_model::network::Network;

/// Everything the wrapper needs to know about the accelerator and the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardCoreParams {
    /// The accelerator's top module (`<net>_top`).
    pub accel_top: String,
    pub clock_hz: u32,
    pub baud: u32,
    /// Input element bits (1 for binary), two's complement when signed.
    pub in_bits: u32,
    pub in_signed: bool,
    /// Input elements a beat.
    pub lanes: usize,
    pub in_elements: usize,
    pub out_bits: u32,
    pub out_signed: bool,
    pub out_elements: usize,
    /// `Network::hash()`, reported by INFO.
    pub network_hash: u64,
    /// The manifest's cycles per frame, reported by INFO.
    pub cycles_per_frame: u64,
}

/// The fixed board core files, embedded so the binary is self-contained.
pub const FIXED_FILES: [(&str, &str); 5] = [
    ("uart_rx.v", include_str!("../../board/uart_rx.v")),
    ("uart_tx.v", include_str!("../../board/uart_tx.v")),
    ("crc16.v", include_str!("../../board/crc16.v")),
    ("board_ram.v", include_str!("../../board/board_ram.v")),
    (
        "bnnforge_board.v",
        include_str!("../../board/bnnforge_board.v"),
    ),
];

/// Fewest clock cycles a UART bit may take (the receiver samples mid-bit after a
/// 2-FF synchroniser).
pub const MIN_CLOCKS_PER_BIT: u32 = 4;

impl BoardCoreParams {
    /// The parameters of `design` (built from `net`) on a board clocked at `clock_hz`
    /// talking at `baud`.
    pub fn new(net: &Network, design: &Design, clock_hz: u32, baud: u32) -> BoardCoreParams {
        let i = design.input();
        let o = design.output();
        BoardCoreParams {
            accel_top: design.top.clone(),
            clock_hz,
            baud,
            in_bits: i.elem.bits as u32,
            in_signed: i.elem.signed,
            lanes: i.lanes,
            in_elements: i.elements,
            out_bits: o.elem.bits as u32,
            out_signed: o.elem.signed,
            out_elements: o.elements,
            network_hash: net.hash(),
            cycles_per_frame: design.cycles_per_frame(),
        }
    }

    /// Clock cycles a UART bit takes (rounded, as the Verilog computes it).
    pub fn clocks_per_bit(&self) -> u32 {
        ((self.clock_hz as u64 + self.baud as u64 / 2) / self.baud.max(1) as u64) as u32
    }

    /// Why these parameters cannot make a board core, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        let in_bytes = self.in_elements as u64 * self.in_bits.div_ceil(8) as u64;
        let out_bytes = self.out_elements as u64 * self.out_bits.div_ceil(8) as u64;
        if self.baud == 0 || self.clocks_per_bit() < MIN_CLOCKS_PER_BIT {
            return Err(format!(
                "baud rate {} needs at least {MIN_CLOCKS_PER_BIT} clock cycles a bit at {} Hz",
                self.baud, self.clock_hz
            ));
        }
        if self.clock_hz < 1000 {
            return Err(format!("clock of {} Hz is too slow", self.clock_hz));
        }
        if !(1..=32).contains(&self.in_bits) || !(1..=32).contains(&self.out_bits) {
            return Err(format!(
                "element widths of {} and {} bits: the board core takes 1 to 32",
                self.in_bits, self.out_bits
            ));
        }
        if self.in_elements == 0 || self.out_elements == 0 || self.lanes == 0 {
            return Err("a frame of no elements".into());
        }
        if in_bytes + 4 > 65535 || out_bytes + 8 > 65535 {
            return Err(format!(
                "frames of {in_bytes} input and {out_bytes} output bytes do not fit a packet (65,535 bytes)"
            ));
        }
        if self.cycles_per_frame > u32::MAX as u64 {
            return Err(format!(
                "{} cycles per frame do not fit INFO's u32",
                self.cycles_per_frame
            ));
        }
        Ok(())
    }
}

/// Module name of the wrapper: `<accel_top minus "_top">_board_core`.
pub fn board_core_module(p: &BoardCoreParams) -> String {
    let net = p.accel_top.strip_suffix("_top").unwrap_or(&p.accel_top);
    format!("{net}_board_core")
}

/// Every Verilog file the board core needs, as (file name, text): the fixed `hdl/board/*.v`
/// and the wrapper `<net>_board_core(clk, rst, uart_rx, uart_tx, led_activity, led_error)`
/// that instantiates `bnnforge_board #(...)` and the accelerator top `accel_top` (whose
/// files come from `bnnforge build`). The parameters should pass [`BoardCoreParams::check`].
pub fn board_core_files(p: &BoardCoreParams) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = FIXED_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let module = board_core_module(p);
    files.push((format!("{module}.v"), wrapper(p, &module)));
    files
}

fn wrapper(p: &BoardCoreParams, module: &str) -> String {
    let in_width = p.lanes * p.in_bits as usize;
    format!(
        "// generated by bnnforge, do not edit
// {module}: the board core (board protocol 1 over the UART) around {accel}.
module {module} (
  input wire clk,
  input wire rst,
  input wire uart_rx,
  output wire uart_tx,
  output wire led_activity,
  output wire led_error
);
  wire [{iw}:0] s_data;
  wire s_valid, s_ready;
  wire [{ow}:0] m_data;
  wire m_valid, m_ready, m_last;
  bnnforge_board #(
    .CLOCK_HZ({clock}),
    .BAUD({baud}),
    .IN_BITS({ib}),
    .IN_SIGNED({is}),
    .LANES({lanes}),
    .IN_ELEMENTS({ie}),
    .OUT_BITS({ob}),
    .OUT_SIGNED({os}),
    .OUT_ELEMENTS({oe}),
    .NETWORK_HASH(64'h{hash:016x}),
    .CYCLES_PER_FRAME({cpf})
  ) board (
    .clk(clk),
    .rst(rst),
    .uart_rx(uart_rx),
    .uart_tx(uart_tx),
    .led_activity(led_activity),
    .led_error(led_error),
    .s_axis_tdata(s_data),
    .s_axis_tvalid(s_valid),
    .s_axis_tready(s_ready),
    .m_axis_tdata(m_data),
    .m_axis_tvalid(m_valid),
    .m_axis_tready(m_ready),
    .m_axis_tlast(m_last)
  );
  {accel} accel (
    .clk(clk),
    .rst(rst),
    .s_axis_tdata(s_data),
    .s_axis_tvalid(s_valid),
    .s_axis_tready(s_ready),
    .m_axis_tdata(m_data),
    .m_axis_tvalid(m_valid),
    .m_axis_tready(m_ready),
    .m_axis_tlast(m_last)
  );
endmodule
",
        accel = p.accel_top,
        iw = in_width - 1,
        ow = p.out_bits - 1,
        clock = p.clock_hz,
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tfc() -> BoardCoreParams {
        BoardCoreParams {
            accel_top: "tfc_w1a1_top".into(),
            clock_hz: 48_000_000,
            baud: 3_000_000,
            in_bits: 8,
            in_signed: false,
            lanes: 1,
            in_elements: 784,
            out_bits: 8,
            out_signed: true,
            out_elements: 10,
            network_hash: 0xd255_c767_3b9d_897d,
            cycles_per_frame: 784,
        }
    }

    #[test]
    fn the_wrapper_names_its_parts_and_parameters() {
        let p = tfc();
        assert_eq!(board_core_module(&p), "tfc_w1a1_board_core");
        assert_eq!(p.clocks_per_bit(), 16);
        p.check().unwrap();
        let files = board_core_files(&p);
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "uart_rx.v",
                "uart_tx.v",
                "crc16.v",
                "board_ram.v",
                "bnnforge_board.v",
                "tfc_w1a1_board_core.v"
            ]
        );
        let w = &files[5].1;
        for s in [
            "module tfc_w1a1_board_core (",
            ".NETWORK_HASH(64'hd255c7673b9d897d)",
            ".OUT_SIGNED(1)",
            "tfc_w1a1_top accel (",
            "wire [7:0] s_data;",
        ] {
            assert!(w.contains(s), "missing `{s}` in\n{w}");
        }
        assert!(files[4].1.contains("module bnnforge_board #("));
    }

    #[test]
    fn impossible_parameters_are_refused() {
        let mut p = tfc();
        p.baud = 20_000_000;
        assert!(p.check().unwrap_err().contains("clock cycles a bit"));
        let mut p = tfc();
        p.in_elements = 70_000;
        assert!(p.check().unwrap_err().contains("do not fit a packet"));
    }
}
