"""Tiny CogVideoX models for the shared harness and tests/test_cogvideo.py (newest ComfyUI only).

Built with ComfyUI's own CogVideoXTransformer3DModel, every parameter initialised (seeded), saved
with safetensors and loaded back with comfy.sd.load_diffusion_model, so ComfyUI's detection
runs: it reads hidden = norm1 rows / 6 with 64-wide heads (hidden 128 = 2 heads), the time
embedding width, the block count, 1.0 (Conv2d patches) vs 1.5 (Linear 2x2x2 patches), the
input channels (16 = CogVideoX_T2V, 32 = CogVideoX_I2V, 48 = CogVideoX_Inpaint) and `ofs`.
No `patch_embed.pos_embedding` in the state dict: detection then uses rotary embeddings (as the
5B models do).
"""
from __future__ import annotations

import torch
from safetensors.torch import save_file

import tiny_models as tm

HIDDEN = 128            # detection: heads = hidden // 64, head dim 64 (what the 3-D RoPE needs)
TIME_DIM = 64           # = the ofs embedding width on 1.5-I2V (both are added)
TEXT_DIM = 4096         # T5-XXL, as ComfyUI's CogVideoX text encoder gives
LATENT_1_0 = (1, 16, 3, 8, 8)
LATENT_1_5 = (1, 16, 3, 8, 8)       # 3 frames: padded to 4 by the 2-frame temporal patches


def _build(path, *, in_channels=16, num_layers=3, patch_size_t=None, ofs=False, seed=0):
    import comfy.ldm.cogvideo.model as cog
    import comfy.ops
    m = cog.CogVideoXTransformer3DModel(
        num_attention_heads=HIDDEN // 64, attention_head_dim=64, in_channels=in_channels,
        out_channels=16, time_embed_dim=TIME_DIM, ofs_embed_dim=TIME_DIM if ofs else None,
        text_embed_dim=TEXT_DIM, num_layers=num_layers, patch_size=2, patch_size_t=patch_size_t,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
        operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")
    tm._init_(m, seed)
    sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    assert not any("pos_embedding" in k for k in sd)
    save_file(sd, str(path))
    return path


def build_t2v(model_dir, num_layers=3, seed=0):
    """CogVideoX 1.0-style T2V (Conv2d 2x2 patches, 16 channels): CogVideoX_T2V."""
    return tm.load(_build(model_dir / f"cogvideox_t2v_{num_layers}_{seed}.safetensors",
                          num_layers=num_layers, seed=seed))


def build_i2v_15(model_dir, num_layers=3, seed=1):
    """CogVideoX 1.5-style I2V (Linear 2x2x2 patches, 32 channels, ofs): CogVideoX_I2V."""
    return tm.load(_build(model_dir / f"cogvideox15_i2v_{num_layers}_{seed}.safetensors",
                          in_channels=32, patch_size_t=2, ofs=True, num_layers=num_layers,
                          seed=seed))


def build_inpaint(model_dir, num_layers=2, seed=2):
    """CogVideoX-Fun-style inpaint (48 channels): CogVideoX_Inpaint (no published preset)."""
    return tm.load(_build(model_dir / f"cogvideox_inpaint_{num_layers}_{seed}.safetensors",
                          in_channels=48, num_layers=num_layers, seed=seed))


def conds(seed=0, tokens=8, extra=None):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(1, tokens, TEXT_DIM, generator=g)
    neg = torch.randn(1, tokens, TEXT_DIM, generator=g) * 0.1
    return [[pos, dict(extra or {})]], [[neg, dict(extra or {})]]


def inputs_t2v():
    pos, neg = conds()
    return {"samples": torch.zeros(LATENT_1_0)}, pos, neg


def inputs_i2v():
    """The image latent goes in through the conds (concat_latent_image, as ComfyUI's I2V
    conditioning nodes put it); the model concatenates it to the noise (32 channels)."""
    g = torch.Generator().manual_seed(5)
    image = torch.randn(1, 16, 1, 8, 8, generator=g)
    pos, neg = conds(extra={"concat_latent_image": image})
    return {"samples": torch.zeros(LATENT_1_5)}, pos, neg


def counted(dm):
    """With forward hooks the block module itself is always called (its forward is the gate):
    count a submodule that runs once per executed block, and that no indicator touches."""
    return [b.attn_out for b in dm.blocks]
