"""ComfyUI's own diffusion-model classes at real widths and token counts, with random weights
(speed and memory do not depend on the weights), wrapped the way ComfyUI's loader wraps a
detected model (supported_models config -> get_model -> ModelPatcher), for the memory and GPU
benchmarks. No file is written or read.

`cheap_blocks=True` (CPU memory benchmark only): each transformer block keeps ComfyUI's own
forward (modulation, norms, residual updates, all at the real hidden-state size) but its
attention and feed-forward sub-modules are replaced by a STAND-IN that returns x * 0.5, a new
tensor of the real size. A 2-core CPU cannot run real attention over 75,600 tokens; what
TeaCache adds is the same either way, since it depends only on the hidden state's size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

WAN_SIZES = {
    "wan2.1_1.3B": dict(dim=1536, ffn_dim=8960, num_layers=30),
    "wan2.1_14B": dict(dim=5120, ffn_dim=13824, num_layers=40),
}
# (frames, height, width) of the video -> Wan latent (T, H, W): 4x temporal, 8x spatial
RESOLUTIONS = {"480p": (81, 480, 832), "720p": (81, 720, 1280)}


def wan_latent(res: str, frames: int | None = None):
    f, h, w = RESOLUTIONS[res]
    f = f if frames is None else frames
    return torch.zeros(1, 16, (f - 1) // 4 + 1, h // 8, w // 8)


def wan_tokens(latent) -> int:
    _, _, t, h, w = latent.shape
    return t * (h // 2) * (w // 2)


class StandIn(torch.nn.Module):
    """Stand-in for a block's attention / feed-forward: a new tensor of x's size (x * 0.5)."""

    def forward(self, x, *args, **kwargs):
        return x * 0.5


def _init_random_(model: torch.nn.Module, seed: int):
    gens = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = gens.get(p.device)
            if g is None:
                g = gens[p.device] = torch.Generator(device=p.device).manual_seed(seed)
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1 or "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 1.0 / math.sqrt(max(p[0].numel(), 1)), generator=g)


def build_wan(size: str, *, device="cpu", dtype=torch.bfloat16, blocks: int | None = None,
              ffn_dim: int | None = None, cheap_blocks: bool = False, seed: int = 0):
    """A ModelPatcher around ComfyUI's WAN21 model (WanModel) of the given size."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    cfg = dict(WAN_SIZES[size])
    if blocks is not None:
        cfg["num_layers"] = blocks
    if ffn_dim is not None:
        cfg["ffn_dim"] = ffn_dim
    unet_config = {"image_model": "wan2.1", "model_type": "t2v", "dim": cfg["dim"],
                   "out_dim": 16, "in_dim": 16, "num_heads": cfg["dim"] // 128,
                   "ffn_dim": cfg["ffn_dim"], "num_layers": cfg["num_layers"],
                   "patch_size": (1, 2, 2), "freq_dim": 256, "window_size": (-1, -1),
                   "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6}
    config = comfy.supported_models.WAN21_T2V(unet_config)
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, "", device=torch.device(device))
    dm = model.diffusion_model
    if cheap_blocks:
        for b in dm.blocks:
            b.self_attn, b.cross_attn, b.ffn = StandIn(), StandIn(), StandIn()
    _init_random_(dm, seed)
    model.manual_cast_dtype = None           # compute in dtype, as on a GPU
    dev = torch.device(device)
    return comfy.model_patcher.ModelPatcher(model, load_device=dev,
                                            offload_device=mm.unet_offload_device())


def wan_conds(tokens: int = 64, seed: int = 0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(1, tokens, 4096, generator=g).to(dtype), {}]]
    neg = [[torch.randn(1, tokens, 4096, generator=g).to(dtype) * 0.1, {}]]
    return pos, neg


@dataclass
class Setting:
    name: str
    thresh: float | None                # None: no TeaCache
    model_type: str = "auto"
    skip_estimate: str = "reuse"
    cache_device: str = "model_device"
    max_skips: int = 0


FLUX_SIZES = {"flux1_dev": dict(hidden_size=3072, depth=19, depth_single_blocks=38)}


def build_flux(size: str = "flux1_dev", *, device="cpu", dtype=torch.bfloat16,
               hidden: int | None = None, depth: int | None = None, single: int | None = None,
               seed: int = 0):
    """A ModelPatcher around ComfyUI's Flux (FLUX.1 dev: guidance-embedded, T5 4096 / CLIP-L
    768 conditioning). The architecture is built on the meta device, ComfyUI's own detection
    reads its weight shapes, and the detected supported-model config builds the real model on
    `device`, as the loader does."""
    import comfy.ldm.flux.model as fm
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.ops
    cfg = dict(FLUX_SIZES[size])
    if hidden is not None:
        cfg["hidden_size"] = hidden
    if depth is not None:
        cfg["depth"] = depth
    if single is not None:
        cfg["depth_single_blocks"] = single
    kw = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
              mlp_ratio=4.0, axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True,
              guidance_embed=True, num_heads=cfg["hidden_size"] // 128, txt_ids_dims=[], **cfg)
    fields = fm.FluxParams.__dataclass_fields__
    with torch.device("meta"):
        meta = fm.Flux(operations=comfy.ops.disable_weight_init, dtype=dtype, device="meta",
                       **{k: v for k, v in kw.items() if k in fields})
    sd = {k: torch.empty(v.shape, device="meta") for k, v in meta.state_dict().items()}
    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    config = comfy.model_detection.model_config_from_unet_config(unet_config, sd)
    config.set_inference_dtype(dtype, None)
    model = config.get_model(sd, "", device=torch.device(device))
    _init_random_(model.diffusion_model, seed)
    model.manual_cast_dtype = None
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device(device),
                                            offload_device=mm.unet_offload_device())


def flux_conds(tokens: int = 256, seed: int = 0, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(1, tokens, 4096, generator=g).to(dtype),
            {"pooled_output": torch.randn(1, 768, generator=g).to(dtype), "guidance": 3.5}]]
    neg = [[torch.randn(1, tokens, 4096, generator=g).to(dtype) * 0.1,
            {"pooled_output": torch.randn(1, 768, generator=g).to(dtype), "guidance": 3.5}]]
    return pos, neg


def flux_tokens(latent) -> int:
    return (latent.shape[-2] // 2) * (latent.shape[-1] // 2)
