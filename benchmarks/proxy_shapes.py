"""A second synthetic world, for the HunyuanVideo-architecture proxy (scripts/train_proxy.py
--proxy hunyuan): spinning textured shapes over a panning background, with occlusion.

Why a second world: a benchmark win on one toy could be a property of that toy (the blob world
of benchmarks/proxy.py is smooth Gaussians drifting over a static background). This world has
hard edges, rotation, textures, a moving background (every pixel changes every frame) and an
occluding second object, and its conditioning has the form ComfyUI's HunyuanVideo takes.

The world (pure numpy/torch, deterministic, no downloads):

* ``ShapePrompt``: a shape (square, ring, cross) with a texture (plain, stripes, checker) in
  one of 8 colours, spinning clockwise or counter-clockwise, while the camera pans in one of 4
  directions, optionally with a disc of another colour sliding across it, in front of the shape
  (occluding it) or behind it. All combinations: 3*3*8*2*4*3 = 1728 prompts.
* Three DISJOINT prompt lists from one seeded shuffle of that grid: ``EVAL_PROMPTS`` (first 16),
  ``CALIB_PROMPTS`` (next 16), ``TRAIN_PROMPTS`` (the other 1696).
* Conditioning as HunyuanVideo's text encoders give it: ``make_context(prompt)`` is
  [1, 12, 4096] "llama" tokens (a fixed seeded random projection of the prompt's 18-number
  code; ComfyUI detects the text width from ``txt_in.input_embedder``), ``make_pooled(prompt)``
  the [1, 768] pooled "CLIP" vector ``y`` (another fixed projection). The empty prompt is all
  zeros for both (``make_uncond_context`` / ``make_uncond_pooled``).
* ``render_latent(prompt, frames, height, width, seed)``: a 16-channel latent
  [16, frames, height, width] in the diffusion model's own input space (after ComfyUI's
  HunyuanVideo ``latent_format.process_in``). Background: a fixed 16-channel mix of 5 plane
  waves (fixed frequencies, seeded phases and amplitudes) that shifts by 1.5 px per frame in the
  pan direction. The shape: a soft-edged mask around the frame centre (up to +-3 px seeded
  offset), size varied by ~10%, rotated by a seeded start angle plus 25 degrees per frame in
  the spin direction, filled with its texture (which rotates with it) times the colour's 16-channel
  signature. The disc (radius 2.5) slides horizontally at 2 px per frame through the centre row
  (seeded vertical offset and left/right direction), composited over or under the shape. Nuisance
  from the seed: positions, start angle, size, amplitude (~15%), colour (~0.05 per RGB
  component), background phases/amplitudes; a prompt fixes "what", not "where".
"""
from __future__ import annotations

import colorsys
import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch

from benchmarks.proxy import split_prompts

LATENT_CHANNELS = 16
TEXT_TOKENS = 12
TEXT_DIM = 4096          # HunyuanVideo's llama hidden width
POOLED_DIM = 768         # HunyuanVideo's pooled CLIP width (fixed by ComfyUI's detection)

# Fixed seeds of the world itself (not of training).
_PROMPT_SPLIT_SEED = 5678
_CONTEXT_SEED = 8765
_POOLED_SEED = 8766
_PATTERN_SEED = 3030
_BACKGROUND_SEED = 99

SHAPES = ("square", "ring", "cross")
TEXTURES = ("plain", "stripes", "checker")
COLOUR_NAMES = ("red", "amber", "olive", "green", "cyan", "blue", "purple", "rose")
PALETTE = tuple(tuple(round(c, 4) for c in colorsys.hsv_to_rgb((i + 0.3) / 8.0, 0.85, 0.85))
                for i in range(8))
SPINS = (-1, 1)                          # -1 = counter-clockwise, 1 = clockwise (image coords)
PANS = (0, 90, 180, 270)                 # camera pan direction, degrees (0 = right, 90 = down)
SECOND = (None, "front", "behind")       # disc of colour index + 3: none, occluding, occluded
SPIN_DEG = 25.0                          # per frame
PAN_SPEED = 1.5                          # background shift, px per frame
DISC_SPEED = 2.0


@dataclass(frozen=True)
class ShapePrompt:
    """One prompt of the shapes world (hashable; ``text`` is a readable description)."""
    shape: str
    texture: str
    colour: Tuple[float, float, float]
    spin: int
    pan: float
    second: Optional[str] = None
    colour2: Optional[Tuple[float, float, float]] = None
    text: str = field(default="", compare=False)

    def code(self) -> np.ndarray:
        """The 18-number description that the "text encoders" project."""
        a = math.radians(self.pan)
        c2 = np.zeros(3) if self.colour2 is None else 2.0 * np.asarray(self.colour2) - 1.0
        return np.concatenate([
            [1.0 if self.shape == s else 0.0 for s in SHAPES],
            [1.0 if self.texture == t else 0.0 for t in TEXTURES],
            2.0 * np.asarray(self.colour) - 1.0,
            [float(self.spin)],
            [math.cos(a), math.sin(a)],
            [1.0 if self.second == "front" else 0.0, 1.0 if self.second == "behind" else 0.0],
            c2,
            [1.0],                                  # "there is a prompt" (uncond is all 0)
        ]).astype(np.float64)


CODE_DIM = 18


def _grid():
    out = []
    for shape, tex, ci, spin, pan, second in itertools.product(SHAPES, TEXTURES, range(8), SPINS,
                                                               PANS, SECOND):
        c2 = None if second is None else PALETTE[(ci + 3) % 8]
        text = (f"{tex} {COLOUR_NAMES[ci]} {shape} spinning "
                f"{'clockwise' if spin > 0 else 'counter-clockwise'}, camera panning {pan} deg")
        if second is not None:
            text += f", {COLOUR_NAMES[(ci + 3) % 8]} disc sliding {second}"
        out.append(ShapePrompt(shape, tex, PALETTE[ci], spin, float(pan), second, c2, text))
    return out


EVAL_PROMPTS, CALIB_PROMPTS, TRAIN_PROMPTS = split_prompts(_grid(), _PROMPT_SPLIT_SEED)


# ----------------------------------------------------------------------------- text encoders

@functools.lru_cache(maxsize=1)
def _projections():
    w = np.random.default_rng(_CONTEXT_SEED).standard_normal((CODE_DIM, TEXT_TOKENS * TEXT_DIM))
    v = np.random.default_rng(_POOLED_SEED).standard_normal((CODE_DIM, POOLED_DIM))
    return (w / math.sqrt(CODE_DIM)).astype(np.float32), (v / math.sqrt(CODE_DIM)).astype(np.float32)


def make_context(prompt: ShapePrompt) -> torch.Tensor:
    """[1, 12, 4096] float32 "llama" tokens of a prompt (entries roughly unit scale)."""
    ctx = prompt.code().astype(np.float32) @ _projections()[0]
    return torch.from_numpy(ctx).view(1, TEXT_TOKENS, TEXT_DIM).clone()


def make_pooled(prompt: ShapePrompt) -> torch.Tensor:
    """[1, 768] float32 pooled "CLIP" vector ``y`` of a prompt."""
    return torch.from_numpy(prompt.code().astype(np.float32) @ _projections()[1]).view(1, -1).clone()


def make_uncond_context() -> torch.Tensor:
    return torch.zeros(1, TEXT_TOKENS, TEXT_DIM, dtype=torch.float32)


def make_uncond_pooled() -> torch.Tensor:
    return torch.zeros(1, POOLED_DIM, dtype=torch.float32)


# ----------------------------------------------------------------------------- renderer

@functools.lru_cache(maxsize=1)
def _pattern_map():
    rng = np.random.default_rng(_PATTERN_SEED)
    return rng.standard_normal((LATENT_CHANNELS, 3)), 0.5 * rng.standard_normal(LATENT_CHANNELS)


def colour_signature(rgb) -> np.ndarray:
    """The 16-channel signature of a colour (rms 1.4 over channels)."""
    a, b = _pattern_map()
    v = a @ (2.0 * np.asarray(rgb, dtype=np.float64) - 1.0) / math.sqrt(3.0) + b
    return 1.4 * v / np.sqrt(np.mean(v ** 2))


@functools.lru_cache(maxsize=1)
def _background_basis():
    """Fixed plane-wave frequencies [5, 2] (rad/px), channel mix [16, 5] and offsets [16]."""
    rng = np.random.default_rng(_BACKGROUND_SEED)
    ang = rng.uniform(0.0, math.pi, size=5)
    k = rng.uniform(0.25, 0.9, size=5)
    freqs = np.stack([k * np.cos(ang), k * np.sin(ang)], axis=1)
    mix = rng.standard_normal((LATENT_CHANNELS, 5)) / math.sqrt(5.0)
    offset = 0.3 * rng.standard_normal(LATENT_CHANNELS)
    return freqs, mix, offset


def _soft(d):
    """Soft inside-mask from a signed distance (negative inside), ~1 px edge."""
    return 1.0 / (1.0 + np.exp(np.clip(2.5 * d, -30.0, 30.0)))


def _shape_mask(shape, u, v, s):
    if shape == "square":
        return _soft(np.maximum(np.abs(u), np.abs(v)) - s)
    if shape == "ring":
        return _soft(np.abs(np.sqrt(u ** 2 + v ** 2) - s) - 1.3)
    arm = s / 2.8                                                  # cross
    return np.maximum(_soft(np.maximum(np.abs(u) - s, np.abs(v) - arm)),
                      _soft(np.maximum(np.abs(v) - s, np.abs(u) - arm)))


def _texture(texture, u, v):
    if texture == "stripes":
        return 0.55 + 0.45 * np.cos(2.0 * math.pi * u / 3.0)
    if texture == "checker":
        return 0.55 + 0.45 * np.tanh(3.0 * np.cos(math.pi * u / 2.0) * np.cos(math.pi * v / 2.0))
    return np.ones_like(u)


def render_latent(prompt: ShapePrompt, frames: int = 5, height: int = 16, width: int = 16,
                  seed: int = 0) -> torch.Tensor:
    """A synthetic video latent [16, frames, height, width] float32 for ``prompt``."""
    rng = np.random.default_rng(seed)
    f = np.arange(frames, dtype=np.float64)[:, None, None]
    tf = f - (frames - 1) / 2.0
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    xx, yy = xx[None], yy[None]                                    # [1, H, W]

    # background: plane waves drifting with the camera pan
    freqs, mix, offset = _background_basis()
    pa = math.radians(prompt.pan)
    shift = PAN_SPEED * tf                                         # [F, 1, 1]
    phases = rng.uniform(0.0, 2.0 * math.pi, size=5)
    amps = 0.5 * (1.0 + 0.3 * rng.standard_normal(5))
    waves = np.stack([a * np.sin(fx * (xx - shift * math.cos(pa)) + fy * (yy - shift * math.sin(pa))
                                 + ph)
                      for (fx, fy), a, ph in zip(freqs, amps, phases)])      # [5, F, H, W]
    out = offset[:, None, None, None] + np.tensordot(mix, waves, axes=1)   # [16, F, H, W]

    amp = float(np.clip(1.0 + 0.15 * rng.standard_normal(), 0.6, 1.4))

    def paint(mask, value):
        nonlocal out
        out = out * (1.0 - mask[None]) + mask[None] * value

    # the shape
    cx = (width - 1) / 2.0 + rng.uniform(-3.0, 3.0)
    cy = (height - 1) / 2.0 + rng.uniform(-3.0, 3.0)
    size = 4.2 * float(np.clip(1.0 + 0.1 * rng.standard_normal(), 0.75, 1.25))
    theta = np.radians(rng.uniform(0.0, 90.0) + prompt.spin * SPIN_DEG * tf)   # [F, 1, 1]
    dx, dy = xx - cx, yy - cy
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    rgb = np.clip(np.asarray(prompt.colour) + 0.05 * rng.standard_normal(3), 0.0, 1.0)
    shape_mask = _shape_mask(prompt.shape, u, v, size)
    shape_val = amp * colour_signature(rgb)[:, None, None, None] * _texture(prompt.texture, u, v)[None]

    # the disc (always drawn from the seed so that the nuisance stream does not depend on it)
    disc_y = (height - 1) / 2.0 + rng.uniform(-2.0, 2.0)
    disc_dir = 1.0 if rng.random() < 0.5 else -1.0
    rgb2 = np.clip(np.asarray(prompt.colour2 if prompt.colour2 is not None else (0.5, 0.5, 0.5))
                   + 0.05 * rng.standard_normal(3), 0.0, 1.0)
    disc_x = (width - 1) / 2.0 + disc_dir * DISC_SPEED * tf
    disc_mask = _soft(np.sqrt((xx - disc_x) ** 2 + (yy - disc_y) ** 2) - 2.5)
    disc_val = amp * colour_signature(rgb2)[:, None, None, None]

    if prompt.second == "behind":
        paint(disc_mask, disc_val)
    paint(shape_mask, shape_val)
    if prompt.second == "front":
        paint(disc_mask, disc_val)
    return torch.from_numpy(out.astype(np.float32))


__all__ = ["ShapePrompt", "TRAIN_PROMPTS", "CALIB_PROMPTS", "EVAL_PROMPTS", "make_context",
           "make_pooled", "make_uncond_context", "make_uncond_pooled", "render_latent",
           "colour_signature", "CODE_DIM"]
