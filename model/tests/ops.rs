//! Every op of the spec on small cases computed by hand, through both the packed model
//! and the plain reference.

use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
use bnnforge_model::{reference, Model};

fn layer(name: &str, input: &str, op: Op) -> Layer {
    Layer {
        name: name.into(),
        inputs: input.split(',').map(String::from).collect(),
        op,
    }
}

fn net(shape: Shape, bits: u32, signed: bool, layers: Vec<Layer>) -> Network {
    let out = layers.last().unwrap().name.clone();
    Network::new(
        "t".into(),
        InputSpec {
            shape,
            bits,
            signed,
        },
        layers,
        out,
    )
    .unwrap()
}

/// Both implementations give `want`.
fn expect(n: &Network, x: &[i64], want: &[i64]) {
    assert_eq!(reference::eval(n, x), want, "reference");
    assert_eq!(Model::new(n).eval(x), want, "model");
}

fn dense(out: usize, w: &[i8], bias: Option<&[i64]>) -> Op {
    let n = w.len() / out;
    Op::Dense {
        out,
        weight: Param::new("w", vec![out, n], w.to_vec()),
        bias: bias.map(|b| Param::new("b", vec![out], b.to_vec())),
    }
}

fn conv(
    out: usize,
    c: usize,
    k: usize,
    stride: usize,
    padding: usize,
    pad_value: i8,
    w: &[i8],
) -> Op {
    Op::Conv {
        out,
        kernel: k,
        stride,
        padding,
        pad_value,
        weight: Param::new("w", vec![out, c, k, k], w.to_vec()),
        bias: None,
    }
}

fn thr(bits: u32, c: usize, t: &[i64], flip: Option<&[u8]>) -> Op {
    Op::Threshold {
        bits,
        thresholds: Param::new("t", vec![c, t.len() / c], t.to_vec()),
        flip: flip.map(|f| Param::new("f", vec![c], f.to_vec())),
    }
}

#[test]
fn dense_binary_with_bias() {
    // y0 = 1 - 1 + 1 + 10, y1 = -1 - 1 - 1 - 3
    let n = net(
        Shape::vector(3),
        1,
        false,
        vec![layer(
            "fc",
            "input",
            dense(2, &[1, 1, 1, -1, 1, -1], Some(&[10, -3])),
        )],
    );
    expect(&n, &[1, -1, 1], &[11, -6]);
}

#[test]
fn dense_integer_signed() {
    let n = net(
        Shape::vector(2),
        4,
        true,
        vec![layer("fc", "input", dense(1, &[1, -1], None))],
    );
    expect(&n, &[3, -2], &[5]);
    expect(&n, &[-8, 7], &[-15]);
}

#[test]
fn dense_flattens_in_chw_order() {
    // map [2, 1, 2]: c0 = [1, -1], c1 = [-1, 1]; flattened [1, -1, -1, 1]
    let n = net(
        Shape::map(2, 1, 2),
        1,
        false,
        vec![layer("fc", "input", dense(1, &[1, 1, -1, 1], None))],
    );
    expect(&n, &[1, -1, -1, 1], &[1 - 1 + 1 + 1]);
}

#[test]
fn conv_pad_values_on_binary_input() {
    // 2x2 of +1, 3x3 kernel of +1, padding 1: each output sees 4 real and 5 padded positions
    for (pad, want) in [(0i8, 4i64), (-1, 4 - 5), (1, 9)] {
        let n = net(
            Shape::map(1, 2, 2),
            1,
            false,
            vec![layer("c", "input", conv(1, 1, 3, 1, 1, pad, &[1; 9]))],
        );
        expect(&n, &[1, 1, 1, 1], &[want; 4]);
    }
}

#[test]
fn conv_stride_two_integer() {
    let x: Vec<i64> = (1..=9).collect();
    let n = net(
        Shape::map(1, 3, 3),
        4,
        false,
        vec![layer("c", "input", conv(2, 1, 1, 2, 0, 0, &[1, -1]))],
    );
    expect(&n, &x, &[1, 3, 7, 9, -1, -3, -7, -9]);
}

#[test]
fn conv_integer_input_always_pads_with_zero() {
    // pad_value applies to binary inputs only
    let n = net(
        Shape::map(1, 1, 1),
        4,
        false,
        vec![layer("c", "input", conv(1, 1, 3, 1, 1, -1, &[1; 9]))],
    );
    expect(&n, &[5], &[5]);
}

#[test]
fn conv_two_channels_orders_weights_c_k_k() {
    // input [2, 2, 2]: channel 0 = +1 everywhere, channel 1 = -1 everywhere; 2x2 kernel,
    // weights channel 0 = [1, 1, 1, -1], channel 1 = [1, -1, -1, -1]
    let n = net(
        Shape::map(2, 2, 2),
        1,
        false,
        vec![layer(
            "c",
            "input",
            conv(1, 2, 2, 1, 0, 0, &[1, 1, 1, -1, 1, -1, -1, -1]),
        )],
    );
    expect(
        &n,
        &[1, 1, 1, 1, -1, -1, -1, -1],
        &[(1 + 1 + 1 - 1) + (-1 + 1 + 1 + 1)],
    );
}

#[test]
fn threshold_one_bit_per_channel_with_flip() {
    // map [2, 1, 2]; channel 0 uses y >= 4, channel 1 (flipped) y <= 4
    let l = vec![
        layer("c", "input", conv(2, 1, 1, 1, 0, 0, &[1, 1])),
        layer("t", "c", thr(1, 2, &[4, 4], Some(&[0, 1]))),
    ];
    let n = net(Shape::map(1, 1, 2), 4, false, l);
    expect(&n, &[3, 5], &[-1, 1, 1, -1]);
    expect(&n, &[4, 4], &[1, 1, 1, 1]);
}

#[test]
fn threshold_multi_bit_in_any_order() {
    let t = vec![layer("t", "input", thr(2, 1, &[10, -5, 0], None))];
    let n = net(Shape::vector(1), 8, true, t);
    for (y, want) in [(-6, 0), (-5, 1), (0, 2), (9, 2), (10, 3), (127, 3)] {
        expect(&n, &[y], &[want]);
    }
    let t = vec![layer("t", "input", thr(2, 1, &[10, -5, 0], Some(&[1])))];
    let n = net(Shape::vector(1), 8, true, t);
    for (y, want) in [(-6, 3), (-5, 3), (0, 2), (1, 1), (10, 1), (11, 0)] {
        expect(&n, &[y], &[want]);
    }
}

#[test]
fn threshold_at_the_64_bit_ends() {
    let t = vec![layer(
        "t",
        "input",
        thr(2, 1, &[i64::MIN, i64::MAX, i64::MAX], None),
    )];
    let n = net(Shape::vector(1), 8, true, t);
    expect(&n, &[-128], &[1]);
    expect(&n, &[127], &[1]);
    let t = vec![layer("t", "input", thr(1, 1, &[i64::MAX], Some(&[1])))];
    let n = net(Shape::vector(1), 8, true, t);
    expect(&n, &[-128], &[1]);
}

#[test]
fn add_three_branches_with_a_binary_operand() {
    // x = [2, -3]; b = sign (>= 0) = [+1, -1]; c = 2-bit count of [-10, 0, 1] = [3, 1]
    let l = vec![
        layer("b", "input", thr(1, 2, &[0, 0], None)),
        layer("c", "input", thr(2, 2, &[-10, 0, 1, -10, 0, 1], None)),
        layer("s", "input,b,c", Op::Add),
    ];
    let n = net(Shape::vector(2), 4, true, l);
    expect(&n, &[2, -3], &[2 + 1 + 3, -3 - 1 + 1]);
}

#[test]
fn maxpool_binary_is_or_and_integer_is_max() {
    // 1 x 3 x 3, kernel 2, stride 1
    let x = [-1, -1, 1, -1, -1, -1, 1, -1, -1];
    let n = net(
        Shape::map(1, 3, 3),
        1,
        false,
        vec![layer(
            "p",
            "input",
            Op::MaxPool {
                kernel: 2,
                stride: 1,
            },
        )],
    );
    expect(&n, &x, &[-1, 1, 1, -1]);
    let x = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    let n = net(
        Shape::map(1, 3, 3),
        4,
        false,
        vec![layer(
            "p",
            "input",
            Op::MaxPool {
                kernel: 2,
                stride: 2,
            },
        )],
    );
    expect(&n, &x, &[5]);
}

#[test]
fn sumpool_counts_binary_as_plus_minus_one() {
    // channel 0: three +1, one -1; channel 1: all -1
    let n = net(
        Shape::map(2, 2, 2),
        1,
        false,
        vec![layer("g", "input", Op::SumPool)],
    );
    expect(&n, &[1, 1, 1, -1, -1, -1, -1, -1], &[2, -4]);
    let n = net(
        Shape::map(1, 1, 3),
        8,
        true,
        vec![layer("g", "input", Op::SumPool)],
    );
    expect(&n, &[-128, -128, 127], &[-129]);
}

#[test]
fn wide_integer_input_cannot_overflow() {
    // 32-bit signed inputs into a large fan-in: exact in i64
    let n = net(
        Shape::vector(64),
        32,
        true,
        vec![layer(
            "fc",
            "input",
            dense(1, &[1; 64], Some(&[i32::MAX as i64])),
        )],
    );
    expect(
        &n,
        &[i32::MIN as i64; 64],
        &[64 * i32::MIN as i64 + i32::MAX as i64],
    );
}

#[test]
fn ranges_and_widths_of_the_example_chain() {
    // 784 binary inputs into 3 rows: accumulator -784..=784, 11 bits signed
    let n = net(
        Shape::vector(784),
        1,
        false,
        vec![layer("fc", "input", dense(3, &[1; 3 * 784], None))],
    );
    let info = &n.info()[0];
    assert_eq!(info.acc, Some((-784, 784)));
    assert_eq!(info.kind.width(), (11, true));
}
