"""The per-call path: what the block gates do at every model call (pure torch, no ComfyUI).

At the first block (decide): which conds are in the batch, the indicator, its relative L1 per
cond, one decision per cond. At the last block of a computed call (finish): the residual per
cond, and the cached estimate for conds of the batch that chose to skip.

Memory and synchronisation (what users at the edge of VRAM need; README "Memory"):
- every reduction works on bounded slices (tensors.py): no float32 copy of a hidden state;
- everything the decision needs (the call's sigma, per cond the checksums of the block input
  and the two sums of the relative L1) is one small float32 vector, read by the host ONCE per
  model call (under sequence parallelism, summed over the group first: parallel.py);
- what TeaCache holds of hidden-state size: per cond the cached residual(s) (one for reuse,
  two for extrapolate) and the previous indicator, on cache_device; during a computed call one
  copy of the batch's block input, which becomes the residual in place. A cond that computes
  drops the residual it no longer needs before the blocks run.
"""
from __future__ import annotations

import logging

import torch

from . import parallel
from .policy import forced_reason
from .state import CallContext, Chunk, StepRecord
from .tensors import add_estimate, row_l1, row_sums

logger = logging.getLogger(__name__)


def call_chunks(to: dict, batch: int) -> list:
    """One Chunk per cond in a (possibly batched) model call."""
    cou = list(to.get("cond_or_uncond") or [])
    uuids = list(to.get("uuids") or [])
    n = len(cou)
    if n == 0 or batch % n != 0:
        return [Chunk(key="batch", label="batch", sl=slice(None))]
    size = batch // n
    out, seen = [], set()
    for i, c in enumerate(cou):
        # the cond's uuid and its role: ComfyUI gives the uncond it makes for an area cond
        # (create_cond_with_same_area_if_none) the area cond's uuid
        key = (uuids[i], c) if i < len(uuids) and uuids[i] is not None else ("cond_or_uncond", c, i)
        while key in seen:
            key = key + (len(seen),)
        seen.add(key)
        label = "cond" if c == 0 else "uncond" if c == 1 else f"branch{c}"
        out.append(Chunk(key=key, label=label, sl=slice(i * size, (i + 1) * size)))
    return out


def _same_call(prev, cur) -> bool:
    """Same sigma and (up to batching round-off) the same block input."""
    if prev is None or prev[0] != cur[0]:
        return False
    scale = max(1.0, cur[2])
    return all(abs(p - c) <= 1e-5 * scale for p, c in zip(prev[1:], cur[1:]))


def _sigma_tensor(ctx: CallContext, device) -> torch.Tensor:
    s = ctx.sigma_t
    if isinstance(s, torch.Tensor):
        return s.detach().flatten()[:1].to(device=device, dtype=torch.float32)
    return torch.tensor([float(s)], dtype=torch.float32, device=device)


def read_call_stats(ctx: CallContext, x: torch.Tensor, ind: torch.Tensor, chunks, prevs,
                    block_options=None):
    """The one host read of a model call: [sigma, then per chunk sum(x), sum|x|,
    sum|ind - prev|, sum|prev| (0, 0 without a comparable previous indicator)].
    Under sequence parallelism the sums cover this rank's real tokens and are summed over
    the group before the read, so every rank decides alike. `block_options`: the blocks' own
    transformer_options (an engine may add what it knows of the sharding there)."""
    to = block_options if isinstance(block_options, dict) else ctx.transformer_options
    group = parallel.find_group(to)
    comparable = [p is not None and p.shape == ind[ch.sl].shape for ch, p in zip(chunks, prevs)]
    if group is not None:
        # tokens of the indicator are trimmed only where it has the blocks' token dimension
        # (a timestep embedding is the same on every rank)
        sharded = ind.ndim >= 3 and ind.shape[1] == x.shape[1]
        x = parallel.valid_tokens(x, to, group=group)
        if sharded:
            ind = parallel.valid_tokens(ind, to, group=group)
            prevs = [None if p is None else parallel.valid_tokens(p, to, group=group)
                     for p in prevs]
    xs = row_sums(x)
    parts = []
    for ch, prev, ok in zip(chunks, prevs, comparable):
        parts.append(xs[ch.sl].sum(0))
        if ok:
            parts.append(row_l1(ind[ch.sl], prev).sum(0))
        else:
            parts.append(torch.zeros(2, dtype=torch.float32, device=x.device))
    stats = torch.cat(parts)
    if group is not None:
        parallel.all_reduce_sum_(stats, group)
    sigma = _sigma_tensor(ctx, x.device)
    values = torch.cat((sigma, stats)).tolist()        # the single device-to-host sync
    out = []
    for i, ok in enumerate(comparable):
        s, a, num, den = values[1 + 4 * i: 5 + 4 * i]
        d = None
        if ok:
            d = num / den if den > 0 else float("inf")
            if d != d or d in (float("inf"), float("-inf")):
                d = float("inf")
        out.append(((s, a), d))
    return values[0], out


@torch.no_grad()
def decide(reg, ctx: CallContext, key, args):
    """First block: measure, decide per cond, and either prepare the cached output (every cond
    skips) or keep a copy of the block input for the residual."""
    run, cfg, ad = ctx.run, ctx.run.config, reg.adapter
    x = ad.block_input(key, args)
    chunks = call_chunks(ctx.transformer_options, x.shape[0])
    ind = (ad.indicator(run.preset.indicator, ctx, args) if run.indicator is None
           else run.indicator(ctx, key, args)).detach()
    if ind.is_floating_point() and ind.element_size() > x.element_size():
        ind = ind.to(x.dtype)        # held per cond until the next call: never wider than x
    prevs = []
    for ch in chunks:
        b = run.branches.get(ch.key)
        prevs.append(b.prev_indicator if b is not None else None)
    sigma, measured = read_call_stats(ctx, x, ind, chunks, prevs,
                                      args.get("transformer_options"))
    prevs.clear()       # the previous indicators go as soon as each cond holds its new one
    ctx.sigma = sigma
    ctx.step = run.step_index(sigma)
    # A cond evaluated again on the same input at the same sigma (Skip Layer Guidance, STG
    # and other extra guidance passes) is not a new step: run it uncached, leave its state
    # alone. (Heun & co. call twice at one sigma too, but on different inputs.)
    sigs = [(sigma,) + sums for sums, _ in measured]
    for ch, sig in zip(chunks, sigs):
        b = run.branches.get(ch.key)
        if b is not None and _same_call(b.last_call, sig):
            logger.debug("TeaCache step %d: extra pass of %s on the same input, computed "
                         "without the cache", ctx.step, b.label)
            return
    ctx.chunks = chunks
    forced = forced_reason(ctx.step, run.total_steps, cfg.start_step, cfg.end_step,
                           run.retention, run.forced_first)
    skips = []
    for ch, sig, (_, d) in zip(chunks, sigs, measured):
        n_labels = sum(1 for b in run.branches.values() if b.label.split("#")[0] == ch.label)
        label = ch.label if ch.key in run.branches or n_labels == 0 else f"{ch.label}#{n_labels + 1}"
        b = run.branch(ch.key, label)
        why = forced
        if why is None and b.residual is not None and b.residual_sig != ctx.patch_sig:
            why = "other block patches changed"
        dec = run.rule.decide(run, b, ctx.step, d, forced=why,
                              has_cache=b.residual_fits(x[ch.sl]))
        b.accumulated = dec.accumulated
        b.last_call = sig
        # a rule that compares with the indicator of the last computed call (First Block
        # Cache) keeps it across skips; the published rule compares consecutive calls
        if not (dec.skip and getattr(run.rule, "compare_to_last_computed", False)):
            run.drop(b.prev_indicator)
            b.prev_indicator = run.keep(ind[ch.sl])
        b.consecutive_skips = b.consecutive_skips + 1 if dec.skip else 0
        b.records.append(StepRecord(ctx.step, sigma, d, dec.rescaled, dec.accumulated,
                                    not dec.skip, dec.reason))
        skips.append(dec.skip)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("TeaCache step %d/%d %s: distance=%s rescaled=%s acc=%.4g/%s -> %s (%s)",
                         ctx.step, run.total_steps, b.label,
                         "n/a" if d is None else f"{d:.4g}",
                         "n/a" if dec.rescaled is None else f"{dec.rescaled:.4g}",
                         dec.accumulated, run.rule.describe_limit(),
                         "skip" if dec.skip else "compute", dec.reason)
    del ind
    ctx.skip = skips
    ctx.skip_all = all(skips)
    ctx.decided = True
    run.calls += 1
    if ctx.skip_all:
        ctx.final = apply_cached(ctx, x)
        return
    run.calls_blocks_ran += 1
    if not cfg.can_skip:
        return
    # the blocks may change their input in place: keep what the last block needs, per cond
    for i, (ch, skip) in enumerate(zip(chunks, skips)):
        b = run.branches[ch.key]
        if skip:
            ctx.finals[i] = run.estimator.add_to(run, b, x[ch.sl], sigma)
        else:
            ctx.inputs[i] = run.estimator.input_copy(run, b, x[ch.sl],
                                                     line_ok=b.residual_sig == ctx.patch_sig)


@torch.no_grad()
def apply_cached(ctx: CallContext, x: torch.Tensor, out: torch.Tensor | None = None):
    """x + the cached estimate for every skipped chunk (written into `out` if given, else a
    new tensor)."""
    run = ctx.run
    if out is None and len(ctx.chunks) == 1:
        return run.estimator.add_to(run, run.branches[ctx.chunks[0].key], x, ctx.sigma)
    out = torch.empty_like(x) if out is None else out
    for ch, skip in zip(ctx.chunks, ctx.skip):
        if skip:
            run.estimator.add_to(run, run.branches[ch.key], x[ch.sl], ctx.sigma, out=out[ch.sl])
    return out


@torch.no_grad()
def finish(reg, ctx: CallContext, key, args, out):
    """Last block of a computed call: the input copies become the residuals (in place), and
    the conds that skip get their cached output."""
    if not ctx.inputs:
        return out
    run, ad = ctx.run, reg.adapter
    y = ad.block_output(key, args, out)
    inputs, finals = ctx.inputs, ctx.finals
    ctx.inputs, ctx.finals = {}, {}
    for i, ch in enumerate(ctx.chunks):
        b = run.branches[ch.key]
        if i in inputs:
            buf = inputs.pop(i)
            residual = torch.sub(y[ch.sl], buf, out=buf)     # the input copy becomes it
            del buf
            run.estimator.store(run, b, residual, ctx.sigma, line_ok=b.residual_sig == ctx.patch_sig)
            b.residual_sig = ctx.patch_sig
            del residual
    run.note_cache_size()
    if finals:
        # the last block's output is a fresh tensor: the skipped conds go straight into it
        for i, t in finals.items():
            y[ctx.chunks[i].sl].copy_(t)
        out = ad.with_output(key, args, out, y)
    return out


@torch.no_grad()
def record_output(ctx: CallContext, y):
    """Calibration: the relative L1 of the model output per cond, against the previous call."""
    if y is None:
        return
    run = ctx.run
    pairs = []
    for ch in ctx.chunks:
        b = run.branches[ch.key]
        cur = y[ch.sl].detach()
        prev = b.prev_output
        if prev is not None and prev.shape == cur.shape and b.records:
            pairs.append((b, row_l1(cur, prev).sum(0)))
        b.prev_output = run.keep(cur)
    if pairs:
        values = torch.stack([p for _, p in pairs]).tolist()
        for (b, _), (num, den) in zip(pairs, values):
            b.records[-1].output_distance = num / den if den > 0 else float("inf")


# ---- further residual spans (generic path: one span per block stack and stream) -------------
# The decision is made once per call at the first block (decide); a span is a stretch of blocks
# whose stream leaves it as entry + residual. Its entry keeps, per cond, what its exit needs:
# a copy of the input for a computing cond (it becomes the residual in place, as in decide and
# finish), or the input plus the cached estimate for a skipping cond.

@torch.no_grad()
def span_enter(ctx: CallContext, name, x: torch.Tensor):
    run = ctx.run
    if not ctx.decided or not run.config.can_skip:
        return
    if ctx.skip_all:
        ctx.span_finals[name] = {None: _span_cached(ctx, name, x)}
        return
    inputs, finals = {}, {}
    for i, (ch, skip) in enumerate(zip(ctx.chunks, ctx.skip)):
        s = run.branches[ch.key].span(name)
        if skip:
            finals[i] = _span_estimate(ctx, s, x[ch.sl])
        else:
            inputs[i] = run.estimator.input_copy(run, s, x[ch.sl],
                                                 line_ok=s.residual_sig == ctx.patch_sig)
    ctx.span_inputs[name], ctx.span_finals[name] = inputs, finals


def _span_estimate(ctx, s, x):
    """x + the span's cached estimate; x unchanged (and logged) where the span has none that
    fits (a span is computed in the same calls as the first one, so this is a safety net)."""
    if not s.residual_fits(x):
        logger.debug("TeaCache: span %s has no cached residual of shape %s; passed through",
                     s.label, tuple(x.shape))
        return x
    return ctx.run.estimator.add_to(ctx.run, s, x, ctx.sigma)


def _span_cached(ctx, name, x):
    if len(ctx.chunks) == 1:
        return _span_estimate(ctx, ctx.run.branches[ctx.chunks[0].key].span(name), x)
    out = torch.empty_like(x)
    for ch in ctx.chunks:
        out[ch.sl] = _span_estimate(ctx, ctx.run.branches[ch.key].span(name), x[ch.sl])
    return out


def span_skipped_output(ctx: CallContext, name):
    """The span's output when every cond of the call skips (made at its entry)."""
    return ctx.span_finals.pop(name, {}).get(None)


@torch.no_grad()
def span_exit(ctx: CallContext, name, y: torch.Tensor) -> torch.Tensor:
    """The span's last block ran: computing conds' input copies become their residuals, the
    skipping conds' outputs are written into y (a fresh block output). Returns y."""
    inputs = ctx.span_inputs.pop(name, None)
    finals = ctx.span_finals.pop(name, None) or {}
    if not inputs:
        return y
    run = ctx.run
    for i, ch in enumerate(ctx.chunks):
        if i in inputs:
            s = run.branches[ch.key].span(name)
            buf = inputs.pop(i)
            residual = torch.sub(y[ch.sl], buf, out=buf)
            del buf
            run.estimator.store(run, s, residual, ctx.sigma,
                                line_ok=s.residual_sig == ctx.patch_sig)
            s.residual_sig = ctx.patch_sig
            del residual
    for i, t in finals.items():
        y[ctx.chunks[i].sl].copy_(t)
    run.note_cache_size()
    return y
