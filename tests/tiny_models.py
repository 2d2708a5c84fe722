"""Tiny real ComfyUI models, built seeded from ComfyUI's own classes and saved with safetensors,
then loaded through ComfyUI's own loader (so its model detection runs)."""
from __future__ import annotations

import math

from pathlib import Path

import torch
from safetensors.torch import save_file


def _init_(module: torch.nn.Module, seed: int, std: float = 0.05):
    """comfy.ops.disable_weight_init leaves parameters uninitialised: fill every one, seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1 and ("norm" in name and name.endswith("weight")):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.01)
            elif "modulation" in name:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            else:
                fan_in = p.shape[1] if p.ndim > 1 else p.shape[0]
                for d in p.shape[2:]:
                    fan_in *= d
                p.copy_(torch.randn(p.shape, generator=g) * min(std, 1.0 / math.sqrt(fan_in)))


def build_wan(path, *, dim=128, num_layers=3, ffn_dim=256, in_dim=16, out_dim=16,
              model_type="t2v", seed=0, dtype=torch.float32, vace_layers=None, camera=False,
              flf=False):
    """Save a tiny Wan (ComfyUI's WanModel / VaceWanModel / CameraWanModel) and return the
    path. flf=True adds FLF2V's image position embedding (2 x 257 tokens)."""
    import comfy.ldm.wan.model as wan
    import comfy.ops
    kw = dict(model_type=model_type, patch_size=(1, 2, 2), text_len=512, in_dim=in_dim, dim=dim,
              ffn_dim=ffn_dim, freq_dim=256, text_dim=4096, out_dim=out_dim,
              num_heads=max(dim // 128, 1), num_layers=num_layers, window_size=(-1, -1),
              qk_norm=True, cross_attn_norm=True, eps=1e-6,
              operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")
    if flf:
        kw["flf_pos_embed_token_number"] = 514
    if vace_layers is not None:
        m = wan.VaceWanModel(vace_layers=vace_layers, vace_in_dim=96, **kw)
    elif camera:
        m = wan.CameraWanModel(**kw)
    else:
        m = wan.WanModel(**kw)
    _init_(m, seed)
    sd = {k: v.detach().to(dtype).contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(path))
    return path


def load(path, keep_file=True):
    """Load a model file through ComfyUI's loader. keep_file=False deletes the file once loaded
    (the loaded weights are in memory): the few tiny models that must have full-size widths to
    load as they are (FLUX.1 on 0.3.75, Qwen-Image, Lumina2: 0.8-2 GB) hold no disk after."""
    import comfy.sd
    try:
        return comfy.sd.load_diffusion_model(str(path))
    finally:
        if not keep_file:
            Path(path).unlink(missing_ok=True)


def wan_conds(seed=0, tokens=8, batch=1):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, tokens, 4096, generator=g)
    neg = torch.randn(batch, tokens, 4096, generator=g) * 0.1
    return [[pos, {}]], [[neg, {}]]


def count_blocks(model_patcher):
    """Count executions of every transformer block (forward pre-hooks on the test's model)."""
    dm = model_patcher.get_model_object("diffusion_model")
    counter = {"n": 0}

    def hook(_m, _a):
        counter["n"] += 1

    handles = [b.register_forward_pre_hook(hook) for b in dm.blocks]
    return counter, handles


def build_sd3(path, seed=0):
    """A tiny SD3 MMDiT (a DiT family TeaCache does not cover): hidden 128, 2 joint blocks."""
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
    import comfy.ops
    m = mmdit.OpenAISignatureMMDITWrapper(
        input_size=None, patch_size=2, in_channels=16, depth=2, adm_in_channels=2048,
        context_embedder_config={"target": "torch.nn.Linear",
                                 "params": {"in_features": 4096, "out_features": 128}},
        pos_embed_max_size=32, num_patches=32 * 32, pos_embed_scaling_factor=None,
        out_channels=16, operations=comfy.ops.disable_weight_init, dtype=torch.float32,
        device="cpu")
    _init_(m, seed)
    with torch.no_grad():       # a buffer the newest ComfyUI leaves uninitialised
        m.pos_embed.copy_(torch.randn(m.pos_embed.shape, generator=torch.Generator().manual_seed(seed)) * 0.02)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def build_cosmos_predict2(path, num_blocks=2, seed=0):
    """Kept for its callers: tiny/cosmos.py builds the tiny Cosmos Predict2."""
    from tiny.cosmos import build_cosmos_predict2 as build
    return build(path, num_blocks=num_blocks, seed=seed)
