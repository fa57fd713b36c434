#!/usr/bin/env python3
"""The accuracy x hardware-cost table of the trained MNIST networks (stdlib only).

    scripts/train/table.py [--yosys] [--mhz 12] [MODEL.yaml ...]

Per network (default: models/mnist-*.yaml): MNIST test accuracy of `bnnforge infer` on
the 10,000 test images, binary MACs and parameter bits (`bnnforge info`), cycles per
frame at the default folding and at `--device up5k` (`bnnforge build`), the build's
LUT4/DFF/BRAM estimate, frames/s at --mhz; with --yosys also yosys synth_ice40's
LUT4/DFF/BRAM of the default build (minutes per network).
"""

import argparse
import glob
import gzip
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def write_npy(path, descr, shape, data):
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


def run(args, what):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{what}: {(r.stderr or r.stdout).strip().splitlines()[-1]}")
    return r.stdout


def yosys_stats(build_dir, log):
    m = json.load(open(os.path.join(build_dir, "manifest.json")))
    files = " ".join(os.path.join(build_dir, f) for f in m["verilog"])
    script = f"read_verilog {files}; synth_ice40 -top {m['top']}; stat"
    r = subprocess.run(["nice", "-n", "10", "yosys", "-q", "-p", script, "-l", log],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"yosys failed (log {log})"
    text = open(log).read().split("Printing statistics")[-1]
    # "SB_LUT4  4789" (yosys 0.23) or "4789  SB_LUT4" (newer)
    cells = {k: int(v) for k, v in re.findall(r"^[ \t]+(SB_\w+)[ \t]+(\d+)$", text, re.M)} or {
        k: int(v) for v, k in re.findall(r"^[ \t]+(\d+)[ \t]+(SB_\w+)$", text, re.M)
    }
    dff = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
    return f"{cells.get('SB_LUT4', 0)} / {dff} / {cells.get('SB_RAM40_4K', 0)}"


def synth_stats(bf, model, out):
    """`bnnforge synth` on the smallest ULX3S the design fits: (board, LUT4/FF/EBR, Fmax,
    frames/s at the board clock when timing is met)."""
    for board in ("ulx3s-12f", "ulx3s-85f"):
        d = f"{out}-{board}"
        r = subprocess.run(["nice", "-n", "10", bf, "synth", model, "--board", board, "--seeds", "1", "--out", d],
                           capture_output=True, text=True)
        report = os.path.join(d, "synth.json")
        if os.path.isfile(report):
            break
        if "does not fit" not in r.stderr:
            return board, "synth failed: " + (r.stderr or r.stdout).strip().splitlines()[-1], "-", "-"
    else:
        return "-", "does not fit the 85F", "-", "-"
    j = json.load(open(report))
    u = j["utilisation"]
    cells = f"{u['LUT4']['used']} / {u['FF']['used']} / {u['BRAM (18 kbit EBR)']['used']}"
    clock = j["clock"]["reached_mhz"]
    fps = f"{j['frames_per_s']:,.0f} at {clock:g} MHz" if j["timing_met"] else "timing not met"
    return board, cells, f"{j['fmax_mhz']['best']:.1f} MHz", fps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--yosys", action="store_true", help="also synthesise each default build with yosys")
    ap.add_argument("--synth", action="store_true", help="also place and route each on a ULX3S (bnnforge synth)")
    ap.add_argument("--mhz", type=float, default=12.0, help="clock for frames/s (iCEBreaker: 12 MHz)")
    ap.add_argument("--bnnforge", default=os.path.join(REPO, "target", "release", "bnnforge"))
    args = ap.parse_args()
    models = args.models or sorted(glob.glob(os.path.join(REPO, "models", "mnist-*.yaml")))
    bf = args.bnnforge

    with gzip.open(os.path.join(REPO, "data/mnist/t10k-images-idx3-ubyte.gz")) as f:
        images = f.read()[16:]
    with gzip.open(os.path.join(REPO, "data/mnist/t10k-labels-idx1-ubyte.gz")) as f:
        labels = f.read()[8:]
    n = len(labels)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        x, y, lab = (os.path.join(tmp, f) for f in ("x.npy", "y.npy", "l.npy"))
        write_npy(x, "|u1", (n, 1, 28, 28), images)
        write_npy(lab, "|u1", (n,), labels)
        for model in models:
            name = os.path.basename(model)[:-5]
            acc = re.search(r"accuracy: (\d+)/(\d+)", run([bf, "infer", model, "--input", x, "--output", y,
                                                           "--labels", lab], f"{name}: bnnforge infer"))
            info = run([bf, "info", model], f"{name}: bnnforge info")
            total = re.search(r"total: (\d+) MACs per frame \((\d+) binary\), (\d+) parameter bits", info)
            d = os.path.join(tmp, name)
            run([bf, "build", model, "--out", d], f"{name}: bnnforge build")
            m = json.load(open(os.path.join(d, "manifest.json")))
            est = m["estimate"]["total"]
            r = subprocess.run([bf, "build", model, "--out", d + "-up5k", "--device", "up5k"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                up = json.load(open(os.path.join(d + "-up5k", "manifest.json")))
                ue = up["estimate"]["total"]
                up5k = f"{up['cycles_per_frame']} ({ue['lut4']} LUT4, {ue['bram']} BRAM)"
                fps_up = f"{args.mhz * 1e6 / up['cycles_per_frame']:,.0f}"
            else:
                sl = re.search(r"slowest \((\d+) cycles per frame\) is estimated at (\d+) LUT4 and (\d+) BRAM",
                               r.stderr)
                up5k = f"does not fit (slowest: {sl.group(2)} LUT4, {sl.group(3)} BRAM)" if sl else "does not fit"
                fps_up = "-"
            cyc = m["cycles_per_frame"]
            row = {
                "network": name,
                "MNIST test": f"{int(acc.group(1)) / int(acc.group(2)) * 100:.2f} %",
                "binary MACs": total.group(2),
                "all MACs": total.group(1),
                "param bits": total.group(3),
                "cycles/frame": str(cyc),
                "est. LUT4/DFF/BRAM": f"{est['lut4']} / {est['dff']} / {est['bram']}",
                f"frames/s @{args.mhz:g} MHz": f"{args.mhz * 1e6 / cyc:,.0f}",
                "UP5K cycles/frame": up5k,
                f"UP5K frames/s": fps_up,
            }
            if args.yosys:
                row["yosys LUT4/DFF/BRAM"] = yosys_stats(d, os.path.join(tmp, name + "-yosys.log"))
            if args.synth:
                board, cells, fmax, fps = synth_stats(bf, model, os.path.join(tmp, name + "-synth"))
                row["board (+ board core)"] = board
                row["nextpnr LUT4/FF/EBR"] = cells
                row["Fmax"] = fmax
                row["frames/s (board)"] = fps
            rows.append(row)
            print(f"{name}: done", file=sys.stderr, flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(r[k] for k in keys) + " |")


if __name__ == "__main__":
    main()
