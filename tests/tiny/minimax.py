"""Tiny MiniMax H3 (comfy/ldm/minimax, newest ComfyUI only) for the shared harness.

ComfyUI's own `MiniMaxH3Model` (hidden 128, 2 heads of 64, 3 blocks, 1 token-refiner block,
text 64 wide), loaded through ComfyUI's loader (detection: MiniMaxH3). Its rope `inv_freq` is a
saved buffer (not a parameter): filled here. The latent is what ComfyUI's
EmptyMiniMaxH3LatentAV makes, a NestedTensor of video [1, 24, T, H/16, W/16] and stereo audio
[1, 32, 2, T40] (5 frames: 2 video latent frames, 8 audio frames); packed sequence 8 text (6
for the negative) + 16 audio + 8 video rows.
"""
from __future__ import annotations

import torch
from safetensors.torch import save_file

import tiny_models as tm

TEXT_DIM = 64


def build(model_dir, seed=0):
    path = model_dir / f"family_minimax_h3_{seed}.safetensors"
    if not path.exists():            # once per session: the harness reloads it for every check
        save(path, seed)
    return tm.load(path)


def save(path, seed=0):
    import comfy.ldm.minimax.model as mm
    import comfy.ops
    m = mm.MiniMaxH3Model(hidden_size=128, num_layers=3, token_refiner_num_layers=1,
                          num_attention_heads=2, attention_head_dim=64, ffn_hidden_size=256,
                          text_dim=TEXT_DIM, timestep_input_dim=64, time_embed_hidden_size=128,
                          time_embed_dim=64, rope_inv_freq_len=8,
                          operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                          device="cpu")
    tm._init_(m, seed)
    with torch.no_grad():
        n = m.rope.inv_freq.shape[0]
        m.rope.inv_freq.copy_(1.0 / 10000 ** (torch.arange(n, dtype=torch.float32) / n))
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))


def conds(seed=0):
    """Cond and uncond of different text lengths, as real prompts have."""
    g = torch.Generator().manual_seed(seed)
    pos = [[torch.randn(1, 8, TEXT_DIM, generator=g), {}]]
    neg = [[torch.randn(1, 6, TEXT_DIM, generator=g) * 0.1, {}]]
    return pos, neg


def latent():
    import comfy.nested_tensor
    video = torch.zeros(1, 24, 2, 4, 4)
    audio = torch.zeros(1, 32, 2, 8)
    return {"samples": comfy.nested_tensor.NestedTensor((video, audio))}


def inputs():
    pos, neg = conds()
    return latent(), pos, neg
