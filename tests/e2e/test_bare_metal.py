"""The bare-metal kit (issue 17): a node from a config file, one node over
several data directories (one per device), readiness told to systemd, and
the unit file itself."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Node, free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def shoal_bin():
    return os.environ.get("SHOAL_BIN", "/var/tmp/shoal-target/release/shoal")


def healthy(admin_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/healthz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def accepts(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_node_from_a_config_file_with_one_key_overridden_by_a_flag(tmp_path):
    """From a working directory, as the docs show: relative data-dir, keys
    and region in the file, and --s3-addr on the command line winning over
    the file's."""
    file_s3, flag_s3, admin = free_port(), free_port(), free_port()
    (tmp_path / "shoal.toml").write_text(
        f'''
s3-addr = "127.0.0.1:{file_s3}"
admin-addr = "127.0.0.1:{admin}"
data-dir = ["./data"]
region = "eu-west-1"
access-key = "{ACCESS_KEY}"
secret-key = "{SECRET_KEY}"
shards = 3
'''
    )
    log = open(tmp_path / "node.log", "wb")
    proc = subprocess.Popen(
        [shoal_bin(), "serve", "--config", "shoal.toml", "--s3-addr", f"127.0.0.1:{flag_s3}"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")},
    )
    try:
        wait_until(lambda: proc.poll() is None and healthy(admin), 60, "node from a config file")
        assert accepts(flag_s3), "the flag's S3 address serves"
        assert not accepts(file_s3), "the file's S3 address was overridden"
        import boto3
        from botocore.config import Config
        s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{flag_s3}", region_name="eu-west-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        s3.create_bucket(Bucket="configured",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="configured", Key="k", Body=b"from a config file")
        assert s3.get_object(Bucket="configured", Key="k")["Body"].read() == b"from a config file"
        layout = (tmp_path / "data" / "layout").read_text()
        assert "shards=3" in layout, layout
    finally:
        proc.terminate()
        assert proc.wait(40) == 0
        log.close()


def test_a_config_file_with_a_mistake_is_refused_by_name(tmp_path):
    (tmp_path / "shoal.toml").write_text('s3-adr = "127.0.0.1:9000"\n')
    run = subprocess.run([shoal_bin(), "serve", "--config", str(tmp_path / "shoal.toml")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "unknown keys s3-adr" in run.stderr, run.stderr
    assert str(tmp_path / "shoal.toml") in run.stderr

    (tmp_path / "shoal.toml").write_text('segment-size = "lots"\n')
    run = subprocess.run([shoal_bin(), "serve", "--config", str(tmp_path / "shoal.toml")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "--segment-size" in run.stderr and "lots" in run.stderr, run.stderr


@pytest.fixture
def two_devices(tmp_path):
    """Two small ext4 filesystems on loop devices (plain directories when
    not root): the mount points, and a function that unmounts or mounts
    the second."""
    mounts = [tmp_path / "nvme0", tmp_path / "nvme1"]
    for m in mounts:
        m.mkdir()
    if os.geteuid() != 0:
        yield mounts, None
        return
    images = [tmp_path / "nvme0.img", tmp_path / "nvme1.img"]
    # XFS as the deployment guide recommends (where mkfs.xfs is), and ext4.
    mkfs = [["mkfs.xfs", "-q", "-f"] if shutil.which("mkfs.xfs") else ["mkfs.ext4", "-q", "-F"],
            ["mkfs.ext4", "-q", "-F", "-m", "0"]]
    for image, mount, make in zip(images, mounts, mkfs):
        subprocess.run(["truncate", "-s", "512M", str(image)], check=True)
        subprocess.run(make + [str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)

    def second(mounted):
        if mounted:
            subprocess.run(["mount", "-o", "loop", str(images[1]), str(mounts[1])], check=True)
        else:
            subprocess.run(["umount", str(mounts[1])], check=True)

    yield mounts, second
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], check=False)


def refused_preflight(*dirs):
    """`shoal preflight` over `dirs`, expected to fail its layout check;
    returns its report."""
    args = [shoal_bin(), "preflight", "--probe-size", "4MiB", "--disk-reserve", "64MiB"]
    for d in dirs:
        args += ["--data-dir", str(d)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "FAIL  layout" in run.stdout, run.stdout
    return run.stdout


def test_two_data_directories_spread_shards_survive_kill9_and_refuse_missing_or_swapped(
        two_devices, tmp_path):
    (dev0, dev1), second_device = two_devices
    dirs = [dev0 / "shoal", dev1 / "shoal"]
    small = ["--segment-size", "16MiB", "--disk-reserve", "64MiB"]
    node = Node(dirs[0], cores=2,
                extra_args=["--data-dir", str(dirs[1]), "--shards", "4"] + small)
    node.log_path = str(tmp_path / "node.log")
    node.start()
    objects = {}
    try:
        s3 = node.client()
        s3.create_bucket(Bucket="spread")
        for i in range(48):
            # Embedded (1 KiB) and chunked (300 KiB) objects on every shard.
            body = hashlib.sha256(str(i).encode()).digest() * (32 if i % 2 else 9600)
            s3.put_object(Bucket="spread", Key=f"k{i}", Body=body)
            objects[f"k{i}"] = body
        for shard in range(4):
            home, away = (dirs[0], dirs[1]) if shard % 2 == 0 else (dirs[1], dirs[0])
            assert (home / f"shard-{shard:04}" / "meta").is_dir()
            assert not (away / f"shard-{shard:04}").exists()
        for d in dirs:
            blob_bytes = sum(f.stat().st_size for f in d.glob("shard-*/blobs/*.blob"))
            assert blob_bytes > 0, f"chunks reached {d}"
        metrics = node.metrics()
        for d in dirs:
            assert f'shoal_data_dir_free_bytes{{dir="{d}"}}' in metrics, metrics
        node.kill9()
        node.start()
        s3 = node.client()
        for key, body in objects.items():
            assert s3.get_object(Bucket="spread", Key=key)["Body"].read() == body, key
        listed = s3.list_objects_v2(Bucket="spread")["KeyCount"]
        assert listed == len(objects)
    finally:
        node.stop()

    swapped = Node(dirs[1], cores=2, extra_args=["--data-dir", str(dirs[0])])
    swapped.log_path = str(tmp_path / "swapped.log")
    swapped.launch()
    assert swapped.proc.wait(30) != 0
    log = swapped.log_text()
    assert "in the order the node was created with" in log, log
    assert f"({dirs[0]}, {dirs[1]})" in log, log

    out = refused_preflight(dirs[1], dirs[0])
    assert "in the order" in out, out

    one = Node(dirs[0], cores=2)
    one.log_path = str(tmp_path / "one.log")
    one.launch()
    assert one.proc.wait(30) != 0
    assert "created with 2 data directories; 1 given" in one.log_text()

    if second_device is None:
        return
    second_device(False)
    missing = Node(dirs[0], cores=2, extra_args=["--data-dir", str(dirs[1]), "--init"])
    missing.log_path = str(tmp_path / "missing.log")
    missing.launch()
    assert missing.proc.wait(30) != 0
    log = missing.log_text()
    assert f"is the device behind {dirs[1]} mounted?" in log, log
    assert not dirs[1].exists(), "nothing was created on the empty mount point"
    out = refused_preflight(dirs[0], dirs[1])
    assert "mounted?" in out, out
    assert not dirs[1].exists(), "preflight creates nothing either"
    second_device(True)
    node.start()
    try:
        s3 = node.client()
        assert s3.get_object(Bucket="spread", Key="k1")["Body"].read() == objects["k1"]
    finally:
        node.stop()


def test_ready_is_told_after_every_listener_is_bound_and_stopping_at_sigterm(tmp_path):
    """A fake service manager: a unix datagram socket in NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(path)
    manager.settimeout(60)
    node = Node(tmp_path / "data", cores=2, env={"NOTIFY_SOCKET": path})
    node.launch()
    try:
        message = manager.recv(4096).decode()
        # Checked at once: nothing may still be binding when READY arrives.
        s3_up, admin_up = accepts(node.s3_port), accepts(node.admin_port)
        assert message.startswith("READY=1\n"), message
        assert f"MAINPID={node.proc.pid}" in message, message
        assert "STATUS=serving S3" in message, message
        assert s3_up and admin_up, "READY=1 came before every listener was bound"
        assert node.healthy()
        node.proc.send_signal(signal.SIGTERM)
        message = manager.recv(4096).decode()
        assert message.startswith("STOPPING=1"), message
        assert node.proc.wait(40) == 0
    finally:
        node.stop()
        manager.close()


def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = open(os.path.join(ROOT, "contrib/systemd/shoal.service")).read()
    assert "Type=notify" in unit and "LimitMEMLOCK=infinity" in unit
    # verify checks that ExecStart's binary exists: point it at this build.
    local = tmp_path / "shoal.service"
    local.write_text(unit.replace("/usr/local/bin/shoal", os.path.abspath(shoal_bin())))
    run = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    complaints = [line for line in run.stderr.splitlines() if "shoal.service" in line]
    assert not complaints, complaints


def test_preflight_checks_the_configured_directories_and_fails_on_tmpfs(tmp_path):
    (tmp_path / "shoal.toml").write_text(
        f'data-dir = ["{tmp_path}/nvme0", "{tmp_path}/nvme1"]\ns3-addr = "0.0.0.0:9000"\n')
    run = subprocess.run(
        [shoal_bin(), "preflight", "--config", str(tmp_path / "shoal.toml"), "--probe-size", "8MiB"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    for name in ["io_uring", "memlock", "open files", "cpu governor", "filesystem", "O_DIRECT",
                 "io scheduler", "free space", "disk rate", "fdatasync"]:
        assert f" {name} " in out, (name, out)
    assert f"{tmp_path}/nvme1 does not exist yet" in out, out
    assert f"{tmp_path}: write+fdatasync" in out, out
    assert "are on one filesystem" in out, out
    assert "ok    config" in out and "ok    layout" in out, out
    assert out.rstrip().splitlines()[-1].endswith("0 failed"), out
    assert sorted(os.listdir(tmp_path)) == ["shoal.toml"], "nothing created, no scratch file left"

    # A file `shoal serve` would refuse fails here too.
    (tmp_path / "typo.toml").write_text('data-dir = ["/x"]\ns3-adr = "0.0.0.0:9000"\n')
    run = subprocess.run(
        [shoal_bin(), "preflight", "--config", str(tmp_path / "typo.toml"), "--probe-size", "4MiB"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "FAIL  config" in run.stdout and "s3-adr" in run.stdout, run.stdout

    if not os.path.isdir("/dev/shm"):
        return
    shm = f"/dev/shm/shoal-preflight-{os.getpid()}"
    try:
        run = subprocess.run([shoal_bin(), "preflight", "--data-dir", shm, "--probe-size", "4MiB"],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stdout
        assert "FAIL  filesystem" in run.stdout and "tmpfs" in run.stdout, run.stdout
    finally:
        shutil.rmtree(shm, ignore_errors=True)
