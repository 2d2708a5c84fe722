"""Tiny Wan models for the shared harness: 2.1 T2V, 2.1 I2V, 2.2 TI2V-5B, VACE."""
from __future__ import annotations

import torch

import tiny_models as tm


def build_t2v(model_dir):
    return tm.load(tm.build_wan(model_dir / "family_wan21_t2v.safetensors", num_layers=3, seed=0))


def inputs():
    pos, neg = tm.wan_conds()
    return {"samples": torch.zeros(1, 16, 3, 8, 8)}, pos, neg


class ClipOut:
    """What CLIPVisionEncode hands Wan I2V / FLF2V / Fun Camera: penultimate hidden states of
    CLIP ViT-H (257 tokens, 1280 wide; FLF2V: two images, 514 tokens)."""

    def __init__(self, tokens=257, seed=0):
        self.penultimate_hidden_states = torch.randn(
            1, tokens, 1280, generator=torch.Generator().manual_seed(seed))


def clip_conds(tokens=257):
    """Wan text conds with a CLIP vision output on both (I2V, FLF2V, Fun Camera)."""
    pos, neg = tm.wan_conds()
    return ([[pos[0][0], {"clip_vision_output": ClipOut(tokens)}]],
            [[neg[0][0], {"clip_vision_output": ClipOut(tokens)}]])


def build_i2v(model_dir):
    """Wan 2.1 I2V in miniature: 36 input channels (16 latent + 4 mask + 16 image), CLIP image
    embedding."""
    return tm.load(tm.build_wan(model_dir / "family_wan21_i2v.safetensors", in_dim=36,
                                model_type="i2v", num_layers=2, seed=9))


def inputs_i2v():
    pos, neg = clip_conds()
    return {"samples": torch.zeros(1, 16, 3, 8, 8)}, pos, neg


def build_ti2v(model_dir):
    """Wan 2.2 TI2V-5B architecture in miniature: 48-channel latent in and out."""
    return tm.load(tm.build_wan(model_dir / "family_wan22_ti2v.safetensors", in_dim=48,
                                out_dim=48, num_layers=2, seed=5))


def inputs_ti2v():
    """First frame given (noise mask 0 there): WAN22 then runs per-frame timesteps."""
    mask = torch.ones(1, 1, 3, 8, 8)
    mask[:, :, :1] = 0.0
    pos, neg = tm.wan_conds()
    return {"samples": torch.zeros(1, 48, 3, 8, 8), "noise_mask": mask}, pos, neg


def build_vace(model_dir):
    """Wan VACE: 4 main blocks, 2 VACE blocks adding hints to blocks 0 and 2."""
    return tm.load(tm.build_wan(model_dir / "family_wan_vace.safetensors", num_layers=4,
                                vace_layers=2, seed=4))
