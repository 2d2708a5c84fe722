"""What TeaCache allocates and how often it reads tensors on the host, on the per-call path,
measured with the allocator's own accounting (torch.profiler's memory profiling on the CPU)
on a tiny real Wan loaded in bfloat16 by ComfyUI's loader, at a token count where a float32
copy of the hidden state would stand out against everything else TeaCache holds.

README "Memory" has the formula these tests check:
    extra <= conds x (k residuals + 1 indicator) + 1 block-input copy, in the model's dtype
(k = 1 for reuse, 2 for extrapolate; residuals and indicators on cache_device).
"""
from __future__ import annotations

import sys

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.profiler import record_function

import memprofile
import nodes
import tiny_models as tm
from harness import apply, summary

from comfyui_teacache.teacache_core import tensors
from comfyui_teacache.teacache_core.patching import registration_of

# 2 x 24 x 24 = 1152 tokens x 256: a hidden state of 1.2 MB per batch, three times the
# allocator's slack below; few enough tokens and steps that a CPU without bfloat16 instructions
# (which emulates the model's bf16 matmuls) runs this module in minutes
DIM, FRAMES, H, W = 256, 2, 48, 48
TOKENS = FRAMES * (H // 2) * (W // 2)
STEPS = 4


@pytest.fixture(scope="module")
def wan_bf16(model_dir):
    import comfy.sd
    path = tm.build_wan(model_dir / "wan_mem.safetensors", dim=DIM, num_layers=2, ffn_dim=256,
                        seed=4, dtype=torch.bfloat16)
    m = comfy.sd.load_diffusion_model(str(path), model_options={"dtype": torch.bfloat16})
    assert m.model.get_dtype() == torch.bfloat16
    # On the CPU ComfyUI computes a bf16 model in float32 (manual cast); on a GPU it runs in
    # bf16. Compute in bf16 here too, as users' GPUs do.
    m.model.manual_cast_dtype = None
    return m


@pytest.fixture(scope="module")
def no_node_peak(wan_bf16):
    """The run's peak without TeaCache (the same for every test of the module)."""
    return _profiled(wan_bf16)[0]


def _run(model):
    pos, neg = tm.wan_conds()
    return nodes.common_ksampler(model, 5, STEPS, 5.0, "euler", "simple", pos, neg,
                                 {"samples": torch.zeros(1, 16, FRAMES, H, W)})[0]["samples"]


def _hidden_bytes(conds=2):
    return conds * TOKENS * DIM * 2          # bf16, cond and uncond batched


def _profiled(model):
    reg = registration_of(model)
    if reg is not None:
        decide, finish = reg.decide, reg.finish

        def timed_decide(*a, **k):
            with record_function("teacache.decide"):
                return decide(*a, **k)

        def timed_finish(*a, **k):
            with record_function("teacache.finish"):
                return finish(*a, **k)
        reg.decide, reg.finish = timed_decide, timed_finish
    try:
        return memprofile.cpu_peak(lambda: _run(model), ("teacache.decide", "teacache.finish"))
    finally:
        if reg is not None:
            del reg.decide, reg.finish


@pytest.mark.parametrize("estimate,cache_device", [("reuse", "model_device"),
                                                   ("extrapolate", "model_device"),
                                                   ("reuse", "cpu")])
def test_extra_memory_within_the_formula(wan_bf16, no_node_peak, estimate, cache_device):
    X = _hidden_bytes()
    base_peak = no_node_peak
    tc = apply(wan_bf16, 0.2, cache_device=cache_device, skip_estimate=estimate)
    peak, ranges, out = _profiled(tc)
    s = summary(tc)
    assert 0 < s["calls_blocks_ran"] < s["calls"]          # it skipped and it computed
    k = 2 if estimate == "extrapolate" else 1
    # held across calls: k residuals + the previous indicator per cond (both conds)
    held = (k + 1) * X
    assert s["peak_cache_bytes"] <= held
    slack = X // 8 + 256 * 1024
    # against no node, at the run's worst moment: what is held, plus the cached output of a
    # cond that skips while the other computes (the block-input copies are the residuals)
    assert peak - base_peak <= held + X // 2 + slack, (peak - base_peak, held)
    # inside TeaCache's own per-call work, above what was allocated when it began: the new
    # indicator (and the norm inside it) or the block-input copy / the cached output. A
    # float32 copy of the batch's hidden state alone would be 2 X.
    assert ranges["teacache.decide"] <= 2 * X + slack, (ranges, X)
    # finish: the input copies become the residuals in place
    assert ranges["teacache.finish"] <= slack, (ranges, X)


class _HostReads(TorchFunctionMode):
    """Counts what makes the host wait for the device, when TeaCache's code asks for it."""
    NAMES = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu"}

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.NAMES:
            # the first caller outside torch's own machinery: is it TeaCache's code? (not
            # ComfyUI's, which runs inside TeaCache's wrappers)
            f = sys._getframe(1)
            while f is not None and f"{'/'}torch{'/'}" in f.f_code.co_filename:
                f = f.f_back
            if f is not None and "teacache_core" in f.f_code.co_filename:
                self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cache_device,estimate", [("model_device", "reuse"),
                                                   ("cpu", "extrapolate")])
def test_one_host_read_per_model_call(wan_bf16, cache_device, estimate):
    tc = apply(wan_bf16, 0.2, cache_device=cache_device, skip_estimate=estimate)
    counter = _HostReads()
    with counter:
        _run(tc)
    s = summary(tc)
    assert s["calls"] == STEPS and 0 < s["calls_blocks_ran"] < s["calls"]
    # one per model call (the decision), and per run the schedule and the output's signature
    assert counter.n <= s["calls"] + 2, (counter.n, s["calls"])


def test_sliced_reductions_match_whole_ones(monkeypatch):
    """The bounded slices give the sums of the whole tensor (float32 accumulation)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 300, 64, generator=g).to(torch.bfloat16)
    b = torch.randn(2, 300, 64, generator=g).to(torch.bfloat16)
    whole_s, whole_l = tensors.row_sums(a), tensors.row_l1(a, b)
    monkeypatch.setattr(tensors, "CPU_CHUNK_ELEMENTS", 1000)
    assert len(list(tensors._slices(a))) > 10
    assert torch.allclose(tensors.row_sums(a), whole_s, rtol=1e-4, atol=1e-2)
    assert torch.allclose(tensors.row_l1(a, b), whole_l, rtol=1e-4)
    ref = torch.stack([(a.float() - b.float()).abs().flatten(1).sum(1),
                       b.float().abs().flatten(1).sum(1)], 1)
    assert torch.allclose(whole_l, ref, rtol=1e-3)   # the difference is taken in bf16
    out = tensors.add_estimate(a, b, a, 0.5)
    assert torch.equal(out, a + (b + (b - a) * 0.5))
