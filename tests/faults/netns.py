"""A network of namespaces for partition tests: one namespace per node,
each with a veth leg on a bridge in the root namespace, where the test
and its S3 clients run and reach every node.

Faults are nftables rules inside each node's namespace that drop (not
reject) packets to and from chosen members, so a cut link looks like a
dead cable: connections stall until some deadline gives up. The client
side is never cut: a client talking to an isolated node sees what a
client of a real partitioned node sees.

Delay (there is no netem here) comes from `DelayProxy`: a TCP relay in
the root namespace that holds every byte for as long as its link's delay
says. `relay` sends every peer connection through one (nftables DNAT in
each member's namespace); `slow` then sets the delay of one member's
links.

Needs root, `ip` (iproute2) and `nft` (nftables); `available()` says
whether this host has them."""

import os
import queue
import shutil
import socket
import subprocess
import threading
import time


def run(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


def available():
    """Why partition tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    return None


class Net:
    """Namespaces for nodes 1..`count` on subnet 10.77.`net`.0/24: the
    bridge is .1, node i is .(10 + i). Names carry the test process's id
    so runs side by side do not collide."""

    def __init__(self, count, net=None):
        tag = os.getpid() % 100_000
        self.net = net if net is not None else 100 + tag % 100
        self.bridge = f"shbr{tag}"
        self.count = count
        self.namespaces = {i: f"shoal-{tag}-n{i}" for i in range(1, count + 1)}
        self.cut_from = {i: set() for i in self.namespaces}
        self.gateway = f"10.77.{self.net}.1"
        self.proxies = []
        self.slowed = (None, 0.0)

    def host(self, node_id):
        return f"10.77.{self.net}.{10 + node_id}"

    def launcher(self, node_id):
        """The command prefix that runs a process in node `node_id`'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[node_id]]

    def __enter__(self):
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for node_id, ns in self.namespaces.items():
            outer, inner = f"{self.bridge}v{node_id}", "eth0"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns)
            run("ip", "link", "set", outer, "master", self.bridge)
            run("ip", "link", "set", outer, "up")
            run("ip", "-n", ns, "addr", "add", f"{self.host(node_id)}/24", "dev", inner)
            run("ip", "-n", ns, "link", "set", inner, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            self._nft(node_id, """
                table inet shoal_fault {
                    set cut { type ipv4_addr; }
                    chain input { type filter hook input priority 0; ip saddr @cut drop; }
                    chain output { type filter hook output priority 0; ip daddr @cut drop; }
                }""")
        return self

    def __exit__(self, *exc):
        for proxy in self.proxies:
            proxy.close()
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def _nft(self, node_id, script):
        subprocess.run(
            ["ip", "netns", "exec", self.namespaces[node_id], "nft", "-f", "-"],
            input=script, check=True, capture_output=True, text=True,
        )

    def _set_cut(self, node_id):
        elements = ", ".join(self.host(other) for other in sorted(self.cut_from[node_id]))
        script = "flush set inet shoal_fault cut\n"
        if elements:
            script += f"add element inet shoal_fault cut {{ {elements} }}\n"
        self._nft(node_id, script)

    def partition(self, *sides):
        """Cuts every link between members on different sides (a member on
        no side keeps all its links). Replaces earlier cuts."""
        side_of = {member: index for index, side in enumerate(sides) for member in side}
        for node_id in self.namespaces:
            self.cut_from[node_id] = {
                other for other in self.namespaces
                if node_id in side_of and other in side_of and side_of[other] != side_of[node_id]
            }
            self._set_cut(node_id)

    def cut(self, a, b):
        """Cuts the link between `a` and `b`, keeping other cuts."""
        self.cut_from[a].add(b)
        self.cut_from[b].add(a)
        self._set_cut(a)
        self._set_cut(b)

    def relay(self, peer_ports):
        """Sends every peer connection (to the ports `peer_ports` maps each
        member to) through a `DelayProxy`, so `slow` can delay links. Only
        for delay tests: a relayed link cannot be cut with `partition`
        (its packets are addressed to the relay)."""
        for node_id, ports in sorted(peer_ports.items()):
            for port in ports:
                self.proxies.append(DelayProxy(self, (self.host(node_id), port)))
        for source in self.namespaces:
            script = "table ip shoal_relay {\n  chain output { type nat hook output priority -100; }\n}\n"
            for proxy in self.proxies:
                host, port = proxy.target
                if host != self.host(source):
                    script += (f"add rule ip shoal_relay output ip daddr {host} tcp dport {port} "
                               f"dnat to {self.gateway}:{proxy.port}\n")
            self._nft(source, script)

    def slow(self, node_id, delay_s):
        """Every relayed link to or from `node_id` holds each byte `delay_s`
        in each direction (0: no delay)."""
        self.slowed = (node_id, delay_s)

    def delay_between(self, source_host, target_host):
        node_id, delay_s = self.slowed
        if node_id is None:
            return 0.0
        return delay_s if self.host(node_id) in (source_host, target_host) else 0.0

    def isolate(self, node_id):
        others = [other for other in self.namespaces if other != node_id]
        self.partition([node_id], others)

    def heal(self):
        self.partition()


class DelayProxy:
    """Relays TCP connections to `target`, each byte held for as long as
    `net.delay_between(client, target)` says when it arrives (latency, as
    a long link adds, not less bandwidth)."""

    def __init__(self, net, target):
        self.net = net
        self.target = target
        self.listener = socket.create_server((net.gateway, 0))
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, (client_host, _) = self.listener.accept()
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                continue
            self.sockets += [client, upstream]
            delay = lambda: self.net.delay_between(client_host, self.target[0])  # noqa: E731
            for src, dst in ((client, upstream), (upstream, client)):
                held = queue.Queue()
                threading.Thread(target=self._read, args=(src, held, delay), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, held), daemon=True).start()

    @staticmethod
    def _read(src, held, delay):
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            held.put((time.monotonic() + delay(), data))
            if not data:
                return

    @staticmethod
    def _write(dst, held):
        while True:
            due, data = held.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.closed.set()
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
