#!/usr/bin/env python3
"""What clients see while the leader of a 3-node cluster stops
(docs/benchmarks.md): a writer PUTs 1 KiB objects, one at a time, through
node 2 while node 1, which leads every group, is stopped by SIGTERM (an
orderly stop that hands its groups over) and, on a fresh cluster, by
SIGKILL. For each it reports the PUTs in the 12 s after the stop, how many
failed, the longest stretch of failures and when the first PUT succeeded.

Every node runs on this host (`shoal-ctl local-cluster --cores 1`). Needs a
release build of shoal and shoal-ctl, and boto3.

usage: bench/failover.py [runs per mode, default 2]
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
WATCH_S = 12


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
        while leaders(base + 11) != [1, 1]:
            time.sleep(0.2)
        # A leader votes for the member it hands over to only once its own
        # election is a lease (5 s) behind it.
        time.sleep(6)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{base + 10}", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                        connect_timeout=2, read_timeout=10))
        s3.create_bucket(Bucket="failover")
        results, done = [], threading.Event()

        def writer():
            i = 0
            while not done.is_set():
                started = time.monotonic()
                try:
                    s3.put_object(Bucket="failover", Key=f"k{i}", Body=b"x" * 1024)
                    results.append((started, True))
                except Exception:  # noqa: BLE001 - a failed PUT is what is counted
                    results.append((started, False))
                    time.sleep(0.05)
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(2)
        stopped_at = time.monotonic()
        os.kill(pid_of(f"{root}/lc/node-1"), signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        time.sleep(WATCH_S)
        done.set()
        thread.join()
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(60)
        if os.environ.get("KEEP"):
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    after = [(t, ok) for t, ok in results if t >= stopped_at]
    failing_since, longest, failed = None, 0.0, 0
    for t, ok in after:
        if not ok:
            failed += 1
            failing_since = failing_since or t
        elif failing_since is not None:
            longest, failing_since = max(longest, t - failing_since), None
    first_ok = next((t - stopped_at for t, ok in after if ok), None)
    return {"stop": how, "puts": len(after), "failed": failed, "longest_failing_s": round(longest, 2),
            "first_success_after_s": None if first_ok is None else round(first_ok, 2)}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    for n in range(runs):
        for i, how in enumerate(("sigterm", "sigkill")):
            print(json.dumps(trial(how, BASE + 200 * (2 * n + i))), flush=True)


if __name__ == "__main__":
    main()
