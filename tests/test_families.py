"""The checks every family passes (one entry per family in tests/families.py): a tiny real model
built with ComfyUI's own class, saved, loaded back through ComfyUI's loader, sampled with
ComfyUI's KSampler, transformer-block executions counted inside the model."""
from __future__ import annotations

import pytest
import torch

import nodes

from families import FAMILIES, first_tensor
from harness import count_calls, summary, summary_line
from test_target import expected_k

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.patching import registration_of

def apply(model, thresh, *, target=0.0, estimate="reuse"):
    msg = TeaCacheApply.validate_inputs(thresh, 0, -1, 0, target_speedup=target)
    assert msg is True, msg
    return TeaCacheApply.execute(model, thresh, 0, -1, "auto", "model_device", False, 0,
                                 estimate, target).result[0]


def run(fam, model):
    """(sampled latent as a list of tensors, counted block executions)."""
    lat, pos, neg = fam.inputs()
    dm = model.get_model_object("diffusion_model")
    counter, handles = count_calls(fam.counted(dm))
    try:
        out = nodes.common_ksampler(model, 7, fam.steps, fam.cfg, fam.sampler, fam.scheduler,
                                    pos, neg, lat)[0]["samples"]
    finally:
        for h in handles:
            h.remove()
    return first_tensor(out), counter["n"]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module", params=FAMILIES, ids=lambda f: f.id)
def fam(request, model_dir):
    """(family entry, loaded model, baseline (output, executions) without TeaCache). Module
    scope: pytest runs every check of one family before building the next."""
    f = request.param
    why = f.missing()
    if why:
        pytest.skip(why)
    model = f.build(model_dir)
    base = run(f, model)
    assert all(torch.isfinite(t).all() for t in base[0]), "the tiny model samples NaN/inf"
    yield f, model, base
    del model


def test_detected_and_claimed(fam):
    f, model, _ = fam
    assert type(model.model).__name__ == f.config_class
    dm = model.get_model_object("diffusion_model")
    assert find_adapter(dm).family == f.adapter


def test_threshold_zero_is_bit_identical_and_input_untouched(fam):
    f, model, (base, n_base) = fam
    before = repr(sorted(model.model_options.get("transformer_options", {}).keys())), \
        repr(model.model_options.get("transformer_options", {}).get("patches_replace")), \
        len(model.object_patches)
    patched = apply(model, 0.0)
    out, n = run(f, patched)
    assert n_base > 0 and n == n_base
    assert same(out, base)
    after = repr(sorted(model.model_options.get("transformer_options", {}).keys())), \
        repr(model.model_options.get("transformer_options", {}).get("patches_replace")), \
        len(model.object_patches)
    assert after == before and registration_of(model) is None
    again, n2 = run(f, model)                # the input model still samples as before
    assert same(again, base) and n2 == n_base


def test_huge_threshold_computes_only_the_forced_steps(fam, caplog):
    f, model, (base, n_base) = fam
    patched = apply(model, 1e6)
    out, n = run(f, patched)
    assert n_base % f.steps == 0, "calls per step are not constant"
    assert n == n_base // f.steps * f.forced < n_base
    assert all(torch.isfinite(t).all() for t in out)
    s = summary(patched)
    for label, recs in s["branches"].items():
        assert sum(r["computed"] for r in recs) == f.forced, label
    assert f"skipped {f.steps - f.forced}/{f.steps}" in summary_line(caplog)


def test_two_runs_are_identical(fam):
    f, model, _ = fam
    patched = apply(model, f.moderate)
    a, na = run(f, patched)
    dec = {k: [r["computed"] for r in v] for k, v in summary(patched)["branches"].items()}
    b, nb = run(f, patched)
    assert same(a, b) and na == nb
    assert dec == {k: [r["computed"] for r in v] for k, v in summary(patched)["branches"].items()}


@pytest.mark.parametrize("estimate", ["reuse", "extrapolate"])
def test_target_speedup_is_realised(fam, estimate):
    f, model, (_, n_base) = fam
    patched = apply(model, 0.1, target=2.0, estimate=estimate)
    out, n = run(f, patched)
    assert all(torch.isfinite(t).all() for t in out)
    s = summary(patched)
    k = expected_k(f.steps, 2.0, f.forced)
    for label, recs in s["branches"].items():
        assert sum(r["computed"] for r in recs) == k, label
    assert n == n_base // f.steps * k
