"""The generic path (teacache_core/adapters/generic.py) beyond the shared harness: what it infers,
that every stack's skip adds that stack's cached residual, model_type 'generic' by hand on a
family that has an adapter, mixed cond/uncond decisions, and what it refuses."""
from __future__ import annotations

import pytest
import torch

import nodes
import tiny_models as tm
from harness import (force_separate_cond_calls, record_residual_stream, summary,
                     summary_line)
from tiny import generic as tg

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.teacache_core.adapters import UnsupportedModelError, find_adapter
from comfyui_teacache.teacache_core.adapters.generic import infer_layout
from comfyui_teacache.teacache_core.patching import registration_of

STEPS = 6


def apply(model, thresh, model_type="auto", estimate="reuse"):
    return TeaCacheApply.execute(model, thresh, 0, -1, model_type, "model_device", False, 0,
                                 estimate, 0.0).result[0]


def sample(model, inputs, steps=STEPS, cfg=4.0):
    lat, pos, neg = inputs
    return nodes.common_ksampler(model, 7, steps, cfg, "euler", "simple", pos, neg,
                                 lat)[0]["samples"]


@pytest.fixture(scope="module")
def sd3(model_dir):
    return tg.build_sd3(model_dir)


def test_layout_is_inferred_and_logged(sd3, caplog):
    dm = sd3.get_model_object("diffusion_model")
    assert find_adapter(dm).family == "generic"
    m = apply(sd3, 0.1)
    sample(m, tg.sd3_inputs())
    layout = registration_of(m).adapter.layout
    n = len(dm.joint_blocks)
    assert layout.keys == tuple(("double_block", i) for i in range(n))
    # SD3's last joint block returns no text stream (context_pre_only): img is the only
    # stream every block of the stack returns
    assert [(s.kind, s.start, s.end, s.streams) for s in layout.stacks] == \
        [("double_block", 0, n - 1, ("img",))]
    assert layout.main == "img"
    line = summary_line(caplog)
    assert "(generic path) [1 stack(s): double_block x2 (img); decides on img]" in line
    assert "uncalibrated" in line


def test_skipped_call_equals_input_plus_cached_residual(sd3):
    dm = sd3.get_model_object("diffusion_model")
    ins, heads = [], []
    h1 = dm.joint_blocks[0].register_forward_pre_hook(
        lambda _m, a, kw: ins.append(a[1].detach().clone()), with_kwargs=True)
    h2 = dm.final_layer.register_forward_pre_hook(
        lambda _m, a: heads.append(a[0].detach().clone()))
    m = apply(sd3, 1e6)
    reg = registration_of(m)
    first_in = []
    decide = reg.decide

    def grab(ctx, key, args):              # what the first gate receives on every call
        first_in.append(args["img"].detach().clone())
        return decide(ctx, key, args)
    reg.decide = grab
    try:
        sample(m, tg.sd3_inputs())
    finally:
        h1.remove()
        h2.remove()
    assert len(first_in) == len(heads) == STEPS
    residual = heads[0] - first_in[0]
    for x, y in zip(first_in[1:-1], heads[1:-1]):
        assert torch.allclose(y, x + residual, atol=1e-6)
    assert len(ins) == 2                                # blocks ran on the two computed calls


def test_generic_by_hand_on_wan_equals_no_node_at_zero_and_skips(model_dir, caplog):
    wan = tm.load(tm.build_wan(model_dir / "wan_generic.safetensors", num_layers=3, seed=4))
    pos, neg = tm.wan_conds()
    inputs = ({"samples": torch.zeros(1, 16, 3, 8, 8)}, pos, neg)
    base = sample(wan, inputs)
    m0 = apply(wan, 0.0, model_type="generic")
    assert torch.equal(sample(m0, inputs), base)
    assert registration_of(m0).adapter.family == "generic"
    m = apply(wan, 1e6, model_type="generic")
    out = sample(m, inputs)
    assert torch.isfinite(out).all()
    assert [r["computed"] for r in summary(m)["branches"]["cond"]] == \
        [True] + [False] * (STEPS - 2) + [True]
    assert "WanModel (generic path) [1 stack(s): double_block x3 (img); decides on img]" \
        in summary_line(caplog)


def test_mixed_decisions_and_separate_calls_match_batched(sd3, monkeypatch):
    m = apply(sd3, 0.08)
    batched = sample(m, tg.sd3_inputs())
    dec = {k: [r["computed"] for r in v] for k, v in summary(m)["branches"].items()}
    force_separate_cond_calls(monkeypatch, m)
    separate = sample(m, tg.sd3_inputs())
    assert summary(m)["calls"] == 2 * STEPS
    assert {k: [r["computed"] for r in v] for k, v in summary(m)["branches"].items()} == dec
    assert torch.allclose(batched, separate, atol=1e-4)


def test_cache_on_cpu_equals_cache_on_model_device(sd3):
    a = sample(apply(sd3, 0.2, estimate="extrapolate"), tg.sd3_inputs())
    b = sample(TeaCacheApply.execute(sd3, 0.2, 0, -1, "auto", "cpu", False, 0, "extrapolate",
                                     0.0).result[0], tg.sd3_inputs())
    assert torch.equal(a, b)


def test_preset_for_another_family_is_refused(sd3):
    with pytest.raises(ValueError, match="no published coefficients"):
        apply(sd3, 0.1, model_type="flux")


def test_layout_refuses_blocks_that_change_shape():
    seen = [(("double_block", 0), {"img": (1, 4, 8)}, {"img": (1, 2, 8)})]
    with pytest.raises(UnsupportedModelError, match="turns 'img' of shape"):
        infer_layout(seen, "Toy")
    seen = [(("block", 0), {"x": (1, 4, 8)}, {"y": (1, 4, 8)})]
    with pytest.raises(UnsupportedModelError, match="returns 'y'"):
        infer_layout(seen, "Toy")


def test_layout_of_two_stacks_with_glue():
    seen = [(("double_block", 0), {"img": (1, 4, 8), "txt": (1, 2, 8), "vec": (1, 8)},
             {"img": (1, 4, 8), "txt": (1, 2, 8)}),
            (("double_block", 1), {"img": (1, 4, 8), "txt": (1, 2, 8)},
             {"img": (1, 4, 8), "txt": (1, 2, 8)}),
            (("single_block", 0), {"img": (1, 6, 8)}, {"img": (1, 6, 8)})]
    layout = infer_layout(seen, "Toy")
    assert [(s.start, s.end, s.streams) for s in layout.stacks] == \
        [(0, 1, ("img", "txt")), (2, 2, ("img",))]
    assert layout.entering(0) == [("0:txt", "txt")] and layout.entering(2) == [("1:img", "img")]
    assert layout.exiting(1) == [(None, "img"), ("0:txt", "txt")]


@pytest.mark.parametrize("estimate", ["reuse", "extrapolate"])
def test_two_stacks_with_glue_match_the_family_adapter_when_decisions_match(model_dir, caplog,
                                                                            estimate):
    """HunyuanVideo: double blocks (img, txt), a concatenation, single blocks. The generic
    path keeps a residual per stack and stream; on a skip the forward's own concatenation runs
    between the stacks, so the image tokens come out as the family adapter's (one residual from
    the first double block to the last single block) when both decide alike."""
    import tiny_hunyuan_video as th
    hv = tm.load(th.build_hunyuan(model_dir / "hv_generic.safetensors", seed=2))
    pos, neg = th.conds()
    inputs = ({"samples": th.latent()}, pos, neg)
    base = sample(hv, inputs)
    assert torch.equal(sample(apply(hv, 0.0, model_type="generic"), inputs), base)
    fam = sample(apply(hv, 1e6, estimate=estimate), inputs)
    gen_m = apply(hv, 1e6, model_type="generic", estimate=estimate)
    gen = sample(gen_m, inputs)
    layout = registration_of(gen_m).adapter.layout
    assert [(s.kind, s.streams) for s in layout.stacks] == \
        [("double_block", ("img", "txt")), ("single_block", ("img",))]
    assert [r["computed"] for r in summary(gen_m)["branches"]["cond"]] == \
        [True] + [False] * (STEPS - 2) + [True]
    assert torch.allclose(gen, fam, atol=1e-5), (gen - fam).abs().max()
    assert not torch.allclose(gen, base, atol=1e-5)       # it did skip


@pytest.mark.parametrize("estimate,k", [("reuse", 1), ("extrapolate", 2)])
def test_memory_held_is_one_residual_per_stack_and_stream(model_dir, estimate, k):
    """What the generic path holds per cond = k residuals of every span + the indicator
    (teacache_core/memory.py: generic_residual_tokens)."""
    import tiny_hunyuan_video as th
    from comfyui_teacache.teacache_core.memory import generic_residual_tokens
    hv = tm.load(th.build_hunyuan(model_dir / "hv_generic_mem.safetensors", seed=2))
    dm = hv.get_model_object("diffusion_model")
    shapes = []
    h = dm.double_blocks[0].register_forward_pre_hook(
        lambda _m, a, kw: shapes.append((kw["img"].shape, kw["txt"].shape)), with_kwargs=True)
    pos, neg = th.conds()
    m = apply(hv, 0.3, model_type="generic", estimate=estimate)
    try:
        sample(m, ({"samples": th.latent()}, pos, neg), steps=8)
    finally:
        h.remove()
    (img, txt), width = shapes[0], shapes[0][0][-1]
    conds = img[0]                                       # cond and uncond batched
    n_img, n_txt = img[1], txt[1]
    tokens = generic_residual_tokens([[n_img, n_txt], [n_img + n_txt]])
    bytes_ = 4                                           # float32 tiny model
    s = summary(m)
    assert any(not r["computed"] for r in s["branches"]["cond"][2:-1])
    assert s["peak_cache_bytes"] == conds * (k * tokens + n_img) * width * bytes_


def test_one_host_read_per_model_call(sd3):
    """The generic path adds no device-to-host read: still one per model call (+2 per run)."""
    from test_memory import _HostReads
    m = TeaCacheApply.execute(sd3, 0.1, 0, -1, "auto", "cpu", False, 0, "extrapolate",
                              0.0).result[0]
    counter = _HostReads()
    with counter:
        sample(m, tg.sd3_inputs())
    s = summary(m)
    assert 0 < s["calls_blocks_ran"] < s["calls"]
    assert counter.n <= s["calls"] + 2, (counter.n, s["calls"])


def test_hidream_o1_is_refused_with_the_reason():
    """HiDream-O1 consults patches_replace, but any 'dit' replace turns off its cross-step text
    key/value cache: refused (adapters/refused.py) before the generic path could claim it. Built
    on the meta device through ComfyUI's config class (its full size is fixed; no weights are
    needed to be refused)."""
    pytest.importorskip("comfy.ldm.hidream_o1.model", reason="HiDream-O1 is in the newest ComfyUI")
    import comfy.model_patcher
    import comfy.supported_models
    with torch.device("meta"):
        model = comfy.supported_models.HiDreamO1({"image_model": "hidream_o1"}).get_model({})
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"),
                                               offload_device=torch.device("cpu"))
    with pytest.raises(ValueError, match="HiDreamO1Transformer.*keys/values.*Remove TeaCache"):
        apply(patcher, 0.1)
    assert registration_of(patcher) is None


@pytest.mark.parametrize("module,cls,words", [
    ("comfy.ldm.ace.model", "ACEStepTransformer2DModel", "music transformer"),
    ("comfy.ldm.ace.ace_step15", "AceStepConditionGenerationModel", "ACE-Step 1.5"),
    ("comfy.ldm.minimax_music.dit", "MiniMaxMusic3DiT", "MiniMax Music 3"),
    ("comfy.ldm.trellis2.model", "Trellis2", "sparse voxel"),
    ("comfy.ldm.triposplat.model", "LatentSeqMMFlowModel", "TripoSplat"),
])
def test_audio_and_3d_transformers_without_hooks_are_refused_with_the_reason(module, cls, words):
    """ComfyUI's own classes (instances without weights: only the class decides) are refused
    with their reason, not with the generic 'does not support'."""
    mod = pytest.importorskip(module, reason=f"{module} is in the newest ComfyUI")
    c = getattr(mod, cls)
    dm = c.__new__(c)
    torch.nn.Module.__init__(dm)
    with pytest.raises(UnsupportedModelError, match=f"TeaCache cannot cache {cls}: .*{words}"):
        find_adapter(dm)


def test_stable_audio3_is_refused_because_its_hook_path_differs(model_dir):
    """ComfyUI's replace path for Stable Audio 3 drops the blocks' local conditioning: a
    no-op hook alone changes the output (shown here), so the generic path must not claim it."""
    pytest.importorskip("comfy.ldm.audio.dit")
    import comfy.model_base
    if not hasattr(comfy.model_base, "StableAudio3"):
        pytest.skip("Stable Audio 3 is in the newest ComfyUI")
    m = tg.build_stable_audio3(model_dir)
    inputs = tg.stable_audio3_inputs()
    base = sample(m, inputs, steps=3)
    hooked = m.clone()
    for i in range(len(m.get_model_object("diffusion_model").transformer.layers)):
        hooked.set_model_patch_replace(lambda args, extra: extra["original_block"](args),
                                       "dit", "double_block", i)
    assert not torch.equal(sample(hooked, inputs, steps=3), base)
    with pytest.raises(ValueError, match="Stable Audio 3.*local conditioning"):
        apply(m, 0.1)


def test_calibration_of_a_generic_model_is_used(sd3):
    """TeaCacheCalibrate works on the generic path (indicator block_input): the fit is saved
    and `calib:<name>` then runs with its coefficients."""
    from comfyui_teacache.nodes.calibrate import TeaCacheCalibrate
    cal = TeaCacheCalibrate.execute(sd3, "sd3_generic", 0, "auto").result[0]
    for seed in range(3):
        lat, pos, neg = tg.sd3_inputs()
        nodes.common_ksampler(cal, seed, 8, 4.0, "euler", "simple", pos, neg, lat)
    m = apply(sd3, 0.1, model_type="calib:sd3_generic")
    sample(m, tg.sd3_inputs())
    s = summary(m)
    assert s["preset"] == "calib:sd3_generic" and s["calibrated"]
    assert s["indicator"] == "block_input"
