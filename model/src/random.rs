//! Seeded random networks and inputs that cover every op and option of format 1.
//!
//! The same seed always gives the same network (ChaCha8), so a failing seed printed by
//! a test replays exactly. Thresholds are placed where the values of their channel
//! really fall (sampled by running the network built so far on random frames), so
//! outputs are not constant; some thresholds are put far outside the reachable range
//! on purpose, with flips, pad values −1/0/+1, strides, residual adds of two to five
//! branches, pools, binary and signed or unsigned integer inputs.

use crate::network::{InputSpec, Kind, Layer, Network, Op, Param, Shape, INPUT};
use rand::seq::SliceRandom;
pub use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The one seeded generator of the workspace (tests, stall patterns, fault injection):
/// ChaCha8, so a seed gives the same sequence on every machine and every release of
/// the crate.
pub type SeededRng = ChaCha8Rng;

/// The generator for `seed`.
pub fn seeded(seed: u64) -> SeededRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The environment variable that replays a random test.
pub const SEED_VAR: &str = "BNNFORGE_SEED";

/// A seed as `BNNFORGE_SEED` takes it: decimal or `0x` hexadecimal.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("{SEED_VAR}={s:?} is not a seed (a u64, decimal or 0x-hex)"))
}

/// The seed in `BNNFORGE_SEED`, `None` when it is unset; an error naming the value when
/// it is not a seed.
pub fn env_seed() -> Result<Option<u64>, String> {
    match std::env::var(SEED_VAR) {
        Ok(s) => parse_seed(&s).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{SEED_VAR} is not valid text")),
    }
}

/// The seed in `BNNFORGE_SEED` if set, else `default`. A value that is not a seed
/// stops the test with a message saying so, rather than silently running another seed.
pub fn seed_from_env(default: u64) -> u64 {
    env_seed()
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or(default)
}

/// A seed from the clock, for runs that are not replaying one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// [`seed_from_env`]`(default)`, printed with the line that replays it.
pub fn test_seed(test: &str, default: u64) -> u64 {
    let seed = seed_from_env(default);
    println!("{test}: seed {seed} (replay: {SEED_VAR}={seed})");
    seed
}

/// `count` consecutive seeds from `BNNFORGE_SEED` if set, else from `first`: the seeds
/// of a test over several random networks, printed with the line that replays them.
pub fn test_seeds(test: &str, first: u64, count: u64) -> std::ops::Range<u64> {
    let seed0 = seed_from_env(first);
    println!(
        "{test}: seeds {seed0}..{} (replay from S: {SEED_VAR}=S)",
        seed0 + count
    );
    seed0..seed0 + count
}

/// The generator of one random test: seeded from `BNNFORGE_SEED` when set (to replay a
/// failure), otherwise from the clock; the seed is printed either way.
pub fn test_rng(test: &str) -> SeededRng {
    seeded(test_seed(test, clock_seed()))
}

/// Bounds of the random networks.
#[derive(Clone, Debug)]
pub struct RandomConfig {
    /// largest channel count of a feature map
    pub max_channels: usize,
    /// largest height and width of the input map
    pub max_hw: usize,
    /// largest vector length
    pub max_features: usize,
    /// largest number of blocks (a block is 1 to 8 layers)
    pub max_blocks: usize,
    /// largest integer input width
    pub max_input_bits: u32,
    /// largest multi-bit threshold width
    pub max_threshold_bits: u32,
}

impl Default for RandomConfig {
    fn default() -> Self {
        RandomConfig {
            max_channels: 12,
            max_hw: 10,
            max_features: 80,
            max_blocks: 4,
            max_input_bits: 8,
            max_threshold_bits: 3,
        }
    }
}

/// Current value during construction: a layer name (or the input) with its shape and kind.
#[derive(Clone)]
struct Cur {
    name: String,
    shape: Shape,
    kind: Kind,
}

struct Builder<'a> {
    rng: ChaCha8Rng,
    cfg: &'a RandomConfig,
    input: InputSpec,
    layers: Vec<Layer>,
    /// frames used to sample values for threshold placement
    probe: Vec<i64>,
    seed: u64,
}

/// A random valid network from a seed.
pub fn random_network(seed: u64, cfg: &RandomConfig) -> Network {
    let mut rng = seeded(seed);
    let is_map = rng.gen_bool(0.7);
    let bits = match rng.gen_range(0..10) {
        0..=3 => 1,
        _ => rng.gen_range(2..=cfg.max_input_bits.max(2)),
    };
    let signed = bits > 1 && rng.gen_bool(0.5);
    let shape = if is_map {
        Shape::map(
            rng.gen_range(1..=cfg.max_channels.min(4)),
            rng.gen_range(3..=cfg.max_hw),
            rng.gen_range(3..=cfg.max_hw),
        )
    } else {
        Shape::vector(rng.gen_range(1..=cfg.max_features))
    };
    let input = InputSpec {
        shape,
        bits,
        signed,
    };
    let probe = random_frames(&input, 12, seed ^ 0x5eed);
    let mut b = Builder {
        rng,
        cfg,
        input: input.clone(),
        layers: Vec::new(),
        probe,
        seed,
    };
    let mut cur = Cur {
        name: INPUT.to_string(),
        shape,
        kind: input.kind(),
    };

    // integer image input: often binarized by a threshold first, as the MNIST networks do
    if !cur.kind.is_binary() && b.rng.gen_bool(0.3) {
        cur = b.threshold(&cur, 1);
    }
    let blocks = b.rng.gen_range(1..=cfg.max_blocks);
    for _ in 0..blocks {
        cur = if cur.shape.is_map {
            b.map_block(&cur)
        } else {
            b.vector_block(&cur)
        };
    }
    // the output: an integer dense layer, a threshold, or an add
    match b.rng.gen_range(0..6) {
        0 => {
            cur = b.threshold(&cur, 1);
        }
        1 if !cur.shape.is_map => {
            let f = cur.shape.c;
            let a = b.dense(&cur, f);
            let c = b.dense(&cur, f);
            cur = b.add(&[a, c]);
        }
        _ => {
            let out = b.rng.gen_range(1..=10);
            cur = b.dense(&cur, out);
        }
    }
    b.finish(&cur.name)
}

/// A vector network whose input feeds `branches` dense + threshold branches that are
/// all added (the output): one stream read `branches` times and one `add` of
/// `branches` inputs, wider than any single fork or adder block; weights and
/// thresholds from `seed`.
pub fn wide_add_network(seed: u64, branches: usize) -> Network {
    let cfg = RandomConfig::default();
    let mut rng = seeded(seed);
    let input = InputSpec {
        shape: Shape::vector(rng.gen_range(4..=16)),
        bits: 1,
        signed: false,
    };
    let probe = random_frames(&input, 12, seed ^ 0x5eed);
    let mut b = Builder {
        rng,
        cfg: &cfg,
        input: input.clone(),
        layers: Vec::new(),
        probe,
        seed,
    };
    let x = Cur {
        name: INPUT.to_string(),
        shape: input.shape,
        kind: input.kind(),
    };
    let f = b.rng.gen_range(1..=6);
    let bits = b.rng.gen_range(1..=2);
    let ys: Vec<Cur> = (0..branches)
        .map(|_| {
            let y = b.dense(&x, f);
            b.threshold(&y, bits)
        })
        .collect();
    let sum = b.add(&ys);
    Network::new(format!("wide-add-{branches}"), input, b.layers, sum.name)
        .unwrap_or_else(|e| panic!("wide add network of seed {seed} is invalid: {e}"))
}

/// An MLP like BNN-PYNQ's (SFC is 784-256-256-256-10 on 28×28 8-bit images): a 1-bit
/// input threshold when the input is an integer, then per entry of `hidden` a dense
/// layer and a 1-bit threshold, then a dense layer of `out` (the output); random
/// weights, thresholds placed among sampled values as in [`random_network`].
pub fn mlp_network(seed: u64, input: InputSpec, hidden: &[usize], out: usize) -> Network {
    let cfg = RandomConfig::default();
    let probe = random_frames(&input, 12, seed ^ 0x5eed);
    let mut b = Builder {
        rng: seeded(seed),
        cfg: &cfg,
        input: input.clone(),
        layers: Vec::new(),
        probe,
        seed,
    };
    let mut cur = Cur {
        name: INPUT.to_string(),
        shape: input.shape,
        kind: input.kind(),
    };
    if !cur.kind.is_binary() {
        cur = b.threshold(&cur, 1);
    }
    for &h in hidden {
        let y = b.dense(&cur, h);
        cur = b.threshold(&y, 1);
    }
    let y = b.dense(&cur, out);
    let dims: Vec<String> = std::iter::once(input.shape.len())
        .chain(hidden.iter().copied())
        .chain([out])
        .map(|d| d.to_string())
        .collect();
    Network::new(format!("mlp-{}", dims.join("-")), input, b.layers, y.name)
        .unwrap_or_else(|e| panic!("MLP of seed {seed} is invalid: {e}"))
}

/// `n` random frames for `input`, laid end to end in C, H, W order.
pub fn random_frames(input: &InputSpec, n: usize, seed: u64) -> Vec<i64> {
    let mut rng = seeded(seed);
    let len = n * input.shape.len();
    match input.kind() {
        Kind::Binary => (0..len)
            .map(|_| if rng.gen_bool(0.5) { 1 } else { -1 })
            .collect(),
        Kind::Int { lo, hi } => (0..len)
            .map(|_| match rng.gen_range(0..10) {
                // the extremes often, they find overflow
                0 => lo,
                1 => hi,
                _ => rng.gen_range(lo..=hi),
            })
            .collect(),
    }
}

impl Builder<'_> {
    fn name(&self, op: &str) -> String {
        format!("{op}{}", self.layers.len())
    }

    fn finish(self, output: &str) -> Network {
        let name = format!("random-{}", self.seed);
        Network::new(name, self.input, self.layers, output.to_string())
            .unwrap_or_else(|e| panic!("random network of seed {} is invalid: {e}", self.seed))
    }

    /// Adds a layer and returns what it produces.
    fn push(&mut self, name: String, inputs: Vec<String>, op: Op) -> Cur {
        self.layers.push(Layer {
            name: name.clone(),
            inputs,
            op,
        });
        let net = self.partial(&name);
        let info = &net.info()[self.layers.len() - 1];
        Cur {
            name,
            shape: info.shape,
            kind: info.kind,
        }
    }

    fn partial(&self, output: &str) -> Network {
        Network::new_partial(
            "partial".into(),
            self.input.clone(),
            self.layers.clone(),
            output.to_string(),
        )
        .unwrap_or_else(|e| panic!("random network of seed {} is invalid: {e}", self.seed))
    }

    /// Values of `cur` per channel over the probe frames.
    fn samples(&self, cur: &Cur) -> Vec<Vec<i64>> {
        let c = cur.shape.c;
        let per = if cur.shape.is_map {
            cur.shape.pixels()
        } else {
            1
        };
        let mut out = vec![Vec::new(); c];
        let frames = self.probe.chunks(self.input.shape.len());
        if cur.name == INPUT {
            for f in frames {
                for (i, &v) in f.iter().enumerate() {
                    out[i / per].push(v);
                }
            }
            return out;
        }
        let net = self.partial(&cur.name);
        let idx = self
            .layers
            .iter()
            .position(|l| l.name == cur.name)
            .expect("layer exists");
        for f in frames {
            let vals = crate::reference::eval_layers(&net, f);
            for (i, &v) in vals[idx].iter().enumerate() {
                out[i / per].push(v);
            }
        }
        out
    }

    fn weights(&mut self, n: usize) -> Vec<i8> {
        // biased per tensor so that sums are not always centred
        let p = self.rng.gen_range(0.3..0.7);
        (0..n)
            .map(|_| if self.rng.gen_bool(p) { 1 } else { -1 })
            .collect()
    }

    fn bias(&mut self, name: &str, out: usize) -> Option<Param<i64>> {
        self.rng.gen_bool(0.3).then(|| {
            let data = (0..out).map(|_| self.rng.gen_range(-20..=20)).collect();
            Param::new(format!("{name}.b"), vec![out], data)
        })
    }

    fn dense(&mut self, x: &Cur, out: usize) -> Cur {
        let name = self.name("fc");
        let n = x.shape.len();
        let weight = Param::new(format!("{name}.w"), vec![out, n], self.weights(out * n));
        let bias = self.bias(&name, out);
        self.push(name, vec![x.name.clone()], Op::Dense { out, weight, bias })
    }

    /// A conv; `same` keeps the spatial size (stride 1, padding (k−1)/2, odd k), else
    /// k ≤ 3, stride 1 or 2, padding below k or (a quarter of the time) in k..2k.
    fn conv(&mut self, x: &Cur, out: usize, same: bool) -> Cur {
        let name = self.name("conv");
        let (h, w) = (x.shape.h, x.shape.w);
        let (k, stride, padding) = if same {
            let k = if h >= 3 && w >= 3 && self.rng.gen_bool(0.6) {
                3
            } else {
                1
            };
            (k, 1, (k - 1) / 2)
        } else {
            let k = self.rng.gen_range(1..=3.min(h + 2).min(w + 2));
            let mut padding = self.rng.gen_range(0..k);
            let stride = if self.rng.gen_bool(0.3) { 2 } else { 1 };
            // padding ≥ kernel (legal, as in PyTorch: windows wholly in the padding) in
            // a quarter of these convs, drawn from a stream of its own so that no other
            // draw depends on it
            let mut side = seeded(
                self.seed ^ (self.layers.len() as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            if side.gen_bool(0.25) {
                padding += k;
            }
            (k, stride, padding)
        };
        let (k, padding) = if h + 2 * padding < k || w + 2 * padding < k {
            (1, 0)
        } else {
            (k, padding)
        };
        let pad_value = *[-1i8, 0, 1].choose(&mut self.rng).expect("non-empty");
        let weight = Param::new(
            format!("{name}.w"),
            vec![out, x.shape.c, k, k],
            self.weights(out * x.shape.c * k * k),
        );
        let bias = self.bias(&name, out);
        self.push(
            name,
            vec![x.name.clone()],
            Op::Conv {
                out,
                kernel: k,
                stride,
                padding,
                pad_value,
                weight,
                bias,
            },
        )
    }

    fn threshold(&mut self, x: &Cur, bits: u32) -> Cur {
        let name = self.name("t");
        let count = (1usize << bits) - 1;
        let samples = self.samples(x);
        let (lo, hi) = x.kind.range();
        let mut data = Vec::with_capacity(x.shape.c * count);
        for s in &samples {
            for _ in 0..count {
                let t = match self.rng.gen_range(0..20) {
                    // far outside the reachable range: constant outputs
                    0 => *[
                        i64::MIN,
                        i64::MAX,
                        lo.saturating_sub(1000),
                        hi.saturating_add(1000),
                    ]
                    .choose(&mut self.rng)
                    .expect("non-empty"),
                    // the range's ends, where ≥ and ≤ differ
                    1 => *[lo, hi, lo + 1, hi - 1]
                        .choose(&mut self.rng)
                        .expect("non-empty"),
                    _ => s.choose(&mut self.rng).copied().unwrap_or(0) + self.rng.gen_range(-1..=1),
                };
                data.push(t);
            }
        }
        let thresholds = Param::new(format!("{name}.t"), vec![x.shape.c, count], data);
        let flip = self.rng.gen_bool(0.3).then(|| {
            let f = (0..x.shape.c)
                .map(|_| self.rng.gen_bool(0.5) as u8)
                .collect();
            Param::new(format!("{name}.f"), vec![x.shape.c], f)
        });
        self.push(
            name,
            vec![x.name.clone()],
            Op::Threshold {
                bits,
                thresholds,
                flip,
            },
        )
    }

    fn add(&mut self, xs: &[Cur]) -> Cur {
        let name = self.name("add");
        self.push(name, xs.iter().map(|x| x.name.clone()).collect(), Op::Add)
    }

    fn act_bits(&mut self) -> u32 {
        if self.rng.gen_bool(0.5) {
            1
        } else {
            self.rng.gen_range(2..=self.cfg.max_threshold_bits.max(2))
        }
    }

    fn map_block(&mut self, x: &Cur) -> Cur {
        let c = self.rng.gen_range(1..=self.cfg.max_channels);
        match self.rng.gen_range(0..10) {
            0..=3 => {
                let y = self.conv(x, c, false);
                let bits = self.act_bits();
                self.threshold(&y, bits)
            }
            4..=6 => self.residual_map(x, c),
            7 if x.shape.h >= 2 && x.shape.w >= 2 => {
                let k = self.rng.gen_range(2..=3.min(x.shape.h).min(x.shape.w));
                let stride = if self.rng.gen_bool(0.7) { k } else { 1 };
                let name = self.name("pool");
                self.push(
                    name,
                    vec![x.name.clone()],
                    Op::MaxPool { kernel: k, stride },
                )
            }
            8 => {
                let name = self.name("gap");
                self.push(name, vec![x.name.clone()], Op::SumPool)
            }
            _ => {
                // flatten into a dense layer
                let f = self.rng.gen_range(1..=self.cfg.max_features);
                let y = self.dense(x, f);
                let bits = self.act_bits();
                self.threshold(&y, bits)
            }
        }
    }

    /// How many branches a residual add has: 2 mostly, up to 5 now and then.
    fn add_arity(&mut self) -> usize {
        match self.rng.gen_range(0..20) {
            0..=11 => 2,
            12..=16 => 3,
            17..=18 => 4,
            _ => 5,
        }
    }

    /// Two to five branches of the same shape added, then a threshold.
    fn residual_map(&mut self, x: &Cur, c: usize) -> Cur {
        let bits = self.rng.gen_range(1..=self.cfg.max_threshold_bits);
        let a = self.conv(x, c, true);
        let a = self.threshold(&a, bits);
        let mut branches = vec![a];
        let identity = x.shape.c == c && self.rng.gen_bool(0.4);
        if identity {
            branches.push(x.clone());
        } else {
            let s = self.conv(x, c, true);
            branches.push(self.threshold(&s, bits));
        }
        for _ in 2..self.add_arity() {
            let t = self.conv(x, c, true);
            branches.push(self.threshold(&t, bits));
        }
        let sum = self.add(&branches);
        let out_bits = self.act_bits();
        self.threshold(&sum, out_bits)
    }

    fn vector_block(&mut self, x: &Cur) -> Cur {
        let f = self.rng.gen_range(1..=self.cfg.max_features);
        if self.rng.gen_bool(0.3) {
            let bits = self.rng.gen_range(1..=self.cfg.max_threshold_bits);
            let mut branches = Vec::new();
            for _ in 0..self.add_arity() {
                let y = self.dense(x, f);
                branches.push(self.threshold(&y, bits));
            }
            let sum = self.add(&branches);
            let out_bits = self.act_bits();
            self.threshold(&sum, out_bits)
        } else {
            let y = self.dense(x, f);
            let bits = self.act_bits();
            self.threshold(&y, bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex_and_bad_ones_are_named() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed(" 0x2a\n"), Ok(42));
        assert_eq!(parse_seed("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "-1", "12a", "0x", "1e3", "18446744073709551616"] {
            let e = parse_seed(bad).unwrap_err();
            assert!(
                e.contains(SEED_VAR) && e.contains("is not a seed"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_seed_replays_the_same_sequence() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = seeded(7);
                move |_| r.gen()
            })
            .collect();
        let mut r = seeded(7);
        assert!(a.iter().all(|&x| x == r.gen::<u64>()));
        assert_ne!(a[0], seeded(8).gen::<u64>());
    }
}
