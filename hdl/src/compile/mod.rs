//! Network → design: folding, resource budget, the engine graph, its top module, the
//! engines' Verilog, the resource estimate and the stream probes.

pub mod budget;
pub mod design;
pub mod emit;
pub mod folding;
pub mod module_tree;
pub mod probe;
pub mod resources;
pub mod timing;
pub mod top;
