"""awscli over a tree of about 100 MiB (`aws s3 cp/ls/sync/rm`, multipart
for the big files at awscli's default 8 MiB threshold), and the multipart
calls of `aws s3api` one at a time."""

import hashlib
import json
import os
import random
import re
import subprocess
import time

from conftest import ACCESS_KEY, REGION, SECRET_KEY
from test_awscli import aws

MIB = 1 << 20
KIB = 1 << 10

# `aws s3 ls --recursive` prints `<date> <time> <size> <key>`.
LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\d+) (.+)$")


def build_tree(root):
    """3 × 23 MiB (multipart at awscli's defaults), 2 × 5 MiB (one PUT each)
    and 200 files of random sizes up to 200 KiB in nested folders (empty
    files have a test of their own below). Returns {relative path: bytes}."""
    rng = random.Random(20240611)
    files = {}
    for i in range(3):
        files[f"big/video-{i}.bin"] = os.urandom(23 * MIB + i)
    for i in range(2):
        files[f"medium/archive {i}.tar"] = os.urandom(5 * MIB - 1 + i)
    dirs = ["", "a", "a/b", "a/b/c", "a/b/c/d", "logs/2024/01", "logs/2024/02", "with space/inner", "x-y_z"]
    for i in range(200):
        size = rng.randint(1, 200 * KIB)
        folder = dirs[i % len(dirs)]
        files[f"{folder}/f{i:03d}.dat".lstrip("/")] = os.urandom(size)
    # Dated a minute back, so that no object is older than its file even
    # where LastModified is rounded down to the second.
    past = time.time() - 60
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (past, past))
    return files


def remote_listing(node, uri):
    listed = {}
    for line in aws(node, "s3", "ls", "--recursive", uri).stdout.splitlines():
        m = LS_LINE.match(line)
        assert m, f"unexpected `aws s3 ls` line {line!r}"
        listed[m.group(2)] = int(m.group(1))
    return listed


def transfers(out, root, prefix):
    """The `upload:` and `delete:` lines of `aws s3 sync`, as relative paths."""
    uploads, deletes = set(), set()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("upload: "):
            src, dst = line[len("upload: "):].split(" to ", 1)
            assert dst == prefix + os.path.relpath(src, root), line
            uploads.add(os.path.relpath(src, root))
        elif line.startswith("delete: "):
            uri = line[len("delete: "):]
            assert uri.startswith(prefix), line
            deletes.add(uri[len(prefix):])
        else:
            assert not line, f"unexpected `aws s3 sync` line {line!r}"
    return uploads, deletes


def test_s3_tree_cp_ls_sync_rm(node, s3, tmp_path):
    tree = tmp_path / "tree"
    files = build_tree(tree)
    assert 85 * MIB < sum(map(len, files.values())) < 110 * MIB
    bucket = "cli-tree"
    prefix = f"s3://{bucket}/backup/"
    aws(node, "s3api", "create-bucket", "--bucket", bucket)

    up = aws(node, "s3", "cp", "--recursive", "--only-show-errors", str(tree), prefix)
    assert up.stdout == ""
    uploaded_at = time.time()
    assert remote_listing(node, prefix) == {f"backup/{k}": len(v) for k, v in files.items()}
    # The big files went up in parts (awscli's default 8 MiB chunks: 3 of
    # them), the rest in one PUT.
    for i in range(3):
        etag = s3.head_object(Bucket=bucket, Key=f"backup/big/video-{i}.bin")["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-3"', etag), etag
    etag = s3.head_object(Bucket=bucket, Key="backup/medium/archive 0.tar")["ETag"]
    assert etag == '"%s"' % hashlib.md5(files["medium/archive 0.tar"]).hexdigest()

    # Nothing changed: sync has nothing to do.
    again = aws(node, "s3", "sync", "--no-progress", str(tree), prefix)
    assert again.stdout.strip() == "", again.stdout

    # Change two files (one grows, one keeps its size but is newer), add one
    # and delete two; sync --delete moves exactly those.
    files["a/b/f002.dat"] = os.urandom(len(files["a/b/f002.dat"]) + 100)
    files["logs/2024/01/f005.dat"] = os.urandom(len(files["logs/2024/01/f005.dat"]))
    files["new/dir/added.txt"] = b"added after the first upload\n"
    for rel in ["a/b/f002.dat", "logs/2024/01/f005.dat", "new/dir/added.txt"]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(files[rel])
    # sync compares sizes and modification times; f005.dat keeps its size,
    # so only its time, later than the object's, says it changed. The
    # changed files are dated a second back so that a LastModified rounded
    # down to the second after the upload below is still not older.
    time.sleep(max(0.0, uploaded_at + 2 - time.time()))
    changed_at = time.time() - 1
    for rel in ["a/b/f002.dat", "logs/2024/01/f005.dat", "new/dir/added.txt"]:
        os.utime(tree / rel, (changed_at, changed_at))
    uploaded = s3.head_object(Bucket=bucket, Key="backup/logs/2024/01/f005.dat")["LastModified"]
    assert uploaded.timestamp() < changed_at
    for rel in ["x-y_z/f008.dat", "big/video-2.bin"]:
        (tree / rel).unlink()
        del files[rel]
    synced = aws(node, "s3", "sync", "--delete", "--no-progress", str(tree), prefix)
    uploads, deletes = transfers(synced.stdout, str(tree), prefix)
    assert uploads == {"a/b/f002.dat", "logs/2024/01/f005.dat", "new/dir/added.txt"}, synced.stdout
    assert deletes == {"x-y_z/f008.dat", "big/video-2.bin"}, synced.stdout
    assert remote_listing(node, prefix) == {f"backup/{k}": len(v) for k, v in files.items()}
    assert aws(node, "s3", "sync", "--delete", "--no-progress", str(tree), prefix).stdout.strip() == ""

    down = tmp_path / "down"
    aws(node, "s3", "cp", "--recursive", "--only-show-errors", prefix, str(down))
    got = {p.relative_to(down).as_posix(): p for p in down.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(files)
    for rel, data in files.items():
        assert got[rel].read_bytes() == data, rel

    removed = aws(node, "s3", "rm", "--recursive", prefix).stdout
    assert len([line for line in removed.splitlines() if "delete: s3://" in line]) == len(files)
    assert aws(node, "s3", "ls", "--recursive", f"s3://{bucket}/").stdout.strip() == ""
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    aws(node, "s3api", "delete-bucket", "--bucket", bucket)


def test_s3_cp_tree_with_empty_files_round_trips_promptly(node, tmp_path):
    """Empty files go up and come back empty, and do not stall the transfer.

    awscli sends `Expect: 100-continue` on every PUT, empty ones included.
    When a server answers an empty PUT with its final response and no
    `100 Continue`, botocore keeps that status line and reuses it for the
    next `Expect` request on the same pooled connection, misreads that
    response and waits for the connection to close (the node's 30 s header
    timeout). One transfer at a time makes the reuse certain."""
    tree = tmp_path / "tree"
    files = {"a-empty.txt": b"", "b.txt": b"b" * 1000, "c/d-empty": b"", "c/e.bin": os.urandom(3000),
             "f.txt": b"last\n"}
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    config = tmp_path / "aws-config"
    config.write_text("[default]\ns3 =\n  max_concurrent_requests = 1\n")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE=str(config),
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def run(*args):
        proc = subprocess.run(["aws", "--endpoint-url", node.endpoint, *args], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc

    run("s3api", "create-bucket", "--bucket", "cli-empty")
    started = time.monotonic()
    run("s3", "cp", "--recursive", "--only-show-errors", str(tree), "s3://cli-empty/")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"uploading {len(files)} small files took {elapsed:.1f}s"
    assert remote_listing(node, "s3://cli-empty/") == {k: len(v) for k, v in files.items()}

    down = tmp_path / "down"
    run("s3", "cp", "--recursive", "--only-show-errors", "s3://cli-empty/", str(down))
    assert {p.relative_to(down).as_posix(): p.read_bytes() for p in down.rglob("*") if p.is_file()} == files


def s3api(node, *args):
    out = aws(node, "s3api", *args).stdout
    return json.loads(out) if out.strip() else {}


def test_s3api_multipart_upload_complete_and_abort(node, tmp_path):
    bucket = "cli-mpu"
    key = "uploads/assembled.bin"
    s3api(node, "create-bucket", "--bucket", bucket)
    assert s3api(node, "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []

    created = s3api(node, "create-multipart-upload", "--bucket", bucket, "--key", key,
                    "--content-type", "application/x-assembled", "--metadata", "origin=s3api")
    assert created["Bucket"] == bucket and created["Key"] == key
    upload_id = created["UploadId"]
    assert upload_id

    parts = [os.urandom(5 * MIB + 1), os.urandom(MIB + 3)]
    etags = []
    for number, data in enumerate(parts, start=1):
        body = tmp_path / f"part{number}"
        body.write_bytes(data)
        put = s3api(node, "upload-part", "--bucket", bucket, "--key", key, "--upload-id", upload_id,
                    "--part-number", str(number), "--body", str(body))
        assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
        etags.append(put["ETag"])

    # --no-paginate: a paginated result keeps only the Parts list.
    listed = s3api(node, "list-parts", "--bucket", bucket, "--key", key, "--upload-id", upload_id,
                   "--no-paginate")
    assert listed["UploadId"] == upload_id
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (1, etags[0], len(parts[0])), (2, etags[1], len(parts[1]))]

    uploads = s3api(node, "list-multipart-uploads", "--bucket", bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]

    manifest = tmp_path / "parts.json"
    manifest.write_text(json.dumps({"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]}))
    done = s3api(node, "complete-multipart-upload", "--bucket", bucket, "--key", key, "--upload-id", upload_id,
                 "--multipart-upload", f"file://{manifest}")
    expected_etag = '"%s-2"' % hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert done["ETag"] == expected_etag
    assert done["Bucket"] == bucket and done["Key"] == key

    head = s3api(node, "head-object", "--bucket", bucket, "--key", key)
    assert head["ETag"] == expected_etag and head["ETag"].endswith('-2"')
    assert head["ContentLength"] == sum(map(len, parts))
    assert head["ContentType"] == "application/x-assembled"
    assert head["Metadata"] == {"origin": "s3api"}
    out = tmp_path / "out.bin"
    got = s3api(node, "get-object", "--bucket", bucket, "--key", key, str(out))
    assert got["ETag"] == expected_etag
    assert out.read_bytes() == b"".join(parts)
    # A completed upload is no longer in progress.
    assert s3api(node, "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []

    # An aborted upload leaves nothing behind: no upload, no parts, no object.
    other = s3api(node, "create-multipart-upload", "--bucket", bucket, "--key", "uploads/abandoned.bin")["UploadId"]
    body = tmp_path / "abandoned"
    body.write_bytes(os.urandom(MIB))
    s3api(node, "upload-part", "--bucket", bucket, "--key", "uploads/abandoned.bin", "--upload-id", other,
          "--part-number", "1", "--body", str(body))
    uploads = s3api(node, "list-multipart-uploads", "--bucket", bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("uploads/abandoned.bin", other)]
    s3api(node, "abort-multipart-upload", "--bucket", bucket, "--key", "uploads/abandoned.bin", "--upload-id", other)
    assert s3api(node, "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []
    gone = aws(node, "s3api", "list-parts", "--bucket", bucket, "--key", "uploads/abandoned.bin",
               "--upload-id", other, check=False)
    assert gone.returncode != 0 and "NoSuchUpload" in gone.stderr, gone.stderr
    keys = [o["Key"] for o in s3api(node, "list-objects-v2", "--bucket", bucket)["Contents"]]
    assert keys == [key]
