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
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage

from .geometry import Geometry
from .jsonvalue import jsonable
from .kinds import VOLUME_KINDS, DataKind
from .volume import Volume

__all__ = [
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


def parse_terminology(text: str | None) -> dict | None:
    """Split a serialized ``TerminologyEntry`` (7 ``~`` parts) into its context names and code triplets.

    Triplets are ``{"scheme", "value", "meaning"}`` or None when unset (``^^``).
    Returns None when the text is not a valid entry (Slicer's rule: 7 parts, category set).
    """
    if not text:
        return None
    parts = text.split("~")
    if len(parts) != 7:
        return None

    def triplet(s: str) -> dict | None:
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

    def triplet(t: dict | None) -> str:
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
    extent: tuple[int, int, int, int, int, int] | None = None
    tags: dict = field(default_factory=dict)
    name_auto_generated: bool = False
    color_auto_generated: bool = False

    @property
    def terminology(self) -> str | None:
        """The stored ``TerminologyEntry`` string, or None."""
        return self.tags.get(TERMINOLOGY_TAG)

    @property
    def status(self) -> str | None:
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
    def from_dict(cls, d: dict) -> Segment:
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
    source: str | None = None

    kind = DataKind.SEGMENTATION

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

    def segment(self, key: str | int) -> Segment:
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

    def mask(self, key: str | int | Segment) -> np.ndarray:
        """Boolean (k, j, i) mask of one segment."""
        seg = key if isinstance(key, Segment) else self.segment(key)
        return np.asarray(self.layer_array(seg.layer)) == seg.label_value

    def check(self, path: Any = None, *, present: Sequence[Iterable[int]] | None = None) -> list[str]:
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
                raise ValueError(f"segments {seen[key]!r} and {s.id!r} share label value {s.label_value} "
                                 f"in layer {s.layer}")
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
    def color_table(self, layer: int | None = None) -> dict:
        """``{label: {"name", "color": [r, g, b, 1]}}`` of one layer (all when single-layer)."""
        segs = self.segments if layer is None else self.segments_in_layer(layer)
        return {int(s.label_value): {"name": s.name, "color": [float(c) for c in s.color] + [1.0]} for s in segs}

    def table(self, layer: int | None = None) -> dict:
        """JSON-ready description of the segmentation (all segments) for metadata.

        ``layer`` marks which layer a view shows.
        """
        return {
            "segments": [s.to_dict() for s in self.segments],
            "layer": layer,
            "n_layers": self.n_layers,
            "fields": jsonable(self.metadata),
            "name": self.name,
        }

    def labelmap(self, layer: int | None = None) -> Volume:
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
        return Volume(array=arr, geometry=self.geometry, kind=DataKind.LABELMAP, name=self.name,
                      metadata=meta, source=self.source)

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
        if kind == DataKind.SEGMENTATION:
            return self
        if kind in VOLUME_KINDS:
            vol = self.labelmap(None)
            return vol if kind == DataKind.LABELMAP else replace(vol, kind=DataKind.LABELMAP)
        return None

    @classmethod
    def from_labelmap(cls, volume: Volume, *, name: str | None = None,
                      present: Iterable[int] | None = None) -> Segmentation:
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
        for value in (v for v in present if v not in claimed):
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
            "kind": DataKind.SEGMENTATION,
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
    """Sorted distinct values of a label array (0 included when present)."""
    return sorted(label_summary(labels, extents=False, include_zero=True))


Extent = tuple[int, int, int, int, int, int]


def label_summary(labels: Any, *, extents: bool = True, include_zero: bool = False) -> dict[int, Extent | None]:
    """``{value: (i0, i1, j0, j1, k0, k1)}`` for every value present in a 2D or 3D label array.

    0 is left out unless ``include_zero``; with ``extents=False`` the values map to
    None.  A 0/1 mask costs one NumPy reduction over k (its (j, i) box) and the
    slices at the two ends of that box; other data one more pass,
    ``scipy.ndimage.find_objects`` (``np.unique`` first when values are
    negative or above 65536).
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
    if not np.issubdtype(a.dtype, np.integer):
        values = [int(v) for v in np.unique(a)]
        return {v: (bounding_extent(a, v) if extents else None) for v in values if include_zero or v != 0}
    plane = a.max(axis=0)  # one pass: the largest value over k of each (j, i)
    high = int(plane.max())
    low = int(a.min()) if a.dtype.kind != "u" or include_zero else 0
    if low >= 0 and high <= 1:  # a binary mask: its box from that plane and the slices at its ends
        boxes = {v: None for v in sorted({low, high}) if include_zero or v}
        if extents and 0 in boxes:
            boxes[0] = bounding_extent(a, 0)
        if extents and 1 in boxes:
            boxes[1] = _plane_box(a, plane)
    elif low >= 0 and high <= 1 << 16:
        boxes = {n: (_slices_extent(b) if extents else None)
                 for n, b in enumerate(ndimage.find_objects(a), start=1) if b is not None}
        if include_zero and not a.all():
            boxes = {0: bounding_extent(a, 0) if extents else None, **boxes}
    else:  # negative or sparse values: find_objects over their ranks
        values, ranks = np.unique(a, return_inverse=True)
        found = ndimage.find_objects(ranks.reshape(a.shape) + 1) if extents else [None] * len(values)
        boxes = {int(v): (_slices_extent(b) if b else None) for v, b in zip(values, found) if include_zero or v}
    return boxes


def _slices_extent(box: tuple[slice, ...]) -> Extent:
    k, j, i = box
    return (i.start, i.stop - 1, j.start, j.stop - 1, k.start, k.stop - 1)


def _extent_is_empty(extent: Sequence[int] | None) -> bool:
    return extent is not None and any(extent[2 * a] > extent[2 * a + 1] for a in range(3))


def bounding_extent(mask_or_labels: np.ndarray, value: int | None = None) -> Extent | None:
    """``(i0, i1, j0, j1, k0, k1)`` of the voxels equal to ``value`` (non-zero when None), or None when none."""
    a = np.asarray(mask_or_labels)
    while a.ndim < 3:
        a = a[np.newaxis]
    if value is None:
        m = a if a.dtype == bool or (a.dtype.kind == "u" and a.dtype.itemsize == 1) else a != 0
    else:
        m = a == value
    return _box(m, m.max(axis=(1, 2)))


def _box(m: np.ndarray, slice_max: np.ndarray) -> Extent | None:
    """The extent of the non-zero voxels of a non-negative 3D array, given the maximum of each k slice."""
    ks = np.flatnonzero(slice_max)
    if not len(ks):
        return None
    plane = m[ks[0]:ks[-1] + 1].max(axis=0)
    js = np.flatnonzero(plane.any(axis=1))
    is_ = np.flatnonzero(plane.any(axis=0))
    return (int(is_[0]), int(is_[-1]), int(js[0]), int(js[-1]), int(ks[0]), int(ks[-1]))


def _plane_box(a: np.ndarray, plane: np.ndarray, block: int = 8) -> Extent | None:
    """The extent of the non-zero voxels of a non-negative 3D array, given its maximum over k (``plane``).

    (j, i) come from the plane; k from the first and last occupied slices of that
    (j, i) box, sought ``block`` slices at a time from each end, so a mask that
    fills most slices is read only near its ends.
    """
    js = np.flatnonzero(plane.any(axis=1))
    if not len(js):
        return None
    is_ = np.flatnonzero(plane.any(axis=0))
    box = a[:, js[0]:js[-1] + 1, is_[0]:is_[-1] + 1]
    n = box.shape[0]
    k0 = next(s + int(hit[0]) for s in range(0, n, block)
              if len(hit := np.flatnonzero(box[s:s + block].max(axis=(1, 2)))))
    k1 = next(s + int(hit[-1]) for s in range(((n - 1) // block) * block, -1, -block)
              if len(hit := np.flatnonzero(box[s:s + block].max(axis=(1, 2)))))
    return (int(is_[0]), int(is_[-1]), int(js[0]), int(js[-1]), k0, k1)


def label_extents(labels: np.ndarray, values: Iterable[int]) -> dict[int, Extent | None]:
    """Bounding extents of several label values (None for a value not in the data)."""
    values = [int(v) for v in values]
    boxes = label_summary(labels, include_zero=0 in values) if values else {}
    return {v: boxes.get(v) for v in values}


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
