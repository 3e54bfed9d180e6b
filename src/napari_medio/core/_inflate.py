"""Inflate straight into a caller's buffer: ctypes bindings to libdeflate and zlib-ng.

The Python wrappers of the fast inflaters (``deflate``, ``isal``, ``zlib_ng``) all
return a new ``bytes`` object per call, which the reader then copies into its
array.  For a large volume that costs more than it seems: a fresh 80 MB ``bytes``
is faulted in page by page (4 KiB pages; NumPy's large arrays get huge pages),
then copied.  Measured on a 78 MB label map: libdeflate into ``bytes`` 0.058 s,
the same call into a NumPy array 0.020 s.

The C libraries behind those wrappers export their public API, so it is called
here through :mod:`ctypes` with the caller's output buffer:

* **libdeflate** (``libdeflate_gzip_decompress_ex``, ``libdeflate_deflate_decompress``)
  from the ``deflate`` package's extension module, else a system ``libdeflate``:
  whole-buffer inflate, the fastest decoder for one call; and ``libdeflate_crc32``,
  which the package's own ``crc32`` wraps without dropping the GIL (two threads
  computing CRCs through it take longer than one);
* **zlib-ng**'s native API (``zng_inflate`` over its public ``zng_stream``) from
  the ``zlib_ng`` package: streaming inflate in pieces into one preallocated
  array -- memory stays at the output's size, and each finished piece can be
  used (progress, cancel, work on the finished part) while the next inflates.
  It checks the gzip trailer (CRC-32 and size) itself.

Each binding inflates a small known gzip once when first loaded and is used only
if that gives the right bytes, CRC and sizes; otherwise (library missing, another
ABI) the functions here return None and callers keep their pure-Python routes.
ctypes releases the GIL during the C calls, so other threads keep running.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
import zlib
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["libdeflate", "zng", "Overflow", "prefault"]

_LOCK = threading.Lock()
_CACHE: dict[str, Any] = {}


class Overflow(ValueError):
    """The data inflates to more bytes than the output buffer holds."""


def _addr(buf: np.ndarray) -> int:
    return buf.__array_interface__["data"][0]


# -- page faults of a fresh output array, taken on another core -------------------------------
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14: fault pages in as a write would, without writing
_PREFAULT_ABOVE = 1 << 23  # smaller arrays fault in quickly enough on their own


def _madvise() -> Any:
    if "madvise" not in _CACHE:
        fn = None
        if os.name == "posix":
            try:
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
            except (OSError, AttributeError):
                fn = None
        _CACHE["madvise"] = fn
    return _CACHE["madvise"]


def prefault(out: np.ndarray) -> Optional[threading.Thread]:
    """Fault in the pages of a fresh (``np.empty``) array on a helper thread; join it when done.

    The kernel zeroes each new page on first touch; for an 80 MB array that is a
    fifth of libdeflate's inflate time.  ``MADV_POPULATE_WRITE`` does it ahead of
    the inflater on the other core and never changes the contents, so the two
    cannot race.  None where the system lacks it (the inflater then faults the
    pages in itself, as before).
    """
    if out.nbytes < _PREFAULT_ABOVE or not sys.platform.startswith("linux"):
        return None
    with _LOCK:
        fn = _madvise()
    if fn is None:
        return None
    page = 4096
    start = (_addr(out) + page - 1) // page * page
    end = (_addr(out) + out.nbytes) // page * page

    def run() -> None:
        step = 1 << 23
        for s in range(start, end, step):
            if fn(s, min(step, end - s), _MADV_POPULATE_WRITE) != 0:
                return  # not supported here (EINVAL): nothing lost

    th = threading.Thread(target=run, name="medio-prefault", daemon=True)
    th.start()
    return th


# -- libdeflate ------------------------------------------------------------------------------
class _LibDeflate:
    """``gzip(raw, out)`` and ``deflate(raw, out)`` through libdeflate's C API."""

    SUCCESS, BAD_DATA, SHORT_OUTPUT, INSUFFICIENT_SPACE = 0, 1, 2, 3

    def __init__(self, lib: Any) -> None:
        size_p = ctypes.POINTER(ctypes.c_size_t)
        lib.libdeflate_alloc_decompressor.restype = ctypes.c_void_p
        lib.libdeflate_alloc_decompressor.argtypes = []
        lib.libdeflate_free_decompressor.restype = None
        lib.libdeflate_free_decompressor.argtypes = [ctypes.c_void_p]
        lib.libdeflate_gzip_decompress_ex.restype = ctypes.c_int
        lib.libdeflate_gzip_decompress_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                                       ctypes.c_void_p, ctypes.c_size_t, size_p, size_p]
        lib.libdeflate_deflate_decompress.restype = ctypes.c_int
        lib.libdeflate_deflate_decompress.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                                      ctypes.c_void_p, ctypes.c_size_t, size_p]
        lib.libdeflate_crc32.restype = ctypes.c_uint32
        lib.libdeflate_crc32.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        self._lib = lib
        self._local = threading.local()  # a decompressor is not shared between threads

    def _decompressor(self) -> int:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._lib.libdeflate_alloc_decompressor()
            if not d:
                raise MemoryError("libdeflate: cannot allocate a decompressor")
            self._local.d = d
            self._local.finalizer = _Finalizer(self._lib.libdeflate_free_decompressor, d)
        return d

    def gzip(self, raw: Any, out: np.ndarray, out_offset: int = 0) -> tuple[int, int, int]:
        """Inflate the first gzip member of ``raw`` into ``out[out_offset:]``.

        Returns ``(status, bytes read, bytes written)``.
        """
        src = np.frombuffer(raw, np.uint8)
        got_in, got_out = ctypes.c_size_t(0), ctypes.c_size_t(0)
        status = self._lib.libdeflate_gzip_decompress_ex(
            self._decompressor(), _addr(src) if src.size else None, src.size, _addr(out) + out_offset,
            out.size - out_offset, ctypes.byref(got_in), ctypes.byref(got_out))
        return int(status), int(got_in.value), int(got_out.value)

    def deflate(self, raw: Any, out: np.ndarray, start: int, n: int) -> int:
        """Inflate raw deflate ``raw`` into ``out[start:start + n]``; the bytes written (raises on bad data)."""
        src = np.frombuffer(raw, np.uint8)
        got = ctypes.c_size_t(0)
        status = self._lib.libdeflate_deflate_decompress(
            self._decompressor(), _addr(src), src.size, _addr(out) + start, n, ctypes.byref(got))
        if status == self.INSUFFICIENT_SPACE:
            raise ValueError(f"deflate block inflates to more than {n} bytes")
        if status != self.SUCCESS:
            raise ValueError("deflate data is corrupt")
        return int(got.value)


    def crc32(self, data: Any, crc: int = 0) -> int:
        """CRC-32 of ``data`` (any contiguous buffer) continuing ``crc``, as :func:`zlib.crc32` gives.

        Unlike the ``deflate`` package's ``crc32``, this call lets other threads run
        (ctypes drops the GIL), so deflate workers can each check their own block.
        """
        src = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
        if not src.size:
            return crc & 0xFFFFFFFF
        return int(self._lib.libdeflate_crc32(crc & 0xFFFFFFFF, _addr(src), src.size))


class _Finalizer:
    """Frees a C object when the thread-local holding it goes away."""

    def __init__(self, free: Callable[[int], None], handle: int) -> None:
        self._free, self._handle = free, handle

    def __del__(self) -> None:
        try:
            self._free(self._handle)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _bundled_libdeflate() -> list[str]:
    """libdeflate shared libraries that installed wheels bundle, newest-built first.

    imagecodecs' wheels ship a recent libdeflate (1.25 here) whose CRC-32 has the
    VPCLMULQDQ/AVX2 code path; the ``deflate`` package links an older one into its
    extension (no such path: 18.7-22.9 GB/s against 23.5-24.8 GB/s for a cache-hot
    4 MiB block here).  Found by file name, without importing imagecodecs.
    """
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("imagecodecs")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.origin:
        return []
    site = Path(spec.origin).resolve().parent.parent
    found: list[str] = []
    for folder in ("imagecodecs.libs", "imagecodecs/.dylibs", "imagecodecs"):
        for pattern in ("libdeflate*.so*", "libdeflate*.dylib", "libdeflate*.dll", "deflate*.dll"):
            found.extend(sorted(str(p) for p in (site / folder).glob(pattern)))
    return found


def _load_libdeflate() -> Optional[_LibDeflate]:
    candidates = _bundled_libdeflate()
    try:
        from deflate import _deflate

        candidates.append(_deflate.__file__)
    except Exception:
        pass
    found = ctypes.util.find_library("deflate")
    if found:
        candidates.append(found)
    for name in candidates:
        try:
            binding = _LibDeflate(ctypes.CDLL(name))
            if _selftest_libdeflate(binding):
                return binding
        except Exception:
            continue
    return None


def _sample() -> bytes:
    rng = np.random.default_rng(7)
    return (rng.integers(0, 6, 150_000, dtype=np.uint8) * 40).tobytes() + bytes(50_000)


def _selftest_libdeflate(binding: _LibDeflate) -> bool:
    data = _sample()
    blob = zlib.compress(data, 6, wbits=31)
    out = np.zeros(len(data) + 16, np.uint8)
    status, n_in, n_out = binding.gzip(blob + b"junk", out)
    if (status, n_in, n_out) != (0, len(blob), len(data)) or out[:n_out].tobytes() != data:
        return False
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = co.compress(data) + co.flush()
    out[:] = 0
    if binding.deflate(raw, out, 8, len(data)) != len(data) or out[8:8 + len(data)].tobytes() != data:
        return False
    return binding.crc32(data[:1000], binding.crc32(b"")) == zlib.crc32(data[:1000]) and \
        binding.crc32(data[1000:], zlib.crc32(data[:1000])) == zlib.crc32(data)


def libdeflate() -> Optional[_LibDeflate]:
    """The libdeflate binding, or None when no usable libdeflate is installed."""
    with _LOCK:
        if "libdeflate" not in _CACHE:
            _CACHE["libdeflate"] = _load_libdeflate()
        return _CACHE["libdeflate"]


# -- zlib-ng (streaming) ---------------------------------------------------------------------
class _ZStream(ctypes.Structure):
    """zlib-ng's public ``zng_stream`` (zlib-ng.h, native API)."""

    _fields_ = [("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint32), ("total_in", ctypes.c_size_t),
                ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint32), ("total_out", ctypes.c_size_t),
                ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p), ("zalloc", ctypes.c_void_p),
                ("zfree", ctypes.c_void_p), ("opaque", ctypes.c_void_p), ("data_type", ctypes.c_int),
                ("adler", ctypes.c_uint32), ("reserved", ctypes.c_ulong)]


_Z_OK, _Z_STREAM_END, _Z_NEED_DICT, _Z_BUF_ERROR = 0, 1, 2, -5
_MAX_PIECE = 1 << 30  # avail_in / avail_out are 32-bit


class _ZlibNg:
    """Streaming gzip inflate (every member) from a file into one preallocated array."""

    def __init__(self, lib: Any) -> None:
        sp = ctypes.POINTER(_ZStream)
        for name, args in (("zng_inflateInit2", [sp, ctypes.c_int32]), ("zng_inflate", [sp, ctypes.c_int32]),
                           ("zng_inflateReset", [sp]), ("zng_inflateEnd", [sp])):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, ctypes.c_int32
        self._lib = lib

    def inflate_file(self, fd: int, offset: int, out: np.ndarray, *, piece: int = 1 << 22,
                     chunk: int = 1 << 22, on_piece: Optional[Callable[[int], None]] = None) -> int:
        """Inflate the gzip members in file ``fd`` from byte ``offset`` into ``out``; the bytes written.

        The compressed bytes are read on a second thread (``chunk`` at a time,
        three rotating buffers) while this thread inflates, ``piece`` output bytes
        per call; ``on_piece(done)`` follows each call that produced output (it
        may raise, e.g. to cancel).  After the last member, trailing bytes that do
        not start a gzip member are ignored (padding), as gzip does.  Raises
        :class:`Overflow` when the data is larger than ``out``, ``ValueError``
        when it is corrupt or truncated.
        """
        lib = self._lib
        s = _ZStream()
        if lib.zng_inflateInit2(ctypes.byref(s), 31) != _Z_OK:
            raise MemoryError("zlib-ng: cannot initialise an inflater")
        base = _addr(out)
        cap = out.size
        pos = 0
        member_start = offset
        try:
            while True:
                produced_end = False
                reader = _ChunkReader(fd, member_start, chunk)
                try:
                    consumed = 0
                    while not produced_end:
                        buf, n = reader.next()
                        if n == 0:
                            raise ValueError("gzip data is truncated (stream ended inside a member)")
                        s.next_in, s.avail_in = _addr(buf), n
                        while True:
                            room = min(piece, cap - pos, _MAX_PIECE)
                            s.next_out, s.avail_out = base + pos, room
                            ret = lib.zng_inflate(ctypes.byref(s), 0)
                            wrote = room - s.avail_out
                            pos += wrote
                            if ret == _Z_STREAM_END:
                                produced_end = True
                                consumed += n - s.avail_in
                                if wrote and on_piece is not None:
                                    on_piece(pos)
                                break
                            if ret == _Z_BUF_ERROR or ret == _Z_OK:
                                if wrote and on_piece is not None:
                                    on_piece(pos)
                                if s.avail_in == 0:
                                    consumed += n
                                    break  # next input chunk
                                if ret == _Z_BUF_ERROR:  # input left but no progress: the output is full
                                    raise Overflow(f"gzip data inflates to more than {cap} bytes")
                                continue
                            if ret == _Z_NEED_DICT:
                                raise ValueError("gzip data needs a preset dictionary")
                            msg = s.msg.decode("latin-1", "replace") if s.msg else f"error {ret}"
                            raise ValueError(f"gzip data is corrupt: {msg}")
                finally:
                    reader.close()
                member_start += consumed
                magic = os.pread(fd, 2, member_start) if hasattr(os, "pread") else _pread(fd, 2, member_start)
                if magic != b"\x1f\x8b":
                    return pos  # end of file, or padding after the last member
                if lib.zng_inflateReset(ctypes.byref(s)) != _Z_OK:  # pragma: no cover
                    raise ValueError("zlib-ng: cannot reset the inflater")
        finally:
            lib.zng_inflateEnd(ctypes.byref(s))


def _pread(fd: int, n: int, pos: int) -> bytes:  # pragma: no cover - platforms without os.pread
    os.lseek(fd, pos, os.SEEK_SET)
    return os.read(fd, n)


class _ChunkReader:
    """Reads a file in ``chunk``-sized pieces on a helper thread, one piece ahead of the consumer.

    Three preallocated buffers rotate: the consumer holds one, the reader fills
    the next, a third waits -- no allocation per piece, and the copy out of the
    page cache runs on the other core while the consumer inflates.  Small
    remainders (at most two chunks) are read at once, without a thread.
    """

    def __init__(self, fd: int, start: int, chunk: int) -> None:
        import queue

        self._fd, self._pos, self._chunk = fd, start, chunk
        self._left = max(0, os.fstat(fd).st_size - start)
        self._thread = None
        self._stop = threading.Event()
        if self._left <= 2 * chunk:
            self._whole = np.empty(max(self._left, 1), np.uint8)
            self._whole_n = self._fill(self._whole, self._left)
            return
        self._whole = None
        self._free: "queue.Queue" = queue.Queue()
        self._full: "queue.Queue" = queue.Queue()
        for _ in range(3):
            self._free.put(np.empty(chunk, np.uint8))
        self._held = None
        self._thread = threading.Thread(target=self._run, name="medio-gzip-reader", daemon=True)
        self._thread.start()

    def _fill(self, buf: np.ndarray, want: int) -> int:
        view = memoryview(buf)[:want]
        got = 0
        while got < want:
            n = os.preadv(self._fd, [view[got:]], self._pos + got) if hasattr(os, "preadv") else \
                _readinto_at(self._fd, view[got:], self._pos + got)
            if n <= 0:
                break
            got += n
        self._pos += got
        return got

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                buf = self._free.get()
                if buf is None:
                    return
                n = self._fill(buf, self._chunk)
                self._full.put((buf, n, None))
                if n == 0:
                    return
        except BaseException as exc:  # reported to the consumer
            self._full.put((None, 0, exc))

    def next(self) -> tuple[np.ndarray, int]:
        """The next piece ``(buffer, bytes)``; ``bytes == 0`` at end of file."""
        if self._whole is not None:
            buf, n = self._whole, self._whole_n
            self._whole_n = 0
            return buf, n
        if self._held is not None:
            self._free.put(self._held)
            self._held = None
        buf, n, exc = self._full.get()
        if exc is not None:
            raise exc
        self._held = buf
        return buf, n

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._free.put(None)
            self._thread.join()
            self._thread = None


def _readinto_at(fd: int, view: memoryview, pos: int) -> int:  # pragma: no cover - no os.preadv
    os.lseek(fd, pos, os.SEEK_SET)
    with os.fdopen(os.dup(fd), "rb", buffering=0) as fh:
        return fh.readinto(view) or 0


def _load_zng() -> Optional[_ZlibNg]:
    try:
        from zlib_ng import zlib_ng as module

        binding = _ZlibNg(ctypes.CDLL(module.__file__))
    except Exception:
        return None
    return binding if _selftest_zng(binding) else None


def _selftest_zng(binding: _ZlibNg) -> bool:
    import tempfile

    data = _sample()
    blob = zlib.compress(data[:120_000], 6, wbits=31) + zlib.compress(data[120_000:], 1, wbits=31) + bytes(5)
    try:
        with tempfile.TemporaryFile() as fh:
            fh.write(b"HDR" + blob)
            fh.flush()
            out = np.zeros(len(data), np.uint8)
            seen: list[int] = []
            n = binding.inflate_file(fh.fileno(), 3, out, piece=65536, chunk=8192, on_piece=seen.append)
            if n != len(data) or out.tobytes() != data or seen[-1] != n or len(seen) < 3:
                return False
            small = np.zeros(len(data) - 1, np.uint8)
            try:
                binding.inflate_file(fh.fileno(), 3, small)
                return False
            except Overflow:
                pass
            fh.seek(0)
            fh.truncate()
            bad = bytearray(blob)
            bad[len(blob) // 4] ^= 0xFF
            fh.write(bytes(bad))
            fh.flush()
            try:
                binding.inflate_file(fh.fileno(), 0, np.zeros(len(data), np.uint8))
                return False
            except ValueError:
                return True
    except Exception:
        return False


def zng() -> Optional[_ZlibNg]:
    """The zlib-ng streaming binding, or None when ``zlib_ng`` is missing or does not pass the self-test."""
    with _LOCK:
        if "zng" not in _CACHE:
            _CACHE["zng"] = _load_zng()
        return _CACHE["zng"]
