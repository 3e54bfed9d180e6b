"""Shared fixtures of the real-viewer tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_store():
    """Each viewer test starts and ends with an empty store of transforms, tables and texts."""
    from napari_medio.plugin.convert_transform import STORE

    STORE.clear()
    yield
    STORE.clear()
