"""Mochi 1 (comfy/ldm/genmo/joint_model/asymm_models_joint.py): AsymmDiTJoint.

Blocks: patches_replace["dit"][("double_block", i)] with args {"img": x [B, N, hidden_x],
"txt": y_feat [B, L, hidden_y], "vec": c [B, hidden_x], "rope_cos", "rope_sin", "num_tokens",
"transformer_options"}; each block returns {"img", "txt"} (the last block leaves txt as it was).
The blocks carry x and y_feat separately; the residual is taken over the visual tokens x only
(as the official TeaCache4Mochi), and a skipped block hands both streams on unchanged.

The model's forward calls no DIFFUSION_MODEL wrappers; the per-call context comes from the
APPLY_MODEL wrapper (BaseModel.apply_model), which every ComfyUI model has. The indicator needs
only the block arguments and block 0, not the timestep.

Indicator ("modulated_input", as the official TeaCache4Mochi, ``transformer_blocks[0].norm1``):
``modulated_rmsnorm(x, scale_msa_x)`` with ``scale_msa_x`` the first chunk of
``block.mod_x(silu(c))``, using the model module's own ``modulated_rmsnorm``.

Presets: the published ``mochi`` coefficients were fitted on Mochi 1 preview (hidden 3072,
48 blocks), the only released Mochi; ``auto`` picks them for that size.
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names, defining_module

_MOCHI_PREVIEW = {"hidden": 3072, "blocks": 48}


class MochiAdapter(FamilyAdapter):
    family = "mochi"
    display = "Mochi 1"
    calibration_keys = ("hidden", "hidden_y", "in_channels")

    def matches(self, dm) -> bool:
        return "AsymmDiTJoint" in class_names(dm) and hasattr(dm, "blocks")

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size_x", 0))
        hidden_y = int(getattr(dm, "hidden_size_y", 0))
        n = len(dm.blocks)
        dims = {"hidden": hidden, "hidden_y": hidden_y, "blocks": n,
                "in_channels": int(getattr(dm, "in_channels", 0))}
        name = ("Mochi 1 preview 10B" if {"hidden": hidden, "blocks": n} == _MOCHI_PREVIEW
                else f"Mochi hidden {hidden}")
        return ModelInfo("mochi", "t2v", dims,
                         f"{name} ({type(dm).__name__}, hidden {hidden}, {n} blocks)")

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        if info.dims.get("hidden") == _MOCHI_PREVIEW["hidden"] \
                and info.dims.get("blocks") == _MOCHI_PREVIEW["blocks"]:
            return PRESETS["mochi"]
        return UNCALIBRATED

    def block_keys(self, dm) -> list:
        return [("double_block", i) for i in range(len(dm.blocks))]

    # ---- block I/O: x is the residual stream; y_feat is handed on unchanged on a skip -----
    def passthrough(self, key, args):
        return {"img": args["img"], "txt": args["txt"]}

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Mochi has no indicator {name!r}")
        dm = ctx.model
        dm = dm if hasattr(dm, "blocks") else dm.diffusion_model
        block = dm.blocks[0]
        x, c = args["img"], args["vec"]
        scale_msa_x = block.mod_x(torch.nn.functional.silu(c)).chunk(4, dim=1)[0]
        modulated_rmsnorm = getattr(defining_module(dm, "AsymmDiTJoint"), "modulated_rmsnorm")
        return modulated_rmsnorm(x, scale_msa_x)


ADAPTER = MochiAdapter()
