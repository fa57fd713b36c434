//! The stream engines a network's layers become, and the one table of them.
//!
//! Every engine kind is one file holding its rust-hdl block, its [`EngineSpec`] (named
//! generics, cycles, latency, memories, resource formula, probe value) and its emitter
//! (`emit::<generics…>`, called by the engine program of [`crate::compile::emit`]). The
//! design ([`crate::compile::design`]), the emitter table, the estimate
//! ([`crate::compile::resources`]) and the probes ([`crate::compile::probe`]) reach an
//! engine only through [`EngineKind::spec`], generated from `engine_table!` below.

pub mod chw_reorder;
pub mod maxpool;
pub mod mvtu;
pub mod mvtu_int;
pub mod mvtu_spram;
pub mod residual_adder;
pub mod sliding_window;
pub mod sumpool;
pub mod threshold_engine;

use crate::compile::resources::{Formula, Memory};
pub use crate::compile::timing::StreamTiming;

/// How an engine's output follows its input in time (for the design's latency estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// the first output waits for the last input beat plus this
    pub tail: Option<u64>,
    /// cycles between output beats
    pub spacing: u64,
}

/// When the beats of one frame pass on a stream, the first frame through an idle
/// pipeline: cycles from the frame's first input beat (at `s_axis`) to the stream's
/// first and last beat; the beats between are taken as evenly spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: u64,
    pub last: u64,
    pub beats: u64,
}

impl Span {
    /// The cycle of beat `k` (evenly spread between the first and the last).
    pub fn beat(&self, k: u64) -> u64 {
        if self.beats <= 1 {
            self.first
        } else {
            self.first + k.min(self.beats - 1) * (self.last - self.first) / (self.beats - 1)
        }
    }

    /// The output of an engine of `latency` and `pace` reading `input`, `beats` beats
    /// (see [`EngineSpec::span`]).
    pub fn paced(input: Span, latency: u64, pace: Pace, beats: u64) -> Span {
        // the first output beat `latency` after the first input beat (or `tail` after
        // the last one, for engines that need the whole input first), then one beat
        // every `spacing` cycles, the last no sooner than `tail` (or `latency`) after
        // the last input beat
        let first = match pace.tail {
            Some(t) => (input.first + latency).max(input.last + t),
            None => input.first + latency,
        };
        let last = (first + beats.saturating_sub(1) * pace.spacing)
            .max(input.last + pace.tail.unwrap_or(latency));
        Span { first, last, beats }
    }
}

/// One output beat per input beat, no wait for the whole input.
pub const STREAMING: Pace = Pace {
    tail: None,
    spacing: 1,
};

/// What an engine's output stream carries, as the model sees it (for the probes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carries {
    /// the output of this layer (HWC)
    Layer(usize),
    /// the output of the engine's last listed layer (HWC)
    Named,
    /// whatever its (first) input carries
    Input,
    /// its input's tensor in C, H, W order
    Chw,
    /// kernel positions of a sliding window: no tensor of the model
    Window,
}

/// Everything the compiler knows about one engine instance.
pub trait EngineSpec: std::fmt::Debug {
    /// Short name: reports and the Verilog module name (`<net>_e<i>_<name>`).
    fn name(&self) -> &'static str;
    /// The Rust path of the emitter (`<module>::emit`), instantiated with [`Self::generics`].
    fn emitter(&self) -> &'static str;
    /// The block's const generics, in declaration order.
    fn generics(&self) -> Vec<usize>;
    /// Cycles per frame at full rate.
    fn cycles(&self) -> u64;
    /// First input beat to first output beat, idle pipeline.
    fn latency(&self) -> u64;
    /// How the output follows the input in time.
    fn pace(&self) -> Pace {
        STREAMING
    }
    /// The span of an output stream of `beats` beats, given the span of the input
    /// (the latest of several inputs): by default from [`Self::latency`] and
    /// [`Self::pace`], which assume an input at full rate.
    fn span(&self, input: Span, beats: u64) -> Span {
        Span::paced(input, self.latency(), self.pace(), beats)
    }
    /// The first cycle after reset at which the engine can take an input beat (the
    /// co-simulation's first frame starts right at reset).
    fn ready_after_reset(&self) -> u64 {
        0
    }
    /// The engine's cycle model: its handshakes cycle by cycle, as the block's
    /// registers make them ([`StreamTiming`]).
    fn timing(&self) -> Box<dyn StreamTiming>;
    /// Bits of memory (weights, thresholds, buffers), for reports.
    fn memory_bits(&self) -> u64;
    /// The yosys memories of the block (one entry per kind, with its count).
    fn memories(&self) -> Vec<Memory>;
    /// Estimated iCE40 LUT4 and DFF (memories included): `memories` is
    /// [`Self::memories`], `io` the bits of every input and output stream.
    fn logic(&self, memories: &[Memory], io: f64) -> Formula;
    /// Accumulator bits (MAC engines).
    fn acc_bits(&self) -> Option<usize> {
        None
    }
    /// Thresholds (levels) a comparator holds when each compares with one channel's
    /// thresholds only, so they are constants in the logic: a matrix unit of one neuron
    /// fold, a threshold engine whose lanes each keep one channel. `None` otherwise.
    fn constant_thresholds(&self) -> Option<usize> {
        None
    }
    /// LUT4s the ECP5 mapping saves beyond what the iCE40 formula already does (the
    /// late-registered popcounts of the widest matrix units); 0 otherwise.
    fn ecp5_lut_saving(&self) -> f64 {
        0.0
    }
    /// What the output stream carries.
    fn carries(&self) -> Carries;
}

/// A spec type that is one variant of [`EngineKind`].
pub trait OfKind: Sized {
    fn of(kind: &EngineKind) -> Option<&Self>;
}

/// The table of engine kinds: `Variant(SpecType)`; generates [`EngineKind`], its
/// dispatch [`EngineKind::spec`], `From<SpecType>` and [`OfKind`].
macro_rules! engine_table {
    ($($variant:ident($spec:ty),)*) => {
        /// What an engine is, with its parameters.
        #[derive(Clone, Debug, PartialEq)]
        pub enum EngineKind {
            $($variant($spec),)*
        }

        impl EngineKind {
            /// The engine's spec.
            pub fn spec(&self) -> &dyn EngineSpec {
                match self {
                    $(EngineKind::$variant(s) => s,)*
                }
            }
            /// Short name for reports.
            pub fn name(&self) -> &'static str {
                self.spec().name()
            }
        }

        $(
            impl From<$spec> for EngineKind {
                fn from(s: $spec) -> EngineKind {
                    EngineKind::$variant(s)
                }
            }
            impl OfKind for $spec {
                fn of(kind: &EngineKind) -> Option<&Self> {
                    match kind {
                        EngineKind::$variant(s) => Some(s),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*
    };
}

engine_table! {
    Mvtu(mvtu::MvtuSpec),
    MvtuInt(mvtu_int::MvtuIntSpec),
    Threshold(threshold_engine::ThresholdSpec),
    Window(sliding_window::WindowConfig),
    MaxPool(maxpool::PoolConfig),
    SumPool(sumpool::SumConfig),
    Add(residual_adder::AddSpec),
    Fork(crate::stream::fork::ForkSpec),
    Fifo(crate::stream::fifo::FifoSpec),
    Lanes(crate::stream::lane_converter::LanesSpec),
    RatioLanes(crate::stream::ratio_lane_converter::RatioLanesSpec),
    Reorder(chw_reorder::ReorderSpec),
}
