"""Tiny OmniGen2 and Boogu-Image for the shared harness.

ComfyUI's detection builds OmniGen2 at full size whatever the checkpoint (hidden 2520, 32
layers, 21 heads) and Boogu with its class default heads (28 of 120): the tiny models (hidden
96) are loaded through the detected config class with those sizes replaced
(tiny.dit_loader.load_detected).
"""
from __future__ import annotations

import torch

from tiny import dit_loader as dl

TEXT = 64
OMNIGEN2 = dict(hidden_size=96, num_layers=3, num_refiner_layers=1, num_attention_heads=2,
                num_kv_heads=1, multiple_of=32, axes_dim_rope=[16, 16, 16],
                axes_lens=[64, 64, 64], text_feat_dim=TEXT, in_channels=16, patch_size=2,
                timestep_scale=1000.0)
BOOGU = dict(hidden_size=96, num_layers=3, num_double_stream_layers=2, num_refiner_layers=1,
             num_attention_heads=2, num_kv_heads=1, multiple_of=32, axes_dim_rope=[16, 16, 16],
             axes_lens=[64, 64, 64], instruction_feat_dim=TEXT)


def build(model_dir):
    from comfy.ldm.omnigen.omnigen2 import OmniGen2Transformer2DModel
    path = model_dir / "family_omnigen2.safetensors"
    dl.save(OmniGen2Transformer2DModel(**OMNIGEN2, **dl.ops()), path)
    return dl.load_detected(path, "Omnigen2", OMNIGEN2)


def build_boogu(model_dir):
    from comfy.ldm.boogu.model import BooguTransformer2DModel
    path = model_dir / "family_boogu.safetensors"
    dl.save(BooguTransformer2DModel(**BOOGU, **dl.ops()), path)
    return dl.load_detected(path, "Boogu", BOOGU)


def inputs(tokens=6):
    g = torch.Generator().manual_seed(0)
    # an integer mask gives the model its num_tokens
    mask = {"attention_mask": torch.ones(1, tokens, dtype=torch.long)}
    pos = torch.randn(1, tokens, TEXT, generator=g)
    neg = torch.randn(1, tokens, TEXT, generator=g) * 0.1
    return {"samples": torch.zeros(1, 16, 8, 8)}, [[pos, dict(mask)]], [[neg, dict(mask)]]
