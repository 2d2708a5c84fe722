"""Flux (comfy/ldm/flux) and Chroma (comfy/ldm/chroma, chroma_radiance).

Both run double-stream blocks (img and txt apart) and then single-stream blocks over the
concatenation (txt first, in ComfyUI 0.3.75 and 0.33 alike).

Blocks: patches_replace["dit"][("double_block", i)] with args {"img", "txt", "vec", "pe",
"attn_mask", "transformer_options"}, returning {"img", "txt"}; then
patches_replace["dit"][("single_block", i)] with args {"img" (= txt + img tokens), "vec", "pe",
"attn_mask", "transformer_options"}, returning {"img"}.

The residual is taken over the image tokens only (as the official TeaCache4FLUX): from the
image stream entering the first double block to the image part of the sequence leaving the last
single block. The single-block args carry no text length in ComfyUI 0.3.75, so the first block
notes it in the call's own transformer_options (a per-call dict that the model itself writes
block indices into); ComfyUI 0.33 also publishes it there as "img_slice".

Indicator ("modulated_input", as the official TeaCache4FLUX): the image stream of the first
double block modulated with that block's first image modulation,
``img_norm1(img) * (1 + img_mod1.scale) + img_mod1.shift``. FLUX.1 (and LongCat, Ovis) compute
img_mod1 in the block (``block.img_mod(vec)``); Flux.2 (global modulation) and Chroma pass it in
``vec`` as ((img_mod1, img_mod2), (txt_mod1, txt_mod2)).

Presets: the published ``flux`` coefficients were fitted on FLUX.1 dev (hidden 3072, 19 double +
38 single blocks); ``flux_kontext`` on FLUX.1 Kontext dev, which has the same architecture and
state dict as FLUX.1 dev, so ``auto`` cannot tell them apart: auto picks ``flux`` and Kontext
users pick ``flux_kontext`` by hand. Flux.2, LongCat-Image, Ovis, Fill/Depth/Canny variants and
Chroma have no published coefficients (``uncalibrated``).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names

# key in the call's transformer_options: number of text tokens before the image tokens in the
# single-stream sequence (written at the first double block, read at the last single block)
TXT_TOKENS_KEY = "teacache_txt_tokens"

# FLUX.1 dev / schnell / Kontext: the architecture the published coefficients were fitted on
_FLUX1_FULL = {"hidden": 3072, "depth": 19, "depth_single": 38}
_FLUX1_PRESETS = ("flux", "flux_kontext")
# FLUX.1 variants by input channels (img_in width / patch area)
_FLUX1_INPUT_KINDS = {16: None, 96: "fill", 32: "control"}


class _DualStreamAdapter(FamilyAdapter):
    """Block I/O and indicator shared by Flux and Chroma (both use comfy.ldm.flux.layers)."""

    hook = "replace"
    #: a user calibration fits one architecture and size (ModelInfo.dims keys)
    calibration_keys = ("arch", "hidden", "in_channels", "depth", "depth_single")

    # ---- blocks --------------------------------------------------------------------------
    def block_keys(self, dm) -> list:
        skip_double = set(getattr(dm, "skip_mmdit", None) or ())   # Chroma: blocks left out
        skip_single = set(getattr(dm, "skip_dit", None) or ())
        return ([("double_block", i) for i in range(len(dm.double_blocks)) if i not in skip_double]
                + [("single_block", i) for i in range(len(dm.single_blocks))
                   if i not in skip_single])

    def unsupported_reason(self, dm) -> str | None:
        keys = self.block_keys(dm)
        if not keys or keys[0][0] != "double_block":
            return ("it runs no double-stream block, where TeaCache reads its indicator and "
                    "the image stream.")
        return None

    @staticmethod
    def _txt_tokens(args) -> int:
        to = args.get("transformer_options") or {}
        n = to.get(TXT_TOKENS_KEY)
        if n is None and to.get("img_slice"):                   # ComfyUI 0.33
            n = to["img_slice"][0]
        if n is None:
            raise RuntimeError("TeaCache: the text length of the single-stream sequence is "
                               "unknown (transformer_options were replaced between blocks).")
        return int(n)

    def block_input(self, key, args) -> torch.Tensor:
        if key[0] == "double_block":
            to = args.get("transformer_options")
            if isinstance(to, dict):
                to[TXT_TOKENS_KEY] = args["txt"].shape[1]
            return args["img"]
        return args["img"][:, self._txt_tokens(args):]

    def passthrough(self, key, args):
        if key[0] == "double_block":
            return {"img": args["img"], "txt": args["txt"]}
        return {"img": args["img"]}

    def block_output(self, key, args, out) -> torch.Tensor:
        if key[0] == "double_block":
            return out["img"]
        return out["img"][:, self._txt_tokens(args):]

    def with_output(self, key, args, out, t):
        if key[0] == "double_block":
            return {**out, "img": t}
        n = self._txt_tokens(args)
        return {**out, "img": torch.cat((out["img"][:, :n], t.to(out["img"].dtype)), dim=1)}

    # ---- indicator ---------------------------------------------------------------------
    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"{self.display} has no indicator {name!r}")
        dm = ctx.model
        block = dm.double_blocks[self.block_keys(dm)[0][1]]
        img, vec = args["img"], args["vec"]
        if getattr(block, "modulation", False):       # FLUX.1, LongCat, Ovis: per-block modulation
            mod1 = block.img_mod(vec)[0]
        else:                                         # Flux.2 global modulation, Chroma
            mod1 = vec[0][0]
        shift, scale = mod1.shift, mod1.scale
        if shift.ndim == 3 and shift.shape[1] not in (1, img.shape[1]):
            # Flux.2 edit with "index_timestep_zero" (0.33): [B, 2, C], one row per timestep
            # (noisy tokens, reference tokens); the noisy image's own timestep is row 0
            shift, scale = shift[:, :1], scale[:, :1]
        return torch.addcmul(shift, block.img_norm1(img), 1 + scale)


def _blocks_text(dm) -> str:
    return f"{len(dm.double_blocks)} double + {len(dm.single_blocks)} single blocks"


class FluxAdapter(_DualStreamAdapter):
    family = "flux"
    display = "Flux (FLUX.1 dev/schnell/Kontext/Fill, Flux.2, LongCat-Image, Ovis)"

    def matches(self, dm) -> bool:
        return ("Flux" in class_names(dm) and hasattr(dm, "double_blocks")
                and hasattr(dm, "single_blocks"))

    def describe(self, dm) -> ModelInfo:
        p = dm.params
        hidden = int(dm.hidden_size)
        in_ch = int(p.in_channels)
        if getattr(p, "global_modulation", False):
            arch = kind = "flux2"
            name = "Flux.2"
        elif getattr(p, "yak_mlp", False):
            arch = kind = "ovis"
            name = "Ovis-Image"
        elif getattr(dm, "vector_in", None) is None:
            arch = kind = "longcat"
            name = "LongCat-Image"
        else:
            arch = "flux1"
            variant = _FLUX1_INPUT_KINDS.get(in_ch, "other")
            if variant is None:
                variant = "dev" if p.guidance_embed else "schnell"
            kind = variant
            name = {"dev": "FLUX.1 dev (or Kontext: same weights layout)",
                    "schnell": "FLUX.1 schnell", "fill": "FLUX.1 Fill",
                    "control": "FLUX.1 Depth/Canny"}.get(variant, f"FLUX.1 ({in_ch}-ch input)")
        dims = {"arch": arch, "hidden": hidden, "depth": len(dm.double_blocks),
                "depth_single": len(dm.single_blocks), "in_channels": in_ch,
                "heads": int(dm.num_heads)}
        size = "12B " if kind in ("dev", "schnell", "fill", "control") and \
            all(dims[k] == v for k, v in _FLUX1_FULL.items()) else ""
        desc = (f"{name} {size}({type(dm).__name__}, hidden {hidden}, {_blocks_text(dm)})")
        return ModelInfo(self.family, kind, dims, desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        # fitted on FLUX.1 dev; schnell shares its architecture. Kontext cannot be told apart
        # from dev by its weights: auto gives "flux", Kontext users choose "flux_kontext".
        if info.kind in ("dev", "schnell") and \
                all(info.dims.get(k) == v for k, v in _FLUX1_FULL.items()):
            return PRESETS["flux"]
        return UNCALIBRATED

    def preset_mismatch(self, info: ModelInfo, preset):
        problem = super().preset_mismatch(info, preset)
        if problem is None and preset.name in _FLUX1_PRESETS and info.dims["arch"] != "flux1":
            return (f"model_type {preset.name!r} was fitted on FLUX.1, but the loaded model is "
                    f"{info.description}, another architecture. Choose 'auto' or "
                    f"'uncalibrated'.")
        return problem


class ChromaAdapter(_DualStreamAdapter):
    family = "chroma"
    display = "Chroma (Chroma, Chroma Radiance)"

    def matches(self, dm) -> bool:
        return ("Chroma" in class_names(dm) and hasattr(dm, "double_blocks")
                and hasattr(dm, "single_blocks"))

    def describe(self, dm) -> ModelInfo:
        radiance = "ChromaRadiance" in class_names(dm)
        kind = "radiance" if radiance else "chroma"
        hidden = int(dm.hidden_size)
        dims = {"arch": kind, "hidden": hidden, "depth": len(dm.double_blocks),
                "depth_single": len(dm.single_blocks), "in_channels": int(dm.in_channels),
                "heads": int(dm.num_heads)}
        name = "Chroma Radiance (pixel space)" if radiance else "Chroma"
        desc = f"{name} ({type(dm).__name__}, hidden {hidden}, {_blocks_text(dm)})"
        return ModelInfo(self.family, kind, dims, desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        return UNCALIBRATED                   # no published coefficients for Chroma


ADAPTER = FluxAdapter()
CHROMA_ADAPTER = ChromaAdapter()
#: every adapter this module defines, in the order they should be tried
ADAPTERS = (ADAPTER, CHROMA_ADAPTER)
