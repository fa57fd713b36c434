#!/bin/sh
# Loads a bitstream onto an iCEBreaker with iceprog (as `bnnforge flash --board icebreaker`).
# usage: scripts/flash-icebreaker.sh DIR|BITSTREAM.bin [--flash]
#   DIR: a `bnnforge synth` folder holding one .bin; default: SRAM (volatile, `iceprog -S`),
#   --flash: write the configuration flash.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 DIR|BITSTREAM.bin [--flash]" >&2
    exit 2
fi
bit=$1
if [ -d "$bit" ]; then

    n=$(ls "$bit"/*.bin 2>/dev/null | wc -l)
    if [ "$n" -ne 1 ]; then
        echo "error: $bit: $n .bin bitstreams (expected one; run bnnforge synth --board icebreaker)" >&2
        exit 2
    fi
    bit=$(ls "$bit"/*.bin)
fi
if [ ! -f "$bit" ]; then
    echo "error: $bit: no such bitstream" >&2
    exit 2
fi
mode=-S
what=SRAM
limit=8
case "${2:-}" in
    --flash) mode= what=flash limit=120 ;;
    --sram | "") ;;
    *) echo "error: unknown option $2 (--sram, --flash)" >&2; exit 2 ;;
esac
if ! command -v iceprog >/dev/null 2>&1; then
    echo "error: iceprog: not found on PATH (install the fpga-icestorm package)" >&2
    exit 1
fi
log=$(mktemp "${TMPDIR:-/tmp}/flash-icebreaker.XXXXXX.log")
# iceprog reports a missing board at once; the timeout guards a wedged USB device
if timeout $limit iceprog $mode "$bit" >"$log" 2>&1; then
    rm -f "$log"
    echo "$bit loaded into the iCEBreaker's $what"
else
    line=$(grep -v '^ABORT\.$' "$log" | grep -i -m1 -E "error|can't|cannot|unable|fail" || tail -n1 "$log")
    echo "error: iceprog: $line (log $log)" >&2
    exit 1
fi
