"""Experiment for issue 21 (benchmarks only, not offered by the nodes): an indicator for the
generic path that sees the timestep, computed from nothing model-specific.

The generic path decides on the relative L1 change of the first block's input ("block_input").
The input is the patch-embedded noisy latent: while the noise dominates it barely changes
between steps (about 0.6% a step at the start of a 24-step schedule on the proxies) and at the
end it changes a lot (20-35%), a 50x range, where the model's output changes over a 3-5x range.
So the accumulated distance spends the computed calls at the end and skips the start. The
family adapters' "modulated_input" (norm(x) * (1 + scale(vec)) + shift(vec)) also moves with the
timestep through the modulation. Most ComfyUI DiTs hand every block the conditioning vector
they modulate with, under the name ``vec`` (Flux, HunyuanVideo, Wan's e0, Chroma, ...).

``block_input_and_vec``: the first block's input and its ``vec``, each scaled to unit L1 per
batch row, side by side; the engine's relative L1 of that is about the mean of the two
relative changes. Where the block gets no ``vec`` it is the block input alone (direction only).
It makes one new tensor of the block input's size (the generic path's own indicator is a copy of
that size too) and no host read.
"""
from __future__ import annotations

import torch

from comfyui_teacache.teacache_core.patching import apply_teacache


def _unit_rows(t: torch.Tensor, dtype) -> torch.Tensor:
    f = t.detach().reshape(t.shape[0], -1).to(dtype)
    return f / f.abs().sum(1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)


def block_input_and_vec(ctx, key, args) -> torch.Tensor:
    x = ctx.run.owner.adapter.block_input(key, args)
    parts = [_unit_rows(x, x.dtype)]
    v = args.get("vec") if isinstance(args, dict) else None
    if isinstance(v, torch.Tensor) and v.ndim >= 2 and v.shape[0] == x.shape[0]:
        # one vec part for the whole batch: vec carries the prompt (pooled text), so per row
        # cond and uncond would decide apart, and a CFG mix of outputs from different steps
        # is far worse than either (x, the latent, is the same in every row of a CFG batch)
        parts.append(_unit_rows(v, x.dtype).mean(0, keepdim=True).expand(x.shape[0], -1))
    return torch.cat(parts, 1)


def family_indicator(model, name: str = "modulated_input"):
    """The indicator `name` of the family adapter that claims `model` (its blocks get the same
    arguments under the generic path): to tell the generic path's residuals from its indicator."""
    from comfyui_teacache.teacache_core.adapters import find_adapter
    adapter = find_adapter(model.get_model_object("diffusion_model"))
    return lambda ctx, key, args: adapter.indicator(name, ctx, args)


def install(model, config, indicator=block_input_and_vec):
    """The generic path (config.model_type must be 'generic') deciding on `indicator`."""
    if config.model_type != "generic":
        raise ValueError("the indicator experiment is for model_type 'generic'")
    m, reg = apply_teacache(model, config)
    reg.customize_run = lambda run: setattr(run, "indicator", indicator)
    return m
