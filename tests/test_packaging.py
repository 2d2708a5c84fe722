"""Ready to publish: the package the Comfy Registry would build (git ls-files minus
.comfyignore, devtools/comfy_package.py) holds what ComfyUI loads and nothing of the development
tree; pyproject.toml has what the registry and ComfyUI-Manager read; the license is GPL-3.0."""
from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import comfy_package as pk    # devtools/comfy_package.py (conftest puts devtools/ on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
EXCLUDED_DIRS = ("tests/", "models/", "demo/", "devtools/", "benchmarks/", "scripts/", ".ci/",
                 ".github/")
TOP_LEVEL = {"README.md", "LICENSE", "pyproject.toml", "__init__.py", "nodes", "teacache_core",
             "web", "example_workflows"}
FAMILIES = ("Wan 2.1/2.2", "HunyuanVideo", "LTX-Video", "Mochi", "Cosmos", "Flux", "Chroma",
            "Lumina2/Z-Image", "HiDream", "Qwen-Image")


@pytest.fixture(scope="module")
def files():
    try:
        return pk.package_files()
    except (OSError, subprocess.CalledProcessError) as e:   # no git (an unpacked archive)
        pytest.skip(f"git ls-files is not available: {e}")


@pytest.mark.parametrize("pattern,path,expected", [
    ("/tests/", "tests/test_a.py", True),
    ("/tests/", "nodes/tests/x.py", False),
    ("tests/", "nodes/tests/x.py", True),
    ("tests", "tests", True),
    ("/run_*.sh", "run_demo.sh", True),
    ("/run_*.sh", "scripts/run_x.sh", False),
    ("*.png", "web/docs/a.png", True),
    ("web/*.png", "web/docs/a.png", False),
    ("web/**/*.png", "web/docs/a.png", True),
    ("web/**/*.png", "web/a.png", True),
    ("**/docs", "web/docs/a.md", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[bc]at.md", "cat.md", True),
    ("[!bc]at.md", "cat.md", False),
    ("# comment", "# comment", False),
])
def test_gitignore_matching(pattern, path, expected):
    assert pk.ignored(path, pk.load_patterns_from_lines([pattern])) is expected


def test_gitignore_negation_last_match_wins():
    pats = pk.load_patterns_from_lines(["*.md", "!README.md", "/docs/", "!/docs/keep.md"])
    assert pk.ignored("BENCHMARKS.md", pats)
    assert not pk.ignored("README.md", pats)
    assert pk.ignored("docs/other.md", pats)
    assert not pk.ignored("docs/keep.md", pats)
    assert not pk.ignored("nodes/apply.py", pats)


def test_package_holds_only_what_comfyui_loads(files):
    assert files
    for f in files:
        assert not f.startswith(EXCLUDED_DIRS), f"development file in the package: {f}"
        assert not (f.startswith("run_") and f.endswith(".sh")), f
        assert f != "BENCHMARKS.md" and not f.startswith("benchmarks"), f
    assert {f.split("/")[0] for f in files} == TOP_LEVEL
    # what the registry shows and what the license requires
    for f in ("README.md", "LICENSE", "pyproject.toml", "__init__.py"):
        assert f in files


def _imported_closure(files) -> set[str]:
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
    static = _imported_closure(files)
    assert {"nodes/apply.py", "nodes/calibrate.py", "nodes/report.py",
            "teacache_core/patching.py"} <= static
    missing = sorted(static - set(files))
    assert not missing, f"imported but not packaged: {missing}"
    # and what Python really loaded when ComfyUI's way of loading the pack ran (conftest)
    pack = sys.modules["comfyui_teacache"]
    ext = asyncio.run(pack.comfy_entrypoint())
    nodes = asyncio.run(ext.get_node_list())
    assert {n.define_schema().node_id for n in nodes} == {
        "TeaCacheApply", "TeaCacheCalibrate", "TeaCacheReport"}
    loaded = set()
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if name.startswith("comfyui_teacache") and f:
            loaded.add(Path(f).resolve().relative_to(ROOT).as_posix())
    missing = sorted(loaded - set(files))
    assert not missing, f"loaded but not packaged: {missing}"


def test_web_folder_is_packaged(files):
    web = ROOT / "web"
    tracked = [f for f in pk.tracked_files() if f.startswith("web/")]
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in web.rglob("*") if p.is_file())
    assert tracked == on_disk, "untracked files under web/ (git add them)"
    assert tracked and set(tracked) <= set(files)
    for node in ("TeaCacheApply", "TeaCacheCalibrate", "TeaCacheReport"):
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
