"""A real ComfyUI server for development tools (the demo, the end-to-end tests).

`python main.py --cpu` of a ComfyUI checkout (COMFYUI_PATH or .comfyui), bound to 127.0.0.1 on
a free port, with everything it writes in a folder of the caller's (ComfyUI's own options:
--base-directory for models, custom_nodes, input, output, temp, user; --database-url). This
pack is installed the way a user does it: the repository root linked as a folder of that
custom_nodes (next to any extra node packs the caller names). Nothing is written into the
ComfyUI tree. The server is terminated by its pid in stop() (and at interpreter exit, should
the caller die first).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
PACK_FOLDER = "comfyui-teacache"           # the folder name a user's clone would have


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """base: the server's folder; comfy: the ComfyUI checkout; node_packs: extra custom node
    folders to link, {folder name: path}; python: the interpreter that runs main.py; env:
    extra environment variables for it (e.g. OMP_NUM_THREADS)."""

    def __init__(self, base: Path, comfy: Path, node_packs: dict | None = None,
                 python: str | None = None, env: dict | None = None):
        self.base, self.comfy = Path(base), Path(comfy)
        self.node_packs = {PACK_FOLDER: ROOT, **(node_packs or {})}
        self.python = python or sys.executable
        self.env = dict(env or {})
        self.proc = None
        self.port = None
        self.log_path = self.base / "server.log"
        self.startup_s = None

    # ---- lifecycle ------------------------------------------------------------------------
    def prepare(self):
        """custom_nodes links and the folders the server writes to (subclasses add models)."""
        b = self.base
        nodes = b / "custom_nodes"
        nodes.mkdir(parents=True, exist_ok=True)
        for name, target in self.node_packs.items():
            link = nodes / name
            if not link.exists():
                link.symlink_to(Path(target).resolve(), target_is_directory=True)
        for d in ("models", "input", "output", "temp", "user/default"):
            (b / d).mkdir(parents=True, exist_ok=True)
        # a returning user: no first-run template dialog over the canvas
        settings = b / "user" / "default" / "comfy.settings.json"
        if not settings.exists():
            settings.write_text(json.dumps({"Comfy.TutorialCompleted": True}))

    def start(self, timeout=300, ready_node="TeaCacheApply"):
        """Start main.py and wait until /object_info serves `ready_node`."""
        self.prepare()
        self.port = free_port()
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", f"sqlite:///{self.base / 'comfyui.db'}",
               "--disable-auto-launch", "--disable-api-nodes"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", **self.env)
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.comfy, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        atexit.register(self.stop)
        logger.debug("ComfyUI started, pid %d, port %d", self.proc.pid, self.port)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                info = self.get_json(f"/object_info/{ready_node}", timeout=5)
                if ready_node in info:
                    break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise RuntimeError(f"ComfyUI did not serve {ready_node} within {timeout} s:\n"
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

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

    def wait(self, prompt_id: str, timeout=180, poll=0.25) -> dict:
        """Poll /history until the prompt finished; returns its history entry."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"ComfyUI died while running:\n{self.log_tail()}")
            hist = self.get_json(f"/history/{prompt_id}")
            entry = hist.get(prompt_id)
            if entry:                      # the history gets a prompt when it has finished
                return entry
            time.sleep(poll)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s:\n"
                             f"{self.log_tail()}")

    def output_file(self, image: dict) -> Path:
        """The file of one `images` entry of a history output (output, temp or input)."""
        return self.base / image.get("type", "output") / image.get("subfolder", "") / \
            image["filename"]

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


def executed_nodes(entry: dict) -> tuple[set, set]:
    """(cached node ids, all node ids of the prompt) from a /history entry's status messages
    ("execution_cached" lists the nodes whose outputs came from the cache)."""
    cached = set()
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_cached":
            cached.update(str(n) for n in data.get("nodes", []))
    prompt = entry.get("prompt", [None, None, {}])[2]
    return cached, set(prompt)
