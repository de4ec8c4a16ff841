#!/usr/bin/env bash
# The fault suite, longer than CI's slice: kill -9 loops, crash points and
# power cuts under mixed load, leader kills and stops, partitions of 3 and
# 5 nodes.
# Expects the binaries tests/run.sh builds.
#
#   bash tests/faults/run.sh                 # 20 trials each (the issue's figures)
#   SHOAL_FAULT_TRIALS=5 bash tests/faults/run.sh -k kill9
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/shoal-target}"
export SHOAL_BIN="${SHOAL_BIN:-$CARGO_TARGET_DIR/release/shoal}"
export SHOAL_FAULT_TRIALS="${SHOAL_FAULT_TRIALS:-20}"
python3 -m pytest tests/faults -v -s -p no:cacheprovider "$@"
