//! Verilog for one rust-hdl block as a module tree under a chosen name.
//!
//! `generate_verilog` always names the top module `top` and every sub-module by its
//! instance path (`top$tree$lv1$0`, …), so two layers generated separately would
//! define the same module names. [`module_tree`] runs the same generator with the
//! layer's own name as the root of every path: all modules of the layer are then
//! `<name>` and `<name>$…`, disjoint from every other layer, and bnnforge's structural
//! top can instantiate `<name>` directly (escaped identifiers are not needed: `$` is
//! legal inside Verilog identifiers).

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
    Ok(defines.defines())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvu_pe::MvuPe;
    use crate::synth::ice40_stats;

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
