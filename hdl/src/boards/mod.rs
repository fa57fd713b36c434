//! The boards bnnforge builds for, as data: device, resources, oscillator, pins, tool
//! flags and programmer. The flow (`bnnforge synth`), the board top, the budget planner's
//! `--device`, `bnnforge flash` and the demo all read this one table.
//!
//! Pin files are in `constraints/` (`icebreaker.pcf`, `ulx3s_v20.lpf`); the port names
//! there are the `port` names here.

pub mod core;
pub mod top;

/// FPGA family: decides the synthesis command, the place-and-route tool and the packer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Lattice iCE40: `synth_ice40`, nextpnr-ice40, icepack.
    Ice40,
    /// Lattice ECP5: `synth_ecp5`, nextpnr-ecp5, ecppack.
    Ecp5,
}

/// A device's resources, as counted by yosys and nextpnr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// 4-input LUTs (iCE40 logic cells; ECP5 LUT4s, two per slice).
    pub lut4: u32,
    /// Flip-flops.
    pub ff: u32,
    /// Block RAMs (iCE40 `SB_RAM40_4K`, ECP5 `DP16KD` EBR).
    pub bram: u32,
    /// Bits of one block RAM (4096 on iCE40, 18432 on ECP5).
    pub bram_bits: u32,
    /// Single-port RAMs (`SB_SPRAM256KA`, 16k × 16), none on ECP5.
    pub spram: u32,
    /// Multipliers (`SB_MAC16`, ECP5 `MULT18X18D`).
    pub dsp: u32,
    /// User I/O pins of the package.
    pub io: u32,
}

/// One pin of the board top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The board top's port name (as in the pin file).
    pub port: &'static str,
    /// The package site (iCE40 pin number, ECP5 ball).
    pub site: &'static str,
    /// The signal is asserted when the pin is low (iCEBreaker's LEDs and button).
    pub active_low: bool,
}

/// How a bitstream gets onto the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Programmer {
    /// The executable (`iceprog`, `openFPGALoader`).
    pub tool: &'static str,
    /// Arguments before the bitstream for a volatile load into the FPGA's SRAM.
    pub sram_args: &'static [&'static str],
    /// Arguments before the bitstream for writing the configuration flash.
    pub flash_args: &'static [&'static str],
    /// The Debian package that has the tool.
    pub package: &'static str,
}

/// A board: everything the flow needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Board {
    /// The name on the command line (`--board`).
    pub name: &'static str,
    /// What it is, for reports.
    pub title: &'static str,
    pub family: Family,
    /// nextpnr's device flag without dashes (`up5k`, `85k`, `25k`).
    pub device: &'static str,
    /// nextpnr's `--package`.
    pub package: &'static str,
    pub resources: Resources,
    /// The oscillator on the clock pin.
    pub osc_hz: u32,
    /// The accelerator clock `synth` aims for when `--freq` is not given.
    pub default_mhz: f64,
    /// The pin file in `constraints/`.
    pub constraints: &'static str,
    pub clock: Pin,
    /// UART into the FPGA (the host's TX).
    pub rx: Pin,
    /// UART out of the FPGA (the host's RX).
    pub tx: Pin,
    /// LEDs: the first shows activity, the second errors; any others stay off.
    pub leds: &'static [Pin],
    /// A button that resets the design while pressed.
    pub button: Pin,
    /// `ecppack --idcode` where the nextpnr device differs from the chip (ECP5 12F).
    pub idcode: Option<&'static str>,
    pub programmer: Programmer,
}

const fn pin(port: &'static str, site: &'static str, active_low: bool) -> Pin {
    Pin {
        port,
        site,
        active_low,
    }
}

const ULX3S_LEDS: [Pin; 8] = [
    pin("led[0]", "B2", false),
    pin("led[1]", "C2", false),
    pin("led[2]", "C1", false),
    pin("led[3]", "D2", false),
    pin("led[4]", "D1", false),
    pin("led[5]", "E2", false),
    pin("led[6]", "E1", false),
    pin("led[7]", "H3", false),
];

const OPENFPGALOADER: Programmer = Programmer {
    tool: "openFPGALoader",
    sram_args: &["-b", "ulx3s"],
    flash_args: &["-b", "ulx3s", "-f"],
    package: "openfpgaloader",
};

const ULX3S_85F: Board = Board {
    name: "ulx3s-85f",
    title: "ULX3S v2.0 (Lattice ECP5 LFE5U-85F)",
    family: Family::Ecp5,
    device: "85k",
    package: "CABGA381",
    resources: Resources {
        lut4: 83_640,
        ff: 83_640,
        bram: 208,
        bram_bits: 18_432,
        spram: 0,
        dsp: 156,
        io: 365,
    },
    osc_hz: 25_000_000,
    default_mhz: 50.0,
    constraints: "ulx3s_v20.lpf",
    clock: pin("clk", "G2", false),
    rx: pin("rx", "M1", false),
    tx: pin("tx", "L4", false),
    leds: &ULX3S_LEDS,
    button: pin("btn", "D6", true),
    idcode: Some("0x41113043"),
    programmer: OPENFPGALOADER,
};

/// Every board, the first being the default.
pub const BOARDS: [Board; 3] = [
    Board {
        name: "icebreaker",
        title: "iCEBreaker v1.0 (Lattice iCE40 UP5K)",
        family: Family::Ice40,
        device: "up5k",
        package: "sg48",
        resources: Resources {
            lut4: 5280,
            ff: 5280,
            bram: 30,
            bram_bits: 4096,
            spram: 4,
            dsp: 8,
            io: 39,
        },
        osc_hz: 12_000_000,
        default_mhz: 48.0,
        constraints: "icebreaker.pcf",
        clock: pin("clk", "35", false),
        rx: pin("rx", "6", false),
        tx: pin("tx", "9", false),
        leds: &[pin("led_red_n", "11", true), pin("led_green_n", "37", true)],
        button: pin("btn_n", "10", true),
        idcode: None,
        programmer: Programmer {
            tool: "iceprog",
            sram_args: &["-S"],
            flash_args: &[],
            package: "fpga-icestorm",
        },
    },
    ULX3S_85F,
    Board {
        name: "ulx3s-12f",
        title: "ULX3S v2.0 (Lattice ECP5 LFE5U-12F)",
        device: "25k",
        resources: Resources {
            lut4: 12_288,
            ff: 12_288,
            bram: 32,
            dsp: 28,
            io: 197,
            ..ULX3S_85F.resources
        },
        idcode: Some("0x21111043"),
        ..ULX3S_85F
    },
];

/// The board named `name`, or a one-line error listing the boards.
pub fn board(name: &str) -> Result<&'static Board, String> {
    BOARDS.iter().find(|b| b.name == name).ok_or_else(|| {
        let names: Vec<&str> = BOARDS.iter().map(|b| b.name).collect();
        format!("unknown board '{name}' (boards: {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_is_found_by_name_and_an_unknown_one_is_refused() {
        for b in &BOARDS {
            assert_eq!(board(b.name).unwrap().name, b.name);
            assert!(b.leds.len() >= 2, "{}: activity and error LEDs", b.name);
            assert!(b.default_mhz * 1e6 >= b.osc_hz as f64);
        }
        let e = board("arty").unwrap_err();
        assert!(e.contains("icebreaker") && e.contains("ulx3s-85f") && e.contains("ulx3s-12f"));
    }

    #[test]
    fn the_pins_of_the_issue() {
        let ib = board("icebreaker").unwrap();
        let sites: Vec<&str> = [ib.clock, ib.rx, ib.tx, ib.button]
            .iter()
            .chain(ib.leds)
            .map(|p| p.site)
            .collect();
        assert_eq!(sites, ["35", "6", "9", "10", "11", "37"]);
        let u = board("ulx3s-12f").unwrap();
        assert_eq!((u.clock.site, u.rx.site, u.tx.site), ("G2", "M1", "L4"));
        assert_eq!((u.device, u.idcode), ("25k", Some("0x21111043")));
        assert_eq!(board("ulx3s-85f").unwrap().idcode, Some("0x41113043"));
    }
}
