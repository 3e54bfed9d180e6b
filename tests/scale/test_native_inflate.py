"""Inflate straight into NumPy arrays (libdeflate / zlib-ng through ctypes) and the routes of gzip_read."""
from __future__ import annotations

import gzip
import io
import os
import threading
import zlib

import numpy as np
import pytest

from napari_medio.core import _inflate, fileio
from napari_medio.core.errors import CancelledError
from napari_medio.core.progress import Progress


def _data(n=900_000, seed=5) -> bytes:
    """Noisy bytes: about 2x compressible, so foreign files of them stream (not a label map)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 16, n, dtype=np.uint8) * (rng.random(n) < 0.5)).tobytes()


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, 1)


@pytest.fixture
def native_only(monkeypatch):
    """Fail the test if gzip_read falls back to the pure-Python streamer."""
    def fail(*a, **k):
        raise AssertionError("fell back to the isal streamer")

    monkeypatch.setattr(fileio, "_read_streaming", fail)


def test_bindings_load_and_pass_their_self_test():
    assert _inflate.libdeflate() is not None
    assert _inflate.zng() is not None


def test_one_call_inflate_fills_a_writable_array(tmp_path, native_only):
    data = _data()
    p = tmp_path / "a.gz"
    p.write_bytes(b"HEAD" + _gz(data))
    out = fileio.gzip_read(p, 4, len(data))
    assert out.tobytes() == data and out.flags.writeable and out.dtype == np.uint8


@pytest.mark.parametrize("piece", [1 << 12, 1 << 22])
def test_streaming_into_the_array_every_member_and_padding(tmp_path, monkeypatch, native_only, piece):
    data = _data()
    p = tmp_path / "m.gz"
    p.write_bytes(_gz(data[:300_000]) + zlib.compress(data[300_000:], 1, wbits=31) + bytes(7))
    monkeypatch.setattr(fileio, "STREAM_ABOVE", 10)  # stream: the data is not 8x compressible
    seen = []
    real = _inflate._ZlibNg.inflate_file

    def spy(self, fd, offset, out, **kw):
        seen.append(kw)
        return real(self, fd, offset, out, piece=piece, chunk=1 << 14, on_piece=kw.get("on_piece"))

    monkeypatch.setattr(_inflate._ZlibNg, "inflate_file", spy)
    done = []
    out = fileio.gzip_read(p, 0, len(data), progress=Progress(callback=lambda d, t, s: done.append(d)))
    assert seen and out.tobytes() == data and out.flags.writeable
    assert done[-1] == len(data) and (len(done) > 10 or piece > len(data))


def test_label_maps_inflate_in_one_call_even_above_stream_above(tmp_path, monkeypatch, native_only):
    labels = np.zeros(2_000_000, np.uint8)
    labels[500_000:1_400_000] = 1
    p = tmp_path / "l.gz"
    p.write_bytes(_gz(labels.tobytes()))
    monkeypatch.setattr(fileio, "STREAM_ABOVE", 1000)
    monkeypatch.setattr(_inflate, "zng", lambda: pytest.fail("a label map should not stream"))
    assert np.array_equal(fileio.gzip_read(p, 0, labels.size), labels)


def test_data_larger_than_announced_is_read_whole(tmp_path, monkeypatch):
    data = _data()
    p = tmp_path / "big.gz"
    p.write_bytes(_gz(data))
    for stream_above in (fileio.STREAM_ABOVE, 10):  # one call, then streaming: both fall back and grow
        monkeypatch.setattr(fileio, "STREAM_ABOVE", stream_above)
        assert fileio.gzip_read(p, 0, len(data) - 1000).tobytes() == data


@pytest.mark.parametrize("stream_above", [1 << 26, 10])
def test_truncated_and_corrupt_data_raise(tmp_path, monkeypatch, stream_above):
    monkeypatch.setattr(fileio, "STREAM_ABOVE", stream_above)
    data = _data()
    blob = _gz(data)
    p = tmp_path / "t.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError):
        fileio.gzip_read(p, 0, len(data))
    bad = bytearray(blob)
    bad[len(bad) // 3] ^= 0x55
    p.write_bytes(bytes(bad))
    with pytest.raises(ValueError):
        fileio.gzip_read(p, 0, len(data))
    trailer = bytearray(blob)
    trailer[-6] ^= 1  # CRC-32 of the trailer
    p.write_bytes(bytes(trailer))
    with pytest.raises(ValueError):
        fileio.gzip_read(p, 0, len(data))


def test_cancel_while_streaming_stops_the_reader_thread(tmp_path, monkeypatch):
    data = _data(3_000_000)
    p = tmp_path / "c.gz"
    p.write_bytes(_gz(data))
    monkeypatch.setattr(fileio, "STREAM_ABOVE", 10)
    real = _inflate._ZlibNg.inflate_file
    monkeypatch.setattr(_inflate._ZlibNg, "inflate_file", lambda self, fd, off, out, **kw: real(
        self, fd, off, out, piece=1 << 16, chunk=1 << 12, on_piece=kw.get("on_piece")))
    before = threading.active_count()
    prog = Progress()
    prog.add_callback(lambda d, t, s: prog.cancel() if d > len(data) // 3 else None)
    with pytest.raises(CancelledError):
        fileio.gzip_read(p, 0, len(data), progress=prog)
    assert threading.active_count() == before


def test_without_the_bindings_the_python_routes_give_the_same_bytes(tmp_path, monkeypatch):
    data = _data()
    p = tmp_path / "f.gz"
    p.write_bytes(_gz(data))
    ours = tmp_path / "ours.gz"
    with open(ours, "wb") as fh:
        monkeypatch.setattr(fileio, "_GZIP_BLOCK", 1 << 16)
        fileio.gzip_compress_parallel([data], fh)
    monkeypatch.setattr(_inflate, "libdeflate", lambda: None)
    monkeypatch.setattr(_inflate, "zng", lambda: None)
    for stream_above in (1 << 26, 10):
        monkeypatch.setattr(fileio, "STREAM_ABOVE", stream_above)
        assert fileio.gzip_read(p, 0, len(data)).tobytes() == data
    assert fileio.gzip_index(ours) is not None and fileio.gzip_read(ours).tobytes() == data


def test_block_crcs_combined_give_the_same_file(monkeypatch):
    data = _data()
    monkeypatch.setattr(fileio, "_GZIP_BLOCK", 1 << 16)
    a, b = io.BytesIO(), io.BytesIO()
    fileio.gzip_compress_parallel([data[:123_457], data[123_457:]], a)
    monkeypatch.setattr(fileio, "_crc32_combine", lambda: None)  # the whole CRC-32 in one pass instead
    fileio.gzip_compress_parallel([data[:123_457], data[123_457:]], b)
    assert a.getvalue() == b.getvalue() and gzip.decompress(a.getvalue()) == data


def test_chunk_reader_reads_everything_in_order(tmp_path):
    data = os.urandom(100_003)
    p = tmp_path / "r.bin"
    p.write_bytes(b"xx" + data)
    fd = os.open(p, os.O_RDONLY)
    try:
        r = _inflate._ChunkReader(fd, 2, 4096)  # more than two chunks: read on the helper thread
        got = []
        while True:
            buf, n = r.next()
            if not n:
                break
            got.append(buf[:n].tobytes())
        r.close()
    finally:
        os.close(fd)
    assert b"".join(got) == data


@pytest.mark.parametrize("works", [True, False])
def test_output_pages_faulted_in_on_a_helper_thread(tmp_path, monkeypatch, works):
    data = _data()
    p = tmp_path / "p.gz"
    p.write_bytes(_gz(data))
    monkeypatch.setattr(_inflate, "_PREFAULT_ABOVE", 1)
    calls = []
    real = _inflate._madvise()
    if real is None:
        pytest.skip("no madvise here")

    def madvise(addr, n, advice):
        calls.append(n)
        return real(addr, n, advice) if works else -1  # -1: e.g. EINVAL on kernels before 5.14

    monkeypatch.setitem(_inflate._CACHE, "madvise", madvise)
    before = threading.active_count()
    for stream_above in (1 << 26, 10):
        monkeypatch.setattr(fileio, "STREAM_ABOVE", stream_above)
        assert fileio.gzip_read(p, 0, len(data)).tobytes() == data
    assert calls and threading.active_count() == before
