#!/usr/bin/env bash
# Runs every Shoal test: formatting and lints, the Rust unit and integration
# tests, then the end-to-end suite (real `shoal` binary, boto3 and awscli).
#
# Needs: the Rust toolchain, clang + libclang-dev (rocksdb bindings),
# python3 with boto3, awscli and pytest, rclone and s3cmd. `.ci/run` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/shoal-target}"

cargo fmt --all --check
# The module graph has no circles; no function in shard/ or src/s3/ runs
# over 120 lines.
python3 tests/lint/import_circles.py
python3 tests/lint/long_functions.py
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
cargo build --release --workspace --bins
# The end-to-end suite injects faults (FAILPOINTS), so its node binary is
# built with the fault points compiled in.
cargo build --release -p shoal --bin shoal --features failpoints

# The suites run their own links to these binaries: the README test's
# `cargo install` rebuilds release/shoal (without the fault points) in
# the same target directory while the suite runs.
suite_bin="$CARGO_TARGET_DIR/suite-bin"
mkdir -p "$suite_bin"
ln -f "$CARGO_TARGET_DIR/release/shoal" "$CARGO_TARGET_DIR/release/shoal-ctl" "$suite_bin/"
export SHOAL_BIN="$suite_bin/shoal"
export SHOAL_BENCH_BIN="$CARGO_TARGET_DIR/release/shoal-bench"
python3 -m pytest tests/e2e -v -p no:cacheprovider "$@"
# A short slice of the fault suite (tests/faults/run.sh runs it longer).
python3 -m pytest tests/faults -v -s -p no:cacheprovider
