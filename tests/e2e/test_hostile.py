"""Clients that hold on without sending: half-sent headers, idle
keep-alive connections, a wave big enough to take every connection slot
of a core. The node drops them fast enough that a normal client still
gets in."""

import resource
import socket
import time

from conftest import wait_until

SLOTS_PER_CORE = 4096  # src/limits.rs CONNECTIONS_PER_CORE_MAX


def raise_open_files(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def test_a_wave_of_half_sent_headers_does_not_lock_out_a_normal_client(fresh_node):
    raise_open_files(3 * SLOTS_PER_CORE)  # the node inherits it
    node = fresh_node(cores=1)
    s3 = node.client()
    s3.create_bucket(Bucket="crowded")
    wave = []
    try:
        for _ in range(SLOTS_PER_CORE + 200):
            sock = socket.create_connection(("127.0.0.1", node.s3_port))
            sock.sendall(b"GET /crowded/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            wave.append(sock)
        # A new client: a new connection, queued behind the wave.
        s3 = node.client()
        started = time.monotonic()
        s3.put_object(Bucket="crowded", Key="still-served", Body=b"in")
        waited = time.monotonic() - started
        # Without the scarcity rule the slots free only at the 30 s header
        # timeout; with it, waits for headers end after 2 s.
        assert waited < 10, f"a normal client waited {waited:.1f}s"
        assert s3.get_object(Bucket="crowded", Key="still-served")["Body"].read() == b"in"
    finally:
        for sock in wave:
            sock.close()
    wait_until(lambda: node.healthy(), 10, "the node to stay healthy")
