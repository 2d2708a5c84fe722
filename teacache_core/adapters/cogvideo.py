"""CogVideoX (comfy/ldm/cogvideo/model.py, CogVideoXTransformer3DModel; model_base CogVideoX).
Newest ComfyUI only (0.3.75 has no CogVideoX).

Variants ComfyUI loads, told apart by the diffusion model's dims:
- CogVideoX 1.0 (Conv2d 2x2 patches, `patch_size_t` None): 2B (hidden 1920, 30 blocks),
  5B (hidden 3072, 42 blocks), 5B-I2V (32 input channels: noise + image latent);
- CogVideoX 1.5 (2x2x2 patches, `patch_size_t` 2): 1.5-5B, 1.5-5B-I2V (32 channels and the
  `ofs` embedding added to the timestep embedding);
- CogVideoX-Fun inpaint (48 input channels) and anything else: no published coefficients.

Blocks: no patches_replace hooks, so the "forward" hook style gates each `blocks.<i>`
(`CogVideoXBlock`). The model calls a block with keywords only,
`block(hidden_states=, encoder_hidden_states=, temb=, image_rotary_emb=,
transformer_options=)`, and a block returns the pair (hidden_states, encoder_hidden_states):
the video tokens and the text tokens as two streams (they meet only inside the block's joint
attention and feed-forward). The residual is taken over the video stream. On a skip the text
stream is handed back unchanged: after the last block the model uses the video stream alone
(`norm_final(hidden_states)`, a per-token LayerNorm; the official TeaCache4CogVideoX1.5, on
diffusers, also concatenates the text tokens before that LayerNorm and cuts them off after it,
which does not change the video tokens either). So unlike the official code, which caches the
text stream's residual too, nothing of the text stream is cached: the output is the same and
the cache is smaller.

Indicators:
- ``timestep_embedding`` (what the official TeaCache4CogVideoX / TeaCache4CogVideoX1.5 measure
  and what the published coefficients were fitted on): `emb`, the timestep embedding the
  blocks get as `temb` (plus the `ofs` embedding on 1.5-I2V, as the official code has it);
  [B, time_embed_dim], nothing to compute. The presets use it.
- ``modulated_input``: block 0's `norm1.norm(hidden_states) * (1 + scale) + shift`, shift and
  scale from `norm1.linear(silu(temb))` (the first block's modulated video input). For user
  calibrations (TeaCacheCalibrate) and `uncalibrated`.
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names

# the block forward's parameters, in order (the model passes them as keywords)
_ARGS = ("hidden_states", "encoder_hidden_states", "temb", "image_rotary_emb",
         "transformer_options")

_KINDS = {16: "t2v", 32: "i2v", 48: "inpaint"}
_KIND_NAMES = {"t2v": "T2V", "i2v": "I2V", "inpaint": "Fun inpaint", "other": ""}
# (hidden, blocks) of the published checkpoints
_SIZES = {(1920, 30): "2B", (3072, 42): "5B"}
# the exact architecture each preset was fitted on (ModelInfo.dims)
_AUTO = {
    "cogvideox_2B": {"hidden": 1920, "blocks": 30, "kind": "t2v", "version": "1.0",
                     "ofs": False},
    "cogvideox_5B": {"hidden": 3072, "blocks": 42, "kind": "t2v", "version": "1.0",
                     "ofs": False},
    "cogvideox_5B_i2v": {"hidden": 3072, "blocks": 42, "kind": "i2v", "version": "1.0",
                         "ofs": False},
    "cogvideox1.5_5B": {"hidden": 3072, "blocks": 42, "kind": "t2v", "version": "1.5",
                        "ofs": False},
    "cogvideox1.5_5B_i2v": {"hidden": 3072, "blocks": 42, "kind": "i2v", "version": "1.5",
                            "ofs": True},
}
# fine-tunes of the same base (CogVideoX-Fun inpaint, other input widths): auto stays
# uncalibrated, but the T2V/I2V presets of their size and version may be chosen by hand
_DERIVED = {"inpaint", "other"}


class CogVideoXAdapter(FamilyAdapter):
    family = "cogvideox"
    display = "CogVideoX (2B, 5B, 5B-I2V, 1.5-5B, 1.5-5B-I2V, Fun inpaint)"
    hook = "forward"
    indicators = ("timestep_embedding", "modulated_input")
    calibration_indicator = "timestep_embedding"
    calibration_keys = ("hidden", "blocks", "in_channels", "version", "ofs")

    def matches(self, dm) -> bool:
        return "CogVideoXTransformer3DModel" in class_names(dm) and hasattr(dm, "blocks")

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.blocks) == 0:
            return "it has no transformer blocks to cache."
        return None

    # ---- what the model is ---------------------------------------------------------------
    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "dim", 0))
        in_ch = int(getattr(dm, "in_channels", 0))
        n = len(dm.blocks)
        version = "1.5" if getattr(dm, "patch_size_t", None) else "1.0"
        ofs = getattr(dm, "ofs_embedding_linear_1", None) is not None
        kind = _KINDS.get(in_ch, "other")
        size = _SIZES.get((hidden, n))
        base = ("CogVideoX1.5" if version == "1.5" else "CogVideoX") + (f"-{size}" if size else "")
        label = _KIND_NAMES.get(kind) or f"{in_ch}-channel input"
        name = f"{base} {label}"
        desc = (f"{name} ({type(dm).__name__}, hidden {hidden}, {n} blocks, {in_ch} input "
                f"channels{', ofs' if ofs else ''})")
        dims = {"hidden": hidden, "blocks": n, "in_channels": in_ch, "version": version,
                "ofs": ofs}
        return ModelInfo(self.family, kind, dims, desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        for name, want in _AUTO.items():
            if all((info.kind if k == "kind" else info.dims.get(k)) == v
                   for k, v in want.items()):
                return PRESETS[name]
        return UNCALIBRATED

    def preset_kinds(self, info: ModelInfo) -> set:
        return {info.kind, "t2v", "i2v"} if info.kind in _DERIVED else {info.kind}

    def block_keys(self, dm) -> list:
        return [f"blocks.{i}" for i in range(len(dm.blocks))]

    # ---- block I/O: (hidden_states, encoder_hidden_states) -------------------------------
    def forward_args(self, key, a, kw) -> dict:
        out = dict(zip(_ARGS, a))
        out.update(kw)
        return out

    def block_input(self, key, args) -> torch.Tensor:
        return args["hidden_states"]

    def passthrough(self, key, args):
        return args["hidden_states"], args["encoder_hidden_states"]

    def block_output(self, key, args, out) -> torch.Tensor:
        return out[0]

    def with_output(self, key, args, out, t):
        return t, out[1]

    # ---- indicator -------------------------------------------------------------------------
    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        temb = args["temb"]
        if name == "timestep_embedding":
            return temb
        if name != "modulated_input":
            raise ValueError(f"CogVideoX has no indicator {name!r}; it offers "
                             f"{', '.join(self.indicators)}")
        norm1 = ctx.model.blocks[0].norm1
        shift, scale = norm1.linear(norm1.silu(temb)).chunk(6, dim=1)[:2]
        normed = norm1.norm(args["hidden_states"])        # a fresh tensor: modulated in place
        return normed.mul_(1 + scale[:, None, :].to(normed.dtype)).add_(
            shift[:, None, :].to(normed.dtype))


ADAPTER = CogVideoXAdapter()
