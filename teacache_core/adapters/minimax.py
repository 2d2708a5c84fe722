"""MiniMax H3 audio-video DiT (comfy/ldm/minimax, newest ComfyUI only; model_base MiniMaxH3).

Blocks: patches_replace["dit"][("double_block", i)] on `blocks.<i>` (`DiTBlock`), args
{"img": h, "t_emb", "mod_segments", "rope_freqs", "transformer_options"}; the block returns
{"img": h}. h is ONE packed sequence WITHOUT a batch dimension, [S, hidden]:
[text | keyframe cond / reference rows | target audio | target video] (the model runs batch
size 1; ComfyUI runs cond and uncond as separate calls, their conds never concatenate). The
blocks modify h IN PLACE (the gated residual adds): the engine keeps its own copy of the
first block's input, and a skip returns new tensors.

Residual: over the whole packed sequence the blocks carry, presented to the engine batch-first
as a view [1, S, hidden] and handed back as [S, hidden]. Exact: a skip reproduces every row
as the computed blocks would have left it at the cached step.

Indicator (modulated_input): block 0's `norm1(h)` modulated per segment as the block does,
`* (1 + scale_msa[row]) + shift_msa[row]` with shift/scale from `adaln_proj(t_emb)` (rows of
the per-timestep, per-modality table; a row may be a per-token index tensor), taken over the
TARGET rows only (audio + video, always the last two segments): text and keyframe/reference
rows are fixed conditioning, and counting them would make the same threshold mean something
else in text-to-AV, keyframe and reference tasks (references can outnumber the target
tokens). No published coefficients: `auto` = uncalibrated.
"""
from __future__ import annotations

import torch

from .base import FamilyAdapter, ModelInfo, class_names


def _target_start(segments) -> int:
    """First row of the target streams: the second-to-last segment (target audio) starts it;
    0 (the whole sequence) if the segments do not look like that."""
    if len(segments) < 2:
        return 0
    return int(segments[-2][0])


class MiniMaxH3Adapter(FamilyAdapter):
    family = "minimax"
    display = "MiniMax H3 (audio-video)"
    calibration_keys = ("hidden", "latents_dim", "audio_latents_dim")

    def matches(self, dm) -> bool:
        return "MiniMaxH3Model" in class_names(dm) and hasattr(dm, "blocks")

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.blocks) == 0:
            return "it has no transformer blocks to cache."
        return None

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "hidden_size", 0))
        n = len(dm.blocks)
        dims = {"hidden": hidden, "blocks": n,
                "latents_dim": int(getattr(dm, "latents_dim", 0)),
                "audio_latents_dim": int(getattr(dm, "audio_latents_dim", 0))}
        curves = ", adaLN curve table" if getattr(dm, "use_adaln_curves", False) else ""
        desc = f"MiniMax H3 audio-video ({type(dm).__name__}, hidden {hidden}, {n} blocks{curves})"
        return ModelInfo(self.family, "av", dims, desc)

    def block_keys(self, dm) -> list:
        return [("double_block", i) for i in range(len(dm.blocks))]

    # ---- block I/O: one unbatched packed sequence, seen batch-first by the engine ---------
    def block_input(self, key, args) -> torch.Tensor:
        return args["img"].unsqueeze(0)

    def passthrough(self, key, args):
        return {"img": args["img"]}

    def block_output(self, key, args, out) -> torch.Tensor:
        return out["img"].unsqueeze(0)

    def with_output(self, key, args, out, t):
        return {**out, "img": t.reshape(out["img"].shape)}

    # ---- indicator ------------------------------------------------------------------------
    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"MiniMax H3 has no indicator {name!r}")
        dm = ctx.model
        if not hasattr(dm, "blocks"):
            dm = dm.diffusion_model
        block = dm.blocks[0]
        segments = args["mod_segments"]
        start = _target_start(segments)
        h = args["img"]
        shift, scale = block.adaln_proj(args["t_emb"])[:2]       # [rows, hidden] tables
        normed = block.norm1(h[start:])                           # a new tensor: modulate it
        for a, b, row in segments:
            a, b = max(a, start) - start, b - start
            if b <= a:
                continue
            part = normed[a:b]
            part.mul_(1 + scale[row].to(part.dtype)).add_(shift[row].to(part.dtype))
        return normed.unsqueeze(0)


ADAPTER = MiniMaxH3Adapter()
