"""Tiny real LTX-Video models (comfy/ldm/lightricks: LTXVModel, and LTX-2's LTXAVModel on the
newest ComfyUI), saved with safetensors and loaded through ComfyUI's loader (its detection
reads the checkpoint's config metadata for LTXAV's extra sizes)."""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

import tiny_models as tm

BLOCKS = 3


def build_ltxv(path, *, num_layers=BLOCKS, head_dim=4, seed=0, av=False, config=None):
    """A tiny LTXVModel (or LTXAVModel): 32 heads of `head_dim` (detection assumes 32 heads),
    T5-width captions. LTXAV's extra sizes (and `config`, extra LTXVModel arguments) go in the
    checkpoint's config metadata, which ComfyUI's detection reads."""
    import comfy.ops
    kw = dict(attention_head_dim=head_dim, num_attention_heads=32,
              cross_attention_dim=32 * head_dim, num_layers=num_layers,
              operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")
    metadata = None
    if av:
        import comfy.ldm.lightricks.av_model as av_model
        cfg = dict(in_channels=128, audio_in_channels=128, num_attention_heads=32,
                   attention_head_dim=head_dim, cross_attention_dim=32 * head_dim,
                   audio_num_attention_heads=8, audio_attention_head_dim=8,
                   audio_cross_attention_dim=64, caption_channels=32, num_layers=num_layers,
                   connector_attention_head_dim=8, connector_num_attention_heads=4,
                   connector_num_layers=1)
        kw.update(cfg)
        m = av_model.LTXAVModel(**kw)
        metadata = {"config": json.dumps({"transformer": cfg})}
    else:
        import comfy.ldm.lightricks.model as ltx
        m = ltx.LTXVModel(caption_channels=4096, **kw, **(config or {}))
        if config:
            metadata = {"config": json.dumps({"transformer": config})}
    tm._init_(m, seed)
    sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(path), metadata=metadata)
    return path


def conds(width=4096, tokens=8, seed=0):
    """T5 states (4096 wide; LTXAV's tiny connector takes 64) with their attention mask."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(1, tokens, dtype=torch.long)
    pos = [[torch.randn(1, tokens, width, generator=g), {"attention_mask": mask}]]
    neg = [[torch.randn(1, tokens, width, generator=g) * 0.1, {"attention_mask": mask}]]
    return pos, neg


def av_latent():
    """LTXAV's latent: a NestedTensor of video (128 ch) and audio (8 ch x 6 frames x 16)."""
    import comfy.nested_tensor
    return comfy.nested_tensor.NestedTensor((torch.zeros(1, 128, 2, 4, 4),
                                             torch.zeros(1, 8, 6, 16)))


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build(model_dir):
    return tm.load(build_ltxv(model_dir / "family_ltxv.safetensors", seed=1))


def inputs():
    pos, neg = conds()
    return {"samples": torch.zeros(1, 128, 2, 4, 4)}, pos, neg


def build_av(model_dir):
    return tm.load(build_ltxv(model_dir / "family_ltxav.safetensors", seed=3, av=True))


def inputs_av():
    pos, neg = conds(width=64)
    return {"samples": av_latent()}, pos, neg


def counted(dm):
    return list(dm.transformer_blocks)
