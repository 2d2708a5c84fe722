"""PixelDiT text-to-image (comfy/ldm/pixeldit, `PixDiT_T2I`, model_base PixelDiTT2I); PiD
(`PidNet`, model_base PiD) is recognised and refused.

The forward consults no patches_replace hooks: the "forward" hook style gates the patch-level
MMDiT blocks (`patch_blocks.<i>`, `MMDiTBlockT2I`), called as
`block(s, y_emb, condition, pos_img, pos_txt, None, transformer_options=)` and returning the
pair (s, y_emb): image patch tokens and text tokens, two streams. The residual is taken over the
image stream s [B, patches, hidden]; a skipped block hands both streams back unchanged (nothing
after the stack reads the text stream). The pixel-level blocks after the stack (`PiTBlock`,
pixel tokens conditioned on s) always run: they consume s, whatever produced it.

Indicator (modulated_input): block 0's image-stream attention input,
`norm_x1(s) * (1 + scale_msa_x) + shift_msa_x` with shift/scale the first two chunks of
`adaLN_modulation_img(condition)`. No published coefficients: `auto` = uncalibrated.

PiD (Pixel Diffusion Decoder) is refused: it is a distilled decoder sampled in 4 steps (ComfyUI's
PiD sampling settings approximate the distilled 4-step schedule), where the first and last steps
are always computed and a skipped middle step would cost fidelity for at most a step or two.
"""
from __future__ import annotations

import torch

from .base import FamilyAdapter, ModelInfo, class_names

_ARGS = ("x", "y", "c", "pos_img", "pos_txt", "attn_mask", "transformer_options")


class PixelDiTAdapter(FamilyAdapter):
    family = "pixeldit"
    display = "PixelDiT text-to-image (PixDiT_T2I; PiD refused)"
    hook = "forward"
    calibration_keys = ("hidden", "depth", "pixel_depth", "patch_size")

    def matches(self, dm) -> bool:
        return "PixDiT_T2I" in class_names(dm) and hasattr(dm, "patch_blocks")

    def unsupported_reason(self, dm) -> str | None:
        if "PidNet" in class_names(dm):
            return ("it is PiD, the Pixel Diffusion Decoder: a distilled model sampled in 4 "
                    "steps. TeaCache always computes the first and the last step, so it could "
                    "skip at most two steps, each a large part of the result: caching cannot "
                    "help a model sampled in 4 steps. Remove the TeaCache node for PiD.")
        if len(dm.patch_blocks) == 0:
            return "it has no patch-level transformer blocks to cache."
        return None

    def forward_args(self, key, a, kw) -> dict:
        out = dict(zip(_ARGS, a))
        out.update(kw)
        return out

    # the blocks carry (image, text); the residual is over the image stream
    def block_input(self, key, args) -> torch.Tensor:
        return args["x"]

    def passthrough(self, key, args):
        return args["x"], args["y"]

    def block_output(self, key, args, out) -> torch.Tensor:
        return out[0]

    def with_output(self, key, args, out, t):
        return t, out[1]

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size", 0))
        depth, pixel_depth = len(dm.patch_blocks), len(dm.pixel_blocks)
        dims = {"hidden": hidden, "depth": depth, "pixel_depth": pixel_depth,
                "patch_size": int(getattr(dm, "patch_size", 0))}
        desc = (f"PixelDiT text-to-image ({type(dm).__name__}, hidden {hidden}, {depth} patch "
                f"blocks + {pixel_depth} pixel blocks, the patch blocks cached)")
        return ModelInfo(self.family, "t2i", dims, desc)

    def block_keys(self, dm) -> list:
        return [f"patch_blocks.{i}" for i in range(len(dm.patch_blocks))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"PixelDiT has no indicator {name!r}")
        block = ctx.model.patch_blocks[0]
        shift, scale = block.adaLN_modulation_img(args["c"]).chunk(6, dim=-1)[:2]
        return torch.addcmul(shift, block.norm_x1(args["x"]), 1 + scale)


ADAPTER = PixelDiTAdapter()
