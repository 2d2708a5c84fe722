"""DEMO-ONLY ComfyUI node pack for ./run_demo.sh: a "text encoder" and a "VAE" for the
synthetic world the bundled tiny model (models/wan_proxy.safetensors) was trained in
(benchmarks/proxy.py). Never install it for real use: it understands no real text and decodes
no real latent.

demo/demo.py links this folder into the demo server's custom_nodes and, in the API prompt
made from example_workflows/wan2.1_t2v_1.3B_teacache.json, replaces only CLIPLoader and
VAELoader by these nodes (same inputs, the file names are ignored). Everything else (the
diffusion model loader, ModelSamplingSD3, CLIPTextEncode, TeaCache, KSampler, VAEDecode,
SaveAnimatedWEBP, TeaCacheReport) is ComfyUI's and the pack's own code.

- The text encoder maps the text of a proxy prompt (benchmarks.proxy prompt lists, e.g.
  "red large blob moving 45 deg fast") to make_context(prompt); any other text (such as the
  workflow's negative prompt) to make_uncond_context(), the world's empty prompt.
- The VAE decodes a latent of the proxy world to RGB so that a person can see the shapes:
  back to the model's latent space (ComfyUI's Wan 2.1 latent format), minus the world's
  fixed background (per-channel offset and gradient, benchmarks/proxy.py); what is left is a
  blob wherever it is strong (rms over the 16 channels), drawn in its colour (the fixed
  least-squares inverse of the world's colour -> signature map, normalised by the blob's
  strength, so a blob shows in its prompt's colour at full brightness) over a dark neutral
  background; frames interpolated 1 + 4 per latent frame like Wan's VAE, upscaled 8x.
- difference_heat() (used by demo/demo.py, not a node): where two latents differ, as a heat
  map (black = the same, red -> yellow -> white = more), amplified DIFF_GAIN times against the
  brightness scale of the blobs.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SPATIAL, TEMPORAL = 8, 4                    # Wan 2.1 VAE's compression


@functools.lru_cache(maxsize=1)
def proxy():
    """benchmarks/proxy.py of this repository, imported under a private name."""
    name = "teacache_demo_proxy_world"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "proxy.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=1)
def _prompts_by_text() -> dict:
    p = proxy()
    return {q.text: q for q in (*p.EVAL_PROMPTS, *p.CALIB_PROMPTS, *p.TRAIN_PROMPTS)}


# ---- the "text encoder" -----------------------------------------------------------------------
class ProxyTextEncoder:
    """What CLIPTextEncode needs from a CLIP: tokenize() and encode_from_tokens_scheduled()."""

    def tokenize(self, text, return_word_ids=False, **kwargs):
        return {"proxy_text": text}

    def _encode(self, text):
        prompt = _prompts_by_text().get(text.strip())
        if prompt is None:
            logger.info("TeaCache demo text encoder: not a proxy prompt, the empty prompt: %r",
                        text[:60])
            return proxy().make_uncond_context()
        return proxy().make_context(prompt)

    def encode_from_tokens_scheduled(self, tokens, unprojected=False, add_dict=None,
                                     show_pbar=True, **kwargs):
        return [[self._encode(tokens["proxy_text"]), dict(add_dict or {})]]

    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False, **kwargs):
        cond = self._encode(tokens["proxy_text"])
        if return_dict:
            return {"cond": cond, "pooled_output": None}
        return (cond, None) if return_pooled else cond


# ---- the "VAE" --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _colour_projection():
    """(P [3, 16], background [16]): P is the ridge least-squares inverse of the world's
    colour -> signature map, rgb - 0.5 ~= P @ signature(rgb); background is the world's mean
    per-channel background level."""
    p = proxy()
    rng = np.random.default_rng(0)
    colours = np.concatenate([np.asarray(p.PALETTE), rng.uniform(0, 1, size=(500, 3))])
    sig = np.stack([p.colour_signature(c) for c in colours])            # [N, 16]
    target = colours - 0.5                                               # [N, 3]
    lam = 1.0
    a = sig.T @ sig + lam * np.eye(sig.shape[1])
    proj = np.linalg.solve(a, sig.T @ target).T                          # [3, 16]
    background = p._background_coefficients()[:, 0]                     # offsets, [16]
    return (torch.tensor(proj, dtype=torch.float32),
            torch.tensor(background, dtype=torch.float32))


# How strong (rms over the 16 latent channels, after the fixed background is removed) a pixel
# must be to show: below BLOB_LOW it is background (the world's random background field is
# about 0.2-0.3 there), from BLOB_HIGH on fully the blob's colour (blob centres reach 1.5-2).
BLOB_LOW, BLOB_HIGH = 0.45, 1.1
BACKGROUND_RGB = (0.09, 0.09, 0.10)          # dark neutral grey
DIFF_GAIN = 3.0                              # a difference of (BLOB_HIGH / 3) shows as white


def model_space(latent: torch.Tensor) -> torch.Tensor:
    """ComfyUI latent [B, 16, t, h, w] (or [B, 16, h, w]) -> the model's latent space."""
    import comfy.latent_formats
    z = latent.detach().float().cpu()
    if z.ndim == 4:
        z = z.unsqueeze(2)
    return comfy.latent_formats.Wan21().process_in(z)


def _foreground(z: torch.Tensor) -> torch.Tensor:
    """Model-space latent minus the world's fixed background (offset and gradient)."""
    p = proxy()
    bg = torch.tensor(p._background_coefficients(), dtype=torch.float32)      # [16, 3]
    h, w = z.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    ux, uy = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    back = bg[:, 0, None, None] + bg[:, 1, None, None] * ux + bg[:, 2, None, None] * uy
    return z - back[None, :, None]


def render_rgb(z: torch.Tensor) -> torch.Tensor:
    """Model-space latent [B, 16, t, h, w] -> RGB [B, 3, t, h, w] in [0, 1], latent size."""
    proj, _ = _colour_projection()
    fg = _foreground(z)
    strength = fg.pow(2).mean(1, keepdim=True).sqrt()                  # [B, 1, t, h, w]
    colour = torch.einsum("kc,bcthw->bkthw", proj, fg)                  # ~ strength * (rgb - .5)
    colour = (0.5 + colour / (strength / 1.5).clamp(min=0.15)).clamp(0, 1)
    alpha = ((strength - BLOB_LOW) / (BLOB_HIGH - BLOB_LOW)).clamp(0, 1)
    back = torch.tensor(BACKGROUND_RGB).view(1, 3, 1, 1, 1)
    return back * (1 - alpha) + colour * alpha


def difference_heat(z: torch.Tensor, z_ref: torch.Tensor) -> torch.Tensor:
    """Where two model-space latents differ: RGB heat map [B, 3, t, h, w] (latent size)."""
    d = (z - z_ref).pow(2).mean(1, keepdim=True).sqrt()                  # [B, 1, t, h, w]
    v = (d * DIFF_GAIN / BLOB_HIGH).clamp(0, 1)
    # black -> red -> yellow -> white
    r = (v * 3).clamp(0, 1)
    g = (v * 3 - 1).clamp(0, 1)
    b = (v * 3 - 2).clamp(0, 1)
    return torch.cat([r, g, b], dim=1)


def to_video(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, t, h, w] -> frames [B, 1 + 4(t-1), 8h, 8w, 3], as Wan's VAE sizes them."""
    b, _, t, h, w = rgb.shape
    frames = 1 + (t - 1) * TEMPORAL
    rgb = F.interpolate(rgb, size=(frames, h * SPATIAL, w * SPATIAL), mode="trilinear",
                        align_corners=True)
    return rgb.clamp(0, 1).permute(0, 2, 3, 4, 1).contiguous()


class ProxyVAE:
    """A decoder for the proxy world's 16-channel latents (the methods VAEDecode calls)."""

    latent_channels = 16
    latent_dim = 3

    def spacial_compression_decode(self):
        return SPATIAL

    def spacial_compression_encode(self):
        return SPATIAL

    def temporal_compression_decode(self):
        return TEMPORAL

    def temporal_compression_encode(self):
        return TEMPORAL

    def decode(self, latent):
        """latent [B, 16, t, h, w] (ComfyUI's latent space) -> [B, 1 + 4(t-1), 8h, 8w, 3]."""
        return to_video(render_rgb(model_space(latent)))

    def decode_tiled(self, samples, *args, **kwargs):
        return self.decode(samples)


# ---- nodes (the inputs of the loaders they replace; file names are not used) -------------------
class TeaCacheDemoProxyTextEncoderLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_name": ("STRING", {}), "type": ("STRING", {})},
                "optional": {"device": ("STRING", {"default": "default"})}}

    RETURN_TYPES = ("CLIP",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/demo only"
    DESCRIPTION = "Demo only: the proxy world's text encoder (benchmarks/proxy.py)."

    def load(self, clip_name, type, device="default"):
        return (ProxyTextEncoder(),)


class TeaCacheDemoProxyVAELoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": ("STRING", {})}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load"
    CATEGORY = "TeaCache/demo only"
    DESCRIPTION = "Demo only: a decoder for the proxy world's latents (benchmarks/proxy.py)."

    def load(self, vae_name):
        return (ProxyVAE(),)


NODE_CLASS_MAPPINGS = {
    "TeaCacheDemoProxyTextEncoderLoader": TeaCacheDemoProxyTextEncoderLoader,
    "TeaCacheDemoProxyVAELoader": TeaCacheDemoProxyVAELoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "TeaCacheDemoProxyTextEncoderLoader": "Proxy text encoder (TeaCache demo only)",
    "TeaCacheDemoProxyVAELoader": "Proxy VAE (TeaCache demo only)",
}
