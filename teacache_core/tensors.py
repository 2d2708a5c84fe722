"""Memory-bounded tensor work for the per-call path (pure torch).

Users run at the edge of VRAM: a float32 copy of a bf16 hidden state of Wan 14B at 720p is
1.5 GB. Reductions with a float32 accumulator do not avoid it everywhere: on the CPU,
`x.sum(dtype=torch.float32)` and `torch.linalg.vector_norm(x, 1, dtype=torch.float32)` of a
bf16 tensor first convert the whole tensor (measured with torch.profiler's memory profiling,
torch 2.14). So every reduction here works on views of a bounded number of elements along
the token dimension: whatever a kernel allocates internally is bounded by one slice, on every
device and torch version. Results stay on the device (no host sync); the caller reads them
all at once.
"""
from __future__ import annotations

import itertools

import torch

#: elements per slice: on the CPU, where every reduction with a float32 accumulator converts
#: its input first, 256 KB of float32 temporaries at most; on accelerators (where such
#: reductions are mostly fused) 16 MB at most, with few enough slices that the extra kernel
#: launches stay far below a model call (about 100 at Wan 14B 720p)
CPU_CHUNK_ELEMENTS = 1 << 16
DEVICE_CHUNK_ELEMENTS = 1 << 22


def _slices(t: torch.Tensor):
    """Views of `t` along dim 1 (tokens), each of at most about the chunk size elements."""
    chunk = CPU_CHUNK_ELEMENTS if t.device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
    if t.ndim < 2 or t.numel() <= chunk:
        yield t
        return
    per_index = max(t.numel() // max(t.shape[1], 1), 1)
    step = max(chunk // per_index, 1)
    for i in range(0, t.shape[1], step):
        yield t[:, i:i + step]


def _row_dims(t: torch.Tensor):
    return tuple(range(1, t.ndim))


def row_sums(t: torch.Tensor) -> torch.Tensor:
    """[batch, 2] float32 on t's device: per batch row, sum(t) and sum(|t|)."""
    if t.ndim < 2:
        t = t.reshape(t.shape[0] if t.ndim else 1, -1)
    acc = torch.zeros(t.shape[0], 2, dtype=torch.float32, device=t.device)
    dims = _row_dims(t)
    for s in _slices(t):
        acc[:, 0] += s.sum(dim=dims, dtype=torch.float32)
        acc[:, 1] += torch.linalg.vector_norm(s, 1, dim=dims, dtype=torch.float32)
    return acc


def row_l1(cur: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """[batch, 2] float32 on cur's device: per row, sum|cur - prev| and sum|prev| (the
    relative L1 of the paper is their ratio: the element counts cancel). `prev` may live on
    another device (cache_device=cpu): it is brought over one slice at a time."""
    if cur.ndim < 2:
        cur, prev = cur.reshape(cur.shape[0], -1), prev.reshape(prev.shape[0], -1)
    acc = torch.zeros(cur.shape[0], 2, dtype=torch.float32, device=cur.device)
    dims = _row_dims(cur)
    for c, p in zip(_slices(cur), _slices(prev)):
        p = p.to(device=c.device, non_blocking=True)
        acc[:, 0] += torch.linalg.vector_norm(c - p, 1, dim=dims, dtype=torch.float32)
        acc[:, 1] += torch.linalg.vector_norm(p, 1, dim=dims, dtype=torch.float32)
    return acc


def add_estimate(x: torch.Tensor, r: torch.Tensor, prev: torch.Tensor | None = None,
                 w: float = 0.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """x + r, or with `prev` the extrapolated x + (r + (r - prev) * w): in x's dtype and on its
    device, into `out` (a new tensor if None). Cached tensors on another device or in another
    dtype (cache_device=cpu) are brought over one slice at a time, so no full-size temporary
    is made, and nothing is read on the host (pinned buffers may still be being filled)."""
    if out is None:
        out = torch.empty_like(x)
    same = r.device == x.device and r.dtype == x.dtype and (
        prev is None or (prev.device == x.device and prev.dtype == x.dtype))
    parts = [(x, r, prev, out)] if same else zip(
        _slices(x), _slices(r), _slices(prev) if prev is not None else itertools.repeat(None),
        _slices(out))
    for xs, rs, ps, os_ in parts:
        rs = rs.to(device=xs.device, dtype=xs.dtype, non_blocking=True)
        if ps is not None:
            ps = ps.to(device=xs.device, dtype=xs.dtype, non_blocking=True)
            rs = rs + (rs - ps) * w
        torch.add(xs, rs, out=os_)
    return out


def combine_line(r: torch.Tensor, prev: torch.Tensor, w: float) -> torch.Tensor:
    """r + (r - prev) * w as one tensor (same arithmetic as add_estimate)."""
    return r + (r - prev) * w


class HostStore:
    """Tensors kept in CPU memory for cache_device=cpu. On a CUDA device the copies go to
    pinned buffers without blocking (no device-to-host sync; the stream orders them before
    any later use), and a buffer of the same shape is reused instead of allocated again."""

    def __init__(self):
        self._free: list = []
        self._mine: set = set()       # data pointers of the pinned buffers made here

    def put(self, t: torch.Tensor) -> torch.Tensor:
        if t.device.type == "cpu":
            return t
        if t.device.type != "cuda":
            return t.to("cpu")
        buf = None
        for i, b in enumerate(self._free):
            if b.shape == t.shape and b.dtype == t.dtype:
                buf = self._free.pop(i)
                break
        if buf is None:
            buf = torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=True)
            self._mine.add(buf.data_ptr())
        buf.copy_(t, non_blocking=True)
        return buf

    def recycle(self, t):
        """A stored tensor that is no longer needed: its buffer may be reused. A copy into it
        is queued on the stream after every earlier read of it, so reuse is safe."""
        if t is not None and t.data_ptr() in self._mine and len(self._free) < 4:
            self._free.append(t)

    def clear(self):
        self._free.clear()
        self._mine.clear()
