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


def by_bytes(step):
    """Whether a step is measured per byte (large PUTs and GETs) rather
    than per operation (small objects, and the mix, whose operations move
    different amounts)."""
    kind = step["workload"]["kind"]
    return kind in ("put", "get") and step["workload"]["object_bytes"] >= LARGE_BYTES


def rate(step):
    """Throughput as the table shows it, with its unit."""
    if by_bytes(step):
        return f"{fmt(step['throughput']['bytes_per_s'] / 1e6, 0)} MB/s"
    return f"{fmt(step['throughput']['ops_per_s'], 0)} ops/s"


def rate_value(step):
    key = "bytes_per_s" if by_bytes(step) else "ops_per_s"
    return step["throughput"][key]


def latency(step):
    """p50 / p99 of the step's main operation (GET for mixed)."""
    kind = step["workload"]["kind"]
    op = "get" if kind == "mixed" else kind
    lat = (step.get("latency_ms") or {}).get(op)
    if not lat:
        return "—"
    return f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}"


def cpu(step):
    """Server CPU-seconds per GB for a per-byte step, per 1,000 operations
    otherwise, with the unit."""
    server = step.get("server")
    if not server:
        return "—"
    if by_bytes(step):
        return f"{fmt(server.get('cpu_s_per_gb'))} s/GB"
    return f"{fmt(server.get('cpu_s_per_1000_ops'))} s/1k ops"


def rss_mib(step):
    server = step.get("server") or {}
    peak = server.get("resident_max_bytes")
    return "—" if peak is None else str(peak >> 20)


def size_text(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"


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


def table(stores):
    names = [name for name, _ in stores]
    scale = (stores[0][1].get("scenario") or {}).get("scale", 1.0)
    steps = {name: {s["name"]: s for s in result["steps"]} for name, result in stores}
    both = " / ".join(names)
    head = [
        "step",
        *names,
        *(f"{names[0]} / {n}" for n in names[1:]),
        f"p50 / p99 ms, {both}",
        f"server CPU, {both}",
        f"peak RSS MiB, {both}",
        f"failed ops, {both}",
    ]
    rows = [head, ["---"] * len(head)]
    for step_name, first in steps[names[0]].items():
        ran = [steps[n].get(step_name) for n in names]
        if any(s is None for s in ran):
            continue
        label = step_name
        if scale != 1.0:
            label += f" ({size_text(first['workload']['object_bytes'])} objects)"
        row = [label]
        row += [rate(s) for s in ran]
        row += [f"{rate_value(first) / rate_value(s):.1f}×" if rate_value(s) else "—" for s in ran[1:]]
        row.append(" · ".join(latency(s) for s in ran))
        row.append(" / ".join(cpu(s) for s in ran))
        row.append(" / ".join(rss_mib(s) for s in ran))
        row.append(" / ".join(str(failed(s)) for s in ran))
        rows.append(row)
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    if scale != 1.0:
        lines.insert(0, f"Object sizes scaled by {scale:g} (`--scale`): the step names give them unscaled.\n")
    return "\n".join(lines)


def ceiling_line(ceiling):
    c = ceiling["ceiling"]
    return (f"Machine ceiling in the same run: O_DIRECT write + fdatasync "
            f"{c['disk_write_fdatasync_bytes_per_s'] / 1e6:,.0f} MB/s, O_DIRECT read "
            f"{c['disk_read_bytes_per_s'] / 1e6:,.0f} MB/s, SHA-256 "
            f"{c['sha256']['per_core_bytes_per_s'] / 1e6:,.0f} MB/s on one core of "
            f"{c['sha256']['cores']}.")


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
