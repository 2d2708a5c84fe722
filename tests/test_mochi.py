"""TeaCacheApply on a tiny real Mochi (comfy/ldm/genmo AsymmDiTJoint).

ComfyUI's detection always builds the full 10B config for a Mochi state dict, so the tiny model
is loaded the way comfy.sd.load_diffusion_model_state_dict continues after detection: the
supported_models config class, get_model, a ModelPatcher, load_model_weights. Mochi's forward
calls no DIFFUSION_MODEL wrappers; TeaCache's per-call context comes from APPLY_MODEL."""
from __future__ import annotations

import pytest
import torch

import comfy.patcher_extension as pe
from harness import (apply, decisions, force_separate_cond_calls, sample, state_released,
                     summary)
from tiny.mochi import TINY, build_mochi, conds, latent, load_mochi

from comfyui_teacache.teacache_core.adapters import find_adapter
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 6
MODERATE = 0.12          # skips some steps of the tiny seeded model, not all (checked)


def run(model, steps=STEPS):
    pos, neg = conds()
    return sample(model, latent(), pos, neg, steps=steps, cfg=4.0)


@pytest.fixture(scope="module")
def mochi(model_dir):
    path = build_mochi(model_dir / "mochi_tiny.safetensors", seed=1)
    import comfy.model_detection
    import comfy.utils
    detected = comfy.model_detection.detect_unet_config(comfy.utils.load_torch_file(str(path)), "")
    assert detected["hidden_size_x"] == 3072 and detected["depth"] == 48   # always the 10B
    return load_mochi(path)


@pytest.fixture(scope="module")
def baseline(mochi):
    """The model without TeaCache: (output, block executions)."""
    return run(mochi)


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection also run
# in tests/test_families.py (entry "mochi")
def test_cfg_branches_decide_alike_batched_or_apart(mochi, monkeypatch):
    patched = apply(mochi, MODERATE)
    batched, n_batched = run(patched)
    dec_b = decisions(patched)
    flags = [c for _, c in dec_b["cond"]] + [c for _, c in dec_b["uncond"]]
    assert not all(flags) and sum(flags) > 4, f"threshold not moderate for this model: {dec_b}"
    force_separate_cond_calls(monkeypatch, patched)
    separate, n_sep = run(patched)
    assert summary(patched)["calls"] == 2 * STEPS
    assert decisions(patched) == dec_b
    assert n_sep == 2 * n_batched
    assert torch.allclose(batched, separate, atol=1e-4)


def test_no_state_left_after_a_run(mochi, baseline):
    base, _ = baseline
    before = repr(mochi.model_options)
    patched = apply(mochi, MODERATE)
    run(patched)
    assert state_released(patched)
    after, _ = run(mochi)
    assert torch.equal(after, base)
    assert repr(mochi.model_options) == before
    for kind in (pe.WrappersMP.OUTER_SAMPLE, pe.WrappersMP.APPLY_MODEL):
        assert not mochi.get_wrappers(kind, KEY)
    assert "patches_replace" not in mochi.model_options.get("transformer_options", {})
    dm = mochi.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


def test_detection_auto_and_wrong_presets(mochi):
    patched = apply(mochi, 0.1)
    run(patched, steps=2)
    s = summary(patched)
    assert s["preset"] == "uncalibrated"
    assert s["model"] == "Mochi hidden 64 (AsymmDiTJoint, hidden 64, 3 blocks)"
    with pytest.raises(ValueError) as e:
        apply(mochi, 0.1, model_type="ltxv")
    assert "ltxv family" in str(e.value) and "Mochi hidden 64" in str(e.value)
    with pytest.raises(ValueError) as e:
        apply(mochi, 0.1, model_type="mochi")          # fitted on Mochi 1 preview (3072)
    assert "hidden=3072" in str(e.value) and "hidden=64" in str(e.value)


def test_full_size_detection_on_meta_model():
    """Mochi 1 preview as ComfyUI detects it, on the meta device (no weights)."""
    import comfy.ldm.genmo.joint_model.asymm_models_joint as mj
    import comfy.ops
    full = dict(TINY, depth=48, num_heads=24, hidden_size_x=3072, hidden_size_y=1536,
                mlp_ratio_x=4.0, t5_feat_dim=4096)
    dm = mj.AsymmDiTJoint(operations=comfy.ops.disable_weight_init, dtype=torch.bfloat16,
                          device="meta", **full)
    ad = find_adapter(dm)
    info = ad.describe(dm)
    assert info.description == "Mochi 1 preview 10B (AsymmDiTJoint, hidden 3072, 48 blocks)"
    assert ad.select_preset(info, "auto", False).name == "mochi"


def test_skipped_step_is_block_input_plus_residual_and_text_passes(mochi):
    """x_embedder's output is the first block's input, final_layer's input the last block's
    output: skipped steps give input + the computed step's residual over the visual tokens.
    The text stream is handed on by every skipped block (the model reads it between blocks)."""
    dm = mochi.get_model_object("diffusion_model")
    ins, outs = [], []
    hs = [dm.x_embedder.register_forward_hook(lambda m, a, o: ins.append(o.detach().clone())),
          dm.final_layer.register_forward_pre_hook(lambda m, a: outs.append(a[0].detach().clone()))]
    try:
        run(apply(mochi, 1e6))
    finally:
        for h in hs:
            h.remove()
    assert len(ins) == len(outs) == STEPS
    residual = outs[0] - ins[0]
    assert residual.abs().max() > 0
    for i in range(1, STEPS - 1):
        assert torch.equal(outs[i], ins[i] + residual), f"step {i}"
