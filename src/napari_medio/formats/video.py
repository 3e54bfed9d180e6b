"""Compressed video (``.mkv``, ``.webm``, ``.mp4``, ``.avi``) as an image sequence: read and write.

3D Slicer's SlicerIGSIO extension loads a Matroska/WebM video (endoscopy,
ultrasound, screen captures) as a volume sequence whose items are single-slice
RGB volumes, and saves sequences back to ``.mkv``.  This module does the same
with PyAV.

**Reading** returns ONE :class:`~napari_medio.core.volume.Volume`::

    array[frame, 1, row, column, rgb]     uint8, components kind "RGB-color"

* the leading ``frame`` axis (``AxisInfo(name="frame", unit="s", kind="time")``)
  has the presentation time of every frame in seconds as its ``values``
  (PTS x stream time base, as stored -- files written by IGSIO and by this
  module start at 0);
* each frame is a single-slice 3D image (like Slicer's sequence items): ``i``
  runs along a row (left to right), ``j`` down the rows (top to bottom), ``k``
  is the one slice.  Without IGSIO metadata the geometry is LPS identity
  direction, spacing 1 mm, origin 0.  (Slicer itself gives a plain video an
  identity IJK-to-RAS matrix, i.e. direction ``diag(-1, -1, 1)`` in LPS; the
  identity LPS direction here shows the picture upright in napari.)
* ``color="gray"`` returns one-component frames (luma) instead; ``"auto"``
  returns one component for grey streams (``gray``, IGSIO ``Y800``) only.
* ``metadata["video"]`` holds the container and stream facts: container,
  codec (name, long name, FourCC tag), pixel format, frame rate, duration,
  frame count, size, bit rate, and the container and stream tags.

Frames are decoded once, eagerly (no lazy array); a :class:`~napari_medio.core.progress.Progress`
passed as ``progress=`` counts decoded frames and Cancel stops between frames
(``CancelledError``).

**IGSIO frame fields.**  IGSIO's ``vtkIGSIOMkvSequenceIO`` (used by SlicerIGSIO
and PLUS) stores every custom frame field of a tracked-frame list in its own
Matroska *subtitle* track (track type 0x11, codec ``S_TEXT/UTF8``) named after
the field, with one block per frame at the frame's timestamp holding the value
as a NUL-terminated string (transforms are 16 numbers, row major).  FFmpeg
exposes these tracks as subtitle streams (codec ``subrip``, the track name as
the stream ``title`` tag) and PyAV hands out their packets, so they are read
here: ``metadata["igsio"]`` holds ``track_name`` (the video track's name, IGSIO's
``TrackName``), ``frame_fields`` (``{field: [value or None per frame]}``, values
matched to frames by exact timestamp as IGSIO does) and ``transforms_ras``
(``{name: [4x4 list or None per frame]}`` for every ``...Transform`` field, in
IGSIO's own RAS convention, not converted).  As SlicerIGSIO does, frames whose
``FrameStatus`` field is not ``0`` (OK) are left out, and a
``<TrackName>ToPhysicalTransform`` field (the IJK-to-RAS matrix SlicerIGSIO
writes) sets the geometry (taken from the first frame; when it changes between
frames the per-frame matrices stay in ``transforms_ras`` only).

IGSIO writes uncompressed RGB video as ``V_UNCOMPRESSED`` with colour space
``RV24`` and the bytes in R, G, B order; FFmpeg maps ``RV24`` to ``bgr24``, so
for such streams the bytes are taken as stored (R, G, B), which gives the colours
IGSIO wrote (checked on IGSIO's test file ``uncompressedRV24.mkv``).

**Writing** takes a Volume with one leading frame axis (frames 2D, or 3D with
one slice), a 3D volume without extra axes (each slice a frame) or a single 2D
image; uint8 grey or RGB (RGBA: the alpha is dropped with ``drop_alpha=True``).
Codecs: ``.mkv`` FFV1 (lossless; RGB stored as ``bgr0``, or grey), ``.webm`` VP9 (lossy,
``crf`` 20), ``.mp4`` H.264 (libx264, ``crf`` 18; MPEG-4 part 2 when the bundled
libav has no H.264 encoder), ``.avi`` MPEG-4 part 2; ``codec=`` and
``options=`` override.  The frame rate is ``fps=``, else it comes from the
frame axis values (their median step), else 25.  Times are written relative to
the first frame; irregular times are kept to the millisecond (time base 1/1000).
Geometry (spacing, origin, direction) is not stored: a direction other than
the identity raises unless ``allow_direction_loss=True``.  IGSIO frame-field
tracks are not written.  Writes go through
:func:`~napari_medio.core.fileio.atomic_outputs`.

**Why PyAV**: it binds FFmpeg's libraries directly and its wheels ship their
own libav (with libx264, libvpx, FFV1, ...), so no system ``ffmpeg`` is needed;
it exposes packets, timestamps, subtitle streams and codec options that
OpenCV/imageio hide.  ``av`` is imported only inside the functions: the module
imports without it, and reading or writing without it raises a
:class:`~napari_medio.core.errors.FormatError` naming the package to install.
"""
from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CancelledError, FormatError, MedioError, WriteError
from ..core.fileio import atomic_outputs
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.progress import ensure_progress
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._imageio import DIRECTION_LOSS_OPTION, as_volume, check_direction, nonempty_file_size
from .naming import base_name

__all__ = ["read_video", "sniff", "write_video"]

NAME = "video"

_INSTALL = "reading and writing video needs PyAV: pip install av"

#: Muxer and default encoder per extension.
_CONTAINERS = {
    ".mkv": "matroska",
    ".webm": "webm",
    ".mp4": "mp4",
    ".avi": "avi",
}

#: ISO-BMFF brands of still pictures (HEIF, AVIF): not video.
_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"heim", b"heis"}

_TEXT_SUBTITLE_CODECS = {"subrip", "srt", "text", "ass", "ssa", "webvtt"}


# -- sniffing ------------------------------------------------------------------------------------
def sniff(head: bytes, path: Path) -> bool:
    """Matroska/WebM (EBML ``1A 45 DF A3``), MP4 (``ftyp`` at byte 4) or AVI (``RIFF....AVI ``)."""
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return True
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI "


# -- container checks (truncation that FFmpeg would pass over silently) ------------------------
def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-size integer at ``pos``: (value, length, all value bits set)."""
    if pos >= len(data):
        raise IndexError
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8 or pos + length > len(data):
        raise IndexError
    value = first if keep_marker else first & (mask - 1)
    for b in data[pos + 1: pos + length]:
        value = (value << 8) | b
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _check_matroska(p: Path, size: int) -> None:
    with open(p, "rb") as fh:
        data = fh.read(4096)
    try:
        _, n, _ = _vint(data, 0, keep_marker=True)
        header_size, m, _ = _vint(data, n, keep_marker=False)
        pos = n + m + header_size
        seg_id, n, _ = _vint(data, pos, keep_marker=True)
        seg_size, m, unknown = _vint(data, pos + n, keep_marker=False)
    except IndexError:
        raise FormatError(p, "file is truncated: incomplete Matroska/WebM header") from None
    if seg_id != 0x18538067:
        raise FormatError(p, "corrupt Matroska/WebM file: no Segment after the EBML header")
    end = pos + n + m + seg_size
    if not unknown and end > size:
        raise FormatError(p, f"file is truncated: the Matroska segment ends at byte {end}, the file has {size}")


def _check_mp4(p: Path, size: int) -> None:
    pos = 0
    seen: set[bytes] = set()
    with open(p, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            box = fh.read(16)
            if len(box) < 8:
                raise FormatError(p, f"file is truncated: incomplete MP4 box header at byte {pos}")
            length = int.from_bytes(box[:4], "big")
            kind = box[4:8]
            if length == 1:
                if len(box) < 16:
                    raise FormatError(p, f"file is truncated: incomplete MP4 box header at byte {pos}")
                length = int.from_bytes(box[8:16], "big")
            elif length == 0:
                length = size - pos
            if length < 8:
                raise FormatError(p, f"corrupt MP4 file: box {kind!r} at byte {pos} has size {length}")
            if pos + length > size:
                raise FormatError(p, f"file is truncated or corrupt: MP4 box {kind.decode('latin-1')!r} ends at byte "
                                     f"{pos + length}, the file has {size}")
            seen.add(kind)
            pos += length
    if b"moov" not in seen:
        raise FormatError(p, "file is truncated or incomplete: the MP4 has no 'moov' box (stream index)")


def _check_avi(p: Path, size: int) -> None:
    with open(p, "rb") as fh:
        head = fh.read(12)
    riff = int.from_bytes(head[4:8], "little") + 8
    if riff > size:
        raise FormatError(p, f"file is truncated: the AVI RIFF chunk ends at byte {riff}, the file has {size}")


def _check_container(p: Path, size: int) -> str:
    with open(p, "rb") as fh:
        head = fh.read(64)
    if not sniff(head, p):
        raise FormatError(p, "not a video file (no Matroska/WebM, MP4 or AVI signature)")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        _check_matroska(p, size)
        return "matroska"
    if head[4:8] == b"ftyp":
        _check_mp4(p, size)
        return "mp4"
    _check_avi(p, size)
    return "avi"


# -- reading -------------------------------------------------------------------------------------
def _import_av(path: os.PathLike[str] | str):
    try:
        import av
    except ImportError:
        raise FormatError(path, _INSTALL) from None
    return av


def _av_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.replace("\n", " ")


def _rate(stream) -> Fraction | None:
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        try:
            r = getattr(stream, attr)
        except Exception:  # noqa: BLE001 - PyAV raises on some streams
            r = None
        if r:
            return Fraction(r)
    return None


def _tags(d: Any) -> dict:
    try:
        return {str(k): str(v) for k, v in dict(d or {}).items()}
    except Exception:  # noqa: BLE001
        return {}


def _is_gray(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("gray", "ya", "y400", "monow", "monob"))


def _frame_array(frame, mode: str, rv24: bool) -> np.ndarray:
    if mode == "gray":
        return frame.to_ndarray(format="gray")
    if rv24 and frame.format.name == "bgr24":
        return frame.to_ndarray(format="bgr24")  # the stored bytes: IGSIO writes R, G, B
    return frame.to_ndarray(format="rgb24")


def _field_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\x00").strip()


def _parse_matrix(text: str) -> list | None:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return None
    if len(values) != 16 or not np.all(np.isfinite(values)):
        return None
    return np.asarray(values).reshape(4, 4).tolist()


def read_video(path: str | os.PathLike[str], *, progress: Any = None, color: str = "rgb") -> list[Volume]:
    """Read a video into one Volume ``[frame, 1, row, column, (rgb)]``; see the module docstring."""
    p = Path(path)
    if color not in ("rgb", "gray", "auto"):
        raise MedioError(p, f"color must be 'rgb', 'gray' or 'auto', not {color!r}")
    size = nonempty_file_size(p)
    family = _check_container(p, size)
    av = _import_av(p)
    prog = ensure_progress(progress)
    prog.path = os.fspath(p)
    try:
        container = av.open(os.fspath(p), mode="r")
    except Exception as exc:  # noqa: BLE001 - av.FFmpegError and friends
        raise FormatError(p, f"not a readable video file: {_av_reason(exc)}") from None
    try:
        return [_read_open(av, container, p, prog, color, family)]
    finally:
        container.close()


def _read_open(av, container, p: Path, prog, color: str, family: str) -> Volume:
    if not container.streams.video:
        raise FormatError(p, "the file contains no video stream")
    vstream = container.streams.video[0]
    ctx = vstream.codec_context
    codec_name = ctx.name if ctx is not None else "?"
    try:
        codec_tag = str(vstream.codec_tag or "").strip("\x00 ")
    except Exception:  # noqa: BLE001
        codec_tag = ""
    text_streams = [s for s in container.streams.subtitles
                    if family == "matroska" and getattr(s.codec_context, "name", "") in _TEXT_SUBTITLE_CODECS]
    rate = _rate(vstream)
    declared = int(vstream.frames or 0)
    total = declared or None
    if total is None and vstream.duration and vstream.time_base and rate:
        total = max(1, round(float(vstream.duration * vstream.time_base * rate)))
    elif total is None and container.duration and rate:
        total = max(1, round(container.duration / 1_000_000 * float(rate)))
    prog.start(total, f"Reading {p.name}")

    pix_fmt = ctx.pix_fmt if ctx is not None and ctx.pix_fmt else ""
    mode = "gray" if color == "gray" or (color == "auto" and _is_gray(pix_fmt or "")) else "rgb"
    rv24 = codec_name == "rawvideo" and codec_tag.upper() == "RV24" and family == "matroska"

    frames: list[np.ndarray] = []
    times: list[Fraction | None] = []
    fields: dict[int, list[tuple[Fraction, str]]] = {s.index: [] for s in text_streams}

    def take(decoded) -> None:
        for frame in decoded:
            arr = _frame_array(frame, mode, rv24)
            if frames and arr.shape != frames[0].shape:
                raise FormatError(p, f"frame {len(frames)} is {arr.shape[1]}x{arr.shape[0]}, the first frame "
                                     f"{frames[0].shape[1]}x{frames[0].shape[0]}: frame size changes are not supported")
            frames.append(arr)
            times.append(Fraction(frame.pts) * Fraction(frame.time_base)
                         if frame.pts is not None and frame.time_base else None)
            prog.advance(1)

    flushed = False
    try:
        for packet in container.demux([vstream, *text_streams]):
            prog.check()
            if packet.stream.index in fields:
                if packet.pts is not None and packet.size:
                    fields[packet.stream.index].append(
                        (Fraction(packet.pts) * Fraction(packet.time_base), _field_text(bytes(packet))))
                continue
            if flushed:
                continue
            flushed = packet.size == 0  # PyAV ends each stream with an empty packet that flushes the decoder
            take(vstream.codec_context.decode(packet))
        if not flushed:
            take(vstream.codec_context.decode(None))
    except (MedioError, CancelledError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - av.InvalidDataError etc.
        raise FormatError(p, f"corrupt video data after frame {len(frames)}: {_av_reason(exc)}") from None
    if not frames:
        raise FormatError(p, "the video stream has no decodable frames (truncated or corrupt)")
    if declared and len(frames) < declared:
        raise FormatError(p, f"file is truncated or corrupt: {len(frames)} of {declared} frames could be decoded")

    # Presentation times in seconds (missing ones from the frame rate).
    step = Fraction(1) / rate if rate else Fraction(1, 25)
    for n, t in enumerate(times):
        if t is None:
            times[n] = (times[n - 1] + step) if n else Fraction(0)

    metadata: dict[str, Any] = {"video": _video_facts(container, vstream, codec_name, codec_tag, pix_fmt, rate,
                                                      len(frames), [float(t) for t in times])}
    keep = list(range(len(frames)))
    geometry = Geometry.identity(3)
    if text_streams:
        igsio, keep, ijk_to_ras = _igsio_fields(container, vstream, text_streams, fields, times)
        metadata["igsio"] = igsio
        if ijk_to_ras is not None:
            try:
                geometry = Geometry.from_index_to_ras(np.asarray(ijk_to_ras, dtype=float))
            except ValueError as exc:
                igsio["geometry_error"] = f"ToPhysical transform not usable as geometry: {exc}"
        if not keep:
            raise FormatError(p, "every frame has an IGSIO FrameStatus other than OK: nothing to show")
    if len(keep) != len(frames):
        frames = [frames[n] for n in keep]
        times = [times[n] for n in keep]
    array = np.stack(frames)[:, None]  # [frame, 1, row, column, (rgb)]
    frames.clear()
    components = AxisInfo(name="component", kind="RGB-color") if mode == "rgb" else None
    axis = AxisInfo(name="frame", unit="s", values=[float(t) for t in times], kind="time")
    return Volume(array, geometry, name=base_name(p), extra_axes=[axis], components=components,
                  metadata=metadata, source=os.fspath(p))


def _video_facts(container, vstream, codec_name: str, codec_tag: str, pix_fmt: str, rate, count: int,
                 times: list[float]) -> dict:
    ctx = vstream.codec_context
    try:
        long_name = ctx.codec.long_name
    except Exception:  # noqa: BLE001
        long_name = ""
    duration = None
    if vstream.duration and vstream.time_base:
        duration = float(vstream.duration * vstream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    elif times:
        duration = times[-1] - times[0] + (float(1 / rate) if rate else 0.0)
    return {
        "container": container.format.name,
        "codec": codec_name,
        "codec_long_name": long_name,
        "codec_tag": codec_tag,
        "pixel_format": pix_fmt,
        "width": int(ctx.width),
        "height": int(ctx.height),
        "frame_rate": float(rate) if rate else None,
        "duration": duration,
        "frame_count": count,
        "bit_rate": int(container.bit_rate or 0) or None,
        "container_tags": _tags(container.metadata),
        "stream_tags": _tags(vstream.metadata),
    }


def _igsio_fields(container, vstream, text_streams, fields, times):
    """IGSIO frame fields: values per frame, transforms, frames to keep, and the ToPhysical IJK-to-RAS."""
    track_name = _tags(vstream.metadata).get("title") or "Video"
    index = {t: n for n, t in enumerate(times)}
    per_frame: dict[str, list] = {}
    for s in text_streams:
        name = _tags(s.metadata).get("title") or f"Track{s.index}"
        values: list = [None] * len(times)
        for t, text in fields[s.index]:
            n = index.get(t)
            if n is not None:
                values[n] = text
        base, k = name, 2
        while name in per_frame:
            name, k = f"{base}_{k}", k + 1
        per_frame[name] = values
    status = per_frame.get("FrameStatus")
    keep = [n for n in range(len(times)) if status is None or status[n] in (None, "", "0")]
    per_frame = {name: [values[n] for n in keep] for name, values in per_frame.items()}
    transforms = {}
    for name, values in per_frame.items():
        if name.endswith("Transform"):
            transforms[name[: -len("Transform")]] = [_parse_matrix(v) if v else None for v in values]
    ijk_to_ras = None
    physical = transforms.get(track_name + "ToPhysical")
    if physical and physical[0] is not None:
        ijk_to_ras = physical[0]
    igsio = {"track_name": track_name, "frame_fields": per_frame, "transforms_ras": transforms,
             "skipped_frames": len(times) - len(keep)}
    return igsio, keep, ijk_to_ras


# -- writing -------------------------------------------------------------------------------------
def _frames_of(vol: Volume, path: Path) -> tuple[np.ndarray, list | None]:
    """The frames ``[n, rows, columns, (c)]`` to write and the frame times (or None)."""
    extra = vol.extra_axes
    nd = vol.geometry.ndim
    arr = vol.array
    if len(extra) > 1:
        raise MedioError(path, f"video holds one frame axis; this volume has {len(extra)} non-spatial axes")
    if len(extra) == 1:
        if nd == 3:
            if vol.spatial_shape[0] != 1:
                raise MedioError(path, f"video frames are 2D; these frames have {vol.spatial_shape[0]} slices")
            arr = arr[:, 0]
        values = extra[0].values
        times = [float(v) for v in values] if values is not None and len(values) == vol.shape[0] else None
        return arr, times
    if nd == 3:
        return arr, None  # a stack of slices: each slice a frame
    return arr[None], None


def _default_codec(av, ext: str) -> str:
    if ext == ".mkv":
        return "ffv1"
    if ext == ".webm":
        return "libvpx-vp9"
    if ext == ".mp4":
        for name in ("libx264", "h264"):
            if _has_encoder(av, name):
                return name
        return "mpeg4"
    return "mpeg4"


def _has_encoder(av, name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except Exception:  # noqa: BLE001
        return False


def _pix_fmt(codec: str, gray: bool, width: int, height: int) -> str:
    if codec == "ffv1":
        return "gray" if gray else "bgr0"  # FFV1 takes 8-bit RGB packed as bgr0 (lossless)
    if codec in ("libx264", "h264"):
        if width % 2 or height % 2:
            return "yuv444p"  # 4:2:0 needs even sizes
        return "yuv420p"
    if codec in ("libvpx-vp9", "vp9"):
        return "yuv420p"
    if codec in ("mjpeg",):
        return "yuvj444p"
    return "yuv420p"


def _supported_pix_fmt(stream, wanted: str, gray: bool) -> str:
    """``wanted`` when the encoder takes it, else the first of its formats that fits (grey or colour)."""
    try:
        formats = [f.name for f in (stream.codec_context.codec.video_formats or ())]
    except Exception:  # noqa: BLE001
        formats = []
    if not formats or wanted in formats:
        return wanted
    for name in (("gray",) if gray else ()) + ("yuv420p", "yuv444p", "bgr0", "rgb24"):
        if name in formats:
            return name
    return formats[0]


def _default_options(codec: str) -> dict:
    if codec in ("libx264", "h264"):
        return {"crf": "18", "preset": "medium"}
    if codec in ("libvpx-vp9", "vp9"):
        return {"crf": "20", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
    return {}


def _frame_rate(path: Path, times: list | None, fps: float | None) -> tuple[Fraction, bool]:
    """Frame rate and whether the times are regular at it."""
    if fps is not None:
        if not fps or not np.isfinite(fps) or fps <= 0:
            raise MedioError(path, f"fps must be a positive number, not {fps!r}")
        return Fraction(fps).limit_denominator(1001), True
    if times is None or len(times) < 2:
        return Fraction(25), True
    steps = np.diff(np.asarray(times, dtype=float))
    if np.any(steps <= 0) or not np.all(np.isfinite(steps)):
        raise MedioError(path, "frame times must increase to be written as video (pass fps= to ignore them)")
    step = float(np.median(steps))
    rate = Fraction(1 / step).limit_denominator(1001)
    expected = np.asarray(times) - times[0]
    regular = np.allclose(expected, np.arange(len(times)) / float(rate), atol=5e-4, rtol=0)
    return rate, bool(regular)


def write_video(volume: Volume, path: str | os.PathLike[str], *, fps: float | None = None,
                codec: str | None = None, options: dict | None = None, drop_alpha: bool = False,
                allow_direction_loss: bool = False, progress: Any = None) -> list[str]:
    """Write an image sequence as ``.mkv`` (FFV1), ``.webm`` (VP9), ``.mp4`` (H.264) or ``.avi`` (MPEG-4)."""
    p = Path(path)
    vol = as_volume(volume, p, "video")
    ext = p.suffix.lower()
    if ext not in _CONTAINERS:
        raise MedioError(p, f"video is written as .mkv, .webm, .mp4 or .avi, not {ext!r}")
    if vol.dtype != np.uint8:
        raise MedioError(p, f"video holds 8-bit frames; this volume has {vol.dtype} voxels: convert it first")
    n_comp = vol.n_components
    if n_comp not in (1, 3, 4):
        raise MedioError(p, f"video holds grey or RGB frames, not {n_comp}-component voxels")
    if n_comp == 4 and not drop_alpha:
        raise MedioError(p, "video cannot hold an alpha channel: pass drop_alpha=True to write the RGB only")
    check_direction(vol, p, "video", allow_direction_loss)
    frames, times = _frames_of(vol, p)
    count = int(frames.shape[0])
    if count == 0:
        raise MedioError(p, "no frames to write")
    height, width = int(frames.shape[1]), int(frames.shape[2])
    rate, regular = _frame_rate(p, times, fps)
    if fps is not None:
        times = None
    try:
        import av
    except ImportError:
        raise WriteError(p, _INSTALL) from None
    codec = codec or _default_codec(av, ext)
    if not _has_encoder(av, codec):
        raise WriteError(p, f"the bundled libav has no {codec!r} encoder")
    gray = n_comp == 1
    prog = ensure_progress(progress)
    prog.path = os.fspath(p)
    prog.start(count, f"Writing {p.name}")
    with atomic_outputs([p]) as (temp,):
        try:
            container = av.open(os.fspath(temp), mode="w", format=_CONTAINERS[ext])
        except Exception as exc:  # noqa: BLE001
            raise WriteError(p, f"cannot open the video muxer: {_av_reason(exc)}") from None
        try:
            if vol.name:
                container.metadata["title"] = vol.name
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height = width, height
            stream.pix_fmt = _supported_pix_fmt(stream, _pix_fmt(codec, gray, width, height), gray)
            opts = _default_options(codec)
            opts.update({str(k): str(v) for k, v in (options or {}).items()})
            if opts:
                stream.codec_context.options = opts
            variable = times is not None and not regular
            time_base = Fraction(1, 1000) if variable else 1 / rate
            stream.codec_context.time_base = time_base
            t0 = times[0] if times else 0.0
            src_fmt = "gray" if gray else "rgb24"
            for n in range(count):
                frame_data = np.ascontiguousarray(np.asarray(frames[n])[..., :3] if not gray else frames[n])
                if gray and frame_data.ndim == 3:
                    frame_data = frame_data[..., 0]
                frame = av.VideoFrame.from_ndarray(frame_data, format=src_fmt)
                frame.pts = round((times[n] - t0) * 1000) if variable else n
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
                prog.advance(1)
            for packet in stream.encode(None):
                container.mux(packet)
        except (MedioError, CancelledError, KeyboardInterrupt, MemoryError):
            container.close()
            raise
        except Exception as exc:  # noqa: BLE001
            with contextlib.suppress(Exception):
                container.close()
            raise WriteError(p, f"cannot encode the video with {codec}: {_av_reason(exc)}") from None
        container.close()
    return [os.fspath(p)]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Compressed video as an image sequence (.mkv, .webm, .mp4, .avi; SlicerIGSIO-compatible)",
        extensions=(".mkv", ".webm", ".mp4", ".avi"),
        read=read_video,
        write=write_video,
        sniff=sniff,
        kinds=(DataKind.VOLUME,),
        backend="PyAV (FFmpeg libraries bundled in the wheel)",
        read_options={
            "progress": "a napari_medio.core.progress.Progress (counts frames; Cancel between frames)",
            "color": "'rgb' (default), 'gray' (luma, one component) or 'auto' (one component for grey streams)",
        },
        write_options={
            "fps": "frame rate (default: from the frame axis values, else 25)",
            "codec": "encoder name (default: ffv1 .mkv, libvpx-vp9 .webm, libx264 .mp4, mpeg4 .avi)",
            "options": "encoder options as a dict of strings (e.g. {'crf': '23'})",
            "drop_alpha": "write RGBA frames without their alpha (default False: refuse)",
            "allow_direction_loss": DIRECTION_LOSS_OPTION,
            "progress": "a napari_medio.core.progress.Progress (counts frames; Cancel between frames)",
        },
    )
)
