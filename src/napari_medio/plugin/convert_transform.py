"""Transforms, tables, colour tables (and volume/shader properties, terminologies, text) in napari.

Imported by ``layers._load_converters``.

These objects are not layers.  Reading one puts it in :data:`STORE` (the
Transforms / Tables docks list what is there) and returns napari's "no layer"
sentinel.  This module also applies transforms to layers:

* linear: the layer's ``affine`` becomes ``T_to_parent @ affine`` (napari world
  order); nothing is resampled;
* non-linear: images and label maps are resampled with SimpleITK (through the
  from-parent transform), points, shapes and surface vertices are moved
  (through the to-parent transform).

The layer's previous data and affine stay in ``layer.metadata["medio_transform"]``
so :func:`revert_transform` restores them until :func:`harden_transform` drops them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.colortable import ColorTable
from ..core.errors import MedioError
from ..core.geometry import geometry_from_napari_affine, lps_transform_to_napari
from ..core.kinds import DataKind
from ..core.shader import ShaderProperty
from ..core.table import Table
from ..core.terminology import Terminology
from ..core.text import Text
from ..core.transform import Transform, resample_volume
from ..formats.volume_property import VolumeProperty
from .layers import (
    data_to_world_matrix,
    direct_colormap,
    register_to_layer,
    volume_from_layer,
    volume_to_layer_data,
)

__all__ = ["STORE", "apply_transform", "revert_transform", "harden_transform", "transform_from_layer",
           "apply_color_table", "table_as_features", "world_matrix_napari"]


class _Store:
    """Transforms, tables and colour tables loaded in this session, with change callbacks."""

    def __init__(self) -> None:
        self.transforms: list[Transform] = []
        self.tables: list[Table] = []
        self.colortables: list[ColorTable] = []
        self.volume_properties: list[VolumeProperty] = []
        self.shader_properties: list[ShaderProperty] = []
        self.terminologies: list[Terminology] = []
        self.texts: list[Text] = []
        #: transform name -> names of the layers it was applied to
        self.applied: dict[str, list[str]] = {}
        self._callbacks: list[Callable[[], None]] = []

    def add(self, obj: Any) -> None:
        target = {Transform: self.transforms, Table: self.tables, ColorTable: self.colortables,
                  VolumeProperty: self.volume_properties, ShaderProperty: self.shader_properties,
                  Terminology: self.terminologies, Text: self.texts}[type(obj)]
        names = {o.name for o in target}
        base, i = obj.name or type(obj).__name__.lower(), 1
        while obj.name in names or not obj.name:
            i += 1
            obj.name = f"{base} ({i})"
        target.append(obj)
        self.changed()

    def connect(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def changed(self) -> None:
        for cb in list(self._callbacks):
            try:
                cb()
            except RuntimeError:  # a deleted Qt widget
                self.disconnect(cb)

    def clear(self) -> None:
        self.transforms.clear()
        self.tables.clear()
        self.colortables.clear()
        self.volume_properties.clear()
        self.shader_properties.clear()
        self.terminologies.clear()
        self.texts.clear()
        self.applied.clear()
        self.changed()


STORE = _Store()


def _stored(obj: Any, **_: Any) -> list:
    STORE.add(obj)
    return [(None,)]


register_to_layer(Transform, _stored)
register_to_layer(Table, _stored)
register_to_layer(ColorTable, _stored)
register_to_layer(VolumeProperty, _stored)
register_to_layer(ShaderProperty, _stored)
register_to_layer(Terminology, _stored)
register_to_layer(Text, _stored)


def apply_volume_property(layer: Any, vp: VolumeProperty) -> None:
    """Show an Image layer as the volume property says (as close as napari allows); keep the file's values."""
    from napari.utils.colormaps import Colormap

    settings = vp.napari_settings()
    cm = settings["colormap"]
    layer.colormap = Colormap(colors=cm["colors"], controls=cm["controls"], name=cm["name"])
    layer.contrast_limits = settings["contrast_limits"]
    layer.rendering = settings["rendering"]
    layer.interpolation3d = settings["interpolation3d"]
    layer.metadata.setdefault("medio", {})["volume_property"] = vp


# -- matrices ------------------------------------------------------------------------------------
def world_matrix_napari(matrix_lps: np.ndarray, ndim: int = 3) -> np.ndarray:
    """An LPS 4x4 world transform as a napari (ndim+1)^2 world matrix on the trailing (S, P, L) axes."""
    try:
        return lps_transform_to_napari(matrix_lps, ndim)
    except ValueError as exc:
        raise MedioError(None, str(exc)) from None


def _layer_ndim(layer: Any) -> int:
    return int(layer.ndim)


def _outer_affine(layer: Any) -> np.ndarray:
    return np.array(layer.affine.affine_matrix, dtype=float)


def transform_from_layer(layer: Any, name: str | None = None) -> Transform:
    """The linear transform a layer's ``affine`` holds (to parent, LPS), e.g. to save it as .tfm/.h5/.mat."""
    a = _outer_affine(layer)
    nd = a.shape[0] - 1
    block = np.eye(4)
    block[:3, :3] = a[nd - 3:nd, nd - 3:nd]
    block[:3, 3] = a[nd - 3:nd, nd]
    lps = geometry_from_napari_affine(block).index_to_lps_matrix()
    return Transform.from_matrix_to_parent(lps, name=name or f"{layer.name} transform")


# -- applying -----------------------------------------------------------------------------------
def _remember(layer: Any, transform: Transform) -> None:
    md = layer.metadata
    if "medio_transform" not in md:
        md["medio_transform"] = {"affine": _outer_affine(layer), "data": layer.data, "applied": []}
    md["medio_transform"]["applied"].append(transform.name)
    STORE.applied.setdefault(transform.name, [])
    if layer.name not in STORE.applied[transform.name]:
        STORE.applied[transform.name].append(layer.name)


def _move_points(points: np.ndarray, attributes: dict, transform: Transform) -> np.ndarray:
    """Layer data points -> world LPS -> to-parent -> back into layer data coordinates."""
    pts = np.asarray(points, dtype=float)
    nd = pts.shape[1]
    m = data_to_world_matrix(attributes, nd)
    world = pts @ m[:nd, :nd].T + m[:nd, nd]
    lps = world[:, -3:][:, ::-1]
    moved = transform.transform_points_to_parent(lps)
    world = world.copy()
    world[:, -3:] = moved[:, ::-1]
    inv = np.linalg.inv(m)
    return world @ inv[:nd, :nd].T + inv[:nd, nd]


def _attributes(layer: Any) -> dict:
    return layer._get_state()


def apply_transform(layer: Any, transform: Transform) -> None:
    """Put ``layer`` under ``transform`` (its child frame -> the world), keeping the original recoverable."""
    if transform.is_linear:
        _remember(layer, transform)
        t = world_matrix_napari(transform.matrix_to_parent_lps, _layer_ndim(layer))
        layer.affine = t @ _outer_affine(layer)
        STORE.changed()
        return
    kind = type(layer).__name__.lower()
    if kind in ("image", "labels"):
        attrs = _attributes(layer)
        vol = volume_from_layer(layer.data, attrs,
                                kind=DataKind.LABELMAP if kind == "labels" else DataKind.VOLUME)
        moved = resample_volume(vol, transform)
        [(data, kwargs, _)] = volume_to_layer_data(moved)
        _remember(layer, transform)
        layer.data = data
    elif kind == "points":
        _remember(layer, transform)
        if len(layer.data):
            layer.data = _move_points(layer.data, _attributes(layer), transform)
    elif kind == "shapes":
        _remember(layer, transform)
        attrs = _attributes(layer)
        new = [_move_points(d, attrs, transform) for d in layer.data]
        types = list(layer.shape_type)
        layer.data = list(zip(new, types)) if new else []
    elif kind == "surface":
        _remember(layer, transform)
        data = list(layer.data)
        data[0] = _move_points(data[0], _attributes(layer), transform)
        layer.data = tuple(data)
    else:
        raise MedioError(layer.name, f"cannot apply a non-linear transform to a {kind} layer")
    STORE.changed()


def revert_transform(layer: Any) -> bool:
    """Undo every transform applied since the last harden; returns False when there was none."""
    saved = layer.metadata.pop("medio_transform", None)
    if saved is None:
        return False
    layer.data = saved["data"]
    layer.affine = saved["affine"]
    for names in STORE.applied.values():
        if layer.name in names:
            names.remove(layer.name)
    STORE.changed()
    return True


def harden_transform(layer: Any) -> None:
    """Make the transformed layer the original (forget the recoverable copy)."""
    layer.metadata.pop("medio_transform", None)
    STORE.changed()


# -- tables and colour tables ------------------------------------------------------------------
def apply_color_table(layer: Any, table: ColorTable) -> None:
    """Names and colours of ``table`` on a Labels layer (kept for saving as the layer's colour table)."""
    labels = table.as_label_table()
    layer.colormap = direct_colormap(labels)
    index = sorted(labels)
    layer.features = {"index": index, "name": [labels[i]["name"] for i in index]}
    medio = layer.metadata.setdefault("medio", {})
    medio.setdefault("metadata", {})["color_table"] = labels


def table_as_features(layer: Any, table: Table) -> None:
    """Attach a table's typed columns as a layer's features (row count must match the layer's)."""
    import pandas as pd

    df = pd.DataFrame(table.to_dict(typed=True))
    n = len(layer.data) if type(layer).__name__.lower() in ("points", "shapes") else None
    if n is not None and n != len(df):
        raise MedioError(table.source, f"the table has {len(df)} rows but layer {layer.name!r} has {n} items")
    layer.features = df


def write_labels_colortable(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 writer: a Labels layer's label names and colours as a Slicer ``.ctbl``."""
    from ..core import registry
    from .layers import from_layer

    return registry.write(from_layer("labels", data, attributes), path)
