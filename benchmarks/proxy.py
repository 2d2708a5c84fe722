"""A tiny synthetic "world" for training and benchmarking a Wan-architecture proxy model.

Why: a diffusion transformer with random weights has nothing like the smooth denoising
trajectory of a real model, so cache-fidelity numbers measured on it mean little. Real Wan
weights are far too big for CPU tests. Instead we define a small, fully synthetic video world,
train a tiny ComfyUI ``WanModel`` on it (scripts/train_proxy.py) and benchmark that.

The world (pure numpy/torch, deterministic, no downloads):

* ``Prompt``: a blob of a colour (RGB triple from a 12-hue palette) moving in one of 8
  directions at one of 2 speeds, with one of 2 sizes, optionally with a second blob of another
  colour moving the opposite way. All combinations form a grid of 12*8*2*2*3 = 1152 prompts.
* Three DISJOINT prompt lists, made by one seeded shuffle of that grid:
  ``EVAL_PROMPTS`` (first 16), ``CALIB_PROMPTS`` (next 16) and ``TRAIN_PROMPTS`` (the other
  1120). Eval/calib prompts are colour/motion/size combinations never seen in training
  (each single attribute value is, so the model has to generalise compositionally).
* ``make_context(prompt)``: the "text encoder": a fixed seeded random linear projection of the
  prompt's 12-number code into 8 tokens of width 4096 ([1, 8, 4096] float32; ComfyUI's Wan
  detection fixes text_dim=4096). ``make_uncond_context()`` is all zeros (the "empty prompt").
* ``render_latent(prompt, frames, height, width, seed)``: a 16-channel video latent
  [16, frames, height, width]. Each blob is a Gaussian spot whose 16-channel signature is a
  fixed seeded linear map of its colour, and whose path is set by the motion (it passes the
  frame centre at the middle frame, up to a seeded offset). Over a static background (a fixed
  per-channel gradient plus a seeded smooth random field). The seed adds nuisance variation:
  the path is shifted by up to +-5 pixels in x and y (the layout is random), the amplitude
  varies by ~15%, the colour by ~0.05 per RGB component, and the background field changes.
  So, as with real video models, a prompt fixes "what" (colours, direction, speed, size) but
  not "where", and it explains only a small part of the latent's variance (~15%; the rest is
  layout and background). That matters for classifier-free guidance: with a prompt that fixed
  the latent almost exactly, cond and uncond predictions differ by the whole blob and cfg 5
  blows samples up to ~4x the data scale; here the model has to read layout off x_t, as real
  models do. Values are roughly unit scale (rms ~0.55; blob peaks around +-1.5 to 3).

The latents live in the diffusion model's own input space, i.e. what ComfyUI's Wan latent format
``process_in`` produces; compare sampled ComfyUI latents after ``latent_format.process_in``.
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

LATENT_CHANNELS = 16
TEXT_TOKENS = 8
TEXT_DIM = 4096

# Fixed seeds of the world itself (not of training): change them and you get another world.
_PROMPT_SPLIT_SEED = 1234
_CONTEXT_SEED = 4321
_PATTERN_SEED = 2024
_BACKGROUND_SEED = 77

COLOUR_NAMES = ("red", "orange", "yellow", "lime", "green", "teal",
                "cyan", "azure", "blue", "violet", "magenta", "pink")
PALETTE = tuple(tuple(round(c, 4) for c in colorsys.hsv_to_rgb(i / 12.0, 0.8, 0.9))
                for i in range(12))
DIRECTIONS = tuple(range(0, 360, 45))   # degrees, 0 = right, 90 = down (image coordinates)
SPEEDS = (1.0, 2.0)                     # latent pixels per frame
SIZES = (1.5, 2.5)                      # Gaussian sigma of a blob, latent pixels
PARTNER_OFFSETS = (None, 4, 6)          # second blob: none, or palette index + 4 / + 6


@dataclass(frozen=True)
class Prompt:
    """One prompt of the synthetic world (hashable; ``text`` is a readable description)."""
    colour: Tuple[float, float, float]
    direction: float                                   # degrees
    speed: float                                       # pixels / frame
    size: float                                        # blob sigma, pixels
    colour2: Optional[Tuple[float, float, float]] = None   # second blob, moving the other way
    text: str = field(default="", compare=False)

    def code(self) -> np.ndarray:
        """The 12-number description that the "text encoder" projects."""
        a = math.radians(self.direction)
        c2 = np.zeros(3) if self.colour2 is None else 2.0 * np.asarray(self.colour2) - 1.0
        return np.concatenate([
            2.0 * np.asarray(self.colour) - 1.0,       # colour
            [math.cos(a), math.sin(a)],                # direction
            [2.0 * (self.speed - 1.5)],                # speed in {-1, 1}
            [2.0 * (self.size - 2.0)],                 # size in {-1, 1}
            [0.0 if self.colour2 is None else 1.0],    # has a second blob
            c2,                                        # its colour
            [1.0],                                     # "there is a prompt" (uncond is all 0)
        ]).astype(np.float64)


CODE_DIM = 12


def _grid():
    out = []
    for ci, d, sp, sz, off in itertools.product(range(12), DIRECTIONS, SPEEDS, SIZES,
                                                PARTNER_OFFSETS):
        c2 = None if off is None else PALETTE[(ci + off) % 12]
        text = (f"{COLOUR_NAMES[ci]} {'large' if sz > 2 else 'small'} blob moving "
                f"{d} deg {'fast' if sp > 1.5 else 'slowly'}")
        if off is not None:
            text += f", {COLOUR_NAMES[(ci + off) % 12]} blob moving the other way"
        out.append(Prompt(PALETTE[ci], float(d), sp, sz, c2, text))
    return out


def split_prompts(grid, seed: int):
    """Three DISJOINT prompt lists from one seeded shuffle of a world's prompt grid:
    evaluation (16), calibration (16), training (the rest). Every world splits this way."""
    order = np.random.default_rng(seed).permutation(len(grid))
    shuffled = [grid[i] for i in order]
    lists = shuffled[:16], shuffled[16:32], shuffled[32:]
    assert not (set(lists[0]) & set(lists[1]) or set(lists[0]) & set(lists[2])
                or set(lists[1]) & set(lists[2])), "prompt lists must be disjoint"
    return lists


EVAL_PROMPTS, CALIB_PROMPTS, TRAIN_PROMPTS = split_prompts(_grid(), _PROMPT_SPLIT_SEED)


# ----------------------------------------------------------------------------- text encoder

@functools.lru_cache(maxsize=1)
def _context_projection() -> np.ndarray:
    rng = np.random.default_rng(_CONTEXT_SEED)
    w = rng.standard_normal((CODE_DIM, TEXT_TOKENS * TEXT_DIM)) / math.sqrt(CODE_DIM)
    return w.astype(np.float32)


def make_context(prompt: Prompt) -> torch.Tensor:
    """[1, 8, 4096] float32 "text embedding" of a prompt (entries roughly unit scale)."""
    ctx = prompt.code().astype(np.float32) @ _context_projection()
    return torch.from_numpy(ctx).view(1, TEXT_TOKENS, TEXT_DIM).clone()


def make_uncond_context() -> torch.Tensor:
    """The empty prompt: [1, 8, 4096] zeros."""
    return torch.zeros(1, TEXT_TOKENS, TEXT_DIM, dtype=torch.float32)


# ----------------------------------------------------------------------------- renderer

@functools.lru_cache(maxsize=1)
def _pattern_map():
    rng = np.random.default_rng(_PATTERN_SEED)
    return rng.standard_normal((LATENT_CHANNELS, 3)), 0.5 * rng.standard_normal(LATENT_CHANNELS)


def colour_signature(rgb) -> np.ndarray:
    """The 16-channel signature of a colour (rms 1.5 over channels)."""
    a, b = _pattern_map()
    v = a @ (2.0 * np.asarray(rgb, dtype=np.float64) - 1.0) / math.sqrt(3.0) + b
    return 1.5 * v / np.sqrt(np.mean(v ** 2))


@functools.lru_cache(maxsize=1)
def _background_coefficients():
    rng = np.random.default_rng(_BACKGROUND_SEED)
    return 0.3 * rng.standard_normal((LATENT_CHANNELS, 3))   # per channel: offset, x, y slopes


def _smooth_field(rng, height, width, cells=4):
    """A seeded smooth random field [16, height, width] (bilinear upsampling of a coarse grid)."""
    coarse = torch.from_numpy(rng.standard_normal((1, LATENT_CHANNELS, cells, cells)))
    up = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear",
                                         align_corners=True)
    return up[0].numpy()


def render_latent(prompt: Prompt, frames: int = 5, height: int = 16, width: int = 16,
                  seed: int = 0) -> torch.Tensor:
    """A synthetic video latent [16, frames, height, width] float32 for ``prompt``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    ux, uy = (xx / max(width - 1, 1) - 0.5), (yy / max(height - 1, 1) - 0.5)

    bg = _background_coefficients()
    background = bg[:, 0, None, None] + bg[:, 1, None, None] * ux + bg[:, 2, None, None] * uy
    background = background + 0.3 * _smooth_field(rng, height, width)
    out = np.repeat(background[:, None], frames, axis=1)      # static background

    a = math.radians(prompt.direction)
    d = np.array([math.cos(a), math.sin(a)])                  # (x, y)
    perp = np.array([-d[1], d[0]])
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    jitter = rng.uniform(-5.0, 5.0, size=2)                   # nuisance: where the path lies
    amp = float(np.clip(1.0 + 0.15 * rng.standard_normal(), 0.6, 1.4))

    blobs = [(prompt.colour, 1.0, 0.0)]
    if prompt.colour2 is not None:                            # side by side, opposite motion
        blobs = [(prompt.colour, 1.0, 2.5), (prompt.colour2, -1.0, -2.5)]
    for rgb, sign, offset in blobs:
        rgb = np.clip(np.asarray(rgb) + 0.05 * rng.standard_normal(3), 0.0, 1.0)
        sig = colour_signature(rgb)
        for f in range(frames):
            tf = f - (frames - 1) / 2.0
            px, py = centre + jitter + sign * d * prompt.speed * tf + perp * offset
            spot = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2.0 * prompt.size ** 2))
            out[:, f] += amp * sig[:, None, None] * spot[None]
    return torch.from_numpy(out.astype(np.float32))


__all__ = ["Prompt", "TRAIN_PROMPTS", "CALIB_PROMPTS", "EVAL_PROMPTS", "make_context",
           "make_uncond_context", "render_latent", "colour_signature", "CODE_DIM"]
