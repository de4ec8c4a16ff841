"""shoal-bench against a real node: signed requests in every payload mode,
counted statuses, the JSON result validated against its schema, the report.

`SHOAL_BENCH_BIN` names the load generator (tests/run.sh builds it). Every
run is small (kilobytes to a few MiB, at most a few seconds): throughput
claims live in bench/, these tests only check that what it measures and
writes is right.
"""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import ACCESS_KEY, SECRET_KEY, sample_total

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "bench" / "schema" / "result-v1.json").read_text())
BENCH_BIN = os.environ.get("SHOAL_BENCH_BIN", "/var/tmp/shoal-target/release/shoal-bench")
RUN_TIMEOUT_S = 120
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(node, *args, secret=SECRET_KEY, bucket="bench-e2e"):
    """Runs shoal-bench with `--json -` and returns the parsed, validated result."""
    assert os.access(BENCH_BIN, os.X_OK), (
        f"{BENCH_BIN} missing: cargo build --release -p shoal-bench (or set SHOAL_BENCH_BIN)"
    )
    cmd = [BENCH_BIN, *args, "--endpoint", node.endpoint, "--bucket", bucket,
           "--access-key", ACCESS_KEY, "--secret-key", secret, "--json", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}: {proc.stderr}"
    result = json.loads(proc.stdout)
    validate(result)
    # With --json -, the summary goes to stderr and stdout is only JSON.
    assert "requests in" in proc.stderr
    return result


def validate(result):
    jsonschema.validate(result, SCHEMA, cls=jsonschema.Draft202012Validator)


def assert_counts_add_up(step):
    statuses = sum(step["status_counts"].values())
    assert statuses + step["transport_errors"]["total"] == step["requests"], step
    classes = step["ok"] + step["slow_down"] + step["too_many_requests"] + step["other_errors"]
    assert classes == statuses, step


def assert_all_ok(step, requests):
    assert_counts_add_up(step)
    assert step["requests"] == requests
    assert step["operations"] == requests
    assert set(step["status_counts"]) <= {"200", "204"}, step["status_counts"]
    assert step["ok"] == requests
    assert step["transport_errors"]["total"] == 0, step["error_samples"]
    assert step["throughput"]["ops_per_s"] > 0


@pytest.mark.parametrize("payload", ["signed", "unsigned", "chunked"])
def test_put_in_each_payload_mode(node, payload):
    result = bench(node, "put", "--size", "200KiB", "--count", "24", "--concurrency", "4",
                   "--payload", payload, "--name", f"put-{payload}")
    assert result["command"] == "put" and result["bucket"]["usable"]
    (step,) = result["steps"]
    assert step["workload"]["payload"] == payload
    assert_all_ok(step, 24)
    assert step["status_counts"] == {"200": 24}
    assert step["bytes"] == 24 * 200 * 1024
    assert step["throughput"]["bytes_per_s"] > 0
    latency = step["latency_ms"]["put"]
    assert latency["count"] == 24
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert sum(point["ok"] for point in step["timeline"]) == 24


def test_put_with_expect_continue(node):
    result = bench(node, "put", "--size", "1MiB", "--count", "8", "--concurrency", "2",
                   "--payload", "chunked", "--expect-continue", "--name", "put-expect")
    (step,) = result["steps"]
    assert step["workload"]["expect_continue"]
    assert_all_ok(step, 8)
    # The node answers 100 Continue; no PUT waited out the 1 s fallback.
    assert step["latency_ms"]["put"]["max_ms"] < 1000


def test_get_prepares_and_verifies(node):
    result = bench(node, "get", "--size", "300KiB", "--count", "30", "--objects", "6",
                   "--concurrency", "3", "--verify")
    (step,) = result["steps"]
    prepare = step["prepare"]
    assert (prepare["objects"], prepare["ok"], prepare["failed"]) == (6, 6, 0)
    assert_all_ok(step, 30)
    assert step["status_counts"] == {"200": 30}
    assert step["verify_failures"] == 0
    assert step["bytes"] == 30 * 300 * 1024
    assert step["throughput"]["bytes_per_s"] > 0
    # Every GET's first byte came before its last.
    ttfb, latency = step["ttfb_ms"]["get"], step["latency_ms"]["get"]
    assert ttfb["count"] == 30
    assert 0 < ttfb["p50_ms"] <= ttfb["p90_ms"] <= ttfb["p99_ms"] <= ttfb["max_ms"]
    assert ttfb["max_ms"] <= latency["max_ms"] and ttfb["p50_ms"] <= latency["p50_ms"]


def test_concurrent_small_puts_share_log_syncs_and_read_back_whole(node):
    """32 clients (the prepare phase's most) write 4 KiB objects at once:
    the manifests that wait while a shard's log is synced share its next
    raft entry, and every object then reads back as written (64 GETs at
    a time, with what the server spent on them)."""
    before = node.metrics()
    result = bench(node, "get", "--size", "4KiB", "--count", "2000", "--objects", "2000",
                   "--concurrency", "64", "--verify", "--server-metrics", node.admin + "/metrics",
                   bucket="bench-grouped")
    after = node.metrics()
    (step,) = result["steps"]
    assert (step["prepare"]["ok"], step["prepare"]["failed"]) == (2000, 0)
    assert_all_ok(step, 2000)
    assert step["verify_failures"] == 0
    server = step["server"]
    assert server["cpu_s"] > 0 and server["resident_max_bytes"] > 0
    assert server["cpu_s_per_1000_ops"] == pytest.approx(server["cpu_s"] / 2)

    def delta(name):
        return sample_total(after, name) - sample_total(before, name)

    # (The garbage collector may propose a collect meanwhile.)
    commands = delta("shoal_raft_commands_proposed_total")
    entries = delta("shoal_raft_entries_proposed_total")
    assert commands >= 2000
    # One entry per write would be 1:1; 32 writers here group about 3 per
    # entry.
    assert entries <= 0.7 * commands, f"{commands} writes took {entries} entries"


def test_mixed_runs_warps_mix_without_errors(node):
    """The default mix over 24 keys: DELETEs take keys out and PUTs write
    them back, so no GET or STAT meets a deleted object; every kind has its
    latency and rate, and the server's CPU per GB covers the whole step."""
    result = bench(node, "mixed", "--size", "16KiB", "--count", "800", "--objects", "24",
                   "--concurrency", "6", "--verify", "--name", "mixed-warp",
                   "--server-metrics", node.admin + "/metrics")
    (step,) = result["steps"]
    assert_all_ok(step, 800)
    assert set(step["status_counts"]) == {"200", "204"}, step["status_counts"]
    assert step["verify_failures"] == 0
    assert step["workload"]["mix"] == {"get": 0.45, "stat": 0.3, "put": 0.15, "delete": 0.1}
    per_op = step["per_op"]
    assert set(per_op) == {"get", "stat", "put", "delete"}
    assert sum(op["ok"] for op in per_op.values()) == 800
    for op, share in {"get": 0.45, "stat": 0.3, "put": 0.15, "delete": 0.1}.items():
        assert abs(per_op[op]["ok"] / 800 - share) < 0.08, (op, per_op[op])
        assert per_op[op]["ops_per_s"] > 0
        assert step["latency_ms"][op]["count"] == per_op[op]["ok"]
    assert per_op["stat"]["bytes"] == 0 and per_op["delete"]["bytes"] == 0
    assert per_op["get"]["bytes"] == per_op["get"]["ok"] * 16 * 1024
    assert step["status_counts"]["204"] == per_op["delete"]["ok"]
    server = step["server"]
    assert server["cpu_s"] > 0
    assert server["cpu_s_per_gb"] == pytest.approx(server["cpu_s"] / (step["bytes"] / 1e9))


def test_constant_rate_keeps_its_schedule(node):
    """100 PUTs a second for 2 s: 200 scheduled 10 ms apart, each timed from
    its slot; 0.5 s intervals each see about 50 of them."""
    result = bench(node, "put", "--size", "4KiB", "--rate", "100", "--duration", "2s",
                   "--concurrency", "4", "--interval", "500ms", "--name", "put-rate")
    (step,) = result["steps"]
    # Slots at 0, 10, ..., 1990 ms; none after the 2 s.
    assert step["operations"] == 200
    assert_all_ok(step, 200)
    schedule = step["schedule"]
    assert schedule["target_ops_per_s"] == 100 and schedule["started"] == 200
    # 4 connections keep up with 100 small PUTs a second: few start late.
    assert schedule["late"] <= 50, schedule
    assert 1.9 < step["elapsed_s"] < 3
    assert 80 < step["throughput"]["ops_per_s"] < 110
    intervals = step["intervals"]
    assert intervals["interval_s"] == 0.5 and intervals["complete"] >= 3
    spread = intervals["ops_per_s"]
    assert spread["slowest"] <= spread["median"] <= spread["fastest"]
    assert 80 <= spread["median"] <= 120, spread
    assert intervals["bytes_per_s"]["median"] == pytest.approx(spread["median"] * 4096)


def test_list_pages_through_every_bucket_and_reuses_its_objects(node):
    """2,500 small objects over 2 buckets (1,250 each: two pages of at most
    1,000 keys in each); every listing reads all four pages. A second run
    with --no-prepare lists the same objects without writing them."""
    args = ["list", "--objects", "2500", "--count", "3", "--concurrency", "1",
            "--buckets", "2", "--name", "list-e2e",
            "--server-metrics", node.admin + "/metrics"]
    result = bench(node, *args, bucket="bench-list")
    assert result["target"]["buckets"] == ["bench-list-0", "bench-list-1"]
    (step,) = result["steps"]
    assert step["workload"]["object_bytes"] == 1024, "list objects are small by default"
    assert (step["prepare"]["ok"], step["prepare"]["failed"]) == (2500, 0)
    assert_counts_add_up(step)
    assert step["operations"] == 3
    assert step["requests"] == step["ok"] == 3 * 4
    listed = step["list"]
    assert (listed["listings"], listed["incomplete"], listed["keys"]) == (3, 0, 3 * 2500)
    assert listed["keys_per_s"] == pytest.approx(listed["keys"] / step["elapsed_s"])
    assert listed["listing_ms"]["count"] == 3
    # A listing takes its four pages: longer than the slowest page.
    assert listed["listing_ms"]["max_ms"] >= step["latency_ms"]["list"]["max_ms"]
    assert step["server"]["cpu_s"] > 0

    again = bench(node, *args, "--no-prepare", bucket="bench-list")
    (step,) = again["steps"]
    assert step["prepare"] is None and step["workload"]["prepare"] is False
    assert (step["list"]["listings"], step["list"]["keys"]) == (3, 3 * 2500)


def test_wrong_secret_counts_403s(node):
    result = bench(node, "put", "--size", "4KiB", "--count", "10", "--concurrency", "2",
                   "--name", "bad-secret", secret="not-the-secret-key")
    assert not result["bucket"]["usable"] and result["bucket"]["status"] == 403
    (step,) = result["steps"]
    assert_counts_add_up(step)
    assert step["requests"] == 10
    assert step["status_counts"] == {"403": 10}
    assert step["ok"] == 0 and step["other_errors"] == 10
    assert step["error_codes"] == {"SignatureDoesNotMatch": 10}
    assert step["throughput"]["bytes_per_s"] == 0
    assert step["latency_ms"] == {}


def test_scenario_run_writes_a_report(node, tmp_path):
    scenario = tmp_path / "e2e.toml"
    scenario.write_text("""
name = "e2e"
description = "every workload, small"

[defaults]
size = "64KiB"
count = 12

[[step]]
name = "sweep-put"
workload = "put"
concurrency = [1, 4]
payload = "signed"

[[step]]
name = "mixed"
workload = "mixed"
objects = 8
read_fraction = 0.5
concurrency = 4
verify = true

[[step]]
name = "list"
workload = "list"
objects = 20
concurrency = 2

[[step]]
name = "delete"
workload = "delete"
concurrency = 3
""")
    report = tmp_path / "report"
    result = bench(node, "run", "--scenario", str(scenario), "--report", str(report))
    assert result["scenario"]["name"] == "e2e"
    names = [s["name"] for s in result["steps"]]
    assert names == ["sweep-put-c1", "sweep-put-c4", "mixed", "list", "delete"]
    for step in result["steps"]:
        assert_all_ok(step, 12)
    mixed = result["steps"][2]
    assert set(mixed["latency_ms"]) <= {"get", "put"} and mixed["verify_failures"] == 0
    assert result["steps"][3]["latency_ms"]["list"]["count"] == 12
    assert result["steps"][4]["status_counts"] == {"204": 12}
    (sweep,) = result["sweeps"]
    assert [p["concurrency"] for p in sweep["points"]] == [1, 4]

    files = {p.name for p in report.iterdir()}
    assert {"report.md", "result.json", "throughput.png", "ops.png", "latency-cdf.png",
            "sweep-sweep-put.png"} <= files
    for png in report.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC, png
    validate(json.loads((report / "result.json").read_text()))
    text = (report / "report.md").read_text()
    assert "| sweep-put-c4 | put |" in text and "![throughput](throughput.png)" in text


def test_ceiling_measures_this_machine(tmp_path):
    proc = subprocess.run(
        [BENCH_BIN, "ceiling", "--dir", str(tmp_path), "--size", "16MiB", "--json", "-"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0 and "is a tmpfs" in proc.stderr:
        pytest.skip("the test's temporary directory is a tmpfs")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    validate(result)
    ceiling = result["ceiling"]
    assert result["steps"] == [] and result["target"] is None
    assert ceiling["disk_probe_bytes"] == 16 << 20
    for key in ["disk_write_fdatasync_bytes_per_s", "disk_read_bytes_per_s",
                "loopback_tcp_bytes_per_s"]:
        assert ceiling[key] > 0, key
    for hash_name in ["sha256", "md5"]:
        assert ceiling[hash_name]["per_core_bytes_per_s"] > 0
        assert ceiling[hash_name]["all_cores_bytes_per_s"] > 0
    assert not list(tmp_path.iterdir()), "the disk probe left its scratch file"


def test_compare_script_prints_the_table_for_shoal(tmp_path):
    """bench/compare.sh, as docs/benchmarks.md runs it, on a two-step
    scenario: the machine's ceiling, a fresh node, every step in the table
    with its server CPU and peak RSS, and no peer when none is installed."""
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(
        'name = "tiny"\n'
        '[[step]]\nname = "put-small"\nworkload = "put"\nsize = "4KiB"\ncount = 200\nconcurrency = 4\n'
        '[[step]]\nname = "get-large"\nworkload = "get"\nsize = "2MiB"\nobjects = 4\ncount = 8\nconcurrency = 2\n')
    script = Path(__file__).resolve().parents[2] / "bench" / "compare.sh"
    port = free_port_pair()
    env = dict(os.environ, SHOAL_BENCH_BIN=BENCH_BIN, SHOAL_PEERS_DIR=str(tmp_path / "no-peers"))
    done = subprocess.run(
        [str(script), "--dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
         "--scenario", str(scenario), "--ceiling-size", "64MiB", "--port", str(port)],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| step | shoal |")
    table = {row.split(" | ")[0].strip("| "): row for row in rows[2:]}
    assert set(table) == {"put-small", "get-large"}
    assert " ops/s |" in table["put-small"] and " MB/s |" in table["get-large"]
    # CPU and RSS were read from the node's process: no "—" left.
    assert "—" not in table["put-small"], table["put-small"]
    assert "garage: not installed" in done.stderr
    assert (tmp_path / "out" / "table.md").read_text() == done.stdout
    validate(json.loads((tmp_path / "out" / "shoal.json").read_text()))


def free_port_pair():
    """An S3 port whose next two ports are free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port + 1))
                b.bind(("127.0.0.1", port + 2))
            return port
        except OSError:
            continue
    raise RuntimeError("no three free ports in a row")


def test_metadata_scale_script_reports_every_phase(tmp_path):
    """bench/metadata-scale.sh, as docs/benchmarks.md runs it, at 2,000
    objects: the seed, two full listings, a restart, and a second node that
    joins through the snapshots and lists every key."""
    from conftest import ctl_bin
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")
    for name, path in [("shoal", binary), ("shoal-ctl", ctl_bin()), ("shoal-bench", BENCH_BIN)]:
        (bin_dir / name).symlink_to(path)
    script = Path(__file__).resolve().parents[2] / "bench" / "metadata-scale.sh"
    env = dict(os.environ, SHOAL_BIN_DIR=str(bin_dir), OBJECTS="2000", BASE=str(free_port_span(302)))
    done = subprocess.run([str(script), str(tmp_path / "work")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "== seed: 2000 objects in " in out, out
    assert "2 full listings (0 incomplete), 4000 keys" in out, out
    assert "== restart: stopped in " in out, out
    assert "== node 2 joined and healthy in " in out, out
    # Both shards' snapshots arrived as files and were installed whole:
    # every object, the bucket and the admin user.
    installed = [int(n) for n in re.findall(r"installed raft snapshot records=(\d+)", out)]
    assert len(installed) == 2 and sum(installed) == 2002, out
    assert "1 full listings (0 incomplete), 2000 keys" in out, out


def free_port_span(count):
    """A base port below the ephemeral range whose next `count` ports all
    look free."""
    for base in range(20000, 30000, 500):
        free = True
        for port in range(base, base + count):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    free = False
                    break
        if free:
            return base
    raise RuntimeError("no free span of ports")
