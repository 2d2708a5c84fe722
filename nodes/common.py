"""Where the pack keeps user data inside ComfyUI."""
from __future__ import annotations

from pathlib import Path


def calibration_folder() -> Path:
    """<ComfyUI user directory>/teacache/calibrations (JSON files only)."""
    import folder_paths
    return Path(folder_paths.get_user_directory()) / "teacache" / "calibrations"
