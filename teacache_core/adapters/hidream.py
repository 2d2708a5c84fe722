"""HiDream-I1 / E1 (comfy/ldm/hidream): HiDreamImageTransformer2DModel.

No per-block patches_replace hooks: the "forward" hook style gates every `HiDreamImageBlock`,
`double_stream_blocks.<i>` then `single_stream_blocks.<j>`, always called with keywords
(image_tokens, image_tokens_masks, text_tokens, adaln_input, rope, transformer_options).
- A double-stream block takes image tokens and text tokens apart and returns the tuple
  (image_tokens, text_tokens).
- A single-stream block takes one sequence, image tokens first, then the text tokens, and
  returns it; the model keeps only the image tokens after the last block.
The residual is taken over the image tokens (as official TeaCache4HiDream-I1 does): the first
block's image input against the image part of the last block's output. The number of image
tokens is read at the first block of each model call (a context variable: per thread, per call).

Indicators:
- timestep_embedding: `t_embedder(t)`, what the published HiDream-I1 coefficients use;
- modulated_input (uncalibrated): double block 0's `norm1_i(img) * (1 + scale_msa_i) +
  shift_msa_i`, from its own `adaLN_modulation(adaln_input)`.
`auto` is uncalibrated: HiDream-I1 Full, Dev and Fast share one architecture and their weights
say nothing about which one is loaded; pick hidream_i1_full/dev/fast by hand.
"""
from __future__ import annotations

import contextvars

import torch

from ..coefficients import UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names

_ARGS = ("img", "masks", "txt", "adaln_input", "rope", "transformer_options")
_KW = {"image_tokens": "img", "image_tokens_masks": "masks", "text_tokens": "txt"}
_FIRST = "double_stream_blocks.0"
# image tokens of the current model call, set at the first block (see the module docstring)
_IMG_TOKENS: contextvars.ContextVar = contextvars.ContextVar("teacache_hidream_img_tokens",
                                                             default=None)


def _single(key) -> bool:
    return key.startswith("single_stream_blocks.")


class HiDreamAdapter(FamilyAdapter):
    family = "hidream"
    display = "HiDream-I1 (Full, Dev, Fast), HiDream-E1"
    hook = "forward"
    indicators = ("timestep_embedding", "modulated_input")
    calibration_indicator = "timestep_embedding"      # what the published presets measure

    def matches(self, dm) -> bool:
        return "HiDreamImageTransformer2DModel" in class_names(dm) and \
            hasattr(dm, "double_stream_blocks") and hasattr(dm, "single_stream_blocks")

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.double_stream_blocks) == 0:
            return ("it has no double-stream blocks, so its image tokens cannot be told apart "
                    "from its text tokens for the cached residual.")
        return None

    def forward_args(self, key, a, kw) -> dict:
        args = dict(zip(_ARGS, a))
        for k, v in kw.items():
            args[_KW.get(k, k)] = v
        if key == _FIRST:
            _IMG_TOKENS.set(args["img"].shape[1])
        args["n_img"] = _IMG_TOKENS.get()
        return args

    def block_input(self, key, args) -> torch.Tensor:
        return args["img"] if not _single(key) else args["img"][:, :args["n_img"]]

    def passthrough(self, key, args):
        return args["img"] if _single(key) else (args["img"], args["txt"])

    def block_output(self, key, args, out) -> torch.Tensor:
        return out[:, :args["n_img"]] if _single(key) else out[0]

    def with_output(self, key, args, out, t):
        if _single(key):
            return torch.cat((t, out[:, args["n_img"]:]), dim=1)
        return (t, out[1])

    def describe(self, dm) -> ModelInfo:
        hidden = int(getattr(dm, "inner_dim", 0))
        nd, ns = len(dm.double_stream_blocks), len(dm.single_stream_blocks)
        size = "17B" if hidden == 2560 and (nd, ns) == (16, 32) else f"hidden {hidden}"
        desc = (f"HiDream-I1 {size} ({type(dm).__name__}, hidden {hidden}, {nd} double + {ns} "
                f"single blocks; Full/Dev/Fast look alike)")
        return ModelInfo(self.family, "i1", {"hidden": hidden, "double_blocks": nd,
                                             "single_blocks": ns}, desc)

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        return UNCALIBRATED

    def block_keys(self, dm) -> list:
        return [f"double_stream_blocks.{i}" for i in range(len(dm.double_stream_blocks))] + \
               [f"single_stream_blocks.{i}" for i in range(len(dm.single_stream_blocks))]

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        dm = ctx.model
        img = args["img"]
        if name == "timestep_embedding":
            t = ctx.timestep
            if not torch.is_tensor(t) or t.ndim != 1 or t.shape[0] != img.shape[0]:
                t = dm.expand_timesteps(t, img.shape[0], img.device)
            emb = dm.t_embedder(t, args["adaln_input"].dtype)
            return emb.reshape(img.shape[0], -1)
        if name == "modulated_input":
            block = dm.double_stream_blocks[0].block
            mod = block.adaLN_modulation(args["adaln_input"])[:, None]
            shift, scale = mod.chunk(12, dim=-1)[:2]
            return block.norm1_i(img).to(img.dtype) * (1 + scale) + shift
        raise ValueError(f"HiDream has no indicator {name!r}")


ADAPTER = HiDreamAdapter()
