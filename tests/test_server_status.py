"""Through the real ComfyUI server: after each run TeaCache's summary arrives on the TeaCache
node of the page (the server's progress text for that node id, read here from the websocket as
the page reads it), also when ComfyUI reused TeaCache's cached output; and a calibration that
changed under the same name takes effect at the next queue (TeaCacheApply's
fingerprint_inputs includes the calibration file's content).

Outside a server (execute() called directly, as most tests do) nothing is sent.
"""
from __future__ import annotations

import asyncio
import copy
import json
import re
import struct
import sys
import threading
import time
import uuid

import pytest

import e2e_server
import e2e_workflows as ew

TEXT_EVENT = 3          # BinaryEventTypes.TEXT (protocol.py): the progress text


class Websocket:
    """The page's side of /ws: every JSON message and every progress text, in order."""

    def __init__(self, server, client_id):
        self.url = f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}"
        self.events = []                          # ("json", dict) / ("text", node_id, text)
        self._lock = threading.Lock()
        self._ready, self._stop = threading.Event(), threading.Event()
        self._error = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"no websocket connection: {self._error}")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    async def _main(self):
        import aiohttp
        try:
            async with aiohttp.ClientSession() as s, s.ws_connect(self.url) as ws:
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        msg = await asyncio.wait_for(ws.receive(), 0.2)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        with self._lock:
                            self.events.append(("json", json.loads(msg.data)))
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        data = msg.data
                        if struct.unpack(">I", data[:4])[0] == TEXT_EVENT:
                            n = struct.unpack(">I", data[4:8])[0]
                            node = data[8:8 + n].decode()
                            with self._lock:
                                self.events.append(("text", node, data[8 + n:].decode()))
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except Exception as e:                    # reported by __enter__ / the assertions
            self._error = e
            self._ready.set()

    def texts(self, since=0):
        with self._lock:
            return [(e[1], e[2]) for e in self.events[since:] if e[0] == "text"]

    def mark(self):
        with self._lock:
            return len(self.events)


@pytest.fixture(scope="module")
def base_prompt(server, object_info):
    """The Wan 2.1 example workflow as the page queues it, tiny, with stand-ins."""
    wf = ew.load(ew.EXAMPLES / "wan2.1_t2v_1.3B_teacache.json")
    p = ew.tiny(ew.with_standins(ew.ui_to_api(wf, object_info)))
    tc = next(iter(ew.nodes_of(p, "TeaCacheApply")))
    ks = next(iter(ew.nodes_of(p, "KSampler")))
    p[ks]["inputs"]["steps"] = 8
    return p, tc, ks


def _queue(server, prompt, client_id):
    out = json.loads(server.request("/prompt", {"prompt": prompt, "client_id": client_id}))
    assert not out.get("node_errors"), out
    entry = server.wait(out["prompt_id"], timeout=240)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    return entry


def _wait_texts(ws, since, node, timeout=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = [t for n, t in ws.texts(since) if n == node and t.startswith("TeaCache")]
        if got:
            return got
        time.sleep(0.1)
    return []


def _renumber(prompt, old, new):
    p = {(new if k == old else k): copy.deepcopy(v) for k, v in prompt.items()}
    for node in p.values():
        for k, v in node["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and v[0] == old:
                node["inputs"][k] = [new, v[1]]
    return p


def test_summary_arrives_on_the_teacache_node(server, base_prompt):
    prompt, tc, ks = base_prompt
    cid = uuid.uuid4().hex
    seed = 7000 + uuid.uuid4().int % 1000           # a run the shared server has not cached
    with Websocket(server, cid) as ws:
        at = ws.mark()
        p = copy.deepcopy(prompt)
        p[ks]["inputs"]["seed"] = seed
        _queue(server, p, cid)
        texts = _wait_texts(ws, at, tc)
        assert len(texts) == 1, ws.texts(at)
        text = texts[0]
        print("\nprogress text on node", tc, ":\n" + text)
        assert re.match(r"TeaCache: skipped \d+/8 steps, est\. \d+\.\d\dx faster\n", text), text
        assert "\ncoefficients uncalibrated (raw change) | thresh 0.08\n" in text, text
        assert re.search(r"\nskipped per cond: cond \d+/8, uncond \d+/8; blocks ran in "
                         r"\d+/16 model calls$", text), text
        assert not [n for n, _ in ws.texts(at) if n != tc], "text sent to another node"

        # queued again with another seed: TeaCache's output comes from ComfyUI's cache, the
        # sampler runs, and the summary still arrives on the TeaCache node
        at = ws.mark()
        p[ks]["inputs"]["seed"] = seed + 1
        entry = _queue(server, p, cid)
        cached, _ = e2e_server.executed_nodes(entry)
        assert tc in cached and ks not in cached
        assert len(_wait_texts(ws, at, tc)) == 1, ws.texts(at)

        # the same graph with TeaCache under another node id: it runs again (not idempotent:
        # the node id is part of its cache key) and the text goes to the new id only
        new = "4242"
        at = ws.mark()
        q = _renumber(p, tc, new)
        q[ks]["inputs"]["seed"] = seed + 2
        entry = _queue(server, q, cid)
        assert new not in e2e_server.executed_nodes(entry)[0]
        assert len(_wait_texts(ws, at, new)) == 1, ws.texts(at)
        assert not [n for n, _ in ws.texts(at) if n != new], ws.texts(at)


def test_calibrate_node_shows_its_fit(server, base_prompt):
    prompt, tc, ks = base_prompt
    name = "status_" + uuid.uuid4().hex[:8]
    p = copy.deepcopy(prompt)
    p[tc] = {"class_type": "TeaCacheCalibrate",
             "inputs": {"model": p[tc]["inputs"]["model"], "name": name,
                        "skip_first_steps": 0, "indicator": "auto"}}
    cid = uuid.uuid4().hex
    with Websocket(server, cid) as ws:
        at = ws.mark()
        _queue(server, p, cid)
        texts = _wait_texts(ws, at, tc)
    assert len(texts) == 1 and f"calibration '{name}'" in texts[0], texts
    assert "samples" in texts[0] and f"calib:{name}" in texts[0], texts


def _calib_file(server, name):
    return server.base / "user" / "teacache" / "calibrations" / f"{name}.json"


def _set_coefficients(path, value):
    d = json.loads(path.read_text())
    d["coefficients"] = [float(value)] * len(d["coefficients"])
    path.write_text(json.dumps(d, indent=1))


def _summary_line(log, name):
    lines = [ln[ln.index("TeaCache: "):] for ln in log.splitlines()
             if "TeaCache: " in ln and f"calib:{name}" in ln]
    assert len(lines) == 1, log[-3000:]
    return lines[0]


def test_recalibrated_coefficients_take_effect_at_the_next_queue(server, base_prompt):
    """Queue with calib:X, change X's coefficients under the same name, queue again: the
    second run uses the new ones. Coefficients 0 make every rescaled change 0 (all but the
    first and last step skipped); coefficients 10 make it at least 10 (nothing skipped)."""
    prompt, tc, ks = base_prompt
    name = "refit_" + uuid.uuid4().hex[:8]
    cal = copy.deepcopy(prompt)
    cal[tc] = {"class_type": "TeaCacheCalibrate",
               "inputs": {"model": cal[tc]["inputs"]["model"], "name": name,
                          "skip_first_steps": 0, "indicator": "auto"}}
    cid = uuid.uuid4().hex
    _queue(server, cal, cid)
    path = _calib_file(server, name)
    assert path.is_file()

    use = copy.deepcopy(prompt)
    use[tc]["inputs"].update(model_type=f"calib:{name}", rel_l1_thresh=0.1)
    results = []
    for i, coeff in enumerate((0.0, 10.0, 10.0)):
        if i < 2:
            _set_coefficients(path, coeff)
        use[ks]["inputs"]["seed"] = 500 + i
        at = server.log_size()
        entry = _queue(server, use, cid)
        cached, _ = e2e_server.executed_nodes(entry)
        line = _summary_line(server.log_since(at), name)
        results.append((tc in cached, re.search(r"skipped (\d+)/8 model calls", line).group(1)))
    assert results[0] == (False, "6"), results        # all but the first and last skipped
    assert results[1] == (False, "0"), results        # new file: TeaCache ran again
    assert results[2] == (True, "0"), results         # unchanged file: its output reused


# ---- without a server --------------------------------------------------------------------------
def test_no_listener_and_nothing_sent_outside_a_server(pack, monkeypatch, tmp_path):
    import tiny_models
    from harness import apply
    from comfyui_teacache.nodes import status
    from comfyui_teacache.teacache_core.patching import registration_of

    path = tmp_path / "wan.safetensors"
    tiny_models.build_wan(path)
    model = apply(tiny_models.load(path), 0.1)
    reg = registration_of(model)
    assert reg is not None and reg.on_finish == []      # execute() directly: no node id
    monkeypatch.setitem(sys.modules, "server", None)
    status.NodeStatus("5")(reg, {"branches": {}}, "line")  # no PromptServer: no error, no-op


def test_listener_sends_to_its_node_and_the_prompts_client(pack, monkeypatch):
    import types
    from comfyui_teacache.nodes import status

    sent = []

    class FakeServer:
        client_id = "the-client"

        def send_progress_text(self, text, node_id, sid=None):
            sent.append((text, node_id, sid))

    fake = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=FakeServer()))
    monkeypatch.setitem(sys.modules, "server", fake)
    reg = types.SimpleNamespace(on_finish=[])
    assert status.attach(reg, "12:7")
    summary = {"preset": "wan2.1_t2v_1.3B", "calibrated": True, "threshold": 0.08,
               "calls": 60, "calls_blocks_ran": 21, "estimated_speedup": 60 / 21,
               "branches": {"cond": [{"computed": c} for c in [True] + [False] * 28 + [True]],
                            "uncond": [{"computed": True}] * 30}}
    reg.on_finish[0](reg, summary, "the log line")
    assert len(sent) == 1
    text, node, sid = sent[0]
    assert node == "12:7" and sid == "the-client"
    assert text.splitlines() == [
        "TeaCache: skipped 28/30 steps, est. 2.86x faster",
        "coefficients wan2.1_t2v_1.3B (published) | thresh 0.08",
        "skipped per cond: cond 28/30, uncond 0/30; blocks ran in 21/60 model calls"]
    # a summary it cannot read: the log line instead, never an exception
    assert status.short_text({"branches": 5}, "the log line") == "the log line"
    assert not status.attach(reg, None)
