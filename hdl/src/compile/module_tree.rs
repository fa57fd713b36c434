//! Verilog for one rust-hdl block as a module tree under a chosen name.
//!
//! `generate_verilog` names the top module `top` and every sub-module by its instance path
//! (`top$tree$lv1$0`, …), so two layers generated separately would collide.
//! [`module_tree`] runs the same generator with the layer's name as the root of every
//! path: its modules are `<name>` and `<name>$…` (`$` is legal in Verilog identifiers).
//!
//! Two rewrites make the text smaller without changing the hardware:
//! [`dedup_modules`] writes a body identical to an earlier one (names aside) once, and
//! [`pack_memory_inits`] writes a memory's contents as one packed-hex `localparam` and a
//! short `initial` loop per [`INIT_BLOCK`] words, which yosys unrolls into the same
//! `$meminit` cells (so the memory still maps to block RAM). Why: `hdl/DESIGN.md`,
//! "Per-layer module trees".

use rust_hdl::prelude::*;
use std::collections::{HashMap, HashSet};

/// The Verilog of `block` with its top module named `name` and every sub-module
/// prefixed `name$`, identical module bodies written once and memory contents packed.
/// Runs rust-hdl's design checks first (unconnected inputs, logic loops, latching
/// writes) and returns their error as text instead of panicking.
pub fn module_tree<B: Block>(block: &B, name: &str) -> Result<String, String> {
    assert!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "module name `{name}` is not a plain Verilog identifier"
    );
    check_all(block).map_err(|e| format!("{name}: rust-hdl check failed: {e:?}"))?;
    let mut defines = ModuleDefines::default();
    block.accept(name, &mut defines);
    Ok(dedup_modules(&pack_memory_inits(&defines.defines()), name))
}

/// Memory words per packed run, each in its own `initial` loop (see the module
/// documentation): 32 to 64 read fastest in yosys 0.23.
pub const INIT_BLOCK: usize = 64;

/// `name[ADDR] = VALUE;` (ADDR as `N'bBITS` or decimal) as (name, address, value);
/// `None` for any other line.
fn memory_init(line: &str) -> Option<(&str, u64, &str)> {
    let (lhs, rhs) = line.trim().split_once(" = ")?;
    let (name, addr) = lhs.strip_suffix(']')?.split_once('[')?;
    let addr = match addr.split_once("'b") {
        Some((_, bits)) => u64::from_str_radix(bits, 2).ok()?,
        None => addr.parse().ok()?,
    };
    let value = rhs.strip_suffix(';')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '\'')
    };
    (plain(name) && plain(value)).then_some((name, addr, value))
}

/// A sized Verilog literal (`13'b1011`, `64'hff`, `10'd9`, `4'sh3`) as its bits, least
/// significant first; `None` for x/z digits, unsized or malformed literals.
pub fn literal_bits(lit: &str) -> Option<Vec<bool>> {
    let (width, rest) = lit.split_once('\'')?;
    let width: usize = width.parse().ok().filter(|&w| w > 0)?;
    let rest = rest.strip_prefix(['s', 'S']).unwrap_or(rest);
    let mut chars = rest.chars();
    let base = chars.next()?.to_ascii_lowercase();
    let digits: Vec<char> = chars.filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    let mut bits = Vec::new();
    match base {
        'b' | 'o' | 'h' => {
            let (radix, per) = match base {
                'b' => (2, 1),
                'o' => (8, 3),
                _ => (16, 4),
            };
            for c in digits.iter().rev() {
                let d = c.to_digit(radix)?;
                bits.extend((0..per).map(|i| d >> i & 1 == 1));
            }
        }
        'd' => {
            let mut v: u128 = digits.iter().collect::<String>().parse().ok()?;
            while v > 0 {
                bits.push(v & 1 == 1);
                v >>= 1;
            }
        }
        _ => return None,
    }
    bits.resize(width, false);
    Some(bits)
}

/// `bits` (least significant first) as hex digits, most significant first, without
/// leading zeros (at least one digit).
fn hex(bits: &[bool]) -> String {
    let nibbles: Vec<u32> = bits
        .chunks(4)
        .map(|c| c.iter().enumerate().map(|(i, &b)| (b as u32) << i).sum())
        .collect();
    let top = nibbles.iter().rposition(|&n| n != 0).unwrap_or(0);
    nibbles[..=top]
        .iter()
        .rev()
        .map(|&n| char::from_digit(n, 16).unwrap())
        .collect()
}

/// Every `initial begin … end` block that only sets memory words, rewritten as packed
/// runs of at most [`INIT_BLOCK`] consecutive words of one width (a `localparam` of
/// hex and an `initial` loop each); everything else unchanged. A block with a value
/// that is not a sized literal of 0/1 digits is kept word by word, in blocks of
/// [`INIT_BLOCK`] statements.
pub fn pack_memory_inits(verilog: &str) -> String {
    let mut out = String::with_capacity(verilog.len() / 2);
    let mut declared = HashSet::new();
    let mut lines = verilog.split_inclusive('\n');
    while let Some(line) = lines.next() {
        if line.starts_with("module ") {
            declared.clear();
        }
        if line.trim() != "initial begin" {
            out.push_str(line);
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut body = Vec::new();
        let mut closed = None;
        for l in lines.by_ref() {
            if l.trim() == "end" {
                closed = Some(l);
                break;
            }
            body.push(l);
        }
        let inits: Option<Vec<_>> = body.iter().map(|l| memory_init(l)).collect();
        let (inits, _) = match (inits, closed) {
            (Some(inits), Some(end)) if !inits.is_empty() => (inits, end),
            (_, closed) => {
                out.push_str(line);
                body.iter().for_each(|l| out.push_str(l));
                out.push_str(closed.unwrap_or(""));
                continue;
            }
        };
        let values: Option<Vec<Vec<bool>>> = inits.iter().map(|i| literal_bits(i.2)).collect();
        let Some(values) = values else {
            for chunk in inits.chunks(INIT_BLOCK) {
                out.push_str(&format!("{indent}initial begin\n"));
                for (name, addr, value) in chunk {
                    out.push_str(&format!("{indent}{name}[{addr}] = {value};\n"));
                }
                out.push_str(&format!("{indent}end\n"));
            }
            continue;
        };
        let mut k = 0;
        while k < inits.len() {
            let (name, base, _) = inits[k];
            let width = values[k].len();
            let mut n = 1;
            while k + n < inits.len()
                && n < INIT_BLOCK
                && inits[k + n].0 == name
                && inits[k + n].1 == base + n as u64
                && values[k + n].len() == width
            {
                n += 1;
            }
            let bits: Vec<bool> = values[k..k + n].concat();
            let (p, i) = (format!("{name}${base}"), format!("{name}$i"));
            if declared.insert(name.to_string()) {
                out.push_str(&format!("{indent}integer {i};\n"));
            }
            out.push_str(&format!(
                "{indent}localparam [{}:0] {p} = {}'h{};\n\
                 {indent}initial for ({i} = 0; {i} < {n}; {i} = {i} + 1) \
                 {name}[{base} + {i}] = {p}[{width}*{i} +: {width}];\n",
                bits.len() - 1,
                bits.len(),
                hex(&bits)
            ));
            k += n;
        }
    }
    out
}

/// The contents a Verilog text gives its memories, as (memory, address) → bits (least
/// significant first), read from both the word-by-word and the packed form of
/// [`pack_memory_inits`]; for tests and checks of the generated files.
pub fn memory_contents(verilog: &str) -> HashMap<(String, u64), Vec<bool>> {
    let mut params: HashMap<&str, Vec<bool>> = HashMap::new();
    let mut words = HashMap::new();
    for line in verilog.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("localparam ") {
            let Some((lhs, lit)) = rest.strip_suffix(';').and_then(|r| r.split_once(" = ")) else {
                continue;
            };
            if let (Some(p), Some(bits)) = (lhs.split(' ').last(), literal_bits(lit)) {
                params.insert(p, bits);
            }
        } else if let Some(rest) = t.strip_prefix("initial for (") {
            // `i = 0; i < N; i = i + 1) mem[BASE + i] = P[W*i +: W];`
            let mut parse = || -> Option<()> {
                let (_, rest) = rest.split_once(" < ")?;
                let (n, rest) = rest.split_once(';')?;
                let (_, rest) = rest.split_once(") ")?;
                let (name, rest) = rest.split_once('[')?;
                let (base, rest) = rest.split_once(" + ")?;
                let (_, rest) = rest.split_once("] = ")?;
                let (p, rest) = rest.split_once('[')?;
                let (w, _) = rest.split_once('*')?;
                let (n, base, w): (u64, u64, usize) =
                    (n.parse().ok()?, base.parse().ok()?, w.parse().ok()?);
                let bits = params.get(p)?;
                for j in 0..n {
                    let lo = w * j as usize;
                    let mut v: Vec<bool> = bits.get(lo..lo + w)?.to_vec();
                    v.resize(w, false);
                    words.insert((name.to_string(), base + j), v);
                }
                Some(())
            };
            parse();
        } else if let Some((name, addr, value)) = memory_init(t) {
            if let Some(bits) = literal_bits(value) {
                words.insert((name.to_string(), addr), bits);
            }
        }
    }
    words
}

/// Identifier-like tokens (`[A-Za-z0-9_$]+`) and the text between them, in order.
fn tokens(text: &str) -> Vec<&str> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_ident = None;
    for (i, c) in text.char_indices() {
        let now = ident(c);
        if in_ident != Some(now) {
            if i > start {
                out.push(&text[start..i]);
            }
            start = i;
            in_ident = Some(now);
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// `verilog` (a module tree whose top is `root`) with every module whose body is
/// identical to an earlier module's (own name aside, sub-modules compared the same way)
/// left out and its instances renamed to the earlier module; `root` is always kept
/// under its name. Text before the first module is kept.
pub fn dedup_modules(verilog: &str, root: &str) -> String {
    // split into the preamble and one chunk per module (up to the next `module` line)
    let mut preamble = String::new();
    let mut chunks: Vec<(String, String)> = Vec::new();
    for line in verilog.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("module ") {
            let name = rest
                .split(|c: char| c == '(' || c == ';' || c == '#' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_string();
            chunks.push((name, String::new()));
        }
        match chunks.last_mut() {
            Some((_, text)) => text.push_str(line),
            None => preamble.push_str(line),
        }
    }
    let index: HashMap<&str, usize> = chunks
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    if index.len() != chunks.len() {
        return verilog.to_string(); // a name defined twice: leave the text as it is
    }
    let toks: Vec<Vec<&str>> = chunks.iter().map(|(_, t)| tokens(t)).collect();
    let mut dedup = Dedup {
        chunks: &chunks,
        toks: &toks,
        index: &index,
        rep: vec![None; chunks.len()],
        visiting: vec![false; chunks.len()],
        first: HashMap::new(),
    };
    // the root first: it contains every other module, so no other body equals it
    if let Some(&r) = index.get(root) {
        dedup.resolve(r);
    }
    (0..chunks.len()).for_each(|m| dedup.resolve(m));
    let rep = dedup.rep;
    let mut out = preamble;
    for (m, t) in toks.iter().enumerate() {
        if rep[m] != Some(m) {
            continue;
        }
        for t in t {
            match index.get(t) {
                Some(&c) if c != m => out.push_str(&chunks[rep[c].unwrap_or(c)].0),
                _ => out.push_str(t),
            }
        }
    }
    out
}

/// The state of [`dedup_modules`]: each module's representative, found children first.
struct Dedup<'a> {
    chunks: &'a [(String, String)],
    toks: &'a [Vec<&'a str>],
    index: &'a HashMap<&'a str, usize>,
    rep: Vec<Option<usize>>,
    visiting: Vec<bool>,
    /// canonical body (own name and sub-module names replaced) → first module with it
    first: HashMap<String, usize>,
}

impl Dedup<'_> {
    fn resolve(&mut self, m: usize) {
        if self.rep[m].is_some() || self.visiting[m] {
            return;
        }
        self.visiting[m] = true;
        let mut key = String::with_capacity(self.chunks[m].1.len());
        for t in &self.toks[m] {
            match self.index.get(t) {
                Some(&c) if c == m => key.push_str("\0self"),
                Some(&c) => {
                    self.resolve(c);
                    key.push('\0');
                    key.push_str(&self.chunks[self.rep[c].unwrap_or(c)].0);
                }
                None => key.push_str(t),
            }
        }
        self.visiting[m] = false;
        self.rep[m] = Some(*self.first.entry(key).or_insert(m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::mvu_pe::MvuPe;
    use crate::synth::ice40_stats;
    use crate::testutil::iverilog_vectors;

    /// A ROM module `m` of `n` words of `width` bits as rust-hdl writes it, one
    /// statement per word with binary addresses, and the words (seeded, printed).
    fn rom(n: usize, width: usize, abits: usize) -> (String, Vec<u128>) {
        let mut rng = bnnforge_model::random::test_rng("rom");
        let mask = if width == 128 {
            u128::MAX
        } else {
            (1 << width) - 1
        };
        let words: Vec<u128> = (0..n)
            .map(|_| rand::Rng::gen::<u128>(&mut rng) & mask)
            .collect();
        let init: String = words
            .iter()
            .enumerate()
            .map(|(a, w)| format!("    mem[{abits}'b{a:b}] = {width}'b{w:b};\n"))
            .collect();
        let v = format!(
            "module m(clock, a, d);\n    input wire clock;\n    input wire [{}:0] a;\n\
             \x20   output reg [{}:0] d;\n    reg[{}:0] mem [{}:0];\n    initial begin\n{init}\
             \x20   end\n    initial begin\n    d = 0;\n    end\n\
             \x20   always @(posedge clock) d <= mem[a];\nendmodule\n",
            abits - 1,
            width - 1,
            width - 1,
            n - 1
        );
        (v, words)
    }

    #[test]
    fn literals_read_in_every_base() {
        let bits = |v: u128, w: usize| (0..w).map(|i| v >> i & 1 == 1).collect::<Vec<_>>();
        assert_eq!(literal_bits("13'b100000001011"), Some(bits(0x80b, 13)));
        assert_eq!(
            literal_bits("64'h70eb2374130ac586"),
            Some(bits(0x70eb2374130ac586, 64))
        );
        assert_eq!(literal_bits("10'd300"), Some(bits(300, 10)));
        assert_eq!(literal_bits("6'o17"), Some(bits(0o17, 6)));
        assert_eq!(literal_bits("4'sh_f"), Some(bits(15, 4)));
        assert_eq!(
            literal_bits("3'hf"),
            Some(bits(7, 3)),
            "truncated to the width"
        );
        for bad in ["4'bx01", "12", "0'b0", "8'q1", "8'h"] {
            assert_eq!(literal_bits(bad), None, "{bad}");
        }
        assert_eq!(hex(&bits(0x80b, 13)), "80b");
        assert_eq!(hex(&bits(0, 9)), "0");
    }

    #[test]
    fn packed_memory_contents_round_trip_and_read_back_in_icarus() {
        let (v, words) = rom(600, 13, 10);
        let s = pack_memory_inits(&v);
        // 600 words: runs of 64 (9 of them) and 24, one loop variable; the block that
        // is not a memory's is kept
        assert_eq!(
            s.matches("initial for (mem$i = 0; mem$i < 64;").count(),
            9,
            "{s}"
        );
        assert_eq!(s.matches("initial for (mem$i = 0; mem$i < 24;").count(), 1);
        assert_eq!(s.matches("integer mem$i;").count(), 1);
        assert!(s.contains("localparam [311:0] mem$576 = 312'h"));
        assert!(s.contains("    initial begin\n    d = 0;\n    end\n"));
        assert!(s.len() * 3 < v.len(), "{} of {} bytes", s.len(), v.len());
        assert_eq!(pack_memory_inits(&s), s, "a second pass changes nothing");
        let want: HashMap<(String, u64), Vec<bool>> = words
            .iter()
            .enumerate()
            .map(|(a, &w)| {
                (
                    ("mem".into(), a as u64),
                    (0..13).map(|i| w >> i & 1 == 1).collect(),
                )
            })
            .collect();
        assert_eq!(memory_contents(&v), want);
        assert_eq!(memory_contents(&s), want);
        // and a simulator reads the same words back
        // (d is sampled just after the edge that reads address a)
        let vectors: Vec<Vec<u128>> = (0..600).map(|a| vec![a as u128]).collect();
        let rows = iverilog_vectors(
            "packed_rom",
            &s.replacen("module m(", "module top(", 1),
            Some("clock"),
            &[("a", 10)],
            &[("d", 13)],
            &vectors,
        )
        .unwrap();
        assert_eq!(rows.len(), 600);
        for (a, row) in rows.iter().enumerate() {
            assert_eq!(row[0], words[a], "address {a}");
        }
    }

    #[test]
    fn packed_memory_still_maps_to_block_ram_with_the_same_cells() {
        let (v, _) = rom(1024, 16, 10);
        let s = pack_memory_inits(&v);
        let before = ice40_stats("rom_words", &v, "m").unwrap();
        let after = ice40_stats("rom_packed", &s, "m").unwrap();
        assert_eq!(before.bram, 4, "{before}");
        assert_eq!(before, after);
    }

    #[test]
    fn identical_module_bodies_are_written_once() {
        let leaf = |n: &str, w: usize| {
            format!("module {n}(d,q,clock);\n    input wire [{w}:0] d;\n    output reg [{w}:0] q;\n\
                     \x20   input wire clock;\n    always @(posedge clock) q <= d;\nendmodule // {n}\n\n")
        };
        let pair = |n: &str, a: &str, b: &str| {
            format!(
                "module {n}(d,q,clock);\n    input wire [3:0] d;\n    output wire [3:0] q;\n\
                     \x20   input wire clock;\n    wire [3:0] t;\n\
                     \x20   {a} x(.d(d), .q(t), .clock(clock));\n\
                     \x20   {b} y(.d(t), .q(q), .clock(clock));\nendmodule // {n}\n\n"
            )
        };
        let v = format!(
            "// head\n{}{}{}{}{}{}{}{}",
            "module r(d,q,clock);\n    input wire [3:0] d;\n    output wire [3:0] q;\n\
             \x20   input wire clock;\n    wire [3:0] t;\n\
             \x20   r$p u(.d(d), .q(t), .clock(clock));\n\
             \x20   r$q v(.d(t), .q(q), .clock(clock));\nendmodule // r\n\n",
            pair("r$p", "r$p$x", "r$p$y"),
            leaf("r$p$x", 3),
            leaf("r$p$y", 3),
            pair("r$q", "r$q$x", "r$q$y"),
            leaf("r$q$x", 3),
            leaf("r$q$y", 3),
            leaf("r$unused", 2),
        );
        let d = dedup_modules(&v, "r");
        let modules: Vec<&str> = d.lines().filter(|l| l.starts_with("module ")).collect();
        // the four equal leaves are one module, the two equal pairs are one module
        assert_eq!(
            modules,
            [
                "module r(d,q,clock);",
                "module r$p(d,q,clock);",
                "module r$p$x(d,q,clock);",
                "module r$unused(d,q,clock);"
            ]
        );
        assert!(d.starts_with("// head\nmodule r("));
        assert!(d.contains("    r$p u(") && d.contains("    r$p v("), "{d}");
        assert!(
            d.contains("    r$p$x x(") && d.contains("    r$p$x y("),
            "{d}"
        );
        assert!(
            d.contains("endmodule // r$p$x\n") && !d.contains("r$q"),
            "{d}"
        );
        assert_eq!(dedup_modules(&d, "r"), d, "a second pass changes nothing");
        // same logic in yosys
        assert_eq!(
            ice40_stats("dedup_before", &v, "r").unwrap(),
            ice40_stats("dedup_after", &d, "r").unwrap()
        );
    }

    #[test]
    fn a_rust_hdl_tree_dedups_to_the_same_hardware() {
        let mut pe = MvuPe::<8, 4, 7, 8>::new(72, false);
        pe.connect_all();
        let mut defines = ModuleDefines::default();
        pe.accept("pe", &mut defines);
        let raw = defines.defines();
        let d = module_tree(&pe, "pe").unwrap();
        let count = |t: &str| t.lines().filter(|l| l.starts_with("module ")).count();
        assert!(
            count(&d) < count(&raw),
            "{} of {} modules",
            count(&d),
            count(&raw)
        );
        assert_eq!(
            ice40_stats("pe_raw", &raw, "pe").unwrap(),
            ice40_stats("pe_dedup", &d, "pe").unwrap()
        );
    }

    #[test]
    fn two_layers_share_no_module_names_and_wire_up_in_a_structural_top() {
        let mut a = MvuPe::<8, 4, 7, 8>::new(72, false);
        a.connect_all();
        let mut b = MvuPe::<4, 3, 5, 6>::new(16, false);
        b.connect_all();
        let va = module_tree(&a, "l0_pe0").unwrap();
        let vb = module_tree(&b, "l1_pe0").unwrap();
        assert!(va.contains("module l0_pe0(") && vb.contains("module l1_pe0("));
        assert!(!va.contains("module top") && !vb.contains("module l0_"));
        // a hand-written structural top instantiating both, as bnnforge's would
        let top = "module top(clock, x, w, v, y);\n\
                   input wire clock; input wire [7:0] x; input wire [7:0] w; input wire v;\n\
                   output wire [5:0] y;\n\
                   wire [7:0] y0; wire v0;\n\
                   l0_pe0 p0(.clock(clock), .in_valid(v), .first(v), .last(v), .x(x), .w(w),\n\
                             .out_valid(v0), .y(y0));\n\
                   l1_pe0 p1(.clock(clock), .in_valid(v0), .first(v0), .last(v0),\n\
                             .x(y0[3:0]), .w(y0[7:4]), .out_valid(), .y(y));\n\
                   endmodule\n";
        let all = format!("{va}\n{vb}\n{top}");
        let s = ice40_stats("two_layers", &all, "top").unwrap();
        assert!(s.dff > 0 && s.lut4 > 0, "{s}");
    }
}
