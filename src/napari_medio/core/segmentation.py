"""The Segmentation data object: Slicer's segments over one binary-labelmap grid.

A :class:`Segmentation` holds

* ``array`` -- the label voxels in NumPy order, ``a[k, j, i]`` for one layer or
  ``a[layer, k, j, i]`` when segments overlap (Slicer's "layers": each layer is a
  shared labelmap in which every segment has its own label value);
* ``geometry`` -- the LPS :class:`~napari_medio.core.geometry.Geometry` of the grid;
* ``segments`` -- :class:`Segment` records in the segmentation's order, with every
  field Slicer stores (ID, name, colour, label value, layer, extent, tags with the
  terminology entry, the auto-generated flags);
* ``metadata`` -- segmentation-level fields (source and contained representations,
  conversion parameters, the reference image extent offset) and anything else the
  file said, so that writing loses nothing.

It converts to a label-map :class:`~napari_medio.core.volume.Volume` (one layer or
all layers merged) with a colour table, which is how NIfTI and plain NRRD writers
and the napari adapter see it; :meth:`Segmentation.from_labelmap` goes back.
No napari or Qt here.
"""
from __future__ import annotations

import colorsys
import os
import re
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .geometry import Geometry
from .volume import Volume

__all__ = [
    "ProjectionSweep",
    "Segment",
    "Segmentation",
    "SLICER_DEFAULT_COLORS",
    "default_color",
    "parse_terminology",
    "format_terminology",
    "TERMINOLOGY_TAG",
    "STATUS_TAG",
]

TERMINOLOGY_TAG = "TerminologyEntry"
STATUS_TAG = "Segmentation.Status"

#: The first colours of Slicer's GenericAnatomyColors table, used for new segments.
SLICER_DEFAULT_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 174, 128), (241, 214, 145), (177, 122, 101), (111, 184, 210), (216, 101, 79),
    (221, 130, 101), (144, 238, 144), (192, 104, 88), (220, 245, 20), (78, 63, 0),
    (255, 250, 220), (230, 220, 70), (200, 200, 235), (250, 250, 210), (244, 214, 49),
    (0, 151, 206), (183, 156, 220), (183, 214, 211), (152, 189, 207), (111, 184, 210),
)


def default_color(index: int) -> tuple[float, float, float]:
    """A distinct RGB (0-1) for the ``index``-th generated segment (Slicer's palette, then golden-ratio hues)."""
    if 0 <= index < len(SLICER_DEFAULT_COLORS):
        return tuple(round(c / 255.0, 6) for c in SLICER_DEFAULT_COLORS[index])  # type: ignore[return-value]
    h = (index * 0.618033988749895) % 1.0
    return tuple(round(c, 6) for c in colorsys.hsv_to_rgb(h, 0.55, 0.9))  # type: ignore[return-value]


def parse_terminology(text: Optional[str]) -> Optional[dict]:
    """Split a serialized ``TerminologyEntry`` (7 ``~`` parts) into its context names and code triplets.

    Triplets are ``{"scheme", "value", "meaning"}`` or None when unset (``^^``).
    Returns None when the text is not a valid entry (Slicer's rule: 7 parts, category set).
    """
    if not text:
        return None
    parts = text.split("~")
    if len(parts) != 7:
        return None

    def triplet(s: str) -> Optional[dict]:
        t = s.split("^")
        if len(t) != 3 or not any(t):
            return None
        return {"scheme": t[0], "value": t[1], "meaning": t[2]}

    out = {
        "context": parts[0],
        "category": triplet(parts[1]),
        "type": triplet(parts[2]),
        "type_modifier": triplet(parts[3]),
        "region_context": parts[4],
        "region": triplet(parts[5]),
        "region_modifier": triplet(parts[6]),
    }
    if out["category"] is None:
        return None
    return out


def format_terminology(entry: dict) -> str:
    """Inverse of :func:`parse_terminology` (unset triplets as ``^^``)."""

    def triplet(t: Optional[dict]) -> str:
        if not t:
            return "^^"
        return f"{t.get('scheme', '')}^{t.get('value', '')}^{t.get('meaning', '')}"

    return "~".join([
        entry.get("context", "") or "", triplet(entry.get("category")), triplet(entry.get("type")),
        triplet(entry.get("type_modifier")), entry.get("region_context", "") or "", triplet(entry.get("region")),
        triplet(entry.get("region_modifier")),
    ])


@dataclass
class Segment:
    """One segment: Slicer's per-segment fields.

    ``color`` is RGB 0-1; ``extent`` is ``(i0, i1, j0, j1, k0, k1)`` in file voxel
    indices (min > max means empty) or None when unknown; ``tags`` keeps every
    tag in file order, the terminology entry and status included.
    """

    id: str
    name: str
    label_value: int = 1
    layer: int = 0
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    extent: Optional[tuple[int, int, int, int, int, int]] = None
    tags: dict = field(default_factory=dict)
    name_auto_generated: bool = False
    color_auto_generated: bool = False

    @property
    def terminology(self) -> Optional[str]:
        """The stored ``TerminologyEntry`` string, or None."""
        return self.tags.get(TERMINOLOGY_TAG)

    @property
    def status(self) -> Optional[str]:
        """Slicer's segment status tag (notstarted, inprogress, completed, flagged) or None."""
        return self.tags.get(STATUS_TAG)

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-ready; kept in napari layer metadata)."""
        return {
            "id": self.id,
            "name": self.name,
            "color": [float(c) for c in self.color],
            "label_value": int(self.label_value),
            "layer": int(self.layer),
            "extent": list(self.extent) if self.extent is not None else None,
            "tags": dict(self.tags),
            "terminology": self.terminology,
            "name_auto_generated": bool(self.name_auto_generated),
            "color_auto_generated": bool(self.color_auto_generated),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Segment":
        """Inverse of :meth:`to_dict`."""
        tags = dict(d.get("tags") or {})
        if d.get("terminology") and TERMINOLOGY_TAG not in tags:
            tags[TERMINOLOGY_TAG] = d["terminology"]
        ext = d.get("extent")
        return cls(
            id=str(d["id"]),
            name=str(d.get("name", d["id"])),
            label_value=int(d.get("label_value", 1)),
            layer=int(d.get("layer", 0)),
            color=tuple(float(c) for c in (d.get("color") or (0.5, 0.5, 0.5))[:3]),  # type: ignore[arg-type]
            extent=tuple(int(x) for x in ext) if ext is not None else None,  # type: ignore[arg-type]
            tags=tags,
            name_auto_generated=bool(d.get("name_auto_generated", False)),
            color_auto_generated=bool(d.get("color_auto_generated", False)),
        )


def _unique_id(base: str, used: set) -> str:
    if base not in used:
        return base
    n = 1
    while f"{base}_{n}" in used:
        n += 1
    return f"{base}_{n}"


@dataclass
class Segmentation:
    """Segments on a labelmap grid in patient LPS space (see the module docstring).

    ``metadata`` keys: ``master_representation`` (str), ``contained_representations``
    (list of str), ``conversion_parameters`` (list of ``[name, value, description]``),
    ``reference_image_extent_offset`` ([i, j, k]), ``extra_fields`` (other custom
    header fields, verbatim), ``empty`` (True for Slicer's 1x1x1 "no data" image).
    """

    array: Any
    geometry: Geometry
    segments: list[Segment] = field(default_factory=list)
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: Optional[str] = None

    kind = "segmentation"

    def __post_init__(self) -> None:
        nd = len(self.array.shape)
        if self.geometry.ndim != 3 or nd not in (3, 4):
            raise ValueError(f"a segmentation needs a 3D geometry and a 3D or 4D array, got {self.array.shape}")
        if not np.issubdtype(np.dtype(self.array.dtype), np.integer) and np.dtype(self.array.dtype) != bool:
            raise ValueError(f"segmentation voxels must be integers, not {self.array.dtype}")

    # -- shape -------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of layers (labelmaps that overlap each other)."""
        return int(self.array.shape[0]) if len(self.array.shape) == 4 else 1

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(k, j, i) shape of the grid."""
        return tuple(int(s) for s in self.array.shape[-3:])  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        """Voxel type as stored."""
        return np.dtype(self.array.dtype)

    def layer_array(self, layer: int) -> np.ndarray:
        """The 3D labelmap of one layer."""
        if len(self.array.shape) == 3:
            if layer != 0:
                raise IndexError(f"segmentation has one layer, not {layer + 1}")
            return self.array
        return self.array[layer]

    def segments_in_layer(self, layer: int) -> list[Segment]:
        """Segments stored in ``layer``, in segmentation order."""
        return [s for s in self.segments if s.layer == layer]

    def segment(self, key: "str | int") -> Segment:
        """A segment by ID, name or index."""
        if isinstance(key, int):
            return self.segments[key]
        for s in self.segments:
            if s.id == key:
                return s
        for s in self.segments:
            if s.name == key:
                return s
        raise KeyError(key)

    def mask(self, key: "str | int | Segment") -> np.ndarray:
        """Boolean (k, j, i) mask of one segment."""
        seg = key if isinstance(key, Segment) else self.segment(key)
        return np.asarray(self.layer_array(seg.layer)) == seg.label_value

    def check(self, path: Any = None, *, present: Optional[Sequence[Iterable[int]]] = None) -> list[str]:
        """Consistency problems: layers out of range, duplicate IDs or label values in a layer.

        Raises ValueError for problems that make the segments unplaceable; returns
        warnings (e.g. a label value absent from the data) for the rest.  ``present``
        (the label values of each layer, as :func:`present_labels` gives them) spares
        the sweep over the voxels when the caller has already made it.
        """
        problems: list[str] = []
        ids = [s.id for s in self.segments]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate segment IDs: {sorted({i for i in ids if ids.count(i) > 1})}")
        seen: dict[tuple[int, int], str] = {}
        for s in self.segments:
            if not 0 <= s.layer < self.n_layers:
                raise ValueError(f"segment {s.id!r} is in layer {s.layer} but the data has {self.n_layers} layer(s)")
            if s.label_value <= 0:
                raise ValueError(f"segment {s.id!r} has label value {s.label_value}; it must be positive")
            key = (s.layer, s.label_value)
            if key in seen:
                raise ValueError(f"segments {seen[key]!r} and {s.id!r} share label value {s.label_value} in layer {s.layer}")
            seen[key] = s.id
        if not self.metadata.get("empty"):
            for layer in range(self.n_layers):
                found = present[layer] if present is not None else present_labels(self.layer_array(layer))
                present_set = set(int(v) for v in found) - {0}
                for s in self.segments_in_layer(layer):
                    if s.label_value not in present_set and not _extent_is_empty(s.extent):
                        problems.append(f"segment {s.id!r} ({s.name}): label value {s.label_value} is not in the data")
                unknown = sorted(present_set - {s.label_value for s in self.segments_in_layer(layer)})
                if unknown:
                    problems.append(f"layer {layer}: voxel values {unknown[:10]} belong to no segment")
        return problems

    # -- conversions -------------------------------------------------------------------------
    def color_table(self, layer: Optional[int] = None) -> dict:
        """``{label: {"name", "color": [r, g, b, 1]}}`` of one layer (all when single-layer)."""
        segs = self.segments if layer is None else self.segments_in_layer(layer)
        return {int(s.label_value): {"name": s.name, "color": [float(c) for c in s.color] + [1.0]} for s in segs}

    def table(self, layer: Optional[int] = None) -> dict:
        """JSON-ready description of the segmentation (all segments) for metadata; ``layer`` marks which one a view shows."""
        return {
            "segments": [s.to_dict() for s in self.segments],
            "layer": layer,
            "n_layers": self.n_layers,
            "fields": _jsonable(self.metadata),
            "name": self.name,
        }

    def labelmap(self, layer: Optional[int] = None) -> Volume:
        """A label-map Volume: one layer, or (``layer=None``) all layers merged into one.

        Merging keeps label values where they do not collide; a segment of a later
        layer whose value is already used gets the next free value, and overlaps go
        to the later segment (as Slicer's "export to labelmap" does).
        """
        meta: dict[str, Any] = {}
        if layer is not None or self.n_layers == 1:
            lay = 0 if layer is None else layer
            arr = self.layer_array(lay)
            table = self.color_table(lay)
            meta["segmentation"] = self.table(lay)
        else:
            arr, table, mapping = self._merged()
            meta["segmentation"] = self.table(None)
            meta["segmentation"]["merged_label_values"] = mapping
        meta["color_table"] = table
        return Volume(array=arr, geometry=self.geometry, kind="labelmap", name=self.name, metadata=meta,
                      source=self.source)

    def _merged(self) -> tuple[np.ndarray, dict, dict]:
        used: set[int] = set()
        mapping: dict[str, int] = {}
        for s in self.segments:
            v = s.label_value
            if v in used:
                v = max(used | {0}) + 1
            used.add(v)
            mapping[s.id] = v
        top = max(used | {0})
        dtype = np.result_type(self.dtype, np.min_scalar_type(top)) if top > np.iinfo(np.uint8).max else self.dtype
        out = np.zeros(self.spatial_shape, dtype=dtype)
        for s in self.segments:
            out[np.asarray(self.layer_array(s.layer)) == s.label_value] = mapping[s.id]
        table = {mapping[s.id]: {"name": s.name, "color": [float(c) for c in s.color] + [1.0]} for s in self.segments}
        return out, table, mapping

    def convert_to(self, kind: str) -> Any:
        """This segmentation as ``kind``: itself, or a merged label-map Volume for "labelmap"/"volume"."""
        if kind == "segmentation":
            return self
        if kind in ("labelmap", "volume"):
            vol = self.labelmap(None)
            return vol if kind == "labelmap" else replace(vol, kind="labelmap")
        return None

    @classmethod
    def from_labelmap(cls, volume: Volume, *, name: Optional[str] = None,
                      present: Optional[Iterable[int]] = None) -> "Segmentation":
        """A single-layer segmentation from a label-map Volume.

        Segments come from ``volume.metadata["segmentation"]`` (the table a
        segmentation's label map carries), updated with the names and colours of
        ``metadata["color_table"]`` (what the user edited in napari); label values
        in the data that no segment claims become new segments named from the colour
        table or ``Segment_<value>``, as Slicer names them.  ``present`` (the label
        values in the data, when the caller has swept them already) spares that sweep.
        """
        arr = volume.array
        if volume.components is not None or volume.extra_axes:
            raise ValueError("a label map for a segmentation must be a single 3D scalar volume")
        if volume.geometry.ndim == 2:
            arr = np.asarray(arr)[np.newaxis]
            geometry = volume.geometry.as_3d()
        else:
            geometry = volume.geometry
        a = np.asarray(arr)
        if a.dtype == bool:
            a = a.astype(np.uint8)
        elif not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
                raise ValueError("a label map must hold integer values")
            a = a.astype(np.min_scalar_type(int(a.max()) if a.size else 0) if a.size and a.min() >= 0 else np.int32)
        md = volume.metadata or {}
        table = md.get("segmentation") or {}
        colors = {int(k): v for k, v in (md.get("color_table") or {}).items()}
        merged_values = table.get("merged_label_values")
        present = sorted(label_summary(a, extents=False)) if present is None else sorted(
            int(v) for v in present if int(v) != 0)
        segments: list[Segment] = []
        claimed: set[int] = set()
        src_layer = table.get("layer")
        for d in table.get("segments", []):
            seg = Segment.from_dict(d)
            if merged_values is not None:
                seg.label_value = int(merged_values.get(seg.id, seg.label_value))
            elif src_layer is not None and seg.layer != src_layer:
                continue  # another layer's segment; this view does not hold it
            seg.layer = 0
            if seg.label_value in claimed:
                continue
            entry = colors.get(seg.label_value)
            if entry:
                if entry.get("name") and entry["name"] != seg.name:
                    seg.name, seg.name_auto_generated = str(entry["name"]), False
                c = tuple(round(float(x), 6) for x in list(entry.get("color", seg.color))[:3])
                if not np.allclose(c, seg.color, atol=1e-6):
                    seg.color, seg.color_auto_generated = c, False  # type: ignore[assignment]
            claimed.add(seg.label_value)
            segments.append(seg)
        used_ids = {s.id for s in segments}
        for i, value in enumerate(v for v in present if v not in claimed):
            entry = colors.get(value) or {}
            seg_name = str(entry.get("name") or f"Segment_{value}")
            color = entry.get("color")
            seg = Segment(
                id=_unique_id(f"Segment_{value}", used_ids),
                name=seg_name,
                label_value=value,
                layer=0,
                color=tuple(round(float(x), 6) for x in color[:3]) if color else default_color(len(segments)),  # type: ignore[arg-type]
                name_auto_generated=not entry.get("name"),
                color_auto_generated=not color,
            )
            used_ids.add(seg.id)
            segments.append(seg)
        fields = dict(table.get("fields") or {})
        fields.pop("empty", None)
        return cls(array=a, geometry=geometry, segments=segments, name=name or table.get("name") or volume.name,
                   metadata=fields, source=volume.source)

    # -- summary -----------------------------------------------------------------------------
    def info(self) -> dict:
        """Summary for ``medio info --json``: kind "segmentation", volume fields, segments."""
        from .geometry import napari_affine

        out: dict = {
            "kind": "segmentation",
            "name": self.name,
            "shape": [int(s) for s in self.array.shape],
            "dtype": str(self.dtype),
        }
        out.update(self.geometry.to_dict())
        affine = napari_affine(self.geometry)
        if self.n_layers > 1 or len(self.array.shape) == 4:
            full = np.eye(5)
            full[1:, 1:] = affine
            affine = full
            out["extra_axes"] = [{"name": "layer", "unit": "", "values": None, "kind": "list"}]
        out["affine"] = affine.tolist()
        out["n_layers"] = self.n_layers
        out["segments"] = [
            {
                "id": s.id,
                "name": s.name,
                "color": [float(c) for c in s.color],
                "label_value": int(s.label_value),
                "layer": int(s.layer),
                "terminology": s.terminology,
                "extent": list(s.extent) if s.extent is not None else None,
                "tags": dict(s.tags),
            }
            for s in self.segments
        ]
        if self.metadata.get("contained_representations") is not None:
            out["contained_representations"] = list(self.metadata["contained_representations"])
        if self.source:
            out["source"] = self.source
        return out


def present_labels(labels: Any) -> list[int]:
    """Sorted distinct values of a label array (0 included when present), without sorting the voxels.

    Integer arrays of up to 32 bits go through :func:`label_summary` (two or three
    threaded projections of the array); 64-bit arrays fall back to ``np.unique``.
    """
    a = np.asarray(labels)
    if a.size == 0:
        return []
    return sorted(label_summary(a, extents=False, include_zero=True))


# -- fast label statistics -------------------------------------------------------------------
#: Arrays with at least this many voxels are projected on all cores (NumPy reductions release the GIL).
_PARALLEL_ABOVE = 1 << 21
_POOL: Any = None


def _pool() -> Any:
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="medio-labels")
    return _POOL


def _project(ufunc: Any, a: np.ndarray, axis: int, parallel: bool = True) -> np.ndarray:
    """``ufunc.reduce`` (maximum/minimum) of a 3D array over axis 0 or 1, split across threads along the kept axis."""
    nk, nj, ni = a.shape
    out = np.empty((nk if axis == 1 else nj, ni), a.dtype)
    n = out.shape[0]
    workers = os.cpu_count() or 1
    if not parallel or a.size < _PARALLEL_ABOVE or workers == 1 or n < 2:
        ufunc.reduce(a, axis=axis, out=out)
        return out
    bounds = np.linspace(0, n, min(n, 2 * workers) + 1).astype(int)

    def job(s: int, e: int) -> None:
        if axis == 1:
            ufunc.reduce(a[s:e], axis=1, out=out[s:e])
        else:
            ufunc.reduce(a[:, s:e], axis=0, out=out[s:e])

    futures = [_pool().submit(job, int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
    for f in futures:
        f.result()
    return out


def _extremes(a: np.ndarray, need_min: bool, parallel: bool = True) -> tuple[int, Optional[int]]:
    """``(max, min)`` of the whole array (min None unless ``need_min``): flat reductions, parts on all cores."""
    def job(part: np.ndarray) -> tuple[int, Optional[int]]:
        return int(part.max()), (int(part.min()) if need_min else None)

    workers = os.cpu_count() or 1
    if not parallel or a.size < _PARALLEL_ABOVE or workers == 1 or a.shape[0] < 2:
        return job(a)
    bounds = np.linspace(0, a.shape[0], min(a.shape[0], workers) + 1).astype(int)
    parts = [_pool().submit(job, a[int(s):int(e)]) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
    results = [f.result() for f in parts]
    return max(r[0] for r in results), (min(r[1] for r in results) if need_min else None)  # type: ignore[type-var]


def _nonzero_box(a: np.ndarray, hi0: np.ndarray) -> Optional[tuple[int, int, int, int, int, int]]:
    """``(i0, i1, j0, j1, k0, k1)`` of the non-zero voxels of a 3D array of non-negative values, or None.

    ``hi0`` (the max projection along k) gives the i and j ranges; the k range comes
    from scanning whole slices of that (j, i) box inward from both ends, which stops
    at the first slice that holds a voxel (typically after a few slices).
    """
    js = np.flatnonzero(hi0.any(axis=1))
    if not len(js):
        return None
    is_ = np.flatnonzero(hi0.any(axis=0))
    sub = a[:, int(js[0]):int(js[-1]) + 1, int(is_[0]):int(is_[-1]) + 1]
    nk = sub.shape[0]
    most = max(1, (1 << 22) // max(1, sub.shape[1] * sub.shape[2] * sub.dtype.itemsize))  # up to ~4 MiB a look
    k0 = k1 = -1
    s, step = 0, 1  # one slice first, then twice as many each time: a few slices when the ends hold voxels
    while s < nk:
        hit = np.flatnonzero(sub[s:s + step].max(axis=(1, 2)))
        if len(hit):
            k0 = s + int(hit[0])
            break
        s, step = s + step, min(2 * step, most)
    e, step = nk, 1
    while e > k0:
        s = max(k0, e - step)
        hit = np.flatnonzero(sub[s:e].max(axis=(1, 2)))
        if len(hit):
            k1 = s + int(hit[-1])
            break
        e, step = s, min(2 * step, most)
    return int(is_[0]), int(is_[-1]), int(js[0]), int(js[-1]), k0, k1


#: Rounds of peeling (next value below the last one found) on lines with more values, before the
#: values left on the lines still unfinished are counted instead (noise-like data).
_PEELS = 4
_PIECE = 1 << 19  # bytes of wide lines gathered at a time (stays in the cache)


def _slab_line_values(S: np.ndarray, axis: int, presence: bool = False) -> tuple:
    """Every ``(value, k, c)`` such that ``value`` lies on the line of slab ``S`` along ``axis``.

    ``axis`` 2: lines along i (rows), ``c`` is j; ``axis`` 1: lines along j, ``c`` is i;
    ``k`` indexes the slab's slices.  A line's max and min are on it; a line whose
    max and min differ by at most 1 holds nothing else.  Only the other ("wide")
    lines are gathered from the slab (in the cache), about 512 KiB at a time, and
    peeled: the largest value below the last one found, until what is left lies
    between two neighbouring values.  Lines that still hold more values after
    :data:`_PEELS` rounds -- or, in noise-like data, most lines after the first --
    have their values counted instead.  With ``presence`` only the values matter:
    ``(values, None, None)``, and counting is a plain histogram.
    """
    hi = S.max(axis=axis)
    lo = S.min(axis=axis)
    ks, n = hi.shape
    vals = [hi.reshape(-1).astype(np.int64), lo.reshape(-1).astype(np.int64)]
    if presence:
        kk = cc = None
    else:
        grid_k = np.repeat(np.arange(ks, dtype=np.int64), n)
        grid_c = np.tile(np.arange(n, dtype=np.int64), ks)
        kk, cc = [grid_k, grid_k], [grid_c, grid_c]
    wr, wc = np.nonzero(hi.astype(np.int64) - lo.astype(np.int64) >= 2)
    length = S.shape[axis]
    per = max(1, _PIECE // max(1, length * S.dtype.itemsize))
    noisy = False
    for s in range(0, len(wr), per):
        r, c = wr[s:s + per], wc[s:s + per]
        lines = S[r, :, c] if axis == 1 else S[r, c, :]  # (lines, length)
        cur, low = hi[r, c], lo[r, c]
        start = len(r)
        for round_ in range(0 if noisy else _PEELS):
            below = np.where(lines < cur[:, None], lines, low[:, None]).max(axis=1)
            new = below > low
            vals.append(below[new].astype(np.int64))
            if not presence:
                kk.append(r[new])
                cc.append(c[new])
            keep = new & (below.astype(np.int64) - low.astype(np.int64) >= 2)
            lines, cur, low, r, c = lines[keep], below[keep], low[keep], r[keep], c[keep]
            if not len(lines):
                break
            if round_ == 0 and 2 * len(lines) > start:
                noisy = True  # most lines hold many values: count them, here and in the next pieces
                break
        if not len(lines):
            continue
        if presence:  # a histogram of what is left
            flat = lines.reshape(-1)
            if flat.dtype.kind == "u" and flat.dtype.itemsize <= 2:
                vals.append(np.flatnonzero(np.bincount(flat)))
            else:
                flat = flat.astype(np.int64)
                vmin = int(flat.min())
                vals.append(np.flatnonzero(np.bincount(flat - vmin)) + vmin
                            if int(flat.max()) - vmin <= max(1 << 16, flat.size) else _sorted_unique(flat))
            continue
        base = low.astype(np.int64)
        top = cur.astype(np.int64) - base
        key = lines.astype(np.int64) - base[:, None]
        inside = (key > 0) & (key < top[:, None])  # strictly between low and cur: not yet known
        span = int(top.max()) + 1
        key += (np.arange(len(lines), dtype=np.int64) * span)[:, None]
        key = key[inside]
        if len(lines) * span <= max(1 << 20, 2 * key.size):
            pairs = np.flatnonzero(np.bincount(key, minlength=len(lines) * span))
        else:
            pairs = _sorted_unique(key)
        li, vv = np.divmod(pairs, span)
        vals.append(vv + base[li])
        kk.append(r[li])
        cc.append(c[li])
    if presence:
        return np.concatenate(vals), None, None
    return np.concatenate(vals), np.concatenate(kk), np.concatenate(cc)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """Distinct values, sorted (a sort: NumPy 2's hashing ``unique`` is slow on many distinct int64)."""
    if len(x) == 0:
        return x
    y = np.sort(x)
    keep = np.empty(len(y), bool)
    keep[0] = True
    np.not_equal(y[1:], y[:-1], out=keep[1:])
    return y[keep]


def _distinct(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an int64 array and each entry's index among them."""
    vmin = int(vals.min())
    span = int(vals.max()) - vmin + 1
    if span <= max(1 << 20, len(vals)):  # a histogram and a lookup table: no sort
        off = vals - vmin
        values = np.flatnonzero(np.bincount(off, minlength=span))
        lut = np.zeros(span, np.int64)
        lut[values] = np.arange(len(values))
        return values + vmin, lut[off]
    values = _sorted_unique(vals)
    return values, np.searchsorted(values, vals)


def _minmax(idx: np.ndarray, coord: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(n, np.iinfo(np.int64).max, np.int64)
    hi = np.full(n, -1, np.int64)
    np.minimum.at(lo, idx, coord)
    np.maximum.at(hi, idx, coord)
    return lo, hi


def _multi_summary(a: np.ndarray, extents: bool, include_zero: bool, parallel: bool) -> dict:
    """:func:`label_summary` for data with more than the values 0 and 1: line tables slab by slab.

    Lines along i (rows: contiguous, the cheapest to gather) give every value with
    its k and j ranges; with ``extents``, lines along j give the i ranges.  Slabs of
    about 4 MiB are swept on all cores when ``parallel``.
    """
    nk = a.shape[0]
    step = max(1, (1 << 22) // max(1, a[0].nbytes))
    jobs = [(k, min(nk, k + step), axis) for axis in ((2, 1) if extents else (0,)) for k in range(0, nk, step)]

    def job(spec: tuple) -> tuple:
        k0, k1, axis = spec
        if axis == 0:  # presence only: lines along i
            return 0, _slab_line_values(a[k0:k1], 2, presence=True)[0], None, None
        v, k, c = _slab_line_values(a[k0:k1], axis)
        return axis, v, k + k0, c

    if parallel and a.size >= _PARALLEL_ABOVE and (os.cpu_count() or 1) > 1 and len(jobs) > 1:
        parts = list(_pool().map(job, jobs))
    else:
        parts = [job(spec) for spec in jobs]
    if not extents:
        values, _ = _distinct(np.concatenate([p[1] for p in parts]))
        return {int(v): None for v in values.tolist() if include_zero or v != 0}
    rows = [p for p in parts if p[0] == 2]
    vals = np.concatenate([p[1] for p in rows])
    values, idx = _distinct(vals)
    keep = [int(v) for v in values.tolist() if include_zero or v != 0]
    kmin, kmax = _minmax(idx, np.concatenate([p[2] for p in rows]), len(values))
    jmin, jmax = _minmax(idx, np.concatenate([p[3] for p in rows]), len(values))
    cols = [p for p in parts if p[0] == 1]
    vals1 = np.concatenate([p[1] for p in cols])
    imin, imax = _minmax(np.searchsorted(values, vals1), np.concatenate([p[3] for p in cols]), len(values))
    out: dict[int, Optional[tuple[int, int, int, int, int, int]]] = {}
    wanted = set(keep)
    for n, v in enumerate(values.tolist()):
        if v in wanted:
            out[int(v)] = (int(imin[n]), int(imax[n]), int(jmin[n]), int(jmax[n]), int(kmin[n]), int(kmax[n]))
    return out


def label_summary(labels: Any, *, extents: bool = True, include_zero: bool = False,
                  parallel: "bool | str" = True, projections: "Optional[tuple[np.ndarray, Optional[np.ndarray]]]" = None,
                  ) -> dict[int, Optional[tuple[int, int, int, int, int, int]]]:
    """``{value: (i0, i1, j0, j1, k0, k1)}`` for every value present in a 3D label array, in one sweep.

    No sort and no histogram of the voxels.  First the maximum (and, for signed
    types or with ``include_zero``, the minimum) of the whole array: 0/1 data --
    a binary mask -- needs nothing more for its values, and one max projection
    along k plus a scan of the end slices for its box.  Other data is read slab by
    slab (about 4 MiB, in the cache) as lines: a line's max and min are on it, a
    line whose max and min differ by at most 1 holds nothing else, and only the
    other lines are gathered and peeled value by value (see
    :func:`_slab_line_values`); lines along i give the values and their k and j
    ranges, lines along j the i ranges.  0 is left out unless ``include_zero``;
    with ``extents=False`` the values map to None (presence only: one line table).
    2D arrays are one slice.  ``parallel``: True sweeps on all cores, False on the
    calling thread only, ``"values"`` only data with more than 0/1 on all cores
    (for a caller that runs beside other work, e.g. a compressed write).
    ``projections``: the max (and, for signed types, min) projections along k when
    already made -- e.g. by a :class:`ProjectionSweep` fed by a compressed write --
    so that 0/1 data costs no further pass over the whole array.
    """
    a = np.asarray(labels)
    if a.dtype == bool:
        a = a.view(np.uint8)
    while a.ndim < 3:
        a = a[np.newaxis]
    if a.ndim != 3:
        raise ValueError(f"a label array must be 2D or 3D, not {a.ndim}D")
    if a.size == 0:
        return {}
    if not np.issubdtype(a.dtype, np.integer) or a.dtype.itemsize > 4:
        values = [int(v) for v in np.unique(a) if include_zero or v != 0]
        return {v: (bounding_extent(a, v) if extents else None) for v in values}
    # 0/1 data (a binary mask, one segment: the common case) is told by the extremes of the
    # whole array: for presence alone, flat reductions (the cheapest pass there is); with
    # extents, those of the projections along k, which then give the box (and are reused below).
    need_min = a.dtype.kind != "u" or include_zero
    every = parallel is True
    hi0 = lo0 = None
    if extents and projections is not None and projections[0].shape == a.shape[1:] and \
            (projections[1] is not None or not need_min):
        hi0, lo0 = projections[0], (projections[1] if need_min else None)
        top, bottom = int(hi0.max()), (int(lo0.min()) if lo0 is not None else None)
    elif extents:
        hi0 = _project(np.maximum, a, 0, every)
        lo0 = _project(np.minimum, a, 0, every) if need_min else None
        top, bottom = int(hi0.max()), (int(lo0.min()) if lo0 is not None else None)
    else:
        top, bottom = _extremes(a, need_min, every)
    if top <= 1 and (bottom is None or bottom >= 0):
        present = ([0] if include_zero and bottom == 0 else []) + ([1] if top == 1 else [])
        if not extents:
            return {v: None for v in present}
        out: dict[int, Optional[tuple[int, int, int, int, int, int]]] = {}
        if 0 in present:
            out[0] = bounding_extent(a, 0)
        if 1 in present:
            out[1] = _nonzero_box(a, hi0)
        return out
    # Three or more values (or two that are not 0 and 1): line tables, slab by slab.
    return _multi_summary(a, extents, include_zero, parallel in (True, "values"))


class ProjectionSweep:
    """The max (and, for signed types, min) projection along k of a 3D label array, gathered
    from its bytes block by block by code that reads them anyway.

    A compressed write hands each block of the array's C-order bytes to
    :meth:`observe` on the deflate worker that has just compressed it, while the
    block is still in the cache: the projection then costs no pass over memory of
    its own and no thread beside the workers.  :meth:`projections` joins the
    pieces; :func:`label_summary` takes them (``projections=``) and, for 0/1 data,
    needs nothing more.  ``on_values`` is called once (from a worker) as soon as a
    block holds a value other than 0 and 1, so that a caller can start the full
    sweep such data needs at once.  Blocks may arrive in any order, on any thread.
    """

    def __init__(self, shape: Sequence[int], dtype: Any, on_values: "Optional[Any]" = None) -> None:
        """``shape`` (k, j, i) and ``dtype`` (byte order included) of the array whose bytes will be observed."""
        dtype = np.dtype(dtype)
        if len(shape) != 3 or not self.handles(dtype):
            raise ValueError("a ProjectionSweep needs a 3D integer array of up to 32 bits")
        self.dtype = np.dtype(np.uint8) if dtype == bool else dtype
        self.shape = tuple(int(n) for n in shape)
        self.plane = self.shape[1] * self.shape[2]
        self.need_min = self.dtype.kind != "u"
        self.on_values = on_values
        self._flagged = threading.Lock()
        self._parts: list[tuple[int, np.ndarray, Optional[np.ndarray], int]] = []
        self._extra: list[int] = []  # sizes of whole-plane pieces merged into an accumulator already listed
        self._local = threading.local()

    @staticmethod
    def handles(dtype: Any) -> bool:
        """Whether arrays of ``dtype`` can be swept this way (booleans and integers of up to 32 bits)."""
        dtype = np.dtype(dtype)
        return dtype == bool or (np.issubdtype(dtype, np.integer) and dtype.itemsize <= 4)

    def _piece(self, offset: int, values: np.ndarray, rows: int) -> None:
        if rows:  # whole planes: into this thread's own accumulators (no lock, no list of planes)
            v = values.reshape(rows, -1)
            hi = np.maximum.reduce(v, axis=0)
            lo = np.minimum.reduce(v, axis=0) if self.need_min else None
        else:
            hi, lo = values, (values if self.need_min else None)
        if self.on_values is not None and (int(hi.max()) > 1 or (lo is not None and int(lo.min()) < 0)):
            if self._flagged.acquire(blocking=False):
                self.on_values()
        if rows:
            acc = getattr(self._local, "acc", None)
            if acc is None:
                self._local.acc = (hi, lo)
                self._parts.append((0, hi, lo, values.size))  # list.append is atomic
            else:
                np.maximum(acc[0], hi, out=acc[0])
                if lo is not None:
                    np.minimum(acc[1], lo, out=acc[1])
                self._extra.append(values.size)
        else:
            self._parts.append((offset, hi, lo, values.size))

    def observe(self, start: int, block: Any) -> None:
        """Take the array's bytes ``[start, start + len(block))`` (whole elements)."""
        item = self.dtype.itemsize
        if start % item or len(block) % item:
            raise ValueError("a block must hold whole elements")
        values = np.frombuffer(block, self.dtype)
        first = start // item
        pos = 0
        head = (-first) % self.plane  # elements before the next whole plane
        if head:
            n = min(head, values.size)
            self._piece(first % self.plane, values[:n], 0)
            pos = n
        whole = (values.size - pos) // self.plane
        if whole:
            self._piece(0, values[pos:pos + whole * self.plane], whole)
            pos += whole * self.plane
        if pos < values.size:
            self._piece(0, values[pos:], 0)

    def projections(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """``(max, min)`` projections along k, shaped (j, i); min is None for unsigned types."""
        if sum(p[3] for p in self._parts) + sum(self._extra) != int(np.prod(self.shape)):
            raise ValueError("not every block of the array was observed")
        info = np.iinfo(self.dtype)
        native = self.dtype.newbyteorder("=")
        parts = sorted(self._parts, key=lambda part: part[1].size != self.plane)  # a whole plane first
        if parts and parts[0][1].size == self.plane and parts[0][1].dtype == native:
            # Merge into a whole-plane accumulator (max and min are idempotent, so a second call agrees).
            hi, lo = parts[0][1], parts[0][2]
            parts = parts[1:]
        else:
            hi = np.full(self.plane, info.min, native)
            lo = np.full(self.plane, info.max, native) if self.need_min else None
        for offset, h, low, _ in parts:
            part = slice(offset, offset + h.size)
            np.maximum(hi[part], h, out=hi[part])
            if lo is not None:
                np.minimum(lo[part], low, out=lo[part])
        shape = self.shape[1:]
        return hi.reshape(shape), (lo.reshape(shape) if lo is not None else None)


def _extent_is_empty(extent: Optional[Sequence[int]]) -> bool:
    return extent is not None and any(extent[2 * a] > extent[2 * a + 1] for a in range(3))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def bounding_extent(mask_or_labels: np.ndarray, value: Optional[int] = None) -> Optional[tuple[int, ...]]:
    """``(i0, i1, j0, j1, k0, k1)`` of the voxels equal to ``value`` (non-zero when None), or None when none."""
    a = np.asarray(mask_or_labels)
    m = a != 0 if value is None else a == value
    if not m.any():
        return None
    out = []
    for axis in (2, 1, 0):  # i, j, k
        other = tuple(x for x in range(3) if x != axis)
        hit = np.flatnonzero(m.any(axis=other))
        out += [int(hit[0]), int(hit[-1])]
    return tuple(out)


def label_extents(labels: np.ndarray, values: Iterable[int]) -> dict[int, Optional[tuple[int, ...]]]:
    """Bounding extents of several label values in one sweep over the array (see :func:`label_summary`)."""
    values = [int(v) for v in values]
    out: dict[int, Optional[tuple[int, ...]]] = {v: None for v in values}
    a = np.asarray(labels)
    if not values or a.size == 0:
        return out
    boxes = label_summary(a, include_zero=0 in out)
    for v in values:
        out[v] = boxes.get(v)
    return out


def iter_layers(seg: Segmentation) -> Iterable[tuple[int, np.ndarray]]:
    """(layer index, 3D array) pairs."""
    for layer in range(seg.n_layers):
        yield layer, seg.layer_array(layer)


_TAG_SPLIT = re.compile(r"\|")


def parse_tags(text: str) -> dict:
    """``key:value|key:value|`` -> dict (split at the first ``:``; items without ``:`` skipped)."""
    tags: dict = {}
    for item in _TAG_SPLIT.split(text or ""):
        if ":" not in item:
            continue
        k, v = item.split(":", 1)
        tags[k] = v
    return tags


def format_tags(tags: dict) -> str:
    """Inverse of :func:`parse_tags`: every pair terminated by ``|``, keys sorted (Slicer's std::map)."""
    return "".join(f"{k}:{tags[k]}|" for k in sorted(tags))


def warn_problems(problems: list[str], path: Any) -> None:
    """Issue one warning per problem, naming the file."""
    for p in problems:
        warnings.warn(f"{path}: {p}", stacklevel=3)
