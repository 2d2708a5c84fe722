"""Every TeaCacheApply input at its edges (issue 6), through the node's validate_inputs and
execute as ComfyUI calls them: either a validation error that says what to change (and the
input model untouched), or a documented behaviour that samples to a finite result."""
from __future__ import annotations

import inspect
import math

import pytest
import torch

import comfy.patcher_extension as pe
import nodes
import tiny_models as tm
from harness import count_calls, decisions, summary

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 5
DEFAULTS = dict(rel_l1_thresh=0.1, start_step=0, end_step=-1, model_type="auto",
                cache_device="model_device", retention_mode=False, max_consecutive_skips=0,
                skip_estimate="reuse", target_speedup=0.0)
# what ComfyUI hands validate_inputs: the inputs its signature names
VALIDATED = [n for n in inspect.signature(TeaCacheApply.validate_inputs).parameters]


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_compat_inputs.safetensors", num_layers=2,
                                seed=47))


def node(model, **over):
    """validate_inputs (ComfyUI calls it with the validated inputs before running anything),
    then execute. Returns the patched model, or the error text."""
    kw = {**DEFAULTS, **over}
    msg = TeaCacheApply.validate_inputs(**{k: kw[k] for k in VALIDATED})
    if msg is not True:
        return str(msg)
    try:
        return TeaCacheApply.execute(model, **kw).result[0]
    except ValueError as e:
        return str(e)


def run(model):
    pos, neg = tm.wan_conds()
    counter, hs = count_calls(model.get_model_object("diffusion_model").blocks)
    try:
        out = nodes.common_ksampler(model, 5, STEPS, 4.0, "euler", "simple", pos, neg,
                                    {"samples": torch.zeros(1, 16, 3, 8, 8)})[0]["samples"]
    finally:
        for h in hs:
            h.remove()
    return out, counter["n"]


REJECTED = [
    ("rel_l1_thresh", -0.1, "must be >= 0"),
    ("rel_l1_thresh", -1e30, "must be >= 0"),
    ("rel_l1_thresh", math.nan, "NaN: set a number >= 0"),
    ("rel_l1_thresh", math.inf, "infinite: set a finite number"),
    ("rel_l1_thresh", -math.inf, "infinite"),
    ("rel_l1_thresh", "abc", "must be a number"),
    ("rel_l1_thresh", None, "must be a number"),
    ("start_step", -1, "whole number >= 0"),
    ("start_step", 2.5, "whole number >= 0"),
    ("start_step", None, "whole number >= 0"),
    ("end_step", -2, "use -1 for 'through the last step'"),
    ("end_step", 0, "must be greater than start_step (0)"),
    ("end_step", 1.5, "use -1"),
    ("max_consecutive_skips", -1, "use 0 (no cap)"),
    ("max_consecutive_skips", 0.5, "use 0 (no cap)"),
    ("model_type", "no_such_preset", "model_type 'no_such_preset' is"),
    ("model_type", "", "model_type '' is"),
    ("model_type", "wan2.1_t2v_14B", "dim 128"),                 # a preset for another size
    ("model_type", "flux", "Wan"),                             # a preset of another family
    ("model_type", "calib:does_not_exist", "does_not_exist"),
    ("model_type", "calib:../escape", "calib"),
    ("cache_device", "gpu", "choose one of model_device, cpu"),
    ("skip_estimate", "quadratic", "choose one of reuse, extrapolate"),
    ("skip_estimate", None, "choose one of reuse, extrapolate"),
]


@pytest.mark.parametrize("name, value, fragment", REJECTED,
                         ids=[f"{n}={v!r}" for n, v, _ in REJECTED])
def test_bad_inputs_are_rejected_with_a_fix_it_message(wan, name, value, fragment):
    out = node(wan, **{name: value})
    assert isinstance(out, str), f"{name}={value!r} was accepted"
    assert fragment in out
    assert not wan.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)     # nothing was changed


def test_start_after_end_names_both(wan):
    out = node(wan, start_step=7, end_step=3)
    assert "end_step (3) must be greater than start_step (7)" in out


@pytest.fixture(scope="module")
def base(wan):
    return run(wan)


def test_zero_threshold_is_exact(wan, base):
    out, n = run(node(wan, rel_l1_thresh=0.0))
    assert torch.equal(out, base[0]) and n == base[1]


@pytest.mark.parametrize("thresh", [1e6, 1e30, 10.0])
def test_huge_threshold_skips_all_but_the_forced_steps(wan, thresh):
    m = node(wan, rel_l1_thresh=thresh)
    out, n = run(m)
    assert torch.isfinite(out).all()
    assert [s for s, c in decisions(m)["cond"] if c] == [0, STEPS - 1]


def test_tiny_threshold_behaves_like_zero_on_a_moving_model(wan, base):
    m = node(wan, rel_l1_thresh=1e-12)
    out, _ = run(m)
    assert torch.equal(out, base[0])
    assert summary(m)["calls_blocks_ran"] == STEPS


@pytest.mark.parametrize("start", [STEPS - 1, STEPS, 10_000, 10**9])
def test_start_step_at_or_beyond_the_schedule_computes_everything(wan, base, start):
    m = node(wan, rel_l1_thresh=1e6, start_step=start)
    out, n = run(m)
    assert torch.equal(out, base[0]) and n == base[1]


@pytest.mark.parametrize("end", [STEPS, STEPS + 1, 10**9])
def test_end_step_beyond_the_schedule_changes_nothing(wan, end):
    m = node(wan, rel_l1_thresh=1e6, end_step=end)
    run(m)
    assert [s for s, c in decisions(m)["cond"] if c] == [0, STEPS - 1]


def test_end_step_inside_the_schedule(wan):
    m = node(wan, rel_l1_thresh=1e6, start_step=1, end_step=3)
    run(m)
    assert [s for s, c in decisions(m)["cond"] if c] == [0, 3, 4]


@pytest.mark.parametrize("cap, computed", [(1, [0, 2, 4]), (10**6, [0, STEPS - 1])])
def test_max_consecutive_skips_edges(wan, cap, computed):
    m = node(wan, rel_l1_thresh=1e6, max_consecutive_skips=cap)
    run(m)
    assert [s for s, c in decisions(m)["cond"] if c] == computed


def test_retention_mode_with_fewer_steps_than_it_forces(wan, base):
    """Retention mode computes the first 5 steps: with 5 steps or fewer, all of them."""
    m = node(wan, rel_l1_thresh=1e6, retention_mode=True)
    out, n = run(m)
    assert torch.equal(out, base[0]) and n == base[1]


@pytest.mark.parametrize("estimate", ["reuse", "extrapolate"])
@pytest.mark.parametrize("device", ["model_device", "cpu"])
def test_cache_devices(wan, device, estimate):
    m = node(wan, rel_l1_thresh=0.2, cache_device=device, skip_estimate=estimate)
    out, _ = run(m)
    ref, _ = run(node(wan, rel_l1_thresh=0.2, skip_estimate=estimate))
    assert torch.equal(out, ref)
    assert any(not c for _, c in decisions(m)["cond"])
