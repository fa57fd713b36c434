//! The random generator really covers every op and option the spec has: the seeds the
//! co-simulation and model tests use reach all of them.

use bnnforge_model::network::{Kind, Op, Src};
use bnnforge_model::random::{random_network, RandomConfig};
use std::collections::BTreeSet;

#[test]
fn first_200_seeds_cover_every_op_and_option() {
    let mut seen = BTreeSet::new();
    for seed in 0..200u64 {
        let net = random_network(seed, &RandomConfig::default());
        let ik = net.input.kind();
        seen.insert(match (ik, net.input.signed) {
            (Kind::Binary, _) => "input binary",
            (_, true) => "input signed",
            (_, false) => "input unsigned",
        });
        seen.insert(if net.input.shape.is_map {
            "input map"
        } else {
            "input vector"
        });
        if net.input.bits == 8 && net.input.signed {
            seen.insert("input signed 8-bit");
        }
        for (l, info) in net.layers.iter().zip(net.info()) {
            let (_, k) = net.src_shape_kind(info.srcs[0]);
            let bin = if k.is_binary() { "binary" } else { "integer" };
            match &l.op {
                Op::Dense { bias, .. } => {
                    seen.insert(if bin == "binary" {
                        "dense binary"
                    } else {
                        "dense integer"
                    });
                    if bias.is_some() {
                        seen.insert("bias");
                    }
                }
                Op::Conv {
                    kernel,
                    stride,
                    padding,
                    pad_value,
                    ..
                } => {
                    if padding >= kernel {
                        seen.insert("padding >= kernel");
                    }
                    seen.insert(if bin == "binary" {
                        "conv binary"
                    } else {
                        "conv integer"
                    });
                    if *stride == 2 {
                        seen.insert("stride 2");
                    }
                    if *padding > 0 && bin == "binary" {
                        seen.insert(["pad -1", "pad 0", "pad +1"][(*pad_value + 1) as usize]);
                    }
                }
                Op::Threshold {
                    bits,
                    thresholds,
                    flip,
                } => {
                    seen.insert(if *bits == 1 {
                        "threshold 1-bit"
                    } else {
                        "threshold multi-bit"
                    });
                    if flip.as_ref().is_some_and(|f| f.data.contains(&1)) {
                        seen.insert("flip");
                    }
                    let (lo, hi) = k.range();
                    if thresholds.data.iter().any(|&t| t < lo || t > hi) {
                        seen.insert("threshold out of range");
                    }
                    if thresholds
                        .data
                        .iter()
                        .any(|&t| t == i64::MIN || t == i64::MAX)
                    {
                        seen.insert("threshold at the 64-bit ends");
                    }
                    if info.srcs[0] == Src::Input {
                        seen.insert("threshold on the input");
                    }
                }
                Op::Add => {
                    seen.insert(["add 2", "add 3", "add 4", "add 5"][l.inputs.len().min(5) - 2]);
                }
                Op::MaxPool { .. } => {
                    seen.insert(if bin == "binary" {
                        "maxpool binary"
                    } else {
                        "maxpool integer"
                    });
                }
                Op::SumPool => {
                    seen.insert("sumpool");
                }
            }
        }
    }
    let want = [
        "input binary",
        "input signed 8-bit",
        "input signed",
        "input unsigned",
        "input map",
        "input vector",
        "dense binary",
        "dense integer",
        "bias",
        "conv binary",
        "conv integer",
        "stride 2",
        "pad -1",
        "pad 0",
        "pad +1",
        "padding >= kernel",
        "threshold 1-bit",
        "threshold multi-bit",
        "flip",
        "threshold out of range",
        "threshold at the 64-bit ends",
        "threshold on the input",
        "add 2",
        "add 3",
        "add 4",
        "add 5",
        "maxpool binary",
        "maxpool integer",
        "sumpool",
    ];
    let missing: Vec<_> = want.iter().filter(|w| !seen.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "the random networks never have {missing:?}"
    );
}

#[test]
fn same_seed_same_network() {
    let cfg = RandomConfig::default();
    for seed in [0u64, 7, 1 << 40] {
        assert_eq!(random_network(seed, &cfg), random_network(seed, &cfg));
    }
    assert_ne!(random_network(1, &cfg), random_network(2, &cfg));
}
