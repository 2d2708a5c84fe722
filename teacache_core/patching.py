"""The only module that speaks ComfyUI's wrapper/patch API.

Mechanism (the model's own forward always runs; no ComfyUI forward is copied):
- OUTER_SAMPLE wrapper: creates the run's RunState in the guider's model options and frees it
  when sampling ends, also on error or interrupt; logs one INFO summary line.
- APPLY_MODEL wrapper: for each model call, finds the step from the current sigma and makes
  a CallContext visible to the block gates (a context variable, so the gates work whatever the
  family passes them); the DIFFUSION_MODEL wrapper, where a family has it, adds the timestep as
  the diffusion model receives it.
- A gate on every transformer block through patches_replace["dit"]: the first block measures
  the indicator and decides per cond; on a skip the blocks pass through and the last block
  returns input + cached residual; on a compute the last block stores output - input.
  A replace patch that was already there (e.g. Skip Layer Guidance) is wrapped, not dropped.
"""
from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
import hashlib
import logging
import os
from pathlib import Path

import torch

import comfy.model_patcher
import comfy.patcher_extension as pe

from .adapters import UnsupportedModelError, find_adapter
from .adapters import generic as _generic
from .coefficients import UNCALIBRATED
from . import calibration as calib
from . import engine
from . import profiles as _profiles
from .config import TeaCacheConfig
from .state import CallContext, RunState
from .tensors import row_sums

logger = logging.getLogger(__name__)

KEY = "teacache"
RUN_KEY = "teacache_run"
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("teacache_call", default=None)


def _find_run(owner, args, kwargs):
    candidates = [kwargs.get("transformer_options")] + [a for a in reversed(args)
                                                         if isinstance(a, dict)]
    for to in candidates:
        if isinstance(to, dict):
            run = to.get(RUN_KEY)
            if run is not None and run.owner is owner:
                return run, to
    return None, None


def _first_tensor(x):
    while True:
        if isinstance(x, (list, tuple)) and x:
            x = x[0]
        elif not isinstance(x, torch.Tensor) and isinstance(getattr(x, "tensors", None), (list, tuple)):
            x = x.tensors           # ComfyUI's NestedTensor (e.g. a video + audio latent)
        else:
            break
    return x if isinstance(x, torch.Tensor) else None


def fingerprint(t) -> list | None:
    """A cheap signature of a sampled latent, to find the run that produced it."""
    t = _first_tensor(t)
    if t is None:
        return None
    total, total_abs = row_sums(t.detach().reshape(1, -1)).flatten().tolist()
    return [list(t.shape), round(total, 3), round(total_abs, 3)]


class CalibrationTarget:
    """Where TeaCacheCalibrate accumulates its samples."""

    def __init__(self, folder, name: str, skip_first: int = 0):
        self.folder = folder
        self.name = calib.validate_name(name)
        self.skip_first = int(skip_first)


class TeaCacheRegistration:
    """One TeaCacheApply (or TeaCacheCalibrate): settings, the detected model, the callbacks."""

    HISTORY = 8

    def __init__(self, config: TeaCacheConfig, adapter, info, preset, calibration=None):
        self.config = config
        self.adapter = adapter
        self.info = info
        self.preset = preset            # as validated at node time (auto may refine per run)
        self.calibration = calibration  # CalibrationTarget when calibrating
        self.history = collections.deque(maxlen=self.HISTORY)   # summaries of finished runs
        self.block_keys = []            # the gated blocks' patches_replace keys (set on install)
        # called as fn(registration, summary_dict, summary_line) when a sampling run ends
        # (also on error/interrupt); e.g. the node shows the summary in the page
        self.on_finish = []
        # Experiments (benchmarks/peers.py) only; the nodes leave both at their defaults.
        # decision_block: gates before it always run their block ("probe" blocks); the
        # decision is made at that block's input and a skip covers it through the last block.
        self.decision_block = 0
        # customize_run: fn(run) called on every new RunState before sampling, to replace what
        # the run uses (run.rule, run.estimator, run.indicator, run.probe_input, ...)
        self.customize_run = None
        # target_speedup's profile store (profiles.ProfileStore, None = off) and the model's
        # part of its keys (model_identity)
        self.profile_store = None
        self.profile_model = None

    def describe_model(self) -> str:
        """The model as the summary line names it (the generic path adds what it inferred)."""
        layout = getattr(self.adapter, "layout", None)
        return self.info.description + (f" [{layout.describe()}]" if layout is not None else "")

    def make_gate(self, key, pos, inner=None):
        """The patches_replace entry for one block (wrapping `inner`, another node's entry)."""
        cls = GenericGate if getattr(self.adapter, "dynamic", False) else BlockGate
        return cls(self, key, pos, len(self.block_keys), inner)

    def __deepcopy__(self, memo):
        # ModelPatcher.clone() deep-copies model_options on some ComfyUI versions (0.3.75):
        # the block gates must keep pointing at this registration, as the wrappers do.
        return self

    @property
    def last_summary(self):
        return self.history[-1] if self.history else None

    def summary_for(self, latent):
        """The summary of the run that sampled `latent` (newest first), else the last one."""
        fp = fingerprint(latent)
        for s in reversed(self.history):
            if fp is not None and s.get("output_fingerprint") == fp:
                return s
        return self.last_summary

    # ---- OUTER_SAMPLE ------------------------------------------------------------------
    def outer_sample(self, executor, *args, **kwargs):
        guider = executor.class_obj
        noise = args[0] if args else kwargs.get("noise")
        sigmas = args[3] if len(args) > 3 else kwargs.get("sigmas")
        shape = getattr(noise, "shape", None)
        fixed = self.preset.name.startswith(calib.PREFIX) or self.calibration or \
            self.config.model_type != "auto"
        preset = self.preset if fixed else self.adapter.select_preset(self.info, self.config.model_type,
                                            self.config.retention_mode, latent_shape=shape)
        run = RunState(self, self.config, preset, self.describe_model(),
                       sigmas if sigmas is not None else [],
                       preset.retention or self.config.retention_mode)
        if self.profile_store is not None and self.calibration is None:
            sampler = sampler_signature(args[2] if len(args) > 2 else kwargs.get("sampler"))
            run.stored_profiles = _profiles.RunProfiles(
                self.profile_store, {"model": self.profile_model, "sampler": sampler},
                about={"file": self.profile_model.get("file"), "sampler": sampler["name"]})
        if self.customize_run is not None:
            self.customize_run(run)
        orig = guider.model_options
        opts = comfy.model_patcher.create_model_options_clone(orig)
        opts.setdefault("transformer_options", {})[RUN_KEY] = run
        guider.model_options = opts
        try:
            out = executor(*args, **kwargs)
            run.output_fingerprint = fingerprint(out)
            if self.calibration is not None:
                self._save_calibration(run)
            return out
        finally:
            guider.model_options = orig
            summary, line = run.summary(), run.summary_line()
            self.history.append(summary)
            if self.calibration is None:
                logger.info(line)
            run.release()
            for fn in list(self.on_finish):
                try:
                    fn(self, summary, line)
                except Exception:       # a listener must never break sampling
                    logger.debug("TeaCache: an on_finish listener failed", exc_info=True)

    def _save_calibration(self, run):
        t = self.calibration
        cal = open_calibration(t, self.adapter, self.info, run.preset.indicator)
        pairs = [(r.distance, r.output_distance) for b in run.branches.values() for r in b.records
                 if r.distance is not None and r.output_distance is not None
                 and r.step >= t.skip_first]
        added = cal.add(pairs)
        cal.runs += 1
        cal.refit()
        path = calib.save(t.folder, cal)
        fit = ("not enough samples to fit yet" if cal.coefficients is None else
               f"fit rmse {cal.fit_rmse:.4g}, coefficients "
               + ", ".join(f"{c:.5g}" for c in cal.coefficients))
        logger.info("TeaCache calibration %r: +%d samples (%d in all, %d runs), %s; saved %s",
                    t.name, added, cal.sample_count, cal.runs, fit, path.name)
        run.calibration = {"name": t.name, "samples": [list(p) for p in cal.samples],
                           "coefficients": cal.coefficients, "fit_rmse": cal.fit_rmse,
                           "added": added, "skip_first": cal.skip_first}

    # ---- APPLY_MODEL / DIFFUSION_MODEL -------------------------------------------------
    def apply_model(self, executor, *args, **kwargs):
        """Every model call: find the step from the sigma and publish the call's context."""
        run, to = _find_run(self, args, kwargs)
        if run is None:
            return executor(*args, **kwargs)
        # the sigma is read on the host together with everything else the decision needs,
        # once per call (engine.read_call_stats)
        sigma_t = args[1] if len(args) > 1 else kwargs.get("t")
        if not isinstance(sigma_t, torch.Tensor):
            sigma_t = 0.0
        to2, patch_sig = self._regate(to)
        if to2 is not to:
            if kwargs.get("transformer_options") is to:
                kwargs = {**kwargs, "transformer_options": to2}
            else:
                args = tuple(to2 if a is to else a for a in args)
            to = to2
        ctx = CallContext(run=run, model=getattr(executor.class_obj, "diffusion_model", None),
                          sigma_t=sigma_t, transformer_options=to, patch_sig=patch_sig)
        token = _CURRENT.set(ctx)
        try:
            out = executor(*args, **kwargs)
        finally:
            _CURRENT.reset(token)
        if ctx.discovery is not None:
            GenericGate.end_discovery(self, ctx)
        if self.calibration is not None and ctx.decided:
            engine.record_output(ctx, _first_tensor(ctx.model_output if ctx.model_output
                                                    is not None else out))
        return out

    def _regate(self, to: dict):
        """Ours wraps theirs, whatever the order: a replace patch another node set on one of
        our blocks after TeaCache (or for this call only, as Skip Layer Guidance does) would
        silently drop our gate there. For this call, put our gate back around it. Returns the
        call's transformer_options (a copy if anything changed) and a signature of those
        other patches, so a residual cached under other patches is never reused."""
        if self.adapter.hook != "replace" or not self.block_keys:
            return to, ()
        dit = (to.get("patches_replace") or {}).get("dit") or {}
        regated, sig = {}, []
        for pos, key in enumerate(self.block_keys):
            entry = dit.get(key)
            if isinstance(entry, BlockGate) and entry.reg is self:
                inner = entry.inner
            else:
                regated[key] = self.make_gate(key, pos, entry)
                inner = entry
            if inner is not None:
                sig.append((key, id(inner)))
        if not regated:
            return to, tuple(sig)
        pr = dict(to.get("patches_replace") or {})
        pr["dit"] = {**dit, **regated}
        return {**to, "patches_replace": pr}, tuple(sig)

    def diffusion_model(self, executor, *args, **kwargs):
        """Inside the model call: note the timestep exactly as the diffusion model gets it
        (needed by timestep-embedding indicators; not every family has this wrapper)."""
        ctx = _CURRENT.get()
        if ctx is not None and ctx.run.owner is self:
            ctx.timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
            ctx.model = executor.class_obj
            out = executor(*args, **kwargs)
            if self.calibration is not None:
                ctx.model_output = out
            return out
        return executor(*args, **kwargs)

    # ---- block gates (the per-call path lives in engine.py) ------------------------------
    def decide(self, ctx: CallContext, key, args):
        engine.decide(self, ctx, key, args)

    def finish(self, ctx, key, args, out):
        return engine.finish(self, ctx, key, args, out)


class _Gate:
    """Shared logic of the gate on one transformer block (see the module docstring)."""

    def __init__(self, reg: TeaCacheRegistration, key, position: int, count: int):
        self.reg = reg
        self.key = key
        self.position = position
        self.count = count

    def gate(self, args, run_block):
        ctx = _CURRENT.get()
        if ctx is None or ctx.run.owner is not self.reg:
            return run_block()
        if self.key in ctx.inside:          # our gate reached again through another node's
            return run_block()              # patch that wraps it: gate each block once
        ctx.inside.add(self.key)
        try:
            return self._gate(ctx, args, run_block)
        finally:
            ctx.inside.discard(self.key)

    def _gate(self, ctx, args, run_block):
        db = self.reg.decision_block
        if self.position < db:              # a probe block before the decision: always runs
            if ctx.run.probe_input is not None:
                ctx.run.probe_input(ctx, self.key, self.position, args)
            return run_block()
        first, last = self.position == db, self.position == self.count - 1
        if first:
            self.reg.decide(ctx, self.key, args)
        if not ctx.decided:
            return run_block()
        ad = self.reg.adapter
        if ctx.skip_all:
            out = ad.passthrough(self.key, args)
            return ad.with_output(self.key, args, out, ctx.final) if last else out
        out = run_block()
        return self.reg.finish(ctx, self.key, args, out) if last else out


class BlockGate(_Gate):
    """patches_replace["dit"] entry. A replace patch that was there before is kept working."""

    def __init__(self, reg, key, position, count, inner=None):
        super().__init__(reg, key, position, count)
        self.inner = inner

    def __call__(self, args, extra):
        if self.inner is not None:
            return self.gate(args, lambda: self.inner(args, extra))
        return self.gate(args, lambda: extra["original_block"](args))


class ForwardGate(_Gate):
    """Object patch on a block module's `forward`, for families without patches_replace."""

    def __init__(self, reg, key, position, count, original):
        super().__init__(reg, key, position, count)
        self.original = original

    def _original_for(self, ctx):
        """A bound forward belongs to the module it was read from. ComfyUI's multi-GPU deep
        clone copies object patches onto a fresh model: rebind to the block of the model
        running now."""
        f = self.original
        func, owner = getattr(f, "__func__", None), getattr(f, "__self__", None)
        if func is None or ctx is None or ctx.run.owner is not self.reg or ctx.model is None:
            return f
        module = functools.reduce(getattr, self.key.split("."), ctx.model)
        return f if module is owner else func.__get__(module)

    def __call__(self, *a, **kw):
        ctx = _CURRENT.get()
        original = self._original_for(ctx)
        if ctx is None:
            return original(*a, **kw)
        return self.gate(self.reg.adapter.forward_args(self.key, a, kw),
                         lambda: original(*a, **kw))


class GenericGate(BlockGate):
    """Gate of the generic path (adapters/generic.py): the keys are candidates, and the layout
    (block order, stacks, streams) is found at the first model call, which always computes
    (step 0 is forced and nothing is cached yet). Until then every gate runs its block and
    notes what it saw; a stack's residuals are taken when the next stack starts or the call
    ends. Afterwards the gates follow the layout: the first block decides, every stack's first
    block keeps what its last block needs, and on a skip each stack's last block returns its
    input plus its cached residual, so the code between stacks runs on every call."""

    def _gate(self, ctx, args, run_block):
        reg, ad = self.reg, self.reg.adapter
        layout = ad.layout
        idx = ctx.gate_index
        ctx.gate_index += 1
        if idx == 0 and (layout is None or layout.keys[0] != self.key):
            ad.layout = layout = None
            ctx.discovery = []
        if ctx.discovery is not None:
            return self._discover(ctx, args, run_block)
        if idx >= len(layout.keys) or layout.keys[idx] != self.key:
            raise RuntimeError(
                f"TeaCache (generic path): {ctx.run.model_desc} ran block {self.key} where its "
                f"first call ran {layout.keys[idx] if idx < len(layout.keys) else 'nothing'}: "
                "its block order changes between calls. Remove TeaCache for this model.")
        if idx == 0:
            reg.decide(ctx, self.key, args)
        if not ctx.decided:
            return run_block()
        for name, stream in layout.entering(idx):
            engine.span_enter(ctx, name, args[stream])
        exits = layout.exiting(idx)
        bare = layout.stack_at(idx).tensor_out
        if ctx.skip_all:
            out = ad.passthrough(self.key, args)
            for name, stream in exits:
                out[stream] = ctx.final if name is None else \
                    engine.span_skipped_output(ctx, name)
            return out[layout.stack_at(idx).streams[0]] if bare else out
        out, _ = _generic.as_streams(args, run_block())
        for name, stream in exits:
            if name is None:
                out = reg.finish(ctx, self.key, args, out)
            else:
                out = {**out, stream: engine.span_exit(ctx, name, out[stream])}
        return out[layout.stack_at(idx).streams[0]] if bare else out

    # ---- the first call: run every block, note the layout, take the residuals ------------
    def _discover(self, ctx, args, run_block):
        seen = ctx.discovery
        prev = seen[-1] if seen else None
        if prev is None:
            self.reg.decide(ctx, self.key, args)     # step 0 / nothing cached: computes
        elif prev["key"][0] != self.key[0]:
            GenericGate._close_stack(self.reg, ctx)
        if ctx.decided and (prev is None or prev["key"][0] != self.key[0]):
            main = self.reg.adapter.main_stream(args) if prev is None else None
            for stream, t in _generic._tensors(args).items():
                if stream != main and t.ndim >= 3:
                    engine.span_enter(ctx, f"d{len(ctx.span_inputs)}:{stream}", t)
        out = run_block()
        streams, bare = _generic.as_streams(args, out)
        seen.append({"key": self.key, "args": args, "out": streams, "bare": bare,
                     "stack_entry": prev is None or prev["key"][0] != self.key[0]})
        return out

    @staticmethod
    def _close_stack(reg, ctx):
        """The stack that just ended: its residuals, from its last block's output."""
        seen = ctx.discovery
        if not seen or not ctx.decided:
            return
        last = seen[-1]
        entry = max(i for i, s in enumerate(seen) if s["stack_entry"])
        stack_no = sum(1 for s in seen if s["stack_entry"]) - 1
        out = _generic._tensors(last["out"])
        given = _generic._tensors(seen[entry]["args"])
        for name in [n for n in ctx.span_inputs if n.startswith("d")]:
            stream = name.split(":", 1)[1]
            inputs = ctx.span_inputs.pop(name)
            finals = ctx.span_finals.pop(name, None)
            if stream in out and stream in given and out[stream].shape == given[stream].shape:
                span = f"{stack_no}:{stream}"
                ctx.span_inputs[span], ctx.span_finals[span] = inputs, finals or {}
                engine.span_exit(ctx, span, out[stream])
            del inputs, finals
        if stack_no == 0 and ctx.inputs:
            engine.finish(reg, ctx, last["key"], last["args"], last["out"])

    @staticmethod
    def end_discovery(reg, ctx):
        seen = ctx.discovery
        if not seen:
            ctx.discovery = None
            return
        shapes = [(s["key"], {k: tuple(v.shape) for k, v in _generic._tensors(s["args"]).items()},
                   {k: tuple(v.shape) for k, v in _generic._tensors(s["out"]).items()},
                   s["bare"]) for s in seen]
        name = type(ctx.model).__name__ if ctx.model is not None else "this model"
        try:
            layout = _generic.infer_layout(shapes, name)       # refuses before using anything
            GenericGate._close_stack(reg, ctx)
        finally:
            ctx.discovery = None
        reg.adapter.layout = layout
        ctx.run.model_desc = reg.describe_model()
        logger.debug("TeaCache: generic path on %s: %s", name, layout.describe())


def generic_adapter(dm):
    """The generic path for `dm` (model_type 'generic' by hand): refused where it cannot work."""
    if not _generic.ADAPTER.matches(dm):
        raise UnsupportedModelError(
            f"model_type 'generic' needs a diffusion transformer whose forward uses ComfyUI's "
            f"block hooks (patches_replace); {type(dm).__name__} has none. Choose 'auto'.")
    return _generic.ADAPTER


def sampler_signature(sampler) -> dict:
    """The sampler part of a stored profile's key: its function's name (ComfyUI's KSAMPLER
    keeps it in sampler_function) and its scalar options."""
    fn = getattr(sampler, "sampler_function", None)
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) \
        or type(sampler).__name__
    opts = getattr(sampler, "extra_options", None)
    scalars = ({k: v for k, v in opts.items() if isinstance(k, str)
                and isinstance(v, (bool, int, float, str))} if isinstance(opts, dict) else {})
    return {"name": str(name), "options": scalars}


def _tensors_in(v, depth=0) -> list:
    """The tensors of one patch value (a tuple of tensors, a LoRA weight adapter, ...)."""
    if isinstance(v, torch.Tensor):
        return [v]
    if depth > 3:
        return []
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in _tensors_in(x, depth + 1)]
    w = getattr(v, "weights", None)
    return _tensors_in(w, depth + 1) if isinstance(w, (list, tuple)) else []


def _patches_signature(patches) -> str | None:
    """A hash of the weight patches (LoRAs) on a ModelPatcher: every patched key with its
    strengths and patch type, and a few values of a few patches. None without patches."""
    keys = sorted(k for k in (patches or {}) if isinstance(k, str))
    if not keys:
        return None
    h = hashlib.sha256()
    for k in keys:
        for p in patches[k]:
            p = tuple(p) if isinstance(p, (list, tuple)) else (p,)
            strengths = [x if isinstance(x, (int, float)) else None for x in p[:3:2]]
            h.update(repr((k, strengths, type(p[1]).__name__ if len(p) > 1 else None))
                     .encode("utf-8"))
    for k in keys[::max(len(keys) // 4, 1)][:4]:
        first = patches[k][0] if patches[k] else None
        if isinstance(first, (list, tuple)) and len(first) > 1:
            for t in _tensors_in(first[1])[:2]:
                h.update(_profiles.tensor_sample(t, 32))
    return h.hexdigest()[:32]


def model_identity(model, dm, info) -> dict:
    """The model part of a stored profile's key: family, variant, dims, the weights file name
    where this ComfyUI records it (newer versions keep the loader's path in
    ModelPatcher.cached_patcher_init), a hash of a few weights and one of the patches. The
    weights are read as loaded from the file, whatever is loaded now: a weight that a loaded
    clone patched in place (a LoRA) is read from the backup its clones share
    (ModelPatcher.backup), and the ones this model patches are not read at all."""
    patches = getattr(model, "patches", None) or {}
    prefix = "diffusion_model."
    patched = {k[len(prefix):] for k in patches if isinstance(k, str) and k.startswith(prefix)}
    backup = getattr(model, "backup", None)
    originals = {k[len(prefix):]: getattr(v, "weight", None) for k, v in backup.items()
                 if isinstance(k, str) and k.startswith(prefix)} \
        if isinstance(backup, dict) else {}
    init = getattr(model, "cached_patcher_init", None)
    path = None
    if isinstance(init, tuple) and len(init) > 1 and isinstance(init[1], (list, tuple)) \
            and init[1] and isinstance(init[1][0], (str, os.PathLike)):
        path = os.path.basename(os.fspath(init[1][0]))
    return {"family": info.family, "kind": info.kind, "dims": dict(info.dims),
            "class": type(dm).__name__, "file": path,
            "weights": _profiles.weights_signature(dm, skip=patched, originals=originals),
            "patches": _patches_signature(patches)}


def open_calibration(target: CalibrationTarget, adapter, info, indicator: str):
    """The calibration to add samples to: the saved one (checked to be of this model and
    indicator) or a new one. A foreign or damaged file raises; it is never overwritten."""
    folder = Path(target.folder)
    dims = adapter.calibration_dims(info)
    if not (folder / f"{target.name}.json").exists():
        return calib.Calibration(name=target.name, family=info.family, indicator=indicator,
                                 dims=dims, model=info.description, skip_first=target.skip_first)
    cal = calib.load(folder, target.name)
    if (cal.family, cal.indicator, cal.dims) != (info.family, indicator, dims):
        raise calib.CalibrationError(
            f"calibration {target.name!r} was made on {cal.model} ({cal.family}, indicator "
            f"{cal.indicator}, {cal.dims}); this model is {info.description} (indicator "
            f"{indicator}, {dims}). Use another name for this model.")
    if cal.skip_first != target.skip_first:
        raise calib.CalibrationError(
            f"calibration {target.name!r} leaves out the first {cal.skip_first} steps; set "
            f"skip_first_steps to {cal.skip_first} or use another name.")
    return cal


def resolve_preset(adapter, info, config: TeaCacheConfig, calibration_folder=None):
    """The preset named by config.model_type: a published one, or a saved calibration."""
    if config.model_type.startswith(calib.PREFIX):
        if calibration_folder is None:
            raise ValueError("user calibrations need ComfyUI's user directory")
        cal = calib.load(calibration_folder, config.model_type[len(calib.PREFIX):])
        preset = cal.preset()
        if cal.skip_first:
            preset = dataclasses.replace(preset, forced_first=cal.skip_first)
        problem = adapter.preset_mismatch(info, preset)
        if problem:
            raise ValueError(problem)
        return preset
    return adapter.select_preset(info, config.model_type, config.retention_mode)


def apply_teacache(model, config: TeaCacheConfig, calibration_folder=None, calibration=None,
                   indicator: str | None = None, preset=None, profile_folder=None):
    """Return (clone of `model` with TeaCache installed, its registration). Raises ValueError
    (unsupported model, preset or calibration mismatch) before anything is changed.
    With `calibration` (a CalibrationTarget) nothing is skipped and samples are recorded.
    `preset` (a coefficients.Preset) overrides config.model_type without any size check: for
    experiments such as benchmarks, not for the nodes. `profile_folder`: where target_speedup
    keeps its distance profiles across nodes and restarts (profiles.py); None = not kept."""
    dm = model.get_model_object("diffusion_model")
    adapter = find_adapter(dm)
    if config.model_type == "generic" and adapter.family != "generic":
        adapter = generic_adapter(dm)          # by hand, e.g. to measure it against a family
    adapter = getattr(adapter, "for_model", lambda _dm: adapter)(dm)
    info = adapter.describe(dm)
    # the config class ComfyUI picked: some variants share their diffusion model's class and
    # weights layout with another (FlowRVS is a plain WanModel) and differ only there
    base = type(getattr(model, "model", None)).__name__
    info = dataclasses.replace(info, dims={**info.dims, "model_base": base})
    if calibration is not None:
        indicator = indicator or adapter.calibration_indicator
        if indicator not in adapter.indicators:
            raise ValueError(f"{info.description} offers the indicators "
                             f"{', '.join(adapter.indicators)}, not {indicator!r}.")
        preset = dataclasses.replace(UNCALIBRATED, name="calibrating", indicator=indicator,
                                     forced_first=calibration.skip_first)
        open_calibration(calibration, adapter, info, indicator)     # check before sampling
        config = dataclasses.replace(config, rel_l1_thresh=0.0)
    elif preset is None:
        preset = resolve_preset(adapter, info, config, calibration_folder)
    reg = TeaCacheRegistration(config, adapter, info, preset, calibration)
    if profile_folder is not None and calibration is None and config.target_speedup:
        try:
            reg.profile_model = model_identity(model, dm, info)
            reg.profile_store = _profiles.ProfileStore(profile_folder)
        except Exception as e:      # never fail the node over the store: first runs predict
            logger.warning("TeaCache: the target_speedup profile store is off for %s: its "
                           "identity could not be read (%s: %s).", info.description,
                           type(e).__name__, e)

    m = model.clone()
    wrappers = ((pe.WrappersMP.OUTER_SAMPLE, reg.outer_sample),
                (pe.WrappersMP.APPLY_MODEL, reg.apply_model),
                (pe.WrappersMP.DIFFUSION_MODEL, reg.diffusion_model))
    for kind, fn in wrappers:
        m.remove_wrappers_with_key(kind, KEY)      # a second TeaCacheApply replaces the first
        m.add_wrapper_with_key(kind, KEY, fn)
    keys = adapter.block_keys(dm)
    reg.block_keys = list(keys)
    if adapter.hook == "replace":
        existing = m.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
        for pos, key in enumerate(keys):
            inner = existing.get(key)
            while isinstance(inner, BlockGate):    # re-applying TeaCache: unwrap our old gate
                inner = inner.inner
            m.set_model_patch_replace(reg.make_gate(key, pos, inner), "dit", *key)
    else:
        for pos, path in enumerate(keys):
            name = f"diffusion_model.{path}.forward"
            original = m.get_model_object(name)
            while isinstance(original, ForwardGate):
                original = original.original
            m.add_object_patch(name, ForwardGate(reg, path, pos, len(keys), original))
    logger.debug("TeaCache installed on %s: preset %s, %d block gates", info.description,
                 preset.name, len(keys))
    return m, reg


def registration_of(model):
    """The TeaCacheRegistration installed on a ModelPatcher, or None."""
    ws = model.get_wrappers(pe.WrappersMP.OUTER_SAMPLE, KEY)
    return getattr(ws[-1], "__self__", None) if ws else None
