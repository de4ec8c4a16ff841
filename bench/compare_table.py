#!/usr/bin/env python3
"""The comparison table bench/compare.sh prints: one row per step of
bench/scenarios/compare.toml, the first store (Shoal) against each other
one, from shoal-bench JSON results of the same run.

usage: compare_table.py CEILING_JSON STORE_JSON...   (store name = file name)
"""

import json
import os
import sys

LARGE_BYTES = 1 << 20


def load(path):
    with open(path) as f:
        return json.load(f)


def rate(step):
    """Throughput as the table shows it, and its unit."""
    size = step["workload"]["object_bytes"]
    if size >= LARGE_BYTES and step["workload"]["kind"] != "mixed":
        return step["throughput"]["bytes_per_s"] / 1e6, "MB/s"
    return step["throughput"]["ops_per_s"], "ops/s"


def latency(step):
    """p50 / p99 of the step's main operation (GET for mixed)."""
    kind = step["workload"]["kind"]
    op = "get" if kind == "mixed" else kind
    lat = (step.get("latency_ms") or {}).get(op)
    if not lat:
        return "—"
    return f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}"


def cpu(step):
    """Server CPU-seconds per GB for large objects, per 1,000 ops for small."""
    server = step.get("server")
    if not server:
        return None
    if step["workload"]["object_bytes"] >= LARGE_BYTES:
        return server.get("cpu_s_per_gb")
    return server.get("cpu_s_per_1000_ops")


def rss_mib(step):
    server = step.get("server") or {}
    peak = server.get("resident_max_bytes")
    return None if peak is None else peak / (1 << 20)


def failed(step):
    """Operations that did not succeed: refusals, errors, transport."""
    return step.get("slow_down", 0) + step.get("too_many_requests", 0) + \
        step.get("other_errors", 0) + step["transport_errors"]["total"]


def fmt(value, digits=2):
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def pair(values, digits=2):
    return " / ".join(fmt(v, digits) for v in values)


def table(stores):
    names = [name for name, _ in stores]
    steps = {name: {s["name"]: s for s in result["steps"]} for name, result in stores}
    head = [
        "step",
        *(f"{n}" for n in names),
        *(f"{names[0]} / {n}" for n in names[1:]),
        f"p50 / p99 ms, {' / '.join(names)}",
        f"server CPU-s per GB or per 1,000 ops, {' / '.join(names)}",
        f"peak RSS MiB, {' / '.join(names)}",
        f"failed ops, {' / '.join(names)}",
    ]
    rows = [head, ["---"] * len(head)]
    for step_name in steps[names[0]]:
        ran = [steps[n].get(step_name) for n in names]
        if any(s is None for s in ran):
            continue
        rates = [rate(s) for s in ran]
        row = [step_name]
        row += [f"{fmt(r, 0)} {u}" for r, u in rates]
        row += [f"{rates[0][0] / r:.1f}×" if r else "—" for r, _ in rates[1:]]
        row.append(" · ".join(latency(s) for s in ran))
        row.append(pair([cpu(s) for s in ran]))
        row.append(pair([rss_mib(s) for s in ran], 0))
        row.append(" / ".join(str(failed(s)) for s in ran))
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def ceiling_line(ceiling):
    c = ceiling["ceiling"]
    return (f"Machine ceiling in the same run: O_DIRECT write + fdatasync "
            f"{c['disk_write_fdatasync_bytes_per_s'] / 1e6:,.0f} MB/s, O_DIRECT read "
            f"{c['disk_read_bytes_per_s'] / 1e6:,.0f} MB/s, SHA-256 "
            f"{c['sha256']['per_core_bytes_per_s'] / 1e6:,.0f} MB/s per core, "
            f"{c['sha256']['cores']} cores.")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    ceiling = load(argv[1])
    stores = [(os.path.splitext(os.path.basename(p))[0], load(p)) for p in argv[2:]]
    print(ceiling_line(ceiling))
    print()
    print(table(stores))


if __name__ == "__main__":
    main(sys.argv)
