"""Candidate skip estimates for issue 25, measured by benchmarks/oracle.py (BENCHMARKS.md,
"Oracle and skip estimates (issue 25)"). Experiments only: no node offers them; they plug into
the engine through its estimator seam (teacache_core/state.py ResidualEstimator, set per run by
a registration's customize_run) and need `load_pack()` first, as all of benchmarks/.

QuadraticEstimator ("quad"): the second-order estimate in sigma through the last three
computed residuals r0, r1, r2 (oldest first) at sigmas s0, s1, s2. With h1 = s2 - s1,
h0 = s1 - s0, rho = h1 / h0 and u = (sigma - s2) / h1 (the distance in units of the last
interval, as extrapolate's), capped at `lin_cap` (extrapolate's MAX_EXTRAPOLATION, 0.5):

    estimate = r2 + u (r2 - r1)                                       (extrapolate's line)
             + beta * u (1 + u) rho / (1 + rho) * ((r2 - r1) - rho (r1 - r0))   (Newton term)

The Newton term is the exact quadratic through the three points (beta = 1). Its cap for
stability: beta <= 1 damps it, and it is left out where the last interval is more than
`rho_max` times the one before (the quadratic's coefficient grows with rho). Every weight is a
host scalar from the sigmas: no device sync, and the estimate is one weighted sum of three held
residuals, one hidden-state tensor more per cond than extrapolate.

Refreshing the last block ("refresh"): install_refresh() leaves the last n blocks ungated, so
they run on every call: on a skipped call the gated blocks are skipped and their cached
estimate added (any estimator above), then the last n blocks run on it. Their executions are
counted with every other block (the oracle and the benchmark count blocks with forward
pre-hooks), so it competes at the same block executions. Memory: as its estimator (the
residual then covers the gated blocks only).
"""
from __future__ import annotations

from comfyui_teacache.teacache_core.state import ResidualEstimator, extrapolation_weight
from comfyui_teacache.teacache_core.tensors import add_estimate

LIN_CAP = 0.5       # as extrapolate (teacache_core.state.MAX_EXTRAPOLATION)
BETA = 1.0
RHO_MAX = 3.0


class QuadraticEstimator(ResidualEstimator):
    """The module docstring's second-order estimate; holds three residuals per cond (the
    newest in b.residual, the one before in b.prev_residual, the oldest in b.older)."""

    def __init__(self, lin_cap: float = LIN_CAP, beta: float = BETA, rho_max: float = RHO_MAX):
        super().__init__(extrapolate=True)
        self.lin_cap, self.beta, self.rho_max = lin_cap, beta, rho_max

    def input_copy(self, run, b, x, line_ok):
        return x.clone()

    def store(self, run, b, residual, sigma, line_ok):
        keep = line_ok and b.residual is not None and b.residual.shape == residual.shape
        if keep:
            old = getattr(b, "older", None)
            b.older, b.older_sigma = (b.prev_residual, b.prev_residual_sigma) \
                if b.prev_residual is not None else (None, None)
            del old
            b.prev_residual, b.prev_residual_sigma = b.residual, b.residual_sigma
        else:
            b.older, b.older_sigma = None, None
            b.prev_residual, b.prev_residual_sigma = None, None
        b.residual, b.residual_sigma = run.keep(residual), sigma

    def weights(self, b, sigma):
        """(w2, w1, w0): the estimate is w2 r2 + w1 r1 + w0 r0 (w0 = 0 without r0)."""
        r1 = b.prev_residual
        if r1 is None:
            return 1.0, 0.0, 0.0
        s2, s1 = b.residual_sigma, b.prev_residual_sigma
        h1 = s2 - s1
        if not h1:
            return 1.0, 0.0, 0.0
        u = (sigma - s2) / h1
        if u != u or u <= 0:
            return 1.0, 0.0, 0.0
        u = min(u, self.lin_cap)
        w2, w1, w0 = 1.0 + u, -u, 0.0
        if getattr(b, "older", None) is not None and self.beta:
            h0 = s1 - b.older_sigma
            if h0:
                rho = h1 / h0
                if 0 < rho <= self.rho_max:
                    c = self.beta * u * (1 + u) * rho / (1 + rho)
                    # c * ((r2 - r1) - rho (r1 - r0))
                    w2 += c
                    w1 += -c - c * rho
                    w0 += c * rho
        return w2, w1, w0

    def add_to(self, run, b, x, sigma, out=None):
        w2, w1, w0 = self.weights(b, sigma)
        if w0 == 0.0:
            if w1 == 0.0:
                return add_estimate(x, b.residual, out=out)
            # r2 + (r2 - r1) * u with u = w2 - 1
            return add_estimate(x, b.residual, b.prev_residual, w2 - 1.0, out=out)
        est = b.residual.to(x.dtype) * w2 + b.prev_residual.to(x.dtype) * w1 \
            + b.older.to(x.dtype) * w0
        if out is None:
            return x + est
        return torch_add(x, est, out)


class IndicatorLineEstimator(ResidualEstimator):
    """"indline": extrapolate's line through the last two computed residuals, followed as far
    as the INDICATOR has moved instead of sigma: u = (rescaled distance accumulated since the
    last compute, this call included) / (the distance accumulated over the last computed
    interval), capped at `lin_cap`. What a skipped call knows for free (its own indicator, read
    for the decision anyway; a host scalar): where the input changed more than the schedule
    says, the estimate moves further along the line. Falls back to the sigma line where the
    last interval has no finite distance. Memory and syncs as extrapolate."""

    needs_indicator = True

    def __init__(self, lin_cap: float = LIN_CAP):
        super().__init__(extrapolate=True)
        self.lin_cap = lin_cap

    def store(self, run, b, residual, sigma, line_ok):
        super().store(run, b, residual, sigma, line_ok)
        recs = b.records
        span = recs[-1].rescaled if recs else None
        if span is not None and len(recs) > 1 and not recs[-2].computed:
            span += recs[-2].accumulated
        b.indicator_span = span

    def add_to(self, run, b, x, sigma, out=None):
        span = getattr(b, "indicator_span", None)
        if b.prev_residual is None or span is None or not span > 0 or span != span \
                or span == float("inf"):
            return super().add_to(run, b, x, sigma, out=out)
        u = min(max(b.accumulated / span, 0.0), self.lin_cap)
        if u == 0.0:
            return add_estimate(x, b.residual, out=out)
        return add_estimate(x, b.residual, b.prev_residual, u, out=out)


def torch_add(x, est, out):
    import torch
    return torch.add(x, est, out=out)


def held_residuals(estimate: str) -> int:
    """Hidden-state-sized residuals held per cond (the previous indicator not counted)."""
    return {"reuse": 1, "extrapolate": 2, "quad": 3, "indline": 2}[estimate]


QUAD_KEYS = {"c": "lin_cap", "b": "beta", "r": "rho_max"}


def make_estimator(name: str, **kw):
    """The estimator object of a candidate name (refresh variants: their gated blocks' one).
    "quad" takes its constants in the name: quad-b0.5-c1-r3 = beta 0.5, lin_cap 1, rho_max 3
    (the others at their defaults)."""
    base = name.split("+", 1)[0]
    if base == "reuse":
        return ResidualEstimator(False)
    if base == "extrapolate":
        return ResidualEstimator(True)
    if base.split("-")[0] == "quad":
        for part in base.split("-")[1:]:
            kw[QUAD_KEYS[part[0]]] = float(part[1:])
        return QuadraticEstimator(**kw)
    if base.split("-")[0] == "indline":
        for part in base.split("-")[1:]:
            kw[QUAD_KEYS[part[0]]] = float(part[1:])
        return IndicatorLineEstimator(**kw)
    raise KeyError(name)


def refresh_blocks(name: str) -> int:
    """'extrapolate+refresh1' -> 1 (blocks run on every call at the end), else 0."""
    _, _, tail = name.partition("+")
    return int(tail[len("refresh"):] or 1) if tail.startswith("refresh") else 0


def install_refresh(m, reg, n: int):
    """Leave the last `n` blocks of a TeaCache-patched ModelPatcher `m` (registration `reg`)
    ungated: they run on every call, on the skipped calls' estimate too."""
    if n <= 0:
        return m
    keys = list(reg.block_keys)
    if n >= len(keys):
        raise ValueError(f"cannot refresh {n} of {len(keys)} blocks")
    to = m.model_options.get("transformer_options", {})
    pr = dict(to.get("patches_replace") or {})
    dit = dict(pr.get("dit") or {})
    gated = keys[:-n]
    reg.block_keys = list(gated)
    for pos, key in enumerate(gated):
        dit[key] = reg.make_gate(key, pos, getattr(dit.get(key), "inner", None))
    for key in keys[-n:]:
        inner = getattr(dit.get(key), "inner", None)
        if inner is None:
            dit.pop(key, None)
        else:
            dit[key] = inner
    pr["dit"] = dit
    m.model_options = {**m.model_options,
                       "transformer_options": {**to, "patches_replace": pr}}
    return m


__all__ = ["QuadraticEstimator", "IndicatorLineEstimator", "make_estimator", "refresh_blocks", "install_refresh",
           "held_residuals", "extrapolation_weight"]
