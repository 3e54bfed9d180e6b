"""Compressed volumes: round trips, peers read our files and we theirs, reproducible output, progress/cancel."""
from __future__ import annotations

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
    """4 KiB inflate steps, so small test volumes report progress many times."""
    monkeypatch.setattr(fileio, "_READ_PIECE", 1 << 12)
    monkeypatch.setattr(fileio, "_OUT_PIECE", 1 << 13)


def _ct(shape=(20, 64, 96)) -> Volume:
    rng = np.random.default_rng(3)
    a = (rng.integers(0, 40, shape) + 1000).astype(np.int16)
    a[:, 5, :] = 2000
    return Volume(a, OBLIQUE_FLIPPED, name="ct")


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


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".seg.nrrd"])
def test_truncated_or_corrupt_compressed_files_raise_format_error(tmp_path, small_blocks, ext):
    vol = _ct()
    if ext == ".seg.nrrd":
        vol = vol.with_array((np.asarray(vol.array) % 4).astype(np.uint8), kind="labelmap")
    napari_medio.write(vol, tmp_path / f"g{ext}")
    raw = (tmp_path / f"g{ext}").read_bytes()
    start = raw.index(b"\x1f\x8b")
    for n, cut in enumerate((start + 40, (start + len(raw)) // 2, len(raw) - 6)):  # data, middle, trailer
        bad = tmp_path / f"t{'abc'[n]}{ext}"
        bad.write_bytes(raw[:cut])
        with pytest.raises(FormatError, match="truncated") as info:
            napari_medio.read(bad)
        assert str(bad) in str(info.value)
    flipped = bytearray(raw)
    flipped[-7] ^= 0x55  # the CRC-32
    (tmp_path / f"crc{ext}").write_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="corrupt"):
        napari_medio.read(tmp_path / f"crc{ext}")
