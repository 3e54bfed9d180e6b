"""Checked zip extraction, used by every archive path (scene bundles, DICOM zips, sequence bundles).

Extraction refuses, before writing anything, archives whose members

* have absolute paths, drive letters, ``..`` components or backslash tricks,
* are symbolic links (or any entry that is not a plain file or folder),
* are encrypted,
* would add up to more than :data:`MAX_TOTAL_BYTES` or the free disk space, or more than
  :data:`MAX_MEMBERS` entries, or have a compression ratio above :data:`MAX_RATIO`
  (each member over :data:`RATIO_MIN_BYTES`, and the whole archive: zip bombs),

and checks while copying that no member inflates beyond its declared size.  Every
refusal is a :class:`~napari_medio.core.errors.FormatError` naming the archive and
the member.  Python's :mod:`zipfile` reads the archive; the checks are here because
it has none of them.
"""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .errors import CancelledError, FormatError

__all__ = ["MAX_MEMBERS", "MAX_RATIO", "MAX_TOTAL_BYTES", "RATIO_MIN_BYTES", "check_archive", "open_zip",
           "safe_extract"]

#: Most entries an archive may have.
MAX_MEMBERS = 20_000
#: Most bytes all members may inflate to (64 GiB; also bounded by the free disk space).
MAX_TOTAL_BYTES = 64 * (1 << 30)
#: Highest compression ratio accepted for a member larger than :data:`RATIO_MIN_BYTES`, and for the whole archive
#: once it inflates to more than that.
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
    """Validate every member (names, links, sizes, ratios) and the whole archive's inflation ratio;
    returns (info, safe path) pairs."""
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
    packed = sum(i.compress_size for i in infos)
    if total > RATIO_MIN_BYTES and total / max(packed, 1) > max_ratio:
        raise FormatError(archive, f"archive inflates {total / max(packed, 1):.0f} times (limit {max_ratio:.0f}:1, "
                                   f"{total / (1 << 20):.0f} MiB from {packed / (1 << 20):.1f} MiB); refused as a "
                                   f"possible zip bomb")
    return out


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise FormatError(path, f"not a valid zip archive: {exc}") from None
    except OSError as exc:
        raise FormatError(path, f"cannot open file: {exc.strerror or exc}") from None


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
    with open_zip(archive) as zf:
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
