"""Through the real ComfyUI server (issue 6): removing or bypassing TeaCache restores the exact
uncached output, and bad TeaCache inputs are refused by /prompt with a message that says what
to change.

A node bypassed in the UI (mode 4) never reaches the server: the frontend leaves it out of
the API prompt and wires its MODEL input straight to its consumers. So "bypassed" and
"removed" are the same API prompt, the one without the TeaCache node, queued here by hand
after TeaCache ran on the very same loaded model (the loader's output is cached by the server
and shared between the prompts: checked in each history entry).
"""
from __future__ import annotations

import json
import math
import urllib.error
import uuid

import pytest
import torch
from safetensors.torch import load_file

import e2e_server

UNET = "wan2.1_t2v_1.3B_fp16.safetensors"
TEXT = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
STEPS = 4


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    srv = e2e_server.shared_server(request, tmp_path_factory)
    teacache_defaults(srv)
    return srv


_DEFAULTS = {}


def teacache_defaults(server) -> dict:
    """Every TeaCacheApply input at its default, as the server describes the node (so inputs
    appended later are filled in too)."""
    if not _DEFAULTS:
        info = server.get_json("/object_info/TeaCacheApply")["TeaCacheApply"]["input"]
        for group in ("required", "optional"):
            for name, spec in info.get(group, {}).items():
                if name == "model":
                    continue
                kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
                if "default" in opts:
                    _DEFAULTS[name] = opts["default"]
                elif isinstance(kind, list):
                    _DEFAULTS[name] = kind[0]
                elif kind == "COMBO":
                    _DEFAULTS[name] = opts["options"][0]
    return dict(_DEFAULTS)


def prompt(teacache: dict | None, prefix: str, seed=11):
    """UNETLoader -> (TeaCache) -> KSampler -> SaveLatent, stand-in text encoder."""
    p = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": UNET,
                                                     "weight_dtype": "default"}},
        "2": {"class_type": "TeaCacheTestCLIPLoader", "inputs": {"clip_name": TEXT,
                                                                 "type": "wan"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in the snow",
                                                         "clip": ["2", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["2", 0]}},
        "5": {"class_type": "EmptyHunyuanLatentVideo",
              "inputs": {"width": 64, "height": 64, "length": 5, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {
            "model": ["6", 0] if teacache is not None else ["1", 0], "seed": seed,
            "steps": STEPS, "cfg": 5.0, "sampler_name": "euler", "scheduler": "simple",
            "positive": ["3", 0], "negative": ["4", 0], "latent_image": ["5", 0],
            "denoise": 1.0}},
        "8": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0],
                                                     "filename_prefix": f"compat/{prefix}"}},
    }
    if teacache is not None:
        inputs = {**_DEFAULTS, "model": ["1", 0]}
        inputs.update(teacache)
        p["6"] = {"class_type": "TeaCacheApply", "inputs": inputs}
    return p


def run(server, p):
    """Queue, wait; returns (saved latent tensor, node ids the server took from its cache,
    the TeaCache summary lines this prompt logged)."""
    offset = server.log_size()
    entry = server.wait(server.queue(p))
    status = entry.get("status", {})
    assert status.get("status_str") == "success", json.dumps(status)[-2000:]
    cached = set()
    for kind, data in status.get("messages", []):
        if kind == "execution_cached":
            cached |= set(data.get("nodes", []))
    (saved,) = entry["outputs"]["8"]["latents"]
    path = server.base / "output" / saved["subfolder"] / saved["filename"]
    lines = [ln for ln in server.log_since(offset).splitlines() if "TeaCache: " in ln]
    return load_file(str(path))["latent_tensor"], cached, lines


def test_bypassed_or_removed_node_restores_the_exact_output(server):
    tag = uuid.uuid4().hex[:8]
    base, _, lines = run(server, prompt(None, f"base_{tag}"))
    assert not lines
    zero, cached, lines = run(server, prompt({"rel_l1_thresh": 0.0}, f"zero_{tag}"))
    assert "1" in cached and "7" not in cached             # same loaded model, sampled again
    assert torch.equal(zero, base)
    assert len(lines) == 1 and "thresh 0 " in lines[0]
    big, cached, lines = run(server, prompt({"rel_l1_thresh": 10.0}, f"big_{tag}"))
    assert "1" in cached and torch.isfinite(big).all() and not torch.equal(big, base)
    assert len(lines) == 1 and f"skipped {STEPS - 2}/{STEPS}" in lines[0]
    # bypass / removal after TeaCache ran on that model: the uncached result, bit for bit
    again, cached, lines = run(server, prompt(None, f"again_{tag}"))
    assert "1" in cached and "7" not in cached
    assert torch.equal(again, base) and not lines


def post_prompt(server, p):
    """POST /prompt; returns (http status, parsed answer)."""
    try:
        body = server.request("/prompt", {"prompt": p, "client_id": uuid.uuid4().hex})
        return 200, json.loads(body)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode(errors="replace"))


BAD = [
    ({"rel_l1_thresh": -0.5}, "must be >= 0"),
    ({"rel_l1_thresh": math.nan}, "NaN"),
    ({"start_step": 6, "end_step": 2}, "end_step (2) must be greater than start_step (6)"),
    ({"end_step": -3}, "-1"),
    ({"max_consecutive_skips": -2}, "max_consecutive_skips"),
    ({"model_type": "no_such_preset"}, "model_type"),
    ({"cache_device": "gpu"}, "cache_device"),
    ({"skip_estimate": "linear"}, "skip_estimate is 'linear': choose one of reuse, extrapolate"),
]


@pytest.mark.parametrize("bad, fragment", BAD, ids=[next(iter(b)) + "=" + str(list(b.values()))
                                                    for b, _ in BAD])
def test_prompt_refuses_bad_inputs_saying_what_to_change(server, bad, fragment):
    code, answer = post_prompt(server, prompt(bad, "never_runs"))
    assert code == 400, answer
    errors = answer.get("node_errors", {}).get("6", {}).get("errors", [])
    text = json.dumps(errors)
    assert errors and fragment in text, text


def test_prompt_runs_accepted_edge_values(server):
    """Values beyond the widget ranges that still mean something run as documented: a huge
    threshold skips every unforced step, a start_step past the schedule computes all."""
    tag = uuid.uuid4().hex[:8]
    base, _, _ = run(server, prompt(None, f"edge_base_{tag}", seed=12))
    late, _, lines = run(server, prompt({"rel_l1_thresh": 5.0, "start_step": 10**6},
                                        f"edge_late_{tag}", seed=12))
    assert torch.equal(late, base)
    assert len(lines) == 1 and f"skipped 0/{STEPS}" in lines[0]


def test_api_prompt_saved_before_skip_estimate_still_runs(server):
    """An API prompt saved before `skip_estimate` was appended (it has the 7 older inputs) runs
    as before: the new input is optional and defaults to the published rule."""
    tag = uuid.uuid4().hex[:8]
    old = {k: v for k, v in _DEFAULTS.items()
           if k not in ("skip_estimate", "target_speedup", "profile_store")}
    assert len(old) == 7 and _DEFAULTS["skip_estimate"] == "reuse"
    p = prompt({"rel_l1_thresh": 10.0}, f"old_{tag}")
    p["6"]["inputs"] = {**old, "rel_l1_thresh": 10.0, "model": ["1", 0]}
    a, _, lines = run(server, p)
    b, _, _ = run(server, prompt({"rel_l1_thresh": 10.0, "skip_estimate": "reuse"}, f"new_{tag}"))
    assert torch.equal(a, b)
    assert len(lines) == 1 and f"skipped {STEPS - 2}/{STEPS}" in lines[0]
