#!/bin/sh
# Loads a bitstream onto an ULX3S with openFPGALoader (as `bnnforge flash --board ulx3s-85f`).
# usage: scripts/flash-ulx3s.sh DIR|BITSTREAM.bit [--flash]
#   DIR: a `bnnforge synth` folder holding one .bit; default: SRAM (volatile, `openFPGALoader -b ulx3s`),
#   --flash: write the configuration flash.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 DIR|BITSTREAM.bit [--flash]" >&2
    exit 2
fi
bit=$1
if [ -d "$bit" ]; then

    n=$(ls "$bit"/*.bit 2>/dev/null | wc -l)
    if [ "$n" -ne 1 ]; then
        echo "error: $bit: $n .bit bitstreams (expected one; run bnnforge synth --board ulx3s-85f)" >&2
        exit 2
    fi
    bit=$(ls "$bit"/*.bit)
fi
if [ ! -f "$bit" ]; then
    echo "error: $bit: no such bitstream" >&2
    exit 2
fi
mode=
what=SRAM
limit=8
case "${2:-}" in
    --flash) mode=-f what=flash limit=120 ;;
    --sram | "") ;;
    *) echo "error: unknown option $2 (--sram, --flash)" >&2; exit 2 ;;
esac
if ! command -v openFPGALoader >/dev/null 2>&1; then
    echo "error: openFPGALoader: not found on PATH (install the openfpgaloader package)" >&2
    exit 1
fi
log=$(mktemp "${TMPDIR:-/tmp}/flash-ulx3s.XXXXXX.log")
# openFPGALoader reports a missing board at once; the timeout guards a wedged USB device
if timeout $limit openFPGALoader -b ulx3s $mode "$bit" >"$log" 2>&1; then
    rm -f "$log"
    echo "$bit loaded into the ULX3S's $what"
else
    line=$(grep -v '^ABORT\.$' "$log" | grep -i -m1 -E "error|can't|cannot|unable|fail" || tail -n1 "$log")
    echo "error: openFPGALoader: $line (log $log)" >&2
    exit 1
fi
