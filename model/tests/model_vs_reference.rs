//! The packed model against the plain reference implementation, on random networks and
//! on single ops of random shape. Every failure names the seed that replays it.

use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
use bnnforge_model::random::{env_seed, random_frames, random_network, RandomConfig};
use bnnforge_model::{reference, Model};
use proptest::prelude::*;

fn check(net: &Network, frames: &[i64], what: &str) {
    let model = Model::new(net);
    // the batch path writes the output layer straight into the batch when it is a
    // binary dense layer
    let batch = model.eval_batch(frames);
    let n_out = model.output_len();
    for (f, x) in frames.chunks(net.input.shape.len()).enumerate() {
        assert_eq!(
            batch[f * n_out..(f + 1) * n_out],
            reference::eval(net, x),
            "{what}: frame {f}, eval_batch"
        );
        let want = reference::eval_layers(net, x);
        let got = model.eval_layers(x);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(
                w,
                g,
                "{what}: frame {f}, layer '{}' ({}) differs",
                net.layers[i].name,
                net.layers[i].op.name()
            );
        }
    }
}

/// Seeds from proptest, so a failure prints the seed; `BNNFORGE_SEED` replays one.
#[test]
fn random_networks_match_reference() {
    if let Some(seed) = env_seed().unwrap_or_else(|e| panic!("{e}")) {
        let net = random_network(seed, &RandomConfig::default());
        check(
            &net,
            &random_frames(&net.input, 8, seed),
            &format!("seed {seed}"),
        );
        return;
    }
    proptest!(ProptestConfig::with_cases(300), |(seed in any::<u64>())| {
        let net = random_network(seed, &RandomConfig::default());
        check(&net, &random_frames(&net.input, 4, seed), &format!("seed {seed} (replay: BNNFORGE_SEED={seed})"));
    });
}

fn pm1(v: &[bool]) -> Vec<i8> {
    v.iter().map(|&b| if b { 1 } else { -1 }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A conv of random geometry, binary or integer input, every pad value, large
    /// channel counts (several words per pixel).
    #[test]
    fn conv_geometry(c in 1usize..=140, h in 1usize..=7, w in 1usize..=7, out in 1usize..=5,
                     k in 1usize..=4, s in 1usize..=3, p in 0usize..=6, pad in -1i8..=1,
                     bits in prop::sample::select(vec![1u32, 3, 8]), signed in any::<bool>(),
                     wbits in prop::collection::vec(any::<bool>(), 0..=4 * 140 * 16 * 5),
                     seed in any::<u64>()) {
        prop_assume!(h + 2 * p >= k && w + 2 * p >= k);
        let n = out * c * k * k;
        let mut wv = pm1(&wbits);
        wv.resize(n, 1);
        let input = InputSpec { shape: Shape::map(c, h, w), bits, signed };
        let layers = vec![Layer { name: "conv".into(), inputs: vec!["input".into()], op: Op::Conv {
            out, kernel: k, stride: s, padding: p, pad_value: pad,
            weight: Param::new("conv.w", vec![out, c, k, k], wv), bias: None } }];
        let net = Network::new("conv".into(), input, layers, "conv".into()).unwrap();
        check(&net, &random_frames(&net.input, 2, seed), "conv");
    }

    /// Dense over a feature map (flatten in C, H, W order) with several words per pixel.
    #[test]
    fn dense_flatten(c in 1usize..=130, h in 1usize..=3, w in 1usize..=3, out in 1usize..=6,
                     binary in any::<bool>(), seed in any::<u64>()) {
        let n = c * h * w;
        let wv: Vec<i8> = random_frames(&InputSpec { shape: Shape::vector(out * n), bits: 1, signed: false }, 1, seed)
            .into_iter().map(|v| v as i8).collect();
        let input = InputSpec { shape: Shape::map(c, h, w), bits: if binary { 1 } else { 4 }, signed: true };
        let layers = vec![Layer { name: "fc".into(), inputs: vec!["input".into()], op: Op::Dense {
            out, weight: Param::new("fc.w", vec![out, n], wv), bias: Some(Param::new("fc.b", vec![out], vec![7; out])) } }];
        let net = Network::new("fc".into(), input, layers, "fc".into()).unwrap();
        check(&net, &random_frames(&net.input, 2, seed), "dense");
    }
}
