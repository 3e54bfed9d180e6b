"""Scene objects <-> napari layers (imported by ``layers._load_converters``).

Objects read from a Slicer scene carry ``metadata["scene"]`` (node, folder,
parent transforms, display).  The converter here wraps whatever converter shows
the object and then

* keeps the scene record in ``layer.metadata["medio"]["scene"]`` (so saving the
  viewer as a scene restores the same hierarchy, folders and display nodes),
* applies the display node: ``visible``, ``opacity``, a model's colour,
* puts a parent transform the object could not take itself (``pending_matrix``)
  into the layer ``affine``.

:func:`object_from_layer` is the inverse used by the Save scene / Export widgets.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..core.geometry import lps_transform_to_napari
from ..core.kinds import DataKind
from .layers import from_layer, register_layer_decorator, to_layer_data

__all__ = ["layer_world_matrix_napari", "object_from_layer", "scene_record", "scene_to_layer_data",
           "viewer_transforms"]


def layer_world_matrix_napari(matrix_lps: Any) -> np.ndarray:
    """An LPS 4x4 as the napari (S, P, L) 4x4 (the geometry module's own conversion)."""
    return lps_transform_to_napari(np.asarray(matrix_lps, dtype=float), 3)


def scene_record(obj: Any) -> dict | None:
    md = getattr(obj, "metadata", None)
    if isinstance(md, dict) and isinstance(md.get("scene"), dict):
        return md["scene"]
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def scene_to_layer_data(obj: Any, **options: Any) -> list:
    """The object's own LayerData, decorated with what the scene says."""
    return to_layer_data(obj, **options)


def _scene_decorator(obj: Any, out: list) -> list:
    scene = scene_record(obj)
    if not scene:
        return out
    # Objects that are not layers (transforms, tables, colour tables: kept in the session store by
    # their converter) give no layer at all, so that a scene's list of layers has no null sentinels.
    return [_decorate(ld, scene) for ld in out if not (len(ld) < 2 or ld[0] is None)]


def _decorate(ld: tuple, scene: dict) -> tuple:
    if len(ld) < 3 or ld[0] is None:
        return ld
    data, kwargs, layer_type = ld[0], dict(ld[1]), ld[2]
    meta = dict(kwargs.get("metadata") or {})
    medio = dict(meta.get("medio") or {})
    medio["scene"] = _jsonable(copy.deepcopy(scene))
    meta["medio"] = medio
    kwargs["metadata"] = meta
    display = scene.get("display") or {}
    if "visible" in display:
        kwargs["visible"] = bool(display["visible"])
    if "opacity" in display:
        kwargs["opacity"] = float(np.clip(display["opacity"], 0.0, 1.0))
    own_colors = "vertex_colors" in kwargs and not medio.get("material_color")  # the scene's colour wins a material's
    if layer_type == "surface" and "color" in display and not own_colors and len(data) == 2:
        n = len(data[0])
        kwargs["vertex_colors"] = np.tile(np.r_[np.asarray(display["color"], float)[:3], 1.0], (n, 1))
    pending = scene.get("pending_matrix")
    if pending is not None:
        affine = kwargs.get("affine")
        if affine is not None:
            base = np.asarray(affine, dtype=float)
            ndim = base.shape[0] - 1
        else:
            ndim = 3
            if layer_type in ("image", "labels"):
                ndim = len(np.shape(data)) - (1 if kwargs.get("rgb") else 0)
            base = np.eye(ndim + 1)
        if ndim >= 3:
            kwargs["affine"] = lps_transform_to_napari(np.asarray(pending, dtype=float), ndim) @ base
    return (data, kwargs, layer_type)


register_layer_decorator(_scene_decorator)


# -- layers -> objects ---------------------------------------------------------------------------
def viewer_transforms(layer: Any) -> list | None:
    """The linear transforms applied to ``layer`` in the viewer (``apply_transform``), first applied first.

    None when none was applied, or when one of them is non-linear (its data was
    resampled: it is part of the layer now) or no longer in the session store.
    """
    saved = (getattr(layer, "metadata", None) or {}).get("medio_transform")
    if not saved or not saved.get("applied"):
        return None
    from .convert_transform import STORE

    by_name = {t.name: t for t in STORE.transforms}
    out = []
    for name in saved["applied"]:
        tx = by_name.get(name)
        if tx is None or not tx.is_linear:
            return None
        out.append(tx)
    return out


def _with_viewer_transforms(scene: dict, transforms: list) -> dict:
    """The scene record with the viewer's transforms added as the outermost parents (nearest first)."""
    names = [t.name for t in transforms]
    chain = [dict(c) for c in scene.get("transforms") or []]
    if chain:  # the scene's own top transform gets a new parent: keep these nodes apart from other layers'
        key = "@viewer:" + "+".join(names)
        for c in chain:
            c["id"] = f"{c.get('id')}{key}"
            if c.get("parent"):
                c["parent"] = f"{c['parent']}{key}"
    for i, tx in enumerate(transforms):
        chain.append({"id": "viewer:" + "+".join(names[i:]), "name": tx.name, "tag": "LinearTransform",
                      "linear": True, "matrix_to_parent_lps": tx.matrix_to_parent_lps.tolist(), "file": None,
                      "parent": None})
    scene = dict(scene)
    scene["transforms"] = chain
    scene["applied"] = True
    world = np.eye(4)
    for c in chain:
        world = np.asarray(c["matrix_to_parent_lps"], dtype=float) @ world if c.get("linear") else world
    scene["parent_transform"] = world.tolist()
    scene["parent_transform_linear"] = all(c.get("linear") for c in chain)
    return scene


def object_from_layer(layer: Any, *, split_viewer_transforms: bool = False) -> Any:
    """The data object a layer holds, local to its scene parent transform, with an up-to-date scene record.

    The record's display reflects the layer now (visibility, opacity, contrast
    limits as window/level, name); a pending parent matrix is taken out of the
    layer affine first, so the object is in its parent's frame like the file.

    ``split_viewer_transforms``: linear transforms the user applied in the viewer
    (:func:`~napari_medio.plugin.convert_transform.apply_transform`) are taken out
    of the layer too and added to the record as the outermost parent transforms,
    so that a saved scene has a ``LinearTransform`` node parenting the data (as
    Slicer would).  Without it the object is in the frame the viewer shows.
    """
    data, attributes, layer_type = layer.as_layer_data_tuple()
    attributes = dict(attributes)
    medio = ((attributes.get("metadata") or {}).get("medio") or {})
    scene = copy.deepcopy(medio.get("scene") or {})
    pending = scene.get("pending_matrix")
    applied = viewer_transforms(layer) if split_viewer_transforms else None
    if applied and scene.get("parent_transform_linear", True) and layer.ndim == 3:
        scene = _with_viewer_transforms(scene, applied)
        if pending is not None or layer_type in ("points", "shapes"):
            # Objects that cannot take a matrix (markups) stay local: the whole chain is pending.
            pending = scene["parent_transform"]
            scene["pending_matrix"] = pending
        # else: the object comes out in the world the viewer shows and the chain (scene transforms,
        # then the viewer's) is un-applied when the scene is saved.
    if pending is not None and layer.ndim == 3:
        mn = layer_world_matrix_napari(pending)
        affine = np.asarray(layer.affine.affine_matrix, dtype=float)
        attributes["affine"] = np.linalg.inv(mn) @ affine
    obj = from_layer(layer_type, data, attributes)
    display = dict(scene.get("display") or {})
    display["visible"] = bool(layer.visible)
    display["opacity"] = float(layer.opacity)
    if layer_type == "image" and not getattr(layer, "rgb", False):
        lo, hi = (float(x) for x in layer.contrast_limits)
        if hi > lo:
            display["window"], display["level"] = hi - lo, (hi + lo) / 2.0
    if layer_type == "surface":
        vc = getattr(layer, "vertex_colors", None)
        if vc is not None and len(vc) and np.allclose(vc, vc[0]):
            display["color"] = [float(x) for x in np.asarray(vc[0])[:3]]
    if layer_type in ("points", "shapes") and getattr(obj, "kind", None) == DataKind.MARKUPS:
        pass  # markups keep their display dictionary in the object
    scene["display"] = display
    scene["name"] = layer.name
    try:
        obj.name = layer.name
    except AttributeError:
        pass
    md = getattr(obj, "metadata", None)
    if isinstance(md, dict):
        md["scene"] = scene
    return obj
