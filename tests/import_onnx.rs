//! `bnnforge import onnx` on FINN's TFC-W1A1: the imported integer network predicts
//! what a plain float32 evaluation of the same ONNX graph predicts on all 10,000 MNIST
//! test images (and every hidden ±1 activation is the same), FINN's own four images give
//! [7, 2, 1, 0], the shipped model equals a fresh import, and bad inputs are one-line
//! errors with exit status 2.
//!
//! The float evaluator below interprets the graph node by node, generically (numpy
//! broadcasting, f32 arithmetic), sharing only the protobuf message structs with the
//! importer.

#[path = "../src/mnist.rs"]
#[allow(dead_code)]
mod mnist;
#[path = "../src/import/onnx_proto.rs"]
mod onnx_proto;

mod common;
use bnnforge_model::Model;
use common::*;
use onnx_proto::{ModelProto, NodeProto};
use prost::Message;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn tfc_onnx() -> PathBuf {
    shared_data().join("finn-tfc/model.onnx")
}

/// `bnnforge import onnx model --out out`: (exit code, stderr).
fn import(model: &Path, out: &Path) -> (Option<i32>, String) {
    let o = bnnforge()
        .args(["import", "onnx"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

// ---- a float32 ONNX evaluator ----

#[derive(Clone, Debug)]
struct T {
    shape: Vec<usize>,
    data: Vec<f32>,
}

fn tensor_of(t: &onnx_proto::TensorProto) -> T {
    T {
        shape: t.dims.iter().map(|&d| d as usize).collect(),
        data: t
            .values_f64()
            .unwrap()
            .into_iter()
            .map(|x| x as f32)
            .collect(),
    }
}

/// numpy broadcasting of two tensors under `f`.
fn broadcast(a: &T, b: &T, f: impl Fn(f32, f32) -> f32) -> T {
    let rank = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let shape: Vec<usize> = (0..rank)
        .map(|i| {
            assert!(sa[i] == sb[i] || sa[i] == 1 || sb[i] == 1, "broadcast");
            sa[i].max(sb[i])
        })
        .collect();
    let n: usize = shape.iter().product();
    let index = |s: &[usize], mut flat: usize| {
        // the flat index into a tensor of shape s for output position `flat`
        let mut idx = 0;
        let mut stride = 1;
        for i in (0..rank).rev() {
            let c = flat % shape[i];
            flat /= shape[i];
            if s[i] != 1 {
                idx += c * stride;
            }
            stride *= s[i];
        }
        idx
    };
    let data = (0..n)
        .map(|k| f(a.data[index(&sa, k)], b.data[index(&sb, k)]))
        .collect();
    T { shape, data }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a onnx_proto::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Runs the graph on one input; returns the value of every tensor.
fn eval_graph(m: &ModelProto, x: T) -> HashMap<String, T> {
    let g = m.graph.as_ref().unwrap();
    let mut v: HashMap<String, T> = g
        .initializer
        .iter()
        .map(|t| (t.name.clone(), tensor_of(t)))
        .collect();
    let gin = g.input.iter().find(|i| !v.contains_key(&i.name)).unwrap();
    v.insert(gin.name.clone(), x);
    for n in &g.node {
        let inp = |i: usize| v[&n.input[i]].clone();
        let out: Vec<T> = match n.op_type.as_str() {
            "Add" => vec![broadcast(&inp(0), &inp(1), |a, b| a + b)],
            "Sub" => vec![broadcast(&inp(0), &inp(1), |a, b| a - b)],
            "Mul" => vec![broadcast(&inp(0), &inp(1), |a, b| a * b)],
            "Div" => vec![broadcast(&inp(0), &inp(1), |a, b| a / b)],
            "Reshape" => {
                let x = inp(0);
                let mut s: Vec<i64> = inp(1).data.iter().map(|&d| d as i64).collect();
                let known: i64 = s.iter().filter(|&&d| d > 0).product();
                for d in s.iter_mut() {
                    if *d == -1 {
                        *d = x.data.len() as i64 / known;
                    }
                }
                vec![T {
                    shape: s.iter().map(|&d| d as usize).collect(),
                    data: x.data,
                }]
            }
            "Unsqueeze" | "Squeeze" => {
                let x = inp(0);
                let axes = &attr(n, "axes").unwrap().ints;
                let mut shape = x.shape.clone();
                if n.op_type == "Unsqueeze" {
                    for &a in axes {
                        shape.insert(a as usize, 1);
                    }
                } else {
                    for &a in axes.iter().rev() {
                        assert_eq!(shape.remove(a as usize), 1);
                    }
                }
                vec![T {
                    shape,
                    data: x.data,
                }]
            }
            "MatMul" => {
                let (a, b) = (inp(0), inp(1));
                let (m_, k) = (a.shape[0], a.shape[1]);
                let nn = b.shape[1];
                assert_eq!(b.shape[0], k);
                let mut data = vec![0f32; m_ * nn];
                for i in 0..m_ {
                    for j in 0..nn {
                        let mut s = 0f32;
                        for t in 0..k {
                            s += a.data[i * k + t] * b.data[t * nn + j];
                        }
                        data[i * nn + j] = s;
                    }
                }
                vec![T {
                    shape: vec![m_, nn],
                    data,
                }]
            }
            "BatchNormalization" => {
                // Y = (X − mean) / sqrt(var + eps) · scale + B, channel axis 1
                let x = inp(0);
                let (sc, b, mean, var) = (inp(1), inp(2), inp(3), inp(4));
                let eps = attr(n, "epsilon").map_or(1e-5, |a| a.f);
                let c = x.shape[1];
                let inner: usize = x.shape[2..].iter().product();
                let data = x
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, &xv)| {
                        let ch = (i / inner) % c;
                        (xv - mean.data[ch]) / (var.data[ch] + eps).sqrt() * sc.data[ch]
                            + b.data[ch]
                    })
                    .collect();
                vec![T {
                    shape: x.shape.clone(),
                    data,
                }]
            }
            "MultiThreshold" => {
                // FINN: n = #{k : x ≥ t[c][k]}, output out_scale·n + out_bias (NCHW, c = axis 1)
                let (x, t) = (inp(0), inp(1));
                let scale = attr(n, "out_scale").map_or(1.0, |a| a.f);
                let bias = attr(n, "out_bias").map_or(0.0, |a| a.f);
                let (rows, per) = (t.shape[0], t.shape[1]);
                let c = x.shape[1];
                let inner: usize = x.shape[2..].iter().product();
                let data = x
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, &xv)| {
                        let ch = if rows == 1 { 0 } else { (i / inner) % c };
                        let cnt = (0..per).filter(|&k| xv >= t.data[ch * per + k]).count();
                        scale * cnt as f32 + bias
                    })
                    .collect();
                vec![T {
                    shape: x.shape.clone(),
                    data,
                }]
            }
            "TopK" => {
                // k = 1 along the last axis; the lowest index wins a tie
                let x = inp(0);
                assert_eq!(inp(1).data, vec![1.0]);
                let mut best = 0;
                for (i, &xv) in x.data.iter().enumerate() {
                    if xv > x.data[best] {
                        best = i;
                    }
                }
                vec![
                    T {
                        shape: vec![1, 1],
                        data: vec![x.data[best]],
                    },
                    T {
                        shape: vec![1, 1],
                        data: vec![best as f32],
                    },
                ]
            }
            op => panic!("the float evaluator lacks {op}"),
        };
        for (name, t) in n.output.iter().zip(out) {
            v.insert(name.clone(), t);
        }
    }
    v
}

fn load_onnx(p: &Path) -> ModelProto {
    ModelProto::decode(&std::fs::read(p).unwrap()[..]).unwrap()
}

/// Float graph on one image: (prediction, the three hidden ±1 activations).
fn float_run(m: &ModelProto, pixels: &[f32]) -> (usize, Vec<Vec<f32>>) {
    let v = eval_graph(
        m,
        T {
            shape: vec![1, 1, 28, 28],
            data: pixels.to_vec(),
        },
    );
    let pred = v["global_out"].data[0] as usize;
    let hidden = (1..4)
        .map(|k| v[&format!("MultiThreshold_{k}_out0")].data.clone())
        .collect();
    (pred, hidden)
}

fn argmax(v: &[i64]) -> usize {
    let mut b = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[b] {
            b = i;
        }
    }
    b
}

#[test]
fn tfc_matches_the_float_graph_on_all_of_mnist() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("tfc-w1a1.yaml");
    let (code, err) = import(&tfc_onnx(), &yaml);
    assert_eq!(code, Some(0), "{err}");
    let net = bnnforge_model::load(&yaml).unwrap();
    let model = Model::new(&net);
    let onnx = load_onnx(&tfc_onnx());

    let d = repo().join("data/mnist");
    let images = mnist::read_images(&d.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = mnist::read_labels(&d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let order: Vec<&str> = net.layers.iter().map(|l| l.name.as_str()).collect();
    let hidden_idx: Vec<usize> = ["t0", "t1", "t2"]
        .iter()
        .map(|n| order.iter().position(|o| o == n).unwrap())
        .collect();

    let results: Vec<(usize, usize)> = (0..images.count)
        .into_par_iter()
        .map(|i| {
            let px = images.image(i);
            let xi: Vec<i64> = px.iter().map(|&p| p as i64).collect();
            let xf: Vec<f32> = px.iter().map(|&p| p as f32).collect();
            let layers = model.eval_layers(&xi);
            let (fpred, fhidden) = float_run(&onnx, &xf);
            for (k, &li) in hidden_idx.iter().enumerate() {
                let ours: Vec<f32> = layers[li].iter().map(|&v| v as f32).collect();
                assert_eq!(ours, fhidden[k], "image {i}: hidden layer {k} differs");
            }
            let out = &layers[net.output_index()];
            (argmax(out), fpred)
        })
        .collect();
    let mut correct = 0;
    for (i, &(ours, float)) in results.iter().enumerate() {
        assert_eq!(
            ours, float,
            "image {i}: prediction differs from the float graph"
        );
        correct += (ours == labels[i] as usize) as usize;
    }
    assert_eq!(correct, 9296, "TFC-W1A1 accuracy");

    // FINN's four test images (float32 pixels 0..255) predict [7, 2, 1, 0]
    let inp: npyz::NpyFile<_> =
        npyz::NpyFile::new(std::fs::File::open(shared_data().join("finn-tfc/input.npy")).unwrap())
            .unwrap();
    assert_eq!(inp.shape(), &[4, 1, 28, 28]);
    let px: Vec<f32> = inp.into_vec().unwrap();
    let want = bnnforge_model::npy::read_ints(&shared_data().join("finn-tfc/expected_output.npy"))
        .unwrap()
        .data;
    assert_eq!(want, vec![7, 2, 1, 0]);
    for (i, img) in px.chunks(784).enumerate() {
        assert!(img
            .iter()
            .all(|&p| p == p.round() && (0.0..=255.0).contains(&p)));
        let xi: Vec<i64> = img.iter().map(|&p| p as i64).collect();
        assert_eq!(
            argmax(&model.eval(&xi)) as i64,
            want[i],
            "input.npy image {i}"
        );
        assert_eq!(float_run(&onnx, img).0 as i64, want[i]);
    }
}

#[test]
fn tfc_folding_uses_flips_and_the_pixel_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("tfc.yaml");
    assert_eq!(import(&tfc_onnx(), &yaml).0, Some(0));
    let net = bnnforge_model::load(&yaml).unwrap();
    let names: Vec<&str> = net.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["bin", "fc0", "t0", "fc1", "t1", "fc2", "t2", "fc3"]);
    assert_eq!(net.output, "fc3");
    match &net.layers[0].op {
        bnnforge_model::Op::Threshold {
            thresholds, flip, ..
        } => {
            assert_eq!(
                thresholds.data,
                vec![128],
                "pixel/255·2 − 1 ≥ 0 ⇔ pixel ≥ 128"
            );
            assert!(flip.is_none());
        }
        op => panic!("{op:?}"),
    }
    // the graph has 1, 5 and 6 negative batch-norm gains in its three hidden layers
    for (i, negs) in [(2, 1), (4, 5), (6, 6)] {
        match &net.layers[i].op {
            bnnforge_model::Op::Threshold { flip, .. } => {
                let n = flip
                    .as_ref()
                    .map_or(0, |f| f.data.iter().filter(|&&x| x == 1).count());
                assert_eq!(n, negs, "layer {}", net.layers[i].name);
            }
            op => panic!("{op:?}"),
        }
    }
}

#[test]
fn shipped_tfc_model_equals_a_fresh_import() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("tfc-w1a1.yaml");
    assert_eq!(import(&tfc_onnx(), &yaml).0, Some(0));
    for ext in ["yaml", "safetensors"] {
        let fresh = std::fs::read(tmp.path().join(format!("tfc-w1a1.{ext}"))).unwrap();
        let shipped = std::fs::read(repo().join(format!("models/tfc-w1a1.{ext}")))
            .unwrap_or_else(|e| panic!("models/tfc-w1a1.{ext}: {e}"));
        assert!(
            fresh == shipped,
            "models/tfc-w1a1.{ext} is stale: regenerate it with `bnnforge import onnx` \
             (see models/NOTICE.md)"
        );
    }
}

#[test]
fn bad_onnx_inputs_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("net.yaml");
    let check = |model: &Path, want: &str| {
        let (code, err) = import(model, &out);
        assert_eq!(code, Some(2), "{}: {err}", model.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "'{err}' lacks '{want}'");
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "no output");
    };
    check(&tmp.path().join("missing.onnx"), "cannot read");
    check(tmp.path(), "is a directory");
    let junk = tmp.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf file at all\n").unwrap();
    check(&junk, "not an ONNX model");
    std::fs::write(&junk, b"").unwrap();
    check(&junk, "not an ONNX model");
    // bytes of another format (a safetensors header)
    std::fs::write(
        &junk,
        std::fs::read(repo().join("models/tfc-w1a1.safetensors")).unwrap(),
    )
    .unwrap();
    check(&junk, "not an ONNX model");

    // the real graph, changed so it is no longer supported
    let base = load_onnx(&tfc_onnx());
    let write = |m: &ModelProto, name: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, m.encode_to_vec()).unwrap();
        p
    };
    let mut m = base.clone();
    let g = m.graph.as_mut().unwrap();
    let w = g
        .initializer
        .iter_mut()
        .find(|t| t.name == "MatMul_1_param0")
        .unwrap();
    w.raw_data[..4].copy_from_slice(&0.5f32.to_le_bytes());
    check(&write(&m, "w.onnx"), "only ±1 weights are supported");

    let mut m = base.clone();
    let g = m.graph.as_mut().unwrap();
    g.node
        .iter_mut()
        .find(|n| n.op_type == "TopK")
        .unwrap()
        .op_type = "Softmax".into();
    check(&write(&m, "op.onnx"), "unsupported op 'Softmax'");

    let mut m = base.clone();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name == "MultiThreshold_2_param0")
        .unwrap();
    t.dims = vec![2];
    t.raw_data = [0f32, 1f32].iter().flat_map(|x| x.to_le_bytes()).collect();
    check(
        &write(&m, "mt.onnx"),
        "thresholds of shape [2], expected [C, B]",
    );

    // a per-class offset before TopK can reorder the classes
    let mut m = base.clone();
    let g = m.graph.as_mut().unwrap();
    let t = g
        .initializer
        .iter_mut()
        .find(|t| t.name == "Add_0_param0")
        .unwrap();
    t.dims = vec![10];
    t.raw_data = (0..10).flat_map(|i| (i as f32).to_le_bytes()).collect();
    check(
        &write(&m, "add.onnx"),
        "different scale or offset per class",
    );
}
