//! bnnforge-hdl: the accelerator's hardware blocks, written in rust-hdl.
//!
//! Every block is in its own file, checked at construction, simulated against the
//! bit-exact software model (`bnnforge_model::kernels`) and synthesised with yosys in
//! its tests. See `DESIGN.md` for how whole networks are assembled from them.

pub mod adder_node;
pub mod board_core;
pub mod board_top;
pub mod boards;
pub mod budget;
pub mod chw_reorder;
pub mod compare_bit;
pub mod design;
pub mod emit;
pub mod folding;
pub mod frame_counter;
pub mod lane_converter;
pub mod maxpool;
pub mod module_tree;
pub mod mvtu;
pub mod mvtu_int;
pub mod mvu_int_pe;
pub mod mvu_pe;
pub mod popcount;
pub mod probe;
pub mod ratio_lane_converter;
pub mod residual_adder;
pub mod resources;
pub mod skid_buffer;
pub mod sliding_window;
pub mod stream_fifo;
pub mod stream_fork;
pub mod sumpool;
pub mod synth;
pub mod threshold_engine;
pub mod threshold_unit;
pub mod top;
pub mod weight_memory;

#[cfg(test)]
mod testutil;

/// Bits needed to hold every value in `0..=n`: ceil(log2(n + 1)), at least 1.
pub const fn clog2_plus1(n: u64) -> usize {
    let w = (64 - n.leading_zeros()) as usize;
    if w == 0 {
        1
    } else {
        w
    }
}
