"""ComfyUI's MultiGPU CFG split (newest ComfyUI: comfy/multigpu.py, node MultiGPU_WorkUnits)
with TeaCache before and after it, on CPU.

Without GPUs, comfy.model_management.get_all_torch_devices is made to return two CPU devices
("cpu" and "cpu:0"): the node then really makes its deep clone (reloaded from the model file,
which stays on disk) and the sampler really hands the conds to one worker thread per device.
Checked per family (Wan: patches_replace gates; Cosmos Predict2: forward object patches):
the conds really ran on both devices, the skips per cond equal the single-device run, and the
output equals it within round-off.
"""
from __future__ import annotations

import importlib.util
import threading

import pytest
import torch

import comfy.model_management
import comfy.patcher_extension as pe
import tiny_models as tm
from harness import apply, decisions, sample, state_released

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("comfy.multigpu") is None,
    reason="this ComfyUI has no MultiGPU CFG split (comfy/multigpu.py, node MultiGPU_WorkUnits "
           "came after 0.3.75): newest ComfyUI only")

STEPS = 8
DEVICES = [torch.device("cpu"), torch.device("cpu", 0)]


def _cosmos_conds(seed=0, tokens=8):
    g = torch.Generator().manual_seed(seed)
    return ([[torch.randn(1, tokens, 1024, generator=g), {}]],
            [[torch.randn(1, tokens, 1024, generator=g) * 0.1, {}]])


FAMILIES = {
    # name: (builder, latent, conds, threshold, counted sub-modules of the diffusion model)
    "wan": (lambda p: tm.build_wan(p, num_layers=3, seed=7), (1, 16, 3, 8, 8), tm.wan_conds,
            0.25, lambda dm: list(dm.blocks)),
    "cosmos_predict2": (lambda p: tm.build_cosmos_predict2(p, num_blocks=3, seed=7),
                        (1, 16, 2, 8, 8), _cosmos_conds, 0.1,
                        lambda dm: [b.mlp for b in dm.blocks]),
}


@pytest.fixture
def two_cpu_devices(monkeypatch):
    monkeypatch.setattr(comfy.model_management, "get_all_torch_devices",
                        lambda exclude_current=False: list(DEVICES))
    yield
    # the deep clones live on the second "device": unload them while it still exists
    comfy.model_management.unload_all_models()


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, model_dir):
    build, latent, conds, thresh, counted = FAMILIES[request.param]
    path = build(model_dir / f"{request.param}_multigpu.safetensors")
    return dict(name=request.param, model=tm.load(path), latent=latent, conds=conds,
                thresh=thresh, counted=counted)


def _record_devices(model):
    """A DIFFUSION_MODEL wrapper (copied to the clones with the model options) noting, per
    model call, the worker device ComfyUI ran it for and which conds were in it."""
    seen = []
    lock = threading.Lock()

    def wrapper(executor, *args, **kwargs):
        to = kwargs.get("transformer_options")
        if not isinstance(to, dict):
            to = next((a for a in args if isinstance(a, dict) and "cond_or_uncond" in a), {})
        with lock:
            seen.append((str(to.get("multigpu_thread_device")), tuple(to.get("cond_or_uncond") or ())))
        return executor(*args, **kwargs)

    m = model.clone()
    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test_devices", wrapper)
    return m, seen


def _run(fam, model):
    pos, neg = fam["conds"]()
    dm = model.get_model_object("diffusion_model")
    out, _ = sample(model, torch.zeros(fam["latent"]), pos, neg, steps=STEPS, cfg=5.0,
                    blocks=fam["counted"](dm))
    return out


def _multigpu(model):
    from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode
    return MultiGPUCFGSplitNode.execute(model, 2).result[0]


@pytest.mark.parametrize("order", ["teacache_then_multigpu", "multigpu_then_teacache"])
def test_multigpu_cfg_split_matches_single_device(family, order, two_cpu_devices):
    base = family["model"]
    single = apply(base, family["thresh"])
    ref = _run(family, single)
    ref_dec = decisions(single)
    skipped = {k: [s for s, c in v if not c] for k, v in ref_dec.items()}
    assert set(ref_dec) == {"cond", "uncond"} and all(skipped.values()), ref_dec

    recorded, seen = _record_devices(base)
    if order == "teacache_then_multigpu":
        model = _multigpu(apply(recorded, family["thresh"]))
        teacache = model
    else:
        teacache = apply(_multigpu(recorded), family["thresh"])
        model = teacache
    clones = model.get_additional_models_with_key("multigpu")
    assert len(clones) == 1 and clones[0].load_device == DEVICES[1]
    assert clones[0].model is not base.model           # a real deep clone (reloaded)

    out = _run(family, model)

    # the CFG split really ran: conds on both devices, one cond per call
    devices = {d for d, _ in seen}
    assert len(devices) == 2, seen
    assert all(len(c) == 1 for _, c in seen), seen
    assert len(seen) == 2 * STEPS
    assert decisions(teacache) == ref_dec
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert state_released(teacache)
