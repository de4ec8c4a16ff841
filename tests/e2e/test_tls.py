"""TLS (issue 17): HTTPS on the S3 port checked by boto3 against a test CA,
a renewed certificate taken on SIGHUP without a restart, and a 3-node
cluster whose peer links are mutual TLS under the cluster's CA."""

import json
import os
import signal
import socket
import ssl
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY, Node, wait_until
from test_cluster import Cluster, form


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class ScratchCA:
    """A throwaway CA in `root` that signs certificates for 127.0.0.1."""

    def __init__(self, root, name="shoal-test-ca"):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cert = root / f"{name}.pem"
        self.key = root / f"{name}.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                "-subj", f"/CN={name}", cwd=root)

    def issue(self, name, common_name=None):
        """A certificate (and key) for `localhost` and 127.0.0.1; returns
        their paths."""
        key, csr, cert = (self.root / f"{name}.key", self.root / f"{name}.csr",
                          self.root / f"{name}.pem")
        ext = self.root / f"{name}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name or name}",
                cwd=self.root)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
                cwd=self.root)
        return cert, key


def served_common_name(port, ca):
    """The CN of the certificate a new connection to `port` is served."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
            return subject["commonName"]


def https_client(node, ca):
    return boto3.client(
        "s3", endpoint_url=f"https://127.0.0.1:{node.s3_port}", region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, verify=str(ca),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_https_with_a_test_ca_and_a_certificate_reloaded_on_sighup(tmp_path):
    ca = ScratchCA(tmp_path / "pki")
    cert, key = ca.issue("s3", common_name="first")
    served_cert, served_key = tmp_path / "s3.pem", tmp_path / "s3.key"
    served_cert.write_bytes(cert.read_bytes())
    served_key.write_bytes(key.read_bytes())
    node = Node(tmp_path / "data", cores=2,
                extra_args=["--tls-cert", str(served_cert), "--tls-key", str(served_key)])
    node.start()
    try:
        s3 = https_client(node, ca.cert)
        s3.create_bucket(Bucket="secure")
        body = os.urandom(3 << 20)
        s3.put_object(Bucket="secure", Key="k", Body=body)
        assert s3.get_object(Bucket="secure", Key="k")["Body"].read() == body
        assert served_common_name(node.s3_port, ca.cert) == "first"

        # Without the CA the client refuses the server.
        untrusting = boto3.client(
            "s3", endpoint_url=f"https://127.0.0.1:{node.s3_port}", region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1}))
        with pytest.raises(Exception, match="(?i)certificate"):
            untrusting.list_buckets()
        # Plain HTTP on the TLS port gets no S3 answer.
        with socket.create_connection(("127.0.0.1", node.s3_port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not raw.recv(4096).startswith(b"HTTP/1.1")

        # A renewed certificate, taken on SIGHUP by new connections.
        cert2, key2 = ca.issue("s3-renewed", common_name="second")
        served_cert.write_bytes(cert2.read_bytes())
        served_key.write_bytes(key2.read_bytes())
        node.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served_common_name(node.s3_port, ca.cert) == "second", 10,
                   "the renewed certificate to be served")
        assert s3.get_object(Bucket="secure", Key="k")["Body"].read() == body

        # The load generator speaks HTTPS too, trusting the same CA.
        bench_bin = os.environ.get("SHOAL_BENCH_BIN", "/var/tmp/shoal-target/release/shoal-bench")
        run = subprocess.run(
            [bench_bin, "put", "--endpoint", f"https://127.0.0.1:{node.s3_port}",
             "--ca-file", str(ca.cert), "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
             "--bucket", "bench-tls", "--size", "1MiB", "--count", "20", "--concurrency", "4",
             "--json", "-"],
            capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        (step,) = json.loads(run.stdout)["steps"]
        assert step["ok"] == 20 and step["transport_errors"]["total"] == 0, step

        # A broken renewal keeps the working certificate.
        served_key.write_text("not a key\n")
        node.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "still serving the previous one" in node.log_text(), 10,
                   "the failed reload to be logged")
        assert node.proc.poll() is None
        assert served_common_name(node.s3_port, ca.cert) == "second"
        assert https_client(node, ca.cert).head_bucket(Bucket="secure")
    finally:
        node.stop()


def test_an_unusable_certificate_stops_the_start_before_anything_is_created(tmp_path):
    node = Node(tmp_path / "data", extra_args=["--tls-cert", str(tmp_path / "missing.pem"),
                                               "--tls-key", str(tmp_path / "missing.key")])
    node.launch()
    assert node.proc.wait(timeout=30) != 0
    assert f"S3 TLS: {tmp_path}/missing.pem" in node.log_text()
    assert not (tmp_path / "data").exists()


def test_sighup_without_tls_does_not_stop_the_node(fresh_node):
    node = fresh_node()
    node.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "no TLS certificate to reload" in node.log_text(), 10, "the SIGHUP log line")
    assert node.healthy()


def test_a_cluster_with_tls_peer_links(tmp_path):
    ca = ScratchCA(tmp_path / "pki")
    certs = {i: ca.issue(f"node{i}") for i in (1, 2, 3)}
    cluster = Cluster(tmp_path / "cluster")

    def tls_args(node_id, authority=ca):
        cert, key = certs[node_id]
        return ["--peer-tls-cert", str(cert), "--peer-tls-key", str(key),
                "--peer-tls-ca", str(authority.cert)]

    try:
        form(cluster, extra={i: tls_args(i) for i in (1, 2, 3)})
        s3 = cluster.nodes[1].client()
        s3.create_bucket(Bucket="replicated")
        body = os.urandom(2 << 20)
        s3.put_object(Bucket="replicated", Key="k", Body=body)
        for node_id in (2, 3):
            got = cluster.nodes[node_id].client().get_object(Bucket="replicated", Key="k")
            assert got["Body"].read() == body

        # A peer port speaks TLS first: a plain handshake gets nowhere.
        port = cluster.peer_ports[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.settimeout(5)
            raw.sendall(b"\x00\x00\x00\x10" + b"\x00" * 16)
            try:
                answer = raw.recv(4096)
            except (ConnectionResetError, socket.timeout):
                answer = b""
            assert not answer or answer[0] == 0x15, answer  # nothing, or a TLS alert

        # A node whose certificate another CA signed cannot join.
        other = ScratchCA(tmp_path / "other-pki", name="another-ca")
        certs[4] = other.issue("node4")
        node = cluster.launch(4, join=1, extra=tls_args(4, authority=other))
        # Refused at once, as a wrong secret is, not retried until the join deadline.
        assert node.proc.wait(timeout=30) != 0
        assert "peer TLS refused" in node.log_text()

        # Nor can one whose certificate is its own (self-signed), though it
        # trusts the cluster's CA: the members refuse it.
        selfsigned = ScratchCA(tmp_path / "self-pki", name="node5-self")
        certs[5] = (selfsigned.cert, selfsigned.key)
        node = cluster.launch(5, join=1, extra=tls_args(5))
        assert node.proc.wait(timeout=30) != 0
        assert "peer TLS refused" in node.log_text()
        members = cluster.overview(1)["shards"][0]["members"]
        assert sorted(m["node_id"] for m in members) == [1, 2, 3]
    finally:
        cluster.stop_all()
