"""Slicer node sequences stored as bundles (``.seq.mrb``): the index, stacking items, writing a bundle.

A ``.seq.mrb`` is what ``vtkMRMLSequenceStorageNode::WriteDataInternal`` writes: the
sequence's private scene saved with ``vtkMRMLScene::WriteToMRB`` -- one data node
(plus its storage node) per item, files ``Data/<name>_<i>.<ext>`` -- and a
``Sequence`` node with ``singletonTag="SequenceIndex"`` that holds the index:
``indexName``, ``indexUnit``, ``indexType`` (``numeric``/``text``),
``numericIndexValueTolerance`` and ``indexValues="<dataNodeID>:<value>;..."``
(``vtkMRMLSequenceNode::WriteXML``).  In the main scene a ``Sequence`` node with the
same index attributes refers to a ``SequenceStorage`` node whose ``fileName`` is the
``.seq.mrb``.

Reading (:func:`napari_medio.scene.loader.read_sequence_bundle`, which reads the
items as scene entries): when every item is a volume (or every item a label map)
on one grid, :func:`stack_items` stacks them into ONE
:class:`~napari_medio.core.volume.Volume` with a leading sequence axis
(:func:`index_axis`: an :class:`~napari_medio.core.volume.AxisInfo` with the index
name, unit and values); otherwise the items are returned one by one.
Extraction goes through :func:`napari_medio.scene.mrb.extract_to_temp` (same
safety checks as any bundle).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WriteError
from ..core.kinds import DataKind
from .mrml import (
    MrmlDocument,
    MrmlNode,
    format_node_attributes,
    format_references,
    mrml_text,
    node_attrs,
    storage_attrs,
)
from .nodes import safe_file_base, volume_geometry_attrs

__all__ = ["SEQUENCE_INDEX_TAG", "data_node_class", "index_axis", "index_node", "parse_index_values",
           "sequence_node_attrs", "stack_items", "write_sequence_bundle"]

#: ``singletonTag`` of the node that carries the index inside a ``.seq.mrb``.
SEQUENCE_INDEX_TAG = "SequenceIndex"


def index_node(doc: MrmlDocument) -> MrmlNode | None:
    """The ``Sequence`` node holding a bundle's index (``singletonTag="SequenceIndex"``), or None."""
    for node in doc.nodes:
        if node.tag == "Sequence" and node.get("singletonTag") == SEQUENCE_INDEX_TAG:
            return node
    return None


def parse_index_values(text: str | None) -> list[tuple[str, str]]:
    """``id1:v1;id2:v2`` -> ``[(id1, v1), (id2, v2)]`` (split at the first ``:``, like Slicer)."""
    out = []
    for part in (text or "").split(";"):
        node_id, sep, value = part.partition(":")
        if sep and node_id:
            out.append((node_id, value))
    return out


def index_axis(node: MrmlNode, values: list[str]) -> Any:
    """The sequence axis (an :class:`~napari_medio.core.volume.AxisInfo`) a ``Sequence`` node describes."""
    from ..core.volume import AxisInfo

    index_type = (node.get("indexType") or "numeric").strip().lower()
    typed: list = list(values)
    if index_type != "text":
        try:
            typed = [int(float(v)) if float(v).is_integer() and "." not in v and "e" not in v.lower() else float(v)
                     for v in values]
        except ValueError:
            typed = list(values)
    return AxisInfo(name=node.get("indexName", "time") or "time", unit=node.get("indexUnit", "") or "",
                    values=typed, kind="list")


def stack_items(items: list, node: MrmlNode, values: list[str], name: str = "") -> Any:
    """One 4D Volume from per-item 3D volumes on one grid, or None when they do not stack."""
    from ..core.volume import Volume

    if not items or not all(isinstance(o, Volume) and not o.extra_axes for o in items):
        return None
    first = items[0]
    g0 = first.geometry
    for o in items[1:]:
        g = o.geometry
        if (o.kind != first.kind or o.shape != first.shape or o.dtype != first.dtype or g.ndim != g0.ndim
                or (o.components is None) != (first.components is None)
                or not np.allclose(g.index_to_lps_matrix(), g0.index_to_lps_matrix(), atol=1e-5, rtol=1e-6)):
            return None
    array = np.stack([np.asarray(o.array) for o in items])
    md = dict(first.metadata)
    md["sequence"] = {
        "index_type": (node.get("indexType") or "numeric").strip().lower(),
        "numeric_index_value_tolerance": node.get("numericIndexValueTolerance", "0.001"),
        "DataNodeClassName": node.node_attributes.get("DataNodeClassName", ""),
        "item_names": [o.name for o in items],
    }
    return Volume(array, g0, kind=first.kind, name=name or first.name, extra_axes=[index_axis(node, values)],
                  components=first.components, metadata=md, source=first.source, window=first.window)


def _index_strings(volume: Any) -> tuple[list[str], str]:
    axis = volume.extra_axes[0]
    n = volume.shape[0]
    values = axis.values if axis.values is not None and len(axis.values) == n else list(range(n))
    numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)
    text = [f"{v:.17g}" if isinstance(v, (float, np.floating)) else str(v) for v in values]
    return text, "numeric" if numeric else "text"


def sequence_node_attrs(volume: Any, item_ids: list[str]) -> dict:
    """The index attributes of a ``Sequence`` node for a 4D volume (``vtkMRMLSequenceNode::WriteXML``)."""
    axis = volume.extra_axes[0]
    text, index_type = _index_strings(volume)
    seq_md = (volume.metadata or {}).get("sequence") or {}
    tol = seq_md.get("numeric_index_value_tolerance", "0.001")
    return {
        "indexName": axis.name if axis.name and axis.name != "axis" else "time",
        "indexUnit": axis.unit or "",
        "indexType": index_type,
        "numericIndexValueTolerance": str(tol),
        # ';' and ':' separate entries: keep them out of the values.
        "indexValues": ";".join(f"{i}:{v.replace(';', '_')}" for i, v in zip(item_ids, text)),
    }


def data_node_class(volume: Any) -> tuple[str, str]:
    """(tag, class) of the items: LabelMapVolume, VectorVolume or Volume."""
    if volume.kind == DataKind.LABELMAP:
        return "LabelMapVolume", "LabelMapVolume"
    if volume.components is not None and not volume.is_rgb:
        return "VectorVolume", "VectorVolume"
    return "Volume", "ScalarVolume"


def write_sequence_bundle(volume: Any, path: os.PathLike[str] | str, *, compresslevel: int = 1) -> tuple[list[str],
                                                                                                       dict]:
    """Write a 4D volume (one leading sequence axis) as a Slicer ``.seq.mrb``.

    Returns (paths written, the main scene's ``Sequence`` node attributes incl. the
    item node IDs used inside the bundle).
    """
    from ..core import registry
    from ..core.volume import Volume
    from .mrb import write_bundle

    target = Path(path)
    if not isinstance(volume, Volume) or len(volume.extra_axes) != 1:
        raise WriteError(target, "a sequence bundle holds a volume with exactly one sequence (leading) axis")
    tag, cls = data_node_class(volume)
    n = volume.shape[0]
    base = safe_file_base(volume.name or "Sequence", limit=40)
    work = Path(tempfile.mkdtemp(prefix=".medio-seq-", dir=target.parent if target.parent.exists() else None))
    try:
        doc = MrmlDocument(root_attrs={})
        item_ids = [f"vtkMRML{cls}Node{i + 1}" for i in range(n)]
        files = []
        for i in range(n):
            item = Volume(volume.array[i], volume.geometry, kind=volume.kind, name=f"{volume.name or 'Sequence'}_{i}",
                          components=volume.components, metadata=dict(volume.metadata), window=volume.window)
            item.metadata.pop("sequence", None)
            rel = f"Data/{base}_{i}.nrrd"
            written = registry.write(item, work / rel)
            files.extend(Path(p) for p in written)
            sid = f"vtkMRMLVolumeArchetypeStorageNode{i + 1}"
            storage = storage_attrs(sid, "VolumeArchetypeStorage", rel, "nrrd")
            doc.add(MrmlNode("VolumeArchetypeStorage", storage))
            attrs = node_attrs(item_ids[i], item.name, references=format_references({"storage": [sid]}))
            attrs.update(volume_geometry_attrs(item))
            doc.add(MrmlNode(tag, attrs))
        seq_attrs = sequence_node_attrs(volume, item_ids)
        doc.add(MrmlNode("Sequence", node_attrs(
            f"vtkMRMLSequenceNode{SEQUENCE_INDEX_TAG}", volume.name or "Sequence",
            singletonTag=SEQUENCE_INDEX_TAG,
            attributes=format_node_attributes({"DataNodeClassName": f"vtkMRML{cls}Node"}), **seq_attrs)))
        top = target.name[: -len(".mrb")] if target.name.lower().endswith(".mrb") else target.stem
        mrml_name = top.split(".", 1)[0] + ".mrml"
        (work / mrml_name).write_text(mrml_text(doc), encoding="utf-8")
        write_bundle(work, target, top=top, files=[work / mrml_name, *files], compresslevel=compresslevel)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [os.fspath(target)], seq_attrs
