"""Tiny ERNIE-Image for the shared harness.

ComfyUI's detection returns no sizes for ERNIE-Image (the class defaults are the full 8B model:
hidden 4096, 36 layers): the tiny model (hidden 64) is loaded through the detected config class
with its sizes given (tiny.dit_loader.load_detected). Latents are Flux.2's 128 channels.
"""
from __future__ import annotations

import torch

from tiny import dit_loader as dl

TEXT = 48
TINY = dict(hidden_size=64, num_attention_heads=2, num_layers=3, ffn_hidden_size=128,
            in_channels=128, out_channels=128, patch_size=1, text_in_dim=TEXT,
            rope_axes_dim=(8, 12, 12))


def build(model_dir):
    from comfy.ldm.ernie.model import ErnieImageModel
    path = model_dir / "family_ernie.safetensors"
    dl.save(ErnieImageModel(**TINY, **dl.ops()), path)
    return dl.load_detected(path, "ErnieImage", TINY)


def inputs(tokens=6):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, tokens, TEXT, generator=g)
    neg = torch.randn(1, tokens, TEXT, generator=g) * 0.1
    return {"samples": torch.zeros(1, 128, 8, 8)}, [[pos, {}]], [[neg, {}]]
