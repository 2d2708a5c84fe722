"""Tiny real Cosmos models (ComfyUI's own classes, detection and loader).

- Cosmos Predict2 (MiniTrainDIT): saved and loaded with comfy.sd.load_diffusion_model.
  ComfyUI 0.3.75 builds 10 blocks for any width it does not know (0.33 counts them), so the
  tiny model has as many blocks as detection will build.
- Cosmos 1.0 (GeneralDIT): detection always builds the 14B layout (36 blocks, 40 heads) for a
  width it does not know; the tiny model is loaded the way load_diffusion_model_state_dict does
  after detection (detected config class, get_model, load_model_weights, ModelPatcher) with the
  tiny block count and head count.

Neither has per-block patches_replace hooks: TeaCache gates the blocks' forwards, so every block
module is still called; count a submodule that runs once per executed block (see counted_*).
"""
from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

import tiny_models as tm

HIDDEN = 192            # 16 heads of 12: the smallest head size Cosmos' 3-D RoPE accepts
LATENT = (1, 16, 2, 8, 8)
C1_BLOCKS, C1_HEADS = 2, 16


def _sd(m, seed):
    tm._init_(m, seed)
    return {k: v.detach().contiguous() for k, v in m.state_dict().items()}


def conds(seed=0, tokens=8):
    """T5 states, 1024 wide."""
    g = torch.Generator().manual_seed(seed)
    return ([[torch.randn(1, tokens, 1024, generator=g), {}]],
            [[torch.randn(1, tokens, 1024, generator=g) * 0.1, {}]])


# ---- Cosmos Predict2 ---------------------------------------------------------------------
def _cosmos_predict2_state_dict(num_blocks, seed, hidden=HIDDEN):
    import comfy.ldm.cosmos.predict2 as p2
    import comfy.ops
    m = p2.MiniTrainDIT(
        max_img_h=240, max_img_w=240, max_frames=128, in_channels=16, out_channels=16,
        patch_spatial=2, patch_temporal=1, concat_padding_mask=True, model_channels=hidden,
        num_blocks=num_blocks, num_heads=16, crossattn_emb_channels=1024, pos_emb_cls="rope3d",
        pos_emb_learnable=True, pos_emb_interpolation="crop", use_adaln_lora=True,
        adaln_lora_dim=256, rope_h_extrapolation_ratio=4.0, rope_w_extrapolation_ratio=4.0,
        rope_t_extrapolation_ratio=1.0, extra_per_block_abs_pos_emb=False,
        rope_enable_fps_modulation=False, operations=comfy.ops.disable_weight_init,
        device="cpu", dtype=torch.float32)
    return _sd(m, seed)


def build_cosmos_predict2(path, num_blocks=2, seed=0):
    """A tiny Cosmos Predict2 text-to-image model (ComfyUI's MiniTrainDIT, 192 wide: 16 heads
    of 12, the smallest its 3-D RoPE takes; T5 width 1024). ComfyUI 0.3.75's detection builds
    10 blocks for a width it does not know: the model then has as many."""
    import comfy.model_detection
    sd = _cosmos_predict2_state_dict(num_blocks, seed)
    built = comfy.model_detection.detect_unet_config(sd, "").get("num_blocks", 10)
    if built != num_blocks:
        sd = _cosmos_predict2_state_dict(built, seed)
    save_file(sd, str(path))
    return path


def counted_predict2(dm):
    return [b.mlp for b in dm.blocks]


# ---- Cosmos 1.0 --------------------------------------------------------------------------
def build_cosmos1(path, seed=0):
    """GeneralDIT with the config ComfyUI's detection gives a Cosmos 1.0 checkpoint, small."""
    import comfy.ldm.cosmos.model as c1
    import comfy.ops
    m = c1.GeneralDIT(
        max_img_h=240, max_img_w=240, max_frames=128, in_channels=16, out_channels=16,
        patch_spatial=2, patch_temporal=1, concat_padding_mask=True, block_config="FA-CA-MLP",
        model_channels=HIDDEN, num_blocks=C1_BLOCKS, num_heads=C1_HEADS, block_x_format="THWBD",
        pos_emb_cls="rope3d", pos_emb_learnable=False, pos_emb_interpolation="crop",
        affline_emb_norm=True, use_adaln_lora=True, adaln_lora_dim=256,
        rope_h_extrapolation_ratio=2.0, rope_w_extrapolation_ratio=2.0,
        rope_t_extrapolation_ratio=2.0, extra_per_block_abs_pos_emb=True,
        extra_per_block_abs_pos_emb_type="learnable", extra_h_extrapolation_ratio=2.0,
        extra_w_extrapolation_ratio=2.0, extra_t_extrapolation_ratio=2.0,
        operations=comfy.ops.disable_weight_init, device="cpu", dtype=torch.float32)
    save_file(_sd(m, seed), str(path))
    return path


def load_after_detection(path, **tiny):
    """What comfy.sd.load_diffusion_model_state_dict does after detection, with the detected
    config's block/head counts replaced by the tiny model's."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    sd = load_file(str(path))
    config = comfy.model_detection.model_config_from_unet(sd, "")
    config.unet_config.update(tiny)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(sd, "")
    patcher_cls = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    patcher = patcher_cls(model, load_device=mm.get_torch_device(),
                          offload_device=mm.unet_offload_device())
    is_dynamic = getattr(patcher, "is_dynamic", None)
    if is_dynamic is not None:
        model.load_model_weights(sd, "", assign=is_dynamic())
    else:
        model.load_model_weights(sd, "")
    return patcher


def load_cosmos1(path):
    return load_after_detection(path, num_blocks=C1_BLOCKS, num_heads=C1_HEADS)


def counted_cosmos1(dm):
    return [b.blocks[0] for b in dm.blocks.values()]


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build_predict2(model_dir):
    return tm.load(build_cosmos_predict2(model_dir / "family_cosmos_predict2.safetensors",
                                         num_blocks=3))


def build_c1(model_dir):
    return load_cosmos1(build_cosmos1(model_dir / "family_cosmos1.safetensors"))


def inputs():
    pos, neg = conds()
    return {"samples": torch.zeros(LATENT)}, pos, neg
