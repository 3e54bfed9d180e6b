"""Fast compressed I/O (issue 9): indexed parallel gzip, fast inflate, peers read our files, progress/cancel."""
from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest

import napari_medio
from napari_medio.core import fileio
from napari_medio.core.errors import CancelledError, FormatError
from napari_medio.core.progress import Progress
from napari_medio.core.volume import Volume
from tests.volumes import OBLIQUE_FLIPPED


@pytest.fixture
def small_blocks(monkeypatch):
    """64 KiB gzip blocks, so small test volumes span many parallel blocks."""
    monkeypatch.setattr(fileio, "_GZIP_BLOCK", 1 << 16)


def _ct(shape=(20, 64, 96)) -> Volume:
    rng = np.random.default_rng(3)
    a = (rng.integers(0, 40, shape) + 1000).astype(np.int16)
    a[:, 5, :] = 2000
    return Volume(a, OBLIQUE_FLIPPED, name="ct")


def _gzip_bytes(chunks, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    fileio.gzip_compress_parallel(chunks, buf, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("level", [0, 1, 4, 6, 9])
def test_parallel_gzip_is_plain_gzip_for_every_reader(small_blocks, level):
    data = np.random.default_rng(0).integers(0, 30, 700_001, dtype=np.uint8).tobytes()
    chunks = [data[:12345], data[12345:400_000], data[400_000:]]  # blocks straddle chunks
    blob = _gzip_bytes(chunks, level=level)
    assert gzip.decompress(blob) == data  # all members (the index member is empty)
    d = zlib.decompressobj(31)  # first member alone, as pynrrd and ITK read it
    assert d.decompress(blob) == data


def test_index_gives_parallel_read_with_crc_check(tmp_path, small_blocks):
    data = np.random.default_rng(1).integers(0, 50, 1_000_000, dtype=np.uint8).tobytes()
    path = tmp_path / "x.gz"
    path.write_bytes(b"HEADER" + _gzip_bytes([data]))
    idx = fileio.gzip_index(path, 6)
    assert idx is not None and len(idx["blocks"]) == -(-len(data) // (1 << 16)) and idx["size"] == len(data)
    assert fileio.gzip_read(path, 6).tobytes() == data
    # a flipped bit inside a block is caught by that block's CRC-32 (or the inflater)
    raw = bytearray(path.read_bytes())
    pos, size, _ = idx["blocks"][3]
    raw[pos + size // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        fileio.gzip_read(path, 6)


def test_blocks_are_sized_for_the_workers_to_share_evenly(tmp_path):
    assert fileio._block_size(78_643_200, 2) == 3_932_160  # 20 blocks of 3.75 MiB, not 18.75 of 4 MiB
    assert fileio._block_size(78_643_200, 1) == fileio._GZIP_BLOCK
    assert fileio._block_size(None, 2) == fileio._GZIP_BLOCK
    assert fileio._block_size(1000, 2) == fileio._GZIP_BLOCK
    for total in (4_194_305, 9_000_001, 123_456_789):
        for workers in (2, 3, 8):
            size = fileio._block_size(total, workers)
            jobs = -(-total // size)
            assert size <= fileio._GZIP_BLOCK and size % (1 << 16) == 0
            assert jobs % workers == 0 or jobs < workers or size == fileio._GZIP_BLOCK, (total, workers, size)
    data = np.random.default_rng(5).integers(0, 3, 9_000_001, dtype=np.uint8).tobytes()
    path = tmp_path / "even.gz"
    with open(path, "wb") as fh:
        fileio.gzip_compress_parallel([data], fh, threads=2, total=len(data))
    idx = fileio.gzip_index(path)
    assert idx is not None and idx["block_size"] == fileio._block_size(len(data), 2) and len(idx["blocks"]) == 4
    assert fileio.gzip_read(path).tobytes() == data and gzip.decompress(path.read_bytes()) == data


def test_foreign_gzip_one_call_and_streaming_agree(tmp_path, monkeypatch):
    data = np.random.default_rng(2).integers(0, 50, 300_000, dtype=np.uint8).tobytes()
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(data[:100_000]) + gzip.compress(data[100_000:]))  # two members
    assert fileio.gzip_index(path) is None
    assert fileio.gzip_read(path, 0, len(data)).tobytes() == data
    monkeypatch.setattr(fileio, "STREAM_ABOVE", 10)
    assert fileio.gzip_read(path, 0, len(data)).tobytes() == data
    assert fileio.gzip_read(path).tobytes() == data  # unknown size
    path.write_bytes(gzip.compress(data)[:-30])
    with pytest.raises(ValueError):
        fileio.gzip_read(path, 0, len(data))


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".seg.nrrd"])
def test_compressed_round_trip_and_peers_read_our_files(tmp_path, small_blocks, ext):
    import nibabel as nib
    import nrrd
    import SimpleITK as sitk

    vol = _ct()
    if ext == ".seg.nrrd":
        vol = vol.with_array((np.asarray(vol.array) % 4).astype(np.uint8), kind="labelmap")
    out = tmp_path / f"v{ext}"
    napari_medio.write(vol, out)
    assert fileio.gzip_index(out, 0 if ext == ".nii.gz" else out.read_bytes().index(b"\n\n") + 2) is not None
    back = napari_medio.read(out)[0]
    if ext == ".seg.nrrd":
        back_arr = np.asarray(back.to_labelmap().array if hasattr(back, "to_labelmap") else back.array)
        assert back_arr.shape[-3:] == vol.shape
    else:
        assert np.array_equal(np.asarray(back.array), vol.array)
        assert back.geometry.almost_equal(vol.geometry, 1e-6)
    expected = np.asarray(vol.array)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))).reshape(expected.shape), expected)
    if ext == ".nii.gz":
        assert np.array_equal(np.asarray(nib.load(out).dataobj).transpose(2, 1, 0), expected)
    else:
        assert np.array_equal(nrrd.read(str(out))[0].transpose(2, 1, 0), expected)


def test_peer_written_files_read_bit_for_bit(tmp_path):
    import SimpleITK as sitk

    vol = _ct()
    img = sitk.GetImageFromArray(np.asarray(vol.array))
    for ext in (".nii.gz", ".nrrd"):
        sitk.WriteImage(img, str(tmp_path / f"s{ext}"), True)
        assert np.array_equal(np.asarray(napari_medio.read(tmp_path / f"s{ext}")[0].array), vol.array)


def test_compressed_output_is_reproducible(tmp_path):
    vol = _ct()
    napari_medio.write(vol, tmp_path / "a.nii.gz")
    napari_medio.write(vol, tmp_path / "b.nii.gz")
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd"])
def test_progress_reports_and_cancel_leaves_no_file(tmp_path, small_blocks, ext):
    vol = _ct((40, 64, 96))
    seen = []
    napari_medio.write(vol, tmp_path / f"p{ext}", progress=Progress(callback=lambda d, t, s: seen.append((d, t))))
    assert seen and seen[-1][0] == seen[-1][1] >= vol.array.nbytes
    seen.clear()
    napari_medio.read(tmp_path / f"p{ext}", progress=Progress(callback=lambda d, t, s: seen.append((d, t))))
    assert len(seen) > 3 and seen[-1][0] == seen[-1][1]

    # cancel half way: CancelledError, the previous file intact, no temporary left behind
    target = tmp_path / f"p{ext}"
    before = target.read_bytes()
    prog = Progress(callback=lambda d, t, s: False if t and d > t / 2 else None)
    with pytest.raises(CancelledError):
        napari_medio.write(vol.with_array(np.asarray(vol.array) + 1), target, progress=prog)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p{ext}"]
    # cancelling a read (e.g. from a GUI thread) stops it with CancelledError
    prog = Progress()
    prog.add_callback(lambda d, t, s: prog.cancel() if d else None)
    with pytest.raises(CancelledError):
        napari_medio.read(target, progress=prog)


def test_progress_drives_a_tqdm_bar(tmp_path, small_blocks):
    from tqdm import tqdm

    bar = tqdm(disable=True)
    updates = []
    bar.update = lambda n: updates.append(n)  # what tqdm and napari.utils.progress both offer
    napari_medio.write(_ct(), tmp_path / "t.nrrd", progress=Progress.for_bar(bar))
    assert sum(updates) == _ct().array.nbytes and bar.total == _ct().array.nbytes


def test_corrupt_compressed_files_raise_format_error(tmp_path, small_blocks):
    napari_medio.write(_ct(), tmp_path / "g.nii.gz")
    raw = (tmp_path / "g.nii.gz").read_bytes()
    (tmp_path / "t.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError):
        napari_medio.read(tmp_path / "t.nii.gz")


def test_observer_sees_every_byte_once_at_its_offset(small_blocks):
    data = np.random.default_rng(5).integers(0, 9, 500_003, dtype=np.uint8).tobytes()
    chunks = [data[:1000], data[1000:300_001], data[300_001:]]  # blocks straddle chunks
    seen: list[tuple[int, bytes]] = []
    blob = _gzip_bytes(chunks, observe=lambda start, block: seen.append((start, bytes(block))))
    assert gzip.decompress(blob) == data
    seen.sort()
    assert [s for s, _ in seen] == list(range(0, len(data), 1 << 16))
    assert b"".join(b for _, b in seen) == data


def test_observer_errors_reach_the_caller(small_blocks):
    def fail(start, block):
        raise RuntimeError("observer broke")

    with pytest.raises(RuntimeError, match="observer broke"):
        _gzip_bytes([bytes(300_000)], observe=fail)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "int16 array", "empty"])
def test_crc32_lets_threads_run_and_matches_zlib(monkeypatch, kind, native):
    from napari_medio.core import _inflate

    if not native:  # the fallbacks (isal, zlib-ng, zlib) when libdeflate cannot be loaded
        monkeypatch.setattr(fileio, "_CRC32", [])
        monkeypatch.setattr(_inflate, "libdeflate", lambda: None)
    raw = np.random.default_rng(6).integers(0, 255, 100_001, dtype=np.uint8).tobytes()
    if kind == "empty":
        raw = b""
    data = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(raw)[3:],
            "int16 array": np.frombuffer(raw[:100_000], np.int16), "empty": raw}[kind]
    expected = zlib.crc32(bytes(memoryview(data).cast("B")) if not isinstance(data, np.ndarray) else data.tobytes())
    crc32 = fileio._crc32()
    assert crc32(data) == expected
    assert crc32(data, 12345) == zlib.crc32(bytes(memoryview(data).cast("B")) if not isinstance(data, np.ndarray)
                                            else data.tobytes(), 12345)
