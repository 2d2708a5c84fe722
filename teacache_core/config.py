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

    def __post_init__(self):
        problem = validation_error(self.rel_l1_thresh, self.start_step, self.end_step,
                                   self.max_consecutive_skips, self.cache_device,
                                   self.skip_estimate)
        if problem:
            raise TeaCacheConfigError(problem)

    @property
    def can_skip(self) -> bool:
        return self.rel_l1_thresh > 0

    @property
    def extrapolate(self) -> bool:
        return self.skip_estimate == "extrapolate"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validation_error(rel_l1_thresh, start_step=0, end_step=-1, max_consecutive_skips=0,
                     cache_device="model_device", skip_estimate="reuse"):
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
    return None
