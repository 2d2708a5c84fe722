"""Ideogram 4 (comfy/ldm/ideogram4, `Ideogram4Transformer2DModel`).

Its forward consults no patches_replace hooks: the "forward" hook style gates each layer
(`layers.<i>`, `Ideogram4TransformerBlock`), called as
`layer(h, attn_mask, freqs_cis, adaln_input, transformer_options=)` and returning the packed
sequence h [B, tokens, hidden] ([text, image] for a conditional call, image only when the call
has no text context); the residual is taken over that sequence. The final layer after the
stack reads h and the timestep conditioning only.

Indicator (modulated_input): layer 0's attention input,
`attention_norm1(h) * (1 + scale_msa)` with scale_msa the first chunk of
`adaln_modulation(adaln_input)`. No published coefficients: `auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import ModelInfo, TensorBlockAdapter

_ARGS = ("x", "attn_mask", "freqs_cis", "adaln_input", "transformer_options")


class Ideogram4Adapter(TensorBlockAdapter):
    family = "ideogram4"
    display = "Ideogram 4"
    model_class = "Ideogram4Transformer"
    stack = "layers"
    arg_names = _ARGS
    calibration_keys = ("hidden", "layers", "in_channels")

    def describe(self, dm) -> ModelInfo:
        hidden = int(dm.input_proj.weight.shape[0])
        in_ch = int(dm.input_proj.weight.shape[1])
        n = len(dm.layers)
        desc = f"Ideogram 4 ({type(dm).__name__}, hidden {hidden}, {n} layers)"
        return ModelInfo(self.family, "ideogram4",
                         {"hidden": hidden, "layers": n, "in_channels": in_ch}, desc)

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Ideogram 4 has no indicator {name!r}")
        layer = ctx.model.layers[0]
        scale_msa = layer.adaln_modulation(args["adaln_input"]).chunk(4, dim=-1)[0]
        return layer.attention_norm1(args["x"]) * (1 + scale_msa)


ADAPTER = Ideogram4Adapter()
