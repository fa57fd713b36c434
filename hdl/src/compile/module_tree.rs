//! Verilog for one rust-hdl block as a module tree under a chosen name.
//!
//! `generate_verilog` always names the top module `top` and every sub-module by its
//! instance path (`top$tree$lv1$0`, …), so two layers generated separately would
//! define the same module names. [`module_tree`] runs the same generator with the
//! layer's own name as the root of every path: all modules of the layer are then
//! `<name>` and `<name>$…`, disjoint from every other layer, and bnnforge's structural
//! top can instantiate `<name>` directly (escaped identifiers are not needed: `$` is
//! legal inside Verilog identifiers).
//!
//! A memory's contents (rust-hdl writes one `initial` block of `mem[N'b…] = …;` per
//! memory) are rewritten with decimal addresses in blocks of [`INIT_BLOCK`] words: yosys
//! 0.23's `read_verilog` takes time quadratic in the statements of one block (4096
//! words: 31 s in one block, 2.8 s in blocks of 256), which kept LFC's 16,384-word weight
//! memories from synthesising at all.

use rust_hdl::prelude::*;

/// The Verilog of `block` with its top module named `name` and every sub-module
/// prefixed `name$`. Runs rust-hdl's design checks first (unconnected inputs, logic
/// loops, latching writes) and returns their error as text instead of panicking.
pub fn module_tree<B: Block>(block: &B, name: &str) -> Result<String, String> {
    assert!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "module name `{name}` is not a plain Verilog identifier"
    );
    check_all(block).map_err(|e| format!("{name}: rust-hdl check failed: {e:?}"))?;
    let mut defines = ModuleDefines::default();
    block.accept(name, &mut defines);
    Ok(split_memory_inits(&defines.defines()))
}

/// Memory words per `initial` block (see the module documentation).
pub const INIT_BLOCK: usize = 256;

/// `name[N'bBITS] = VALUE;` as (name, address, value); `None` for any other line.
fn memory_init(line: &str) -> Option<(&str, u64, &str)> {
    let (lhs, rhs) = line.trim().split_once(" = ")?;
    let (name, addr) = lhs.strip_suffix(']')?.split_once('[')?;
    let (_, bits) = addr.split_once("'b")?;
    let addr = u64::from_str_radix(bits, 2).ok()?;
    let value = rhs.strip_suffix(';')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '\'')
    };
    (plain(name) && plain(value)).then_some((name, addr, value))
}

/// Every `initial begin … end` block that only sets memory words, rewritten with decimal
/// addresses in blocks of at most [`INIT_BLOCK`] words; everything else unchanged.
pub fn split_memory_inits(verilog: &str) -> String {
    let mut out = String::with_capacity(verilog.len());
    let mut lines = verilog.split_inclusive('\n');
    while let Some(line) = lines.next() {
        if line.trim() != "initial begin" {
            out.push_str(line);
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut body = Vec::new();
        let mut closed = None;
        for l in lines.by_ref() {
            if l.trim() == "end" {
                closed = Some(l);
                break;
            }
            body.push(l);
        }
        let inits: Option<Vec<_>> = body.iter().map(|l| memory_init(l)).collect();
        match (inits, closed) {
            (Some(inits), Some(_)) if !inits.is_empty() => {
                for chunk in inits.chunks(INIT_BLOCK) {
                    out.push_str(indent);
                    out.push_str("initial begin\n");
                    for (name, addr, value) in chunk {
                        out.push_str(&format!("{indent}{name}[{addr}] = {value};\n"));
                    }
                    out.push_str(indent);
                    out.push_str("end\n");
                }
            }
            (_, closed) => {
                out.push_str(line);
                body.iter().for_each(|l| out.push_str(l));
                out.push_str(closed.unwrap_or(""));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::mvu_pe::MvuPe;
    use crate::synth::ice40_stats;

    #[test]
    fn memory_contents_are_split_into_blocks_with_decimal_addresses() {
        let words: String = (0..600u32)
            .map(|i| format!("    mem[10'b{i:b}] = 8'h{:x};\n", i % 251))
            .collect();
        let v = format!(
            "module m(clock);\n    reg[7:0] mem [1023:0];\n    initial begin\n{words}    end\n\
             \x20   initial begin\n    x = 1;\n    end\nendmodule\n"
        );
        let s = split_memory_inits(&v);
        // 600 words: blocks of 256, 256 and 88; the block that is not a memory's is kept
        assert_eq!(s.matches("initial begin").count(), 4, "{s}");
        assert!(s.contains("    initial begin\n    mem[0] = 8'h0;\n"));
        assert!(
            s.contains("    mem[255] = 8'h4;\n    end\n    initial begin\n    mem[256] = 8'h5;\n")
        );
        assert!(s.contains("    mem[599] = 8'h61;\n    end\n"));
        assert!(s.contains("    initial begin\n    x = 1;\n    end\n"));
        let assigns = |t: &str| t.lines().filter(|l| l.contains(" = 8'h")).count();
        assert_eq!(assigns(&s), 600);
        assert_eq!(split_memory_inits(&s), s, "a second pass changes nothing");
    }

    #[test]
    fn two_layers_share_no_module_names_and_wire_up_in_a_structural_top() {
        let mut a = MvuPe::<8, 4, 7, 8>::new(72, false);
        a.connect_all();
        let mut b = MvuPe::<4, 3, 5, 6>::new(16, false);
        b.connect_all();
        let va = module_tree(&a, "l0_pe0").unwrap();
        let vb = module_tree(&b, "l1_pe0").unwrap();
        assert!(va.contains("module l0_pe0(") && vb.contains("module l1_pe0("));
        assert!(!va.contains("module top") && !vb.contains("module l0_"));
        // a hand-written structural top instantiating both, as bnnforge's would
        let top = "module top(clock, x, w, v, y);\n\
                   input wire clock; input wire [7:0] x; input wire [7:0] w; input wire v;\n\
                   output wire [5:0] y;\n\
                   wire [7:0] y0; wire v0;\n\
                   l0_pe0 p0(.clock(clock), .in_valid(v), .first(v), .last(v), .x(x), .w(w),\n\
                             .out_valid(v0), .y(y0));\n\
                   l1_pe0 p1(.clock(clock), .in_valid(v0), .first(v0), .last(v0),\n\
                             .x(y0[3:0]), .w(y0[7:4]), .out_valid(), .y(y));\n\
                   endmodule\n";
        let all = format!("{va}\n{vb}\n{top}");
        let s = ice40_stats("two_layers", &all, "top").unwrap();
        assert!(s.dff > 0 && s.lut4 > 0, "{s}");
    }
}
