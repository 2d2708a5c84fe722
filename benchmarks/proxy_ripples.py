"""A third synthetic world, for the LTX-Video-architecture proxy (scripts/train_proxy.py
--proxy ltxv): ripples on a pond under changing light, seen through a linear "VAE".

Why a third world: the blob world (benchmarks/proxy.py) moves Gaussians over a static
background, the shapes world (benchmarks/proxy_shapes.py) spins hard-edged shapes over a
panning background. Here nothing translates or rotates: rings of waves expand from (or
contract into) one or two drop points, and the light over the whole frame brightens or dims
during the clip, so every token changes every frame in a radial and a global way. The latent
is not painted channel by channel either: the world is rendered as an RGB video and encoded
by a fixed linear map of 4x4 pixel patches (a stand-in for a VAE encoder), as LTX-Video's
128-channel latents are; and the "text encoder" gives one token per word with a padding mask,
as T5 does for LTX-Video.

The world (pure numpy/torch, deterministic, no downloads):

* ``RipplePrompt``: water of one of 8 colours reflecting a sky of another (3 choices), one
  drop (centre or a quadrant) or two on a diagonal (7 layouts), rings expanding or contracting,
  short or long waves, the light brightening, steady or dimming. All combinations:
  8*3*7*2*2*3 = 2016 prompts.
* Three DISJOINT prompt lists from one seeded shuffle of that grid: ``EVAL_PROMPTS`` (first
  16), ``CALIB_PROMPTS`` (next 16), ``TRAIN_PROMPTS`` (the other 1984).
* Conditioning as ComfyUI gives LTX-Video's T5 states: ``make_context(prompt)`` is
  [1, 16, 4096] (T5-XXL width; ComfyUI's LTXV has ``caption_channels`` 4096): one fixed seeded
  random vector per word (colour, sky, drop layout, motion, wave length, and the light word unless
  steady), then an end token, then zero padding; ``make_mask(prompt)`` the [1, 16] attention
  mask (1 on the 6 or 7 real tokens). The empty prompt (``make_uncond_context`` /
  ``make_uncond_mask``) is all zeros with only its first token unmasked. ``positive`` /
  ``negative`` give ComfyUI conditioning lists with the mask as ``attention_mask``.
* ``render_rgb(prompt, frames, height, width, seed)``: the RGB video [3, frames, 4*height,
  4*width] in [0, 1]: a vertical gradient from the sky's reflection (top) to the water colour
  (bottom), shaded by the sum of the ripple rings of each drop (``cos(k r -+ w f)`` damped with
  distance, phase 90 degrees per frame, wave length 10 or 16 px, i.e. 2.5 or 4 latent pixels),
  times the light (0.55 -> 1.25, 1, or 1.25 -> 0.55 over the clip) plus a glint on the crests.
* ``render_latent(prompt, frames, height, width, seed)``: the 128-channel latent [128, frames,
  height, width] in the model's input space (ComfyUI's LTXV latent format has no scale or
  shift): ``encode`` of the RGB video, i.e. a fixed seeded [128, 48] matrix applied to each
  4x4 patch of (2 * rgb - 1), so the latents span a 48-dimensional subspace (rms ~0.6).
  ``decode_rgb`` maps a latent back to RGB with the pseudo-inverse (for contact sheets).
  Nuisance from the seed: drop positions (+-1.5 px around the layout's), ring phases (uniform:
  where the crests are is not said), colours (~0.08 per RGB component), the
  horizon's height and softness, light amplitude (~15%); a prompt fixes "what", not "where".
"""
from __future__ import annotations

import colorsys
import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Tuple

import numpy as np
import torch

from benchmarks.proxy import split_prompts

LATENT_CHANNELS = 128    # LTX-Video's latent channels (fixed by ComfyUI's LTXV latent format)
PATCH = 4                # pixels per latent token side
TEXT_TOKENS = 16
TEXT_DIM = 4096          # T5-XXL width (LTXVModel's caption_channels)
LATENT_RMS = 0.6

# Fixed seeds of the world itself (not of training).
_PROMPT_SPLIT_SEED = 2468
_WORD_SEED = 1357
_ENCODER_SEED = 8642
_TEXTURE_SEED = 975

COLOUR_NAMES = ("red", "amber", "olive", "green", "teal", "blue", "indigo", "plum")
PALETTE = tuple(tuple(round(c, 4) for c in colorsys.hsv_to_rgb((i + 0.15) / 8.0, 0.7, 0.75))
                for i in range(8))
SKY_OFFSETS = (2, 4, 6)                  # the sky's colour: palette index + offset
# where the drops fall (fractions of width, height): one drop, or two on a diagonal
LAYOUTS = {"centre": ((0.5, 0.5),), "upper left": ((0.3, 0.3),), "upper right": ((0.7, 0.3),),
           "lower left": ((0.3, 0.7),), "lower right": ((0.7, 0.7),),
           "falling diagonal": ((0.3, 0.3), (0.7, 0.7)),
           "rising diagonal": ((0.7, 0.3), (0.3, 0.7))}
DROP_JITTER = 1.5                         # pixels (a token is 4)
MOTIONS = ("expanding", "contracting")
WAVES = ("short", "long")
WAVELENGTH = {"short": 10.0, "long": 16.0}  # pixels (2.5 and 4 latent pixels)
LIGHTS = ("brightening", "steady", "dimming")
PHASE_PER_FRAME = math.pi / 2.0           # ring phase advance per frame (a quarter wave)


@dataclass(frozen=True)
class RipplePrompt:
    """One prompt of the ripples world (hashable; ``text`` is a readable description)."""
    colour: int                   # palette index of the water
    sky: int                      # palette index of the reflected sky
    layout: str                   # a key of LAYOUTS
    motion: str
    wave: str
    light: str
    text: str = field(default="", compare=False)

    def words(self) -> Tuple[str, ...]:
        """The prompt's words, in order (the "tokenizer"); steady light is not said."""
        w = (f"water:{COLOUR_NAMES[self.colour]}", f"sky:{COLOUR_NAMES[self.sky]}",
             f"drops:{self.layout}", f"motion:{self.motion}", f"wave:{self.wave}")
        return w + ((f"light:{self.light}",) if self.light != "steady" else ()) + ("<end>",)


VOCAB = tuple([f"water:{c}" for c in COLOUR_NAMES] + [f"sky:{c}" for c in COLOUR_NAMES]
              + [f"drops:{d}" for d in LAYOUTS] + [f"motion:{m}" for m in MOTIONS]
              + [f"wave:{w}" for w in WAVES] + [f"light:{x}" for x in LIGHTS] + ["<end>"])


def _grid():
    out = []
    for ci, off, layout, motion, wave, light in itertools.product(range(8), SKY_OFFSETS, LAYOUTS,
                                                                  MOTIONS, WAVES, LIGHTS):
        sky = (ci + off) % 8
        text = (f"{COLOUR_NAMES[ci]} pond reflecting a {COLOUR_NAMES[sky]} sky, "
                f"{'one drop' if len(LAYOUTS[layout]) == 1 else 'two drops'} ({layout}), "
                f"{wave} ripples {motion}, "
                f"light {light}")
        out.append(RipplePrompt(ci, sky, layout, motion, wave, light, text))
    return out


EVAL_PROMPTS, CALIB_PROMPTS, TRAIN_PROMPTS = split_prompts(_grid(), _PROMPT_SPLIT_SEED)


# ----------------------------------------------------------------------------- text encoder

@functools.lru_cache(maxsize=1)
def _word_vectors() -> dict:
    rng = np.random.default_rng(_WORD_SEED)
    table = rng.standard_normal((len(VOCAB), TEXT_DIM)).astype(np.float32)
    return {w: table[i] for i, w in enumerate(VOCAB)}


def make_context(prompt: RipplePrompt) -> torch.Tensor:
    """[1, 16, 4096] float32 "T5" states: one unit-scale vector per word, zero padding."""
    vec = _word_vectors()
    out = np.zeros((TEXT_TOKENS, TEXT_DIM), dtype=np.float32)
    for i, w in enumerate(prompt.words()):
        out[i] = vec[w]
    return torch.from_numpy(out)[None].clone()


def make_mask(prompt: RipplePrompt) -> torch.Tensor:
    """[1, 16] attention mask (int64; 1 on the prompt's tokens, 0 on the padding)."""
    mask = torch.zeros(1, TEXT_TOKENS, dtype=torch.long)
    mask[:, :len(prompt.words())] = 1
    return mask


def make_uncond_context() -> torch.Tensor:
    return torch.zeros(1, TEXT_TOKENS, TEXT_DIM, dtype=torch.float32)


def make_uncond_mask() -> torch.Tensor:
    mask = torch.zeros(1, TEXT_TOKENS, dtype=torch.long)
    mask[:, 0] = 1
    return mask


def positive(prompt: RipplePrompt) -> list:
    """ComfyUI conditioning of a prompt: [[context, {"attention_mask": mask}]]."""
    return [[make_context(prompt), {"attention_mask": make_mask(prompt)}]]


def negative() -> list:
    """ComfyUI conditioning of the empty prompt."""
    return [[make_uncond_context(), {"attention_mask": make_uncond_mask()}]]


# ----------------------------------------------------------------------------- "VAE"

@functools.lru_cache(maxsize=1)
def _encoder() -> Tuple[np.ndarray, np.ndarray]:
    """The fixed [128, 48] patch encoder and its [48, 128] pseudo-inverse."""
    rng = np.random.default_rng(_ENCODER_SEED)
    enc = rng.standard_normal((LATENT_CHANNELS, 3 * PATCH * PATCH)) / math.sqrt(3 * PATCH * PATCH)
    enc = 1.6 * enc
    return enc, np.linalg.pinv(enc)


def encode(rgb: np.ndarray) -> torch.Tensor:
    """RGB video [3, F, 4H, 4W] in [0, 1] -> latent [128, F, H, W] float32."""
    c, f, hh, ww = rgb.shape
    h, w = hh // PATCH, ww // PATCH
    patches = (2.0 * rgb - 1.0).reshape(c, f, h, PATCH, w, PATCH)
    patches = patches.transpose(0, 3, 5, 1, 2, 4).reshape(c * PATCH * PATCH, f, h, w)
    enc = torch.from_numpy(_encoder()[0])              # float64, as the renderer
    lat = enc @ torch.from_numpy(np.ascontiguousarray(patches)).view(c * PATCH * PATCH, -1)
    return lat.view(LATENT_CHANNELS, f, h, w).float()


def decode_rgb(latent: torch.Tensor) -> np.ndarray:
    """Latent [128, F, H, W] -> RGB video [3, F, 4H, 4W] (least squares; clipped to [0, 1])."""
    lat = latent.detach().float().cpu().numpy()
    _, f, h, w = lat.shape
    patches = (_encoder()[1] @ lat.reshape(LATENT_CHANNELS, -1)).reshape(3, PATCH, PATCH, f, h, w)
    rgb = patches.transpose(0, 3, 4, 1, 5, 2).reshape(3, f, h * PATCH, w * PATCH)
    return np.clip((rgb + 1.0) / 2.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- renderer

@functools.lru_cache(maxsize=4)
def _texture(height: int, width: int) -> np.ndarray:
    """A faint fixed smooth texture [H, W] (the pond's bottom)."""
    coarse = torch.from_numpy(np.random.default_rng(_TEXTURE_SEED).standard_normal((1, 1, 5, 5)))
    up = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear",
                                         align_corners=True)
    return up[0, 0].numpy()


def _light(kind: str, tf: np.ndarray, frames: int) -> np.ndarray:
    span = max(frames - 1, 1) / 2.0
    ramp = 0.9 + 0.35 * tf / span                     # 0.55 -> 1.25 over the clip
    return {"brightening": ramp, "dimming": 1.8 - ramp, "steady": np.ones_like(tf)}[kind]


def render_rgb(prompt: RipplePrompt, frames: int = 5, height: int = 8, width: int = 8,
               seed: int = 0) -> np.ndarray:
    """The RGB video [3, frames, 4*height, 4*width] in [0, 1] of ``prompt``."""
    rng = np.random.default_rng(seed)
    hh, ww = height * PATCH, width * PATCH
    f = np.arange(frames, dtype=np.float64)[:, None, None]
    tf = f - (frames - 1) / 2.0
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float64)
    yy, xx = yy[None], xx[None]

    water = np.clip(np.asarray(PALETTE[prompt.colour]) + 0.08 * rng.standard_normal(3), 0, 1)
    sky = np.clip(np.asarray(PALETTE[prompt.sky]) + 0.08 * rng.standard_normal(3), 0, 1)
    horizon, span = rng.uniform(0.3, 0.7) * hh, rng.uniform(0.8, 1.4) * hh
    g = np.clip((yy - horizon) / span + 0.5, 0.0, 1.0)[..., None]            # 0 top, 1 bottom
    base = (1.0 - g) * (0.35 * sky + 0.4) + g * water                     # [1, H, W, 3]
    base = base * (1.0 + 0.06 * _texture(hh, ww))[None, :, :, None]

    k = 2.0 * math.pi / WAVELENGTH[prompt.wave]
    sign = -1.0 if prompt.motion == "expanding" else 1.0   # cos(k r - w f): crests move out
    wave = np.zeros((frames, hh, ww))
    drops = LAYOUTS[prompt.layout]
    for i in range(2):                       # always draw two so the nuisance stream is fixed
        fx, fy = drops[i % len(drops)]
        cx = fx * (ww - 1) + rng.uniform(-DROP_JITTER, DROP_JITTER)
        cy = fy * (hh - 1) + rng.uniform(-DROP_JITTER, DROP_JITTER)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        ring = np.cos(k * r + sign * PHASE_PER_FRAME * tf + phase) * np.exp(-r / (1.6 * ww / 2))
        if i < len(drops):
            wave += ring
    wave /= len(drops)
    amp = float(np.clip(1.0 + 0.15 * rng.standard_normal(), 0.7, 1.3))
    light = amp * _light(prompt.light, tf, frames)                         # [F, 1, 1]
    shade = 1.0 + 0.45 * wave
    glint = 0.25 * np.clip(wave - 0.6, 0.0, None) / 0.4                   # crests
    rgb = base * (shade * light)[..., None] + (glint * light)[..., None]
    return np.clip(rgb, 0.0, 1.0).transpose(3, 0, 1, 2)                 # [3, F, H, W]


def render_latent(prompt: RipplePrompt, frames: int = 5, height: int = 8, width: int = 8,
                  seed: int = 0) -> torch.Tensor:
    """A synthetic video latent [128, frames, height, width] float32 for ``prompt``."""
    return encode(render_rgb(prompt, frames, height, width, seed))


__all__ = ["RipplePrompt", "TRAIN_PROMPTS", "CALIB_PROMPTS", "EVAL_PROMPTS", "make_context",
           "make_mask", "make_uncond_context", "make_uncond_mask", "positive", "negative",
           "render_rgb", "render_latent", "encode", "decode_rgb"]
