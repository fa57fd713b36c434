//! Folding: how many processing elements (PE) and SIMD lanes each layer gets, and the
//! analytic cycles-per-frame model that chooses them.
//!
//! Every layer is one engine of the streaming dataflow; all engines work at once on
//! successive frames, so the steady-state interval between frames is the largest
//! engine's cycles per frame.
//!
//! - dense and conv (matrix-vector-threshold unit): `PE` neurons at once, each taking
//!   `SIMD` inputs per cycle; per output pixel `(out / PE) · (fan_in / SIMD)` cycles, with
//!   `fan_in = C·H·W` (dense) or `k·k·C` (conv, a beat never straddles two kernel
//!   positions because `SIMD` divides `C`).
//! - every other engine (threshold, add, pools) moves `lanes` elements a cycle, with
//!   `lanes` dividing the channel count, or for a threshold also whole pixels a beat (C·k,
//!   k dividing the pixels: an image's input of one channel is not held to one lane), so
//!   its cycles are `elements / lanes`.
//!
//! `PE` must divide `out` and `SIMD` the fan-in unit, as in FINN, so no cycle is spent on
//! padding. The folding is given per layer (`--folding F`, YAML) or chosen here: for a
//! target interval, each layer gets the cheapest (PE, SIMD) that meets it.

use bnnforge_model::network::{Network, Op};
use std::collections::BTreeMap;

/// The folding of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fold {
    /// output neurons (dense, conv) or elements (others) per beat
    pub pe: usize,
    /// inputs per cycle of each PE (dense, conv); 1 for the others
    pub simd: usize,
}

/// The folding of a network and what it costs, per layer in layer order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub folds: Vec<Fold>,
    /// cycles per frame of each layer's engine
    pub cycles: Vec<u64>,
}

impl Plan {
    /// The steady-state interval between frames: the slowest engine.
    pub fn cycles_per_frame(&self) -> u64 {
        self.cycles.iter().copied().max().unwrap_or(1).max(1)
    }
}

/// The unit that SIMD must divide, and the fan-in, of a dense or conv layer.
pub(crate) fn mac_dims(net: &Network, i: usize) -> Option<(usize, usize, usize, u64)> {
    let info = &net.info()[i];
    let (ishape, _) = net.src_shape_kind(info.srcs[0]);
    match &net.layers[i].op {
        // (out, simd unit, fan-in, output pixels)
        Op::Dense { out, .. } => Some((*out, ishape.len(), ishape.len(), 1)),
        Op::Conv { out, kernel, .. } => Some((
            *out,
            ishape.c,
            ishape.c * kernel * kernel,
            info.shape.pixels() as u64,
        )),
        _ => None,
    }
}

/// Elements a non-MAC engine moves per frame.
fn stream_elements(net: &Network, i: usize) -> u64 {
    let info = &net.info()[i];
    let (ishape, _) = net.src_shape_kind(info.srcs[0]);
    // an engine reads its input and writes its output; the larger stream bounds it
    ishape.len().max(info.shape.len()) as u64
}

/// The lanes a non-MAC engine takes: the divisors of its input's channels, and for a
/// threshold also the multiples of them that divide a frame (whole pixels a beat: each
/// lane then holds one channel's thresholds).
fn stream_lanes(net: &Network, i: usize) -> Vec<usize> {
    let (ishape, _) = net.src_shape_kind(net.info()[i].srcs[0]);
    let mut l = divisors(ishape.c);
    if matches!(net.layers[i].op, Op::Threshold { .. }) {
        l.extend(
            divisors(ishape.pixels())
                .iter()
                .skip(1)
                .map(|k| k * ishape.c),
        );
    }
    l
}

fn divisors(n: usize) -> Vec<usize> {
    let mut d: Vec<usize> = (1..=((n as f64).sqrt() as usize + 1))
        .filter(|k| *k <= n && n % k == 0)
        .flat_map(|k| [k, n / k])
        .collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// Largest SIMD of a binary PE (its popcount tree).
pub const MAX_SIMD: usize = 64;

/// A beat-width limit of one of layer `i`'s engines, in lanes (the SIMD of a conv's
/// window, the lanes of a pool).
struct BeatLimit {
    engine: &'static str,
    /// bits per lane, and whether a flag bit comes on top
    bits: usize,
    flag: bool,
    /// the widest beat the engine takes, and the most lanes that fit it
    max_bits: usize,
    max_lanes: usize,
}

/// The beat-width limit of layer `i`'s engines, from the blocks' own checks.
fn beat_limit(net: &Network, i: usize) -> Option<BeatLimit> {
    let info = &net.info()[i];
    let (_, ikind) = net.src_shape_kind(info.srcs[0]);
    let in_bits = ikind.width().0 as usize;
    match net.layers[i].op {
        Op::Conv {
            padding, pad_value, ..
        } => {
            let flag =
                crate::engines::sliding_window::pad_flag(ikind.is_binary(), padding, pad_value);
            Some(BeatLimit {
                engine: "window",
                bits: in_bits,
                flag,
                max_bits: crate::engines::sliding_window::MAX_BEAT,
                max_lanes: crate::engines::sliding_window::max_simd(in_bits, flag),
            })
        }
        Op::MaxPool { .. } => Some(BeatLimit {
            engine: "maxpool",
            bits: in_bits,
            flag: false,
            max_bits: crate::engines::sliding_window::MAX_BEAT,
            max_lanes: crate::engines::maxpool::max_lanes(in_bits),
        }),
        Op::SumPool => {
            // the model's sum width is the engine's (the design checks they agree)
            let y = info.kind.width().0 as usize;
            Some(BeatLimit {
                engine: "sumpool",
                bits: y,
                flag: false,
                max_bits: crate::engines::sumpool::MAX_OW,
                max_lanes: crate::engines::sumpool::max_lanes(y),
            })
        }
        _ => None,
    }
}

/// The lanes of `fold` that a beat-width limit counts: SIMD (dense, conv), else PE.
fn beat_lanes(net: &Network, i: usize, fold: Fold) -> usize {
    match mac_dims(net, i) {
        Some(_) => fold.simd,
        None => fold.pe,
    }
}

/// Whether `fold` keeps layer `i`'s engines within their beat widths.
fn fits(net: &Network, i: usize, fold: Fold) -> bool {
    beat_limit(net, i).is_none_or(|l| beat_lanes(net, i, fold) <= l.max_lanes)
}

/// XNOR lanes (PE·SIMD) a dense or conv layer gets at most under [`default_target`].
pub const DEFAULT_LANES: usize = 64;

/// The default target interval: the slowest dense/conv layer at its fastest fold of at
/// most [`DEFAULT_LANES`] XNOR lanes (PE·SIMD), every other layer folded to keep pace.
/// Taking the fastest *valid* fold, not work / 64, matters when the dimensions have
/// few divisors: 59 outputs × 23 inputs is 22 cycles of work on 64 lanes, but its
/// folds take 1, 23, 59 or 1357 cycles, and a target of 22 would force all 1357 lanes.
pub fn default_target(net: &Network) -> u64 {
    (0..net.layers.len())
        .filter(|&i| mac_dims(net, i).is_some())
        .filter_map(|i| {
            valid_folds(net, i)
                .into_iter()
                .filter(|f| f.pe * f.simd <= DEFAULT_LANES)
                .map(|f| layer_cycles(net, i, f))
                .min()
        })
        .max()
        .unwrap_or(1)
        .max(1)
}

/// Every fold layer `i`'s engines take: PE divides the outputs (dense, conv), is a lane
/// count of `stream_lanes` (other ops), SIMD divides the fan-in unit (at most [`MAX_SIMD`]; 1 for other
/// ops), and the beats fit the blocks (`beat_limit`). Small first.
pub fn valid_folds(net: &Network, i: usize) -> Vec<Fold> {
    let (outs, units): (Vec<usize>, Vec<usize>) = match mac_dims(net, i) {
        Some((out, unit, _, _)) => (
            divisors(out),
            divisors(unit)
                .into_iter()
                .filter(|&s| s <= MAX_SIMD)
                .collect(),
        ),
        None => (stream_lanes(net, i), vec![1]),
    };
    outs.iter()
        .flat_map(|&pe| units.iter().map(move |&simd| Fold { pe, simd }))
        .filter(|&f| fits(net, i, f))
        .collect()
}

/// Cycles per frame of layer `i` under `fold`.
pub fn layer_cycles(net: &Network, i: usize, fold: Fold) -> u64 {
    match mac_dims(net, i) {
        Some((out, _, fan_in, pixels)) => crate::engines::mvtu::engine_cycles_per_frame(
            pixels as usize,
            out / fold.pe,
            fan_in / fold.simd,
        ),
        None => stream_elements(net, i).div_ceil(fold.pe as u64),
    }
}

/// Checks a given fold against the layer; returns why it is not valid.
pub fn check_fold(net: &Network, i: usize, fold: Fold) -> Result<(), String> {
    let name = &net.layers[i].name;
    if fold.pe == 0 || fold.simd == 0 {
        return Err(format!("layer '{name}': pe and simd must be at least 1"));
    }
    match mac_dims(net, i) {
        Some((out, unit, _, _)) => {
            if out % fold.pe != 0 {
                return Err(format!(
                    "layer '{name}': pe {} does not divide out {out}",
                    fold.pe
                ));
            }
            if fold.simd > MAX_SIMD {
                return Err(format!(
                    "layer '{name}': simd {} is more than {MAX_SIMD}, the widest popcount",
                    fold.simd
                ));
            }
            if unit % fold.simd != 0 {
                return Err(format!(
                    "layer '{name}': simd {} does not divide {unit} (the {} of its input)",
                    fold.simd,
                    if matches!(net.layers[i].op, Op::Conv { .. }) {
                        "channels"
                    } else {
                        "size"
                    }
                ));
            }
        }
        None => {
            if fold.simd != 1 {
                return Err(format!(
                    "layer '{name}': simd applies to dense and conv only"
                ));
            }
            if !stream_lanes(net, i).contains(&fold.pe) {
                let (ishape, _) = net.src_shape_kind(net.info()[i].srcs[0]);
                let c = ishape.c;
                return Err(if matches!(net.layers[i].op, Op::Threshold { .. }) {
                    format!(
                        "layer '{name}': pe {} neither divides its {c} channels nor is \
                         whole pixels of them dividing its {} elements",
                        fold.pe,
                        ishape.len()
                    )
                } else {
                    format!(
                        "layer '{name}': pe {} does not divide its {c} channels",
                        fold.pe
                    )
                });
            }
        }
    }
    if let Some(l) = beat_limit(net, i) {
        let lanes = beat_lanes(net, i, fold);
        if lanes > l.max_lanes {
            return Err(format!(
                "layer '{name}': {} {lanes} makes a {} beat of {} bits ({lanes} x {} bits{}), \
                 more than {}",
                if mac_dims(net, i).is_some() {
                    "simd"
                } else {
                    "pe"
                },
                l.engine,
                lanes * l.bits + l.flag as usize,
                l.bits,
                if l.flag { " + pad flag" } else { "" },
                l.max_bits
            ));
        }
    }
    Ok(())
}

/// The cheapest fold of layer `i` whose cycles are at most `target`, or the fastest fold
/// when none is, among the folds its engines take ([`check_fold`]). Cost is PE·SIMD lanes; on ties the larger SIMD wins (one popcount tree
/// and one accumulator per PE serve more lanes).
pub fn fold_for_target(net: &Network, i: usize, target: u64) -> Fold {
    let mut best: Option<(u64, usize, Fold)> = None;
    let mut fastest: Option<(u64, Fold)> = None;
    for f in valid_folds(net, i) {
        let (pe, simd) = (f.pe, f.simd);
        let c = layer_cycles(net, i, f);
        let cost = (pe * simd) as u64;
        if fastest.is_none_or(|(fc, ff)| c < fc || (c == fc && pe * simd < ff.pe * ff.simd)) {
            fastest = Some((c, f));
        }
        if c <= target && best.is_none_or(|(bc, bs, _)| cost < bc || (cost == bc && simd > bs)) {
            best = Some((cost, simd, f));
        }
    }
    best.map(|b| b.2)
        .unwrap_or_else(|| fastest.expect("at least fold 1x1").1)
}

/// A plan from explicit folds (by layer name; missing layers are folded for the given
/// layers' interval) or, with no folds, for `target` cycles per frame.
pub fn plan(
    net: &Network,
    given: &BTreeMap<String, Fold>,
    target: Option<u64>,
) -> Result<Plan, String> {
    for name in given.keys() {
        if net.layer_index(name).is_none() {
            return Err(format!(
                "folding names layer '{name}', which the network does not have"
            ));
        }
    }
    let mut folds = vec![Fold { pe: 1, simd: 1 }; net.layers.len()];
    for (i, l) in net.layers.iter().enumerate() {
        if let Some(&f) = given.get(&l.name) {
            check_fold(net, i, f)?;
            folds[i] = f;
        }
    }
    // the interval the other layers must meet: the target, else the slowest given layer,
    // else the fully folded MAC layers' fastest common pace (the slowest single layer at 1x1)
    let target = target.unwrap_or_else(|| {
        let given_max = net
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| given.contains_key(&l.name))
            .map(|(i, _)| layer_cycles(net, i, folds[i]))
            .max();
        given_max.unwrap_or_else(|| {
            (0..net.layers.len())
                .map(|i| layer_cycles(net, i, Fold { pe: 1, simd: 1 }))
                .max()
                .unwrap_or(1)
        })
    });
    for (i, l) in net.layers.iter().enumerate() {
        if !given.contains_key(&l.name) {
            folds[i] = fold_for_target(net, i, target);
        }
    }
    let cycles = (0..net.layers.len())
        .map(|i| layer_cycles(net, i, folds[i]))
        .collect();
    Ok(Plan { folds, cycles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnnforge_model::random::{random_network, RandomConfig};

    #[test]
    fn divisors_are_complete() {
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors(1), vec![1]);
        assert_eq!(divisors(784).len(), 15);
    }

    /// For random networks and targets: every chosen fold is valid, meets the target when
    /// any fold can, and no cheaper valid fold meets it.
    #[test]
    fn folds_meet_targets_at_least_cost() {
        let seeds = bnnforge_model::random::test_seeds("folds_meet_targets_at_least_cost", 0, 60);
        for seed in seeds {
            let net = random_network(seed, &RandomConfig::default());
            for target in [1u64, 7, 50, 400, 100_000] {
                let p = plan(&net, &BTreeMap::new(), Some(target)).unwrap();
                for i in 0..net.layers.len() {
                    let f = p.folds[i];
                    if let Err(e) = check_fold(&net, i, f) {
                        panic!("seed {seed}: {e}");
                    }
                    assert_eq!(p.cycles[i], layer_cycles(&net, i, f));
                    let fastest = fold_for_target(&net, i, 0);
                    let best = layer_cycles(&net, i, fastest);
                    if best <= target {
                        assert!(
                            p.cycles[i] <= target,
                            "seed {seed} layer {i}: {} > {target}",
                            p.cycles[i]
                        );
                    }
                    // brute force: nothing cheaper meets the target
                    for pe in 1..=f.pe * f.simd {
                        for simd in 1..=f.pe * f.simd / pe {
                            let g = Fold { pe, simd };
                            if pe * simd < f.pe * f.simd && check_fold(&net, i, g).is_ok() {
                                assert!(
                                    layer_cycles(&net, i, g) > target.max(best),
                                    "seed {seed} layer {i}: {g:?} is cheaper than {f:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn given_folds_are_checked() {
        let net = random_network(3, &RandomConfig::default());
        let mut given = BTreeMap::new();
        given.insert("nope".to_string(), Fold { pe: 1, simd: 1 });
        assert!(plan(&net, &given, None).unwrap_err().contains("'nope'"));
        let i = net
            .layers
            .iter()
            .position(|l| matches!(l.op, Op::Conv { .. }))
            .unwrap();
        let mut given = BTreeMap::new();
        given.insert(net.layers[i].name.clone(), Fold { pe: 3, simd: 1 });
        let e = plan(&net, &given, None).unwrap_err();
        assert!(e.contains("does not divide"), "{e}");
    }
}
