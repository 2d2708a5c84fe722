"""Planning math for target_speedup: how many model calls a cond computes, and where.

Pure torch/python; no ComfyUI. The rule that uses it is target.TargetRule.

Terms, per cond: its model calls are numbered 0..N-1; some are forced (computed whatever the
indicator says: first step(s), last step, before start_step, from end_step on, retention);
max_consecutive_skips forces more. The budget K = the whole number of computed calls whose
speed-up N/K is nearest to the target (in ratio), raised to the fewest computes the forced
calls and max_consecutive_skips allow (then the target is clamped).
"""
from __future__ import annotations

import math


def call_steps(total_steps: int, two_calls: bool, last_sigma_zero: bool = True) -> list:
    """Step index (as RunState.step_index gives it) of every model call of one cond.

    One call per step: 0..S-1. Two calls per step (Heun and other second-order samplers: the
    second call is at the next step's sigma, none in the last step when it ends at sigma 0):
    0, 1, 1, 2, 2, ..., S-1 (and S-1 once more when the schedule does not end at 0)."""
    s = max(int(total_steps), 1)
    if not two_calls:
        return list(range(s))
    out = []
    for i in range(s):
        out.append(i)
        if i < s - 1:
            out.append(i + 1)
        elif not last_sigma_zero:
            out.append(s - 1)
    return out


def min_computes(forced, max_skips: int = 0, skips_before: int = 0) -> int:
    """The fewest computed calls among `forced` (one bool per remaining call, True = forced)
    that the forced calls and max_consecutive_skips (0 = no cap) allow, given `skips_before`
    skips in a row just before them. Greedy (skip whenever allowed) is optimal here."""
    n, run = 0, skips_before
    for f in forced:
        if f or (max_skips and run >= max_skips):
            n += 1
            run = 0
        else:
            run += 1
    return n


def budget(n_calls: int, target: float, minimum: int) -> tuple:
    """(K, clamped): the computed calls per cond for `target` over `n_calls` calls.

    K is floor or ceil of n/target, whichever gives n/K nearer to the target in ratio (so the
    realised speed-up is as close as whole calls allow), at least 1 and at least `minimum`;
    clamped is True when `minimum` raised it (the target is more than the schedule allows)."""
    n = max(int(n_calls), 1)
    if not target or target <= 1:
        return n, False
    lo = max(int(math.floor(n / target)), 1)
    best = min((lo, lo + 1), key=lambda k: (abs(math.log(n / k) - math.log(target)), k))
    best = min(best, n)
    if best < minimum:
        return min(minimum, n), True
    return best, False


def options(forced_now: bool, calls_left_after: int, budget_left: int, min_after_skip: int,
            min_after_compute: int) -> tuple:
    """(can_skip, can_compute) at one call so that exactly the budget can still be spent.

    budget_left: computes still to make, this call included; calls_left_after: calls after
    this one; min_after_*: the fewest computes those calls need if this call skips / computes."""
    can_compute = budget_left - 1 >= min_after_compute and budget_left >= 1
    can_skip = (not forced_now) and budget_left <= calls_left_after \
        and budget_left >= min_after_skip
    if forced_now:
        can_compute = True
    return can_skip, can_compute


def call_moves(sigmas, steps) -> list:
    """How far the schedule moves into each call: |sigma of the previous call - sigma of this
    call| (0 for the first call, and for a call at the sigma of the call before it, as Heun's
    next-step call is). A call's indicator distance compares its input with the previous
    call's, so this is the generic shape of how large that distance can be."""
    out = [0.0]
    for a, b in zip(steps, steps[1:]):
        sa = float(sigmas[a]) if a < len(sigmas) else 0.0
        sb = float(sigmas[b]) if b < len(sigmas) else 0.0
        out.append(abs(sa - sb))
    return out


# On a first run the distance to come is predicted as c * move ** 0.3 / sigma ** 1.25 (sigma of
# the call, at least 0.02): the indicator rises at the end of a schedule, where sigma is small,
# faster than the moves do. Chosen on real sampling with prompts outside the benchmark's (both
# trained proxies, euler / dpmpp_2m / uni_pc at 20-50 steps, 1.5-4x, reuse and extrapolate: mean
# PSNR delta to the threshold front at the same reduction, BENCHMARKS.md, target_speedup): sigma
# power 1.0 / 1.25 / 1.5 / 2.0 gave Wan -0.34 / +0.07 / -0.01 / +0.47 dB (reuse) and -0.36 /
# +0.85 / +0.54 / +0.43 (extrapolate), HunyuanVideo +2.69 / +2.57 / +2.45 / +1.80 and +4.08 /
# +3.18 / +2.99 / +2.15: 1.25 is the only one at or above the front on all four. Leave one proxy
# out with a third proxy (LTX-Video; BENCHMARKS.md, issue 22): each proxy's pick from the two
# others was sigma^2, which on the evaluation prompts was no clear win over 1.25 (Wan -0.4 to
# 0.0 dB, HunyuanVideo -0.5 / -0.9, LTX-Video +0.1 / +0.5), so 1.25 stays; held out on
# LTX-Video its first runs are 0.5-0.7 dB below that proxy's later runs. Measured again against
# fixed thresholds that make the same computes (BENCHMARKS.md, "The front at the same runs"):
# the picks were sigma^2 / sigma^2 / sigma^1.6, none a clear win on the evaluation prompts.
MOVE_POWER = 0.3
SIGMA_POWER = 1.25
SIGMA_FLOOR = 0.02
# The scale c is fitted to the last RECENT_CALLS calls seen, not to every call seen: where a
# model's indicator is high over its first calls and dips before it rises (the LTX-Video
# proxy's), a fit to every call sets c too high, the prediction reserves computes for an end
# smaller than predicted, and the first run skips its early calls and crowds its computes at
# the end. Chosen leave one proxy out (BENCHMARKS.md, "A first-run fit to the recent calls":
# candidates the last 3 calls and the last quarter; each proxy's pick from the two others'
# calibration prompts was 3 calls for HunyuanVideo and LTX-Video, the quarter for Wan; all
# three together pick 3). On the evaluation prompts, first runs' mean delta to the fixed
# thresholds at the same computes (reuse / extrapolate), every call -> last 3 calls: LTX-Video
# (held out) -1.17 / -1.34 -> +0.15 / +1.17 dB, HunyuanVideo (held out) +1.40 / +2.76 ->
# +1.66 / +3.07, Wan +0.17 / +1.21 -> +0.57 / +1.66 (in-sample; its held-out pick, the last
# quarter: +0.41 / +0.47).
RECENT_CALLS = 3


def call_scales(sigmas, steps) -> list:
    """The generic shape of each call's indicator distance on a first run:
    move ** MOVE_POWER / max(sigma, SIGMA_FLOOR) ** SIGMA_POWER (0 where the move is 0)."""
    out = []
    for s, m in zip(steps, call_moves(sigmas, steps)):
        sig = float(sigmas[s]) if s < len(sigmas) else 0.0
        out.append(m ** MOVE_POWER / max(sig, SIGMA_FLOOR) ** SIGMA_POWER if m > 0 else 0.0)
    return out


def predict_distances(seen, seen_scales, future_scales, power: float = 1.0,
                      recent: int | None = None) -> list:
    """The distances still to come on a first run, from the distances seen so far:
    c * scale ** power with c fitted to the last `recent` calls seen (RECENT_CALLS unless
    given; 0: every call seen), their mean where the scales are 0."""
    n = RECENT_CALLS if recent is None else int(recent)
    if n > 0:
        seen, seen_scales = list(seen)[-n:], list(seen_scales)[-n:]
    pairs = [(d, m) for d, m in zip(seen, seen_scales) if _finite(d)]
    if not pairs:
        return [0.0] * len(future_scales)
    mass = sum(d for d, _ in pairs)
    norm = sum(m ** power for _, m in pairs)
    if norm <= 0:
        return [mass / len(pairs)] * len(future_scales)
    c = mass / norm
    return [c * m ** power for m in future_scales]


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def greedy_computes(accumulated: float, future, forced, thresh: float, max_skips: int = 0,
                    skips_before: int = 0) -> int:
    """Computes the fixed-threshold rule makes on the calls `future` (distances, forced flags),
    starting from `accumulated` after `skips_before` skips in a row."""
    n, acc, run = 0, accumulated, skips_before
    for d, f in zip(future, forced):
        acc += d
        if f or acc >= thresh or (max_skips and run >= max_skips):
            n, acc, run = n + 1, 0.0, 0
        else:
            run += 1
    return n


def online_threshold(accumulated: float, future, forced, budget_left: int, max_skips: int = 0,
                     skips_before: int = 0, iterations: int = 40) -> float:
    """The smallest threshold at which the fixed-threshold rule, applied from this call on
    (its accumulated distance `accumulated`) to the distances `future` predicted for the calls
    after it, computes at most `budget_left` calls (this one included). Computing this call
    when `accumulated` reaches it makes the rest of the run the greedy threshold rule that
    spends the budget: the threshold sweep's front, re-aimed at every call."""
    def computes(t):
        if accumulated >= t or (max_skips and skips_before >= max_skips):
            return 1 + greedy_computes(0.0, future, forced, t, max_skips, 0)
        return greedy_computes(accumulated, future, forced, t, max_skips, skips_before + 1)

    hi = accumulated + sum(d for d in future if d > 0) + 1e-12
    if computes(hi) > budget_left:
        return hi
    lo = 0.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if computes(mid) <= budget_left:
            hi = mid
        else:
            lo = mid
    return hi


def equivalent_threshold(records) -> tuple:
    """(largest accumulated distance at which a call was skipped, smallest at which a call the
    indicator chose was computed) over record dicts or StepRecords with rescaled, accumulated,
    computed, reason. A fixed threshold between the two (when the first is below the second)
    makes the same choices; either is None where there is no such call."""
    skip_max, comp_min, acc = None, None, 0.0
    for r in records:
        get = r.get if isinstance(r, dict) else (lambda k, r=r: getattr(r, k))
        resc = get("rescaled")
        if get("computed"):
            reason = get("reason") or ""
            if resc is not None and math.isfinite(resc) and reason.startswith("target:"):
                v = acc + resc
                comp_min = v if comp_min is None else min(comp_min, v)
            acc = 0.0
        else:
            acc = get("accumulated")
            skip_max = acc if skip_max is None else max(skip_max, acc)
    return skip_max, comp_min


def threshold_computes(distances, forced, thresh: float, max_skips: int = 0) -> int:
    """How many calls the fixed-threshold rule computes on these distances (a replay: the
    inputs of a real run would move a little with its own choices). Call 0 is computed; an
    unmeasured distance forces a compute."""
    ds = [d if _finite(d) else math.inf for d in distances]
    return greedy_computes(0.0, ds, [True] + list(forced)[1:], thresh, max_skips)


def equivalent_fixed_threshold(distances, forced, k: int, max_skips: int = 0):
    """The smallest fixed threshold that computes at most k calls on these distances (the
    number to put in rel_l1_thresh for about the same speed-up), or None if none does."""
    finite = [d for d in distances if d is not None and math.isfinite(d) and d > 0]
    hi = sum(finite) * 2 + 1e-12
    if threshold_computes(distances, forced, hi, max_skips) > k:
        return None
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if threshold_computes(distances, forced, mid, max_skips) <= k:
            hi = mid
        else:
            lo = mid
    return hi
