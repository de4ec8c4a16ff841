"""Lost unsynced writes (issue 15): the node's whole data directory sits
on `unsyncfs.py`, a FUSE file system that, at a power cut, puts every
file back as it was at its last fsync (rewritten pages restored, files
cut back to their synced size, new files empty). The node runs the kill
-9 suite's mixed load with the garbage collector busy, dies (kill -9 at
a random moment, or SIGKILL at a chosen crash point), the power is cut,
and it restarts on what the disk kept: the kill -9 checker then finds
every acknowledged write readable byte-exact unless superseded, and
nothing no writer sent. A graceful stop followed by a power cut loses
nothing either.

A control test mounts the same file system with fsync lying for the
blob logs and shows the checker then does see acknowledged objects go
missing, so the main test could fail.

Needs root, /dev/fuse, libfuse 2 and fusepy (`.ci/run` installs them),
and a binary built with `--features failpoints` for the crash points."""

import fnmatch
import importlib
import json
import os
import random
import signal
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from conftest import Node, trials, wait_until
from test_crash_points import until_it_crashes
from test_kill9 import History, check, kill_at_random, load_until_down


def _why_not():
    if os.geteuid() != 0:
        return "needs root (FUSE mounts)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        importlib.import_module("fuse")  # fusepy, which loads libfuse 2
    except (ImportError, OSError) as e:
        return f"fusepy / libfuse 2 missing: {e}"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))

FS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unsyncfs.py")
GC_ARGS = ["--gc-grace", "1s", "--segment-size", "8MiB"]


class UnsyncDisk:
    """A backing directory, and `unsyncfs.py` mounted over it when up."""

    def __init__(self, root, lie_about=None):
        self.backing = os.path.join(root, "disk")
        self.mountpoint = os.path.join(root, "mnt")
        self.log_path = os.path.join(root, "unsyncfs.log")
        self.lie_about = lie_about
        self.proc = None
        self.store_bytes_lost = 0
        self.cuts_losing_bytes = 0
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mountpoint, exist_ok=True)

    def mount(self):
        args = [sys.executable, FS, self.backing, self.mountpoint]
        if self.lie_about:
            args += ["--fsync-lies", self.lie_about]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        wait_until(lambda: os.path.ismount(self.mountpoint) or self.proc.poll() is not None,
                   20, "unsyncfs to mount")
        assert self.proc.poll() is None, f"unsyncfs exited; log: {self.log_path}"

    def power_cut(self):
        """Unmounts and loses whatever was not synced; returns the bytes
        of the store's own files lost."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, f"unsyncfs failed; log: {self.log_path}"
        assert not os.path.ismount(self.mountpoint)
        report = json.loads(out.decode().strip().splitlines()[-1])
        store = {path: n for path, n in report["lost"].items() if not is_diagnostic(path)}
        self.store_bytes_lost += sum(store.values())
        self.cuts_losing_bytes += report["bytes_lost"] > 0
        print(f"power cut: {report['bytes_lost']} unsynced bytes lost, "
              f"{sum(store.values())} of them the store's own {sorted(store)}; "
              f"punching undone: {report['punched_bytes_restored']} bytes")
        return sum(store.values())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.power_cut()


@pytest.fixture
def unsync_disk(tmp_path):
    disks = []

    def make(**kwargs):
        disk = UnsyncDisk(str(tmp_path), **kwargs)
        disks.append(disk)
        disk.mount()
        return disk

    yield make
    for disk in disks:
        disk.stop()


@pytest.fixture
def node_on(fresh_node):
    """A node whose data directory is the mount itself (so its log, one
    level up, is not)."""
    nodes = []

    def make(disk):
        node = Node(disk.mountpoint, cores=2, extra_args=GC_ARGS)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


def is_diagnostic(path):
    """Files whose loss costs nothing: rocksdb's info log, the lock file's
    pid, the blob log's io_uring polling probe."""
    return (fnmatch.fnmatch(path, "*/meta/LOG*") or path == "lock"
            or path.endswith("/.iopoll-probe"))


def crash_at(point, hits, also=()):
    def bring_down(node, seed):
        until_it_crashes(point)(node, seed)
        assert f"crash point {point}" in node.log_text(), "killed, but not by the crash point"

    def faults(trial):
        skip = random.Random(trial).randrange(*hits)
        return [f"{point}={skip}*off->return", *also]

    bring_down.faults = faults
    return bring_down


def kill_anywhere(node, seed):
    kill_at_random(node, seed)


kill_anywhere.faults = lambda trial: []

# How each trial ends: kill -9 at a random moment, or SIGKILL at a
# crash point (`test_crash_points.py`), the power cut right after.
ENDINGS = {
    "kill9": kill_anywhere,
    "blob_synced": crash_at("crash::blob_synced", (20, 200)),
    "raft_log_synced": crash_at("crash::raft_log_synced", (20, 120)),
    "applied": crash_at("crash::applied", (20, 120)),
    # Without hole punching, dead space is reclaimed by copying live
    # records forward: crash between the copy and the index move.
    "compacting": crash_at("crash::compacting", (0, 5), also=["blob_log::punch=return"]),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_acknowledged_writes_survive_a_power_cut(unsync_disk, node_on, ending):
    bring_down = ENDINGS[ending]
    disk = unsync_disk()
    node = node_on(disk)
    node.start()
    node.client().create_bucket(Bucket="mixed")
    # A graceful stop leaves nothing of its own unsynced.
    node.stop()
    assert disk.power_cut() == 0
    history = History()
    runs = trials(1)
    for trial in range(runs):
        disk.mount()
        node.env["FAILPOINTS"] = ";".join(bring_down.faults(trial))
        node.start()
        load_until_down(node, history, seed=trial, bring_down=bring_down)
        cuts = disk.cuts_losing_bytes
        lost = disk.power_cut()
        # The mount was live and the cut took unsynced bytes away (at
        # least the info log's; whether a WAL tail or an append of the
        # store's own was in flight depends on the moment).
        assert disk.cuts_losing_bytes == cuts + 1
        del node.env["FAILPOINTS"]
        disk.mount()
        node.start()
        wrong = check(node, history)
        assert not wrong, f"{ending}, trial {trial} ({lost} bytes lost to the cut): {wrong[:5]}"
        node.stop()
        assert disk.power_cut() == 0
    print(f"power cuts after {ending}: {runs}, acknowledged writes: "
          f"{history.acknowledged_writes}, the store's unsynced bytes lost: "
          f"{disk.store_bytes_lost}, acknowledged writes lost: 0")
    assert history.acknowledged_writes > 0


def test_the_checker_sees_what_a_lying_fsync_loses(unsync_disk, node_on):
    """The same file system, but an fsync of a blob-log segment keeps
    nothing: objects acknowledged after it must then be missing or
    refused, never silently whole."""
    disk = unsync_disk(lie_about="/shard-*/blobs/*")
    node = node_on(disk)
    node.start()
    s3 = node.client()
    s3.create_bucket(Bucket="lies")
    bodies = {f"k{i}": os.urandom(300_000) for i in range(20)}
    for key, body in bodies.items():
        s3.put_object(Bucket="lies", Key=key, Body=body)
    node.kill9()
    disk.power_cut()
    disk.mount()
    node.start()
    intact = 0
    for key, body in bodies.items():
        try:
            intact += s3.get_object(Bucket="lies", Key=key)["Body"].read() == body
        except ClientError:
            pass  # an error is the honest answer
    print(f"lying fsync: {len(bodies)} acknowledged, {intact} intact after the power cut")
    assert intact < len(bodies)
