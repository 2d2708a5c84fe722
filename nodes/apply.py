"""TeaCacheApply: node id and widget order are a public contract (append only)."""
from __future__ import annotations

from comfy_api.latest import io

from ..teacache_core import calibration as calib
from ..teacache_core.adapters import ADAPTERS
from ..teacache_core.coefficients import PRESETS, presets_for_families
from ..teacache_core.config import (CACHE_DEVICES, SKIP_ESTIMATES, TARGET_MAX, TeaCacheConfig,
                                    validation_error)
from ..teacache_core.patching import apply_teacache
from ..teacache_core.profiles import MAX_ENTRIES
from . import status
from .common import (CATEGORY, SEARCH_ALIASES, SUFFIX, advanced, calibration_folder,
                     profile_folder, schema)


def model_type_options() -> list[str]:
    """auto, the published presets of supported families, then saved calibrations."""
    return (["auto"] + presets_for_families(a.family for a in ADAPTERS)
            + [calib.PREFIX + n for n in calib.list_names(calibration_folder())])


def _recommended() -> str:
    rows = [f"{n}: {p.recommended_thresh[0]:g}-{p.recommended_thresh[1]:g}"
            for n, p in PRESETS.items() if p.recommended_thresh and p.calibrated and not p.retention]
    return "; ".join(rows)


class TeaCacheApply(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="TeaCacheApply",
            display_name="TeaCache" + SUFFIX,
            category=CATEGORY,
            description=("Skips the transformer blocks on sampling steps where the model's "
                         "timestep-modulated input barely changed, reusing the residual cached "
                         "at the last computed step (TeaCache, arXiv 2411.19108), for "
                         "ComfyUI's native diffusion transformers. Put it right before the "
                         "sampler; after each run the node shows the steps skipped and the "
                         "estimated speed-up."),
            search_aliases=SEARCH_ALIASES,
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model to speed up: Wan 2.1/2.2 "
                               "(and its variants), HunyuanVideo, LTX-Video, Mochi, Cosmos, "
                               "Flux, Chroma, Lumina2/Z-Image, HiDream, Qwen-Image, Kandinsky "
                               "5, CogVideoX, MiniMax H3, PixArt, OmniGen2, ERNIE-Image, Krea 2, "
                               "Ideogram 4, PixelDiT, and any other diffusion transformer with "
                               "ComfyUI's block hooks (generic path: SD3, AuraFlow, HunyuanDiT, "
                               "...). It is cloned; the input model is not changed."),
                io.Float.Input("rel_l1_thresh", default=0.1, min=0.0, max=10.0, step=0.001,
                               tooltip="Skip while the accumulated rescaled change stays below "
                               "this. 0 never skips; higher is faster and less faithful. "
                               "Recommended: " + _recommended() + "; uncalibrated models: "
                               "start around 0.05-0.15."),
                io.Int.Input("start_step", default=0, min=0, max=10000,
                             tooltip="Sampling steps before this one (0-based, as the progress "
                             "bar counts them) are always computed. The first step always is."),
                io.Int.Input("end_step", default=-1, min=-1, max=10000,
                             tooltip="Steps from this one on are always computed; -1 = cache "
                             "through the last step (the last step is always computed)."),
                io.Combo.Input("model_type", options=model_type_options(), default="auto",
                    tooltip="Which coefficients to use. 'auto' detects the model (family, "
                    "size, T2V/I2V, resolution); 'uncalibrated' uses the raw relative change; "
                    "'calib:<name>' are your TeaCacheCalibrate results (refresh the page after "
                    "calibrating). A preset for another model is an error."),
                # expert settings: the page folds them away where it can (advanced inputs)
                io.Combo.Input("cache_device", options=list(CACHE_DEVICES), default="model_device",
                               **advanced(io.Combo.Input),
                               tooltip="Where the cached residual lives: on the model's device "
                               "(fastest) or in CPU memory (saves VRAM, one transfer per step)."),
                io.Boolean.Input("retention_mode", default=False,
                                 tooltip="Official Wan 'use_ret_steps': the first 5 steps are "
                                 "always computed, the last is not forced, and the retention "
                                 "('_ret') coefficients on the modulation vector are used. "
                                 "Better motion at the same speed on Wan."),
                io.Int.Input("max_consecutive_skips", default=0, min=0, max=1000,
                             **advanced(io.Int.Input),
                             tooltip="Never skip more than this many steps in a row (0 = no cap)."),
                # optional: API prompts saved before this input existed still run
                io.Combo.Input("skip_estimate", options=list(SKIP_ESTIMATES), default="reuse",
                               optional=True, **advanced(io.Combo.Input),
                               tooltip="What a skipped step adds to its input. 'reuse': the "
                               "residual cached at the last computed step (published TeaCache). "
                               "'extrapolate': the straight line through the last two computed "
                               "residuals, continued to this step's noise level; the same rule "
                               "decides what to skip, the result is closer to the uncached one "
                               "(see BENCHMARKS.md); keeps one more residual in memory."),
                io.Float.Input("target_speedup", default=0.0, min=0.0, max=TARGET_MAX, step=0.1,
                               optional=True, tooltip="Ask for a speed-up instead of a "
                               "threshold: 2 = each cond computes about half of its model calls, "
                               "where the input changes most; works the same on any model, "
                               "steps and sampler. When set (not 0) it wins: rel_l1_thresh is "
                               "ignored (the log shows the equivalent threshold). 0 = off "
                               "(rel_l1_thresh decides); 1 = no skipping. Forced steps count "
                               "as computed; a target above what the schedule allows is "
                               "clamped with a warning."),
                io.Boolean.Input("profile_store", default=True, optional=True,
                                 **advanced(io.Boolean.Input),
                                 tooltip="target_speedup only: keep each run's distance profile "
                                 "per model, sampler, sigmas and cond (never the prompt) in "
                                 "ComfyUI's user directory (teacache/profiles.json, at most "
                                 f"{MAX_ENTRIES} entries), so that the first run after a "
                                 "restart or on a new node places its computes as a later run "
                                 "does. Off: nothing is read or written; first runs predict."),
            ],
            outputs=[io.Model.Output(tooltip="The model with TeaCache (a clone).")],
            # the node's id: its summary goes to this node in the page (nodes/status.py)
            hidden=[io.Hidden.unique_id],
            not_idempotent=True,
        )

    @classmethod
    def validate_inputs(cls, rel_l1_thresh, start_step, end_step, max_consecutive_skips,
                        model_type="auto", cache_device="model_device", skip_estimate="reuse",
                        target_speedup=0.0):
        # ComfyUI 0.3.75 does not check V3 combo values itself: an API prompt (or a workflow
        # naming a deleted calibration) would otherwise pass /prompt and fail when run
        problem = validation_error(rel_l1_thresh, start_step, end_step, max_consecutive_skips,
                                   cache_device, skip_estimate, target_speedup)
        if problem is None and model_type not in model_type_options():
            problem = (f"model_type {model_type!r} is not available here: choose 'auto', "
                       "'uncalibrated', a preset or a saved calibration (refresh the page after "
                       "calibrating).")
        return problem or True

    @classmethod
    def execute(cls, model, rel_l1_thresh, start_step, end_step, model_type="auto",
                cache_device="model_device", retention_mode=False,
                max_consecutive_skips=0, skip_estimate="reuse",
                target_speedup=0.0, profile_store=True) -> io.NodeOutput:
        try:
            config = TeaCacheConfig(float(rel_l1_thresh), int(start_step), int(end_step),
                                    model_type, cache_device, bool(retention_mode),
                                    int(max_consecutive_skips), skip_estimate,
                                    target_speedup)
            patched, reg = apply_teacache(
                model, config, calibration_folder=calibration_folder(),
                profile_folder=profile_folder() if profile_store else None)
        except ValueError as e:    # config, unsupported model, preset mismatch
            raise ValueError(f"TeaCache: {e}") from None
        # after every run: the summary on this node in the page (nothing outside a server)
        status.attach(reg, getattr(cls.hidden, "unique_id", None))
        return io.NodeOutput(patched)

    @classmethod
    def fingerprint_inputs(cls, model_type="auto", **kwargs):
        """ComfyUI reuses this node's output while its inputs are unchanged; a calibration
        refitted under the same name must take effect on the next queue, so the file's
        content is part of the fingerprint (ComfyUI's IS_CHANGED)."""
        return calibration_fingerprint(model_type)


def calibration_fingerprint(model_type) -> str:
    """model_type, plus for calib:<name> a hash of that calibration file's bytes."""
    if not isinstance(model_type, str) or not model_type.startswith(calib.PREFIX):
        return str(model_type)
    import hashlib
    try:
        path = calibration_folder() / f"{calib.validate_name(model_type[len(calib.PREFIX):])}.json"
        return model_type + ":" + hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError) as e:      # missing or bad name: validation reports it
        return f"{model_type}:unreadable:{type(e).__name__}"
