"""Safe file writing and gzip on maintained libraries.

* :func:`atomic_output` / :func:`atomic_outputs` give temporary paths next to the
  targets and rename them into place only when the whole write succeeded, so a
  failed or interrupted save never leaves a half-written file or destroys the
  previous one.
* :func:`gzip_write` deflates on two threads with ``isal.igzip_threaded`` (else
  ``zlib_ng.gzip_ng_threaded``, else the standard library's ``gzip``); the output
  is one ordinary gzip member that every reader accepts.
* :func:`gzip_read` inflates with ``isal_zlib`` (else ``zlib_ng``, else ``zlib``)
  in pieces into one NumPy array of the size the file's header declares: memory
  is bounded by that size, progress is reported and cancel honoured between
  pieces, and data that ends early is a :class:`~napari_medio.core.errors.FormatError`.
"""
from __future__ import annotations

import contextlib
import gzip as _stdlib_gzip
import os
import uuid
import zlib as _stdlib_zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np

from .errors import FormatError, WriteError
from .progress import Progress, ensure_progress

__all__ = ["atomic_output", "atomic_outputs", "gzip_write", "gzip_read", "gzip_decompress", "read_content",
           "new_file_mode", "write_text"]

#: Threads that deflate a gzip write (isal's and zlib-ng's threaded writers).
GZIP_THREADS = 2
_READ_PIECE = 1 << 20  # compressed bytes read at a time
_OUT_PIECE = 1 << 22  # bytes inflated per step (progress and cancel between steps)


def _temp_beside(target: Path, token: str) -> Path:
    """A temporary path next to ``target`` that ends with the target's own name.

    Keeping the full name (and so every extension) as the suffix lets libraries
    that choose behaviour by extension (nibabel, ITK) write it; sharing one token
    keeps the names of files written together consistent (``.hdr`` + ``.img``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".medio-{token}-{target.name}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return temp


@contextlib.contextmanager
def atomic_outputs(targets: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Temporary paths for several files written together (e.g. ``.nhdr`` + ``.raw``).

    All are renamed into place after the block succeeds; on any error every
    temporary file is removed and the targets are untouched.
    """
    paths = [Path(t) for t in targets]
    temps: list[Path] = []
    token = uuid.uuid4().hex[:12]
    try:
        for target in paths:
            temps.append(_temp_beside(target, token))
    except OSError as exc:
        for t in temps:
            t.unlink(missing_ok=True)
        failed = paths[len(temps)] if len(temps) < len(paths) else paths[0]
        reason = exc.strerror or str(exc)
        blocker = next((q for q in [failed.parent, *failed.parent.parents] if q.exists()), None)
        if blocker is not None and not blocker.is_dir():
            reason = f"{blocker} is a file, not a folder"
        raise WriteError(failed, f"cannot create file: {reason}") from None
    try:
        yield temps
        mode = new_file_mode()
        for temp, target in zip(temps, paths):
            if not temp.exists():
                raise WriteError(target, "writer produced no file")
            with contextlib.suppress(OSError):
                os.chmod(temp, mode)
        for temp, target in zip(temps, paths):
            os.replace(temp, target)
    except BaseException:
        for t in temps:
            with contextlib.suppress(OSError):
                t.unlink()
        raise


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path for ``target``, renamed into place when the block succeeds."""
    with atomic_outputs([target]) as temps:
        yield temps[0]


def write_text(target: str | os.PathLike[str], text: str) -> list[str]:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns ``[target]``."""
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return [os.fspath(target)]


def check_regular(path: str | os.PathLike[str]) -> None:
    """FormatError naming ``path`` when it is a named pipe, device or socket: reading one may block forever
    or never end. Folders, regular files and paths that do not exist pass (their readers decide)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise FormatError(Path(path), f"is {kind}, not a regular file: refusing to read it")


def read_content(path: str | os.PathLike[str]) -> bytes:
    """All bytes of a file; FormatError naming it when it cannot be read or holds only white space."""
    p = Path(path)
    check_regular(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FormatError(p, "file not found") from None
    except OSError as exc:
        raise FormatError(p, f"cannot read file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise FormatError(p, "file is empty")
    return raw


def new_file_mode() -> int:
    """Permission bits a new file gets (0o666 less the umask), for temporaries renamed into place."""
    current = os.umask(0)
    os.umask(current)
    return 0o666 & ~current


# -- gzip -----------------------------------------------------------------------------------------
def _zlib() -> ModuleType:
    """The fastest zlib-compatible module installed: ``isal.isal_zlib``, ``zlib_ng.zlib_ng`` or ``zlib``."""
    try:
        from isal import isal_zlib

        return isal_zlib
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:
        return _stdlib_zlib


def _gzip_writer(fh: BinaryIO, level: int, threads: int = GZIP_THREADS) -> BinaryIO:
    """A gzip stream over ``fh`` deflated on ``threads`` worker threads of the library (zlib ``level`` 0-9).

    isal has levels 0-3: zlib levels 1-3 map onto isal 1, 4-6 onto isal 2 (about
    zlib 6's size at several times zlib 1's speed), 7-9 onto isal 3.
    """
    level = max(0, min(int(level), 9))
    try:
        from isal import igzip_threaded

        isal_level = 0 if level == 0 else 1 if level <= 3 else 2 if level <= 6 else 3
        return igzip_threaded.open(fh, "wb", compresslevel=isal_level, threads=threads)
    except ImportError:
        pass
    try:
        from zlib_ng import gzip_ng_threaded

        return gzip_ng_threaded.open(fh, "wb", compresslevel=level, threads=threads)
    except ImportError:
        return _stdlib_gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=level, mtime=0)


def gzip_write(fh: BinaryIO, chunks: Iterable[Any], *, level: int = 6, progress: Progress | None = None,
               total: int | None = None, threads: int = GZIP_THREADS) -> int:
    """Write ``chunks`` (bytes-like pieces, in order) to the open file ``fh`` as one gzip member.

    ``level`` is zlib's 0-9; ``threads`` the library's deflate workers (one suits
    data that deflates at several GB/s, such as label maps: the hand-off of blocks
    between two workers then costs more than the second core gives); ``progress``
    counts input bytes toward ``total`` and can cancel between chunks.  Returns
    the number of uncompressed bytes.
    """
    prog = ensure_progress(progress)
    prog.start(total)
    written = 0
    with _gzip_writer(fh, level, threads) as gz:
        for chunk in chunks:
            n = gz.write(chunk)
            written += n
            prog.advance(n)
    return written


def gzip_decompress(data: bytes) -> bytes:
    """Inflate a small gzip buffer (every member)."""
    try:
        from isal import igzip

        return igzip.decompress(data)
    except ImportError:
        return _stdlib_gzip.decompress(data)


#: Most bytes one byte of deflate data can inflate to (the format's own limit, about 1032:1).
DEFLATE_MAX_RATIO = 1032


def _check_inflatable(path: str | os.PathLike[str], offset: int, size: int) -> None:
    """FormatError before allocating when the compressed bytes cannot hold ``size`` inflated bytes."""
    try:
        packed = max(os.stat(path).st_size - offset, 0)
    except OSError:
        return
    if size > packed * DEFLATE_MAX_RATIO + (1 << 16):
        raise FormatError(Path(path), f"data is truncated or its size is wrong: {packed} bytes of gzip data cannot "
                                      f"hold the {size} bytes the header declares")


def gzip_read(path: str | os.PathLike[str], offset: int = 0, size: int | None = None, *,
              progress: Progress | None = None) -> np.ndarray:
    """Inflate the gzip data at byte ``offset`` of ``path`` into a writable uint8 array.

    With ``size`` (the uncompressed bytes the file's header declares) the array
    has exactly that size and nothing larger is ever allocated: data beyond it
    is ignored, data that ends before it raises :class:`FormatError` naming the
    file.  Without ``size`` every gzip member is read.  Corrupt data (a bad
    CRC-32 included) raises :class:`FormatError`.
    """
    if size is not None:
        _check_inflatable(path, offset, size)
    prog = ensure_progress(progress)
    prog.start(size)
    zlib = _zlib()
    out: Any = np.empty(size, np.uint8) if size is not None else bytearray()
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            pos, ended = _inflate_members(zlib, fh, out, size, prog)
    except zlib.error as exc:
        raise FormatError(path, f"gzip data is corrupt: {exc}") from None
    except OSError as exc:
        raise FormatError(path, f"cannot read gzip data: {exc.strerror or exc}") from None
    if size is None or pos <= size:
        if not ended:
            raise FormatError(path, f"gzip data is truncated: it ends after {pos} bytes"
                                    + (f" of {size} expected" if size is not None else ""))
        if size is not None and pos < size:
            raise FormatError(path, f"data is truncated: {pos} bytes for {size} expected")
    return out if size is not None else np.frombuffer(out, np.uint8)


def _inflate_members(zlib: ModuleType, fh: BinaryIO, out: Any, size: int | None, prog: Progress) -> tuple[int, bool]:
    """Inflate the gzip members read from ``fh`` into ``out``, :data:`_OUT_PIECE` bytes a step.

    ``out``: an array of ``size`` bytes, or a bytearray that grows when ``size``
    is None.  Returns the bytes inflated (``size + 1`` when the data holds more)
    and whether the last member read was complete.
    """
    d = zlib.decompressobj(31)
    data, at_end, pos = b"", False, 0
    while True:
        if d.eof:
            if size is not None and pos >= size:
                return pos, True
            data = d.unused_data or fh.read(_READ_PIECE)
            if data[:2] != b"\x1f\x8b":
                return pos, True  # the end, or padding after the last member
            d = zlib.decompressobj(31)
        elif not data and not at_end:
            data = fh.read(_READ_PIECE)
            at_end = not data
        piece = d.decompress(data, _OUT_PIECE if size is None else min(_OUT_PIECE, size - pos + 1))
        data = d.unconsumed_tail
        if not piece and not d.eof and at_end:
            return pos, False
        if size is None:
            out += piece
        else:
            n = min(len(piece), size - pos)
            out[pos:pos + n] = np.frombuffer(piece, np.uint8, n)
        pos += len(piece)
        prog.advance(len(piece))
        if size is not None and pos > size:
            return pos, False  # more data than declared: the rest is not wanted
