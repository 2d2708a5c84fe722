"""Experiment (not shipped): where target_speedup's online threshold sits among the thresholds
that spend the budget.

Every threshold from the smallest that makes at most the budget's computes on the distances
predicted (budget.online_threshold, what the pack ships: fraction 0) up to the smallest that
makes one compute less (fraction 1) makes the same number of computes, but not at the same
calls: the smallest computes each call as early as it may and leaves the most distance
uncomputed before the last call. `placed_threshold` sits at a fraction of that interval;
`use(f)` makes the pack's TargetRule use it (target_benchmark.py --placements). Measured in
BENCHMARKS.md (target_speedup, "the front at the same runs"): no clear win, so not shipped.
"""
from __future__ import annotations

from comfyui_teacache.teacache_core import budget

SHIPPED = budget.online_threshold


def placed_threshold(accumulated: float, future, forced, budget_left: int, max_skips: int = 0,
                     skips_before: int = 0, iterations: int = 40,
                     placement: float = 0.0) -> float:
    """The online threshold at fraction `placement` (0 = the shipped one, below 1) of the
    interval of thresholds that spend `budget_left` computes on the distances `future`."""
    lo = SHIPPED(accumulated, future, forced, budget_left, max_skips, skips_before, iterations)
    top = accumulated + sum(d for d in future if d > 0) + 1e-12
    if placement <= 0 or lo >= top:
        return lo
    hi = (SHIPPED(accumulated, future, forced, budget_left - 1, max_skips, skips_before,
                  iterations) if budget_left > 1 else top)
    return lo + min(placement, 0.999) * max(hi - lo, 0.0)


def use(placement: float):
    """Make the pack's target rule place its threshold at `placement` (0: the shipped rule)."""
    if placement <= 0:
        budget.online_threshold = SHIPPED
        return

    def online_threshold(*args, **kwargs):
        return placed_threshold(*args, placement=placement, **kwargs)
    budget.online_threshold = online_threshold
