"""npe2 reader contribution: any file or folder the format registry recognises."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from ..core import registry
from ..core.errors import MedioError
from .layers import to_layer_data

PathLike = Union[str, "os.PathLike[str]"]


def _recognised(path: PathLike) -> bool:
    try:
        registry.find_reader(path)
        return True
    except MedioError:
        return False


def get_reader(path: PathLike | list) -> Callable[..., list] | None:
    """npe2 ``get_reader``: a reader function when napari-medio can read ``path`` (or every path in a list)."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(_recognised(p) for p in paths):
        return None
    return read_layers


def read_layers(path: PathLike | list, **options: Any) -> list:
    """Read file(s) through the registry and return napari LayerData tuples.

    Errors are :class:`~napari_medio.core.errors.MedioError` naming the file, which
    napari shows as one notification line.
    """
    from ..core.settings import load_settings

    settings = load_settings()
    options.setdefault("resample_oblique", settings.get("resample_oblique", False))
    paths = path if isinstance(path, (list, tuple)) else [path]
    layers: list = []
    for p in paths:
        read_opts = {k: v for k, v in options.items() if k not in ("resample_oblique",)}
        for obj in registry.read(p if registry.is_url(p) else Path(p), **read_opts):
            layers.extend(to_layer_data(obj, **options))
    # Objects that are not layers (transforms, tables: kept in the session store) give
    # napari's "no layer" marker; keep it only when nothing else was read.
    real = [ld for ld in layers if len(ld) >= 2 and ld[0] is not None]
    return real or [(None,)]
