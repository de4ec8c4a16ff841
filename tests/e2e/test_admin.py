"""The admin endpoint: health and Prometheus metrics."""

import re
import subprocess
import urllib.request

import pytest

from conftest import require_tool, sample_total


def test_healthz(node):
    with urllib.request.urlopen(node.admin + "/healthz") as r:
        assert r.status == 200 and r.read() == b"ok\n"


def test_metrics_count_requests_bytes_and_group_commits(node, s3, bucket):
    before = node.metrics()
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"m{i}", Body=b"x" * 5000)
    s3.get_object(Bucket=bucket, Key="m0")["Body"].read()
    with pytest.raises(Exception):
        s3.get_object(Bucket=bucket, Key="missing")
    after = node.metrics()

    def delta(name, **labels):
        return sample_total(after, name, **labels) - sample_total(before, name, **labels)

    assert delta("shoal_s3_requests_total", operation="PutObject", status="200") == 4
    assert delta("shoal_s3_requests_total", operation="GetObject", status="200") == 1
    assert delta("shoal_s3_requests_total", operation="GetObject", status="404") == 1
    assert delta("shoal_s3_request_duration_seconds_count", operation="PutObject") == 4
    assert delta("shoal_s3_request_duration_seconds_bucket", operation="PutObject", le="+Inf") == 4
    assert delta("shoal_s3_received_bytes_total") >= 4 * 5000
    assert delta("shoal_s3_sent_bytes_total") >= 5000
    assert delta("shoal_blob_log_appends_total") == 4
    fsyncs = delta("shoal_blob_log_fsyncs_total")
    assert 1 <= fsyncs <= 4
    assert delta("shoal_blob_log_group_commit_batch_size_sum") == 4
    assert delta("shoal_raft_entries_appended_total") >= 4
    assert delta("shoal_raft_log_appended_bytes_total") > 0
    # Every shard reports its gauges.
    shards = set(re.findall(r'^shoal_hop_queue_depth\{shard="(\d+)"\}', after, re.M))
    assert shards and shards == set(re.findall(r'^shoal_shard_ops_inflight\{shard="(\d+)"\}', after, re.M))


def test_metrics_pass_promtool(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"promtool")
    promtool = require_tool("promtool", "prometheus")
    proc = subprocess.run([promtool, "check", "metrics"], input=node.metrics(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_healthz_reports_a_shard_whose_disk_failed(fresh_node):
    # Fault point (the suite's node is built with them): every fdatasync of
    # the blob log fails, which poisons the log of the shard that tries.
    node = fresh_node(cores=1, extra_args=["--shards", "1"],
                      env={"FAILPOINTS": "blob_log::fdatasync=return"})
    s3 = node.client()
    s3.create_bucket(Bucket="sick")
    with pytest.raises(Exception) as e:
        # Over --embed-max, so the body goes to the blob log.
        s3.put_object(Bucket="sick", Key="k", Body=b"never durable" * 1000)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(urllib.error.HTTPError) as h:
        urllib.request.urlopen(node.admin + "/healthz")
    assert h.value.code == 503 and b"failed shards: 0" in h.value.read()
    # The node still answers what it can: reads of metadata, and metrics.
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["sick"]
    assert "shoal_blob_log_appends_total" in node.metrics()
