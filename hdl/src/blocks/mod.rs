//! Leaf logic: the combinational and small sequential pieces engines are made of.

pub mod adder_node;
pub mod compare_bit;
pub mod frame_counter;
pub mod mvu_int_pe;
pub mod mvu_pe;
pub mod popcount;
pub mod spram;
pub mod threshold_unit;
pub mod weight_memory;
