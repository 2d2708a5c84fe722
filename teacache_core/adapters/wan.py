"""Wan 2.1 / 2.2 (comfy/ldm/wan): WanModel and its variants.

Blocks: patches_replace["dit"][("double_block", i)], args {"img", "txt", "vec" (= e0), "pe"}.
Indicators:
- timestep_embedding: e = time_embedding(sinusoidal(t)), what the official Wan coefficients use;
- modulation_vector: e0 = time_projection(e), the official retention-mode indicator;
- modulated_input: norm1(x) * (1 + scale) + shift of block 0 (per-frame e0 on Wan 2.2 5B).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names, defining_module

_SIZE_NAMES = {1536: "1.3B", 5120: "14B", 3072: "5B"}
# subclasses and the base architecture their blocks come from (decides which presets fit)
_VARIANTS = {
    "VaceWanModel": ("vace", "t2v"),
    "CameraWanModel": ("camera", "i2v"),
    "WanModel_S2V": ("s2v", "t2v"),
    "HumoWanModel": ("humo", "t2v"),
    "AnimateWanModel": ("animate", "i2v"),
    "WanAnimate2Model": ("animate2", "i2v"),
    "WanDancerModel": ("wandancer", "i2v"),
    "SCAIL2WanModel": ("scail2", "i2v"),        # before SCAIL: a SCAIL2WanModel is a SCAILWanModel
    "SCAILWanModel": ("scail", "i2v"),
}
# config classes whose diffusion model is a plain WanModel but which sample something else:
# FlowRVS (video-to-mask flow) is not what the T2V coefficients were fitted on
_UNCALIBRATED_BASES = {"WAN21_FlowRVS"}
# 480p (832x480) and 720p (1280x720) I2V presets: pick by latent area, split in between
_I2V_720P_MIN_PIXELS = 600_000


class WanAdapter(FamilyAdapter):
    family = "wan"
    indicators = ("modulated_input", "timestep_embedding", "modulation_vector")
    calibration_keys = ("dim", "in_dim", "out_dim")
    display = "Wan 2.1/2.2 (T2V, I2V, FLF2V, VACE, Fun Camera, TI2V-5B, A14B)"

    def matches(self, dm) -> bool:
        return "WanModel" in class_names(dm) and hasattr(dm, "blocks")

    def unsupported_reason(self, dm) -> str | None:
        if "CausalWanModel" in class_names(dm):
            return ("autoregressive Wan keeps a key/value cache inside every block; skipping "
                    "blocks would leave those caches stale. Remove TeaCache for this model.")
        return None

    def describe(self, dm) -> ModelInfo:
        dim = int(getattr(dm, "dim", 0))
        in_dim = int(getattr(dm, "in_dim", 0))
        out_dim = int(getattr(dm, "out_dim", 0))
        names = class_names(dm)
        kind, base = None, None
        for cls_name, (k, b) in _VARIANTS.items():
            if cls_name in names:
                kind, base = k, b
                break
        if kind is None:
            img_emb = getattr(dm, "img_emb", None)
            if out_dim == 48:
                kind = "ti2v"                       # Wan 2.2 TI2V-5B, 48-channel latent
            elif img_emb is not None:
                kind = "flf2v" if getattr(img_emb, "emb_pos", None) is not None else "i2v"
            elif in_dim > 16:
                kind = "i2v_noclip"                 # Wan 2.2 I2V A14B: no CLIP image embedding
            else:
                kind = "t2v"
        size = _SIZE_NAMES.get(dim, f"dim {dim}")
        gen = "2.2" if kind in ("ti2v", "i2v_noclip") or getattr(dm, "ref_conv", None) is not None \
            else "2.1"
        desc = f"Wan {gen} {kind.upper()} {size} ({type(dm).__name__}, dim {dim}, " \
               f"{len(dm.blocks)} blocks)"
        return ModelInfo("wan", kind, {"dim": dim, "in_dim": in_dim, "out_dim": out_dim,
                                       "blocks": len(dm.blocks), "base": base or kind}, desc)

    def preset_kinds(self, info: ModelInfo) -> set:
        base = info.dims.get("base", info.kind)
        kinds = {info.kind, base}
        if base in ("flf2v", "i2v_noclip"):
            kinds.add("i2v")
        return kinds

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        dim, kind = info.dims.get("dim"), info.kind
        if info.dims.get("model_base") in _UNCALIBRATED_BASES:
            return UNCALIBRATED
        if kind in ("t2v", "vace"):
            name = {1536: "wan2.1_t2v_1.3B", 5120: "wan2.1_t2v_14B"}.get(dim)
            return PRESETS[name] if name else UNCALIBRATED
        if kind == "i2v" and dim == 5120:
            pixels = 0
            if latent_shape is not None and len(latent_shape) >= 2:
                pixels = int(latent_shape[-1]) * int(latent_shape[-2]) * 64
            return PRESETS["wan2.1_i2v_720p_14B" if pixels >= _I2V_720P_MIN_PIXELS
                           else "wan2.1_i2v_480p_14B"]
        return UNCALIBRATED

    def block_keys(self, dm) -> list:
        return [("double_block", i) for i in range(len(dm.blocks))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        x = args["img"]
        e0 = args["vec"]
        dm = ctx.model
        if name == "modulation_vector":
            return e0.reshape(e0.shape[0], -1)
        if name == "timestep_embedding":
            t = ctx.timestep
            if t is None:
                raise RuntimeError("the timestep embedding indicator needs ComfyUI's "
                                   "DIFFUSION_MODEL wrapper, which this model did not call")
            mod = defining_module(dm, "WanModel")
            sinusoidal = getattr(mod, "sinusoidal_embedding_1d")
            e = dm.time_embedding(sinusoidal(dm.freq_dim, t.flatten()).to(dtype=x.dtype))
            return e.reshape(t.shape[0], -1)
        if name == "modulated_input":
            block = dm.blocks[0]
            m = block.modulation.to(device=x.device, dtype=x.dtype)
            if e0.ndim < 4:
                shift, scale = (m + e0).chunk(6, dim=1)[:2]
            else:
                shift, scale = (m.unsqueeze(0) + e0).unbind(2)[:2]
            if shift.shape[1] not in (1, x.shape[1]):       # per-frame modulation (Wan 2.2 5B)
                rep = getattr(defining_module(dm, "WanModel"), "repeat_e", None)
                if rep is None:
                    raise RuntimeError("per-frame modulation needs comfy.ldm.wan.model.repeat_e")
                shift, scale = rep(shift, x), rep(scale, x)
            return torch.addcmul(shift, block.norm1(x), 1 + scale)
        raise ValueError(f"Wan has no indicator {name!r}")


ADAPTER = WanAdapter()
