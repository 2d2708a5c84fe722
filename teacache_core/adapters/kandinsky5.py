"""Kandinsky 5 (comfy/ldm/kandinsky5, newest ComfyUI only): Video Lite / Video Pro (model_base
Kandinsky5) and Image Lite (Kandinsky5Image); both run the same `Kandinsky5` diffusion model.

Hook style: "forward" (an object patch on each visual block's forward), although the model's
forward consults patches_replace["dit"][("double_block", i)] for its visual blocks. ComfyUI's
replace path for this model cannot run the block: its `original_block` calls the block with
keywords the block does not take (`x=`, `context=`; TypeError) and returns a bare tensor where
the forward reads `["x"]` of the patch's result. A replace patch may only bypass the block (as
Skip Layer Guidance does), never gate it. The forward-style gates see every call of the block's
own forward, whichever path calls it (and keep working if ComfyUI fixes the replace path).

Blocks: `visual_transformer_blocks.<i>` (`TransformerDecoderBlock`), called as
`block(visual_embed, text_embed, time_embed, freqs=, transformer_options=)`; the residual stream
is the flattened visual tokens x [B, N, model_dim], returned as one tensor. The text blocks
before them always run.

Indicator (modulated_input): visual block 0's self-attention input
`self_attention_norm(x) * (1 + scale) + shift`, shift/scale the first two thirds of the first
chunk of `visual_modulation(time_embed)` (time_embed = time embedding + pooled text embedding,
[B, time_dim]). No published coefficients: `auto` = uncalibrated.

Image vs video: the video models take the noise plus ComfyUI's concat conditioning (16 image
channels and a mask) through the patch embedding, the image model the latent alone, so the
patch embedding's width (visual_embed_dim) tells them apart: latent channels x patch volume
for image, more for video.
"""
from __future__ import annotations

import math

import torch

from .base import ModelInfo, TensorBlockAdapter, class_names

# positional parameter names of TransformerDecoderBlock.forward, as the gate names them;
# keyword names (the block's own, or the replace path's) mapped to the same
_ARGS = ("x", "context", "time_embed", "freqs", "transformer_options")
_KW = {"visual_embed": "x", "text_embed": "context"}
# (kind, model_dim) -> released name
_NAMES = {("video", 1792): "Video Lite (2B)", ("video", 4096): "Video Pro (19B)",
          ("image", 2560): "Image Lite (6B)"}


class Kandinsky5Adapter(TensorBlockAdapter):
    family = "kandinsky5"
    display = "Kandinsky 5 (Video Lite / Pro, Image Lite)"
    calibration_keys = ("model_dim", "visual_embed_dim")

    def matches(self, dm) -> bool:
        return "Kandinsky5" in class_names(dm) and hasattr(dm, "visual_transformer_blocks")

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.visual_transformer_blocks) == 0:
            return "it has no visual transformer blocks to cache."
        return None

    def forward_args(self, key, a, kw) -> dict:
        out = dict(zip(_ARGS, a))
        for k, v in kw.items():
            out[_KW.get(k, k)] = v
        return out

    @staticmethod
    def kind_of(dm) -> str:
        """'image' when the patch embedding takes the latent alone, else 'video'."""
        patch = math.prod(getattr(dm, "patch_size", (1, 2, 2)))
        latent = int(getattr(dm, "in_visual_dim", 16))
        return "image" if int(getattr(dm, "visual_embed_dim", 0)) == latent * patch else "video"

    def describe(self, dm) -> ModelInfo:
        dim = int(getattr(dm, "model_dim", 0))
        embed = int(getattr(dm, "visual_embed_dim", 0))
        n = len(dm.visual_transformer_blocks)
        kind = self.kind_of(dm)
        name = _NAMES.get((kind, dim), f"{kind} model_dim {dim}")
        desc = (f"Kandinsky 5 {name} ({type(dm).__name__}, model_dim {dim}, "
                f"{n} visual blocks)")
        return ModelInfo(self.family, kind, {"model_dim": dim, "visual_embed_dim": embed,
                                             "blocks": n}, desc)

    def block_keys(self, dm) -> list:
        return [f"visual_transformer_blocks.{i}" for i in range(len(dm.visual_transformer_blocks))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"Kandinsky 5 has no indicator {name!r}")
        dm = ctx.model
        if not hasattr(dm, "visual_transformer_blocks"):
            dm = dm.diffusion_model
        block = dm.visual_transformer_blocks[0]
        x = args["x"]
        params = block.visual_modulation(args["time_embed"])      # [B, 9 * model_dim]
        d = params.shape[-1] // 9
        shift = params[:, None, :d].to(x.dtype)                    # self-attention shift,
        scale = params[:, None, d:2 * d].to(x.dtype)               # scale (then gate, unused)
        return torch.addcmul(shift, block.self_attention_norm(x), 1 + scale)


ADAPTER = Kandinsky5Adapter()
