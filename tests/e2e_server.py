"""The real ComfyUI server for the end-to-end tests, started once per pytest session.

`python main.py --cpu` of the ComfyUI under test (COMFYUI_PATH or .comfyui), bound to
127.0.0.1 on a free port, with everything it writes in a pytest temporary folder given by
ComfyUI's own options (--base-directory: models, custom_nodes, input, output, temp, user;
--database-url). The pack is installed the way a user does it: its repository root linked as a
folder of that custom_nodes, beside the test-only stand-in pack tests/teacache_test_nodes.
Nothing is written into the ComfyUI tree. The process is terminated by its pid when the
session ends (and at interpreter exit, should pytest die first).
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import e2e_models

ROOT = Path(__file__).resolve().parents[1]
PACK_FOLDER = "comfyui-teacache"           # the folder name a user's clone would have
TEST_PACK_FOLDER = "teacache_test_nodes"
SETUP = ROOT / "tests" / "e2e_setup.sh"

_SHARED = {}


def setup_or_skip(what: str):
    """Install what the e2e tests need (tests/e2e_setup.sh); skip only if it cannot be."""
    import pytest
    r = subprocess.run(["bash", str(SETUP), sys.executable, what], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"e2e prerequisites ({what}) cannot be installed here: "
                    f"{r.stderr.strip()[-800:]}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, base: Path, comfy: Path):
        self.base, self.comfy = base, comfy
        self.proc = None
        self.port = None
        self.log_path = base / "server.log"
        self.startup_s = None

    # ---- lifecycle ------------------------------------------------------------------------
    def prepare(self):
        b = self.base
        nodes = b / "custom_nodes"
        nodes.mkdir(parents=True, exist_ok=True)
        for name, target in ((PACK_FOLDER, ROOT), (TEST_PACK_FOLDER,
                                                   ROOT / "tests" / TEST_PACK_FOLDER)):
            link = nodes / name
            if not link.exists():
                link.symlink_to(target, target_is_directory=True)
        e2e_models.make_models_folder(b / "models")
        example = self.comfy / "input" / "example.png"
        if example.exists():
            (b / "input").mkdir(parents=True, exist_ok=True)
            (b / "input" / "example.png").write_bytes(example.read_bytes())
        else:
            e2e_models.make_input_image(b / "input" / "example.png")
        for d in ("output", "temp", "user/default"):
            (b / d).mkdir(parents=True, exist_ok=True)
        # a returning user: no first-run template dialog over the canvas
        settings = b / "user" / "default" / "comfy.settings.json"
        if not settings.exists():
            settings.write_text(json.dumps({"Comfy.TutorialCompleted": True}))

    def start(self, timeout=300):
        self.prepare()
        self.port = free_port()
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", f"sqlite:///{self.base / 'comfyui.db'}",
               "--disable-auto-launch", "--disable-api-nodes"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.comfy, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        atexit.register(self.stop)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                info = self.get_json("/object_info/TeaCacheApply", timeout=5)
                if "TeaCacheApply" in info:
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"ComfyUI did not serve TeaCacheApply within {timeout} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.5)
        self.startup_s = time.monotonic() - t0
        return self

    def stop(self):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()                      # our own child, by its pid
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    # ---- HTTP -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, path, data=None, timeout=30):
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def get_json(self, path, timeout=30):
        return json.loads(self.request(path, timeout=timeout))

    def queue(self, prompt: dict) -> str:
        """POST /prompt; a validation error raises with the server's node_errors."""
        try:
            out = json.loads(self.request("/prompt", {"prompt": prompt,
                                                      "client_id": uuid.uuid4().hex}))
        except urllib.error.HTTPError as e:
            raise AssertionError(f"/prompt refused the workflow ({e.code}):\n"
                                 f"{e.read().decode(errors='replace')}") from None
        if out.get("node_errors"):
            raise AssertionError(f"/prompt node errors: {json.dumps(out['node_errors'])}")
        return out["prompt_id"]

    def wait(self, prompt_id: str, timeout=180) -> dict:
        """Poll /history until the prompt finished; returns its history entry."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"ComfyUI died while running:\n{self.log_tail()}")
            hist = self.get_json(f"/history/{prompt_id}")
            entry = hist.get(prompt_id)
            if entry:                      # the history gets a prompt when it has finished
                return entry
            time.sleep(0.25)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s:\n"
                             f"{self.log_tail()}")

    # ---- the server's log -----------------------------------------------------------------
    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log_tail(self, n=60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


def shared_server(request, tmp_path_factory) -> ComfyServer:
    """One server per pytest session, whichever e2e module asks first; stopped at the end."""
    srv = _SHARED.get("server")
    if srv is not None and srv.proc is not None and srv.proc.poll() is None:
        return srv
    setup_or_skip("server")
    from comfy_env import comfyui_path
    srv = ComfyServer(tmp_path_factory.mktemp("comfyui_base"), comfyui_path())
    _SHARED["server"] = srv
    request.config.add_cleanup(srv.stop)
    return srv.start()
