"""The "at the same reduction" table with PSNR and SSIM (mean and worst) for every method group,
from one or more results.json of run_benchmark.py (later files add groups, never replace).

    python benchmarks/peers_table.py out/peers/results.json [more results.json ...]
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run_benchmark import TARGETS, interpolate_at  # noqa: E402

METRICS = (("psnr", "PSNR dB", 1), ("psnr_worst", None, 1), ("ssim", "SSIM", 3),
           ("ssim_worst", None, 3))


def at_targets(rows, targets=TARGETS):
    """{(sampler, target): {group: {metric: value or None}}}, interpolated in log reduction."""
    out = {}
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        for t in targets:
            cell = out.setdefault((sampler, t), {})
            for group in dict.fromkeys(r["group"] for r in rows if r["group"] != "none"):
                g = [r for r in rows if r["sampler"] == sampler and r["group"] == group]
                cell[group] = {m: interpolate_at([(r["reduction"], r[m]) for r in g], t)
                               for m, _, _ in METRICS}
    return out


def best_cache_bytes(rows):
    out = {}
    for r in rows:
        if r.get("cache_bytes") is not None:
            out[r["group"]] = max(out.get(r["group"], 0), r["cache_bytes"])
    return out


def _f(v, nd):
    if v is None:
        return "-"
    return "inf" if math.isinf(v) else f"{v:.{nd}f}"


def render(rows) -> str:
    table = at_targets(rows)
    groups = list(dict.fromkeys(r["group"] for r in rows if r["group"] != "none"))
    lines = []
    for sampler in dict.fromkeys(s for s, _ in table):
        lines += [f"#### {sampler}: at the same reduction (PSNR dB and SSIM, mean / worst prompt; "
                  "interpolated in log reduction; - = not reached; best mean PSNR in bold)", "",
                  "| method | " + " | ".join(f"{t:g}x PSNR | {t:g}x SSIM" for t in TARGETS) + " |",
                  "|---|" + "---:|---:|" * len(TARGETS)]
        best = {}
        for t in TARGETS:
            vals = [v["psnr"] for v in table[(sampler, t)].values() if v["psnr"] is not None]
            best[t] = max(vals) if vals else None
        for g in groups:
            cells = []
            for t in TARGETS:
                v = table[(sampler, t)][g]
                p = f"{_f(v['psnr'], 1)} / {_f(v['psnr_worst'], 1)}" if v["psnr"] is not None else "-"
                if v["psnr"] is not None and v["psnr"] == best[t]:
                    p = f"**{p}**"
                s = f"{_f(v['ssim'], 3)} / {_f(v['ssim_worst'], 3)}" if v["ssim"] is not None else "-"
                cells += [p, s]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    mem = best_cache_bytes(rows)
    if mem:
        lines += ["#### memory held by the cache (peak over the sweep, both conds, this latent)", "",
                  "| method | peak bytes held |", "|---|---:|"]
        lines += [f"| {g} | {b / 1024:.0f} KiB |" for g, b in mem.items()]
        lines.append("")
    return "\n".join(lines)


def load_rows(paths):
    rows, seen = [], set()
    for p in paths:
        for r in json.loads(Path(p).read_text())["fidelity"]:
            key = (r["sampler"], r["method"])
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows


if __name__ == "__main__":
    print(render(load_rows(sys.argv[1:])))
