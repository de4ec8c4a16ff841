"""Three real nodes forming a cluster (issue 6, first step): per-shard raft
groups over authenticated peer connections, metadata (buckets, users,
keys) replicated to every node, leader failover, a wiped node rejoining,
and a wrong cluster secret refused.

Chunk bytes go to the replicas on the peer transport (blob offload), never
through raft. Any node takes writes: a follower forwards them to the
leader."""

import datetime
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import Node, ctl, wait_until

SHARDS = 2
MIB = 1 << 20
SECRET = "a-cluster-secret-for-tests-0123"


def free_port_run(count):
    """A port p such that p .. p+count-1 are all free (shard i listens on
    p+i). Taken below the ephemeral range (32768 and up on Linux): a node
    restarted on its old peer ports must not find one of them in use as
    the local port of some outgoing connection."""
    for _ in range(200):
        base = random.randrange(20_000, 32_000 - count)
        held = []
        try:
            for i in range(count):
                t = socket.socket()
                held.append(t)
                t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for t in held:
                t.close()
    raise RuntimeError("no run of free ports")


class Cluster:
    def __init__(self, root, args=()):
        """`args` go to every node (e.g. `--blob-offload false`)."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret_file = root / "cluster-secret"
        self.secret_file.write_text(SECRET + "\n")
        self.args = list(args)
        self.nodes = {}
        self.peer_ports = {}

    def host(self, node_id):
        """The address node `node_id` listens on."""
        return "127.0.0.1"

    def new_node(self, node_id, data, args, keys):
        return Node(data, cores=1, extra_args=args, keys=keys)

    def launch(self, node_id, join=None, secret_file=None, wipe=False, extra=(), keys=True):
        if node_id not in self.peer_ports:
            self.peer_ports[node_id] = free_port_run(SHARDS)
        data = self.root / f"node{node_id}" / "data"
        data.parent.mkdir(exist_ok=True)
        if wipe and data.exists():
            subprocess.run(["rm", "-rf", str(data)], check=True)
        args = [
            "--shards", str(SHARDS), "--node-id", str(node_id),
            "--peer-addr", f"{self.host(node_id)}:{self.peer_ports[node_id]}",
            "--cluster-secret-file", str(secret_file or self.secret_file),
        ]
        if join is not None:
            args += ["--join", f"{self.host(join)}:{self.peer_ports[join]}"]
        node = self.new_node(node_id, data, args + self.args + list(extra), keys)
        self.nodes[node_id] = node
        return node.launch()

    def start(self, node_id, **kwargs):
        node = self.launch(node_id, **kwargs)
        wait_until(node.healthy, 60, f"node {node_id} to become healthy")
        return node

    def overview(self, node_id):
        node = self.nodes[node_id]
        return json.loads(urllib.request.urlopen(node.admin + "/admin/cluster", timeout=5).read())

    def leaders(self, node_id):
        return [s.get("leader") for s in self.overview(node_id)["shards"]]

    def stop_all(self):
        for node in self.nodes.values():
            node.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()


def form(cluster, extra=None, count=3):
    """Starts nodes 1..`count` (node 1 bootstraps) and waits until every
    node sees them all as voters and a leader in every group. `extra` maps
    a node id to more flags for it."""
    extra = extra or {}
    ids = list(range(1, count + 1))
    cluster.start(1, extra=extra.get(1, ()))
    for node_id in ids[1:]:
        cluster.start(node_id, join=1, extra=extra.get(node_id, ()))
    for node_id in ids:
        wait_until(
            lambda: all(
                sorted(m["node_id"] for m in s["members"] if m["voter"]) == ids
                and s["leader"] is not None
                for s in cluster.overview(node_id)["shards"]
            ),
            30, f"node {node_id} to see {count} voters in every group",
        )


def test_three_nodes_share_buckets_users_and_keys(cluster):
    form(cluster)
    # Node 1 led every group as it formed them; each group then moves to
    # its preferred leader (shard i: the i-th voter by id), so the groups
    # are spread over the nodes.
    wait_until(lambda: cluster.leaders(2) == cluster.leaders(3) == [1, 2], 20,
               "the leaders to spread over the nodes")
    table = ctl(cluster.nodes[2], "cluster").stdout
    assert len(table.strip().splitlines()) == SHARDS + 1 and "3@" in table

    first = cluster.nodes[1].client()
    first.create_bucket(Bucket="everywhere")
    created = json.loads(ctl(cluster.nodes[1], "user", "add", "app").stdout)
    for node_id in (2, 3):
        node = cluster.nodes[node_id]
        wait_until(lambda: "everywhere" in [b["Name"] for b in node.client().list_buckets()["Buckets"]],
                   5, f"the bucket on node {node_id}")
        app = node.client(access=created["access_key"], secret=created["secret_key"])
        wait_until(lambda: app.list_buckets()["Owner"]["DisplayName"] == "app", 5, "the user everywhere")

    # A key disabled on one node is refused by all of them once applied.
    ctl(cluster.nodes[1], "key", "disable", created["access_key"])
    for node_id in (1, 2, 3):
        app = cluster.nodes[node_id].client(access=created["access_key"], secret=created["secret_key"])

        def refused():
            try:
                app.list_buckets()
                return False
            except ClientError as e:
                return e.response["Error"]["Code"] == "InvalidAccessKeyId"

        wait_until(refused, 2, f"the disabled key to be refused on node {node_id}")

    # Any node takes writes: a follower forwards them to the leader and
    # answers once it has applied them itself (it reads its own writes).
    follower = cluster.nodes[2].client()
    follower.create_bucket(Bucket="from-a-follower")
    follower.put_object(Bucket="from-a-follower", Key="k", Body=b"via node 2")
    assert follower.get_object(Bucket="from-a-follower", Key="k")["Body"].read() == b"via node 2"
    data = os.urandom(3 * MIB + 7)
    cluster.nodes[3].client().put_object(Bucket="from-a-follower", Key="big", Body=data)
    for node_id in (1, 2, 3):
        c = cluster.nodes[node_id].client()
        wait_until(lambda: c.head_object(Bucket="from-a-follower", Key="big"), 5, "the manifest")
        assert c.get_object(Bucket="from-a-follower", Key="big")["Body"].read() == data


def test_leader_failover_and_a_wiped_node_rejoining(cluster):
    form(cluster)
    cluster.nodes[1].client().create_bucket(Bucket="before-failover")
    cluster.nodes[1].kill9()
    # The survivors elect leaders among themselves.
    wait_until(lambda: all(l in (2, 3) for l in cluster.leaders(2)), 20, "new leaders")
    leader = cluster.leaders(2)[0]  # shard 0 holds buckets and users
    survivor = cluster.nodes[leader].client()
    survivor.create_bucket(Bucket="after-failover")
    other = 5 - leader
    wait_until(lambda: {"before-failover", "after-failover"}
               <= {b["Name"] for b in cluster.nodes[other].client().list_buckets()["Buckets"]},
               5, "both buckets on the other survivor")

    # The old leader comes back as a follower, catches up, and leads its
    # preferred group again: leaders are even after a restart.
    cluster.nodes[1].stop()
    cluster.start(1)
    wait_until(lambda: "after-failover" in [b["Name"] for b in cluster.nodes[1].client().list_buckets()["Buckets"]],
               20, "node 1 to catch up")
    wait_until(lambda: cluster.leaders(1) == cluster.leaders(2) == [1, 2], 30,
               "the leaders to spread again")

    # Node 3 loses its disk: remove it, wipe it, and let it join again.
    # Each group's leader removes it from its group (the groups may have
    # different leaders, so each asks; a node that leads none answers 409).
    cluster.nodes[3].kill9()
    wait_until(lambda: all(l in (1, 2) for l in cluster.leaders(1)), 20, "leaders without node 3")
    for node_id in set(cluster.leaders(1)):
        ctl(cluster.nodes[node_id], "member", "remove", "3", check=False)
    wait_until(lambda: all(3 not in [m["node_id"] for m in s["members"]] for s in cluster.overview(1)["shards"]),
               10, "node 3 to leave every group")
    cluster.start(3, join=1, wipe=True)
    wait_until(lambda: {"before-failover", "after-failover"}
               <= {b["Name"] for b in cluster.nodes[3].client().list_buckets()["Buckets"]},
               20, "the wiped node to catch up")


def test_a_wrong_cluster_secret_is_refused(cluster, tmp_path):
    cluster.start(1)
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-cluster-secret-at-all\n")
    node = cluster.launch(2, join=1, secret_file=wrong)
    # It is refused at once and gives up, rather than retrying.
    assert node.proc.wait(timeout=30) != 0
    node.log.flush()
    log = open(node.log_path).read()
    assert "cluster secret" in log
    members = cluster.overview(1)["shards"][0]["members"]
    assert [m["node_id"] for m in members] == [1]



def body(i, size):
    """A distinct, reproducible body per object."""
    block = (f"object {i} ".encode() * (MIB // 9 + 1))[:MIB]
    return block * (size // MIB)


def test_chunks_reach_every_replica_and_survive_the_leader(cluster):
    form(cluster)
    leader = cluster.nodes[1].client()
    leader.create_bucket(Bucket="replicated")
    leader.put_object(Bucket="replicated", Key="small", Body=b"hello replicas")
    data = os.urandom(3 * MIB + 5)
    leader.put_object(Bucket="replicated", Key="big", Body=data)
    # Chunk bytes never went through raft; they were pushed to each replica.
    for node_id in (2, 3):
        follower = cluster.nodes[node_id].client()
        wait_until(lambda: follower.head_object(Bucket="replicated", Key="big"), 5, "the manifest")
        assert follower.get_object(Bucket="replicated", Key="big")["Body"].read() == data
        assert follower.get_object(Bucket="replicated", Key="small")["Body"].read() == b"hello replicas"

    # kill -9 the leader while 16 PUTs of 64 MiB are in flight.
    size = 64 * MIB
    acknowledged = []

    def put(i):
        try:
            cluster.nodes[1].client().put_object(Bucket="replicated", Key=f"obj-{i}", Body=body(i, size))
            acknowledged.append(i)
        except Exception as e:  # noqa: BLE001 - the node was killed under it
            print("PUT failed", i, repr(e)[:300])

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(put, i) for i in range(16)]
        wait_until(lambda: len(acknowledged) >= 4, 120, "some PUTs to be acknowledged")
        cluster.nodes[1].kill9()
        for f in futures:
            f.result()
    assert acknowledged, "no PUT was acknowledged before the kill"

    wait_until(lambda: all(l in (2, 3) for l in cluster.leaders(2)), 20, "new leaders")

    def intact_on(node_id):
        c = cluster.nodes[node_id].client()
        for i in acknowledged:
            got = c.get_object(Bucket="replicated", Key=f"obj-{i}")["Body"].read()
            assert got == body(i, size), f"obj-{i} on node {node_id}"
        return True

    for node_id in (2, 3):
        wait_until(lambda: intact_on(node_id), 30, f"acknowledged objects on node {node_id}")
    # The old leader returns, catches up, and serves them too.
    cluster.nodes[1].stop()
    cluster.start(1)
    wait_until(lambda: intact_on(1), 60, "acknowledged objects on the returning node")


def test_joined_nodes_use_the_first_nodes_key_pair(cluster):
    first = cluster.start(1, keys=False)
    cluster.start(2, join=1, keys=False)
    cluster.start(3, join=1, keys=False)
    text = open(os.path.join(first.data_dir, "credentials")).read()
    access = text.split("access_key=")[1].split()[0]
    secret = text.split("secret_key=")[1].split()[0]
    assert f"export AWS_ACCESS_KEY_ID={access}" in first.log_text(), "the first node prints it"
    for node_id in (2, 3):
        node = cluster.nodes[node_id]
        assert not os.path.exists(os.path.join(node.data_dir, "credentials"))
        log = node.log_text()
        assert "AWS_ACCESS_KEY_ID" not in log and "no key pair generated" in log
        c = node.client(access=access, secret=secret)
        wait_until(lambda: c.list_buckets()["Owner"]["DisplayName"] == "admin", 10,
                   f"the first node's key to work on node {node_id}")


def test_a_stopping_leader_hands_its_groups_over(cluster):
    launched = time.monotonic()
    form(cluster)
    wait_until(lambda: cluster.leaders(2) == [1, 2], 20, "the leaders to spread")
    # A leader votes for the member it hands over to only once its own
    # election is a lease (the longest election timeout, 2 s) behind it;
    # node 1 elected itself as it started.
    time.sleep(max(0.0, 3 - (time.monotonic() - launched)))
    node1 = cluster.nodes[1]
    node1.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert node1.proc.wait(timeout=30) == 0
    # The group did not wait out its lease and a margin (over 2 s): node 1
    # handed it to a member before it left.
    wait_until(lambda: all(l in (2, 3) for l in cluster.leaders(2)), 3, "the new leaders")
    assert time.monotonic() - started < 6
    assert "handed leadership over" in node1.log_text()
    c = cluster.nodes[2].client()
    c.create_bucket(Bucket="right-after-the-handover")
    c.put_object(Bucket="right-after-the-handover", Key="k", Body=b"v")


def test_healthz_and_ctl_say_when_a_quorum_is_lost(cluster):
    form(cluster)
    table = ctl(cluster.nodes[1], "cluster").stdout
    assert table.count("(live") == 3 * SHARDS, table
    cluster.nodes[2].kill9()
    cluster.nodes[3].kill9()

    def unhealthy():
        try:
            urllib.request.urlopen(cluster.nodes[1].admin + "/healthz", timeout=2)
            return False
        except urllib.error.HTTPError as e:
            return e.code == 503 and "cannot reach a quorum" in e.read().decode()

    wait_until(unhealthy, 15, "node 1 to report the lost quorum")
    table = ctl(cluster.nodes[1], "cluster").stdout
    assert "DOWN" in table and " NO " in table, table


def test_a_node_that_cannot_reach_its_join_contact_says_so(cluster):
    nowhere = free_port_run(SHARDS)  # nothing listens there
    cluster.peer_ports[9] = nowhere
    node = cluster.launch(2, join=9)
    try:
        wait_until(lambda: "cannot join the cluster yet; still trying" in node.log_text(), 15,
                   "a warning that the join contact does not answer")
        assert node.proc.poll() is None, "it keeps trying"
    finally:
        node.kill9()


def test_versioning_decisions_are_the_same_on_every_node(cluster):
    form(cluster)
    first = cluster.nodes[1].client()
    first.create_bucket(Bucket="versions")
    first.put_object(Bucket="versions", Key="old", Body=b"before versioning")
    first.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    for node_id in (1, 2, 3):
        c = cluster.nodes[node_id].client()
        wait_until(lambda: c.get_bucket_versioning(Bucket="versions").get("Status") == "Enabled",
                   5, f"versioning enabled on node {node_id}")
    # Writes through every node, deletes by marker and by id, then a
    # suspended write: each member applies them and must end up the same.
    written = []
    for i in range(12):
        c = cluster.nodes[1 + i % 3].client()
        key = f"k{i % 4}"
        written.append((key, c.put_object(Bucket="versions", Key=key, Body=f"{i}".encode())["VersionId"]))
    cluster.nodes[2].client().delete_object(Bucket="versions", Key="k1")
    cluster.nodes[3].client().delete_object(Bucket="versions", Key="k2", VersionId=written[2][1])
    cluster.nodes[1].client().put_object(Bucket="versions", Key="old", Body=b"versioned")
    first.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Suspended"})
    for node_id in (1, 2, 3):
        c = cluster.nodes[node_id].client()
        wait_until(lambda: c.get_bucket_versioning(Bucket="versions").get("Status") == "Suspended",
                   5, f"versioning suspended on node {node_id}")
    cluster.nodes[3].client().put_object(Bucket="versions", Key="k3", Body=b"null version")

    def seen_by(node_id):
        page = cluster.nodes[node_id].client().list_object_versions(Bucket="versions")
        assert not page["IsTruncated"]
        return (
            [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"]) for v in page.get("Versions", [])],
            [(m["Key"], m["VersionId"], m["IsLatest"]) for m in page.get("DeleteMarkers", [])],
        )

    # Reads are served from each node's own applied state, once current.
    views = {node_id: seen_by(node_id) for node_id in (1, 2, 3)}
    assert views[1] == views[2] == views[3]
    versions, markers = views[1]
    assert len(versions) == 14 and len(markers) == 1
    assert ("k3", "null", True) in [(k, v, latest) for k, v, latest, _ in versions]
    assert ("old", "null", False) in [(k, v, latest) for k, v, latest, _ in versions]
    assert markers[0][0] == "k1" and markers[0][2] is True


def test_lock_and_lifecycle_decisions_are_the_same_on_every_node(cluster):
    fast = ["--lifecycle-day", "2s", "--lifecycle-interval", "300ms"]
    form(cluster, extra={1: fast, 2: fast, 3: fast})
    first = cluster.nodes[1].client()
    first.create_bucket(Bucket="kept", ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    locked = first.put_object(Bucket="kept", Key="k", Body=b"locked", ObjectLockMode="COMPLIANCE",
                              ObjectLockRetainUntilDate=until)["VersionId"]
    for i in range(4):
        cluster.nodes[1 + i % 3].client().put_object(Bucket="kept", Key="k", Body=f"{i}".encode())
    cluster.nodes[2].client().put_object(Bucket="kept", Key="logs/a", Body=b"old log")
    for node_id in (1, 2, 3):
        with pytest.raises(ClientError) as e:
            cluster.nodes[node_id].client().delete_object(Bucket="kept", Key="k", VersionId=locked)
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    first.put_bucket_lifecycle_configuration(Bucket="kept", LifecycleConfiguration={"Rules": [
        {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "k"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 1}},
    ]})

    def seen_by(node_id):
        page = cluster.nodes[node_id].client().list_object_versions(Bucket="kept")
        return (sorted((v["Key"], v["VersionId"], v["IsLatest"]) for v in page.get("Versions", [])),
                sorted((m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])))

    # k keeps its current version, one newer noncurrent one and the locked
    # one; logs/a gets a delete marker over its version.
    def settled():
        versions, markers = seen_by(1)
        return len([v for v in versions if v[0] == "k"]) == 3 and len(markers) == 1
    wait_until(settled, 30, "lifecycle to settle")
    views = {node_id: seen_by(node_id) for node_id in (1, 2, 3)}
    assert views[1] == views[2] == views[3]
    assert locked in [v for _, v, _ in views[1][0]]
