"""core/fileio.py: temporary files renamed into place, gzip written on threads and read into bounded arrays."""
from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from napari_medio.core import fileio
from napari_medio.core.errors import FormatError, WriteError


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".medio-"))


def test_failed_write_leaves_the_old_file_and_no_temporaries(tmp_path):
    target = tmp_path / "out.bin"
    old = os.urandom(1 << 16)
    target.write_bytes(old)
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == old
    assert _leftovers(tmp_path) == []


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    old = os.urandom(1 << 16)
    target.write_bytes(old)

    def refuse(src, dst):
        raise PermissionError(13, "refused")

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(PermissionError):
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(b"new")
    monkeypatch.undo()
    assert target.read_bytes() == old
    assert _leftovers(tmp_path) == []


def test_files_written_together_all_land_or_none(tmp_path):
    a, b = tmp_path / "x.nhdr", tmp_path / "x.raw"
    with pytest.raises(RuntimeError):
        with fileio.atomic_outputs([a, b]) as (ta, tb):
            ta.write_bytes(b"header")
            raise RuntimeError("data failed")
    assert list(tmp_path.iterdir()) == []
    with fileio.atomic_outputs([a, b]) as (ta, tb):
        assert ta.name.endswith("-x.nhdr") and tb.name.endswith("-x.raw")
        ta.write_bytes(b"header")
        tb.write_bytes(b"data")
    assert a.read_bytes() == b"header" and b.read_bytes() == b"data" and _leftovers(tmp_path) == []
    with pytest.raises(WriteError, match="writer produced no file"):
        with fileio.atomic_outputs([a, b]) as (ta, tb):
            tb.unlink()
    assert a.read_bytes() == b"header" and _leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="symlinks and FIFOs")
def test_symlinks_and_fifos_are_replaced_not_followed(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"real")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with fileio.atomic_output(link) as temp:
        temp.write_bytes(b"through the link name")
    assert not link.is_symlink() and link.read_bytes() == b"through the link name"
    assert real.read_bytes() == b"real"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with fileio.atomic_output(fifo) as temp:  # never opened (that would wait for a writer)
        temp.write_bytes(b"now a file")
    assert fifo.read_bytes() == b"now a file"


def test_uncreatable_target_is_a_write_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(WriteError, match="cannot create file: .*file is a file, not a folder"):
        with fileio.atomic_output(blocker / "inside.bin"):
            pass
    with pytest.raises(WriteError, match="file is a file, not a folder"):
        with fileio.atomic_output(blocker / "deeper" / "inside.bin"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# -- gzip ---------------------------------------------------------------------------------------
def _data(n: int = 3_000_001, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 30, n, dtype=np.uint8).tobytes()


def _gzip_bytes(chunks, **kw) -> bytes:
    buf = io.BytesIO()
    fileio.gzip_write(buf, chunks, **kw)
    return buf.getvalue()


@pytest.fixture(params=["isal", "zlib-ng", "stdlib"])
def library(request, monkeypatch):
    """Each gzip library route: isal, zlib-ng without isal, the standard library without either."""
    import builtins

    hidden = {"isal": (), "zlib-ng": ("isal",), "stdlib": ("isal", "zlib_ng")}[request.param]
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in hidden:
            raise ImportError(f"no {name} here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(fileio, "_READ_PIECE", 1 << 12)  # many read and inflate steps
    monkeypatch.setattr(fileio, "_OUT_PIECE", 1 << 13)
    return request.param


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_gzip_write_is_one_plain_member(library, level):
    data = _data()
    blob = _gzip_bytes([data[:12345], memoryview(data)[12345:2_000_000], data[2_000_000:]], level=level)
    assert gzip.decompress(blob) == data
    d = zlib.decompressobj(31)  # the first member alone, as pynrrd and ITK read it
    assert d.decompress(blob) == data and d.eof and d.unused_data == b""


def test_gzip_read_every_member_padding_and_offset(tmp_path, library):
    data = _data(300_000, 2)
    path = tmp_path / "f.gz"
    path.write_bytes(b"HEADER" + gzip.compress(data[:100_000]) + gzip.compress(data[100_000:]) + b"\0" * 9)
    assert fileio.gzip_read(path, 6, len(data)).tobytes() == data
    assert fileio.gzip_read(path, 6).tobytes() == data  # size unknown: every member
    out = fileio.gzip_read(path, 6, len(data))
    assert out.flags.writeable and out.dtype == np.uint8
    # files of earlier versions: an empty second member whose extra field held a block index
    extra = b"MI" + (12).to_bytes(2, "little") + bytes(12)
    empty_member = (b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + len(extra).to_bytes(2, "little") + extra
                    + b"\x03\x00" + bytes(8))
    path.write_bytes(gzip.compress(data) + empty_member)
    assert fileio.gzip_read(path, 0, len(data)).tobytes() == data == fileio.gzip_read(path).tobytes()
    # a label map: a few compressed bytes inflate to many pieces after the input is all read
    mask = bytes(2_000_000) + b"\x01" * 1000 + bytes(1_000_000)
    path.write_bytes(gzip.compress(mask))
    assert fileio.gzip_read(path, 0, len(mask)).tobytes() == mask
    assert fileio.gzip_read(path).tobytes() == mask


def test_gzip_read_never_exceeds_the_declared_size(tmp_path, library):
    data = _data(500_000, 3)
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(data))
    out = fileio.gzip_read(path, 0, 1000)  # the header declares less than the data holds
    assert out.size == 1000 and out.tobytes() == data[:1000]


def test_truncated_and_corrupt_gzip_raise_format_error_naming_the_file(tmp_path, library):
    data = _data(400_000, 4)
    blob = gzip.compress(data)
    path = tmp_path / "t.gz"
    for cut in (len(blob) // 2, len(blob) - 4):  # inside the data; inside the trailer
        path.write_bytes(blob[:cut])
        with pytest.raises(FormatError, match=r"t\.gz: .*truncated"):
            fileio.gzip_read(path, 0, len(data))
        with pytest.raises(FormatError, match=r"t\.gz"):
            fileio.gzip_read(path)
    path.write_bytes(gzip.compress(data[:1000]))
    with pytest.raises(FormatError, match=r"t\.gz: data is truncated: 1000 bytes for 400000 expected"):
        fileio.gzip_read(path, 0, len(data))
    bad = bytearray(blob)
    bad[-8] ^= 0xFF  # the CRC-32
    path.write_bytes(bytes(bad))
    with pytest.raises(FormatError, match=r"t\.gz: gzip data is corrupt"):
        fileio.gzip_read(path, 0, len(data))
    path.write_bytes(b"not gzip at all" * 10)
    with pytest.raises(FormatError, match=r"t\.gz"):
        fileio.gzip_read(path, 0, 10)


def test_gzip_decompress_small_buffers(library):
    data = _data(10_000, 5)
    assert fileio.gzip_decompress(gzip.compress(data)) == data


def test_read_progress_and_cancel(tmp_path, monkeypatch):
    from napari_medio.core.errors import CancelledError
    from napari_medio.core.progress import Progress

    monkeypatch.setattr(fileio, "_READ_PIECE", 1 << 12)
    data = _data(1_000_000, 6)
    path = tmp_path / "p.gz"
    path.write_bytes(gzip.compress(data))
    seen = []
    fileio.gzip_read(path, 0, len(data), progress=Progress(callback=lambda d, t, s: seen.append((d, t))))
    assert len(seen) > 3 and seen[-1] == (len(data), len(data))
    prog = Progress(callback=lambda d, t, s: False if d > t / 2 else None)
    with pytest.raises(CancelledError):
        fileio.gzip_read(path, 0, len(data), progress=prog)
    assert Path(path).exists()
