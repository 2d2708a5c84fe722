"""A tiny real Qwen-Image (comfy/ldm/qwen_image QwenImageTransformer2DModel), saved and loaded
through ComfyUI's loader (its detection).

Detection fixes everything but the block count and input channels (24 heads of 128, text width
3584), so the smallest loadable Qwen-Image is one 3072-wide block (~0.4B parameters): few steps
and a 2 x 2-token image keep it quick.
"""
from __future__ import annotations

import inspect

import torch
from safetensors.torch import save_file

import tiny_models as tm

LATENT_SHAPE = (1, 16, 1, 4, 4)       # Wan 2.1 latent format: 2 x 2 image tokens


def qwen_cls():
    import comfy.ldm.qwen_image.model as qm
    return qm.QwenImageTransformer2DModel


def supports(name):
    """Whether this ComfyUI's QwenImageTransformer2DModel takes argument `name`."""
    return name in inspect.signature(qwen_cls().__init__).parameters


def build_qwen(path, seed=0, **kw):
    import comfy.ops
    m = qwen_cls()(num_layers=1, operations=comfy.ops.disable_weight_init,
                   dtype=torch.float32, device="cpu", **kw)
    tm._init_(m, seed)
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def conds(tokens=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(1, tokens, 3584, generator=g)
    neg = torch.randn(1, tokens, 3584, generator=g) * 0.1
    return [[pos, {}]], [[neg, {}]]


def counted(dm):
    return list(dm.transformer_blocks)


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build(model_dir):
    return tm.load(build_qwen(model_dir / "family_qwen_image.safetensors", seed=1))


def inputs():
    pos, neg = conds()
    return {"samples": torch.zeros(LATENT_SHAPE)}, pos, neg
