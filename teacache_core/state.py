"""State of one sampling run (one per TeaCacheApply per sampler run) and of one model call.

A RunState is created when sampling starts and dropped when it ends; it is never reset by
hand and never stored on the shared nn.Module. Each cond (ComfyUI's per-cond uuid) has its own
BranchState, so decisions do not depend on whether cond and uncond are batched together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import TeaCacheConfig
from .coefficients import Preset
from .policy import forced_first_steps


# How far along the line through the last two computed residuals a skipped call goes, at
# most, in units of the last computed interval. Measured on the trained proxy (BENCHMARKS.md):
# following the line all the way overshoots on long runs of skips (worse than reusing at high
# thresholds); half an interval was best or near best at every threshold and sampler tried.
MAX_EXTRAPOLATION = 0.5


def extrapolation_weight(ratio: float) -> float:
    """How far to follow the line through the last two residuals: `ratio` is the distance from
    the last computed sigma in units of the last computed interval, capped at
    MAX_EXTRAPOLATION."""
    if ratio != ratio or ratio <= 0:
        return 0.0
    return min(ratio, MAX_EXTRAPOLATION)


@dataclass
class StepRecord:
    step: int
    sigma: float
    distance: float | None
    rescaled: float | None
    accumulated: float
    computed: bool
    reason: str
    output_distance: float | None = None   # recorded when calibrating


@dataclass
class BranchState:
    label: str                                  # "cond", "uncond", "cond#2", ...
    prev_indicator: torch.Tensor | None = None
    prev_output: torch.Tensor | None = None     # calibration only
    accumulated: float = 0.0
    residual: torch.Tensor | None = None
    residual_sigma: float | None = None
    prev_residual: torch.Tensor | None = None   # kept only when extrapolating
    prev_residual_sigma: float | None = None
    consecutive_skips: int = 0
    last_call: tuple | None = None               # (sigma, input checksum) of the last call
    residual_sig: tuple = ()                     # other nodes' block patches it was made under
    records: list = field(default_factory=list)

    def residual_fits(self, x: torch.Tensor) -> bool:
        return self.residual is not None and self.residual.shape == x.shape

    def store_residual(self, residual: torch.Tensor, sigma: float, keep_previous: bool):
        """Cache the residual of a computed call (and, to extrapolate, the one before)."""
        if keep_previous and self.residual is not None and self.residual.shape == residual.shape:
            self.prev_residual, self.prev_residual_sigma = self.residual, self.residual_sigma
        else:
            self.prev_residual, self.prev_residual_sigma = None, None
        self.residual, self.residual_sigma = residual, sigma

    def estimate(self, sigma: float, extrapolate: bool) -> torch.Tensor:
        """The residual to add on a skipped call at `sigma`: the cached one (published
        TeaCache) or, with `extrapolate`, the straight line through the last two computed
        residuals (in sigma), where there are two at distinct sigmas."""
        r = self.residual
        if not extrapolate or self.prev_residual is None:
            return r
        s1, s0 = self.residual_sigma, self.prev_residual_sigma
        span = s1 - s0
        if not span or abs(span) < 1e-8 * max(abs(s0), abs(s1), 1e-8):
            return r
        w = extrapolation_weight((sigma - s1) / span)
        return r if w == 0 else r + (r - self.prev_residual) * w


class RunState:
    """Everything TeaCache knows during one sampling run."""

    def __init__(self, owner, config: TeaCacheConfig, preset: Preset, model_desc: str,
                 sigmas, retention: bool):
        self.owner = owner
        self.config = config
        self.preset = preset
        self.model_desc = model_desc
        self.retention = retention
        self.forced_first = forced_first_steps(retention, preset.forced_first)
        self.output_fingerprint = None
        self.calibration = None          # what a calibration run added (TeaCacheCalibrate)
        self.sigmas = [float(s) for s in sigmas]
        self.total_steps = max(len(self.sigmas) - 1, 1)
        # sigmas usually decrease; keep an ascending copy for bisection
        self._evaluated = self.sigmas[:-1] if len(self.sigmas) > 1 else self.sigmas
        self.branches: dict = {}
        self.calls = 0
        self.calls_blocks_ran = 0
        self.peak_cache_bytes = 0

    def __deepcopy__(self, memo):
        return self             # one run, one state: a copied model_options shares it

    def step_index(self, sigma: float) -> int:
        """Index of the schedule step whose sigma is nearest to `sigma` (progress-bar step)."""
        ev = self._evaluated
        if not ev:
            return 0
        best, best_d = 0, abs(ev[0] - sigma)
        # schedules are short (<1000); a linear scan is exact and cheap next to a model call
        for i in range(1, len(ev)):
            d = abs(ev[i] - sigma)
            if d < best_d:
                best, best_d = i, d
        return best

    def branch(self, key, label: str) -> BranchState:
        b = self.branches.get(key)
        if b is None:
            b = self.branches[key] = BranchState(label=label)
        return b

    def note_cache_size(self):
        """Track the most memory the cached tensors (residuals, previous indicators) held."""
        n = 0
        for b in self.branches.values():
            for t in (b.residual, b.prev_residual, b.prev_indicator, b.prev_output):
                if t is not None:
                    n += t.numel() * t.element_size()
        self.peak_cache_bytes = max(self.peak_cache_bytes, n)

    def release(self):
        """Drop every tensor (called when the run ends, also on error/interrupt)."""
        for b in self.branches.values():
            b.prev_indicator = None
            b.prev_output = None
            b.residual = None
            b.prev_residual = None

    # ---- reporting -------------------------------------------------------------------
    def branch_counts(self):
        out = []
        for b in self.branches.values():
            skipped = sum(1 for r in b.records if not r.computed)
            out.append((b.label, skipped, len(b.records)))
        return out

    def estimated_speedup(self) -> float:
        if self.calls_blocks_ran == 0:
            return 1.0 if self.calls == 0 else float(self.calls)
        return self.calls / self.calls_blocks_ran

    def summary_line(self) -> str:
        p = self.preset
        coeffs = (f"coefficients {p.name} ({p.source})" if p.calibrated else
                  "uncalibrated: identity rescale of the raw relative L1 (no published "
                  "coefficients for this model)")
        counts = self.branch_counts()
        if counts:
            steps = sorted({r.step for b in self.branches.values() for r in b.records})
            per = ", ".join(f"{lab} {s}/{n}" for lab, s, n in counts)
            main = max(counts, key=lambda c: c[1])
            skipped = (f"skipped {main[1]}/{main[2]} model calls per cond ({per}) over "
                       f"{len(steps)}/{self.total_steps} steps")
        else:
            skipped = "no model call reached TeaCache"
        mode = (", retention mode" if self.retention else "") + \
            (", skips extrapolated" if self.config.extrapolate else "")
        return (f"TeaCache: {self.model_desc} | {coeffs}{mode} | thresh "
                f"{self.config.rel_l1_thresh:g} | {skipped} | blocks ran in "
                f"{self.calls_blocks_ran}/{self.calls} calls (est. {self.estimated_speedup():.2f}x)")

    def summary(self) -> dict:
        return {
            "model": self.model_desc,
            "preset": self.preset.name,
            "calibrated": self.preset.calibrated,
            "threshold": self.config.rel_l1_thresh,
            "total_steps": self.total_steps,
            "forced_first": self.forced_first,
            "retention": self.retention,
            "skip_estimate": self.config.skip_estimate,
            "indicator": self.preset.indicator,
            "output_fingerprint": self.output_fingerprint,
            "calibration": self.calibration,
            "calls": self.calls,
            "calls_blocks_ran": self.calls_blocks_ran,
            "estimated_speedup": self.estimated_speedup(),
            "peak_cache_bytes": self.peak_cache_bytes,
            "branches": {b.label: [r.__dict__.copy() for r in b.records]
                         for b in sorted(self.branches.values(), key=lambda b: b.label)},
        }


@dataclass
class Chunk:
    """One cond's slice of a batched model call."""
    key: object
    label: str
    sl: slice


@dataclass
class CallContext:
    """One diffusion-model call: which conds are in the batch and what was decided."""
    run: RunState
    model: object            # the diffusion model instance (read only)
    step: int
    sigma: float
    chunks: list
    timestep: object = None
    transformer_options: dict = field(default_factory=dict)
    decided: bool = False
    skip: list = field(default_factory=list)     # per chunk
    skip_all: bool = False
    x_in: torch.Tensor | None = None
    final: torch.Tensor | None = None             # output when every chunk skips
    model_output: object = None                    # raw diffusion-model output (calibration)
    patch_sig: tuple = ()                          # other nodes' block patches in this call
    inside: set = field(default_factory=set)       # gates (block keys) running right now
