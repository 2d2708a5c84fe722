"""Benchmark: TeaCache against ComfyUI's EasyCache and LazyCache and against fewer steps, on a
small trained Wan-architecture proxy model, through ComfyUI's own loader and sampler.

Methods (each against the uncached N-step run of the same prompt and seed):
  fewer steps (N/2, N/3, N/4); TeaCache with (a) the identity rescale ("uncalibrated"),
  (b) the published Wan 2.1 1.3B coefficients (timestep-embedding indicator), (c) coefficients
  calibrated on the proxy with TeaCacheCalibrate on CALIB_PROMPTS (disjoint from EVAL_PROMPTS),
  (d) the generic path forced on the proxy ("generic", issue 21: no family file);
  ComfyUI's EasyCache and LazyCache (defaults start 0.15 / end 0.95) at a sweep of thresholds.
Samplers: euler and dpmpp_2m (multistep), CFG on.

Reported per method: transformer-block executions (and the reduction against the uncached
run), PSNR and SSIM of the final latent against the uncached run (mean and worst over the
prompts), peak memory held by TeaCache's cache; and, at a larger latent where the blocks
dominate the step time, the median wall-time speed-up of interleaved repetitions against the
ideal (model calls / calls that ran the blocks) and the overhead at threshold 0.

Writes <out>/results.json, <out>/table.md and <out>/fidelity_vs_speedup.png.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import bench_session, load_pack  # noqa: E402
from benchmarks.tables import compare_at_targets, render_same_reduction, render_table  # noqa: E402


def parse():
    from benchmarks.proxies import PROXIES
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", choices=list(PROXIES), default="wan",
                    help="which trained proxy (benchmarks/proxies.py): wan = WanModel on the "
                         "blob world, hunyuan = HunyuanVideo (dual-stream) on the shapes world")
    ap.add_argument("--model", default=None, help="model file (default: the proxy's)")
    ap.add_argument("--steps", type=int, default=24,
                    help="sampling steps (24: N/2, N/3, N/4 are whole step counts)")
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--prompts", type=int, default=8, help="evaluation prompts (>= 8 for the report)")
    ap.add_argument("--calib-prompts", type=int, default=8)
    ap.add_argument("--samplers", default="euler,dpmpp_2m")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (interleaved)")
    ap.add_argument("--timing-latent", default=None,
                    help="frames x height x width (default: the proxy's, 9x32x32)")
    ap.add_argument("--out", default=str(ROOT / "out" / "benchmark"))
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0 = torch's default; 1 is faster on a busy 2-core box)")
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (tests use it)")
    ap.add_argument("--thresholds", default="",
                    help="comma-separated rel_l1_thresh sweep for every TeaCache threshold group "
                         "run (default: each group's own, TEA_THRESHOLDS), e.g. a denser one")
    # ---- issue 13: peer methods (benchmarks/peers.py) ----
    ap.add_argument("--methods", default="",
                    help="comma-separated method groups to run (case-insensitive prefixes of "
                         "the group names, e.g. 'fewer,TeaCache uncalibrated,MagCache'); "
                         "default: all. The uncached reference always runs.")
    return ap.parse_args()


TEA_THRESHOLDS = {"uncalibrated": [0.05, 0.1, 0.2, 0.3, 0.45],
                  "wan2.1_t2v_1.3B": [0.05, 0.1, 0.2, 0.3, 0.45],
                  "calibrated": [0.05, 0.1, 0.2, 0.3, 0.45],
                  "uncalibrated+extrapolate": [0.05, 0.1, 0.2, 0.3, 0.45],
                  "calibrated+extrapolate": [0.05, 0.1, 0.2, 0.3, 0.45],
                  # issue 21: the generic path forced on the proxy (model_type "generic":
                  # indicator block_input, identity rescale, per-stack residuals)
                  "generic": [0.02, 0.03, 0.05, 0.1, 0.2, 0.3],
                  "generic+extrapolate": [0.02, 0.03, 0.05, 0.1, 0.2, 0.3],
                  # and an experiment: its indicator from the block input and `vec`
                  # (benchmarks/generic_indicator.py)
                  "generic-vec": [0.03, 0.05, 0.1, 0.15, 0.2, 0.3],
                  "generic-vec+extrapolate": [0.03, 0.05, 0.1, 0.15, 0.2, 0.3]}
TARGET_SPEEDUPS = (1.5, 2.0, 3.0, 4.0, 5.0)   # the target_speedup values run
EASY_THRESHOLDS = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]


def main():
    a = parse()
    from benchmarks.proxies import get_proxy
    proxy = get_proxy(a.proxy)
    a.model = a.model or str(proxy.model)
    a.timing_latent = a.timing_latent or proxy.timing_latent
    if a.quick:
        a.steps, a.prompts, a.calib_prompts, a.reps = 6, 2, 2, 1
        a.samplers, a.timing_latent = "euler", "3x16x16"
    load_pack()
    import torch
    import comfy.sd
    import nodes
    from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode
    from benchmarks.metrics import psnr, ssim
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.nodes.calibrate import TeaCacheCalibrate
    from comfyui_teacache.teacache_core.coefficients import PRESETS
    from comfyui_teacache.teacache_core.config import TeaCacheConfig
    from comfyui_teacache.teacache_core.patching import apply_teacache, registration_of

    bench_session("teacache-bench-user-", a.threads, logging.WARNING)
    model = comfy.sd.load_diffusion_model(a.model)
    dm = model.get_model_object("diffusion_model")
    blocks = {"n": 0}
    for b in proxy.blocks(dm):
        b.register_forward_pre_hook(lambda *_: blocks.__setitem__("n", blocks["n"] + 1))
    lat_eval = torch.zeros(1, *proxy.eval_latent)
    f, h, w = (int(v) for v in a.timing_latent.split("x"))
    lat_time = torch.zeros(1, proxy.eval_latent[0], f, h, w)

    def run(m, prompt, seed, steps, sampler, latent):
        pos = proxy.positive(prompt)
        neg = proxy.negative()
        blocks["n"] = 0
        t0 = time.perf_counter()
        with torch.inference_mode():  # as ComfyUI's executor runs a prompt
            out = nodes.common_ksampler(m, seed, steps, a.cfg, sampler, "simple", pos, neg,
                                        {"samples": latent})[0]["samples"]
        return out, time.perf_counter() - t0, blocks["n"]

    # ---- calibrate on prompts disjoint from the evaluation ones -----------------------------
    t0 = time.perf_counter()
    cal_model = TeaCacheCalibrate.execute(model, "proxy", 0, "auto").result[0]
    for i, p in enumerate(proxy.calib_prompts[:a.calib_prompts]):
        for sampler in a.samplers.split(","):
            run(cal_model, p, 1000 + i, a.steps, sampler, lat_eval)
    print(f"calibrated on {a.calib_prompts} prompts in {time.perf_counter() - t0:.0f}s", flush=True)

    # ---- methods -------------------------------------------------------------------------------
    # the published coefficients of the proxy's architecture (Wan 2.1 1.3B for the Wan proxy,
    # HunyuanVideo for the HunyuanVideo proxy), size check bypassed
    published = proxy.published_preset

    def tea(kind, thr):
        if kind == published:
            m, _ = apply_teacache(model, TeaCacheConfig(thr, model_type=kind),
                                  preset=dataclasses.replace(PRESETS[kind], match={}))
            return m
        base, _, estimate = kind.partition("+")
        if base == "generic-vec":
            from benchmarks.generic_indicator import install
            return install(model, TeaCacheConfig(thr, model_type="generic",
                                                 skip_estimate=estimate or "reuse"))
        mt = {"calibrated": "calib:proxy", "generic": "generic"}.get(base, "uncalibrated")
        return TeaCacheApply.execute(model, thr, 0, -1, mt, "model_device", False, 0,
                                     estimate or "reuse").result[0]

    methods = [("uncached", "none", None, lambda: model)]
    for div in (2, 3, 4):
        methods.append((f"steps/{div}", "fewer steps", div, lambda: model))
    tea_thresholds = {(published if k == "wan2.1_t2v_1.3B" else k): v
                      for k, v in TEA_THRESHOLDS.items()}
    if a.thresholds:
        tea_thresholds = {k: [float(v) for v in a.thresholds.split(",")] for k in tea_thresholds}
    thr_sets = tea_thresholds if not a.quick else {k: v[2:3] for k, v in tea_thresholds.items()}
    for kind, ths in thr_sets.items():
        for t in ths:
            methods.append((f"teacache[{kind}] {t:g}", f"TeaCache {kind}", t,
                            (lambda k=kind, t=t: tea(k, t))))
    # target_speedup (the online threshold), uncalibrated; a fresh node for every run, so each
    # is a first run with this schedule (fresh=True below)
    for estimate in ("reuse", "extrapolate"):
        group = "TeaCache target" + ("" if estimate == "reuse" else "+extrapolate")
        for r in (TARGET_SPEEDUPS if not a.quick else TARGET_SPEEDUPS[1:2]):
            methods.append((f"teacache[target{'' if estimate == 'reuse' else '+extrapolate'}] "
                            f"{r:g}x", group, r,
                            (lambda e=estimate, r=r: TeaCacheApply.execute(
                                model, 0.0, 0, -1, "uncalibrated", "model_device", False, 0, e,
                                r, False).result[0])))      # profile store off: a first run
    for name, node in (("EasyCache", EasyCacheNode), ("LazyCache", LazyCacheNode)):
        for t in (EASY_THRESHOLDS if not a.quick else EASY_THRESHOLDS[2:3]):
            methods.append((f"{name.lower()} {t:g}", name, t,
                            (lambda n=node, t=t: n.execute(model, t, 0.15, 0.95, False).result[0])))

    # ---- issue 13: peer methods re-implemented on the pack's gates (benchmarks/peers.py) ----
    from benchmarks import peers
    mag_curves: dict = {}
    methods += peers.benchmark_methods(model, a.quick, mag_curves)
    if a.methods:
        wanted = [w.strip().lower() for w in a.methods.split(",") if w.strip()]
        methods = [m for m in methods if m[1] == "none"
                   or any(m[1].lower().startswith(w) for w in wanted)]
    if any(m[1].startswith("MagCache") for m in methods):
        # MagCache's calibration: one calibration prompt, uncached, first sampler
        mag_curves.update(peers.calibrate_magcache(model, lambda m: run(
            m, proxy.calib_prompts[0], 1000, a.steps, a.samplers.split(",")[0], lat_eval)))
    # ---- end issue 13 ----

    built = {name: make() for name, _, _, make in methods}
    prompts = proxy.eval_prompts[:a.prompts]
    rows = []
    for sampler in a.samplers.split(","):
        refs = {}
        for i, p in enumerate(prompts):
            refs[i] = run(model, p, 100 + i, a.steps, sampler, lat_eval)
        for name, group, param, make in methods:
            ps, ss, bl, sp, peak = [], [], [], [], 0
            fresh = group.startswith("TeaCache target")
            for i, p in enumerate(prompts):
                steps = a.steps // param if group == "fewer steps" else a.steps
                if fresh:
                    built[name] = make()
                out, dt, n = run(built[name], p, 100 + i, steps, sampler, lat_eval)
                sp.append(refs[i][1] / dt)
                ps.append(psnr(out, refs[i][0]))
                ss.append(ssim(out, refs[i][0]))
                bl.append(n)
                reg = registration_of(built[name]) if _holds_cache(group) else None
                if reg is not None:
                    peak = max(peak, reg.last_summary["peak_cache_bytes"])
            ref_blocks = statistics.mean(refs[i][2] for i in range(len(prompts)))
            rows.append({"sampler": sampler, "method": name, "group": group, "param": param,
                         "blocks": statistics.mean(bl), "reduction": ref_blocks / statistics.mean(bl),
                         "psnr": _mean(ps), "psnr_worst": min(ps), "ssim": statistics.mean(ss),
                         "ssim_worst": min(ss), "wall_speedup": statistics.median(sp),
                         "cache_bytes": peak if _holds_cache(group) else None})
        print(f"{sampler}: fidelity done", flush=True)

    # ---- wall time at a latent where the blocks dominate --------------------------------------
    # "uncached (copy)": the same model once more, a control for the noise of the machine
    timing_methods = ["uncached", "uncached (copy)", "teacache[uncalibrated] 0", "easycache 0.2"]
    built["uncached (copy)"] = model.clone()
    built["teacache[uncalibrated] 0"] = tea("uncalibrated", 0.0)
    # time spent in TeaCache's own per-call work (indicator, distance, decision) at threshold 0
    decide_s = {"t": 0.0}
    reg0 = registration_of(built["teacache[uncalibrated] 0"])
    plain_decide = reg0.decide

    def timed_decide(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return plain_decide(*args, **kwargs)
        finally:
            decide_s["t"] += time.perf_counter() - t0
    reg0.decide = timed_decide
    tea_ths = thr_sets["uncalibrated"][1::2] if not a.quick else thr_sets["uncalibrated"]
    for t in tea_ths:
        timing_methods.append(f"teacache[uncalibrated] {t:g}")
        timing_methods.append(f"teacache[uncalibrated+extrapolate] {t:g}")
    timing_methods = [m for m in timing_methods if m in built]
    sampler = a.samplers.split(",")[0]
    times = {m: [] for m in timing_methods}
    ideal = {}
    for m in timing_methods:                       # warm-up
        run(built[m], prompts[0], 7, a.steps, sampler, lat_time)
    decide_share = []
    for rep in range(a.reps):
        # alternate the order: a fixed order would favour whoever runs first after a pause
        for m in (timing_methods if rep % 2 == 0 else timing_methods[::-1]):
            decide_s["t"] = 0.0
            _, dt, n = run(built[m], prompts[0], 7, a.steps, sampler, lat_time)
            times[m].append(dt)
            if m == "teacache[uncalibrated] 0":
                decide_share.append(decide_s["t"] / dt)
            reg = registration_of(built[m]) if m.startswith("teacache") else None
            if reg is not None:
                s = reg.last_summary
                ideal[m] = s["calls"] / max(s["calls_blocks_ran"], 1)
    base = statistics.median(times["uncached"])
    # speed-up = median over repetitions of (uncached time / method time) in the same
    # repetition: interleaving cancels most of the drift of a shared machine
    timing = []
    for m in timing_methods:
        sp = statistics.median(b / t for b, t in zip(times["uncached"], times[m]))
        timing.append({"method": m, "median_s": statistics.median(times[m]), "speedup": sp,
                       "ideal": ideal.get(m), "of_ideal": sp / ideal[m] if m in ideal else None})

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"steps": a.steps, "cfg": a.cfg, "prompts": len(prompts), "samplers": a.samplers,
            "eval_latent": list(lat_eval.shape), "timing_latent": list(lat_time.shape),
            "reps": a.reps, "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
            "model": Path(a.model).name, "proxy": proxy.name, "command": " ".join(["benchmarks/run_benchmark.py"] + sys.argv[1:])}
    meta["decide_share_at_0"] = statistics.median(decide_share) if decide_share else None
    matched = compare_at_targets(rows)
    (out / "results.json").write_text(json.dumps({"meta": meta, "fidelity": rows, "timing": timing,
                                                  "matched": matched}, indent=1, default=str))
    table = render_table(meta, rows, timing, matched)
    table += "\n### at the same reduction, PSNR and SSIM\n\n" + render_same_reduction(rows)
    (out / "table.md").write_text(table)
    plot(rows, out / "fidelity_vs_speedup.png")
    print(table)
    print(f"wrote {out}/results.json, table.md, fidelity_vs_speedup.png")


def _holds_cache(group: str) -> bool:
    """Groups whose cache the pack's run summary measures (TeaCache and, issue 13, the peers)."""
    from benchmarks.peers import GROUPS
    return group.startswith("TeaCache") or group in GROUPS


def _mean(v):
    finite = [x for x in v if math.isfinite(x)]
    return statistics.mean(finite) if len(finite) == len(v) else math.inf


def plot(rows, path):
    """PSNR against block-execution reduction, one panel per sampler (PIL, no matplotlib)."""
    from PIL import Image, ImageDraw
    colours = {"fewer steps": (120, 120, 120), "TeaCache uncalibrated": (46, 120, 200),
               "TeaCache wan2.1_t2v_1.3B": (120, 60, 180), "TeaCache hunyuan_video": (120, 60, 180),
               "TeaCache calibrated": (20, 160, 60),
               "TeaCache uncalibrated+extrapolate": (0, 190, 220),
               "TeaCache calibrated+extrapolate": (0, 110, 40),
               "TeaCache generic": (230, 90, 170), "TeaCache generic+extrapolate": (150, 0, 110),
               "TeaCache generic-vec": (240, 170, 60),
               "TeaCache generic-vec+extrapolate": (160, 100, 0),
               "EasyCache": (220, 120, 20), "LazyCache": (200, 40, 40)}
    from benchmarks.peers import COLOURS      # issue 13: the peer methods
    colours.update(COLOURS)
    samplers = list(dict.fromkeys(r["sampler"] for r in rows))
    pw, ph, m = 520, 380, 50
    cols = max(1, pw * len(samplers) // 260)         # legend: as many rows as the groups need
    img = Image.new("RGB", (pw * len(samplers), ph + 30 + 22 * math.ceil(len(colours) / cols)),
                    "white")
    d = ImageDraw.Draw(img)
    pts = [r for r in rows if r["group"] != "none" and math.isfinite(r["psnr"])]
    ymin = min([r["psnr"] for r in pts] + [20]) - 2
    ymax = max([r["psnr"] for r in pts] + [40]) + 2
    xmax = max([r["reduction"] for r in pts] + [4.5]) + 0.3
    for k, sampler in enumerate(samplers):
        x0 = k * pw

        def xy(x, y):
            return (x0 + m + (pw - 2 * m) * (x - 1) / (xmax - 1),
                    ph - m - (ph - 2 * m) * (y - ymin) / (ymax - ymin))
        d.rectangle([x0 + m, m, x0 + pw - m, ph - m], outline="black")
        d.text((x0 + m, 10), f"{sampler}: PSNR (dB) vs block-execution reduction", fill="black")
        for xv in range(1, int(xmax) + 1):
            px, _ = xy(xv, ymin)
            d.text((px - 6, ph - m + 4), f"{xv}x", fill="black")
        for yv in range(int(math.ceil(ymin / 5) * 5), int(ymax) + 1, 5):
            _, py = xy(1, yv)
            d.text((x0 + 8, py - 6), f"{yv}", fill="black")
        for group, col in colours.items():
            g = sorted((r for r in pts if r["sampler"] == sampler and r["group"] == group),
                       key=lambda r: r["reduction"])
            p = [xy(r["reduction"], r["psnr"]) for r in g]
            if len(p) > 1:
                d.line(p, fill=col, width=2)
            for q in p:
                d.ellipse([q[0] - 3, q[1] - 3, q[0] + 3, q[1] + 3], fill=col)
    for i, (group, col) in enumerate(colours.items()):
        x, y = 10 + (i % cols) * 260, ph + 15 + (i // cols) * 22
        d.rectangle([x, y, x + 14, y + 10], fill=col)
        d.text((x + 20, y - 1), group, fill="black")
    img.save(path)


if __name__ == "__main__":
    main()
