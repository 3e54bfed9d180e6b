"""Open a Slicer scene: every data node with a storage node, through the format registry.

:func:`scan_scene` lists what a scene holds (node, kind, file, subject-hierarchy
folder, composed parent transform) reading only the transform files it needs;
:func:`read_scene` then reads every data file through
:func:`napari_medio.core.registry.read` and returns plain data objects, each
placed in the world by its parent transforms and carrying what the scene said
about it in ``obj.metadata["scene"]`` (see :func:`scene_metadata`).  The CLI,
the npe2 reader and the widgets all use these two functions.

Coordinates: the scene is RAS, the world LPS (``F M F``, through
:func:`~napari_medio.core.geometry.flip_lps_ras_matrix`).  Linear parent
transforms are applied to volumes and segmentations as a new geometry (no
resampling), to objects with a ``transformed(matrix_lps)`` method through it;
for other objects the matrix stays in ``metadata["scene"]["pending_matrix"]`` for
the napari layer's affine.  A chain with a non-linear parent (grid, b-spline,
thin-plate) is applied link by link (:func:`apply_transform_chain`): volumes and
segmentations resampled, model and markups points moved.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CancelledError, FormatError, MedioError
from ..core.kinds import VOLUME_KINDS, DataKind
from ..core.volume import DisplayWindow
from .mrml import MrmlDocument, MrmlNode, parse_bool, parse_floats, read_mrml, url_decode
from .nodes import ANNOTATION_TAGS, MARKUP_TAGS, kind_of_tag
from .sequence import index_axis, index_node, parse_index_values, stack_items

__all__ = [
    "ScanResult",
    "SceneEntry",
    "SceneMissingFileWarning",
    "apply_transform_chain",
    "apply_world_matrix",
    "display_properties",
    "open_scene_source",
    "read_entry",
    "read_scene",
    "read_sequence_bundle",
    "read_transform_node",
    "resolve_file",
    "scan_scene",
    "storage_paths",
]

_BUNDLE_SUFFIXES = (".mrb", ".zip")


class SceneMissingFileWarning(UserWarning):
    """A data file a scene refers to does not exist (the node is skipped)."""


@dataclass
class SceneEntry:
    """One data node of a scene and where its data is."""

    node: MrmlNode
    kind: str
    file: str | None = None  # as the scene writes it (relative, decoded)
    path: Path | None = None  # resolved absolute path
    extra_files: list[Path] = field(default_factory=list)
    storage: MrmlNode | None = None
    display: MrmlNode | None = None
    folder: str = ""
    chain: list[dict] = field(default_factory=list)  # parent transforms, nearest first
    parent_transform: np.ndarray = field(default_factory=lambda: np.eye(4))  # LPS to-world
    linear_parents: bool = True

    @property
    def exists(self) -> bool:
        return self.path is not None and self.path.exists()

    @property
    def name(self) -> str:
        return self.node.name

    def info(self) -> dict:
        """The ``medio scene info --json`` record."""
        return {
            "kind": self.kind,
            "name": self.name,
            "file": self.file,
            "parent_transform": np.asarray(self.parent_transform).tolist(),
            "folder": self.folder,
            "node_id": self.node.id,
            "node_class": self.node.tag,
            "exists": self.exists,
            "parent_transform_linear": self.linear_parents,
            "transforms": [c["name"] for c in self.chain],
        }


@dataclass
class ScanResult:
    """What :func:`scan_scene` found."""

    mrml: Path
    document: MrmlDocument
    entries: list[SceneEntry]
    source: Path  # the file the user named (.mrml, .mrb, .zip)
    bundle_dir: Path | None = None
    transforms: dict = field(default_factory=dict)  # node id -> Transform object (read from files)

    def missing(self) -> list[SceneEntry]:
        return [e for e in self.entries if e.file and not e.exists]


def open_scene_source(path: os.PathLike[str] | str, **extract_options: Any) -> tuple[Path, Path | None]:
    """The ``.mrml`` to parse for ``path`` (a bundle is safely extracted to a temporary folder)."""
    p = Path(path)
    if p.is_dir():
        from .mrb import find_main_mrml

        main = find_main_mrml(p)
        if main is None:
            raise FormatError(p, "folder holds no .mrml scene")
        return main, None
    if not p.exists():
        raise FormatError(p, "file not found")
    with open(p, "rb") as fh:
        head = fh.read(4)
    if p.suffix.lower() in _BUNDLE_SUFFIXES or head == b"PK\x03\x04":
        if head != b"PK\x03\x04":
            raise FormatError(p, "not a scene bundle: a .mrb/.zip must be a zip archive"
                              if head else "file is empty")
        from .mrb import extract_to_temp

        folder, main = extract_to_temp(p, **extract_options)
        return main, folder
    return p, None


# -- display ---------------------------------------------------------------------------------------
_COLOR_KEYS = ("color", "selectedColor", "edgeColor")


def display_properties(node: MrmlNode | None) -> dict:
    """Display node attributes that napari can show, normalised (plus the raw attributes)."""
    if node is None:
        return {}
    a = node.attrs
    out: dict[str, Any] = {"node_class": node.tag, "raw": {k: v for k, v in a.items() if k not in ("id",)}}
    if "visibility" in a:
        out["visible"] = parse_bool(a.get("visibility"), True)
    if "opacity" in a:
        try:
            out["opacity"] = float(a["opacity"])
        except ValueError:
            pass
    for key in _COLOR_KEYS:
        c = parse_floats(a.get(key))
        if c and len(c) >= 3:
            out[key if key != "color" else "color"] = [float(x) for x in c[:3]]
    w, lv = parse_floats(a.get("window")), parse_floats(a.get("level"))
    if w and lv:
        out["window"], out["level"] = float(w[0]), float(lv[0])
        out["auto_window_level"] = parse_bool(a.get("autoWindowLevel"), False)
    color_node = a.get("colorNodeID") or (node.references.get("colorNode") or [None])[0]
    if color_node:
        out["color_node"] = color_node
    if "scalarVisibility" in a:
        out["scalar_visibility"] = parse_bool(a.get("scalarVisibility"))
    if "activeScalarName" in a:
        out["active_scalar"] = a["activeScalarName"]
    return out


# -- transforms -------------------------------------------------------------------------------------
def _matrix_from_node(node: MrmlNode) -> np.ndarray | None:
    """LPS to-parent matrix written in a LinearTransform element, or None."""
    from ..core.geometry import flip_lps_ras_matrix

    for key, inverse in (("matrixTransformToParent", False), ("matrixTransformFromParent", True)):
        values = parse_floats(node.get(key))
        if values and len(values) == 16:
            m = np.array(values, dtype=float).reshape(4, 4)
            if inverse:
                m = np.linalg.inv(m)
            return flip_lps_ras_matrix(m)
    return None


def storage_paths(doc: MrmlDocument, node: MrmlNode, root: Path, bundle_dir: Path | None,
                   scene_path: Path) -> tuple[MrmlNode | None, str | None, Path | None, list[Path]]:
    """(storage node, file name as written, resolved path, paths of further list members) of a data node."""
    storage = doc.node(node.reference("storage"))
    if storage is None:
        return None, None, None, []
    raw = storage.get("fileName")
    if not raw:
        uri = storage.get("uri")
        if uri:
            raise FormatError(scene_path, f"node {node.name!r} refers to a remote URI ({uri}); only local files "
                                          f"are read")
        return storage, None, None, []
    rel = url_decode(raw)
    path = resolve_file(rel, root, bundle_dir, scene_path)
    extras = []
    i = 0
    while storage.get(f"fileListMember{i}") is not None:
        extras.append(resolve_file(url_decode(storage.get(f"fileListMember{i}")), root, bundle_dir, scene_path))
        i += 1
    return storage, rel, path, extras


def resolve_file(rel: str, root: Path, bundle_dir: Path | None, scene_path: Path) -> Path:
    """The local path of a scene's file name ``rel``; inside a bundle, refused when it points outside it."""
    p = Path(rel)
    full = p if p.is_absolute() else root / p
    full = Path(os.path.normpath(full))
    if bundle_dir is not None:
        b = Path(os.path.normpath(bundle_dir.resolve()))
        if not (os.path.normpath(full.resolve()) + os.sep).startswith(str(b) + os.sep):
            # A bundle may only refer to its own files (Slicer rewrites paths inside the bundle).
            alt = root / p.name
            if p.is_absolute() and alt.exists():
                return alt
            raise FormatError(scene_path, f"bundled scene refers to a file outside the bundle: {rel!r}; refused")
    return full


def scan_scene(path: os.PathLike[str] | str, **extract_options: Any) -> ScanResult:
    """Parse a scene and plan its loading: one :class:`SceneEntry` per data node."""
    source = Path(path)
    mrml, bundle_dir = open_scene_source(source, **extract_options)
    doc = read_mrml(mrml)
    root = mrml.parent
    scene_label = source
    entries: list[SceneEntry] = []
    transforms: dict[str, Any] = {}
    matrices: dict[str, tuple[np.ndarray | None, bool]] = {}

    def transform_matrix(tnode: MrmlNode) -> tuple[np.ndarray | None, bool]:
        """(LPS to-parent matrix or None, linear?) of a transform node (reads its file when needed)."""
        if tnode.id in matrices:
            return matrices[tnode.id]
        # The transform's own file is what Slicer loads; matrixTransformToParent holds 6 significant digits.
        _, rel, tpath, _ = storage_paths(doc, tnode, root, bundle_dir, scene_label)
        m = _matrix_from_node(tnode) if tnode.tag == "LinearTransform" else None
        result: tuple[np.ndarray | None, bool] = (m, True)
        if tpath is not None and tpath.exists():
            tx = read_transform_node(tnode, tpath)
            transforms[tnode.id] = tx
            result = (tx.matrix_to_parent_lps, True) if tx.is_linear else (None, False)
        elif tnode.tag != "LinearTransform":
            result = (None, False)
        elif m is None:
            result = (np.eye(4), True)
        matrices[tnode.id] = result
        return result

    proxies = _sequence_proxies(doc)
    for node in doc.nodes:
        kind = kind_of_tag(node.tag, node.attrs)
        if kind is None or node.id in proxies:
            continue
        if node.tag == "Sequence" and node.get("singletonTag"):
            continue  # a .seq.mrb's own index node (read_scene stacks the items)
        storage, rel, fpath, extras = storage_paths(doc, node, root, bundle_dir, scene_label)
        if rel is None and not (node.tag == "LinearTransform" and _matrix_from_node(node) is not None):
            continue  # nothing to load (a node kept only in the scene, e.g. a default colour table)
        if node.tag == "Sequence" and node.get("hideFromEditors") == "true":
            continue
        display = doc.node(node.reference("display"))
        entry = SceneEntry(node=node, kind=kind, file=rel, path=fpath, extra_files=extras, storage=storage,
                           display=display, folder=doc.folder_of(node.id))
        # Parent transform chain, nearest first.
        world = np.eye(4)
        seen = {node.id}
        tid = node.reference("transform")
        while tid:
            tnode = doc.node(tid)
            if tnode is None or tid in seen:
                if tid in seen:
                    raise FormatError(scene_label, f"transform hierarchy of {node.name!r} has a cycle at {tid}")
                warnings.warn(f"{scene_label}: {node.name!r} refers to a missing transform node {tid}",
                              SceneMissingFileWarning, stacklevel=2)
                break
            seen.add(tid)
            m, linear = transform_matrix(tnode)
            _, trel, tpath, _ = storage_paths(doc, tnode, root, bundle_dir, scene_label)
            entry.chain.append({
                "id": tnode.id, "name": tnode.name, "tag": tnode.tag, "linear": linear,
                "matrix_to_parent_lps": None if m is None else np.asarray(m).tolist(), "file": trel,
                # where the transform's file was read from (a save copies a non-linear one from there)
                "path": os.fspath(tpath) if tpath is not None else None,
                "parent": tnode.reference("transform"),
            })
            if linear and m is not None:
                world = m @ world
            else:
                entry.linear_parents = False
            tid = tnode.reference("transform")
        entry.parent_transform = world
        entries.append(entry)
    return ScanResult(mrml=mrml, document=doc, entries=entries, source=source, bundle_dir=bundle_dir,
                      transforms=transforms)


def _sequence_proxies(doc: MrmlDocument) -> set[str]:
    """IDs of the proxy nodes of sequence browsers whose sequences have a file (they show one item of it)."""
    out: set[str] = set()
    for node in doc.nodes:
        if node.tag != "SequenceBrowser":
            continue
        refs = node.references
        sequences = [doc.node(i) for role, ids in refs.items() if role.startswith(("sequenceNodeRef", "rootNodeRef"))
                     for i in ids]
        if not any(s is not None and s.reference("storage") for s in sequences):
            continue
        for role, ids in refs.items():
            if role.startswith(("dataNodeRef", "proxyNodeRef")):
                out.update(ids)
    return out


def read_transform_node(tnode: MrmlNode, path: Path) -> Any:
    """The transform a transform node's file holds (LPS), named after the node."""
    from ..core import registry

    fmt = None
    if tnode.tag == "GridTransform" or path.name.lower().endswith((".nrrd", ".nhdr", ".mha", ".mhd", ".nii",
                                                                  ".nii.gz")):
        fmt = "displacement-field"
    objs = registry.read(path, format=fmt)
    tx = next((o for o in objs if getattr(o, "kind", None) == DataKind.TRANSFORM), None)
    if tx is None:
        raise FormatError(path, f"transform node {tnode.name!r}: file holds no transform")
    tx.name = tnode.name or tx.name
    return tx


# -- applying a world matrix ------------------------------------------------------------------------
def apply_world_matrix(obj: Any, matrix_lps: np.ndarray) -> tuple[Any, np.ndarray | None]:
    """``obj`` moved by an LPS 4x4; returns (object, matrix still to apply on the layer or None).

    Volumes and segmentations get a new geometry (composed index-to-LPS matrix);
    objects with ``transformed(matrix)`` use it; others are returned unchanged with
    the matrix pending (the napari layer's affine then carries it).
    """
    from ..core.geometry import Geometry

    m = np.asarray(matrix_lps, dtype=float)
    if np.allclose(m, np.eye(4), atol=1e-12, rtol=0):
        return obj, None
    if getattr(obj, "kind", None) == DataKind.TRANSFORM:
        return obj, None  # a transform node's own parent stays a hierarchy
    geometry = getattr(obj, "geometry", None)
    if isinstance(geometry, Geometry) and geometry.ndim == 3:
        new = Geometry.from_index_to_lps(m @ geometry.index_to_lps_matrix())
        if dataclasses.is_dataclass(obj):
            return dataclasses.replace(obj, geometry=new), None
        import copy

        out = copy.copy(obj)
        out.geometry = new
        return out, None
    transformed = getattr(obj, "transformed", None)
    if callable(transformed):
        return transformed(m), None
    return obj, m


# -- reading -----------------------------------------------------------------------------------------
def read_entry(entry: SceneEntry, read_options: dict) -> list:
    """The data objects of one scene entry's file(s), as the kind its node says (not yet placed in the world)."""
    from ..core import registry

    assert entry.path is not None
    node = entry.node
    if entry.kind == DataKind.TRANSFORM:
        return [read_transform_node(node, entry.path)]
    if entry.kind == DataKind.SEQUENCE:
        return _read_sequence(entry)
    options = dict(read_options)
    fmt = None
    if entry.kind == DataKind.LABELMAP:
        options["labelmap"] = True
    if entry.kind == DataKind.MODEL and entry.storage is not None:
        # Files without a SPACE marker: the storage node decides; an element without
        # coordinateSystem is legacy RAS (vtkMRMLModelStorageNode::ReadXMLAttributes).
        cs = str(entry.storage.get("coordinateSystem", "RAS")).strip().upper()
        options["coordinate_system"] = {"0": "RAS", "1": "LPS"}.get(cs, cs if cs in ("LPS", "RAS") else "LPS")
    if entry.kind in VOLUME_KINDS and entry.path.name.lower().endswith((".seg.nrrd", ".seg.nhdr")):
        fmt = None
    reader = registry.find_reader(entry.path, format=fmt)
    objs = registry.read(entry.path, format=reader.name, **registry.applicable_options(reader, "read", options))
    out = []
    for obj in objs:
        kind = getattr(obj, "kind", None)
        if entry.kind in VOLUME_KINDS and kind != entry.kind:
            if kind in VOLUME_KINDS and hasattr(obj, "with_array"):
                obj = obj.with_array(obj.array, kind=entry.kind)
            elif hasattr(obj, "convert_to"):
                converted = obj.convert_to(entry.kind)
                obj = converted if converted is not None else obj
        out.append(obj)
    return out


def _read_sequence(entry: SceneEntry) -> list:
    """A ``Sequence`` node: a ``.seq.mrb`` (generic sequence bundle) or a volume sequence file, as 4D volumes."""
    from ..core import registry
    assert entry.path is not None
    name = entry.path.name.lower()
    if name.endswith((".mrb", ".zip")):
        return read_sequence_bundle(entry.path, main_node=entry.node, name=entry.node.name)
    objs = registry.read(entry.path)
    out = []
    for obj in objs:
        axes = getattr(obj, "extra_axes", None)
        if axes and len(axes) == 1 and entry.node.get("indexName"):
            # The scene's index name/unit win (Slicer keeps them in the node as well as the file).
            axis = axes[0]
            scene_axis = index_axis(entry.node, [str(v) for v in (axis.values or [])])
            axis.name = scene_axis.name
            axis.unit = scene_axis.unit or axis.unit
        out.append(obj)
    return out


def read_sequence_bundle(path: os.PathLike[str] | str, *, main_node: MrmlNode | None = None,
                         name: str = "") -> list:
    """The items of a ``.seq.mrb``: ``[one 4D Volume]`` when they are volumes on one grid, else each item.

    ``main_node``: the main scene's ``Sequence`` node (its index attributes are used
    when the bundle has no ``SequenceIndex`` node).
    """
    source = Path(path)
    mrml, bundle_dir = open_scene_source(source)
    done = False
    try:
        doc = read_mrml(mrml)
        inode = index_node(doc) or main_node
        if inode is None:
            inode = next((n for n in doc.nodes if n.tag == "Sequence" and n.get("indexValues")), None)
        if inode is None:
            raise FormatError(source, "sequence bundle has no SequenceIndex node (no index values)")
        pairs = parse_index_values(inode.get("indexValues"))
        if not pairs:
            raise FormatError(source, "sequence bundle has no items")
        items: list = []
        for node_id, value in pairs:
            dnode = doc.node(node_id)
            if dnode is None:
                raise FormatError(source, f"sequence item {value!r} refers to a missing node {node_id}")
            kind = kind_of_tag(dnode.tag, dnode.attrs)
            storage, rel, fpath, extras = storage_paths(doc, dnode, mrml.parent, bundle_dir, source)
            if kind is None or fpath is None:
                raise FormatError(source, f"sequence item {value!r} ({dnode.tag}) has no data file")
            if not fpath.exists():
                raise FormatError(source, f"sequence item {value!r}: data file not found: {rel}")
            entry = SceneEntry(node=dnode, kind=kind, file=rel, path=fpath, extra_files=extras, storage=storage)
            objs = read_entry(entry, {})
            for o in objs:
                try:
                    o.name = o.name or dnode.name
                except AttributeError:
                    pass
            items.extend(objs if len(objs) != 1 else objs[:1])
        values = [v for _, v in pairs]
        label = name or (main_node.name if main_node is not None else "") or inode.name or source.name.split(".")[0]
        stacked = stack_items(items, inode, values, name=label) if len(items) == len(pairs) else None
        if stacked is not None:
            stacked.source = os.fspath(source)
            done = True
            return [stacked]
        warnings.warn(f"{source}: the sequence items are not volumes on one grid; they are loaded one by one",
                      UserWarning, stacklevel=2)
        return items  # they may map their files: the folder stays until exit
    finally:
        if bundle_dir is not None and done:
            shutil.rmtree(bundle_dir, ignore_errors=True)  # the stacked copy no longer needs the files


def apply_transform_chain(obj: Any, chain: list[dict], transforms: dict) -> tuple[Any, list[str]]:
    """``obj`` moved into the world through every parent transform, nearest first, non-linear ones included.

    Linear links change a volume's geometry (no resampling) or move points;
    non-linear links (grid, b-spline, thin-plate, composite; ``transforms`` maps
    their node IDs to :class:`~napari_medio.core.transform.Transform`) resample
    volumes, label maps and segmentations onto their own grid in the resampling
    (from-parent) direction and move model vertices and markups control points in
    the modeling (to-parent) direction, with
    :func:`~napari_medio.core.transform.resample_volume` and
    :meth:`~napari_medio.core.transform.Transform.transform_points_to_parent`.
    Returns (object, [the link that could not be applied]); after a failure the
    object is only partly moved and should not be used.
    """
    from ..core.transform import Transform

    skipped: list[str] = []
    for link in chain:
        m = link.get("matrix_to_parent_lps")
        if link.get("linear") and m is not None:
            tx = Transform.from_matrix_to_parent(np.asarray(m, dtype=float), name=link.get("name", ""))
        else:
            tx = transforms.get(link.get("id"))
            if tx is None:
                skipped.append(link.get("name") or link.get("id") or "?")
                break
        try:
            obj = _apply_one(obj, tx)
        except (MedioError, RuntimeError, ValueError) as exc:  # SimpleITK raises RuntimeError
            skipped.append(f"{link.get('name') or link.get('id')} ({exc})")
            break
    return obj, skipped


def _move_points(points: Any, tx: Any) -> np.ndarray:
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    if tx.is_linear:
        m = tx.matrix_to_parent_lps
        return pts @ m[:3, :3].T + m[:3, 3]
    return tx.transform_points_to_parent(pts)


def _apply_one(obj: Any, tx: Any) -> Any:
    from ..core.segmentation import Segmentation
    from ..core.transform import resample_volume
    from ..core.volume import AxisInfo, Volume

    kind = getattr(obj, "kind", None)
    if kind == DataKind.TRANSFORM:
        return obj
    if tx.is_linear:
        moved, pending = apply_world_matrix(obj, tx.matrix_to_parent_lps)
        if pending is None:
            return moved
    if isinstance(obj, Volume):
        return resample_volume(obj, tx)
    if isinstance(obj, Segmentation):
        arr = np.asarray(obj.array)
        extra = [AxisInfo("layer")] if arr.ndim == 4 else []
        res = resample_volume(Volume(arr, obj.geometry, kind=DataKind.LABELMAP, extra_axes=extra), tx)
        return dataclasses.replace(obj, array=np.asarray(res.array))
    if kind == DataKind.MODEL:
        pts = _move_points(obj.points, tx)
        if tx.is_linear:
            return obj.transformed(tx.matrix_to_parent_lps)
        return dataclasses.replace(obj, points=pts)
    if kind == DataKind.MARKUPS:
        out = obj.copy()
        for cp in out.control_points:
            if cp.position is not None:
                cp.position = _move_points(cp.position, tx)[0]
        if getattr(out, "center", None) is not None:
            out.center = _move_points(out.center, tx)[0]
        return out
    raise MedioError(getattr(obj, "source", None), f"cannot move a {kind or type(obj).__name__} through a "
                                                   f"{tx.type} transform")


def scene_metadata(entry: SceneEntry, scan: ScanResult) -> dict:
    """The JSON-able ``metadata["scene"]`` record kept with every object of a scene."""
    node = entry.node
    md: dict[str, Any] = {
        "node_id": node.id,
        "node_class": node.tag,
        "name": node.name,
        "file": entry.file,
        "path": os.fspath(entry.path) if entry.path else None,
        "folder": entry.folder,
        "parent_transform": np.asarray(entry.parent_transform).tolist(),
        "parent_transform_linear": entry.linear_parents,
        "transforms": entry.chain,
        "display": display_properties(entry.display),
        "node_attributes": node.node_attributes,
        "scene": os.fspath(scan.source),
    }
    if entry.storage is not None:
        md["storage"] = {k: v for k, v in entry.storage.attrs.items() if k not in ("id", "fileName")}
    if node.tag in MARKUP_TAGS or node.tag in ANNOTATION_TAGS:
        md["markup_type"] = {**MARKUP_TAGS, **ANNOTATION_TAGS}[node.tag]
    return md


#: Slicer's built-in volume colour nodes -> the nearest napari colormap (by the node ID's ending).
_BUILTIN_COLORMAPS = (
    ("InvertedGrey", "gray_r"), ("Grey", "gray"), ("Gray", "gray"), ("Iron", "inferno"), ("Rainbow", "turbo"),
    ("Ocean", "ice"), ("Red", "red"), ("Green", "green"), ("Blue", "blue"), ("Cyan", "cyan"),
    ("Magenta", "magenta"), ("Yellow", "yellow"), ("PET-Heat", "fire"), ("PET-Rainbow", "turbo"),
    ("Viridis.txt", "viridis"), ("Magma.txt", "magma"), ("Inferno.txt", "inferno"), ("Plasma.txt", "plasma"),
    ("Hot", "fire"), ("Cool", "ice"),
)


def builtin_colormap(color_node_id: str) -> str | None:
    """napari colormap name for one of Slicer's built-in volume colour nodes, or None."""
    for ending, name in _BUILTIN_COLORMAPS:
        if color_node_id.endswith(ending):
            return name
    return None


def _apply_display_to_object(obj: Any, display: dict, colortables: dict) -> None:
    """Put what the scene's display node says where the object's napari converter looks for it."""
    kind = getattr(obj, "kind", None)
    md = getattr(obj, "metadata", None)
    if kind in VOLUME_KINDS and isinstance(md, dict):
        if "window" in display and display["window"] > 0 and hasattr(obj, "window"):
            obj.window = DisplayWindow(center=display["level"], width=display["window"])
        cn = display.get("color_node")
        if kind == DataKind.LABELMAP and cn in colortables:
            md["color_table"] = colortables[cn].as_label_table()
        elif kind == DataKind.LABELMAP and cn and cn.endswith("GenericAnatomyColors.txt") \
                and not md.get("color_table"):
            from ..formats.terminology import generic_anatomy_label_table

            table = generic_anatomy_label_table()
            if table:
                md["color_table"] = table
        elif kind == DataKind.VOLUME and cn:
            colormap = builtin_colormap(cn)
            if colormap:
                md["colormap"] = colormap
            md.setdefault("scene_color_node", cn)
    elif kind == DataKind.MARKUPS:
        d = dict(getattr(obj, "display", {}) or {})
        for key in ("color", "selectedColor", "opacity"):
            if key in display:
                d[key] = display[key]
        obj.display = d


def read_scene(path: os.PathLike[str] | str, *, strict: bool = False,
               progress: Callable[[int, int, str], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> list:
    """Every data object of a scene, placed in the LPS world, with ``metadata["scene"]``.

    Missing data files are skipped with a :class:`SceneMissingFileWarning` (an error
    with ``strict=True``, or when nothing at all can be loaded).
    """
    read_options: dict = {}  # scene nodes say what each file is
    scan = scan_scene(path)
    if index_node(scan.document) is not None:  # a .seq.mrb opened on its own: one 4D layer
        return read_sequence_bundle(scan.source)
    objects: list = []
    missing = scan.missing()
    for e in missing:
        msg = f"{scan.source}: data file of {e.node.tag} {e.name!r} not found: {e.file}"
        if strict:
            raise FormatError(scan.source, f"data file of {e.node.tag} {e.name!r} not found: {e.file}")
        warnings.warn(msg, SceneMissingFileWarning, stacklevel=2)
    loadable = [e for e in scan.entries if e.exists or (e.file is None and e.kind == DataKind.TRANSFORM)]
    if not loadable and missing:
        raise FormatError(scan.source, f"none of the scene's {len(missing)} data files exist (first missing: "
                                       f"{missing[0].file})")
    # Colour tables first: label maps refer to them.
    order = sorted(loadable, key=lambda e: 0 if e.kind == DataKind.COLORTABLE else 1)
    colortables: dict[str, Any] = {}
    total = len(order)
    for n, entry in enumerate(order):
        if cancel is not None and cancel():
            raise CancelledError(scan.source)
        if progress is not None:
            progress(n, total, entry.name)
        if entry.file is None:  # a linear transform stored in the scene only
            from ..core.transform import Transform

            objs = [Transform.from_matrix_to_parent(_matrix_from_node(entry.node), name=entry.name)]
        elif entry.kind == DataKind.TRANSFORM and entry.node.id in scan.transforms:
            objs = [scan.transforms[entry.node.id]]
        else:
            try:
                objs = read_entry(entry, read_options)
            except MedioError as exc:
                if strict:
                    raise
                warnings.warn(f"{scan.source}: cannot load {entry.node.tag} {entry.name!r}: {exc}",
                              SceneMissingFileWarning, stacklevel=2)
                continue
        display = display_properties(entry.display)
        for i, obj in enumerate(objs):
            if entry.name and i == 0:
                try:
                    obj.name = entry.name
                except AttributeError:
                    pass
            if entry.kind == DataKind.COLORTABLE:
                colortables[entry.node.id] = obj
            _apply_display_to_object(obj, display, colortables)
            md = scene_metadata(entry, scan)
            applied = True
            if entry.linear_parents:
                obj, pending = apply_world_matrix(obj, entry.parent_transform)
            else:
                pending = None
                moved, skipped = apply_transform_chain(obj, entry.chain, scan.transforms)
                if skipped:
                    applied = False  # shown untransformed, as in its file (saved back under its parents)
                    warnings.warn(f"{scan.source}: {entry.name!r} is shown untransformed: it cannot be moved "
                                  f"through its parent transform(s) {', '.join(skipped)}",
                                  SceneMissingFileWarning, stacklevel=2)
                else:
                    obj = moved
            md["applied"] = pending is None and applied
            md["pending_matrix"] = None if pending is None else np.asarray(pending).tolist()
            meta = getattr(obj, "metadata", None)
            if isinstance(meta, dict):
                meta["scene"] = md
            else:
                try:
                    obj.metadata = {"scene": md}
                except AttributeError:
                    pass
            objects.append(obj)
    if progress is not None:
        progress(total, total, "")
    return objects
