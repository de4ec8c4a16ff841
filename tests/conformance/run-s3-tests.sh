#!/usr/bin/env bash
# Runs the public ceph/s3-tests conformance suite (test_s3.py and
# test_headers.py) against one fresh Shoal node.
#
#   tests/conformance/run-s3-tests.sh /path/to/s3-tests [extra pytest args...]
#
# The first argument is a checkout of https://github.com/ceph/s3-tests; this
# repository holds none of its code. Anything after it goes to pytest as is
# (`-k 'multipart and not encryption'`, `-x`, `--timeout=120`, ...).
#
# Environment (all optional):
#   SHOAL_BIN_DIR   directory of `shoal` and `shoal-ctl`
#                   (default /var/tmp/shoal-target/release)
#   VENV            Python venv to create or reuse
#                   (default /var/tmp/shoal-s3tests-venv)
#   PYTHON          interpreter that creates the venv (default python3)
#   JUNIT           junit xml report (default /tmp/s3tests-junit.xml)
#   TEST_TIMEOUT    per-test timeout in seconds, via pytest-timeout (default 60)
#   S3_PORT, ADMIN_PORT   node ports (default: two free ports)
#   WORK_DIR        where the node's data, log, the config and pytest's
#                   output go (default: a new /tmp/shoal-s3tests.XXXXXX)
#   KEEP_DATA=1     keep the node's data directory afterwards (the log,
#                   config and pytest output are always kept)
#   SHOAL_CORES     passed to `shoal serve --cores` when set
#   LIFECYCLE_INTERVAL  the node's --lifecycle-interval (default 2s, so due
#                   rules are applied while a test waits)
#   LIFECYCLE_DAY   the node's (test-only) --lifecycle-day (default 10s: the
#                   suite's lc_debug_interval, the day Ceph runs it with)
#
# Exit status: pytest's.
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 2
fi

if [[ ! -d "$1" ]]; then
    echo "error: $1 is not a directory (give the path of an s3-tests checkout)" >&2
    exit 2
fi
checkout=$(cd "$1" && pwd)
shift
for f in requirements.txt s3tests/functional/test_s3.py s3tests/functional/test_headers.py; do
    if [[ ! -f "$checkout/$f" ]]; then
        echo "error: $checkout does not look like an s3-tests checkout (no $f)" >&2
        exit 2
    fi
done

bin_dir=${SHOAL_BIN_DIR:-/var/tmp/shoal-target/release}
shoal="$bin_dir/shoal"
shoal_ctl="$bin_dir/shoal-ctl"
for b in "$shoal" "$shoal_ctl"; do
    [[ -x "$b" ]] || { echo "error: $b is missing or not executable (set SHOAL_BIN_DIR)" >&2; exit 2; }
done

venv=${VENV:-/var/tmp/shoal-s3tests-venv}
junit=${JUNIT:-/tmp/s3tests-junit.xml}
[[ "$junit" == /* ]] || junit="$PWD/$junit"
test_timeout=${TEST_TIMEOUT:-60}

log() { echo "[s3-tests] $*" >&2; }

# --- Python environment ----------------------------------------------------
# The checkout's requirements, less tox (the suite is run by pytest directly),
# plus pytest-timeout. Reinstalled only when the requirements change.
if [[ ! -x "$venv/bin/python" ]]; then
    log "creating venv $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
req_file="$venv/shoal-s3tests-requirements.txt"
new_req=$(grep -Ev '^[[:space:]]*tox([^A-Za-z0-9_.-]|$)' "$checkout/requirements.txt"; echo "pytest-timeout")
if [[ ! -f "$req_file" ]] || [[ "$(cat "$req_file")" != "$new_req" ]]; then
    log "installing the suite's requirements into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    printf '%s\n' "$new_req" > "$req_file.tmp"
    "$venv/bin/python" -m pip install -q -r "$req_file.tmp"
    mv "$req_file.tmp" "$req_file"
fi
timeout_args=()
if "$venv/bin/python" -c 'import pytest_timeout' 2>/dev/null; then
    timeout_args=(--timeout="$test_timeout")
else
    log "pytest-timeout is not available: tests run without a per-test timeout"
fi

# --- Node --------------------------------------------------------------------
work=${WORK_DIR:-$(mktemp -d /tmp/shoal-s3tests.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
node_log="$work/node.log"
conf="$work/s3tests.conf"
pytest_log="$work/pytest.log"

free_port() {
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
s3_port=${S3_PORT:-$(free_port)}
admin_port=${ADMIN_PORT:-$(free_port)}
while [[ "$admin_port" == "$s3_port" ]]; do admin_port=$(free_port); done
admin_addr="127.0.0.1:$admin_port"

# Key pairs of the three users the suite needs (main, alt, tenant). Letters
# and digits only, so presigned URLs need no escaping.
main_ak=S3TMAIN0000000000001
main_sk=s3tmainsecret00000000000000000000000001
alt_ak=S3TALT00000000000002
alt_sk=s3taltsecret000000000000000000000000002
tenant_ak=S3TTENANT00000000003
tenant_sk=s3ttenantsecret0000000000000000000003

node_pid=""
pytest_pid=""
tail_pid=""
stop_node() {
    if [[ -n "$pytest_pid" ]] && kill -0 "$pytest_pid" 2>/dev/null; then
        log "stopping pytest (pid $pytest_pid)"
        kill -TERM "$pytest_pid" 2>/dev/null || true
        wait "$pytest_pid" 2>/dev/null || true
    fi
    pytest_pid=""
    if [[ -n "$tail_pid" ]]; then
        kill "$tail_pid" 2>/dev/null || true
        tail_pid=""
    fi
    if [[ -n "$node_pid" ]] && kill -0 "$node_pid" 2>/dev/null; then
        log "stopping the node (pid $node_pid)"
        kill -TERM "$node_pid" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$node_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    node_pid=""
    if [[ "${KEEP_DATA:-0}" != 1 ]]; then
        rm -rf "$work/data"
    fi
}
trap stop_node EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Always a fresh node: a data directory left in WORK_DIR by an earlier run
# (KEEP_DATA=1) already holds the users and buckets of that run.
rm -rf "$work/data"
cores_args=()
[[ -n "${SHOAL_CORES:-}" ]] && cores_args=(--cores "$SHOAL_CORES")
log "starting $shoal: s3 127.0.0.1:$s3_port, admin $admin_addr, log $node_log"
SHOAL_ACCESS_KEY=$main_ak SHOAL_SECRET_KEY=$main_sk \
    "$shoal" serve --data-dir "$work/data" --init \
    --s3-addr "127.0.0.1:$s3_port" --admin-addr "$admin_addr" \
    --shutdown-timeout 5s --lifecycle-interval "${LIFECYCLE_INTERVAL:-2s}" \
    --lifecycle-day "${LIFECYCLE_DAY:-10s}" \
    --access-log --sigv2 --sse-c-over-http "${cores_args[@]}" \
    >"$node_log" 2>&1 &
node_pid=$!

up=0
for _ in $(seq 300); do
    if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "error: the node exited during start; its log:" >&2
        tail -n 40 "$node_log" >&2
        exit 1
    fi
    if curl -sf -o /dev/null "http://$admin_addr/healthz"; then up=1; break; fi
    sleep 0.1
done
if [[ $up != 1 ]]; then
    echo "error: the node did not answer /healthz within 30 s; log $node_log" >&2
    exit 1
fi

ctl() { "$shoal_ctl" --admin-addr "$admin_addr" "$@"; }
ctl user add s3t-alt --access-key "$alt_ak" --secret-key "$alt_sk" >/dev/null
ctl user add s3t-tenant --access-key "$tenant_ak" --secret-key "$tenant_sk" >/dev/null

# `user list` prints `name id state keys...`. ListBuckets and the ACLs answer
# the user's id as Owner/ID and its name as Owner/DisplayName, so those are
# what the config must hold.
users=$(ctl user list)
field_of() { # access key, awk field number (1 name, 2 id)
    awk -v ak="$1" -v f="$2" 'NR > 1 { for (i = 4; i <= NF; i++) { k = $i; gsub(",", "", k); if (k == ak) print $f } }' <<<"$users"
}
main_name=$(field_of "$main_ak" 1); main_id=$(field_of "$main_ak" 2)
alt_name=$(field_of "$alt_ak" 1); alt_id=$(field_of "$alt_ak" 2)
tenant_name=$(field_of "$tenant_ak" 1); tenant_id=$(field_of "$tenant_ak" 2)
for v in main_name main_id alt_name alt_id tenant_name tenant_id; do
    if [[ -z "${!v}" ]]; then
        echo "error: could not read $v from 'shoal-ctl user list':" >&2
        echo "$users" >&2
        exit 1
    fi
done

# No api_name: the node answers GetBucketLocation for us-east-1 with an
# empty constraint, as S3 does, so test_bucket_get_location is skipped.
# Shoal has no IAM, STS or tenants: the [iam*] sections exist so the suite
# imports, and point at the main and alt users.
cat >"$conf" <<EOF
[DEFAULT]
host = 127.0.0.1
port = $s3_port
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = shoal-{random}-
iam name prefix = s3-tests-
iam path prefix = /s3-tests/

[s3 main]
display_name = $main_name
user_id = $main_id
email = main@shoal.invalid
access_key = $main_ak
secret_key = $main_sk

[s3 alt]
display_name = $alt_name
user_id = $alt_id
email = alt@shoal.invalid
access_key = $alt_ak
secret_key = $alt_sk

[s3 tenant]
display_name = $tenant_name
user_id = $tenant_id
email = tenant@shoal.invalid
access_key = $tenant_ak
secret_key = $tenant_sk
tenant = testx

[iam]
display_name = $main_name
user_id = $main_id
email = main@shoal.invalid
access_key = $main_ak
secret_key = $main_sk

[iam root]
user_id = $main_id
email = main@shoal.invalid
access_key = $main_ak
secret_key = $main_sk

[iam alt root]
user_id = $alt_id
email = alt@shoal.invalid
access_key = $alt_ak
secret_key = $alt_sk
EOF

# --- Suite -------------------------------------------------------------------
log "config $conf; pytest output $pytest_log; junit $junit"
start=$(date +%s)
: >"$pytest_log"
# pytest runs in the background, writing to its log, which tail copies to
# our output: a signal to this script is then handled at once (the trap
# stops pytest and the node) rather than after pytest ends.
(
    cd "$checkout"
    # Keep the operator's AWS profile, region and endpoint out of boto3.
    for v in $(compgen -e | grep '^AWS_' || true); do unset "$v"; done
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    export PYTHONUNBUFFERED=1
    S3TEST_CONF="$conf" exec "$venv/bin/python" -m pytest \
        s3tests/functional/test_s3.py s3tests/functional/test_headers.py \
        -p no:cacheprovider -rfE "${timeout_args[@]}" \
        --junitxml="$junit" "$@"
) >"$pytest_log" 2>&1 </dev/null &
pytest_pid=$!
tail -n +1 -f --pid="$pytest_pid" "$pytest_log" &
tail_pid=$!
rc=0
wait "$pytest_pid" || rc=$?
pytest_pid=""
wait "$tail_pid" 2>/dev/null || true
tail_pid=""
elapsed=$(( $(date +%s) - start ))

stop_node

if [[ -f "$junit" ]]; then
    "$venv/bin/python" - "$junit" "$elapsed" <<'PY'
import sys
import xml.etree.ElementTree as ET

counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
n = 0
for case in cases:
    n += 1
    tags = {child.tag for child in case}
    if "failure" in tags:
        counts["failed"] += 1
    elif "error" in tags:
        counts["errors"] += 1
    elif "skipped" in tags:
        counts["skipped"] += 1
    else:
        counts["passed"] += 1
print("s3-tests summary: items={} passed={passed} failed={failed} errors={errors} "
      "skipped={skipped} wall={}s".format(n, sys.argv[2], **counts))
PY
else
    echo "s3-tests summary: no junit report at $junit (pytest exit $rc)"
fi
log "node log: $node_log"
exit "$rc"
