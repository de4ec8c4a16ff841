#!/usr/bin/env python3
"""What clients see while a leader of a 3-node cluster stops
(docs/benchmarks.md): a writer PUTs 1 KiB objects (keys spread over both
shards), one at a time, through node 2 while node 1, which leads shard 0
once the leaders have spread, is stopped by SIGTERM (an orderly stop that
hands its group over), SIGKILL or SIGSTOP (resumed with SIGCONT after the
watch window), each on a fresh cluster. For each it reports the PUTs in
the watch window after the stop, how many failed, the outage: the longest
the writer went without a PUT completing, from the stop to the end of the
window (a hung PUT counts like failed ones), and how many acknowledged PUTs node 3 (and, after a
SIGSTOP, the resumed node 1) cannot read: `lost`, which must be 0. The
summary line gives the outage's median, p99 and maximum per mode.

Every node runs on this host (`shoal-ctl local-cluster --cores 1`). Needs a
release build of shoal and shoal-ctl, and boto3.

usage: bench/failover.py [runs per mode, default 2] [modes, default sigterm,sigkill,sigstop]
       bench/failover.py 20 sigkill     # the issue's 20 kill trials
       SHOAL_BIN_DIR=/var/tmp/shoal-target/release BASE_PORT=24000 bench/failover.py
       KEEP=1 bench/failover.py    # keep the nodes' data and logs
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

BIN = os.environ.get("SHOAL_BIN_DIR", "/var/tmp/shoal-target/release")
BASE = int(os.environ.get("BASE_PORT", "24000"))  # below the ephemeral range
KEY, SECRET = "FAILOVERACCESSKEY001", "failover-secret-0123456789"
WATCH_S = 8


def leaders(admin_port):
    url = f"http://127.0.0.1:{admin_port}/admin/cluster"
    return [s["leader"] for s in json.loads(urllib.request.urlopen(url, timeout=2).read())["shards"]]


def pid_of(argument):
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if argument.encode() in f.read().split(b"\0"):
                    return int(entry)
        except OSError:
            continue
    raise RuntimeError(f"no process with {argument}")


def trial(how, base):
    root = tempfile.mkdtemp(prefix=f"shoal-failover-{how}-")
    env = dict(os.environ, SHOAL_ACCESS_KEY=KEY, SHOAL_SECRET_KEY=SECRET)
    cluster = subprocess.Popen(
        [f"{BIN}/shoal-ctl", "local-cluster", "--dir", f"{root}/lc", "--base-port", str(base),
         "--cores", "1", "--shoal-bin", f"{BIN}/shoal"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in cluster.stdout:
            if "nodes running" in line:
                break
        # Node 1 forms every group, then each moves to its preferred leader.
        deadline = time.monotonic() + 60
        while leaders(base + 11) != [1, 2]:
            assert time.monotonic() < deadline, f"leaders did not spread: {leaders(base + 11)}"
            time.sleep(0.2)
        # A leader votes for the member it hands over to only once its own
        # election is a lease (2 s) behind it.
        time.sleep(3)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{base + 10}", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                        connect_timeout=2, read_timeout=10))
        s3.create_bucket(Bucket="failover")
        results, acked, done = [], [], threading.Event()

        def writer():
            i = 0
            while not done.is_set():
                started = time.monotonic()
                try:
                    s3.put_object(Bucket="failover", Key=f"k{i}", Body=b"x" * 1024)
                    results.append((started, time.monotonic(), True))
                    acked.append(f"k{i}")
                except Exception:  # noqa: BLE001 - a failed PUT is what is counted
                    results.append((started, time.monotonic(), False))
                    time.sleep(0.05)
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(2)
        stopped_at = time.monotonic()
        node1 = pid_of(f"{root}/lc/node-1")
        os.kill(node1, {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL, "sigstop": signal.SIGSTOP}[how])
        time.sleep(WATCH_S)
        watched_until = time.monotonic()
        done.set()
        thread.join()
        readers = [base + 20]
        if how == "sigstop":
            # It resumes as a stale leader: it must step down, catch up and
            # serve every acknowledged write like the others.
            os.kill(node1, signal.SIGCONT)
            readers.append(base)
        lost = missing(readers, acked)
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(60)
        if os.environ.get("KEEP"):
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result = summarize(how, results, stopped_at, watched_until)
    result["acknowledged"], result["lost"] = len(acked), lost
    return result


def missing(ports, keys):
    """Acknowledged keys some node at `ports` cannot read (after waiting up
    to 20 s for it to answer at all)."""
    lost = 0
    for port in ports:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 8},
                                        connect_timeout=2, read_timeout=10))
        for key in keys:
            try:
                s3.head_object(Bucket="failover", Key=key)
            except Exception:  # noqa: BLE001 - any failure to read it counts
                lost += 1
    return lost


def summarize(how, results, stopped_at, watched_until):
    """One trial's figures. The outage is the longest the writer went
    without a PUT completing, from the stop to the end of the watch: what a
    client writing continuously lives through (a PUT that hangs counts
    as much as a run of failed ones)."""
    after = [(start, end, ok) for start, end, ok in results if start >= stopped_at]
    completions = sorted(end for _, end, ok in results if ok and end >= stopped_at and end <= watched_until)
    marks = [stopped_at] + completions + [watched_until]
    outage = max(b - a for a, b in zip(marks, marks[1:]))
    return {"stop": how, "puts": len(after), "failed": sum(1 for *_, ok in after if not ok),
            "outage_s": round(outage, 2)}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["sigterm", "sigkill", "sigstop"]
    outages = {how: [] for how in modes}
    for n in range(runs):
        for i, how in enumerate(modes):
            result = trial(how, BASE + 200 * ((len(modes) * n + i) % 40))
            outages[how].append(result["outage_s"])
            print(json.dumps(result), flush=True)
    for how, values in outages.items():
        print(json.dumps({"stop": how, "trials": len(values),
                          "outage_median_s": percentile(values, 50), "outage_p99_s": percentile(values, 99),
                          "outage_max_s": max(values)}), flush=True)


if __name__ == "__main__":
    main()
