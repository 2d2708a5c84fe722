"""Experiments on target_speedup's rule (not shipped; target_benchmark.py measures them).

**Placement**: where the online threshold sits among the thresholds that spend the budget.
Every threshold from the smallest that makes at most the budget's computes on the distances
predicted (budget.online_threshold, what the pack ships: fraction 0) up to the smallest that
makes one compute less (fraction 1) makes the same number of computes, but not at the same
calls: the smallest computes each call as early as it may and leaves the most distance
uncomputed before the last call. `placed_threshold` sits at a fraction of that interval;
`use(f)` makes the pack's TargetRule use it (target_benchmark.py --placements).

**First-run warm-up**: on a first run (no profile to plan on), compute the first calls of the
schedule (a fraction of them) before the prediction places the rest; the official TeaCache's
retention steps force the first steps the same way. `use_warmup(f)`; target_benchmark.py
--first-run-shapes M:S:W.

Measured in BENCHMARKS.md (target_speedup, "the front at the same runs").
"""
from __future__ import annotations

import math

from comfyui_teacache.teacache_core import budget
from comfyui_teacache.teacache_core.target import TargetRule

SHIPPED = budget.online_threshold
SHIPPED_CHOOSE = TargetRule._choose


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


def use_warmup(fraction: float):
    """Make the pack's target rule compute the first ceil(fraction x calls) calls of a first
    run (those the budget leaves it free to choose); 0: the shipped rule."""
    if fraction <= 0:
        TargetRule._choose = SHIPPED_CHOOSE
        return

    def _choose(self, run, cb, j, acc, left, future, fut_forced):
        if cb.earlier is None and j < math.ceil(fraction * (j + 1 + len(future))):
            return True, "target: first-run warm-up"
        return SHIPPED_CHOOSE(self, run, cb, j, acc, left, future, fut_forced)
    TargetRule._choose = _choose
