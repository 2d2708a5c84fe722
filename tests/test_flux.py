"""TeaCache on tiny real Flux models (FLUX.1, Flux.2) and Chroma (comfy/ldm/flux, chroma).

Each model is ComfyUI's own class, built seeded, saved, and loaded through ComfyUI's loader
(its detection decides the class and sizes). ComfyUI 0.3.75 fixes FLUX.1 at 24 heads of 128, so
there the tiny FLUX.1 is 3072 wide (1 double + 1 single block, ~0.5B parameters, slow); 0.33
derives the heads from the width, so 128 wide works. Chroma everywhere and Flux.2 on 0.3.75 get
widths that detection hard-codes overridden at load time: see tests/tiny/flux.py.
"""
from __future__ import annotations

import inspect

import pytest
import torch

import comfy.patcher_extension as pe
import tiny_models as tm
from harness import (apply, computed_steps, decisions, force_separate_cond_calls, sample,
                     state_released, summary)
from tiny.flux import (build_chroma, build_flux, conds, counted, detection_overrides,
                       flux_kwargs, flux_width, heads_override, load_chroma)

from comfyui_teacache.teacache_core import adapters as adapters_mod
from comfyui_teacache.teacache_core.coefficients import Preset
from comfyui_teacache.teacache_core.adapters import flux as flux_adapter
from comfyui_teacache.teacache_core.patching import KEY

STEPS = 3


def blocks(model):
    return counted(model.get_model_object("diffusion_model"))


def run(model, latent, cond, steps=STEPS):
    pos, neg = cond
    return sample(model, latent, pos, neg, steps=steps, cfg=4.0, blocks=blocks(model))


CFG_STEPS = 5             # the CFG check needs steps left to decide: 1..3 here


# ---- checks shared by the models below --------------------------------------------------
def check_threshold_zero(model, base, latent, cond, steps=STEPS):
    out, n = run(apply(model, 0.0), latent, cond, steps)
    assert torch.equal(out, base[0])
    assert n == base[1] == steps * 2        # cond+uncond batched: 1 call per step, 2 blocks


def check_huge_threshold(model, latent, cond, steps=STEPS):
    patched = apply(model, 1e6)
    out, n = run(patched, latent, cond, steps)
    assert n == 2 * 2                        # first and last step, one double + one single
    assert computed_steps(patched) == [0, steps - 1]
    assert computed_steps(patched, "uncond") == [0, steps - 1]
    assert torch.isfinite(out).all()
    return patched


def check_cfg_isolated(model, latent, cond, monkeypatch, thresh):
    """`thresh`: skips some steps of the tiny random model, not all (asserted)."""
    patched = apply(model, thresh)
    batched, n_b = run(patched, latent, cond, CFG_STEPS)
    dec_b = decisions(patched)
    for label in ("cond", "uncond"):                        # a moderate threshold: some skips
        skipped = [s for s, computed in dec_b[label] if not computed]
        assert 0 < len(skipped) < CFG_STEPS - 2, dec_b
    force_separate_cond_calls(monkeypatch, patched)
    separate, n_s = run(patched, latent, cond, CFG_STEPS)
    assert summary(patched)["calls"] == 2 * CFG_STEPS      # really ran cond and uncond apart
    assert decisions(patched) == dec_b
    assert n_s == 2 * n_b
    assert torch.allclose(batched, separate, atol=1e-4, rtol=1e-4)


def check_no_state_left(model, base, latent, cond):
    before = repr(model.model_options)
    patched = apply(model, 1e6)
    run(patched, latent, cond)
    assert state_released(patched)
    assert repr(model.model_options) == before
    for kind in (pe.WrappersMP.OUTER_SAMPLE, pe.WrappersMP.APPLY_MODEL,
                 pe.WrappersMP.DIFFUSION_MODEL):
        assert not model.get_wrappers(kind, KEY)
    assert "teacache" not in repr(model.model_options)
    after, n = run(model, latent, cond)
    assert torch.equal(after, base[0]) and n == base[1]
    dm = model.get_model_object("diffusion_model")
    assert not [k for k in vars(dm) if "teacache" in k.lower()]


# ---- FLUX.1 ----------------------------------------------------------------------------
FLUX_LATENT = torch.zeros(1, 16, 4, 4)      # 4 image tokens (patch 2)


@pytest.fixture(scope="module")
def flux(model_dir):
    hidden = flux_width()
    return tm.load(build_flux(model_dir / "flux_tiny.safetensors", hidden, seed=1),
                   keep_file=False), hidden


@pytest.fixture(scope="module")
def flux_base(flux):
    return run(flux[0], FLUX_LATENT, conds())


# threshold 0 bit-identical, huge threshold, two runs, input untouched and detection of a tiny
# FLUX.1 and Chroma also run in tests/test_families.py (entries "flux1", "chroma")
def test_flux_cfg_branches_isolated(flux, monkeypatch):
    # per-step distances of the tiny random model: ~0.26-0.30 at width 3072, ~0.06-0.11 at 128
    thresh = 0.4 if flux[1] == 3072 else 0.12
    check_cfg_isolated(flux[0], FLUX_LATENT, conds(), monkeypatch, thresh)


def test_flux_no_state_left(flux, flux_base):
    check_no_state_left(flux[0], flux_base, FLUX_LATENT, conds())


def test_flux_detection(flux):
    model, hidden = flux
    assert type(model.model).__name__ == "Flux"
    patched = apply(model, 0.1)
    run(patched, FLUX_LATENT, conds(), steps=2)
    s = summary(patched)
    assert s["preset"] == "uncalibrated"       # tiny: not the size the coefficients fit
    assert s["model"] == f"FLUX.1 dev (or Kontext: same weights layout) (Flux, hidden {hidden}, " \
                         f"1 double + 1 single blocks)"
    with pytest.raises(ValueError) as e:
        apply(model, 0.1, model_type="wan2.1_t2v_1.3B")
    assert "wan family" in str(e.value) and "FLUX.1 dev" in str(e.value)
    if hidden != 3072:
        with pytest.raises(ValueError, match="hidden=3072"):
            apply(model, 0.1, model_type="flux")
    else:                                      # 0.3.75: 3072 wide, a FLUX.1 preset may be chosen
        assert apply(model, 0.1, model_type="flux_kontext") is not None


def _meta_flux(**over):
    """A full-size model on the meta device (no memory): what detection would build."""
    import comfy.ldm.flux.model as fm
    import comfy.ops
    kw = flux_kwargs(3072, flux2=over.pop("flux2", False))
    kw.update(num_heads=24, depth=19, depth_single_blocks=38, vec_in_dim=768, context_in_dim=4096)
    kw.update(over)
    return fm.Flux(operations=comfy.ops.disable_weight_init, device="meta", **kw)


@pytest.mark.parametrize("over, kind, preset", [
    ({}, "dev", "flux"),                                        # FLUX.1 dev (and Kontext)
    ({"guidance_embed": False}, "schnell", "flux"),             # FLUX.1 schnell
    ({"in_channels": 96}, "fill", "uncalibrated"),              # FLUX.1 Fill
    ({"depth": 8}, "dev", "uncalibrated"),                      # a pruned FLUX.1 (Lite)
    ({"flux2": True, "vec_in_dim": None, "depth": 5, "depth_single_blocks": 20}, "flux2",
     "uncalibrated"),                                           # Flux.2 (3072 wide)
])
def test_flux_auto_on_full_size_architectures(over, kind, preset):
    dm = _meta_flux(**over)
    ad = adapters_mod.find_adapter(dm)
    info = ad.describe(dm)
    assert info.family == "flux" and info.kind == kind and info.dims["hidden"] == 3072
    assert ad.select_preset(info, "auto", False).name == preset
    if kind == "dev" and preset == "flux":
        assert "12B" in info.description and "Kontext" in info.description
        assert ad.select_preset(info, "flux_kontext", False).name == "flux_kontext"
    if kind == "flux2":                        # the FLUX.1 presets are another architecture...
        with pytest.raises(ValueError, match="fitted on FLUX.1"):
            ad.select_preset(info, "flux", False)
    # ...but a user calibration of this very model fits it, and only it
    own = Preset("user:mine", "flux", "modulated_input", (1.0, 0.0), "test",
                 match=ad.calibration_dims(info))
    assert ad.preset_mismatch(info, own) is None
    other = ad.describe(_meta_flux(flux2=kind != "flux2"))
    assert ad.preset_mismatch(other, own) is not None


# ---- Flux.2 (global modulation: the indicator comes from vec) ---------------------------
def test_flux2_cached_and_exact(model_dir, monkeypatch):
    """Flux.2 (here without guidance input, like Klein) passes the modulation in `vec`; with
    reference latents and 0.33's "index_timestep_zero" it holds two rows per sample (noisy and
    reference timesteps)."""
    import comfy.ldm.flux.model as fm
    path = build_flux(model_dir / "flux2_tiny.safetensors", 128, seed=2, flux2=True)
    with detection_overrides(**heads_override(flux2=True)):
        model = tm.load(path)
    assert type(model.model).__name__ == "Flux2"
    dm = model.get_model_object("diffusion_model")
    info = flux_adapter.ADAPTER.describe(dm)
    assert info.kind == "flux2" and info.description.startswith("Flux.2 (Flux, hidden 128")

    ref = torch.randn(1, 128, 4, 4, generator=torch.Generator().manual_seed(5))
    extra = {"pooled_output": None, "reference_latents": [ref]}
    zero_t = "timestep_zero_index" in inspect.signature(fm.Flux.forward_orig).parameters
    if zero_t:
        extra["reference_latents_method"] = "index_timestep_zero"
    pos, neg = conds(pooled=0)
    cond = [[pos[0][0], dict(extra)]], [[neg[0][0], dict(extra)]]
    rows = []                                # modulation rows per sample seen by the indicator
    ad = flux_adapter.ADAPTER
    orig = ad.indicator

    def spy(name, ctx, args):
        rows.append(args["vec"][0][0].shift.shape[1])
        return orig(name, ctx, args)

    monkeypatch.setattr(ad, "indicator", spy)
    latent = torch.zeros(1, 128, 4, 4)
    base = run(model, latent, cond)
    check_threshold_zero(model, base, latent, cond)
    check_huge_threshold(model, latent, cond)
    assert set(rows) == ({2} if zero_t else {1})


# ---- Chroma (its own family id; registered here until adapters/__init__ lists it) -------
CHROMA_LATENT = torch.zeros(1, 16, 8, 8)


@pytest.fixture(scope="class")
def chroma_registered():
    have = [a for a in adapters_mod.ADAPTERS if a.family == "chroma"]
    with pytest.MonkeyPatch.context() as mp:
        if not have:
            mp.setattr(adapters_mod, "ADAPTERS",
                       list(adapters_mod.ADAPTERS) + [flux_adapter.CHROMA_ADAPTER])
        yield


@pytest.fixture(scope="class")
def chroma(model_dir, chroma_registered):
    model = load_chroma(build_chroma(model_dir / "chroma_tiny.safetensors", seed=3))
    yield model
    del model


@pytest.fixture(scope="class")
def chroma_base(chroma):
    return run(chroma, CHROMA_LATENT, conds(pooled=0))


class TestChroma:
    def test_cfg_branches_isolated(self, chroma, monkeypatch):
        # distances ~0.08-0.12 per step
        check_cfg_isolated(chroma, CHROMA_LATENT, conds(pooled=0), monkeypatch, 0.15)

    def test_no_state_left(self, chroma, chroma_base):
        check_no_state_left(chroma, chroma_base, CHROMA_LATENT, conds(pooled=0))

    def test_detection(self, chroma):
        assert type(chroma.model).__name__ == "Chroma"
        patched = apply(chroma, 0.1)
        run(patched, CHROMA_LATENT, conds(pooled=0), steps=2)
        s = summary(patched)
        assert s["preset"] == "uncalibrated"
        assert s["model"] == "Chroma (Chroma, hidden 128, 1 double + 1 single blocks)"
        with pytest.raises(ValueError) as e:
            apply(chroma, 0.1, model_type="flux")
        assert "flux family" in str(e.value) and "Chroma (Chroma" in str(e.value)

    def test_chroma_radiance_pixel_space(self, model_dir, chroma_registered):
        """Chroma Radiance: Chroma's blocks on 16x16 pixel patches, then its NeRF head (which
        still runs on skipped steps)."""
        model = load_chroma(build_chroma(model_dir / "radiance_tiny.safetensors", seed=4,
                                         radiance=True))
        assert type(model.model).__name__ == "ChromaRadiance"
        latent = torch.zeros(1, 3, 16, 16)          # one patch of 16 x 16 pixels
        cond = conds(pooled=0)
        base = run(model, latent, cond)
        check_threshold_zero(model, base, latent, cond)
        s = summary(check_huge_threshold(model, latent, cond))
        assert s["preset"] == "uncalibrated"
        assert s["model"] == ("Chroma Radiance (pixel space) (ChromaRadiance, hidden 128, "
                              "1 double + 1 single blocks)")
