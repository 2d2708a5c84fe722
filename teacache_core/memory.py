"""How much memory TeaCache adds, by formula (README "Memory"; checked by tests/test_memory.py
and measured by benchmarks/memory_benchmark.py and benchmarks/gpu_benchmark.py).

Per cond (one prompt of the batch: cond, uncond, ...), R = tokens x width x bytes of the model's
dtype (one cond's hidden state; for HunyuanVideo the image tokens only), I = the indicator
(R for the modulated input, a few KB for a timestep embedding or modulation vector).

Held from call to call, on cache_device:  conds x (k x R + I)   (k = 1 reuse, 2 extrapolate)
Added during a computed model call, on the model's device:
  cache_device=model_device: the cached output of each cond of the batch that skips while
      another computes, R each (a computing cond copies its input into the residual it
      replaces, so that costs nothing);
  cache_device=cpu: one copy of the computing conds' block input, R each; only the previous
      indicators and residuals live in (pinned) CPU memory.
Nothing else of hidden-state size: no float32 copy (reductions run on bounded slices), no
per-block tensor, no second copy when cond and uncond are batched.

The generic path (adapters/generic.py) keeps one residual per block stack and stream: R is then
the sum over the spans, e.g. a Flux-like model holds its double blocks' image and text residuals
and its single blocks' joint (text + image) residual, about 2x what a family adapter holds
(`generic_residual_tokens`). Its indicator is the first block's input (hidden-state size).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemoryEstimate:
    device_held: int        # bytes on the model's device between calls
    device_peak: int        # most bytes on the model's device during a call
    host_held: int          # bytes in CPU memory (cache_device=cpu)


def estimate(tokens: int, width: int, dtype_bytes: int = 2, conds: int = 2,
             conds_per_call: int | None = None, extrapolate: bool = False,
             indicator_is_hidden: bool = True, indicator_bytes: int = 0,
             cache_device: str = "model_device") -> MemoryEstimate:
    """The formula above. conds_per_call: conds batched into one model call (default: all)."""
    r = tokens * width * dtype_bytes
    i = r if indicator_is_hidden else indicator_bytes
    k = 2 if extrapolate else 1
    per_call = conds if conds_per_call is None else conds_per_call
    held = conds * (k * r + i)
    if cache_device == "cpu":
        return MemoryEstimate(0, per_call * r, held)
    return MemoryEstimate(held, held + (per_call - 1) * r, 0)


def generic_residual_tokens(stacks) -> int:
    """Tokens the generic path keeps a residual of, per cond and per residual kept (k):
    `stacks` = [[tokens of each stream of the stack], ...] (all at the model's width)."""
    return sum(sum(streams) for streams in stacks)
