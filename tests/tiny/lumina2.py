"""Tiny real Lumina 2 / Z-Image models (ComfyUI's NextDiT).

- Lumina Image 2.0: detection fixes the width (2304, 24 heads, RoPE 32+32+32), so the tiny model
  is 2304 wide with one main layer (first gate == last gate) and the two noise + two context
  refiners detection expects (~300M parameters, saved in bf16, run in fp32 as on any CPU);
  loaded with comfy.sd.load_diffusion_model (test_lumina2.py). The shared harness uses a
  256-wide one loaded through the detected config class (see `build_lumina2`).
- Z-Image: detection only knows the 3840-wide 6B. The tiny one (256 wide, 3 layers, Z-Image
  modulation, token padding) is loaded the way load_diffusion_model_state_dict does after
  detection, with ComfyUI's ZImage config class.

NextDiT has no per-block patches_replace hooks: TeaCache gates `layers.<i>`' forwards, so every
layer module is still called; count its attention, which runs once per executed layer.
"""
from __future__ import annotations

import math

import torch
from safetensors.torch import load_file, save_file

import tiny_models as tm

CAP_DIM = 32
LATENT = (1, 16, 4, 4)

LUMINA2 = dict(patch_size=2, in_channels=16, dim=2304, n_layers=1, n_refiner_layers=2, n_heads=24,
               n_kv_heads=8, multiple_of=256, ffn_dim_multiplier=4.0, norm_eps=1e-5, qk_norm=True,
               cap_feat_dim=CAP_DIM, axes_dims=[32, 32, 32], axes_lens=[300, 512, 512],
               rope_theta=10000.0)
ZIMAGE = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, n_layers=3,
              n_refiner_layers=1, n_heads=8, n_kv_heads=8, multiple_of=256,
              ffn_dim_multiplier=8.0 / 3.0, norm_eps=1e-5, qk_norm=True, cap_feat_dim=CAP_DIM,
              axes_dims=[8, 12, 12], axes_lens=[1536, 512, 512], rope_theta=256.0,
              z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32)


def conds(seed=0, tokens=4):
    g = torch.Generator().manual_seed(seed)
    return ([[torch.randn(1, tokens, CAP_DIM, generator=g), {}]],
            [[torch.randn(1, tokens, CAP_DIM, generator=g) * 0.1, {}]])


def fast_init_(module, seed, pool=1_000_003):
    """tiny_models._init_ for a ~300M model without drawing 300M random numbers: every weight
    is a window of one seeded pool (prime length, so rows and tensors do not repeat)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(pool, generator=g)
    start = 0
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
                continue
            fan_in = p.shape[1] if p.ndim > 1 else p.shape[0]
            std = 0.01 if name.endswith("bias") else min(0.05, 1.0 / math.sqrt(fan_in))
            n = p.numel()
            reps = (start + n) // pool + 1
            p.copy_(noise.repeat(reps)[start:start + n].view_as(p) * std)
            start = (start + n + 7919) % pool


def save(m, path, seed, dtype=torch.float32):
    (fast_init_ if dtype != torch.float32 else tm._init_)(m, seed)
    save_file({k: v.detach().to(dtype).contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def nextdit(**cfg):
    import comfy.ldm.lumina.model as lm
    import comfy.ops
    cfg = {k: v for k, v in cfg.items() if k != "image_model"}
    return lm.NextDiT(**cfg, operations=comfy.ops.disable_weight_init, device="cpu",
                      dtype=torch.float32)


def load_zimage(path):
    """load_diffusion_model_state_dict after detection, with ComfyUI's ZImage config class."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    sd = load_file(str(path))
    config = comfy.supported_models.ZImage(dict(ZIMAGE))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(sd, "")
    cls = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    patcher = cls(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())
    dyn = getattr(patcher, "is_dynamic", None)
    model.load_model_weights(sd, "", **({"assign": dyn()} if dyn is not None else {}))
    return patcher


def build_lumina2_file(path, seed=0):
    return save(nextdit(**LUMINA2), path, seed, torch.bfloat16)


def build_zimage_file(path, seed=1):
    return save(nextdit(**ZIMAGE), path, seed)


def counted(dm):
    return [layer.attention for layer in dm.layers]


# ---- the shared harness (tests/families.py) ------------------------------------------------
# Lumina Image 2.0's layout (adaLN with SiLU, 2 + 2 refiners, RoPE over 3 axes), 256 wide with
# one main layer like test_lumina2.py's (first gate == last gate; Z-Image has 3). Detection
# fixes heads and RoPE only for the 2304-wide 2.6B (whose refiners make test_lumina2.py's model
# ~300M parameters, ~2 s a step on one core), so this one is loaded through ComfyUI's detection
# (which must pick the Lumina2 config class) with those sizes set.
LUMINA2_SMALL = dict(LUMINA2, dim=256, n_layers=1, n_heads=8, n_kv_heads=8, axes_dims=[8, 12, 12])


def build_lumina2(model_dir):
    from tiny import dit_loader
    path = save(nextdit(**LUMINA2_SMALL), model_dir / "family_lumina2.safetensors", 0)
    return dit_loader.load_detected(path, "Lumina2", LUMINA2_SMALL)


def build_zimage(model_dir):
    return load_zimage(build_zimage_file(model_dir / "family_zimage.safetensors"))


def inputs():
    pos, neg = conds()
    return {"samples": torch.zeros(LATENT)}, pos, neg
