"""A full disk is a normal condition (issue 14): on a small loop-mounted
ext4, PUTs are refused with a clear error before the disk is exhausted,
reads, listings and deletes keep working, deleting frees space and PUTs
come back without a restart; a disk full to the last byte still lets the
node start; and no acknowledged object is lost at any point."""

import hashlib
import os
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Node, wait_until

MIB = 1 << 20
ARGS = ["--cores", "2", "--segment-size", "16MiB", "--disk-reserve", "96MiB",
        "--gc-grace", "1s"]


@pytest.fixture
def small_fs(tmp_path):
    """A 640 MiB ext4 (no root reserve, so it really fills) on a loop device."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a loop mount")
    image = tmp_path / "fs.img"
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["truncate", "-s", "640M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_to_last_byte(path, name):
    """Allocates every free byte of `path`'s filesystem to one file."""
    filler = os.path.join(path, name)
    free = free_bytes(path)
    if free > 0:
        subprocess.run(["fallocate", "-l", str(free), filler], check=False)
    # fallocate may leave a few blocks (metadata); take them too.
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def status_of(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def put_until_refused(s3, acked, prefix, limit=400):
    """PUTs distinct 4 MiB objects until one is refused; returns the error."""
    for i in range(limit):
        body = os.urandom(4 * MIB)
        key = f"{prefix}/{i}"
        try:
            s3.put_object(Bucket="full", Key=key, Body=body)
        except ClientError as e:
            return e
        acked[key] = hashlib.sha256(body).hexdigest()
    raise AssertionError(f"{limit} PUTs of 4 MiB fit on a 640 MiB disk")


def put_works(s3, acked, key):
    """Whether a 4 MiB PUT of `key` is taken now (recording it if so)."""
    body = os.urandom(4 * MIB)
    try:
        s3.put_object(Bucket="full", Key=key, Body=body)
    except ClientError:
        return False
    acked[key] = hashlib.sha256(body).hexdigest()
    return True


def all_intact(s3, acked):
    for key, digest in acked.items():
        body = s3.get_object(Bucket="full", Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digest, key


def healthz(node):
    import urllib.request
    with urllib.request.urlopen(node.admin + "/healthz", timeout=5) as r:
        return r.status, r.read().decode()


def node_on(fs, tmp_path, args):
    """A node whose data directory is on `fs`, logging elsewhere (a log on
    the full disk would fail to grow)."""
    node = Node(fs / "data", extra_args=args)
    node.log_path = str(tmp_path / f"node-{node.s3_port}.log")
    return node.start()


def test_a_full_disk_refuses_puts_and_comes_back(small_fs, tmp_path):
    data = small_fs / "data"
    node = node_on(small_fs, tmp_path, ARGS)
    try:
        s3 = node.client(max_pool_connections=8)
        s3.create_bucket(Bucket="full")
        wait_until(lambda: (data / "ballast").exists() and (data / "ballast-running").exists(),
                   10, "the ballast files")
        acked = {}

        # 1. Filling: PUTs are refused at the reserve with a clear error.
        refused = put_until_refused(s3, acked, "a")
        code = refused.response["Error"]["Code"]
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 507, refused
        assert code == "InsufficientStorage", refused
        assert free_bytes(small_fs) > 0, "the reserve was not kept"
        status, body = healthz(node)
        assert status == 200 and "disk below reserve" in body, body
        assert "shoal_data_dir_below_reserve 1" in node.metrics()

        # 2. Reads, listings and deletes still work.
        all_intact(s3, acked)
        listed = s3.list_objects_v2(Bucket="full", MaxKeys=1000)
        assert listed["KeyCount"] == len(acked)
        doomed = sorted(acked)[: len(acked) // 2]
        for key in doomed:
            s3.delete_object(Bucket="full", Key=key)
            del acked[key]

        # 3. Deleting frees space: PUTs resume without a restart.
        wait_until(lambda: put_works(s3, acked, "after-delete"), 30,
                   "PUTs to be taken again after deletes")
        all_intact(s3, acked)

        # 4. Full to the last byte (something else filled the disk), then
        # a restart: the node starts, serves reads and deletes.
        # (Space the deletes free keeps coming back for a few sweeps: let it
        # settle first, and top the filler up after the stop too.)
        time.sleep(3)
        filler = fill_to_last_byte(small_fs, "filler")
        # The node gives up its running ballast, so its metadata stores
        # keep room for deletes.
        wait_until(lambda: "released the running ballast file" in node.log_text(), 10,
                   "the running ballast to be released")
        assert free_bytes(small_fs) >= 32 * MIB
        gone = sorted(acked)[-1]
        s3.delete_object(Bucket="full", Key=gone)
        del acked[gone]
        node.stop()
        fill_to_last_byte(small_fs, "filler2")
        assert free_bytes(small_fs) < MIB
        node.start()
        assert "released the ballast file" in node.log_text()
        s3 = node.client(max_pool_connections=8)
        all_intact(s3, acked)
        with pytest.raises(ClientError) as full:
            s3.put_object(Bucket="full", Key="no-room", Body=os.urandom(MIB))
        assert status_of(full) == 507
        victim = sorted(acked)[0]
        s3.delete_object(Bucket="full", Key=victim)
        del acked[victim]
        os.remove(filler)
        os.remove(os.path.join(small_fs, "filler2"))
        wait_until(lambda: put_works(s3, acked, "after-filler"), 30,
                   "PUTs to be taken again once the filler is gone")
        all_intact(s3, acked)
    finally:
        node.stop()


def test_a_blob_log_that_finds_the_disk_full_recovers_without_a_restart(small_fs, tmp_path):
    """With no reserve, a PUT runs into ENOSPC inside the blob log: it is
    refused (507), nothing acknowledged is lost, and once space is back
    the shard takes writes again by itself."""
    node = node_on(small_fs, tmp_path, ["--cores", "1", "--segment-size", "16MiB",
                                        "--disk-reserve", "0", "--gc-grace", "1s"])
    try:
        s3 = node.client()
        s3.create_bucket(Bucket="full")
        acked = {}
        for i in range(8):
            body = os.urandom(4 * MIB)
            s3.put_object(Bucket="full", Key=f"before/{i}", Body=body)
            acked[f"before/{i}"] = hashlib.sha256(body).hexdigest()
        # Leave a little room, so metadata writes still fit but the next
        # large PUT's chunks do not.
        filler = os.path.join(small_fs, "filler")
        subprocess.run(["fallocate", "-l", str(free_bytes(small_fs) - 6 * MIB), filler],
                       check=True)
        with pytest.raises(ClientError) as full:
            s3.put_object(Bucket="full", Key="too-big", Body=os.urandom(32 * MIB))
        assert status_of(full) == 507, full.value.response
        all_intact(s3, acked)
        os.remove(filler)
        wait_until(lambda: put_works(s3, acked, "after"), 30, "the shard to take writes again")
        all_intact(s3, acked)
        assert "blob log taking appends again" in node.log_text()
        # And after a restart, too.
        node.stop()
        node.start()
        all_intact(node.client(), acked)
    finally:
        node.stop()
