//! Convs whose padding is at least the kernel (legal in format 1, as in PyTorch): the
//! output includes the positions wholly in the padding, which see only the pad value.
//! The model and the reference are held to a direct computation over an explicitly
//! padded input, on binary (pad −1, 0, +1) and integer (pad 0) inputs.

use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
use bnnforge_model::random::random_frames;
use bnnforge_model::{reference, Model};

/// The conv computed the textbook way: copy x into a (H+2p)×(W+2p) map filled with the
/// pad value, then slide the k×k kernel over it with stride s, no bounds checks.
fn direct(
    x: &[i64],
    (c, h, w): (usize, usize, usize),
    wt: &[i8],
    out: usize,
    k: usize,
    s: usize,
    p: usize,
    pad: i64,
) -> Vec<i64> {
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    let mut padded = vec![pad; c * ph * pw];
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                padded[(ch * ph + y + p) * pw + xx + p] = x[(ch * h + y) * w + xx];
            }
        }
    }
    let (oh, ow) = ((ph - k) / s + 1, (pw - k) / s + 1);
    let mut y = vec![];
    for o in 0..out {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0;
                for ch in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            acc += wt[((o * c + ch) * k + ky) * k + kx] as i64
                                * padded[(ch * ph + oy * s + ky) * pw + ox * s + kx];
                        }
                    }
                }
                y.push(acc);
            }
        }
    }
    y
}

fn case(
    seed: u64,
    (c, h, w): (usize, usize, usize),
    out: usize,
    k: usize,
    s: usize,
    p: usize,
    bits: u32,
    pad_value: i8,
) {
    let input = InputSpec {
        shape: Shape::map(c, h, w),
        bits,
        signed: true,
    };
    let wt: Vec<i8> = random_frames(
        &InputSpec {
            shape: Shape::vector(out * c * k * k),
            bits: 1,
            signed: false,
        },
        1,
        seed,
    )
    .into_iter()
    .map(|v| v as i8)
    .collect();
    let net = Network::new(
        "pad".into(),
        input,
        vec![Layer {
            name: "conv".into(),
            inputs: vec!["input".into()],
            op: Op::Conv {
                out,
                kernel: k,
                stride: s,
                padding: p,
                pad_value,
                weight: Param::new("conv.w", vec![out, c, k, k], wt.clone()),
                bias: None,
            },
        }],
        "conv".into(),
    )
    .unwrap_or_else(|e| panic!("k={k} s={s} p={p} on {c}x{h}x{w} refused: {e}"));
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    assert_eq!(net.info()[0].shape, Shape::map(out, oh, ow), "output shape");
    let model = Model::new(&net);
    let pad = if bits == 1 { pad_value as i64 } else { 0 };
    for (f, x) in random_frames(&net.input, 3, seed)
        .chunks(c * h * w)
        .enumerate()
    {
        let want = direct(x, (c, h, w), &wt, out, k, s, p, pad);
        let label =
            format!("k={k} s={s} p={p} pad={pad_value} bits={bits} on {c}x{h}x{w}, frame {f}");
        assert_eq!(model.eval(x), want, "model: {label}");
        assert_eq!(reference::eval(&net, x), want, "reference: {label}");
    }
}

#[test]
fn padding_at_least_the_kernel_matches_a_direct_computation() {
    for bits in [1, 4] {
        for pad in [-1i8, 0, 1] {
            // 1×1 with padding 1: a ring of outputs that see only the pad value
            case(1, (3, 4, 5), 2, 1, 1, 1, bits, pad);
            // 3×3 with padding 3: the corner outputs lie wholly in the padding
            case(2, (2, 3, 4), 3, 3, 1, 3, bits, pad);
            // stride 2, padding 5 over a 2×3 map
            case(3, (70, 2, 3), 2, 2, 2, 5, bits, pad);
            // stride 3, padding larger than the map
            case(4, (1, 1, 1), 1, 1, 3, 4, bits, pad);
        }
    }
}

#[test]
fn a_1x1_conv_with_padding_1_has_a_ring_of_pad_outputs() {
    // all-ones weights over 2 channels: a ring output is 2·pad = −2, an inner one the
    // sum of its pixel's two channels
    let c = (2, 2, 2);
    let net = Network::new(
        "ring".into(),
        InputSpec {
            shape: Shape::map(2, 2, 2),
            bits: 1,
            signed: false,
        },
        vec![Layer {
            name: "conv".into(),
            inputs: vec!["input".into()],
            op: Op::Conv {
                out: 1,
                kernel: 1,
                stride: 1,
                padding: 1,
                pad_value: -1,
                weight: Param::new("conv.w", vec![1, 2, 1, 1], vec![1, 1]),
                bias: None,
            },
        }],
        "conv".into(),
    )
    .unwrap();
    let x = [1, 1, -1, 1, 1, -1, -1, 1];
    let y = Model::new(&net).eval(&x);
    #[rustfmt::skip]
    let want = vec![
        -2, -2, -2, -2,
        -2,  2,  0, -2,
        -2, -2,  2, -2,
        -2, -2, -2, -2,
    ];
    assert_eq!(y, want, "{c:?}");
}
