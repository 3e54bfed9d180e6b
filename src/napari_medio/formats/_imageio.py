"""Helpers shared by the image format modules (MetaImage, VTK, raster, ITK misc, Scanco, ...).

* :func:`volume_kind` -- the ``labelmap`` reader option, Slicer-style name guess;
* :func:`read_sitk` -- read one file with SimpleITK into a :class:`Volume`;
* :func:`write_sitk` -- write with SimpleITK atomically, even when ITK writes
  several files (``.mhd`` + ``.raw``): ITK writes into a private folder beside
  the target under the *final* names (so a header names its final data file),
  then every file is renamed into place through :func:`atomic_outputs`;
* :func:`check_direction` -- refuse to silently drop an oblique/permuted
  direction in formats that cannot store one (option ``allow_direction_loss``);
* small binary/text sniffing and size checks.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError, WriteError
from ..core.fileio import atomic_outputs
from ..core.itk_image import sitk, volume_from_sitk, volume_to_sitk
from ..core.kinds import DataKind
from ..core.volume import Volume
from .naming import base_name, looks_like_labelmap

__all__ = [
    "LABELMAP_OPTION", "DIRECTION_LOSS_OPTION",
    "check_direction",
    "check_writable",
    "file_size",
    "head_text",
    "itk_reason",
    "read_sitk",
    "require_bytes",
    "sidecar",
    "volume_kind",
    "write_files_atomically",
    "write_sitk",
]


#: Option descriptions shared by the format registrations (``read_options`` / ``write_options``).
LABELMAP_OPTION = "load as a label map (None: guess from the file name)"
DIRECTION_LOSS_OPTION = "write even though axis directions are lost"


def volume_kind(path: str | os.PathLike[str], labelmap: bool | None, dtype: Any,
                n_components: int = 1) -> DataKind:
    """LABELMAP or VOLUME for the ``labelmap`` reader option.

    ``None`` guesses from the file name as Slicer does (``-label``, ``_seg``), for
    scalar integer voxels only; ``True`` demands integer scalar voxels.
    """
    integer = np.issubdtype(np.dtype(dtype), np.integer) or np.dtype(dtype) == np.bool_
    if labelmap is None:
        labels = integer and n_components == 1 and looks_like_labelmap(path)
        return DataKind.LABELMAP if labels else DataKind.VOLUME
    if labelmap:
        if not integer or n_components != 1:
            raise MedioError(path, f"cannot load as a label map: voxels are {np.dtype(dtype)}"
                                   f"{' vectors' if n_components != 1 else ''}, label maps need integer scalars")
        return DataKind.LABELMAP
    return DataKind.VOLUME


def read_sitk(
    path: str | os.PathLike[str],
    imageio: str | None,
    *,
    labelmap: bool | None = None,
    rgb: bool | None = None,
    metadata: dict | None = None,
) -> Volume:
    """Read ``path`` with SimpleITK (``imageio`` forces the ImageIO) into a Volume."""
    reader = sitk().ImageFileReader()
    reader.SetFileName(os.fspath(path))
    if imageio:
        reader.SetImageIO(imageio)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise FormatError(path, itk_reason(exc)) from None
    vol = volume_from_sitk(image, name=base_name(path), rgb=rgb, metadata=metadata, source=os.fspath(path))
    vol.kind = volume_kind(path, labelmap, vol.dtype, vol.n_components)
    return vol


def file_size(path: str | os.PathLike[str]) -> int:
    """Size of a file in bytes; FormatError when it cannot be read."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except OSError as exc:
        raise FormatError(path, f"cannot open file: {exc.strerror or exc}") from None


def nonempty_file_size(path: str | os.PathLike[str]) -> int:
    """Size of a file in bytes; FormatError when it cannot be read or is empty."""
    size = file_size(path)
    if size == 0:
        raise FormatError(path, "file is empty")
    return size


def require_bytes(path: str | os.PathLike[str], needed: int, available: int | None = None,
                  what: str = "voxel data") -> None:
    """FormatError (truncated) when fewer than ``needed`` bytes are available."""
    if available is None:
        available = file_size(path)
    if available < needed:
        raise FormatError(path, f"file is truncated: {what} needs {needed} bytes, only {available} present")


def inflate_head(head: bytes, size: int) -> bytes:
    """The first ``size`` bytes of a file's content, for sniffing, from its first bytes ``head``.

    A gzip stream is inflated (b"" when it is corrupt); anything else is ``head`` itself.
    """
    if head[:2] != b"\x1f\x8b":
        return head
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, size)
    except zlib.error:
        return b""


def head_text(head: bytes) -> str:
    """The head of a file as text (latin-1 never fails)."""
    return head.decode("latin-1")


def header_numbers(path: str | os.PathLike[str], fields: dict, key: str, n: int | None = None, cast: Any = float,
                   format_name: str = "header") -> list | None:
    """The numbers of a text header's field ``key`` (separated by spaces or commas; the first ``n`` when
    given), or None when the field is absent; a FormatError naming the field when they are not numbers
    or fewer than ``n``."""
    if fields.get(key) is None:
        return None
    text = str(fields[key])
    try:
        values = [cast(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise FormatError(path, f"{format_name} field {key!r} is not numeric: {text[:80]!r}") from None
    if n is not None and len(values) < n:
        raise FormatError(path, f"{format_name} field {key!r} has {len(values)} values, {n} expected")
    return values if n is None else values[:n]


def sidecar(path: str | os.PathLike[str], name: str) -> Path:
    """A file named in a header, relative to the header's folder unless absolute."""
    p = Path(name)
    return p if p.is_absolute() else Path(path).parent / p


def check_direction(volume: Volume, path: str | os.PathLike[str], format_name: str, allow_direction_loss: bool) -> None:
    """Refuse to write a non-identity direction to a format that cannot hold it."""
    d = volume.geometry.direction
    if np.allclose(d, np.eye(d.shape[0]), atol=1e-6, rtol=0):
        return
    if allow_direction_loss:
        return
    raise MedioError(
        path,
        f"{format_name} cannot store the image axis directions (this volume is not axis-aligned with "
        "identity direction), so the saved image would be misplaced or flipped when read back; "
        "save as NRRD, NIfTI or MetaImage instead, or pass allow_direction_loss=True to write anyway",
    )


def check_writable(
    volume: Volume,
    path: str | os.PathLike[str],
    format_name: str,
    *,
    dtypes: Iterable[Any] | None = None,
    ndims: Iterable[int] = (2, 3),
    max_extra_axes: int = 0,
    components: Iterable[int] = (1,),
    component_dtypes: Iterable[Any] | None = None,
) -> None:
    """Raise a clear MedioError when ``format_name`` cannot hold the volume's voxels."""
    if not isinstance(volume, Volume):
        raise MedioError(path, f"{format_name} writes image volumes, not {type(volume).__name__}")
    dt = volume.dtype
    n = volume.n_components
    if volume.geometry.ndim not in tuple(ndims):
        raise MedioError(path, f"{format_name} cannot hold a {volume.geometry.ndim}D image")
    if len(volume.extra_axes) > max_extra_axes:
        raise MedioError(path, f"{format_name} cannot hold an image with {len(volume.extra_axes)} non-spatial "
                               f"axes (at most {max_extra_axes})")
    if n not in tuple(components):
        raise MedioError(path, f"{format_name} cannot hold {n}-component voxels")
    allowed = component_dtypes if (n > 1 and component_dtypes is not None) else dtypes
    if allowed is not None:
        allowed = [np.dtype(a) for a in allowed]
        if dt not in allowed:
            names = ", ".join(str(a) for a in allowed)
            raise MedioError(path, f"{format_name} cannot hold {dt} voxels{' vectors' if n > 1 else ''} "
                                   f"(it holds {names}); convert the volume first")


@contextlib.contextmanager
def _private_dir(beside: Path):
    beside.parent.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f".{beside.name}.", suffix=".tmpdir", dir=beside.parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_files_atomically(path: str | os.PathLike[str], produce, *, first: bool = True) -> list[str]:
    """Run ``produce(folder)``, which writes files under their *final* names into a private
    ``folder`` beside ``path``; then rename them all into place together (all or nothing).

    Returns the final paths (``path`` first when ``first``: it must then be among them).
    """
    target = Path(path)
    with _private_dir(target) as folder:
        produce(folder)
        produced = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: (p.name != target.name, p.name))
        if not produced or (first and produced[0].name != target.name):
            raise WriteError(target, "writer produced no file")
        finals = [target.parent / p.name for p in produced]
        with atomic_outputs(finals) as temps:
            for src, temp in zip(produced, temps):
                os.replace(src, temp)
    return [os.fspath(f) for f in finals]


def sitk_write_into(image: Any, filename: Path, imageio: str, *, target: str | os.PathLike[str],
                    compress: bool = False, level: int | None = None) -> None:
    """Write a SimpleITK image to exactly ``filename`` with ``imageio``; errors name ``target``."""
    s = sitk()
    writer = s.ImageFileWriter()
    writer.SetFileName(os.fspath(filename))
    writer.SetImageIO(imageio)
    writer.SetUseCompression(bool(compress))
    if level is not None:
        writer.SetCompressionLevel(int(level))
    try:
        writer.Execute(image)
    except RuntimeError as exc:
        raise WriteError(target, itk_reason(exc)) from None


def itk_reason(exc: Exception) -> str:
    """The useful last line of an ITK exception text."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith("description:"):
            return "ITK: " + ln.split(":", 1)[1].strip()
    return "ITK: " + (lines[-1] if lines else "unreadable")


def write_sitk(
    volume: Volume,
    path: str | os.PathLike[str],
    imageio: str,
    *,
    compress: bool = False,
    level: int | None = None,
    image: Any = None,
) -> list[str]:
    """Write ``volume`` (or a ready SimpleITK ``image``) with SimpleITK's ``imageio``, atomically.

    ITK chooses companion file names from the header name, so it writes under the
    final names in a private folder; the files are then renamed into place.
    """
    if image is None:
        image = to_sitk(volume, path)
    target = Path(path)
    return write_files_atomically(
        target, lambda folder: sitk_write_into(image, folder / target.name, imageio, target=target,
                                               compress=compress, level=level)
    )


def to_sitk(volume: Volume, path: str | os.PathLike[str]) -> Any:
    """SimpleITK image of a volume; a clear error naming ``path`` when ITK cannot hold it."""
    try:
        return volume_to_sitk(volume)
    except FormatError as exc:
        raise MedioError(path, exc.reason) from None


def as_volume(obj: Any, path: str | os.PathLike[str], format_name: str) -> Volume:
    """``obj`` when it is a Volume, else a clear error."""
    if not isinstance(obj, Volume):
        raise MedioError(path, f"{format_name} writes image volumes, not {type(obj).__name__}")
    return obj


def stack_frames(frames: Sequence[np.ndarray], paths: Sequence[Path]) -> np.ndarray:
    """Stack same-shaped 2D frames into a 3D array (clear error naming the odd frame)."""
    first = frames[0]
    for fr, fp in zip(frames, paths):
        if fr.shape != first.shape or fr.dtype != first.dtype:
            raise FormatError(fp, f"series frame has shape {fr.shape} {fr.dtype}, unlike the first frame "
                                  f"{paths[0].name} ({first.shape} {first.dtype})")
    return np.stack(frames, axis=0)
