//! `bnnforge flash`: a bitstream onto a board with the board's programmer (from the
//! board table): `iceprog` for the iCEBreaker, `openFPGALoader -b ulx3s` for the ULX3S.
//! SRAM (volatile) unless `--flash`.

use bnnforge_hdl::boards::{board, Board, Family};
use bnnforge_model::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the programmer may take before it is stopped: loading SRAM takes about a
/// second; a missing board is reported at once.
const SRAM_TIMEOUT: Duration = Duration::from_secs(8);
/// Writing flash (erase, program, verify) takes longer.
const FLASH_TIMEOUT: Duration = Duration::from_secs(120);

/// The bitstream extension of a family.
fn extension(b: &Board) -> &'static str {
    match b.family {
        Family::Ice40 => "bin",
        Family::Ecp5 => "bit",
    }
}

/// `DIR/synth.json` as written by `bnnforge synth`, when there is one.
fn synth_json(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("synth.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The board a path was made for: `synth.json`'s when `path` is a synth folder.
pub fn board_of(path: &Path) -> Option<String> {
    synth_json(path)?.get("board")?.as_str().map(str::to_string)
}

/// The bitstream in `path`: the file itself, or a synth folder's (`synth.json` names it;
/// else its one `*.bin`/`*.bit`).
pub fn bitstream(path: &Path, b: &Board) -> Result<PathBuf> {
    let ext = extension(b);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(Error::new("no such bitstream or folder").in_file(path));
    }
    if let Some(v) = synth_json(path) {
        if let Some(other) = v.get("board").and_then(|x| x.as_str()) {
            if other != b.name {
                return Err(
                    Error::new(format!("synthesised for the {other}, not the {}", b.name))
                        .in_file(path),
                );
            }
        }
        if let Some(f) = v["files"]["bitstream"].as_str() {
            let p = path.join(f);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext) && p.is_file())
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::new(format!(
            "no .{ext} bitstream for the {} here (make one with `bnnforge synth MODEL \
             --board {} --out DIR`)",
            b.name, b.name
        ))
        .in_file(path)),
        _ => Err(Error::new(format!(
            "{} .{ext} bitstreams here: give the file",
            found.len()
        ))
        .in_file(path)),
    }
}

/// The line of a programmer's output that says what went wrong.
fn telling_line(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "ABORT.")
        .collect();
    let keys = [
        "error",
        "can't",
        "cannot",
        "unable",
        "fail",
        "not found",
        "no device",
    ];
    lines
        .iter()
        .find(|l| {
            let l = l.to_lowercase();
            keys.iter().any(|k| l.contains(k))
        })
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_else(|| "no output".into())
}

/// Runs the programmer: Ok on success, else the one-line failure (the caller exits 1).
pub fn program(bit: &Path, b: &Board, to_flash: bool) -> std::result::Result<String, String> {
    let p = &b.programmer;
    let mut args: Vec<String> = if to_flash { p.flash_args } else { p.sram_args }
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(bit.display().to_string());
    let log_path = std::env::temp_dir().join(format!(
        "bnnforge-flash-{}-{}.log",
        p.tool,
        std::process::id()
    ));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let mut child = Command::new(p.tool)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| {
            let _ = std::fs::remove_file(&log_path);
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{}: not found on PATH (install the `{}` package)",
                    p.tool, p.package
                )
            } else {
                format!("{}: cannot start: {e}", p.tool)
            }
        })?;
    let limit = if to_flash {
        FLASH_TIMEOUT
    } else {
        SRAM_TIMEOUT
    };
    let t = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{}: {e}", p.tool)),
        }
    };
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let cmd = format!("{} {}", p.tool, args.join(" "));
    match status {
        Some(s) if s.success() => {
            let _ = std::fs::remove_file(&log_path);
            Ok(cmd)
        }
        Some(s) => Err(format!(
            "{}: {} ({s}; `{cmd}`, log {})",
            p.tool,
            telling_line(&text),
            log_path.display()
        )),
        None => Err(format!(
            "{}: no answer in {} s, stopped ({}; `{cmd}`, log {})",
            p.tool,
            limit.as_secs(),
            telling_line(&text),
            log_path.display()
        )),
    }
}

pub fn run(path: &Path, board_name: Option<&str>, to_flash: bool) -> Result<()> {
    let name = match board_name {
        Some(n) => n.to_string(),
        None => board_of(path).unwrap_or_else(|| bnnforge_hdl::boards::BOARDS[0].name.into()),
    };
    let b = board(&name).map_err(Error::new)?;
    let bit = bitstream(path, b)?;
    let t = Instant::now();
    match program(&bit, b, to_flash) {
        Ok(cmd) => {
            println!(
                "{} loaded into the {} of the {} in {:.1} s (`{cmd}`)",
                bit.display(),
                if to_flash { "flash" } else { "SRAM" },
                b.title,
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synth_folder_names_its_bitstream_and_its_board() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.bin"), b"x").unwrap();
        std::fs::write(d.path().join("top.bin"), b"x").unwrap();
        let ib = board("icebreaker").unwrap();
        assert!(bitstream(d.path(), ib)
            .unwrap_err()
            .to_string()
            .contains("2 .bin"));
        std::fs::write(
            d.path().join("synth.json"),
            r#"{"board": "icebreaker", "files": {"bitstream": "top.bin"}}"#,
        )
        .unwrap();
        assert_eq!(bitstream(d.path(), ib).unwrap(), d.path().join("top.bin"));
        assert_eq!(board_of(d.path()).as_deref(), Some("icebreaker"));
        let e = bitstream(d.path(), board("ulx3s-85f").unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("synthesised for the icebreaker"),
            "{e}"
        );
    }

    #[test]
    fn the_telling_line_of_iceprog() {
        let log = "init..\nCan't find iCE FTDI USB device (vendor_id 0x0403, device_id \
                   0x6010 or 0x6014).\nABORT.\n";
        assert!(telling_line(log).starts_with("Can't find iCE FTDI"));
        assert_eq!(telling_line("a\nb\n"), "b");
        assert_eq!(telling_line(""), "no output");
    }
}
