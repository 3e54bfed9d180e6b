"""MRML scene XML: parse (safely) and write the structure 3D Slicer writes.

Reference: ``shared/reference/mrml-mrb.md``.  Parsing goes through ``defusedxml``
with DTDs forbidden, so external entities (XXE) and entity expansion bombs
(billion laughs) are refused with a :class:`~napari_medio.core.errors.FormatError`
naming the file.  No napari here; only the standard library, NumPy and defusedxml.

* :class:`MrmlNode` -- one top-level element: its tag, attributes (XML-decoded, in
  file order), parsed references (``references=`` and the legacy ``*NodeRef``
  attributes) and, for the subject hierarchy, its body.
* :class:`MrmlDocument` -- the scene: root attributes, nodes in order, lookup by ID,
  subject-hierarchy folders.
* :func:`parse_mrml` / :func:`write_mrml` -- bytes/file <-> document.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from ..core.errors import FormatError

__all__ = [
    "MAX_MRML_BYTES",
    "SLICER_VERSION",
    "MrmlDocument",
    "MrmlNode",
    "ShItem",
    "format_floats",
    "format_node_attributes",
    "format_references",
    "mrml_text",
    "node_attrs",
    "parse_bool",
    "parse_floats",
    "parse_mrml",
    "parse_node_attributes",
    "parse_references",
    "read_mrml",
    "storage_attrs",
    "url_decode",
    "url_encode",
    "write_mrml",
]

#: Version string written into scenes: new style with a positive revision (not "legacy").
SLICER_VERSION = "Slicer 5.8.1 33241"

#: Largest .mrml accepted (a real scene is kilobytes to a few megabytes).
MAX_MRML_BYTES = 256 * 1024 * 1024

_LEGACY_REF = re.compile(r"^(?P<role>[A-Za-z]+)NodeRef$")
_LEGACY_ROLES = {"storage": "storage", "display": "display", "transform": "transform"}


def parse_bool(value: str | None, default: bool = False) -> bool:
    """Slicer's boolean spellings: true/false, 1/0, yes/no."""
    if value is None:
        return default
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off", ""):
        return False
    return default


def parse_floats(value: str | None) -> list[float] | None:
    """Whitespace-separated numbers, or None when absent or unparsable."""
    if value is None:
        return None
    try:
        return [float(x) for x in str(value).replace(",", " ").split()]
    except ValueError:
        return None


def url_decode(text: str) -> str:
    """Inverse of :func:`url_encode` (``%XX`` escapes)."""
    return unquote(text)


_URL_ENCODE = {"%": "%25", " ": "%20", "'": "%27", ">": "%3E", "<": "%3C", '"': "%22"}


def url_encode(text: str) -> str:
    """``vtkMRMLNode::URLEncodeString``: only ``% space ' > < "`` are escaped."""
    return "".join(_URL_ENCODE.get(c, c) for c in text)


def node_attrs(node_id: str, name: str, *, hidden: bool = False, **extra: str) -> dict[str, str]:
    """The attributes every MRML node starts with (ID, name, editor flags), then ``extra``."""
    return {"id": node_id, "name": name, "hideFromEditors": "true" if hidden else "false",
            "selectable": "true", "selected": "false", **extra}


def storage_attrs(storage_id: str, storage_cls: str, file_name: str, extension: str) -> dict[str, str]:
    """Attributes of the storage node of one data file (``file_name`` relative to the scene, URL-encoded)."""
    return node_attrs(storage_id, storage_cls, hidden=True, fileName=url_encode(file_name),
                      useCompression="1", defaultWriteFileExtension=extension.lstrip("."), readState="0",
                      writeState="0")


def parse_references(text: str | None) -> dict[str, list[str]]:
    """``role:id1 id2 {k=v};role2:id;`` -> ``{role: [ids]}`` (reference properties dropped)."""
    out: dict[str, list[str]] = {}
    if not text:
        return out
    text = re.sub(r"\{[^}]*\}", " ", text)
    for part in text.split(";"):
        if ":" not in part:
            continue
        role, ids = part.split(":", 1)
        role = role.strip()
        if role:
            out.setdefault(role, []).extend(i for i in ids.split() if i)
    return out


def format_references(refs: dict[str, Iterable[str]]) -> str:
    """Inverse of :func:`parse_references`: ``role:id1 id2;`` for every role with IDs."""
    return "".join(f"{role}:{' '.join(ids)};" for role, ids in refs.items() if list(ids))


def parse_node_attributes(text: str | None) -> dict[str, str]:
    """The node ``attributes=`` value ``name:value;name:value`` (``%3B``/``%25`` decoded)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(";"):
        if not part:
            continue
        name, _, value = part.partition(":")
        out[name] = value.replace("%3B", ";").replace("%25", "%")
    return out


def format_node_attributes(attrs: dict[str, str]) -> str:
    """Inverse of :func:`parse_node_attributes`."""
    return ";".join(f"{k}:{str(v).replace('%', '%25').replace(';', '%3B')}" for k, v in attrs.items())


@dataclass
class ShItem:
    """One subject-hierarchy item: a data node's place or a folder/patient/study."""

    id: int
    parent: int
    name: str = ""
    data_node: str = ""
    type: str = ""
    level: str = ""
    attributes: dict = field(default_factory=dict)
    expanded: bool = True


@dataclass
class MrmlNode:
    """One top-level element of a scene."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the ElementTree element (subject hierarchy items live in it)

    @property
    def id(self) -> str:
        return self.attrs.get("id", "")

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def references(self) -> dict[str, list[str]]:
        """Node references by role: ``references=`` plus the legacy ``*NodeRef`` attributes."""
        refs = parse_references(self.attrs.get("references"))
        for key, value in self.attrs.items():
            m = _LEGACY_REF.match(key)
            if not m:
                continue
            role = m.group("role")
            role = _LEGACY_ROLES.get(role, role)
            if role not in refs:
                ids = [i for i in str(value).split() if i and i != "NULL"]
                if ids:
                    refs[role] = ids
        return refs

    def reference(self, role: str) -> str | None:
        """The first node ID referenced in ``role``, or None."""
        ids = self.references.get(role)
        return ids[0] if ids else None

    @property
    def node_attributes(self) -> dict[str, str]:
        """The ``attributes=`` name/value pairs."""
        return parse_node_attributes(self.attrs.get("attributes"))


@dataclass
class MrmlDocument:
    """A parsed scene: the root's attributes and every top-level node in file order."""

    nodes: list[MrmlNode] = field(default_factory=list)
    root_attrs: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    sh_items: list[ShItem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_id = {n.id: n for n in self.nodes if n.id}

    def add(self, node: MrmlNode) -> MrmlNode:
        self.nodes.append(node)
        if node.id:
            self._by_id[node.id] = node
        return node

    def node(self, node_id: str | None) -> MrmlNode | None:
        """The node with this ID, or None."""
        return self._by_id.get(node_id) if node_id else None

    @property
    def version(self) -> str:
        return self.root_attrs.get("version", "")

    @property
    def is_legacy(self) -> bool:
        """Slicer's rule: no parsable version with a positive revision (changes some defaults)."""
        v = self.version
        m = re.match(r"^([^ ]+) ([0-9]+)\.([0-9]+)\.([0-9]+) ([0-9]+)", v)
        if m:
            return int(m.group(5)) <= 0
        return True

    def folder_of(self, node_id: str) -> str:
        """Subject-hierarchy path of a data node (``"Patient/Study/Folder"``, '' at the scene root).

        Falls back to the legacy ``ModelHierarchy``/``Hierarchy`` nodes (``associatedNodeRef``).
        """
        by_id = {i.id: i for i in self.sh_items}
        item = next((i for i in self.sh_items if i.data_node == node_id), None)
        if item is not None:
            names: list[str] = []
            seen = set()
            parent = by_id.get(item.parent)
            while parent is not None and parent.id not in seen and parent.level != "Scene" and parent.parent != 0:
                seen.add(parent.id)
                names.append(parent.name or (self.node(parent.data_node).name if self.node(parent.data_node)
                                             else str(parent.id)))
                parent = by_id.get(parent.parent)
            return "/".join(reversed(names))
        # Legacy hierarchy nodes.
        for n in self.nodes:
            hierarchy = n.tag in ("ModelHierarchy", "Hierarchy", "DisplayableHierarchy")
            if hierarchy and n.reference("associated") == node_id:
                names = []
                seen = set()
                parent = self.node(n.reference("parent"))
                while parent is not None and parent.id not in seen:
                    seen.add(parent.id)
                    names.append(parent.name)
                    parent = self.node(parent.reference("parent"))
                return "/".join(reversed(names))
        return ""


def _sh_items(element: Any) -> list[ShItem]:
    items: list[ShItem] = []

    def walk(el: Any, parent_id: int) -> None:
        for child in el:
            if child.tag != "SubjectHierarchyItem":
                continue
            try:
                item_id = int(child.get("id", "0"))
            except ValueError:
                continue
            try:
                parent = int(child.get("parent", parent_id))
            except ValueError:
                parent = parent_id
            attrs = {}
            for pair in (child.get("attributes") or "").split("|"):
                if "^" in pair:
                    k, v = pair.split("^", 1)
                    attrs[k] = v
            items.append(ShItem(id=item_id, parent=parent, name=child.get("name", ""),
                                data_node=child.get("dataNode", ""), type=child.get("type", ""),
                                level=attrs.get("Level", ""), attributes=attrs,
                                expanded=parse_bool(child.get("expanded"), True)))
            walk(child, item_id)

    walk(element, 0)
    return items


def parse_mrml(data: bytes, path: os.PathLike[str] | str | None = None) -> MrmlDocument:
    """Parse scene XML (bytes); DTDs, entities and external references are refused."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as DET
    from defusedxml.common import DefusedXmlException

    if not data or not data.strip():
        raise FormatError(path, "scene file is empty")
    if len(data) > MAX_MRML_BYTES:
        raise FormatError(path, f"scene file is larger than {MAX_MRML_BYTES // (1 << 20)} MiB")
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FormatError(path, f"refused unsafe XML ({type(exc).__name__}: DTDs, entities and external "
                                f"references are not allowed in a scene)") from None
    except ParseError as exc:
        raise FormatError(path, f"not a valid MRML scene: XML error {exc}") from None
    except Exception as exc:  # pragma: no cover - expat oddities
        raise FormatError(path, f"not a valid MRML scene: {type(exc).__name__}: {exc}") from None
    if root.tag != "MRML":
        raise FormatError(path, f"not an MRML scene: root element is <{root.tag}>, expected <MRML>")
    doc = MrmlDocument(root_attrs=dict(root.attrib), path=os.fspath(path) if path is not None else None)
    for el in root:
        if not isinstance(el.tag, str):
            continue
        node = MrmlNode(tag=el.tag, attrs=dict(el.attrib), body=el if len(el) else None)
        doc.add(node)
        if el.tag == "SubjectHierarchy":
            doc.sh_items.extend(_sh_items(el))
    return doc


def read_mrml(path: os.PathLike[str] | str) -> MrmlDocument:
    """Parse a ``.mrml`` file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_MRML_BYTES:
            raise FormatError(p, f"scene file is larger than {MAX_MRML_BYTES // (1 << 20)} MiB")
        data = p.read_bytes()
    except FileNotFoundError:
        raise FormatError(p, "file not found") from None
    except IsADirectoryError:
        raise FormatError(p, "is a folder, not a scene file") from None
    except OSError as exc:
        raise FormatError(p, f"cannot open file: {exc.strerror or exc}") from None
    return parse_mrml(data, p)


# -- writing --------------------------------------------------------------------------------------
_XML_ESCAPES = {"&": "&amp;", '"': "&quot;", "'": "&apos;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;"}


def format_floats(values: Any) -> str:
    """Numbers as MRML writes them: space-separated, full precision (``.17g``), no negative zero."""
    return " ".join(f"{float(v) + 0.0:.17g}" for v in np.asarray(values, dtype=float).reshape(-1))


def xml_attr(value: Any) -> str:
    """``vtkMRMLNode::XMLAttributeEncodeString``."""
    return "".join(_XML_ESCAPES.get(c, c) for c in str(value))


def _sh_xml(items: list[ShItem], indent: str) -> str:
    children: dict[int, list[ShItem]] = {}
    for it in items:
        children.setdefault(it.parent, []).append(it)

    def attrs_text(it: ShItem) -> str:
        a = dict(it.attributes)
        if it.level and "Level" not in a:
            a = {"Level": it.level, **a}
        return "".join(f"{k}^{v}|" for k, v in a.items())

    def emit(it: ShItem, depth: int) -> str:
        parts = [f'{indent}{"  " * depth}<SubjectHierarchyItem id="{it.id}"']
        if it.data_node:
            parts.append(f' dataNode="{xml_attr(it.data_node)}"')
        else:
            parts.append(f' name="{xml_attr(it.name)}"')
        expanded = "true" if it.expanded else "false"
        parts.append(f' parent="{it.parent}" type="{xml_attr(it.type)}" expanded="{expanded}"')
        at = attrs_text(it)
        if at:
            parts.append(f' attributes="{xml_attr(at)}"')
        parts.append(">")
        kids = children.get(it.id, [])
        if kids:
            parts.append("\n" + "".join(emit(k, depth + 1) for k in kids) + f'{indent}{"  " * depth}')
        parts.append("</SubjectHierarchyItem>\n")
        return "".join(parts)

    return "".join(emit(it, 0) for it in children.get(0, []))


def mrml_text(doc: MrmlDocument) -> str:
    """The scene as Slicer writes it (``vtkMRMLScene::Commit``)."""
    root = {"version": SLICER_VERSION, "userTags": ""}
    root.update(doc.root_attrs)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    lines.append("<MRML " + "".join(f' {k}="{xml_attr(v)}"' for k, v in root.items()) + ">\n")
    for node in doc.nodes:
        attrs = "".join(f'  {k}="{xml_attr(v)}"' for k, v in node.attrs.items())
        body = ""
        if node.tag == "SubjectHierarchy" and doc.sh_items:
            body = "\n" + _sh_xml(doc.sh_items, "  ")
        lines.append(f" <{node.tag}\n  {attrs.lstrip()} >{body}</{node.tag}>\n")
    lines.append("</MRML>\n")
    return "".join(lines)


def write_mrml(doc: MrmlDocument, path: os.PathLike[str] | str) -> str:
    """Write ``doc`` to ``path`` atomically (UTF-8); returns the path."""
    from ..core.fileio import write_text

    return write_text(path, mrml_text(doc))[0]
