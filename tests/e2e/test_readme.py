"""The README, run as a newcomer runs it: its own commands, read from
README.md, from a fresh empty directory, on the default ports.

The install line runs too when `SHOAL_README_INSTALL=1` (`.ci/run` sets
it): the tests then use the binaries it installed. Otherwise the binaries
the suite built come first on PATH. Everything else is the README's text:
`shoal serve` with no flags, the aws CLI lines with the key pair the node
printed, SIGTERM; then `shoal-ctl local-cluster` with its defaults, a node
of it stopping, Ctrl-C."""

import contextlib
import os
import re
import signal
import socket
import subprocess

from conftest import require_tool, wait_until

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def section_blocks(title):
    """The ```sh blocks of the README section `## title`, as lists of lines."""
    text = open(README).read()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


REPO = os.path.join(os.path.dirname(__file__), "..", "..")
_installed = []


def readme_env():
    if os.environ.get("SHOAL_README_INSTALL") == "1":
        if not _installed:
            (install,) = [b for b in section_blocks("Run a node") if b[0].startswith("cargo install")]
            ran = run_script(install, REPO, dict(os.environ), timeout_s=3600)
            assert ran.returncode == 0, ran.stdout + ran.stderr
            _installed.append(True)
        cargo_bin = os.path.join(os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo")), "bin")
        env = dict(os.environ, PATH=cargo_bin + os.pathsep + os.environ["PATH"])
    else:
        bin_dir = os.path.dirname(os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal"))
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
    for name in ("SHOAL_ACCESS_KEY", "SHOAL_SECRET_KEY", "SHOAL_LOG", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


def port_free(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start_in_background(lines, cwd, env, log):
    """Runs a block whose last line is a long-running command, with that
    command in place of the shell (so signals reach it)."""
    script = "\n".join(["set -e", *lines[:-1], "exec " + lines[-1]])
    return subprocess.Popen(["bash", "-c", script], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


@contextlib.contextmanager
def running_in_background(lines, cwd, env, log_path):
    """`start_in_background` with its output in `log_path`; whatever the
    test leaves running is killed (with its process group) at the end."""
    with open(log_path, "wb") as log:
        proc = start_in_background(lines, cwd, env, log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def client_lines(block, export_line):
    """The client block with the printed key pair in place of the README's
    placeholder line."""
    placeholder = [line for line in block if line.startswith("export AWS_ACCESS_KEY_ID=...")]
    assert placeholder, "the README shows where the printed export line goes"
    return [export_line if line in placeholder else line for line in block]


def pids_running(argument):
    """Pids of the processes with `argument` among their arguments."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if argument.encode() in args:
            pids.append(int(entry))
    return pids


def run_script(lines, cwd, env, timeout_s=120):
    """Runs shell lines as one script that stops at the first failure."""
    return subprocess.run(["bash", "-c", "\n".join(["set -e", *lines])], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def wait_for_line(path, pattern, timeout_s, proc):
    found = []

    def present():
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {open(path).read()}")
        found[:] = re.findall(pattern, open(path).read(), re.M)
        return found

    wait_until(present, timeout_s, f"{pattern!r} in {path}")
    return found


def test_the_readme_quick_start_from_an_empty_directory(tmp_path):
    require_tool("aws", "awscli (pip)")
    for port in (9000, 9001):
        assert port_free(port), f"the README's port {port} is taken on this machine"
    install, serve, client = section_blocks("Run a node")[:3]
    assert any(line.startswith("cargo install") for line in install)
    assert serve[-1] == "shoal serve", "the README starts the node with no flags"
    env = readme_env()
    log_path = tmp_path / "shoal.out"
    with running_in_background(serve, tmp_path, env, log_path) as node:
        export = wait_for_line(log_path, r"^export AWS_ACCESS_KEY_ID=\S+ .*$", 60, node)[0]
        wait_for_line(log_path, r"shoal serving", 60, node)
        workdir = tmp_path / "shoal-demo"
        assert (workdir / "data" / "credentials").exists(), "./data is relative to where shoal ran"
        ran = run_script(client_lines(client, export), workdir, env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "hello, shoal" in ran.stdout, ran.stdout
        assert "hello.txt" in ran.stdout
        os.kill(node.pid, signal.SIGTERM)
        assert node.wait(timeout=40) == 0
    out = open(log_path).read()
    assert "shoal::node: stopped" in out and "\x1b[" not in out


def test_the_readme_local_cluster_with_its_defaults(tmp_path):
    require_tool("aws", "awscli (pip)")
    ports = [9000, 9001, 9010, 9011, 9020, 9021, 9100, 9101, 9110, 9111, 9120, 9121]
    for port in ports:
        assert port_free(port), f"local-cluster's default port {port} is taken on this machine"
    (start,) = section_blocks("Run a local cluster")
    assert start[-1] == "shoal-ctl local-cluster", "the README starts it with its defaults"
    env = readme_env()
    log_path = tmp_path / "local-cluster.out"
    with running_in_background(start, tmp_path, env, log_path) as proc:
        wait_for_line(log_path, r"cluster of 3 nodes running", 180, proc)
        exports = wait_for_line(log_path, r"^export AWS_.*$", 5, proc)
        workdir = tmp_path / "cluster-demo"
        secret = workdir / "local-cluster" / "cluster-secret"
        assert oct(secret.stat().st_mode & 0o777) == "0o600"
        ran = run_script([*exports,
                          "echo replicated > r.txt",
                          "aws s3 mb s3://demo",
                          "aws s3 cp r.txt s3://demo/",
                          "aws --endpoint-url http://127.0.0.1:9020 s3 cp s3://demo/r.txt -"],
                         workdir, env)
        assert ran.returncode == 0 and "replicated" in ran.stdout, ran.stdout + ran.stderr

        # One node stops: the others keep running and serving.
        pids = pids_running(f"{workdir}/local-cluster/node-3")
        assert pids, "node 3's process"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for_line(log_path, r"node 3 exited .*the others keep running", 10, proc)
        assert proc.poll() is None
        again = run_script([*exports, "aws s3 ls s3://demo/"], workdir, env)
        assert again.returncode == 0 and "r.txt" in again.stdout, again.stdout + again.stderr

        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    # Every node is gone and its ports are free again.
    wait_until(lambda: all(port_free(p) for p in (9000, 9010)), 10, "the nodes' ports")


def test_the_readme_config_file_and_preflight_from_an_empty_directory(tmp_path):
    require_tool("aws", "awscli (pip)")
    for port in (9000, 9001):
        assert port_free(port), f"the README's port {port} is taken on this machine"
    (block,) = section_blocks("Deploy on a host")
    assert block[-1] == "shoal serve --config shoal.toml"
    env = readme_env()
    log_path = tmp_path / "shoal.out"
    with running_in_background(block, tmp_path, env, log_path) as node:
        export = wait_for_line(log_path, r"^export AWS_ACCESS_KEY_ID=\S+ .*$", 60, node)[0]
        wait_for_line(log_path, r"shoal serving", 60, node)
        out = open(log_path).read()
        # preflight ran first and found nothing that stops a node.
        assert re.search(r"^\d+ checks: \d+ ok, \d+ warnings, 0 failed$", out, re.M), out
        assert "./nvme1" in out or f"{tmp_path}/nvme1" in out, out
        for name in ("nvme0", "nvme1"):
            layout = (tmp_path / name / "layout").read_text()
            assert "devices=2" in layout, layout
        assert (tmp_path / "nvme0" / "credentials").exists()
        ran = run_script([export, "echo spread > s.txt",
                          "aws --endpoint-url http://127.0.0.1:9000 s3 mb s3://conf",
                          "aws --endpoint-url http://127.0.0.1:9000 s3 cp s.txt s3://conf/",
                          "aws --endpoint-url http://127.0.0.1:9000 s3 cp s3://conf/s.txt -"],
                         tmp_path, env)
        assert ran.returncode == 0 and "spread" in ran.stdout, ran.stdout + ran.stderr
        os.kill(node.pid, signal.SIGTERM)
        assert node.wait(timeout=40) == 0
