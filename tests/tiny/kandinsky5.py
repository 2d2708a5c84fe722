"""Tiny Kandinsky 5 models (comfy/ldm/kandinsky5, newest ComfyUI only) for the shared harness.

Both variants are ComfyUI's own `Kandinsky5` class, loaded through ComfyUI's loader so that its
detection picks the model_base class:
- video (Kandinsky5): model_dim 128, patch embedding 132 wide (16 latent + 16 image + 1 mask
  channels of ComfyUI's concat conditioning, x 2x2 patch), 3 visual blocks;
- image (Kandinsky5Image): detection only picks it for model_dim 2560 with a 64-wide patch
  embedding, so it is built at that width, kept small elsewhere (2 visual blocks, ff 128,
  time_dim 64; about 150M parameters, about 1 s per 6-step sampling on one core).
Text conditioning is ComfyUI's: Qwen2.5-VL states (3584 wide) and a pooled CLIP-L vector (768).
"""
from __future__ import annotations

import torch
from safetensors.torch import save_file

import tiny_models as tm


def _build(path, seed=0, **kw):
    """Build and save once per session (the harness reloads a family for every check), then
    load through ComfyUI's loader."""
    if not path.exists():
        import comfy.ldm.kandinsky5.model as k5
        import comfy.ops
        m = k5.Kandinsky5(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                          device="cpu", **kw)
        tm._init_(m, seed)
        save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
        del m
    return tm.load(path)


def build_video(model_dir):
    return _build(model_dir / "family_kandinsky5_video.safetensors", model_dim=128, time_dim=64,
                  ff_dim=256, visual_embed_dim=132, num_text_blocks=1, num_visual_blocks=3)


def build_image(model_dir):
    # model_dim 2560 and visual_embed_dim 64 are what detection needs for Kandinsky5Image;
    # (32, 48, 48) rope axes are what it sets for that width
    return _build(model_dir / "family_kandinsky5_image.safetensors", model_dim=2560, time_dim=64,
                  ff_dim=128, visual_embed_dim=64, axes_dims=(32, 48, 48), num_text_blocks=1,
                  num_visual_blocks=2)


def conds(seed=0, tokens=8):
    g = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(1, tokens, 3584, generator=g),
            {"pooled_output": torch.randn(1, 768, generator=g)}]]
    neg = [[torch.randn(1, tokens, 3584, generator=g) * 0.1,
            {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
    return pos, neg


def inputs_video():
    pos, neg = conds()
    return {"samples": torch.zeros(1, 16, 3, 8, 8)}, pos, neg


def inputs_image():
    pos, neg = conds()
    return {"samples": torch.zeros(1, 16, 8, 8)}, pos, neg


def counted(dm):
    """The visual blocks' forwards are gated (object patches), so the block modules are called
    on every step: count their feed-forward, which runs once per executed block."""
    return [b.feed_forward for b in dm.visual_transformer_blocks]
