"""Medical Reality Bundles (.mrb, and .zip holding a scene): safe extraction and bundling.

Extraction goes through :func:`napari_medio.core.archive.safe_extract` (member names,
links, sizes, per-member and whole-archive ratios checked before anything is written).
The main scene is found as Slicer finds it: the ``.mrml`` with the fewest path components.

Bundling writes Slicer's layout (``<Top>/<Top>.mrml``, ``<Top>/Data/...``) to a
temporary file next to the target and renames it into place.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from ..core.archive import MAX_MEMBERS, MAX_RATIO, MAX_TOTAL_BYTES, check_archive, safe_extract
from ..core.errors import CancelledError, FormatError, WriteError
from ..core.fileio import new_file_mode

__all__ = [
    "MAX_MEMBERS",
    "MAX_RATIO",
    "MAX_TOTAL_BYTES",
    "BundleWriter",
    "check_archive",
    "extract_to_temp",
    "extract_to_temp_any",
    "find_main_mrml",
    "safe_extract",
    "write_bundle",
    "zip_has_mrml",
]


def zip_has_mrml(path: Path) -> bool:
    """True when ``path`` is a zip archive with a ``.mrml`` member (cheap: reads the directory only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".mrml") for n in zf.namelist())
    except Exception:
        return False


def find_main_mrml(folder: os.PathLike[str] | str) -> Path | None:
    """The ``.mrml`` with the fewest path components under ``folder`` (Slicer's rule), or None."""
    folder = Path(folder)
    found = [p for p in folder.rglob("*") if p.suffix.lower() == ".mrml" and p.is_file()]
    if not found:
        return None
    return min(found, key=lambda p: (len(p.relative_to(folder).parts), str(p)))


_TEMP_DIRS: list[str] = []


def _cleanup() -> None:
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def extract_to_temp_any(archive: os.PathLike[str] | str, **options) -> Path:
    """Safely extract any zip into a private temporary folder (removed at exit)."""
    import atexit

    archive = Path(archive)
    tmp = tempfile.mkdtemp(prefix="medio-mrb-")
    if not _TEMP_DIRS:
        atexit.register(_cleanup)
    _TEMP_DIRS.append(tmp)
    try:
        safe_extract(archive, tmp, **options)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Path(tmp)


def extract_to_temp(archive: os.PathLike[str] | str, **options) -> tuple[Path, Path]:
    """Extract a bundle into a private temporary folder (removed at exit); returns (folder, main .mrml)."""
    archive = Path(archive)
    tmp = extract_to_temp_any(archive, **options)
    main = find_main_mrml(tmp)
    if main is None:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FormatError(archive, "archive holds no .mrml scene")
    return Path(tmp), main


def bundle_top_name(path: os.PathLike[str] | str) -> str:
    """Slicer's top folder name: the file name without its last extension, trailing spaces trimmed."""
    name = Path(path).name
    if "." in name:
        name = name.rsplit(".", 1)[0]
    return name.rstrip() or "scene"


def write_bundle(folder: os.PathLike[str] | str, target: os.PathLike[str] | str, *, top: str | None = None,
                 files: Iterable[Path] | None = None, compresslevel: int = 1,
                 cancel: Callable[[], bool] | None = None) -> str:
    """Zip ``folder``'s content under ``<top>/`` into ``target`` (temp file next to it, then renamed).

    Files that are already compressed (``.gz``, gzip-encoded NRRD, ``.h5``, ``.png``,
    ``.zip``) are stored without recompression; others are deflated at ``compresslevel``.
    """
    folder = Path(folder)
    paths = sorted(files) if files is not None else sorted(p for p in folder.rglob("*") if p.is_file())
    writer = BundleWriter(target, top, compresslevel)
    try:
        for p in paths:
            if cancel is not None and cancel():
                raise CancelledError(Path(target))
            writer.add(p, p.relative_to(folder).as_posix())
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, OSError):
            raise WriteError(Path(target), f"cannot write bundle: {exc.strerror or exc}") from None
        raise
    return writer.finish()


def _already_compressed(p: Path) -> bool:
    name = p.name.lower()
    if name.endswith((".gz", ".zip", ".mrb", ".png", ".jpg", ".jpeg", ".h5", ".hdf5", ".mgz", ".zraw", ".bz2")):
        return True
    if name.endswith((".nrrd", ".seq.nrrd", ".seg.nrrd")):
        try:
            with open(p, "rb") as fh:
                head = fh.read(4096)
            end = head.find(b"\n\n")
            header = head if end < 0 else head[:end]
            return b"encoding: gzip" in header or b"encoding: gz" in header or b"encoding: bzip2" in header
        except OSError:
            return False
    return False


class BundleWriter:
    """An .mrb being written: ``add(path, rel)`` zips a file as ``<top>/<rel>`` (deleting it when
    ``remove=True``), ``writestr`` adds bytes, ``finish()`` closes and renames the temporary file onto
    the target, ``abort()`` removes it.  The target is untouched until ``finish``."""

    def __init__(self, target: os.PathLike[str] | str, top: str | None = None, compresslevel: int = 1) -> None:
        self.target = Path(target)
        self.top = top or bundle_top_name(self.target)
        self.compresslevel = compresslevel
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".medio-{self.target.name}-", suffix=".part", dir=self.target.parent)
        os.close(fd)
        self.tmp = Path(tmp_name)
        self.zf = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel,
                                  allowZip64=True)
        top_info = zipfile.ZipInfo(self.top + "/")
        top_info.external_attr = (0o40755 << 16) | 0x10
        self.zf.writestr(top_info, b"")

    def add(self, path: os.PathLike[str] | str, rel: str, remove: bool = False) -> None:
        path = Path(path)
        stored = _already_compressed(path)
        self.zf.write(path, f"{self.top}/{rel}", compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                      compresslevel=None if stored else self.compresslevel)
        if remove:
            path.unlink()

    def writestr(self, rel: str, data: bytes) -> None:
        self.zf.writestr(f"{self.top}/{rel}", data)

    def finish(self) -> str:
        try:
            self.zf.close()
            os.chmod(self.tmp, new_file_mode())
            os.replace(self.tmp, self.target)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError):
                raise WriteError(self.target, f"cannot write bundle: {exc.strerror or exc}") from None
            raise
        return os.fspath(self.target)

    def abort(self) -> None:
        try:
            self.zf.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)
