"""How far should a skipped step follow the line through the last two computed residuals?

Sweeps the cap of skip_estimate="extrapolate" (teacache_core.state.MAX_EXTRAPOLATION, in units
of the last computed interval; 0 = the published "reuse") on the trained proxy, through
ComfyUI's loader and KSampler, and prints the block-execution reduction and PSNR of the final
latent against the uncached run (mean and worst over the prompts) per sampler, cap and
threshold. This is how the shipped cap (0.5) was chosen; see BENCHMARKS.md.

    .venv/bin/python benchmarks/sweep_extrapolation.py --caps 0,0.25,0.5,1,2
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "wan_proxy.safetensors"))
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--samplers", default="euler,dpmpp_2m")
    ap.add_argument("--caps", default="0,0.25,0.5,1,2", help="0 = reuse (published)")
    ap.add_argument("--thresholds", default="0.1,0.2,0.3")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    load_pack()
    import torch
    import comfy.sd
    import comfy.utils
    import nodes
    from benchmarks.metrics import psnr
    from benchmarks.proxy import EVAL_PROMPTS, make_context, make_uncond_context
    from comfyui_teacache.teacache_core import state
    from comfyui_teacache.teacache_core.config import TeaCacheConfig
    from comfyui_teacache.teacache_core.patching import apply_teacache

    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(a.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    model = comfy.sd.load_diffusion_model(a.model)
    latent = torch.zeros(1, 16, 5, 16, 16)
    prompts = EVAL_PROMPTS[:a.prompts]

    def sample(m, i, sampler):
        pos = [[make_context(prompts[i]), {}]]
        neg = [[make_uncond_context(), {}]]
        return nodes.common_ksampler(m, 100 + i, a.steps, a.cfg, sampler, "simple", pos, neg,
                                     {"samples": latent})[0]["samples"]

    shipped = state.MAX_EXTRAPOLATION
    print(f"{'sampler':<10}{'cap':>6}{'thresh':>8}{'reduction':>11}{'PSNR dB':>9}{'worst':>7}")
    try:
        for sampler in a.samplers.split(","):
            refs = [sample(model, i, sampler) for i in range(len(prompts))]
            for cap in (float(c) for c in a.caps.split(",")):
                state.MAX_EXTRAPOLATION = cap
                for t in (float(t) for t in a.thresholds.split(",")):
                    cfg = TeaCacheConfig(t, model_type="uncalibrated",
                                         skip_estimate="extrapolate" if cap > 0 else "reuse")
                    m, reg = apply_teacache(model, cfg)
                    ps, red = [], []
                    for i in range(len(prompts)):
                        ps.append(psnr(sample(m, i, sampler), refs[i]))
                        s = reg.last_summary
                        red.append(s["calls"] / max(s["calls_blocks_ran"], 1))
                    print(f"{sampler:<10}{cap:>6g}{t:>8g}{statistics.mean(red):>10.2f}x"
                          f"{statistics.mean(ps):>9.1f}{min(ps):>7.1f}", flush=True)
    finally:
        state.MAX_EXTRAPOLATION = shipped


if __name__ == "__main__":
    main()
