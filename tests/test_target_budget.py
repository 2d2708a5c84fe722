"""target_speedup planning math (teacache_core/budget.py) on toy sequences: pure python."""
from __future__ import annotations

import itertools
import math
import random

import pytest

from comfyui_teacache.teacache_core import budget


def _cost(d, sel):
    acc, c = 0.0, 0.0
    for i in range(1, len(d)):
        if sel[i]:
            acc = 0.0
        else:
            acc += d[i]
            c += acc
    return c


def _valid(sel, forced, ms):
    if not sel[0] or any(f and not s for f, s in zip(forced, sel)):
        return False
    run = 0
    for s in sel:
        run = 0 if s else run + 1
        if ms and run > ms:
            return False
    return True


def test_plan_is_the_optimum_of_brute_force():
    rng = random.Random(0)
    for _ in range(200):
        n, ms = rng.randint(2, 9), rng.choice([0, 1, 2])
        k = rng.randint(1, n)
        d = [None] + [rng.random() for _ in range(n - 1)]
        forced = [rng.random() < 0.2 for _ in range(n)]
        best = None
        for comb in itertools.combinations(range(n), k):
            sel = [i in comb for i in range(n)]
            if _valid(sel, forced, ms):
                c = _cost(d, sel)
                best = c if best is None else min(best, c)
        got = budget.plan(d, k, forced, ms)
        if best is None:
            assert got is None
        else:
            assert sum(got) == k and _valid(got, forced, ms)
            assert _cost(d, got) == pytest.approx(best, abs=1e-9)


def test_plan_puts_computes_where_the_distance_is():
    d = [None, 0.01, 0.01, 1.0, 0.01, 0.01, 1.0, 0.01, 0.01]
    sel = budget.plan(d, 4, [True] + [False] * 7 + [True])
    assert sel == [True, False, False, True, False, False, True, False, True]


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


def test_adaptive_threshold_spreads_the_budget():
    # rate 1 per unit weight, 9 units to come, acc 1: mass 10 over 4 free computes + the end
    assert budget.adaptive_threshold(1.0, 2.0, 2.0, 9.0, 4) == pytest.approx(2.0)
    assert budget.adaptive_threshold(1.0, 2.0, 2.0, 9.0, 0) == math.inf


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
