"""Compressed video (.mkv, .webm, .mp4, .avi) as an image sequence: read, write, IGSIO frame fields, bad input.

The videos are made here with PyAV itself (12 frames of 64x48 with a moving
square), so no fixture files are needed.  Without PyAV the tests that need it
skip locally and fail on CI (``CI`` set).
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction

import numpy as np
import pytest

import napari_medio
from napari_medio.core import registry
from napari_medio.core.errors import CancelledError, FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.progress import Progress
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.formats import video

N_FRAMES, WIDTH, HEIGHT, FPS = 12, 64, 48, 10
MISSING_AV = "PyAV is not installed (pip install av): the video tests need it"


@pytest.fixture(scope="module")
def av():
    try:
        import av as module
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(MISSING_AV)
        pytest.skip(MISSING_AV)
    return module


def frames_rgb(n: int = N_FRAMES) -> np.ndarray:
    """[n, rows, columns, 3] uint8: a gradient background and an orange square moving right."""
    out = np.zeros((n, HEIGHT, WIDTH, 3), np.uint8)
    out[..., 2] = (np.arange(WIDTH, dtype=np.uint8) * 2)[None, None, :]
    out[..., 1] = (np.arange(HEIGHT, dtype=np.uint8) * 3)[None, :, None]
    for i in range(n):
        out[i, 12:24, 4 + 4 * i: 16 + 4 * i] = (255, 128, 0)
    return out


def square_column(frame: np.ndarray) -> float:
    """Mean column of the bright-red square (robust to lossy coding)."""
    cols = np.nonzero(frame[..., 0] > 160)[1]
    return float(cols.mean())


def write_with_pyav(av, path, codec: str, pix_fmt: str, frames: np.ndarray, fmt: str = "rgb24") -> None:
    container = av.open(os.fspath(path), mode="w")
    stream = container.add_stream(codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, pix_fmt
    for i, data in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(data), format=fmt)
        frame.pts = i
        frame.time_base = Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()


PYAV_CASES = [
    # extension, codec, pixel format, exact?
    (".mkv", "ffv1", "bgr0", True),
    (".webm", "libvpx-vp9", "yuv420p", False),
    (".mp4", "libx264", "yuv420p", False),
    (".avi", "mpeg4", "yuv420p", False),
]


def check_frames(vol: Volume, expected: np.ndarray, exact: bool) -> None:
    assert vol.shape == (expected.shape[0], 1, HEIGHT, WIDTH, 3)
    assert vol.dtype == np.uint8 and vol.is_rgb
    got = vol.to_numpy()[:, 0]
    if exact:
        np.testing.assert_array_equal(got, expected)
        return
    err = np.abs(got.astype(int) - expected.astype(int))
    assert err.mean() < 6, err.mean()
    for g, e in zip(got, expected):
        assert abs(square_column(g) - square_column(e)) < 1.0


# -- reading -------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext,codec,pix_fmt,exact", PYAV_CASES)
def test_read_pyav_video(av, tmp_path, ext, codec, pix_fmt, exact):
    path = tmp_path / f"moving{ext}"
    expected = frames_rgb()
    write_with_pyav(av, path, codec, pix_fmt, expected)
    [vol] = video.read_video(path)
    check_frames(vol, expected, exact)
    axis = vol.extra_axes[0]
    assert (axis.name, axis.unit, axis.kind) == ("frame", "s", "time")
    np.testing.assert_allclose(axis.values, np.arange(N_FRAMES) / FPS, atol=1e-3)
    g = vol.geometry
    assert g.ndim == 3
    np.testing.assert_array_equal(g.spacing, [1, 1, 1])
    np.testing.assert_array_equal(g.origin, [0, 0, 0])
    np.testing.assert_array_equal(g.direction, np.eye(3))
    facts = vol.metadata["video"]
    assert facts["frame_count"] == N_FRAMES
    assert (facts["width"], facts["height"]) == (WIDTH, HEIGHT)
    assert facts["frame_rate"] == pytest.approx(FPS)
    assert facts["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.11)
    assert facts["codec"] in {"ffv1": ("ffv1",), "libvpx-vp9": ("vp9", "libvpx-vp9"),
                              "libx264": ("h264",), "mpeg4": ("mpeg4",)}[codec]
    assert facts["pixel_format"]
    assert "igsio" not in vol.metadata
    assert vol.name == "moving" and vol.source == os.fspath(path)


@pytest.mark.parametrize("ext,codec,pix_fmt,exact", PYAV_CASES)
def test_registry_dispatch(av, tmp_path, ext, codec, pix_fmt, exact):
    path = tmp_path / f"clip{ext}"
    write_with_pyav(av, path, codec, pix_fmt, frames_rgb())
    assert registry.find_reader(path).name == "video"
    [vol] = napari_medio.read(path)
    assert vol.shape[0] == N_FRAMES
    # the content decides when the extension lies
    renamed = tmp_path / f"clip{ext}.bin"
    renamed.write_bytes(path.read_bytes())
    assert registry.find_reader(renamed).name == "video"


def test_sniff():
    assert video.sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", None)
    assert video.sniff(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", None)
    assert not video.sniff(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", None)  # a still picture
    assert video.sniff(b"RIFF\x10\x00\x00\x00AVI LIST", None)
    assert not video.sniff(b"RIFF\x10\x00\x00\x00WAVEfmt ", None)
    assert not video.sniff(b"\x89PNG\r\n\x1a\n", None)


def test_gray_modes(av, tmp_path):
    path = tmp_path / "grey.mkv"
    grey = frames_rgb()[..., 1]
    write_with_pyav(av, path, "ffv1", "gray", grey, fmt="gray")
    [rgb] = video.read_video(path)
    assert rgb.shape == (N_FRAMES, 1, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(rgb.to_numpy()[..., 0, :, :, 1], grey)
    [auto] = video.read_video(path, color="auto")
    assert auto.components is None and auto.shape == (N_FRAMES, 1, HEIGHT, WIDTH)
    np.testing.assert_array_equal(auto.to_numpy()[:, 0], grey)
    [luma] = video.read_video(tmp_path / "grey.mkv", color="gray")
    assert luma.components is None
    with pytest.raises(MedioError, match="color"):
        video.read_video(path, color="purple")


def test_progress_and_cancel(av, tmp_path):
    path = tmp_path / "long.mkv"
    write_with_pyav(av, path, "ffv1", "bgr0", frames_rgb())
    seen = []
    video.read_video(path, progress=Progress(callback=lambda done, total, desc: seen.append((done, total))))
    assert seen[-1] == (N_FRAMES, N_FRAMES)

    stop_after = 3
    prog = Progress(callback=lambda done, total, desc: done < stop_after)
    with pytest.raises(CancelledError) as info:
        napari_medio.read(path, progress=prog)
    assert prog.done == stop_after  # stopped between frames, not after decoding them all
    assert "long.mkv" in str(info.value)


# -- IGSIO frame fields ---------------------------------------------------------------------------
def write_igsio_like(av, tmp_path, path, fields: dict, *, track: str = "Video") -> np.ndarray:
    """A Matroska file laid out as vtkIGSIOMkvSequenceIO writes it: a video track named ``track``
    and one S_TEXT/UTF8 subtitle track per frame field, one NUL-terminated block per frame."""
    srt = tmp_path / "template.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,001\nx\n")
    template = av.open(os.fspath(srt))
    container = av.open(os.fspath(path), mode="w")
    stream = container.add_stream("ffv1", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr0"
    stream.metadata["title"] = track
    tracks = {}
    for name in fields:
        tracks[name] = container.add_stream_from_template(template.streams.subtitles[0])
        tracks[name].metadata["title"] = name
    template.close()
    data = frames_rgb()
    for i, frame_data in enumerate(data):
        frame = av.VideoFrame.from_ndarray(frame_data, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
        for name, values in fields.items():
            packet = av.Packet((values[i] + "\0").encode())
            packet.stream = tracks[name]
            packet.pts = packet.dts = i * 1000 // FPS
            packet.time_base = Fraction(1, 1000)
            packet.duration = 1
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return data


def test_igsio_frame_fields(av, tmp_path):
    path = tmp_path / "tracked.mkv"
    physical = "0.5 0 0 10 0 0.25 0 20 0 0 2 30 0 0 0 1"  # IJK to RAS
    status = ["0"] * N_FRAMES
    status[5] = "2"  # Frame_Skip: SlicerIGSIO leaves it out
    fields = {
        "FrameStatus": status,
        "VideoToPhysicalTransform": [physical] * N_FRAMES,
        "ProbeToTrackerTransform": [f"1 0 0 {i} 0 1 0 0 0 0 1 0 0 0 0 1" for i in range(N_FRAMES)],
        "ProbeToTrackerTransformStatus": ["OK"] * N_FRAMES,
    }
    data = write_igsio_like(av, tmp_path, path, fields)
    [vol] = napari_medio.read(path)
    keep = [i for i in range(N_FRAMES) if i != 5]
    np.testing.assert_array_equal(vol.to_numpy()[:, 0], data[keep])
    np.testing.assert_allclose(vol.extra_axes[0].values, np.array(keep) / FPS)
    igsio = vol.metadata["igsio"]
    assert igsio["track_name"] == "Video"
    assert igsio["skipped_frames"] == 1
    assert igsio["frame_fields"]["ProbeToTrackerTransformStatus"] == ["OK"] * len(keep)
    probe = igsio["transforms_ras"]["ProbeToTracker"]
    assert [m[0][3] for m in probe] == [float(i) for i in keep]
    # the ToPhysical transform places the frames (RAS -> LPS)
    expected = Geometry.from_index_to_ras(np.array(physical.split(), float).reshape(4, 4))
    assert vol.geometry.almost_equal(expected)
    np.testing.assert_allclose(vol.geometry.origin, [-10, -20, 30])
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.25, 2])


def test_igsio_rv24_byte_order(av, tmp_path):
    """IGSIO stores uncompressed video as V_UNCOMPRESSED / RV24 with R, G, B bytes; FFmpeg calls it bgr24."""
    path = tmp_path / "uncompressed.mkv"
    data = frames_rgb(3)
    container = av.open(os.fspath(path), mode="w")
    stream = container.add_stream("rawvideo", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr24"
    stream.codec_tag = "RV24"
    for i, rgb in enumerate(data):
        frame = av.VideoFrame.from_ndarray(rgb, format="bgr24")  # bytes stored as given: R, G, B
        frame.pts, frame.time_base = i, Fraction(1, FPS)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    [vol] = video.read_video(path)
    assert vol.metadata["video"]["codec_tag"] == "RV24"
    np.testing.assert_array_equal(vol.to_numpy()[:, 0], data)


# -- writing -------------------------------------------------------------------------------------
def sequence(frames: np.ndarray, times=None, **kw) -> Volume:
    n = frames.shape[0]
    values = list(times) if times is not None else [i / FPS for i in range(n)]
    rgb = frames.ndim == 4
    return Volume(frames[:, None], Geometry.identity(3), name="seq",
                  extra_axes=[AxisInfo("frame", "s", values, "time")],
                  components=AxisInfo("component", kind="RGB-color") if rgb else None, **kw)


@pytest.mark.parametrize("ext,codecs,exact", [
    (".mkv", ("ffv1",), True),
    (".webm", ("vp9", "libvpx-vp9"), False),
    (".mp4", ("h264", "mpeg4"), False),
    (".avi", ("mpeg4",), False),
])
def test_write_round_trip(av, tmp_path, ext, codecs, exact):
    path = tmp_path / f"out{ext}"
    data = frames_rgb()
    written = napari_medio.write(sequence(data), path)
    assert [os.fspath(path)] == [os.fspath(w) for w in written]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    [vol] = napari_medio.read(path)
    check_frames(vol, data, exact)
    np.testing.assert_allclose(vol.extra_axes[0].values, np.arange(N_FRAMES) / FPS, atol=1e-3)
    assert vol.metadata["video"]["codec"] in codecs
    assert vol.metadata["video"]["frame_rate"] == pytest.approx(FPS)


def test_write_grey_fps_and_times(av, tmp_path):
    grey = frames_rgb()[..., 0]
    # grey, lossless, explicit fps
    path = tmp_path / "grey.mkv"
    video.write_video(sequence(grey), path, fps=25)
    [vol] = video.read_video(path, color="auto")
    np.testing.assert_array_equal(vol.to_numpy()[:, 0], grey)
    np.testing.assert_allclose(vol.extra_axes[0].values, np.arange(N_FRAMES) / 25, atol=1e-3)
    # irregular times are kept to the millisecond, relative to the first frame
    times = 3.0 + np.cumsum([0] + [0.04, 0.1, 0.05] * 3 + [0.07, 0.2])
    path = tmp_path / "irregular.mkv"
    video.write_video(sequence(frames_rgb(), times), path)
    [vol] = video.read_video(path)
    np.testing.assert_allclose(vol.extra_axes[0].values, times - times[0], atol=1e-3)
    # a 3D stack without extra axes: each slice a frame; a single 2D picture: one frame
    stack = Volume(grey, Geometry.identity(3))
    video.write_video(stack, tmp_path / "stack.mkv")
    assert video.read_video(tmp_path / "stack.mkv")[0].shape[0] == N_FRAMES
    single = Volume(frames_rgb(1)[0], Geometry.identity(2), components=AxisInfo("component", kind="RGB-color"))
    video.write_video(single, tmp_path / "single.mkv")
    np.testing.assert_array_equal(video.read_video(tmp_path / "single.mkv")[0].to_numpy()[0, 0], frames_rgb(1)[0])


def test_write_odd_size_mp4(av, tmp_path):
    data = frames_rgb()[:, :47, :63]
    vol = Volume(data, Geometry.identity(2), extra_axes=[AxisInfo("frame", "s", None, "time")],  # 2D frames
                 components=AxisInfo("component", kind="RGB-color"))
    path = tmp_path / "odd.mp4"
    video.write_video(vol, path)
    [back] = video.read_video(path)
    assert back.shape == (N_FRAMES, 1, 47, 63, 3)


def test_write_refusals(av, tmp_path):
    data = frames_rgb()
    with pytest.raises(MedioError, match="8-bit"):
        video.write_video(sequence(data.astype(np.uint16)), tmp_path / "a.mkv")
    rgba = np.concatenate([data, np.full(data.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    rgba_vol = sequence(rgba)
    rgba_vol.components = AxisInfo("component", kind="RGBA-color")
    with pytest.raises(MedioError, match="alpha"):
        video.write_video(rgba_vol, tmp_path / "a.mkv")
    video.write_video(rgba_vol, tmp_path / "a.mkv", drop_alpha=True)
    np.testing.assert_array_equal(video.read_video(tmp_path / "a.mkv")[0].to_numpy()[:, 0], data)
    rotated = sequence(data)
    rotated.geometry = Geometry([1, 1, 1], [0, 0, 0], np.diag([-1.0, -1.0, 1.0]))
    with pytest.raises(MedioError, match="allow_direction_loss"):
        video.write_video(rotated, tmp_path / "b.mkv")
    with pytest.raises(MedioError, match="fps"):
        video.write_video(sequence(data), tmp_path / "c.mkv", fps=0)
    with pytest.raises(MedioError, match="increase"):
        video.write_video(sequence(data, [0.0] * N_FRAMES), tmp_path / "c.mkv")
    assert not (tmp_path / "b.mkv").exists() and not (tmp_path / "c.mkv").exists()


def test_write_cancel_keeps_previous_file(av, tmp_path):
    path = tmp_path / "keep.mkv"
    path.write_bytes(b"previous")
    prog = Progress(callback=lambda done, total, desc: done < 4)
    with pytest.raises(CancelledError):
        video.write_video(sequence(frames_rgb()), path, progress=prog)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mkv"]


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input(av, tmp_path):
    random_bytes = tmp_path / "random.mkv"
    random_bytes.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    for bad in (random_bytes, empty):
        for reader in (napari_medio.read, video.read_video):
            with pytest.raises(FormatError) as info:
                reader(bad)
            assert bad.name in str(info.value)
    with pytest.raises(FormatError, match="empty"):
        video.read_video(empty)
    with pytest.raises(FormatError, match="not a video"):
        video.read_video(random_bytes)


@pytest.mark.parametrize("ext,codec,pix_fmt,exact", PYAV_CASES)
def test_truncated(av, tmp_path, ext, codec, pix_fmt, exact):
    good = tmp_path / f"good{ext}"
    write_with_pyav(av, good, codec, pix_fmt, frames_rgb())
    data = good.read_bytes()
    for n, cut in enumerate((len(data) // 2, 100, 9)):
        bad = tmp_path / f"cut{n}{ext}"
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="truncated") as info:
            napari_medio.read(bad)
        assert bad.name in str(info.value)


def test_corrupt_frame_data(av, tmp_path):
    good = tmp_path / "good.mkv"
    write_with_pyav(av, good, "ffv1", "bgr0", frames_rgb())
    data = bytearray(good.read_bytes())
    a, b = len(data) // 3, 2 * len(data) // 3
    data[a:b] = np.random.default_rng(1).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError) as info:
        video.read_video(bad)
    assert "corrupt.mkv" in str(info.value)


def test_no_video_stream(av, tmp_path):
    path = tmp_path / "audio.mkv"
    container = av.open(os.fspath(path), mode="w")
    stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
    frame.sample_rate, frame.pts = 8000, 0
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    with pytest.raises(FormatError, match="no video stream"):
        napari_medio.read(path)


def test_without_pyav(tmp_path, monkeypatch):
    """The module imports without av; reading then names the package to install."""
    path = tmp_path / "clip.mkv"
    # a minimal, complete EBML header + empty Segment, so the container check passes
    path.write_bytes(b"\x1a\x45\xdf\xa3\x84\x42\x82\x81\x01" + b"\x18\x53\x80\x67\x80")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(FormatError, match="pip install av") as info:
        video.read_video(path)
    assert "clip.mkv" in str(info.value)
    with pytest.raises(MedioError, match="pip install av"):
        video.write_video(sequence(frames_rgb(2)), tmp_path / "out.mkv")
    assert not (tmp_path / "out.mkv").exists()
