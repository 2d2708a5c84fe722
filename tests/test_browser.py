"""The ComfyUI page, served by the real server of the e2e tests, in headless Chromium (Debian's
`chromium`, driven by Playwright with that system browser; no browser download).

Each example workflow is fetched from the URL the template browser uses
(/api/workflow_templates/<pack>/<name>.json) and loaded with the page's own loadGraphData. The
page must then know every node (no missing-node placeholder, no missing-node/model dialog),
every widget value must be valid for the server's options, TeaCache must show the workflow's
values, and the page's own API conversion (graphToPrompt) must equal the one the server test
queues. Screenshots (whole workflow, and TeaCache close up) are saved as test artifacts under
the pytest temporary folder and copied to $TEACACHE_E2E_ARTIFACTS when that is set.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import e2e_make_workflows as mk
import e2e_server
import e2e_workflows as ew

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEW = {"width": 1600, "height": 1000}
STEMS = list(mk.WORKFLOWS)

# requests the page makes on its own that fail without a network or saved user data: not ours
BENIGN_HTTP = ("/api/userdata", "/user.css", "/api/i18n", "favicon")
BENIGN_CONSOLE = ("Content Security Policy", "api.comfy.org", "Failed to load resource")

LOAD_JS = """
async (url) => {
  const wf = await (await fetch(url)).json();       // as the template browser fetches it
  await window.app.loadGraphData(wf);
  await new Promise(r => setTimeout(r, 400));
  const graph = window.app.graph;
  const nodes = graph._nodes ?? graph.nodes;
  const num = (v) => (typeof v === 'number' && isFinite(v)) ? v : null;
  const out = nodes.map(n => ({
    id: Number(n.id), type: n.type, title: n.title,
    registered: !!window.LiteGraph.registered_node_types[n.type],
    has_errors: !!n.has_errors,
    pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]],
    widgets: (n.widgets || []).map(w => ({
      name: w.name, type: w.type, value: w.value,
      values: Array.isArray(w.options?.values) ? w.options.values : null,
      min: num(w.options?.min), max: num(w.options?.max)})),
  }));
  const p = await window.app.graphToPrompt();
  const dialogs = [...document.querySelectorAll('.p-dialog, [role="dialog"]')]
    .map(d => d.innerText || '').filter(t => t.trim());
  return {nodes: out, prompt: p.output, dialogs};
}
"""

# bounds of the whole graph (nodeId null) or of one node, in graph units (title bar included)
BOUNDS_JS = """
(nodeId) => {
  const g = window.app.graph, nodes = g._nodes ?? g.nodes;
  const T = window.LiteGraph.NODE_TITLE_HEIGHT || 30;
  const sel = nodeId === null ? nodes : nodes.filter(n => String(n.id) === String(nodeId));
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const n of sel) b = [Math.min(b[0], n.pos[0]), Math.min(b[1], n.pos[1] - T),
                            Math.max(b[2], n.pos[0] + n.size[0]), Math.max(b[3], n.pos[1] + n.size[1])];
  return b;
}
"""
# show graph box `b` at `zoom` with its top-left at screen point (left, top); returns the box
# on the screen
VIEW_JS = """
([b, zoom, left, top]) => {
  const c = window.app.canvas, ds = c.ds, r = c.canvas.getBoundingClientRect();
  ds.scale = zoom;
  ds.offset[0] = (left - r.left) / zoom - b[0];
  ds.offset[1] = (top - r.top) / zoom - b[1];
  c.setDirty(true, true);
  c.draw(true, true);
  return {x: left, y: top, width: (b[2] - b[0]) * zoom, height: (b[3] - b[1]) * zoom};
}
"""
# screen space the page's own panels take (sidebar, tabs and banners, minimap)
MARGIN = {"left": 80, "top": 140, "right": 40, "bottom": 40}
FULL_ZOOM = 0.75          # below ~0.6 the canvas drops text (low-quality rendering)
CLOSE_ZOOM = 1.4


def _comfy_version(server) -> str:
    f = server.comfy / "comfyui_version.py"
    for line in f.read_text().splitlines() if f.exists() else []:
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    return "unknown"


@pytest.fixture(scope="module")
def artifacts(server, tmp_path_factory):
    """Screenshot folder under pytest's tmp dir, and the outside copy."""
    here = tmp_path_factory.mktemp("screenshots")
    outside = Path(os.environ["TEACACHE_E2E_ARTIFACTS"]) if os.environ.get("TEACACHE_E2E_ARTIFACTS") else None
    if outside is not None:
        try:
            outside = outside / f"comfyui-{_comfy_version(server)}"
            outside.mkdir(parents=True, exist_ok=True)
        except OSError:
            outside = None
    return here, outside


@pytest.fixture(scope="module")
def page(server):
    e2e_server.setup_or_skip("browser")
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="teacache-chromium-")      # a new, empty profile
    log = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEW)
        try:
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.on("console", lambda m: log.append(("console." + m.type, m.text)))
            pg.on("pageerror", lambda e: log.append(("pageerror", str(e))))
            pg.on("response", lambda r: log.append(("http", f"{r.status} {r.url}"))
                  if r.status >= 400 else None)
            t0 = time.monotonic()
            pg.goto(server.url)
            pg.wait_for_function("() => window.app && window.app.graph && window.LiteGraph "
                                 "&& window.LiteGraph.registered_node_types['TeaCacheApply']",
                                 timeout=180_000)
            pg.teacache_log = log
            pg.teacache_load_s = time.monotonic() - t0
            yield pg
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


def _problems(entries):
    bad = []
    for kind, text in entries:
        if kind == "pageerror":
            bad.append(f"page error: {text}")
        elif kind == "http" and not any(b in text for b in BENIGN_HTTP):
            bad.append(f"failed request: {text}")
        elif kind == "console.error" and not any(b in text for b in BENIGN_CONSOLE):
            bad.append(f"console error: {text}")
    return bad


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_page_serves_the_pack(page, server):
    """The page is up with our nodes registered, and the template list names our examples."""
    listed = page.evaluate("async () => (await (await fetch('/api/workflow_templates'))"
                           ".json())")
    assert sorted(listed[e2e_server.PACK_FOLDER]) == sorted(STEMS)
    print(f"\npage ready in {page.teacache_load_s:.1f} s")


@pytest.mark.parametrize("stem", STEMS)
def test_example_loads_in_the_page(page, server, object_info, artifacts, stem):
    wf = ew.load(ew.EXAMPLES / f"{stem}.json")
    missing = ew.missing_node_types(wf, object_info)
    if missing and stem in mk.NEWEST_ONLY:       # the page would show missing-node placeholders
        pytest.skip(f"{mk.NEWEST_ONLY[stem]}: this ComfyUI has no {', '.join(missing)}")
    at = len(page.teacache_log)
    url = f"/api/workflow_templates/{e2e_server.PACK_FOLDER}/{stem}.json"
    res = page.evaluate(LOAD_JS, url)

    # every node known to the page, nothing flagged, no missing-node/model dialog
    assert len(res["nodes"]) == len(wf["nodes"])
    for n in res["nodes"]:
        assert n["registered"] and not n["has_errors"], f"missing/broken node: {n['type']}"
    assert not [d for d in res["dialogs"] if "missing" in d.lower()], res["dialogs"]
    assert not _problems(page.teacache_log[at:]), _problems(page.teacache_log[at:])

    # every widget value valid for the server's options (model files included)
    for n in res["nodes"]:
        for w in n["widgets"]:
            where = f"{n['title']}.{w['name']} = {w['value']!r}"
            if w["values"] is not None:
                assert w["value"] in w["values"], f"invalid choice: {where}"
            if isinstance(w["value"], (int, float)) and not isinstance(w["value"], bool):
                assert w["min"] is None or w["value"] >= w["min"], f"below min: {where}"
                assert w["max"] is None or w["value"] <= w["max"], f"above max: {where}"

    # TeaCache shows the workflow's values, under the right names
    declared = mk.build(stem)[1]
    tc_nodes = [n for n in res["nodes"] if n["type"] == "TeaCacheApply"]
    assert sorted(n["id"] for n in tc_nodes) == sorted(declared)
    for n in tc_nodes:
        shown = {w["name"]: w["value"] for w in n["widgets"]}
        for k, v in declared[n["id"]].items():
            assert _same(shown[k], v), f"TeaCache {n['id']} shows {k}={shown[k]!r}, not {v!r}"

    # the page converts the workflow exactly as the server test does
    ours = ew.ui_to_api(wf, object_info)
    theirs = res["prompt"]
    assert sorted(theirs, key=int) == sorted(ours, key=int)
    for nid, node in ours.items():
        assert theirs[nid]["class_type"] == node["class_type"]
        assert set(theirs[nid]["inputs"]) == set(node["inputs"]), nid
        for k, v in node["inputs"].items():
            assert _same(theirs[nid]["inputs"][k], v), f"node {nid} {k}: page " \
                f"{theirs[nid]['inputs'][k]!r} != {v!r}"

    # screenshots: the whole workflow (a viewport made to fit it), and TeaCache close up
    here, outside = artifacts
    b = page.evaluate(BOUNDS_JS, None)
    w = int((b[2] - b[0]) * FULL_ZOOM) + MARGIN["left"] + MARGIN["right"]
    h = int((b[3] - b[1]) * FULL_ZOOM) + MARGIN["top"] + MARGIN["bottom"]
    page.set_viewport_size({"width": max(w, VIEW["width"]), "height": max(h, VIEW["height"])})
    try:
        page.wait_for_timeout(300)
        page.evaluate(VIEW_JS, [b, FULL_ZOOM, MARGIN["left"], MARGIN["top"]])
        page.wait_for_timeout(300)
        shots = [here / f"{stem}.png"]
        page.screenshot(path=str(shots[0]))
    finally:
        page.set_viewport_size(VIEW)
    page.wait_for_timeout(300)
    for i, tc in enumerate(sorted(declared)):
        nb = page.evaluate(BOUNDS_JS, tc)
        box = page.evaluate(VIEW_JS, [nb, CLOSE_ZOOM, 400, 300])
        page.wait_for_timeout(200)
        pad = 12
        clip = {"x": box["x"] - pad, "y": box["y"] - pad, "width": box["width"] + 2 * pad,
                "height": box["height"] + 2 * pad}
        shots.append(here / f"{stem}.teacache{'' if i == 0 else i + 1}.png")
        page.screenshot(path=str(shots[-1]), clip=clip)
    # a square view around (the first) TeaCache: the template browser's thumbnail
    # (tests/e2e_make_workflows.py --thumbnails DIR turns these into example_workflows/*.jpg)
    nb = page.evaluate(BOUNDS_JS, min(declared))
    cx, cy, half = VIEW["width"] // 2, 120 + (VIEW["height"] - 120) // 2, (VIEW["height"] - 120) // 2
    page.evaluate(VIEW_JS, [nb, 0.9, cx - (nb[2] - nb[0]) * 0.45, cy - (nb[3] - nb[1]) * 0.45])
    page.wait_for_timeout(200)
    shots.append(here / f"{stem}.thumb.png")
    page.screenshot(path=str(shots[-1]), clip={"x": cx - half, "y": cy - half,
                                                "width": 2 * half, "height": 2 * half})
    for s in shots:
        assert s.stat().st_size > 10_000, f"empty screenshot {s}"
        if outside is not None:
            shutil.copy2(s, outside / s.name)
    print(f"\n{stem}: {len(res['nodes'])} nodes, screenshots in {here}"
          + (f" and {outside}" if outside else ""))


BYPASS_JS = """
async (wf) => {
  await window.app.loadGraphData(wf);
  await new Promise(r => setTimeout(r, 400));
  return (await window.app.graphToPrompt()).output;
}
"""


def test_bypass_and_mute_convert_as_the_page_does(page, object_info):
    """The demo's uncached run: TeaCache bypassed (Ctrl+B), TeaCache Report and its preview
    muted (Ctrl+M). The page's own conversion must equal devtools/workflows.py's."""
    wf = ew.load(ew.EXAMPLES / "wan2.1_t2v_1.3B_teacache.json")
    tc = ew.ui_nodes_of(wf, "TeaCacheApply")[0]["id"]
    rep = ew.ui_nodes_of(wf, "TeaCacheReport")[0]["id"]
    prev = [ln[3] for ln in wf["links"] if ln[1] == rep]
    wf = ew.set_mode(ew.set_mode(wf, [tc], ew.BYPASSED), [rep] + prev, ew.MUTED)
    theirs = page.evaluate(BYPASS_JS, wf)
    ours = ew.ui_to_api(wf, object_info)
    assert sorted(theirs, key=int) == sorted(ours, key=int)
    for nid, node in ours.items():
        assert theirs[nid]["class_type"] == node["class_type"]
        assert set(theirs[nid]["inputs"]) == set(node["inputs"]), nid
        for k, v in node["inputs"].items():
            assert _same(theirs[nid]["inputs"][k], v), f"node {nid} {k}"


def test_workflow_saved_before_an_appended_input_still_loads(page, object_info):
    """Shared workflows are a public contract: one saved before `skip_estimate` was appended
    (TeaCache with 7 widget values) loads with no error, every saved value in its place, and the
    new input at its default; the page's prompt carries it."""
    wf = ew.load(ew.EXAMPLES / "wan2.1_t2v_1.3B_teacache.json")
    tc = ew.ui_nodes_of(wf, "TeaCacheApply")[0]
    saved = tc["widgets_values"]
    assert len(saved) == 10           # ... skip_estimate, target_speedup, profile_store
    tc["widgets_values"] = saved[:7]
    at = len(page.teacache_log)
    res = page.evaluate(LOAD_JS.replace("const wf = await (await fetch(url)).json();",
                                        "const wf = url;"), wf)
    assert not _problems(page.teacache_log[at:]), _problems(page.teacache_log[at:])
    node = next(n for n in res["nodes"] if n["id"] == tc["id"])
    assert not node["has_errors"]
    shown = {w["name"]: w["value"] for w in node["widgets"]}
    names = [w["name"] for w in node["widgets"]]
    assert names[:8] == ["rel_l1_thresh", "start_step", "end_step", "model_type",
                         "cache_device", "retention_mode", "max_consecutive_skips",
                         "skip_estimate"]
    for name, value in zip(names[:7], saved[:7]):
        assert _same(shown[name], value), name
    assert shown["skip_estimate"] == "reuse" and shown["target_speedup"] == 0
    assert res["prompt"][str(tc["id"])]["inputs"]["skip_estimate"] == "reuse"
    assert res["prompt"][str(tc["id"])]["inputs"]["target_speedup"] == 0
    assert shown["profile_store"] is True
    assert res["prompt"][str(tc["id"])]["inputs"]["profile_store"] is True
