#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder that takes bytes from outside
# (cargo-fuzz and libFuzzer; needs the nightly toolchain). The targets call
# the entry points in shard/src/fuzz_targets.rs and src/s3/fuzz_targets.rs,
# which stable builds run as property tests, so without nightly nothing is
# left unchecked: this script then says so and exits 0.
#
#   bash fuzz/run.sh                      # each target to 10 million executions
#   FUZZ_SECONDS=30 bash fuzz/run.sh      # each target for 30 s (what CI runs)
#   FUZZ_RUNS=1000000 bash fuzz/run.sh sigv4 peer_frame
#   FUZZ_MERGE=1 bash fuzz/run.sh         # afterwards, fold what was found
#                                         # into the committed corpora
#
# New inputs go to $FUZZ_WORK (outside the clone); fuzz/corpus/<target>
# holds the committed, minimised corpus each run starts from. A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(aws_chunked range_header xml_bodies sigv4 blob_record peer_frame)
[ $# -gt 0 ] && TARGETS=("$@")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/shoal-target}"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/shoal-fuzz-target}"
FUZZ_WORK="${FUZZ_WORK:-/var/tmp/shoal-fuzz-work}"
FUZZ_RUNS="${FUZZ_RUNS:-10000000}"
FUZZ_SECONDS="${FUZZ_SECONDS:-0}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain here; the targets ran as property tests in cargo test"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# rocksdb's C++ is not what is fuzzed: link the library the normal build
# made instead of compiling it again (~12 min on 2 cores). Only the fuzz
# build sees these: set for a normal build, they would make it rerun
# rocksdb's build script (and compile rocksdb again) the next time.
rocksdb_env=()
if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
    built=$(ls -t "$CARGO_TARGET_DIR"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
    if [ -n "$built" ]; then
        rocksdb_env=(ROCKSDB_LIB_DIR="$(dirname "$built")" ROCKSDB_STATIC=1)
    fi
fi

# The seed inputs are the property tests' own (one list, two consumers).
export SHOAL_FUZZ_SEED_DIR="$PWD/fuzz/corpus"
cargo test --release -q -p shoal-shard --lib fuzz_targets::tests::write_seed_corpus -- --ignored >/dev/null
cargo test --release -q -p shoal --lib s3::fuzz_targets::tests::write_seed_corpus -- --ignored >/dev/null

fuzz() {
    env "${rocksdb_env[@]}" cargo +nightly fuzz "$1" --sanitizer none --target-dir "$FUZZ_TARGET_DIR" --fuzz-dir fuzz "${@:2}"
}

fuzz build
summary=()
for target in "${TARGETS[@]}"; do
    mkdir -p "$FUZZ_WORK/$target" "fuzz/corpus/$target"
    limit=(-runs="$FUZZ_RUNS")
    [ "$FUZZ_SECONDS" != 0 ] && limit=(-max_total_time="$FUZZ_SECONDS")
    max_len=8192
    [ "$target" = blob_record ] && max_len=20000
    log="$FUZZ_WORK/$target.log"
    fuzz run "$target" "$FUZZ_WORK/$target" "fuzz/corpus/$target" -- \
        "${limit[@]}" -max_len="$max_len" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1 || { tail -40 "$log"; echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)"; exit 1; }
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    summary+=("$target: $runs executions ($rate/s), 0 crashes")
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        mkdir -p "$FUZZ_WORK/merged-$target"
        fuzz run "$target" "$FUZZ_WORK/merged-$target" "fuzz/corpus/$target" "$FUZZ_WORK/$target" -- \
            -merge=1 -max_len="$max_len" >/dev/null 2>&1
        rm -rf "fuzz/corpus/$target" && mv "$FUZZ_WORK/merged-$target" "fuzz/corpus/$target"
    fi
done
printf 'fuzz: %s\n' "${summary[@]}"
