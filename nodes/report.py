"""TeaCacheReport: what TeaCache did in a sampling run, as an image and as JSON."""
from __future__ import annotations

import json
import logging

import numpy as np
import torch
from comfy_api.latest import io

from ..teacache_core.patching import registration_of
from ..teacache_core.report import render
from .common import CATEGORY, SEARCH_ALIASES, SUFFIX, schema

logger = logging.getLogger(__name__)


class TeaCacheReport(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="TeaCacheReport",
            display_name="TeaCache Report" + SUFFIX,
            category=CATEGORY,
            search_aliases=["teacache report", "skipped steps", "report"] + SEARCH_ALIASES,
            description=("Shows, per step and cond, the indicator change, the accumulator "
                         "against the threshold and which steps were computed or skipped "
                         "(for a calibration: the samples and the fitted curve). Connect the "
                         "sampler's LATENT so it runs after sampling, and the same MODEL the "
                         "sampler used."),
            inputs=[
                io.Model.Input("model", tooltip="The model from TeaCache or TeaCache "
                               "Calibrate that the sampler used."),
                io.Latent.Input("latent", tooltip="The sampler's output: orders this node "
                                "after sampling and picks that run's report."),
            ],
            outputs=[io.Image.Output(display_name="report",
                                     tooltip="The picture of the run: per step and cond, "
                                     "computed (green) or skipped (grey), the rescaled change, "
                                     "the accumulator and the threshold. Connect it to Preview "
                                     "Image."),
                     io.String.Output(display_name="json",
                                      tooltip="The same numbers as JSON: settings, "
                                      "coefficients, estimated speed-up and one record per "
                                      "step and cond (and the samples and fit of a "
                                      "calibration run).")],
        )

    @classmethod
    def execute(cls, model, latent) -> io.NodeOutput:
        reg = registration_of(model)
        if reg is None:
            # TeaCache bypassed (Ctrl+B) to compare, or not connected: say so, do not fail the
            # whole workflow
            logger.warning("TeaCache Report: the model it got has no TeaCache (bypassed or "
                           "not connected); nothing to report")
            summary = {"model": "no TeaCache on this model", "branches": {},
                       "note": "TeaCache is bypassed or not connected: every step was computed. "
                               "Connect the MODEL output of TeaCache or TeaCache Calibrate."}
            img = np.asarray(render(summary), dtype=np.float32) / 255.0
            return io.NodeOutput(torch.from_numpy(img)[None], json.dumps(summary))
        summary = reg.summary_for(latent.get("samples") if isinstance(latent, dict) else None)
        if summary is None:
            summary = {"model": reg.info.description, "preset": reg.preset.name,
                       "threshold": reg.config.rel_l1_thresh, "branches": {},
                       "note": "no sampling run with this model yet"}
        img = np.asarray(render(summary), dtype=np.float32) / 255.0
        return io.NodeOutput(torch.from_numpy(img)[None], json.dumps(summary, default=str))
