"""User settings of one TeaCacheApply node, validated with messages that say what to change."""
from __future__ import annotations

import math
from dataclasses import dataclass

CACHE_DEVICES = ("model_device", "cpu")
# What a skipped call adds to its input: the residual cached at the last computed call
# (published TeaCache), or the line through the last two computed residuals (see BENCHMARKS.md).
SKIP_ESTIMATES = ("reuse", "extrapolate")


class TeaCacheConfigError(ValueError):
    """A node input that cannot work; the message says what to change."""


@dataclass(frozen=True)
class TeaCacheConfig:
    rel_l1_thresh: float
    start_step: int = 0
    end_step: int = -1
    model_type: str = "auto"
    cache_device: str = "model_device"
    retention_mode: bool = False
    max_consecutive_skips: int = 0
    skip_estimate: str = "reuse"
    target_speedup: float = 0.0     # 0 = off (the threshold rule); >= 1: see TargetRule

    def __post_init__(self):
        problem = validation_error(self.rel_l1_thresh, self.start_step, self.end_step,
                                   self.max_consecutive_skips, self.cache_device,
                                   self.skip_estimate, self.target_speedup)
        if problem:
            raise TeaCacheConfigError(problem)
        object.__setattr__(self, "target_speedup", float(self.target_speedup))

    @property
    def can_skip(self) -> bool:
        if self.target_speedup:         # a target wins over the threshold
            return self.target_speedup > 1
        return self.rel_l1_thresh > 0

    @property
    def extrapolate(self) -> bool:
        return self.skip_estimate == "extrapolate"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


TARGET_MAX = 100.0


def target_error(target_speedup):
    """A fix-it message for a bad target_speedup, or None. 0 = off (the threshold rule);
    1 = every call computed (no skipping); > 1 up to TARGET_MAX = the target speed-up."""
    try:
        t = float(target_speedup)
    except (TypeError, ValueError):
        return f"target_speedup must be a number, got {target_speedup!r}."
    if math.isnan(t) or math.isinf(t):
        return (f"target_speedup is {t}: set 0 (off: rel_l1_thresh decides) or a speed-up "
                f"between 1 and {TARGET_MAX:g}, e.g. 2 to compute about half the model calls.")
    if t < 0:
        return (f"target_speedup is {t:g}: it cannot be negative. Set 0 (off: rel_l1_thresh "
                f"decides) or a speed-up between 1 and {TARGET_MAX:g}, e.g. 2.")
    if 0 < t < 1:
        return (f"target_speedup is {t:g}: a speed-up below 1 would be a slow-down. Set 0 (off: "
                f"rel_l1_thresh decides), 1 (no skipping) or more, e.g. 2 for about twice as "
                f"fast (did you mean {1 / t:.3g}?).")
    if t > TARGET_MAX:
        return (f"target_speedup is {t:g}: at most {TARGET_MAX:g}. A target above what the "
                "schedule allows is clamped (computed: first and last step at least), so "
                f"{TARGET_MAX:g} already means 'as fast as the schedule allows'.")
    return None


def validation_error(rel_l1_thresh, start_step=0, end_step=-1, max_consecutive_skips=0,
                     cache_device="model_device", skip_estimate="reuse", target_speedup=0.0):
    """Return a fix-it message for the first bad value, or None when all are usable."""
    try:
        t = float(rel_l1_thresh)
    except (TypeError, ValueError):
        return f"rel_l1_thresh must be a number, got {rel_l1_thresh!r}."
    if math.isnan(t):
        return "rel_l1_thresh is NaN: set a number >= 0 (0 disables skipping; Wan 2.1 1.3B: 0.05-0.08)."
    if math.isinf(t):
        return "rel_l1_thresh is infinite: set a finite number >= 0 (typical values are 0.05-0.3)."
    if t < 0:
        return f"rel_l1_thresh is {t}: it must be >= 0 (0 disables skipping)."
    if not _is_int(start_step) or start_step < 0:
        return f"start_step is {start_step!r}: it must be a whole number >= 0."
    if not _is_int(end_step) or end_step < -1:
        return f"end_step is {end_step!r}: use -1 for 'through the last step' or a step number >= 0."
    if end_step != -1 and end_step <= start_step:
        return (f"end_step ({end_step}) must be greater than start_step ({start_step}), "
                "or -1 for 'through the last step'; otherwise no step could ever be skipped.")
    if not _is_int(max_consecutive_skips) or max_consecutive_skips < 0:
        return f"max_consecutive_skips is {max_consecutive_skips!r}: use 0 (no cap) or a whole number >= 1."
    if cache_device not in CACHE_DEVICES:
        return f"cache_device is {cache_device!r}: choose one of {', '.join(CACHE_DEVICES)}."
    if skip_estimate not in SKIP_ESTIMATES:
        return f"skip_estimate is {skip_estimate!r}: choose one of {', '.join(SKIP_ESTIMATES)}."
    return target_error(target_speedup)
