//! bnnforge-hdl: the accelerator's hardware blocks, written in rust-hdl, and the compiler
//! from a network to a design of them.
//!
//! - [`blocks`]: leaf logic (popcount, PEs, threshold units, weight memories, counters);
//! - [`stream`]: ready/valid plumbing (skid buffer, FIFO, fork, lane converters, queues);
//! - [`engines`]: the stream engines a layer becomes;
//! - [`compile`]: network → design (folding, budget, design, top, emit, resources, probe);
//! - [`boards`]: the board table and the board core/top around an accelerator;
//! - [`synth`]: the yosys runs the CLI and the tests share.
//!
//! Every block is checked at construction, simulated against the bit-exact software model
//! (`bnnforge_model::kernels`) and synthesised with yosys in its tests. See `DESIGN.md`.

pub mod blocks;
pub mod boards;
pub mod compile;
pub mod engines;
pub mod stream;
pub mod synth;

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
