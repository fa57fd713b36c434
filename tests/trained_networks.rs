//! The networks trained by `scripts/train/train.py` (models/mnist-*.yaml): on the first
//! 1000 MNIST test images `bnnforge infer` predicts exactly what the trainer's own integer
//! evaluation predicted (models/mnist-*.predictions.npy, written by the trainer), its
//! accuracy is above the floor measured when they were trained, and each network builds
//! with the default folding and co-simulates bit-exact (24 images at full rate, where
//! Verilator's interval and latency equal the cycle model's and the manifest's, and with
//! 10 % stalls). The trainer's ONNX export of each (models/mnist-*.onnx: the float
//! network in QONNX ops) imports through the general ONNX importer to the same integer
//! network, and the importer's float evaluation of the graph is one positive affine map of
//! it.

#[path = "../src/mnist.rs"]
#[allow(dead_code)]
mod mnist;
#[path = "../src/import/onnx_eval.rs"]
#[allow(dead_code)]
mod onnx_eval;
#[path = "../src/import/onnx_proto.rs"]
#[allow(dead_code)]
mod onnx_proto;

mod common;
use common::*;

const IMAGES: usize = 1000;

/// (network, correct of the first 1000 test images at least): the count measured at
/// training minus 20 (2 points).
const NETWORKS: [(&str, usize); 5] = [
    ("mnist-bineal", 970 - 20),
    ("mnist-bineal-fb", 961 - 20),
    ("mnist-bineal-fn", 969 - 20),
    ("mnist-bineal-dr", 961 - 20),
    ("mnist-plain", 946 - 20),
];

fn ok(what: &str, out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn trained_networks_agree_with_the_trainer_reach_their_accuracy_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    mnist_npy(IMAGES, &x);
    let labels = mnist::read_labels(&repo().join("data/mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    for (name, floor) in NETWORKS {
        let model = repo().join(format!("models/{name}.yaml"));
        let y = dir.path().join(format!("{name}.npy"));
        ok(
            &format!("bnnforge infer {name}"),
            bnnforge()
                .arg("infer")
                .arg(&model)
                .arg("--input")
                .arg(&x)
                .arg("--output")
                .arg(&y)
                .output()
                .unwrap(),
        );
        let out = bnnforge_model::npy::read_ints(&y).unwrap();
        assert_eq!(out.shape, vec![IMAGES, 10], "{name}: output shape");
        let trainer =
            bnnforge_model::npy::read_ints(&repo().join(format!("models/{name}.predictions.npy")))
                .unwrap();
        assert_eq!(trainer.shape, vec![10000], "{name}: predictions shape");
        let mut correct = 0;
        for (i, v) in out.data.chunks(10).enumerate() {
            // the format's prediction: the largest value, the lowest index on ties
            let best = (0..10).fold(0, |b, k| if v[k] > v[b] { k } else { b });
            assert_eq!(
                best as i64, trainer.data[i],
                "{name}: image {i}: bnnforge predicts {best}, the trainer {} ({v:?})",
                trainer.data[i]
            );
            correct += (best == labels[i] as usize) as usize;
        }
        println!("{name}: {correct}/{IMAGES} (floor {floor})");
        assert!(
            correct >= floor,
            "{name}: {correct}/{IMAGES} correct, below the floor {floor}"
        );

        let design = dir.path().join(name);
        ok(
            &format!("bnnforge build {name}"),
            bnnforge()
                .arg("build")
                .arg(&model)
                .arg("--out")
                .arg(&design)
                .output()
                .unwrap(),
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(design.join("manifest.json")).unwrap())
                .unwrap();
        let cycles = manifest["cycles_per_frame"].as_u64().unwrap();
        assert!(cycles > 0, "{name}: cycles per frame {cycles}");
        for f in manifest["verilog"].as_array().unwrap() {
            assert!(
                design.join(f.as_str().unwrap()).is_file(),
                "{name}: {f} missing"
            );
        }
        println!("{name}: built, {cycles} cycles per frame");

        let frames = dir.path().join("frames.npy");
        mnist_npy(COSIM_IMAGES, &frames);
        for stall in ["0", "0.1"] {
            let s = ok(
                &format!("bnnforge sim {name} --stall {stall}"),
                bnnforge()
                    .arg("sim")
                    .arg(&model)
                    .arg("--design")
                    .arg(&design)
                    .arg("--input")
                    .arg(&frames)
                    .arg("--output")
                    .arg(dir.path().join("sim.npy"))
                    .args(["--stall", stall, "--seed", "5"])
                    .output()
                    .unwrap(),
            );
            println!("{name}, stall {stall}:\n{s}");
            assert!(
                s.contains(&format!("{COSIM_IMAGES} frames: 0 mismatches")),
                "{name}: {s}"
            );
            if stall == "0" {
                let c = format!("{cycles}.0 measured, {cycles}.0 by the cycle model, {cycles} in");
                assert!(s.contains(&c), "{name}: interval: {s}");
                let l = manifest["latency_cycles"].as_u64().unwrap();
                let measured = format!("latency: {l} cycles measured");
                let model = format!("{l} by the cycle model, {l} in the manifest");
                assert!(
                    s.contains(&measured) && s.contains(&model),
                    "{name}: latency: {s}"
                );
            }
        }
    }
}

/// Images each network is co-simulated on (its Verilator build takes 7–26 s).
const COSIM_IMAGES: usize = 24;

/// Test images whose float graph is evaluated (the float evaluator is slow).
const FLOAT_IMAGES: usize = 40;

#[test]
fn onnx_exports_import_to_the_shipped_networks() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let images = mnist::read_images(&repo().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    for (name, _) in NETWORKS {
        let onnx = repo().join(format!("models/{name}.onnx"));
        let yaml = dir.path().join(format!("{name}.yaml"));
        let text = ok(
            &format!("bnnforge import onnx {name}.onnx"),
            bnnforge()
                .args(["import", "onnx"])
                .arg(&onnx)
                .arg("--out")
                .arg(&yaml)
                .args(["--check", "3"])
                .output()
                .unwrap(),
        );
        assert!(text.contains("equal to the float graph"), "{text}");
        let imported = bnnforge_model::load(&yaml).unwrap();
        let shipped = bnnforge_model::load(&repo().join(format!("models/{name}.yaml"))).unwrap();
        let (mi, ms) = (
            bnnforge_model::Model::new(&imported),
            bnnforge_model::Model::new(&shipped),
        );
        let graph = onnx_proto::ModelProto::decode(&*std::fs::read(&onnx).unwrap()).unwrap();
        let out = &graph.graph.as_ref().unwrap().output[0].name;
        // float = a·y + b: a and b from the first two images with different outputs
        let mut pairs: Vec<(i64, f64)> = vec![];
        for i in 0..IMAGES {
            let px: Vec<i64> = images.image(i).iter().map(|&p| p as i64).collect();
            let y = mi.eval(&px);
            assert_eq!(
                y,
                ms.eval(&px),
                "{name}: image {i}: the import differs from models/{name}.yaml"
            );
            if i < FLOAT_IMAGES {
                let env = onnx_eval::eval(
                    &graph,
                    onnx_eval::Tensor {
                        shape: vec![1, 1, 28, 28],
                        data: px.iter().map(|&p| p as f64).collect(),
                    },
                )
                .unwrap();
                pairs.extend(y.iter().copied().zip(env[out].data.iter().copied()));
            }
        }
        let (y0, f0) = pairs[0];
        let &(y1, f1) = pairs.iter().find(|p| p.0 != y0).unwrap();
        let a = (f1 - f0) / (y1 - y0) as f64;
        let b = f0 - a * y0 as f64;
        assert!(a > 0.0, "{name}: gain {a}");
        for &(y, f) in &pairs {
            assert!(
                (a * y as f64 + b - f).abs() <= 1e-9 * (1.0 + f.abs()),
                "{name}: float {f} is not {a}·{y} + {b}"
            );
        }
        println!(
            "{name}: the ONNX import equals the shipped network on {IMAGES} images; \
             float graph = {a}·y + {b} on {FLOAT_IMAGES}"
        );
    }
}
