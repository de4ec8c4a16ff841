#!/usr/bin/env bash
# Metadata at scale (issue 16, item 5): one node of OBJECTS small objects,
# then what an operator meets with that many:
#   list     full ListObjectsV2 listings (keys/s, server CPU)
#   restart  SIGTERM, start again, healthy (seconds)
#   join     a snapshot of every shard, then a second node joins and
#            installs them: its peak RSS, node 1's peak RSS while it builds
#            and sends, how long until the new node is healthy, and a full
#            listing through the new node (every key arrived; it retries a
#            503, as S3 clients do, since the groups may be handing their
#            leadership over to the new member meanwhile)
#
#   bench/metadata-scale.sh [WORK_DIR]       OBJECTS=10000000 by default
#
# The objects are 1-byte PutObjects (embedded in their manifests), written
# by `shoal-bench list`'s prepare phase at 32 connections; 10 million take
# ~17 minutes on 2 cores and ~3 GB of metadata per node. PHASES picks
# phases ("seed list restart join"); a run without "seed" reuses WORK_DIR.
set -uo pipefail

BIN=${SHOAL_BIN_DIR:-/var/tmp/shoal-target/release}
WORK=${1:-/var/tmp/shoal-metadata-scale}
OBJECTS=${OBJECTS:-10000000}
PHASES=${PHASES:-"seed list restart join"}
BUCKET=${BUCKET:-scale}
BASE=${BASE:-27000} # below the ephemeral port range; ports BASE .. BASE + 301
export SHOAL_ACCESS_KEY=bench SHOAL_SECRET_KEY=benchsecret

mkdir -p "$WORK"
[ -f "$WORK/secret" ] || head -c 32 /dev/urandom >"$WORK/secret"
# Node 1 keeps no log behind a snapshot, so the joining node always
# installs one, however few objects there are.
node1=(--data-dir "$WORK/n1" --node-id 1 --peer-addr 127.0.0.1:$BASE --cluster-secret-file "$WORK/secret"
       --s3-addr 127.0.0.1:$((BASE + 100)) --admin-addr 127.0.0.1:$((BASE + 101)) --snapshot-logs-kept 0)
node2=(--data-dir "$WORK/n2" --node-id 2 --peer-addr 127.0.0.1:$((BASE + 200)) --cluster-secret-file "$WORK/secret"
       --s3-addr 127.0.0.1:$((BASE + 300)) --admin-addr 127.0.0.1:$((BASE + 301)) --join 127.0.0.1:$BASE)
ADMIN1=127.0.0.1:$((BASE + 101))
ADMIN2=127.0.0.1:$((BASE + 301))

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; done
}
trap cleanup EXIT

healthy() {
    for _ in $(seq 6000); do curl -sf "http://$1/healthz" >/dev/null && return 0; sleep 0.1; done
    echo "no healthy node at $1" >&2
    exit 1
}
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
start1() { "$BIN/shoal" serve "${node1[@]}" >>"$WORK/n1.log" 2>&1 & P1=$!; pids+=("$P1"); healthy "$ADMIN1"; }
stop1() { kill -TERM "$P1"; while kill -0 "$P1" 2>/dev/null; do sleep 0.05; done; }
list() { # endpoint count label
    "$BIN/shoal-bench" list --endpoint "http://$1" --bucket "$BUCKET" --objects "$OBJECTS" --size 1 \
        --count "$2" --concurrency 1 --no-prepare --retries 3 --json "$WORK/$3.json" >"$WORK/$3.out" 2>&1
    grep -E "full listings|server:" "$WORK/$3.out"
}

start1
if [[ $PHASES == *seed* ]]; then
    t=$(now)
    "$BIN/shoal-bench" list --endpoint "http://127.0.0.1:$((BASE + 100))" --bucket "$BUCKET" --objects "$OBJECTS" \
        --size 1 --count 1 --concurrency 1 --server-metrics "http://$ADMIN1/metrics" >"$WORK/seed.out" 2>&1
    echo "== seed: $OBJECTS objects in $(since "$t") s, node 1 peak RSS $(peak_rss_mib "$P1") MiB"
    echo "   snapshots built meanwhile: $(grep -c 'built raft snapshot' "$WORK/n1.log")"
    du -sh "$WORK"/n1/shard-*/meta
fi
if [[ $PHASES == *list* ]]; then
    echo "== two full listings through node 1 (--server-metrics)"
    "$BIN/shoal-bench" list --endpoint "http://127.0.0.1:$((BASE + 100))" --bucket "$BUCKET" --objects "$OBJECTS" --size 1 \
        --count 2 --concurrency 1 --no-prepare --server-metrics "http://$ADMIN1/metrics" >"$WORK/list.out" 2>&1
    grep -E "full listings|server:" "$WORK/list.out"
fi
if [[ $PHASES == *restart* ]]; then
    t=$(now); stop1; stopped=$(since "$t")
    t=$(now); start1
    echo "== restart: stopped in $stopped s, started and healthy in $(since "$t") s"
fi
if [[ $PHASES == *join* ]]; then
    stop1; start1 # a fresh process, so its peak RSS covers the build and the send only
    t=$(now)
    SHOAL_ADMIN_ADDR=$ADMIN1 "$BIN/shoal-ctl" snapshot
    echo "== snapshot of every shard: $(since "$t") s"
    t=$(now)
    "$BIN/shoal" serve "${node2[@]}" >"$WORK/n2.log" 2>&1 &
    P2=$!; pids+=("$P2")
    healthy "$ADMIN2"
    echo "== node 2 joined and healthy in $(since "$t") s"
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/n2.log" | grep "installed raft snapshot" | sed 's/ snapshot={.*}} / /'
    echo "   peak RSS: node 2 $(peak_rss_mib "$P2") MiB, node 1 $(peak_rss_mib "$P1") MiB"
    du -sh "$WORK"/n2/shard-*/meta
    echo "== a full listing through node 2"
    list "127.0.0.1:$((BASE + 300))" 1 list-node2
fi
