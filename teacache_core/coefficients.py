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
    forced_first: int = 0             # steps always computed at the start (0 = the default 1,
                                      # or 5 in retention mode)
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

GENERIC = Preset(
    name="generic", family="*", indicator="block_input", coefficients=None,
    source="identity rescale of the first block's input change (generic path)",
    recommended_thresh=(0.05, 0.15),
    note="any diffusion transformer with ComfyUI block hooks, no family file (adapters/generic.py)",
)

PRESETS: dict[str, Preset] = {p.name: p for p in [
    UNCALIBRATED,
    GENERIC,
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
    # ---- other families (adapters in teacache_core/adapters/<family>.py) -------------------
    Preset("hunyuan_video", "hunyuan_video", "modulated_input",
           (7.33226126e+02, -4.01131952e+02, 6.75869174e+01, -3.14987800e+00, 9.61237896e-02),
           f"{ALI} TeaCache4HunyuanVideo/teacache_sample_video.py", (0.1, 0.15),
           match={"hidden": 3072, "kind": "t2v"}),
    Preset("ltxv", "ltxv", "modulated_input",
           (2.14700694e+01, -1.28016453e+01, 2.31279151e+00, 7.92487521e-01, 9.69274326e-03),
           f"{ALI} TeaCache4LTX-Video/teacache_ltx.py (LTX-Video 0.9.1)", (0.03, 0.05),
           match={"hidden": 2048}),
    Preset("mochi", "mochi", "modulated_input",
           (-3.51241319e+03, 8.11675948e+02, -6.09400215e+01, 2.42429681e+00, 3.05291719e-03),
           f"{ALI} TeaCache4Mochi/teacache_mochi.py", (0.06, 0.09), match={"hidden": 3072}),
    Preset("cosmos_1.0_7B", "cosmos1", "modulated_input",
           (2.71156237e+02, -9.19775607e+01, 2.24437250e+00, 2.08355751e+00, 1.41776330e-01),
           f"{ALI} TeaCache4Cosmos (Cosmos-1.0-Diffusion-7B)", (0.3, 0.4), match={"hidden": 4096}),
    Preset("flux", "flux", "modulated_input",
           (4.98651651e+02, -2.83781631e+02, 5.58554382e+01, -3.82021401e+00, 2.64230861e-01),
           f"{ALI} TeaCache4FLUX/teacache_flux.py", (0.25, 0.6), match={"hidden": 3072}),
    Preset("flux_kontext", "flux", "modulated_input",
           (-1.04655119e+03, 3.12563399e+02, -1.69500694e+01, 4.10995971e-01, 3.74537863e-02),
           "welltop-cn/ComfyUI-TeaCache nodes.py", (0.22, 0.22), match={"hidden": 3072}),
    Preset("lumina2", "lumina2", "modulated_input",
           (-8.74643948e+02, 4.66059906e+02, -7.51559762e+01, 5.32836175e+00, -3.27258296e-02),
           "welltop-cn/ComfyUI-TeaCache nodes.py (differs from ali-vilab TeaCache4Lumina2)",
           (0.38, 0.38), match={"hidden": 2304}),
    Preset("hidream_i1_full", "hidream", "timestep_embedding",
           (-3.13605009e+04, -7.12425503e+02, 4.91363285e+01, 8.26515490e+00, 1.08053901e-01),
           f"{ALI} TeaCache4HiDream-I1", (0.17, 0.3), match={"hidden": 2560},
           note="official: first 10% of steps forced, last not forced"),
    Preset("hidream_i1_dev", "hidream", "timestep_embedding",
           (1.39997273, -4.30130469, 5.01534416, -2.20504164, 0.93942874),
           "welltop-cn/ComfyUI-TeaCache nodes.py", (1.0, 1.0), match={"hidden": 2560}),
    Preset("hidream_i1_fast", "hidream", "timestep_embedding",
           (2.26509623, -6.88864563, 7.61123826, -3.10849353, 0.99927602),
           "welltop-cn/ComfyUI-TeaCache nodes.py", (1.5, 1.5), match={"hidden": 2560}),
    # CogVideoX (adapters/cogvideo.py): fitted on the timestep embedding emb (+ ofs embedding
    # on 1.5-I2V); official: first and last step forced. The 5B and 5B-I2V polynomials are the
    # same numbers in the source (also in eval/teacache/experiments/cogvideox.py for 2B/5B).
    Preset("cogvideox_2B", "cogvideox", "timestep_embedding",
           (-3.10658903e+01, 2.54732368e+01, -5.92380459e+00, 1.75769064e+00, -3.61568434e-03),
           f"{ALI} TeaCache4CogVideoX1.5/teacache_sample_video.py (CogVideoX-2b)", (0.1, 0.2),
           match={"hidden": 1920, "kind": "t2v", "version": "1.0"}),
    Preset("cogvideox_5B", "cogvideox", "timestep_embedding",
           (-1.53880483e+03, 8.43202495e+02, -1.34363087e+02, 7.97131516e+00, -5.23162339e-02),
           f"{ALI} TeaCache4CogVideoX1.5/teacache_sample_video.py (CogVideoX-5b)", (0.1, 0.2),
           match={"hidden": 3072, "kind": "t2v", "version": "1.0"}),
    Preset("cogvideox_5B_i2v", "cogvideox", "timestep_embedding",
           (-1.53880483e+03, 8.43202495e+02, -1.34363087e+02, 7.97131516e+00, -5.23162339e-02),
           f"{ALI} TeaCache4CogVideoX1.5/teacache_sample_video.py (CogVideoX-5b-I2V)", (0.1, 0.2),
           match={"hidden": 3072, "kind": "i2v", "version": "1.0"}),
    Preset("cogvideox1.5_5B", "cogvideox", "timestep_embedding",
           (2.50210439e+02, -1.65061612e+02, 3.57804877e+01, -7.81551492e-01, 3.58559703e-02),
           f"{ALI} TeaCache4CogVideoX1.5/teacache_sample_video.py (CogVideoX1.5-5B)", (0.1, 0.3),
           match={"hidden": 3072, "kind": "t2v", "version": "1.5"},
           note="official README: 0.1 / 0.2 / 0.3 = 1.3x / 1.8x / 2.1x at 50 steps"),
    Preset("cogvideox1.5_5B_i2v", "cogvideox", "timestep_embedding",
           (1.22842302e+02, -1.04088754e+02, 2.62981677e+01, -3.06009921e-01, 3.71213220e-02),
           f"{ALI} TeaCache4CogVideoX1.5/teacache_sample_video.py (CogVideoX1.5-5B-I2V)",
           (0.1, 0.3), match={"hidden": 3072, "kind": "i2v", "version": "1.5"},
           note="official README: 0.1 / 0.2 / 0.3 = 1.5x / 2.2x / 2.7x at 50 steps"),
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
