"""Shared pytest fixtures for napari-medio.

Real-file fixtures live outside the repository (``../shared/fixtures`` next to the
checkout, or wherever ``NAPARI_MEDIO_FIXTURES`` points).  When they are missing,
tests that need them are skipped locally and fail on CI (``CI`` set), so a CI
run can never pass silently without its conformance cases.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

_MISSING = "fixtures not found: set NAPARI_MEDIO_FIXTURES or check out ../shared/fixtures"


def _fixtures_root() -> Path:
    env = os.environ.get("NAPARI_MEDIO_FIXTURES")
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared" / "fixtures").resolve()


def _missing(what: str) -> None:
    message = f"{_MISSING} ({what})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixtures folder (skips locally / fails on CI when absent)."""
    root = _fixtures_root()
    if not root.is_dir():
        _missing(str(root))
    return root


def fixture_file(relpath: "str | os.PathLike[str]") -> Path:
    """Path of one fixture file, relative to the fixtures folder (same skip/fail rule).

    Call it inside a test: ``fixture_file("images/CTChest4.nrrd")``.
    """
    path = _fixtures_root() / Path(relpath)
    if not path.exists():
        _missing(str(path))
    return path


@pytest.fixture(scope="session")
def fixture_path():
    """The :func:`fixture_file` helper as a fixture, for tests that prefer injection."""
    return fixture_file


def shared_tool(name: str) -> Path:
    """A helper script from ``../shared/tools`` (beside the fixtures folder; same skip/fail rule)."""
    path = _fixtures_root().parent / "tools" / name
    if not path.exists():
        _missing(str(path))
    return path
