"""Tiny real HunyuanVideo-family models (ComfyUI's own comfy.ldm.hunyuan_video.model.HunyuanVideo),
built seeded, saved with safetensors and loaded through ComfyUI's loader so its detection picks
the variant (HunyuanVideo 1.0 T2V / I2V / SkyReels I2V, HunyuanVideo 1.5 and its SR model,
HunyuanImage 2.1 and its refiner).

Detection fixes num_heads = hidden // 128 and the rope axes (sum 128), so hidden 128 with one
head is the smallest width that loads; the text refiner always has 2 blocks.
"""
from __future__ import annotations

import dataclasses

import torch
from safetensors.torch import save_file

from tiny_models import _init_, load

TXT_DIM = 64          # text encoder width (detected from txt_in.input_embedder)
VEC_DIM = 768         # HunyuanVideo 1.0 pooled CLIP width (fixed by detection)
VISION_DIM = 1152     # HunyuanVideo 1.5 SigLIP width (selects the 1.5 config)

# variant -> (in_channels, out_channels, patch_size, vec_in_dim, extra params)
VARIANTS = {
    "t2v": (16, 16, [1, 2, 2], VEC_DIM, dict(guidance_embed=True)),
    "i2v": (33, 16, [1, 2, 2], VEC_DIM, dict(guidance_embed=True)),         # concat / token-replace
    "skyreels_i2v": (32, 16, [1, 2, 2], VEC_DIM, dict(guidance_embed=True)),
    "v15": (65, 32, [1, 1, 1], None, dict(vision_in_dim=VISION_DIM, use_cond_type_embedding=True)),
    "v15_distilled": (65, 32, [1, 1, 1], None, dict(vision_in_dim=VISION_DIM,
                                                     use_cond_type_embedding=True, meanflow=True)),
    "v15_sr": (98, 32, [1, 1, 1], None, dict(vision_in_dim=VISION_DIM,
                                              use_cond_type_embedding=True)),
    "image21": (64, 64, [1, 1], None, dict(guidance_embed=True)),
    "image21_refiner": (128, 64, [1, 1, 1], None, dict(meanflow=True)),
}


def build_hunyuan(path, variant="t2v", *, hidden=128, depth=2, single=2, seed=0,
                  dtype=torch.float32, device="cpu", byt5=False, save=True):
    """Build (and by default save) a tiny HunyuanVideo-family model; returns the path, or the
    module when save=False (e.g. on the meta device, to describe a full-size model)."""
    import comfy.ldm.hunyuan_video.model as hv
    import comfy.ops
    in_ch, out_ch, patch, vec_in, extra = VARIANTS[variant]
    params = dict(in_channels=in_ch, out_channels=out_ch, vec_in_dim=vec_in,
                  context_in_dim=TXT_DIM, hidden_size=hidden, mlp_ratio=4.0,
                  num_heads=hidden // 128, depth=depth, depth_single_blocks=single,
                  axes_dim=[64, 64] if len(patch) == 2 else [16, 56, 56], theta=256,
                  patch_size=patch, qkv_bias=True, guidance_embed=False, byt5=byt5,
                  meanflow=False, use_cond_type_embedding=False, vision_in_dim=None)
    params.update(extra)
    fields = {f.name for f in dataclasses.fields(hv.HunyuanVideoParams)}
    if "meanflow_sum" in fields:          # newer ComfyUI: detection sets it from vision_in
        params["meanflow_sum"] = params["vision_in_dim"] is not None
    params = {k: v for k, v in params.items() if k in fields}
    m = hv.HunyuanVideo(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                        device=device, **params)
    if not save:
        return m
    _init_(m, seed)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(path))
    return path


def conds(variant="t2v", seed=0, tokens=6, batch=1, **extra):
    """Positive/negative conditioning for the variant (what its text encoders would give)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, tokens, TXT_DIM, generator=g)
    neg = torch.randn(batch, tokens, TXT_DIM, generator=g) * 0.1
    kp, kn = dict(extra), dict(extra)
    if VARIANTS[variant][3] is not None:
        kp["pooled_output"] = torch.randn(batch, VEC_DIM, generator=g)
        kn["pooled_output"] = torch.randn(batch, VEC_DIM, generator=g) * 0.1
    elif variant.startswith("v15"):
        kp["pooled_output"] = kn["pooled_output"] = None      # HunyuanVideo15.encode_adm reads it
    return [[pos, kp]], [[neg, kn]]


def latent(variant="t2v", frames=2, h=8, w=8, batch=1):
    ch = {"v15": 32, "v15_distilled": 32, "v15_sr": 32, "image21": 64,
          "image21_refiner": 64}.get(variant, 16)
    if variant == "image21":
        return torch.zeros(batch, ch, h, w)
    return torch.zeros(batch, ch, frames, h, w)


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build_t2v(model_dir):
    return load(build_hunyuan(model_dir / "family_hv_t2v.safetensors", "t2v", depth=2, single=2,
                              seed=1))


def inputs_t2v():
    pos, neg = conds("t2v")
    return {"samples": latent("t2v")}, pos, neg


def build_v15(model_dir):
    return load(build_hunyuan(model_dir / "family_hv_v15.safetensors", "v15", depth=2, single=0,
                              seed=5))


def inputs_v15():
    pos, neg = conds("v15")
    return {"samples": latent("v15")}, pos, neg


def counted(dm):
    return list(dm.double_blocks) + list(dm.single_blocks)
