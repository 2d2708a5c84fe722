"""First-run rows of a target_benchmark.py run that was stopped before its end (its
partial.json: the cells it finished), against the fixed-threshold front of the same cells,
per first-run shape and skip estimate, on the cells where the shape named by --shape was
measured (so every shape is compared on the same cells). Samples nothing.

    .venv/bin/python benchmarks/partial_rows.py out/tuneM_wan/partial.json --shape 0.3:1.25:0:3:0:2

A shape is named as target_benchmark.py --first-run-shapes writes it (trailing zeros left
out); "shipped" is a row without a shape (the rule the run's code shipped).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.tables import interpolate_at  # noqa: E402


def shape_name(row) -> str:
    s = row.get("shape")
    return "shipped" if not s else ":".join(f"{x:g}" for x in s)


def compare(rows, shape: str) -> list:
    """[(shape, estimate, cells, mean delta, cells whose worst prompt is > 3 dB below the
    front's worst, smallest delta)] on the cells where `shape` was measured."""
    out = {}
    for r in rows:
        if r["kind"] != "first" or r.get("placement") or r.get("spacing_cap"):
            continue
        front = [x for x in rows if x["kind"] == "threshold" and x["sampler"] == r["sampler"]
                 and x["steps"] == r["steps"] and x["estimate"] == r["estimate"]]
        f = interpolate_at([(x["reduction"], x["psnr"]) for x in front], r["reduction"])
        fw = interpolate_at([(x["reduction"], x["psnr_worst"]) for x in front], r["reduction"])
        if f is None or fw is None:
            continue
        cell = (r["sampler"], r["steps"], r["param"])
        out.setdefault((shape_name(r), r["estimate"]), []).append(
            (cell, r["psnr"] - f, r["psnr_worst"] - fw))
    cells = {c for (s, _), v in out.items() if s == shape for c, _, _ in v}
    table = []
    for (s, est), v in sorted(out.items()):
        v = [x for x in v if x[0] in cells]
        if v:
            table.append((s, est, len(v), statistics.mean(d for _, d, _ in v),
                          sum(w < -3 for _, _, w in v), min(d for _, d, _ in v)))
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("partial", nargs="+")
    ap.add_argument("--shape", required=True)
    a = ap.parse_args()
    for path in a.partial:
        rows = json.loads(Path(path).read_text())
        rows = rows["rows"] if isinstance(rows, dict) else rows
        print(f"{path}\n\n| shape | skip_estimate | cells | delta to the front, mean | "
              "worst prompt > 3 dB below | smallest delta |\n|---|---|---:|---:|---:|---:|")
        for s, est, n, mean, miss, low in compare(rows, a.shape):
            print(f"| {s} | {est} | {n} | {mean:+.2f} | {miss} | {low:+.2f} |")
        print()


if __name__ == "__main__":
    main()
