"""A tiny real Qwen-Image (comfy/ldm/qwen_image QwenImageTransformer2DModel), saved and loaded
through ComfyUI's loader (its detection).

Detection fixes everything but the block count and input channels (24 heads of 128, text width
3584), so the smallest Qwen-Image its loader takes as it is is one 3072-wide block (~0.4B
parameters; test_qwen_image.py): few steps and a 2 x 2-token image keep it bearable. The shared
harness uses a 128-wide one loaded through the detected config class (see `build`).
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


def conds(tokens=2, seed=0, width=3584):
    """Qwen2.5-VL text states (3584 wide at full size)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(1, tokens, width, generator=g)
    neg = torch.randn(1, tokens, width, generator=g) * 0.1
    return [[pos, {}]], [[neg, {}]]


def counted(dm):
    return list(dm.transformer_blocks)


# ---- the shared harness (tests/families.py) ------------------------------------------------
# Qwen-Image's layout, 128 wide (one head of 128) with one block like test_qwen_image.py's
# (first gate == last gate) and 64-wide text states. Detection fixes 24 heads of 128 and a
# 3584-wide text input (test_qwen_image.py's ~0.4B model, ~2 s a step on one core), so this one
# is loaded through ComfyUI's detection (which must pick the QwenImage config class) with those
# sizes set.
SMALL = dict(num_attention_heads=1, joint_attention_dim=64)


def build(model_dir):
    from tiny import dit_loader
    import comfy.ops
    m = qwen_cls()(num_layers=1, operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                   device="cpu", **SMALL)
    path = dit_loader.save(m, model_dir / "family_qwen_image.safetensors", seed=1)
    return dit_loader.load_detected(path, "QwenImage", SMALL)


def inputs():
    pos, neg = conds(width=64)
    return {"samples": torch.zeros(LATENT_SHAPE)}, pos, neg
