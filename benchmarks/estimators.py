"""Experimental skip estimates, measured by the benchmark (benchmarks/peers.py, group "TeaGain";
BENCHMARKS.md). No node offers them and the published package does not hold them: they plug
into the engine through its estimator seam (teacache_core/state.py ResidualEstimator, set per
run by a registration's customize_run) and need `load_pack()` first, as all of benchmarks/.

IndicatorGainEstimator: the line through the last two computed residuals, followed as far as
the INDICATOR has moved, instead of as far as sigma has (state.extrapolation_weight). The idea
is DiCache's (arXiv 2508.17356: on a skip, r[-2] + g (r[-1] - r[-2]) with g the change of a
shallow probe since r[-2] relative to its change between r[-2] and r[-1], clipped to [1, 2]).
TeaCache has no probe block, but it already accumulates the indicator's (rescaled) relative
change since the last computed call, and it accumulated the same over the interval that ended
there. Their ratio is the gain, at no extra memory or compute:

    w = acc(since the last computed call) / acc(over the last computed interval), in [0, cap]
    estimate = r + (r - prev) * w            (DiCache's g = 1 + w; its clip [1, 2] = cap 1)
"""
from __future__ import annotations

from comfyui_teacache.teacache_core.state import ResidualEstimator
from comfyui_teacache.teacache_core.tensors import add_estimate

GAIN_CAP = 1.0      # DiCache clips its gain to [1, 2], i.e. w to [0, 1]


def last_interval_accumulation(records) -> float | None:
    """Sum of the rescaled distances over the interval ending at the last computed call
    before the newest record (from the call after the computed one before it, through it);
    None without two computed calls."""
    computed = [i for i, r in enumerate(records[:-1]) if r.computed]
    if len(computed) < 2:
        return None
    j0, j1 = computed[-2], computed[-1]
    vals = [records[i].rescaled for i in range(j0 + 1, j1 + 1)]
    if any(v is None for v in vals):
        return None
    return float(sum(vals))


def indicator_gain(b, cap: float = GAIN_CAP) -> float:
    span = last_interval_accumulation(b.records)
    if not span or span <= 0:
        return 0.0
    w = b.accumulated / span
    if w != w:
        return 0.0
    return min(max(w, 0.0), cap)


class IndicatorGainEstimator(ResidualEstimator):
    """extrapolate's buffers and line, with the indicator-estimated weight (module docstring)."""

    def __init__(self, cap: float = GAIN_CAP):
        super().__init__(extrapolate=True)
        self.cap = cap

    def add_to(self, run, b, x, sigma, out=None):
        if b.prev_residual is None:
            return add_estimate(x, b.residual, out=out)
        w = indicator_gain(b, self.cap)
        if w == 0:
            return add_estimate(x, b.residual, out=out)
        return add_estimate(x, b.residual, b.prev_residual, w, out=out)
