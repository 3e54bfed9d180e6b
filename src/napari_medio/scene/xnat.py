"""XNAT catalogs (.xcat) and archives (.xar): read the local files they list.

A catalog is XML (``cat:Catalog`` / ``cat:DCMCatalog``) whose ``entry`` elements
name files by a ``URI`` relative to the catalog.  Each listed file is read through
the format registry; DICOM files are read together, one series per volume (their
folders go to the DICOM reader once each).  Remote URIs (``http:``, ``xnat:``),
paths outside the catalog's folder in an archive, DTDs and entities are refused.
An archive (.xar) is a zip: it is extracted safely (see :mod:`.mrb`) and the
catalogs inside it are read.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from ..core.errors import FormatError, MedioError
from ..core.fileio import read_content

__all__ = ["catalog_files", "read_xnat"]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def catalog_files(path: os.PathLike[str] | str, confine_to: Path | None = None) -> list[Path]:
    """The local files an XNAT catalog lists (in catalog order, nested catalogs followed)."""
    from xml.etree.ElementTree import ParseError

    import defusedxml.ElementTree as DET
    from defusedxml.common import DefusedXmlException

    p = Path(path)
    data = read_content(p)
    try:
        root = DET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise FormatError(p, f"refused unsafe XML ({type(exc).__name__})") from None
    except ParseError as exc:
        raise FormatError(p, f"not a valid XNAT catalog: XML error {exc}") from None
    if "Catalog" not in _local(root.tag):
        raise FormatError(p, f"not an XNAT catalog: root element is <{_local(root.tag)}>")
    out: list[Path] = []
    base = p.parent
    for el in root.iter():
        if _local(el.tag) != "entry":
            continue
        uri = el.get("URI") or el.get("uri") or el.get("cachePath")
        if not uri:
            continue
        if "://" in uri or uri.startswith(("xnat:", "http:", "https:", "ftp:")):
            warnings.warn(f"{p}: remote catalog entry {uri!r} skipped (only local files are read)", stacklevel=2)
            continue
        full = Path(os.path.normpath(base / uri))
        if confine_to is not None:
            root_dir = os.path.normpath(confine_to.resolve())
            if not (os.path.normpath(full.resolve()) + os.sep).startswith(root_dir + os.sep):
                raise FormatError(p, f"catalog entry {uri!r} points outside the archive; refused")
        if full.suffix.lower() in (".xcat",) or (full.suffix.lower() == ".xml" and full.exists()
                                                   and b"Catalog" in full.read_bytes()[:4096]):
            out.extend(catalog_files(full, confine_to))
            continue
        out.append(full)
    return out


def _read_files(files: list[Path], source: Path) -> list:
    from ..core import registry

    objects: list = []
    dicom_dirs: list[Path] = []
    missing = [f for f in files if not f.exists()]
    for f in missing:
        warnings.warn(f"{source}: listed file not found: {f}", stacklevel=3)
    for f in files:
        if not f.exists():
            continue
        try:
            fmt = registry.find_reader(f)
        except MedioError as exc:
            warnings.warn(f"{source}: {exc}", stacklevel=3)
            continue
        if fmt.name == "dicom":
            if f.parent not in dicom_dirs:
                dicom_dirs.append(f.parent)
            continue
        objects.extend(registry.read(f))
    for d in dicom_dirs:
        objects.extend(registry.read(d, format="dicom"))
    if not objects and files:
        raise FormatError(source, "none of the files it lists could be read" if not missing
                          else f"{len(missing)} of {len(files)} listed files are missing")
    return objects


def read_xnat(path: os.PathLike[str] | str) -> list:
    """Data objects of every local file an XNAT catalog (.xcat) or archive (.xar) lists."""
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        from .mrb import extract_to_temp_any

        folder = extract_to_temp_any(p)
        catalogs = [c for c in sorted(folder.rglob("*")) if c.is_file() and (
            c.suffix.lower() == ".xcat" or (c.suffix.lower() == ".xml" and b"Catalog" in c.read_bytes()[:4096]))]
        if catalogs:
            files: list[Path] = []
            for c in catalogs:
                files.extend(f for f in catalog_files(c, confine_to=folder) if f not in files)
        else:
            files = [f for f in sorted(folder.rglob("*")) if f.is_file()]
        return _read_files(files, p)
    return _read_files(catalog_files(p), p)
