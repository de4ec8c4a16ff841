"""The node driven by s3cmd (Debian's s3cmd 2.3, SigV4, path-style)."""

import hashlib
import os
import re
import subprocess

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY, require_tool

MIB = 1 << 20

# `s3cmd ls` prints `<date> <time> <size> <uri>`; the URI may hold spaces.
LS_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d\s+(\d+)\s+(s3://.*)$")


def s3cfg(node, path, extra=""):
    """An s3cmd config for `node` at `path`: path-style, plain HTTP, no
    retries, and `extra` lines."""
    host = f"127.0.0.1:{node.s3_port}"
    path.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\n"
        f"secret_key = {SECRET_KEY}\n"
        f"host_base = {host}\n"
        # No %(bucket)s: path-style requests.
        f"host_bucket = {host}\n"
        "use_https = False\n"
        # A failing request fails the command instead of being retried
        # after growing sleeps.
        "max_retries = 0\n"
        + extra
    )
    return path


@pytest.fixture
def s3cmd(node, tmp_path):
    """Runs s3cmd against `node` with a config of its own; returns the
    finished process, or with check=False whatever it did."""
    binary = require_tool("s3cmd", "s3cmd")
    conf = s3cfg(node, tmp_path / "s3cfg", f"signature_v2 = False\nbucket_location = {REGION}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def run(*args, check=True, timeout=180):
        cmd = [binary, "-c", str(conf), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check:
            assert proc.returncode == 0, (
                f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
            # s3cmd reports MD5 mismatches and retries as warnings, exit 0.
            assert "WARNING" not in proc.stderr, proc.stderr
        return proc

    return run


def parse_ls(out):
    listed = {}
    for line in out.splitlines():
        m = LS_LINE.match(line.strip())
        assert m, f"unexpected s3cmd ls line {line!r}"
        listed[m.group(2)] = int(m.group(1))
    return listed


def info_fields(out):
    return {k.strip(): v.strip() for k, v in re.findall(r"^\s+([^:]+):\s+(.*)$", out, re.M)}


def test_s3cmd_bucket_and_object_lifecycle(s3cmd, s3, tmp_path):
    bucket = "s3cmd-life"
    assert f"Bucket 's3://{bucket}/' created" in s3cmd("mb", f"s3://{bucket}").stdout
    assert f"s3://{bucket}" in s3cmd("ls").stdout.split()

    small = tmp_path / "small.txt"
    small.write_bytes(b"hello from s3cmd\n" * 10)
    mid = tmp_path / "mid.bin"
    mid_data = os.urandom(3 * MIB + 5)
    mid.write_bytes(mid_data)
    odd = tmp_path / "odd name.txt"
    odd.write_bytes("key with a space and \u00fcml\u00e4uts\n".encode())

    s3cmd("put", str(small), f"s3://{bucket}/docs/small.txt")
    s3cmd("put", str(mid), f"s3://{bucket}/data/mid.bin")
    s3cmd("put", str(odd), f"s3://{bucket}/docs/odd name \u00fc.txt")

    # The ETag of each object is the MD5 of what was sent.
    assert s3.head_object(Bucket=bucket, Key="data/mid.bin")["ETag"] == '"%s"' % hashlib.md5(mid_data).hexdigest()

    expected = {
        f"s3://{bucket}/data/mid.bin": len(mid_data),
        f"s3://{bucket}/docs/odd name \u00fc.txt": odd.stat().st_size,
        f"s3://{bucket}/docs/small.txt": small.stat().st_size,
    }
    assert parse_ls(s3cmd("ls", "--recursive", f"s3://{bucket}").stdout) == expected
    # Without --recursive: the common prefixes as directories.
    top = s3cmd("ls", f"s3://{bucket}").stdout.split("\n")
    assert sorted(line.split()[-1] for line in top if line) == [f"s3://{bucket}/data/", f"s3://{bucket}/docs/"]
    assert all(line.split()[0] == "DIR" for line in top if line)
    assert parse_ls(s3cmd("ls", f"s3://{bucket}/docs/").stdout) == {
        k: v for k, v in expected.items() if "/docs/" in k}
    du = s3cmd("du", f"s3://{bucket}").stdout.split()
    assert du[:3] == [str(sum(expected.values())), "3", "objects"], du

    # get checks the downloaded bytes against the ETag (a WARNING otherwise).
    for key, src in [("docs/small.txt", small), ("data/mid.bin", mid), ("docs/odd name \u00fc.txt", odd)]:
        out = tmp_path / "back"
        s3cmd("get", "--force", f"s3://{bucket}/{key}", str(out))
        assert out.read_bytes() == src.read_bytes(), key

    # A bucket with objects cannot be removed.
    refused = s3cmd("rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr, refused.stderr

    assert "delete: 's3://s3cmd-life/docs/small.txt'" in s3cmd("del", f"s3://{bucket}/docs/small.txt").stdout
    assert parse_ls(s3cmd("ls", "--recursive", f"s3://{bucket}").stdout) == {
        k: v for k, v in expected.items() if not k.endswith("small.txt")}
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    assert s3cmd("ls", "--recursive", f"s3://{bucket}").stdout == ""
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    assert f"Bucket 's3://{bucket}/' removed" in s3cmd("rb", f"s3://{bucket}").stdout
    assert f"s3://{bucket}" not in s3cmd("ls").stdout.split()
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3cmd_recursive_put_and_get(s3cmd, tmp_path):
    bucket = "s3cmd-tree"
    s3cmd("mb", f"s3://{bucket}")
    src = tmp_path / "tree"
    files = {f"d{d}/sub{s}/f{f}.bin": os.urandom(1000 * (d + 1) + s * 7 + f)
             for d in range(3) for s in range(2) for f in range(3)}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    # A trailing slash on the source uploads its contents, not the folder.
    s3cmd("put", "--recursive", str(src) + "/", f"s3://{bucket}/up/")
    assert parse_ls(s3cmd("ls", "--recursive", f"s3://{bucket}").stdout) == {
        f"s3://{bucket}/up/{k}": len(v) for k, v in files.items()}

    dst = tmp_path / "down"
    dst.mkdir()
    s3cmd("get", "--recursive", f"s3://{bucket}/up/", str(dst) + "/")
    got = {p.relative_to(dst).as_posix(): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    assert got == files

    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/up/")
    assert s3cmd("ls", "--recursive", f"s3://{bucket}").stdout == ""
    s3cmd("rb", f"s3://{bucket}")


def test_s3cmd_info_shows_md5(s3cmd, tmp_path):
    bucket = "s3cmd-info"
    s3cmd("mb", f"s3://{bucket}")
    body = b"what is the md5 of this\n" * 100
    src = tmp_path / "f.txt"
    src.write_bytes(body)
    s3cmd("put", "--mime-type", "text/x-s3cmd", str(src), f"s3://{bucket}/f.txt")
    fields = info_fields(s3cmd("info", f"s3://{bucket}/f.txt").stdout)
    assert fields["MD5 sum"] == hashlib.md5(body).hexdigest()
    assert fields["File size"] == str(len(body))
    assert fields["MIME type"] == "text/x-s3cmd"

    bucket_fields = info_fields(s3cmd("info", f"s3://{bucket}").stdout)
    assert bucket_fields["Location"] == REGION


def test_s3cmd_multipart_put(s3cmd, s3, tmp_path):
    """12 MiB in 5 MiB chunks: three parts, whose MD5 s3cmd keeps in its
    s3cmd-attrs metadata and checks on get."""
    bucket = "s3cmd-multipart"
    s3cmd("mb", f"s3://{bucket}")
    big = os.urandom(12 * MIB + 11)
    src = tmp_path / "big.bin"
    src.write_bytes(big)

    s3cmd("put", "--multipart-chunk-size-mb=5", str(src), f"s3://{bucket}/big/big.bin")
    assert parse_ls(s3cmd("ls", "--recursive", f"s3://{bucket}").stdout) == {
        f"s3://{bucket}/big/big.bin": len(big)}

    head = s3.head_object(Bucket=bucket, Key="big/big.bin")
    assert head["ContentLength"] == len(big)
    parts = [big[i:i + 5 * MIB] for i in range(0, len(big), 5 * MIB)]
    multipart_etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert head["ETag"] == f'"{multipart_etag}"'
    assert f"md5:{hashlib.md5(big).hexdigest()}" in head["Metadata"]["s3cmd-attrs"]

    back = tmp_path / "back.bin"
    s3cmd("get", f"s3://{bucket}/big/big.bin", str(back))
    assert back.read_bytes() == big

    fields = info_fields(s3cmd("info", f"s3://{bucket}/big/big.bin").stdout)
    assert fields["MD5 sum"] == hashlib.md5(big).hexdigest()
    assert fields["File size"] == str(len(big))

    s3cmd("del", f"s3://{bucket}/big/big.bin")
    assert s3cmd("ls", "--recursive", f"s3://{bucket}").stdout == ""
    s3cmd("rb", f"s3://{bucket}")


def test_s3cmd_with_its_default_region_works(node, tmp_path):
    """s3cmd's default `bucket_location` is `US` (S3's old name for
    us-east-1), which it also signs with: a newcomer's config has no
    bucket_location line at all."""
    binary = require_tool("s3cmd", "s3cmd")
    conf = s3cfg(node, tmp_path / "s3cfg-defaults")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    (tmp_path / "f.txt").write_text("default region\n")
    for args in (["mb", "s3://s3cmd-defaults"],
                 ["put", str(tmp_path / "f.txt"), "s3://s3cmd-defaults/f.txt"],
                 ["ls", "s3://s3cmd-defaults"]):
        proc = subprocess.run([binary, "-c", str(conf), *args], capture_output=True, text=True,
                              timeout=60, env=env)
        assert proc.returncode == 0, f"s3cmd {args}: {proc.stdout}{proc.stderr}"
    assert "s3://s3cmd-defaults/f.txt" in proc.stdout
