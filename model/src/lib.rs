//! bnnforge-model: network format 1 and its bit-exact software model.
pub mod kernels;
