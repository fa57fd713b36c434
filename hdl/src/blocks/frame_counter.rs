//! `FrameCounter<CW>`: `m_axis_tlast` for the top: counts the output stream's transfers
//! modulo the frame length E (the design has no `last` inside, `hdl/ENGINES.md`).
//!
//! Ports: `clock`, `reset` (synchronous: the next beat is a frame's first), `fire` (in: a
//! beat is transferred), `last` (out, from the register only: the beat on the stream is
//! its frame's last; stable while the beat waits for ready, as AXI-stream requires).
//!
//! Generics (checked by [`FrameCounter::new`]): `CW` = clog2(E), at least 1 (deduced).
//! Run-time: `elements` E in 1..=2^CW. Latency: 0 (`last` follows the count register).

use rust_hdl::prelude::*;

/// Counter of beats within a frame (see the module documentation).
#[derive(LogicBlock)]
pub struct FrameCounter<const CW: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// A beat moves this cycle.
    pub fire: Signal<In, Bit>,
    /// The current beat is the frame's last.
    pub last: Signal<Out, Bit>,
    count: DFF<Bits<CW>>,
    is_last: Signal<Local, Bit>,
    final_index: Constant<Bits<CW>>,
}

impl<const CW: usize> FrameCounter<CW> {
    /// A counter for frames of `elements` beats; panics unless `CW` is exact.
    pub fn new(elements: u64) -> Self {
        assert!(elements >= 1, "FrameCounter: a frame has at least one beat");
        assert_eq!(
            CW,
            crate::address_bits(elements as usize),
            "FrameCounter: CW must be clog2({elements})"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            fire: Default::default(),
            last: Default::default(),
            count: Default::default(),
            is_last: Default::default(),
            final_index: Constant::new((elements - 1).into()),
        }
    }
}

impl<const CW: usize> Logic for FrameCounter<CW> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, count);
        self.is_last.next = self.count.q.val() == self.final_index.val();
        self.last.next = self.is_last.val();
        if self.fire.val() {
            self.count.d.next = self.count.q.val() + 1;
            if self.is_last.val() {
                self.count.d.next = 0.into();
            }
        }
        if self.reset.val() {
            self.count.d.next = 0.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::module_tree::module_tree;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;
    use rand::Rng;

    /// The expected `last` before each cycle's edge for a fire pattern.
    fn reference(elements: u64, fires: &[bool]) -> Vec<bool> {
        let mut count = 0;
        fires
            .iter()
            .map(|&f| {
                let last = count == elements - 1;
                if f {
                    count = if last { 0 } else { count + 1 };
                }
                last
            })
            .collect()
    }

    fn check<const CW: usize>(elements: u64, rng: &mut impl Rng) {
        let fires: Vec<bool> = (0..300).map(|_| rng.gen_bool(0.6)).collect();
        let want = reference(elements, &fires);
        // the generated Verilog in Icarus: inputs applied, then `last` sampled after the
        // edge, so row t shows `last` for cycle t + 1 (after a reset cycle first)
        let mut uut = FrameCounter::<CW>::new(elements);
        uut.connect_all();
        let v = module_tree(&uut, "top").unwrap();
        let mut vectors = vec![vec![1, 0]];
        vectors.extend(fires.iter().map(|&f| vec![0, f as u128]));
        let rows = iverilog_vectors(
            &format!("frame_counter_{elements}"),
            &v,
            Some("clock"),
            &[("reset", 1), ("fire", 1)],
            &[("last", 1)],
            &vectors,
        )
        .unwrap();
        for (t, w) in want.iter().enumerate() {
            assert_eq!(rows[t][0] == 1, *w, "E = {elements}: cycle {t}");
        }
        let s = ice40_stats(&format!("frame_counter_{elements}"), &v, "top").unwrap();
        assert_eq!(s.dff, CW, "E = {elements}: {s}");
        println!("FrameCounter E = {elements}: {s}");
    }

    #[test]
    fn counts_frames_of_every_length_in_the_matrix() {
        let mut rng = bnnforge_model::random::test_rng("frame_counter");
        check::<1>(1, &mut rng);
        check::<1>(2, &mut rng);
        check::<2>(3, &mut rng);
        check::<4>(10, &mut rng);
        check::<4>(16, &mut rng);
        check::<5>(17, &mut rng);
    }

    #[test]
    #[should_panic(expected = "CW must be clog2")]
    fn rejects_a_wrong_width() {
        FrameCounter::<5>::new(10);
    }
}
