"""Train a tiny proxy model (Wan 2.1 t2v, HunyuanVideo, LTX-Video) on a synthetic world.

Several proxies, so that a benchmark win is not a property of one toy:
* ``--proxy wan`` (default): ComfyUI's WanModel on the moving-blob world of benchmarks/proxy.py
  (described below).
* ``--proxy hunyuan``: ComfyUI's HunyuanVideo (dual-stream, like FLUX: 3 double-stream then 4
  single-stream blocks, hidden 128) on the spinning-shapes world of benchmarks/proxy_shapes.py,
  with HunyuanVideo's conditioning (llama-width tokens, pooled CLIP ``y``, embedded guidance);
  sampling shift 7; the same objective, optimiser, data pipeline and verification otherwise
  (see the "HunyuanVideo proxy" section below). Written to models/hunyuan_proxy.safetensors.
* ``--proxy ltxv``: ComfyUI's LTXVModel on the ripples world of benchmarks/proxy_ripples.py.
* ``--proxy wan_shapes``: ComfyUI's WanModel of another depth (9 blocks, ffn 384) on the shapes
  world: a model that chose no constant of target_speedup, where the other three chose them
  (issue 22; see the "second Wan proxy" section below).

Why: TeaCache fidelity benchmarks need a model whose denoising trajectory looks like a real
model's (smooth, prompt-dependent); random weights do not give that, and real Wan weights are far
too big for CPU. So we train ComfyUI's own ``comfy.ldm.wan.model.WanModel`` at a toy size
(dim 128, 1 head, 6 blocks, ffn 512; text_dim 4096 and patch (1,2,2) as ComfyUI's Wan detection
expects) for a few minutes on 2 CPU cores.

Design:
* Model: built with ``operations=comfy.ops.disable_weight_init``, which leaves every parameter
  uninitialised, so ``init_weights`` sets each one explicitly from a seeded generator (Wan-style:
  xavier-uniform linears, normal(0.02) text/time embeddings, modulation ~ randn/sqrt(dim), norms
  at 1, biases 0, zero output head) and asserts that none was missed.
* Objective: rectified flow as ComfyUI runs Wan (``model_sampling`` CONST, shift 8):
  sigma t in [0, 1], x_t = (1 - t) * x0 + t * noise, the model is called as
  ``model(x_t, timestep=t * 1000, context=ctx)`` and regresses target = noise - x0 (MSE).
* Timestep sampling: a 50/50 mixture of (a) u ~ U(0, 1), t = shift * u / (1 + (shift - 1) * u)
  with shift = 8, i.e. exactly the density of the sigmas that ComfyUI's "simple" scheduler
  visits for Wan (shift 8; half of them above 0.9), and (b) t ~ U(0, 1), which spends more of
  the short training on the middle noise levels where the final structure forms.
* Data: x0 = render_latent(prompt, 5 frames, 16x16, random nuisance seed) for random
  TRAIN_PROMPTS, context = make_context(prompt); with probability 0.1 per sample the context is
  replaced by make_uncond_context() (all zeros) so that classifier-free guidance works.
* Optimiser: AdamW (lr 2e-3, wd 0.01), 50 warm-up steps then cosine decay to 10%, grad clip 1.
  Seeded (torch, numpy), ``torch.set_num_threads(--threads)`` (default 2).
* Output: the state dict in fp16 (about 4.5 MB) with safetensors at --out, plus a JSON sidecar
  (same name, .json) with the config, steps, final loss, seed, wall time and command.
* ``--verify`` (after training) or ``--verify-only`` (existing weights): load the file through
  ``comfy.sd.load_diffusion_model``, check it is detected as Wan 2.1 t2v (WAN21 / WanModel), and
  sample EVAL prompts with ``nodes.common_ksampler`` (euler, simple, 20 steps, cfg 5 and cfg 1).
  ComfyUI returns ``latent_format.process_latent_out`` of the sampled model-space latent (Wan21:
  latent * std + mean per channel), so we map it back with ``latent_format.process_in`` and
  compare with render_latent: distance of a sample to a prompt = MSE to the nearest of 128
  renders of that prompt (a prompt fixes its latent only up to nuisance); we report the mean
  distance to the own prompt vs to the other eval prompts, how often the own prompt is the
  nearest, and the same numbers for fresh renders (what a perfect model would get). Results are
  printed and stored in the JSON sidecar.

Reproduce (about 22 minutes on one core):
    .venv/bin/python scripts/train_proxy.py --steps 1000 --seed 0 --threads 1 --verify
    .venv/bin/python scripts/train_proxy.py --proxy hunyuan --steps 1200 --seed 0 --threads 1 --verify
(the second took 32 minutes (1936 s) on one core of a machine busy with other jobs; about
0.9 s per step when the core is free, i.e. ~18 minutes)
    .venv/bin/python scripts/train_proxy.py --proxy wan_shapes --steps 1200 --seed 0 --threads 2 --verify
(17 minutes (1024 s) on two free cores)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.proxy import (EVAL_PROMPTS, TRAIN_PROMPTS, make_context,  # noqa: E402
                              make_uncond_context, render_latent)

CONFIG = dict(model_type="t2v", patch_size=(1, 2, 2), in_dim=16, out_dim=16, dim=128,
              ffn_dim=512, freq_dim=256, text_dim=4096, num_heads=1, num_layers=6,
              window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6)
FRAMES, HEIGHT, WIDTH = 5, 16, 16
SHIFT = 8.0
UNCOND_PROB = 0.1
BATCH = 8
LR = 2e-3
WARMUP = 50


def setup_comfy():
    """Put ComfyUI (COMFYUI_PATH or .comfyui/) on sys.path in CPU mode."""
    path = Path(os.environ.get("COMFYUI_PATH") or ROOT / ".comfyui").resolve()
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management  # noqa: F401  (must come after args.cpu)


def build_model(config=None):
    """ComfyUI's WanModel with `config` (default: the Wan proxy's CONFIG), float32 on the CPU."""
    import comfy.ops
    from comfy.ldm.wan.model import WanModel
    return WanModel(**(CONFIG if config is None else config),
                    operations=comfy.ops.disable_weight_init, dtype=torch.float32, device="cpu")


@torch.no_grad()
def init_weights(model, seed: int):
    """Initialise every parameter explicitly (disable_weight_init leaves them as torch.empty)."""
    g = torch.Generator().manual_seed(seed)
    dim = model.dim
    for name, p in model.named_parameters():   # deterministic order
        if name.endswith("modulation"):
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(dim))
        elif name.endswith(".bias"):
            p.zero_()
        elif p.ndim == 1:                       # RMSNorm / LayerNorm scales
            p.fill_(1.0)
        elif name == "head.head.weight":
            p.zero_()                           # zero output: start from the "predict 0" model
        elif name.startswith(("text_embedding.", "time_embedding.")):
            p.normal_(0.0, 0.02, generator=g)
        else:                                   # linears and the patch-embedding conv
            w = p.view(p.shape[0], -1)
            torch.nn.init.xavier_uniform_(w, generator=g)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), f"parameter {name} not initialised"
    assert len(list(model.buffers())) == 0, "unexpected buffers"


def sample_t(n: int, g: torch.Generator, shift: float = SHIFT) -> torch.Tensor:
    """Half from ComfyUI's schedule density (shift 8 for Wan), half uniform on [0, 1]."""
    u = torch.rand(n, generator=g)
    shifted = shift * u / (1.0 + (shift - 1.0) * u)
    return torch.where(torch.rand(n, generator=g) < 0.5, shifted, u)


def make_batch(rng: np.random.Generator, g: torch.Generator):
    idx = rng.integers(len(TRAIN_PROMPTS), size=BATCH)
    prompts = [TRAIN_PROMPTS[i] for i in idx]
    x0 = torch.stack([render_latent(p, FRAMES, HEIGHT, WIDTH, seed=int(rng.integers(2**31)))
                      for p in prompts])
    drop = rng.random(BATCH) < UNCOND_PROB
    ctx = torch.cat([make_uncond_context() if d else make_context(p)
                     for p, d in zip(prompts, drop)])
    noise = torch.randn(x0.shape, generator=g)
    t = sample_t(BATCH, g)
    tb = t.view(-1, 1, 1, 1, 1)
    x_t = (1.0 - tb) * x0 + tb * noise
    return x_t, t * 1000.0, ctx, noise - x0


def wan_batch(rng: np.random.Generator, g: torch.Generator):
    x_t, timestep, ctx, target = make_batch(rng, g)
    return dict(x=x_t, timestep=timestep, context=ctx), target


def train(steps: int, seed: int, proxy: str = "wan"):
    torch.manual_seed(seed)
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed + 1)

    spec = PROXIES[proxy]
    model = spec["build"]()
    spec["init"](model, seed)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{spec['label']} proxy: {n_params / 1e6:.2f} M parameters", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.01)

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        frac = (step - WARMUP) / max(1, steps - WARMUP)
        return LR * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))

    t0 = time.time()
    window, first_loss, final_loss = [], None, None
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        inputs, target = spec["batch"](rng, g)
        with spec.get("autograd_context", contextlib.nullcontext)():
            out = model(**inputs)
            loss = torch.nn.functional.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        window.append(loss.item())
        if first_loss is None:
            first_loss = window[0]
        if (step + 1) % 50 == 0 or step + 1 == steps:
            final_loss = float(np.mean(window))
            print(f"step {step + 1:5d}  loss {final_loss:.4f}  lr {lr_at(step):.2e}  "
                  f"{time.time() - t0:6.1f}s", flush=True)
            window = []
    return model, dict(first_loss=first_loss, final_loss=final_loss,
                       train_seconds=round(time.time() - t0, 1), parameters=n_params)


def save(model, out: Path, info: dict, description: str = "TeaCache Wan 2.1 proxy",
         metadata: dict | None = None):
    from safetensors.torch import save_file
    out.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(out), metadata={"format": "pt", "description": description,
                                      **(metadata or {})})
    size = out.stat().st_size
    assert size < 10 * 1024 * 1024, f"{out} is {size} bytes (limit 10 MB)"
    info["file_bytes"] = size
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved {out} ({size / 1e6:.2f} MB) and {out.with_suffix('.json')}", flush=True)


def prompt_distance(x: torch.Tensor, renders: torch.Tensor) -> float:
    """MSE from latent x [16,F,H,W] to the nearest of a prompt's renders [K,16,F,H,W]."""
    return torch.mean((renders - x[None]) ** 2, dim=(1, 2, 3, 4)).min().item()


def sample_and_score(model, detected, prompts, render, latent_shape, positive, negative,
                     seed: int = 0, render_seeds: int = 128) -> dict:
    """What every proxy's verification measures, whatever its world: sample the prompts with
    ComfyUI's KSampler (euler, simple, 20 steps) at CFG 5 and 1 and score each sample against
    ``render_seeds`` fresh renders of every prompt (``render(prompt, seed)``), next to what a
    perfect model would score (fresh renders with an unseen nuisance seed).
    ``positive(prompt)`` / ``negative`` are the ComfyUI conditioning lists."""
    import nodes
    base = model.model
    renders = [torch.stack([render(p, 10_000 + k) for k in range(render_seeds)])
               for p in prompts]

    def score(latents):
        """Mean distance to the own prompt, to the other prompts, and nearest-prompt hits."""
        own, other, hits = [], [], 0
        for i, x in enumerate(latents):
            dist = [prompt_distance(x, r) for r in renders]
            own.append(dist[i])
            other.append(float(np.mean([d for j, d in enumerate(dist) if j != i])))
            hits += int(int(np.argmin(dist)) == i)
        return dict(mse_own_prompt=round(float(np.mean(own)), 4),
                    mse_other_prompts=round(float(np.mean(other)), 4),
                    nearest_prompt_is_own=f"{hits}/{len(latents)}",
                    sample_rms=round(float(torch.stack(latents).pow(2).mean().sqrt()), 4))

    results = {"detected": detected,
               "reference_fresh_renders": score([render(p, 1) for p in prompts])}
    print("reference (fresh renders of the eval prompts):", results["reference_fresh_renders"],
          flush=True)
    for cfg in (5.0, 1.0):
        latents = []
        for i, p in enumerate(prompts):
            latent = {"samples": torch.zeros(1, *latent_shape)}
            out = nodes.common_ksampler(model, seed + i, 20, cfg, "euler", "simple",
                                        positive(p), negative, latent)[0]["samples"]
            latents.append(base.latent_format.process_in(out.float())[0])  # undo latent_out
        results[f"cfg{cfg:g}"] = score(latents)
        print(f"cfg {cfg:g} (euler, simple, 20 steps):", results[f"cfg{cfg:g}"], flush=True)
    return results


def verify(path: Path, n_prompts: int = 16, seed: int = 0, render_seeds: int = 128) -> dict:
    """Load through ComfyUI, check detection, sample EVAL prompts and compare with renders.

    A prompt fixes a latent only up to nuisance (path offset, amplitude, background), so the
    distance of a sample to a prompt is the MSE to the nearest of ``render_seeds`` renders of it.
    """
    import comfy.sd
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False

    model = comfy.sd.load_diffusion_model(str(path))
    detected = detect_wan(model.model, model.model.diffusion_model)
    print("detected:", detected, flush=True)
    return sample_and_score(
        model, detected, EVAL_PROMPTS[:n_prompts],
        lambda p, s: render_latent(p, FRAMES, HEIGHT, WIDTH, seed=s), (16, FRAMES, HEIGHT, WIDTH),
        lambda p: [[make_context(p), {}]], [[make_uncond_context(), {}]], seed, render_seeds)


# ============================================================================ HunyuanVideo proxy
# A dual-stream model of another architecture on another world (benchmarks/proxy_shapes.py):
# ComfyUI's comfy.ldm.hunyuan_video.model.HunyuanVideo (double-stream blocks, then single-stream
# blocks over the joint img+txt sequence, like FLUX), detected by ComfyUI as HunyuanVideo 1.0
# T2V. Detection fixes mlp_ratio 4, num_heads = hidden // 128 and the rope axes (16, 56, 56;
# head width 128), vec_in_dim 768 (the pooled CLIP vector y) whenever vector_in exists, and reads
# the text width from txt_in.input_embedder (4096 here, the llama width of the real model).
# Width 128 (1 head) is forced by the 10 MB limit on a committed file: at width 256 (2 heads)
# even 1 double + 2 single blocks are 7.1 M parameters (14 MB in fp16). Depth: 3 double + 4
# single blocks (7 blocks, against the Wan proxy's 6), plus the fixed 2-block text refiner.
# Conditioning as ComfyUI passes it: context = txt tokens [B, 12, 4096], y = pooled [B, 768],
# guidance = 6.0 (ComfyUI's default for HunyuanVideo; a constant here, so guidance_in learns
# a bias), timestep = sigma * 1000. Sampling shift 7 (ComfyUI's HunyuanVideo setting).

HV_CONFIG = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
                 hidden_size=128, mlp_ratio=4.0, num_heads=1, depth=3, depth_single_blocks=4,
                 axes_dim=[16, 56, 56], theta=256, patch_size=[1, 2, 2], qkv_bias=True,
                 guidance_embed=True, byt5=False, meanflow=False, use_cond_type_embedding=False,
                 vision_in_dim=None)
HV_SHIFT = 7.0
HV_GUIDANCE = 6.0


def build_model_hunyuan():
    import dataclasses
    import comfy.ops
    import comfy.ldm.hunyuan_video.model as hv
    fields = {f.name for f in dataclasses.fields(hv.HunyuanVideoParams)}
    params = dict(HV_CONFIG)
    if "meanflow_sum" in fields:            # newer ComfyUI (detection: False without vision_in)
        params["meanflow_sum"] = False
    params = {k: v for k, v in params.items() if k in fields}
    return hv.HunyuanVideo(operations=comfy.ops.disable_weight_init, dtype=torch.float32,
                           device="cpu", **params)


@torch.no_grad()
def init_weights_hunyuan(model, seed: int):
    """Initialise every parameter explicitly (DiT-style, seeded; zero output head)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():   # deterministic order
        if name.endswith(".bias"):
            p.zero_()
        elif p.ndim == 1:                       # LayerNorm weights, RMSNorm scales
            p.fill_(1.0)
        elif name in ("final_layer.linear.weight", "final_layer.adaLN_modulation.1.weight"):
            p.zero_()                           # start from the "predict 0" model
        elif name.endswith(("_mod.lin.weight", "modulation.lin.weight", "adaLN_modulation.1.weight")):
            p.normal_(0.0, 0.5 / math.sqrt(p.shape[1]), generator=g)
        else:                                   # linears and the patch-embedding conv
            torch.nn.init.xavier_uniform_(p.view(p.shape[0], -1), generator=g)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), f"parameter {name} not initialised"
    assert len(list(model.buffers())) == 0, "unexpected buffers"


def shapes_batch(rng: np.random.Generator, g: torch.Generator, shift: float):
    """A training batch of the shapes world (benchmarks/proxy_shapes.py), for the proxies that
    learn it: (prompts, dropped to the empty prompt, x_t, t, context, target)."""
    import benchmarks.proxy_shapes as world
    idx = rng.integers(len(world.TRAIN_PROMPTS), size=BATCH)
    prompts = [world.TRAIN_PROMPTS[i] for i in idx]
    x0 = torch.stack([world.render_latent(p, FRAMES, HEIGHT, WIDTH, seed=int(rng.integers(2**31)))
                      for p in prompts])
    drop = rng.random(BATCH) < UNCOND_PROB
    ctx = torch.cat([world.make_uncond_context() if d else world.make_context(p)
                     for p, d in zip(prompts, drop)])
    noise = torch.randn(x0.shape, generator=g)
    t = sample_t(BATCH, g, shift)
    tb = t.view(-1, 1, 1, 1, 1)
    return prompts, drop, (1.0 - tb) * x0 + tb * noise, t, ctx, noise - x0


def hunyuan_batch(rng: np.random.Generator, g: torch.Generator):
    import benchmarks.proxy_shapes as world
    prompts, drop, x_t, t, ctx, target = shapes_batch(rng, g, HV_SHIFT)
    y = torch.cat([world.make_uncond_pooled() if d else world.make_pooled(p)
                   for p, d in zip(prompts, drop)])
    inputs = dict(x=x_t, timestep=t * 1000.0, context=ctx, y=y,
                  guidance=torch.full((BATCH,), HV_GUIDANCE))
    return inputs, target


def saved_tensor_snapshots():
    """ComfyUI's double/single blocks add their residuals in place (``img += ...``), which
    autograd rejects when the block input was saved for backward (by its LayerNorm). Saving a
    copy of every non-leaf tensor that autograd keeps makes the gradients exact again."""
    return torch.autograd.graph.saved_tensors_hooks(lambda t: t if t.is_leaf else t.clone(),
                                                    lambda t: t)


def detect_hunyuan(base, dm) -> dict:
    p = dm.params
    detected = dict(model_base=type(base).__name__, diffusion_model=type(dm).__name__,
                    model_config=type(base.model_config).__name__,
                    hidden=p.hidden_size, num_heads=p.num_heads, double_blocks=len(dm.double_blocks),
                    single_blocks=len(dm.single_blocks), context_in_dim=p.context_in_dim,
                    vec_in_dim=p.vec_in_dim, guidance_embed=p.guidance_embed,
                    shift=float(base.model_sampling.shift), compute_dtype=str(base.get_dtype()))
    assert detected["model_base"] == "HunyuanVideo" and detected["diffusion_model"] == "HunyuanVideo"
    assert detected["model_config"] == "HunyuanVideo"
    assert (p.hidden_size, p.depth, p.depth_single_blocks, p.context_in_dim) == (
        HV_CONFIG["hidden_size"], HV_CONFIG["depth"], HV_CONFIG["depth_single_blocks"],
        HV_CONFIG["context_in_dim"])
    return detected


# ============================================================================ LTX-Video proxy
# A third family on a third world (benchmarks/proxy_ripples.py): ComfyUI's
# comfy.ldm.lightricks.model.LTXVModel, detected by ComfyUI as LTX-Video ("LTXV"). Single-stream
# blocks of another kind than Wan's: RMS-normed self-attention and feed-forward modulated by
# scale_shift_table + the adaLN-single timestep vector, and an ungated cross-attention on T5
# states in between; patch size 1 over a 128-channel latent (one token per latent pixel), 3-D
# RoPE from the pixel coordinates. Width: a token carries all 128 latent channels, and the
# residual stream needs room beyond them (the other proxies carry 64 patch values in width 128):
# at inner dim 128 the model leaked noise into its high-noise predictions (x0 error at sigma
# 0.99 2.4x the prompt's nuisance variance, Wan proxy 1.14x) and sampled blocky textures, so
# inner dim 192 = 3 heads of 64 (LTX-Video's head width), 6 blocks, 4.7M parameters (9.5 MB in
# fp16; 7 blocks would be 10.7 MB). ComfyUI's detection assumes 32 heads and reads the width
# from attn2.to_k and the depth from the block count; heads and head width are stored in the
# checkpoint's "config" metadata, which the detection reads (as for real LTX-Video files).
# caption_channels stays 4096 (T5-XXL). Conditioning as ComfyUI passes it: context
# [B, 16, 4096] with its attention_mask [B, 16] (padding masked), frame_rate 25, timestep =
# sigma (the model multiplies by 1000). ComfyUI's LTXV samples with ModelSamplingFlux, shift
# 2.37, i.e. sigma = e^2.37 u / (1 + (e^2.37 - 1) u): the training schedule density uses
# e^2.37 = 10.7.

LTXV_CONFIG = dict(in_channels=128, num_attention_heads=3, attention_head_dim=64,
                   cross_attention_dim=192, caption_channels=4096, num_layers=6)
# what ComfyUI's LTXV detection cannot read off the weights (it assumes 32 heads): stored in the
# checkpoint's "config" metadata, which the detection reads, as real LTX-Video checkpoints do
LTXV_METADATA = {"config": json.dumps({"transformer": {
    "num_attention_heads": LTXV_CONFIG["num_attention_heads"],
    "attention_head_dim": LTXV_CONFIG["attention_head_dim"]}})}
LTXV_LATENT = (128, 5, 8, 8)          # 5 x 8 x 8 = 320 tokens, as the other proxies' 5x16x16 / 2x2
LTXV_SHIFT = 2.37                     # ComfyUI's sampling_settings for LTXV (Flux-style: e^shift)
LTXV_FRAME_RATE = 25


def build_model_ltxv():
    import comfy.ops
    import comfy.ldm.lightricks.model as ltx
    return ltx.LTXVModel(**LTXV_CONFIG, operations=comfy.ops.disable_weight_init,
                         dtype=torch.float32, device="cpu")


@torch.no_grad()
def init_weights_ltxv(model, seed: int):
    """Initialise every parameter explicitly (seeded; zero output head)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():   # deterministic order
        if name.endswith(".bias"):
            p.zero_()
        elif name.endswith("scale_shift_table"):
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
        elif p.ndim == 1:                       # RMSNorm scales (q_norm, k_norm)
            p.fill_(1.0)
        elif name == "proj_out.weight":
            p.zero_()                           # start from the "predict 0" model
        elif name == "adaln_single.linear.weight":
            p.normal_(0.0, 0.5 / math.sqrt(p.shape[1]), generator=g)
        else:                                   # linears
            torch.nn.init.xavier_uniform_(p, generator=g)
    for name, p in model.named_parameters():
        assert torch.isfinite(p).all(), f"parameter {name} not initialised"
    assert len(list(model.buffers())) == 0, "unexpected buffers"


def ltxv_batch(rng: np.random.Generator, g: torch.Generator):
    import benchmarks.proxy_ripples as world
    _, frames, height, width = LTXV_LATENT
    idx = rng.integers(len(world.TRAIN_PROMPTS), size=BATCH)
    prompts = [world.TRAIN_PROMPTS[i] for i in idx]
    x0 = torch.stack([world.render_latent(p, frames, height, width, seed=int(rng.integers(2**31)))
                      for p in prompts])
    drop = rng.random(BATCH) < UNCOND_PROB
    ctx = torch.cat([world.make_uncond_context() if d else world.make_context(p)
                     for p, d in zip(prompts, drop)])
    mask = torch.cat([world.make_uncond_mask() if d else world.make_mask(p)
                      for p, d in zip(prompts, drop)])
    noise = torch.randn(x0.shape, generator=g)
    t = sample_t(BATCH, g, math.exp(LTXV_SHIFT))
    tb = t.view(-1, 1, 1, 1, 1)
    x_t = (1.0 - tb) * x0 + tb * noise
    inputs = dict(x=x_t, timestep=t, context=ctx, attention_mask=mask, frame_rate=LTXV_FRAME_RATE)
    return inputs, noise - x0


def detect_ltxv(base, dm) -> dict:
    detected = dict(model_base=type(base).__name__, diffusion_model=type(dm).__name__,
                    model_config=type(base.model_config).__name__,
                    inner_dim=dm.inner_dim, num_heads=dm.transformer_blocks[0].attn1.heads,
                    head_dim=dm.transformer_blocks[0].attn1.dim_head,
                    num_layers=len(dm.transformer_blocks),
                    caption_channels=dm.caption_projection.linear_1.in_features,
                    shift=float(base.model_sampling.shift), compute_dtype=str(base.get_dtype()))
    assert detected["model_base"] == "LTXV" and detected["diffusion_model"] == "LTXVModel"
    assert detected["model_config"] == "LTXV"
    assert (detected["num_heads"], detected["head_dim"], len(dm.transformer_blocks),
            detected["caption_channels"]) == (
        LTXV_CONFIG["num_attention_heads"], LTXV_CONFIG["attention_head_dim"],
        LTXV_CONFIG["num_layers"], LTXV_CONFIG["caption_channels"])
    return detected


def verify_ltxv(path: Path, n_prompts: int = 16, seed: int = 0, render_seeds: int = 128) -> dict:
    """As verify(), for the LTX-Video proxy on the ripples world (cond: T5 states + mask)."""
    import comfy.sd
    import comfy.utils
    import benchmarks.proxy_ripples as world
    comfy.utils.PROGRESS_BAR_ENABLED = False
    _, frames, height, width = LTXV_LATENT

    model = comfy.sd.load_diffusion_model(str(path))
    base, dm = model.model, model.model.diffusion_model
    detected = detect_ltxv(base, dm)
    print("detected:", detected, flush=True)
    return sample_and_score(
        model, detected, world.EVAL_PROMPTS[:n_prompts],
        lambda p, s: world.render_latent(p, frames, height, width, seed=s), LTXV_LATENT,
        world.positive, world.negative(), seed, render_seeds)


def ltxv_info() -> dict:
    import benchmarks.proxy_ripples as world
    return dict(architecture="comfy.ldm.lightricks.model.LTXVModel (LTX-Video)",
                world="benchmarks/proxy_ripples.py", config=LTXV_CONFIG,
                latent_shape=list(LTXV_LATENT),
                conditioning=dict(context=[world.TEXT_TOKENS, world.TEXT_DIM],
                                  attention_mask=[world.TEXT_TOKENS], frame_rate=LTXV_FRAME_RATE),
                shift=LTXV_SHIFT, train_prompts=len(world.TRAIN_PROMPTS))


# ============================================================================ second Wan proxy
# A model that chose no constant of target_speedup (issue 22): ComfyUI's WanModel again, but of
# another depth and MLP width (9 blocks, ffn 384, against the Wan proxy's 6 and 512) on another
# world (the spinning shapes of benchmarks/proxy_shapes.py, which the HunyuanVideo proxy learnt
# with another architecture and shift). Width 128 and 1 head as the Wan proxy (ComfyUI's Wan
# detection sets num_heads = dim // 128). Conditioning: the shapes world's [B, 12, 4096] tokens
# (Wan takes no pooled vector or guidance). Shift 8 (ComfyUI's Wan 2.1 setting), the same
# objective, optimiser and timestep density as the Wan proxy.
WAN_SHAPES_CONFIG = dict(CONFIG, ffn_dim=384, num_layers=9)


def wan_shapes_batch(rng: np.random.Generator, g: torch.Generator):
    _, _, x_t, t, ctx, target = shapes_batch(rng, g, SHIFT)
    return dict(x=x_t, timestep=t * 1000.0, context=ctx), target


def detect_wan(base, dm, config=CONFIG) -> dict:
    """What ComfyUI detected for a Wan proxy, checked against the config it was trained with."""
    detected = dict(model_base=type(base).__name__, diffusion_model=type(dm).__name__,
                    model_config=type(base.model_config).__name__,
                    dim=dm.dim, num_heads=dm.num_heads, num_layers=dm.num_layers,
                    ffn_dim=dm.blocks[0].ffn[0].out_features,
                    text_dim=dm.text_dim, compute_dtype=str(base.get_dtype()))
    assert detected["model_base"] == "WAN21" and detected["diffusion_model"] == "WanModel"
    assert detected["model_config"] == "WAN21_T2V"
    assert (detected["dim"], detected["num_layers"], detected["ffn_dim"]) == (
        config["dim"], config["num_layers"], config["ffn_dim"])
    return detected


def verify_wan_shapes(path: Path, n_prompts: int = 16, seed: int = 0,
                      render_seeds: int = 128) -> dict:
    """As verify(), for the second Wan proxy on the shapes world."""
    import comfy.sd
    import comfy.utils
    import benchmarks.proxy_shapes as world
    comfy.utils.PROGRESS_BAR_ENABLED = False
    model = comfy.sd.load_diffusion_model(str(path))
    detected = detect_wan(model.model, model.model.diffusion_model, WAN_SHAPES_CONFIG)
    print("detected:", detected, flush=True)
    return sample_and_score(
        model, detected, world.EVAL_PROMPTS[:n_prompts],
        lambda p, s: world.render_latent(p, FRAMES, HEIGHT, WIDTH, seed=s),
        (16, FRAMES, HEIGHT, WIDTH), lambda p: [[world.make_context(p), {}]],
        [[world.make_uncond_context(), {}]], seed, render_seeds)


PROXIES = {
    "wan": dict(label="WanModel", build=build_model, init=init_weights, batch=wan_batch,
                description="TeaCache Wan 2.1 proxy"),
    "hunyuan": dict(label="HunyuanVideo", build=build_model_hunyuan, init=init_weights_hunyuan,
                    batch=hunyuan_batch, autograd_context=saved_tensor_snapshots,
                    description="TeaCache HunyuanVideo proxy"),
    "ltxv": dict(label="LTXVModel", build=build_model_ltxv, init=init_weights_ltxv,
                 batch=ltxv_batch, autograd_context=saved_tensor_snapshots,
                 description="TeaCache LTX-Video proxy", metadata=LTXV_METADATA),
    "wan_shapes": dict(label="WanModel", build=lambda: build_model(WAN_SHAPES_CONFIG),
                       init=init_weights, batch=wan_shapes_batch,
                       description="TeaCache Wan 2.1 proxy (shapes world)"),
}


def verify_hunyuan(path: Path, n_prompts: int = 16, seed: int = 0, render_seeds: int = 128) -> dict:
    """As verify(), for the HunyuanVideo proxy on the shapes world (cond: tokens, y, guidance)."""
    import comfy.sd
    import comfy.utils
    import benchmarks.proxy_shapes as world
    comfy.utils.PROGRESS_BAR_ENABLED = False

    model = comfy.sd.load_diffusion_model(str(path))
    base, dm = model.model, model.model.diffusion_model
    detected = detect_hunyuan(base, dm)
    print("detected:", detected, flush=True)
    negative = [[world.make_uncond_context(),
                 {"pooled_output": world.make_uncond_pooled(), "guidance": HV_GUIDANCE}]]
    return sample_and_score(
        model, detected, world.EVAL_PROMPTS[:n_prompts],
        lambda p, s: world.render_latent(p, FRAMES, HEIGHT, WIDTH, seed=s),
        (16, FRAMES, HEIGHT, WIDTH),
        lambda p: [[world.make_context(p),
                    {"pooled_output": world.make_pooled(p), "guidance": HV_GUIDANCE}]],
        negative, seed, render_seeds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", choices=sorted(PROXIES), default="wan",
                    help="wan: WanModel on the blob world (benchmarks/proxy.py); hunyuan: "
                         "HunyuanVideo on the shapes world (benchmarks/proxy_shapes.py); ltxv: "
                         "LTXVModel on the ripples world (benchmarks/proxy_ripples.py); "
                         "wan_shapes: WanModel (9 blocks) on the shapes world")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="default models/<proxy>_proxy.safetensors")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (use 1 when another process is busy on the cores: "
                         "OpenMP with 2 threads on a shared 2-core machine is ~5x slower)")
    ap.add_argument("--verify", action="store_true", help="verify through ComfyUI after training")
    ap.add_argument("--verify-only", action="store_true", help="only verify existing --out")
    ap.add_argument("--verify-key", default="verification",
                    help="key of the sidecar JSON for the results (e.g. verification_comfyui_0.33 "
                         "when verifying on another ComfyUI with COMFYUI_PATH)")
    a = ap.parse_args()
    if a.out is None:
        a.out = ROOT / "models" / f"{a.proxy}_proxy.safetensors"

    torch.set_num_threads(a.threads)
    setup_comfy()
    command = " ".join(["python scripts/train_proxy.py"] + sys.argv[1:])
    if not a.verify_only:
        model, stats = train(a.steps, a.seed, a.proxy)
        if a.proxy == "wan":
            info = dict(config={**CONFIG, "patch_size": list(CONFIG["patch_size"]),
                                "window_size": list(CONFIG["window_size"])},
                        latent_shape=[16, FRAMES, HEIGHT, WIDTH], steps=a.steps, batch=BATCH,
                        seed=a.seed, threads=a.threads, lr=LR, shift=SHIFT,
                        uncond_prob=UNCOND_PROB, train_prompts=len(TRAIN_PROMPTS),
                        dtype="float16", **stats, command=command)
        elif a.proxy == "wan_shapes":
            import benchmarks.proxy_shapes as world
            info = dict(architecture="comfy.ldm.wan.model.WanModel (Wan 2.1 T2V)",
                        world="benchmarks/proxy_shapes.py",
                        config={**WAN_SHAPES_CONFIG,
                                "patch_size": list(WAN_SHAPES_CONFIG["patch_size"]),
                                "window_size": list(WAN_SHAPES_CONFIG["window_size"])},
                        latent_shape=[16, FRAMES, HEIGHT, WIDTH],
                        conditioning=dict(context=[world.TEXT_TOKENS, world.TEXT_DIM]),
                        steps=a.steps, batch=BATCH, seed=a.seed, threads=a.threads, lr=LR,
                        shift=SHIFT, uncond_prob=UNCOND_PROB,
                        train_prompts=len(world.TRAIN_PROMPTS), dtype="float16", **stats,
                        command=command)
        elif a.proxy == "ltxv":
            info = dict(**ltxv_info(), steps=a.steps, batch=BATCH, seed=a.seed,
                        threads=a.threads, lr=LR, uncond_prob=UNCOND_PROB, dtype="float16",
                        **stats, command=command)
        else:
            import benchmarks.proxy_shapes as world
            info = dict(architecture="comfy.ldm.hunyuan_video.model.HunyuanVideo (HunyuanVideo 1.0 T2V)",
                        world="benchmarks/proxy_shapes.py", config=HV_CONFIG,
                        latent_shape=[16, FRAMES, HEIGHT, WIDTH],
                        conditioning=dict(context=[world.TEXT_TOKENS, world.TEXT_DIM],
                                          pooled_output=world.POOLED_DIM, guidance=HV_GUIDANCE),
                        steps=a.steps, batch=BATCH, seed=a.seed, threads=a.threads, lr=LR,
                        shift=HV_SHIFT, uncond_prob=UNCOND_PROB,
                        train_prompts=len(world.TRAIN_PROMPTS), dtype="float16", **stats,
                        command=command)
        save(model, a.out, info, PROXIES[a.proxy]["description"], PROXIES[a.proxy].get("metadata"))
    if a.verify or a.verify_only:
        results = {"wan": verify, "hunyuan": verify_hunyuan, "ltxv": verify_ltxv,
                   "wan_shapes": verify_wan_shapes}[a.proxy](a.out)
        if a.verify_key != "verification":     # say on which ComfyUI it ran
            import comfyui_version
            results = {"comfyui": comfyui_version.__version__, **results}
        side = a.out.with_suffix(".json")
        info = json.loads(side.read_text()) if side.exists() else {}
        info[a.verify_key] = results
        side.write_text(json.dumps(info, indent=2) + "\n")

if __name__ == "__main__":
    main()
