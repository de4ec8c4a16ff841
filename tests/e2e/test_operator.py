"""What an operator meets around the data path (issue 12): one node per
address and data directory, orderly stops on SIGTERM, logs on stderr,
`--version`, headers for features Shoal does not have refused with 501."""

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Node, ctl_bin, free_port, wait_until

MIB = 1 << 20


def shoal_bin():
    return os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")


def refused_start(node, timeout_s=30):
    """Launches `node`, expects it to exit non-zero; returns its log."""
    node.launch()
    code = node.proc.wait(timeout=timeout_s)
    assert code != 0, "a refused start must exit non-zero"
    return node.log_text()


def log_of_a_run(node):
    """Starts `node`, stops it once healthy, and returns its log."""
    node.start()
    try:
        return node.log_text()
    finally:
        node.stop()


def test_a_second_node_on_the_same_data_dir_is_refused_in_words(fresh_node):
    first = fresh_node()
    second = Node(first.data_dir)
    log = refused_start(second)
    assert f"data directory {first.data_dir} is in use by another shoal process (pid {first.proc.pid})" in log
    assert "LOCK" not in log, "a rocksdb lock error is not the operator's message"
    assert first.healthy(), "the first node keeps serving"


def test_a_second_node_on_the_same_address_is_refused(fresh_node, tmp_path):
    first = fresh_node()
    second = Node(tmp_path / "other-data")
    second.s3_port = first.s3_port
    log = refused_start(second)
    assert f"S3 address 127.0.0.1:{first.s3_port} is in use" in log
    third = Node(tmp_path / "third-data")
    third.admin_port = first.admin_port
    assert f"admin address 127.0.0.1:{first.admin_port} is in use" in refused_start(third)
    # The first node still answers every request (nothing split its port).
    s3 = first.client()
    s3.create_bucket(Bucket="still-mine")
    for _ in range(20):
        assert "still-mine" in [b["Name"] for b in first.client().list_buckets()["Buckets"]]


def test_admin_and_s3_on_one_address_is_refused(tmp_path):
    node = Node(tmp_path / "data")
    node.admin_port = node.s3_port
    log = refused_start(node)
    assert f"invalid --admin-addr \"127.0.0.1:{node.s3_port}\"" in log


def test_a_missing_data_dir_is_created_only_under_an_existing_parent_or_with_init(tmp_path):
    deep = tmp_path / "no" / "such" / "data"
    refused = Node(deep)
    refused.log_path = str(tmp_path / "refused.log")
    log = refused_start(refused)
    assert f"data directory {deep} does not exist, nor does its parent" in log and "--init" in log
    assert not deep.exists()
    node = Node(deep, extra_args=["--init"])
    node.log_path = str(tmp_path / "init.log")
    assert "created the data directory (--init)" in log_of_a_run(node)
    shallow = Node(tmp_path / "data")
    assert "created the data directory (its parent exists)" in log_of_a_run(shallow)


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_a_data_dir_on_tmpfs_is_warned_about(tmp_path):
    data = f"/dev/shm/shoal-e2e-{os.getpid()}-{free_port()}"
    node = Node(data)
    node.log_path = str(tmp_path / "tmpfs-node.log")
    try:
        assert "data directory is on tmpfs" in log_of_a_run(node)
    finally:
        subprocess.run(["rm", "-rf", data], check=False)


def block(seed):
    return (f"object {seed} ".encode() * (MIB // 9 + 1))[:MIB]


class SlowPut:
    """A PUT sent by hand, a MiB at a time with pauses, so it is still in
    flight when the node is told to stop. It asks `Expect: 100-continue`
    and sends its body only once the node said to: `sending` is set then,
    when the node has surely taken the request."""

    def __init__(self, node, bucket, key, size, seed):
        from rawhttp import signed_headers
        self.node, self.size, self.block = node, size, block(seed)
        self.path = f"/{bucket}/{key}"
        self.headers = signed_headers(node, "PUT", self.path,
                                      {"Content-Length": str(size), "Expect": "100-continue"})
        self.sending = threading.Event()
        self.status = None

    def run(self, pause_s=0.02):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.node.s3_port, timeout=120)
        try:
            conn.putrequest("PUT", self.path, skip_accept_encoding=True)
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                interim += conn.sock.recv(1)
            assert interim.startswith(b"HTTP/1.1 100"), interim
            left = self.size
            while left:
                n = min(MIB, left)
                conn.send(self.block[:n])
                left -= n
                self.sending.set()
                time.sleep(pause_s)
            self.status = conn.getresponse().status
        except Exception as e:  # noqa: BLE001 - the status says what happened
            self.status = repr(e)
        finally:
            self.sending.set()
            conn.close()


def test_sigterm_finishes_the_puts_in_flight_then_exits_0(fresh_node):
    node = fresh_node(extra_args=["--shutdown-timeout", "60s"])
    node.client().create_bucket(Bucket="drain")
    size = 24 * MIB
    puts = [SlowPut(node, "drain", f"obj-{i}", size, i) for i in range(16)]
    threads = [threading.Thread(target=p.run) for p in puts]
    for t in threads:
        t.start()
    for p in puts:
        assert p.sending.wait(30), "every PUT is sending before the signal"
    stopped_at = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=120)
    code = node.proc.wait(timeout=60)
    took = time.monotonic() - stopped_at
    assert code == 0, f"exit status {code}"
    assert took < 60, f"stopped after {took:.1f}s, past --shutdown-timeout"
    assert [p.status for p in puts] == [200] * 16
    log = node.log_text()
    for step in ("stopping: no new connections", "drained its connections", "metadata flushed",
                 "shoal::node: stopped"):
        assert step in log, f"the log names the step {step!r}"

    # Nothing acknowledged is lost.
    node.start()
    s3 = node.client()
    for i in range(16):
        got = s3.get_object(Bucket="drain", Key=f"obj-{i}")["Body"].read()
        assert len(got) == size and got[:MIB] == block(i)


def test_a_second_signal_exits_at_once(fresh_node):
    node = fresh_node(extra_args=["--shutdown-timeout", "60s"])
    node.client().create_bucket(Bucket="impatient")
    # A PUT that would take minutes keeps the first signal's drain waiting.
    slow = SlowPut(node, "impatient", "k", 500 * MIB, 0)
    threading.Thread(target=lambda: slow.run(pause_s=0.5), daemon=True).start()
    assert slow.sending.wait(30)
    node.proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert node.proc.poll() is None, "the first signal waits for the PUT"
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(timeout=5) == 128 + signal.SIGINT
    assert "second signal (SIGINT): exiting at once" in node.log_text()


def test_logs_go_to_stderr_without_colour_and_refusals_are_logged(tmp_path):
    s3_port, admin_port = free_port(), free_port()
    out, err = open(tmp_path / "stdout", "wb"), open(tmp_path / "stderr", "wb")
    env = dict(os.environ, SHOAL_ACCESS_KEY=ACCESS_KEY, SHOAL_SECRET_KEY=SECRET_KEY)
    env.pop("SHOAL_LOG", None)
    proc = subprocess.Popen(
        [shoal_bin(), "serve", "--data-dir", str(tmp_path / "data"),
         "--s3-addr", f"127.0.0.1:{s3_port}", "--admin-addr", f"127.0.0.1:{admin_port}",
         "--access-log"],
        env=env, stdout=out, stderr=err)
    node = Node(tmp_path / "data")
    node.s3_port, node.admin_port, node.proc = s3_port, admin_port, proc
    try:
        wait_until(node.healthy, 60, "the node")
        s3 = node.client()
        s3.create_bucket(Bucket="logged")
        s3.put_object(Bucket="logged", Key="a/b.txt", Body=b"twelve bytes")
        with pytest.raises(ClientError):
            node.client(secret="not-the-secret-at-all").list_buckets()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
        err.close()
    stderr = (tmp_path / "stderr").read_text()
    stdout = (tmp_path / "stdout").read_text()
    assert "shoal serving" in stderr and "shoal serving" not in stdout
    assert "\x1b[" not in stderr, "no colour codes when stderr is not a terminal"
    refused = [line for line in stderr.splitlines() if "request refused" in line]
    assert refused and "SignatureDoesNotMatch" in refused[0] and "not-the-secret" not in stderr
    access = [line for line in stderr.splitlines() if "shoal::access" in line and "a/b.txt" in line]
    assert access, "the access log has the PUT"
    assert re.search(r"method=PUT .*bucket=\"?logged\"? .*status=200 .*bytes_in=12", access[0]), access[0]
    assert "user=\"admin\"" in access[0] or "user=admin" in access[0], access[0]
    # openraft's info lines (votes, elections) stay out by default.
    assert "openraft" not in stderr


def test_json_logs_are_one_object_per_line(tmp_path):
    import json
    node = Node(tmp_path / "data", extra_args=["--log-format", "json"])
    log_of_a_run(node)
    lines = [line for line in node.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert any(r.get("message") == "shoal serving" for r in records), lines[:5]
    assert any(r.get("message") == "stopped" for r in records)


def test_version_names_the_commit(node):
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True, cwd=os.path.dirname(__file__))
    if commit.returncode != 0:
        pytest.skip("not a git checkout")
    commit = commit.stdout.strip()
    bench = os.environ.get("SHOAL_BENCH_BIN",
                           os.path.join(os.path.dirname(shoal_bin()), "shoal-bench"))
    for binary in (shoal_bin(), ctl_bin(), bench):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
        assert f"(commit {commit})" in out, f"{binary}: {out}"
    metrics = urllib.request.urlopen(node.admin + "/metrics", timeout=5).read().decode()
    assert f'shoal_build_info{{version="0.1.0",commit="{commit}"}} 1' in metrics


def test_an_open_admin_endpoint_is_warned_about(tmp_path):
    node = Node(tmp_path / "data")
    node.admin_host = "0.0.0.0"
    assert "without --admin-token" in log_of_a_run(node)


UNIMPLEMENTED = [
    # SSE-KMS: Shoal holds no KMS keys; storing plaintext would pretend.
    ({"x-amz-server-side-encryption": "aws:kms"}, "x-amz-server-side-encryption"),
    ({"x-amz-website-redirect-location": "/elsewhere"}, "x-amz-website-redirect-location"),
    ({"x-amz-storage-class": "GLACIER"}, "x-amz-storage-class"),
]


@pytest.mark.parametrize("headers,named", UNIMPLEMENTED, ids=[n for _, n in UNIMPLEMENTED])
def test_headers_of_unimplemented_features_are_refused(node, s3, bucket, headers, named):
    from rawhttp import send, signed_headers
    path = f"/{bucket}/refused"
    status, _, body = send(node, "PUT", path, signed_headers(node, "PUT", path, headers), b"plaintext")
    assert status == 501, body
    assert b"<Code>NotImplemented</Code>" in body and f"<Header>{named}</Header>".encode() in body
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="refused")
    assert e.value.response["Error"]["Code"] == "404", "nothing was stored"
    # The same on CreateMultipartUpload and CopyObject.
    s3.put_object(Bucket=bucket, Key="source", Body=b"x")
    for method, target, extra in (("POST", f"/{bucket}/mpu?uploads", {}),
                                  ("PUT", f"/{bucket}/copy", {"x-amz-copy-source": f"/{bucket}/source"})):
        status, _, body = send(node, method, target, signed_headers(node, method, target, {**headers, **extra}))
        assert status == 501, (method, body)


def test_harmless_values_of_those_headers_pass(s3, bucket):
    s3.put_object(Bucket=bucket, Key="standard", Body=b"x", StorageClass="STANDARD")
    assert s3.get_object(Bucket=bucket, Key="standard")["Body"].read() == b"x"


def test_a_get_with_an_sse_c_key_of_a_plaintext_object_is_refused(node, s3, bucket):
    from rawhttp import send, signed_headers
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    path = f"/{bucket}/plain"
    headers = {"x-amz-server-side-encryption-customer-algorithm": "AES256"}
    status, _, body = send(node, "GET", path, signed_headers(node, "GET", path, headers))
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body, body


def test_the_expected_bucket_owner_is_enforced(node, s3, bucket):
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=owner)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"y", ExpectedBucketOwner="someone-else")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_the_per_shard_budget_keeps_its_old_names(fresh_node):
    import json
    old_env = fresh_node(env={"SHOAL_PUT_BUDGET_PER_CORE": "2MiB"})
    old_flag = fresh_node(extra_args=["--put-budget-per-core", "3MiB"])
    new_flag = fresh_node(extra_args=["--put-budget-per-shard", "4MiB"])
    for node, mib in ((old_env, 2), (old_flag, 3), (new_flag, 4)):
        budgets = json.loads(urllib.request.urlopen(node.admin + "/admin/budgets", timeout=5).read())
        assert {s["capacity_bytes"] for s in budgets["shards"]} == {mib << 20}
