"""Generic helpers for family tests: apply the node, sample with ComfyUI's KSampler while
counting block executions, read what TeaCache decided."""
from __future__ import annotations

import math

import torch

import nodes

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.patching import registration_of


def apply(model, thresh, start=0, end=-1, model_type="auto", cache_device="model_device",
          retention=False, max_skips=0, skip_estimate="reuse"):
    """TeaCacheApply exactly as ComfyUI runs it: validate_inputs, then execute."""
    msg = TeaCacheApply.validate_inputs(thresh, start, end, max_skips)
    if msg is not True:
        raise ValueError(msg)
    return TeaCacheApply.execute(model, thresh, start, end, model_type, cache_device, retention,
                                 max_skips, skip_estimate).result[0]


def count_calls(modules):
    """Forward pre-hooks counting calls of the given modules (the test's own model)."""
    counter = {"n": 0}

    def hook(_m, _a):
        counter["n"] += 1

    return counter, [m.register_forward_pre_hook(hook) for m in modules]


def sample(model, latent, positive, negative, *, steps=6, cfg=4.0, seed=3, sampler="euler",
           scheduler="simple", blocks=None, extra_latent=None):
    """KSampler through ComfyUI; returns (samples, block executions). `blocks` = the modules
    to count (default: diffusion_model.blocks). For "forward"-hook families the block module
    itself is always called (its forward is the gate): count a submodule that runs once per
    executed block instead."""
    if blocks is None:
        blocks = list(model.get_model_object("diffusion_model").blocks)
    counter, handles = count_calls(blocks)
    lat = {"samples": latent, **(extra_latent or {})}
    try:
        out = nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, positive,
                                    negative, lat)[0]["samples"]
    finally:
        for h in handles:
            h.remove()
    return out, counter["n"]


def summary(model):
    return registration_of(model).last_summary


def summary_lines(caplog) -> list:
    """TeaCache's INFO summary lines (one per sampling run) captured so far."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("TeaCache:")]


def summary_line(caplog) -> str:
    """The newest TeaCache summary line."""
    return summary_lines(caplog)[-1]


def computed_steps(model, label="cond"):
    return [r["step"] for r in summary(model)["branches"][label] if r["computed"]]


def decisions(model):
    return {k: [(r["step"], r["computed"]) for r in v] for k, v in summary(model)["branches"].items()}


def force_separate_cond_calls(monkeypatch, model):
    """ComfyUI batches cond and uncond only when it thinks memory allows: make it think not."""
    monkeypatch.setattr(model.model, "memory_required", lambda *a, **k: math.inf)


def state_released(model) -> bool:
    """After a run nothing TeaCache made is left: the registration keeps only a summary."""
    reg = registration_of(model)
    return reg is not None and not any(isinstance(v, torch.Tensor) for v in vars(reg).values())


def record_residual_stream(first, head, first_kw=None, head_kw=None):
    """Forward pre-hooks recording, for every model call, what the first block receives and
    what the head after the blocks receives (cloned: some models add to them in place)."""
    seen = {"in": [], "head": []}

    def grab(where, name):
        def hook(_m, a, kw):
            seen[where].append((kw[name] if name else a[0]).detach().clone())
        return hook
    handles = [first.register_forward_pre_hook(grab("in", first_kw), with_kwargs=True),
               head.register_forward_pre_hook(grab("head", head_kw), with_kwargs=True)]
    return seen, handles


def assert_skips_add_the_cached_residual(seen, computed, layout=lambda t: t):
    """A computed call caches head input - first block input; a skipped call must hand the head
    exactly its own first-block input + that residual (here: the whole batch skips or not)."""
    ins = [layout(t) for t in seen["in"]]
    assert len(ins) == len(seen["head"]) == len(computed)
    residual = None
    for x, y, c in zip(ins, seen["head"], computed):
        if c:
            residual = y - x
        else:
            assert torch.equal(y, x + residual)
