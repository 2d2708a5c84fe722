"""PixArt-alpha and PixArt-Sigma (comfy/ldm/pixart, `PixArtMS`).

The forward consults no patches_replace hooks, so the "forward" hook style gates each block
(`blocks.<i>`, `PixArtMSBlock`): a block is called as `block(x, y, t0, y_lens, (H, W))` and
returns the image tokens x [B, tokens, hidden]; the residual is taken over x. The final layer
and unpatchify after the stack only read x (and the timestep embedding), so a skipped stack
that returns input + cached residual leaves them correct.

Indicator (modulated_input): block 0's self-attention input,
`norm1(x) * (1 + scale_msa) + shift_msa` with shift/scale the first two of the six rows of
`scale_shift_table + t0` (the block's adaLN-single modulation). No published coefficients:
`auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import ModelInfo, TensorBlockAdapter

_ARGS = ("x", "y", "t", "mask", "HW")
_SIZES = {(1152, 28): "XL-2 (0.6B)"}


class PixArtAdapter(TensorBlockAdapter):
    family = "pixart"
    display = "PixArt-alpha / PixArt-Sigma (PixArtMS)"
    model_class = "PixArtMS"
    stack = "blocks"
    arg_names = _ARGS
    calibration_keys = ("hidden", "depth", "variant")

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size", 0))
        depth = len(dm.blocks)
        micro = bool(getattr(dm, "micro_conditioning", False))
        kind, name = ("alpha", "PixArt-alpha") if micro else ("sigma", "PixArt-Sigma")
        size = _SIZES.get((hidden, depth), f"hidden {hidden}")
        desc = f"{name} {size} ({type(dm).__name__}, hidden {hidden}, {depth} blocks)"
        return ModelInfo(self.family, kind, {"hidden": hidden, "depth": depth, "variant": kind,
                                             "in_channels": int(getattr(dm, "in_channels", 0))},
                         desc)

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"PixArt has no indicator {name!r}")
        block = ctx.model.blocks[0]
        x, t = args["x"], args["t"]
        table = block.scale_shift_table[None].to(dtype=x.dtype, device=x.device)
        mod = table + t.reshape(x.shape[0], 6, -1)           # [B, 6, hidden]
        shift, scale = mod[:, 0:1], mod[:, 1:2]
        return torch.addcmul(shift, block.norm1(x), 1 + scale)


ADAPTER = PixArtAdapter()
