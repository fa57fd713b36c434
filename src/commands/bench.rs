//! `bnnforge bench`: binary MACs per second of the software model on the two layers
//! the issue names, on one core and on all cores, on each popcount path the CPU has
//! (portable and AVX2) and their ratio; with `--cosim`, the speed of the Verilator
//! co-simulation of the largest shipped network.

use bnnforge_model::network::{InputSpec, Layer, Network, Op, Param, Shape};
use bnnforge_model::random::random_frames;
use bnnforge_model::simd::Path;
use bnnforge_model::{Model, Result};
use std::time::Instant;

fn pm1(n: usize, seed: u64) -> Vec<i8> {
    let spec = InputSpec {
        shape: Shape::vector(n),
        bits: 1,
        signed: false,
    };
    random_frames(&spec, 1, seed)
        .into_iter()
        .map(|v| v as i8)
        .collect()
}

fn single(input: Shape, op: Op) -> Network {
    let layers = vec![Layer {
        name: "l".into(),
        inputs: vec!["input".into()],
        op,
    }];
    Network::new(
        "bench".into(),
        InputSpec {
            shape: input,
            bits: 1,
            signed: false,
        },
        layers,
        "l".into(),
    )
    .expect("bench network is valid")
}

/// CPU seconds the live threads of this process have run (Linux schedstat, in ns),
/// if the system says.
fn cpu_secs() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// Frames per second (wall clock) and frames per CPU second of each model over about
/// `seconds` each, in batches on the given pool. The models take turns in short
/// rounds, so a change in the load of a shared machine touches all of them alike and
/// their ratio stays fair; the CPU-time figure leaves out the time other processes
/// held the cores.
fn measure(
    models: &[Model],
    pool: &rayon::ThreadPool,
    batch: usize,
    seconds: f64,
) -> Vec<(f64, Option<f64>)> {
    const ROUNDS: usize = 8;
    let xs = random_frames(&models[0].network().input, batch, 1);
    // one output buffer for every batch: the figure is the model's, not the allocator's
    let mut out = vec![0i64; batch * models[0].output_len()];
    let mut frames = vec![0usize; models.len()];
    let mut secs = vec![0f64; models.len()];
    let mut cpu = vec![Some(0f64); models.len()];
    for m in models {
        pool.install(|| m.eval_batch_into(&xs, &mut out)); // warm-up
    }
    for _ in 0..ROUNDS {
        for (i, m) in models.iter().enumerate() {
            let start = Instant::now();
            let cpu0 = cpu_secs();
            loop {
                pool.install(|| m.eval_batch_into(&xs, &mut out));
                std::hint::black_box(&out);
                frames[i] += batch;
                if start.elapsed().as_secs_f64() >= seconds / ROUNDS as f64 {
                    break;
                }
            }
            secs[i] += start.elapsed().as_secs_f64();
            cpu[i] = cpu[i]
                .zip(cpu0.zip(cpu_secs()))
                .map(|(c, (a, b))| c + b - a);
        }
    }
    (0..models.len())
        .map(|i| {
            let f = frames[i] as f64;
            (f / secs[i], cpu[i].filter(|&c| c > 0.0).map(|c| f / c))
        })
        .collect()
}

pub fn run(seconds: f64) -> Result<()> {
    let dense = single(
        Shape::vector(1024),
        Op::Dense {
            out: 1024,
            weight: Param::new("w", vec![1024, 1024], pm1(1024 * 1024, 2)),
            bias: None,
        },
    );
    let conv = single(
        Shape::map(64, 32, 32),
        Op::Conv {
            out: 64,
            kernel: 3,
            stride: 1,
            padding: 1,
            pad_value: -1,
            weight: Param::new("w", vec![64, 64, 3, 3], pm1(64 * 64 * 9, 3)),
            bias: None,
        },
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // BNNFORGE_SIMD=portable measures the portable path alone
    let paths = match Path::from_env()? {
        Path::Portable => vec![Path::Portable],
        _ => Path::all_available(),
    };
    let names: Vec<&str> = paths.iter().map(|p| p.name()).collect();
    println!(
        "software model, binary MACs per second ({cores} cores available; popcount paths: {})",
        names.join(", ")
    );
    for (name, net, macs, batch) in [
        ("dense 1024x1024", &dense, 1024u64 * 1024, 256usize),
        ("conv 3x3 64->64 @32x32", &conv, 64 * 64 * 9 * 32 * 32, 8),
    ] {
        let models: Vec<Model> = paths.iter().map(|&p| Model::with_path(net, p)).collect();
        for threads in [1, cores] {
            let pool = super::pool(Some(threads))?;
            let fps = measure(&models, &pool, batch, seconds);
            let g = |fps: f64| fps * macs as f64 / 1e9;
            for (m, &(f, c)) in models.iter().zip(&fps) {
                let per_cpu = c.map_or(String::new(), |c| format!(", {:.1} per CPU-second", g(c)));
                let ratio = if m.path() == Path::Portable {
                    String::new()
                } else {
                    let cpu = c.zip(fps[0].1).map_or(String::new(), |(c, c0)| {
                        format!(", {:.2}x per CPU-second", c / c0)
                    });
                    format!("  {:.2}x portable{cpu}", f / fps[0].0)
                };
                println!(
                    "  {name:<24} {threads} thread{} {:<8}: {:>7.2} G binary MACs/s ({:.0} frames/s{per_cpu}){ratio}",
                    if threads == 1 { " " } else { "s" },
                    m.path().name(),
                    g(f),
                    f
                );
            }
        }
    }
    Ok(())
}

/// Co-simulation speed: LFC-W1A2 (the largest shipped network) built with its default
/// folding, MNIST images streamed through its Verilog in Verilator for about `seconds`.
pub fn cosim(seconds: f64) -> Result<()> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/lfc-w1a2.yaml");
    let out = root.join("target/bnnforge-bench/lfc-w1a2");
    std::fs::create_dir_all(out.parent().expect("parent"))
        .map_err(|e| bnnforge_model::Error::new(format!("cannot create {}: {e}", out.display())))?;
    let b = super::build::build(&model, &out, None, None)?;
    let net = bnnforge_model::load(&model)?;
    let images = crate::mnist::read_images(&root.join("data/mnist/t10k-images-idx3-ubyte.gz"))?;
    let args = super::sim::SimArgs::full_rate(&out, true);
    // a first short run verilates the design (cached) and measures the pace
    let probe: Vec<i64> = (0..4)
        .flat_map(|i| images.image(i))
        .map(|&p| p as i64)
        .collect();
    let c = super::sim::cosim(&net, &out, &probe, &args)?;
    let per_frame = c.sim_secs / c.frames as f64;
    let n = ((seconds / per_frame.max(1e-9)) as usize).clamp(4, images.count);
    let xs: Vec<i64> = (0..n)
        .flat_map(|i| images.image(i))
        .map(|&p| p as i64)
        .collect();
    let c = super::sim::cosim(&net, &out, &xs, &args)?;
    println!(
        "co-simulation of lfc-w1a2 ({} engines, {} cycles per frame, {:.1} MB of Verilog): \
         {} frames, {} mismatches, {:.2} M cycles/s, {:.1} frames/s (Verilator build {:.1} s{})",
        b.design.engines.len(),
        b.design.cycles_per_frame(),
        b.verilog_bytes as f64 / 1e6,
        c.frames,
        c.mismatches.len(),
        c.cycles as f64 / c.sim_secs.max(1e-9) / 1e6,
        c.frames as f64 / c.sim_secs.max(1e-9),
        c.verilate_secs,
        if c.verilator_cached { ", cached" } else { "" }
    );
    Ok(())
}
