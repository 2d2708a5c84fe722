"""A tiny real Mochi (comfy/ldm/genmo AsymmDiTJoint).

ComfyUI's detection always builds the full 10B config for a Mochi state dict, so the tiny model
is loaded the way comfy.sd.load_diffusion_model_state_dict continues after detection: the
supported_models config class (GenmoMochi) with the tiny sizes, get_model, a ModelPatcher,
load_model_weights."""
from __future__ import annotations

import torch
from safetensors.torch import save_file

import tiny_models as tm

BLOCKS = 3
T5_WIDTH = 64

# Mochi's detected config with tiny sizes. The block asserts hidden_size_x * mlp_ratio_x ==
# 1536 * 8, hence the large mlp_ratio_x.
TINY = dict(image_model="mochi_preview", depth=BLOCKS, patch_size=2, num_heads=2,
            hidden_size_x=64, hidden_size_y=32, mlp_ratio_x=12288 / 64, mlp_ratio_y=4.0,
            learn_sigma=False, in_channels=12, qk_norm=True, qkv_bias=False, out_bias=True,
            attn_drop=0.0, patch_embed_bias=True, posenc_preserve_area=True,
            timestep_mlp_bias=True, attend_to_padding=False, timestep_scale=1000.0, use_t5=True,
            t5_feat_dim=T5_WIDTH, t5_token_length=256, rope_theta=10000.0)


def build_mochi(path, seed=0):
    import comfy.ldm.genmo.joint_model.asymm_models_joint as mj
    import comfy.ops
    m = mj.AsymmDiTJoint(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                         device="cpu", **TINY)
    tm._init_(m, seed)
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def load_mochi(path):
    """comfy.sd.load_diffusion_model_state_dict after its detection step, with TINY as the
    detected config."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    import comfy.utils
    sd = comfy.utils.load_torch_file(str(path))
    config = comfy.supported_models.GenmoMochi(TINY)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(sd, "")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    model.load_model_weights(sd, "")
    return patcher


def conds(tokens=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(1, tokens, dtype=torch.long)
    pos = [[torch.randn(1, tokens, T5_WIDTH, generator=g), {"attention_mask": mask}]]
    neg = [[torch.randn(1, tokens, T5_WIDTH, generator=g) * 0.1, {"attention_mask": mask}]]
    return pos, neg


def latent():
    return torch.zeros(1, 12, 2, 8, 8)


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build(model_dir):
    return load_mochi(build_mochi(model_dir / "family_mochi.safetensors", seed=1))


def inputs():
    pos, neg = conds()
    return {"samples": latent()}, pos, neg
