//! `bnnforge demo` (the README's main job) reproduces the published accuracies of the
//! shipped networks on the full MNIST test set.

use std::process::Command;

#[test]
fn demo_reproduces_published_accuracy() {
    let out = Command::new(env!("CARGO_BIN_EXE_bnnforge"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for (net, figure) in [
        ("lfc-w1a1", "9840/10000"),
        ("lfc-w1a2", "9849/10000"),
        ("tfc-w1a1", "9296/10000"),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(net))
            .unwrap_or_else(|| panic!("no line for {net}:\n{text}"));
        assert!(
            line.contains(figure),
            "{net}: expected {figure}, got {line}"
        );
    }
    // the hardware half: the accelerator's Verilog agrees with the model on every image
    let verilator = text
        .lines()
        .find(|l| l.trim_start().starts_with("Verilator:"))
        .unwrap_or_else(|| panic!("no co-simulation line:\n{text}"));
    assert!(
        verilator.contains("images through the Verilog, 0 mismatches"),
        "{verilator}"
    );
    // the board half: MNIST images over the simulated board's UART, checked
    let board = text
        .lines()
        .find(|l| l.contains("over the simulated UART"))
        .unwrap_or_else(|| panic!("no simulated board line:\n{text}"));
    assert!(board.contains("0 mismatches against the model"), "{board}");
    println!("{text}");
}
