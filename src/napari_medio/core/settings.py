"""Persistent user settings (JSON in the per-user config folder, via platformdirs)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["settings_path", "load_settings", "save_settings"]

DEFAULTS: dict[str, Any] = {
    "resample_oblique": False,  # show truly oblique volumes resampled onto the patient axes
    "dicom_database": None,  # DICOM database folder (None: the per-user data folder)
}


def settings_path() -> Path:
    """Where settings live: ``$NAPARI_MEDIO_CONFIG`` or the platform's user config folder."""
    env = os.environ.get("NAPARI_MEDIO_CONFIG")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("napari-medio")) / "settings.json"


def load_settings() -> dict[str, Any]:
    """Current settings merged over the defaults (a broken file is ignored)."""
    out = dict(DEFAULTS)
    try:
        out.update(json.loads(settings_path().read_text()))
    except (OSError, ValueError):
        pass
    return out


def save_settings(**changes: Any) -> dict[str, Any]:
    """Update and persist settings atomically; returns the new settings."""
    from .fileio import atomic_output

    current = load_settings()
    current.update(changes)
    path = settings_path()
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(current, indent=2))
    return current
