//! `bnnforge import onnx` on FINN/QONNX graphs beyond TFC's MLP, written here in Rust
//! (the protobuf messages encoded with prost, no Python): a residual conv net (stem conv
//! on pixels with padding, BatchNorm folded into thresholds, MaxPool, a residual Add of
//! two 4-bit MultiThreshold branches, a stride-2 conv, QONNX Quant weights and
//! activations, GlobalAveragePool) and an MLP after a Transpose/Reshape (Gemm, BipolarQuant,
//! TopK). Random weights from a printed seed (BNNFORGE_SEED replays). Each imported network
//! is compared with the importer's float evaluator of the same graph on every test input:
//! the float output must be one positive affine map of the integer output (or the same
//! TopK index). Bad graphs exit 2 with one line naming the node and op, nothing written.

#[path = "../src/import/onnx_eval.rs"]
mod onnx_eval;
#[path = "../src/import/onnx_proto.rs"]
mod onnx_proto;

mod common;
use bnnforge_model::Model;
use common::*;
use onnx_eval::Tensor;
use onnx_proto::*;
use prost::Message;
use std::path::Path;

// ---- a replayable random source ----

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// uniform in [lo, hi)
    fn f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn sign(&mut self) -> f64 {
        if self.next() & 1 == 1 {
            1.0
        } else {
            -1.0
        }
    }
}

fn seed() -> u64 {
    bnnforge_model::random::test_seed("import_onnx_graphs", std::process::id() as u64)
}

// ---- an ONNX graph writer ----

#[derive(Default)]
struct G {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    n: usize,
}

enum A {
    I(i64),
    F(f32),
    Is(Vec<i64>),
    S(&'static str),
}

fn attr(name: &str, a: A) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.into(),
        ..Default::default()
    };
    match a {
        A::I(i) => (p.i, p.r#type) = (i, 2),
        A::F(f) => (p.f, p.r#type) = (f, 1),
        A::Is(v) => (p.ints, p.r#type) = (v, 7),
        A::S(s) => (p.s, p.r#type) = (s.as_bytes().to_vec(), 3),
    }
    p
}

impl G {
    fn init(&mut self, shape: &[usize], data: &[f64]) -> String {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        self.n += 1;
        let name = format!("p{}", self.n);
        self.inits.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            raw_data: data
                .iter()
                .flat_map(|&x| (x as f32).to_le_bytes())
                .collect(),
            name: name.clone(),
            ..Default::default()
        });
        name
    }
    fn op(&mut self, op: &str, ins: &[&str], attrs: Vec<(&str, A)>) -> String {
        self.n += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.n);
        let domain = match op {
            "MultiThreshold" | "Quant" | "BipolarQuant" => "qonnx.custom_op.general",
            _ => "",
        };
        self.nodes.push(NodeProto {
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute: attrs.into_iter().map(|(k, v)| attr(k, v)).collect(),
            domain: domain.into(),
        });
        out
    }
    fn model(&self, input: &[i64], output: &str) -> ModelProto {
        let vi = |name: &str, dims: &[i64]| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: FLOAT,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                dim_value: d,
                                ..Default::default()
                            })
                            .collect(),
                    }),
                }),
            }),
        };
        ModelProto {
            ir_version: 8,
            producer_name: "bnnforge-test".into(),
            graph: Some(GraphProto {
                node: self.nodes.clone(),
                name: "g".into(),
                initializer: self.inits.clone(),
                input: vec![vi("x", input)],
                output: vec![vi(output, &[])],
                ..Default::default()
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            ..Default::default()
        }
    }

    // ---- layers with random parameters ----

    /// ±1 weights `shape` through a QONNX Quant (2-bit narrow signed: the grid {−1, 0, +1},
    /// never 0 here) with one power-of-two scale per output channel.
    fn quant_weights(&mut self, r: &mut Rng, shape: &[usize]) -> String {
        let o = shape[0];
        let per: usize = shape[1..].iter().product();
        // raw floats whose rounding at scale s gives ±1
        let scales: Vec<f64> = (0..o)
            .map(|_| 2f64.powi((r.next() % 3) as i32 - 2))
            .collect();
        let w: Vec<f64> = (0..o * per)
            .map(|i| r.sign() * scales[i / per] * r.f(0.6, 1.4))
            .collect();
        let wn = self.init(shape, &w);
        let mut sshape = vec![o];
        sshape.extend(std::iter::repeat_n(1, shape.len() - 1));
        let s = self.init(&sshape, &scales);
        let z = self.init(&[], &[0.0]);
        let b = self.init(&[], &[2.0]);
        self.op(
            "Quant",
            &[&wn, &s, &z, &b],
            vec![("signed", A::I(1)), ("narrow", A::I(1))],
        )
    }

    /// ±s weights through BipolarQuant with one scalar scale.
    fn bipolar_weights(&mut self, r: &mut Rng, shape: &[usize], scale: f64) -> String {
        let n: usize = shape.iter().product();
        let w: Vec<f64> = (0..n).map(|_| r.f(-1.0, 1.0)).collect();
        let wn = self.init(shape, &w);
        let s = self.init(&[], &[scale]);
        self.op("BipolarQuant", &[&wn, &s], vec![])
    }

    fn batchnorm(&mut self, r: &mut Rng, x: &str, c: usize, spread: f64) -> String {
        // some negative gains (flipped thresholds)
        let g: Vec<f64> = (0..c).map(|_| r.sign() * r.f(0.5, 1.5)).collect();
        let b: Vec<f64> = (0..c).map(|_| r.f(-0.3, 0.3)).collect();
        let m: Vec<f64> = (0..c).map(|_| r.f(-0.3, 0.3) * spread).collect();
        let v: Vec<f64> = (0..c).map(|_| r.f(0.5, 2.0) * spread * spread).collect();
        let (g, b, m, v) = (
            self.init(&[c], &g),
            self.init(&[c], &b),
            self.init(&[c], &m),
            self.init(&[c], &v),
        );
        self.op("BatchNormalization", &[x, &g, &b, &m, &v], vec![])
    }

    /// MultiThreshold with `k` random thresholds per channel in [−range, range].
    fn multithreshold(
        &mut self,
        r: &mut Rng,
        x: &str,
        c: usize,
        k: usize,
        range: f64,
        scale: f64,
        bias: f64,
    ) -> String {
        let mut t = Vec::new();
        for _ in 0..c {
            let mut row: Vec<f64> = (0..k).map(|_| r.f(-range, range)).collect();
            row.sort_by(f64::total_cmp);
            t.extend(row);
        }
        let t = self.init(&[c, k], &t);
        self.op(
            "MultiThreshold",
            &[x, &t],
            vec![
                ("out_scale", A::F(scale as f32)),
                ("out_bias", A::F(bias as f32)),
            ],
        )
    }

    fn conv(&mut self, x: &str, w: &str, k: usize, stride: usize, pad: usize) -> String {
        let k = k as i64;
        let (s, p) = (stride as i64, pad as i64);
        self.op(
            "Conv",
            &[x, w],
            vec![
                ("kernel_shape", A::Is(vec![k, k])),
                ("strides", A::Is(vec![s, s])),
                ("pads", A::Is(vec![p, p, p, p])),
                ("group", A::I(1)),
            ],
        )
    }
}

/// The residual conv net on a `[1, 1, 12, 12]` image; its output is `[1, 10]` scores.
fn resnet(r: &mut Rng) -> ModelProto {
    let mut g = G::default();
    let c255 = g.init(&[], &[255.0]);
    let x = g.op("Div", &["x", &c255], vec![]);
    // stem: 8-bit pixels (as x/255), 3×3 conv padding 1, BatchNorm, bipolar threshold
    let w0 = g.quant_weights(r, &[8, 1, 3, 3]);
    let y = g.conv(&x, &w0, 3, 1, 1);
    let y = g.batchnorm(r, &y, 8, 1.0);
    let t = g.init(&[8, 1], &(0..8).map(|_| r.f(-0.5, 0.5)).collect::<Vec<_>>());
    let a0 = g.op(
        "MultiThreshold",
        &[&y, &t],
        vec![
            ("out_scale", A::F(2.0)),
            ("out_bias", A::F(-1.0)),
            ("out_dtype", A::S("BIPOLAR")),
        ],
    );
    let p0 = g.op(
        "MaxPool",
        &[&a0],
        vec![
            ("kernel_shape", A::Is(vec![2, 2])),
            ("strides", A::Is(vec![2, 2])),
        ],
    );
    // block: main 3×3 conv (padding 1) and 1×1 shortcut, each to 4 bits with scale ½,
    // added, thresholded back to ±1
    let w1 = g.quant_weights(r, &[8, 8, 3, 3]);
    let m = g.conv(&p0, &w1, 3, 1, 1);
    let m = g.batchnorm(r, &m, 8, 4.0);
    let m = g.multithreshold(r, &m, 8, 15, 2.0, 0.5, 0.0);
    let w2 = g.bipolar_weights(r, &[8, 8, 1, 1], 0.25);
    let s = g.conv(&p0, &w2, 1, 1, 0);
    let cs = g.init(
        &[1, 8, 1, 1],
        &(0..8).map(|_| r.f(0.5, 2.0)).collect::<Vec<_>>(),
    );
    let s = g.op("Mul", &[&s, &cs], vec![]);
    let s = g.multithreshold(r, &s, 8, 15, 2.0, 0.5, -1.0);
    let sum = g.op("Add", &[&m, &s], vec![]);
    let c7 = g.init(&[], &[7.0]);
    let sum = g.op("Sub", &[&sum, &c7], vec![]);
    let a1 = g.multithreshold(r, &sum, 8, 1, 2.0, 2.0, -1.0);
    // block with an identity shortcut: a 4-bit branch (scale 1) plus the ±1 values
    let w4 = g.quant_weights(r, &[8, 8, 3, 3]);
    let m = g.conv(&a1, &w4, 3, 1, 1);
    let m = g.batchnorm(r, &m, 8, 4.0);
    let m = g.multithreshold(r, &m, 8, 15, 2.0, 1.0, 0.0);
    let m = g.op("Sub", &[&m, &c7], vec![]);
    let sum = g.op("Add", &[&a1, &m], vec![]);
    let a2 = g.multithreshold(r, &sum, 8, 1, 2.0, 2.0, -1.0);
    // stride-2 conv with padding on ±1 values, 2-bit Quant activations (scale ¼)
    let w3 = g.quant_weights(r, &[16, 8, 3, 3]);
    let y = g.conv(&a2, &w3, 3, 2, 1);
    let y = g.batchnorm(r, &y, 16, 4.0);
    let (qs, qz, qb) = (
        g.init(&[], &[0.25]),
        g.init(&[], &[0.0]),
        g.init(&[], &[2.0]),
    );
    let q = g.op(
        "Quant",
        &[&y, &qs, &qz, &qb],
        vec![
            ("signed", A::I(0)),
            ("narrow", A::I(0)),
            ("rounding_mode", A::S("ROUND")),
        ],
    );
    let gap = g.op("GlobalAveragePool", &[&q], vec![]);
    let f = g.op("Flatten", &[&gap], vec![("axis", A::I(1))]);
    let wf = g.bipolar_weights(r, &[16, 10], 0.125);
    let o = g.op("MatMul", &[&f, &wf], vec![]);
    let c3 = g.init(&[], &[3.0]);
    let o = g.op("Mul", &[&o, &c3], vec![]);
    g.model(&[1, 1, 12, 12], &o)
}

/// A conv layer, then NHWC Transpose + Reshape into a Gemm MLP with 2-bit hidden values
/// and TopK; the input is 2-bit-thresholded pixels.
fn transposed_mlp(r: &mut Rng) -> ModelProto {
    let mut g = G::default();
    let c = g.init(&[], &[1.0 / 255.0]);
    let x = g.op("Mul", &["x", &c], vec![]);
    let half = g.init(&[], &[0.5]);
    let x = g.op("Sub", &[&x, &half], vec![]);
    let x = g.multithreshold(r, &x, 1, 3, 0.5, 1.0, 0.0); // 2-bit pixels 0..3
    let w = g.quant_weights(r, &[4, 1, 3, 3]);
    let y = g.conv(&x, &w, 3, 1, 0);
    let y = g.batchnorm(r, &y, 4, 6.0);
    let one = g.init(&[], &[1.0]);
    let y = g.op("BipolarQuant", &[&y, &one], vec![]);
    let y = g.op("Transpose", &[&y], vec![("perm", A::Is(vec![0, 2, 3, 1]))]);
    let shape = g.init(&[2], &[1.0, -1.0]);
    let y = g.op("Reshape", &[&y, &shape], vec![]);
    // Gemm with transB: weights [out, in]
    let wq = g.quant_weights(r, &[12, 144]);
    let h = g.op("Gemm", &[&y, &wq], vec![("transB", A::I(1))]);
    let h = g.batchnorm(r, &h, 12, 8.0);
    let h = g.multithreshold(r, &h, 12, 3, 1.5, 1.0, 0.0);
    // each class weighs half of the (non-negative) hidden values +1, half −1, so that no
    // class wins on every image
    let mut wo = vec![0.0; 12 * 5];
    for o in 0..5 {
        let mut col: Vec<f64> = (0..12).map(|i| if i < 6 { 1.0 } else { -1.0 }).collect();
        for i in (1..12).rev() {
            col.swap(i, (r.next() % (i as u64 + 1)) as usize);
        }
        for i in 0..12 {
            wo[i * 5 + o] = col[i] * r.f(0.1, 1.0);
        }
    }
    let wo = g.init(&[12, 5], &wo);
    let wo = g.op("BipolarQuant", &[&wo, &one], vec![]);
    let o = g.op("MatMul", &[&h, &wo], vec![]);
    // a bias per class in whole units of the scores' scale (1 here): the dense layer's bias
    let bias: Vec<f64> = (0..5).map(|o| (o + r.next() % 2) as f64 - 3.0).collect();
    let bias = g.init(&[5], &bias);
    let o = g.op("Add", &[&o, &bias], vec![]);
    let k = g.init(&[1], &[1.0]);
    let name = format!("topk_{}", g.n + 1);
    g.n += 1;
    g.nodes.push(NodeProto {
        input: vec![o, k],
        output: vec![format!("{name}_v"), format!("{name}_i")],
        name: name.clone(),
        op_type: "TopK".into(),
        attribute: vec![attr("axis", A::I(-1))],
        domain: String::new(),
    });
    g.model(&[1, 1, 8, 8], &format!("{name}_i"))
}

/// The rest: Quant (FLOOR) on the pixels, a BatchNorm'd conv thresholded by an NHWC
/// MultiThreshold between two Transposes, Relu, MaxPool then a signed CEIL Quant (values with an
/// offset),
/// ReduceSum over H and W, a 2-bit threshold on the sums, Gemm, Unsqueeze/Squeeze.
fn mixed(r: &mut Rng) -> ModelProto {
    let mut g = G::default();
    let (s, z, b) = (
        g.init(&[], &[32.0]),
        g.init(&[], &[0.0]),
        g.init(&[], &[3.0]),
    );
    let x = g.op(
        "Quant",
        &["x", &s, &z, &b],
        vec![("signed", A::I(0)), ("rounding_mode", A::S("FLOOR"))],
    );
    let w = g.quant_weights(r, &[6, 2, 3, 3]);
    let y = g.conv(&x, &w, 3, 1, 1);
    let y = g.batchnorm(r, &y, 6, 200.0);
    let y = g.op("Transpose", &[&y], vec![("perm", A::Is(vec![0, 2, 3, 1]))]);
    let mut t = Vec::new();
    for _ in 0..6 {
        let mut row: Vec<f64> = (0..3).map(|_| r.f(-1.5, 1.5)).collect();
        row.sort_by(f64::total_cmp);
        t.extend(row);
    }
    let t = g.init(&[6, 3], &t);
    let y = g.op(
        "MultiThreshold",
        &[&y, &t],
        vec![("data_layout", A::S("NHWC")), ("out_scale", A::F(1.0))],
    );
    let y = g.op("Transpose", &[&y], vec![("perm", A::Is(vec![0, 3, 1, 2]))]);
    let w = g.bipolar_weights(r, &[8, 6, 1, 1], 0.5);
    let y = g.conv(&y, &w, 1, 1, 0);
    let y = g.op("Relu", &[&y], vec![]);
    let y = g.op(
        "MaxPool",
        &[&y],
        vec![
            ("kernel_shape", A::Is(vec![2, 2])),
            ("strides", A::Is(vec![2, 2])),
        ],
    );
    let (s, z, b) = (
        g.init(&[], &[0.5]),
        g.init(&[], &[0.0]),
        g.init(&[], &[3.0]),
    );
    let y = g.op(
        "Quant",
        &[&y, &s, &z, &b],
        vec![("signed", A::I(1)), ("rounding_mode", A::S("CEIL"))],
    );
    let y = g.op(
        "ReduceSum",
        &[&y],
        vec![("axes", A::Is(vec![2, 3])), ("keepdims", A::I(0))],
    );
    let y = g.multithreshold(r, &y, 8, 3, 20.0, 1.0, 0.0);
    let w = g.bipolar_weights(r, &[8, 10], 0.25);
    let y = g.op("Gemm", &[&y, &w], vec![("alpha", A::F(0.5))]);
    let y = g.op("Unsqueeze", &[&y], vec![("axes", A::Is(vec![2]))]);
    let y = g.op("Squeeze", &[&y], vec![("axes", A::Is(vec![2]))]);
    g.model(&[1, 2, 7, 7], &y)
}

/// `bnnforge import onnx model --out out --check 3` (the importer's own comparison with
/// its float evaluator on 3 random frames): (exit code, stderr).
fn import(model: &Path, out: &Path) -> (Option<i32>, String) {
    let o = bnnforge()
        .args(["import", "onnx"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(["--check", "3"])
        .output()
        .unwrap();
    if o.status.success() {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("equal to the float graph on 3 random frames"),
            "{text}"
        );
    }
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Imports `m` and checks it against the float evaluator on `n` random images (plus all
/// black and all white): the float output is a·y + b for one a > 0 and b (scores), or the
/// same index (TopK). Returns the imported network's path.
fn check_exact(
    m: &ModelProto,
    dir: &Path,
    name: &str,
    r: &mut Rng,
    n: usize,
) -> std::path::PathBuf {
    let onnx = dir.join(format!("{name}.onnx"));
    std::fs::write(&onnx, m.encode_to_vec()).unwrap();
    let yaml = dir.join(format!("{name}.yaml"));
    let (code, err) = import(&onnx, &yaml);
    assert_eq!(code, Some(0), "{err}");
    let net = bnnforge_model::load(&yaml).unwrap();
    let model = Model::new(&net);
    let dims = net.input.shape.dims();
    let len: usize = dims.iter().product();
    let mut shape = vec![1usize];
    shape.extend(&dims);
    let g = m.graph.as_ref().unwrap();
    let oname = &g.output[0].name;
    // the scores: the output, or what a TopK ranks
    let topk = g
        .node
        .iter()
        .find(|n| n.op_type == "TopK" && n.output.contains(oname));
    let sname = topk.map_or(oname, |n| &n.input[0]);
    let mut classes = std::collections::HashSet::new();
    // every layer's values over all images: none may be constant
    let mut seen = vec![std::collections::HashSet::new(); net.layers.len()];
    let mut pairs = Vec::new();
    let mut distinct = std::collections::HashSet::new();
    for i in 0..n + 2 {
        let px: Vec<i64> = match i {
            0 => vec![0; len],
            1 => vec![255; len],
            _ => (0..len).map(|_| (r.next() % 256) as i64).collect(),
        };
        let env = onnx_eval::eval(
            m,
            Tensor {
                shape: shape.clone(),
                data: px.iter().map(|&p| p as f64).collect(),
            },
        )
        .unwrap();
        let f = &env[sname].data;
        let y = model.eval(&px);
        for (l, v) in model.eval_layers(&px).iter().enumerate() {
            seen[l].extend(v.iter().copied());
        }
        if topk.is_some() {
            let best = (0..y.len()).fold(0, |b, k| if y[k] > y[b] { k } else { b });
            let got = env[oname].data[0];
            assert_eq!(got as usize, best, "image {i}: float {f:?}, integer {y:?}");
            classes.insert(best);
        }
        assert_eq!(f.len(), y.len());
        for (&fv, &yv) in f.iter().zip(&y) {
            pairs.push((yv, fv));
            distinct.insert(yv);
        }
    }
    for (l, v) in seen.iter().enumerate() {
        assert!(
            v.len() > 1,
            "layer '{}' is constant: {v:?}",
            net.layers[l].name
        );
    }
    if topk.is_some() {
        println!(
            "{name}: TopK index equal on {} images, {} classes predicted",
            n + 2,
            classes.len()
        );
        assert!(classes.len() > 1, "one class for every image");
    }
    {
        assert!(distinct.len() > 2, "the outputs barely vary: {distinct:?}");
        let (y0, f0) = pairs[0];
        let &(y1, f1) = pairs.iter().find(|p| p.0 != y0).unwrap();
        let a = (f1 - f0) / (y1 - y0) as f64;
        let b = f0 - a * y0 as f64;
        assert!(a > 0.0, "gain {a}");
        for &(y, f) in &pairs {
            let want = a * y as f64 + b;
            assert!(
                (want - f).abs() <= 1e-9 * (1.0 + f.abs()),
                "float {f} is not {a}·{y} + {b}"
            );
        }
        println!(
            "{name}: float = {a}·y + {b} on {} outputs, {} distinct",
            pairs.len(),
            distinct.len()
        );
    }
    yaml
}

fn ops(yaml: &Path) -> Vec<String> {
    let net = bnnforge_model::load(yaml).unwrap();
    net.layers
        .iter()
        .map(|l| match &l.op {
            bnnforge_model::Op::Threshold { bits, .. } => format!("threshold{bits}"),
            op => op.name().to_string(),
        })
        .collect()
}

#[test]
fn residual_conv_net_matches_its_float_graph() {
    let s = seed();
    let mut r = Rng(s);
    let tmp = tempfile::tempdir().unwrap();
    let m = resnet(&mut r);
    let yaml = check_exact(&m, tmp.path(), "resnet", &mut r, 60);
    assert_eq!(
        ops(&yaml),
        [
            "conv",
            "threshold1",
            "maxpool",
            "conv",
            "threshold4",
            "conv",
            "threshold4",
            "add",
            "threshold1",
            "conv",
            "threshold4",
            "add",
            "threshold1",
            "conv",
            "threshold2",
            "sumpool",
            "dense"
        ],
        "seed {s}"
    );
    let net = bnnforge_model::load(&yaml).unwrap();
    // the stem runs on the 8-bit pixels; the second conv pads ±1 values with 0
    match (&net.layers[0].op, &net.layers[3].op) {
        (
            bnnforge_model::Op::Conv { padding: 1, .. },
            bnnforge_model::Op::Conv {
                padding: 1,
                pad_value: 0,
                ..
            },
        ) => {}
        ops => panic!("{ops:?}"),
    }
    assert_eq!(net.layers[0].inputs, ["input"]);
    // the identity shortcut adds the ±1 layer itself
    assert_eq!(net.layers[11].inputs, ["t3", "t4"]);
}

#[test]
fn transposed_mlp_matches_its_float_graph() {
    let s = seed();
    let mut r = Rng(s.wrapping_add(1));
    let tmp = tempfile::tempdir().unwrap();
    let m = transposed_mlp(&mut r);
    let yaml = check_exact(&m, tmp.path(), "tmlp", &mut r, 200);
    assert_eq!(
        ops(&yaml),
        [
            "threshold2",
            "conv",
            "threshold1",
            "dense",
            "threshold2",
            "dense"
        ],
        "seed {s}"
    );
    let net = bnnforge_model::load(&yaml).unwrap();
    match &net.layers[5].op {
        bnnforge_model::Op::Dense { bias: Some(b), .. } => {
            assert!(b.data.iter().all(|x| x.abs() <= 6), "{:?}", b.data)
        }
        op => panic!("no bias: {op:?}"),
    }
}

#[test]
fn quant_nhwc_and_reduce_graph_matches_its_float_graph() {
    let s = seed();
    let mut r = Rng(s.wrapping_add(3));
    let tmp = tempfile::tempdir().unwrap();
    let m = mixed(&mut r);
    let yaml = check_exact(&m, tmp.path(), "mixed", &mut r, 100);
    assert_eq!(
        ops(&yaml),
        [
            "threshold3",
            "conv",
            "threshold2",
            "conv",
            "maxpool",
            "threshold3",
            "sumpool",
            "threshold2",
            "dense"
        ],
        "seed {s}"
    );
}

#[test]
fn bad_graphs_exit_2_naming_the_node() {
    let mut r = Rng(7);
    let base = resnet(&mut r);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("net.yaml");
    let check = |bytes: &[u8], want: &str| {
        let p = tmp.path().join("bad.onnx");
        std::fs::write(&p, bytes).unwrap();
        let (code, err) = import(&p, &out);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "'{err}' lacks '{want}'");
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "no output");
    };
    let edit = |f: &dyn Fn(&mut GraphProto)| {
        let mut m = base.clone();
        f(m.graph.as_mut().unwrap());
        m.encode_to_vec()
    };
    let node = |g: &mut GraphProto, op: &str, i: usize| -> usize {
        g.node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.op_type == op)
            .nth(i)
            .unwrap()
            .0
    };
    // an unsupported op
    check(
        &edit(&|g| {
            let i = node(g, "MaxPool", 0);
            g.node[i].op_type = "AveragePool".into();
        }),
        "(AveragePool): unsupported op 'AveragePool'",
    );
    // a Sigmoid inserted after the stem conv
    check(
        &edit(&|g| {
            let i = node(g, "Conv", 0);
            let out = g.node[i].output[0].clone();
            g.node[i].output[0] = "pre".into();
            g.node.insert(
                i + 1,
                NodeProto {
                    input: vec!["pre".into()],
                    output: vec![out],
                    name: "squash".into(),
                    op_type: "Sigmoid".into(),
                    ..Default::default()
                },
            );
        }),
        "node 'squash' (Sigmoid): unsupported op 'Sigmoid'",
    );
    // conv weights for the wrong number of input channels
    check(
        &edit(&|g| {
            let i = node(g, "Conv", 1);
            let w = g.node[i].input[1].clone();
            let q = g.node.iter().find(|n| n.output[0] == w).unwrap().input[0].clone();
            let t = g.initializer.iter_mut().find(|t| t.name == q).unwrap();
            t.dims = vec![8, 4, 3, 3];
            t.raw_data.truncate(8 * 4 * 9 * 4);
        }),
        "for an input of 8 channels",
    );
    // grouped conv
    check(
        &edit(&|g| {
            let i = node(g, "Conv", 1);
            g.node[i].attribute.retain(|a| a.name != "group");
            g.node[i].attribute.push(attr("group", A::I(2)));
        }),
        "group 2 is not supported",
    );
    // weights that are not ±s
    check(
        &edit(&|g| {
            let i = node(g, "Quant", 1);
            let (w, b) = (g.node[i].input[0].clone(), g.node[i].input[3].clone());
            let t = g.initializer.iter_mut().find(|t| t.name == b).unwrap();
            t.raw_data = 3f32.to_le_bytes().to_vec();
            let t = g.initializer.iter_mut().find(|t| t.name == w).unwrap();
            t.raw_data[..4].copy_from_slice(&100f32.to_le_bytes());
        }),
        "differ in magnitude",
    );
    // residual operands with different scales
    check(
        &edit(&|g| {
            let i = node(g, "MultiThreshold", 2);
            g.node[i].attribute.retain(|a| a.name != "out_scale");
            g.node[i].attribute.push(attr("out_scale", A::F(0.75)));
        }),
        "(Add): operands",
    );
    // zero padding of values whose zero is not an integer y (4-bit with an offset)
    check(
        &edit(&|g| {
            let i = node(g, "MultiThreshold", 3);
            g.node[i].attribute.retain(|a| a.name != "out_bias");
            g.node[i].attribute.push(attr("out_bias", A::F(-0.5)));
        }),
        "zero padding",
    );
    // a dangling input
    check(
        &edit(&|g| {
            let i = node(g, "Add", 0);
            g.node[i].input[1] = "nowhere".into();
        }),
        "input 'nowhere' is not computed",
    );
    // a Reshape to a different size
    check(
        &edit(&|g| {
            let i = node(g, "Flatten", 0);
            let shape = TensorProto {
                dims: vec![2],
                data_type: 7,
                int64_data: vec![1, 17],
                name: "badshape".into(),
                ..Default::default()
            };
            g.initializer.push(shape);
            g.node[i].op_type = "Reshape".into();
            g.node[i].attribute.clear();
            g.node[i].input.push("badshape".into());
        }),
        "cannot reshape [1, 16, 1, 1] to [1, 17]",
    );
    // a MatMul whose weights do not match its input
    check(
        &edit(&|g| {
            let i = node(g, "BipolarQuant", 1);
            let w = g.node[i].input[0].clone();
            let t = g.initializer.iter_mut().find(|t| t.name == w).unwrap();
            t.dims = vec![10, 16];
        }),
        "(MatMul): input of shape [1, 16] does not match weights [10, 16]",
    );
    // truncated files
    let bytes = base.encode_to_vec();
    check(&bytes[..bytes.len() / 2], "not an ONNX model");
    check(&bytes[..7], "not an ONNX model");
}

#[test]
fn imported_conv_net_builds_and_cosimulates() {
    let s = seed();
    let mut r = Rng(s.wrapping_add(2));
    let tmp = tempfile::tempdir().unwrap();
    let m = resnet(&mut r);
    let yaml = check_exact(&m, tmp.path(), "resnet", &mut r, 4);
    let design = tmp.path().join("design");
    let o = bnnforge()
        .arg("build")
        .arg(&yaml)
        .arg("--out")
        .arg(&design)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let net = bnnforge_model::load(&yaml).unwrap();
    let frames = bnnforge_model::random::random_frames(&net.input, 20, s);
    let x = tmp.path().join("x.npy");
    let mut shape = vec![20usize];
    shape.extend(net.input.shape.dims());
    bnnforge_model::npy::write_i64(&x, &shape, &frames).unwrap();
    let o = bnnforge()
        .arg("sim")
        .arg(&yaml)
        .arg("--design")
        .arg(&design)
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(tmp.path().join("y.npy"))
        .args(["--stall", "0.2", "--seed", &s.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    println!("{text}");
    assert!(
        o.status.success() && text.contains(" 0 mismatches"),
        "seed {s}: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let y = bnnforge_model::npy::read_ints(&tmp.path().join("y.npy")).unwrap();
    let model = Model::new(&net);
    let len = net.input.shape.len();
    for (i, f) in frames.chunks(len).enumerate() {
        let k = y.data.len() / 20;
        assert_eq!(y.data[i * k..(i + 1) * k], model.eval(f)[..], "frame {i}");
    }
}
