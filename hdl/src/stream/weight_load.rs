//! `WeightLoad`: the top's input stream in front of a design with weights in SPRAM.
//! After reset its first beats are weight words, not frames: each carries LW bits (the
//! low bits of `s_axis_tdata`, LW = [`load_bits_per_beat`]), 16 / LW beats a word, low
//! bits first; after the design's N words the stream passes on (its data wired around
//! this block by the top). Words go out on `load_valid`/`load_data` (registered) to the
//! engines' load ports, chained in design order (`hdl/DESIGN.md`, "Weights in SPRAM").
//!
//! Ports: `clock`, `reset`; `in_bits: Bits<16>` (the beat's low LW bits), `in_valid`,
//! `in_ready` (always ready while loading); `out_valid`, `out_ready` (the frames, once
//! loaded); `load_valid`, `load_data: Bits<16>` (out).
//!
//! Run-time: N words in 1..=2^20, LW. Latency: a word is on `load_data` one edge after
//! its last beat.

use rust_hdl::prelude::*;

/// Bits of a load beat for an input stream `in_width` bits wide: the largest power of
/// two no wider than it, at most 16.
pub fn load_bits_per_beat(in_width: usize) -> usize {
    let mut b = 16;
    while b > in_width.max(1) {
        b /= 2;
    }
    b
}

/// The loader (see the module documentation).
#[derive(LogicBlock)]
pub struct WeightLoad {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_bits: Signal<In, Bits<16>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    pub load_valid: Signal<Out, Bit>,
    pub load_data: Signal<Out, Bits<16>>,
    // the word being assembled, its beat count, words sent, all sent
    part: DFF<Bits<16>>,
    beat: DFF<Bits<5>>,
    words: DFF<Bits<20>>,
    done: DFF<Bit>,
    lv: DFF<Bit>,
    ld: DFF<Bits<16>>,
    next: Signal<Local, Bits<16>>,
    take: Signal<Local, Bit>,
    mask: Constant<Bits<16>>,
    up: Constant<Bits<16>>,
    lw: Constant<Bits<16>>,
    last_beat: Constant<Bits<5>>,
    last_word: Constant<Bits<20>>,
}

impl WeightLoad {
    /// A loader of `words` weight words from an input stream `in_width` bits wide.
    pub fn new(words: usize, in_width: usize) -> Self {
        assert!(
            (1..=1 << 20).contains(&words),
            "WeightLoad: {words} words not in 1..=2^20"
        );
        let lw = load_bits_per_beat(in_width);
        let k = |x: usize| Constant::new((x as u64).into());
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_bits: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            load_valid: Default::default(),
            load_data: Default::default(),
            part: Default::default(),
            beat: Default::default(),
            words: Default::default(),
            done: Default::default(),
            lv: Default::default(),
            ld: Default::default(),
            next: Default::default(),
            take: Default::default(),
            mask: k((1 << lw) - 1),
            up: k(16 - lw),
            lw: k(lw),
            last_beat: Constant::new(((16 / lw - 1) as u64).into()),
            last_word: Constant::new(((words - 1) as u64).into()),
        }
    }
}

impl Logic for WeightLoad {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, part, beat, words, done, lv, ld);
        self.out_valid.next = self.in_valid.val() && self.done.q.val();
        self.in_ready.next = self.out_ready.val() || !self.done.q.val();
        self.take.next = self.in_valid.val() && !self.done.q.val();
        // the beat's bits enter at the top, earlier beats move down
        self.next.next = (self.part.q.val() >> self.lw.val())
            | ((self.in_bits.val() & self.mask.val()) << self.up.val());
        self.lv.d.next = false;
        if self.take.val() {
            self.part.d.next = self.next.val();
            self.beat.d.next = self.beat.q.val() + 1;
            if self.beat.q.val() == self.last_beat.val() {
                self.beat.d.next = 0.into();
                self.lv.d.next = true;
                self.ld.d.next = self.next.val();
                self.words.d.next = self.words.q.val() + 1;
                if self.words.q.val() == self.last_word.val() {
                    self.done.d.next = true;
                }
            }
        }
        if self.reset.val() {
            self.beat.d.next = 0.into();
            self.words.d.next = 0.into();
            self.done.d.next = false;
            self.lv.d.next = false;
        }
        self.load_valid.next = self.lv.q.val();
        self.load_data.next = self.ld.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::module_tree::module_tree;
    use crate::testutil::iverilog_vectors;
    use bnnforge_testbench::load_beats;
    use rand::Rng;

    #[test]
    fn beats_per_word() {
        assert_eq!(
            [1, 2, 3, 7, 8, 9, 16, 392].map(load_bits_per_beat),
            [1, 2, 2, 4, 8, 8, 16, 16]
        );
        assert_eq!(load_beats(&[0xabcd], 8), vec![0xcd, 0xab]);
        assert_eq!(load_beats(&[0xabcd, 1], 16), vec![0xabcd, 1]);
        assert_eq!(load_beats(&[0b1011], 2)[..2], [0b11, 0b10]);
        assert_eq!(load_beats(&[0x8001], 1).len(), 16);
    }

    /// In Icarus, for input widths 3, 8 and 20: the words come out in order, one edge
    /// after their last beat, whatever the gaps; beats after the last word pass through
    /// (with their ready) and no word comes out of them.
    #[test]
    fn loads_words_then_passes_frames() {
        let mut rng = bnnforge_model::random::test_rng("weight_load");
        for iw in [3, 8, 20] {
            check(iw, &mut rng);
        }
    }

    fn check(iw: usize, rng: &mut impl Rng) {
        let lw = load_bits_per_beat(iw);
        let words: Vec<u16> = (0..7).map(|_| rng.gen()).collect();
        let mut beats = load_beats(&words, lw as u32);
        let frames: Vec<u64> = (0..5).map(|_| rng.gen_range(0..1u64 << lw)).collect();
        beats.extend(&frames);
        let mut uut = WeightLoad::new(words.len(), iw);
        uut.connect_all();
        let v = module_tree(&uut, "top").unwrap();
        // inputs: reset, in_valid, in_bits, out_ready; a beat offered with probability
        // 0.7 (the loader is always ready while loading; afterwards out_ready is 1)
        let mut vectors = vec![vec![1, 0, 0, 1]];
        for &b in &beats {
            while !rng.gen_bool(0.7) {
                vectors.push(vec![0, 0, 0, 1]);
            }
            vectors.push(vec![0, 1, b as u128, 1]);
        }
        vectors.push(vec![0, 0, 0, 1]);
        let rows = iverilog_vectors(
            &format!("weight_load_{iw}"),
            &v,
            Some("clock"),
            &[
                ("reset", 1),
                ("in_valid", 1),
                ("in_bits", 16),
                ("out_ready", 1),
            ],
            &[
                ("load_valid", 1),
                ("load_data", 16),
                ("out_valid", 1),
                ("in_ready", 1),
            ],
            &vectors,
        )
        .unwrap();
        // row t: the registers after edge t with vector t still applied
        let got: Vec<u16> = rows
            .iter()
            .filter(|r| r[0] == 1)
            .map(|r| r[1] as u16)
            .collect();
        assert_eq!(got, words, "IW = {iw}: the words");
        // out_valid on the vectors offering a beat after the last word's, and on that
        // beat's own row (sampled after the edge that opened the stream)
        let passed = rows.iter().filter(|r| r[2] == 1).count();
        assert_eq!(
            passed,
            frames.len() + 1,
            "IW = {iw}: the beats after the words"
        );
        assert!(
            rows.iter().skip(1).all(|r| r[3] == 1),
            "IW = {iw}: always ready"
        );
        println!(
            "WeightLoad IW = {iw}: {} words, then {} frames",
            words.len(),
            frames.len()
        );
    }
}
