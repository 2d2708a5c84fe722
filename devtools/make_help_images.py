"""Writes the pictures of the node help pages (web/docs/*.png) from real runs: the small trained
Wan model of the demo (models/wan_proxy.safetensors, benchmarks/proxy.py) sampled in this
process with ComfyUI's own loader and KSampler, as the Wan 2.1 example workflow sets it up
(ModelSamplingSD3 shift 8, uni_pc/simple, 30 steps, cfg 6), then TeaCache Report's picture.

    .venv/bin/python devtools/make_help_images.py

- web/docs/TeaCacheReport.png: TeaCache at rel_l1_thresh 0.08 (the workflow's), auto.
- web/docs/TeaCacheCalibrate.png: TeaCache Calibrate over 4 calibration prompts (skip 2).
"""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))
sys.path.insert(0, str(ROOT))

from comfy_env import load_pack  # noqa: E402

OUT = ROOT / "web" / "docs"
STEPS, CFG, SHIFT = 30, 6.0, 8.0
LATENT = (1, 16, 5, 16, 16)


def main():
    load_pack()
    import numpy as np
    import torch
    from PIL import Image

    import comfy.sd
    import comfy.utils
    import folder_paths
    import nodes
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3
    from benchmarks.proxy import CALIB_PROMPTS, EVAL_PROMPTS, make_context, make_uncond_context
    from comfyui_teacache.nodes.apply import TeaCacheApply
    from comfyui_teacache.nodes.calibrate import TeaCacheCalibrate
    from comfyui_teacache.nodes.report import TeaCacheReport

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    comfy.utils.PROGRESS_BAR_ENABLED = False
    torch.set_num_threads(1)
    user = Path(tempfile.mkdtemp(prefix="teacache-help-"))
    folder_paths.set_user_directory(str(user))          # calibrations go to a temporary folder
    model = comfy.sd.load_diffusion_model(str(ROOT / "models" / "wan_proxy.safetensors"))
    model = ModelSamplingSD3().patch(model, SHIFT)[0]
    latent = {"samples": torch.zeros(*LATENT)}

    def sample(m, prompt, seed):
        pos = [[make_context(prompt), {}]]
        neg = [[make_uncond_context(), {}]]
        return nodes.common_ksampler(m, seed, STEPS, CFG, "uni_pc", "simple", pos, neg,
                                     latent)[0]

    def report(m, out, name):
        img = TeaCacheReport.execute(m, out).result[0][0].numpy()
        path = OUT / name
        Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(
            path, optimize=True)
        print("wrote", path.relative_to(ROOT))

    OUT.mkdir(parents=True, exist_ok=True)
    tc = TeaCacheApply.execute(model, 0.08, 0, -1, "auto", "model_device", False, 0).result[0]
    report(tc, sample(tc, EVAL_PROMPTS[0], 42), "TeaCacheReport.png")

    cal = TeaCacheCalibrate.execute(model, "wan_proxy", 2).result[0]
    out = None
    for i, p in enumerate(CALIB_PROMPTS[:4]):
        out = sample(cal, p, 100 + i)
    report(cal, out, "TeaCacheCalibrate.png")
    shutil.rmtree(user, ignore_errors=True)


if __name__ == "__main__":
    main()
