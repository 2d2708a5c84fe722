"""The TeaCache rule: rescale the indicator's relative L1 change, accumulate, decide.

Pure torch/python; no ComfyUI. Follows the official implementation: the accumulator is reset
to 0 on every computed step (forced ones included) and the previous indicator is replaced on
every call, skipped or not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def rescale(coefficients, d: float) -> float:
    """Evaluate the polynomial (highest power first, numpy.poly1d order); identity if None."""
    if coefficients is None:
        return d
    acc = 0.0
    for c in coefficients:
        acc = acc * d + c
    return acc


RETENTION_FIRST_STEPS = 5   # official Wan use_ret_steps


def forced_first_steps(retention: bool, preset_forced_first: int = 0) -> int:
    """How many steps at the start are always computed."""
    if preset_forced_first:
        return preset_forced_first
    return RETENTION_FIRST_STEPS if retention else 1


def forced_reason(step: int, total_steps: int, start_step: int, end_step: int,
                  retention: bool, first_forced: int | None = None) -> str | None:
    """Why this step must be computed whatever the indicator says, or None. Retention mode
    (official use_ret_steps) does not force the last step."""
    first = forced_first_steps(retention) if first_forced is None else max(first_forced, 1)
    if step < first:
        return "first step" if first == 1 else f"first {first} steps"
    if step < start_step:
        return "before start_step"
    if end_step != -1 and step >= end_step:
        return "at or after end_step"
    if not retention and step >= total_steps - 1:
        return "last step"
    return None


@dataclass(frozen=True)
class Decision:
    skip: bool
    accumulated: float      # accumulator after this call (0 when computed)
    rescaled: float | None  # this call's rescaled distance, None when not measured
    reason: str             # why: "below threshold", "threshold reached", a forced reason, ...


def decide(distance: float | None, accumulated: float, *, thresh: float, coefficients,
           forced: str | None, has_cache: bool, consecutive_skips: int,
           max_consecutive_skips: int) -> Decision:
    """One TeaCache decision for one branch at one model call."""
    if distance is None:
        return Decision(False, 0.0, None, forced or "no previous indicator")
    r = rescale(coefficients, distance)
    if forced is not None:
        return Decision(False, 0.0, r, forced)
    acc = accumulated + r
    if not math.isfinite(acc):
        return Decision(False, 0.0, r, "indicator jumped (non-finite distance)")
    if acc >= thresh:
        return Decision(False, 0.0, r, "threshold reached")
    if not has_cache:
        return Decision(False, 0.0, r, "no cached residual yet")
    if max_consecutive_skips and consecutive_skips >= max_consecutive_skips:
        return Decision(False, 0.0, r, "max_consecutive_skips reached")
    return Decision(True, acc, r, "below threshold")


class ThresholdRule:
    """The published rule as an object the per-call path asks: one per sampling run."""

    def __init__(self, thresh: float, coefficients, max_consecutive_skips: int = 0):
        self.thresh = thresh
        self.coefficients = coefficients
        self.max_consecutive_skips = max_consecutive_skips

    def decide(self, run, branch, step: int, distance: float | None, *, forced: str | None,
               has_cache: bool) -> Decision:
        return decide(distance, branch.accumulated, thresh=self.thresh,
                      coefficients=self.coefficients, forced=forced, has_cache=has_cache,
                      consecutive_skips=branch.consecutive_skips,
                      max_consecutive_skips=self.max_consecutive_skips)

    def describe_limit(self) -> str:
        return f"{self.thresh:g}"

    def summary_text(self, run) -> str:
        return f"thresh {self.thresh:g}"

    def summary_fields(self, run) -> dict:
        return {}

    def finish(self, run):
        pass
