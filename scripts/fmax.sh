#!/usr/bin/env bash
# Fmax of a generated design on the iCE40 UP5K (sg48), accelerator alone, no pins:
# yosys synth_ice40 then nextpnr-ice40 for each seed; prints the cells and, per seed,
# nextpnr's Fmax and its critical path's first and last cells.
# usage: scripts/fmax.sh DESIGN_DIR [FREQ_MHZ] [SEEDS...]   (default 60, seeds 1 2 3)
set -euo pipefail
dir=$1; freq=${2:-60}; shift $(( $# > 1 ? 2 : 1 )) || true
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
top=$(sed -n 's/.*"top": "\(.*\)".*/\1/p' "$dir/manifest.json")
work=${FMAX_WORK:-$(mktemp -d)}
mkdir -p "$work"
yosys -q -l "$work/yosys.log" -p "synth_ice40 -top $top -json $work/top.json; stat" "$dir"/*.v >/dev/null
# the last statistics (the top's): LUT4, carries, every kind of DFF, block RAMs
awk '/Number of cells/ {lut=0; dff=0; ram=0; carry=0}
     $1 == "SB_LUT4" {lut=$2} $1 == "SB_CARRY" {carry=$2} $1 ~ /^SB_DFF/ {dff+=$2}
     $1 == "SB_RAM40_4K" {ram=$2}
     END {printf "yosys: %d LUT4, %d DFF, %d BRAM, %d carry\n", lut, dff, ram, carry}' "$work/yosys.log"
for s in "${seeds[@]}"; do
  nextpnr-ice40 --up5k --package sg48 --json "$work/top.json" --freq "$freq" --seed "$s" \
    --pcf-allow-unconstrained >"$work/pnr$s.log" 2>&1 || true
  # nextpnr exits 1 when the target is missed; no Fmax line at all is a real failure
  fmax=$(grep "Max frequency for clock" "$work/pnr$s.log" | tail -1 | sed 's/.*: \([0-9.]* MHz\).*/\1/')
  [ -n "$fmax" ] || { echo "nextpnr-ice40 failed: $work/pnr$s.log"; exit 1; }
  # the critical path: its first source and last sink
  path=$(sed -n '/Critical path report for clock/,/ns logic/p' "$work/pnr$s.log" |
    grep -E "Source|Sink|ns logic" | sed -n '1p;$p;' | sed 's/Info: *//' | tr -s ' ' | paste -sd '|')
  sink=$(sed -n '/Critical path report for clock/,/ns logic/p' "$work/pnr$s.log" | grep Sink | tail -1 | sed 's/Info: *//')
  echo "seed $s: $fmax  [$path | $sink]  (log $work/pnr$s.log)"
done
