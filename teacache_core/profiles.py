"""The profile store: target_speedup's distance profiles kept across runs, nodes and restarts.

Pure python/torch; no ComfyUI (the folder and the model's identity are passed in; the nodes
use <ComfyUI user directory>/teacache/profiles.json).

A later run of one TeaCache node takes its calls to come from the previous run's profile
(target.TargetRule: how many, at which steps; a first run learns a second-order sampler's
second calls only as they come) and predicts their distances as a first run does. After a
target_speedup run reaches its last step, each cond's profile (the step of every model call and
its rescaled indicator distance) is kept in one JSON file, so the next first run on that model
and schedule (a new node, ComfyUI restarted) plans from it as a later run does. An entry's key
is a hash of:

- the model: family, variant, dims, the weights file name where ComfyUI names it, a hash of the
  parameter names and shapes and of a few weight values (weights_signature), and of the
  patches (LoRAs) on the model;
- the schedule: the sampler (and its scalar options), the sigmas (rounded to 6 decimals, as the
  in-memory profiles are keyed), start_step, end_step, retention;
- the cond's role (cond, uncond, ...), the preset and its coefficients, the indicator.

Never the prompt, the seed or the latent: two prompts on the same model and schedule share an
entry (a profile is the schedule's calls and their distances, not the prompt's).

The file holds at most max_entries entries (one per cond: a CFG run makes two); when a run
adds one more, the least recently written go. Writes are atomic (temp file + os.replace): a
reader sees the old file or the new one. A file that cannot be read, is not JSON or has
damaged entries is ignored (those entries) with a warning and replaced at the next write; a
file that is not a TeaCache profile file, or of a newer format version, is ignored with a
warning and never overwritten (delete it to start again). Two ComfyUI processes sharing a user
directory may lose each other's newest entry (last writer wins), never the file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import threading
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

FORMAT = "teacache-profiles"
VERSION = 1
FILE_NAME = "profiles.json"
MAX_ENTRIES = 128        # about 64 model x schedule pairs with CFG; ~2 KB each at 50 steps
MAX_CALLS = 2048         # longer profiles are not kept (a 1000-step Heun schedule)

SOURCE_STORED = "stored profile"
SOURCE_PREVIOUS = "previous run"
SOURCE_PREDICTION = "prediction"

_LOCK = threading.Lock()


# ---- keys ---------------------------------------------------------------------------------
def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str,
                      allow_nan=True)


def entry_key(parts: dict) -> str:
    """The entry id of a key made of `parts` (a JSON-able dict; order does not matter)."""
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()[:32]


def tensor_sample(t, count: int = 64) -> bytes:
    """The raw bytes of the first `count` elements of a tensor, read on the host (b"" where
    they cannot be read: a meta tensor, a tensor subclass without plain storage)."""
    try:
        x = t.detach()
        if type(x) is not torch.Tensor:
            x = x.as_subclass(torch.Tensor)          # GGUF and other subclasses: the raw data
        if x.device.type == "meta" or x.numel() == 0:
            return b""
        flat = x.reshape(-1)[:count].to("cpu").contiguous()
        return flat.view(torch.uint8).numpy().tobytes()
    except Exception:       # a weight format we cannot read raw: its shape still counts
        return b""


def weights_signature(module, skip=(), originals=None, picks: int = 4, count: int = 64) -> str:
    """A cheap identity of a module's weights: a hash of every parameter's name, shape and
    dtype and of the first `count` values of `picks` parameters spread over the list (a few
    small host reads). Parameters named in `skip` (e.g. the ones a LoRA patches in place while
    the model is loaded) are hashed by name and shape only; `originals` (name -> tensor) gives
    the values to read instead of the live ones (the unpatched weights a loader kept)."""
    skip = set(skip)
    originals = originals or {}
    h = hashlib.sha256()
    params = list(module.named_parameters())
    for name, p in params:
        h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode("utf-8"))
    cand = [(n, p) for n, p in params if n not in skip and p.numel() > 0]
    if cand:
        picks = max(1, min(picks, len(cand)))
        idx = sorted({round(i * (len(cand) - 1) / max(picks - 1, 1)) for i in range(picks)})
        for i in idx:
            name, p = cand[i]
            h.update(name.encode("utf-8"))
            orig = originals.get(name)
            h.update(tensor_sample(orig if isinstance(orig, torch.Tensor) else p, count))
    return h.hexdigest()[:32]


def _json_value(v):
    """A rescaled distance as JSON keeps it: non-finite values become None (the same to
    every reader: a distance that was not measured)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _valid_entry(e) -> bool:
    if not isinstance(e, dict):
        return False
    steps, resc = e.get("steps"), e.get("rescaled")
    if not isinstance(steps, list) or not isinstance(resc, list) or not steps \
            or len(steps) != len(resc) or len(steps) > MAX_CALLS:
        return False
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps):
        return False
    if not all(r is None or (isinstance(r, (int, float)) and not isinstance(r, bool)
                             and math.isfinite(r)) for r in resc):
        return False
    return isinstance(e.get("tick", 0), int)


# ---- the store ----------------------------------------------------------------------------
class ProfileStore:
    """One profile file (folder/FILE_NAME). Reads are cached until the file changes on disk;
    nothing here raises on a bad file or a failed write (a warning says what happened)."""

    def __init__(self, folder, max_entries: int | None = None):
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self.max_entries = max(1, int(max_entries if max_entries is not None else MAX_ENTRIES))
        self._sig = None          # the file's (mtime, size, inode) when it was read
        self._data = None         # (entries, tick, writable)
        self._warned = set()

    # ---- reading ----
    def _warn(self, problem: str, sig):
        if (problem, sig) in self._warned:
            return
        self._warned.add((problem, sig))
        logger.warning("TeaCache: the target_speedup profile store %s %s", self.path, problem)

    def _stat(self):
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            return ("error", str(e))
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self):
        """(entries, tick, writable) as the file holds them now."""
        sig = self._stat()
        if self._data is not None and sig == self._sig:
            return self._data
        self._sig, self._data = sig, self._load(sig)
        return self._data

    def _load(self, sig):
        if sig is None:
            return {}, 0, True
        try:
            d = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            self._warn(f"is unreadable or not JSON ({type(e).__name__}: {e}); it is ignored and "
                       "will be replaced by the next run's profiles.", sig)
            return {}, 0, True
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            self._warn("is not a TeaCache profile file; it is ignored and left untouched "
                       "(first runs predict; delete or move it to keep profiles).", sig)
            return {}, 0, False
        version = d.get("version")
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            self._warn(f"has format version {version} (a newer TeaCache); this TeaCache reads "
                       f"version {VERSION}: it is ignored and left untouched (first runs "
                       "predict; delete it to keep profiles with this version).", sig)
            return {}, 0, False
        if version != VERSION:
            self._warn(f"has format version {version!r}; this TeaCache reads version "
                       f"{VERSION}: it is ignored and will be replaced by the next run's "
                       "profiles.", sig)
            return {}, 0, True
        entries = d.get("entries")
        tick = d.get("tick", 0)
        if not isinstance(entries, dict) or not isinstance(tick, int):
            self._warn("is damaged (no entries); it is ignored and will be replaced by the "
                       "next run's profiles.", sig)
            return {}, 0, True
        good = {k: e for k, e in entries.items() if isinstance(k, str) and _valid_entry(e)}
        if len(good) != len(entries):
            self._warn(f"has {len(entries) - len(good)} damaged entries; they are ignored.", sig)
        return good, tick, True

    def get(self, key: str):
        """{"steps": [...], "rescaled": [...]} stored under `key`, or None."""
        try:
            entries, _, _ = self._read()
        except Exception:               # a store must never break sampling
            logger.debug("TeaCache: profile store read failed", exc_info=True)
            return None
        e = entries.get(key)
        if e is None:
            return None
        return {"steps": list(e["steps"]), "rescaled": list(e["rescaled"])}

    def keys(self) -> list:
        return list(self._read()[0])

    # ---- writing ----
    def put(self, items) -> bool:
        """Store [(key, profile, about)] (profile: {"steps", "rescaled"}; about: a small dict
        for people reading the file). The newest entries are kept, at most max_entries.
        Returns whether the file was written."""
        items = [(k, {"steps": [int(s) for s in p["steps"]],
                      "rescaled": [_json_value(r) for r in p["rescaled"]]}, about)
                 for k, p, about in items if 0 < len(p["steps"]) <= MAX_CALLS
                 and len(p["steps"]) == len(p["rescaled"])]
        if not items:
            return False
        with _LOCK:
            try:
                entries, tick, writable = self._read()
                if not writable:
                    return False
                entries = dict(entries)
                for k, prof, about in items:
                    tick += 1
                    entries[k] = {"tick": tick, "about": about, **prof}
                if len(entries) > self.max_entries:
                    keep = sorted(entries, key=lambda k: entries[k].get("tick", 0))
                    for k in keep[:len(entries) - self.max_entries]:
                        del entries[k]
                self._write({"format": FORMAT, "version": VERSION, "tick": tick,
                             "entries": entries})
                self._sig, self._data = self._stat(), (entries, tick, True)
                return True
            except Exception as e:      # a full disk or a read-only user directory
                self._warn(f"could not be written ({type(e).__name__}: {e}); this run's "
                           "profiles are not kept.", None)
                return False

    def _write(self, data: dict):
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".profiles.", suffix=".tmp", dir=str(self.folder))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"), allow_nan=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class RunProfiles:
    """What one sampling run reads from and writes to a ProfileStore: `scope` holds the key
    parts that the run's model and sampler give (the ComfyUI side makes them); TargetRule adds
    the schedule, cond, preset and indicator. Each key is read once per run. `about`: what
    every entry written shows people reading the file (e.g. the weights file name)."""

    def __init__(self, store: ProfileStore, scope: dict, about: dict | None = None):
        self.store = store
        self.scope = dict(scope)
        self.about = dict(about or {})
        self._got = {}

    def key(self, parts: dict) -> str:
        return entry_key({**self.scope, **parts})

    def get(self, parts: dict):
        try:
            k = self.key(parts)
        except Exception:               # a store must never break sampling
            logger.debug("TeaCache: profile key failed", exc_info=True)
            return None
        if k not in self._got:
            self._got[k] = self.store.get(k)
        return self._got[k]

    def put(self, items) -> bool:
        """items: [(parts, profile, about)]."""
        try:
            items = [(self.key(parts), prof, {**self.about, **about})
                     for parts, prof, about in items]
        except Exception:
            logger.debug("TeaCache: profile key failed", exc_info=True)
            return False
        return self.store.put(items)
