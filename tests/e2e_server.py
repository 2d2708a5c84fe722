"""The real ComfyUI server for the end-to-end tests, started once per pytest session.

The server itself is devtools/comfy_server.py (shared with the demo; re-exported here):
`python main.py --cpu` of the ComfyUI under test (COMFYUI_PATH or .comfyui), bound to
127.0.0.1 on a free port, everything it writes in a pytest temporary folder, the pack linked
into its custom_nodes like a user's clone. For the tests it also links the test-only stand-in
pack tests/teacache_test_nodes and fills the models folder with tiny real models and stand-in
files (tests/e2e_models.py). The process is terminated by its pid when the session ends (and
at interpreter exit, should pytest die first).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import e2e_models
from comfy_server import ComfyServer as _BaseServer
from comfy_server import PACK_FOLDER, executed_nodes, free_port  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
TEST_PACK_FOLDER = "teacache_test_nodes"
SETUP = ROOT / "tests" / "e2e_setup.sh"
__all__ = ["PACK_FOLDER", "TEST_PACK_FOLDER", "ComfyServer", "executed_nodes", "free_port",
           "setup_or_skip", "shared_server"]

_SHARED = {}


def setup_or_skip(what: str):
    """Install what the e2e tests need (tests/e2e_setup.sh); skip only if it cannot be."""
    import pytest
    r = subprocess.run(["bash", str(SETUP), sys.executable, what], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"e2e prerequisites ({what}) cannot be installed here: "
                    f"{r.stderr.strip()[-800:]}")


class ComfyServer(_BaseServer):
    """The shared server plus the tests' stand-in node pack, models folder and input image."""

    def __init__(self, base: Path, comfy: Path):
        super().__init__(base, comfy,
                         node_packs={TEST_PACK_FOLDER: ROOT / "tests" / TEST_PACK_FOLDER})

    def prepare(self):
        super().prepare()
        b = self.base
        e2e_models.make_models_folder(b / "models")
        example = self.comfy / "input" / "example.png"
        if example.exists():
            (b / "input" / "example.png").write_bytes(example.read_bytes())
        else:
            e2e_models.make_input_image(b / "input" / "example.png")


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
