"""target_speedup's profile store (issue 22; teacache_core/profiles.py).

After a target_speedup run, each cond's distance profile is kept in ComfyUI's user directory
(teacache/profiles.json) under a key of the model, the schedule, the cond, the preset and the
indicator (never the prompt). A first run of a new node (a restart-equivalent: a new
registration reading the same folder) on that model and schedule plans from it as a later run
of the same node plans from its previous run: same computed calls, same output. The store is
bounded, written atomically, ignored with a warning when it is damaged or of another version,
and not used when the node's profile_store input is off. In every case each cond computes
exactly the budget K of tests/test_target.py.

The store's own logic is tested on toy data; the rest on a tiny real Wan through KSampler.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

import folder_paths
import nodes
import tiny_models as tm
from harness import summary

from comfyui_teacache.nodes.apply import TeaCacheApply
from comfyui_teacache.nodes.common import profile_folder
from comfyui_teacache.teacache_core import profiles
from comfyui_teacache.teacache_core.patching import registration_of

LAYERS = 2
STEPS = 10


# ---- the store on toy data ----------------------------------------------------------------
def prof(n, scale=1.0):
    return {"steps": list(range(n)),
            "rescaled": [None] + [scale * (i + 1) / n for i in range(n - 1)]}


def store_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelname == "WARNING" and "profile store" in r.getMessage()]


def test_toy_round_trip_through_a_new_store(tmp_path):
    s = profiles.ProfileStore(tmp_path)
    p = prof(6)
    p["rescaled"][3] = math.inf              # non-finite: kept as None (planned alike)
    assert s.put([("a", p, {"cond": "cond"})])
    again = profiles.ProfileStore(tmp_path).get("a")         # another node / a restart
    assert again["steps"] == p["steps"]
    assert again["rescaled"] == [None, 1 / 6, 2 / 6, None, 4 / 6, 5 / 6]
    d = json.loads((tmp_path / profiles.FILE_NAME).read_text())
    assert d["format"] == profiles.FORMAT and d["version"] == profiles.VERSION
    assert not list(tmp_path.glob(".profiles.*"))            # no temp file left behind


def test_toy_keys_ignore_order_and_differ_per_part():
    a = profiles.entry_key({"model": {"x": 1}, "cond": "cond", "sigmas": [1.0, 0.5]})
    assert a == profiles.entry_key({"sigmas": [1.0, 0.5], "cond": "cond", "model": {"x": 1}})
    assert a != profiles.entry_key({"model": {"x": 1}, "cond": "uncond", "sigmas": [1.0, 0.5]})
    assert a != profiles.entry_key({"model": {"x": 2}, "cond": "cond", "sigmas": [1.0, 0.5]})


def test_toy_bound_drops_the_least_recently_written(tmp_path):
    s = profiles.ProfileStore(tmp_path, max_entries=3)
    for i in range(6):
        s.put([(f"k{i}", prof(4, i + 1), {})])
        if i == 3:
            s.put([("k1", prof(4, 9), {})])   # written again: the most recent now
        assert len(json.loads((tmp_path / profiles.FILE_NAME).read_text())["entries"]) \
            == min(i + 1, 3)
    # k0, k2, k3 went (k1, written again after k3, outlived them)
    assert sorted(profiles.ProfileStore(tmp_path).keys()) == ["k1", "k4", "k5"]
    s.put([(f"m{i}", prof(4), {}) for i in range(5)])        # one write of more than the bound
    assert sorted(profiles.ProfileStore(tmp_path).keys()) == ["m2", "m3", "m4"]


def test_toy_damaged_files_are_ignored_with_a_warning(tmp_path, caplog):
    path = tmp_path / profiles.FILE_NAME
    path.write_text("{not json")
    s = profiles.ProfileStore(tmp_path)
    assert s.get("a") is None and s.get("b") is None
    assert len(store_warnings(caplog)) == 1 and "unreadable" in store_warnings(caplog)[0]
    assert s.put([("a", prof(4), {})])                   # ours, damaged: replaced
    assert profiles.ProfileStore(tmp_path).get("a") == s.get("a") is not None
    # damaged entries: dropped, the good ones kept
    d = json.loads(path.read_text())
    d["entries"]["bad"] = {"steps": [0, 1], "rescaled": [None]}
    d["entries"]["worse"] = {"steps": "x", "rescaled": []}
    path.write_text(json.dumps(d))
    assert profiles.ProfileStore(tmp_path).keys() == ["a"]
    assert any("2 damaged entries" in w for w in store_warnings(caplog))


@pytest.mark.parametrize("content, replaced", [
    ({"format": profiles.FORMAT, "version": profiles.VERSION + 1, "entries": {}}, False),
    ({"format": profiles.FORMAT, "version": 0, "entries": {}}, True),
    ({"format": "something else", "entries": {}}, False),
    ([1, 2, 3], False),
], ids=["newer version", "older version", "not ours", "not a dict"])
def test_toy_foreign_files(tmp_path, caplog, content, replaced):
    path = tmp_path / profiles.FILE_NAME
    content = json.loads(json.dumps(content))
    if isinstance(content, dict):
        content["entries"] = {"a": {"tick": 1, **prof(4)}}   # would match if it were read
    path.write_text(json.dumps(content))
    before = path.read_bytes()
    s = profiles.ProfileStore(tmp_path)
    assert s.get("a") is None
    assert len(store_warnings(caplog)) == 1
    assert s.put([("b", prof(4), {})]) is replaced
    assert (path.read_bytes() == before) is not replaced
    assert ("left untouched" in store_warnings(caplog)[0]) is not replaced


def test_toy_a_failed_write_is_a_warning(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    s = profiles.ProfileStore(tmp_path / "file")        # the folder is a file
    assert s.get("a") is None
    assert s.put([("a", prof(4), {})]) is False
    assert any("could not be written" in w for w in store_warnings(caplog))


def test_weights_signature():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))
    a = profiles.weights_signature(m)
    assert a == profiles.weights_signature(m)
    with torch.no_grad():
        m[1].weight[0, 0] += 1
    assert profiles.weights_signature(m) != a
    # a weight a LoRA patches in place while loaded is hashed by name and shape only
    skip = {"1.weight"}
    b = profiles.weights_signature(m, skip=skip)
    with torch.no_grad():
        m[1].weight[0, 0] += 1
    assert profiles.weights_signature(m, skip=skip) == b


# ---- the node on a tiny real Wan ----------------------------------------------------------
@pytest.fixture(autouse=True)
def user_dir(tmp_path):
    """Each test: an empty ComfyUI user directory (a fresh install)."""
    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path / "user"))
    yield tmp_path / "user"
    folder_paths.set_user_directory(old)


@pytest.fixture(scope="module")
def wan(model_dir):
    return tm.load(tm.build_wan(model_dir / "wan_profiles.safetensors", num_layers=LAYERS,
                                seed=61))


@pytest.fixture(scope="module")
def wan_other(model_dir):
    """Same architecture and file name, other weights."""
    (model_dir / "other").mkdir(exist_ok=True)
    return tm.load(tm.build_wan(model_dir / "other" / "wan_profiles.safetensors",
                                num_layers=LAYERS, seed=62))


def node(model, r=2.0, store=True, estimate="reuse"):
    msg = TeaCacheApply.validate_inputs(0.1, 0, -1, 0, target_speedup=r)
    assert msg is True, msg
    return TeaCacheApply.execute(model, 0.1, 0, -1, "auto", "model_device", False, 0, estimate,
                                 r, store).result[0]


def run(model, prompt=0, steps=STEPS, sampler="euler", seed=5):
    """KSampler; `prompt` picks the conditioning (another prompt: other text embeddings)."""
    pos, neg = tm.wan_conds(seed=prompt)
    counter, hs = tm.count_blocks(model)
    try:
        out = nodes.common_ksampler(model, seed, steps, 4.0, sampler, "simple", pos, neg,
                                    {"samples": torch.zeros(1, 16, 3, 8, 8)})[0]["samples"]
    finally:
        for h in hs:
            h.remove()
    return out, counter["n"]


def store_file():
    return profile_folder() / profiles.FILE_NAME


def entries():
    return json.loads(store_file().read_text())["entries"]


def expected_k(n, r=2.0, forced=2):
    lo = max(math.floor(n / r), 1)
    return max(min(min((lo, lo + 1), key=lambda k: (abs(math.log(n / k / r)), k)), n), forced)


def computed(m):
    return {lab: [r["computed"] for r in recs] for lab, recs in summary(m)["branches"].items()}


def check_budget(m, blocks, n=STEPS):
    """Each cond computes exactly K of its n calls; cond and uncond together."""
    k = expected_k(n)
    c = computed(m)
    assert set(c) == {"cond", "uncond"}
    assert all(sum(v) == k for v in c.values()), c
    assert blocks == k * LAYERS
    return c


def plan(m):
    t = summary(m)["target"]
    per = {lab: v["plan"] for lab, v in t["conds"].items()}
    assert set(per.values()) == {t["plan"]}, (t["plan"], per)     # both conds alike here
    return t["plan"]


@pytest.mark.parametrize("sampler, estimate", [("euler", "reuse"), ("dpmpp_2m", "extrapolate"),
                                               ("heun", "reuse")])
def test_a_restart_plans_from_the_store_as_a_later_run(wan, sampler, estimate, caplog):
    n = 2 * STEPS - 1 if sampler == "heun" else STEPS
    first = node(wan, estimate=estimate)
    _, blocks = run(first, prompt=0, sampler=sampler)
    assert plan(first) == profiles.SOURCE_PREDICTION
    if sampler != "heun":                  # heun: same-input extra passes (test_target.py)
        check_budget(first, blocks, n)
    assert sorted(e["about"]["cond"] for e in entries().values()) == ["cond", "uncond"]
    # a new node (as after a restart: a new registration reading the same folder), and
    # another prompt: it plans from the stored profile of the first node's run ...
    fresh = node(wan, estimate=estimate)
    out_fresh, blocks_fresh = run(fresh, prompt=1, sampler=sampler)
    assert plan(fresh) == profiles.SOURCE_STORED
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TeaCache:")]
    assert "target 2x" in lines[-1] and "planned on the stored profile" in lines[-1]
    # ... as the first node plans its later run from its previous run: same computes, same
    # output
    out_later, blocks_later = run(first, prompt=1, sampler=sampler)
    assert plan(first) == profiles.SOURCE_PREVIOUS
    assert computed(fresh) == computed(first)
    assert torch.equal(out_fresh, out_later) and blocks_fresh == blocks_later
    if sampler != "heun":
        check_budget(fresh, blocks_fresh, n)
    assert summary(fresh)["target"]["planned"] and summary(first)["target"]["planned"]
    # a new node with the store off predicts; a planned run takes only the calls to come from
    # the profile and predicts their distances as a first run does (TargetRule._predict), so
    # with one call per step it computes the same calls (heun: the profile gives the calls of
    # the second-order steps from the first call on)
    off = node(wan, store=False, estimate=estimate)
    out_off, _ = run(off, prompt=1, sampler=sampler)
    assert plan(off) == profiles.SOURCE_PREDICTION
    if sampler != "heun":
        assert computed(off) == computed(fresh) and torch.equal(out_off, out_fresh)
    # two prompts, one entry per cond: the prompt is not part of the key
    assert len(entries()) == 2


def test_another_model_sampler_schedule_or_lora_has_its_own_entry(wan, wan_other):
    _, blocks = run(node(wan), prompt=0)
    assert len(entries()) == 2
    m = node(wan)
    _, blocks = run(m, prompt=3, seed=9)                  # another prompt and seed: shared
    assert plan(m) == profiles.SOURCE_STORED and len(entries()) == 2
    check_budget(m, blocks)
    # same architecture and file name, other weights
    m = node(wan_other)
    _, blocks = run(m, prompt=0)
    assert plan(m) == profiles.SOURCE_PREDICTION and len(entries()) == 4
    check_budget(m, blocks)
    # another step count, another sampler on the same sigmas
    m = node(wan)
    _, blocks = run(m, prompt=0, steps=STEPS + 2)
    assert plan(m) == profiles.SOURCE_PREDICTION and len(entries()) == 6
    check_budget(m, blocks, STEPS + 2)
    m = node(wan)
    _, blocks = run(m, prompt=0, sampler="euler_ancestral")
    assert plan(m) == profiles.SOURCE_PREDICTION and len(entries()) == 8
    check_budget(m, blocks)
    # a LoRA-style weight patch (every weight of the diffusion model) on the same model
    base_id = registration_of(node(wan)).profile_model
    lora = wan.clone()
    sd = lora.model_state_dict()
    lora.add_patches({k: (torch.full_like(v, 0.01),) for k, v in sd.items()
                      if k.startswith("diffusion_model.") and v.ndim >= 2}, 0.5)
    m = node(lora)
    _, blocks = run(m, prompt=0)
    assert plan(m) == profiles.SOURCE_PREDICTION and len(entries()) == 10
    check_budget(m, blocks)
    # the first model's entry is still found while the LoRA clone is loaded, its weights
    # patched in place (the identity reads the unpatched weights the clones share)
    live = wan.get_model_object("diffusion_model.blocks.0.ffn.0.weight")
    assert not torch.equal(live, sd["diffusion_model.blocks.0.ffn.0.weight"])
    m = node(wan)
    assert registration_of(m).profile_model == base_id
    run(m, prompt=5)
    assert plan(m) == profiles.SOURCE_STORED and len(entries()) == 10


def test_an_entry_holds_the_profile_and_a_description_only(wan):
    run(node(wan), prompt=0)
    # the newest ComfyUI records the loader's file (ModelPatcher.cached_patcher_init): its
    # name is part of the key; 0.3.75 does not (the weights' hash still is)
    named = hasattr(wan, "cached_patcher_init")
    for e in entries().values():
        assert set(e) == {"tick", "about", "steps", "rescaled"}
        assert set(e["about"]) == {"model", "cond", "steps", "calls", "file", "sampler"}
        assert e["about"]["file"] == ("wan_profiles.safetensors" if named else None)
        assert e["about"]["sampler"] == "sample_euler"
        assert e["steps"] == list(range(STEPS)) and e["rescaled"][0] is None


@pytest.mark.parametrize("content", ["{ corrupt", json.dumps({"format": profiles.FORMAT,
                                                               "version": 99, "entries": {}})],
                         ids=["corrupt", "newer version"])
def test_a_damaged_or_foreign_store_gives_a_fresh_plan(wan, content, caplog):
    # the entries this model and schedule would find, in a file this TeaCache cannot use
    run(node(wan), prompt=0)
    good = entries()
    store_file().write_text(content if content.startswith("{ ") else json.dumps(
        {**json.loads(content), "entries": good}))
    before = store_file().read_bytes()
    m = node(wan)
    _, blocks = run(m, prompt=1)
    assert plan(m) == profiles.SOURCE_PREDICTION
    check_budget(m, blocks)
    warn = store_warnings(caplog)
    assert len(warn) == 1 and str(store_file()) in warn[0]
    if content.startswith("{ "):         # ours, damaged: replaced by this run's profiles
        assert len(entries()) == 2
        m = node(wan)
        run(m, prompt=2)
        assert plan(m) == profiles.SOURCE_STORED
    else:                                # a newer TeaCache's file: never overwritten
        assert "left untouched" in warn[0] and store_file().read_bytes() == before


def test_turned_off_reads_and_writes_nothing(wan):
    m = node(wan, store=False)
    _, blocks = run(m, prompt=0)
    assert not store_file().exists() and not profile_folder().exists()
    assert plan(m) == profiles.SOURCE_PREDICTION
    check_budget(m, blocks)
    run(node(wan), prompt=0)                          # on: an entry for this model and schedule
    before = store_file().read_bytes()
    m = node(wan, store=False)
    _, blocks = run(m, prompt=1)
    assert plan(m) == profiles.SOURCE_PREDICTION and store_file().read_bytes() == before
    check_budget(m, blocks)
    _, blocks = run(m, prompt=2)                      # its later runs: its previous run
    assert plan(m) == profiles.SOURCE_PREVIOUS and store_file().read_bytes() == before
    check_budget(m, blocks)


def test_threshold_runs_keep_nothing(wan):
    run(node(wan, r=0.0), prompt=0)
    assert not store_file().exists()


def test_the_store_never_grows_past_its_bound(wan, monkeypatch):
    monkeypatch.setattr(profiles, "MAX_ENTRIES", 3)
    for i, steps in enumerate((8, 9, 10, 11)):
        m = node(wan)
        _, blocks = run(m, prompt=i, steps=steps)
        check_budget(m, blocks, steps)
        e = entries()
        assert len(e) == min(2 * (i + 1), 3)
        assert {v["about"]["steps"] for v in e.values()} >= {steps}
    # the newest schedule's entries are the ones kept: its next first run plans from them
    m = node(wan)
    run(m, prompt=7, steps=11)
    assert plan(m) == profiles.SOURCE_STORED
