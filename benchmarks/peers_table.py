"""The "at the same reduction" table with PSNR and SSIM (mean and worst) for every method group,
from one or more results.json of run_benchmark.py (later files add groups, never replace).
The table itself is benchmarks/tables.py's (run_benchmark.py appends the same to its table.md).

    python benchmarks/peers_table.py out/peers/results.json [more results.json ...]
    python benchmarks/peers_table.py --targets 2,3,4,5 --hidden-bytes 163840 \
        --envelope Spectrum out/.../results.json

--targets: the reductions compared (default 2,3,4). --hidden-bytes: one cond's hidden state at
the benchmark's latent (both proxies at 16x5x16x16: 320 tokens x 128 x 4 bytes = 163840); with
it the memory table also counts hidden-state tensors per cond and what they hold at Wan 2.1 14B
720p (benchmarks/tables.py held_at_real_size, teacache_core/memory.py's formula).
--envelope PREFIX: one more row, the best front over every point of the groups named PREFIX...
(for methods with several variants, e.g. Spectrum's schedules).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tables import TARGETS, load_rows, render_same_reduction  # noqa: E402


def envelope(rows, prefix: str, name: str) -> list:
    """Rows of a new group `name`: per sampler, the best front (by mean PSNR) of every point of
    the groups whose name starts with `prefix`: the points that no other point beats in both
    reduction and mean PSNR. For a method whose schedules are all fixed in advance (Spectrum)
    this is the best a user could pick for each reduction, knowing the results."""
    out = []
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        pts = [r for r in rows if r["sampler"] == sampler and r["group"].startswith(prefix)]
        for r in pts:
            if not any((o["reduction"] >= r["reduction"] and o["psnr"] >= r["psnr"]) and
                       (o["reduction"] > r["reduction"] or o["psnr"] > r["psnr"]) for o in pts):
                out.append({**r, "group": name, "cache_bytes": None})
    return sorted(out, key=lambda r: (r["sampler"], r["reduction"]))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--targets", default=",".join(f"{t:g}" for t in TARGETS))
    ap.add_argument("--hidden-bytes", type=int, default=None)
    ap.add_argument("--envelope", action="append", default=[], metavar="PREFIX",
                    help="add a row '<PREFIX> (best of all)': the best front over every point of "
                         "the groups starting with PREFIX (repeatable)")
    a = ap.parse_args()
    rows = load_rows(a.results)
    for prefix in a.envelope:
        rows += envelope(rows, prefix, f"{prefix} (best of all)")
    print(render_same_reduction(rows, tuple(float(t) for t in a.targets.split(",")),
                                a.hidden_bytes))
