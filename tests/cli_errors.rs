//! Every malformed input a user can give `bnnforge infer` ends with exit status 2, one
//! line on stderr that names the file and the problem, no panic and no output file.
//! The cases are a table: a change to a valid network or input, and what the error says.

use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::Command;

const BASE_YAML: &str = "\
format: 1
name: base
tensors: base.safetensors
input: { shape: [2, 4, 4], bits: 1, signed: false }
layers:
  - { name: conv0, op: conv, out: 3, kernel: 3, padding: 1, pad_value: -1, weight: conv0.w }
  - { name: t0, op: threshold, bits: 2, thresholds: t0.t, flip: t0.f }
  - { name: sc, op: conv, input: input, out: 3, kernel: 1, weight: sc.w }
  - { name: ts, op: threshold, bits: 2, thresholds: ts.t }
  - { name: add, op: add, inputs: [t0, ts] }
  - { name: t1, op: threshold, bits: 1, thresholds: t1.t }
  - { name: pool, op: maxpool, kernel: 2 }
  - { name: fc, op: dense, out: 4, weight: fc.w, bias: fc.b }
output: fc
";

struct T {
    name: &'static str,
    dtype: Dtype,
    shape: Vec<usize>,
    values: Vec<i64>,
}

fn base_tensors() -> Vec<T> {
    let pm = |n: usize| {
        (0..n)
            .map(|i| if i % 3 == 0 { -1 } else { 1 })
            .collect::<Vec<i64>>()
    };
    vec![
        T {
            name: "conv0.w",
            dtype: Dtype::I8,
            shape: vec![3, 2, 3, 3],
            values: pm(54),
        },
        T {
            name: "t0.t",
            dtype: Dtype::I64,
            shape: vec![3, 3],
            values: vec![-2, 0, 2, -9, 1, 9, 0, 0, 100],
        },
        T {
            name: "t0.f",
            dtype: Dtype::U8,
            shape: vec![3],
            values: vec![0, 1, 0],
        },
        T {
            name: "sc.w",
            dtype: Dtype::I8,
            shape: vec![3, 2, 1, 1],
            values: pm(6),
        },
        T {
            name: "ts.t",
            dtype: Dtype::I32,
            shape: vec![3, 3],
            values: vec![-1, 0, 1, -2, 0, 2, 0, 1, 2],
        },
        T {
            name: "t1.t",
            dtype: Dtype::I64,
            shape: vec![3, 1],
            values: vec![1, 2, 3],
        },
        T {
            name: "fc.w",
            dtype: Dtype::I8,
            shape: vec![4, 12],
            values: pm(48),
        },
        T {
            name: "fc.b",
            dtype: Dtype::I32,
            shape: vec![4],
            values: vec![1, -1, 0, 5],
        },
    ]
}

fn tensor_bytes(ts: &[T]) -> Vec<u8> {
    let blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = ts
        .iter()
        .map(|t| {
            let bytes: Vec<u8> = match t.dtype {
                Dtype::I8 => t.values.iter().map(|&v| v as i8 as u8).collect(),
                Dtype::U8 => t.values.iter().map(|&v| v as u8).collect(),
                Dtype::I32 => t
                    .values
                    .iter()
                    .flat_map(|&v| (v as i32).to_le_bytes())
                    .collect(),
                Dtype::I64 => t.values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
                Dtype::F32 => t
                    .values
                    .iter()
                    .flat_map(|&v| (v as f32).to_le_bytes())
                    .collect(),
                _ => unreachable!(),
            };
            (t.name.to_string(), t.dtype, t.shape.clone(), bytes)
        })
        .collect();
    let views: Vec<_> = blobs
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn npy_i64(shape: &[usize], data: &[i64]) -> Vec<u8> {
    bnnforge_model::npy::encode_i64(shape, data).unwrap()
}

fn good_input() -> Vec<u8> {
    npy_i64(
        &[2, 2, 4, 4],
        &(0..64)
            .map(|i| if i % 5 == 0 { 1 } else { -1 })
            .collect::<Vec<_>>(),
    )
}

/// One case: how to break the files, and what the error line must contain.
struct Case {
    what: &'static str,
    yaml: Box<dyn Fn(&str) -> String>,
    tensors: Box<dyn Fn(&mut Vec<T>)>,
    /// replaces the tensor file's bytes
    tensor_bytes: Option<Box<dyn Fn(Vec<u8>) -> Vec<u8>>>,
    input: Option<Vec<u8>>,
    labels: Option<Vec<u8>>,
    /// output path relative to the work dir
    output: &'static str,
    /// the file the error must name, and a part of its message
    file: &'static str,
    says: &'static str,
}

fn case(what: &'static str, file: &'static str, says: &'static str) -> Case {
    Case {
        what,
        yaml: Box::new(|y| y.to_string()),
        tensors: Box::new(|_| {}),
        tensor_bytes: None,
        input: None,
        labels: None,
        output: "y.npy",
        file,
        says,
    }
}

fn yaml_case(what: &'static str, from: &'static str, to: &'static str, says: &'static str) -> Case {
    let mut c = case(what, "base.yaml", says);
    c.yaml = Box::new(move |y| {
        assert!(y.contains(from), "case '{what}': base YAML lacks '{from}'");
        y.replacen(from, to, 1)
    });
    c
}

fn tensor_case(
    what: &'static str,
    file: &'static str,
    says: &'static str,
    f: impl Fn(&mut Vec<T>) + 'static,
) -> Case {
    let mut c = case(what, file, says);
    c.tensors = Box::new(f);
    c
}

fn cases() -> Vec<Case> {
    let find = |ts: &mut Vec<T>, n: &str| ts.iter().position(|t| t.name == n).unwrap();
    let mut v = vec![
        yaml_case("broken YAML", "layers:", "layers: [", "base.yaml"),
        yaml_case("unknown key", "{ name: sc,", "{ foo: 1, name: sc,", "unknown field `foo`"),
        yaml_case("unknown op", "op: dense", "op: densee", "unknown op 'densee'"),
        yaml_case("key of another op", "op: dense, out: 4", "op: dense, kernel: 3, out: 4", "key 'kernel' does not apply"),
        yaml_case("missing key", "op: dense, out: 4, ", "op: dense, ", "dense needs 'out'"),
        yaml_case("format 2", "format: 1", "format: 2", "format 2 is not supported"),
        yaml_case("bad name", "name: base", "name: Base", "must match [a-z0-9_-]+"),
        yaml_case("unknown input", "input: input, out: 3, kernel: 1", "input: nothing, out: 3, kernel: 1", "input 'nothing' is not a layer"),
        yaml_case("cycle", "{ name: conv0, op: conv,", "{ name: conv0, input: t1, op: conv,", "cycle"),
        yaml_case("unreachable layer", "output: fc", "  - { name: extra, op: sumpool, input: t1 }\noutput: fc", "does not reach the output"),
        yaml_case("output not a layer", "output: fc", "output: nope", "output 'nope' is not a layer"),
        yaml_case("duplicate name", "name: ts,", "name: t0,", "used twice"),
        yaml_case("add of different shapes", "inputs: [t0, ts]", "inputs: [t0, input]", "has shape"),
        yaml_case("add with one input", "inputs: [t0, ts]", "inputs: [t0]", "two or more"),
        yaml_case("threshold count", "name: ts, op: threshold, bits: 2", "name: ts, op: threshold, bits: 3", "expected 2^3 - 1 = 7"),
        yaml_case("threshold bits 0", "name: ts, op: threshold, bits: 2", "name: ts, op: threshold, bits: 0", "bits must be 1"),
        yaml_case("input bits 40", "bits: 1, signed", "bits: 40, signed", "bits must be 1 (binary) to 32"),
        yaml_case("input rank 2", "shape: [2, 4, 4]", "shape: [2, 16]", "must be [C, H, W] or [F]"),
        yaml_case("negative out", "out: 4", "out: -4", "expected usize"),
        yaml_case("huge padding", "padding: 1,", "padding: 18446744073709551615,", "at most 1024"),
        yaml_case("pad value 2", "pad_value: -1", "pad_value: 2", "pad_value must be -1, 0 or 1"),
        yaml_case("kernel larger than map", "kernel: 2 }", "kernel: 9 }", "larger than the input"),
        yaml_case("conv on a vector", "{ name: fc, op: dense, out: 4, weight: fc.w, bias: fc.b }",
                  "{ name: fc, op: dense, out: 4, weight: fc.w, bias: fc.b }\n  - { name: c2, op: conv, out: 1, kernel: 1, weight: sc.w }",
                  "conv needs a feature map"),
        tensor_case("missing tensor", "base.safetensors", "tensor 'fc.b' is missing", move |ts| {
            let i = find(ts, "fc.b");
            ts.remove(i);
        }),
        tensor_case("weight dtype", "base.safetensors", "dtype I32, expected I8", move |ts| {
            let i = find(ts, "fc.w");
            ts[i].dtype = Dtype::I32
        }),
        tensor_case("threshold dtype", "base.safetensors", "expected I32 or I64", move |ts| {
            let i = find(ts, "t1.t");
            ts[i].dtype = Dtype::F32
        }),
        tensor_case("weight shape", "base.yaml", "has shape [4, 11], expected [4, 12]", move |ts| {
            let i = find(ts, "fc.w");
            ts[i].shape = vec![4, 11];
            ts[i].values.truncate(44);
        }),
        tensor_case("weight not ±1", "base.yaml", "weights must be -1 or +1", move |ts| {
            let i = find(ts, "conv0.w");
            ts[i].values[7] = 0;
        }),
        tensor_case("flip not 0/1", "base.yaml", "must be 0 or 1", move |ts| {
            let i = find(ts, "t0.f");
            ts[i].values[1] = 2;
        }),
        tensor_case("bias shape", "base.yaml", "bias 'fc.b' has shape [5]", move |ts| {
            let i = find(ts, "fc.b");
            ts[i].shape = vec![5];
            ts[i].values.push(0);
        }),
    ];
    let mut c = yaml_case(
        "missing tensor file",
        "tensors: base.safetensors",
        "tensors: none.safetensors",
        "cannot read the tensor file",
    );
    c.file = "none.safetensors";
    v.push(c);
    let mut c = yaml_case(
        "tensor file is a directory",
        "tensors: base.safetensors",
        "tensors: sub",
        "the tensor file is a directory",
    );
    c.file = "sub";
    v.push(c);
    let mut c = case(
        "truncated tensor file",
        "base.safetensors",
        "not a valid safetensors file",
    );
    c.tensor_bytes = Some(Box::new(|b| b[..b.len() - 10].to_vec()));
    v.push(c);
    let mut c = case(
        "garbage tensor file",
        "base.safetensors",
        "not a valid safetensors file",
    );
    c.tensor_bytes = Some(Box::new(|_| b"not safetensors at all".to_vec()));
    v.push(c);
    let mut c = case(
        "input shape",
        "x.npy",
        "does not match the network input [N, 2, 4, 4]",
    );
    c.input = Some(npy_i64(&[1, 2, 4, 5], &[1; 40]));
    v.push(c);
    let mut c = case(
        "input not ±1",
        "x.npy",
        "value 0 at frame 1, element 3 is outside -1 or +1",
    );
    let mut x = vec![1i64; 64];
    x[35] = 0;
    c.input = Some(npy_i64(&[2, 2, 4, 4], &x));
    v.push(c);
    let mut c = case("input float dtype", "x.npy", "is not an integer type");
    c.input = Some(float_npy());
    v.push(c);
    let mut c = case("input truncated", "x.npy", "truncated");
    let good = good_input();
    c.input = Some(good[..good.len() - 9].to_vec());
    v.push(c);
    let mut c = case("input not npy", "x.npy", "not a valid .npy file");
    c.input = Some(b"hello".to_vec());
    v.push(c);
    let mut c = case(
        "labels shape",
        "l.npy",
        "labels have shape [3], expected [2]",
    );
    c.labels = Some(npy_i64(&[3], &[0, 1, 2]));
    v.push(c);
    let mut c = case(
        "label out of range",
        "l.npy",
        "label 4 of frame 1 is not an output index 0..4",
    );
    c.labels = Some(npy_i64(&[2], &[0, 4]));
    v.push(c);
    let mut c = case("output in a missing folder", "nodir/y.npy", "cannot write");
    c.output = "nodir/y.npy";
    v.push(c);
    v
}

fn float_npy() -> Vec<u8> {
    let mut buf = Vec::new();
    use npyz::WriterBuilder;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[2, 2, 4, 4])
        .writer(&mut buf)
        .begin_nd()
        .unwrap();
    w.extend((0..64).map(|_| 1.0f32)).unwrap();
    w.finish().unwrap();
    buf
}

fn bnnforge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bnnforge"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn the_valid_base_network_runs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base.yaml", BASE_YAML.as_bytes());
    write(
        dir.path(),
        "base.safetensors",
        &tensor_bytes(&base_tensors()),
    );
    write(dir.path(), "x.npy", &good_input());
    write(dir.path(), "l.npy", &npy_i64(&[2], &[0, 3]));
    let out = bnnforge()
        .current_dir(dir.path())
        .args([
            "infer",
            "base.yaml",
            "--input",
            "x.npy",
            "--output",
            "y.npy",
            "--labels",
            "l.npy",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("accuracy: ") && stdout.contains("/2 ("),
        "{stdout}"
    );
    // the output equals the model's, shape [2, 4]
    let y = bnnforge_model::npy::read_ints(&dir.path().join("y.npy")).unwrap();
    assert_eq!(y.shape, vec![2, 4]);
    let net = bnnforge_model::load(&dir.path().join("base.yaml")).unwrap();
    let x = bnnforge_model::npy::read_ints(&dir.path().join("x.npy")).unwrap();
    let want: Vec<i64> = x
        .data
        .chunks(32)
        .flat_map(|f| bnnforge_model::reference::eval(&net, f))
        .collect();
    assert_eq!(y.data, want);
    // info runs on it too
    let info = bnnforge()
        .current_dir(dir.path())
        .args(["info", "base.yaml"])
        .output()
        .unwrap();
    assert!(info.status.success());
    assert!(String::from_utf8_lossy(&info.stdout).contains("conv0"));
}

#[test]
fn every_malformed_input_exits_2_with_one_line() {
    let mut failures = Vec::new();
    for c in cases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "base.yaml", (c.yaml)(BASE_YAML).as_bytes());
        let mut ts = base_tensors();
        (c.tensors)(&mut ts);
        let mut tb = tensor_bytes(&ts);
        if let Some(f) = &c.tensor_bytes {
            tb = f(tb);
        }
        write(d, "base.safetensors", &tb);
        write(d, "x.npy", c.input.as_deref().unwrap_or(&good_input()));
        std::fs::create_dir(d.join("sub")).unwrap();
        let mut args = vec![
            "infer",
            "base.yaml",
            "--input",
            "x.npy",
            "--output",
            c.output,
        ];
        if let Some(l) = &c.labels {
            write(d, "l.npy", l);
            args.extend(["--labels", "l.npy"]);
        }
        let out = bnnforge().current_dir(d).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = stderr.lines().collect();
        let ok = out.status.code() == Some(2)
            && lines.len() == 1
            && lines[0].starts_with("error: ")
            && lines[0].contains(c.file)
            && lines[0].contains(c.says)
            && !stderr.contains("panicked")
            && !d.join(c.output).exists();
        if !ok {
            failures.push(format!(
                "{}: exit {:?}, stderr {:?}",
                c.what,
                out.status.code(),
                stderr
            ));
        }
        // nothing half-written: no temporary files left either
        let leftovers: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        if !leftovers.is_empty() {
            failures.push(format!("{}: left temporary files", c.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn missing_model_file_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = bnnforge()
        .current_dir(dir.path())
        .args(["infer", "no.yaml", "--input", "x.npy", "--output", "y.npy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.starts_with("error: no.yaml: cannot read the network file"),
        "{e}"
    );
    let out = bnnforge().args(["infer", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `build` and `sim` on bad input: exit 2, one line naming the file or option, and no
/// output folder or file left behind. None of these cases gets as far as compiling.
#[test]
fn build_and_sim_bad_input_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "base.yaml", BASE_YAML.as_bytes());
    write(d, "base.safetensors", &tensor_bytes(&base_tensors()));
    write(d, "x.npy", &good_input());
    write(d, "wrong.npy", &npy_i64(&[1, 3], &[1, 1, 1]));
    std::fs::create_dir(d.join("empty")).unwrap();
    let folding = |name: &str, text: &str| {
        write(d, name, text.as_bytes());
    };
    folding("syntax.yaml", "fc: [1\n");
    folding("unknown.yaml", "nope: {pe: 1}\n");
    folding("divide.yaml", "fc: {pe: 3, simd: 1}\n");
    folding("key.yaml", "fc: {pe: 1, lanes: 2}\n");
    // 16 lanes of 8 bits: a 128-bit maxpool beat, wider than the block takes
    write(
        d,
        "wide.yaml",
        b"format: 1\nname: wide\ntensors: base.safetensors\n\
          input: { shape: [16, 2, 2], bits: 8, signed: false }\n\
          layers:\n  - { name: pool, op: maxpool, kernel: 2 }\noutput: pool\n",
    );
    folding("wide_fold.yaml", "pool: {pe: 16, simd: 1}\n");
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["build", "no.yaml", "--out", "o"], "no.yaml", "o"),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--folding",
                "syntax.yaml",
            ],
            "syntax.yaml",
            "o",
        ),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--folding",
                "unknown.yaml",
            ],
            "'nope'",
            "o",
        ),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--folding",
                "divide.yaml",
            ],
            "does not divide",
            "o",
        ),
        (
            vec![
                "build",
                "wide.yaml",
                "--out",
                "o",
                "--folding",
                "wide_fold.yaml",
            ],
            "layer 'pool': pe 16 makes a maxpool beat of 128 bits",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--folding", "key.yaml"],
            "key.yaml",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--folding", "none.yaml"],
            "none.yaml",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--target-cycles", "0"],
            "--target-cycles",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "missing/o"],
            "missing",
            "missing",
        ),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--budget",
                "4000,20",
                "--folding",
                "divide.yaml",
            ],
            "--budget chooses the folding itself and cannot be combined with --folding",
            "o",
        ),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--device",
                "up5k",
                "--target-cycles",
                "100",
            ],
            "--device chooses the folding itself and cannot be combined with --target-cycles",
            "o",
        ),
        (
            vec![
                "build",
                "base.yaml",
                "--out",
                "o",
                "--budget",
                "4000,20",
                "--device",
                "up5k",
            ],
            "--budget and --device",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--budget", "4000"],
            "--budget '4000'",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--device", "ecp5-25k"],
            "--device 'ecp5-25k': unknown device",
            "o",
        ),
        (
            vec!["build", "base.yaml", "--out", "o", "--budget", "10,0"],
            "no folding fits the budget of 10 LUT4, 0 BRAM",
            "o",
        ),
        (vec!["build", "base.yaml", "--out", "x.npy"], "x.npy", "o"),
        (
            vec![
                "sim",
                "base.yaml",
                "--input",
                "x.npy",
                "--output",
                "y.npy",
                "--stall",
                "1.5",
            ],
            "--stall",
            "y.npy",
        ),
        (
            vec![
                "sim",
                "base.yaml",
                "--input",
                "x.npy",
                "--output",
                "y.npy",
                "--design",
                "empty",
            ],
            "manifest",
            "y.npy",
        ),
        (
            vec![
                "sim",
                "base.yaml",
                "--input",
                "wrong.npy",
                "--output",
                "y.npy",
            ],
            "wrong.npy",
            "y.npy",
        ),
        (
            vec!["sim", "no.yaml", "--input", "x.npy", "--output", "y.npy"],
            "no.yaml",
            "y.npy",
        ),
    ];
    let mut failures = vec![];
    for (args, says, output) in cases {
        let out = bnnforge().current_dir(d).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = stderr.lines().collect();
        let leftovers: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") || n.ends_with(".old"))
            .collect();
        let ok = out.status.code() == Some(2)
            && lines.len() == 1
            && lines[0].starts_with("error: ")
            && lines[0].contains(says)
            && !stderr.contains("panicked")
            && !d.join(output).exists()
            && leftovers.is_empty();
        if !ok {
            failures.push(format!(
                "{args:?}: exit {:?}, stderr {stderr:?}, leftovers {leftovers:?}",
                out.status.code()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
