"""TeaCache's extra memory at real sizes, on the CPU, with the allocator's own accounting.

ComfyUI's WanModel at the real width and token count of Wan 2.1 1.3B at 480p and Wan 2.1 14B
at 720p (81 frames), in bfloat16, with 2 blocks whose attention and feed-forward are a
stand-in (benchmarks/fullsize.py: a 2-core CPU cannot run real attention over 75,600 tokens;
what TeaCache adds depends only on the hidden state's size). Sampled with ComfyUI's KSampler,
CFG on (cond and uncond batched in one call), 5 steps with at most one skip in a row, so that
steps 0, 2, 4 are computed and 1, 3 skipped (extrapolation has its two residuals at step 4).
Every setting is profiled with torch.profiler's memory profiling (devtools/memprofile.py):
the peak of the allocator's running total above its start, against the same run without
TeaCache; TeaCache's own count of what it held; and the formula (teacache_core/memory.py).

    .venv/bin/python benchmarks/memory_benchmark.py [--sizes wan2.1_1.3B:480p,wan2.1_14B:720p]

Writes out/memory/results.json and table.md. cache_device=cpu is not run here: on a CPU the
model's device and CPU memory are the same memory; benchmarks/gpu_benchmark.py measures it.
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402

SETTINGS = [  # name, model_type, skip_estimate
    ("auto (timestep-embedding indicator), reuse", "auto", "reuse"),
    ("auto, extrapolate", "auto", "extrapolate"),
    ("uncalibrated (modulated-input indicator), reuse", "uncalibrated", "reuse"),
    ("uncalibrated, extrapolate", "uncalibrated", "extrapolate"),
]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="wan2.1_1.3B:480p,wan2.1_14B:720p",
                    help="comma-separated size:resolution (fullsize.WAN_SIZES, RESOLUTIONS)")
    ap.add_argument("--frames", type=int, default=None, help="video frames (default 81)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "out" / "memory"))
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (tests use it)")
    return ap.parse_args()


def main():
    a = parse()
    load_pack()
    import torch
    import comfy.utils
    import nodes
    import memprofile
    from benchmarks import fullsize
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.teacache_core import memory
    from comfyui_teacache.teacache_core.patching import registration_of
    comfy.utils.PROGRESS_BAR_ENABLED = False
    sizes = [s.split(":") for s in a.sizes.split(",")]
    if a.quick:
        sizes, a.frames = [("wan2.1_1.3B", "480p")], 1
    rows = []
    for size, res in sizes:
        latent = fullsize.wan_latent(res, a.frames)
        if a.quick:
            latent = latent[..., :16, :32]
        tokens = fullsize.wan_tokens(latent)
        t0 = time.perf_counter()
        model = fullsize.build_wan(size, blocks=2, ffn_dim=256, cheap_blocks=True)
        width = model.get_model_object("diffusion_model").dim
        pos, neg = fullsize.wan_conds()

        def run(m):
            return nodes.common_ksampler(m, 1, a.steps, 5.0, "euler", "simple", pos, neg,
                                         {"samples": latent})[0]["samples"]
        run(model)                                       # warm-up (lazy inits)
        gc.collect()
        base, _, _ = memprofile.cpu_peak(lambda: run(model))
        print(f"{size} {res}: {tokens} tokens x {width}, no TeaCache peak "
              f"{base / 2**20:.0f} MiB ({time.perf_counter() - t0:.0f} s)", flush=True)
        for name, mt, est in SETTINGS:
            tc = TeaCacheApply.execute(model, 1e6, 0, -1, mt, "model_device", False, 1,
                                       est).result[0]
            gc.collect()
            peak, _, _ = memprofile.cpu_peak(lambda: run(tc))
            s = registration_of(tc).last_summary
            computed = [r["step"] for r in s["branches"]["cond"] if r["computed"]]
            hidden = s["indicator"] == "modulated_input"
            f = memory.estimate(tokens, width, 2, conds=2, extrapolate=est == "extrapolate",
                                indicator_is_hidden=hidden, indicator_bytes=6 * width * 4)
            rows.append({"model": size, "resolution": res, "latent": list(latent.shape),
                         "tokens": tokens, "width": width, "setting": name,
                         "indicator": s["indicator"], "computed_steps": computed,
                         "extra_peak": peak - base, "held": s["peak_cache_bytes"],
                         "formula_held": f.device_held, "formula_peak": f.device_peak,
                         "hidden_state_bf16": tokens * width * 2})
            r = rows[-1]
            print(f"  {name}: extra peak {r['extra_peak'] / 2**20:.0f} MiB (formula "
                  f"<= {r['formula_peak'] / 2**20:.0f}), held {r['held'] / 2**20:.0f} MiB",
                  flush=True)
            del tc
        del model
        gc.collect()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch "
            f"{torch.__version__}", "steps": a.steps,
            "command": " ".join(["benchmarks/memory_benchmark.py"] + sys.argv[1:])}
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = render(meta, rows)
    (out / "table.md").write_text(table)
    print(table)


def render(meta, rows) -> str:
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    lines = [f"{meta['machine']}; `{meta['command']}`", "",
             "| model | latent | tokens x width | one cond's hidden state (bf16) | setting | "
             "computed steps | held by TeaCache | formula: held | extra peak vs no node | "
             "formula: peak |", "|---|---|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} {r['resolution']} | {'x'.join(map(str, r['latent'][2:]))} "
                     f"| {r['tokens']:,} x {r['width']} | {mib(r['hidden_state_bf16'])} | "
                     f"{r['setting']} | {r['computed_steps']} | {mib(r['held'])} | "
                     f"{mib(r['formula_held'])} | {mib(r['extra_peak'])} | "
                     f"{mib(r['formula_peak'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
