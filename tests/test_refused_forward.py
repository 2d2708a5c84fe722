"""Families of the newest ComfyUI that TeaCache recognises and refuses: loading the model and
applying the TeaCache node raises a clear error (what the model is, why caching cannot help,
what to do) before any sampling, and the input model is left untouched.

- SeedVR2 (NaDiT): a one-step restoration model; ComfyUI samples it with KSampler steps 1.
- PiD (PixelDiT's Pixel Diffusion Decoder): a distilled decoder sampled in 4 steps.
"""
from __future__ import annotations

import importlib.util

import pytest

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.adapters import UnsupportedModelError, find_adapter
from comfyui_teacache.teacache_core.patching import registration_of


def _needs(module):
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return pytest.mark.skipif(not found, reason=f"this ComfyUI has no {module} (added in a "
                                                "newer ComfyUI)")


def _apply(model):
    return TeaCacheApply.execute(model, 0.2, 0, -1, "auto", "model_device", False, 0, "reuse",
                                 0.0)


def _assert_refused(model, config_class, words):
    assert type(model.model).__name__ == config_class          # ComfyUI's detection
    before = (len(model.object_patches), repr(model.model_options.get("transformer_options")))
    with pytest.raises(UnsupportedModelError) as e:
        find_adapter(model.get_model_object("diffusion_model"))
    with pytest.raises(ValueError) as node_error:                # what the page shows
        _apply(model)
    msg = str(node_error.value)
    assert msg.startswith("TeaCache: ") and str(e.value) in msg
    for w in words:
        assert w in msg, (w, msg)
    assert "Remove the TeaCache node" in msg                     # what to do
    after = (len(model.object_patches), repr(model.model_options.get("transformer_options")))
    assert after == before and registration_of(model) is None


@_needs("comfy.ldm.seedvr.model")
def test_seedvr2_is_refused_before_sampling(model_dir):
    from tiny import seedvr
    model = seedvr.build(model_dir)
    _assert_refused(model, "SeedVR2", ["NaDiT", "SeedVR2", "one-step", "sampled in 1 step"])


@_needs("comfy.ldm.pixeldit.pid")
def test_pid_is_refused_before_sampling(model_dir):
    from tiny import pixeldit
    model = pixeldit.build_pid(model_dir)
    _assert_refused(model, "PiD", ["PidNet", "PiD", "sampled in 4 steps"])
