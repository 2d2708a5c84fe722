"""TeaCache combined with other per-block patches, in both orders (issue 6): Skip Layer
Guidance (SkipLayerGuidanceDiT, SkipLayerGuidanceDiTSimple), any node that sets
patches_replace["dit"] entries, post-block patches (newest ComfyUI), LoRA and torch.compile.

"Both orders" means the node before TeaCache and after it; each must keep the other working:
the same decisions and bit-identical output either way, and at threshold 0 the output of the
other node alone."""
from __future__ import annotations

import os

import pytest
import torch

import comfy.model_management
import folder_paths
import nodes
import tiny_models as tm
from harness import apply, count_calls, decisions, summary
from safetensors.torch import save_file

STEPS = 6
LAYERS = 3


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_compat_patches.safetensors",
                                num_layers=LAYERS, seed=41))


def run(model, *, steps=STEPS, cfg=4.0, sampler="euler", scheduler="simple", latent=None, seed=5):
    pos, neg = tm.wan_conds()
    latent = latent if latent is not None else torch.zeros(1, 16, 3, 8, 8)
    counter, hs = count_calls(model.get_model_object("diffusion_model").blocks)
    try:
        out = nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler, pos, neg,
                                    {"samples": latent})[0]["samples"]
    finally:
        for h in hs:
            h.remove()
    return out, counter["n"]


def both_orders(model, other, thresh, **kw):
    """(other -> TeaCache, TeaCache -> other): each applied the way the graph applies it."""
    return other(apply(model, thresh, **kw)), apply(other(model), thresh, **kw)


# ---- a node of our own that sets a per-block replace patch --------------------------------------
class CountingReplace:
    """Replaces block `layer` by "run the block, then scale its output": a patch whose effect
    shows in the output, counting how often it runs."""

    def __init__(self, layer, factor=0.8):
        self.layer, self.factor, self.calls = layer, factor, 0

    def __deepcopy__(self, memo):       # ComfyUI 0.3.75's clone deep-copies model_options
        return self

    def __call__(self, args, extra):
        self.calls += 1
        out = extra["original_block"](args)
        return {**out, "img": out["img"] * self.factor}

    def node(self, model):
        m = model.clone()
        m.set_model_patch_replace(self, "dit", "double_block", self.layer)
        return m


@pytest.mark.parametrize("layer", [0, 1, LAYERS - 1], ids=["first", "middle", "last"])
def test_foreign_replace_patch_in_both_orders(wan, layer):
    patch = CountingReplace(layer)
    alone, _ = run(patch.node(wan))
    plain, _ = run(wan)
    assert not torch.equal(alone, plain)                  # the patch acts
    assert patch.calls == STEPS                           # cond+uncond batched: 1 call a step
    for thresh in (0.0, 0.2, 1e6):
        outs, decs = [], []
        for m in both_orders(wan, patch.node, thresh):
            patch.calls = 0
            out, n = run(m)
            outs.append(out)
            decs.append(decisions(m))
            computed = summary(m)["calls_blocks_ran"]
            assert n == computed * LAYERS                 # skipped calls ran no block at all
            assert patch.calls == computed                # the patch ran on every computed call
            if thresh == 0.0:
                assert torch.equal(out, alone) and computed == STEPS
            if thresh == 1e6:
                assert computed == 2
                assert [s for s, c in decs[-1]["cond"] if c] == [0, STEPS - 1]
            assert torch.isfinite(out).all()
        assert decs[0] == decs[1]
        assert torch.equal(outs[0], outs[1]), f"order matters at thresh {thresh}"


def test_patch_that_wraps_ours_runs_each_gate_once(wan):
    """A well-behaved node after TeaCache wraps the entry it finds (our gate) instead of
    replacing it: TeaCache must neither lose its gate nor run it twice."""
    calls = {"n": 0}

    def node(model):
        m = model.clone()
        to = m.model_options.get("transformer_options", {})
        inner = to.get("patches_replace", {}).get("dit", {}).get(("double_block", 1))

        def wrapping(args, extra):
            calls["n"] += 1
            return inner(args, extra) if inner is not None else extra["original_block"](args)
        m.set_model_patch_replace(wrapping, "dit", "double_block", 1)
        return m

    ref = apply(wan, 0.2)
    base, n_base = run(ref)
    wrapped = node(apply(wan, 0.2))
    out, n = run(wrapped)
    assert torch.equal(out, base) and n == n_base
    assert decisions(wrapped) == decisions(ref)
    assert calls["n"] == summary(wrapped)["calls_blocks_ran"]


# ---- Skip Layer Guidance -------------------------------------------------------------------------
def slg_dit(layers="1", start=0.0, end=1.0, scale=3.0):
    from comfy_extras.nodes_slg import SkipLayerGuidanceDiT
    return lambda m: SkipLayerGuidanceDiT.execute(m, scale=scale, start_percent=start,
                                                  end_percent=end, double_layers=layers,
                                                  single_layers="").result[0]


def slg_simple(layers="1", start=0.0, end=1.0):
    from comfy_extras.nodes_slg import SkipLayerGuidanceDiTSimple
    return lambda m: SkipLayerGuidanceDiTSimple.execute(m, start_percent=start, end_percent=end,
                                                        double_layers=layers,
                                                        single_layers="").result[0]


@pytest.mark.parametrize("layers", ["1", "0", str(LAYERS - 1)])
def test_skip_layer_guidance_dit_in_both_orders(wan, layers):
    node = slg_dit(layers)
    plain, _ = run(wan)
    alone, n_alone = run(node(wan))
    assert not torch.equal(alone, plain)                  # the SLG pass changes the output
    assert n_alone == STEPS * LAYERS + STEPS * (LAYERS - 1)   # + one pass a step, 1 layer off
    for thresh in (0.0, 1e6):
        outs = []
        for m in both_orders(wan, node, thresh):
            out, n = run(m)
            outs.append(out)
            s = summary(m)
            assert [r["step"] for r in s["branches"]["cond"]] == list(range(STEPS))
            if thresh == 0.0:
                assert torch.equal(out, alone) and n == n_alone
            else:
                # the cached branches skip; the SLG pass always runs, uncached
                assert [r["step"] for r in s["branches"]["cond"] if r["computed"]] == [0, STEPS - 1]
                assert n == 2 * LAYERS + STEPS * (LAYERS - 1)
                assert torch.isfinite(out).all()
        assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("layers, start, end", [
    ("1", 0.0, 1.0), (str(LAYERS - 1), 0.0, 1.0), ("0", 0.0, 1.0), (str(LAYERS - 1), 0.3, 0.7)],
    ids=["middle", "last", "first", "last-partial-range"])
def test_skip_layer_guidance_simple_in_both_orders(wan, layers, start, end):
    """SLG Simple runs the uncond itself with layers replaced: the uncond's own cache must
    stay consistent (never reuse a residual made with other layers) and cond stay cached."""
    node = slg_simple(layers, start, end)
    plain, _ = run(wan)
    alone, _ = run(node(wan))
    assert not torch.equal(alone, plain)
    for thresh in (0.0, 0.2, 1e6):
        outs, decs = [], []
        for m in both_orders(wan, node, thresh):
            out, _ = run(m)
            outs.append(out)
            decs.append(decisions(m))
            if thresh == 0.0:
                assert torch.equal(out, alone)
            assert torch.isfinite(out).all()
            if thresh == 1e6:
                cond = [st for st, c in decs[-1]["cond"] if c]
                assert cond == [0, STEPS - 1]
        assert decs[0] == decs[1]
        assert torch.equal(outs[0], outs[1]), f"order matters at thresh {thresh}"


def test_skip_layer_guidance_simple_range_edges_recompute_the_uncond(wan):
    """Outside its range SLG Simple runs the full uncond; inside, one layer is replaced. A
    residual cached on one side is not reused on the other: the first call after each edge
    is computed."""
    m = apply(slg_simple(str(LAYERS - 1), 0.3, 0.7)(wan), 1e6)
    run(m, steps=10)
    recs = summary(m)["branches"]["uncond"]
    changed = [r["step"] for r in recs if r["reason"] == "other block patches changed"]
    assert len(changed) == 2                               # entering and leaving the range
    assert all(r["computed"] for r in recs if r["step"] in changed)
    assert sum(not r["computed"] for r in recs) > 0       # still caches between the edges


# ---- post-block patches (newest ComfyUI: Uni3C / DiffSynth ControlNets on Wan use them) -----------
def test_post_block_patch_controlnet_style(wan):
    """ComfyUI's ControlNet-style additions for Wan (Uni3C) are `patches["double_block"]`
    callables run after every block that add a control residual to the block output.
    ComfyUI 0.3.75's Wan has no such hook (nor a Wan ControlNet): VACE is its control path
    (tests/test_wan_variants.py)."""
    if not hasattr(wan, "set_model_double_block_patch"):
        pytest.skip("this ComfyUI has no post-block (double_block) patches")
    seen = {"n": 0}

    def control(kw):
        seen["n"] += 1
        sig = float(kw["transformer_options"]["sigmas"].flatten()[0])
        kw["img"] += 0.05 * sig * (kw["block_index"] + 1)   # in place, as Uni3C adds its residual
        return kw

    def node(model):
        m = model.clone()
        m.set_model_double_block_patch(control)
        return m

    plain, _ = run(wan)
    alone, _ = run(node(wan))
    if seen["n"] == 0:
        pytest.skip("this ComfyUI's Wan runs no post-block (double_block) patches (0.3.75: "
                    "no Wan ControlNet; VACE is its control path, tests/test_wan_variants.py)")
    assert not torch.equal(alone, plain) and seen["n"] == STEPS * LAYERS
    for thresh in (0.0, 1e6):
        outs = []
        for m in both_orders(wan, node, thresh):
            seen["n"] = 0
            out, n = run(m)
            outs.append(out)
            if thresh == 0.0:
                assert torch.equal(out, alone)
            else:
                assert n == 2 * LAYERS and torch.isfinite(out).all()
            assert seen["n"] == STEPS * LAYERS              # post-block patches still run
        assert torch.equal(outs[0], outs[1])


# ---- LoRA --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_name(wan, tmp_path_factory):
    """A tiny rank-4 LoRA on every block's q/k/v/o and ffn, in the PEFT key format ComfyUI
    maps for Wan ("diffusion_model.<module>.lora_A/lora_B.weight"); registered as ComfyUI's
    loras folder the way extra_model_paths does it."""
    folder = tmp_path_factory.mktemp("loras")
    dm = wan.get_model_object("diffusion_model")
    g = torch.Generator().manual_seed(9)
    sd = {}
    for i, block in enumerate(dm.blocks):
        for name in ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "ffn.0"):
            lin = block.get_submodule(name)
            pre = f"diffusion_model.blocks.{i}.{name}"
            sd[f"{pre}.lora_A.weight"] = torch.randn(4, lin.in_features, generator=g) * 0.1
            sd[f"{pre}.lora_B.weight"] = torch.randn(lin.out_features, 4, generator=g) * 0.1
    save_file(sd, str(folder / "tiny_wan_lora.safetensors"))
    folder_paths.add_model_folder_path("loras", str(folder))
    return "tiny_wan_lora.safetensors"


def lora(name, strength=1.0):
    return lambda m: nodes.LoraLoaderModelOnly().load_lora_model_only(m, name, strength)[0]


def test_lora_before_and_after_teacache(wan, lora_name):
    node = lora(lora_name)
    plain, _ = run(wan)
    alone, n_alone = run(node(wan))
    assert not torch.equal(alone, plain)                  # the LoRA really changes the output
    for m in both_orders(wan, node, 0.0):
        out, n = run(m)
        assert torch.equal(out, alone) and n == n_alone
    outs = []
    for m in both_orders(wan, node, 1e6):
        out, n = run(m)
        outs.append(out)
        assert n == 2 * LAYERS and summary(m)["calls_blocks_ran"] == 2
    assert torch.equal(outs[0], outs[1])
    again, _ = run(wan)                                   # the LoRA did not stick to the model
    assert torch.equal(again, plain)


def test_lora_with_partially_loaded_model(wan, lora_name, monkeypatch):
    """The low-VRAM path: ComfyUI loads only part of the weights and applies the LoRA to the
    rest at cast time (LowVramPatch). A CPU has no VRAM budget, so the budget is forced tiny
    where ComfyUI picks it (LoadedModel.model_load); the rest is ComfyUI's own code."""
    mm = comfy.model_management
    node = lora(lora_name)
    full, _ = run(node(wan))
    full_tc, _ = run(apply(node(wan), 0.2))
    orig = mm.LoadedModel.model_load

    def tiny_budget(self, lowvram_model_memory=0, force_patch_weights=False):
        return orig(self, 1024, force_patch_weights=force_patch_weights)

    mm.unload_all_models()
    monkeypatch.setattr(mm.LoadedModel, "model_load", tiny_budget)
    try:
        seen = []
        m = node(wan)
        low, _ = run(m)
        seen.append((m.model.model_lowvram, m.lowvram_patch_counter()))
        mm.unload_all_models()
        low_zero, _ = run(apply(node(wan), 0.0))
        mm.unload_all_models()
        t = apply(node(wan), 0.2)
        low_tc, n = run(t)
        seen.append((t.model.model_lowvram, t.lowvram_patch_counter()))
        mm.unload_all_models()
        low_cpu, _ = run(apply(node(wan), 0.2, cache_device="cpu"))
    finally:
        mm.unload_all_models()
    # really partially loaded, the LoRA applied to offloaded weights at cast time
    assert all(lowvram and patches > 0 for lowvram, patches in seen), seen
    assert torch.allclose(low, full, atol=1e-5)
    assert torch.equal(low_zero, low)                      # threshold 0: exact on that path too
    assert torch.allclose(low_tc, full_tc, atol=1e-4)
    assert torch.equal(low_cpu, low_tc)
    assert 0 < summary(t)["calls_blocks_ran"] < STEPS


# ---- torch.compile ---------------------------------------------------------------------------
def _inductor_problem():
    """Why inductor cannot compile on this machine (it needs a C++ compiler on CPU), or None."""
    import torch._dynamo
    try:
        f = torch.compile(lambda x: x * 2 + 1, backend="inductor")
        ok = torch.equal(f(torch.ones(3)), torch.full((3,), 3.0))
        return None if ok else "inductor compiled a wrong result"
    except Exception as e:                      # noqa: BLE001 - any failure means "cannot"
        return f"{type(e).__name__}: {str(e)[:300]}"
    finally:
        torch._dynamo.reset()


def test_torch_compile_model_before_and_after_teacache(wan):
    """ComfyUI's TorchCompileModel compiles the diffusion model and swaps it in for each call.
    TeaCache's gates are Python decisions: torch.compile breaks the graph around them and runs
    them as plain Python, so both orders work, skip the same steps and give the same output."""
    if os.environ.get("TEACACHE_SLOW_TESTS") != "1":
        pytest.skip("compiling takes 1-2 min on two CPU cores: run with TEACACHE_SLOW_TESTS=1")
    from comfy_extras.nodes_torch_compile import TorchCompileModel
    import torch._dynamo
    from torch._dynamo.utils import counters
    problem = _inductor_problem()
    if problem:
        pytest.skip(f"torch.compile (inductor, CPU) cannot compile here: {problem}")
    node = lambda m: TorchCompileModel.execute(m, "inductor").result[0]   # noqa: E731
    eager, _ = run(wan, steps=3)
    eager_big, _ = run(apply(wan, 1e6), steps=3)
    counters.clear()
    try:
        for thresh, ref in ((0.0, eager), (1e6, eager_big)):
            outs = []
            for m in both_orders(wan, node, thresh):
                out, _ = run(m, steps=3)
                outs.append(out)
                assert torch.allclose(out, ref, atol=1e-4)
                expected = 3 if thresh == 0.0 else 2
                assert summary(m)["calls_blocks_ran"] == expected
                assert [s for s, c in decisions(m)["cond"] if c] == ([0, 1, 2] if thresh == 0.0
                                                                     else [0, 2])
            assert torch.equal(outs[0], outs[1])
        assert counters["stats"]["unique_graphs"] > 0           # really ran compiled
    finally:
        torch._dynamo.reset()
