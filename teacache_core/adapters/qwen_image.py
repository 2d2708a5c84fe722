"""Qwen-Image (comfy/ldm/qwen_image): QwenImageTransformer2DModel, also Qwen-Image Edit
(2509, 2511) and Layered, which load as the same class.

Blocks: patches_replace["dit"][("double_block", i)] with args {"img", "txt", "vec" (= temb),
"pe", "transformer_options"}; the block returns {"txt", "img"} (its own forward returns
(txt, img)). The residual is over the image stream (with Edit's reference-image tokens, which
travel in the same stream) from the first block's input to the last block's output.

Indicator ("modulated_input"): block 0's image input modulated with its first image
modulation, ``img_norm1(img) * (1 + scale) + shift`` from ``img_mod(temb)``, computed with the
block's own ``_modulate``. No coefficients are published for Qwen-Image: ``uncalibrated``.
"""
from __future__ import annotations

import torch

from ..coefficients import UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names


class QwenImageAdapter(FamilyAdapter):
    family = "qwen_image"
    display = "Qwen-Image (Qwen-Image, Edit, Layered)"
    hook = "replace"
    #: a user calibration fits one architecture and size (ModelInfo.dims keys)
    calibration_keys = ("arch", "hidden", "in_channels", "blocks")

    def matches(self, dm) -> bool:
        return "QwenImageTransformer2DModel" in class_names(dm) and \
            hasattr(dm, "transformer_blocks")

    def describe(self, dm) -> ModelInfo:
        names = class_names(dm)
        hidden = int(getattr(dm, "inner_dim", 0))
        blocks = len(dm.transformer_blocks)
        tte = getattr(dm, "time_text_embed", None)
        if getattr(tte, "use_additional_t_cond", False):
            kind, name = "layered", "Qwen-Image Layered"
        elif getattr(dm, "default_ref_method", "index") == "index_timestep_zero":
            kind, name = "edit_2511", "Qwen-Image Edit 2511"
        else:
            # Qwen-Image and Qwen-Image Edit (2509) have the same weights layout
            kind, name = "image", "Qwen-Image (or Edit)"
        size = "20B " if hidden == 3072 and blocks == 60 else ""
        desc = (f"{name} {size}({names[0]}, hidden {hidden}, {blocks} "
                f"block{'' if blocks == 1 else 's'})")
        # Edit 2511 is Qwen-Image's architecture with another reference-token timestep
        arch = "layered" if kind == "layered" else "image"
        return ModelInfo(self.family, kind, {"arch": arch, "hidden": hidden, "blocks": blocks,
                                             "in_channels": int(getattr(dm, "in_channels", 0))},
                         desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        return UNCALIBRATED                   # no published coefficients for Qwen-Image

    def block_keys(self, dm) -> list:
        return [("double_block", i) for i in range(len(dm.transformer_blocks))]

    def passthrough(self, key, args):
        return {"img": args["img"], "txt": args["txt"]}

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Qwen-Image has no indicator {name!r}")
        block = ctx.model.transformer_blocks[0]
        img, temb = args["img"], args["vec"]
        if temb.shape[0] == 2 * img.shape[0]:
            # Edit 2511 ("index_timestep_zero", 0.33): temb = [real timesteps; zero timesteps]
            # for the noisy and the reference tokens; the noisy image's own timestep comes first
            temb = temb[:img.shape[0]]
        img_mod1 = block.img_mod(temb).chunk(2, dim=-1)[0]
        return block._modulate(block.img_norm1(img), img_mod1)[0]


ADAPTER = QwenImageAdapter()
