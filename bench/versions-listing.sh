#!/usr/bin/env bash
# Listing current objects next to old versions (issue 18): one node, three
# buckets of OBJECTS keys each, written with 1-byte PUTs at 32 connections:
#   plain        every key written once
#   versioned    versioning enabled, every key written 11 times (the
#                current version and 10 old ones)
#   overwritten  no versioning, every key written 11 times
# then a stop (SIGTERM: the metadata is flushed) and a start, and ROUNDS
# rounds of full ListObjectsV2 listings of each bucket in turn (5 per
# bucket per round). Versions live beside current objects, so `versioned`
# should list like `overwritten`: what both could pay over `plain` is the
# metadata store's overwritten entries, which the first listing that
# steps over many has compacted away (the metrics printed at the end).
#
#   bench/versions-listing.sh [WORK_DIR]      OBJECTS=100000 by default
#   LIST_ONLY=1 bench/versions-listing.sh     lists what an earlier run wrote
#
# Ends with each bucket's median listing time over all rounds and its
# ratio to `plain`'s: rounds vary by 15 % on a shared machine, so compare
# medians of many rounds, not one.
set -euo pipefail

BIN=${SHOAL_BIN_DIR:-/var/tmp/shoal-target/release}
WORK=${1:-/var/tmp/shoal-versions-listing}
OBJECTS=${OBJECTS:-100000}
ROUNDS=${ROUNDS:-7}
PORT=${PORT:-27400}
export SHOAL_ACCESS_KEY=bench SHOAL_SECRET_KEY=benchsecret
ENDPOINT=http://127.0.0.1:$PORT

[ -n "${LIST_ONLY:-}" ] || { rm -rf "$WORK" && mkdir -p "$WORK"; }
start() {
  "$BIN/shoal" serve --data-dir "$WORK/data" --s3-addr "127.0.0.1:$PORT" \
    --admin-addr "127.0.0.1:$((PORT + 1))" >>"$WORK/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$((PORT + 1))/healthz" >/dev/null && return
    sleep 0.1
  done
  echo "the node did not become healthy; see $WORK/node.log" >&2
  exit 1
}
stop() { kill -TERM "$NODE"; wait "$NODE" || true; }
trap 'kill $NODE 2>/dev/null || true' EXIT

bench() { "$BIN/shoal-bench" "$@" --endpoint "$ENDPOINT" --name keys --prefix p/ --size 1B --objects "$OBJECTS"; }
start
if [ -z "${LIST_ONLY:-}" ]; then
python3 - "$ENDPOINT" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="bench",
                  aws_secret_access_key="benchsecret", region_name="us-east-1")
for name in ("plain", "versioned", "overwritten"):
    s3.create_bucket(Bucket=name)
s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
EOF
for bucket in plain versioned overwritten; do
  writes=$((OBJECTS * 11))
  [ "$bucket" = plain ] && writes=$OBJECTS
  echo "$bucket: $writes PUTs"
  bench put --bucket "$bucket" --count "$writes" --concurrency 32 2>&1 | grep -E " ok of "
done
stop
start
fi
for round in $(seq "$ROUNDS"); do
  for bucket in plain versioned overwritten; do
    listed=$(bench list --bucket "$bucket" --no-prepare --count 5 --concurrency 1 2>&1 | grep -E "full listings")
    printf 'round %s %-12s %s\n' "$round" "$bucket" "$listed" | tee -a "$WORK/listings.txt"
  done
done
tail -n $((ROUNDS * 3)) "$WORK/listings.txt" | python3 -c '
import re, statistics, sys
p50 = {}
for line in sys.stdin:
    bucket = line.split()[2]
    p50.setdefault(bucket, []).append(float(re.search(r"p50 ([0-9.]+) ms", line).group(1)))
median = {b: statistics.median(v) for b, v in p50.items()}
base = median["plain"]
for b in sorted(median):
    print(f"{b:<12} median of the rounds p50: {median[b]:.1f} ms, {median[b] / base:.3f} of plain")
'
# What the listings stepped over, and the compactions they asked for.
curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" | grep -E '^shoal_meta_(listing|read_compactions)' |
  awk '{split($1, name, "{"); total[name[1]] += $2} END {for (n in total) print n, total[n]}' | sort
stop
