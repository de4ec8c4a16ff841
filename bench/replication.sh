#!/usr/bin/env bash
# Replication figures, all in one run so they compare (docs/benchmarks.md):
#
#   1. 64 MiB PUTs at concurrency 16 on a single node, then on a 3-node
#      cluster in offload mode and in inline mode (`--blob-offload false`):
#      throughput, and raft log bytes the leader appended per GiB PUT.
#   2. The raft snapshot of 10,000 small objects (`shoal-ctl snapshot`).
#
# Every node runs on this host: node n gets its own CORES CPUs in turn
# (wrapping around the machine's), the single node the first CORES, and
# all share one disk (and, unless CLIENT_CPUS pins it elsewhere, the
# client's CPUs). Compare the modes with each other, not with a real
# deployment. Needs a release build of shoal, shoal-ctl and shoal-bench.
#
# usage: bench/replication.sh [work dir, default /var/tmp/shoal-replication]
#        CORES=1 SHARDS=2 COUNT=32 SMALL=10000 CLIENT_CPUS=12-15 bench/replication.sh
set -euo pipefail

BIN=${SHOAL_BIN_DIR:-/var/tmp/shoal-target/release}
WORK=${1:-/var/tmp/shoal-replication}
CORES=${CORES:-1}    # --cores of each node
SHARDS=${SHARDS:-$CORES}
COUNT=${COUNT:-32}   # 64 MiB objects per run (2 GiB at 32)
SMALL=${SMALL:-10000}
CLIENT=()            # the load generator, pinned when CLIENT_CPUS is set
if [ -n "${CLIENT_CPUS:-}" ]; then CLIENT=(taskset -c "$CLIENT_CPUS"); fi
BASE=21000           # below the ephemeral port range
export SHOAL_ACCESS_KEY=bench SHOAL_SECRET_KEY=benchsecret

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # The nodes die with their shoal-ctl; wait until their ports are free.
    while pgrep -f "shoal serve --data-dir $WORK" >/dev/null; do sleep 0.2; done
}
trap cleanup EXIT

# Sum of a metric over every series at an admin address.
metric() {
    curl -sf "http://$1/metrics" | awk -v name="$2" '$1 ~ "^"name"({|$)" {s += $2} END {printf "%.0f\n", s}'
}

wait_healthy() {
    for _ in $(seq 600); do
        curl -sf "http://$1/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "no healthy node at $1" >&2
    exit 1
}

# put LABEL S3_PORT ADMIN_PORT: the PUT run and raft bytes per GiB.
put() {
    local before after json
    before=$(metric "127.0.0.1:$3" shoal_raft_log_appended_bytes_total)
    json=$("${CLIENT[@]}" "$BIN/shoal-bench" put --endpoint "http://127.0.0.1:$2" --bucket bench \
        --size 64MiB --concurrency 16 --count "$COUNT" --json - 2>/dev/null)
    after=$(metric "127.0.0.1:$3" shoal_raft_log_appended_bytes_total)
    python3 - "$1" "$before" "$after" "$COUNT" "$json" <<'EOF'
import json, sys
label, before, after, count, result = sys.argv[1:]
step = json.loads(result)["steps"][0]
gib = int(count) * 64 / 1024
failed = step["requests"] - step["ok"]
print(f"{label:<26} {step['throughput']['bytes_per_s'] / 2**20:6.0f} MiB/s"
      f"   raft log {(int(after) - int(before)) / gib:15,.0f} B per GiB   failed {failed}")
EOF
}

rm -rf "$WORK"
mkdir -p "$WORK"

echo "== single node (--cores $CORES --shards $SHARDS)"
"$BIN/shoal" serve --data-dir "$WORK/single" --cores "$CORES" --shards "$SHARDS" \
    --s3-addr 127.0.0.1:$BASE --admin-addr 127.0.0.1:$((BASE + 1)) >"$WORK/single.log" 2>&1 &
pids+=($!)
wait_healthy 127.0.0.1:$((BASE + 1))
put "single node" $BASE $((BASE + 1))
cleanup; pids=(); rm -rf "$WORK/single"

for offload in true false; do
    echo "== 3 nodes, --blob-offload $offload (--cores $CORES each)"
    "$BIN/shoal-ctl" local-cluster --nodes 3 --cores "$CORES" --shards "$SHARDS" --base-port $BASE \
        --dir "$WORK/cluster-$offload" --blob-offload "$offload" >"$WORK/cluster-$offload.out" 2>&1 &
    pids+=($!)
    for n in 1 2 3; do wait_healthy 127.0.0.1:$((BASE + 10 * (n - 1) + 1)); done
    sleep 3 # every group elects and learns its members' capabilities
    SHOAL_ADMIN_ADDR=127.0.0.1:$((BASE + 1)) "$BIN/shoal-ctl" cluster
    if [ "$offload" = true ]; then
        echo "== raft snapshot of $SMALL objects of 1 KiB (3 nodes, offload)"
        "${CLIENT[@]}" "$BIN/shoal-bench" put --endpoint "http://127.0.0.1:$BASE" --bucket small \
            --size 1KiB --concurrency 64 --count "$SMALL" >/dev/null 2>&1
        SHOAL_ADMIN_ADDR=127.0.0.1:$((BASE + 1)) "$BIN/shoal-ctl" snapshot
    fi
    put "3 nodes, offload=$offload" $BASE $((BASE + 1))
    cleanup; pids=(); rm -rf "$WORK/cluster-$offload"
done
