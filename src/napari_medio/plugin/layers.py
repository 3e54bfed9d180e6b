"""Core data objects <-> napari layer data, in the one LPS world (docs/architecture.md, section 1).

This adapter is the only place that knows how a data object becomes a layer
and back.  Format families add converters with :func:`register_to_layer` (data
object type -> list of LayerData tuples) and :func:`register_from_layer` (layer
type -> data object).  Everything napari cannot show is kept in
``layer.metadata["medio"]`` so that saving loses nothing that reading gave.

Volumes are shown as :func:`~napari_medio.core.geometry.napari_placement`
decides: the array transposed and flipped (views, never copies) to the nearest
of (S, P, L), with ``scale``, ``translate`` and only a residual oblique rotation
in ``affine``.  Writing undoes exactly that, so geometry round-trips.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.auto_window import auto_window
from ..core.errors import MedioError
from ..core.geometry import (
    WORLD_AXIS_LABELS,
    geometry_from_napari_affine,
    napari_placement,
    reorient,
)
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, DisplayWindow, Volume

LayerData = tuple  # (data, kwargs, layer_type)

__all__ = [
    "LayerData",
    "color_table_from_attributes",
    "contrast_limits_for",
    "data_to_world_matrix",
    "direct_colormap",
    "display_for",
    "from_layer",
    "labels_from_layer",
    "register_from_layer",
    "register_layer_decorator",
    "register_to_layer",
    "to_layer_data",
    "volume_from_layer",
    "volume_to_layer_data",
]

_TO_LAYER: list[tuple[type, Callable[..., list]]] = []
_FROM_LAYER: dict[str, list[Callable[[Any, dict], Any]]] = {}
_DECORATORS: list[Callable[[Any, list], list]] = []


def register_to_layer(cls: type, converter: Callable[..., list]) -> None:
    """Show objects of type ``cls`` with ``converter(obj, **options) -> [LayerData]``."""
    _TO_LAYER.insert(0, (cls, converter))


def register_layer_decorator(decorator: Callable[[Any, list], list]) -> None:
    """Post-process every object's LayerData: ``decorator(obj, layer_data) -> layer_data``.

    Used for what applies across object types (a scene's display node, folders
    and parent transforms), so that no converter has to wrap another.
    """
    if decorator not in _DECORATORS:
        _DECORATORS.append(decorator)


def register_from_layer(layer_type: str, builder: Callable[[Any, dict], Any], first: bool = True) -> None:
    """Build data objects from layers of ``layer_type``; ``builder(data, attributes)`` returns None to pass."""
    builders = _FROM_LAYER.setdefault(layer_type, [])
    if first:
        builders.insert(0, builder)
    else:
        builders.append(builder)


def _load_converters() -> None:
    """Import every module that registers converters (format families add their own)."""
    from ..core import registry

    registry.load_providers()
    import importlib
    import pkgutil

    from .. import plugin as plugin_pkg

    for info in pkgutil.iter_modules(plugin_pkg.__path__, plugin_pkg.__name__ + "."):
        if info.name.rsplit(".", 1)[-1].startswith("convert_"):
            importlib.import_module(info.name)


def _prepare_current_viewer() -> None:
    """Give the current napari viewer (if any) napari-medio's views, letters and readouts (once)."""
    import sys

    if "napari" not in sys.modules:  # reading without napari: nothing to prepare
        return
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        from .views import install

        install(viewer)


def to_layer_data(obj: Any, **options: Any) -> list[LayerData]:
    """LayerData tuples showing one data object (and the current viewer prepared for them)."""
    _load_converters()
    _prepare_current_viewer()
    for cls, converter in _TO_LAYER:
        if isinstance(obj, cls):
            out = converter(obj, **options)
            for decorator in _DECORATORS:
                out = decorator(obj, out)
            return out
    raise MedioError(getattr(obj, "source", None), f"napari-medio cannot show a {type(obj).__name__}")


def from_layer(layer_type: str, data: Any, attributes: dict) -> Any:
    """The data object a layer holds (inverse of :func:`to_layer_data`)."""
    _load_converters()
    for builder in _FROM_LAYER.get(layer_type, []):
        obj = builder(data, attributes)
        if obj is not None:
            return obj
    raise MedioError(attributes.get("name"), f"napari-medio cannot save a {layer_type} layer")


# -- contrast ----------------------------------------------------------------------------------
def contrast_limits_for(volume: Volume) -> list[float] | None:
    """Contrast limits: the file's window where it has one, else Slicer's automatic window of a sample."""
    display = display_for(volume)
    return list(display["contrast_limits"]) if display else None


def display_for(volume: Volume) -> dict[str, Any]:
    """napari Image display keywords (contrast limits and their slider range) for a scalar volume.

    The window the file states (DICOM window, NIfTI cal_min/cal_max, ...) where it
    has one; else an OME-Zarr's stored value range; else 3D Slicer's automatic
    window (0.1 .. 99.9 percentiles, :func:`napari_medio.core.auto_window.auto_window`)
    from a sample of whole slices, the slider spanning the sampled values.
    """
    value_range = (volume.metadata.get("ome_zarr") or {}).get("value_range")  # a pyramid's coarsest level
    if volume.window is not None:
        return {"contrast_limits": list(volume.window.limits)}
    if value_range and len(value_range) == 2 and float(value_range[1]) > float(value_range[0]):
        return {"contrast_limits": [float(value_range[0]), float(value_range[1])]}
    if int(np.prod(volume.array.shape, dtype=np.int64)) == 0:
        return {}
    found = auto_window(volume)
    if found is None:
        return {}
    window, (low, high) = found
    limits = list(window.limits)
    return {"contrast_limits": limits, "contrast_limits_range": [min(low, limits[0]), max(high, limits[1])]}


# -- volumes -----------------------------------------------------------------------------------
def _view_of(volume: Volume, order: tuple[int, ...], flips: tuple[bool, ...]) -> Any:
    n_extra = len(volume.extra_axes)
    ndim = len(volume.shape)
    perm = list(range(n_extra)) + [n_extra + o for o in order] + list(range(n_extra + len(order), ndim))
    arr = volume.array
    if perm != list(range(ndim)):
        arr = arr.transpose(perm)
    if any(flips):
        index = [slice(None)] * ndim
        for r, f in enumerate(flips):
            if f:
                index[n_extra + r] = slice(None, None, -1)
        arr = arr[tuple(index)]
    return arr


def volume_to_layer_data(
    volume: Volume,
    *,
    resample_oblique: bool = False,
    labelmap: bool | None = None,
    multiscale_3d_limit: int | None = None,
    **_: Any,
) -> list[LayerData]:
    """An Image (or Labels) layer placed in the LPS world: exact for axis-aligned scans.

    A truly oblique volume keeps its rotation in the layer affine (exact in 3D and
    for saving) or, with ``resample_oblique=True``, is resampled onto the patient
    axes (linear for images, nearest for label maps).

    Multiscale: the levels stored in the file (OME-Zarr), or a lazy cached pyramid
    (core/pyramid.py) for a volume with more than ``multiscale_3d_limit`` spatial
    voxels, make a multiscale layer (3D renders the coarsest level; 2D stays at
    full resolution).
    """
    if 0 in tuple(volume.spatial_shape):
        # e.g. an IGSIO sequence holding tracking data only: napari cannot show an empty image
        frames = int(np.prod(volume.array.shape[:len(volume.extra_axes)], dtype=np.int64))
        raise MedioError(getattr(volume, "source", None) or volume.name,
                         f"holds no image voxels (spatial size {' x '.join(map(str, volume.spatial_shape))}, "
                         f"{frames} frame(s)): nothing to show; napari_medio.read() gives its metadata "
                         "(e.g. per-frame tracking transforms)")
    if labelmap is not None:
        volume = volume.with_array(volume.array, kind=DataKind.LABELMAP if labelmap else DataKind.VOLUME)
    original_geometry = volume.geometry
    if resample_oblique and not volume.geometry.is_axis_aligned():
        from ..core.resample import resample_to_patient_axes

        volume = resample_to_patient_axes(volume)
    placement = napari_placement(volume.geometry, volume.spatial_shape)
    data = _view_of(volume, placement.order, placement.flips)
    n_extra = len(volume.extra_axes)
    labels = [a.name for a in volume.extra_axes]
    units: list[str] = [a.unit or "pixel" for a in volume.extra_axes]
    is_labels = volume.kind == DataKind.LABELMAP
    rgb = volume.is_rgb and not is_labels
    channel_first = False
    if volume.components is not None and not rgb:
        data = np.moveaxis(data, -1, 0)  # components become a leading axis (a slider)
        labels = [volume.components.name or "component"] + labels
        units = ["pixel"] + units
        n_extra += 1
        channel_first = True
    n_sp = volume.geometry.ndim
    # Multiscale: the stored levels (OME-Zarr) or a lazy pyramid of the view.
    from ..core.pyramid import multiscale_levels

    def _level_view(level: Any) -> Any:
        v = _view_of(volume.with_array(level), placement.order, placement.flips)
        return np.moveaxis(v, -1, 0) if channel_first else v

    levels = None if rgb else multiscale_levels(
        volume, data, tuple(range(n_extra, n_extra + n_sp)), _level_view, multiscale_3d_limit)
    is_multiscale = levels is not None
    if is_multiscale:
        data = levels
    scale = np.r_[np.ones(n_extra), placement.scale]
    translate = np.r_[np.zeros(n_extra), placement.translate]
    affine = np.eye(n_extra + n_sp + 1)
    affine[n_extra:n_extra + n_sp, n_extra:n_extra + n_sp] = placement.rotation
    meta = _volume_meta(volume, original_geometry, placement, channel_first)
    kwargs: dict[str, Any] = {
        "name": volume.name or "volume",
        "scale": scale.tolist(),
        "translate": translate.tolist(),
        "axis_labels": tuple(labels) + WORLD_AXIS_LABELS[n_sp],
        "units": tuple(units) + ("mm",) * n_sp,
        "metadata": {"medio": meta},
    }
    if placement.is_oblique:
        kwargs["affine"] = affine
    if is_multiscale:
        kwargs["multiscale"] = True
    if is_labels:
        return [_labels_layer(data, kwargs, volume, is_multiscale)]
    return [_image_layer(data, kwargs, volume, rgb)]


def _volume_meta(volume: Volume, original_geometry: Any, placement: Any, channel_first: bool) -> dict:
    """What ``layer.metadata["medio"]`` keeps of a volume so that saving loses nothing."""
    return {
        "kind": volume.kind,
        "source": volume.source,
        "geometry": original_geometry.to_dict(),
        "placement": {"order": list(placement.order), "flips": list(placement.flips),
                      "channel_first": channel_first, "resampled": volume.geometry is not original_geometry},
        "extra_axes": [a.to_dict() for a in volume.extra_axes],
        "components": volume.components.to_dict() if volume.components is not None else None,
        "metadata": volume.metadata,
        "name": volume.name,
        "window": volume.window.to_dict() if volume.window is not None else None,
    }


def _labels_layer(data: Any, kwargs: dict, volume: Volume, is_multiscale: bool) -> LayerData:
    """A Labels layer: integer voxels that can be painted, names and colours from the colour table."""
    if not is_multiscale and not np.issubdtype(np.dtype(data.dtype), np.integer):
        data = np.asarray(data).astype(np.int32)
    elif isinstance(data, np.ndarray) and not data.flags.writeable:
        data = data.copy()  # Labels are painted in place: they need writable voxels
    color_table = volume.metadata.get("color_table")
    if color_table:
        kwargs["colormap"] = direct_colormap(color_table)
        kwargs["features"] = _features(color_table)
    return (data, kwargs, "labels")  # napari draws labels with nearest interpolation


def _image_layer(data: Any, kwargs: dict, volume: Volume, rgb: bool) -> LayerData:
    """An Image layer: linear interpolation in 2D (as Slicer), the file's or Slicer's automatic window."""
    kwargs["rgb"] = rgb
    kwargs["interpolation2d"] = "linear"
    if not rgb:
        if isinstance(volume.metadata.get("colormap"), str):
            kwargs["colormap"] = volume.metadata["colormap"]  # e.g. a scene's colour node
        display = display_for(volume)
        if "contrast_limits" in display:
            kwargs["contrast_limits"] = display["contrast_limits"]
        if "contrast_limits_range" in display:  # napari takes it after the layer exists (plugin/views.py)
            kwargs["metadata"]["medio"]["value_range"] = display["contrast_limits_range"]
    return (data, kwargs, "image")


def direct_colormap(color_table: dict) -> dict:
    """napari DirectLabelColormap spec from ``{label: {"name", "color"}}``."""
    colors: dict[Any, Any] = {0: (0.0, 0.0, 0.0, 0.0), None: (0.5, 0.5, 0.5, 1.0)}
    for label, entry in color_table.items():
        c = list(entry.get("color", (0.5, 0.5, 0.5, 1.0)))
        if len(c) == 3:
            c.append(1.0)
        if int(label) != 0:
            colors[int(label)] = tuple(float(x) for x in c)
    return _make_direct(colors)


def _make_direct(colors: dict) -> Any:
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict=colors)


def _features(color_table: dict) -> dict:
    labels = sorted(int(k) for k in color_table)
    if 0 not in labels:
        labels = [0] + labels
    names = [color_table.get(v, color_table.get(str(v), {})).get("name", "background" if v == 0 else str(v))
             for v in labels]
    return {"index": labels, "name": names}


def data_to_world_matrix(attributes: dict, ndim: int) -> np.ndarray:
    """The full (ndim+1)^2 data-to-world matrix from a layer's attributes (napari's composition)."""
    from napari.utils.transforms import Affine, CompositeAffine

    def get(key: str, default: Any) -> Any:
        v = attributes.get(key)
        return default if v is None else v

    composite = CompositeAffine(
        scale=get("scale", np.ones(ndim)),
        translate=get("translate", np.zeros(ndim)),
        rotate=get("rotate", np.eye(ndim)),
        shear=get("shear", np.zeros(ndim * (ndim - 1) // 2)),
        ndim=ndim,
    )
    affine = attributes.get("affine")
    if affine is None:
        outer = np.eye(ndim + 1)
    elif isinstance(affine, Affine):
        outer = affine.affine_matrix
    else:
        outer = np.asarray(affine, dtype=float)
        if outer.shape == (ndim, ndim):
            full = np.eye(ndim + 1)
            full[:ndim, :ndim] = outer
            outer = full
    return outer @ composite.affine_matrix


def volume_from_layer(data: Any, attributes: dict, kind: str | None = None) -> Volume:
    """The Volume an Image/Labels layer shows, with LPS geometry from its world transform.

    For a layer napari-medio made, the view is undone (same axis order and voxel
    type as the file); any layer works, its whole transform (scale, translate,
    rotate, shear, affine) becoming the geometry.
    """
    if isinstance(data, (list, tuple)):  # multiscale: save full resolution
        data = data[0]
    medio = dict((attributes.get("metadata") or {}).get("medio") or {})
    rgb = bool(attributes.get("rgb", False))
    ndim = len(data.shape) - (1 if rgb else 0)
    if ndim < 2:
        raise MedioError(attributes.get("name"), "a volume needs at least 2 spatial dimensions")
    geometry_md = medio.get("geometry")
    n_sp = len(geometry_md["spacing"]) if geometry_md else min(ndim, 3)
    n_lead = ndim - n_sp
    matrix = data_to_world_matrix(attributes, ndim)
    block = np.eye(n_sp + 1)
    block[:n_sp, :n_sp] = matrix[n_lead:ndim, n_lead:ndim]
    block[:n_sp, n_sp] = matrix[n_lead:ndim, ndim]
    if n_lead and (np.abs(matrix[n_lead:ndim, :n_lead]).max() > 1e-9
                   or np.abs(matrix[:n_lead, n_lead:ndim]).max() > 1e-9):
        raise MedioError(attributes.get("name"), "the layer transform mixes non-spatial and spatial axes")
    view_geometry = geometry_from_napari_affine(block)
    placement = medio.get("placement") or {}
    components_md = medio.get("components")
    arr = data
    components: AxisInfo | None = None
    if rgb:
        components = AxisInfo(name="component", kind="RGB-color" if data.shape[-1] == 3 else "RGBA-color")
    elif placement.get("channel_first") and components_md:
        arr = np.moveaxis(arr, 0, -1)
        components = AxisInfo(**{k: components_md[k] for k in ("name", "unit", "values", "kind")})
        n_lead -= 1
    extra_md = medio.get("extra_axes") or []
    if len(extra_md) == n_lead:
        extra = [AxisInfo(**{k: a[k] for k in ("name", "unit", "values", "kind")}) for a in extra_md]
    else:
        names = list(attributes.get("axis_labels") or [])[:n_lead]
        extra = [AxisInfo(name=(names[i] if i < len(names) else f"axis {i}"), kind="list") for i in range(n_lead)]
    geometry = view_geometry
    order = placement.get("order")
    flips = placement.get("flips")
    if order is not None and len(order) == n_sp and not placement.get("resampled"):
        inv = tuple(int(i) for i in np.argsort(order))
        inv_flips = tuple(bool(flips[inv[c]]) for c in range(n_sp))
        view_shape = tuple(arr.shape[n_lead:n_lead + n_sp])
        # Undo the flips first (in view axes), then the transpose.
        index = [slice(None)] * len(arr.shape)
        for r, f in enumerate(flips):
            if f:
                index[n_lead + r] = slice(None, None, -1)
        arr_unflipped = arr[tuple(index)] if any(flips) else arr
        perm = list(range(n_lead)) + [n_lead + i for i in inv] + list(range(n_lead + n_sp, len(arr.shape)))
        arr = arr_unflipped.transpose(perm) if perm != list(range(len(arr.shape))) else arr_unflipped
        geometry = reorient(view_geometry, view_shape, inv, inv_flips)
    name = attributes.get("name") or medio.get("name") or "volume"
    return Volume(
        array=arr,
        geometry=geometry,
        kind=kind or medio.get("kind") or DataKind.VOLUME,
        name=name,
        extra_axes=extra,
        components=components,
        metadata=dict(medio.get("metadata") or {}),
        source=medio.get("source"),
        window=DisplayWindow.from_dict(medio.get("window")),
    )


def _image_from_layer(data: Any, attributes: dict) -> Volume:
    return volume_from_layer(data, attributes, kind=DataKind.VOLUME)


def labels_from_layer(data: Any, attributes: dict) -> Volume:
    """A label-map Volume from a Labels layer's data and attributes, with the layer's colour table."""
    vol = volume_from_layer(data, attributes, kind=DataKind.LABELMAP)
    table = color_table_from_attributes(attributes)
    if table:
        vol.metadata["color_table"] = table
    return vol


def color_table_from_attributes(attributes: dict) -> dict | None:
    """Label names (from features ``name``) and colours (from the colormap) of a Labels layer."""
    features = attributes.get("features")
    names: dict[int, str] = {}
    try:
        if features is not None and "name" in features:
            idx = features["index"] if "index" in features else range(len(features["name"]))
            for i, n in zip(list(idx), list(features["name"])):
                names[int(i)] = str(n)
    except Exception:
        names = {}
    colors: dict[int, list[float]] = {}
    cmap = attributes.get("colormap")
    color_dict = getattr(cmap, "color_dict", None)
    if color_dict:
        for k, v in color_dict.items():
            if k is None or int(k) == 0:
                continue
            colors[int(k)] = [float(x) for x in np.asarray(v).reshape(-1)[:4]]
    # The Segments dock shows visibility/opacity as colormap alpha; the true colours are kept beside.
    shown = ((attributes.get("metadata") or {}).get("medio") or {}).get("segment_display") or {}
    for k, d in shown.items():
        if int(k) in colors and d.get("color"):
            colors[int(k)] = [float(x) for x in d["color"]]
    if not names and not colors:
        old = ((attributes.get("metadata") or {}).get("medio") or {}).get("metadata", {}).get("color_table")
        return old
    out = {}
    for label in sorted(set(names) | set(colors)):
        if label == 0:
            continue
        out[label] = {"name": names.get(label, f"label {label}"), "color": colors.get(label, [0.5, 0.5, 0.5, 1.0])}
    return out


register_to_layer(Volume, volume_to_layer_data)
register_from_layer("image", _image_from_layer, first=False)
register_from_layer("labels", labels_from_layer, first=False)
