"""TeaCache on a GPU at full size: overhead, speed-up against the ideal, and extra VRAM.

Builds full-size Wan 2.1 1.3B and 14B and FLUX.1 dev from ComfyUI's own classes with random
bfloat16 weights (speed and memory do not depend on the weights; benchmarks/fullsize.py) and
samples a few steps with ComfyUI's KSampler (CFG on: cond and uncond batched) at 480p / 720p
(Wan, 81 frames) and 1024x1024 (FLUX):
  - without TeaCache (twice: the second run is the noise of the machine),
  - TeaCache at threshold 0 (its whole per-call work, nothing skipped: the overhead),
  - TeaCache at the thresholds that skip about 1/2 and 2/3 of the calls (found from the
    threshold-0 run's recorded distances), with skip_estimate reuse and extrapolate and
    cache_device model_device and cpu.
Per setting: median wall time of --reps interleaved runs (CUDA synchronised), speed-up against
no TeaCache, the ideal speed-up (model calls / calls that ran the blocks), their ratio, and the
peak VRAM above the run without TeaCache (torch.cuda.max_memory_allocated) next to the
formula of teacache_core/memory.py. Targets: overhead <= 1%, >= 0.95 of the ideal at 2x and
3x, extra VRAM within the formula.

    .venv/bin/python benchmarks/gpu_benchmark.py                  # on a CUDA machine
    .venv/bin/python benchmarks/gpu_benchmark.py --smoke          # CPU, reduced (tests use it)
    .venv/bin/python benchmarks/gpu_benchmark.py --models wan2.1_1.3B --resolutions 480p

Writes <out>/results.json and <out>/table.md (default out/gpu).
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402

TARGETS = (2.0, 3.0)
MODELS = ("wan2.1_1.3B", "wan2.1_14B", "flux1_dev")


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--resolutions", default="480p,720p", help="Wan resolutions")
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "out" / "gpu"))
    ap.add_argument("--smoke", action="store_true",
                    help="CPU, 2 blocks, tiny latents: checks the script, measures nothing")
    return ap.parse_args()


def simulate_computed(records, thresh):
    """Computed calls if the threshold rule ran over these (threshold-0) records."""
    acc, n = 0.0, 0
    for r in records:
        forced = r["reason"] not in ("threshold reached", "below threshold")
        if forced or r["rescaled"] is None or acc + r["rescaled"] >= thresh:
            acc, n = 0.0, n + 1
        else:
            acc += r["rescaled"]
    return n


def threshold_for(records, target):
    """The smallest threshold whose simulated computed calls reach total / target."""
    want = max(1, round(len(records) / target))
    lo, hi = 0.0, 1.0
    while simulate_computed(records, hi) > want and hi < 1e6:
        hi *= 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if simulate_computed(records, mid) > want:
            lo = mid
        else:
            hi = mid
    return hi


def main():
    a = parse()
    load_pack()
    import torch
    import comfy.model_management as mm
    import comfy.utils
    import nodes
    from benchmarks import fullsize
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core import memory
    from comfyui_teacache.teacache_core.patching import registration_of
    import memprofile
    comfy.utils.PROGRESS_BAR_ENABLED = False
    cuda = torch.cuda.is_available() and not a.smoke
    if not cuda and not a.smoke:
        sys.exit("no CUDA device: run with --smoke for the reduced CPU check")
    device = mm.get_torch_device() if cuda else torch.device("cpu")
    cases = []
    for name in a.models.split(","):
        if name.startswith("wan"):
            for res in a.resolutions.split(","):
                cases.append((name, res))
        elif name == "flux1_dev":
            cases.append((name, "1024x1024"))
    if a.smoke:
        a.steps, a.reps = 5, 1
        cases = [c for c in cases if c[0] == "wan2.1_1.3B"][:1] or [("wan2.1_1.3B", "480p")]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    rows, meta = [], {"device": torch.cuda.get_device_name() if cuda else "cpu (smoke)",
                      "torch": torch.__version__, "steps": a.steps, "reps": a.reps,
                      "command": " ".join(["benchmarks/gpu_benchmark.py"] + sys.argv[1:])}
    for name, res in cases:
        t_build = time.perf_counter()
        if name.startswith("wan"):
            model = fullsize.build_wan(name, device=device, blocks=2 if a.smoke else None,
                                       ffn_dim=256 if a.smoke else None)
            latent = fullsize.wan_latent(res, 5 if a.smoke else a.frames)
            if a.smoke:
                latent = latent[..., :8, :8]
            tokens, width = fullsize.wan_tokens(latent), model.get_model_object("diffusion_model").dim
            pos, neg = fullsize.wan_conds()
        else:
            model = fullsize.build_flux(name, device=device)
            latent = torch.zeros(1, 16, 128, 128)
            tokens, width = fullsize.flux_tokens(latent), 3072
            pos, neg = fullsize.flux_conds()

        def run(m):
            sync()
            t0 = time.perf_counter()
            out = nodes.common_ksampler(m, 1, a.steps, 5.0, "euler", "simple", pos, neg,
                                        {"samples": latent})[0]["samples"]
            sync()
            return out, time.perf_counter() - t0

        def peak_extra(m, base):
            if cuda:
                gc.collect()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                run(m)
                return torch.cuda.max_memory_allocated() - before - base
            peak, _, _ = memprofile.cpu_peak(lambda: run(m))
            return peak - base

        def tea(thr, est="reuse", dev="model_device"):
            return TeaCacheApply.execute(model, thr, 0, -1, "auto", dev, False, 0,
                                         est).result[0]

        run(model)                                         # warm-up: loads, kernels
        base = peak_extra(model, 0)
        t0m = tea(0.0)
        run(t0m)
        recs = registration_of(t0m).last_summary["branches"]["cond"]
        settings = {"no TeaCache": model, "no TeaCache (again)": model.clone(),
                    "TeaCache 0 (overhead)": t0m}
        combos = [(est, dev) for est in ("reuse", "extrapolate")
                  for dev in ("model_device", "cpu")]
        for target in TARGETS[:1] if a.smoke else TARGETS:
            thr = threshold_for(recs, target)
            for est, dev in combos[::3] if a.smoke else combos:
                settings[f"~{target:g}x thr {thr:.3g} {est} {dev}"] = tea(thr, est, dev)
        times = {k: [] for k in settings}
        for rep in range(a.reps):
            for k in (list(settings) if rep % 2 == 0 else list(settings)[::-1]):
                times[k].append(run(settings[k])[1])
        ref = times["no TeaCache"]
        print(f"{name} {res}: {tokens} tokens x {width} (built in "
              f"{time.perf_counter() - t_build:.0f} s)", flush=True)
        for k, m in settings.items():
            reg = registration_of(m)
            s = reg.last_summary if reg is not None else None
            speed = statistics.median(b / t for b, t in zip(ref, times[k]))
            ideal = s["calls"] / max(s["calls_blocks_ran"], 1) if s else 1.0
            extra = peak_extra(m, base) if s else None
            f = None
            if s:
                cfg = reg.config
                f = memory.estimate(tokens, width, 2, conds=2, extrapolate=cfg.extrapolate,
                                    indicator_is_hidden=s["indicator"] == "modulated_input",
                                    cache_device=cfg.cache_device)
            rows.append({"model": name, "resolution": res, "tokens": tokens, "width": width,
                         "setting": k, "median_s": statistics.median(times[k]),
                         "speedup": speed, "ideal": ideal, "of_ideal": speed / ideal,
                         "extra_peak": extra,
                         "formula_peak": f.device_peak if f else None})
            r = rows[-1]
            print(f"  {k}: {r['median_s']:.2f} s, {speed:.3f}x of ideal {ideal:.2f}x "
                  f"({r['of_ideal']:.2f}); extra "
                  f"{'-' if extra is None else f'{extra / 2**20:.0f} MiB'}", flush=True)
        del settings, model, t0m
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta["machine"] = platform.machine()
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = render(meta, rows)
    (out / "table.md").write_text(table)
    print(table)


def render(meta, rows) -> str:
    mib = lambda b: "-" if b is None else f"{b / 2**20:,.0f} MiB"  # noqa: E731
    lines = [f"{meta['device']}, torch {meta['torch']}, {meta['steps']} steps, median of "
             f"{meta['reps']} interleaved runs; `{meta['command']}`", "",
             "| model | size | setting | median s | speed-up | ideal | of ideal | extra VRAM "
             "| formula |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['resolution']} ({r['tokens']:,} x {r['width']}) | "
                     f"{r['setting']} | {r['median_s']:.2f} | {r['speedup']:.3f}x | "
                     f"{r['ideal']:.2f}x | {r['of_ideal']:.2f} | {mib(r['extra_peak'])} | "
                     f"{mib(r['formula_peak'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
