"""Where the placement oracle puts its computes (issue 22): reads results of
benchmarks/oracle.py (samples nothing) and prints, per proxy, estimate and number of computed
steps K, the oracle's computes (its local-search schedule per prompt) in each third of the
schedule, averaged over the prompts, and the share of the last third. A proxy whose oracle
holds more of its computes for the end is one where a late compute is worth more against an
early one; a first-run rule that holds computes for the end (the shipped sigma^-1.25) bets on
that.

    .venv/bin/python benchmarks/oracle_placement.py benchmarks/results/oracle/wan.json \\
        benchmarks/results/oracle/wan_shapes.json [--ks 12,8,6]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def thirds(schedule, steps: int) -> list:
    """Computed steps in each third of a schedule of `steps` steps."""
    edges = [round(steps * i / 3) for i in range(4)]
    return [sum(edges[i] <= s < edges[i + 1] for s in schedule) for i in range(3)]


def placement(res, ks) -> list:
    """[(estimate, K, mean computes per third, prompts)] of one oracle result."""
    steps = res["meta"]["steps"]
    out = []
    for est, o in res["oracle"].items():
        for k in ks:
            per = [thirds(p["local"][str(k)]["schedule"], steps) for p in o["prompts"]
                   if str(k) in p.get("local", {})]
            if per:
                out.append((est, k, [statistics.mean(x[i] for x in per) for i in range(3)],
                            len(per)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--ks", default="12,8,6")
    a = ap.parse_args()
    ks = [int(k) for k in a.ks.split(",")]
    print("| proxy | estimate | K | computes in the first / middle / last third | last third's "
          "share | prompts |\n|---|---|---:|---|---:|---:|")
    for path in a.results:
        res = json.loads(Path(path).read_text())
        for est, k, t, n in placement(res, ks):
            print(f"| {res['meta']['proxy']} | {est} | {k} | "
                  f"{t[0]:.1f} / {t[1]:.1f} / {t[2]:.1f} | {t[2] / k:.2f} | {n} |")


if __name__ == "__main__":
    main()
