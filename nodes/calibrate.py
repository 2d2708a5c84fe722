"""TeaCacheCalibrate: sample as usual (nothing skipped) while recording what TeaCache needs to
fit its rescaling polynomial for this model; results accumulate under a name."""
from __future__ import annotations

from comfy_api.latest import io

from ..teacache_core.calibration import validate_name
from ..teacache_core.config import TeaCacheConfig
from ..teacache_core.patching import CalibrationTarget, apply_teacache
from . import status
from .common import CATEGORY, SEARCH_ALIASES, SUFFIX, calibration_folder, schema

INDICATORS = ["auto", "modulated_input", "timestep_embedding", "modulation_vector"]


class TeaCacheCalibrate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="TeaCacheCalibrate",
            display_name="TeaCache Calibrate" + SUFFIX,
            category=CATEGORY,
            search_aliases=["teacache calibrate", "calibration", "coefficients", "fit"]
            + SEARCH_ALIASES,
            description=("Samples unchanged while recording, for every pair of consecutive "
                         "steps and every cond, how much the indicator and the model output "
                         "changed. After each run it fits TeaCache's rescaling polynomial "
                         "(degree 4) over all samples saved under the name, and saves it as "
                         "'calib:<name>' for TeaCache's model_type (refresh the page)."),
            inputs=[
                io.Model.Input("model", tooltip="The model to calibrate (cloned, unchanged)."),
                io.String.Input("name", default="my_model",
                                tooltip="Calibration name: letters, digits, '_', '-', '.'. "
                                "Runs with the same name add up (use many prompts)."),
                io.Int.Input("skip_first_steps", default=0, min=0, max=1000,
                             tooltip="Leave the first steps out of the fit and always compute "
                             "them when the calibration is used (retention-style; e.g. 5 for "
                             "Wan, whose first steps change erratically)."),
                io.Combo.Input("indicator", options=INDICATORS, default="auto",
                               tooltip="What to measure: 'auto' = the first block's modulated "
                               "input (every family). Wan also offers the timestep embedding "
                               "and the modulation vector."),
            ],
            outputs=[io.Model.Output(tooltip="The model, recording while it samples.")],
            hidden=[io.Hidden.unique_id],       # its fit goes to this node (nodes/status.py)
            not_idempotent=True,
        )

    @classmethod
    def validate_inputs(cls, name, skip_first_steps):
        try:
            validate_name(name)
        except ValueError as e:
            return str(e)
        return True

    @classmethod
    def execute(cls, model, name, skip_first_steps=0, indicator="auto") -> io.NodeOutput:
        try:
            target = CalibrationTarget(calibration_folder(), name, skip_first_steps)
            patched, reg = apply_teacache(model, TeaCacheConfig(0.0), calibration=target,
                                        indicator=None if indicator == "auto" else indicator)
        except ValueError as e:
            raise ValueError(f"TeaCache Calibrate: {e}") from None
        status.attach(reg, getattr(cls.hidden, "unique_id", None))    # samples and fit, shown
        return io.NodeOutput(patched)
