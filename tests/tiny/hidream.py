"""A tiny real HiDream-I1 (ComfyUI's HiDreamImageTransformer2DModel).

ComfyUI's detection always builds the full 17B configuration, so the tiny model is loaded the
way comfy.sd.load_diffusion_model_state_dict does after detection: the detected config class
(HiDream) with the tiny model's sizes, get_model, load_model_weights, ModelPatcher.

HiDream has no per-block patches_replace hooks: TeaCache gates its double- and single-stream
blocks' forwards, so every HiDreamImageBlock is still called; count the inner block it runs when
it executes.
"""
from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

import tiny_models as tm

LATENT = (1, 16, 8, 8)
N_DOUBLE, N_SINGLE = 2, 2
TXT_DIM, POOLED_DIM = 32, 32
TINY = dict(patch_size=2, in_channels=16, out_channels=16, num_layers=N_DOUBLE,
            num_single_layers=N_SINGLE, attention_head_dim=32, num_attention_heads=2,
            caption_channels=[TXT_DIM, TXT_DIM], text_emb_dim=POOLED_DIM, num_routed_experts=4,
            num_activated_experts=2, axes_dims_rope=[16, 8, 8], max_resolution=[128, 128],
            llama_layers=list(range(N_DOUBLE + N_SINGLE)))


def build_hidream(path, seed=0):
    import comfy.ldm.hidream.model as hd
    import comfy.ops
    m = hd.HiDreamImageTransformer2DModel(**TINY, operations=comfy.ops.disable_weight_init,
                                          device="cpu", dtype=torch.float32)
    tm._init_(m, seed)
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def load_after_detection(path, **tiny):
    """What comfy.sd.load_diffusion_model_state_dict does after detection, with the detected
    (17B) configuration's sizes replaced by the tiny model's."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    sd = load_file(str(path))
    config = comfy.model_detection.model_config_from_unet(sd, "")
    assert type(config).__name__ == "HiDream"
    config.unet_config.update(tiny)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(sd, "")
    cls = getattr(comfy.model_patcher, "CoreModelPatcher", comfy.model_patcher.ModelPatcher)
    patcher = cls(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())
    dyn = getattr(patcher, "is_dynamic", None)
    model.load_model_weights(sd, "", **({"assign": dyn()} if dyn is not None else {}))
    return patcher


def conds(seed=0, t5_tokens=6, llama_tokens=5):
    g = torch.Generator().manual_seed(seed)

    def one(scale):
        t5 = torch.randn(1, t5_tokens, TXT_DIM, generator=g) * scale
        llama = torch.randn(1, N_DOUBLE + N_SINGLE, llama_tokens, TXT_DIM, generator=g) * scale
        pooled = torch.randn(1, POOLED_DIM, generator=g) * scale
        return [[t5, {"pooled_output": pooled, "conditioning_llama3": llama}]]
    return one(1.0), one(0.1)


def counted(dm):
    return [b.block for b in list(dm.double_stream_blocks) + list(dm.single_stream_blocks)]


# ---- the shared harness (tests/families.py) ------------------------------------------------
def build(model_dir):
    return load_after_detection(build_hidream(model_dir / "family_hidream.safetensors"), **TINY)


def inputs():
    pos, neg = conds()
    return {"samples": torch.zeros(LATENT)}, pos, neg
