#!/usr/bin/env bash
# Installs what bnnforge's tests and flows need from Debian, idempotently: nothing is
# fetched when everything is already there.
#   verilator, g++, zlib1g-dev  co-simulation (zlib for FST waveforms)
#   yosys, nextpnr-ice40, fpga-icestorm, iverilog  synthesis, place and route, checks
set -euo pipefail
packages=(verilator g++ zlib1g-dev yosys nextpnr-ice40 fpga-icestorm iverilog)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all present (${packages[*]})"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
