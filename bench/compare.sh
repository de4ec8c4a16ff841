#!/usr/bin/env bash
# One command, one table: Shoal and each installed peer store, one after
# the other on the same disk, driven by the same client (shoal-bench) with
# the same scenario (bench/scenarios/compare.toml), each from an empty data
# directory, with the machine's ceiling measured in the same run. Prints a
# Markdown table (throughput, p50/p99, server CPU-seconds per GB or per
# 1,000 operations, peak RSS) and writes it, with every JSON result, to the
# output directory.
#
# Peers are never built here: bench/peers/install-garage.sh installs
# Garage on purpose; without it the table has Shoal alone.
#
# usage: bench/compare.sh [--dir DIR] [--out DIR] [--scale S] [--peers LIST]
#                         [--scenario FILE]
#   --dir       where data directories and the ceiling probe go (default
#               /var/tmp/shoal-compare; must be on the disk under test)
#   --out       where results go (default ./compare-out)
#   --scale     object-size multiplier for small machines (default 1)
#   --peers     comma-separated peers to run when installed (default garage)
#   --scenario  another scenario file (default bench/scenarios/compare.toml)
#   --ceiling-size  bytes the disk probe writes (default 1GiB)
#   --port      the stores' S3 port; the next two serve admin and RPC
#               (default 19400)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dir=/var/tmp/shoal-compare
out=./compare-out
scale=1
peers=garage
scenario=$repo/bench/scenarios/compare.toml
ceiling_size=1GiB
s3_port=19400
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --scale) scale=$2; shift 2 ;;
        --ceiling-size) ceiling_size=$2; shift 2 ;;
        --port) s3_port=$2; shift 2 ;;
        --peers) peers=$2; shift 2 ;;
        --scenario) scenario=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

target=${CARGO_TARGET_DIR:-/var/tmp/shoal-target}
shoal=${SHOAL_BIN:-$target/release/shoal}
bench=${SHOAL_BENCH_BIN:-$target/release/shoal-bench}
if [ ! -x "$shoal" ] || [ ! -x "$bench" ]; then
    (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release --workspace --bins)
fi
peers_dir=${SHOAL_PEERS_DIR:-/var/tmp/shoal-peers}
mkdir -p "$dir" "$out"
out=$(cd "$out" && pwd)

# The same key pair for every store (Garage wants GK + 24 hex digits and a
# 64-hex-digit secret; Shoal takes any).
access=GK0123456789abcdef01234567
secret=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
admin_port=$((s3_port + 1))
rpc_port=$((s3_port + 2))
server_pid=

stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
trap stop_server EXIT

wait_for() { # URL WHAT
    for _ in $(seq 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "compare.sh: $2 did not come up ($1)" >&2
    return 1
}

run_scenario() { # NAME REGION
    echo "== $1: running $(basename "$scenario")" >&2
    "$bench" run --scenario "$scenario" --endpoint "http://127.0.0.1:$s3_port" \
        --access-key "$access" --secret-key "$secret" --region "$2" \
        --scale "$scale" --server-pid "$server_pid" --json "$out/$1.json" >&2
}

start_shoal() {
    local data=$dir/shoal
    rm -rf "$data"
    SHOAL_ACCESS_KEY=$access SHOAL_SECRET_KEY=$secret "$shoal" serve --init \
        --data-dir "$data" --s3-addr "127.0.0.1:$s3_port" \
        --admin-addr "127.0.0.1:$admin_port" >"$out/shoal.log" 2>&1 &
    server_pid=$!
    wait_for "http://127.0.0.1:$admin_port/healthz" "shoal"
}

start_garage() { # BIN
    local garage=$1 data=$dir/garage
    rm -rf "$data"
    mkdir -p "$data"
    cat >"$data/garage.toml" <<CONF
metadata_dir = "$data/meta"
data_dir = "$data/data"
db_engine = "lmdb"
metadata_fsync = true
data_fsync = true
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
CONF
    local g=("$garage" -c "$data/garage.toml")
    "${g[@]}" server >"$out/garage.log" 2>&1 &
    server_pid=$!
    wait_for "http://127.0.0.1:$admin_port/health" "garage" || true
    local node
    for _ in $(seq 100); do
        node=$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
        sleep 0.1
    done
    "${g[@]}" layout assign -z dc1 -c 100G "$node" >&2
    "${g[@]}" layout apply --version 1 >&2
    "${g[@]}" key import --yes -n shoal-bench "$access" "$secret" >&2
    "${g[@]}" key allow --create-bucket "$access" >&2
    wait_for "http://127.0.0.1:$s3_port/" "garage's S3 API"
}

echo "== the machine's ceiling" >&2
"$bench" ceiling --dir "$dir" --size "$ceiling_size" --json "$out/ceiling.json" >&2

start_shoal
run_scenario shoal us-east-1
stop_server
rm -rf "$dir/shoal"
results=("$out/shoal.json")

for peer in ${peers//,/ }; do
    bin=$peers_dir/$peer/bin/$peer
    if [ ! -x "$bin" ]; then
        echo "== $peer: not installed ($bin); bench/peers/install-$peer.sh installs it" >&2
        continue
    fi
    "start_$peer" "$bin"
    run_scenario "$peer" "$peer"
    stop_server
    rm -rf "${dir:?}/$peer"
    results+=("$out/$peer.json")
done

python3 "$here/compare_table.py" "$out/ceiling.json" "${results[@]}" | tee "$out/table.md"
