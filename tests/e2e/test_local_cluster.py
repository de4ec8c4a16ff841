"""`shoal-ctl local-cluster`: a cluster of local nodes for development,
the tests and the bench."""

import json
import os
import random
import signal
import subprocess
import urllib.request

from conftest import ACCESS_KEY, SECRET_KEY, ctl_bin, wait_until


def test_local_cluster_starts_three_nodes_that_form_one_cluster(tmp_path):
    # Below the ephemeral range, so no outgoing connection holds a port.
    base = random.randrange(20_000, 31_800)
    env = dict(os.environ, SHOAL_ACCESS_KEY=ACCESS_KEY, SHOAL_SECRET_KEY=SECRET_KEY)
    shoal_bin = os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")
    proc = subprocess.Popen(
        [ctl_bin(), "local-cluster", "--nodes", "3", "--dir", str(tmp_path / "lc"),
         "--base-port", str(base), "--cores", "1", "--shoal-bin", shoal_bin],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        admin = f"http://127.0.0.1:{base + 21}"  # node 3's admin port

        def three_voters():
            overview = json.loads(urllib.request.urlopen(admin + "/admin/cluster", timeout=2).read())
            return all(sorted(m["node_id"] for m in s["members"] if m["voter"]) == [1, 2, 3]
                       for s in overview["shards"])

        wait_until(three_voters, 120, "the local cluster to form")
        assert (tmp_path / "lc" / "cluster-secret").exists()
        # SIGTERM stops every node in order, and shoal-ctl with them.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
