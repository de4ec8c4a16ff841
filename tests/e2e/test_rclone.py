"""The node driven by rclone (Debian's rclone, an S3 remote of provider
`Other`, path-style): copy a tree up, check it, list it, copy it back, sync
changes, delete and purge."""

import base64
import hashlib
import json
import os
import re
import subprocess

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY, require_tool

MIB = 1 << 20

# rclone uploads files at or above the cutoff in parts of the chunk size; 5M
# is the smallest S3 allows, so a 12 MiB file becomes three parts.
MULTIPART_FLAGS = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"]


@pytest.fixture
def rclone(node, tmp_path):
    """Runs rclone against `node` through a remote named `shoal`; returns the
    finished process. Retries are off so that a failing request fails the
    command instead of being retried away."""
    binary = require_tool("rclone", "rclone")
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[shoal]\n"
        "type = s3\n"
        "provider = Other\n"
        f"access_key_id = {ACCESS_KEY}\n"
        f"secret_access_key = {SECRET_KEY}\n"
        f"endpoint = {node.endpoint}\n"
        f"region = {REGION}\n"
        "force_path_style = true\n"
    )

    # rclone's AWS SDK reads AWS_* variables (AWS_CA_BUNDLE makes it fail on a
    # plain-HTTP endpoint), and RCLONE_* ones override flags: keep neither.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env["RCLONE_CONFIG"] = str(conf)

    def run(*args, timeout=180):
        cmd = [binary, "--config", str(conf), "--retries", "1", "--low-level-retries", "1", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        assert proc.returncode == 0, (
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        return proc

    return run


def write_tree(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def parse_ls(out):
    """`rclone ls` prints `<size> <path>` with the size right-aligned."""
    listed = {}
    for line in out.splitlines():
        size, path = line.strip().split(" ", 1)
        listed[path] = int(size)
    return listed


def small_tree():
    return {
        "top.txt": b"top of the tree\n",
        "empty.bin": b"",
        "dir/a.bin": os.urandom(100 * 1024),
        "dir/sub/b.bin": os.urandom(MIB + 7),
        "dir/sub/deeper/c.txt": b"deep\n" * 1000,
        "with space/and+plus & amp.txt": b"odd characters in the key\n",
        "\u00fcn\u00efc\u00f8d\u00e9/na\u00efve.txt": "non-ASCII key \u00e9\n".encode(),
        # Below the 5M cutoff: one PUT.
        "mid.bin": os.urandom(4 * MIB + 1),
    }


def object_keys(s3, bucket, prefix=""):
    keys = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            keys[o["Key"]] = o["Size"]
    return keys


def assert_check_clean(proc, files):
    """`rclone check` prints its verdict on stderr."""
    assert "0 differences found" in proc.stderr, proc.stderr
    assert f"{files} matching files" in proc.stderr, proc.stderr
    # Every object had a hash to compare, not just a size.
    assert "hashes could not be checked" not in proc.stderr, proc.stderr


def test_rclone_copy_check_list_and_copy_back(rclone, s3, tmp_path):
    files = small_tree()
    src = tmp_path / "src"
    write_tree(src, files)
    remote = "shoal:rclone-tree/backup"

    rclone("mkdir", "shoal:rclone-tree")
    assert "rclone-tree/" in rclone("lsf", "shoal:").stdout.splitlines()

    rclone("copy", str(src), remote, *MULTIPART_FLAGS)
    # The keys as another client sees them.
    assert object_keys(s3, "rclone-tree") == {f"backup/{k}": len(v) for k, v in files.items()}

    assert_check_clean(rclone("check", str(src), remote), len(files))
    assert_check_clean(rclone("check", "--download", str(src), remote), len(files))

    assert sorted(rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()) == sorted(files)
    assert sorted(rclone("lsf", "--dirs-only", remote).stdout.splitlines()) == sorted(
        ["dir/", "with space/", "\u00fcn\u00efc\u00f8d\u00e9/"])
    assert parse_ls(rclone("ls", remote).stdout) == {k: len(v) for k, v in files.items()}
    # Both listing versions agree.
    assert parse_ls(rclone("ls", "--s3-list-version", "2", remote).stdout) == {k: len(v) for k, v in files.items()}

    # The MD5 rclone reads back (the ETag of a single-part object) is the
    # content's.
    listed = json.loads(rclone("lsjson", "-R", "--files-only", "--hash", remote).stdout)
    assert {e["Path"]: e["Hashes"]["md5"] for e in listed} == {
        k: hashlib.md5(v).hexdigest() for k, v in files.items()}
    assert {e["Path"]: e["Size"] for e in listed} == {k: len(v) for k, v in files.items()}

    # A second copy finds everything up to date: sizes and the modification
    # times rclone keeps in metadata came back unchanged.
    again = rclone("copy", "-v", str(src), remote, *MULTIPART_FLAGS)
    assert "Copied" not in again.stderr and "Updated modification time" not in again.stderr, again.stderr
    assert "There was nothing to transfer" in again.stderr, again.stderr
    assert re.search(rf"Checks:\s+{len(files)} / {len(files)}, 100%", again.stderr), again.stderr

    dst = tmp_path / "dst"
    rclone("copy", remote, str(dst))
    assert read_tree(dst) == files
    # rclone sets the local modification times from the object metadata.
    for rel in files:
        assert abs((dst / rel).stat().st_mtime - (src / rel).stat().st_mtime) < 1, rel


def test_rclone_sync_transfers_only_changes(rclone, s3, tmp_path):
    files = small_tree()
    src = tmp_path / "src"
    write_tree(src, files)
    remote = "shoal:rclone-sync"
    rclone("mkdir", remote)
    rclone("sync", str(src), remote)

    # One file changed, one added, one deleted.
    changed = os.urandom(100 * 1024)
    (src / "dir/a.bin").write_bytes(changed)
    (src / "dir/new.txt").write_bytes(b"new file\n")
    (src / "top.txt").unlink()
    synced = rclone("sync", "-v", str(src), remote)
    copied = sorted(line.split("INFO  : ", 1)[1].split(":", 1)[0]
                    for line in synced.stderr.splitlines() if "Copied" in line)
    deleted = [line.split("INFO  : ", 1)[1].split(":", 1)[0]
               for line in synced.stderr.splitlines() if ": Deleted" in line]
    assert copied == ["dir/a.bin", "dir/new.txt"], synced.stderr
    assert deleted == ["top.txt"], synced.stderr

    expected = dict(files, **{"dir/a.bin": changed, "dir/new.txt": b"new file\n"})
    del expected["top.txt"]
    assert object_keys(s3, "rclone-sync") == {k: len(v) for k, v in expected.items()}
    assert s3.get_object(Bucket="rclone-sync", Key="dir/a.bin")["Body"].read() == changed
    assert_check_clean(rclone("check", str(src), remote), len(expected))


def test_rclone_delete_and_purge(rclone, s3, tmp_path):
    files = small_tree()
    src = tmp_path / "src"
    write_tree(src, files)
    rclone("mkdir", "shoal:rclone-purge")
    rclone("copy", str(src), "shoal:rclone-purge")

    # Deleting under a prefix leaves the rest.
    rclone("delete", "shoal:rclone-purge/dir")
    rest = {k: len(v) for k, v in files.items() if not k.startswith("dir/")}
    assert parse_ls(rclone("ls", "shoal:rclone-purge").stdout) == rest
    assert object_keys(s3, "rclone-purge") == rest

    # A filtered delete removes only what matches.
    rclone("delete", "--include", "*.txt", "shoal:rclone-purge")
    rest = {k: v for k, v in rest.items() if not k.endswith(".txt")}
    assert rest == {"empty.bin": 0, "mid.bin": 4 * MIB + 1}
    assert parse_ls(rclone("ls", "shoal:rclone-purge").stdout) == rest

    rclone("delete", "shoal:rclone-purge")
    assert rclone("lsf", "-R", "shoal:rclone-purge").stdout == ""
    assert object_keys(s3, "rclone-purge") == {}
    # `delete` keeps the bucket, `purge` removes it.
    assert "rclone-purge/" in rclone("lsf", "shoal:").stdout.splitlines()

    rclone("copy", str(src), "shoal:rclone-purge")
    rclone("purge", "shoal:rclone-purge")
    assert "rclone-purge/" not in rclone("lsf", "shoal:").stdout.splitlines()
    assert "rclone-purge" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_rclone_multipart_upload(rclone, s3, tmp_path):
    """A file over the upload cutoff goes up in three 5 MiB parts; rclone
    keeps its MD5 in metadata since the ETag of a multipart object is not
    one, and `check` compares against it."""
    big = os.urandom(12 * MIB + 3)
    files = {"small.txt": b"next to a big one\n", "nested/big.bin": big}
    src = tmp_path / "src"
    write_tree(src, files)
    remote = "shoal:rclone-multipart"
    rclone("mkdir", remote)

    rclone("copy", str(src), remote, *MULTIPART_FLAGS)
    assert object_keys(s3, "rclone-multipart") == {k: len(v) for k, v in files.items()}
    head = s3.head_object(Bucket="rclone-multipart", Key="nested/big.bin")
    assert head["ContentLength"] == len(big)
    # Three parts: 5 MiB, 5 MiB, 2 MiB + 3.
    assert head["ETag"].endswith('-3"'), head["ETag"]
    assert head["Metadata"]["md5chksum"] == base64.b64encode(hashlib.md5(big).digest()).decode()

    assert_check_clean(rclone("check", str(src), remote), len(files))
    assert_check_clean(rclone("check", "--download", str(src), remote), len(files))
    listed = json.loads(rclone("lsjson", "-R", "--files-only", "--hash", remote).stdout)
    assert {e["Path"]: e["Hashes"]["md5"] for e in listed} == {
        k: hashlib.md5(v).hexdigest() for k, v in files.items()}

    again = rclone("copy", "-v", str(src), remote, *MULTIPART_FLAGS)
    assert "There was nothing to transfer" in again.stderr, again.stderr

    dst = tmp_path / "dst"
    rclone("copy", remote, str(dst), "--multi-thread-streams", "4", "--multi-thread-cutoff", "5M")
    assert read_tree(dst) == files

    rclone("purge", remote)
    assert "rclone-multipart" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
