"""The same node driven by awscli (`aws s3api`, `aws s3`)."""

import hashlib
import json
import os
import subprocess


from conftest import ACCESS_KEY, REGION, SECRET_KEY


def aws(node, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    proc = subprocess.run(["aws", "--endpoint-url", node.endpoint, *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_s3api_operations(node, tmp_path):
    aws(node, "s3api", "create-bucket", "--bucket", "cli-bucket")
    listed = json.loads(aws(node, "s3api", "list-buckets").stdout)
    assert "cli-bucket" in [b["Name"] for b in listed["Buckets"]]
    aws(node, "s3api", "head-bucket", "--bucket", "cli-bucket")

    src = tmp_path / "in.bin"
    data = os.urandom(5 * (1 << 20) + 17)
    src.write_bytes(data)
    put = json.loads(aws(node, "s3api", "put-object", "--bucket", "cli-bucket", "--key", "dir/file.bin",
                         "--body", str(src), "--content-type", "text/x-cli",
                         "--metadata", "origin=awscli").stdout)
    assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()

    head = json.loads(aws(node, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "dir/file.bin").stdout)
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "text/x-cli"
    assert head["Metadata"] == {"origin": "awscli"}

    out = tmp_path / "out.bin"
    aws(node, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "dir/file.bin", str(out))
    assert out.read_bytes() == data

    ranged = tmp_path / "range.bin"
    aws(node, "s3api", "get-object", "--bucket", "cli-bucket", "--key", "dir/file.bin",
        "--range", "bytes=1048000-1049000", str(ranged))
    assert ranged.read_bytes() == data[1048000:1049001]

    listing = json.loads(aws(node, "s3api", "list-objects-v2", "--bucket", "cli-bucket", "--prefix", "dir/").stdout)
    assert [o["Key"] for o in listing["Contents"]] == ["dir/file.bin"]

    aws(node, "s3api", "delete-object", "--bucket", "cli-bucket", "--key", "dir/file.bin")
    missing = aws(node, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "dir/file.bin", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
    aws(node, "s3api", "delete-bucket", "--bucket", "cli-bucket")


def test_s3_cp_and_ls_small_files(node, tmp_path):
    aws(node, "s3api", "create-bucket", "--bucket", "cli-cp")
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    for i in range(5):
        aws(node, "s3", "cp", str(tmp_path / f"f{i}.txt"), f"s3://cli-cp/tree/f{i}.txt")
    ls = aws(node, "s3", "ls", "s3://cli-cp/tree/").stdout
    assert all(f"f{i}.txt" in ls for i in range(5))
    back = tmp_path / "back.txt"
    aws(node, "s3", "cp", "s3://cli-cp/tree/f3.txt", str(back))
    assert back.read_text() == "file 3\n" * 4


def test_wrong_secret_fails_in_awscli(node):
    env_secret = "0" * 40
    proc = subprocess.run(
        ["aws", "--endpoint-url", node.endpoint, "s3api", "list-buckets"],
        env=dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=env_secret,
                 AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_CONFIG_FILE="/dev/null",
                 AWS_SHARED_CREDENTIALS_FILE="/dev/null"),
        capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "SignatureDoesNotMatch" in proc.stderr


def test_s3_cp_and_rm_recursive_tree(node, tmp_path):
    aws(node, "s3api", "create-bucket", "--bucket", "cli-rm")
    tree = tmp_path / "tree"
    for d in range(3):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(4):
            (tree / f"d{d}" / f"f{f}.txt").write_text(f"{d}/{f}\n")
    aws(node, "s3", "cp", "--recursive", str(tree), "s3://cli-rm/tree/")
    assert aws(node, "s3", "ls", "--recursive", "s3://cli-rm/tree/").stdout.count("\n") == 12
    aws(node, "s3", "rm", "--recursive", "s3://cli-rm/tree/")
    assert aws(node, "s3", "ls", "--recursive", "s3://cli-rm/").stdout.strip() == ""
    aws(node, "s3api", "delete-bucket", "--bucket", "cli-rm")
