"""End-to-end fixtures: real `shoal` processes on loopback, real S3 clients.

`SHOAL_BIN` names the binary under test (tests/run.sh builds it). Every node
gets its own data directory and free ports, and is killed at teardown.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "SHOALTESTACCESSKEY01"
SECRET_KEY = "shoal-test-secret-key-0123456789abcdefgh"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s, what):
    """Polls `predicate` until it is truthy or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - a node still starting refuses connections
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def require_tool(name, package):
    """The path of an external tool the suite drives; skipped when it is
    missing on a developer machine, a failure in CI (which installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (Debian package {package})")
        pytest.skip(f"{name} not installed")
    return path


def ctl_bin():
    default = os.path.join(
        os.path.dirname(os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")), "shoal-ctl")
    return os.environ.get("SHOAL_CTL_BIN", default)


def ctl(node, *args, token=None, check=True):
    """Runs `shoal-ctl` against `node`'s admin endpoint."""
    env = dict(os.environ, SHOAL_ADMIN_ADDR=node.admin.removeprefix("http://"))
    if token:
        env["SHOAL_ADMIN_TOKEN"] = token
    result = subprocess.run([ctl_bin(), *args], env=env, capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, f"shoal-ctl {args}: {result.stderr}"
    return result


def sample_total(text, name, **labels):
    """Sum of every sample of `name` in Prometheus text whose labels
    include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def metric_sum(node, name, **labels):
    """The sum of `name` over its series on `node` (those with `labels`)."""
    return sample_total(node.metrics(), name, **labels)


class Node:
    """One running shoal process."""

    def __init__(self, data_dir, cores=None, extra_args=(), env=None, keys=True):
        """`keys=False` starts it without a configured key pair (a first
        node then generates one; a joining node takes the cluster's)."""
        self.data_dir = str(data_dir)
        self.keys = keys
        # Where the node listens (both ports), and what runs it: a fault
        # test puts a node in a network namespace by changing both.
        self.host = "127.0.0.1"
        self.admin_host = self.host
        self.launcher = []
        self.s3_port = free_port()
        self.admin_port = free_port()
        # Two free ports asked one after the other may be the same one (the
        # first was closed): a node given it twice refuses to start.
        while self.admin_port == self.s3_port:
            self.admin_port = free_port()
        self.cores = cores
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(self.data_dir), f"node-{self.s3_port}.log")

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.s3_port}"

    @property
    def admin(self):
        host = self.host if self.admin_host == "0.0.0.0" else self.admin_host
        return f"http://{host}:{self.admin_port}"

    def start(self):
        self.launch()
        wait_until(self.healthy, 60, f"node on port {self.s3_port} to become healthy")
        return self

    def launch(self):
        """Starts the process without waiting for it to become healthy."""
        binary = os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")
        args = self.launcher + [
            binary, "serve",
            "--data-dir", self.data_dir,
            "--s3-addr", f"{self.host}:{self.s3_port}",
            "--admin-addr", f"{self.admin_host}:{self.admin_port}",
        ]
        if self.cores:
            args += ["--cores", str(self.cores)]
        args += self.extra_args
        env = dict(os.environ, **self.env)
        if self.keys:
            env.update(SHOAL_ACCESS_KEY=ACCESS_KEY, SHOAL_SECRET_KEY=SECRET_KEY)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"shoal exited with {self.proc.returncode}; log: {self.log_path}")
        with urllib.request.urlopen(self.admin + "/healthz", timeout=1) as r:
            return r.status == 200

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill9()
        if getattr(self, "log", None):
            self.log.close()

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def metrics(self):
        with urllib.request.urlopen(self.admin + "/metrics", timeout=5) as r:
            return r.read().decode()

    def client(self, secret=SECRET_KEY, access=ACCESS_KEY, s3_config=None, **config):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            region_name=REGION,
            config=Config(
                s3={"addressing_style": "path", **(s3_config or {})},
                retries={"max_attempts": 1, "mode": "standard"},
                **config,
            ),
        )


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("node") / "data").start()
    yield n
    n.stop()


@pytest.fixture
def fresh_node(tmp_path):
    """A node of its own, for tests that kill or restart it."""
    nodes = []

    def make(**kwargs):
        n = Node(tmp_path / f"data{len(nodes)}", **kwargs).start()
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.stop()


@pytest.fixture
def s3(node):
    return node.client()


_bucket_counter = [0]


@pytest.fixture
def bucket(s3):
    """A new, empty bucket (left behind: buckets are cheap)."""
    _bucket_counter[0] += 1
    name = f"test-{os.getpid()}-{_bucket_counter[0]}"
    s3.create_bucket(Bucket=name)
    return name
