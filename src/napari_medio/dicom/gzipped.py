"""gzip-compressed DICOM files (``*.dcm.gz``): recognised by content, read through a plain copy.

A file is taken for gzip by its two magic bytes (``1f 8b``), whatever its name.  Its first
bytes are decompressed and sniffed (preamble + ``DICM``, or a plain dataset start) before
anything else: a ``.nii.gz`` beside the images is never decompressed whole.  A gzipped DICOM
file is then decompressed once, at most :data:`MAX_DECOMPRESSED` bytes, into a private
temporary folder of this process (removed at exit), and the header scanner and pixel
loaders read that plain copy; ``_gz_source`` in the header names the original file.
Python's ``gzip`` module does the decompression.
"""
from __future__ import annotations

import atexit
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib

from ..core.errors import FormatError
from ._parse import NotDicomError, parse_header, sniff_dicom_bytes

__all__ = ["GZIP_MAGIC", "MAX_DECOMPRESSED", "SNIFF_BYTES", "is_gzip_head", "gunzipped_head", "parse_any_header",
           "plain_copy"]

GZIP_MAGIC = b"\x1f\x8b"
#: The largest decompressed DICOM file accepted (bytes).
MAX_DECOMPRESSED = 2 << 30
#: Decompressed bytes sniffed for DICOM before a file is decompressed whole.
SNIFF_BYTES = 8192

_cache_dir: str | None = None


def is_gzip_head(head: bytes) -> bool:
    """True when ``head`` starts with the gzip magic bytes."""
    return head[:2] == GZIP_MAGIC


def gunzipped_head(path: str | os.PathLike[str], size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` decompressed bytes of a gzip file (fewer when it is shorter or corrupt)."""
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def _cache_folder() -> str:
    global _cache_dir
    if _cache_dir is None or not os.path.isdir(_cache_dir):
        _cache_dir = tempfile.mkdtemp(prefix="medio-dcmgz-")
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def plain_copy(path: str | os.PathLike[str]) -> str:
    """Path of a decompressed copy of gzipped DICOM ``path`` (made once per file version).

    Raises :class:`NotDicomError` when the decompressed start is not DICOM, :class:`FormatError`
    when the file is corrupt or decompresses to more than :data:`MAX_DECOMPRESSED` bytes.
    """
    path = os.fspath(path)
    if not sniff_dicom_bytes(gunzipped_head(path)):
        raise NotDicomError("gzip file that does not hold DICOM")
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    target = os.path.join(_cache_folder(), key + ".dcm")
    if os.path.exists(target):
        return target
    tmp = target + ".part"
    try:
        _gunzip_bounded(path, tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, target)
    return target


def _gunzip_bounded(path: str, out: str) -> None:
    try:
        with gzip.open(path, "rb") as src, open(out, "wb") as dst:
            written = 0
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > MAX_DECOMPRESSED:
                    raise FormatError(path, f"gzip data decompresses to more than {MAX_DECOMPRESSED} bytes")
                dst.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(path, f"corrupt gzip data: {exc}") from None


def parse_any_header(path: str | os.PathLike[str]) -> dict:
    """:func:`parse_header` of ``path``, through a plain copy when the file is gzip-compressed."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if not is_gzip_head(magic):
        return parse_header(path)
    header = parse_header(plain_copy(path))
    header["_gz_source"] = path
    return header
