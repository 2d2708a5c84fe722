"""TeaCacheApply on tiny real Wan models: ComfyUI's loader, sampler and ModelPatcher."""
from __future__ import annotations

import logging
import math

import pytest
import torch

import comfy.model_management
import comfy.patcher_extension as pe
import nodes
import tiny_models as tm
from harness import apply, computed_steps, summary_line, summary_lines

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.patching import KEY, registration_of

STEPS = 10


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_tiny.safetensors", num_layers=3, seed=1))


def sample(model, steps=STEPS, latent=None, seed=3, cfg=5.0, sampler="euler", conds=None):
    pos, neg = conds or tm.wan_conds()
    latent = latent if latent is not None else torch.zeros(1, 16, 3, 8, 8)
    counter, handles = tm.count_blocks(model)
    try:
        out = nodes.common_ksampler(model, seed, steps, cfg, sampler, "simple", pos, neg,
                                    {"samples": latent})[0]["samples"]
    finally:
        for h in handles:
            h.remove()
    return out, counter["n"]


# threshold 0 bit-identical to no node, the input model untouched, two runs identical and
# detection also run in tests/test_families.py (entries "wan21_t2v", "wan21_i2v",
# "wan22_ti2v_5b", "wan21_vace")
def test_large_threshold_skips_all_but_first_and_last(wan, caplog):
    patched = apply(wan, 1e6)
    out, n = sample(patched)
    assert n == 2 * 3
    assert computed_steps(patched) == [0, STEPS - 1]
    assert computed_steps(patched, "uncond") == [0, STEPS - 1]
    assert torch.isfinite(out).all()
    lines = summary_lines(caplog)
    assert len(lines) == 1 and "skipped 8/10" in lines[0] and "uncalibrated" in lines[0]


def test_moderate_threshold_skips_some_and_stays_close(wan):
    base, _ = sample(wan)
    patched = apply(wan, 0.2)
    out, n = sample(patched)
    assert 2 * 3 < n < STEPS * 3
    rel = (out - base).norm() / base.norm()
    assert rel < 0.5


def test_start_and_end_step_respected(wan):
    patched = apply(wan, 1e6, start=3, end=7)
    _, n = sample(patched)
    assert computed_steps(patched) == [0, 1, 2, 7, 8, 9]
    assert n == 6 * 3


def test_consecutive_skip_cap(wan):
    patched = apply(wan, 1e6, max_skips=2)
    sample(patched)
    assert computed_steps(patched) == [0, 3, 6, 9]


def test_runs_repeat_and_input_model_untouched(wan):
    base, _ = sample(wan)
    before = repr(sorted(wan.model_options.get("transformer_options", {}).keys()))
    patched = apply(wan, 0.2)
    a, na = sample(patched)
    b, nb = sample(patched)
    assert torch.equal(a, b) and na == nb
    after, _ = sample(wan)                           # the input model is unaffected
    assert torch.equal(after, base)
    assert repr(sorted(wan.model_options.get("transformer_options", {}).keys())) == before
    assert not wan.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    assert "teacache" not in repr(wan.model_options)
    dm = wan.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


def test_separate_and_batched_cond_calls_decide_the_same(wan, monkeypatch):
    patched = apply(wan, 0.2)
    batched, n_batched = sample(patched)
    dec_b = {k: [(r["step"], r["computed"]) for r in v]
             for k, v in registration_of(patched).last_summary["branches"].items()}
    # ComfyUI batches conds only when it thinks memory allows: make it think it does not
    monkeypatch.setattr(patched.model, "memory_required", lambda *a, **k: math.inf)
    separate, n_sep = sample(patched)
    s = registration_of(patched).last_summary
    dec_s = {k: [(r["step"], r["computed"]) for r in v] for k, v in s["branches"].items()}
    assert s["calls"] == 2 * STEPS                   # really ran cond and uncond apart
    assert dec_b == dec_s
    assert n_sep == 2 * n_batched
    assert torch.allclose(batched, separate, atol=1e-4)


def test_state_freed_after_run_and_on_interrupt(wan):
    patched = apply(wan, 0.2)
    reg = registration_of(patched)
    seen = []
    orig = reg.decide

    def spy(ctx, key, args):
        seen.append(ctx.run)
        orig(ctx, key, args)
        if ctx.step == 4:
            raise comfy.model_management.InterruptProcessingException()

    reg.decide = spy
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        sample(patched)
    run = seen[-1]
    assert all(b.residual is None and b.prev_indicator is None for b in run.branches.values())
    reg.decide = orig
    a, _ = sample(patched)
    b, _ = sample(apply(wan, 0.2))
    assert torch.equal(a, b)                         # nothing carried over from the interrupt


def test_resolution_frames_and_steps_change_between_runs(wan):
    patched = apply(wan, 0.2)
    for shape, steps in [((1, 16, 3, 8, 8), 10), ((1, 16, 5, 12, 8), 6), ((2, 16, 2, 8, 16), 12)]:
        out, n = sample(patched, steps=steps, latent=torch.zeros(shape))
        assert out.shape == shape and torch.isfinite(out).all()
        s = registration_of(patched).last_summary
        assert s["total_steps"] == steps
        assert computed_steps(patched)[0] == 0 and computed_steps(patched)[-1] == steps - 1


def test_two_teacached_models_in_one_graph_do_not_share_state(wan, model_dir):
    other = tm.load(tm.build_wan(model_dir / "wan_other.safetensors", num_layers=2, seed=7))
    base_a, _ = sample(wan)
    base_b, _ = sample(other)
    a0 = apply(wan, 0.0)
    b_big = apply(other, 1e6)
    a_big = apply(wan, 1e6)
    ra, _ = sample(a0)
    rb, nb = sample(b_big)
    ra2, _ = sample(a0)
    assert torch.equal(ra, base_a) and torch.equal(ra2, base_a)
    assert nb == 2 * 2
    rab, _ = sample(a_big)
    assert computed_steps(a_big) == [0, STEPS - 1]
    assert computed_steps(b_big) == [0, STEPS - 1]
    assert registration_of(a0).last_summary["calls_blocks_ran"] == STEPS


def test_ksampler_advanced_two_models_like_wan22_a14b(wan, model_dir):
    """Wan 2.2 A14B: high-noise and low-noise experts, each with its own TeaCacheApply and
    its own KSamplerAdvanced step range; steps count within each sampler's run."""
    low = tm.load(tm.build_wan(model_dir / "wan_low.safetensors", num_layers=2, seed=11))
    high_tc, low_tc = apply(wan, 1e6), apply(low, 1e6)
    pos, neg = tm.wan_conds()
    adv = nodes.KSamplerAdvanced()
    lat = {"samples": torch.zeros(1, 16, 3, 8, 8)}
    mid = adv.sample(high_tc, "enable", 5, 20, 5.0, "euler", "simple", pos, neg, lat, 0, 10,
                     "enable")[0]
    out = adv.sample(low_tc, "disable", 5, 20, 5.0, "euler", "simple", pos, neg, mid, 10, 20,
                     "disable")[0]["samples"]
    assert torch.isfinite(out).all()
    assert registration_of(high_tc).last_summary["total_steps"] == 10
    assert computed_steps(high_tc) == [0, 9]
    assert computed_steps(low_tc) == [0, 9]


def test_retention_mode_forces_first_five_not_last(wan):
    patched = apply(wan, 1e6, retention=True)
    _, n = sample(patched)
    assert computed_steps(patched) == [0, 1, 2, 3, 4]
    assert n == 5 * 3


def test_cpu_cache_device_matches_model_device(wan):
    a, _ = sample(apply(wan, 0.2))
    b, _ = sample(apply(wan, 0.2, cache_device="cpu"))
    assert torch.equal(a, b)


def test_second_teacache_node_replaces_the_first(wan):
    twice = apply(apply(wan, 0.0), 1e6)
    _, n = sample(twice)
    assert n == 2 * 3
    assert len(twice.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)) == 1


@pytest.mark.parametrize("bad, fragment", [
    (-0.1, "must be >= 0"), (float("nan"), "NaN"), (float("inf"), "infinite")])
def test_bad_threshold_rejected_before_sampling(wan, bad, fragment):
    msg = TeaCacheApply.validate_inputs(bad, 0, -1, 0)
    assert isinstance(msg, str) and fragment in msg
    with pytest.raises(ValueError, match=fragment):
        TeaCacheApply.execute(wan, bad, 0, -1, "auto", "model_device", False, 0)


def test_bad_step_range_rejected(wan):
    assert "greater than start_step" in TeaCacheApply.validate_inputs(0.1, 5, 3, 0)
    assert "-1" in TeaCacheApply.validate_inputs(0.1, 0, -4, 0)


def test_preset_for_another_size_names_what_was_detected(wan):
    with pytest.raises(ValueError) as e:
        apply(wan, 0.1, model_type="wan2.1_t2v_14B")
    assert "dim=5120" in str(e.value) and "dim 128" in str(e.value)


def test_uncalibrated_tiny_model_is_logged_honestly(wan, caplog):
    sample(apply(wan, 0.1))
    line = summary_line(caplog)
    assert "uncalibrated" in line and "Wan 2.1 T2V dim 128" in line


def test_debug_lines_per_step(wan, caplog):
    caplog.set_level(logging.DEBUG, logger="comfyui_teacache")
    sample(apply(wan, 0.2))
    dbg = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG
           and r.getMessage().startswith("TeaCache step")]
    assert len(dbg) == 2 * STEPS
    assert any("-> skip" in d for d in dbg) and any("-> compute" in d for d in dbg)


def tiny_unet():
    """A tiny SD1.5-style UNet (not a diffusion transformer): ComfyUI's SD15 config class with
    small sizes (its detection fixes SD1.5's full size), get_model, a ModelPatcher."""
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    cfg = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer":
           True, "legacy": False, "adm_in_channels": None, "in_channels": 4,
           "model_channels": 32, "num_res_blocks": [1, 1], "transformer_depth": [1, 1],
           "transformer_depth_output": [1, 1, 1, 1], "channel_mult": [1, 2],
           "transformer_depth_middle": 1, "use_linear_in_transformer": False,
           "context_dim": 64, "num_heads": 2, "num_head_channels": -1}
    config = comfy.supported_models.SD15(cfg)
    model = config.get_model({}, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def test_unsupported_model_names_class_and_families():
    unet = tiny_unet()
    with pytest.raises(ValueError) as e:
        TeaCacheApply.execute(unet, 0.1, 0, -1, "auto", "model_device", False, 0)
    msg = str(e.value)
    assert "UNetModel" in msg and "Wan" in msg
    assert not unet.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)


def test_extra_guidance_pass_is_computed_without_touching_the_cache(wan):
    """Skip Layer Guidance evaluates the cond a second time at the same sigma on the same
    input: that pass must run uncached and leave the cond's TeaCache state alone."""
    from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
    slg = SkipLayerGuidanceDiT.execute(wan, scale=3.0, start_percent=0.0, end_percent=1.0,
                                       double_layers="1", single_layers="").result[0]
    plain = apply(slg, 1e6)
    out, n = sample(plain)
    s = registration_of(plain).last_summary
    assert [r["step"] for r in s["branches"]["cond"]] == list(range(STEPS))   # one record a step
    assert computed_steps(plain) == [0, STEPS - 1]
    # the SLG pass ran its blocks (all but the skipped layer 1) on every step
    assert n == 2 * 3 + STEPS * 2 and torch.isfinite(out).all()


def test_heun_two_calls_per_step_are_both_cached_steps(wan):
    patched = apply(wan, 1e6)
    _, n = sample(patched, steps=6, sampler="heun")
    s = registration_of(patched).last_summary
    assert s["calls"] == 2 * 6 - 1           # heun: 2 calls a step, 1 on the last
    assert s["calls_blocks_ran"] < s["calls"] // 2


def test_nodes_that_clone_the_model_after_teacache_keep_it_working(wan):
    """ModelSamplingSD3 or a LoRA loader after TeaCache clone the model (ComfyUI 0.3.75
    deep-copies model_options then): the gates must still reach the run's state."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3
    node = ModelSamplingSD3()
    shifted_base = node.patch(wan, 5.0)[0]
    base, _ = sample(shifted_base)
    after = node.patch(apply(wan, 1e6), 5.0)[0]
    out, n = sample(after)
    assert n == 2 * 3 and computed_steps(after) == [0, STEPS - 1]
    zero = node.patch(apply(wan, 0.0), 5.0)[0]
    same, _ = sample(zero)
    assert torch.equal(same, base)
