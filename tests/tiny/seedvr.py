"""Tiny SeedVR2 (NaDiT), only to check that TeaCache refuses it.

ComfyUI's detection recognises SeedVR2 3B by its 32nd block (`blocks.31.mlp.all.*`) and then
builds the full 3B width (2560): the tiny model has 32 blocks 64 wide and is loaded through the
detected config class with its width replaced (tiny.dit_loader.load_detected). It is never
sampled.
"""
from __future__ import annotations

from tiny import dit_loader as dl

TINY = dict(vid_dim=64, heads=1, head_dim=64, rope_dim=32, expand_ratio=1, num_layers=32,
            mlp_type="swiglu", norm_eps=1e-5, vid_out_norm=True)


def build(model_dir):
    from comfy.ldm.seedvr.model import NaDiT
    path = model_dir / "refused_seedvr2.safetensors"
    dl.save(NaDiT(**TINY, **dl.ops()), path)
    return dl.load_detected(path, "SeedVR2", TINY)
