"""What the benchmark reports share: the target reductions every method is compared at, the
interpolation of a method's curve to a target, and the markdown tables. Pure Python (no torch,
no ComfyUI), imported by run_benchmark.py, peers_table.py and target_benchmark.py; it imports
none of them.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

TARGETS = (2.0, 3.0, 4.0)     # reductions at which every method is compared (interpolated)
WAN14B_720P = (75_600, 5120)  # tokens x width of Wan 2.1 14B at 720p, 81 frames (memory.py)
SAME_REDUCTION_METRICS = (("psnr", "PSNR dB", 1), ("psnr_worst", None, 1), ("ssim", "SSIM", 3),
                          ("ssim_worst", None, 3))


def interpolate_at(points, target):
    """A metric of one method's curve at `target` reduction: piecewise linear in log(reduction)
    between its measured (reduction, value) points; None outside the measured range. Points
    measured at the same reduction (several thresholds can make the same computes, at other
    calls, with other PSNR) count as their mean, whichever side the target is on."""
    same = {}
    for r, p in points:
        if math.isfinite(p):
            same.setdefault(r, []).append(p)
    pts = sorted((r, sum(v) / len(v)) for r, v in same.items())
    for (r0, p0), (r1, p1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            f = (math.log(target) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return p0 + f * (p1 - p0)
    for r, p in pts:
        if abs(r - target) < 1e-9:
            return p
    return None


def _groups(rows):
    return list(dict.fromkeys(r["group"] for r in rows if r["group"] != "none"))


def compare_at_targets(rows, targets=TARGETS):
    """Per sampler and target reduction: every method group's PSNR (mean and worst over the
    prompts), interpolated; None where the group does not reach that reduction."""
    out = []
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        for target in targets:
            entry = {"sampler": sampler, "target": target, "groups": {}}
            for group in _groups(rows):
                g = [r for r in rows if r["sampler"] == sampler and r["group"] == group]
                pts = [(r["reduction"], r["psnr"]) for r in g]
                worst = [(r["reduction"], r["psnr_worst"]) for r in g]
                entry["groups"][group] = (interpolate_at(pts, target),
                                          interpolate_at(worst, target))
            out.append(entry)
    return out


def at_targets(rows, targets=TARGETS):
    """{(sampler, target): {group: {metric: value or None}}}, interpolated in log reduction."""
    out = {}
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        for t in targets:
            cell = out.setdefault((sampler, t), {})
            for group in _groups(rows):
                g = [r for r in rows if r["sampler"] == sampler and r["group"] == group]
                cell[group] = {m: interpolate_at([(r["reduction"], r[m]) for r in g], t)
                               for m, _, _ in SAME_REDUCTION_METRICS}
    return out


def best_cache_bytes(rows):
    out = {}
    for r in rows:
        if r.get("cache_bytes") is not None:
            out[r["group"]] = max(out.get(r["group"], 0), r["cache_bytes"])
    return out


def _f(x, nd=2):
    if x is None:
        return "-"
    return "inf" if isinstance(x, float) and math.isinf(x) else f"{x:.{nd}f}"


def render_table(meta, rows, timing, matched=()) -> str:
    """run_benchmark.py's table.md: every row, the PSNR at the target reductions, wall time."""
    lines = [f"Model {meta['model']}, {meta['steps']} steps, CFG {meta['cfg']}, latent "
             f"{meta['eval_latent']}, {meta['prompts']} evaluation prompts; {meta['machine']}. "
             "Wall speed-up: at this small latent, median over the prompts of the uncached "
             "run's time / the method's time (the interleaved timing at a larger latent is "
             "below).", ""]
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        lines += [f"### {sampler}", "",
                  "| method | block execs | reduction | wall speed-up | PSNR dB (mean / worst) | SSIM (mean / worst) | TeaCache cache |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in (r for r in rows if r["sampler"] == sampler):
            mem = "" if r["cache_bytes"] is None else f"{r['cache_bytes'] / 1024:.0f} KiB"
            lines.append(f"| {r['method']} | {r['blocks']:.0f} | {r['reduction']:.2f}x | "
                         f"{r.get('wall_speedup', 1.0):.2f}x | "
                         f"{_f(r['psnr'], 1)} / {_f(r['psnr_worst'], 1)} | {r['ssim']:.4f} / "
                         f"{r['ssim_worst']:.4f} | {mem} |")
        lines.append("")
    if matched:
        groups = list(dict.fromkeys(g for e in matched for g in e["groups"]))
        lines += ["### at the same reduction (PSNR dB mean / worst, interpolated in log "
                  "reduction between measured points; best mean in bold; - = not reached)", "",
                  "| sampler | reduction | " + " | ".join(groups) + " |",
                  "|---|---:|" + "---:|" * len(groups)]
        for e in matched:
            vals = {g: v for g, v in e["groups"].items()}
            best = max((v[0] for v in vals.values() if v[0] is not None), default=None)
            cells = []
            for g in groups:
                m, w = vals.get(g, (None, None))
                if m is None:
                    cells.append("-")
                    continue
                txt = f"{_f(m, 1)} / {_f(w, 1)}"
                cells.append(f"**{txt}**" if m == best else txt)
            lines.append(f"| {e['sampler']} | {e['target']:g}x | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"### wall time (latent {meta['timing_latent']}, median of {meta['reps']} interleaved runs)", "",
              "| method | median s | speed-up | ideal | of ideal |", "|---|---:|---:|---:|---:|"]
    for t in timing:
        ideal = "" if t["ideal"] is None else f"{t['ideal']:.2f}x"
        of = "" if t["of_ideal"] is None else f"{t['of_ideal']:.2f}"
        lines.append(f"| {t['method']} | {t['median_s']:.2f} | {t['speedup']:.3f}x | {ideal} | {of} |")
    if meta.get("decide_share_at_0") is not None:
        lines += ["", f"At threshold 0, TeaCache's own per-call work (indicator, distance, "
                  f"decision; timed inside the run) took {100 * meta['decide_share_at_0']:.2f}% "
                  "of the sampling time (median over the repetitions). \"uncached (copy)\" is "
                  "the same uncached model run again: its distance from 1.000x is the noise of "
                  "the machine."]
    return "\n".join(lines) + "\n"


def held_at_real_size(per_cond: float, conds: int = 2, tokens: int = WAN14B_720P[0],
                      width: int = WAN14B_720P[1], dtype_bytes: int = 2) -> int:
    """Bytes held by `per_cond` hidden-state-sized tensors per cond at a real size (default
    Wan 2.1 14B 720p, bf16, cond + uncond), by teacache_core/memory.py's formula: conds x
    k x R with R = tokens x width x dtype bytes (its k: 1 reuse, 2 extrapolate, plus 1 for a
    hidden-state indicator). Pure Python: memory.py is imported by path (no torch, no ComfyUI)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from teacache_core.memory import estimate
    one = estimate(tokens, width, dtype_bytes, conds=conds, indicator_is_hidden=False).device_held
    return int(round(per_cond * one))


def render_same_reduction(rows, targets=TARGETS, hidden_bytes=None) -> str:
    """The "at the same reduction" table with PSNR and SSIM (mean and worst) for every method
    group, and the memory each group's cache held. `targets`: the reductions compared (default
    2x, 3x, 4x). `hidden_bytes`: one cond's hidden state at the benchmark's latent; with it the
    memory table also gives the peak as hidden-state tensors per cond (both conds held) and
    what that many hold at Wan 2.1 14B 720p (held_at_real_size)."""
    table = at_targets(rows, targets)
    groups = _groups(rows)
    lines = []
    for sampler in dict.fromkeys(s for s, _ in table):
        lines += [f"#### {sampler}: at the same reduction (PSNR dB and SSIM, mean / worst prompt; "
                  "interpolated in log reduction; - = not reached; best mean PSNR in bold)", "",
                  "| method | " + " | ".join(f"{t:g}x PSNR | {t:g}x SSIM" for t in targets) + " |",
                  "|---|" + "---:|---:|" * len(targets)]
        best = {}
        for t in targets:
            vals = [v["psnr"] for v in table[(sampler, t)].values() if v["psnr"] is not None]
            best[t] = max(vals) if vals else None
        for g in groups:
            cells = []
            for t in targets:
                v = table[(sampler, t)][g]
                p = f"{_f(v['psnr'], 1)} / {_f(v['psnr_worst'], 1)}" if v["psnr"] is not None else "-"
                if v["psnr"] is not None and v["psnr"] == best[t]:
                    p = f"**{p}**"
                s = f"{_f(v['ssim'], 3)} / {_f(v['ssim_worst'], 3)}" if v["ssim"] is not None else "-"
                cells += [p, s]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    mem = best_cache_bytes(rows)
    if mem and hidden_bytes:
        lines += ["#### memory held by the cache (peak over the sweep, both conds, this latent; "
                  "per cond in hidden-state tensors of this latent; at Wan 2.1 14B 720p by the "
                  "same count, bf16, cond + uncond)", "",
                  "| method | peak bytes held | hidden-state tensors per cond | "
                  "at Wan 14B 720p |", "|---|---:|---:|---:|"]
        for g, b in mem.items():
            n = b / (2 * hidden_bytes)
            lines.append(f"| {g} | {b / 1024:.0f} KiB | {n:.2f} | "
                         f"{held_at_real_size(n) / 2 ** 30:.1f} GiB |")
        lines.append("")
    elif mem:
        lines += ["#### memory held by the cache (peak over the sweep, both conds, this latent)", "",
                  "| method | peak bytes held |", "|---|---:|"]
        lines += [f"| {g} | {b / 1024:.0f} KiB |" for g, b in mem.items()]
        lines.append("")
    return "\n".join(lines)


def load_rows(paths):
    """The fidelity rows of one or more results.json (later files add methods, never replace)."""
    rows, seen = [], set()
    for p in paths:
        for r in json.loads(Path(p).read_text())["fidelity"]:
            key = (r["sampler"], r["method"])
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows
