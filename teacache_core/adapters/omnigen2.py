"""OmniGen2 and Boogu-Image (comfy/ldm/omnigen, comfy/ldm/boogu).

Neither forward consults patches_replace hooks: the "forward" hook style gates the main
transformer layers, which are `OmniGen2TransformerBlock`s called as
`layer(hidden_states, attention_mask, rotary_emb, temb, transformer_options=)` and returning
the joint sequence [text, reference images, image] (hidden_states [B, tokens, hidden]); the
residual is taken over that joint sequence. The output head only reads the image tokens of it.

- OmniGen2 (`OmniGen2Transformer2DModel`, model_base Omnigen2): gates `layers.<i>`; the context,
  noise and reference-image refiners before them always run.
- Boogu-Image (`BooguTransformer2DModel`, model_base Boogu, an OmniGen2 derivative): its
  dual-stream stage (`double_stream_layers`, image and instruction streams apart) runs first
  and then the same single-stream layers over the concatenation. Only the single-stream layers
  (`single_stream_layers.<i>`, most of the model) are gated; the refiners and the dual-stream
  stage always run, so the indicator is read where the single-stream stage starts.

Indicator (modulated_input): the first gated layer's attention input,
`norm1(x, temb)[0]` = `RMSNorm(x) * (1 + scale_msa)` (its `LuminaRMSNormZero`). No published
coefficients: `auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import ModelInfo, TensorBlockAdapter, class_names

_ARGS = ("x", "attention_mask", "image_rotary_emb", "temb", "transformer_options")
_KW = {"hidden_states": "x"}


class _OmniGen2LayersAdapter(TensorBlockAdapter):
    calibration_keys = ("hidden", "layers")
    #: the attribute holding the gated layers
    layers_attr = "layers"
    model_name = ""

    def _layers(self, dm):
        return getattr(dm, self.layers_attr)

    def unsupported_reason(self, dm) -> str | None:
        if len(self._layers(dm)) == 0:
            return "it has no main transformer layers to cache."
        if not getattr(self._layers(dm)[0], "modulation", False):
            return "its first main layer has no timestep modulation to read the indicator from."
        return None

    def forward_args(self, key, a, kw) -> dict:
        out = dict(zip(_ARGS, a))
        for k, v in kw.items():
            out[_KW.get(k, k)] = v
        return out

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size", 0))
        n = len(self._layers(dm))
        desc = f"{self.model_name} ({type(dm).__name__}, hidden {hidden}, {self._blocks_text(dm)})"
        return ModelInfo(self.family, self.family, {"hidden": hidden, "layers": n}, desc)

    def _blocks_text(self, dm) -> str:
        return f"{len(self._layers(dm))} layers"

    def block_keys(self, dm) -> list:
        return [f"{self.layers_attr}.{i}" for i in range(len(self._layers(dm)))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"{self.model_name} has no indicator {name!r}")
        layer = self._layers(ctx.model)[0]
        return layer.norm1(args["x"], args["temb"])[0]


class OmniGen2Adapter(_OmniGen2LayersAdapter):
    family = "omnigen2"
    display = "OmniGen2"
    model_name = "OmniGen2"

    def matches(self, dm) -> bool:
        return "OmniGen2Transformer2DModel" in class_names(dm) and hasattr(dm, "layers")


class BooguAdapter(_OmniGen2LayersAdapter):
    family = "boogu"
    display = "Boogu-Image (OmniGen2 derivative)"
    model_name = "Boogu-Image"
    layers_attr = "single_stream_layers"

    def matches(self, dm) -> bool:
        return "BooguTransformer2DModel" in class_names(dm) and hasattr(dm, "single_stream_layers")

    def _blocks_text(self, dm) -> str:
        return (f"{len(getattr(dm, 'double_stream_layers', ()))} dual-stream + "
                f"{len(dm.single_stream_layers)} single-stream layers, the single-stream ones "
                "cached")


ADAPTER = OmniGen2Adapter()
BOOGU_ADAPTER = BooguAdapter()
#: every adapter this module defines (adapters/__init__.py reads ADAPTERS when present)
ADAPTERS = [ADAPTER, BOOGU_ADAPTER]
