"""Lumina Image 2.0, NewBie, Z-Image (comfy/ldm/lumina): NextDiT and NextDiTPixelSpace.

No per-block patches_replace hooks: the "forward" hook style gates each main transformer layer
(`layers.<i>`, `JointTransformerBlock`; the noise/context refiners before them always run).
A layer is called as `layer(x, x_mask, freqs_cis, adaln_input, [timestep_zero_index=,]
transformer_options=)` and returns the joint sequence x [B, caption + image tokens, dim]; the
residual is taken over that joint sequence.

Indicator (modulated_input, what the published Lumina 2 coefficients were fitted on): layer 0's
`attention_norm1(x) * (1 + scale_msa)`, scale_msa from `adaLN_modulation(adaln_input)`, through
the model module's own `modulate` helper (which also handles the newest ComfyUI's
`timestep_zero_index`, the Z-Image Omni reference-image path).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import ModelInfo, TensorBlockAdapter, class_names, defining_module

_ARGS = ("x", "x_mask", "freqs_cis", "adaln_input", "timestep_zero_index", "transformer_options")
LUMINA2_HIDDEN = 2304
_SIZES = {("lumina2", LUMINA2_HIDDEN): "2.6B", ("newbie", LUMINA2_HIDDEN): "2.6B",
          ("z_image", 3840): "6B", ("z_image_pixel", 3840): "6B"}


class Lumina2Adapter(TensorBlockAdapter):
    family = "lumina2"
    display = "Lumina Image 2.0 / NewBie / Z-Image (NextDiT)"
    model_class = "NextDiT"
    stack = "layers"
    arg_names = _ARGS
    calibration_keys = ("hidden", "variant")          # NewBie and Lumina 2 share a size

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.layers) == 0:
            return "it has no main transformer layers to cache."
        return None

    def describe(self, dm) -> ModelInfo:
        layer0 = dm.layers[0]
        mod = getattr(layer0, "adaLN_modulation", None)
        z_image = mod is not None and len(mod) == 1          # Z-Image: Linear without SiLU
        dim = int(getattr(layer0, "dim", 0) or dm.x_embedder.weight.shape[0])
        n = len(dm.layers)
        if "NextDiTPixelSpace" in class_names(dm):
            kind, name = "z_image_pixel", "Z-Image pixel space"
        elif z_image:
            kind, name = "z_image", "Z-Image"
        elif getattr(dm, "clip_text_pooled_proj", None) is not None:
            kind, name = "newbie", "NewBie (Lumina 2 architecture)"
        else:
            kind, name = "lumina2", "Lumina Image 2.0"
        size = _SIZES.get((kind, dim), f"hidden {dim}")
        label = f"{name} {size}"
        desc = f"{label} ({type(dm).__name__}, hidden {dim}, {n} layers)"
        return ModelInfo(self.family, kind, {"hidden": dim, "layers": n, "variant": kind}, desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        if info.kind == "lumina2" and info.dims.get("hidden") == LUMINA2_HIDDEN:
            return PRESETS["lumina2"]
        return UNCALIBRATED

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Lumina 2 has no indicator {name!r}")
        layer = ctx.model.layers[0]
        scale_msa = layer.adaLN_modulation(args["adaln_input"]).chunk(4, dim=1)[0]
        normed = layer.attention_norm1(args["x"])
        modulate = getattr(defining_module(layer, "JointTransformerBlock"), "modulate", None)
        tzi = args.get("timestep_zero_index")
        if modulate is None:
            return normed * (1 + scale_msa.unsqueeze(1))
        if tzi is not None:
            return modulate(normed, scale_msa, timestep_zero_index=tzi)
        return modulate(normed, scale_msa)


ADAPTER = Lumina2Adapter()
