"""A network of namespaces for partition tests: one namespace per node,
each with a veth leg on a bridge in the root namespace, where the test
and its S3 clients run and reach every node.

Faults are nftables rules inside each node's namespace that drop (not
reject) packets to and from chosen members, so a cut link looks like a
dead cable: connections stall until some deadline gives up. The client
side is never cut: a client talking to an isolated node sees what a
client of a real partitioned node sees.

Needs root, `ip` (iproute2) and `nft` (nftables); `available()` says
whether this host has them."""

import os
import shutil
import subprocess


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

    def host(self, node_id):
        return f"10.77.{self.net}.{10 + node_id}"

    def launcher(self, node_id):
        """The command prefix that runs a process in node `node_id`'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[node_id]]

    def __enter__(self):
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"10.77.{self.net}.1/24", "dev", self.bridge)
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

    def isolate(self, node_id):
        others = [other for other in self.namespaces if other != node_id]
        self.partition([node_id], others)

    def heal(self):
        self.partition()
