"""The admin endpoint: health and Prometheus metrics."""

import re
import urllib.request


def test_healthz(node):
    with urllib.request.urlopen(node.admin + "/healthz") as r:
        assert r.status == 200 and r.read() == b"ok\n"


def test_metrics_count_puts_and_group_commits(node, s3, bucket):
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"m{i}", Body=b"x" * 5000)
    text = node.metrics()

    def total(name):
        return sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))

    assert total("shoal_blob_log_appends_total") >= 4
    assert 1 <= total("shoal_blob_log_fsyncs_total") <= total("shoal_blob_log_appends_total")
    assert total("shoal_raft_entries_appended_total") >= 4
    assert re.search(r'^shoal_s3_requests_total\{operation="PutObject",status="2xx"\} ([1-9]\d*)$', text, re.M)
