//! The stream engines a network's layers become.

pub mod chw_reorder;
pub mod maxpool;
pub mod mvtu;
pub mod mvtu_int;
pub mod residual_adder;
pub mod sliding_window;
pub mod sumpool;
pub mod threshold_engine;
