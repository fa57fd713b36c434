//! Stream probes: what every stream of a [`Design`] carries, and the comparison of a
//! probed co-simulation with the model, layer by layer.
//!
//! When a design's outputs differ from the model, `bnnforge sim` runs the same frames
//! again through a top that logs every handshake of every stream
//! ([`Design::top_verilog_probed`]), and [`first_difference`] names the first layer (in
//! the network's topological order) whose values, on some stream, are not the model's:
//! the layer whose engine (or the converter, FIFO or fork after it) went wrong.
//!
//! ```text
//!  s_axis ─s0─► [e0] ─s1─► [e1] ─s2─► … ─► m_axis        log: "<stream> <hex beat>" per handshake
//!                │          │
//!           layer a    layer b (HWC, PE lanes per beat)  ◄── model: every layer of every frame
//! ```

use crate::compile::design::{Design, StreamInfo};
use crate::engines::Carries;
use bnnforge_model::network::{Network, Shape};

/// The element order of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// H, W, C (the order between engines)
    Hwc,
    /// C, H, W (after the output reorder)
    Chw,
}

/// What a stream carries, as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamValue {
    /// the network input (`layer` None) or a layer's output, in `order`
    Tensor { layer: Option<usize>, order: Order },
    /// a sliding window's kernel positions: no tensor of the model
    Window,
}

/// What each stream of `d` carries (indexed like `d.streams`).
pub fn stream_values(net: &Network, d: &Design) -> Vec<StreamValue> {
    let mut values: Vec<Option<StreamValue>> = vec![None; d.streams.len()];
    values[0] = Some(StreamValue::Tensor {
        layer: None,
        order: Order::Hwc,
    });
    // engines are created after their inputs, but do not rely on it: resolve until done
    for _ in 0..=d.engines.len() {
        for e in &d.engines {
            let Some(input) = e.inputs.first().and_then(|&s| values[s]) else {
                continue;
            };
            let named = |names: &[String]| {
                names
                    .last()
                    .and_then(|n| net.layer_index(n))
                    .map(|i| StreamValue::Tensor {
                        layer: Some(i),
                        order: Order::Hwc,
                    })
            };
            let v = match e.kind.spec().carries() {
                Carries::Layer(layer) => Some(StreamValue::Tensor {
                    layer: Some(layer),
                    order: Order::Hwc,
                }),
                Carries::Named => named(&e.layers),
                Carries::Input => Some(input),
                Carries::Window => Some(StreamValue::Window),
                Carries::Chw => match input {
                    StreamValue::Tensor { layer, .. } => Some(StreamValue::Tensor {
                        layer,
                        order: Order::Chw,
                    }),
                    StreamValue::Window => None,
                },
            };
            for &o in &e.outputs {
                values[o] = v;
            }
        }
        if values.iter().all(Option::is_some) {
            break;
        }
    }
    values
        .into_iter()
        .map(|v| v.expect("every stream has a producer"))
        .collect()
}

/// The beats of each stream (indexed like `d.streams`), each beat as little-endian
/// 64-bit words, from a probe log.
pub fn parse_log(d: &Design, log: &str) -> Result<Vec<Vec<Vec<u64>>>, String> {
    let mut beats = vec![Vec::new(); d.streams.len()];
    for (n, line) in log.lines().enumerate() {
        let bad = || format!("probe log line {}: `{line}` is not `<stream> <hex>`", n + 1);
        let (id, hex) = line.trim().split_once(' ').ok_or_else(bad)?;
        let id: usize = id.parse().map_err(|_| bad())?;
        if id >= beats.len() || hex.is_empty() {
            return Err(bad());
        }
        let mut words = vec![0u64; (hex.len() * 4).div_ceil(64)];
        for (k, c) in hex.bytes().rev().enumerate() {
            let v = (c as char).to_digit(16).ok_or_else(bad)? as u64;
            words[k / 16] |= v << (4 * (k % 16));
        }
        beats[id].push(words);
    }
    Ok(beats)
}

/// Element `lane` of a beat, decoded (binary: ±1).
fn element(s: &StreamInfo, beat: &[u64], lane: usize) -> i64 {
    let b = s.elem.bits;
    let off = lane * b;
    let mut raw: u64 = 0;
    for k in 0..b {
        let bit = off + k;
        let w = beat.get(bit / 64).copied().unwrap_or(0);
        raw |= ((w >> (bit % 64)) & 1) << k;
    }
    if s.elem.binary {
        if raw & 1 == 1 {
            1
        } else {
            -1
        }
    } else if s.elem.signed && b < 64 && raw >> (b - 1) & 1 == 1 {
        raw as i64 - (1i64 << b)
    } else {
        raw as i64
    }
}

/// C, H, W index of the element at position `pos` of a stream in `order`.
fn chw_index(shape: Shape, order: Order, pos: usize) -> usize {
    match order {
        Order::Chw => pos,
        Order::Hwc => {
            let (c, w) = (shape.c, shape.w);
            let (pixel, ch) = (pos / c, pos % c);
            (ch * shape.h + pixel / w) * w + pixel % w
        }
    }
}

/// The first value of the design that is not the model's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDiff {
    /// the layer (None: the network input)
    pub layer: Option<usize>,
    /// the stream it was seen on, and the engine writing that stream (None: `s_axis`)
    pub stream: usize,
    pub engine: Option<usize>,
    pub frame: usize,
    /// element index in C, H, W order
    pub index: usize,
    /// the Verilog's value; None when the stream carried too few beats
    pub verilog: Option<i64>,
    pub model: i64,
}

impl LayerDiff {
    /// One line: the layer, its engine and stream, the frame, element and both values.
    pub fn describe(&self, net: &Network, d: &Design) -> String {
        let (name, op, shape) = match self.layer {
            None => ("input".to_string(), "input", net.input.shape),
            Some(i) => (
                net.layers[i].name.clone(),
                net.layers[i].op.name(),
                net.info()[i].shape,
            ),
        };
        let at = if shape.h * shape.w > 1 {
            let hw = shape.h * shape.w;
            let (c, p) = (self.index / hw, self.index % hw);
            format!(
                "element {} (c {c}, y {}, x {})",
                self.index,
                p / shape.w,
                p % shape.w
            )
        } else {
            format!("element {}", self.index)
        };
        let engine = match self.engine {
            Some(e) => format!(
                "engine e{e} {} `{}`{}",
                d.engines[e].kind.name(),
                d.engines[e].module,
                if d.engines[e].layers.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.engines[e].layers.join(", "))
                }
            ),
            None => "s_axis".to_string(),
        };
        let verilog = match self.verilog {
            Some(v) => format!("Verilog {v}"),
            None => "the Verilog sent no such beat".to_string(),
        };
        format!(
            "first differing layer: `{name}` ({op}), seen on stream s{} after {engine}: frame {}, \
             {at}: {verilog}, model {}",
            self.stream, self.frame, self.model
        )
    }
}

/// Compares every stream's logged beats with the model and returns the first difference
/// in the network's topological order (the input, then each layer; within a layer, its
/// streams in order). `layers[f]` is [`bnnforge_model::Model::eval_layers`] of frame f
/// and `inputs[f]` that frame (C, H, W).
pub fn first_difference(
    net: &Network,
    d: &Design,
    inputs: &[Vec<i64>],
    layers: &[Vec<Vec<i64>>],
    beats: &[Vec<Vec<u64>>],
) -> Option<LayerDiff> {
    let values = stream_values(net, d);
    let producer = |s: usize| d.engines.iter().position(|e| e.outputs.contains(&s));
    let mut order: Vec<Option<usize>> = vec![None];
    order.extend(net.order().iter().map(|&i| Some(i)));
    for layer in order {
        let shape = match layer {
            None => net.input.shape,
            Some(i) => net.info()[i].shape,
        };
        for (s, v) in values.iter().enumerate() {
            let StreamValue::Tensor { layer: l, order } = *v else {
                continue;
            };
            if l != layer {
                continue;
            }
            let info = &d.streams[s];
            let per_frame = info.beats();
            for f in 0..inputs.len() {
                let want = match layer {
                    None => &inputs[f],
                    Some(i) => &layers[f][i],
                };
                for pos in 0..info.elements {
                    let idx = chw_index(shape, order, pos);
                    let beat = beats[s].get(f * per_frame + pos / info.lanes);
                    let got = beat.map(|b| element(info, b, pos % info.lanes));
                    if got != Some(want[idx]) {
                        return Some(LayerDiff {
                            layer,
                            stream: s,
                            engine: producer(s),
                            frame: f,
                            index: idx,
                            verilog: got,
                            model: want[idx],
                        });
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::folding::Fold;
    use bnnforge_model::random::{random_frames, random_network, RandomConfig};
    use bnnforge_model::Model;
    use rand::Rng;

    /// A log of what a correct design would carry: every tensor stream packed from the
    /// model's values (windows left out, as they carry no tensor).
    fn ideal_log(net: &Network, d: &Design, frames: &[Vec<i64>]) -> String {
        let values = stream_values(net, d);
        let model = Model::new(net);
        let mut log = String::new();
        for x in frames {
            let layers = model.eval_layers(x);
            for (s, v) in values.iter().enumerate() {
                let StreamValue::Tensor { layer, order } = *v else {
                    continue;
                };
                let (shape, want) = match layer {
                    None => (net.input.shape, x),
                    Some(i) => (net.info()[i].shape, &layers[i]),
                };
                let info = &d.streams[s];
                for b in 0..info.beats() {
                    let mut bits = vec![0u8; info.width().div_ceil(4)];
                    for lane in 0..info.lanes.min(info.elements - b * info.lanes) {
                        let v = want[chw_index(shape, order, b * info.lanes + lane)];
                        let raw = if info.elem.binary {
                            (v > 0) as u64
                        } else {
                            (v as u64) & (u64::MAX >> (64 - info.elem.bits))
                        };
                        for k in 0..info.elem.bits {
                            let bit = lane * info.elem.bits + k;
                            bits[bit / 4] |= (((raw >> k) & 1) as u8) << (bit % 4);
                        }
                    }
                    let hex: String = bits
                        .iter()
                        .rev()
                        .map(|d| char::from_digit(*d as u32, 16).unwrap())
                        .collect();
                    log += &format!("{s} {hex}\n");
                }
            }
        }
        log
    }

    /// Every stream of random designs is accounted for, a faithful log shows no
    /// difference, and one changed element is reported at its layer, frame and index.
    #[test]
    fn a_changed_element_is_found_at_its_layer() {
        let seed = bnnforge_model::random::test_rng("probe").gen_range(0..1u64 << 40);
        let mut checked = 0;
        for k in 0..12 {
            let net = random_network(seed + k, &RandomConfig::default());
            let folds = vec![Fold { pe: 1, simd: 1 }; net.layers.len()];
            let Ok(d) = Design::new(&net, &folds) else {
                continue;
            };
            let values = stream_values(&net, &d);
            assert_eq!(values.len(), d.streams.len());
            let n = net.input.shape.len();
            let frames: Vec<Vec<i64>> = (0..2)
                .map(|f| random_frames(&net.input, 1, seed + k + f)[..n].to_vec())
                .collect();
            let model = Model::new(&net);
            let layers: Vec<Vec<Vec<i64>>> = frames.iter().map(|x| model.eval_layers(x)).collect();
            let log = ideal_log(&net, &d, &frames);
            let beats = parse_log(&d, &log).unwrap();
            assert_eq!(
                first_difference(&net, &d, &frames, &layers, &beats),
                None,
                "seed {}",
                seed + k
            );
            // break one bit of the last beat of the output stream's frame 1
            let out = d.output;
            let mut broken = beats.clone();
            let last = broken[out].len() - 1;
            broken[out][last][0] ^= 1;
            let diff = first_difference(&net, &d, &frames, &layers, &broken)
                .unwrap_or_else(|| panic!("seed {}: a flipped bit went unseen", seed + k));
            assert_eq!(diff.layer, Some(net.output_index()), "seed {}", seed + k);
            assert_eq!((diff.frame, diff.stream), (1, out), "seed {}", seed + k);
            assert!(diff
                .describe(&net, &d)
                .contains(&net.layers[net.output_index()].name));
            // a missing beat on the first layer's stream is reported there
            let first = values
                .iter()
                .position(|v| matches!(v, StreamValue::Tensor { layer: Some(_), .. }))
                .unwrap();
            let mut short = beats.clone();
            short[first].pop();
            let diff = first_difference(&net, &d, &frames, &layers, &short).unwrap();
            assert_eq!(
                (diff.stream, diff.verilog),
                (first, None),
                "seed {}",
                seed + k
            );
            checked += 1;
        }
        assert!(
            checked >= 8,
            "only {checked} of 12 random designs were built"
        );
    }

    #[test]
    fn a_bad_log_line_is_an_error() {
        let net = random_network(3, &RandomConfig::default());
        let d = Design::new(&net, &vec![Fold { pe: 1, simd: 1 }; net.layers.len()]).unwrap();
        assert!(parse_log(&d, "0 0f\n").is_ok());
        for bad in ["x 0f", "0", "0 0g", "999 1"] {
            assert!(parse_log(&d, bad).is_err(), "{bad}");
        }
    }
}
