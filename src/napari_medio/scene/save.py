"""Save data objects as a Slicer scene: a ``.mrml`` with its data files, or one ``.mrb``.

Each object becomes the node structure Slicer writes (data, display and storage
nodes linked by ``references``, a subject-hierarchy item in its folder), its data
written through :func:`napari_medio.core.registry.write`.  The parent transforms
an object had in the scene it came from (``metadata["scene"]["transforms"]``) are
written back as ``LinearTransform`` nodes, and the object's data un-applied from
them, so that Slicer shows the same hierarchy.

Safety: every file goes to a staging folder first; only when all of them (and
the ``.mrml``) are written are they renamed into place, the scene last.  A
``.mrb`` is zipped into a temporary file next to the target and renamed.  A
failure or a cancel leaves the previous files untouched and names the file that
failed (:class:`~napari_medio.core.errors.WriteError`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..core.errors import CancelledError, MedioError, WriteError
from ..core.kinds import VOLUME_KINDS, DataKind
from .loader import apply_world_matrix, open_scene_source, read_transform_node, resolve_file
from .mrb import BundleWriter
from .mrml import (
    MrmlDocument,
    MrmlNode,
    ShItem,
    format_floats,
    format_node_attributes,
    format_references,
    mrml_text,
    node_attrs,
    storage_attrs,
)
from .nodes import safe_file_base, spec_for, volume_geometry_attrs
from .sequence import data_node_class, write_sequence_bundle

__all__ = ["SaveItem", "data_fingerprint", "default_extension", "plan_items", "save_scene"]


def _subtype(obj: Any) -> str | None:
    kind = getattr(obj, "kind", None)
    if kind == DataKind.MARKUPS:
        return getattr(obj, "type", "Fiducial")
    if kind == DataKind.TRANSFORM:
        return getattr(obj, "type", "linear")
    if kind == DataKind.VOLUME and getattr(obj, "components", None) is not None \
            and not getattr(obj, "is_rgb", False):
        return "vector"
    return None


def _is_sequence(obj: Any) -> bool:
    """A volume with one leading sequence (time, list) axis: saved as a Sequence node (.seq.mrb)."""
    return getattr(obj, "kind", None) in VOLUME_KINDS and len(getattr(obj, "extra_axes", None) or []) == 1


def default_extension(obj: Any) -> str:
    """The extension Slicer writes for this data (``defaultWriteFileExtension``)."""
    kind = getattr(obj, "kind", None)
    if _is_sequence(obj):
        return ".seq.mrb"
    if kind == DataKind.TRANSFORM and getattr(obj, "type", "linear") == "grid":
        return ".nrrd"
    return spec_for(kind, _subtype(obj)).extension


@dataclass
class SaveItem:
    """One object to save: its file (relative to the scene folder) and whether to write it."""

    obj: Any
    file: str
    write: bool = True
    options: dict = field(default_factory=dict)

    @property
    def scene_md(self) -> dict:
        md = getattr(self.obj, "metadata", None)
        return (md or {}).get("scene") or {} if isinstance(md, dict) else {}


def plan_items(objects: list, bundle: bool, data_dir: str = "Data") -> list[SaveItem]:
    """Default :class:`SaveItem` per object: ``<name><ext>`` (in ``Data/`` for a bundle), unique names."""
    used: set[str] = set()
    items = []
    for obj in objects:
        ext = default_extension(obj)
        name = getattr(obj, "name", "") or getattr(obj, "kind", "data")
        base = safe_file_base(name[: -len(ext)] if name.lower().endswith(ext) else name)
        candidate = base + ext
        n = 0
        while candidate.lower() in used:
            n += 1
            candidate = f"{base}_{n}{ext}"
        used.add(candidate.lower())
        rel = f"{data_dir}/{candidate}" if bundle else candidate
        items.append(SaveItem(obj, rel))
    return items


def data_fingerprint(obj: Any) -> str:
    """A digest of an object's data (voxels, vertices, points, geometry), to skip unchanged files."""
    h = hashlib.blake2b(digest_size=16)
    for attr in ("array", "points", "connectivity", "offsets"):
        value = getattr(obj, attr, None)
        if value is not None:
            a = np.ascontiguousarray(np.asarray(value))
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(memoryview(a).cast("B"))
    geometry = getattr(obj, "geometry", None)
    if geometry is not None and hasattr(geometry, "to_dict"):
        h.update(json.dumps(geometry.to_dict()).encode())
    info = getattr(obj, "info", None)
    if callable(info) and getattr(obj, "kind", None) in (DataKind.MARKUPS, DataKind.TRANSFORM,
                                                          DataKind.SEGMENTATION, DataKind.TABLE,
                                                          DataKind.COLORTABLE):
        try:
            h.update(json.dumps(info(), default=str, sort_keys=True).encode())
        except Exception:
            pass
    return h.hexdigest()


class _Ids:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def new(self, cls: str) -> str:
        self.counts[cls] = self.counts.get(cls, 0) + 1
        return f"vtkMRML{cls}Node{self.counts[cls]}"


def _bool(v: Any) -> str:
    return "true" if v else "false"


def _display_attrs(kind: str, obj: Any, display: dict, spec_display_tag: str) -> dict:
    """Display node attributes: the scene's own (when the class matches), updated with the current state."""
    raw = dict(display.get("raw") or {}) if display.get("node_class") == spec_display_tag else {}
    raw.pop("name", None)
    out: dict[str, str] = {"name": "", "hideFromEditors": "true", "selectable": "true", "selected": "false"}
    out.update({k: v for k, v in raw.items() if k not in ("id", "references")})
    if "color" in display:
        out["color"] = format_floats(display["color"])
    if "selectedColor" in display:
        out["selectedColor"] = format_floats(display["selectedColor"])
    out["opacity"] = f"{float(display.get('opacity', 1.0)):.6g}"
    out["visibility"] = _bool(display.get("visible", True))
    if kind == DataKind.VOLUME:
        out.setdefault("colorNodeID", "vtkMRMLColorTableNodeGrey")
        window = getattr(obj, "window", None)
        c, w = (window.center, window.width) if window is not None else (None, None)
        if display.get("window") is not None:
            w, c = display["window"], display["level"]
        if w is not None and c is not None and float(w) > 0:
            out["window"], out["level"] = f"{float(w):.17g}", f"{float(c):.17g}"
            out["autoWindowLevel"] = "0"
        out.setdefault("interpolate", "1")
    elif kind == DataKind.LABELMAP:
        out.setdefault("colorNodeID", "vtkMRMLColorTableNodeFileGenericAnatomyColors.txt")
    elif kind == DataKind.MODEL:
        out.setdefault("color", "0.5 0.5 0.5")
        out.setdefault("scalarVisibility", "false")
        out.setdefault("backfaceCulling", "true")
    elif kind == DataKind.SEGMENTATION:
        out.setdefault("visibility2DFill", "true")
        out.setdefault("visibility2DOutline", "true")
    return out


def _world_matrix(chain: list) -> tuple[np.ndarray, bool]:
    w = np.eye(4)
    linear = True
    for t in chain:
        m = t.get("matrix_to_parent_lps")
        if m is None:
            linear = False
            continue
        w = np.asarray(m, dtype=float) @ w
    return w, linear


def save_scene(objects_or_items: list, path: os.PathLike[str] | str, *,
               progress: Callable[[int, int, str], None] | None = None,
               cancel: Callable[[], bool] | None = None, compresslevel: int = 1) -> list[str]:
    """Write a scene (``.mrml`` + data files, or ``.mrb``); returns the paths written.

    ``objects_or_items``: data objects (default file names) or :class:`SaveItem` s.
    Objects keep their scene placement from ``metadata["scene"]`` (folder, parent
    transforms, display); objects in world coordinates are un-applied from their
    parent transforms before writing.
    """
    target = Path(path)
    bundle = target.suffix.lower() in (".mrb", ".zip")
    if not bundle and target.suffix.lower() != ".mrml":
        raise WriteError(target, "a scene is saved as .mrml (with its files) or .mrb")
    if objects_or_items and not isinstance(objects_or_items[0], SaveItem):
        items = plan_items(list(objects_or_items), bundle)
    else:
        items = list(objects_or_items)
    for it in items:
        rel = PurePosixPath(it.file.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            raise WriteError(target, f"data file {it.file!r} must be a relative path inside the scene folder")
    target_dir = target.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = target_dir / f".medio-save-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    writer = None
    try:
        if bundle:
            writer = BundleWriter(target, compresslevel=compresslevel)
        on_staged = (lambda rel: writer.add(staging / rel, rel, remove=True)) if writer is not None else None
        doc, staged = _write_all(items, staging, target, bundle, progress, cancel, on_staged)
        if cancel is not None and cancel():
            raise CancelledError(target)
        if writer is not None:
            mrml_name = writer.top.split(".", 1)[0] + ".mrml"
            writer.writestr(mrml_name, mrml_text(doc).encode("utf-8"))
            writer.finish()
            writer = None
            written = [os.fspath(target)]
        else:
            (staging / target.name).write_text(mrml_text(doc), encoding="utf-8")
            written = []
            for rel in staged:  # data files first, the scene last
                dest = target_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / rel, dest)
                written.append(os.fspath(dest))
            os.replace(staging / target.name, target)
            written.append(os.fspath(target))
    except OSError as exc:
        raise WriteError(target, f"cannot write the scene: {exc.strerror or exc}") from None
    finally:
        if writer is not None:
            writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
    if progress is not None:
        progress(len(items), len(items), "")
    return written


_DATA_KINDS = (DataKind.SEGMENTATION, DataKind.VOLUME, DataKind.LABELMAP, DataKind.MODEL, DataKind.MARKUPS,
               DataKind.TABLE, DataKind.COLORTABLE)


class _SceneWriter:
    """Builds one scene: MRML nodes and subject-hierarchy items, data files staged under ``staging``."""

    def __init__(self, items: list[SaveItem], staging: Path, target: Path, bundle: bool,
                 on_staged: Callable[[str], None] | None) -> None:
        self.staging, self.target, self.bundle, self.on_staged = staging, target, bundle, on_staged
        self.ids = _Ids()
        self.doc = MrmlDocument(root_attrs={})
        self.staged: list[str] = []
        self.sh: list[ShItem] = [ShItem(id=3, parent=0, name="Scene", level="Scene")]
        self.next_sh = 4
        self.folders: dict[str, int] = {"": 3}
        self.transform_ids: dict[str, str] = {}  # original scene id -> new id
        self.used_files = {it.file.lower() for it in items}

    # -- files -------------------------------------------------------------------------------
    def stage(self, rel: str) -> None:
        """Record a written data file (relative to the staging folder), once."""
        if rel not in self.staged:
            self.staged.append(rel)
            if self.on_staged is not None:
                self.on_staged(rel)

    def staged_path(self, rel: str) -> Path:
        """The staging path of a data file, its folder made."""
        dest = self.staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest

    def write_data(self, obj: Any, rel: str, options: dict) -> None:
        """Write one object through the registry to ``rel`` in the staging folder."""
        from ..core import registry

        dest = self.staged_path(rel)
        final = (self.target.parent / rel) if not self.bundle else PurePosixPath(self.target.name) / rel
        try:
            paths = registry.write(obj, dest, **options)
        except MedioError as exc:
            raise WriteError(os.fspath(final), f"cannot write {getattr(obj, 'name', '') or 'data'!r}: "
                                               f"{exc.reason}") from None
        for p in paths:
            self.stage(Path(p).resolve().relative_to(self.staging.resolve()).as_posix())

    def write_sequence(self, obj: Any, rel: str) -> dict:
        """Write a 4D volume as a ``.seq.mrb``; returns the Sequence node's attributes."""
        try:
            _, attrs = write_sequence_bundle(obj, self.staged_path(rel))
        except MedioError as exc:
            raise WriteError(os.fspath(self.target.parent / rel),
                             f"cannot write sequence {getattr(obj, 'name', '')!r}: {exc.reason}") from None
        self.stage(rel)
        return attrs

    def unique_file(self, base: str, ext: str) -> str:
        """A data file name not used yet in this scene (``Data/`` in a bundle)."""
        prefix = "Data/" if self.bundle else ""
        rel = f"{prefix}{base}{ext}"
        n = 0
        while rel.lower() in self.used_files:
            n += 1
            rel = f"{prefix}{base}_{n}{ext}"
        self.used_files.add(rel.lower())
        return rel

    # -- nodes -------------------------------------------------------------------------------
    def storage_node(self, spec: Any, rel: str, extra: dict) -> MrmlNode:
        """Add the storage node of a data file."""
        attrs = storage_attrs(self.ids.new(spec.storage_cls), spec.storage_cls, rel, spec.extension)
        return self.doc.add(MrmlNode(spec.storage_tag, {**attrs, **extra}))

    def folder_item(self, path: str) -> int:
        """The subject-hierarchy item of a folder path (parents made first)."""
        path = path.strip("/")
        if path in self.folders:
            return self.folders[path]
        parent, _, name = path.rpartition("/")
        pid = self.folder_item(parent)
        fid = self.next_sh
        self.next_sh += 1
        self.sh.append(ShItem(id=fid, parent=pid, name=name, type="Folder", level="Folder"))
        self.folders[path] = fid
        return fid

    def sh_item(self, folder: str, node_id: str, sh_type: str) -> None:
        """Place a data node in the subject hierarchy, in its folder."""
        parent = self.folder_item(folder)
        self.sh.append(ShItem(id=self.next_sh, parent=parent, data_node=node_id, type=sh_type))
        self.next_sh += 1

    # -- transforms --------------------------------------------------------------------------
    def transform_node(self, entry: dict, obj: Any | None = None) -> str:
        """The new node id of a scene transform (written once, parents first)."""
        from ..core.transform import Transform

        old = entry.get("id") or f"new{len(self.transform_ids)}"
        if old in self.transform_ids:
            return self.transform_ids[old]
        parent_new = None
        if entry.get("parent_entry") is not None:
            parent_new = self.transform_node(entry["parent_entry"])
        tx = obj
        if tx is None:
            m = entry.get("matrix_to_parent_lps")
            if m is None:
                # A non-linear transform of the source scene (grid, b-spline, composite): its file
                # is copied from there, so that the user's transform is kept in the saved scene.
                nid = self.copy_source_transform(entry, parent_new)
                if nid:
                    self.transform_ids[old] = nid
                return nid
            tx = Transform.from_matrix_to_parent(np.asarray(m, dtype=float), name=entry.get("name", ""))
        subtype = getattr(tx, "type", "linear") if tx.type in ("linear", "grid", "bspline") else "composite"
        spec = spec_for(DataKind.TRANSFORM, subtype)
        nid = self.ids.new(spec.cls)
        self.transform_ids[old] = nid
        name = entry.get("name") or tx.name or "Transform"
        rel = self.unique_file(safe_file_base(name), spec.extension)
        self.write_data(tx, rel, {})
        extra = {"matrixTransformToParent": format_floats(tx.matrix_to_parent_ras)} if tx.is_linear else {}
        folder = entry.get("folder") or ""
        return self.add_transform_node(spec, spec.tag, nid, name, rel, parent_new, folder, extra)

    def add_transform_node(self, spec: Any, tag: str, nid: str, name: str, rel: str, parent_new: str | None,
                           folder: str, extra: dict | None = None) -> str:
        """Add a transform node with its storage node (file ``rel``) and subject-hierarchy item."""
        st = self.storage_node(spec, rel, {})
        refs = {"storage": [st.id]}
        if parent_new:
            refs["transform"] = [parent_new]
        attrs = node_attrs(nid, name, references=format_references(refs), **(extra or {}))
        self.doc.add(MrmlNode(tag, attrs))
        self.sh_item(folder, nid, "Transforms")
        return nid

    def copy_source_transform(self, entry: dict, parent_new: str | None) -> str:
        """Node id of a non-linear scene transform written from its source file ("" when not found)."""
        import warnings

        src = _source_transform_path(entry)
        name = entry.get("name") or "Transform"
        if src is None:
            warnings.warn(f"transform {name!r}: its file ({entry.get('file')}) is no longer found, so the saved "
                          f"scene does not hold it", UserWarning, stacklevel=6)
            return ""
        tag = entry.get("tag") if entry.get("tag") in ("GridTransform", "BSplineTransform") else "Transform"
        subtype = {"GridTransform": "grid", "BSplineTransform": "bspline"}.get(tag, "composite")
        spec = spec_for(DataKind.TRANSFORM, subtype)
        low = src.name.lower()
        ext = next((e for e in (".nii.gz", ".h5", ".hdf5", ".tfm", ".txt", ".mat", ".nrrd", ".nii", ".mha")
                    if low.endswith(e)), None)
        nid = self.ids.new(spec.cls)
        if ext is None:  # e.g. a detached header: read it and write one file
            tx = read_transform_node(MrmlNode(tag, {"id": nid, "name": name}), src)
            rel = self.unique_file(safe_file_base(name), spec.extension)
            self.write_data(tx, rel, {"format": "displacement-field"} if spec.extension == ".nrrd" else {})
        else:
            rel = self.unique_file(safe_file_base(name), ext)
            try:
                shutil.copyfile(src, self.staged_path(rel))
            except OSError as exc:
                raise WriteError(os.fspath(self.target.parent / rel),
                                 f"cannot copy transform {name!r} from {src}: {exc}") from None
            self.stage(rel)
        return self.add_transform_node(spec, tag, nid, name, rel, parent_new, entry.get("folder") or "")

    def add_transform_item(self, it: SaveItem) -> None:
        """A transform the caller saves as an object (written before the data so chains can refer to it)."""
        md = it.scene_md
        entry = {"id": md.get("node_id") or f"obj{id(it.obj)}", "name": getattr(it.obj, "name", ""),
                 "folder": md.get("folder", "")}
        chain = md.get("transforms") or []
        if chain:
            entry["parent_entry"] = _linked(chain)
        self.transform_ids.pop(entry["id"], None)
        self.used_files.discard(it.file.lower())
        self.transform_node(entry, it.obj)

    # -- data --------------------------------------------------------------------------------
    def local_data(self, it: SaveItem) -> tuple[Any, str]:
        """The object as its parent transform expects it, and that parent's node id ("" for none)."""
        md = it.scene_md
        chain = md.get("transforms") or []
        if not chain:
            return it.obj, ""
        world, linear = _world_matrix(chain)
        parent_id = self.transform_node(_linked(chain, md.get("scene")))
        if not linear:
            # Applied through a non-linear parent when opened: the data is in the world frame now,
            # so it is written without a parent (Slicer shows it where napari does); the transforms
            # are kept as nodes of their own.  Not applied: shown untransformed, local already.
            return it.obj, "" if md.get("applied", False) else parent_id
        if md.get("pending_matrix") is None and md.get("applied", True):
            obj, pending = apply_world_matrix(it.obj, np.linalg.inv(world))
            if pending is not None:  # cannot un-apply: keep it in world coordinates, no parent
                return it.obj, ""
            return obj, parent_id
        return it.obj, parent_id

    def display_node(self, kind: str, obj: Any, spec: Any, display: dict) -> str:
        """Add the display node of a data node (with its colour table for a label map)."""
        did = self.ids.new(spec.display_cls)
        dattrs = {"id": did}
        dattrs.update(_display_attrs(kind, obj, display, spec.display_tag))
        if kind == DataKind.LABELMAP and (getattr(obj, "metadata", {}) or {}).get("color_table"):
            dattrs["colorNodeID"] = self.colortable_node(obj)
        self.doc.add(MrmlNode(spec.display_tag, dattrs))
        return did

    def add_data_item(self, it: SaveItem) -> str:
        """Write one data object with its storage, display and data nodes; returns the node name."""
        kind = getattr(it.obj, "kind", None)
        md = it.scene_md
        obj, parent_id = self.local_data(it)
        sequence = _is_sequence(obj)
        if sequence:
            spec = spec_for(DataKind.SEQUENCE)
        elif kind in _DATA_KINDS:
            spec = spec_for(kind, _subtype(obj))
        else:
            raise WriteError(self.target, f"a scene cannot hold {getattr(obj, 'name', '')!r} (kind {kind!r})")
        seq_attrs: dict = {}
        if sequence:
            seq_attrs = self.write_sequence(obj, it.file)
        elif it.write or self.bundle or not (self.target.parent / it.file).exists():
            self.write_data(obj, it.file, dict(it.options))
        storage_extra = {"coordinateSystem": "LPS"} if kind in (DataKind.MODEL, DataKind.MARKUPS) else {}
        st = self.storage_node(spec, it.file, storage_extra)
        refs: dict[str, list[str]] = {}
        if spec.display_tag:
            refs["display"] = [self.display_node(kind, obj, spec, md.get("display") or {})]
        refs["storage"] = [st.id]
        if parent_id:
            refs["transform"] = [parent_id]
        nid = self.ids.new(spec.cls)
        attrs = node_attrs(nid, getattr(obj, "name", "") or md.get("name") or kind)
        custom_attrs = md.get("node_attributes") or {}
        if custom_attrs:
            attrs["attributes"] = format_node_attributes(custom_attrs)
        attrs["references"] = format_references(refs)
        if sequence:
            attrs["attributes"] = format_node_attributes(
                {**custom_attrs, "DataNodeClassName": f"vtkMRML{data_node_class(obj)[1]}Node"})
            attrs.update(seq_attrs)
        elif kind in VOLUME_KINDS:
            attrs.update(volume_geometry_attrs(obj))
        self.doc.add(MrmlNode(spec.tag, attrs))
        if sequence:
            self.sequence_browser(obj, nid, attrs["name"], parent_id)
        self.sh_item(md.get("folder", ""), nid, spec.sh_type)
        return attrs["name"]

    def sequence_browser(self, obj: Any, sequence_id: str, name: str, parent_id: str) -> str:
        """The proxy volume (showing item 0) and the SequenceBrowser node Slicer needs to show a sequence.

        Attributes as ``vtkMRMLSequenceBrowserNode::WriteXML`` writes them; references
        ``sequenceNodeRef0`` (the sequence) and ``dataNodeRef0`` (its proxy node).  Our
        loader skips proxies of browsed sequences, so a re-opened scene still gives one
        4D layer.  Returns the browser node ID.
        """
        frame = obj.with_array(obj.array[0], extra_axes=[])
        kind = getattr(obj, "kind", DataKind.VOLUME)
        spec = spec_for(kind, _subtype(frame))
        rel = self.unique_file(safe_file_base(name), spec.extension)
        self.write_data(frame, rel, {})
        st = self.storage_node(spec, rel, {})
        display: list[str] = []
        if spec.display_tag:
            display = [self.ids.new(spec.display_cls)]
            self.doc.add(MrmlNode(spec.display_tag, {"id": display[0],
                                                     **_display_attrs(kind, frame, {}, spec.display_tag)}))
        proxy_id = self.ids.new(spec.cls)
        refs = {"display": display, "storage": [st.id], "transform": [parent_id] if parent_id else []}
        proxy = node_attrs(proxy_id, name, references=format_references(refs))
        self.doc.add(MrmlNode(spec.tag, {**proxy, **volume_geometry_attrs(frame)}))
        browser_id = self.ids.new("SequenceBrowser")
        self.doc.add(MrmlNode("SequenceBrowser", node_attrs(
            browser_id, f"{name} browser",
            references=format_references({"sequenceNodeRef0": [sequence_id], "dataNodeRef0": [proxy_id]}),
            playbackActive="false", playbackRateFps="10", playbackItemSkippingEnabled="true",
            playbackLooped="true", selectedItemNumber="0", recordingActive="false",
            recordOnMasterModifiedOnly="false", indexDisplayFormat="%.2f", virtualNodePostfixes="0",
            SynchronizationPropertiesMap0=(
                "playback true recording false overwriteProxyName false saveChanges false "),
        )))
        return browser_id

    def colortable_node(self, obj: Any) -> str:
        """Write a label map's colour table as a ColorTable node; returns its ID."""
        from ..core.colortable import ColorTable

        table = ColorTable.from_label_table(obj.metadata["color_table"],
                                            name=f"{obj.name or 'labels'}_ColorTable")
        spec = spec_for(DataKind.COLORTABLE)
        rel = self.unique_file(safe_file_base(table.name), spec.extension)
        self.write_data(table, rel, {})
        st = self.storage_node(spec, rel, {})
        nid = self.ids.new(spec.cls)
        refs = format_references({"storage": [st.id]})
        self.doc.add(MrmlNode(spec.tag, node_attrs(nid, table.name, references=refs, type="13")))
        return nid

    def finish(self) -> MrmlDocument:
        """The document with its subject hierarchy node."""
        sh = node_attrs("vtkMRMLSubjectHierarchyNode1", "SubjectHierarchy", hidden=True,
                        attributes="SubjectHierarchyVersion:2")
        self.doc.add(MrmlNode("SubjectHierarchy", sh))
        self.doc.sh_items = self.sh
        return self.doc


def _write_all(items: list[SaveItem], staging: Path, target: Path, bundle: bool,
               progress: Callable | None, cancel: Callable | None,
               on_staged: Callable[[str], None] | None = None) -> tuple[MrmlDocument, list[str]]:
    """Write every item's data into ``staging`` and build the scene; returns (document, staged files)."""
    writer = _SceneWriter(items, staging, target, bundle, on_staged)
    # Transforms given as objects first (so that chains can refer to them).
    ordered = ([it for it in items if getattr(it.obj, "kind", None) == DataKind.TRANSFORM]
               + [it for it in items if getattr(it.obj, "kind", None) != DataKind.TRANSFORM])
    for done, it in enumerate(ordered, 1):
        if cancel is not None and cancel():
            raise CancelledError(target)
        if getattr(it.obj, "kind", None) == DataKind.TRANSFORM:
            writer.add_transform_item(it)
            label = getattr(it.obj, "name", "")
        else:
            label = writer.add_data_item(it)
        if progress is not None:
            progress(done, len(items), label)
    return writer.finish(), writer.staged


def _linked(chain: list, scene: str | None = None) -> dict:
    """The nearest transform of a chain with its parents linked (``parent_entry``)."""
    entries = [dict(c) for c in chain]
    for e in entries:
        if scene and not e.get("scene"):
            e["scene"] = scene
    for child, parent in zip(entries, entries[1:]):
        child["parent_entry"] = parent
    return entries[0]


def _source_transform_path(entry: dict) -> Path | None:
    """The file a scene transform was read from: its recorded path, else found again from the source scene."""
    p = entry.get("path")
    if p and Path(p).is_file():
        return Path(p)
    rel, scene = entry.get("file"), entry.get("scene")
    if not rel or not scene:
        return None
    scene_path = Path(scene)
    try:
        mrml, bundle_dir = open_scene_source(scene_path)
        found = resolve_file(rel, mrml.parent, bundle_dir, scene_path)
    except (MedioError, OSError):
        return None
    return found if found.is_file() else None
