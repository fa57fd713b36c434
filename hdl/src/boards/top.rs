//! The board top `<net>_<board>`: the pins of the board table ([`crate::boards`]) around
//! the board core (UART, packet engine, accelerator).
//!
//! ```text
//!  clk ──► PLL (SB_PLL40_PAD / EHXPLLL, or none) ──► clk_core ──────────────┐
//!             └─ lock ─┐                                                    ▼
//!  btn ─(polarity)─► hold ──► 2-FF synchroniser ──► power-on counter ──► rst of the core
//!  rx ──► uart_rx (the core's receiver synchronises it)    core: <net>_board_core
//!  tx ◄── uart_tx;  LED 0 ◄── led_activity, LED 1 ◄── led_error (board polarity), others off
//! ```
//!
//! Reset: asserted asynchronously while the PLL is unlocked or the button is pressed,
//! released synchronously to `clk_core`, then held for [`POR_CYCLES`] more cycles. Every
//! register of the top powers up at 0 (the only power-up value iCE40 flip-flops have),
//! so "in reset" is stored inverted (`run`).
//!
//! The PLL dividers are searched here ([`ice40_pll`], [`ecp5_pll`]) within the ranges of
//! Lattice's documentation; [`clock_for`] picks the fastest reachable clock not above the
//! requested one and reports it.

use crate::boards::{Board, Family, Pin};

/// Cycles of `clk_core` the core stays in reset after the PLL locks and the button is up.
pub const POR_CYCLES: u32 = 1 << 12;

/// iCE40 `SB_PLL40_*` in SIMPLE feedback: f_pfd = f_in / (DIVR + 1),
/// f_vco = f_pfd · (DIVF + 1), f_out = f_vco / 2^DIVQ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ice40Pll {
    pub divr: u32,
    pub divf: u32,
    pub divq: u32,
    pub filter_range: u32,
    pub f_pfd_hz: f64,
    pub f_vco_hz: f64,
    pub f_out_hz: f64,
}

/// iCE40 PLL limits (iCE40 sysCLOCK PLL Design and Usage Guide, TN1251; UltraPlus
/// data sheet): input and PFD 10–133 MHz, VCO 533–1066 MHz, output 16–275 MHz.
pub mod ice40_limits {
    pub const F_IN: (f64, f64) = (10e6, 133e6);
    pub const F_PFD: (f64, f64) = (10e6, 133e6);
    pub const F_VCO: (f64, f64) = (533e6, 1066e6);
    pub const F_OUT: (f64, f64) = (16e6, 275e6);
    pub const DIVR: (u32, u32) = (0, 15);
    pub const DIVF: (u32, u32) = (0, 127);
    pub const DIVQ: (u32, u32) = (1, 6);
}

/// ECP5 `EHXPLLL` with CLKOP as feedback: f_pfd = f_in / CLKI_DIV,
/// f_out = f_pfd · CLKFB_DIV, f_vco = f_out · CLKOP_DIV.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ecp5Pll {
    pub clki_div: u32,
    pub clkfb_div: u32,
    pub clkop_div: u32,
    pub f_pfd_hz: f64,
    pub f_vco_hz: f64,
    pub f_out_hz: f64,
}

/// ECP5 PLL limits (ECP5 family data sheet, sysCLOCK PLL timing; FPGA Libraries
/// Reference Guide for the divider ranges): input 8–400 MHz, PFD 3.125–400 MHz,
/// VCO 400–800 MHz, output 3.125–400 MHz; CLKI_DIV, CLKOP_DIV 1–128, CLKFB_DIV 1–80.
pub mod ecp5_limits {
    pub const F_IN: (f64, f64) = (8e6, 400e6);
    pub const F_PFD: (f64, f64) = (3.125e6, 400e6);
    pub const F_VCO: (f64, f64) = (400e6, 800e6);
    pub const F_OUT: (f64, f64) = (3.125e6, 400e6);
    pub const CLKI_DIV: (u32, u32) = (1, 128);
    pub const CLKFB_DIV: (u32, u32) = (1, 80);
    pub const CLKOP_DIV: (u32, u32) = (1, 128);
}

fn within(x: f64, (lo, hi): (f64, f64)) -> bool {
    // a part-per-billion margin: the frequencies are ratios of integers held in f64
    x >= lo * (1.0 - 1e-9) && x <= hi * (1.0 + 1e-9)
}

/// Refuses an input or requested output frequency outside a PLL's ranges (one line).
fn check_pll_range(
    pll: &str,
    f_in_hz: f64,
    f_in: (f64, f64),
    f_out_hz: f64,
    f_out: (f64, f64),
) -> Result<(), String> {
    if !within(f_in_hz, f_in) {
        return Err(format!(
            "{pll} PLL: input {:.3} MHz outside {}–{} MHz",
            f_in_hz / 1e6,
            f_in.0 / 1e6,
            f_in.1 / 1e6
        ));
    }
    if !within(f_out_hz, f_out) {
        return Err(format!(
            "the {pll} PLL makes {}–{} MHz, not {:.3} MHz",
            f_out.0 / 1e6,
            f_out.1 / 1e6,
            f_out_hz / 1e6
        ));
    }
    Ok(())
}

/// Whether `a` is a better reached frequency than `b` for `want`: not above it, closer.
fn closer(a: f64, b: f64, want: f64) -> std::cmp::Ordering {
    let over = |f: f64| f > want * (1.0 + 1e-9);
    match (over(a), over(b)) {
        (false, true) => std::cmp::Ordering::Less,
        (true, false) => std::cmp::Ordering::Greater,
        _ => (a - want)
            .abs()
            .partial_cmp(&(b - want).abs())
            .expect("finite"),
    }
}

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// The iCE40 loop filter setting for a PFD frequency (the table of icestorm's icepll).
pub fn ice40_filter_range(f_pfd_hz: f64) -> u32 {
    let mhz = f_pfd_hz / 1e6;
    match mhz {
        m if m < 17.0 => 1,
        m if m < 26.0 => 2,
        m if m < 44.0 => 3,
        m if m < 66.0 => 4,
        m if m < 101.0 => 5,
        _ => 6,
    }
}

/// The iCE40 PLL setting whose output is the fastest not above `f_out_hz` (the closest
/// above when none is below), every frequency within [`ice40_limits`]; on equal
/// outputs the highest PFD frequency, then the VCO nearest the middle of its range.
pub fn ice40_pll(f_in_hz: f64, f_out_hz: f64) -> Result<Ice40Pll, String> {
    use ice40_limits::*;
    check_pll_range("iCE40", f_in_hz, F_IN, f_out_hz, F_OUT)?;
    let mid = (F_VCO.0 + F_VCO.1) / 2.0;
    let mut best: Option<Ice40Pll> = None;
    for divr in DIVR.0..=DIVR.1 {
        let f_pfd = f_in_hz / (divr + 1) as f64;
        if !within(f_pfd, F_PFD) {
            continue;
        }
        for divf in DIVF.0..=DIVF.1 {
            let f_vco = f_pfd * (divf + 1) as f64;
            if !within(f_vco, F_VCO) {
                continue;
            }
            for divq in DIVQ.0..=DIVQ.1 {
                let f_out = f_vco / (1u32 << divq) as f64;
                if !within(f_out, F_OUT) {
                    continue;
                }
                let c = Ice40Pll {
                    divr,
                    divf,
                    divq,
                    filter_range: ice40_filter_range(f_pfd),
                    f_pfd_hz: f_pfd,
                    f_vco_hz: f_vco,
                    f_out_hz: f_out,
                };
                let better = match &best {
                    None => true,
                    Some(b) if same(c.f_out_hz, b.f_out_hz) => {
                        (c.f_pfd_hz, -(c.f_vco_hz - mid).abs())
                            > (b.f_pfd_hz, -(b.f_vco_hz - mid).abs())
                    }
                    Some(b) => closer(c.f_out_hz, b.f_out_hz, f_out_hz).is_lt(),
                };
                if better {
                    best = Some(c);
                }
            }
        }
    }
    best.ok_or_else(|| format!("no iCE40 PLL setting makes {:.3} MHz", f_out_hz / 1e6))
}

/// The ECP5 PLL setting whose output is the fastest not above `f_out_hz` (the closest
/// above when none is below), every frequency within [`ecp5_limits`]; on equal outputs
/// the VCO nearest 600 MHz (as Lattice's and Trellis's tools choose), then the smallest
/// input divider.
pub fn ecp5_pll(f_in_hz: f64, f_out_hz: f64) -> Result<Ecp5Pll, String> {
    use ecp5_limits::*;
    check_pll_range("ECP5", f_in_hz, F_IN, f_out_hz, F_OUT)?;
    let mut best: Option<Ecp5Pll> = None;
    for clki_div in CLKI_DIV.0..=CLKI_DIV.1 {
        let f_pfd = f_in_hz / clki_div as f64;
        if !within(f_pfd, F_PFD) {
            continue;
        }
        for clkfb_div in CLKFB_DIV.0..=CLKFB_DIV.1 {
            let f_out = f_pfd * clkfb_div as f64;
            if !within(f_out, F_OUT) {
                continue;
            }
            for clkop_div in CLKOP_DIV.0..=CLKOP_DIV.1 {
                let f_vco = f_out * clkop_div as f64;
                if !within(f_vco, F_VCO) {
                    continue;
                }
                let c = Ecp5Pll {
                    clki_div,
                    clkfb_div,
                    clkop_div,
                    f_pfd_hz: f_pfd,
                    f_vco_hz: f_vco,
                    f_out_hz: f_out,
                };
                let better = match &best {
                    None => true,
                    Some(b) if same(c.f_out_hz, b.f_out_hz) => {
                        (c.f_vco_hz - 600e6).abs() < (b.f_vco_hz - 600e6).abs()
                    }
                    Some(b) => closer(c.f_out_hz, b.f_out_hz, f_out_hz).is_lt(),
                };
                if better {
                    best = Some(c);
                }
            }
        }
    }
    best.ok_or_else(|| format!("no ECP5 PLL setting makes {:.3} MHz", f_out_hz / 1e6))
}

/// A PLL of either family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pll {
    Ice40(Ice40Pll),
    Ecp5(Ecp5Pll),
}

impl Pll {
    pub fn f_out_hz(&self) -> f64 {
        match self {
            Pll::Ice40(p) => p.f_out_hz,
            Pll::Ecp5(p) => p.f_out_hz,
        }
    }

    /// The setting in one line, for reports.
    pub fn describe(&self) -> String {
        match self {
            Pll::Ice40(p) => format!(
                "SB_PLL40_PAD DIVR {} DIVF {} DIVQ {} FILTER_RANGE {} (PFD {:.3} MHz, VCO {:.3} MHz)",
                p.divr,
                p.divf,
                p.divq,
                p.filter_range,
                p.f_pfd_hz / 1e6,
                p.f_vco_hz / 1e6
            ),
            Pll::Ecp5(p) => format!(
                "EHXPLLL CLKI_DIV {} CLKFB_DIV {} CLKOP_DIV {} (PFD {:.3} MHz, VCO {:.3} MHz)",
                p.clki_div,
                p.clkfb_div,
                p.clkop_div,
                p.f_pfd_hz / 1e6,
                p.f_vco_hz / 1e6
            ),
        }
    }
}

/// The design clock of a board top.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clock {
    pub requested_hz: f64,
    /// what the PLL (or the oscillator) actually gives
    pub reached_hz: f64,
    /// None: the oscillator drives the design directly
    pub pll: Option<Pll>,
}

/// The clock for `mhz` on `board`: the oscillator itself when `mhz` is its frequency,
/// otherwise the board's PLL (see [`ice40_pll`], [`ecp5_pll`]).
pub fn clock_for(board: &Board, mhz: f64) -> Result<Clock, String> {
    if !mhz.is_finite() || mhz <= 0.0 {
        return Err("expected a frequency in MHz above 0".to_string());
    }
    let want = mhz * 1e6;
    let osc = board.osc_hz as f64;
    if same(want, osc) {
        return Ok(Clock {
            requested_hz: want,
            reached_hz: osc,
            pll: None,
        });
    }
    let pll = match board.family {
        Family::Ice40 => Pll::Ice40(ice40_pll(osc, want)?),
        Family::Ecp5 => Pll::Ecp5(ecp5_pll(osc, want)?),
    };
    Ok(Clock {
        requested_hz: want,
        reached_hz: pll.f_out_hz(),
        pll: Some(pll),
    })
}

/// A port name of the board table split into its Verilog port and bit:
/// `led[3]` → (`led`, Some(3)), `tx` → (`tx`, None).
pub fn split_port(port: &str) -> (&str, Option<usize>) {
    if let Some(open) = port.find('[') {
        if let Some(idx) = port[open + 1..]
            .strip_suffix(']')
            .and_then(|s| s.parse().ok())
        {
            return (&port[..open], Some(idx));
        }
    }
    (port, None)
}

/// The board top's module name: `<net>_<board>` with the board's dashes as underscores.
pub fn top_name(net_ident: &str, board: &Board) -> String {
    format!("{net_ident}_{}", board.name.replace('-', "_"))
}

/// The Verilog of the board top `top` around the core module `core` (ports `clk`,
/// `rst`, `uart_rx`, `uart_tx`, `led_activity`, `led_error`), clocked by `clock`.
pub fn board_top_verilog(board: &Board, top: &str, core: &str, clock: &Clock) -> String {
    let mut v = String::new();
    v += &format!(
        "// Board top for {} (pins: constraints/{}).\n\
         // Clock: {:.3} MHz requested, {:.3} MHz reached{}.\n",
        board.title,
        board.constraints,
        clock.requested_hz / 1e6,
        clock.reached_hz / 1e6,
        match &clock.pll {
            Some(p) => format!(" with {}", p.describe()),
            None => " (the oscillator, no PLL)".to_string(),
        }
    );
    // ports, grouping `name[i]` pins into buses
    let mut ports: Vec<(String, &str, Option<usize>)> = vec![]; // (name, dir, max bit)
    let mut add = |p: &Pin, dir: &'static str| {
        let (name, bit) = split_port(p.port);
        if let Some(e) = ports.iter_mut().find(|e| e.0 == name) {
            e.2 = e.2.max(bit);
        } else {
            ports.push((name.to_string(), dir, bit));
        }
    };
    add(&board.clock, "input");
    add(&board.rx, "input");
    add(&board.tx, "output");
    add(&board.button, "input");
    for l in board.leds {
        add(l, "output");
    }
    let decl: Vec<String> = ports
        .iter()
        .map(|(n, d, b)| match b {
            Some(m) => format!("    {d} wire [{m}:0] {n}"),
            None => format!("    {d} wire {n}"),
        })
        .collect();
    v += &format!("module {top} (\n{}\n);\n", decl.join(",\n"));
    let clk = board.clock.port;
    v += "    wire clk_core;\n    wire pll_locked;\n";
    match &clock.pll {
        None => v += &format!("    assign clk_core = {clk};\n    assign pll_locked = 1'b1;\n"),
        Some(Pll::Ice40(p)) => {
            v += &format!(
                "    SB_PLL40_PAD #(\n\
                 \x20       .FEEDBACK_PATH(\"SIMPLE\"),\n\
                 \x20       .DIVR(4'd{}),\n\
                 \x20       .DIVF(7'd{}),\n\
                 \x20       .DIVQ(3'd{}),\n\
                 \x20       .FILTER_RANGE(3'd{})\n\
                 \x20   ) pll (\n\
                 \x20       .PACKAGEPIN({clk}),\n\
                 \x20       .PLLOUTGLOBAL(clk_core),\n\
                 \x20       .LOCK(pll_locked),\n\
                 \x20       .RESETB(1'b1),\n\
                 \x20       .BYPASS(1'b0)\n\
                 \x20   );\n",
                p.divr, p.divf, p.divq, p.filter_range
            )
        }
        Some(Pll::Ecp5(p)) => {
            // the loop filter attributes are the values Lattice's tools give every setting
            v += &format!(
                "    (* ICP_CURRENT=\"12\" *) (* LPF_RESISTOR=\"8\" *) (* MFG_ENABLE_FILTEROPAMP=\"1\" *) (* MFG_GMCREF_SEL=\"2\" *)\n\
                 \x20   EHXPLLL #(\n\
                 \x20       .PLLRST_ENA(\"DISABLED\"),\n\
                 \x20       .INTFB_WAKE(\"DISABLED\"),\n\
                 \x20       .STDBY_ENABLE(\"DISABLED\"),\n\
                 \x20       .DPHASE_SOURCE(\"DISABLED\"),\n\
                 \x20       .OUTDIVIDER_MUXA(\"DIVA\"),\n\
                 \x20       .CLKOP_ENABLE(\"ENABLED\"),\n\
                 \x20       .CLKOP_DIV({}),\n\
                 \x20       .CLKOP_CPHASE({}),\n\
                 \x20       .CLKOP_FPHASE(0),\n\
                 \x20       .CLKFB_DIV({}),\n\
                 \x20       .CLKI_DIV({}),\n\
                 \x20       .FEEDBK_PATH(\"CLKOP\")\n\
                 \x20   ) pll (\n\
                 \x20       .CLKI({clk}),\n\
                 \x20       .CLKFB(clk_core),\n\
                 \x20       .CLKOP(clk_core),\n\
                 \x20       .RST(1'b0),\n\
                 \x20       .STDBY(1'b0),\n\
                 \x20       .PHASESEL0(1'b0),\n\
                 \x20       .PHASESEL1(1'b0),\n\
                 \x20       .PHASEDIR(1'b0),\n\
                 \x20       .PHASESTEP(1'b0),\n\
                 \x20       .PHASELOADREG(1'b0),\n\
                 \x20       .PLLWAKESYNC(1'b0),\n\
                 \x20       .ENCLKOP(1'b0),\n\
                 \x20       .LOCK(pll_locked)\n\
                 \x20   );\n",
                p.clkop_div,
                p.clkop_div - 1,
                p.clkfb_div,
                p.clki_div
            )
        }
    }
    let pressed = if board.button.active_low {
        format!("~{}", board.button.port)
    } else {
        board.button.port.to_string()
    };
    let por_bits = POR_CYCLES.trailing_zeros();
    v += &format!(
        "    // reset: asynchronous assertion, release synchronous to clk_core\n\
         \x20   wire hold = ~pll_locked | {pressed};\n\
         \x20   reg [1:0] released = 2'b00;\n\
         \x20   always @(posedge clk_core or posedge hold)\n\
         \x20       if (hold) released <= 2'b00;\n\
         \x20       else released <= {{released[0], 1'b1}};\n\
         \x20   // then {POR_CYCLES} more cycles in reset\n\
         \x20   reg [{por_bits}:0] por = 0;\n\
         \x20   always @(posedge clk_core)\n\
         \x20       if (!released[1]) por <= 0;\n\
         \x20       else if (!por[{por_bits}]) por <= por + 1'b1;\n\
         \x20   reg run = 1'b0;\n\
         \x20   always @(posedge clk_core) run <= por[{por_bits}];\n\
         \x20   wire led_activity;\n\
         \x20   wire led_error;\n\
         \x20   {core} core (\n\
         \x20       .clk(clk_core),\n\
         \x20       .rst(~run),\n\
         \x20       .uart_rx({rx}),\n\
         \x20       .uart_tx({tx}),\n\
         \x20       .led_activity(led_activity),\n\
         \x20       .led_error(led_error)\n\
         \x20   );\n",
        rx = board.rx.port,
        tx = board.tx.port,
    );
    for (i, l) in board.leds.iter().enumerate() {
        let on = match i {
            0 => "led_activity",
            1 => "led_error",
            _ => "1'b0",
        };
        let value = if l.active_low {
            format!("~{on}")
        } else {
            on.to_string()
        };
        v += &format!("    assign {} = {value};\n", l.port);
    }
    v += "endmodule\n";
    v
}

/// The (port, site) pairs of a pin file: `set_io [-opts] PORT SITE` (PCF) or
/// `LOCATE COMP "PORT" SITE "SITE";` (LPF); comments (`#`) ignored.
pub fn constraint_sites(family: Family, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut v = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match family {
            Family::Ice40 if words[0] == "set_io" => {
                let args: Vec<&str> = words[1..]
                    .iter()
                    .enumerate()
                    .filter(|(i, w)| {
                        // `-pullup yes`, `-pullup_resistor 10K` take a value; `-nowarn` not
                        !w.starts_with('-') && !(*i > 0 && words[*i].starts_with("-pull"))
                    })
                    .map(|(_, w)| *w)
                    .collect();
                if args.len() != 2 {
                    return Err(format!("line {}: expected set_io PORT SITE", n + 1));
                }
                v.push((args[0].to_string(), args[1].to_string()));
            }
            Family::Ecp5 if words[0] == "LOCATE" => {
                let unq = |s: &str| s.trim_end_matches(';').trim_matches('"').to_string();
                if words.len() != 5 || words[1] != "COMP" || words[3] != "SITE" {
                    return Err(format!(
                        "line {}: expected LOCATE COMP \"PORT\" SITE \"SITE\";",
                        n + 1
                    ));
                }
                v.push((unq(words[2]), unq(words[4])));
            }
            _ => {}
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boards::{board, BOARDS};

    fn check_ice40(p: &Ice40Pll) {
        use ice40_limits::*;
        assert!(p.divr <= DIVR.1 && p.divf <= DIVF.1, "{p:?}");
        assert!((DIVQ.0..=DIVQ.1).contains(&p.divq), "{p:?}");
        assert!(within(p.f_pfd_hz, F_PFD), "{p:?}");
        assert!(within(p.f_vco_hz, F_VCO), "{p:?}");
        assert!(within(p.f_out_hz, F_OUT), "{p:?}");
        // the frequencies follow from the dividers
        let f_out = 12e6 / (p.divr + 1) as f64 * (p.divf + 1) as f64 / (1u32 << p.divq) as f64;
        assert!(same(f_out, p.f_out_hz), "{p:?}");
        assert_eq!(p.filter_range, ice40_filter_range(p.f_pfd_hz));
    }

    fn check_ecp5(p: &Ecp5Pll, f_in: f64) {
        use ecp5_limits::*;
        assert!((CLKI_DIV.0..=CLKI_DIV.1).contains(&p.clki_div), "{p:?}");
        assert!((CLKFB_DIV.0..=CLKFB_DIV.1).contains(&p.clkfb_div), "{p:?}");
        assert!((CLKOP_DIV.0..=CLKOP_DIV.1).contains(&p.clkop_div), "{p:?}");
        assert!(within(p.f_pfd_hz, F_PFD), "{p:?}");
        assert!(within(p.f_vco_hz, F_VCO), "{p:?}");
        let f_out = f_in / p.clki_div as f64 * p.clkfb_div as f64;
        assert!(same(f_out, p.f_out_hz), "{p:?}");
        assert!(same(f_out * p.clkop_div as f64, p.f_vco_hz), "{p:?}");
    }

    #[test]
    fn ice40_pll_reaches_48_and_60_from_12() {
        for mhz in [48.0, 60.0] {
            let p = ice40_pll(12e6, mhz * 1e6).unwrap();
            println!("12 -> {mhz} MHz: {p:?}");
            check_ice40(&p);
            assert!(same(p.f_out_hz, mhz * 1e6), "{p:?}");
        }
        // 48 MHz: PFD 12, VCO 768 (DIVF 63, DIVQ 4), as icestorm's icepll gives it
        let p = ice40_pll(12e6, 48e6).unwrap();
        assert_eq!((p.divr, p.divf, p.divq, p.filter_range), (0, 63, 4, 1));
    }

    #[test]
    fn ecp5_pll_reaches_50_and_75_from_25() {
        for mhz in [50.0, 75.0] {
            let p = ecp5_pll(25e6, mhz * 1e6).unwrap();
            println!("25 -> {mhz} MHz: {p:?}");
            check_ecp5(&p, 25e6);
            assert!(same(p.f_out_hz, mhz * 1e6), "{p:?}");
            assert!(same(p.f_vco_hz, 600e6), "VCO nearest 600 MHz: {p:?}");
        }
    }

    /// An unreachable frequency gives the fastest one below it; every answer for a sweep
    /// of requests respects the ranges and is never above the request.
    #[test]
    fn pll_sweeps_stay_in_range_and_below_the_request() {
        // from 16.5 MHz: just above 16 MHz the nearest setting is above the request
        for tenth in (165..=2750).step_by(37) {
            let want = tenth as f64 * 1e5;
            let p = ice40_pll(12e6, want).unwrap();
            check_ice40(&p);
            assert!(p.f_out_hz <= want * (1.0 + 1e-9), "{want}: {p:?}");
            // no other setting is closer from below: f_vco steps are 12 MHz / (DIVR+1)
            assert!(want - p.f_out_hz < 12e6 / 2.0, "{want}: {p:?}");
        }
        for tenth in (40..=4000).step_by(41) {
            let want = tenth as f64 * 1e5;
            let p = ecp5_pll(25e6, want).unwrap();
            check_ecp5(&p, 25e6);
            assert!(p.f_out_hz <= want * (1.0 + 1e-9), "{want}: {p:?}");
        }
        let p = ice40_pll(12e6, 47.3e6).unwrap();
        assert!(p.f_out_hz < 47.3e6 && p.f_out_hz > 46.5e6, "{p:?}");
        assert!(ice40_pll(12e6, 300e6).unwrap_err().contains("16–275 MHz"));
        assert!(ecp5_pll(25e6, 500e6).is_err());
    }

    /// icestorm's own calculator, when installed, reaches the same frequency.
    #[test]
    fn ice40_pll_agrees_with_icepll() {
        for mhz in [30.0, 36.0, 42.0, 48.0, 60.0, 66.0, 72.0, 100.0] {
            let Ok(out) = std::process::Command::new("icepll")
                .args(["-i", "12", "-o", &mhz.to_string()])
                .output()
            else {
                println!("icepll not installed: skipped");
                return;
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let achieved: f64 = text
                .lines()
                .find(|l| l.contains("(achieved)"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("icepll output: {text}"));
            let p = ice40_pll(12e6, mhz * 1e6).unwrap();
            println!("{mhz} MHz: icepll {achieved}, here {}", p.f_out_hz / 1e6);
            if achieved <= mhz {
                assert!((p.f_out_hz / 1e6 - achieved).abs() < 1e-3, "{mhz}: {p:?}");
            }
        }
    }

    #[test]
    fn the_oscillator_needs_no_pll() {
        let ib = board("icebreaker").unwrap();
        let c = clock_for(ib, 12.0).unwrap();
        assert_eq!((c.reached_hz, c.pll), (12e6, None));
        let c = clock_for(ib, 48.0).unwrap();
        assert!(matches!(c.pll, Some(Pll::Ice40(_))) && same(c.reached_hz, 48e6));
        let c = clock_for(board("ulx3s-85f").unwrap(), 25.0).unwrap();
        assert_eq!(c.pll, None);
        assert!(clock_for(ib, 0.0).is_err());
        assert!(clock_for(ib, 8.0).unwrap_err().contains("16–275"));
    }

    /// Every port of the board table is in its pin file at its site, and the file has
    /// no other port.
    #[test]
    fn pin_files_agree_with_the_board_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../constraints");
        for b in &BOARDS {
            let path = dir.join(b.constraints);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut file = constraint_sites(b.family, &text).unwrap();
            let mut table: Vec<(String, String)> = [b.clock, b.rx, b.tx, b.button]
                .iter()
                .chain(b.leds)
                .map(|p| (p.port.to_string(), p.site.to_string()))
                .collect();
            file.sort();
            table.sort();
            assert_eq!(file, table, "{}: {}", b.name, b.constraints);
        }
        // the ECP5 clock has its frequency for nextpnr
        let lpf = std::fs::read_to_string(dir.join("ulx3s_v20.lpf")).unwrap();
        assert!(lpf.contains("FREQUENCY PORT \"clk\" 25 MHZ;"));
    }

    #[test]
    fn the_board_top_has_the_table_ports_and_polarities() {
        let ib = board("icebreaker").unwrap();
        let v = board_top_verilog(
            ib,
            "n_icebreaker",
            "n_board_core",
            &clock_for(ib, 48.0).unwrap(),
        );
        for s in [
            "module n_icebreaker (",
            "input wire clk",
            "input wire btn_n",
            "output wire led_red_n",
            "SB_PLL40_PAD",
            ".DIVF(7'd63)",
            "wire hold = ~pll_locked | ~btn_n;",
            "assign led_red_n = ~led_activity;",
            "assign led_green_n = ~led_error;",
        ] {
            assert!(v.contains(s), "{s}\n{v}");
        }
        let u = board("ulx3s-12f").unwrap();
        assert_eq!(top_name("n", u), "n_ulx3s_12f");
        let v = board_top_verilog(
            u,
            "n_ulx3s_12f",
            "n_board_core",
            &clock_for(u, 50.0).unwrap(),
        );
        for s in [
            "output wire [7:0] led",
            "EHXPLLL",
            ".CLKFB_DIV(2)",
            "assign led[0] = led_activity;",
            "assign led[7] = 1'b0;",
            "wire hold = ~pll_locked | ~btn;",
        ] {
            assert!(v.contains(s), "{s}\n{v}");
        }
    }

    /// The board top with a stand-in core synthesises cleanly for iCE40.
    #[test]
    fn the_board_top_synthesises() {
        let ib = board("icebreaker").unwrap();
        let core = "module n_board_core(input clk, input rst, input uart_rx, output reg uart_tx,\n\
                    output led_activity, output led_error);\n\
                    reg [3:0] c; always @(posedge clk) if (rst) begin c <= 0; uart_tx <= 1; end\n\
                    else begin c <= c + uart_rx; uart_tx <= c[3]; end\n\
                    assign led_activity = c[1]; assign led_error = c[2];\nendmodule\n";
        // the oscillator's clock: `ice40_stats` checks the hierarchy before yosys adds
        // its cell library, so no SB_PLL40_PAD here
        let top = board_top_verilog(
            ib,
            "n_icebreaker",
            "n_board_core",
            &clock_for(ib, 12.0).unwrap(),
        );
        let s = crate::synth::ice40_stats("board_top", &format!("{top}{core}"), "n_icebreaker")
            .unwrap();
        println!("board top with a 4-bit counter core: {s}");
        assert!(s.dff >= 2 + 13 + 1 + 5, "{s}");
    }
}
