"""Sequence parallelism (Raylight / xDiT USP) on CPU: 2 ranks over torch.distributed gloo.

A tiny real ComfyUI Wan (built, saved, loaded with comfy.sd.load_diffusion_model) runs in two
processes whose token sequence is sharded the way Raylight does it (tests/sp_standin.py: a
sharding forward_orig and a stand-in for xDiT's USP attention that all-gathers K/V). The SP
group is found the way TeaCache finds it in Raylight: through xDiT's own parallel state (PyPI
xfuser, in an overlay venv over the suite's venv made by scripts/xdit_venv.sh, ~30 s once).

Never hangs: every collective has the process group's timeout, the ranks are killed when one
fails or the run overstays, and the negative control (ranks deciding apart) runs with
attention that needs no collectives, the divergence read from the decisions afterwards.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import sp_standin
import tiny_models as tm
from harness import apply, decisions, summary

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKER = HERE / "sp_worker.py"
WORLD = 2
RUN_TIMEOUT_S = 420
INSTALL_TIMEOUT_S = 900
STEPS = 8
THRESH = 0.25
EVEN = [1, 16, 4, 8, 8]         # 4 * 4 * 4 = 64 tokens: 32 per rank
ODD = [1, 16, 3, 6, 10]         # 3 * 3 * 5 = 45 tokens: 23 + 22, the last rank has 1 pad token


def _engine_reduces() -> bool:
    """The per-call all-reduce lives in teacache_core/engine.py (calling parallel.py)."""
    return importlib.util.find_spec("comfyui_teacache.teacache_core.engine") is not None


needs_engine = pytest.mark.skipif(not _engine_reduces(), reason=(
    "the per-call reduction over the SP group is made by teacache_core/engine.py, which is "
    "not in this checkout yet"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(python, kind, out: Path, extra=(), timeout=RUN_TIMEOUT_S):
    """Start WORLD ranks of sp_worker.py; wait with a deadline; kill them all when one fails
    or time runs out. Returns the return codes and each rank's log."""
    port = _free_port()
    env = {"TEACACHE_SP_OP_TIMEOUT": "30", **os.environ, "PYTHONUNBUFFERED": "1"}
    logs = [out / f"{kind}_rank{r}.log" for r in range(WORLD)]
    procs = []
    try:
        for r in range(WORLD):
            with open(logs[r], "w") as f:
                procs.append(subprocess.Popen(
                    [python, str(WORKER), kind, str(r), str(WORLD), str(port), str(out), *extra],
                    stdout=f, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT)))
        deadline = time.monotonic() + timeout
        failed_at = None
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            if any(p.poll() not in (None, 0) for p in procs):
                failed_at = failed_at or now
                if now - failed_at > 5:         # the other rank gets a moment to report
                    break
            if now > deadline:
                break
            time.sleep(0.2)
    finally:
        alive = [p for p in procs if p.poll() is None]
        for p in alive:                     # first SIGTERM: each rank dumps its stacks
            p.terminate()
        time.sleep(2 if alive else 0)
        for p in procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    codes = [p.returncode for p in procs]
    texts = [log.read_text(errors="replace") for log in logs]
    return codes, texts


def _report(codes, texts):
    return "\n".join(f"--- rank {r} (exit {c}) ---\n{t[-3000:]}"
                     for r, (c, t) in enumerate(zip(codes, texts)))


@pytest.fixture(scope="module")
def xdit_python():
    t0 = time.monotonic()
    try:
        r = subprocess.run(["bash", str(ROOT / "scripts" / "xdit_venv.sh"), sys.executable],
                           capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip("installing xDiT (xfuser) into the overlay venv took too long")
    if r.returncode != 0:
        pytest.skip(f"xDiT (xfuser) could not be installed: {r.stderr[-1500:]}")
    print(f"xdit venv ready in {time.monotonic() - t0:.1f}s")
    return r.stdout.strip().splitlines()[-1]


def _scenarios(engine: bool):
    sc = [
        # threshold 0: nothing skipped; the sharded model alone against the unsharded one
        dict(name="exact", latent=ODD, thresh=0.0, attention="gather", reduce=True),
        # the negative control: attention within the shard (no collectives in the blocks),
        # no reduction; a threshold between the two ranks' own distances at step 1
        dict(name="probe", latent=EVEN, noise="crafted", thresh=0.0, attention="local",
             reduce=False),
        dict(name="control", latent=EVEN, noise="crafted", thresh=None, thresh_from="probe",
             attention="local", reduce=False),
    ]
    if engine:
        sc += [
            dict(name="even", latent=EVEN, thresh=THRESH, attention="gather", reduce=True),
            dict(name="control_reduced", latent=EVEN, noise="crafted", thresh=None,
                 thresh_from="probe", attention="local", reduce=True),
            # last: ranks that decided apart here fail (collective timeout), the rest stands
            dict(name="padded", latent=ODD, thresh=THRESH, attention="gather", reduce=True),
        ]
    for s in sc:
        s.update(steps=STEPS, cfg=5.0)
    return sc


@pytest.fixture(scope="module")
def wan_path(model_dir):
    return tm.build_wan(model_dir / "wan_sp.safetensors", num_layers=3, seed=5)


@pytest.fixture(scope="module")
def sp_run(xdit_python, wan_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("sp")
    scenarios = _scenarios(_engine_reduces())
    (out / "scenarios.json").write_text(json.dumps(scenarios))
    t0 = time.monotonic()
    codes, texts = run_ranks(xdit_python, "wan", out, [str(wan_path), str(out / "scenarios.json")])
    print(f"2 ranks ran {len(scenarios)} scenarios in {time.monotonic() - t0:.1f}s")
    res = {s["name"]: [torch.load(out / f"rank{r}_{s['name']}.pt") for r in range(WORLD)]
           for s in scenarios if all((out / f"rank{r}_{s['name']}.pt").exists()
                                     for r in range(WORLD))}
    res["_failure"] = None if codes == [0] * WORLD else _report(codes, texts)
    return res


def ran(sp_run, name):
    """Both ranks' results of one scenario, or the ranks' failure report."""
    if name not in sp_run:
        pytest.fail(f"the ranks failed before finishing {name!r}:\n{sp_run['_failure']}")
    return sp_run[name]


@pytest.fixture(scope="module")
def reference(wan_path):
    """Single process, unsharded sequence, stock ComfyUI attention."""
    model = tm.load(wan_path)
    ref = {}
    for sc in _scenarios(True):
        if sc["attention"] != "gather":
            continue
        patched = apply(model, sc["thresh"])
        noise, latent = sp_standin.inputs(sc)
        ref[sc["name"]] = {"out": sp_standin.sample(patched, noise, latent, sc["steps"], sc["cfg"]),
                           "decisions": decisions(patched),
                           "records": summary(patched)["branches"]}
    noise, latent = sp_standin.inputs(_scenarios(False)[0])
    ref["no_teacache"] = sp_standin.sample(model, noise, latent, STEPS, 5.0)
    return ref


def test_parallel_contract_on_gloo(xdit_python, tmp_path):
    codes, texts = run_ranks(xdit_python, "unit", tmp_path, timeout=180)
    assert codes == [0] * WORLD, _report(codes, texts)
    res = [json.loads((tmp_path / f"unit_rank{r}.json").read_text()) for r in range(WORLD)]
    for r, x in enumerate(res):
        assert x["before_xfuser"]
        assert x["dp"] == [2, 1] and x["dp_group_is_none"], "data-parallel ranks must stay apart"
        assert x["explicit"] and x["set_sequence_group"] and x["unset"]
        want = 4 if r == 0 else 3             # 7 tokens in chunks of 4: rank 1 has 1 pad token
        assert x["valid_explicit"] == x["valid_grid"] == x["valid_key"] == want
        assert x["valid_unknown"] == 4 and x["valid_even"] == 4
        assert x["is_view"]
        assert x["sum"] == [3.0, 30.0] and x["sum_none"] == [3.0, 30.0]


def test_group_found_through_xfuser(sp_run):
    for res in ran(sp_run, "exact"):
        assert res["found_xfuser_group"] and res["world"] == WORLD


def test_sharded_model_matches_unsharded_at_threshold_zero(sp_run, reference):
    r0, r1 = ran(sp_run, "exact")
    assert torch.equal(r0["out"], r1["out"])
    assert all(c for steps in r0["decisions"].values() for _, c in steps)
    torch.testing.assert_close(r0["out"], reference["no_teacache"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r0["out"], reference["exact"]["out"], rtol=1e-4, atol=1e-4)


@needs_engine
@pytest.mark.parametrize("name", ["even", "padded"])
def test_ranks_decide_as_one_process(sp_run, reference, name):
    r0, r1 = ran(sp_run, name)
    ref = reference[name]
    assert r0["decisions"] == r1["decisions"] == ref["decisions"]
    skipped = [s for steps in ref["decisions"].values() for s, c in steps if not c]
    assert skipped, "the threshold should skip some steps"
    # the reduced sums are the whole sequence's (padding left out): the same distances
    for lab, recs in ref["records"].items():
        want = [r["distance"] for r in recs if r["distance"] is not None]
        for res in (r0, r1):
            got = [r["distance"] for r in res["records"][lab] if r["distance"] is not None]
            assert got == pytest.approx(want, rel=1e-5), (lab, got, want)
    assert torch.equal(r0["out"], r1["out"])
    torch.testing.assert_close(r0["out"], ref["out"], rtol=1e-4, atol=1e-4)


def test_without_reduction_ranks_diverge(sp_run):
    """Negative control: the shards alone make the ranks decide differently (here that would
    be a hang with collectives in the blocks; the control's attention has none)."""
    p0, p1 = ran(sp_run, "probe")
    d = [[r["rescaled"] for r in p["records"]["cond"] if r["step"] == 1][0] for p in (p0, p1)]
    assert max(d) > 1.5 * min(d), f"crafted input should make the halves differ: {d}"
    c0, c1 = ran(sp_run, "control")
    assert c0["thresh"] == c1["thresh"]
    assert c0["decisions"] != c1["decisions"]


@needs_engine
def test_reduction_makes_the_control_agree(sp_run):
    c0, c1 = ran(sp_run, "control_reduced")
    assert c0["thresh"] == c1["thresh"]
    assert c0["decisions"] == c1["decisions"]
