"""NVIDIA Cosmos (comfy/ldm/cosmos): Cosmos Predict2 (and Anima) and Cosmos 1.0 diffusion.

Neither family has per-block patches_replace hooks, so both use the "forward" hook style: an
object patch on each block module's forward (see patching.ForwardGate).

- Cosmos Predict2 (`MiniTrainDIT`, predict2.py; also `Anima`, a MiniTrainDIT subclass in the
  newest ComfyUI): blocks `blocks.<i>` (`Block`), called as
  `block(x_B_T_H_W_D, t_embedding_B_T_D, crossattn_emb, rope_emb_L_1_1_D=,
  adaln_lora_B_T_3D=, extra_per_block_pos_emb=, transformer_options=)`; a block returns the
  5-D tensor x [B, T, H, W, D]. Indicator (modulated_input): block 0's
  `layer_norm_self_attn(x) * (1 + scale) + shift`, shift/scale from
  `adaln_modulation_self_attn(emb)` (+ the AdaLN-LoRA term), on x plus the per-block position
  embedding the block adds first. No published coefficients: `auto` = uncalibrated.
- Cosmos 1.0 (`GeneralDIT`, model.py): blocks `blocks.block<i>` (`GeneralDITTransformerBlock`,
  a ModuleDict), called as `block(x, affline_emb_B_D, crossattn_emb, crossattn_mask,
  rope_emb_L_1_1_D=, adaln_lora_B_3D=, transformer_options=)`; x is 5-D in the block's
  `x_format`, "THWBD" (batch 4th) for every checkpoint ComfyUI detects. The residual and the
  indicator are taken batch-first (a view), and handed back in the block's own layout.
  Indicator: the first sub-block (full attention) of block 0,
  `norm_state(x) * (1 + scale) + shift` with shift/scale from `adaLN_modulation(emb)`
  (+ AdaLN-LoRA) -- official TeaCache4Cosmos's block-0 adaLN-modulated norm_state. Preset
  `cosmos_1.0_7B` (fitted on Cosmos-1.0-Diffusion-7B, hidden 4096).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import ModelInfo, TensorBlockAdapter, class_names

# positional parameter names of the block forwards (keyword calls are taken as they come)
_P2_ARGS = ("x", "emb", "crossattn_emb", "rope_emb", "adaln_lora", "extra_pos_emb",
            "transformer_options")
_P2_KW = {"x_B_T_H_W_D": "x", "emb_B_T_D": "emb", "rope_emb_L_1_1_D": "rope_emb",
          "adaln_lora_B_T_3D": "adaln_lora", "extra_per_block_pos_emb": "extra_pos_emb"}
_C1_ARGS = ("x", "emb", "crossattn_emb", "crossattn_mask", "rope_emb", "adaln_lora",
            "transformer_options")
_C1_KW = {"emb_B_D": "emb", "rope_emb_L_1_1_D": "rope_emb", "adaln_lora_B_3D": "adaln_lora"}
_C1_BATCH_DIM = 3          # GeneralDIT blocks run THWBD (its forward assumes it)


def _bind(names, kw_map, a, kw) -> dict:
    out = dict(zip(names, a))
    for k, v in kw.items():
        out[kw_map.get(k, k)] = v
    return out


class CosmosPredict2Adapter(TensorBlockAdapter):
    family = "cosmos"
    display = "Cosmos Predict2 (Text2Image, Video2World; Anima)"

    _SIZES = {2048: "2B", 5120: "14B"}

    def matches(self, dm) -> bool:
        return "MiniTrainDIT" in class_names(dm) and hasattr(dm, "blocks")

    def forward_args(self, key, a, kw) -> dict:
        return _bind(_P2_ARGS, _P2_KW, a, kw)

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "model_channels", 0))
        in_ch = int(getattr(dm, "in_channels", 0))
        n = len(dm.blocks)
        if "Anima" in class_names(dm):
            kind, name = "anima", "Anima"
        elif in_ch > 16:
            kind, name = "v2w", "Cosmos Predict2 Video2World"
        else:
            kind, name = "t2i", "Cosmos Predict2 Text2Image"
        size = self._SIZES.get(hidden, f"hidden {hidden}")
        desc = f"{name} {size} ({type(dm).__name__}, hidden {hidden}, {n} blocks)"
        return ModelInfo(self.family, kind, {"hidden": hidden, "in_channels": in_ch, "blocks": n},
                         desc)

    def block_keys(self, dm) -> list:
        return [f"blocks.{i}" for i in range(len(dm.blocks))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Cosmos Predict2 has no indicator {name!r}")
        block = ctx.model.blocks[0]
        x = args["x"]
        pos = args.get("extra_pos_emb")
        if pos is not None:
            x = x + pos                               # the block adds it before its norms
        mod = block.adaln_modulation_self_attn(args["emb"])
        if getattr(block, "use_adaln_lora", False) and args.get("adaln_lora") is not None:
            mod = mod + args["adaln_lora"]
        shift, scale = mod.chunk(3, dim=-1)[:2]       # [B, T, D]
        shift = shift[:, :, None, None, :]
        scale = scale[:, :, None, None, :]
        normed = block.layer_norm_self_attn(x)
        return normed * (1 + scale.to(normed.dtype)) + shift.to(normed.dtype)


class Cosmos1Adapter(TensorBlockAdapter):
    family = "cosmos1"
    display = "Cosmos 1.0 Diffusion (Text2World, Video2World 7B/14B)"

    _SIZES = {4096: "7B", 5120: "14B"}

    def matches(self, dm) -> bool:
        return "GeneralDIT" in class_names(dm) and hasattr(dm, "blocks")

    def unsupported_reason(self, dm) -> str | None:
        fmt = getattr(dm, "block_x_format", "THWBD")
        if fmt != "THWBD":
            return (f"its blocks use x_format {fmt!r}; ComfyUI's GeneralDIT (and TeaCache) only "
                    "run the THWBD layout that every Cosmos 1.0 checkpoint uses.")
        return None

    def forward_args(self, key, a, kw) -> dict:
        return _bind(_C1_ARGS, _C1_KW, a, kw)

    # x is [T, H, W, B, D]: the residual is taken batch-first (a view) and handed back as THWBD
    def block_input(self, key, args) -> torch.Tensor:
        return args["x"].movedim(_C1_BATCH_DIM, 0)

    def block_output(self, key, args, out) -> torch.Tensor:
        return out.movedim(_C1_BATCH_DIM, 0)

    def with_output(self, key, args, out, t):
        return t.movedim(0, _C1_BATCH_DIM)

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "model_channels", 0))
        in_ch = int(getattr(dm, "in_channels", 0))
        n = len(dm.blocks)
        kind, name = ("v2w", "Video2World") if in_ch > 16 else ("t2w", "Text2World")
        size = self._SIZES.get(hidden, f"hidden {hidden}")
        desc = f"Cosmos 1.0 {name} {size} ({type(dm).__name__}, hidden {hidden}, {n} blocks)"
        return ModelInfo(self.family, kind, {"hidden": hidden, "in_channels": in_ch, "blocks": n},
                         desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        if info.dims.get("hidden") == 4096:
            return PRESETS["cosmos_1.0_7B"]
        return UNCALIBRATED

    def block_keys(self, dm) -> list:
        return [f"blocks.{name}" for name in dm.blocks.keys()]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Cosmos 1.0 has no indicator {name!r}")
        first = next(iter(ctx.model.blocks.values())).blocks[0]
        x = self.block_input(None, args)                       # [B, T, H, W, D]
        mod = first.adaLN_modulation(args["emb"])
        if getattr(first, "use_adaln_lora", False) and args.get("adaln_lora") is not None:
            mod = mod + args["adaln_lora"]
        shift, scale = mod.chunk(3, dim=1)[:2]                 # [B, D]
        shift = shift[:, None, None, None, :]
        scale = scale[:, None, None, None, :]
        normed = first.norm_state(x)
        return normed * (1 + scale.to(normed.dtype)) + shift.to(normed.dtype)


ADAPTER = CosmosPredict2Adapter()
COSMOS1_ADAPTER = Cosmos1Adapter()
#: every adapter this module defines (adapters/__init__.py reads ADAPTER only; see the report)
ADAPTERS = [ADAPTER, COSMOS1_ADAPTER]
