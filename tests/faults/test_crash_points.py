"""Crashes at each durability edge (issue 15): the node runs the kill -9
suite's mixed load (PUT, overwrite, DELETE, multipart) with the garbage
collector busy, and kills itself (SIGKILL) at a chosen crash point
(`shard/src/crash_point.rs`): after a blob-log fsync before the appends
are acknowledged, between chunks stored and refs proposed, after the raft
log sync before commit, after commit before apply, after apply before the
answer, before a hole is punched, and in the middle of a compaction. Then
it restarts without the fault and the kill -9 checker runs: every
acknowledged write readable byte-exact unless superseded, nothing no
writer sent, listings equal to what GETs find.

Needs a binary built with `--features failpoints` (tests/run.sh builds one)."""

import random
import signal

import pytest

from conftest import trials
from test_kill9 import History, check, load_until_down

GC_ARGS = ["--gc-grace", "1s", "--segment-size", "8MiB"]

# (crash point, how many hits to let pass before it fires: a range the
# load reaches within seconds, so the crash lands mid-load), and any
# other fault the point needs to be reached.
POINTS = [
    ("crash::blob_synced", (20, 200), ""),
    ("crash::chunks_stored", (10, 80), ""),
    ("crash::raft_log_synced", (20, 120), ""),
    ("crash::committed", (20, 120), ""),
    ("crash::applied", (20, 120), ""),
    ("crash::reclaiming", (0, 3), ""),
    # Without hole punching, dead space is reclaimed by copying live
    # records forward.
    ("crash::compacting", (0, 5), "blob_log::punch=return"),
]


def until_it_crashes(point):
    def wait(node, seed):
        try:
            node.proc.wait(90)
        except Exception:
            pytest.fail(f"{point} was not reached within 90 s")
        assert node.proc.returncode == -signal.SIGKILL, (
            f"exited with {node.proc.returncode}, not at {point}; log: {node.log_path}")
    return wait


@pytest.mark.parametrize("point,hits,also", POINTS, ids=[p[0].split("::")[1] for p in POINTS])
def test_acknowledged_writes_survive_a_crash_at(fresh_node, point, hits, also):
    node = fresh_node(cores=2, extra_args=GC_ARGS)
    node.client().create_bucket(Bucket="mixed")
    history = History()
    runs = trials(1)
    for trial in range(runs):
        skip = random.Random(trial).randrange(*hits) if hits[1] > hits[0] else hits[0]
        faults = [f"{point}={skip}*off->return"] + ([also] if also else [])
        node.stop()
        node.env["FAILPOINTS"] = ";".join(faults)
        node.start()
        load_until_down(node, history, seed=trial, bring_down=until_it_crashes(point))
        assert f"crash point {point}" in node.log_text(), "killed, but not by the crash point"
        del node.env["FAILPOINTS"]
        node.start()
        wrong = check(node, history)
        assert not wrong, f"{point}, trial {trial}: {wrong[:5]}"
    print(f"{point}: {runs} crashes, acknowledged writes: {history.acknowledged_writes}, lost: 0")
    assert history.acknowledged_writes > 0
