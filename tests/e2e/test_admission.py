"""PUT admission control: budgets, fail-fast 503s, waits that time out,
borrowing from the shared pool, live retuning, and units that always come
back."""

import json
import os
import re
import socket
import time
import urllib.request
from urllib.parse import quote

import pytest

import rawhttp
from conftest import sample_total, wait_until

MIB = 1 << 20


def tiny_node(fresh_node, *extra, env=None):
    return fresh_node(cores=1, env=env, extra_args=["--shards", "1", "--put-budget-per-core", "1MiB",
                                                    "--admission-timeout", "500ms", *extra])


class SlowUpload:
    """A PUT that sends part of its body and then stalls, holding budget."""

    def __init__(self, node, bucket, key, total=4 * MIB, sent=200_000):
        path = f"/{bucket}/{key}"
        headers = rawhttp.signed_headers(node, "PUT", path, {"Content-Length": str(total)})
        head = (f"PUT {quote(path)} HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        self.sock = socket.create_connection(("127.0.0.1", node.s3_port), timeout=10)
        self.sock.sendall(head.encode() + os.urandom(sent))

    def abandon(self):
        self.sock.close()


def inflight(node):
    return sample_total(node.metrics(), "shoal_s3_put_admission_inflight_bytes")


def rejections(node, stage, protocol):
    return sample_total(node.metrics(), "shoal_s3_put_admission_rejections_total", stage=stage, protocol=protocol)


def test_no_headroom_is_503_instead_of_100_continue(fresh_node):
    node = tiny_node(fresh_node)
    s3 = node.client()
    s3.create_bucket(Bucket="full")
    s3.put_object(Bucket="full", Key="readable", Body=b"still readable")
    slow = SlowUpload(node, "full", "slow")
    wait_until(lambda: inflight(node) == MIB, 10, "the slow upload to hold the whole budget")

    path = "/full/blocked"
    headers = rawhttp.signed_headers(node, "PUT", path, {"Expect": "100-continue", "Content-Length": "5000"})
    first, _ = rawhttp.expect_continue_with_headers(node, path, headers)
    assert first.startswith("HTTP/1.1 503"), first
    assert rejections(node, "prereserve", "fixed-length") >= 1

    # Reads are never charged, so they go on while PUTs are refused.
    assert s3.get_object(Bucket="full", Key="readable")["Body"].read() == b"still readable"
    s3.head_object(Bucket="full", Key="readable")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="full")["Contents"]] == ["readable"]

    # A client that disconnects mid-body gives its units back.
    slow.abandon()
    wait_until(lambda: inflight(node) == 0, 10, "the abandoned upload's units to come back")
    first, final = rawhttp.expect_continue(node, "full", "after", b"y" * 5000)
    assert first.startswith("HTTP/1.1 100") and final.startswith("HTTP/1.1 200"), (first, final)
    with pytest.raises(Exception):
        s3.head_object(Bucket="full", Key="slow")


def test_503_carries_slowdown_retry_after_and_close(fresh_node):
    node = tiny_node(fresh_node)
    node.client().create_bucket(Bucket="full2")
    slow = SlowUpload(node, "full2", "slow")
    wait_until(lambda: inflight(node) == MIB, 10, "the slow upload to hold the budget")
    path = "/full2/refused"
    headers = rawhttp.signed_headers(node, "PUT", path, {"Content-Length": "10"})
    code, resp_headers, body = rawhttp.send(node, "PUT", path, headers, b"0123456789")
    assert code == 503
    assert b"<Code>SlowDown</Code>" in body
    assert 1 <= int(resp_headers["retry-after"]) <= 10
    assert resp_headers["connection"].lower() == "close"
    slow.abandon()


def test_chunked_upload_waits_then_times_out(fresh_node):
    node = tiny_node(fresh_node)
    s3 = node.client()
    s3.create_bucket(Bucket="wait")
    slow = SlowUpload(node, "wait", "slow")
    wait_until(lambda: inflight(node) == MIB, 10, "the slow upload to hold the budget")
    started = time.monotonic()
    code, headers, body = rawhttp.put_unsigned_trailer(node, "wait", "chunked", os.urandom(100_000))
    waited = time.monotonic() - started
    assert code == 503 and b"<Code>SlowDown</Code>" in body, body
    assert waited >= 0.45, waited
    assert rejections(node, "perbatch", "chunked") >= 1
    assert sample_total(node.metrics(), "shoal_s3_put_admission_wait_seconds_count",
                        stage="perbatch", protocol="chunked") >= 1
    slow.abandon()
    wait_until(lambda: inflight(node) == 0, 10, "units to come back")
    with pytest.raises(Exception):
        s3.head_object(Bucket="wait", Key="chunked")


def test_objects_larger_than_the_budget_still_complete(fresh_node):
    node = tiny_node(fresh_node)
    s3 = node.client()
    s3.create_bucket(Bucket="big")
    body = os.urandom(6 * MIB + 1)
    s3.put_object(Bucket="big", Key="fixed", Body=body)
    assert s3.get_object(Bucket="big", Key="fixed")["Body"].read() == body
    # aws-chunked pays as it decodes: many units over time, one at a time.
    code, _, resp = rawhttp.put_unsigned_trailer(node, "big", "chunked", body)
    assert code == 200, resp
    assert s3.get_object(Bucket="big", Key="chunked")["Body"].read() == body
    code, _, resp = rawhttp.put_streaming_signed(node, "big", "signed-chunked", body)
    assert code == 200, resp
    wait_until(lambda: inflight(node) == 0, 10, "every unit to come back")


def test_a_full_slice_borrows_from_the_shared_pool(fresh_node):
    node = tiny_node(fresh_node, "--put-budget-shared", "8MiB")
    s3 = node.client()
    s3.create_bucket(Bucket="borrow")
    slow = SlowUpload(node, "borrow", "slow")
    wait_until(lambda: inflight(node) == MIB, 10, "the slow upload to hold the slice")
    second = SlowUpload(node, "borrow", "slow2")
    wait_until(lambda: sample_total(node.metrics(), "shoal_s3_put_admission_borrowed_bytes") == MIB, 10,
               "the second upload to borrow a unit")
    body = os.urandom(3 * MIB)
    s3.put_object(Bucket="borrow", Key="fast", Body=body)
    assert s3.get_object(Bucket="borrow", Key="fast")["Body"].read() == body
    slow.abandon()
    second.abandon()
    wait_until(lambda: inflight(node) == 0, 10, "units to come back")
    assert sample_total(node.metrics(), "shoal_s3_put_admission_shared_inflight_bytes") == 0


def test_budgets_retune_live(fresh_node):
    node = tiny_node(fresh_node)
    node.client().create_bucket(Bucket="retune")
    slow = SlowUpload(node, "retune", "slow")
    wait_until(lambda: inflight(node) == MIB, 10, "the slow upload to hold the budget")
    req = urllib.request.Request(node.admin + "/admin/budgets?put-budget-per-core=16MiB", method="PUT")
    with urllib.request.urlopen(req) as r:
        state = json.loads(r.read())
    assert state["shards"][0]["capacity_bytes"] == 16 * MIB
    assert sample_total(node.metrics(), "shoal_s3_put_admission_capacity_bytes", shard="0") == 16 * MIB
    first, final = rawhttp.expect_continue(node, "retune", "now-fits", b"z" * 5000)
    assert first.startswith("HTTP/1.1 100") and final.startswith("HTTP/1.1 200"), (first, final)
    bad = urllib.request.Request(node.admin + "/admin/budgets?put-budget-per-core=lots", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400
    slow.abandon()


def test_units_come_back_after_ordinary_traffic(node, s3, bucket):
    for i in range(8):
        s3.put_object(Bucket=bucket, Key=f"u{i}", Body=os.urandom(MIB + i))
    wait_until(lambda: inflight(node) == 0, 10, "every unit to come back")
    text = node.metrics()
    for name in ["shoal_s3_put_admission_inflight_bytes", "shoal_s3_put_admission_capacity_bytes",
                 "shoal_s3_put_admission_borrowed_bytes"]:
        assert re.search(rf'^{name}{{shard="0"}} \d+$', text, re.M), name
    for stage in ["prereserve", "perbatch"]:
        for protocol in ["fixed-length", "chunked"]:
            assert re.search(
                rf'^shoal_s3_put_admission_rejections_total{{shard="0",stage="{stage}",protocol="{protocol}"}} \d+$',
                text, re.M)
    assert "shoal_s3_put_admission_wait_seconds_bucket{" in text


def test_a_failed_commit_gives_its_units_back(fresh_node):
    # The suite's node binary has fault points compiled in (tests/run.sh);
    # this one makes every manifest commit fail.
    node = tiny_node(fresh_node, env={"FAILPOINTS": "shard::commit_object=return"})
    s3 = node.client()
    s3.create_bucket(Bucket="failing")
    body = os.urandom(3 * MIB)
    for key in ["first", "second"]:
        with pytest.raises(Exception) as e:
            s3.put_object(Bucket="failing", Key=key, Body=body)
        assert e.value.response["Error"]["Code"] == "InternalError"
        wait_until(lambda: inflight(node) == 0, 10, "the failed upload's units to come back")
        with pytest.raises(Exception):
            s3.head_object(Bucket="failing", Key=key)
    # Nothing leaked: the whole (1 MiB) budget admits the next PUT at once.
    first, final = rawhttp.expect_continue(node, "failing", "third", b"t" * 5000)
    assert first.startswith("HTTP/1.1 100"), first
    assert final.startswith("HTTP/1.1 500"), final


def test_a_body_that_stops_is_timed_out_and_its_budget_returned(fresh_node):
    node = tiny_node(fresh_node, "--body-idle-timeout", "1s")
    s3 = node.client()
    s3.create_bucket(Bucket="idle")
    slow = SlowUpload(node, "idle", "stalled")
    wait_until(lambda: inflight(node) == MIB, 10, "the stalled upload to hold the whole budget")
    started = time.monotonic()
    answer = b""
    while b"</Error>" not in answer:
        chunk = slow.sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"<Code>RequestTimeout</Code>" in answer
    assert b"connection: close" in answer.lower()
    assert waited < 5, f"answered after {waited:.1f}s"
    assert inflight(node) == 0, "its budget came back at once"
    s3.put_object(Bucket="idle", Key="next", Body=b"n" * 500_000)
    assert s3.get_object(Bucket="idle", Key="next")["Body"].read() == b"n" * 500_000
    slow.abandon()


def test_a_get_whose_client_stops_reading_is_dropped(fresh_node):
    node = fresh_node(cores=1, extra_args=["--body-idle-timeout", "1s"])
    s3 = node.client()
    s3.create_bucket(Bucket="unread")
    body = os.urandom(16 * MIB)
    s3.put_object(Bucket="unread", Key="big", Body=body)
    headers = rawhttp.signed_headers(node, "GET", "/unread/big")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", node.s3_port))
    sock.sendall((f"GET /unread/big HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
    first = sock.recv(1000)
    assert first.startswith(b"HTTP/1.1 200"), first[:100]
    time.sleep(4)  # reads nothing: the node gives the response up after 1 s
    sock.settimeout(10)
    received = len(first)
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    sock.close()
    assert received < len(body), "the connection was closed before the body was sent"
    assert s3.get_object(Bucket="unread", Key="big")["Body"].read() == body


def unread_get(node, path):
    """A GET whose client reads the status line and then nothing more."""
    headers = rawhttp.signed_headers(node, "GET", path)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(("127.0.0.1", node.s3_port))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{node.s3_port}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
    assert sock.recv(100).startswith(b"HTTP/1.1 200")
    return sock


def test_gets_that_stop_reading_hold_no_more_than_the_download_budget(fresh_node):
    """Downloads whose clients stall hold at most --get-budget; past it a
    new GET of a large object waits --admission-timeout and gets 503
    SlowDown (counted) while small objects are still served (their own
    lane), and once the stalled clients are dropped GETs are served again."""
    # 7 MiB: an eighth for small chunks, 6.125 MiB for large ones.
    node = fresh_node(cores=1, extra_args=["--get-budget", "7MiB", "--admission-timeout", "500ms",
                                           "--body-idle-timeout", "3s"])
    s3 = node.client()
    s3.create_bucket(Bucket="downloads")
    body = os.urandom(16 * MIB)
    s3.put_object(Bucket="downloads", Key="big", Body=body)
    s3.put_object(Bucket="downloads", Key="small", Body=b"s" * 4096)
    stalled = []
    # Each stalled GET holds two chunks at most (one sent, one read ahead).
    for _ in range(3):
        stalled.append(unread_get(node, "/downloads/big"))
    held = lambda: sample_total(node.metrics(), "shoal_get_budget_held_bytes")  # noqa: E731
    wait_until(lambda: held() == 6 * MIB, 5, "the stalled GETs to hold the whole budget")
    with pytest.raises(Exception) as refused:
        s3.get_object(Bucket="downloads", Key="big")
    assert "SlowDown" in str(refused.value), refused.value
    assert sample_total(node.metrics(), "shoal_get_budget_refused_total") >= 1
    assert s3.get_object(Bucket="downloads", Key="small")["Body"].read() == b"s" * 4096
    # The stalled clients are dropped after --body-idle-timeout, and
    # their budget comes back.
    wait_until(lambda: held() == 0, 15, "the stalled GETs to be dropped")
    assert s3.get_object(Bucket="downloads", Key="big")["Body"].read() == body
    assert s3.get_object(Bucket="downloads", Key="small")["Body"].read() == b"s" * 4096
    for sock in stalled:
        sock.close()
