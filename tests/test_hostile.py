"""Hostile files built in the test: each read in a child process, refused with a MedioError naming the file.

A crash in a library's C/C++ code takes the whole process down, so these reads never run in pytest's own process.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.childread import assert_refused_in_child
from tests.conftest import fixture_file


def _edit(tmp_path: Path, src: Path, name: str, old: bytes, new: bytes) -> Path:
    data = src.read_bytes()
    assert old in data, old
    out = tmp_path / name
    out.write_bytes(data.replace(old, new, 1))
    return out


def test_legacy_vtk_cell_counts_that_do_not_add_up(tmp_path):
    src = fixture_file("models/pyvista/hexbeam.vtk")
    data = src.read_bytes()
    start = data.index(b"CELLS 40 360\n") + len(b"CELLS 40 360\n")
    huge_cell = tmp_path / "hugecell.vtk"  # first cell claims 2^31-1 points
    huge_cell.write_bytes(data[:start] + b"2147483647" + data[data.index(b" ", start):])
    assert_refused_in_child([
        _edit(tmp_path, src, "shortcells.vtk", b"CELLS 40 360", b"CELLS 40 3"),
        _edit(tmp_path, src, "hugesize.vtk", b"CELLS 40 360", b"CELLS 40 2147483647"),
        _edit(tmp_path, fixture_file("models/slicer/cube.vtk"), "polys.vtk", b"POLYGONS 6 30", b"POLYGONS 60 30"),
        huge_cell,
    ])


def test_legacy_vtk_binary_cell_counts(tmp_path):
    import napari_medio
    from napari_medio.core.model import Model

    model = Model(points=np.random.default_rng(0).random((4, 3)), cell_types=np.array([5, 5]),
                  offsets=np.array([0, 3, 6]), connectivity=np.array([0, 1, 2, 1, 2, 3]))
    good = tmp_path / "good.vtk"
    napari_medio.write(model, good, compress=True)
    data = good.read_bytes()
    assert b"BINARY" in data[:200]
    assert napari_medio.read(good)[0].n_cells == 2
    i = data.index(b"\nPOLYGONS") + 1
    line = data[i:data.index(b"\n", i)]
    bad = tmp_path / "bad.vtk"
    bad.write_bytes(data.replace(line, line.rsplit(b" ", 1)[0] + b" 2"))
    assert_refused_in_child([bad])


def test_vtk_xml_impossible_piece_counts(tmp_path):
    cube = fixture_file("models/slicer/cube.vtp")
    assert_refused_in_child([
        _edit(tmp_path, cube, f"{name}{i}.vtp", f'{attr}="{old}"'.encode(), f'{attr}="{value}"'.encode())
        for name, attr, old in (("points", "NumberOfPoints", 24), ("polys", "NumberOfPolys", 6))
        for i, value in enumerate((2**31 - 1, -5, "x"))
    ])


def test_itk_bspline_impossible_grids(tmp_path):
    import h5py

    text = fixture_file("transforms/Bspline-f-m.tfm")
    bad = [_edit(tmp_path, text, f"grid{i}.tfm", b"FixedParameters: 8 8 8", f"FixedParameters: {g}".encode())
           for i, g in enumerate(("8 800000 800000", "8 -8 8", "8 0 8", "8 8.5 8"))]
    for i, grid in enumerate(([17, 130000, 150000], [17, -13, 15], [2**31 - 1, 1, 1])):
        out = tmp_path / f"grid{i}.h5"
        out.write_bytes(fixture_file("transforms/BSplineLinearCompositeTransform.h5").read_bytes())
        with h5py.File(out, "r+") as f:
            fixed = f["TransformGroup/2/TranformFixedParameters"]
            values = fixed[()]
            values[:3] = grid
            fixed[...] = values
        bad.append(out)
    assert_refused_in_child(bad)


def _bmp8(width: int, height: int, pixels: bytes, compression: int) -> bytes:
    """An 8-bit gray-palette BMP with the given pixel bytes and compression field."""
    import struct

    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, compression, len(pixels), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def test_bmp_marked_rle8_holding_raw_rows(tmp_path):
    rows = bytes(range(64)) * 64  # 64x64 raw rows, but the header says RLE8
    bad = tmp_path / "rle.bmp"
    bad.write_bytes(_bmp8(64, 64, rows, 1))
    assert_refused_in_child([bad])


def test_bmp_rle8_reads(tmp_path):
    import napari_medio

    rle = b"".join(bytes((4, 10 * r, 4, 200, 0, 0)) for r in range(3)) + b"\x00\x01"  # 3 rows of 8 pixels
    good = tmp_path / "rle.bmp"
    good.write_bytes(_bmp8(8, 3, rle, 1))
    array = napari_medio.read(good)[0].to_numpy()
    assert array.shape[-2:] == (3, 8) and array.ndim == 2
    assert sorted(np.unique(array).tolist()) == [0, 10, 20, 200]


def test_png_with_a_huge_declared_size(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    width = height = 40000  # 1.6 G pixels of zeros compress to about 1.5 MB
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(bytes(width + 1)) for _ in range(height)) + packer.flush()
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    assert_refused_in_child([bomb])


def test_named_pipe_is_refused_not_waited_on(tmp_path):
    import os

    from tests.childread import read_in_child

    fifo = tmp_path / "pipe.nrrd"
    os.mkfifo(fifo)
    plain = tmp_path / "pipe"
    os.mkfifo(plain)
    (tmp_path / "scene.mrml").write_text("""<MRML version="Slicer 5.8.1 33241">
 <ModelStorage id="MS" fileName="pipe.vtk" coordinateSystem="LPS"></ModelStorage>
 <Model id="M" name="M" references="storage:MS;"></Model>
</MRML>
""", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.vtk")
    results = read_in_child([fifo, plain, tmp_path / "scene.mrml"], timeout=90)
    for path, (outcome, message) in results.items():  # the scene loads, warning about its unreadable node
        assert outcome == ("ok" if path.endswith(".mrml") else "MedioError"), (path, outcome, message)
        assert "named pipe" in message, (path, message)


def _zeros_archive(path: Path, members: int, size: int, extra: dict | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        for i in range(members):
            zf.writestr(f"Scene/Data/zeros{i}.raw", bytes(size))
    return path


def test_archive_of_many_small_members_is_a_bomb_by_its_total_ratio(tmp_path):
    import pytest

    import napari_medio
    from napari_medio.core.errors import FormatError

    scene = "<MRML version=\"Slicer 5.8.1 33241\"></MRML>"
    bundle = _zeros_archive(tmp_path / "bomb.mrb", 40, 4 << 20, {"Scene/Scene.mrml": scene})  # 160 MiB from ~160 KB
    with pytest.raises(FormatError, match="zip bomb") as info:
        napari_medio.read(bundle)
    assert "bomb.mrb" in str(info.value)
    slice_ = fixture_file("dicom/pydicom/CT_small.dcm").read_bytes()
    dicom_zip = _zeros_archive(tmp_path / "ct.zip", 40, 4 << 20, {"ct/slice.dcm": slice_})
    with pytest.raises(FormatError, match="zip bomb"):
        napari_medio.read(dicom_zip)
    assert not list(tmp_path.glob("*/zeros*"))


def test_dicom_sizes_beyond_what_the_pixel_data_holds(tmp_path):
    import pydicom

    bad = []
    for source in ("CT_small.dcm", "MR_small_RLE.dcm"):  # native and run-length compressed pixel data
        for name, changes in (("rows", {"Rows": 65535, "Columns": 65535}), ("frames", {"NumberOfFrames": 2**31 - 1})):
            ds = pydicom.dcmread(fixture_file(f"dicom/pydicom/{source}"))
            for key, value in changes.items():
                setattr(ds, key, value)
            out = tmp_path / f"{name}_{source}"
            ds.save_as(out)
            bad.append(out)
    assert_refused_in_child(bad)


def test_gzip_nrrd_declaring_more_than_its_data_can_hold(tmp_path):
    import gzip

    header = (b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 2048 1024 1024\nencoding: gzip\n"
              b"space: left-posterior-superior\nspace directions: (1,0,0) (0,1,0) (0,0,1)\n\n")
    bomb = tmp_path / "bomb.nrrd"  # 2 GiB declared, 1 KiB of zeros present
    bomb.write_bytes(header + gzip.compress(bytes(1024)))
    assert_refused_in_child([bomb], memory=1 << 30)


def test_vtk_xml_impossible_array_components(tmp_path):
    cube = fixture_file("models/slicer/cube.vtp")
    assert_refused_in_child([_edit(tmp_path, cube, "components.vtp", b'NumberOfComponents="3"',
                                   b'NumberOfComponents="4294967296"')], timeout=60)
