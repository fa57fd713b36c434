//! `bnnforge info`: per layer the shapes, MACs, parameter bits and value widths.

use bnnforge_model::info::layer_stats;
use bnnforge_model::{Kind, Result};
use std::path::Path;

fn width(w: (u32, bool)) -> String {
    format!("{}{}", if w.1 { "s" } else { "u" }, w.0)
}

pub fn run(model: &Path) -> Result<()> {
    let net = bnnforge_model::load(model)?;
    let stats = layer_stats(&net);
    let kind = |k: Kind| match k {
        Kind::Binary => "±1".to_string(),
        Kind::Int { lo, hi } => format!("{lo}..={hi}"),
    };
    println!(
        "{} (format 1): input {} {}, output '{}' {}",
        net.name,
        net.input.shape,
        if net.input.bits == 1 {
            "binary".to_string()
        } else {
            format!(
                "{}-bit {}",
                net.input.bits,
                if net.input.signed {
                    "signed"
                } else {
                    "unsigned"
                }
            )
        },
        net.output,
        net.output_shape()
    );
    println!(
        "{:<12} {:<9} {:<14} {:<14} {:>12} {:>10} {:>6} {:>6}  values",
        "layer", "op", "in", "out", "MACs", "param bits", "acc", "value"
    );
    for s in &stats {
        let macs = if s.macs == 0 {
            "-".to_string()
        } else {
            format!("{}{}", s.macs, if s.binary_macs { "b" } else { "" })
        };
        println!(
            "{:<12} {:<9} {:<14} {:<14} {:>12} {:>10} {:>6} {:>6}  {}",
            s.name,
            s.op,
            s.in_shape.to_string(),
            s.out_shape.to_string(),
            macs,
            s.param_bits,
            s.acc_width.map_or("-".to_string(), width),
            if s.out_kind.is_binary() {
                "1".to_string()
            } else {
                width(s.out_width)
            },
            kind(s.out_kind)
        );
    }
    let macs: u64 = stats.iter().map(|s| s.macs).sum();
    let bin: u64 = stats.iter().filter(|s| s.binary_macs).map(|s| s.macs).sum();
    let bits: u64 = stats.iter().map(|s| s.param_bits).sum();
    println!(
        "total: {macs} MACs per frame ({bin} binary), {bits} parameter bits ({:.1} KiB)",
        bits as f64 / 8192.0
    );
    println!(
        "MACs: 'b' marks binary XNOR-popcount MACs; acc/value: u = unsigned, s = signed, bits"
    );
    Ok(())
}
