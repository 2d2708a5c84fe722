"""target_speedup through the real ComfyUI server: bad values are refused by /prompt with a
fix-it message; a target runs and logs its target; prompts without the input run unchanged."""
from __future__ import annotations

import math
import uuid

import pytest

import e2e_server
from test_server_compat import STEPS, post_prompt, prompt, run, teacache_defaults


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    srv = e2e_server.shared_server(request, tmp_path_factory)
    teacache_defaults(srv)
    return srv


BAD = [(-2.0, "cannot be negative"), (math.nan, "target_speedup is nan"),
       (math.inf, "target_speedup is inf"), (0.5, "did you mean 2?"),
       (1000.0, "at most 100")]


@pytest.mark.parametrize("bad, fragment", BAD, ids=[str(b) for b, _ in BAD])
def test_prompt_refuses_bad_targets(server, bad, fragment):
    code, answer = post_prompt(server, prompt({"target_speedup": bad}, "never_runs"))
    assert code == 400, answer
    text = str(answer.get("node_errors", {}).get("6", {}).get("errors", []))
    assert fragment in text, text


def test_target_runs_and_one_means_no_skipping(server):
    assert teacache_defaults(server)["target_speedup"] == 0.0
    tag = uuid.uuid4().hex[:8]
    base, _, _ = run(server, prompt(None, f"tbase_{tag}", seed=21))
    one, _, lines = run(server, prompt({"target_speedup": 1.0, "rel_l1_thresh": 5.0},
                                       f"tone_{tag}", seed=21))
    assert (one == base).all() and len(lines) == 1 and f"skipped 0/{STEPS}" in lines[0]
    two, _, lines = run(server, prompt({"target_speedup": 2.0}, f"ttwo_{tag}", seed=21))
    assert len(lines) == 1 and "target 2x" in lines[0] and f"skipped {STEPS // 2}/{STEPS}" in lines[0]


def test_prompt_without_target_runs_the_threshold_rule(server):
    tag = uuid.uuid4().hex[:8]
    p = prompt({"rel_l1_thresh": 10.0}, f"tnot_{tag}")
    del p["6"]["inputs"]["target_speedup"]
    a, _, lines = run(server, p)
    b, _, _ = run(server, prompt({"rel_l1_thresh": 10.0, "target_speedup": 0.0}, f"tzero_{tag}"))
    assert (a == b).all() and len(lines) == 1 and f"skipped {STEPS - 2}/{STEPS}" in lines[0]
