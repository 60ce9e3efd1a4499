#!/usr/bin/env python3
"""check_results.py -- sanity checks on the benchmarks' JSON (make test-bench).

  check_results.py compare DIR [--systems hnswc,hnswlib,faiss] [--min-recall 0.9]
      DIR/compare.json from bench/compare.py and its plot DIR/compare.png
  check_results.py cpp FILE.json [--min-recall 0.9]
      the JSON of bench/bench_vs_hnswlib
  check_results.py ab FILE.json [--systems A,B] [--min-recall 0.9]
      the --json of bench/ab.py (its --systems, at every --query-threads
      count), and ab.py's order of the systems from round to round

Every system must be present with one finite, positive point per ef, recall
in [0, 1] and above --min-recall at the largest ef, recall not falling as ef
grows (beyond noise), and positive build times. Exits 1 with the list of
problems otherwise. These are correctness checks, not timing checks: QPS only
has to be a positive number.
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (bench/compare.py: its interpolation is checked too)


def check_curve(name, points, min_recall, problems):
    """points: [(ef, recall, qps)] in sweep order."""
    if not points:
        problems.append(f"{name}: no points")
        return
    for ef, rec, qps in points:
        if not (isinstance(rec, (int, float)) and 0.0 <= rec <= 1.0):
            problems.append(f"{name}: ef={ef}: recall {rec!r} not in [0, 1]")
        if not (isinstance(qps, (int, float)) and math.isfinite(qps) and qps > 0):
            problems.append(f"{name}: ef={ef}: QPS {qps!r} not a positive number")
    top = max(points, key=lambda p: p[0])
    low = min(points, key=lambda p: p[0])
    if not top[1] > min_recall:
        problems.append(f"{name}: recall {top[1]} at ef={top[0]} is not above {min_recall}")
    if top[1] < low[1] - 0.02:
        problems.append(f"{name}: recall falls from {low[1]} (ef={low[0]}) to {top[1]} (ef={top[0]})")


def check_compare(args, problems):
    path = os.path.join(args.path, "compare.json")
    with open(path) as f:
        r = json.load(f)
    want = [s for s in args.systems.split(",") if s]
    got = [s["name"] for s in r["systems"]]
    if sorted(got) != sorted(want):
        problems.append(f"systems {got}, expected {want}")
    efs = r["params"]["ef"]
    for s in r["systems"]:
        if [p["ef"] for p in s["sweep"]] != efs:
            problems.append(f"{s['name']}: sweep efs {[p['ef'] for p in s['sweep']]} != {efs}")
        if not s["build_s"] > 0:
            problems.append(f"{s['name']}: build time {s['build_s']}")
        if not s["memory_bytes"] > 0:
            problems.append(f"{s['name']}: index memory {s['memory_bytes']}")
        check_curve(s["name"], [(p["ef"], p["recall"], p["qps"]) for p in s["sweep"]],
                    args.min_recall, problems)
    if "hnswc" in got:
        for peer in got:
            if peer != "hnswc" and set(r["ratios"].get(peer, {})) != {"0.95", "0.99"}:
                problems.append(f"ratios against {peer} missing")
    png = os.path.join(args.path, "compare.png")
    try:
        with open(png, "rb") as f:
            head = f.read(8)
        if head != b"\x89PNG\r\n\x1a\n" or os.path.getsize(png) < 10000:
            problems.append(f"{png}: not a PNG plot")
    except OSError as e:
        problems.append(f"{png}: {e}")


def check_cpp(args, problems):
    with open(args.path) as f:
        r = json.load(f)
    got = [s["name"] for s in r["systems"]]
    if got != ["hnswc", "hnswlib"]:
        problems.append(f"systems {got}, expected ['hnswc', 'hnswlib']")
    for s in r["systems"]:
        if not s["build_s"] > 0:
            problems.append(f"{s['name']}: build time {s['build_s']}")
        check_curve(s["name"], [(p["ef"], p["recall"], p["qps"]) for p in s["curve"]],
                    args.min_recall, problems)
    if set(r["ratio_hnswc_over_hnswlib"]) != {"0.95", "0.99"}:
        problems.append("ratio_hnswc_over_hnswlib missing")
    # The C++ interpolation must agree with compare.py's on the same curve.
    for s in r["systems"]:
        pts = [(p["recall"], p["qps"]) for p in s["curve"]]
        for key, got in s["qps_at_recall"].items():
            want = compare.qps_at_recall(pts, float(key))
            if (want is None) != (got is None) or (want and abs(got / want - 1) > 1e-4):
                problems.append(f"{s['name']}: QPS at {key}: C++ says {got}, compare.py {want}")


def check_ab(args, problems):
    with open(args.path) as f:
        r = json.load(f)
    table = r["table"]
    counts = str(r["args"]["query_threads"]).split(",")
    want = [s if len(counts) == 1 else f"{s} ({t}t)"
            for t in counts for s in args.systems.split(",")]
    if sorted(table) != sorted(want):
        problems.append(f"systems {sorted(table)}, expected {sorted(want)}")
    efs = [int(e) for e in str(r["args"]["ef"]).split(",")]
    for name, pts in table.items():
        if [p["ef"] for p in pts] != efs:
            problems.append(f"{name}: points at ef {[p['ef'] for p in pts]}, expected {efs}")
        check_curve(name, [(p["ef"], p["recall"], p["qps"]) for p in pts], args.min_recall,
                    problems)


def check_round_order(problems):
    """ab.round_order: every round a permutation; "balanced" lets each item
    follow both its neighbours within two rounds (the point of it), and
    "rotate" lets each lead in turn."""
    import ab
    for n in (2, 3, 4, 6):
        items = list(range(n))
        follows = {i: set() for i in items}  # item -> items seen right before it
        for mode in ("balanced", "rotate"):
            for r in range(2 * n):
                order = ab.round_order(items, r, mode)
                if sorted(order) != items:
                    problems.append(f"round_order({n}, {r}, {mode}) = {order}: not a permutation")
                if mode == "balanced" and r < 2:
                    for a, b in zip(order, order[1:] + order[:1]):
                        follows[b].add(a)
            if mode == "rotate" and {ab.round_order(items, r, mode)[0] for r in range(n)} != set(items):
                problems.append(f"round_order({n}, rotate): not every item leads")
        for i in items:
            if n > 2 and follows[i] != {(i - 1) % n, (i + 1) % n}:
                problems.append(f"round_order({n}, balanced): {i} follows {sorted(follows[i])}")


def check_interpolation(problems):
    """compare.qps_at_recall on curves with known answers."""
    def close(a, b):
        return a is not None and abs(a - b) < 1e-9 * max(1.0, abs(b))
    # log-linear: halfway in recall between 1000 and 100 QPS is 316.2...
    if not close(compare.qps_at_recall([(0.9, 1000.0), (1.0, 100.0)], 0.95), 10 ** 2.5):
        problems.append("interpolation: midpoint of 1000 and 100 QPS is not 10^2.5")
    if not close(compare.qps_at_recall([(0.9, 1000.0), (0.99, 500.0)], 0.99), 500.0):
        problems.append("interpolation: the end point itself")
    if compare.qps_at_recall([(0.9, 1000.0), (0.94, 800.0)], 0.95) is not None:
        problems.append("interpolation: extrapolated past the curve's end")
    if compare.qps_at_recall([(0.96, 1000.0), (0.99, 800.0)], 0.95) is not None:
        problems.append("interpolation: extrapolated before the curve's start")
    # Measured across the target, but the point below it timed slower than
    # the one above (noise): the fastest setting that reaches the target.
    got = compare.qps_at_recall([(0.94, 700.0), (0.96, 1000.0), (0.99, 800.0)], 0.95)
    if not close(got, 1000.0):
        problems.append(f"interpolation: a dominated point below the target gave {got}, not 1000")
    # A dominated point (lower recall AND lower QPS) must not bend the curve.
    got = compare.qps_at_recall([(0.9, 1000.0), (0.95, 90.0), (1.0, 100.0)], 0.95)
    if not close(got, 10 ** 2.5):
        problems.append(f"interpolation: a dominated point changed the answer ({got})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("compare", "cpp", "ab"))
    ap.add_argument("path")
    ap.add_argument("--systems", default="hnswc,hnswlib,faiss")
    ap.add_argument("--min-recall", type=float, default=0.9)
    args = ap.parse_args()
    problems = []
    check_interpolation(problems)
    try:
        {"compare": check_compare, "cpp": check_cpp, "ab": check_ab}[args.kind](args, problems)
        if args.kind == "ab":
            check_round_order(problems)
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems.append(f"{args.path}: unreadable or malformed: {type(e).__name__}: {e}")
    if problems:
        for p in problems:
            print(f"check_results: FAIL: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"check_results: {args.kind} {args.path}: OK")


if __name__ == "__main__":
    main()
