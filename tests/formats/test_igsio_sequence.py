"""IGSIO / PLUS sequence metafiles (.seq.mha, .seq.mhd, .igs.mha, .igs.mhd, .igs.nrrd): read, write, bad input.

Files are built by hand in the layouts PLUS / SlicerIGSIO write (vtkIGSIOMetaImageSequenceIO,
vtkIGSIONrrdSequenceIO): padded DimSize/Kinds lines, DimSize after the frame fields, the
multi-channel "vector" entry, zlib-compressed data with CompressedDataSize, detached .zraw.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.volume import AxisInfo, Volume
from tests.badfiles import no_temp_files
from tests.volumes import OBLIQUE_FLIPPED

N, Y, X = 3, 4, 5
RNG = np.random.default_rng(11)
FRAMES_U8 = RNG.integers(0, 255, (N, Y, X), endpoint=True).astype(np.uint8)
# TransformMatrix rows are the axis directions: i -> +y (P), j -> -x (R), k -> +z (S).
TMATRIX = "0 1 0 -1 0 0 0 0 1"
DIRECTION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def probe_to_tracker(i: int) -> list[list[float]]:
    m = np.eye(4)
    m[:3, 3] = [10.5 + i, -3.25 * i, 0.125]
    m[0, 1], m[1, 0] = 0.6, -0.6
    return m.tolist()


def frame_lines(n: int = N, invalid_image: int = 1, invalid_pose: int = 2, sep: str = " = ",
                status_name: str = "ImageStatus") -> list[str]:
    lines = []
    for i in range(n):
        t = " ".join(repr(v) if not float(v).is_integer() else str(int(v))
                     for row in probe_to_tracker(i) for v in row)
        lines += [
            f"Seq_Frame{i:04d}_FrameNumber{sep}{i}",
            f"Seq_Frame{i:04d}_ProbeToTrackerTransform{sep}{t} ",
            f"Seq_Frame{i:04d}_ProbeToTrackerTransformStatus{sep}{'INVALID' if i == invalid_pose else 'OK'}",
            f"Seq_Frame{i:04d}_Timestamp{sep}{100.25 + 0.05 * i!r}",
            f"Seq_Frame{i:04d}_UnfilteredTimestamp{sep}{100.5 + 0.05 * i!r}",
            f"Seq_Frame{i:04d}_{status_name}{sep}{'INVALID' if i == invalid_image else 'OK'}",
        ]
    return lines


def expected_frames(n: int = N, invalid_image: int = 1, invalid_pose: int = 2) -> list[dict]:
    return [{
        "FrameNumber": i,
        "ProbeToTrackerTransform": probe_to_tracker(i),
        "ProbeToTrackerTransformStatus": "INVALID" if i == invalid_pose else "OK",
        "Timestamp": 100.25 + 0.05 * i,
        "UnfilteredTimestamp": 100.5 + 0.05 * i,
        "ImageStatus": "INVALID" if i == invalid_image else "OK",
    } for i in range(n)]


def mha(path: Path, data: bytes, *, dims: str = f"{X} {Y} {N}", kinds: str = "domain domain list",
        etype: str = "MET_UCHAR", compressed: bool = False, datafile: str = "LOCAL", extra: tuple = (),
        frames: list[str] | None = None, channels: int = 1, ndims: int = 3, dimsize_last: bool = True) -> Path:
    """A sequence metafile as PLUS writes it (DimSize/Kinds padded, after the frame fields)."""
    payload = zlib.compress(data) if compressed else data
    head = ["ObjectType = Image", f"NDims = {ndims}", "BinaryData = True", "BinaryDataByteOrderMSB = False",
            f"CompressedData = {'True' if compressed else 'False'}"]
    if compressed:
        head.append(f"CompressedDataSize = {len(payload)}" + " " * 12)
    head += [f"TransformMatrix = {TMATRIX}" if ndims == 3 else
             "TransformMatrix = 0 1 0 0 -1 0 0 0 0 0 1 0 0 0 0 1",
             "Offset = 10 20.5 -30" + (" 0" if ndims == 4 else ""),
             "CenterOfRotation = 0 0 0", "AnatomicalOrientation = RAI",
             "ElementSpacing = 0.2 0.3 1" + (" 1" if ndims == 4 else ""),
             "ImageToProbeTransform = 1 0 0 1 0 1 0 2 0 0 1 3 0 0 0 1",
             "UltrasoundImageOrientation = MF", "UltrasoundImageType = BRIGHTNESS",
             f"ElementType = {etype}", *extra]
    if channels > 1:
        head.append(f"ElementNumberOfChannels = {channels}")
    dim_lines = [f"DimSize = {dims}" + " " * 14, f"Kinds = {kinds}" + " " * 10] if dims is not None else []
    body = (frames if frames is not None else frame_lines())
    lines = head + (body + dim_lines if dimsize_last else dim_lines + body) + [f"ElementDataFile = {datafile}"]
    text = ("\n".join(lines) + "\n").encode("latin-1")
    if datafile == "LOCAL":
        path.write_bytes(text + payload)
    else:
        path.write_bytes(text)
        (path.parent / datafile).write_bytes(payload)
    return path


def check_bmode(vol: Volume, frames=None) -> None:
    assert vol.shape == (N, 1, Y, X)
    assert vol.dtype == np.uint8
    assert np.array_equal(np.asarray(vol.array)[:, 0], FRAMES_U8)
    g = vol.geometry
    assert np.allclose(g.spacing, [0.2, 0.3, 1.0], atol=1e-9)
    assert np.allclose(g.origin, [10.0, 20.5, -30.0], atol=1e-9)
    assert np.allclose(g.direction, DIRECTION, atol=1e-9)
    assert len(vol.extra_axes) == 1 and vol.extra_axes[0].name == "frame"
    assert vol.extra_axes[0].values == pytest.approx([100.25, 100.3, 100.35])
    assert vol.extra_axes[0].unit == "s"
    meta = vol.metadata["igsio"]
    assert meta["frames"] == (frames if frames is not None else expected_frames())
    assert isinstance(meta["frames"][0]["Timestamp"], float)
    assert meta["fields"]["UltrasoundImageOrientation"] == "MF"
    assert meta["fields"]["UltrasoundImageType"] == "BRIGHTNESS"
    assert meta["fields"]["ImageToProbeTransform"] == [[1.0, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]]
    assert "DimSize" not in meta["fields"] and "Kinds" not in meta["fields"]


def assert_same(a: Volume, b: Volume) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(np.asarray(a.array), np.asarray(b.array))
    assert a.geometry.almost_equal(b.geometry, 1e-6), (a.geometry, b.geometry)
    assert a.metadata["igsio"]["frames"] == b.metadata["igsio"]["frames"]
    assert a.metadata["igsio"]["fields"] == b.metadata["igsio"]["fields"]
    assert (a.components is None) == (b.components is None)
    if a.components is not None:
        assert a.components.kind == b.components.kind
    assert a.extra_axes[0].values == b.extra_axes[0].values


# -- reading -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".seq.mha", ".igs.mha"])
@pytest.mark.parametrize("dimsize_last", [True, False])
def test_read_bmode_frames(tmp_path, ext, dimsize_last):
    p = mha(tmp_path / f"us{ext}", FRAMES_U8.tobytes(), dimsize_last=dimsize_last)
    assert find_reader(p).name == "igsio-sequence"
    [vol] = napari_medio.read(p)
    check_bmode(vol)
    assert vol.name == "us"
    assert vol.kind == "volume"
    assert vol.metadata["igsio"]["frames"][1]["ImageStatus"] == "INVALID"


def test_read_compressed(tmp_path):
    p = mha(tmp_path / "c.seq.mha", FRAMES_U8.tobytes(), compressed=True)
    [vol] = napari_medio.read(p)
    check_bmode(vol)


@pytest.mark.parametrize("compressed,datafile", [(True, "d.zraw"), (False, "d.raw")])
def test_read_detached_mhd(tmp_path, compressed, datafile):
    p = mha(tmp_path / "d.seq.mhd", FRAMES_U8.tobytes(), compressed=compressed, datafile=datafile)
    [vol] = napari_medio.read(p)
    check_bmode(vol)
    [vol2] = napari_medio.read(mha(tmp_path / "e.igs.mhd", FRAMES_U8.tobytes(), compressed=compressed,
                                   datafile="e" + datafile[1:]))
    check_bmode(vol2)


def test_read_rgb_plus_layout(tmp_path):
    """PLUS writes the channel count as a leading DimSize entry with a "vector" kind."""
    rgb = RNG.integers(0, 255, (2, Y, X, 3), endpoint=True).astype(np.uint8)
    frames = frame_lines(2, invalid_image=-1, invalid_pose=-1)
    p = mha(tmp_path / "rgb.seq.mha", rgb.tobytes(), dims=f"3 {X} {Y} 2", kinds="vector domain domain list",
            channels=3, frames=frames)
    [vol] = napari_medio.read(p)
    assert vol.shape == (2, 1, Y, X, 3)
    assert vol.is_rgb and vol.components.kind == "RGB-color"
    assert np.array_equal(np.asarray(vol.array)[:, 0], rgb)
    assert vol.metadata["igsio"]["frames"] == expected_frames(2, -1, -1)
    # also the plain MetaImage layout (DimSize without the channel entry)
    q = mha(tmp_path / "rgb2.seq.mha", rgb.tobytes(), dims=f"{X} {Y} 2", channels=3, frames=frames)
    [vol2] = napari_medio.read(q)
    assert np.array_equal(np.asarray(vol2.array), np.asarray(vol.array)) and vol2.is_rgb


def test_read_3d_frames_int16(tmp_path):
    data = RNG.integers(-500, 500, (2, 3, Y, X)).astype("<i2")
    p = mha(tmp_path / "vol.seq.mha", data.tobytes(), dims=f"{X} {Y} 3 2", kinds="domain domain domain list",
            etype="MET_SHORT", ndims=4, frames=frame_lines(2, -1, -1))
    [vol] = napari_medio.read(p)
    assert vol.shape == (2, 3, Y, X)
    assert np.array_equal(np.asarray(vol.array), data)
    assert np.allclose(vol.geometry.direction, DIRECTION)
    assert np.allclose(vol.geometry.origin, [10.0, 20.5, -30.0])


def test_read_without_kinds_and_mmap_off(tmp_path):
    p = mha(tmp_path / "nk.seq.mha", FRAMES_U8.tobytes(), kinds="")
    text = p.read_bytes().replace(b"Kinds = " + b" " * 10 + b"\n", b"")
    p.write_bytes(text)
    [vol] = napari_medio.read(p, mmap=False)
    check_bmode(vol)
    assert isinstance(vol.array, np.ndarray) and not isinstance(vol.array, np.memmap)


def test_read_tracking_only(tmp_path):
    p = mha(tmp_path / "track.seq.mha", b"", dims=f"0 0 {N}")
    [vol] = napari_medio.read(p)
    assert vol.shape == (N, 1, 0, 0)
    assert vol.metadata["igsio"]["frames"] == expected_frames()
    out = tmp_path / "track2.seq.mha"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert back.shape == (N, 1, 0, 0)
    assert back.metadata["igsio"]["frames"] == expected_frames()


def igs_nrrd(path: Path, data: bytes, *, encoding: str = "raw", rgb: bool = False, n: int = N) -> Path:
    """An .igs.nrrd as vtkIGSIONrrdSequenceIO writes it (space dimension 2, Status frame field)."""
    payload = gzip.compress(data) if encoding == "gz" else data
    sizes = (f"3 {X} {Y} {n}" if rgb else f"{X} {Y} {n}")
    kinds = ("vector domain domain list" if rgb else "domain domain list")
    dirs = ("none " if rgb else "") + "(0,0.2) (-0.3,0) none"
    lines = ["NRRD0004", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html",
             f"dimension: {4 if rgb else 3}", f"encoding: {encoding}", f"sizes: {sizes}      ",
             f"kinds: {kinds}    ", "endian: little", "type: unsigned char", "space dimension: 2",
             f"space directions: {dirs}", "space origin: (10,20.5)", "DefaultFrameTransformName: ProbeToTracker",
             "ImageToProbeTransform:=1 0 0 1 0 1 0 2 0 0 1 3 0 0 0 1",
             "ultrasound image orientation:=MF", "ultrasound image type:=BRIGHTNESS"]
    lines += frame_lines(n, -1 if rgb else 1, -1 if rgb else 2, sep=":=", status_name="Status")
    path.write_bytes(("\n".join(lines) + "\n\n").encode() + payload)
    return path


@pytest.mark.parametrize("encoding", ["raw", "gz"])
def test_read_igs_nrrd(tmp_path, encoding):
    p = igs_nrrd(tmp_path / "n.igs.nrrd", FRAMES_U8.tobytes(), encoding=encoding)
    assert find_reader(p).name == "igsio-sequence"
    [vol] = napari_medio.read(p)
    assert vol.shape == (N, 1, Y, X)
    assert np.array_equal(np.asarray(vol.array)[:, 0], FRAMES_U8)
    assert np.allclose(vol.geometry.spacing, [0.2, 0.3, 1.0])
    assert np.allclose(vol.geometry.origin, [10.0, 20.5, 0.0])
    assert np.allclose(vol.geometry.direction, DIRECTION)
    meta = vol.metadata["igsio"]
    assert meta["frames"] == expected_frames()  # "Status" is given the MetaImage name ImageStatus
    assert meta["fields"]["UltrasoundImageOrientation"] == "MF"
    assert meta["fields"]["UltrasoundImageType"] == "BRIGHTNESS"
    assert meta["fields"]["DefaultFrameTransformName"] == "ProbeToTracker"
    assert meta["fields"]["ImageToProbeTransform"][2] == [0.0, 0.0, 1.0, 3.0]


def test_read_igs_nrrd_rgb(tmp_path):
    rgb = RNG.integers(0, 255, (2, Y, X, 3), endpoint=True).astype(np.uint8)
    [vol] = napari_medio.read(igs_nrrd(tmp_path / "c.igs.nrrd", rgb.tobytes(), rgb=True, n=2))
    assert vol.shape == (2, 1, Y, X, 3) and vol.is_rgb
    assert np.array_equal(np.asarray(vol.array)[:, 0], rgb)


# -- writing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".seq.mha", ".seq.mhd", ".igs.mha", ".igs.mhd", ".igs.nrrd"])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip(tmp_path, ext, compress):
    [vol] = napari_medio.read(mha(tmp_path / "src.seq.mha", FRAMES_U8.tobytes()))
    out = tmp_path / f"out{ext}"
    written = napari_medio.write(vol, out, compress=compress)
    assert written[0] == str(out)
    if ext.endswith(".mhd"):
        data = tmp_path / ("out" + ext[:-4] + (".zraw" if compress else ".raw"))
        assert written == [str(out), str(data)] and data.exists()
        assert f"ElementDataFile = {data.name}" in out.read_text(encoding="latin-1")
    assert find_reader(out).name == "igsio-sequence"
    [back] = napari_medio.read(out)
    check_bmode(back)
    assert_same(vol, back)
    assert no_temp_files(tmp_path)
    # and once more: written -> read -> written gives the same again
    again = tmp_path / f"again{ext}"
    napari_medio.write(back, again, compress=compress)
    [third] = napari_medio.read(again)
    assert_same(back, third)


def test_written_mha_is_plain_metaimage_and_plus_layout(tmp_path):
    [vol] = napari_medio.read(mha(tmp_path / "src.seq.mha", FRAMES_U8.tobytes()))
    out = tmp_path / "w.seq.mha"
    napari_medio.write(vol, out, compress=False)
    header = out.read_bytes().split(b"ElementDataFile")[0].decode("latin-1")
    assert header.startswith("ObjectType = Image\nNDims = 3\n")
    assert f"DimSize = {X} {Y} {N}\n" in header and "Kinds = domain domain list\n" in header
    assert "Seq_Frame0001_ImageStatus = INVALID\n" in header
    assert "Seq_Frame0002_ProbeToTrackerTransformStatus = INVALID\n" in header
    assert "UltrasoundImageOrientation = MF\n" in header
    # ITK reads the same voxels and geometry (frame axis as its third axis)
    image = sitk.ReadImage(str(out), imageIO="MetaImageIO")
    assert np.array_equal(sitk.GetArrayFromImage(image), FRAMES_U8)
    assert np.allclose(np.array(image.GetDirection()).reshape(3, 3), DIRECTION)
    assert np.allclose(image.GetOrigin(), [10.0, 20.5, -30.0])


@pytest.mark.parametrize("ext", [".seq.mha", ".igs.nrrd", ".seq.mhd"])
def test_round_trip_rgb_and_3d_frames(tmp_path, ext):
    rgb = RNG.integers(0, 255, (2, Y, X, 3), endpoint=True).astype(np.uint8)
    [vol] = napari_medio.read(mha(tmp_path / "rgb.seq.mha", rgb.tobytes(), dims=f"3 {X} {Y} 2",
                                  kinds="vector domain domain list", channels=3,
                                  frames=frame_lines(2, -1, -1)))
    out = tmp_path / f"rgbout{ext}"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same(vol, back)
    assert back.is_rgb
    data = RNG.normal(0, 10, (2, 3, Y, X)).astype(np.float32)
    [v3] = napari_medio.read(mha(tmp_path / "v3.seq.mha", data.tobytes(), dims=f"{X} {Y} 3 2",
                                 kinds="domain domain domain list", etype="MET_FLOAT", ndims=4,
                                 frames=frame_lines(2, -1, -1)))
    out3 = tmp_path / f"v3out{ext}"
    napari_medio.write(v3, out3)
    [back3] = napari_medio.read(out3)
    assert_same(v3, back3)
    assert np.array_equal(np.asarray(back3.array), data)


def test_cross_container_nrrd_to_mha(tmp_path):
    [vol] = napari_medio.read(igs_nrrd(tmp_path / "n.igs.nrrd", FRAMES_U8.tobytes(), encoding="gz"))
    out = tmp_path / "m.igs.mha"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same(vol, back)
    text = out.read_bytes().split(b"ElementDataFile")[0].decode()
    assert "Seq_Frame0001_ImageStatus = INVALID" in text and "UltrasoundImageOrientation = MF" in text
    out2 = tmp_path / "m2.igs.nrrd"
    napari_medio.write(back, out2)
    header = out2.read_bytes().split(b"\n\n")[0].decode()
    assert "Seq_Frame0001_Status:=INVALID" in header and "ultrasound image orientation:=MF" in header
    [back2] = napari_medio.read(out2)
    assert_same(vol, back2)


def test_write_plain_volume(tmp_path):
    """A 4D volume without IGSIO metadata: timestamps from the time axis, oblique geometry kept."""
    arr = RNG.integers(-1000, 1000, (3, 5, 6, 7)).astype(np.int16)
    vol = Volume(arr, OBLIQUE_FLIPPED, name="t",
                 extra_axes=[AxisInfo(name="time", unit="s", values=[0.0, 1.5, 3.0], kind="time")])
    for ext in (".seq.mha", ".igs.nrrd"):
        out = tmp_path / f"t{ext}"
        napari_medio.write(vol, out)
        [back] = napari_medio.read(out)
        assert np.array_equal(np.asarray(back.array), arr)
        assert back.geometry.almost_equal(OBLIQUE_FLIPPED, 1e-6)
        assert back.extra_axes[0].values == [0.0, 1.5, 3.0]
        assert [f["Timestamp"] for f in back.metadata["igsio"]["frames"]] == [0.0, 1.5, 3.0]
        assert all(f["ImageStatus"] == "OK" for f in back.metadata["igsio"]["frames"])
    # a 2D image sequence with 2D geometry, and a single 3D volume (one frame)
    g2 = Geometry([0.5, 0.25], [1.0, 2.0], np.eye(2))
    flat = Volume(FRAMES_U8, g2, name="f", extra_axes=[AxisInfo(name="frame")])
    napari_medio.write(flat, tmp_path / "f.seq.mha")
    [back] = napari_medio.read(tmp_path / "f.seq.mha")
    assert back.shape == (N, 1, Y, X) and np.array_equal(np.asarray(back.array)[:, 0], FRAMES_U8)
    assert back.geometry.almost_equal(g2.as_3d(), 1e-9)
    assert back.extra_axes[0].values == [0, 1, 2]
    single = Volume(arr[0], OBLIQUE_FLIPPED, name="s")
    napari_medio.write(single, tmp_path / "s.igs.mha")
    [back] = napari_medio.read(tmp_path / "s.igs.mha")
    assert back.shape == (1, 5, 6, 7) and np.array_equal(np.asarray(back.array)[0], arr[0])


def test_write_refuses_frame_count_mismatch(tmp_path):
    [vol] = napari_medio.read(mha(tmp_path / "src.seq.mha", FRAMES_U8.tobytes()))
    vol.metadata["igsio"]["frames"] = vol.metadata["igsio"]["frames"][:2]
    with pytest.raises(MedioError, match="frame count mismatch"):
        napari_medio.write(vol, tmp_path / "bad.seq.mha")
    assert not (tmp_path / "bad.seq.mha").exists()
    assert no_temp_files(tmp_path)


def test_write_replaces_atomically(tmp_path):
    [vol] = napari_medio.read(mha(tmp_path / "src.seq.mha", FRAMES_U8.tobytes()))
    out = tmp_path / "x.seq.mha"
    out.write_bytes(b"old")
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same(vol, back)
    assert no_temp_files(tmp_path)


# -- dispatch -----------------------------------------------------------------------------------------
def test_plain_mha_with_frame_fields_stays_metaimage(tmp_path):
    p = mha(tmp_path / "plain.mha", FRAMES_U8.tobytes())
    assert find_reader(p).name == "metaimage"
    [vol] = napari_medio.read(p)
    assert vol.shape == (N, Y, X) and not vol.extra_axes
    assert "igsio" not in vol.metadata
    q = igs_nrrd(tmp_path / "plain.nrrd", FRAMES_U8.tobytes())
    assert find_reader(q).name == "nrrd"


def test_sequence_extension_with_plain_content(tmp_path):
    """A .seq.mha without frame fields is still a (one-field-less) sequence: frames without fields."""
    p = mha(tmp_path / "nofields.seq.mha", FRAMES_U8.tobytes(), frames=[])
    [vol] = napari_medio.read(p)
    assert vol.shape == (N, 1, Y, X)
    assert vol.metadata["igsio"]["frames"] == [{}, {}, {}]
    assert vol.extra_axes[0].values == [0, 1, 2]


# -- bad input ----------------------------------------------------------------------------------------
def rejected(p: Path, words: str) -> None:
    with pytest.raises(FormatError) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)
    assert words.lower() in str(info.value).lower(), str(info.value)


def test_bad_input(tmp_path):
    data = FRAMES_U8.tobytes()
    rejected(mha(tmp_path / "nodim.seq.mha", data, dims=None), "no DimSize")
    rejected(mha(tmp_path / "count.seq.mha", data, frames=frame_lines(N + 2)), "frame count mismatch")
    rejected(mha(tmp_path / "short.seq.mha", data[:-7]), "truncated")
    z = mha(tmp_path / "zshort.seq.mha", data, compressed=True)
    z.write_bytes(z.read_bytes()[:-9])
    rejected(z, "truncated")
    z2 = tmp_path / "znosize.seq.mha"  # no CompressedDataSize: the stream itself ends early
    z2.write_bytes(b"\n".join(line for line in z.read_bytes().split(b"\n")
                              if not line.startswith(b"CompressedDataSize")))
    rejected(z2, "truncated")
    z3 = mha(tmp_path / "zbad.seq.mha", data, compressed=True)
    z3.write_bytes(z3.read_bytes()[:-20] + b"\xff" * 20)
    rejected(z3, "compressed")
    bad_pose = [line.replace("ProbeToTrackerTransform = 1", "ProbeToTrackerTransform = x1")
                for line in frame_lines()]
    rejected(mha(tmp_path / "pose.seq.mha", data, frames=bad_pose), "ProbeToTrackerTransform")
    short_pose = frame_lines() + ["Seq_Frame0000_ImageToProbeTransform = 1 0 0 0 1 0 0 0 1"]
    rejected(mha(tmp_path / "pose9.seq.mha", data, frames=short_pose), "4x4 transform")
    bad_time = frame_lines() + ["Seq_Frame0002_Timestamp = soon"]
    rejected(mha(tmp_path / "time.seq.mha", data, frames=bad_time), "Timestamp")
    rejected(mha(tmp_path / "kinds.seq.mha", data, kinds="domain list"), "Kinds")
    p = mha(tmp_path / "miss.seq.mhd", data, datafile="miss.raw")
    (tmp_path / "miss.raw").unlink()
    rejected(p, "missing")
    whole = mha(tmp_path / "whole.seq.mha", data).read_bytes()
    cut = tmp_path / "cut.seq.mha"
    cut.write_bytes(whole[: whole.index(b"ElementDataFile")])
    rejected(cut, "ElementDataFile")
    empty = tmp_path / "empty.igs.mha"
    empty.write_bytes(b"")
    rejected(empty, "empty")
    nrrd_bad = igs_nrrd(tmp_path / "nb.igs.nrrd", data[:-5])
    rejected(nrrd_bad, "truncated")
    nrrd_count = tmp_path / "nc.igs.nrrd"
    nrrd_count.write_bytes(igs_nrrd(tmp_path / "tmp.igs.nrrd", data).read_bytes().replace(
        b"Seq_Frame0002_Timestamp", b"Seq_Frame0009_Timestamp"))
    rejected(nrrd_count, "frame count mismatch")


def test_tracking_only_sequence_gives_a_clear_message_in_napari(tmp_path):
    from napari_medio.core.errors import MedioError
    from napari_medio.plugin.reader import read_layers

    p = mha(tmp_path / "track.seq.mha", b"", dims=f"0 0 {N}")
    with pytest.raises(MedioError, match="holds no image voxels.*3 frame"):
        read_layers(str(p))
