"""The file list of the package the Comfy Registry publishes, built the way its command line
tool (comfy-cli `comfy node publish` / `comfy node pack`) builds it: the files git tracks, minus
those that a pattern of `.comfyignore` matches (gitignore syntax, the last matching pattern
decides, `!` re-includes), plus the folders named in pyproject's [tool.comfy] includes.

    .venv/bin/python devtools/comfy_package.py      # print the list

The gitignore matching is written here (no pathspec dependency): comments and blank lines
ignored, `!` negation, a leading `/` (or any `/` inside) anchors the pattern at the root, a
trailing `/` matches directories only, `*` and `?` stay within one path component, `**` spans
components, `[...]` is a character class; a pattern that matches a directory matches
everything under it.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _glob_to_regex(glob: str) -> str:
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                before_ok = i == 0 or glob[i - 1] == "/"
                after = glob[i + 2:i + 3]
                if before_ok and after == "/":          # "**/": zero or more directories
                    out.append("(?:[^/]*/)*")
                    i += 3
                    continue
                if before_ok and after == "":           # trailing "**": everything below
                    out.append(".*")
                    i += 2
                    continue
                out.append("[^/]*")                     # "a**b": as one "*"
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2 if glob[i + 1:i + 2] in ("!", "^") else i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1:j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(line: str):
    """(regex, include) for one .comfyignore line, or None for a comment or blank line.
    include=False: the pattern excludes what it matches; True: a `!` pattern re-includes."""
    line = line.rstrip("\n").rstrip("\r")
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    line = line.strip()
    include = line.startswith("!")
    if include:
        line = line[1:]
    if line.startswith("\\"):                           # "\!" or "\#": literal
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    prefix = "" if anchored else "(?:[^/]*/)*"
    suffix = "/.*" if dir_only else "(?:/.*)?"
    return re.compile("^" + prefix + _glob_to_regex(line) + suffix + "$"), include


def load_patterns_from_lines(lines) -> list:
    pats = [compile_pattern(ln) for ln in lines]
    return [p for p in pats if p is not None]


def load_patterns(path: Path) -> list:
    if not path.exists():
        return []
    return load_patterns_from_lines(path.read_text(encoding="utf-8").splitlines())


def ignored(rel_path: str, patterns) -> bool:
    """Whether the last pattern that matches `rel_path` (a file, '/'-separated) excludes it."""
    verdict = False
    for rx, include in patterns:
        if rx.match(rel_path):
            verdict = not include
    return verdict


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                         check=True).stdout.decode()
    return sorted(f for f in out.split("\0") if f)


def package_files(root: Path = ROOT, files: list[str] | None = None) -> list[str]:
    """The published package's files, relative to the repository root."""
    files = tracked_files(root) if files is None else list(files)
    patterns = load_patterns(root / ".comfyignore")
    kept = {f for f in files if not ignored(f, patterns)}
    for inc in _includes(root):
        base = root / inc
        if base.is_dir():
            kept.update(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
        elif base.is_file():
            kept.add(Path(inc).as_posix())
    return sorted(kept)


def _includes(root: Path) -> list[str]:
    import tomllib
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data.get("tool", {}).get("comfy", {}).get("includes", []) or [])


if __name__ == "__main__":
    for f in package_files():
        print(f)
    sys.exit(0)
