#!/usr/bin/env bash
# The test command of the README: installs the tools, then runs every test of the
# workspace (model, hardware blocks, co-simulation, command line).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --tests
cargo test --workspace "$@"
