"""Published TeaCache rescaling polynomials, each with its source.

Coefficients are in numpy.poly1d order (highest power first). A polynomial is only meaningful
for the indicator it was fitted on, so every preset names its indicator:

- ``timestep_embedding``: the model's timestep embedding (Wan: ``e = time_embedding(sin(t))``)
- ``modulation_vector``: the per-block modulation vector (Wan: ``e0 = time_projection(e)``)
- ``modulated_input``: the first transformer block's timestep-modulated input
  (``norm(x) * (1 + scale) + shift``), the paper's main indicator.

``uncalibrated`` is the honest default for models without published coefficients: the raw
relative L1 distance of the modulated input (identity rescale; paper, table 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALI = "ali-vilab/TeaCache"


@dataclass(frozen=True)
class Preset:
    name: str
    family: str                       # adapter family id ("wan", ...); "*" = any family
    indicator: str                    # see module docstring
    coefficients: tuple | None        # None = identity rescale
    source: str
    recommended_thresh: tuple = ()
    retention: bool = False           # official use_ret_steps: first 5 steps forced, last not
    match: dict = field(default_factory=dict)  # what the model must look like (adapter checks it)
    note: str = ""

    @property
    def calibrated(self) -> bool:
        return self.coefficients is not None


UNCALIBRATED = Preset(
    name="uncalibrated", family="*", indicator="modulated_input", coefficients=None,
    source="identity rescale (no published polynomial; TeaCache paper, table 3)",
    recommended_thresh=(0.05, 0.15),
    note="raw relative L1 of the first block's modulated input",
)

_WAN_SRC = f"{ALI} TeaCache4Wan2.1/teacache_generate.py"

PRESETS: dict[str, Preset] = {p.name: p for p in [
    UNCALIBRATED,
    Preset("wan2.1_t2v_1.3B", "wan", "timestep_embedding",
           (2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01),
           _WAN_SRC, (0.05, 0.08), match={"dim": 1536, "kind": "t2v"}),
    Preset("wan2.1_t2v_14B", "wan", "timestep_embedding",
           (-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404),
           _WAN_SRC, (0.14, 0.2), match={"dim": 5120, "kind": "t2v"}),
    Preset("wan2.1_i2v_480p_14B", "wan", "timestep_embedding",
           (-3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01),
           _WAN_SRC, (0.13, 0.26), match={"dim": 5120, "kind": "i2v"}),
    Preset("wan2.1_i2v_720p_14B", "wan", "timestep_embedding",
           (-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683),
           _WAN_SRC, (0.18, 0.3), match={"dim": 5120, "kind": "i2v"}),
    Preset("wan2.1_t2v_1.3B_ret", "wan", "modulation_vector",
           (-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02),
           _WAN_SRC + " --use_ret_steps", (0.05, 0.10), retention=True,
           match={"dim": 1536, "kind": "t2v"}),
    Preset("wan2.1_t2v_14B_ret", "wan", "modulation_vector",
           (-3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01),
           _WAN_SRC + " --use_ret_steps", (0.10, 0.20), retention=True,
           match={"dim": 5120, "kind": "t2v"}),
    Preset("wan2.1_i2v_480p_14B_ret", "wan", "modulation_vector",
           (2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01),
           _WAN_SRC + " --use_ret_steps", (0.20, 0.30), retention=True,
           match={"dim": 5120, "kind": "i2v"}),
    Preset("wan2.1_i2v_720p_14B_ret", "wan", "modulation_vector",
           (8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02),
           _WAN_SRC + " --use_ret_steps", (0.20, 0.30), retention=True,
           match={"dim": 5120, "kind": "i2v"}),
]}


def retention_variant(preset: Preset) -> Preset:
    """The retention-mode ('_ret') counterpart of a preset, or the preset itself."""
    if preset.retention:
        return preset
    return PRESETS.get(preset.name + "_ret", preset)


def presets_for_families(families) -> list[str]:
    """Preset names selectable for the given adapter families, table order."""
    fams = set(families)
    return [n for n, p in PRESETS.items() if p.family == "*" or p.family in fams]
