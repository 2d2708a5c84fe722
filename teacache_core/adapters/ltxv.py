"""LTX-Video (comfy/ldm/lightricks): LTXV 0.9.x (2B), 13B, and in the newest ComfyUI LTX-2
(LTXVModel with LTX-2 features) and the audio-video LTXAVModel.

Blocks: patches_replace["dit"][("double_block", i)] in both ComfyUI versions.
- LTXV: args {"img": x [B, N, hidden], "txt", "attention_mask", "vec": timestep
  [B, 1 or N, 6*hidden] (9*hidden with cross-attention AdaLN), "pe", ...}; the block returns
  {"img": x}. The blocks modify x IN PLACE (x.addcmul_, x += ...): the gate keeps a clone of
  the first block's input, and everything TeaCache returns on a skip is a new tensor.
- LTXAV: args["img"] is the tuple (video, audio) and the block returns {"img": (video, audio)},
  both modified in place; the timesteps are "v_timestep"/"a_timestep" (tensors or ComfyUI's
  CompressedTimestep). The residual is taken over BOTH streams: the adapter presents them to the
  gate as one tensor [B, Nv*Dv + Na*Da] (block_input/block_output) and splits it back
  (with_output), so no base-interface change is needed.

Indicator (official TeaCache4LTX-Video): block 0's modulated input
``rms_norm(x) * (1 + scale_msa) + shift_msa`` with shift/scale from
``block.scale_shift_table + timestep``; LTXAV: the same for the video stream, joined with the
audio stream's ``rms_norm(a) * (1 + audio scale) + audio shift`` (the block's own get_ada_values).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names, defining_module

# hidden size -> (size name, blocks of the released checkpoint)
_LTXV_SIZES = {2048: ("2B", 28), 4096: ("13B", 48)}


def _rms_norm(dm, x):
    """ComfyUI's own rms_norm (comfy.ldm.common_dit), reached through the model's module."""
    mod = defining_module(dm, "LTXVModel")
    comfy_pkg = getattr(mod, "comfy", None)
    fn = getattr(getattr(getattr(comfy_pkg, "ldm", None), "common_dit", None), "rms_norm", None)
    if fn is None:
        return torch.nn.functional.rms_norm(x, (x.shape[-1],), eps=1e-6)
    return fn(x)


def _flat(streams) -> torch.Tensor:
    """(video, audio) -> one [B, Nv*Dv + Na*Da] tensor (a new tensor)."""
    return torch.cat([s.flatten(1) for s in streams], dim=1)


def _split(t: torch.Tensor, like) -> tuple:
    """Inverse of _flat: views of `t` shaped like the streams in `like`."""
    out, start = [], 0
    for s in like:
        n = s[0].numel() if s.shape[0] else 0         # elements per batch item
        out.append(t[:, start:start + n].reshape(s.shape))
        start += n
    return tuple(out)


class LTXVAdapter(FamilyAdapter):
    family = "ltxv"
    display = "LTX-Video (0.9.x 2B, 13B, LTX-2, LTX-2 audio-video)"
    calibration_keys = ("hidden", "in_channels", "audio_hidden")

    def matches(self, dm) -> bool:
        return "LTXVModel" in class_names(dm) and hasattr(dm, "transformer_blocks")

    @staticmethod
    def _is_av(dm) -> bool:
        return "LTXAVModel" in class_names(dm)

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "inner_dim", 0))
        n = len(dm.transformer_blocks)
        cls = type(dm).__name__
        proj = getattr(dm, "patchify_proj", None)
        dims = {"hidden": hidden, "blocks": n,
                "in_channels": int(getattr(proj, "in_features", 0) or 0)}
        ltx2 = bool(getattr(dm, "caption_proj_before_connector", False)
                    or getattr(dm, "cross_attention_adaln", False))
        if self._is_av(dm):
            audio = int(getattr(dm, "audio_inner_dim", 0))
            dims["audio_hidden"] = audio
            return ModelInfo("ltxv", "ltxav", dims,
                             f"LTX-2 audio-video ({cls}, hidden {hidden}, audio hidden {audio}, "
                             f"{n} blocks)")
        if ltx2:
            return ModelInfo("ltxv", "ltxv2", dims,
                             f"LTX-2 video ({cls}, hidden {hidden}, {n} blocks)")
        size, blocks = _LTXV_SIZES.get(hidden, (None, None))
        if size is not None and n == blocks:
            name = f"LTX-Video {size}" + (" (0.9.x)" if size == "2B" else " (0.9.7+)")
        else:
            name = f"LTX-Video hidden {hidden}"
        return ModelInfo("ltxv", "ltxv", dims, f"{name} ({cls}, hidden {hidden}, {n} blocks)")

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        # The official polynomial was fitted on LTX-Video 0.9.1 (2B, 28 blocks); the later 2B
        # 0.9.x releases keep that architecture and cannot be told apart from it.
        if info.kind == "ltxv" and info.dims.get("hidden") == 2048 \
                and info.dims.get("blocks") == 28:
            return PRESETS["ltxv"]
        return UNCALIBRATED

    def preset_mismatch(self, info: ModelInfo, preset):
        problem = super().preset_mismatch(info, preset)
        if problem is None and preset.family == self.family and info.kind != "ltxv":
            return (f"model_type {preset.name!r} was fitted on LTX-Video 0.9.1, but the loaded "
                    f"model is {info.description}. Choose 'auto' or 'uncalibrated'.")
        return problem

    def block_keys(self, dm) -> list:
        return [("double_block", i) for i in range(len(dm.transformer_blocks))]

    # ---- block I/O: LTXAV carries (video, audio); the residual covers both -----------------
    def block_input(self, key, args) -> torch.Tensor:
        x = args["img"]
        return _flat(x) if isinstance(x, (tuple, list)) else x

    def block_output(self, key, args, out) -> torch.Tensor:
        y = out["img"]
        return _flat(y) if isinstance(y, (tuple, list)) else y

    def with_output(self, key, args, out, t):
        like = out["img"]
        if isinstance(like, (tuple, list)):
            t = tuple(s.contiguous() for s in _split(t, like))
        return {**out, "img": t}

    # ---- indicator ------------------------------------------------------------------------
    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"LTX-Video has no indicator {name!r}")
        dm = ctx.model
        dm = dm if hasattr(dm, "transformer_blocks") else dm.diffusion_model
        block = dm.transformer_blocks[0]
        x = args["img"]
        if isinstance(x, (tuple, list)):                    # LTXAV: (video, audio)
            vx, ax = x
            shift, scale = block.get_ada_values(block.scale_shift_table, vx.shape[0],
                                                args["v_timestep"], slice(0, 2))
            parts = [_rms_norm(dm, vx) * (1 + scale) + shift]
            if ax.numel() > 0:
                ashift, ascale = block.get_ada_values(block.audio_scale_shift_table, ax.shape[0],
                                                      args["a_timestep"], slice(0, 2))
                parts.append(_rms_norm(dm, ax) * (1 + ascale) + ashift)
            return _flat(parts)
        t = args["vec"]
        table = block.scale_shift_table
        n = table.shape[0]
        ada = table[None, None, :2].to(device=x.device, dtype=x.dtype) + \
            t.reshape(x.shape[0], t.shape[1], n, -1)[:, :, :2]
        shift, scale = ada.unbind(dim=2)
        return _rms_norm(dm, x) * (1 + scale) + shift


ADAPTER = LTXVAdapter()
