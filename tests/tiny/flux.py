"""Tiny real Flux-family models (comfy/ldm/flux: FLUX.1, Flux.2; comfy/ldm/chroma: Chroma,
Chroma Radiance), each ComfyUI's own class, built seeded, saved, and loaded through ComfyUI's
loader (its detection decides the class and sizes).

ComfyUI 0.3.75 fixes FLUX.1 at 24 heads of 128; 0.33 derives the heads from the width, so 128
wide loads as it is. Where detection hard-codes widths a tiny model cannot have (Chroma's
modulation approximator everywhere, the head count of FLUX.1 / Flux.2 on 0.3.75) the model is
loaded through ComfyUI's own loader with only those detected values overridden
(`detection_overrides`): class detection, supported-model config and weight loading stay
ComfyUI's.
"""
from __future__ import annotations

import contextlib

import torch
from safetensors.torch import save_file

import tiny_models as tm


def _init(m, seed):
    tm._init_(m, seed)
    with torch.no_grad():                    # 0.3.75 names RMSNorm weights "scale"
        for name, p in m.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith(".scale"):
                p.fill_(1.0)


def _kwargs(params_cls, **kw):
    """Constructor kwargs for this ComfyUI's params dataclass (fields differ by version)."""
    fields = params_cls.__dataclass_fields__
    kw.setdefault("txt_ids_dims", [])
    return {k: v for k, v in kw.items() if k in fields}


def flux_kwargs(hidden, flux2=False):
    import comfy.ldm.flux.model as fm
    if flux2:
        kw = dict(in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=64,
                  mlp_ratio=3.0, axes_dim=[32, 32, 32, 32], theta=2000, patch_size=1,
                  qkv_bias=False, guidance_embed=False, global_modulation=True,
                  mlp_silu_act=True, ops_bias=False, txt_ids_dims=[3])
    else:
        kw = dict(in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=64,
                  mlp_ratio=4.0, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
                  qkv_bias=True, guidance_embed=True)
    return _kwargs(fm.FluxParams, hidden_size=hidden, num_heads=hidden // 128, depth=1,
                   depth_single_blocks=1, **kw)


def detected(model):
    """What ComfyUI's detection makes of this model's state dict (shapes only)."""
    import comfy.model_detection
    sd = {k: torch.empty(v.shape, device="meta") for k, v in model.state_dict().items()}
    return comfy.model_detection.detect_unet_config(sd, "")


def heads_override(flux2=False):
    """{} where detection derives the heads from the width (0.33), else {"num_heads": 1} (0.3.75
    fixes 24 heads of 128 for FLUX.1, 48 for Flux.2) for a 128-wide model."""
    import comfy.ldm.flux.model as fm
    import comfy.ops
    meta = fm.Flux(operations=comfy.ops.disable_weight_init, device="meta",
                   **flux_kwargs(128, flux2))
    return {} if detected(meta)["num_heads"] == 1 else {"num_heads": 1}


def flux_width():
    """128 where detection derives the heads from the width (0.33), else 3072 (0.3.75)."""
    return 128 if not heads_override() else 3072


def _save(m, path):
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def build_flux(path, hidden, seed=0, flux2=False):
    import comfy.ldm.flux.model as fm
    import comfy.ops
    m = fm.Flux(operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu",
                **flux_kwargs(hidden, flux2))
    _init(m, seed)
    return _save(m, path)


# Detection gives Chroma the full-size modulation approximator (5120 wide, 5 layers, out 3072 =
# the blocks' width) whatever the weights say, and 0.3.75 also 24 heads: ~0.6B parameters and
# an approximator run over 344 rows per sample each step, too slow on a CPU. The tiny Chroma is
# loaded through ComfyUI's own loader (class detection, supported-model config, weights) with
# only those fixed widths overridden (see detection_overrides).
CHROMA_OVERRIDES = {"out_dim": 128, "hidden_dim": 64, "n_layers": 1, "num_heads": 1}


def build_chroma(path, seed=0, radiance=False):
    import comfy.ops
    kw = dict(in_channels=64, out_channels=64, context_in_dim=64, hidden_size=128,
              mlp_ratio=4.0, num_heads=1, depth=1, depth_single_blocks=1,
              axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, in_dim=64,
              out_dim=128, hidden_dim=64, n_layers=1, vec_in_dim=None)
    if radiance:
        import comfy.ldm.chroma_radiance.model as cm
        kw.update(in_channels=3, out_channels=3, patch_size=16, nerf_hidden_size=64,
                  nerf_mlp_ratio=4, nerf_depth=4, nerf_max_freqs=8, nerf_tile_size=512,
                  nerf_final_head_type="linear", nerf_embedder_dtype=torch.float32,
                  use_x0=False, use_sequential_txt_ids=False)
        m = cm.ChromaRadiance(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                              device="cpu", **_kwargs(cm.ChromaRadianceParams, **kw))
    else:
        import comfy.ldm.chroma.model as cm
        m = cm.Chroma(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                      device="cpu", **_kwargs(cm.ChromaParams, **kw))
    _init(m, seed)
    return _save(m, path)


def load_chroma(path):
    with detection_overrides(**CHROMA_OVERRIDES):
        return tm.load(path)


@contextlib.contextmanager
def detection_overrides(**over):
    """Only where detection fixes widths a tiny model cannot have: load through ComfyUI's loader
    with those detected values overridden."""
    import comfy.model_detection as md
    orig = md.detect_unet_config

    def detect(*a, **k):
        cfg = orig(*a, **k)
        if cfg is not None:
            cfg.update(over)
        return cfg

    md.detect_unet_config = detect
    try:
        yield
    finally:
        md.detect_unet_config = orig


def conds(ctx_dim=64, tokens=2, pooled=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    extra_p = {"pooled_output": torch.randn(1, pooled, generator=g) if pooled else None}
    extra_n = {"pooled_output": torch.randn(1, pooled, generator=g) if pooled else None}
    pos = torch.randn(1, tokens, ctx_dim, generator=g)
    neg = torch.randn(1, tokens, ctx_dim, generator=g) * 0.1
    return [[pos, extra_p]], [[neg, extra_n]]


def counted(dm):
    return list(dm.double_blocks) + list(dm.single_blocks)


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build_flux1(model_dir):
    """FLUX.1 dev, 128 wide (1 double + 1 single block) on every ComfyUI: on 0.3.75, which fixes
    24 heads, loaded with the head count overridden (a 3072-wide one is ~0.5B parameters)."""
    path = build_flux(model_dir / "family_flux1.safetensors", 128, seed=1)
    with detection_overrides(**heads_override()):
        return tm.load(path)


def inputs_flux1():
    pos, neg = conds()
    return {"samples": torch.zeros(1, 16, 4, 4)}, pos, neg       # 4 image tokens (patch 2)


def build_chroma_model(model_dir):
    return load_chroma(build_chroma(model_dir / "family_chroma.safetensors", seed=3))


def inputs_chroma():
    pos, neg = conds(pooled=0)
    return {"samples": torch.zeros(1, 16, 8, 8)}, pos, neg
