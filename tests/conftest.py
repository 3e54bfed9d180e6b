"""Shared pytest fixtures for napari-medio.

Real-file test data lives in the repository, in ``tests/data`` (sources and licences in
``tests/data/README.md`` and each family's ``MANIFEST.md``).  Tests never read anything
outside the repository; a missing data file is a failure, never a skip.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The real-file test data (``tests/data``), one folder per family.
DATA_DIR = REPO_ROOT / "tests" / "data"

# napari's and napari-medio's settings files of this test session, never the user's: napari
# reads NAPARI_CONFIG once, when napari.settings is first imported (after this file).
_SESSION_CONFIG = Path(tempfile.mkdtemp(prefix="napari-medio-test-config-"))
os.environ.setdefault("NAPARI_CONFIG", str(_SESSION_CONFIG / "napari-settings.yaml"))
os.environ.setdefault("NAPARI_MEDIO_CONFIG", str(_SESSION_CONFIG / "napari-medio-settings.json"))

#: Writes a synthetic CT series (``make_ct_series.py OUT --slices N --size N --seed N``).
MAKE_CT_SERIES = REPO_ROOT / "scripts" / "make_ct_series.py"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The test data folder, ``tests/data``."""
    return DATA_DIR


def fixture_file(relpath: str | os.PathLike[str]) -> Path:
    """Path of one test data file, relative to ``tests/data``; fails the test if it is missing.

    Call it inside a test: ``fixture_file("images/CTChest4.nrrd")``.
    """
    path = DATA_DIR / Path(relpath)
    if not path.exists():
        pytest.fail(f"test data file missing from the repository: {path}")
    return path


@pytest.fixture(scope="session")
def fixture_path():
    """The :func:`fixture_file` helper as a fixture, for tests that prefer injection."""
    return fixture_file
