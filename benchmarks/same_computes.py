"""Placement at the same computes: target_speedup, every fixed threshold that makes the same
computes, and the oracle, prompt by prompt (issue 22's worst-prompt criterion, read against
how far placement alone moves the PSNR). Calibration prompts only: this is a diagnosis.

The issue's criterion compares the worst prompt of a target cell with the worst prompt of the
fixed threshold that makes the same block runs (target_benchmark.py --match). How much of that
comparison is the rule, and how much is which of several placements with the same computes a
rule lands on? Per cell (sampler, steps, target, estimate) and calibration prompt (seed
100 + i), through ComfyUI's loader and KSampler and the pack's own node:

- target: the pack's `target_speedup` on a fresh node with no profile store (a first run);
  its computed calls K;
- fixed at K: every threshold of a geometric sweep (--sweep LO:HI:N) whose run computes
  exactly K calls on that prompt: how many, their lowest and highest PSNR;
- oracle at K: benchmarks/oracle.py's backward greedy (window / lazy as there) down to K
  computed steps, and its local search (--local-rounds): a good schedule, not the limit;
- --patterns: given schedules ("C" computed, "." skipped, one per step), each sampled exactly
  (the oracle's runner): which single differences between two placements cost the dB;
- --prior-from: the oracle schedules of other proxies' results files (this script's) as one
  static schedule per cell (`prior_schedule`): do the oracle's placements carry over to a
  model they were not found on?

The pack's target decides cond and uncond together (shared, its default), as the oracle does;
the fixed thresholds decide each cond by its own indicator (on these proxies the two conds'
indicators agree, so they compute at the same calls).

    .venv/bin/python benchmarks/same_computes.py --proxy ltxv \\
        --cells uni_pc:20:1.5:reuse,dpmpp_2m:30:2:reuse --prompts 2 --out out/same_computes_ltxv
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402


def parse_cells(text: str) -> list:
    """"sampler:steps:target:estimate,..." -> [(sampler, steps, target, estimate), ...]."""
    out = []
    for part in text.split(","):
        bits = part.strip().split(":")
        if len(bits) != 4:
            raise SystemExit(f"cell {part!r}: write sampler:steps:target:estimate")
        out.append((bits[0], int(bits[1]), float(bits[2]), bits[3]))
    return out


def sweep(text: str) -> list:
    """"LO:HI:N" -> N thresholds spaced geometrically from LO to HI."""
    lo, hi, n = text.split(":")
    lo, hi, n = float(lo), float(hi), int(n)
    return [lo * (hi / lo) ** (i / max(n - 1, 1)) for i in range(n)]


def pattern(summary) -> str:
    """The computed calls of a run's first branch, "C" computed, "." skipped."""
    rec = next(iter(summary["branches"].values()))
    return "".join("C" if r["computed"] else "." for r in rec)


def prior_schedule(sources, cell, steps: int, k: int) -> str:
    """Step 0 and the k - 1 steps most often computed in the oracle schedules that `sources`
    (results dicts of this script) found for `cell` (sampler, steps, target, estimate); ties:
    the later step first."""
    pats = [q["oracle_pattern"] for res in sources for c in res["cells"]
            if (c["sampler"], c["steps"], c["target"], c["estimate"]) == tuple(cell)
            for q in c["prompts"] if q.get("oracle_pattern")]
    if not pats:
        raise SystemExit(f"--prior-from: no oracle schedule for {cell}")
    freq = [sum(p[i] == "C" for p in pats) for i in range(steps)]
    order = sorted(range(1, steps), key=lambda i: (-freq[i], -i))
    chosen = {0} | set(order[:k - 1])
    return "".join("C" if i in chosen else "." for i in range(steps))


def _mean_worst(vals) -> str:
    vals = [v for v in vals if v is not None]
    return f"{statistics.mean(vals):.1f} / {min(vals):.1f}" if vals else "n/a"


def table(results) -> str:
    """One line per cell: the target's PSNR (mean / worst over the prompts), per prompt the
    target against the fixed thresholds that made exactly its computes on that prompt (the
    lowest and highest of them; n/a where none of the sweep did), the oracle's PSNR and the
    target's mean gap to it; then the given patterns, mean / worst."""
    lines = ["| cell | K of N | target | target - fixed at K, per prompt (lowest .. highest "
             "placement) | oracle at K | target - oracle (mean) |",
             "|---|---|---|---|---|---|"]
    pats = []
    for c in results["cells"]:
        ps = c["prompts"]
        ks = sorted({p["k"] for p in ps})
        fixed = ", ".join(
            "n/a" if p["fixed_low"] is None else
            f"{p['target'] - p['fixed_high']:+.1f}" if p["fixed_low"] == p["fixed_high"] else
            f"{p['target'] - p['fixed_high']:+.1f} .. {p['target'] - p['fixed_low']:+.1f}"
            for p in ps)
        orc = [p.get("oracle") for p in ps]
        gap = ("n/a" if None in orc else
               f"{statistics.mean(p['target'] - p['oracle'] for p in ps):+.1f}")
        lines.append(f"| {c['sampler']} {c['steps']} steps {c['target']:g}x {c['estimate']} | "
                     f"{'/'.join(map(str, ks))} of {ps[0]['calls']} | "
                     f"{_mean_worst(p['target'] for p in ps)} | {fixed} | "
                     f"{_mean_worst(orc) if None not in orc else 'n/a'} | {gap} |")
        if ps[0].get("prior_pattern") and len({p["prior_pattern"] for p in ps}) == 1:
            pats.append(f"| {c['sampler']} {c['steps']} steps {c['estimate']} | "
                        f"`{ps[0]['prior_pattern']}` (other proxies' oracle) | "
                        f"{ps[0]['prior_pattern'].count('C')} | "
                        f"{_mean_worst(p['prior'] for p in ps)} |")
        for pat in ps[0].get("patterns", {}):
            pats.append(f"| {c['sampler']} {c['steps']} steps {c['estimate']} | `{pat}` | "
                        f"{pat.count('C')} | "
                        f"{_mean_worst(p['patterns'][pat] for p in ps)} |")
    if pats:
        lines += ["", "| cell | schedule | computed | PSNR mean / worst |", "|---|---|---|---|"]
        lines += pats
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", default="ltxv")
    ap.add_argument("--cells", required=True, metavar="SAMPLER:STEPS:TARGET:ESTIMATE,...")
    ap.add_argument("--prompts", type=int, default=2, help="calibration prompts")
    ap.add_argument("--latent", default=None, help="FxHxW (default: 3x16x16, LTX-Video 3x8x8)")
    ap.add_argument("--sweep", default="0.01:1.5:48", metavar="LO:HI:N")
    ap.add_argument("--window", type=int, default=3)
    ap.add_argument("--lazy", type=int, default=3)
    ap.add_argument("--local-rounds", type=int, default=2)
    ap.add_argument("--no-oracle", action="store_true")
    ap.add_argument("--patterns", default="", metavar="C.C..C,...",
                    help="schedules to sample on each prompt of each cell (one char per step)")
    ap.add_argument("--prior-from", default="", metavar="RESULTS_JSON,...",
                    help="other proxies' results of this script: their oracle schedules as a "
                         "static schedule per cell")
    ap.add_argument("--out", default=str(ROOT / "out" / "same_computes"))
    a = ap.parse_args()
    load_pack()
    import dataclasses
    import torch
    import comfy.sd
    import nodes
    from benchmarks.metrics import psnr
    from benchmarks.oracle import OracleRunner, PromptSearch
    from benchmarks.proxies import get_proxy
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core.patching import registration_of

    bench_session("teacache-same-computes-")
    # the calibration prompts, where the oracle's runner reads its prompts
    proxy = get_proxy(a.proxy)
    proxy = dataclasses.replace(proxy, eval_prompts=proxy.calib_prompts)
    model = comfy.sd.load_diffusion_model(str(proxy.model))
    lat = a.latent or ("3x8x8" if proxy.name == "ltxv" else "3x16x16")
    latent = torch.zeros(1, proxy.eval_latent[0], *(int(v) for v in lat.split("x")))
    thresholds = sweep(a.sweep)
    priors = [json.loads(Path(f).read_text()) for f in a.prior_from.split(",") if f]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"meta": {"proxy": proxy.name, "prompt_set": "calib", "prompts": a.prompts,
                        "latent": list(latent.shape), "sweep": a.sweep, "window": a.window,
                        "lazy": a.lazy, "local_rounds": a.local_rounds,
                        "command": " ".join(["benchmarks/same_computes.py"] + sys.argv[1:])},
               "cells": []}
    t_start = time.perf_counter()
    for sampler, steps, target, est in parse_cells(a.cells):
        def run(m, i):
            with torch.inference_mode():
                return nodes.common_ksampler(
                    m, 100 + i, steps, 5.0, sampler, "simple",
                    proxy.positive(proxy.calib_prompts[i]), proxy.negative(),
                    {"samples": latent})[0]["samples"]

        def node(thresh=0.0, tgt=0.0):
            return TeaCacheApply.execute(model, thresh, 0, -1, "uncalibrated", "model_device",
                                         False, 0, est, tgt, False).result[0]
        patterns = [p for p in a.patterns.split(",") if p]
        if any(len(p) != steps or set(p) - {"C", "."} for p in patterns):
            raise SystemExit(f"--patterns: one 'C' or '.' per step ({steps} steps)")
        runner = None
        if patterns or priors or not a.no_oracle:
            runner = OracleRunner(model, proxy, latent, steps, 5.0, sampler, est)
        cell = {"sampler": sampler, "steps": steps, "target": target, "estimate": est,
                "prompts": []}
        for i in range(a.prompts):
            ref = run(model, i)
            m = node(tgt=target)
            got = run(m, i)
            pat = pattern(registration_of(m).last_summary)
            k = pat.count("C")
            row = {"prompt": i, "calls": len(pat), "k": k, "target": psnr(got, ref),
                   "target_pattern": pat, "fixed": []}
            for t in thresholds:
                m = node(thresh=t)
                got = run(m, i)
                p = pattern(registration_of(m).last_summary)
                if p.count("C") == k:
                    row["fixed"].append({"thresh": t, "psnr": psnr(got, ref), "pattern": p})
            vals = [x["psnr"] for x in row["fixed"]]
            row["fixed_count"] = len({x["pattern"] for x in row["fixed"]})
            row["fixed_low"] = min(vals) if vals else None
            row["fixed_high"] = max(vals) if vals else None
            search = None if runner is None else PromptSearch(
                runner, i, runner.sample(i, range(steps)), psnr)
            def score(p):
                return search.score(frozenset(j for j, c in enumerate(p) if c == "C"))
            if search is not None and len(pat) == steps:
                # the target's own schedule through the oracle's runner: the same run (a check
                # that the placements below are sampled on an equal footing)
                row["target_resampled"] = score(pat)
            row["patterns"] = {p: score(p) for p in patterns}
            if priors:
                row["prior_pattern"] = prior_schedule(priors, (sampler, steps, target, est),
                                                      steps, k)
                row["prior"] = score(row["prior_pattern"])
                print(f"  prompt {i} prior {row['prior_pattern']}: {row['prior']:.2f}", flush=True)
            for p, v in row["patterns"].items():
                print(f"  prompt {i} {p} {p.count('C')} computed: {v:.2f}", flush=True)
            if not a.no_oracle and len(pat) == steps:       # one call per step
                path = search.greedy(k, window=a.window, lazy=a.lazy)
                sched, _ = path[k]
                sched, val = search.local(sched, max_rounds=a.local_rounds)
                row["oracle"] = val
                row["oracle_pattern"] = "".join("C" if j in sched else "." for j in range(steps))
            print(f"{sampler} {steps} {target:g}x {est} prompt {i}: K {k}, target "
                  f"{row['target']:.2f} {pat}; fixed at K {row['fixed_low']} .. "
                  f"{row['fixed_high']} ({row['fixed_count']} placements); oracle "
                  f"{row.get('oracle')} {row.get('oracle_pattern', '')}", flush=True)
            cell["prompts"].append(row)
        results["cells"].append(cell)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    results["meta"]["seconds"] = round(time.perf_counter() - t_start)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
