"""Safe file writing and fast compression helpers.

* :func:`atomic_output` / :func:`atomic_outputs` give temporary paths next to the
  targets and rename them into place only when the whole write succeeded, so a
  failed or interrupted save never leaves a half-written file or destroys the
  previous one.
* :func:`gzip_open` and friends use the fastest maintained inflate/deflate
  available (``isal``, then ``zlib-ng``, then the standard library); the output
  is ordinary gzip that every reader accepts.
"""
from __future__ import annotations

import contextlib
import gzip as _stdlib_gzip
import os
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from .errors import WriteError

__all__ = ["atomic_output", "atomic_outputs", "gzip_module", "gzip_compress", "gzip_decompress"]


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
def atomic_outputs(targets: Sequence["str | os.PathLike[str]"]) -> Iterator[list[Path]]:
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
        raise WriteError(paths[len(temps)] if len(temps) < len(paths) else paths[0],
                         f"cannot create file: {exc.strerror or exc}") from None
    try:
        yield temps
        for temp, target in zip(temps, paths):
            if not temp.exists():
                raise WriteError(target, "writer produced no file")
            try:
                mode = 0o666 & ~_umask()
                os.chmod(temp, mode)
            except OSError:
                pass
        for temp, target in zip(temps, paths):
            os.replace(temp, target)
    except BaseException:
        for t in temps:
            with contextlib.suppress(OSError):
                t.unlink()
        raise


@contextlib.contextmanager
def atomic_output(target: "str | os.PathLike[str]") -> Iterator[Path]:
    """A temporary path for ``target``, renamed into place when the block succeeds."""
    with atomic_outputs([target]) as temps:
        yield temps[0]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def gzip_module():
    """The fastest gzip-compatible module available: ``isal.igzip``, ``zlib_ng.gzip_ng`` or ``gzip``."""
    try:
        from isal import igzip

        return igzip
    except ImportError:
        pass
    try:
        from zlib_ng import gzip_ng

        return gzip_ng
    except ImportError:
        return _stdlib_gzip


def gzip_decompress(data: bytes) -> bytes:
    """Inflate gzip data (all members) with the fastest available library."""
    return gzip_module().decompress(data)


def gzip_compress(data: bytes, level: int = 6) -> bytes:
    """Deflate into one gzip member with the fastest available library.

    ``isal`` supports levels 0-3; higher requests are mapped to its best (3),
    which compresses like zlib level 6 at several times the speed.
    """
    mod = gzip_module()
    if mod.__name__.startswith("isal"):
        level = max(0, min(int(level), 3))
    return mod.compress(data, compresslevel=level)


def _deflate_module(level: int):
    """``isal_zlib`` for the fast levels (0-3 map onto its 0-3), else ``zlib_ng`` or ``zlib``."""
    if level <= 6:
        try:
            from isal import isal_zlib

            return isal_zlib, max(0, min(level // 2, 3)) if level > 3 else max(0, min(level, 3))
        except ImportError:
            pass
    try:
        from zlib_ng import zlib_ng

        return zlib_ng, level
    except ImportError:
        import zlib

        return zlib, level


_GZIP_BLOCK = 1 << 22  # 4 MiB of input per parallel deflate job
_DICT_SIZE = 1 << 15


def gzip_compress_parallel(chunks, fh, level: int = 6, threads: "int | None" = None) -> int:
    """Write ``chunks`` (an iterable of bytes) to ``fh`` as ONE gzip member, deflated in parallel.

    Like pigz: blocks are deflated independently on all cores (each primed with
    the previous block's last 32 KiB as dictionary and ended with a sync flush),
    joined into one deflate stream, and closed with the CRC-32 of everything, so
    every gzip reader (zlib, ITK, Slicer, nibabel, pynrrd) accepts the result.
    Returns the number of uncompressed bytes written.
    """
    import struct
    import time
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    mod, lvl = _deflate_module(level)
    workers = threads or max(1, os.cpu_count() or 1)

    def deflate(block: bytes, zdict: bytes) -> bytes:
        if zdict:
            co = mod.compressobj(lvl, mod.DEFLATED, -15, 9, mod.Z_DEFAULT_STRATEGY, zdict)
        else:
            co = mod.compressobj(lvl, mod.DEFLATED, -15, 9, mod.Z_DEFAULT_STRATEGY)
        return co.compress(block) + co.flush(mod.Z_SYNC_FLUSH)

    def blocks():
        for chunk in chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), _GZIP_BLOCK):
                yield bytes(view[start:start + _GZIP_BLOCK])

    fh.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time()) & 0xFFFFFFFF) + b"\x00\x03")
    crc = 0
    total = 0
    pending = []
    previous_tail = b""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for block in blocks():
            pending.append(pool.submit(deflate, block, previous_tail))
            previous_tail = block[-_DICT_SIZE:]
            crc = zlib.crc32(block, crc)
            total += len(block)
            while len(pending) > 2 * workers:
                fh.write(pending.pop(0).result())
        for fut in pending:
            fh.write(fut.result())
    fh.write(b"\x03\x00")  # an empty final fixed-Huffman block ends the deflate stream
    fh.write(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))
    return total
