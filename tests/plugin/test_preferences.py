"""napari reader preferences, on a real napari settings object saved in a temporary folder."""
from __future__ import annotations

import os
from fnmatch import fnmatch

import pytest

pytest.importorskip("napari")

from napari.settings import NapariSettings

from napari_medio.plugin.preferences import (
    FOLDER_PATTERN,
    PLUGIN_NAME,
    claim_reader_preferences,
    medio_patterns,
)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MEDIO_CONFIG", str(tmp_path / "medio.json"))
    return NapariSettings(config_path=tmp_path / "napari.yaml")


def _preferred(settings, path: str) -> str | None:
    """napari's own choice rule (napari.plugins.utils.get_preferred_reader) on this settings object."""
    from napari.plugins.utils import score_specificity

    hits = [(p, r) for p, r in settings.plugins.extension2reader.items() if fnmatch(path, p)]
    return min(hits, key=lambda kv: score_specificity(kv[0]))[1] if hits else None


def test_claims_every_manifest_type_and_folders_and_keeps_user_choices(settings, tmp_path):
    settings.plugins.extension2reader = {"*.tif": "napari"}  # the user chose before
    added = claim_reader_preferences(settings, notify=False)
    prefs = settings.plugins.extension2reader
    assert prefs["*.tif"] == "napari" and "*.tif" not in added
    for pattern in ("*.nrrd", "*.NRRD", "*.nii.gz", "*.seg.nrrd", "*.dcm", "*.DCM", "*.mrk.json", "*.vtk",
                    "*.obj", "*.png", "*.csv", f"*{os.sep}DICOMDIR", FOLDER_PATTERN):
        assert prefs[pattern] == PLUGIN_NAME, pattern
    assert "*" not in prefs  # the catch-all is never a preference: it would take every file
    # Formats only napari reads stay with napari although napari-medio's "*" also matches them.
    assert prefs["*.npy"] == "napari" and prefs["*.gif"] == "napari"
    # napari's matching: whole path, folders with a trailing separator.
    assert _preferred(settings, "/data/ct/scan.nii.gz") == PLUGIN_NAME
    assert _preferred(settings, "/data/CT/IMG.DCM") == PLUGIN_NAME
    assert _preferred(settings, "/data/cd/DICOMDIR") == PLUGIN_NAME
    assert _preferred(settings, "/data/any/series" + os.sep) == PLUGIN_NAME
    assert _preferred(settings, "/data/x/stack.tif") == "napari"
    assert _preferred(settings, "/data/x/array.npy") == "napari"
    # Saved in napari's settings file.
    reread = NapariSettings(config_path=tmp_path / "napari.yaml")
    assert reread.plugins.extension2reader == prefs


def test_claims_once_and_never_again_what_the_user_removed(settings):
    first = claim_reader_preferences(settings, notify=False)
    assert first and claim_reader_preferences(settings, notify=False) == {}
    prefs = dict(settings.plugins.extension2reader)
    del prefs["*.nrrd"]
    prefs["*.nii"] = "napari"
    settings.plugins.extension2reader = prefs
    assert claim_reader_preferences(settings, notify=False) == {}
    assert "*.nrrd" not in settings.plugins.extension2reader
    assert settings.plugins.extension2reader["*.nii"] == "napari"


def test_every_manifest_pattern_is_claimed():
    from npe2 import PluginManifest

    import napari_medio

    manifest = PluginManifest.from_file(os.path.join(os.path.dirname(napari_medio.__file__), "napari.yaml"))
    patterns = set(medio_patterns())
    for reader in manifest.contributions.readers:
        assert reader.accepts_directories and FOLDER_PATTERN in patterns
        for p in reader.filename_patterns:
            if p != "*":
                assert (p if p.startswith("*") else f"*{os.sep}{p}") in patterns, p
