//! Ready/valid stream plumbing: buffering, broadcast, lane conversion and queues.

pub mod fifo;
pub mod fork;
pub mod lane_converter;
pub mod ratio_lane_converter;
pub mod skid_buffer;
#[cfg(test)]
pub(crate) mod testbench;
pub mod weight_load;
