"""NumPy-aware conversion of values to what :mod:`json` writes."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["jsonable", "json_default"]


def jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars as lists and Python numbers, tuples as lists, keys as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_default(value: Any) -> Any:
    """The ``default=`` of :func:`json.dumps`: NumPy values as Python ones, bytes as Latin-1 text, else ``str``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)
