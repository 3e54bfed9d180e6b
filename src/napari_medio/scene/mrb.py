"""Medical Reality Bundles (.mrb, and .zip holding a scene): safe extraction and bundling.

Extraction refuses, before writing anything, archives whose members

* have absolute paths, drive letters, ``..`` components or backslash tricks,
* are symbolic links (or any entry that is not a plain file or folder),
* are encrypted,
* would add up to more than :data:`MAX_TOTAL_BYTES`, or more than
  :data:`MAX_MEMBERS` entries, or have a compression ratio above
  :data:`MAX_RATIO` (zip bombs),

and checks while copying that no member inflates beyond its declared size.  Every
refusal is a :class:`~napari_medio.core.errors.FormatError` naming the archive and
the member.  The main scene is found as Slicer finds it: the ``.mrml`` with the
fewest path components.

Bundling writes Slicer's layout (``<Top>/<Top>.mrml``, ``<Top>/Data/...``) to a
temporary file next to the target and renames it into place.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

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

#: Most entries an archive may have.
MAX_MEMBERS = 20_000
#: Most bytes all members may inflate to (64 GiB; also bounded by the free disk space).
MAX_TOTAL_BYTES = 64 * (1 << 30)
#: Highest compression ratio accepted for a member larger than :data:`RATIO_MIN_BYTES`.
MAX_RATIO = 200.0
#: Members smaller than this are not ratio-checked (tiny text files compress well).
RATIO_MIN_BYTES = 4 * (1 << 20)
_CHUNK = 1 << 20


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """The safe relative path of a member name, or FormatError."""
    if "\x00" in name:
        raise FormatError(archive, f"archive member {name!r} has a NUL character in its name")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":") or norm.startswith("//"):
        raise FormatError(archive, f"archive member {name!r} has an absolute path; refused")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise FormatError(archive, f"archive member {name!r} points outside the extraction folder ('..'); refused")
    if not parts:
        raise FormatError(archive, f"archive member {name!r} has an empty name")
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = (info.external_attr >> 16) & 0xFFFF
    fmt = stat.S_IFMT(mode)
    return stat.S_ISLNK(mode) or (fmt != 0 and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)))


def check_archive(zf: zipfile.ZipFile, archive: Path, *, max_members: int = MAX_MEMBERS,
                  max_total: int = MAX_TOTAL_BYTES, max_ratio: float = MAX_RATIO) -> list[tuple[zipfile.ZipInfo,
                                                                                                PurePosixPath]]:
    """Validate every member (names, links, sizes, ratios); returns (info, safe path) pairs."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise FormatError(archive, f"archive has {len(infos)} entries (more than {max_members}); refused as a "
                                   f"possible zip bomb")
    total = 0
    out = []
    seen: set[str] = set()
    for info in infos:
        rel = _member_path(info.filename, archive)
        if _is_symlink(info):
            raise FormatError(archive, f"archive member {info.filename!r} is a symbolic link or special file; refused")
        if info.flag_bits & 0x1:
            raise FormatError(archive, f"archive member {info.filename!r} is encrypted")
        key = str(rel).lower()
        if key in seen and not info.is_dir():
            raise FormatError(archive, f"archive has two members named {info.filename!r}")
        seen.add(key)
        total += info.file_size
        if total > max_total:
            raise FormatError(archive, f"archive inflates to more than {max_total / (1 << 30):.0f} GiB; refused as a "
                                       f"possible zip bomb")
        if info.file_size > RATIO_MIN_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > max_ratio:
                raise FormatError(archive, f"archive member {info.filename!r} has a compression ratio of {ratio:.0f}:1 "
                                           f"(limit {max_ratio:.0f}:1); refused as a possible zip bomb")
        out.append((info, rel))
    return out


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise FormatError(path, f"not a valid scene bundle (zip archive): {exc}") from None
    except OSError as exc:
        raise FormatError(path, f"cannot open file: {exc.strerror or exc}") from None


def zip_has_mrml(path: Path) -> bool:
    """True when ``path`` is a zip archive with a ``.mrml`` member (cheap: reads the directory only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".mrml") for n in zf.namelist())
    except Exception:
        return False


def safe_extract(archive: os.PathLike[str] | str, target: os.PathLike[str] | str, *,
                 max_members: int = MAX_MEMBERS, max_total: int = MAX_TOTAL_BYTES, max_ratio: float = MAX_RATIO,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> list[Path]:
    """Extract ``archive`` into ``target`` (created) after checking every member; returns the files written.

    Nothing is written when a check fails; a member inflating past its declared size
    stops the extraction, and the files extracted so far are removed.
    """
    archive = Path(archive)
    target = Path(target)
    with _open_zip(archive) as zf:
        members = check_archive(zf, archive, max_members=max_members, max_total=max_total, max_ratio=max_ratio)
        needed = sum(i.file_size for i, _ in members)
        target.mkdir(parents=True, exist_ok=True)
        try:
            free = shutil.disk_usage(target).free
        except OSError:
            free = None
        if free is not None and needed > free:
            raise FormatError(archive, f"archive needs {needed / (1 << 20):.0f} MiB but only "
                                       f"{free / (1 << 20):.0f} MiB are free in {target}")
        root = target.resolve()
        written: list[Path] = []
        done = 0
        try:
            for info, rel in members:
                if cancel is not None and cancel():
                    raise CancelledError(archive)
                dest = root.joinpath(*rel.parts)
                resolved = dest.resolve()
                if resolved != root and root not in resolved.parents:
                    raise FormatError(archive, f"archive member {info.filename!r} resolves outside the target")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_symlink():
                    raise FormatError(archive, f"archive member {info.filename!r} would write through a link")
                limit = info.file_size
                count = 0
                try:
                    with zf.open(info) as src, open(dest, "xb") as out:  # zipfile checks the CRC-32 at the end
                        written.append(dest)
                        while True:
                            chunk = src.read(_CHUNK)
                            if not chunk:
                                break
                            count += len(chunk)
                            if count > limit:
                                raise FormatError(archive, f"archive member {info.filename!r} inflates beyond its "
                                                           f"declared size; refused as a possible zip bomb")
                            out.write(chunk)
                except FormatError:
                    raise
                except FileExistsError:
                    raise FormatError(archive, f"archive member {info.filename!r} is listed twice") from None
                except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
                    raise FormatError(archive, f"archive member {info.filename!r} is corrupt: {exc}") from None
                except OSError as exc:
                    raise FormatError(archive, f"cannot extract {info.filename!r}: {exc.strerror or exc}") from None
                done += info.file_size
                if progress is not None:
                    progress(done, needed)
        except BaseException:
            for w in written:
                try:
                    w.unlink()
                except OSError:
                    pass
            raise
    return written


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
