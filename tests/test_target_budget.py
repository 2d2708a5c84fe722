"""target_speedup planning math (teacache_core/budget.py) on toy sequences: pure python."""
from __future__ import annotations

import math
import random

import pytest

from comfyui_teacache.teacache_core import budget


def _greedy(d, forced, t, ms=0):
    sel, acc, run = [], 0.0, 0
    for i, (x, f) in enumerate(zip(d, forced)):
        acc += x if x is not None else math.inf
        c = i == 0 or f or acc >= t or (ms and run >= ms)
        sel.append(c)
        acc, run = (0.0, 0) if c else (acc, run + 1)
    return sel


def _max_skipped(d, sel):
    acc, worst = 0.0, 0.0
    for x, c in zip(d, sel):
        acc = 0.0 if c else acc + x
        worst = max(worst, acc)
    return worst


def test_online_threshold_with_the_true_distances_is_the_greedy_front():
    """Deciding every call with the online threshold on the exact distances to come spends at
    most the budget, and never skips at a larger accumulated distance than the fixed threshold
    that spends the budget (the sweep's front). (The choices can differ: once the front's
    threshold has left budget unspent ahead, the online one drops below it.)"""
    rng = random.Random(0)
    for _ in range(300):
        n, ms = rng.randint(3, 30), rng.choice([0, 0, 2, 3])
        d = [None] + [rng.random() ** 3 for _ in range(n - 1)]
        forced = [i == 0 or i == n - 1 for i in range(n)]
        k = rng.randint(budget.min_computes(forced, ms), n)
        t = budget.equivalent_fixed_threshold(d, forced, k, ms)
        want = _greedy(d, forced, t, ms)
        sel, acc, run, made = [], 0.0, 0, 0
        for j in range(n):
            if forced[j]:
                c = True
            else:
                acc += d[j]
                tau = budget.online_threshold(acc, d[j + 1:], forced[j + 1:], k - made, ms, run)
                c = acc >= tau or (ms and run >= ms)
            sel.append(c)
            made += c
            acc, run = (0.0, 0) if c else (acc, run + 1)
        assert made <= k
        assert _max_skipped(d, sel) <= _max_skipped(d, want) + 1e-9


def test_online_threshold_puts_computes_where_the_distance_is():
    d = [0.01, 0.01, 1.0, 0.01, 0.01, 1.0, 0.01, 0.01]          # the calls after call 0
    forced = [False] * 7 + [True]
    tau = budget.online_threshold(0.0, d, forced, 3)
    assert budget.greedy_computes(0.0, d, forced, tau) == 3
    assert 0.02 < tau <= 1.0
    assert _greedy([None] + d, [True] + forced, tau) == [True, False, False, True, False, False,
                                                         True, False, True]


def test_predicted_distances_follow_the_schedule_moves():
    moves = budget.call_moves([1.0, 0.9, 0.7, 0.4, 0.0], [0, 1, 2, 3, 4])
    assert moves == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert budget.call_moves([1.0, 0.5, 0.0], [0, 1, 1, 2]) == pytest.approx([0, 0.5, 0, 0.5])
    pred = budget.predict_distances([0.2], [0.1], [0.2, 0.4], power=1.0)
    assert pred == pytest.approx([0.4, 0.8])
    pred = budget.predict_distances([0.2, None], [0.1, 0.1], [0.4], power=0.5)
    assert pred == pytest.approx([0.4])
    assert budget.predict_distances([0.3], [0.0], [0.0, 0.5]) == pytest.approx([0.3, 0.3])
    assert budget.predict_distances([], [], [0.5]) == [0.0]
    # the first-run shape: move ** 0.3 / sigma ** 1.25 (sigma at least 0.02; 0 where the move is 0)
    scales = budget.call_scales([1.0, 0.9, 0.5, 0.01, 0.0], [0, 1, 2, 3])
    p = 1.25
    assert scales == pytest.approx([0.0, 0.1 ** 0.3 / 0.9 ** p, 0.4 ** 0.3 / 0.5 ** p,
                                    0.49 ** 0.3 / 0.02 ** p])
    assert budget.call_scales([1.0, 0.5, 0.0], [0, 1, 1]) == pytest.approx([0, 0.5 ** 0.3 / 0.5 ** p,
                                                                        0])
    # the same moves at a lower sigma predict larger distances: the end of a schedule rises
    sig = [1.0, 0.95, 0.9, 0.85, 0.8, 0.6, 0.3, 0.1, 0.0]
    sc = budget.call_scales(sig, list(range(8)))
    pred = budget.predict_distances([0.05] * 4, sc[1:5], sc[5:])
    assert pred[0] < pred[1] < pred[2] and pred[2] > 3 * 0.05
    # the scale is fitted to the last RECENT_CALLS calls seen (0: every call seen): high first
    # calls (an indicator that falls before it rises) do not set the calls to come
    assert budget.RECENT_CALLS == 3
    seen = [0.4, 0.2, None, 0.05, 0.05, 0.05]
    assert budget.predict_distances(seen, [1.0] * 6, [1.0, 2.0]) == pytest.approx([0.05, 0.1])
    assert budget.predict_distances(seen, [1.0] * 6, [1.0], recent=0) == pytest.approx([0.75 / 5])
    assert budget.predict_distances(seen, [1.0] * 6, [1.0], recent=4) == pytest.approx([0.05])


def test_budget_nearest_in_ratio_and_clamped():
    assert budget.budget(20, 2.0, 2) == (10, False)
    assert budget.budget(20, 3.0, 2) == (7, False)        # 2.86x beats 3.33x
    assert budget.budget(30, 4.0, 2) == (8, False)        # 3.75x beats 4.29x
    assert budget.budget(8, 1.0, 2) == (8, False)
    assert budget.budget(8, 100.0, 2) == (2, True)
    assert budget.budget(10, 4.0, 5) == (5, True)
    for n in range(8, 101):
        for t in (1.5, 2, 3, 4):
            k, _ = budget.budget(n, t, 2)
            best = min(abs(math.log(n / kk / t)) for kk in range(2, n + 1))
            assert abs(math.log(n / k / t)) == pytest.approx(best)


def test_min_computes_and_options():
    assert budget.min_computes([False] * 5 + [True]) == 1
    assert budget.min_computes([False] * 6, max_skips=2) == 2
    assert budget.min_computes([False] * 2, max_skips=2, skips_before=2) == 1
    # 3 computes left, 3 calls after this one: skipping leaves exactly enough
    assert budget.options(False, 3, 3, 1, 1) == (True, True)
    # 4 left, 3 after: must compute
    assert budget.options(False, 3, 4, 1, 1) == (False, True)
    # 1 left and a forced call ahead: must skip
    assert budget.options(False, 3, 1, 1, 1) == (True, False)


def test_call_steps():
    assert budget.call_steps(4, False) == [0, 1, 2, 3]
    assert budget.call_steps(4, True, True) == [0, 1, 1, 2, 2, 3, 3]       # Heun: 2S-1
    assert budget.call_steps(3, True, False) == [0, 1, 1, 2, 2, 2]         # partial: 2S


def test_equivalent_thresholds():
    recs = [dict(rescaled=None, accumulated=0.0, computed=True, reason="first step"),
            dict(rescaled=0.1, accumulated=0.1, computed=False, reason="target: below"),
            dict(rescaled=0.2, accumulated=0.0, computed=True, reason="target: adaptive"),
            dict(rescaled=0.05, accumulated=0.05, computed=False, reason="target: below"),
            dict(rescaled=0.1, accumulated=0.0, computed=True, reason="last step")]
    assert budget.equivalent_threshold(recs) == (0.1, pytest.approx(0.3))
    d = [r["rescaled"] for r in recs]
    forced = [True, False, False, False, True]
    thr = budget.equivalent_fixed_threshold(d, forced, 3)
    assert budget.threshold_computes(d, forced, thr) == 3
    assert budget.threshold_computes(d, forced, thr * 0.99) > 3
