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
from .policy import ThresholdRule, forced_first_steps
from .target import TargetRule
from .tensors import HostStore, add_estimate, combine_line


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
    #: further residual spans of this cond (generic path: one per block stack and stream),
    #: each a BranchState of which only the residual fields are used
    spans: dict = field(default_factory=dict)

    def span(self, name) -> "BranchState":
        s = self.spans.get(name)
        if s is None:
            s = self.spans[name] = BranchState(label=f"{self.label}:{name}")
        return s

    def held(self):
        """Every tensor this cond holds across calls."""
        out = [self.residual, self.prev_residual, self.prev_indicator, self.prev_output]
        for s in self.spans.values():
            out += [s.residual, s.prev_residual]
        return [t for t in out if t is not None]

    def residual_fits(self, x: torch.Tensor) -> bool:
        return self.residual is not None and self.residual.shape == x.shape

    def store_residual(self, residual: torch.Tensor, sigma: float, keep_previous: bool):
        """Cache the residual of a computed call (and, to extrapolate, the one before)."""
        if keep_previous and self.residual is not None and self.residual.shape == residual.shape:
            self.prev_residual, self.prev_residual_sigma = self.residual, self.residual_sigma
        else:
            self.prev_residual, self.prev_residual_sigma = None, None
        self.residual, self.residual_sigma = residual, sigma

    def estimate_parts(self, sigma: float, extrapolate: bool):
        """(r, prev, w): a skipped call at `sigma` adds r + (r - prev) * w, or just r when
        prev is None: the cached residual (published TeaCache) or, with `extrapolate`, the
        straight line through the last two computed residuals (in sigma), where there are two
        at distinct sigmas."""
        r = self.residual
        if not extrapolate or self.prev_residual is None:
            return r, None, 0.0
        s1, s0 = self.residual_sigma, self.prev_residual_sigma
        span = s1 - s0
        if not span or abs(span) < 1e-8 * max(abs(s0), abs(s1), 1e-8):
            return r, None, 0.0
        w = extrapolation_weight((sigma - s1) / span)
        return (r, None, 0.0) if w == 0 else (r, self.prev_residual, w)

    def estimate(self, sigma: float, extrapolate: bool) -> torch.Tensor:
        """The residual a skipped call at `sigma` adds (see estimate_parts), as one tensor."""
        r, prev, w = self.estimate_parts(sigma, extrapolate)
        return r if prev is None else combine_line(r, prev, w)


class ResidualEstimator:
    """What a skipped call adds: the cached residual (reuse) or the line through the last
    two (extrapolate). A computing cond copies its block input into a residual buffer that
    this compute makes obsolete, and the last block turns that copy into the new residual in
    place: no tensor of hidden-state size is made per call, and old and new residuals are
    never held together."""

    def __init__(self, extrapolate: bool):
        self.extrapolate = extrapolate

    def input_copy(self, run, b: BranchState, x: torch.Tensor, line_ok: bool) -> torch.Tensor:
        """A copy of a computing cond's block input, for finish() to subtract from the blocks'
        output. With the cache on the model's device it lives in the buffer of the residual
        this compute replaces (extrapolate keeps the newest one for the line)."""
        keep_newest = self.extrapolate and line_ok
        dead = b.prev_residual if keep_newest else b.residual
        if not keep_newest:
            b.residual = None
            run.drop(b.prev_residual)
        b.prev_residual, b.prev_residual_sigma = None, None
        if run.store is None and dead is not None and dead.shape == x.shape \
                and dead.dtype == x.dtype and dead.device == x.device:
            return dead.copy_(x)
        run.drop(dead)
        return x.clone()

    def store(self, run, b: BranchState, residual: torch.Tensor, sigma: float, line_ok: bool):
        b.store_residual(run.keep(residual), sigma, keep_previous=self.extrapolate and line_ok)

    def add_to(self, run, b: BranchState, x: torch.Tensor, sigma: float, out=None):
        r, prev, w = b.estimate_parts(sigma, self.extrapolate)
        return add_estimate(x, r, prev, w, out=out)


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
        self.sigmas = ([float(s) for s in sigmas.flatten().tolist()]    # one host read a run
                       if isinstance(sigmas, torch.Tensor) else [float(s) for s in sigmas])
        self.total_steps = max(len(self.sigmas) - 1, 1)
        # sigmas usually decrease; keep an ascending copy for bisection
        self._evaluated = self.sigmas[:-1] if len(self.sigmas) > 1 else self.sigmas
        self.rule = (TargetRule(config.target_speedup, preset.coefficients,
                                config.max_consecutive_skips) if config.target_speedup else
                     ThresholdRule(config.rel_l1_thresh, preset.coefficients,
                                   config.max_consecutive_skips))
        self.estimator = ResidualEstimator(config.extrapolate)
        # optional hooks (None = the published path; set by registration.customize_run):
        # indicator(ctx, key, args) -> tensor replacing the adapter's indicator at the
        # decision block; probe_input(ctx, key, position, args) sees the input of every block
        # before registration.decision_block
        self.indicator = None
        self.probe_input = None
        self.store = HostStore() if config.cache_device == "cpu" else None
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

    def keep(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor to hold across calls, on cache_device."""
        return self.store.put(t) if self.store is not None else t

    def drop(self, t):
        """A held tensor that is not needed any more (its host buffer may be reused)."""
        if self.store is not None:
            self.store.recycle(t)

    def note_cache_size(self):
        """Track the most memory the cached tensors (residuals, previous indicators) held."""
        n = 0
        for b in self.branches.values():
            for t in b.held():
                n += t.numel() * t.element_size()
        self.peak_cache_bytes = max(self.peak_cache_bytes, n)

    def release(self):
        """Drop every tensor (called when the run ends, also on error/interrupt)."""
        for b in self.branches.values():
            b.prev_indicator = None
            b.prev_output = None
            b.residual = None
            b.prev_residual = None
            b.spans.clear()
        if self.store is not None:
            self.store.clear()
        getattr(self.rule, "finish", lambda run: None)(self)

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

    def _rule_text(self) -> str:
        # rules made elsewhere (benchmark methods) need not say more than their limit
        text = getattr(self.rule, "summary_text", None)
        return text(self) if text is not None else f"thresh {self.config.rel_l1_thresh:g}"

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
        return (f"TeaCache: {self.model_desc} | {coeffs}{mode} | "
                f"{self._rule_text()} | {skipped} | blocks ran in "
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
            **getattr(self.rule, "summary_fields", lambda run: {})(self),
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
    sigma_t: object          # the sigma as the model call got it (read once, in decide)
    chunks: list = field(default_factory=list)
    step: int = 0            # set by the first block's decision
    sigma: float = 0.0
    timestep: object = None
    transformer_options: dict = field(default_factory=dict)
    decided: bool = False
    skip: list = field(default_factory=list)     # per chunk
    skip_all: bool = False
    inputs: dict = field(default_factory=dict)    # chunk index -> copy of its block input
    finals: dict = field(default_factory=dict)    # chunk index -> its output, when it skips
    final: torch.Tensor | None = None             # output when every chunk skips
    model_output: object = None                    # raw diffusion-model output (calibration)
    patch_sig: tuple = ()                          # other nodes' block patches in this call
    inside: set = field(default_factory=set)       # gates (block keys) running right now
    # generic path (adapters/generic.py): the gate index within this call, what the gates
    # saw while the layout is being discovered, and per extra residual span what its entry
    # kept (input copies of computing conds, outputs of skipping conds)
    gate_index: int = 0
    discovery: list | None = None
    span_inputs: dict = field(default_factory=dict)
    span_finals: dict = field(default_factory=dict)
