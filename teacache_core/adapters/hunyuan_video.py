"""HunyuanVideo family (comfy/ldm/hunyuan_video/model.py, class HunyuanVideo).

One nn.Module class serves HunyuanVideo 1.0 T2V, its I2V models (33-channel concat; the
token-replace "v2" checkpoint is the same architecture, fed a `guiding_frame_index`), SkyReels
I2V (32 channels), HunyuanVideo 1.5 (vision_in; its step-distilled checkpoints add time_r_in,
its SR model takes 98 channels) and HunyuanImage 2.1 (2-D patches; its refiner 3-D [1,1,1]
patches without vector_in).

Blocks: patches_replace["dit"] ("double_block", i) with args {"img", "txt", "vec", "pe",
"attention_mask", "modulation_dims_img", "modulation_dims_txt", "transformer_options"}, then
("single_block", i) with {"img" (= txt and img tokens concatenated), "vec", "pe",
"attention_mask", "modulation_dims", "transformer_options"}.

The concatenation order differs between ComfyUI versions: image tokens first up to 0.13 (e.g.
0.3.75), text first from 0.14 on, where `transformer_options["img_slice"] = [txt_len, total_len]`
marks the image tokens for the single blocks (e.g. 0.33). (Nightlies of 2026-02-13..16, commits
e1add563..18927538, had text first without img_slice; no release did.) The residual is taken
over the image tokens only, as the official TeaCache4HunyuanVideo does: the first block records
the image length in the call's own transformer_options (a fresh dict per model call, which
ComfyUI itself writes block_index into), and the last single block reads it back to cut the
image tokens out of the joint sequence (at img_slice when given, else at the start).

Indicator (official TeaCache4HunyuanVideo): the first double block's modulated image input
    apply_mod(img_norm1(img), 1 + img_mod1.scale, img_mod1.shift)
computed with double_blocks[0]'s own modules (and ComfyUI's apply_mod, which also handles the
per-token modulation of the token-replace I2V model).
"""
from __future__ import annotations

import torch

from ..coefficients import PRESETS, UNCALIBRATED
from .base import FamilyAdapter, ModelInfo, class_names, defining_module

#: key in the per-call transformer_options where the first block records the image length
_IMG_LEN = "teacache_img_tokens"

_KIND_NAMES = {
    "t2v": "HunyuanVideo 1.0 T2V",
    "i2v": "HunyuanVideo 1.0 I2V",
    "skyreels_i2v": "SkyReels V1 I2V (HunyuanVideo)",
    "v15": "HunyuanVideo 1.5",
    "v15_sr": "HunyuanVideo 1.5 SR (super-resolution)",
    "image21": "HunyuanImage 2.1",
    "image21_refiner": "HunyuanImage 2.1 refiner",
    "other": "HunyuanVideo-architecture model",
}
# HunyuanVideo 1.0 architecture, fine-tuned with more input channels: the T2V coefficients may
# be chosen by hand (auto stays uncalibrated: they were fitted on the T2V checkpoint only)
_T2V_DERIVED = {"i2v", "skyreels_i2v"}


def _param(dm, name, default=None):
    params = getattr(dm, "params", None)
    return getattr(params, name, getattr(dm, name, default))


class HunyuanVideoAdapter(FamilyAdapter):
    family = "hunyuan_video"
    display = ("HunyuanVideo 1.0 (T2V, I2V, SkyReels I2V), HunyuanVideo 1.5 (incl. distilled, "
               "SR), HunyuanImage 2.1 (incl. refiner)")

    def matches(self, dm) -> bool:
        return ("HunyuanVideo" in class_names(dm) and hasattr(dm, "double_blocks")
                and hasattr(dm, "single_blocks"))

    def unsupported_reason(self, dm) -> str | None:
        if len(dm.double_blocks) == 0:
            return "it has no double-stream blocks, where TeaCache reads its indicator."
        if not hasattr(dm.double_blocks[0], "img_mod"):
            return ("its first double block has no own modulation (img_mod), from which "
                    "TeaCache computes its indicator.")
        return None

    # ---- what the model is --------------------------------------------------------------
    def _kind(self, dm) -> str:
        in_ch = int(_param(dm, "in_channels", 0))
        patch = list(_param(dm, "patch_size", []) or [])
        vec_in = _param(dm, "vec_in_dim")
        if _param(dm, "vision_in_dim") is not None:            # HunyuanVideo 1.5
            return "v15_sr" if in_ch == 98 else "v15"
        if len(patch) == 2:
            return "image21"
        if vec_in is None:
            return "image21_refiner" if patch == [1, 1, 1] else "other"
        return {16: "t2v", 33: "i2v", 32: "skyreels_i2v"}.get(in_ch, "other")

    def describe(self, dm) -> ModelInfo:
        hidden = int(_param(dm, "hidden_size", 0))
        in_ch = int(_param(dm, "in_channels", 0))
        out_ch = int(_param(dm, "out_channels", 0))
        n_double, n_single = len(dm.double_blocks), len(dm.single_blocks)
        kind = self._kind(dm)
        meanflow = getattr(dm, "time_r_in", None) is not None
        name = _KIND_NAMES[kind]
        if kind in ("t2v", "i2v", "skyreels_i2v") and hidden == 3072:
            name += " 13B"
        if meanflow and kind in ("v15", "image21"):
            name += " meanflow-distilled"
        desc = (f"{name} ({type(dm).__name__}, hidden {hidden}, {n_double} double + "
                f"{n_single} single blocks, {in_ch} input channels)")
        return ModelInfo(self.family, kind,
                         {"hidden": hidden, "in_channels": in_ch, "out_channels": out_ch,
                          "double_blocks": n_double, "single_blocks": n_single,
                          "meanflow": meanflow}, desc)

    def preset_kinds(self, info: ModelInfo) -> set:
        return {info.kind, "t2v"} if info.kind in _T2V_DERIVED else {info.kind}

    def auto_preset(self, info: ModelInfo, latent_shape=None):
        if info.kind == "t2v" and info.dims.get("hidden") == 3072:
            return PRESETS["hunyuan_video"]
        return UNCALIBRATED

    def block_keys(self, dm) -> list:
        return ([("double_block", i) for i in range(len(dm.double_blocks))]
                + [("single_block", i) for i in range(len(dm.single_blocks))])

    # ---- block I/O --------------------------------------------------------------------
    def block_input(self, key, args) -> torch.Tensor:
        img = args["img"]
        to = args.get("transformer_options")
        if isinstance(to, dict):        # this call's own dict: read back by the last block
            to[_IMG_LEN] = img.shape[1]
        return img

    def passthrough(self, key, args):
        if key[0] == "double_block":
            return {"img": args["img"], "txt": args["txt"]}
        return {"img": args["img"]}

    @staticmethod
    def _img_span(args, total: int, img_len: int | None = None) -> tuple[int, int]:
        """(start, end) of the image tokens in a single block's joint sequence."""
        to = args.get("transformer_options") or {}
        if img_len is None:
            img_len = to.get(_IMG_LEN)
        sl = to.get("img_slice")
        if sl is not None:                           # ComfyUI >= 0.14: [txt_len, total]
            start = int(sl[0])
            return start, start + (img_len if img_len is not None else int(sl[1]) - start)
        if img_len is None:
            raise RuntimeError("TeaCache: the image length of this HunyuanVideo call is unknown "
                               "(the first block did not run through TeaCache's gate).")
        return 0, img_len                            # ComfyUI <= 0.13: image tokens first

    def block_output(self, key, args, out) -> torch.Tensor:
        seq = out["img"]
        if key[0] == "double_block":
            return seq
        start, end = self._img_span(args, seq.shape[1])
        return seq[:, start:end]

    def with_output(self, key, args, out, t):
        seq = out["img"]
        if key[0] == "double_block":
            return {**out, "img": t}
        start, end = self._img_span(args, seq.shape[1], t.shape[1])
        span = seq[:, start:end]
        if span.shape == t.shape:
            # in place into the joint sequence (a block output or the passed-through input):
            # no second sequence-sized tensor
            if span.data_ptr() != t.data_ptr():
                span.copy_(t)
            return {**out, "img": seq}
        return {**out, "img": torch.cat((seq[:, :start], t.to(seq.dtype), seq[:, end:]), dim=1)}

    # ---- indicator ----------------------------------------------------------------------
    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "modulated_input":
            raise ValueError(f"HunyuanVideo has no indicator {name!r}")
        block = ctx.model.double_blocks[0]
        mod1 = block.img_mod(args["vec"])[0]
        apply_mod = getattr(defining_module(block, "DoubleStreamBlock"), "apply_mod", None)
        normed = block.img_norm1(args["img"])
        dims = args.get("modulation_dims_img")
        if apply_mod is not None:
            return apply_mod(normed, 1 + mod1.scale, mod1.shift, dims)
        if dims is not None:
            raise RuntimeError("per-token modulation needs comfy.ldm.flux.layers.apply_mod")
        return torch.addcmul(mod1.shift, normed, 1 + mod1.scale)


ADAPTER = HunyuanVideoAdapter()
