"""Network partitions of 3- and 5-node clusters (issue 15): every node in
its own network namespace, links cut with nftables while writers keep
putting objects through every node, then healed; and slow links (a
relay that holds every byte) to a member and to the leader.

The checker, after the last heal: on every node, the acknowledged keys
are all listed and every listed key was written (acknowledged or
indeterminate: a request that failed or timed out may still have
committed), and each listed object reads back byte-exact. While the
majority side of a cut can form a quorum it must keep acknowledging
writes; a side that cannot must not acknowledge any."""

import hashlib
import os
import signal
import threading
import time

import pytest

from conftest import e2e, trials
from netns import Net, available
from test_cluster import SHARDS, Cluster, form, free_port_run

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

BUCKET = "partitions"
FAULT_S = 8
SETTLE_S = 6


def body_of(key):
    """The bytes a key is written with: derived from the key, so any read
    can be checked. Up to 64 KiB, and one in 32 is 1.2-1.5 MiB (more than
    one chunk)."""
    seed = hashlib.sha256(key.encode()).digest()
    pick = int.from_bytes(seed[:4], "big")
    size = 1 + pick % (64 << 10)
    if pick % 32 == 0:
        size += 1200 << 10
    return (seed * (size // 32 + 1))[:size]


class NetCluster(Cluster):
    """A cluster whose nodes live in `net`'s namespaces."""

    def __init__(self, root, net, args=()):
        super().__init__(root, args)
        self.net = net

    def host(self, node_id):
        return self.net.host(node_id)

    def new_node(self, node_id, data, args, keys):
        node = e2e.Node(data, cores=1, extra_args=args, keys=keys)
        node.host = node.admin_host = self.net.host(node_id)
        node.launcher = self.net.launcher(node_id)
        return node


def client(node):
    """A client that gives up on a cut-off node within the peer deadlines."""
    return node.client(connect_timeout=2, read_timeout=15)


class Writers:
    """Threads putting unique keys through every node, recording each
    outcome with the time it finished and the node it went through."""

    def __init__(self, cluster, per_node=1, pause_s=0.05):
        self.cluster = cluster
        self.per_node = per_node
        self.pause_s = pause_s
        self.acked = {}          # key -> (node, finished at)
        self.indeterminate = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []

    def start(self):
        for node_id in self.cluster.nodes:
            for n in range(self.per_node):
                t = threading.Thread(target=self._write, args=(node_id, n), daemon=True)
                t.start()
                self.threads.append(t)

    def _write(self, node_id, n):
        s3 = client(self.cluster.nodes[node_id])
        seq = 0
        while not self.stop.is_set():
            key = f"n{node_id}/w{n}/{seq:06d}"
            seq += 1
            try:
                s3.put_object(Bucket=BUCKET, Key=key, Body=body_of(key))
                with self.lock:
                    self.acked[key] = (node_id, time.monotonic())
                time.sleep(self.pause_s)
            except Exception:
                with self.lock:
                    self.indeterminate.add(key)
                time.sleep(0.2)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def acked_through(self, nodes, since, until):
        with self.lock:
            return sum(1 for node, at in self.acked.values() if node in nodes and since <= at <= until)


def leader_node(cluster, asked):
    """The node that leads the most groups, as `asked` sees them."""
    leaders = [leader for leader in cluster.leaders(asked) if leader is not None]
    return max(set(leaders), key=leaders.count)


def check_every_node(cluster, writers):
    """acknowledged ⊆ listed ⊆ acknowledged ∪ indeterminate on every
    node, and every listed object byte-exact."""
    acked = set(writers.acked)
    written = acked | writers.indeterminate
    for node_id, node in cluster.nodes.items():
        s3 = client(node)

        def listed():
            keys = set()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
                keys.update(o["Key"] for o in page.get("Contents", []))
            return keys

        e2e.wait_until(lambda: acked <= listed(), 60, f"node {node_id} to list every acknowledged key")
        keys = listed()
        assert keys <= written, f"node {node_id} lists keys nobody wrote: {sorted(keys - written)[:5]}"
        for key in keys:
            got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert got == body_of(key), f"node {node_id}: {key} differs"
    return len(acked), len(writers.indeterminate)


def healthy_everywhere(cluster):
    for node_id in cluster.nodes:
        e2e.wait_until(
            lambda: all(s["leader"] is not None for s in cluster.overview(node_id)["shards"]),
            30, f"node {node_id} to see a leader in every group after the heal",
        )


def nemeses(count):
    """(name, fault) for a `count`-node cluster. A fault takes the network
    and the node that leads most groups, cuts links, and returns the
    nodes that can still form a quorum and those cut off from one."""
    everyone = list(range(1, count + 1))
    majority = count // 2 + 1
    assert majority <= count - 1

    def minority(net, leader):
        cut = [n for n in everyone if n != leader][: count - majority]
        net.partition(cut, [n for n in everyone if n not in cut])
        return [n for n in everyone if n not in cut], cut

    def isolate_leader(net, leader):
        net.isolate(leader)
        return [n for n in everyone if n != leader], [leader]

    def no_majority(net, leader):
        # Every node alone: no side can commit anything.
        net.partition(*[[n] for n in everyone])
        return [], everyone

    def bridge(net, leader):
        # Two halves that only the leader (the bridge) still sees both
        # of: it keeps its quorum, and every node still reaches it.
        half = (count - 1) // 2
        others = [n for n in everyone if n != leader]
        net.partition(others[:half], others[half:])
        return everyone, []

    return [
        ("minority cut off", minority),
        ("leader isolated", isolate_leader),
        ("bridge", bridge),
        ("no majority anywhere", no_majority),
    ]


def run_partitions(tmp_path, count):
    with Net(count) as net:
        cluster = NetCluster(tmp_path, net)
        try:
            form(cluster, count=count)
            cluster.nodes[1].client().create_bucket(Bucket=BUCKET)
            writers = Writers(cluster)
            writers.start()
            time.sleep(2)
            report = []
            for trial in range(trials(1)):
                for name, fault in nemeses(count):
                    leader = leader_node(cluster, 1 + trial % count)
                    began = time.monotonic()
                    quorum_side, cut_side = fault(net, leader)
                    time.sleep(FAULT_S)
                    ended = time.monotonic()
                    net.heal()
                    # Writes through the side with a quorum resume once it
                    # has a leader: some must be acknowledged in the second
                    # half of the window.
                    served = writers.acked_through(quorum_side, began + FAULT_S / 2, ended)
                    if quorum_side:
                        assert served > 0, f"{name}: the side with a quorum acknowledged nothing"
                    # A side alone (never a quorum) must not acknowledge
                    # anything once its lease is gone.
                    alone = [n for n in cut_side if n not in quorum_side]
                    if not quorum_side:
                        late = writers.acked_through(alone, began + FAULT_S / 2, ended)
                        assert late == 0, f"{name}: nodes without a quorum acknowledged {late} writes"
                    report.append(f"{name}: {served} acknowledged on the quorum side")
                    time.sleep(SETTLE_S)
                    healthy_everywhere(cluster)
                # SIGSTOP of a member, as a frozen process looks to its peers.
                victim = 1 + trial % count
                cluster.nodes[victim].proc.send_signal(signal.SIGSTOP)
                time.sleep(FAULT_S)
                cluster.nodes[victim].proc.send_signal(signal.SIGCONT)
                time.sleep(SETTLE_S)
            writers.finish()
            healthy_everywhere(cluster)
            acked, indeterminate = check_every_node(cluster, writers)
            print(f"{count} nodes: {acked} acknowledged, {indeterminate} indeterminate, lost 0; "
                  + "; ".join(report))
            assert acked > 0
        finally:
            net.heal()
            for node in cluster.nodes.values():
                if node.proc and node.proc.poll() is None:
                    node.proc.send_signal(signal.SIGCONT)
            cluster.stop_all()


def test_slow_links_to_a_member_and_to_the_leader(tmp_path):
    """Every peer link of one member, then of the node leading most
    groups, takes extra time each way: writes through every node go on
    (slower), and nothing acknowledged is lost."""
    with Net(3) as net:
        cluster = NetCluster(tmp_path, net)
        try:
            for node_id in (1, 2, 3):
                cluster.peer_ports[node_id] = free_port_run(SHARDS)
            net.relay({node_id: range(port, port + SHARDS) for node_id, port in cluster.peer_ports.items()})
            form(cluster)
            cluster.nodes[1].client().create_bucket(Bucket=BUCKET)
            writers = Writers(cluster)
            writers.start()
            time.sleep(2)
            leader = leader_node(cluster, 1)
            follower = next(n for n in (1, 2, 3) if n != leader)
            report = [f"before: {[writers.acked_through([n], 0, time.monotonic()) for n in (1, 2, 3)]}"]
            for name, slowed, delay_s in [("a member 300 ms away", follower, 0.3),
                                          ("the leader 1 s away", leader, 1.0)]:
                began = time.monotonic()
                net.slow(slowed, delay_s)
                time.sleep(FAULT_S)
                ended = time.monotonic()
                net.slow(slowed, 0.0)
                # Each write to a slowed leader's group takes several round
                # trips of the slow link, and each writer waits for its
                # last: what is asked is that writes complete, slowly.
                time.sleep(SETTLE_S)
                healthy_everywhere(cluster)
                served = writers.acked_through([1, 2, 3], began, time.monotonic())
                assert served > 0, f"{name}: no write acknowledged"
                through = [writers.acked_through([n], began, ended) for n in (1, 2, 3)]
                report.append(f"{name} (node {slowed}): acknowledged through nodes 1-3 while slow: {through}")
            writers.finish()
            acked, indeterminate = check_every_node(cluster, writers)
            print(f"slow links: {acked} acknowledged, {indeterminate} indeterminate, lost 0; " + "; ".join(report))
        finally:
            cluster.stop_all()


def test_partitions_of_three_nodes(tmp_path):
    run_partitions(tmp_path, 3)


@pytest.mark.skipif(os.environ.get("SHOAL_FAULT_TRIALS") is None,
                    reason="five nodes run in the long fault run (tests/faults/run.sh)")
def test_partitions_of_five_nodes(tmp_path):
    run_partitions(tmp_path, 5)

