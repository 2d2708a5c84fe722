"""Tiny PixelDiT text-to-image (and a tiny PiD, which TeaCache refuses) for the tests.

ComfyUI's detection returns no sizes for PixelDiT (the class is hard-coded for the released
1024px checkpoint: hidden 1536, 14 + 2 blocks, 16-pixel patches): the tiny model (hidden 64,
4-pixel patches) is saved under the checkpoint's "core." prefix, which detection looks for, and
loaded through the detected config class with its sizes given (tiny.dit_loader.load_detected).
PixelDiT samples in pixel space: the "latent" is a 3-channel image.
"""
from __future__ import annotations

import torch

from tiny import dit_loader as dl

TEXT = 48
TINY = dict(in_channels=3, num_groups=2, hidden_size=64, pixel_hidden_size=8,
            pixel_attn_hidden_size=32, pixel_num_groups=2, patch_depth=3, pixel_depth=1,
            patch_size=4, txt_embed_dim=TEXT, txt_max_length=16, pixel_mlp_chunks=1)
PID = dict(lq_latent_channels=16, lq_hidden_dim=32, lq_num_res_blocks=1, lq_interval=2,
           sr_scale=4, latent_spatial_down_factor=8)


def build(model_dir):
    from comfy.ldm.pixeldit.model import PixDiT_T2I
    path = model_dir / "family_pixeldit.safetensors"
    dl.save(PixDiT_T2I(**TINY, **dl.ops()), path, prefix="core.")
    return dl.load_detected(path, "PixelDiTT2I", TINY)


def build_pid(model_dir):
    from comfy.ldm.pixeldit.pid import PidNet
    path = model_dir / "refused_pid.safetensors"
    dl.save(PidNet(**PID, **TINY, **dl.ops()), path)
    return dl.load_detected(path, "PiD", {**PID, **TINY})


def inputs(tokens=6):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, tokens, TEXT, generator=g)
    neg = torch.randn(1, tokens, TEXT, generator=g) * 0.1
    return {"samples": torch.zeros(1, 3, 16, 16)}, [[pos, {}]], [[neg, {}]]
