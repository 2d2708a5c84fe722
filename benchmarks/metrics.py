"""Fidelity metrics on latents (pure torch): PSNR and SSIM against a reference."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB with the reference's value range as the peak."""
    x, ref = x.double(), ref.double()
    mse = float(((x - ref) ** 2).mean())
    rng = float(ref.max() - ref.min())
    return math.inf if mse == 0 else 10 * math.log10(rng * rng / mse)


def _gauss(size=7, sigma=1.5):
    g = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(g ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean SSIM over every frame and channel of [B, C, (F,) H, W] latents (Gaussian window 7,
    sigma 1.5, constants of Wang et al. with the reference's value range)."""
    x, ref = x.double(), ref.double()
    h, w = ref.shape[-2:]
    x = x.reshape(-1, 1, h, w)
    ref = ref.reshape(-1, 1, h, w)
    rng = float(ref.max() - ref.min()) or 1.0
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    k = _gauss(min(7, h, w), 1.5)[None, None]
    pad = k.shape[-1] // 2

    def blur(t):
        return F.conv2d(F.pad(t, [pad] * 4, mode="reflect"), k)

    mx, mr = blur(x), blur(ref)
    vx = blur(x * x) - mx * mx
    vr = blur(ref * ref) - mr * mr
    cov = blur(x * ref) - mx * mr
    s = ((2 * mx * mr + c1) * (2 * cov + c2)) / ((mx * mx + mr * mr + c1) * (vx + vr + c2))
    return float(s.mean())
