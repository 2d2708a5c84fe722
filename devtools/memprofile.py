"""The allocator's own accounting of a piece of work, on the CPU (torch.profiler's memory
profiling) or on CUDA (torch.cuda.max_memory_allocated).

On the CPU the profiler records every allocation and free with the allocator's running total
("Total Allocated"); the peak of that total above its value at the start is the memory the
work needed at its worst moment, temporaries inside kernels included (which a Python-level
tensor tracker would miss: e.g. the float32 copy that x.sum(dtype=torch.float32) makes of a
bf16 tensor on the CPU). Named ranges (torch.profiler.record_function) report, for each time
they ran, the peak above the total at their entry.
"""
from __future__ import annotations

import json
import os
import tempfile


def cpu_peak(fn, ranges=()):
    """Run fn() under the profiler. Returns (peak bytes above the start, {range name: the
    largest peak above its entry over its executions}, fn's result)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    mem = sorted((e for e in events if e.get("name") == "[memory]"
                  and e.get("args", {}).get("Device Type", 0) == 0), key=lambda e: e["ts"])
    if not mem:
        return 0, {r: 0 for r in ranges}, result
    base = mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"]
    totals = [(e["ts"], e["args"]["Total Allocated"]) for e in mem]
    peak = max(t for _, t in totals) - base
    out = {}
    for name in ranges:
        worst = 0
        for e in events:
            if e.get("name") != name or e.get("ph") != "X":
                continue
            t0, t1 = e["ts"], e["ts"] + e.get("dur", 0)
            before = [t for ts, t in totals if ts < t0]
            entry = before[-1] if before else base
            inside = [t for ts, t in totals if t0 <= ts <= t1]
            if inside:
                worst = max(worst, max(inside) - entry)
        out[name] = worst
    del torch
    return peak, out, result
