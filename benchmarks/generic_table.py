"""The generic path against the family adapter (issue 21): per sampler and target reduction
(2x, 3x, 4x fewer block executions), the PSNR (mean / worst prompt, interpolated in log
reduction by benchmarks/tables.py) of the dedicated uncalibrated groups and of the generic
ones, their difference, and the memory each held; from one or more results.json of
run_benchmark.py (later files add groups, never replace).

    python benchmarks/generic_table.py out/generic_wan_euler/results.json [more ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tables import TARGETS, _f, at_targets, best_cache_bytes, load_rows  # noqa: E402

# (skip estimate, family adapter's group, generic path's group)
PAIRS = [("reuse", "TeaCache uncalibrated", "TeaCache generic"),
         ("extrapolate", "TeaCache uncalibrated+extrapolate", "TeaCache generic+extrapolate"),
         # the experiment of benchmarks/generic_indicator.py
         ("reuse, indicator block input + vec", "TeaCache uncalibrated", "TeaCache generic-vec"),
         ("extrapolate, indicator block input + vec", "TeaCache uncalibrated+extrapolate",
          "TeaCache generic-vec+extrapolate")]


def _diff(a, b) -> str:
    return "-" if a is None or b is None else f"{b - a:+.1f}"


def render_pairs(rows, pairs=PAIRS) -> str:
    table = at_targets(rows)
    groups = {r["group"] for r in rows}
    pairs = [p for p in pairs if p[1] in groups and p[2] in groups]
    lines = ["| sampler | estimate | reduction | family adapter: PSNR dB mean / worst | "
             "generic: PSNR dB mean / worst | generic - adapter (mean / worst) |",
             "|---|---|---:|---:|---:|---:|"]
    for sampler in dict.fromkeys(s for s, _ in table):
        for (label, ded, gen), t in ((pair, t) for pair in pairs for t in TARGETS):
            d, g = table[(sampler, t)][ded], table[(sampler, t)][gen]
            lines.append(f"| {sampler} | {label} | {t:g}x | {_f(d['psnr'], 1)} / "
                         f"{_f(d['psnr_worst'], 1)} | {_f(g['psnr'], 1)} / "
                         f"{_f(g['psnr_worst'], 1)} | "
                         f"{_diff(d['psnr'], g['psnr'])} / "
                         f"{_diff(d['psnr_worst'], g['psnr_worst'])} |")
    mem = best_cache_bytes(rows)
    lines += ["", "| estimate | family adapter: cache held (peak) | generic: cache held (peak) | "
              "generic / adapter |", "|---|---:|---:|---:|"]
    for label, ded, gen in pairs:
        if ded in mem and gen in mem:
            lines.append(f"| {label} | {mem[ded] / 1024:.0f} KiB | {mem[gen] / 1024:.0f} KiB | "
                         f"{mem[gen] / mem[ded]:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_pairs(load_rows(sys.argv[1:])))
