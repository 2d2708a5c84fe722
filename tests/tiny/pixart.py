"""Tiny PixArt-Sigma for the shared harness.

ComfyUI's detection fixes PixArt's width (hidden 1152, 16 heads): a 1152-wide model samples a
48x48 latent far too slowly for a test, so the tiny one (hidden 64) is loaded through the
detected config class with its width replaced (tiny.dit_loader.load_detected). PixArt's
position embedding needs latents of at least 48 per side (its base size rounds (H+W)/2 to 64s).
"""
from __future__ import annotations

import torch

from tiny import dit_loader as dl

TINY = dict(hidden_size=64, num_heads=2, depth=3, caption_channels=64, model_max_length=16,
            micro_condition=False, pred_sigma=True)


def build(model_dir):
    from comfy.ldm.pixart.pixartms import PixArtMS
    path = model_dir / "family_pixart_sigma.safetensors"
    m = PixArtMS(input_size=48, patch_size=2, in_channels=4, learn_sigma=True,
                 **TINY, **dl.ops())
    dl.save(m, path)
    return dl.load_detected(path, "PixArtSigma", {k: v for k, v in TINY.items()
                                                   if k != "pred_sigma"})


def inputs():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, 6, 64, generator=g)
    neg = torch.randn(1, 6, 64, generator=g) * 0.1
    return {"samples": torch.zeros(1, 4, 48, 48)}, [[pos, {}]], [[neg, {}]]
