"""ERNIE-Image (comfy/ldm/ernie, `ErnieImageModel`).

Its forward consults no patches_replace hooks: the "forward" hook style gates each layer
(`layers.<i>`, `ErnieImageSharedAdaLNBlock`), called as `layer(x, rotary_pos_emb, temb)` and
returning the joint sequence [image, text] [B, tokens, hidden]; the residual is taken over that
joint sequence. The final norm and projection after the layers read only the image tokens.

Indicator (modulated_input): layer 0's attention input,
`adaLN_sa_ln(x) * (1 + scale_msa) + shift_msa`, shift/scale from the shared adaLN modulation
the model hands every layer (`temb` = [shift_msa, scale_msa, gate_msa, shift_mlp, ...]).
No published coefficients: `auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import ModelInfo, TensorBlockAdapter

_ARGS = ("x", "rotary_pos_emb", "temb", "attention_mask")


class ErnieImageAdapter(TensorBlockAdapter):
    family = "ernie"
    display = "ERNIE-Image (ErnieImageModel)"
    model_class = "ErnieImageModel"
    stack = "layers"
    arg_names = _ARGS
    calibration_keys = ("hidden", "layers", "in_channels")

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size", 0))
        n = len(dm.layers)
        in_ch = int(dm.x_embedder.proj.weight.shape[1])
        size = "8B " if (hidden, n) == (4096, 36) else ""
        desc = f"ERNIE-Image {size}({type(dm).__name__}, hidden {hidden}, {n} layers)"
        dims = {"hidden": hidden, "layers": n, "in_channels": in_ch}
        return ModelInfo(self.family, "ernie", dims, desc)

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"ERNIE-Image has no indicator {name!r}")
        layer = ctx.model.layers[0]
        shift_msa, scale_msa = args["temb"][0], args["temb"][1]
        return torch.addcmul(shift_msa, layer.adaLN_sa_ln(args["x"]), 1 + scale_msa)


ADAPTER = ErnieImageAdapter()
