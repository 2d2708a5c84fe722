"""What one skipped call costs, call by call, against what the indicator says (issue 22).

A first run's shape (budget.call_scales) bets on where a skipped call costs: it holds computes
for the end of the run, where sigma is small. This measures that cost on each proxy: per call j
of the schedule, the final latent with every call computed except j (its residual estimated by
the skip estimate under test, as a skip does; benchmarks/oracle.py's runner, prefix replay on),
its PSNR against the uncached run, and the cost per unit of the indicator: the relative RMSE of
that latent (10 ** (-PSNR / 20)) over call j's rescaled indicator distance in a run with every
call computed. A rule that accumulates the indicator treats equal distances as equal costs; the
cost per unit says how far each call is from that, and where in the run.

Per prompt it also reads two signals a run could read, and prints the Spearman correlation of
the cost per unit with each and with 1 / sigma (does it rise towards the end?):
- the prediction's move: how far the model's denoised prediction moves into each call (relative
  L1, cond) per unit of the indicator, in the run with every call computed (free at a
  computed call);
- the sensitivity: a probe costing one extra model call per call (a separate run of the model
  without the pack): the model evaluated again at its input moved by 1% of its mean magnitude
  along the change of its output since the previous call (the direction a skip's error has),
  and how far the output moves per unit of that move (mean absolute; call 0 along random
  noise).

Calibration prompts (4.., seeds 700..), as benchmarks/vector_shape.py; nothing is chosen here.

    .venv/bin/python benchmarks/skip_cost.py [--proxies wan,hunyuan,ltxv,wan_shapes] \\
        [--prompts 3] [--steps 20] [--sampler euler] [--estimates reuse,extrapolate] \\
        [--out out/skip_cost]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402

WRAPPER_KEY = "teacache_skip_cost"


def cost_per_unit(psnrs, distances) -> list:
    """Relative RMSE of the final latent with call j skipped over call j's distance, calls 1..
    (psnrs[j], distances[j]; None where the distance is 0 or missing)."""
    out = []
    for p, d in zip(psnrs[1:], distances[1:]):
        ok = p is not None and d and math.isfinite(p)
        out.append(10 ** (-p / 20) / d if ok else (0.0 if p == math.inf else None))
    return out


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length lists (pairs with a None dropped)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 3:
        return float("nan")

    def ranks(v):
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        for pos, i in enumerate(order):
            r[i] = float(pos)
        return r
    ra, rb = ranks([x for x, _ in pairs]), ranks([y for _, y in pairs])
    return statistics.correlation(ra, rb) if len(set(ra)) > 1 and len(set(rb)) > 1 else float("nan")


def thirds_median(values) -> list:
    """Median of the values (None dropped) in each third of the list."""
    n = len(values)
    edges = [round(n * i / 3) for i in range(4)]
    out = []
    for i in range(3):
        v = [x for x in values[edges[i]:edges[i + 1]] if x is not None]
        out.append(statistics.median(v) if v else float("nan"))
    return out


def sensitivity(model, sample, eps: float = 0.01) -> list:
    """Per model call of `sample(model)`, how far the model's output moves per unit of an input
    move of eps x its mean magnitude along the change of its output since the previous call
    (random noise at the first call): one extra model call per call, on a clone of `model`."""
    import comfy.patcher_extension as pe
    import torch
    out, prev = [], []
    gen = torch.Generator().manual_seed(0)

    def probe(executor, *args, **kwargs):
        y = executor(*args, **kwargs)
        x = args[0]
        d = (y - prev[-1]) if prev else torch.randn(x.shape, generator=gen).to(x)
        d = d / d.abs().mean().clamp_min(1e-12) * x.abs().mean() * eps
        y2 = executor(x + d, *args[1:], **kwargs)
        out.append(float((y2 - y).abs().mean() / d.abs().mean().clamp_min(1e-12)))
        prev[:] = [y]
        return y
    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, WRAPPER_KEY + "_probe", probe)
    with torch.inference_mode():
        sample(m)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxies", default="wan,hunyuan,ltxv,wan_shapes")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--estimates", default="reuse,extrapolate")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "out" / "skip_cost"))
    a = ap.parse_args()
    load_pack()
    import comfy.patcher_extension as pe
    import comfy.samplers
    import comfy.sd
    import nodes
    import torch
    from benchmarks.metrics import psnr
    from benchmarks.oracle import OracleRunner
    from benchmarks.proxies import get_proxy
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core.patching import registration_of

    bench_session("teacache-skip-cost-", a.threads)
    n = a.steps
    estimates = [e for e in a.estimates.split(",") if e]
    res = {"meta": {"steps": n, "sampler": a.sampler, "cfg": a.cfg, "prompts": a.prompts,
                    "command": " ".join(["benchmarks/skip_cost.py"] + sys.argv[1:])},
           "proxies": {}}
    lines = [f"{a.sampler}, {n} steps, CFG {a.cfg:g}, calibration prompts 4-{3 + a.prompts} "
             f"(seeds 700-{699 + a.prompts}); per call j = 1..{n - 1}: cost per unit of the "
             "indicator with only call j skipped, relative to the prompt's largest; medians "
             "per third; Spearman correlation with 1 / sigma and with the denoised "
             "prediction's move per unit of indicator", "",
             "| proxy | prompt | estimate | cost per unit, call by call | medians by third "
             "| rho(1 / sigma) | rho(prediction's move) | rho(sensitivity) |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for name in a.proxies.split(","):
        proxy = get_proxy(name)
        # the oracle's runner samples proxy.eval_prompts[i]: hand it the calibration prompts
        calib = dataclasses.replace(proxy, eval_prompts=list(proxy.calib_prompts[4:]))
        model = comfy.sd.load_diffusion_model(str(proxy.model))
        sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"),
                                                 "simple", n).tolist()
        latent = torch.zeros(1, *proxy.eval_latent)
        runners = {e: OracleRunner(model, calib, latent, n, a.cfg, a.sampler, e)
                   for e in estimates}
        out = res["proxies"][name] = {"sigmas": sigmas, "prompts": []}
        for i in range(a.prompts):
            seed, p = 700 + i, calib.eval_prompts[i]
            pos, neg = calib.positive(p), calib.negative()
            preds = []

            def record(executor, *args, **kwargs):
                y = executor(*args, **kwargs)
                cu = (kwargs.get("transformer_options") or {}).get("cond_or_uncond", [0])
                k, b = (cu.index(0) if 0 in cu else 0), y.shape[0] // max(len(cu), 1)
                preds.append(y[k * b:(k + 1) * b].detach().float().clone())
                return y
            m = TeaCacheApply.execute(model, 1e-9, 0, -1, "uncalibrated", "model_device",
                                      False, 0, "reuse", 0.0, False).result[0]
            m.add_wrapper_with_key(pe.WrappersMP.APPLY_MODEL, WRAPPER_KEY, record)
            with torch.inference_mode():
                ref = nodes.common_ksampler(model, seed, n, a.cfg, a.sampler, "simple", pos, neg,
                                            {"samples": latent})[0]["samples"]
                nodes.common_ksampler(m, seed, n, a.cfg, a.sampler, "simple", pos, neg,
                                      {"samples": latent})
            dist = [r["rescaled"] for r in registration_of(m).last_summary["branches"]["cond"]]
            sens = sensitivity(model, lambda mm: nodes.common_ksampler(
                mm, seed, n, a.cfg, a.sampler, "simple", pos, neg, {"samples": latent}))
            moves = [None] + [float((preds[j] - preds[j - 1]).abs().mean()
                                    / preds[j - 1].abs().mean().clamp_min(1e-12))
                              for j in range(1, len(preds))]
            row = {"distances": dist, "prediction_moves": moves, "sensitivity": sens}
            for e, runner in runners.items():
                ps = [None] + [psnr(runner.sample(i, [k for k in range(n) if k != j], seed=seed),
                                    ref) for j in range(1, n)]
                cost = cost_per_unit(ps, dist)
                top = max(c for c in cost if c is not None)
                rel = [None if c is None else c / top for c in cost]
                per_unit = [None if mv is None or not d else mv / d
                            for mv, d in zip(moves[1:], dist[1:])]
                stats = {"psnr": ps, "cost": cost, "thirds": thirds_median(rel),
                         "rho_sigma": spearman(cost, [1 / max(s, 1e-6) for s in sigmas[1:n]]),
                         "rho_move": spearman(cost, per_unit),
                         "rho_sensitivity": spearman(cost, sens[1:])}
                row[e] = stats
                lines.append(f"| {name} | {4 + i} | {e} | "
                             + " ".join("-" if c is None else f"{c:.2f}" for c in rel)
                             + " | " + " / ".join(f"{x:.2f}" for x in stats["thirds"])
                             + f" | {stats['rho_sigma']:+.2f} | {stats['rho_move']:+.2f} | "
                             f"{stats['rho_sensitivity']:+.2f} |")
            out["prompts"].append(row)
            print(f"{name} prompt {4 + i} done", flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    o = Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "skip_cost.json").write_text(json.dumps(res, indent=1))
    (o / "skip_cost.md").write_text(text)


if __name__ == "__main__":
    main()
