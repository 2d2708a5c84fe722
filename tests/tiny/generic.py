"""Tiny models of the diffusion transformers the generic path serves (no family file)."""
from __future__ import annotations

import torch

import tiny_models as tm


def _g(seed):
    return torch.Generator().manual_seed(seed)


def build_sd3(model_dir):
    return tm.load(tm.build_sd3(model_dir / "family_sd3.safetensors", seed=3))


def sd3_inputs():
    g = _g(0)
    pos = [[torch.randn(1, 8, 4096, generator=g), {"pooled_output": torch.randn(1, 2048, generator=g)}]]
    neg = [[torch.randn(1, 8, 4096, generator=g) * 0.1,
            {"pooled_output": torch.randn(1, 2048, generator=g) * 0.1}]]
    return {"samples": torch.zeros(1, 16, 16, 16)}, pos, neg


# ---- shared helpers -------------------------------------------------------------------------
def _save(module, path, seed, extra=None):
    """Fill every parameter of a ComfyUI module (seeded) and save it with safetensors."""
    from safetensors.torch import save_file
    tm._init_(module, seed)
    _rotary_buffers(module)
    sd = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    sd.update(extra or {})
    save_file(sd, str(path))
    return path


def _rotary_buffers(module):
    """Stable Audio's RotaryEmbedding keeps inv_freq as a buffer that ComfyUI creates with
    torch.empty and loads from the weights (tm._init_ fills parameters only): the value the
    original computes, 1 / 10000^(2i/d)."""
    with torch.no_grad():
        for name, b in module.named_buffers():
            if name.endswith("rotary_pos_emb.inv_freq"):
                d = 2 * b.shape[0]
                b.copy_(1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d)))


def _ops():
    import comfy.ops
    return dict(operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")


def _load_shrunk(path, **tiny):
    """comfy.sd.load_diffusion_model with its detection, where the detection leaves a width (or
    a head count) at the full model's value: the detected config class gets the tiny values
    before it builds the model (what tests/test_mochi.py does by hand). Everything else, the
    config class included, is what ComfyUI's own loader and detection pick."""
    import comfy.model_detection as md
    detect = md.model_config_from_unet

    def shrunk(*a, **kw):
        cfg = detect(*a, **kw)
        if cfg is not None:
            cfg.unet_config.update(tiny)
        return cfg

    md.model_config_from_unet = shrunk
    try:
        return tm.load(path)
    finally:
        md.model_config_from_unet = detect


def _text(g, tokens, width, scale=1.0):
    return torch.randn(1, tokens, width, generator=g) * scale


# ---- AuraFlow (comfy/ldm/aura/mmdit.py, model_base AuraFlow) ---------------------------------
# Detection reads the block counts, max_seq and cond_seq_dim (2048: AuraFlow's config class
# requires it) but not the width: it always builds dim 3072 with 12 heads. Built 64 wide.
AURA_TINY = dict(dim=64, n_heads=2, global_conddim=64)


def build_auraflow(model_dir):
    import comfy.ldm.aura.mmdit as aura
    m = aura.MMDiT(in_channels=4, out_channels=4, patch_size=2, n_layers=4, n_double_layers=2,
                   cond_seq_dim=2048, max_seq=16 * 16, **AURA_TINY, **_ops())
    path = _save(m, model_dir / "family_auraflow.safetensors", seed=11)
    return _load_shrunk(path, **AURA_TINY)


def auraflow_inputs():
    g = _g(1)
    pos = [[_text(g, 8, 2048), {}]]
    neg = [[_text(g, 8, 2048, 0.1), {}]]
    return {"samples": torch.zeros(1, 4, 16, 16)}, pos, neg


def auraflow_counted(dm):
    return list(dm.double_layers) + list(dm.single_layers)


# ---- HunyuanDiT (comfy/ldm/hydit, model_base HunyuanDiT) -------------------------------------
# Detection reads the width and depth; the two text encoders' widths (CLIP 1024, mT5 2048) and
# lengths (77, 256) are fixed defaults of the class (its mT5 MLP alone is 25M parameters):
# built with 64-wide, 8-token texts. The depth is even: HunYuanDiT's long skips pop as many
# outputs as the first half pushed only then.
HYDIT_TINY = dict(text_states_dim=64, text_states_dim_t5=64, text_len=8, text_len_t5=8)


def build_hunyuan_dit(model_dir):
    import comfy.ldm.hydit.models as hydit
    m = hydit.HunYuanDiT(input_size=32, patch_size=2, in_channels=4, hidden_size=128, depth=4,
                         num_heads=16, **HYDIT_TINY, **_ops())
    path = _save(m, model_dir / "family_hunyuan_dit.safetensors", seed=12)
    return _load_shrunk(path, **HYDIT_TINY)


def hunyuan_dit_inputs():
    g = _g(2)

    def cond(scale, valid):
        mask = torch.zeros(1, 8)
        mask[:, :valid] = 1                  # padded prompts: the masked tokens are replaced
        return [[_text(g, 8, 64, scale),
                 {"attention_mask": mask, "conditioning_mt5xl": _text(g, 8, 64, scale),
                  "attention_mask_mt5xl": mask.clone()}]]
    return {"samples": torch.zeros(1, 4, 16, 16)}, cond(1.0, 6), cond(0.1, 3)


# ---- Lens (comfy/ldm/lens, newest ComfyUI) ---------------------------------------------------
# Everything is detected (heads from the width at head size 64): one 64-wide head, two text
# layers of 32 features (the text encoder hands their concatenation).
def build_lens(model_dir):
    import comfy.ldm.lens.model as lens
    m = lens.LensTransformer2DModel(patch_size=2, in_channels=128, out_channels=32,
                                    num_layers=3, attention_head_dim=64, num_attention_heads=1,
                                    enc_hidden_dim=32, multi_layer_encoder_feature=True,
                                    selected_layer_index=(0, 1), **_ops())
    return tm.load(_save(m, model_dir / "family_lens.safetensors", seed=13))


def lens_inputs():
    g = _g(3)
    mask = torch.ones(1, 8)
    mask[:, 6:] = 0
    pos = [[_text(g, 8, 64), {"attention_mask": mask}]]
    neg = [[_text(g, 8, 64, 0.1), {"attention_mask": torch.ones(1, 8)}]]
    return {"samples": torch.zeros(1, 128, 8, 8)}, pos, neg


# ---- JoyImage (comfy/ldm/joyimage, newest ComfyUI) -------------------------------------------
# Detected: width, heads (from the q-norm size), patch, depth; the RoPE split [16, 56, 56]
# fixes the head size at 128: one head.
def build_joyimage(model_dir):
    import comfy.ldm.joyimage.model as joy
    m = joy.JoyImageTransformer3DModel(patch_size=[1, 2, 2], in_channels=16, hidden_size=128,
                                       num_attention_heads=1, text_dim=4096, num_layers=3,
                                       rope_dim_list=[16, 56, 56], theta=10000, **_ops())
    return tm.load(_save(m, model_dir / "family_joyimage.safetensors", seed=14))


def joyimage_inputs():
    pos, neg = tm.wan_conds(seed=4)
    return {"samples": torch.zeros(1, 16, 1, 8, 8)}, pos, neg


# ---- Mage-Flow (comfy/ldm/mage_flow, newest ComfyUI; model_base MageFlow(QwenImage)) ---------
# Detection reads in_channels and the depth only: it always builds 24 heads of 128 (3072 wide).
# Built with one head (128 wide); the text width 2560 is what detection keys on.
MAGE_TINY = dict(num_attention_heads=1)


def build_mageflow(model_dir):
    import comfy.ldm.mage_flow.model as mage
    m = mage.MageFlowTransformer2DModel(in_channels=128, out_channels=128, num_layers=3,
                                        attention_head_dim=128, joint_attention_dim=2560,
                                        **MAGE_TINY, **_ops())
    path = _save(m, model_dir / "family_mageflow.safetensors", seed=15)
    return _load_shrunk(path, **MAGE_TINY)


def mageflow_inputs():
    g = _g(5)
    pos = [[_text(g, 8, 2560), {}]]
    neg = [[_text(g, 8, 2560, 0.1), {}]]
    return {"samples": torch.zeros(1, 128, 8, 8)}, pos, neg


# ---- Stable Audio 1 (comfy/ldm/audio/dit.py, model_base StableAudio1) ------------------------
# ComfyUI 0.3.75's detection reads nothing but the kind (the full 1536-wide, 24-layer config);
# the newest reads the width and depth but not the 24 heads. Built 64 wide with two heads of 32
# (its rotary embedding covers 32 features of a head). The text (768) and seconds embedders
# (768 each, hence the 1536 global width) are fixed by StableAudio1; the text is projected to
# the width (project_cond_tokens, detected), else the cross-attention would have 24 key/value
# heads of 32 for 2 query heads. The file carries the
# seconds conditioners next to the transformer, unprefixed, as the loader's config class takes
# them from there.
SA_TINY = dict(io_channels=64, embed_dim=64, depth=3, num_heads=2, cond_token_dim=768,
               project_cond_tokens=True, global_cond_dim=1536, project_global_cond=True,
               input_concat_dim=0, prepend_cond_dim=0, transformer_type="continuous_transformer",
               global_cond_type="prepend")


def build_stable_audio(model_dir):
    import comfy.ldm.audio.dit as dit
    import comfy.ldm.audio.embedders as emb
    m = dit.AudioDiffusionTransformer(audio_model="dit1.0", **SA_TINY, **_ops())
    extra = {}
    for i, name in enumerate(("seconds_start", "seconds_total")):
        c = emb.NumberConditioner(768, min_val=0, max_val=512)
        tm._init_(c, 20 + i)
        extra.update({f"conditioner.conditioners.{name}.{k}": v.detach().contiguous()
                      for k, v in c.state_dict().items()})
    path = _save(m, model_dir / "family_stable_audio.safetensors", seed=16, extra=extra)
    return _load_shrunk(path, **SA_TINY)


def stable_audio_inputs():
    g = _g(6)
    pos = [[_text(g, 8, 768), {"seconds_total": 2}]]
    neg = [[_text(g, 8, 768, 0.1), {"seconds_total": 2}]]
    return {"samples": torch.zeros(1, 64, 32)}, pos, neg


def stable_audio_counted(dm):
    return list(dm.transformer.layers)


# ---- Hunyuan3D 2.0 (comfy/ldm/hunyuan3d, model_base Hunyuan3Dv2) -----------------------------
# Everything but the 16 heads is detected: 128 wide (heads of 8), image-feature width 64.
# A depth other than 8 (8 double blocks is Hunyuan3D 2 mini).
def build_hunyuan3d2(model_dir):
    import comfy.ldm.hunyuan3d.model as h3d
    m = h3d.Hunyuan3Dv2(in_channels=64, context_in_dim=64, hidden_size=128, mlp_ratio=4.0,
                        num_heads=16, depth=2, depth_single_blocks=2, qkv_bias=True,
                        guidance_embed=False, **_ops())
    return tm.load(_save(m, model_dir / "family_hunyuan3d2.safetensors", seed=17))


def hunyuan3d2_inputs():
    g = _g(7)
    pos = [[_text(g, 16, 64), {}]]
    neg = [[torch.zeros(1, 16, 64), {}]]      # Hunyuan3Dv2Conditioning's negative: zeros
    return {"samples": torch.zeros(1, 64, 32), "type": "hunyuan3dv2"}, pos, neg


def hunyuan3d2_counted(dm):
    return list(dm.double_blocks) + list(dm.single_blocks)


# ---- Hunyuan3D 2.1 (comfy/ldm/hunyuan3dv2_1, model_base Hunyuan3Dv2_1) -----------------------
# Detected: width, depth; fixed: 16 heads, image features 1024 wide, the last 6 blocks MoE
# (so all 4 here). The depth is even (long skips, as HunyuanDiT).
def build_hunyuan3d21(model_dir):
    import comfy.ldm.hunyuan3dv2_1.hunyuandit as h21
    m = h21.HunYuanDiTPlain(in_channels=64, hidden_size=128, context_dim=1024, depth=4,
                            num_heads=16, qkv_bias=False, guidance_cond_proj_dim=None, **_ops())
    return tm.load(_save(m, model_dir / "family_hunyuan3d21.safetensors", seed=18))


def hunyuan3d21_inputs():
    g = _g(8)
    pos = [[_text(g, 16, 1024), {}]]
    neg = [[torch.zeros(1, 16, 1024), {}]]
    return {"samples": torch.zeros(1, 64, 32), "type": "hunyuan3dv2"}, pos, neg


# ---- Stable Audio 3 (newest ComfyUI; comfy/ldm/audio/dit.py, model_base StableAudio3) --------
# SA3's shape: adaLN global conditioning through one shared embedder, "expo" timestep features,
# and the local additive conditioning (StableAudio3.concat_cond: inpaint mask + masked latent,
# 1 + 256 channels, always given). Detected as SA1 is, the 24 heads not: built with two.
SA3_TINY = dict(num_heads=2)


def build_stable_audio3(model_dir):
    import comfy.ldm.audio.dit as dit
    import comfy.ldm.audio.embedders as emb
    m = dit.AudioDiffusionTransformer(
        audio_model="dit1.0", io_channels=256, embed_dim=64, depth=3, num_heads=2,
        cond_token_dim=768, project_cond_tokens=True, global_cond_dim=768,
        project_global_cond=True, input_concat_dim=0, prepend_cond_dim=0,
        transformer_type="continuous_transformer", global_cond_type="adaLN",
        timestep_features_type="expo", global_cond_shared_embed=True, local_add_cond_dim=257,
        **_ops())
    c = emb.NumberConditioner(768, min_val=0, max_val=384, fourier_features_type="expo")
    tm._init_(c, 30)
    extra = {f"conditioner.conditioners.seconds_total.{k}": v.detach().contiguous()
             for k, v in c.state_dict().items()}
    path = _save(m, model_dir / "family_stable_audio3.safetensors", seed=19, extra=extra)
    return _load_shrunk(path, **SA3_TINY)


def stable_audio3_inputs():
    g = _g(9)
    pos = [[_text(g, 8, 768), {"seconds_total": 2}]]
    neg = [[_text(g, 8, 768, 0.1), {"seconds_total": 2}]]
    return {"samples": torch.zeros(1, 256, 32)}, pos, neg
