"""A models folder for the end-to-end tests: tiny real diffusion models saved under the file
names the example workflows use, and small stand-in files for what cannot exist at tiny size
(text encoders, VAEs, CLIP vision), which the test-only node pack tests/teacache_test_nodes
reads.

Diffusion models are ComfyUI's own classes, seeded, loaded by the server through its own
loaders (so its model detection runs). Stand-ins are safetensors files whose metadata key
``teacache_test_standin`` describes what the stand-in produces (see teacache_test_nodes).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

import tiny_models as tm

STANDIN_KEY = "teacache_test_standin"


# ---- stand-ins --------------------------------------------------------------------------------
def save_standin(path: Path, **desc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"standin": torch.zeros(1)}, str(path), metadata={STANDIN_KEY: json.dumps(desc)})
    return path


# what each stand-in gives: text encoders their token width (and pooled width), VAEs their
# latent channels and compression, CLIP vision its hidden states
STANDINS = {
    "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors": dict(kind="text", width=4096),
    "text_encoders/t5xxl_fp16.safetensors": dict(kind="text", width=4096, attention_mask=True),
    "text_encoders/llava_llama3_fp8_scaled.safetensors": dict(kind="text", width=4096),
    "text_encoders/clip_l.safetensors": dict(kind="text", width=768, pooled=768),
    "vae/wan_2.1_vae.safetensors": dict(kind="vae", channels=16, spatial=8, temporal=4),
    "vae/wan2.2_vae.safetensors": dict(kind="vae", channels=48, spatial=16, temporal=4),
    "vae/hunyuan_video_vae_bf16.safetensors": dict(kind="vae", channels=16, spatial=8,
                                                    temporal=4),
    "clip_vision/clip_vision_h.safetensors": dict(kind="clip_vision", tokens=257, width=1280,
                                                   embeds=1024),
    "vae/ae.safetensors": dict(kind="vae", channels=16, spatial=8, temporal=1),
    "vae/mochi_vae.safetensors": dict(kind="vae", channels=12, spatial=8, temporal=6),
    "vae/qwen_image_vae.safetensors": dict(kind="vae", channels=16, spatial=8, temporal=4),
    "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors": dict(kind="text", width=3584),
    "text_encoders/clip_l_hidream.safetensors": dict(kind="text", width=768, pooled=768),
    "text_encoders/clip_g_hidream.safetensors": dict(kind="text", width=1280, pooled=1280),
    "text_encoders/t5xxl_fp8_e4m3fn_scaled.safetensors": dict(kind="text", width=4096),
    "text_encoders/llama_3.1_8b_instruct_fp8_scaled.safetensors": dict(kind="text", width=4096),
    "text_encoders/oldt5_xxl_fp8_e4m3fn_scaled.safetensors": dict(kind="text", width=1024),
    "text_encoders/qwen_3_4b.safetensors": dict(kind="text", width=2560),
    "vae/cogvideox_vae.safetensors": dict(kind="vae", channels=16, spatial=8, temporal=4),
}
# diffusion models no loader node can load at tiny size: a placeholder under the name, so
# that the page finds the file (the browser test); the e2e run of these workflows is skipped
PLACEHOLDERS = {
    "diffusion_models/mochi_preview_bf16.safetensors":
        "ComfyUI's detection builds the full 10B Mochi for any Mochi state dict, so no tiny "
        "Mochi loads through Load Diffusion Model (tests/test_mochi.py covers it in-process)",
    "diffusion_models/hidream_i1_full_fp8.safetensors":
        "ComfyUI's detection builds the full 17B HiDream-I1 for any HiDream state dict, so no "
        "tiny HiDream loads through Load Diffusion Model (tests/test_hidream.py covers it "
        "in-process)",
    "diffusion_models/qwen_image_fp8_e4m3fn.safetensors":
        "the smallest Qwen-Image ComfyUI's detection accepts is ~0.4B parameters (24 heads of "
        "128, 3584-wide text): too slow for this module's CPU budget (tests/test_qwen_image.py "
        "covers it in-process)",
    "diffusion_models/z_image_turbo_bf16.safetensors":
        "ComfyUI's detection knows only the 6B Z-Image (3840 wide, 30 layers), so no tiny "
        "Z-Image loads through Load Diffusion Model (tests/test_lumina2.py covers it "
        "in-process)",
}
FLUX_0375 = ("this ComfyUI detects FLUX.1 only at 24 heads of 128, so the smallest Flux its "
             "loader accepts is ~0.5B parameters: too slow for this module's CPU budget (runs "
             "on the newest ComfyUI, which derives the heads from the width; tests/test_flux.py "
             "covers 0.3.75 in-process)")
# diffusion models of families only the newest ComfyUI has: file -> (its comfy.ldm module, why);
# on an older ComfyUI a placeholder stands under the name (its workflows are skipped there)
NEWEST_ONLY_MODELS = {
    "diffusion_models/kandinsky5lite_t2v_sft_5s.safetensors":
        ("comfy.ldm.kandinsky5.model", "Kandinsky 5 exists in the newest ComfyUI only"),
    "diffusion_models/cogvideox_5b_t2v_bf16.safetensors":
        ("comfy.ldm.cogvideo.model", "CogVideoX exists in the newest ComfyUI only"),
}
# the VAE inside a checkpoint (CheckpointLoaderSimple), stored in the checkpoint's metadata
LTXV_VAE = dict(kind="vae", channels=128, spatial=32, temporal=8)


# ---- tiny diffusion models ------------------------------------------------------------------
def build_hunyuan_t2v(path, *, hidden=128, depth=1, single=1, seed=0):
    """A tiny HunyuanVideo 1.0 T2V (ComfyUI's HunyuanVideo) with the real text widths
    (LLaVA tokens 4096, CLIP-L pooled 768), so the stand-in text encoders fit it."""
    import comfy.ldm.hunyuan_video.model as hv
    import comfy.ops
    params = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
                  hidden_size=hidden, mlp_ratio=4.0, num_heads=hidden // 128, depth=depth,
                  depth_single_blocks=single, axes_dim=[16, 56, 56], theta=256,
                  patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False,
                  meanflow=False, use_cond_type_embedding=False, vision_in_dim=None,
                  meanflow_sum=False)
    fields = {f.name for f in dataclasses.fields(hv.HunyuanVideoParams)}
    m = hv.HunyuanVideo(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                        device="cpu", **{k: v for k, v in params.items() if k in fields})
    tm._init_(m, seed)
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def build_ltxv_checkpoint(path, *, num_layers=2, head_dim=4, seed=0):
    """A tiny LTX-Video checkpoint as CheckpointLoaderSimple reads it: the LTXVModel under
    model.diffusion_model. (32 heads of head_dim: detection assumes 32 heads; T5-width
    captions), and the stand-in VAE's description in the metadata."""
    import comfy.ldm.lightricks.model as ltx
    import comfy.ops
    m = ltx.LTXVModel(attention_head_dim=head_dim, num_attention_heads=32,
                      cross_attention_dim=32 * head_dim, num_layers=num_layers,
                      caption_channels=4096, operations=comfy.ops.disable_weight_init,
                      dtype=torch.float32, device="cpu")
    tm._init_(m, seed)
    sd = {"model.diffusion_model." + k: v.detach().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(path), metadata={STANDIN_KEY: json.dumps(LTXV_VAE)})
    return path


def _flux_model(hidden=128, device="cpu"):
    import comfy.ldm.flux.model as fm
    import comfy.ops
    kw = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
              hidden_size=hidden, mlp_ratio=4.0, num_heads=hidden // 128, depth=1,
              depth_single_blocks=1, axes_dim=[16, 56, 56], theta=10000, patch_size=2,
              qkv_bias=True, guidance_embed=True, txt_ids_dims=[])
    fields = fm.FluxParams.__dataclass_fields__
    return fm.Flux(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                   device=device, **{k: v for k, v in kw.items() if k in fields})


def tiny_flux_loads() -> bool:
    """Whether this ComfyUI's detection keeps a 128-wide FLUX.1 (0.33 does; 0.3.75 fixes 24
    heads of 128)."""
    import comfy.model_detection
    sd = {k: torch.empty(v.shape, device="meta")
          for k, v in _flux_model(device="meta").state_dict().items()}
    return comfy.model_detection.detect_unet_config(sd, "").get("num_heads") == 1


def build_flux(path, seed=0):
    """A tiny FLUX.1 [dev] (guidance-embedded) with the real text widths (T5 4096, CLIP-L
    pooled 768)."""
    m = _flux_model()
    tm._init_(m, seed)
    with torch.no_grad():                    # 0.3.75 names RMSNorm weights "scale"
        for name, p in m.named_parameters():
            if p.ndim == 1 and "norm" in name and name.endswith(".scale"):
                p.fill_(1.0)
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


build_cosmos_predict2 = tm.build_cosmos_predict2


def build_kandinsky5_video(path):
    """The shared harness's tiny Kandinsky 5 video model (tests/tiny/kandinsky5.py: ComfyUI's
    Kandinsky5, 128 wide, 3 visual blocks, Qwen2.5-VL 3584 + CLIP-L pooled 768 text, concat
    conditioning), saved under `path`."""
    import tempfile
    from tiny import kandinsky5 as tk
    with tempfile.TemporaryDirectory() as d:
        tk.build_video(Path(d))                 # builds, saves, and loads it once (detection)
        Path(d, "family_kandinsky5_video.safetensors").replace(path)
    return path


def build_cogvideox_t2v(path, seed=0):
    """The shared harness's tiny CogVideoX 1.0-style T2V (tests/tiny/cogvideo.py: ComfyUI's
    CogVideoXTransformer3DModel, 2 heads of 64, rotary embeddings, T5 4096 text)."""
    from tiny import cogvideo as tc
    return tc._build(path, num_layers=2, seed=seed)


def placeholder_reason(rel: str):
    """Why the e2e run cannot load the diffusion model `rel` at tiny size (None: it can)."""
    if rel in PLACEHOLDERS:
        return PLACEHOLDERS[rel]
    if rel in NEWEST_ONLY_MODELS:
        import importlib.util
        module, why = NEWEST_ONLY_MODELS[rel]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{why} (no {module} here)"
    if rel == "diffusion_models/flux1-dev.safetensors" and not tiny_flux_loads():
        return FLUX_0375
    return None


def _wan(**kw):
    return lambda p: tm.build_wan(p, **kw)


# file (relative to the models folder) -> builder; the names the example workflows use
DIFFUSION_MODELS = {
    "diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors":
        _wan(num_layers=2, seed=1, dtype=torch.float16),
    "diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors":
        _wan(in_dim=36, model_type="i2v", num_layers=2, seed=2),
    "diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors":
        _wan(num_layers=2, seed=3),
    "diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors":
        _wan(num_layers=2, seed=4),
    "diffusion_models/wan2.2_ti2v_5B_fp16.safetensors":
        _wan(in_dim=48, out_dim=48, num_layers=2, seed=5),
    "diffusion_models/hunyuan_video_t2v_720p_bf16.safetensors":
        lambda p: build_hunyuan_t2v(p, seed=6),
    "checkpoints/ltx-video-2b-v0.9.1.safetensors":
        lambda p: build_ltxv_checkpoint(p, seed=7),
    "diffusion_models/flux1-dev.safetensors": lambda p: build_flux(p, seed=8),
    "diffusion_models/cosmos_predict2_2B_t2i.safetensors":
        lambda p: build_cosmos_predict2(p, seed=9),
    "diffusion_models/kandinsky5lite_t2v_sft_5s.safetensors": build_kandinsky5_video,
    "diffusion_models/cogvideox_5b_t2v_bf16.safetensors":
        lambda p: build_cogvideox_t2v(p, seed=10),
}


def make_models_folder(models: Path) -> Path:
    """Write every tiny model and stand-in under `models` (idempotent)."""
    for rel, desc in STANDINS.items():
        if not (models / rel).exists():
            save_standin(models / rel, **desc)
    for rel in PLACEHOLDERS:
        if not (models / rel).exists():
            save_standin(models / rel, kind="placeholder")
    for rel, build in DIFFUSION_MODELS.items():
        p = models / rel
        if placeholder_reason(rel):
            if not p.exists():
                save_standin(p, kind="placeholder")
            continue
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + ".partial")
            build(tmp)
            tmp.rename(p)
    return models


def make_input_image(path: Path, size=(96, 80), seed=0) -> Path:
    """A small PNG for Load Image (the example workflows use ComfyUI's example.png)."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    img = np.stack([x * 255 // size[0], y * 255 // size[1],
                    rng.integers(0, 255, size=(size[1], size[0]))], -1).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path
