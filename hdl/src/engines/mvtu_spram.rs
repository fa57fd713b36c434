//! `MvtuSpram`: an [`Mvtu`](crate::engines::mvtu::Mvtu) whose weights are in the iCE40
//! UltraPlus's single-port RAMs, one `SB_SPRAM256KA` per PE ([`SpramWeights`]), for
//! layers whose weights do not fit the block RAMs (`hdl/DESIGN.md`, "Weights in
//! SPRAM"). A SPRAM has no initial contents: after reset the engine takes its weight
//! words on the load port, PE 0's NF·SF words at addresses 0, 1, …, then PE 1's, …
//! (each word the [`pe_weight_words`](crate::blocks::weight_memory::pe_weight_words)
//! word, zero-extended to 16 bits); it takes no input beat until the last word is in,
//! and then passes later words on (`load_pass`) to the next such engine. The control,
//! PEs and output lanes are the Mvtu's.
//!
//! Ports: the engine contract (`hdl/ENGINES.md`), `in_data: Bits<IW>`, `out_data:
//! Bits<OW>`; `load_valid`, `load_data: Bits<16>` (in: a weight word, always taken),
//! `load_pass` (out: `load_valid` once this engine has all its words).
//!
//! Generics: the Mvtu's ([`mvtu_generics`]), with `SIMD` in 1..=16, NF·SF ≤ 16384 and
//! PE ≤ 16. Cycles per frame and latency: the Mvtu's, once loaded.

use crate::blocks::mvu_pe::{MvuPe, PE_LATENCY};
use crate::blocks::spram::{SpramWeights, SPRAM_BITS, SPRAM_WORDS};
use crate::blocks::weight_memory::pe_weight_words;
use crate::compile::design::Design;
use crate::compile::emit::{engine, finish};
use crate::engines::mvtu::{
    engine_cycles_per_frame, engine_latency, layer_output, stream_weights, MvtuControl, MvtuInfo,
    MvtuLane, MvtuOutput, MvtuParts, MvtuSpec,
};
use bnnforge_model::network::Network;
use rust_hdl::prelude::*;

/// The Rust path of [`emit`], for the engine program.
pub const EMITTER: &str = concat!(module_path!(), "::emit");

/// Whether an engine of `pe` PEs can keep its weights in SPRAM, one per PE: each PE's
/// memory of `simd`-bit words, `words` deep, fits one SPRAM, and PE ≤ 16 (the load
/// select).
pub fn fits_spram(pe: usize, simd: usize, words: usize) -> bool {
    (1..=16).contains(&pe) && (1..=SPRAM_BITS).contains(&simd) && (1..=SPRAM_WORDS).contains(&words)
}

/// The load port's words of the engine of MAC layer `layer` of `net` at `pe` × `simd`:
/// PE by PE, its words in address order.
pub fn load_words(net: &Network, layer: usize, pe: usize, simd: usize) -> Vec<u16> {
    pe_weight_words(&stream_weights(net, layer), pe, simd)
        .iter()
        .flatten()
        .map(|&w| w as u16)
        .collect()
}

/// Matrix-vector(-threshold) unit with SPRAM weights (see the module documentation).
#[derive(LogicBlock)]
pub struct MvtuSpram<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<IW>>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<OW>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    pub load_valid: Signal<In, Bit>,
    pub load_data: Signal<In, Bits<16>>,
    pub load_pass: Signal<Out, Bit>,
    ctrl: MvtuControl<IW, WA, BA, CA, OW>,
    wmem: Vec<SpramWeights<SIMD, WA>>,
    pad1: Signal<Local, Bit>,
    pes: Vec<MvuPe<SIMD, P, A, Y>>,
    lanes: Vec<MvtuLane<Y, U, K, B, CA, OB, OW>>,
    // loading: the word's address, its PE (one-hot), all words in
    laddr: DFF<Bits<14>>,
    lsel: DFF<Bits<16>>,
    loaded: DFF<Bit>,
    take: Signal<Local, Bit>,
    wrap: Signal<Local, Bit>,
    last_addr: Constant<Bits<14>>,
    _pe: usize,
    _pad: [usize; 2],
    _last: usize,
    _info: MvtuInfo,
    _words: Vec<Vec<u64>>,
}

impl<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > MvtuSpram<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    /// The engine for `weights`, `bias`, `output`, `pixels` as [`Mvtu::new`]
    /// (crate::engines::mvtu::Mvtu::new); panics on any mismatch or when a PE's
    /// weights do not fit a SPRAM.
    pub fn new(weights: &[Vec<i8>], bias: &[i64], output: &MvtuOutput, pixels: usize) -> Self {
        let p = MvtuParts::new("MvtuSpram", weights, bias, output, pixels);
        let (pe, depth) = (p.info.pe, p.info.nf * p.info.sf);
        assert!(
            fits_spram(pe, SIMD, depth),
            "MvtuSpram: SIMD {SIMD} × {depth} words a PE, PE {pe}: not one SPRAM a PE \
             (SIMD ≤ {SPRAM_BITS}, ≤ {SPRAM_WORDS} words, PE ≤ 16)"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            out_data: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            load_valid: Default::default(),
            load_data: Default::default(),
            load_pass: Default::default(),
            ctrl: p.ctrl,
            wmem: (0..pe).map(|_| SpramWeights::new(depth)).collect(),
            pad1: Default::default(),
            pes: p.pes,
            lanes: p.lanes,
            laddr: Default::default(),
            lsel: Default::default(),
            loaded: Default::default(),
            take: Default::default(),
            wrap: Default::default(),
            last_addr: Constant::new(((depth - 1) as u64).into()),
            _pe: pe,
            _pad: p.pad,
            _last: pe - 1,
            _info: p.info,
            _words: p.words,
        }
    }

    /// The engine of MAC layer `layer` of `net`, threshold layer `threshold` fused.
    pub fn from_network(net: &Network, layer: usize, threshold: Option<usize>) -> Self {
        let info = &net.info()[layer];
        let (bias, output) = layer_output("MvtuSpram", net, layer, threshold);
        Self::new(
            &stream_weights(net, layer),
            &bias,
            &output,
            info.shape.pixels(),
        )
    }

    /// The words of the load port, in order ([`load_words`]).
    pub fn load_words(&self) -> Vec<u16> {
        self._words.iter().flatten().map(|&w| w as u16).collect()
    }

    /// The run-time parameters.
    pub fn info(&self) -> MvtuInfo {
        self._info
    }

    /// Cycles per frame at full rate, once loaded: pixels · NF · SF.
    pub fn cycles_per_frame(&self) -> u64 {
        let i = self._info;
        engine_cycles_per_frame(i.pixels, i.nf, i.sf)
    }

    /// First input beat to first output beat, once loaded (the Mvtu's).
    pub fn latency(&self) -> u64 {
        engine_latency(self._info.sf, self._info.threshold, PE_LATENCY)
    }
}

impl<
        const SIMD: usize,
        const IW: usize,
        const P: usize,
        const A: usize,
        const Y: usize,
        const WA: usize,
        const BA: usize,
        const CA: usize,
        const U: usize,
        const K: usize,
        const B: usize,
        const OB: usize,
        const OW: usize,
    > Logic for MvtuSpram<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, laddr, lsel, loaded);
        // loading: PE by PE, address by address; nothing flows in before the last word
        self.take.next = self.load_valid.val() && !self.loaded.q.val();
        self.wrap.next = self.laddr.q.val() == self.last_addr.val();
        self.load_pass.next = self.load_valid.val() && self.loaded.q.val();
        if self.take.val() {
            self.laddr.d.next = self.laddr.q.val() + 1;
            if self.wrap.val() {
                self.laddr.d.next = 0.into();
                self.lsel.d.next = self.lsel.q.val() << 1;
                for p in self._last..self._pe {
                    if self.lsel.q.val().get_bit(p) {
                        self.loaded.d.next = true;
                    }
                }
            }
        }
        if self.reset.val() {
            self.laddr.d.next = 0.into();
            self.lsel.d.next = 1.into();
            self.loaded.d.next = false;
        }
        self.ctrl.clock.next = self.clock.val();
        self.ctrl.reset.next = self.reset.val();
        self.ctrl.in_data.next = self.in_data.val();
        self.ctrl.in_valid.next = self.in_valid.val() && self.loaded.q.val();
        self.ctrl.out_ready.next = self.out_ready.val();
        self.in_ready.next = self.ctrl.in_ready.val() && self.loaded.q.val();
        self.out_valid.next = self.ctrl.out_valid.val();
        self.out_data.next = self.ctrl.out_data.val();
        // stage 1: a padded kernel position (flag above the lanes) must add 0
        self.pad1.next = false;
        for i in self._pad[0]..self._pad[1] {
            self.pad1.next = self.ctrl.x.val().get_bit(i);
        }
        for p in 0..self._pe {
            self.wmem[p].clock.next = self.clock.val();
            self.wmem[p].address.next = self.ctrl.waddr.val();
            self.wmem[p].load_enable.next = self.take.val() && self.lsel.q.val().get_bit(p);
            self.wmem[p].load_address.next = self.laddr.q.val();
            self.wmem[p].load_data.next = self.load_data.val();
            self.pes[p].clock.next = self.clock.val();
            self.pes[p].in_valid.next = self.ctrl.pe_valid.val();
            self.pes[p].first.next = self.ctrl.pe_first.val();
            self.pes[p].last.next = self.ctrl.pe_last.val();
            self.pes[p].w.next = self.wmem[p].data.val();
            self.pes[p].x.next = bit_cast::<SIMD, IW>(self.ctrl.x.val());
            self.pes[p].pad.next = self.pad1.val();
            self.lanes[p].clock.next = self.clock.val();
            self.lanes[p].y_valid.next = self.pes[p].out_valid.val();
            self.lanes[p].y.next = self.pes[p].y.val();
            self.lanes[p].ch.next = self.ctrl.ch.val();
            self.lanes[p].ch_pre.next = self.ctrl.ch_pre.val();
        }
        self.lanes[0].prev.next = 0.into();
        for p in 1..self._pe {
            self.lanes[p].prev.next = self.lanes[p - 1].out.val();
        }
        self.ctrl.res_write.next = self.lanes[0].valid.val();
        for p in self._last..self._pe {
            self.ctrl.res_data.next = self.lanes[p].out.val();
        }
    }
}

/// Emitter of engine `i` of `d` (an [`MvtuSpec`] with its weights in SPRAM).
pub fn emit<
    const SIMD: usize,
    const IW: usize,
    const P: usize,
    const A: usize,
    const Y: usize,
    const WA: usize,
    const BA: usize,
    const CA: usize,
    const U: usize,
    const K: usize,
    const B: usize,
    const OB: usize,
    const OW: usize,
>(
    net: &Network,
    d: &Design,
    i: usize,
) -> String {
    let g = [SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW];
    let (e, MvtuSpec(s)) = engine::<MvtuSpec>(d, i, &g);
    assert!(s.spram, "{}: its weights are not in SPRAM", e.module);
    let b = MvtuSpram::<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>::from_network(
        net,
        s.layer,
        s.threshold,
    );
    let (c, l) = (b.cycles_per_frame(), b.latency());
    finish(b, e, c, l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::mvtu::test_nets::{
        frame, input, input_beats, layer_net, output_beats, Feed,
    };
    use crate::stream::testbench::{run_sim, Pattern, StreamDut};
    use crate::synth::ice40_stats;
    use bnnforge_model::network::Shape;

    /// The load port as input stream 0 (always ready), the data input as stream 1.
    impl<
            const SIMD: usize,
            const IW: usize,
            const P: usize,
            const A: usize,
            const Y: usize,
            const WA: usize,
            const BA: usize,
            const CA: usize,
            const U: usize,
            const K: usize,
            const B: usize,
            const OB: usize,
            const OW: usize,
        > StreamDut for MvtuSpram<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>
    {
        fn clock(&mut self) -> &mut Signal<In, Clock> {
            &mut self.clock
        }
        fn set_reset(&mut self, r: bool) {
            self.reset.next = r;
        }
        fn ins(&self) -> Vec<(String, usize)> {
            vec![("load".into(), 16), ("in".into(), IW)]
        }
        fn outs(&self) -> Vec<(String, usize)> {
            vec![("out".into(), OW)]
        }
        fn set_in(&mut self, k: usize, valid: bool, data: u128) {
            if k == 0 {
                self.load_valid.next = valid;
                self.load_data.next = (data as u64).into();
            } else {
                self.in_valid.next = valid;
                self.in_data.next = data.to_bits();
            }
        }
        fn in_ready(&self, k: usize) -> bool {
            k == 0 || self.in_ready.val()
        }
        fn set_out_ready(&mut self, _k: usize, ready: bool) {
            self.out_ready.next = ready;
        }
        fn out(&self, _k: usize) -> (bool, u128) {
            (self.out_valid.val(), self.out_data.val().to_u128())
        }
    }

    /// A dense layer with a fused threshold, its weights in SPRAM: the words go in on
    /// the load port while input beats are offered from the first cycle on; no beat is
    /// taken before the last word, and the outputs are the model's, at full rate and
    /// with random gaps and stalls on every stream. yosys maps one SB_SPRAM256KA per PE.
    #[test]
    fn loads_its_weights_then_matches_the_model() {
        let mut rng = bnnforge_model::random::test_rng("mvtu_spram");
        // n = 24 at SIMD 8 (SF 3), 6 neurons at PE 2 (NF 3): 9 words a PE
        const SIMD: usize = 8;
        const IW: usize = 8;
        const P: usize = 4;
        const A: usize = 5;
        const Y: usize = 6;
        const WA: usize = 4;
        const BA: usize = 2;
        const CA: usize = 2;
        const U: usize = 7;
        const K: usize = 1;
        const B: usize = 1;
        const OB: usize = 1;
        const OW: usize = 2;
        type E = MvtuSpram<SIMD, IW, P, A, Y, WA, BA, CA, U, K, B, OB, OW>;
        let feed = Feed::plain(input(Shape::vector(24), 1, false));
        let frames: Vec<Vec<i64>> = (0..5).map(|_| frame(&mut rng, &feed.input)).collect();
        let net = layer_net(&mut rng, feed, 6, None, Some(3), Some(1), &frames);
        let make = || E::from_network(&net, 0, Some(1));
        let words = make().load_words();
        assert_eq!(words.len(), 2 * 9);
        let beats: Vec<u128> = frames
            .iter()
            .flat_map(|f| input_beats(&net, 0, f, SIMD, false))
            .collect();
        let want: Vec<u128> = frames
            .iter()
            .flat_map(|f| output_beats(&net, f, OW / OB, OB))
            .collect();
        let data = [words.iter().map(|&w| w as u128).collect(), beats];
        let cycles = 2000;
        for (label, pat) in [
            ("full rate", Pattern::full_rate(2, 1, cycles, 0..0)),
            (
                "stalls",
                Pattern::random(&mut rng, 2, 1, cycles * 4, 0.7, 0.6),
            ),
        ] {
            let tr = run_sim(make(), &data, &pat.until(want.len()));
            assert_eq!(tr.out_data(0), want, "{label}");
            let last_word = *tr.ins[0].last().unwrap();
            assert!(
                tr.ins[1][0] > last_word,
                "{label}: an input beat at cycle {} before the last weight word at {last_word}",
                tr.ins[1][0]
            );
        }
        let mut u = make();
        u.connect_all();
        let v = crate::compile::module_tree::module_tree(&u, "top").unwrap();
        let s = ice40_stats("mvtu_spram", &v, "top").unwrap();
        assert_eq!(s.spram, 2, "{s}");
        println!("MvtuSpram PE 2 × SIMD 8: {s}");
    }
}
