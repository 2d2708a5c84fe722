import logging
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devtools"))
from comfy_env import load_pack  # noqa: E402

load_pack()

# Tiny models: one thread is as fast as two and much faster when the cores are shared.
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("TEACACHE_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    """The real ComfyUI server of the end-to-end tests (one per session, see e2e_server)."""
    import e2e_server
    return e2e_server.shared_server(request, tmp_path_factory)


@pytest.fixture(scope="module")
def object_info(server):
    return server.get_json("/object_info")


@pytest.fixture(autouse=True)
def _comfy_user_directory(tmp_path_factory):
    """Every test starts with an empty ComfyUI user directory of its own, as a fresh install:
    what TeaCache keeps there (calibrations, target_speedup's profile store) never reaches
    another test, a later session or the ComfyUI install the tests run on."""
    import folder_paths
    old = folder_paths.get_user_directory()
    folder_paths.set_user_directory(str(tmp_path_factory.mktemp("user")))
    yield
    folder_paths.set_user_directory(old)


@pytest.fixture(autouse=True)
def _teacache_logs(caplog):
    caplog.set_level(logging.INFO)
    yield
