"""Ready to publish: the archive the Comfy Registry receives, built by the registry's own tool.

comfy-cli (PyPI comfy-cli, in a small virtualenv of its own: scripts/comfycli_venv.sh) runs
`comfy node pack` in a clean copy of the repository (its files that git tracks or would add:
`git ls-files -co --exclude-standard`, so a fresh clone in CI and a working tree with new files
give the archive their commit would publish) and `comfy node validate` (the publishing checks,
no upload). The archive holds what ComfyUI loads and nothing of the development tree: ComfyUI's
own loader loads the unpacked archive, and every Python file in it is a module that load
imported. Skipped with the reason where comfy-cli cannot be installed (no network to PyPI) or
git is missing. comfy-cli runs with its telemetry and update check off, a private HOME and a
time limit; neither command needs the network. Also: pyproject.toml has what the registry and
ComfyUI-Manager read; the license is GPL-3.0."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXCLUDED_DIRS = ("tests/", "models/", "demo/", "devtools/", "benchmarks/", "scripts/", ".ci/",
                 ".github/")
TOP_LEVEL = {"README.md", "LICENSE", "pyproject.toml", "__init__.py", "nodes", "teacache_core",
             "web", "example_workflows"}
FAMILIES = ("Wan 2.1/2.2", "HunyuanVideo", "LTX-Video", "Mochi", "Cosmos", "Flux", "Chroma",
            "Lumina2/Z-Image", "HiDream", "Qwen-Image")
NODE_IDS = {"TeaCacheApply", "TeaCacheCalibrate", "TeaCacheReport"}
MAX_BYTES = 2 * 1024 * 1024
# Python files the package ships although loading the pack does not import them, with the reason
SHIPPED_NOT_LOADED = {
    "teacache_core/memory.py": "the README's memory formula (README \"Memory\", tests/test_memory.py)",
}
INSTALL_TIMEOUT_S = 600
COMFY_TIMEOUT_S = 120


def _git(*args, cwd=ROOT) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True,
                          timeout=60).stdout


def _tail(text: str, n: int = 2000) -> str:
    return text[-n:].strip()


@pytest.fixture(scope="module")
def comfy_cli() -> str:
    """The comfy executable of scripts/comfycli_venv.sh (installed on first use)."""
    try:
        r = subprocess.run(["bash", str(ROOT / "scripts" / "comfycli_venv.sh"), sys.executable],
                           capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"comfy-cli could not be installed (scripts/comfycli_venv.sh): {e}")
    if r.returncode != 0:
        pytest.skip("comfy-cli could not be installed (scripts/comfycli_venv.sh exited "
                    f"{r.returncode}): {_tail(r.stderr, 800)}")
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory) -> Path:
    """The repository's files that git tracks or would add, copied into a fresh git repository
    (nothing ignored, nothing of other checkouts' build outputs)."""
    try:
        listed = _git("ls-files", "-z", "-co", "--exclude-standard").decode().split("\0")
    except (OSError, subprocess.SubprocessError) as e:     # no git (an unpacked archive)
        pytest.skip(f"git ls-files is not available: {e}")
    dst = tmp_path_factory.mktemp("clean") / "comfyui-teacache"
    dst.mkdir()
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():                                  # tracked but deleted: not packed
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    _git("init", "-q", cwd=dst)
    _git("add", "-A", "-f", cwd=dst)
    return dst


def _comfy(comfy_cli, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    home = cwd.parent / "comfy-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               DO_NOT_TRACK="1", COMFY_NO_TELEMETRY="1", COMFY_NO_UPDATE_CHECK="1",
               POSTHOG_API_KEY="")
    return subprocess.run([comfy_cli, "--skip-prompt", "--no-enable-telemetry", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=COMFY_TIMEOUT_S)


@pytest.fixture(scope="module")
def archive(comfy_cli, clean_copy) -> Path:
    """node.zip as `comfy node pack` builds it (what `comfy node publish` uploads)."""
    r = _comfy(comfy_cli, clean_copy, "node", "pack")
    out = clean_copy / "node.zip"
    assert r.returncode == 0 and out.is_file(), (
        f"comfy node pack failed ({r.returncode}): {_tail(r.stdout + r.stderr)}")
    kept = out.parent.parent / "node.zip"
    shutil.move(out, kept)          # out of the copy, so that other commands there never see it
    return kept


@pytest.fixture(scope="module")
def files(archive) -> list[str]:
    with zipfile.ZipFile(archive) as z:
        return sorted(n for n in z.namelist() if not n.endswith("/"))


@pytest.fixture(scope="module")
def unpacked(archive, tmp_path_factory) -> Path:
    """The archive unpacked as ComfyUI-Manager installs it: custom_nodes/<name>/."""
    dst = tmp_path_factory.mktemp("installed") / "custom_nodes" / PYPROJECT["project"]["name"]
    with zipfile.ZipFile(archive) as z:
        z.extractall(dst)
    return dst


_LOAD_WITH_COMFYUI = r"""
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])                 # devtools/: comfy_env
from comfy_env import setup_comfy
setup_comfy()
import nodes
pack = sys.argv[1]
ok = asyncio.run(nodes.load_custom_node(pack))
loaded = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())})
print(json.dumps({"ok": ok, "nodes": sorted(nodes.NODE_CLASS_MAPPINGS),
                  "web": {k: v for k, v in nodes.EXTENSION_WEB_DIRS.items()},
                  "loaded": [f for f in loaded if f]}))
"""


@pytest.fixture(scope="module")
def comfy_load(unpacked) -> dict:
    """ComfyUI's own custom-node loader (nodes.load_custom_node) on the unpacked archive, in a
    fresh process: what it registered and every module file Python loaded."""
    r = subprocess.run([sys.executable, "-c", _LOAD_WITH_COMFYUI, str(unpacked),
                        str(ROOT / "devtools")], cwd=unpacked.parent, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, _tail(r.stderr)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["stderr"] = r.stderr
    return res


def test_comfy_node_validate_passes(comfy_cli, clean_copy):
    r = _comfy(comfy_cli, clean_copy, "node", "validate")
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"comfy node validate failed ({r.returncode}): {_tail(out)}"
    assert "All validation checks passed" in out, _tail(out)
    assert "Security warnings" not in out, _tail(out)


def test_package_holds_only_what_comfyui_loads(files, archive):
    assert files
    for f in files:
        assert not f.startswith(EXCLUDED_DIRS), f"development file in the package: {f}"
        assert not (f.startswith("run_") and f.endswith(".sh")), f
        assert f != "BENCHMARKS.md" and not f.startswith("benchmarks"), f
    assert {f.split("/")[0] for f in files} == TOP_LEVEL
    # what the registry shows and what the license requires
    for f in ("README.md", "LICENSE", "pyproject.toml", "__init__.py"):
        assert f in files
    # outside the Python packages: only the node help pages and the templates
    for f in files:
        if "/" in f and not f.endswith(".py"):
            assert f.startswith(("web/", "example_workflows/")), f"not loaded by ComfyUI: {f}"
    with zipfile.ZipFile(archive) as z:
        unpacked_bytes = sum(i.file_size for i in z.infolist())
    assert archive.stat().st_size < MAX_BYTES and unpacked_bytes < MAX_BYTES, (
        archive.stat().st_size, unpacked_bytes)


def test_comfyui_loads_the_archive_and_every_shipped_module(comfy_load, unpacked, files):
    """ComfyUI's loader on the unpacked archive alone registers the nodes (so every module the
    pack imports is inside), and every Python file of the archive is a module that load
    imported (no experiment, benchmark or tool ships), SHIPPED_NOT_LOADED aside."""
    assert comfy_load["ok"], _tail(comfy_load["stderr"])
    assert NODE_IDS <= set(comfy_load["nodes"]), _tail(comfy_load["stderr"])
    assert any(Path(d).resolve() == (unpacked / "web").resolve()
               for d in comfy_load["web"].values()), comfy_load["web"]
    loaded = set()
    for f in comfy_load["loaded"]:
        p = Path(f)
        if not p.is_absolute():         # e.g. Cython's "_classes.py"
            continue
        p = p.resolve()
        if p.is_relative_to(ROOT):      # the repository's own files (not .venv*/, .comfyui/)
            rel = p.relative_to(ROOT).as_posix()
            assert rel.startswith(".") or rel == "devtools/comfy_env.py", (
                f"loading the unpacked pack imported a file of the repository: {rel}")
        if p.is_relative_to(unpacked.resolve()):
            loaded.add(p.relative_to(unpacked.resolve()).as_posix())
    shipped = {f for f in files if f.endswith(".py")}
    assert loaded <= shipped
    not_loaded = sorted(shipped - loaded - set(SHIPPED_NOT_LOADED))
    assert not not_loaded, f"shipped but not loaded by ComfyUI (experiments? tools?): {not_loaded}"
    assert set(SHIPPED_NOT_LOADED) <= shipped, "SHIPPED_NOT_LOADED names a file not shipped"


def _imported_closure() -> set[str]:
    """Every module of the pack that __init__.py reaches through relative imports (static)."""
    todo, seen = ["__init__.py"], set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        pkg = Path(rel).parent
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = pkg
            for _ in range(node.level - 1):
                base = base.parent
            mod = base.joinpath(*node.module.split(".")) if node.module else base
            targets = [mod] + [mod / a.name for a in node.names]
            for t in targets:
                for cand in (t.with_suffix(".py"), t / "__init__.py"):
                    if (ROOT / cand).is_file():
                        todo.append(cand.as_posix())
    return seen


def test_every_module_the_pack_imports_is_packaged(files):
    static = _imported_closure()
    assert {"nodes/apply.py", "nodes/calibrate.py", "nodes/report.py",
            "teacache_core/patching.py"} <= static
    missing = sorted(static - set(files))
    assert not missing, f"imported but not packaged: {missing}"


def test_web_folder_is_packaged(files):
    web = ROOT / "web"
    tracked = sorted(f for f in _git("ls-files", "-z", "web").decode().split("\0") if f)
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in web.rglob("*") if p.is_file())
    assert tracked == on_disk, "untracked files under web/ (git add them)"
    assert tracked and set(tracked) <= set(files)
    for node in NODE_IDS:
        assert f"web/docs/{node}.md" in files


def test_example_workflows_are_packaged(files):
    for p in (ROOT / "example_workflows").iterdir():
        assert f"example_workflows/{p.name}" in files


def test_pyproject_has_what_the_registry_reads():
    proj, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert proj["name"] == "comfyui-teacache"
    assert len(proj["version"].split(".")) == 3 and all(
        x.isdigit() for x in proj["version"].split("."))
    assert proj["dependencies"] == []            # ComfyUI ships torch, numpy and pillow
    assert proj["urls"]["Repository"].startswith("https://github.com/")
    for fam in FAMILIES:
        assert fam in proj["description"], fam
    assert proj["license"] == {"file": "LICENSE"}
    assert comfy["PublisherId"] and comfy["DisplayName"]
    icon = comfy["Icon"]
    assert icon.startswith(proj["urls"]["Repository"].replace(
        "https://github.com/", "https://raw.githubusercontent.com/") + "/main/")
    local = ROOT / icon.rsplit("/main/", 1)[1]
    from PIL import Image
    with Image.open(local) as im:                 # the registry takes a square, <= 400 px
        assert im.format == "PNG" and im.size[0] == im.size[1] <= 400


def test_license_is_gpl3():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 600


def test_publish_workflow():
    wf = (ROOT / ".github" / "workflows" / "publish.yml").read_text(encoding="utf-8")
    assert "Comfy-Org/publish-node-action" in wf
    assert "secrets.REGISTRY_ACCESS_TOKEN" in wf
    assert '"pyproject.toml"' in wf and "- main" in wf


def test_example_workflows_name_the_pack_on_its_nodes():
    """The page offers to install a missing pack from node.properties cnr_id / ver: every node
    of this pack in every example workflow carries the registry id and version of pyproject."""
    import json
    proj = PYPROJECT["project"]
    seen = 0
    for path in sorted((ROOT / "example_workflows").glob("*.json")):
        wf = json.loads(path.read_text(encoding="utf-8"))
        for n in wf["nodes"]:
            if n["type"].startswith("TeaCache"):
                props = n.get("properties", {})
                assert props.get("cnr_id") == proj["name"], (path.name, n["id"], props)
                assert props.get("ver") == proj["version"], (path.name, n["id"], props)
                seen += 1
            else:
                assert "cnr_id" not in n.get("properties", {}), (path.name, n["type"])
    assert seen >= len(list((ROOT / "example_workflows").glob("*.json")))
