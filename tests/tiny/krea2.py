"""Tiny Krea 2 for the shared harness: saved and loaded with comfy.sd.load_diffusion_model
(ComfyUI's detection derives every size it uses from the weights; heads are 128 wide, so the
tiny model is one head of 128)."""
from __future__ import annotations

import torch

import tiny_models as tm
from tiny import dit_loader as dl

TXT_LAYERS, TXT_DIM = 2, 40          # the text-fusion attention has 20 heads (class default)
TINY = dict(features=128, heads=1, kvheads=1, layers=3, patch=2, channels=16,
            txtlayers=TXT_LAYERS, txtdim=TXT_DIM)


def build(model_dir):
    from comfy.ldm.krea2.model import SingleStreamDiT
    path = model_dir / "family_krea2.safetensors"
    dl.save(SingleStreamDiT(**TINY, **dl.ops()), path)
    return tm.load(path)


def inputs(tokens=6):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(1, tokens, TXT_LAYERS * TXT_DIM, generator=g)
    neg = torch.randn(1, tokens, TXT_LAYERS * TXT_DIM, generator=g) * 0.1
    return {"samples": torch.zeros(1, 16, 1, 8, 8)}, [[pos, {}]], [[neg, {}]]
