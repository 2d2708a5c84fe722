"""End to end through the real ComfyUI server: every example workflow, converted to the API
format with the server's own /object_info, queued with /prompt and run to completion.

Only what cannot exist at tiny size is replaced (text encoders, VAEs, CLIP vision: stand-ins
from tests/teacache_test_nodes) and the latent is made tiny; the diffusion models are tiny real
models under the workflows' file names, loaded by the workflows' own loader nodes, and every
other setting (steps, samplers, shifts, TeaCache's values) runs as shipped.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import e2e_make_workflows as mk
import e2e_models
import e2e_server
import e2e_workflows as ew

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ROOT / "teacache_core" / "adapters"
STEMS = list(mk.WORKFLOWS)

# what each run's TeaCache summary line(s) must say, in the order the samplers run
EXPECTED_LINES = {
    "wan2.1_t2v_1.3B_teacache": [
        ["Wan 2.1 T2V", "uncalibrated", "thresh 0.08", "over 30/30 steps", "(cond "]],
    "wan2.1_i2v_480p_teacache": [
        ["Wan 2.1 I2V", "uncalibrated", "retention mode", "thresh 0.25", "over 20/20 steps"]],
    "wan2.2_a14b_t2v_teacache": [
        ["Wan 2.1 T2V", "uncalibrated", "thresh 0.15", "over 10/10 steps"],
        ["Wan 2.1 T2V", "uncalibrated", "thresh 0.15", "over 10/10 steps"]],
    "wan2.2_ti2v_5B_teacache": [
        ["Wan 2.2 TI2V", "uncalibrated", "thresh 0.1 ", "over 20/20 steps"]],
    "hunyuan_video_t2v_teacache": [
        ["HunyuanVideo", "uncalibrated", "thresh 0.15", "over 20/20 steps"]],
    "ltx_video_t2v_teacache": [
        ["LTX-Video", "uncalibrated", "thresh 0.05", "over 30/30 steps"]],
    "flux1_dev_teacache": [
        ["FLUX", "uncalibrated", "thresh 0.4", "over 20/20 steps"]],
    "mochi_t2v_teacache": [["Mochi"]],
    "qwen_image_teacache": [["Qwen-Image"]],
    "hidream_i1_full_teacache": [["HiDream"]],
    "cosmos_predict2_2B_t2i_teacache": [
        ["Cosmos Predict2 Text2Image", "uncalibrated", "thresh 0.1 ", "over 35/35 steps"]],
    "z_image_turbo_teacache": [["Z-Image"]],
    "kandinsky5_lite_t2v_teacache": [
        ["Kandinsky 5", "uncalibrated", "target 2x", "over 50/50 steps"]],
    "cogvideox_5b_t2v_teacache": [
        ["CogVideoX", "uncalibrated", "thresh 0.2", "over 50/50 steps"]],
}


def _adapter_landed(stem) -> bool:
    return (ADAPTERS / f"{mk.WORKFLOWS[stem][1]}.py").exists()


def _params():
    return [pytest.param(s, id=s, marks=() if _adapter_landed(s) else
                         pytest.mark.xfail(reason="adapter not landed", strict=False))
            for s in STEMS]


def skip_if_newest_only(stem, wf, object_info):
    """A workflow of a family only the newest ComfyUI has skips, with the reason, where this
    server lacks its nodes; any other workflow with a missing node fails in the conversion."""
    missing = ew.missing_node_types(wf, object_info)
    if missing and stem in mk.NEWEST_ONLY:
        pytest.skip(f"{mk.NEWEST_ONLY[stem]}: this ComfyUI has no {', '.join(missing)}")


def _not_runnable(wf) -> str | None:
    """Why this workflow's diffusion model cannot be loaded tiny by its loader node here."""
    for n in wf["nodes"]:
        for m in n.get("properties", {}).get("models", []):
            if m["directory"] in ("diffusion_models", "checkpoints"):
                reason = e2e_models.placeholder_reason(f"{m['directory']}/{m['name']}")
                if reason:
                    return reason
    return None


def test_example_files_are_generated_and_complete():
    """example_workflows/ holds exactly the generated workflows (tests/e2e_make_workflows.py)."""
    assert sorted(p.stem for p in ew.example_files()) == sorted(STEMS)
    for stem in STEMS:                                   # the template browser's thumbnails
        assert (ew.EXAMPLES / f"{stem}.jpg").is_file(), f"{stem}.jpg missing"
    for stem in STEMS:
        wf = ew.load(ew.EXAMPLES / f"{stem}.json")
        assert wf == json.loads(mk.dumps(mk.build(stem)[0])), \
            f"{stem}.json differs from tests/e2e_make_workflows.py: regenerate or update it"
        types = [n["type"] for n in wf["nodes"]]
        assert "TeaCacheApply" in types and "MarkdownNote" in types
        assert all(n.get("mode", 0) == ew.ACTIVE for n in wf["nodes"])   # none muted/bypassed
        for n in wf["nodes"]:
            for m in n.get("properties", {}).get("models", []):
                assert m["url"].startswith("https://huggingface.co/") and m["directory"]


def test_server_serves_the_pack_and_its_templates(server, object_info):
    for node in ("TeaCacheApply", "TeaCacheCalibrate", "TeaCacheReport"):
        assert node in object_info
        assert object_info[node]["python_module"].endswith(e2e_server.PACK_FOLDER)
    # the widget order is a public contract
    assert object_info["TeaCacheApply"]["input_order"]["required"] == [
        "model", "rel_l1_thresh", "start_step", "end_step", "model_type", "cache_device",
        "retention_mode", "max_consecutive_skips"]
    # the template browser lists this folder, and the page fetches each file from here
    listed = server.get_json("/api/workflow_templates")
    assert sorted(listed[e2e_server.PACK_FOLDER]) == sorted(STEMS)
    for stem in STEMS:
        served = json.loads(server.request(f"/api/workflow_templates/"
                                           f"{e2e_server.PACK_FOLDER}/{stem}.json"))
        assert served == ew.load(ew.EXAMPLES / f"{stem}.json")


def test_widget_order_mistake_is_caught(object_info):
    """The conversion really checks the order: swap two TeaCache values and it fails."""
    wf = ew.load(ew.EXAMPLES / f"{STEMS[0]}.json")
    tc = next(n for n in wf["nodes"] if n["type"] == "TeaCacheApply")
    v = tc["widgets_values"]
    v[1], v[3] = v[3], v[1]                       # start_step <-> model_type
    with pytest.raises(ValueError, match="start_step"):
        ew.ui_to_api(wf, object_info)


def test_bypassed_teacache_is_wired_through_as_the_page_does(object_info):
    """Bypass (Ctrl+B) hands TeaCache's consumers TeaCache's own input; mute drops a node and
    leaves its consumers' inputs unset (the demo's uncached run uses both)."""
    wf = ew.load(ew.EXAMPLES / "wan2.1_t2v_1.3B_teacache.json")
    tc = ew.ui_nodes_of(wf, "TeaCacheApply")[0]["id"]
    rep = ew.ui_nodes_of(wf, "TeaCacheReport")[0]["id"]
    plain = ew.ui_to_api(wf, object_info)
    ms = next(iter(ew.nodes_of(plain, "ModelSamplingSD3")))
    ks = next(iter(ew.nodes_of(plain, "KSampler")))
    prev = next(iter(ew.nodes_of(plain, "PreviewImage")))
    assert plain[ks]["inputs"]["model"] == [str(tc), 0]
    bypassed = ew.ui_to_api(ew.set_mode(wf, [tc], ew.BYPASSED), object_info)
    assert str(tc) not in bypassed
    assert bypassed[ks]["inputs"]["model"] == [ms, 0]
    assert bypassed[str(rep)]["inputs"]["model"] == [ms, 0]
    muted = ew.ui_to_api(ew.set_mode(wf, [rep], ew.MUTED), object_info)
    assert str(rep) not in muted and "images" not in muted[prev]["inputs"]
    assert {k: v for k, v in bypassed.items() if k not in (ks, str(rep))} == \
        {k: v for k, v in plain.items() if k not in (ks, str(rep), str(tc))}


@pytest.mark.parametrize("stem", _params())
def test_example_workflow_runs(server, object_info, stem):
    wf = ew.load(ew.EXAMPLES / f"{stem}.json")
    skip_if_newest_only(stem, wf, object_info)
    api = ew.ui_to_api(wf, object_info)

    # TeaCache's settings arrive under the right names (widget order)
    declared = mk.build(stem)[1]
    for nid, settings in declared.items():
        got = {k: v for k, v in api[str(nid)]["inputs"].items() if k != "model"}
        assert got == settings, f"TeaCache node {nid}: {got} != {settings}"
    reason = _not_runnable(wf)
    if reason:
        pytest.skip(f"converted and checked, not run: {reason}")

    prompt = ew.tiny(ew.with_standins(api))
    log_at = server.log_size()
    t0 = time.monotonic()
    pid = server.queue(prompt)
    entry = server.wait(pid, timeout=240)
    elapsed = time.monotonic() - t0
    log = server.log_since(log_at)
    status = entry["status"]
    assert status["status_str"] == "success" and status["completed"], \
        f"{stem} failed:\n{json.dumps(status.get('messages'), indent=1)[-4000:]}\n{log[-4000:]}"

    # outputs: the saved file has every decoded frame at the sampled size
    from PIL import Image
    saves = {**ew.nodes_of(prompt, "SaveAnimatedWEBP"), **ew.nodes_of(prompt, "SaveImage")}
    assert saves
    size = next(v for k, v in ew.TINY_LATENT.items() if ew.nodes_of(prompt, k))
    for nid, node in saves.items():
        images = entry["outputs"][nid]["images"]
        assert len(images) == 1
        f = server.base / "output" / images[0]["subfolder"] / images[0]["filename"]
        assert f.is_file() and f.stat().st_size > 0
        with Image.open(f) as im:
            assert im.size == (size["width"], size["height"])
            if node["class_type"] == "SaveAnimatedWEBP":
                assert im.format == "WEBP" and getattr(im, "n_frames", 1) == size["length"]
            else:
                assert im.format == "PNG"
    for nid in ew.nodes_of(prompt, "PreviewImage"):          # the TeaCache report image
        assert entry["outputs"][nid]["images"]

    # the log: one TeaCache summary line per TeaCache node, in sampling order
    lines = [ln[ln.index("TeaCache: "):] for ln in log.splitlines() if "TeaCache: " in ln]
    expected = EXPECTED_LINES[stem]
    assert len(lines) == len(expected), f"summary lines: {lines}\n{log[-3000:]}"
    for line, frags in zip(lines, expected):
        for frag in frags:
            assert frag in line, f"{frag!r} not in {line!r}"
        assert re.search(r"skipped \d+/\d+ model calls per cond", line)
        assert re.search(r"\(est\. \d+\.\d\dx\)$", line)
    print(f"\n{stem}: ran in {elapsed:.1f} s\n  " + "\n  ".join(lines))


def test_teacache_before_a_node_that_clones_the_model(server, object_info):
    """The README's chain puts TeaCache before the sampler; users also put it right after the
    loader, before ModelSamplingSD3 / LoRA loaders. Caching must still happen."""
    api = ew.ui_to_api(ew.load(ew.EXAMPLES / "wan2.1_t2v_1.3B_teacache.json"), object_info)
    tc = next(iter(ew.nodes_of(api, "TeaCacheApply")))
    ms = next(iter(ew.nodes_of(api, "ModelSamplingSD3")))
    ks = next(iter(ew.nodes_of(api, "KSampler")))
    unet = next(iter(ew.nodes_of(api, "UNETLoader")))
    api[tc]["inputs"]["model"] = [unet, 0]            # loader -> TeaCache -> ModelSamplingSD3
    api[ms]["inputs"]["model"] = [tc, 0]
    api[ks]["inputs"]["model"] = [ms, 0]
    api[ks]["inputs"]["steps"] = 8
    for nid in list(ew.nodes_of(api, "TeaCacheReport")) + list(ew.nodes_of(api, "PreviewImage")):
        del api[nid]
    log_at = server.log_size()
    entry = server.wait(server.queue(ew.tiny(ew.with_standins(api))), timeout=240)
    assert entry["status"]["status_str"] == "success"
    lines = [ln for ln in server.log_since(log_at).splitlines() if "TeaCache: " in ln]
    assert len(lines) == 1 and "over 8/8 steps" in lines[0], lines
