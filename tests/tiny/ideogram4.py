"""Tiny Ideogram 4 for the shared harness.

ComfyUI's detection fixes Ideogram 4's width (18 heads of 256, 12288-wide MLP, 53248 text
features) through the config class's unet_extra_config: the tiny model (2 heads of 32) is
loaded through the detected config class with those sizes replaced
(tiny.dit_loader.load_detected). Latents are Flux.2's 128 channels (2x2 patches of 32).
"""
from __future__ import annotations

import torch

from tiny import dit_loader as dl

TEXT = 64
TINY = dict(num_attention_heads=2, attention_head_dim=32, intermediate_size=128, adaln_dim=32,
            llm_features_dim=TEXT, mrope_section=[6, 5, 5], num_layers=3, in_channels=128)


def build(model_dir):
    from comfy.ldm.ideogram4.model import Ideogram4Transformer2DModel
    path = model_dir / "family_ideogram4.safetensors"
    dl.save(Ideogram4Transformer2DModel(**TINY, **dl.ops()), path)
    return dl.load_detected(path, "Ideogram4", TINY)


def inputs(tokens=6):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, tokens, TEXT, generator=g)
    neg = torch.randn(1, tokens, TEXT, generator=g) * 0.1
    return {"samples": torch.zeros(1, 128, 8, 8)}, [[pos, {}]], [[neg, {}]]
