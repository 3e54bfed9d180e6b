"""The "dicom" format in the registry: files (.dcm, .ima, DICOMDIR, no extension), folders and .zip.

Import stays cheap: pydicom and the series code load on first read.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ._parse import sniff_dicom_bytes
from .gzipped import gunzipped_head, is_gzip_head

__all__ = ["sniff", "read", "DICOM_FORMAT"]

#: Files checked when sniffing a folder, and how deep.
_SNIFF_FILES = 12
_SNIFF_DEPTH = 4


def _sniff_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
        return sniff_dicom_bytes(gunzipped_head(path, 256) if is_gzip_head(head) else head)
    except OSError:
        return False


def _sniff_folder(path: Path) -> bool:
    checked = 0
    stack = [(path, 0)]
    while stack and checked < _SNIFF_FILES:
        folder, depth = stack.pop(0)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for e in entries:
            if checked >= _SNIFF_FILES:
                break
            try:
                if e.is_dir():
                    subdirs.append(Path(e.path))
                    continue
                if not e.is_file() or e.name.startswith("."):
                    continue
            except OSError:
                continue
            if e.name.upper() == "DICOMDIR":
                return True
            checked += 1
            if _sniff_file(Path(e.path)):
                return True
        if depth < _SNIFF_DEPTH:
            stack.extend((d, depth + 1) for d in subdirs)
    return False


def _sniff_zip(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            for info in members[:_SNIFF_FILES]:
                name = info.filename.rsplit("/", 1)[-1]
                if name.upper() == "DICOMDIR":
                    return True
                with zf.open(info) as fh:
                    if sniff_dicom_bytes(fh.read(256)):
                        return True
    except Exception:
        return False
    return False


def sniff(head: bytes, path: Path) -> bool:
    """Registry sniff: a DICOM file, a folder holding DICOM files, or a zip of them."""
    p = Path(path)
    if head:
        if head[:4] == b"PK\x03\x04":
            return _sniff_zip(p)
        if is_gzip_head(head):  # *.dcm.gz: sniff the decompressed start
            return sniff_dicom_bytes(gunzipped_head(p))
        return sniff_dicom_bytes(head)
    if p.is_dir():
        return _sniff_folder(p)
    return False


def read(path: str | os.PathLike[str], *, progress: Any = None, cancel: Any = None, scan: Any = None,
         series: Any = None) -> list:
    """Every image series in the file/folder/zip as a Volume (one per series or sub-volume).

    ``progress(done, total)`` and ``cancel()`` callbacks; ``scan`` (a
    :class:`~napari_medio.dicom.series.DicomScan` of ``path`` already made) and
    ``series`` (the series keys to load, all when absent).
    """
    from .objects import object_kind, read_object
    from .series import read_dicom_path

    if os.path.isfile(path):
        with open(path, "rb") as fh:
            if object_kind(fh.read(8192)):  # a SEG / RTSTRUCT / SR file, whatever its name
                return read_object(path)
    delegate = _delegate if os.path.isdir(path) or Path(path).name.upper() == "DICOMDIR" or \
        os.fspath(path).lower().endswith(".zip") else None
    return read_dicom_path(path, progress=progress, cancel=cancel, delegate=delegate, scan=scan, series=series)


#: Modalities whose files other DICOM formats read (segmentations, RT structure sets, reports).
_DELEGATED = ("SEG", "RTSTRUCT", "SR")


def read_non_image_objects(headers: list) -> tuple[list, dict[str, str]]:
    """Objects (segmentations, RT structure sets, reports) of the non-image files among ``headers``.

    Each file is read by the format that claims it, as ``napari_medio.read`` of that file would:
    one code path for folders, archives and the DICOM database.  Returns the objects and
    ``{path: reason}`` for the files that could not be read.
    """
    from ..core import registry
    from ..core.errors import MedioError
    from .objects import object_kind, read_object

    out: list = []
    failed: dict[str, str] = {}
    for h in headers:
        if str(h.get("Modality") or "").upper() not in _DELEGATED:
            continue
        path = h["_path"]
        try:
            with open(path, "rb") as fh:
                kind = object_kind(fh.read(8192))
            if kind:  # SEG / RTSTRUCT / SR, whatever the file is named (IM000000 in a DICOMDIR)
                out.extend(read_object(path))
                continue
            fmt = registry.find_reader(path)
            if fmt.name == "dicom":
                continue
            out.extend(fmt.read(Path(path)))
        except MedioError as exc:
            failed[path] = str(exc)
        except Exception as exc:  # another format's failure must not lose the images
            failed[path] = f"{path}: {type(exc).__name__}: {exc}"
    return out, failed


def _delegate(headers: list) -> list:
    """Objects from non-image files of a folder; the files that fail are warned about."""
    import warnings

    out, failed = read_non_image_objects(headers)
    for reason in failed.values():
        warnings.warn(reason, UserWarning, stacklevel=3)
    return out


DICOM_FORMAT = register(
    FileFormat(
        name="dicom",
        description="DICOM images: files, DICOMDIR, folders and .zip archives (one volume per series)",
        extensions=(".dcm", ".dicom", ".ima", ".zip"),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME,),
        directories=True,
        priority=-1,
        backend="napari-medio on pydicom",
    )
)
