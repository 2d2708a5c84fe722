"""Planning math for target_speedup: how many model calls a cond computes, and where.

Pure torch/python; no ComfyUI. The rule that uses it is policy.TargetRule.

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


def adaptive_threshold(accumulated: float, seen_mass: float, seen_weight: float,
                       future_weight: float, free_budget: int) -> float:
    """Threshold that spreads the free budget (computes the indicator may place from this call
    on) evenly over the predicted remaining accumulated distance: the distance still to come is
    predicted as (distance seen per unit of schedule weight) x (weight of the calls to come),
    the weight being each call's sigma step. Each free compute closes one segment; the forced
    compute at the end closes the last: free_budget + 1 segments."""
    if free_budget <= 0:
        return math.inf
    rate = seen_mass / seen_weight if seen_weight > 0 else 0.0
    remaining = accumulated + rate * future_weight
    return remaining / (free_budget + 1)


def call_weights(sigmas, steps) -> list:
    """Schedule weight of each call: the sigma step of the step it belongs to, shared by the
    step's calls (a generic shape of how much the input moves)."""
    counts = {}
    for s in steps:
        counts[s] = counts.get(s, 0) + 1
    out = []
    for s in steps:
        if s + 1 < len(sigmas):
            w = abs(float(sigmas[s]) - float(sigmas[s + 1]))
        else:
            w = 0.0
        out.append(w / counts[s])
    return out


def plan(distances, k: int, forced, max_skips: int = 0):
    """Choose which calls compute: exactly k of them (k >= the forced ones; call 0 always),
    every forced call among them, at most max_skips (0 = no cap) skips in a row, minimising the
    sum over skipped calls of the distance accumulated since the last computed call.

    distances[i]: the (rescaled) distance of call i to call i-1 (distances[0] is unused; None
    or non-finite counts as 0). Dynamic programming over (computes made, last computed call),
    vectorised with torch: O(k n^2). Returns a list of bools, or None if no such choice exists."""
    import torch
    n = len(distances)
    if n == 0 or k < 1 or k > n:
        return None
    d = torch.tensor([0.0] + [float(x) if x is not None and math.isfinite(float(x)) else 0.0
                              for x in list(distances)[1:]], dtype=torch.float64)
    d = d.clamp_min(0.0)
    p = torch.cumsum(d, 0)                                # p[j] = d[1] + ... + d[j]
    q = torch.cat((torch.zeros(1, dtype=torch.float64), torch.cumsum(p, 0)))  # q[j] = p[0..j-1]
    f = torch.tensor([bool(x) for x in forced] + [True], dtype=torch.bool)
    f[0] = True
    # cost[i, j]: compute at i, skip i+1..j-1, next compute at j (j = n: past the end)
    i_idx = torch.arange(n + 1, dtype=torch.float64).unsqueeze(1)
    j_idx = torch.arange(n + 1, dtype=torch.float64).unsqueeze(0)
    gap = j_idx - i_idx - 1
    ii = torch.arange(n + 1).unsqueeze(1).clamp(max=n - 1)
    jj = torch.arange(n + 1).unsqueeze(0)
    pi = p[ii.squeeze(1)].unsqueeze(1)
    qj = q[jj.squeeze(0)].unsqueeze(0)
    qi1 = q[(ii.squeeze(1) + 1).clamp(max=n)].unsqueeze(1)
    cost = (qj - qi1) - gap * pi
    inf = torch.tensor(math.inf, dtype=torch.float64)
    bad = gap < 0
    if max_skips:
        bad = bad | (gap > max_skips)
    # no forced call strictly between i and j
    fc = torch.cat((torch.zeros(1, dtype=torch.long), torch.cumsum(f.long(), 0)))  # fc[j] = f[0..j-1]
    between = fc[jj.squeeze(0)].unsqueeze(0) - fc[(ii.squeeze(1) + 1).clamp(max=n + 1)].unsqueeze(1)
    bad = bad | (between > 0)
    cost = torch.where(bad, inf, cost.clamp_min(0.0))
    cost[n, :] = inf                                     # nothing follows "past the end"
    dp = torch.full((n + 1,), math.inf, dtype=torch.float64)
    dp[0] = 0.0
    back = []
    for _ in range(k):                                   # the (c+1)-th compute, then the end
        tot = dp.unsqueeze(1) + cost
        dp, arg = tot.min(0)
        back.append(arg)
    if not math.isfinite(float(dp[n])):
        return None
    chosen, j = [], n
    for arg in reversed(back):
        j = int(arg[j])
        chosen.append(j)
    out = [False] * n
    for j in chosen:
        out[j] = True
    return out if sum(out) == k and out[0] else None


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
    inputs of a real run would move a little with its own choices)."""
    n, acc, run = 0, 0.0, 0
    for i, (d, f) in enumerate(zip(distances, forced)):
        v = d if d is not None and math.isfinite(d) else math.inf
        acc += v
        if i == 0 or f or acc >= thresh or (max_skips and run >= max_skips):
            n, acc, run = n + 1, 0.0, 0
        else:
            run += 1
    return n


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
