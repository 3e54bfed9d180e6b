"""OME-Zarr (OME-NGFF 0.4 on Zarr v2, 0.5 on Zarr v3): lazy multiscale read, pyramid write.

Reading opens a local folder or any fsspec URL (``http(s)://``, ``s3://``, ...)
without reading voxels: every level becomes a dask array over the stored chunks,
so looking at one slice fetches only the chunks that slice touches.  Level 0 is
the Volume's array; the adapter shows all levels as a napari multiscale layer
(:func:`stored_levels`, registered with :mod:`napari_medio.core.pyramid`, reopens them from the source).

Geometry: NGFF holds a per-axis ``scale`` and ``translation`` only.  The writer
puts the volume's spacing and origin there (in the array's z, y, x order, in
millimetres) -- exact for an axis-aligned LPS volume -- and keeps the full LPS
geometry (spacing, origin, direction) in the namespaced group attribute
``"napari_medio"``, which this reader prefers, so an oblique or flipped volume
reads back exactly.  Files from elsewhere get an identity direction (x = L,
y = P, z = S), their scale as spacing and their translation as origin, with
lengths converted to millimetres.

Axes: NGFF orders ``[time,] [channel,] space...``.  Leading non-spatial axes
become the Volume's extra axes, a channel axis its component axis (moved last).
Label maps are written with the ``image-label`` metadata (colours and names
from the colour table) and downsampled by nearest neighbour; images by means.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..core import registry
from ..core.errors import CancelledError, FormatError, MedioError, WriteError
from ..core.geometry import Geometry
from ..core.kinds import VOLUME_KINDS, DataKind
from ..core.pyramid import downsample, level_factors, register_stored_levels
from ..core.volume import AxisInfo, DisplayWindow, Volume

__all__ = ["read_ome_zarr", "write_ome_zarr", "stored_levels", "is_ome_zarr"]

NAMESPACE = "napari_medio"
_TO_MM = {
    "millimeter": 1.0, "micrometer": 1e-3, "nanometer": 1e-6, "centimeter": 10.0, "meter": 1000.0,
    "decimeter": 100.0, "angstrom": 1e-7, "picometer": 1e-9, "inch": 25.4, "foot": 304.8,
}
_TIME_UNITS = {"s": "second", "ms": "millisecond", "us": "microsecond", "min": "minute", "h": "hour"}
_TIME_UNITS_BACK = {v: k for k, v in _TIME_UNITS.items()}


# -- locating and sniffing ------------------------------------------------------------------
def _is_url(path: Any) -> bool:
    return isinstance(path, str) and "://" in path


def _location(path: Any) -> str:
    return path if _is_url(path) else os.path.abspath(os.fspath(path))


def _group_attrs_local(folder: Path) -> dict | None:
    """The OME attributes of a local Zarr group (v2 ``.zattrs`` or v3 ``zarr.json``), or None."""
    try:
        v2 = folder / ".zattrs"
        if v2.is_file():
            return json.loads(v2.read_text())
        v3 = folder / "zarr.json"
        if v3.is_file():
            meta = json.loads(v3.read_text())
            return meta.get("attributes", {}) if meta.get("node_type", "group") == "group" else None
    except (OSError, ValueError):
        return None
    return None


def _ome(attrs: dict) -> dict:
    """The NGFF block: 0.5 nests it under ``"ome"``, 0.4 keeps it at the top."""
    return attrs["ome"] if isinstance(attrs.get("ome"), dict) else attrs


def is_ome_zarr(path: Any) -> bool:
    """True for a local folder that is an OME-Zarr image (a group with ``multiscales``)."""
    p = Path(path)
    if not p.is_dir():
        return False
    attrs = _group_attrs_local(p)
    return bool(attrs) and bool(_ome(attrs).get("multiscales"))


def _sniff(head: bytes, path: Path) -> bool:
    return is_ome_zarr(path)


# -- reading --------------------------------------------------------------------------------
def _open_group(location: str, storage_options: dict | None = None):
    import zarr

    try:
        return zarr.open_group(location, mode="r", storage_options=storage_options or None)
    except TypeError:  # local paths refuse storage_options
        return zarr.open_group(location, mode="r")


def _transforms(entries: list | None, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    scale = np.ones(ndim)
    translation = np.zeros(ndim)
    for t in entries or []:
        if t.get("type") == "scale" and "scale" in t:
            s = np.asarray(t["scale"], dtype=float)
            scale, translation = scale * s, translation * s
        elif t.get("type") == "translation" and "translation" in t:
            translation = translation + np.asarray(t["translation"], dtype=float)
        elif t.get("type") == "identity":
            continue
        elif "path" in t:
            raise FormatError(None, "coordinate transformations stored in files are not supported")
    return scale, translation


def _axes(ms: dict, ndim: int) -> list[dict]:
    axes = ms.get("axes")
    if not axes:  # NGFF 0.1-0.3 had no axes: assume t, c, z, y, x truncated
        names = ["t", "c", "z", "y", "x"][-ndim:]
        return [{"name": n, "type": "space" if n in "zyx" else "time" if n == "t" else "channel"} for n in names]
    out = []
    for a in axes:
        if isinstance(a, str):
            out.append({"name": a, "type": "space" if a in "zyx" else "time" if a == "t" else "channel"})
        else:
            out.append(dict(a))
    return out


class _Opened:
    """The parsed multiscale of one OME-Zarr group: arrays (lazy) and their layout."""

    def __init__(self, location: str, storage_options: dict | None = None, image: int = 0) -> None:
        import dask.array as da

        self.location = location
        self.group = _open_group(location, storage_options)
        attrs = dict(self.group.attrs)
        ome = _ome(attrs)
        multiscales = ome.get("multiscales")
        if not multiscales:
            raise FormatError(location, "not an OME-Zarr image: the group has no 'multiscales' metadata")
        self.ms = multiscales[image]
        self.version = str(ome.get("version") or self.ms.get("version") or "0.4")
        self.medio = attrs.get(NAMESPACE) or {}
        self.label = ome.get("image-label")
        self.omero = ome.get("omero")
        self.paths = [d["path"] for d in self.ms["datasets"]]
        self.arrays = []
        for path in self.paths:
            arr = self.group[path]
            self.arrays.append(da.from_zarr(arr))
        ndim = self.arrays[0].ndim
        self.axes = _axes(self.ms, ndim)
        if len(self.axes) != ndim:
            raise FormatError(location, f"{len(self.axes)} axes for a {ndim}-dimensional array")
        global_scale, global_translation = _transforms(self.ms.get("coordinateTransformations"), ndim)
        self.scales, self.translations = [], []
        for d in self.ms["datasets"]:
            s, t = _transforms(d.get("coordinateTransformations"), ndim)
            self.scales.append(s * global_scale)
            self.translations.append(t * global_scale + global_translation)


def _layout(opened: _Opened) -> tuple[list[int], int | None, list[int]]:
    """Axis numbers: (leading extra axes, channel axis or None, spatial axes)."""
    types = [str(a.get("type", "")).lower() for a in opened.axes]
    spatial = [i for i, t in enumerate(types) if t == "space"]
    if not spatial:  # untyped axes: the last 2-3 are spatial
        spatial = list(range(max(0, len(types) - 3), len(types)))
    if len(spatial) not in (2, 3) or spatial != list(range(spatial[0], spatial[-1] + 1)):
        raise FormatError(opened.location, f"unsupported OME-Zarr axes {[a.get('name') for a in opened.axes]}")
    others = [i for i in range(len(types)) if i not in spatial]
    channel = next((i for i in others if types[i] == "channel"), None)
    extra = [i for i in others if i != channel]
    if any(i > spatial[0] for i in others):
        raise FormatError(opened.location, "non-spatial axes after the spatial axes are not supported")
    if len(extra) > 1 and opened.medio.get("extra_axes") is None:
        pass  # several leading axes are kept as extra axes
    return extra, channel, spatial


def _arrange(arr: Any, extra: list[int], channel: int | None, spatial: list[int]) -> Any:
    """The dask array in Volume layout: extra axes, spatial axes, channel last."""
    order = extra + spatial + ([channel] if channel is not None else [])
    return arr.transpose(order) if order != list(range(arr.ndim)) else arr


def _geometry(opened: _Opened, spatial: list[int]) -> Geometry:
    stored = opened.medio.get("geometry")
    n = len(spatial)
    if stored and len(stored.get("spacing", [])) == n:
        return Geometry.from_dict(stored)
    to_mm = []
    for i in spatial:
        unit = str(opened.axes[i].get("unit", "") or "").lower()
        to_mm.append(_TO_MM.get(unit, 1.0))
    to_mm = np.asarray(to_mm)
    scale = opened.scales[0][spatial] * to_mm
    translation = opened.translations[0][spatial] * to_mm
    spacing = scale[::-1]  # (z, y, x) -> (i, j, k)
    origin = translation[::-1]
    spacing = np.where(spacing > 0, spacing, 1.0)
    return Geometry(spacing, origin, np.eye(n))


def read_ome_zarr(
    path: str | os.PathLike[str],
    *,
    labelmap: bool | None = None,
    name: str | None = None,
    storage_options: dict | None = None,
    image: int = 0,
) -> list[Volume]:
    """Open an OME-Zarr image lazily (local folder or fsspec URL) as one Volume.

    The array is a dask array over level 0; ``metadata["ome_zarr"]`` records the
    source, version and the level paths, from which the adapter shows all levels.
    """
    location = _location(path)
    try:
        opened = _Opened(location, storage_options, image)
    except (MedioError, CancelledError):
        raise
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise FormatError(location, f"invalid OME-Zarr metadata: {exc}") from None
    except FileNotFoundError:
        raise FormatError(location, "no OME-Zarr group found here") from None
    extra_idx, channel, spatial = _layout(opened)
    array = _arrange(opened.arrays[0], extra_idx, channel, spatial)
    geometry = _geometry(opened, spatial)
    medio = opened.medio
    extra: list[AxisInfo] = []
    if medio.get("extra_axes") and len(medio["extra_axes"]) == len(extra_idx):
        extra = [AxisInfo(**{k: a.get(k) for k in ("name", "unit", "values", "kind")}) for a in medio["extra_axes"]]
    else:
        for i in extra_idx:
            ax = opened.axes[i]
            is_time = str(ax.get("type", "")).lower() == "time"
            values = None
            if is_time:
                step = float(opened.scales[0][i]) or 1.0
                values = (float(opened.translations[0][i]) + step * np.arange(array.shape[len(extra)])).tolist()
            extra.append(AxisInfo(name=str(ax.get("name") or ("time" if is_time else "axis")),
                                  unit=_TIME_UNITS_BACK.get(str(ax.get("unit", "")), str(ax.get("unit", "") or "")),
                                  values=values, kind="time" if is_time else "list"))
    components: AxisInfo | None = None
    if channel is not None:
        cm = medio.get("components")
        if cm:
            components = AxisInfo(**{k: cm.get(k) for k in ("name", "unit", "values", "kind")})
        else:
            components = AxisInfo(name=str(opened.axes[channel].get("name") or "c"), kind="vector")
    kind = medio.get("kind")
    if labelmap is not None:
        kind = DataKind.LABELMAP if labelmap else DataKind.VOLUME
    elif kind not in VOLUME_KINDS:
        labels = opened.label is not None and np.issubdtype(array.dtype, np.integer)
        kind = DataKind.LABELMAP if labels else DataKind.VOLUME
    metadata: dict[str, Any] = dict(medio.get("metadata") or {})
    if isinstance(metadata.get("color_table"), dict):  # JSON made the label keys strings
        metadata["color_table"] = {int(k) if str(k).lstrip("-").isdigit() else k: v
                                   for k, v in metadata["color_table"].items()}
    metadata["ome_zarr"] = {"url": location, "version": opened.version, "paths": opened.paths,
                            "levels": len(opened.paths), "image": image,
                            "storage_options": storage_options or None}
    if opened.label is not None:
        table = _color_table_from_label(opened.label)
        if table and "color_table" not in metadata:
            metadata["color_table"] = table
    window = _window(opened)
    if window is None and kind == DataKind.VOLUME:
        value_range = _value_range(opened)
        if value_range is not None:
            metadata["ome_zarr"]["value_range"] = value_range
    vol_name = name or medio.get("name") or opened.ms.get("name") or _base_name(location)
    return [Volume(array=array, geometry=geometry, kind=kind, name=str(vol_name), extra_axes=extra,
                   components=components, metadata=metadata, source=location, window=window)]


def _window(opened: _Opened) -> DisplayWindow | None:
    """The display window: napari-medio's own record, else the first omero channel's window."""
    window = DisplayWindow.from_dict(opened.medio.get("window"))
    if window is None and opened.omero and opened.omero.get("channels"):
        w = opened.omero["channels"][0].get("window") or {}
        try:
            if float(w["end"]) > float(w["start"]):
                window = DisplayWindow.from_range(w["start"], w["end"])
        except (KeyError, TypeError, ValueError):
            pass
    return window


def _value_range(opened: _Opened) -> list[float] | None:
    """The voxel range of the coarsest level when it is small (a cheap contrast range), else None."""
    try:
        smallest = opened.arrays[-1]
        if smallest.size <= (1 << 24):
            lo, hi = (float(x) for x in (smallest.min().compute(), smallest.max().compute()))
            return [lo, hi if hi > lo else lo + 1.0]
    except Exception:
        return None
    return None


def _omero(volume: Volume) -> dict:
    """The omero rendering block holding the volume's display window, or {} without one."""
    if volume.window is None:
        return {}
    lo, hi = volume.window.limits
    channel = {"active": True, "color": "FFFFFF", "label": volume.name or "channel",
               "window": {"start": lo, "end": hi, "min": lo, "max": hi}}
    return {"omero": {"channels": [dict(channel) for _ in range(volume.n_components)],
                      "rdefs": {"model": "greyscale"}}}


def _color_table_from_label(label: dict) -> dict:
    table: dict[int, dict] = {}
    for c in label.get("colors") or []:
        try:
            v = int(c["label-value"])
        except (KeyError, TypeError, ValueError):
            continue
        rgba = [float(x) / 255.0 for x in (c.get("rgba") or [128, 128, 128, 255])]
        table.setdefault(v, {"name": str(v), "color": rgba})["color"] = rgba
    for prop in label.get("properties") or []:
        try:
            v = int(prop["label-value"])
        except (KeyError, TypeError, ValueError):
            continue
        entry = table.setdefault(v, {"name": str(v), "color": [0.5, 0.5, 0.5, 1.0]})
        if "name" in prop:
            entry["name"] = str(prop["name"])
    return table


def _base_name(location: str) -> str:
    name = location.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".ome.zarr", ".zarr"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def stored_levels(volume: Volume) -> list | None:
    """All stored levels of a volume read from OME-Zarr, in the Volume's layout (lazy), or None."""
    md = getattr(volume, "metadata", None)
    info = (md.get("ome_zarr") if isinstance(md, dict) else None) or {}
    if not info.get("url") or info.get("levels", 1) <= 1:
        return None
    opened = _Opened(info["url"], info.get("storage_options"), int(info.get("image", 0)))
    extra_idx, channel, spatial = _layout(opened)
    levels = [_arrange(a, extra_idx, channel, spatial) for a in opened.arrays]
    if tuple(levels[0].shape) != tuple(volume.shape):
        return None  # the volume was changed since it was read
    levels[0] = volume.array
    return levels


register_stored_levels(stored_levels)


# -- writing --------------------------------------------------------------------------------
def _ngff_axes(volume: Volume) -> tuple[list[dict], list[int]]:
    """NGFF axes and the permutation from the Volume layout to the stored (t, c, z, y, x) layout."""
    n_extra = len(volume.extra_axes)
    n_sp = volume.geometry.ndim
    axes: list[dict] = []
    for i, ax in enumerate(volume.extra_axes):
        entry = {"name": "t" if n_extra == 1 else f"t{i}", "type": "time"}
        unit = _TIME_UNITS.get(ax.unit or "")
        if unit:
            entry["unit"] = unit
        axes.append(entry)
    perm = list(range(n_extra))
    if volume.components is not None:
        axes.append({"name": "c", "type": "channel"})
        perm.append(len(volume.shape) - 1)
    for name in ("z", "y", "x")[3 - n_sp:]:
        axes.append({"name": name, "type": "space", "unit": "millimeter"})
    perm += list(range(n_extra, n_extra + n_sp))
    return axes, perm


def _chunks(shape: tuple[int, ...], n_space: int) -> tuple[int, ...]:
    lead = [1] * (len(shape) - n_space)
    sp = shape[len(shape) - n_space:]
    if n_space == 3:
        target = (min(64, sp[0]), min(256, sp[1]), min(256, sp[2]))
    else:
        target = (min(512, sp[0]), min(512, sp[1]))
    return tuple(lead) + tuple(max(1, int(t)) for t in target)


def _level_transforms(geometry: Geometry, n_lead: int, lead_scale: list[float], lead_translation: list[float],
                      cum: np.ndarray, labels: bool) -> list[dict]:
    """NGFF scale + translation of one level (stored z, y, x order, mm)."""
    spacing = geometry.spacing * cum  # (i, j, k)
    shift = np.zeros_like(cum) if labels else (cum - 1.0) / 2.0  # mean levels: block centres
    origin = geometry.origin + geometry.direction @ (geometry.spacing * shift)
    scale = list(lead_scale) + spacing[::-1].tolist()
    translation = list(lead_translation) + np.asarray(origin, dtype=float)[::-1].tolist()
    return [{"type": "scale", "scale": scale}, {"type": "translation", "translation": translation}]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if _jsonable(v) is not None or v is None}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray) and value.size <= 4096:
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, float):
        return None
    return None


def _replace_dir(temp: Path, target: Path) -> None:
    """Move the finished folder ``temp`` to ``target``; an existing target is replaced only now."""
    backup = None
    if target.exists() or target.is_symlink():
        backup = target.with_name(f".medio-old-{uuid.uuid4().hex[:8]}-{target.name}")
        os.replace(target, backup)
    try:
        os.replace(temp, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink(missing_ok=True)


def _writable_dtype(volume: Any, p: Path, ngff_version: str) -> np.dtype:
    """The little-endian voxel type to store, after checking that OME-Zarr can hold the volume."""
    if not isinstance(volume, Volume):
        raise WriteError(p, f"OME-Zarr holds volumes and label maps, not {type(volume).__name__}")
    if ngff_version not in ("0.4", "0.5"):
        raise WriteError(p, f"NGFF version {ngff_version!r} is not supported (0.4 or 0.5)")
    dtype = np.dtype(volume.array.dtype)
    if dtype.byteorder == ">":
        dtype = dtype.newbyteorder("<")
    if dtype.kind not in "biuf":
        raise WriteError(p, f"OME-Zarr cannot store voxel type {dtype}")
    return dtype


def _lead_transforms(volume: Volume) -> tuple[list[float], list[float]]:
    """NGFF scale and translation of the leading (time, channel) axes, from their index values."""
    lead_scale, lead_translation = [], []
    for ax in volume.extra_axes:
        vals = ax.values or []
        step = float(vals[1]) - float(vals[0]) if len(vals) > 1 else 1.0
        lead_scale.append(step if step > 0 else 1.0)
        lead_translation.append(float(vals[0]) if vals and isinstance(vals[0], (int, float)) else 0.0)
    if volume.components is not None:
        lead_scale.append(1.0)
        lead_translation.append(0.0)
    return lead_scale, lead_translation


def _pyramid_shapes(base_shape: tuple[int, ...], n_lead: int,
                    levels: int | None) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Stored shape of every level and the spatial reduction factors from each level to the next."""
    shapes = [base_shape]
    factors_per_level: list[tuple[int, ...]] = []
    while levels is None or len(shapes) < levels:
        f = level_factors(shapes[-1][n_lead:])
        if all(x == 1 for x in f):
            break
        factors_per_level.append(f)
        shapes.append(shapes[-1][:n_lead] + tuple(-(-s // x) for s, x in zip(shapes[-1][n_lead:], f)))
    return shapes, factors_per_level


def _create_arrays(group: Any, shapes: list[tuple[int, ...]], dtype: np.dtype,
                   chunks: tuple[int, ...] | None, n_sp: int, axes: list[dict], zarr_format: int) -> list:
    """One empty Zarr array per level, named "0", "1", ..."""
    arrays = []
    for li, shape in enumerate(shapes):
        kwargs: dict[str, Any] = {"shape": shape, "dtype": dtype,
                                  "chunks": chunks if (chunks and li == 0) else _chunks(shape, n_sp),
                                  "fill_value": 0}
        if zarr_format == 2:
            kwargs["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
        else:
            kwargs["dimension_names"] = [a["name"] for a in axes]
        arrays.append(group.create_array(str(li), **kwargs))
    return arrays


def _slab_key(ndim: int, axis: int, start: int, stop: int) -> tuple[slice, ...]:
    key = [slice(None)] * ndim
    key[axis] = slice(start, stop)
    return tuple(key)


def _write_base_level(volume: Volume, array: Any, perm: list[int], n_lead: int, dtype: np.dtype,
                      prog: Any) -> None:
    """Level 0 from the (maybe lazy) volume, slab by slab along the first stored spatial axis."""
    slab_axis = n_lead  # the stored z (or y) axis
    size = array.shape[slab_axis]
    step = array.chunks[slab_axis]
    for start in range(0, size, step):
        stop = min(start + step, size)
        key = _slab_key(volume.array.ndim, perm[slab_axis], start, stop)
        block = np.asarray(volume.array[key]).transpose(perm)
        if block.dtype != dtype:
            block = block.astype(dtype)
        array[_slab_key(array.ndim, slab_axis, start, stop)] = block
        prog.advance(block.nbytes)


def _write_reduced_levels(arrays: list, factors_per_level: list[tuple[int, ...]], n_lead: int, labels: bool,
                          prog: Any) -> None:
    """Each further level from the one before, reading back slabs of 2 x its chunk."""
    slab_axis = n_lead
    ndim = arrays[0].ndim
    spatial_axes = list(range(n_lead, ndim))
    for li, f in enumerate(factors_per_level, start=1):
        parent, child = arrays[li - 1], arrays[li]
        step = child.chunks[slab_axis]
        fz = f[0]
        for start in range(0, child.shape[slab_axis], step):
            stop = min(start + step, child.shape[slab_axis])
            pkey = _slab_key(ndim, slab_axis, start * fz, min(stop * fz, parent.shape[slab_axis]))
            block = downsample(np.asarray(parent[pkey]), f, spatial_axes, labels)
            child[_slab_key(ndim, slab_axis, start, stop)] = block
            prog.advance(block.nbytes)


def _image_label(volume: Volume, ngff_version: str) -> dict:
    """The NGFF ``image-label`` entry: label colours and names from the volume's colour table."""
    table = volume.metadata.get("color_table") or {}
    colors, props = [], []
    for label, entry in sorted(table.items(), key=lambda kv: int(kv[0])):
        c = list(entry.get("color", [0.5, 0.5, 0.5, 1.0])) + [1.0]
        colors.append({"label-value": int(label), "rgba": [int(round(float(x) * 255)) for x in c[:4]]})
        props.append({"label-value": int(label), "name": str(entry.get("name", label))})
    return {"version": ngff_version, "colors": colors, "properties": props}


def _group_attrs(volume: Volume, p: Path, axes: list[dict], n_lead: int,
                 factors_per_level: list[tuple[int, ...]], ngff_version: str) -> dict:
    """The root group's attributes: NGFF multiscales (+ image-label) and the full LPS record."""
    g = volume.geometry
    labels = volume.kind == DataKind.LABELMAP
    lead_scale, lead_translation = _lead_transforms(volume)
    datasets = []
    cum = np.ones(g.ndim)
    for li in range(len(factors_per_level) + 1):
        if li:
            cum = cum * np.asarray(factors_per_level[li - 1][::-1], dtype=float)  # (z,y,x) -> (i,j,k)
        transforms = _level_transforms(g, n_lead, lead_scale, lead_translation, cum, labels)
        datasets.append({"path": str(li), "coordinateTransformations": transforms})
    multiscale: dict[str, Any] = {"name": volume.name or _base_name(p.name), "axes": axes,
                                  "datasets": datasets, "type": "nearest" if labels else "mean",
                                  "metadata": {"method": "napari_medio.core.pyramid.downsample",
                                               "description": "2x block mean" if not labels
                                               else "2x nearest (every second voxel)"}}
    ome: dict[str, Any] = {"image-label": _image_label(volume, ngff_version)} if labels else {}
    ome.update(_omero(volume))
    medio_md = {k: v for k, v in volume.metadata.items() if k not in ("ome_zarr",)}
    medio = {"version": 1, "geometry": g.to_dict(), "kind": volume.kind, "name": volume.name,
             "extra_axes": [a.to_dict() for a in volume.extra_axes],
             "components": volume.components.to_dict() if volume.components is not None else None,
             "metadata": _jsonable(medio_md),
             "window": volume.window.to_dict() if volume.window is not None else None,
             "note": "LPS geometry (mm): p = origin + direction @ diag(spacing) @ (i, j, k); "
                     "NGFF scale/translation hold spacing/origin in z, y, x order"}
    if ngff_version == "0.4":
        multiscale["version"] = "0.4"
        return {"multiscales": [multiscale], **ome, NAMESPACE: medio}
    return {"ome": {"version": "0.5", "multiscales": [multiscale], **ome}, NAMESPACE: medio}


def write_ome_zarr(
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    ngff_version: str = "0.4",
    levels: int | None = None,
    chunks: tuple[int, ...] | None = None,
    progress: Any = None,
) -> list[str]:
    """Write a volume or label map as OME-Zarr with a pyramid, atomically (a temp folder renamed).

    ``ngff_version`` "0.4" (Zarr v2, the most widely read) or "0.5" (Zarr v3).
    ``levels`` caps the number of levels (default: halve until every spatial
    axis is at most 128).  The full LPS geometry is kept under ``"napari_medio"``.
    """
    import zarr

    from ..core.progress import ensure_progress

    p = Path(path)
    dtype = _writable_dtype(volume, p, ngff_version)
    axes, perm = _ngff_axes(volume)
    n_sp = volume.geometry.ndim
    n_lead = len(axes) - n_sp
    shapes, factors_per_level = _pyramid_shapes(tuple(int(volume.shape[a]) for a in perm), n_lead, levels)
    prog = ensure_progress(progress)
    total_bytes = sum(int(np.prod(s, dtype=np.int64)) for s in shapes) * dtype.itemsize
    prog.start(total_bytes, f"writing {p.name}")
    prog.path = os.fspath(p)

    temp = p.with_name(f".medio-{uuid.uuid4().hex[:12]}-{p.name}")
    p.parent.mkdir(parents=True, exist_ok=True)
    zarr_format = 2 if ngff_version == "0.4" else 3
    try:
        group = zarr.open_group(os.fspath(temp), mode="w", zarr_format=zarr_format)
        arrays = _create_arrays(group, shapes, dtype, chunks, n_sp, axes, zarr_format)
        _write_base_level(volume, arrays[0], perm, n_lead, dtype, prog)
        _write_reduced_levels(arrays, factors_per_level, n_lead, volume.kind == DataKind.LABELMAP, prog)
        group.attrs.update(_group_attrs(volume, p, axes, n_lead, factors_per_level, ngff_version))
        prog.check()
        _replace_dir(temp, p)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, (MedioError, CancelledError)) or not isinstance(exc, Exception):
            raise
        raise WriteError(p, f"cannot write OME-Zarr: {type(exc).__name__}: {exc}") from exc
    return [os.fspath(p)]


registry.register(
    registry.FileFormat(
        name="ome-zarr",
        description="OME-Zarr (OME-NGFF 0.4 / 0.5) multiscale image or label map: a folder, read lazily",
        extensions=(".ome.zarr", ".zarr"),
        read=read_ome_zarr,
        write=write_ome_zarr,
        sniff=_sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        directories=True,
        remote=True,
        priority=20,
        backend="zarr + dask (lazy, fsspec URLs), napari-medio writer",
    )
)
