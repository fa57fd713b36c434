//! Folding for a resource budget: the fastest folding whose estimated resources fit.
//!
//! Every interval [`crate::compile::folding::plan`] can be asked for is a cycle count some
//! layer has under some valid fold; each one becomes a [`Design`] (cheap: no Verilog) and
//! a [`resources::estimate`](crate::compile::resources::estimate). The answer is the
//! fitting candidate with the fewest cycles per frame, the cheaper on equal intervals;
//! when none fits, the error names the slowest folding's estimate and the budget. Every
//! candidate is evaluated (a faster target does not always give a faster design), so a
//! larger budget never gives a slower design.
//!
//! Devices ([`devices`], from the board table): the iCE40 UP5K by its device name
//! (`up5k`, LUT4s and `SB_RAM40_4K`s of the iCE40 estimate) and the ECP5 boards by their
//! board names (`ulx3s-85f`, `ulx3s-12f`: LUT4s and 18-kbit EBRs of the ECP5 estimate);
//! both are calibrated on yosys (`hdl/DESIGN.md`, "Resource estimate"). An explicit
//! `--budget` is taken as iCE40 units.

use crate::boards::Family;
use crate::compile::design::Design;
use crate::compile::folding::{layer_cycles, plan, valid_folds};
use crate::compile::resources::{estimate_on, Cost, Estimate};
use bnnforge_model::network::Network;
use std::collections::{BTreeMap, BTreeSet};

/// What a design may use: LUT4s and block RAMs of `family`'s estimate (iCE40: logic
/// cells, one LUT4 and one DFF each, counted as [`Cost::logic_cells`], and 4-kbit
/// `SB_RAM40_4K`; ECP5: 18-kbit `DP16KD` EBR, LUT-RAM counted in the LUT4s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub family: Family,
    pub lut4: u64,
    pub bram: u64,
    /// UltraPlus `SB_SPRAM256KA` the planner may put weights in
    pub spram: u64,
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} LUT4, {} {}",
            self.lut4,
            self.bram,
            bram_unit(self.family)
        )?;
        if self.spram > 0 {
            write!(f, ", {} SPRAM", self.spram)?;
        }
        Ok(())
    }
}

/// What the block RAMs of `family` are called in messages.
pub fn bram_unit(family: Family) -> &'static str {
    match family {
        Family::Ice40 => "BRAM",
        Family::Ecp5 => "EBR",
    }
}

impl Budget {
    /// Whether an estimate fits: its logic cells (at least its LUT4s) and block RAMs.
    pub fn fits(&self, c: &Cost) -> bool {
        let luts = match self.family {
            Family::Ice40 => c.logic_cells(),
            // a slice's flip-flops sit beside its LUTs, two and two
            Family::Ecp5 => c.lut4,
        };
        luts <= self.lut4 && c.bram <= self.bram && c.spram <= self.spram
    }

    /// `LUT4,BRAM`, e.g. `4000,20`.
    pub fn parse(s: &str) -> Result<Budget, String> {
        let bad =
            || format!("--budget '{s}': expected LUT4,BRAM, two whole numbers such as 4000,20");
        let (l, b) = s.split_once(',').ok_or_else(bad)?;
        let lut4: u64 = l.trim().parse().map_err(|_| bad())?;
        let bram: u64 = b.trim().parse().map_err(|_| bad())?;
        if lut4 == 0 {
            return Err(format!(
                "--budget '{s}': the LUT4 budget must be at least 1"
            ));
        }
        Ok(Budget {
            family: Family::Ice40,
            lut4,
            bram,
            spram: 0,
        })
    }

    /// The budget of a device by name (see [`devices`]).
    pub fn device(name: &str) -> Result<Budget, String> {
        let all = devices();
        all.iter()
            .find(|d| d.name == name)
            .map(Device::budget)
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|d| d.name).collect();
                format!(
                    "--device '{name}': unknown device (known: {}; for any other give \
                     --budget LUT4,BRAM)",
                    names.join(", ")
                )
            })
    }
}

/// A device the estimate is calibrated for.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// `--device`: the iCE40 device name, or the ECP5 board name
    pub name: &'static str,
    pub family: Family,
    /// LUT4s (iCE40 logic cells, ECP5 LUT4s of the slices)
    pub lut4: u64,
    /// `SB_RAM40_4K` or `DP16KD` blocks
    pub bram: u64,
    /// `SB_SPRAM256KA` (UltraPlus)
    pub spram: u64,
    /// percent of the LUT4s kept free for placement and routing
    pub headroom_percent: u64,
    /// logic cells and block RAMs reserved for the board core
    pub board_core: (u64, u64),
}

impl Device {
    /// What the accelerator may use beside the board core: the logic cells less the
    /// headroom and the board core's cells, the block RAMs less the board core's.
    pub fn budget(&self) -> Budget {
        Budget {
            family: self.family,
            lut4: (self.lut4 * (100 - self.headroom_percent) / 100)
                .saturating_sub(self.board_core.0),
            bram: self.bram.saturating_sub(self.board_core.1),
            spram: self.spram,
        }
    }
}

/// Logic cells and block RAMs of the board core (UART, packet engine, frame buffers) that
/// `bnnforge synth` places beside the accelerator: 1102 LUT4, 752 DFF (about 1400 cells)
/// and 5 `SB_RAM40_4K` on the UP5K at TFC-W1A1's frame sizes (README, Boards).
pub const BOARD_CORE_CELLS: u64 = 1400;
pub const BOARD_CORE_BRAM: u64 = 5;

/// The same on ECP5, in LUT4 places and `DP16KD`s: placed with the board core, TFC-W1A1
/// at 112 cycles took 7467 LUT4 of the 12F against its accelerator's 4760 (yosys), and
/// LFC-W1A1 on the 85F 6168 against 4028 and one EBR more (README, Boards): the larger
/// difference (the core and the packing of both).
pub const BOARD_CORE_LUT4_ECP5: u64 = 2700;
pub const BOARD_CORE_EBR: u64 = 1;

/// Percent of the LUT4s kept free for placement and routing.
pub const HEADROOM_PERCENT: u64 = 10;

/// Known devices, from the board table ([`crate::boards`], the one source of device
/// sizes): the iCE40 boards' devices by device name, e.g. the UP5K's 5280 logic cells
/// and 30 SB_RAM40_4K and 4 SPRAMs; the ECP5 boards by board name, as
/// their nextpnr device need not be the chip (the 12F is placed as a 25k), e.g. the
/// ULX3S 85F's 83,640 LUT4s and 208 EBRs. 10 % of the LUT4s stay free: the LUT4 estimate
/// of a whole design is within a few % of yosys (see [`crate::compile::resources`]), and
/// nextpnr must pack flip-flops and carry chains into the same cells and route them;
/// designs above about 90 % utilisation often fail to place or lose much of their Fmax.
/// The board core's cells and block RAMs are reserved too: 3352 cells and 25 block RAMs
/// for the accelerator on the UP5K, 8359 LUT4 and 31 EBRs on the 12F (without it, TFC-W1A1
/// would take 98 cycles on the 12F: 9283 LUT4 places alone, about 12,000 of its 12,288
/// with the core), 72,576 LUT4 and 207 EBRs on the 85F.
pub fn devices() -> Vec<Device> {
    let mut v: Vec<Device> = vec![];
    for b in crate::boards::BOARDS.iter() {
        let name = match b.family {
            Family::Ice40 => b.device,
            Family::Ecp5 => b.name,
        };
        if v.iter().all(|d| d.name != name) {
            v.push(Device {
                name,
                family: b.family,
                lut4: b.resources.lut4 as u64,
                bram: b.resources.bram as u64,
                spram: b.resources.spram as u64,
                headroom_percent: HEADROOM_PERCENT,
                board_core: match b.family {
                    Family::Ice40 => (BOARD_CORE_CELLS, BOARD_CORE_BRAM),
                    Family::Ecp5 => (BOARD_CORE_LUT4_ECP5, BOARD_CORE_EBR),
                },
            });
        }
    }
    v
}

/// Every interval [`plan`] can be asked for: the distinct cycles per frame of every
/// layer under every valid fold, ascending.
pub fn candidate_targets(net: &Network) -> Vec<u64> {
    let t: BTreeSet<u64> = (0..net.layers.len())
        .flat_map(|i| {
            valid_folds(net, i)
                .into_iter()
                .map(move |f| layer_cycles(net, i, f))
        })
        .collect();
    t.into_iter().collect()
}

/// One evaluated candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// the target given to [`plan`]
    pub target: u64,
    /// the design's cycles per frame (its slowest engine)
    pub cycles: u64,
    pub cost: Cost,
}

/// The folding chosen for a budget.
#[derive(Clone, Debug)]
pub struct Choice {
    pub design: Design,
    pub estimate: Estimate,
    /// the target interval it was planned for
    pub target: u64,
    /// every candidate that made a design, in target order
    pub candidates: Vec<Candidate>,
}

/// Every candidate target's design and its estimate on `family`, in target order;
/// targets whose design cannot be built are left out (the last such error is returned
/// when none can).
pub fn candidates(
    net: &Network,
    family: Family,
) -> Result<Vec<(Candidate, Design, Estimate)>, String> {
    candidates_with_spram(net, family, 0)
}

/// [`candidates`], and with `spram` > 0 each design also with its weights moved to at
/// most `spram` SPRAMs ([`Design::put_weights_in_spram`]) where that frees any.
pub fn candidates_with_spram(
    net: &Network,
    family: Family,
    spram: u64,
) -> Result<Vec<(Candidate, Design, Estimate)>, String> {
    let mut v = vec![];
    let mut last_err = None;
    for target in candidate_targets(net) {
        let p = plan(net, &BTreeMap::new(), Some(target))?;
        match Design::new(net, &p.folds) {
            Ok(d) => {
                let mut designs = vec![d.clone()];
                let mut s = d;
                if spram > 0 && s.put_weights_in_spram(spram as usize) > 0 {
                    designs.push(s);
                }
                for d in designs {
                    let est = estimate_on(&d, family);
                    let c = Candidate {
                        target,
                        cycles: d.cycles_per_frame(),
                        cost: est.total,
                    };
                    v.push((c, d, est));
                }
            }
            Err(e) => last_err = Some(e),
        }
    }
    if v.is_empty() {
        return Err(last_err.unwrap_or_else(|| "the network has no layers".to_string()));
    }
    Ok(v)
}

/// The fastest folding of `net` whose estimate fits `budget` (see the module
/// documentation), or an error naming the slowest folding's estimate and the budget.
pub fn fold_for_budget(net: &Network, budget: Budget) -> Result<Choice, String> {
    choose(
        &candidates_with_spram(net, budget.family, budget.spram)?,
        budget,
    )
}

/// The fastest of the candidates `all` (in target order) whose estimate fits `budget`,
/// or the error of [`fold_for_budget`].
pub fn choose(all: &[(Candidate, Design, Estimate)], budget: Budget) -> Result<Choice, String> {
    // SPRAM only when it makes the design faster: its weights must be loaded first
    let key = |c: &Candidate| (c.cycles, c.cost.spram, c.cost.lut4, c.cost.bram);
    let best = all
        .iter()
        .filter(|(c, _, _)| budget.fits(&c.cost))
        .min_by_key(|(c, _, _)| key(c));
    match best {
        Some((c, d, e)) => Ok(Choice {
            design: d.clone(),
            estimate: e.clone(),
            target: c.target,
            candidates: all.iter().map(|(c, _, _)| c.clone()).collect(),
        }),
        None => {
            let slowest = &all.last().expect("at least one candidate").0;
            Err(format!(
                "no folding fits the budget of {budget}: even the slowest ({} cycles per \
                 frame) is estimated at {} LUT4{} and {} {}{}",
                slowest.cycles,
                slowest.cost.lut4,
                match budget.family {
                    Family::Ice40 => format!(
                        " ({} logic cells with its DFFs)",
                        slowest.cost.logic_cells()
                    ),
                    Family::Ecp5 => String::new(),
                },
                slowest.cost.bram,
                bram_unit(budget.family),
                match slowest.cost.spram {
                    0 => String::new(),
                    n => format!(" with weights in {n} SPRAM"),
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnnforge_model::random::{random_network, RandomConfig};

    fn load(rel: &str) -> Network {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(rel);
        bnnforge_model::load(&p).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// What a choice must be: it fits, and no candidate with fewer cycles per frame fits
    /// (nor one as fast and cheaper).
    fn check_choice(all: &[Candidate], budget: Budget, c: &Choice, what: &str) {
        assert!(
            budget.fits(&c.estimate.total),
            "{what}: {} over {budget}",
            c.estimate.total
        );
        assert_eq!(c.estimate, estimate_on(&c.design, budget.family), "{what}");
        let cycles = c.design.cycles_per_frame();
        for o in all.iter().filter(|o| budget.fits(&o.cost)) {
            assert!(
                (o.cycles, o.cost.lut4) >= (cycles, c.estimate.total.lut4),
                "{what}: target {} gives {} cycles, {} within {budget}, better than the \
                 choice's {cycles} cycles, {}",
                o.target,
                o.cycles,
                o.cost,
                c.estimate.total
            );
        }
    }

    /// Budgets from tiny to huge: the interval never grows as the budget grows, every
    /// choice is the fastest that fits, and a budget too small is a clear error.
    fn check_network(net: &Network, what: &str) -> usize {
        // the candidates once, chosen from for every budget (`fold_for_budget` computes
        // them per call: it is checked once, on the largest budget)
        let full = match candidates(net, Family::Ice40) {
            Ok(v) => v,
            Err(_) => return 0,
        };
        let all: Vec<Candidate> = full.iter().map(|x| x.0.clone()).collect();
        let max_lut = all.iter().map(|c| c.cost.logic_cells()).max().unwrap();
        let max_bram = all.iter().map(|c| c.cost.bram).max().unwrap();
        let min_lut = all.iter().map(|c| c.cost.logic_cells()).min().unwrap();
        let mut last = u64::MAX;
        let mut chosen = 0;
        for k in 0..=12u64 {
            let budget = Budget {
                family: Family::Ice40,
                lut4: min_lut + (max_lut - min_lut) * k / 12,
                bram: max_bram,
                spram: 0,
            };
            let choice = if k == 12 {
                fold_for_budget(net, budget)
            } else {
                choose(&full, budget)
            };
            match choice {
                Ok(c) => {
                    check_choice(&all, budget, &c, &format!("{what}, {budget}"));
                    let cycles = c.design.cycles_per_frame();
                    assert!(
                        cycles <= last,
                        "{what}: {budget} gives {cycles} > {last} cycles"
                    );
                    last = cycles;
                    chosen += 1;
                }
                Err(e) => {
                    assert!(
                        all.iter().all(|c| !budget.fits(&c.cost)),
                        "{what}: {e}, but a candidate fits {budget}"
                    );
                    assert!(e.contains(&budget.to_string()), "{what}: {e}");
                }
            }
        }
        // the largest budget takes the fastest candidate of all
        let fastest = all.iter().map(|c| c.cycles).min().unwrap();
        assert_eq!(last, fastest, "{what}");
        chosen
    }

    #[test]
    fn shipped_networks_take_the_fastest_folding_that_fits() {
        for m in [
            "models/tfc-w1a1.yaml",
            "models/lfc-w1a1.yaml",
            "models/lfc-w1a2.yaml",
        ] {
            let net = load(m);
            let t = std::time::Instant::now();
            let n = candidate_targets(&net).len();
            let chosen = check_network(&net, m);
            println!(
                "{m}: {n} candidate targets, {chosen} budgets chosen, {:.1?}",
                t.elapsed()
            );
            assert!(chosen >= 10, "{m}");
        }
    }

    /// TFC-W1A1 on the UP5K beside the board core: 784 cycles per frame (392, with the
    /// input threshold at 2 pixels a beat, took 5355 logic cells with the board core and
    /// did not place); LFC's 2.9 Mbit of weights do not fit.
    #[test]
    fn up5k() {
        let up5k = Budget::device("up5k").unwrap();
        assert_eq!(
            up5k,
            Budget {
                family: Family::Ice40,
                lut4: 3352,
                bram: 25,
                spram: 4
            }
        );
        let c = fold_for_budget(&load("models/tfc-w1a1.yaml"), up5k).unwrap();
        assert_eq!(c.design.cycles_per_frame(), 784);
        assert!(c.estimate.total.logic_cells() <= 3352);
        assert_eq!(c.estimate.total.spram, 0, "TFC needs no SPRAM");
        let e = fold_for_budget(&load("models/lfc-w1a1.yaml"), up5k).unwrap_err();
        assert!(
            e.starts_with(
                "no folding fits the budget of 3352 LUT4, 25 BRAM, 4 SPRAM: even the slowest"
            ) && e.contains("BRAM"),
            "{e}"
        );
    }

    /// An SFC-sized MLP (784-256-256-256-10): no folding fits the UP5K's block RAMs, but
    /// with the weights of three dense layers in its 4 SPRAMs one does (6272 cycles per
    /// frame); SPRAM is never used where it brings no speed.
    #[test]
    fn sfc_on_the_up5k_keeps_weights_in_spram() {
        use bnnforge_model::network::{InputSpec, Shape};
        let input = InputSpec {
            shape: Shape::map(1, 28, 28),
            bits: 8,
            signed: false,
        };
        let net = bnnforge_model::random::mlp_network(1, input, &[256, 256, 256], 10);
        let up5k = Budget::device("up5k").unwrap();
        let c = fold_for_budget(&net, up5k).unwrap();
        assert_eq!(c.design.cycles_per_frame(), 6272);
        assert_eq!(c.estimate.total.spram, 4, "{}", c.estimate.total);
        assert_eq!(c.design.spram_engines().len(), 3);
        assert_eq!(c.design.spram_words(), 784 * 256 / 16 + 2 * 256 * 256 / 16);
        let no_spram = Budget { spram: 0, ..up5k };
        assert!(fold_for_budget(&net, no_spram).is_err());
        for &i in &c.design.spram_engines() {
            assert!(c.design.engines[i].fold.simd <= 16);
        }
    }

    /// The ECP5 boards by name, sized from the board table: LFC-W1A1 fits the ULX3S
    /// 85F at 512 cycles per frame (192 of 208 EBRs), where the UP5K holds none of its
    /// foldings; TFC-W1A1 fits the 12F at 112.
    #[test]
    fn ulx3s() {
        let b85 = Budget::device("ulx3s-85f").unwrap();
        assert_eq!(
            b85,
            Budget {
                family: Family::Ecp5,
                lut4: 72_576,
                bram: 207,
                spram: 0
            }
        );
        let c = fold_for_budget(&load("models/lfc-w1a1.yaml"), b85).unwrap();
        assert_eq!(c.design.cycles_per_frame(), 512);
        assert_eq!(c.estimate.family, Family::Ecp5);
        check_choice(&c.candidates, b85, &c, "lfc on ulx3s-85f");
        let b12 = Budget::device("ulx3s-12f").unwrap();
        assert_eq!((b12.lut4, b12.bram), (8_359, 31));
        let c = fold_for_budget(&load("models/tfc-w1a1.yaml"), b12).unwrap();
        assert_eq!(c.design.cycles_per_frame(), 112);
    }

    #[test]
    fn nothing_fits_a_tiny_budget() {
        let budget = Budget {
            family: Family::Ice40,
            lut4: 100,
            bram: 0,
            spram: 0,
        };
        let e = fold_for_budget(&load("models/tfc-w1a1.yaml"), budget).unwrap_err();
        assert!(
            e.contains("100 LUT4, 0 BRAM") && e.contains("is estimated at"),
            "{e}"
        );
    }

    /// Random networks (seed printed; `BNNFORGE_SEED=S` replays from S).
    #[test]
    fn random_networks_take_the_fastest_folding_that_fits() {
        let seeds = bnnforge_model::random::test_seeds(
            "random_networks_take_the_fastest_folding_that_fits",
            0,
            30,
        );
        let mut checked = 0;
        for seed in seeds {
            let net = random_network(seed, &RandomConfig::default());
            if check_network(&net, &format!("seed {seed}")) > 0 {
                checked += 1;
            }
        }
        assert!(
            checked >= 20,
            "only {checked} of 30 random networks have a design"
        );
    }

    #[test]
    fn budgets_and_devices_parse() {
        assert_eq!(
            Budget::parse("4000,20"),
            Ok(Budget {
                family: Family::Ice40,
                lut4: 4000,
                bram: 20,
                spram: 0
            })
        );
        assert_eq!(
            Budget::parse(" 4000 , 0 "),
            Ok(Budget {
                family: Family::Ice40,
                lut4: 4000,
                bram: 0,
                spram: 0
            })
        );
        for bad in ["4000", "4000,", "a,1", "1,2,3", "-1,2", "0,5"] {
            let e = Budget::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("--budget '{bad}'")), "{e}");
        }
        let e = Budget::device("ecp5-25k").unwrap_err();
        assert!(
            e.contains("unknown device") && e.contains("up5k") && e.contains("ulx3s-85f"),
            "{e}"
        );
    }
}
