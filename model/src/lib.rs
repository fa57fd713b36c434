//! bnnforge-model: network format 1 (`shared/spec/network-format.md`) and its bit-exact
//! software model, the contract that the hardware generator and the simulator obey.
//!
//! - [`files`]: loading and saving the YAML + safetensors pair, with validation;
//! - [`network`]: the validated network, shapes and exact value ranges;
//! - [`model`]: the fast, bit-packed model (the golden reference);
//! - [`reference`]: a plain implementation straight from the spec, to check the model;
//! - [`kernels`]: the scalar arithmetic shared with the hardware tests;
//! - [`simd`]: the XOR-popcount inner loop, portable, AVX2 or AVX-512, chosen at run time;
//! - [`random`]: seeded random networks and inputs covering every op;
//! - [`npy`]: `.npy` input and output;
//! - [`info`]: per-layer statistics (`bnnforge info`).

pub mod error;
pub mod files;
pub mod info;
pub mod kernels;
pub mod model;
pub mod network;
pub mod npy;
pub mod random;
pub mod reference;
pub mod simd;

pub use error::{Error, Result};
pub use files::{load, save};
pub use model::Model;
pub use network::{InputSpec, Kind, Layer, Network, Op, Param, Shape, Src};
