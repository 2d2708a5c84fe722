"""The placement oracle of issue 25 (benchmarks/oracle.py) on a tiny real Wan, 8 steps:
prefix replay gives the same latent as recomputing, bit for bit; a fixed schedule drives the
pack's engine exactly as the pack's own rule does when it chooses those steps; and the oracle's
best schedule is at least as good as the pack's threshold rule at the same computed steps."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import harness as h
import tiny_models as tm

from comfyui_teacache.teacache_core.patching import registration_of

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))      # for benchmarks/ (after ComfyUI: the pack has a nodes/ too)

from benchmarks import oracle  # noqa: E402
from benchmarks.metrics import psnr  # noqa: E402

STEPS = 8
CFG = 4.0


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "oracle_wan.safetensors", num_layers=3, seed=5))


@pytest.fixture(scope="module")
def world():
    pos, neg = tm.wan_conds(seed=1)
    return SimpleNamespace(eval_prompts=["p0"], positive=lambda p: pos, negative=lambda: neg,
                           latent=torch.zeros(1, 16, 3, 8, 8))


def _runner(wan, world, estimate="extrapolate", replay=True):
    return oracle.OracleRunner(wan, world, world.latent, STEPS, CFG, "euler", estimate,
                               replay=replay)


def _reference(wan, world):
    with torch.inference_mode():
        out, _ = h.sample(wan, world.latent, world.positive(0), world.negative(), steps=STEPS,
                          cfg=CFG, seed=100)
    return out


@pytest.mark.parametrize("estimate", ["extrapolate", "quad", "indline"])
def test_prefix_replay_is_bit_identical_to_recomputing(wan, world, estimate):
    replayed, fresh = _runner(wan, world, estimate), _runner(wan, world, estimate, replay=False)
    full = set(range(STEPS))
    # a base, then schedules sharing ever shorter prefixes with the ones before
    schedules = [full, full - {6}, full - {6, 3}, full - {2}, {0, 2, 5, 7}, {0, 2, 5}, {0, 3, 7}]
    for s in schedules:
        a = replayed.sample(0, s)
        b = fresh.sample(0, s)
        assert torch.equal(a, b), f"replayed schedule {sorted(s)} differs from recomputing"
    # every call of the longest decision prefix shared with an earlier schedule was replayed
    # (cond and uncond are batched: one model call per step)
    bits = [[int(i in s) for i in range(STEPS)] for s in schedules]

    def shared(a, b):
        n = 0
        while n < STEPS and a[n] == b[n]:
            n += 1
        return n
    expected = sum(max([shared(b, c) for c in bits[:i]] + [0]) for i, b in enumerate(bits))
    assert replayed.caches[0].hits == expected > 2 * len(schedules)
    assert not fresh.caches


def test_the_all_steps_schedule_is_the_uncached_run(wan, world):
    assert torch.equal(_runner(wan, world, replay=False).sample(0, range(STEPS)),
                       _reference(wan, world))


def _pack_rule(wan, world, thresh):
    m = h.apply(wan, thresh, model_type="uncalibrated", skip_estimate="extrapolate")
    with torch.inference_mode():
        out, _ = h.sample(m, world.latent, world.positive(0), world.negative(), steps=STEPS,
                          cfg=CFG, seed=100)
    s = registration_of(m).last_summary
    per_cond = [{r["step"] for r in recs if r["computed"]} for recs in s["branches"].values()]
    return out, per_cond, s["calls_blocks_ran"]


def test_oracle_beats_the_threshold_rule_at_the_same_steps(wan, world):
    ref = _reference(wan, world)
    runner = _runner(wan, world)
    search = oracle.PromptSearch(runner, 0, ref, psnr)
    path = search.greedy(2)                     # the exact greedy (8 steps: cheap)
    compared = 0
    for thresh in (0.05, 0.1, 0.2, 0.4):
        out, per_cond, ran = _pack_rule(wan, world, thresh)
        if ran >= STEPS or ran < 2:
            continue
        rule_psnr = psnr(out, ref)
        if all(s == per_cond[0] for s in per_cond):
            # cond and uncond chose the same steps: the fixed schedule reproduces the rule's run
            assert torch.equal(runner.sample(0, per_cond[0]), out)
        best, val = search.local(path[ran][0])
        assert len(best) == ran
        assert val >= rule_psnr, (thresh, sorted(best), val, rule_psnr)
        compared += 1
    assert compared >= 2            # the sweep reached at least two step counts


def test_quadratic_estimate_is_exact_on_a_parabola_and_capped():
    from comfyui_teacache.teacache_core.state import BranchState
    from benchmarks.skip_estimates import make_estimator
    f = lambda s: torch.tensor([1 + 2 * s + 3 * s * s, -s * s])     # noqa: E731
    run = SimpleNamespace(keep=lambda t: t)

    def branch(est, sigmas):
        b = BranchState(label="cond")
        for s in sigmas:
            est.store(run, b, f(s), s, True)
        return b
    exact = make_estimator("quad-c10-r10")
    b = branch(exact, (0.9, 0.7, 0.6))
    assert torch.allclose(exact.add_to(run, b, torch.zeros(2), 0.5), f(0.5))
    # default: half an interval ahead at most, as extrapolate
    capped = make_estimator("quad")
    b = branch(capped, (0.9, 0.7, 0.6))
    assert torch.allclose(capped.add_to(run, b, torch.zeros(2), 0.3), f(0.55))
    # the last interval 4x the one before (> rho_max 3): extrapolate's line only
    b = branch(capped, (0.9, 0.85, 0.65))
    line = f(0.65) + 0.5 * (f(0.65) - f(0.85))
    assert torch.allclose(capped.add_to(run, b, torch.zeros(2), 0.3), line)


def test_exhaustive_is_the_best_of_every_schedule_and_bounds_the_search(wan, world):
    import itertools
    import math
    ref = _reference(wan, world)
    search = oracle.PromptSearch(_runner(wan, world), 0, ref, psnr)
    k = 3
    best, val = search.exhaustive(k)
    assert len(best) == k and 0 in best
    assert len(search.memo) == math.comb(STEPS - 1, k - 1)       # every schedule, once
    every = [search.memo[frozenset(r) | {0}] for r in itertools.combinations(range(1, STEPS), 2)]
    assert val == max(every) and search.score(best) == val
    greedy = search.greedy(k)
    _, local = search.local(greedy[k][0])
    assert local <= val


def test_indicator_line_follows_the_indicator_not_sigma():
    from comfyui_teacache.teacache_core.state import BranchState, StepRecord
    from benchmarks.skip_estimates import make_estimator
    run = SimpleNamespace(keep=lambda t: t)
    est = make_estimator("indline-c1")
    b = BranchState(label="cond")
    r0, r1 = torch.tensor([1.0, 0.0]), torch.tensor([2.0, 1.0])
    rec = lambda resc, acc, comp: StepRecord(0, 0.0, resc, resc, acc, comp, "")   # noqa: E731
    b.records = [rec(None, 0.0, True)]
    est.store(run, b, r0, 0.9, True)
    # the interval to the next compute: a skip (0.1) then the compute (0.3): span 0.4
    b.records += [rec(0.1, 0.1, False), rec(0.3, 0.0, True)]
    est.store(run, b, r1, 0.8, True)
    assert b.indicator_span == pytest.approx(0.4)
    b.accumulated = 0.2                      # half the last interval's distance: u = 0.5
    out = est.add_to(run, b, torch.zeros(2), 0.7999)      # sigma says almost 0
    assert torch.allclose(out, r1 + 0.5 * (r1 - r0))
    b.accumulated = 4.0                      # capped at lin_cap 1
    assert torch.allclose(est.add_to(run, b, torch.zeros(2), 0.79), r1 + (r1 - r0))
    b.indicator_span = float("nan")          # no finite span: the sigma line (extrapolate)
    assert torch.allclose(est.add_to(run, b, torch.zeros(2), 0.75), r1 + 0.5 * (r1 - r0))
