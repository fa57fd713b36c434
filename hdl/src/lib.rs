//! bnnforge-hdl: the accelerator's hardware blocks, written in rust-hdl, and the compiler
//! from a network to a design of them.
//!
//! - [`blocks`]: leaf logic (popcount, PEs, threshold units, weight memories, counters);
//! - [`stream`]: ready/valid plumbing (skid buffer, FIFO, fork, lane converters, queues);
//! - [`engines`]: the stream engines a layer becomes, each one file with its
//!   [`EngineSpec`](engines::EngineSpec), and the table of them;
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

/// Bits of an unsigned value up to `max`: ceil(log2(max + 1)), at least 1.
pub const fn bits_to_hold(max: u64) -> usize {
    let w = (64 - max.leading_zeros()) as usize;
    if w == 0 {
        1
    } else {
        w
    }
}

/// Address bits of `words` words: ceil(log2(words)), at least 1.
pub const fn address_bits(words: usize) -> usize {
    bits_to_hold(words.saturating_sub(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(
            [0, 1, 2, 3, 4, 255, 256].map(bits_to_hold),
            [1, 1, 2, 2, 3, 8, 9]
        );
        assert_eq!(
            [0, 1, 2, 3, 196, 256, 257].map(address_bits),
            [1, 1, 1, 2, 8, 8, 9]
        );
    }
}
