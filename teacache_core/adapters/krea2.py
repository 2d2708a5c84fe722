"""Krea 2 (comfy/ldm/krea2, `SingleStreamDiT`).

Its forward consults no patches_replace hooks: the "forward" hook style gates each
single-stream block (`blocks.<i>`, `SingleStreamBlock`), called as
`block(combined, tvec, freqs, None, timestep_zero_index=, transformer_options=)` and returning
the joint sequence [text, image, reference images] [B, tokens, features]; the residual is taken
over that joint sequence. The text-fusion transformer before the blocks always runs; the last
layer reads the image tokens of the sequence only.

Indicator (modulated_input): block 0's attention input,
`(1 + prescale) * prenorm(x) + preshift` with prescale/preshift from `block.mod(tvec)`. With
reference images in "index_timestep_zero" mode (`timestep_zero_index` set) the block modulates
the reference tokens with the timestep-zero rows of tvec; the indicator does the same.
No published coefficients: `auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import ModelInfo, TensorBlockAdapter, class_names

_ARGS = ("x", "vec", "freqs", "mask", "timestep_zero_index", "transformer_options")


class Krea2Adapter(TensorBlockAdapter):
    family = "krea2"
    display = "Krea 2 (SingleStreamDiT)"
    model_class = "SingleStreamDiT"
    stack = "blocks"
    arg_names = _ARGS
    calibration_keys = ("hidden", "layers", "in_channels")

    def matches(self, dm) -> bool:
        return ("SingleStreamDiT" in class_names(dm) and hasattr(dm, "blocks")
                and hasattr(dm, "txtfusion"))

    def describe(self, dm) -> ModelInfo:
        hidden = int(dm.first.weight.shape[0])
        n = len(dm.blocks)
        in_ch = int(getattr(dm, "channels", 0))
        desc = f"Krea 2 ({type(dm).__name__}, hidden {hidden}, {n} blocks)"
        dims = {"hidden": hidden, "layers": n, "in_channels": in_ch}
        return ModelInfo(self.family, "krea2", dims, desc)

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Krea 2 has no indicator {name!r}")
        block = ctx.model.blocks[0]
        x = args["x"]
        prescale, preshift = block.mod(args["vec"])[:2]          # [B(+B), 1, features]
        pre = block.prenorm(x)
        tzi = args.get("timestep_zero_index")
        if tzi is None:
            return torch.addcmul(preshift, pre, 1 + prescale)
        bs = x.shape[0]
        pre[:, :tzi].mul_(1 + prescale[:bs]).add_(preshift[:bs])
        pre[:, tzi:].mul_(1 + prescale[bs:]).add_(preshift[bs:])
        return pre


ADAPTER = Krea2Adapter()
