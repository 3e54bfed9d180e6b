"""WADO-RS retrieve: a streaming ``multipart/related`` reader that writes each part straight to its file.

A WADO-RS series answer is one ``multipart/related; type="application/dicom"`` body (RFC 2046
5.1, DICOM PS3.18 8.6) whose parts are Part-10 instances.  :class:`MultipartFiles` is fed the
body in large chunks as they arrive; it finds the delimiters (``CRLF--boundary``) with
``bytearray.find``, writes each part's bytes into a hidden ``.part`` file in the destination
folder as they come, and when the part's closing delimiter has arrived names the file
``<SOPInstanceUID>.dcm`` (atomic rename), the UID read from the part's File Meta
(hand-parsed; pydicom only when a part has no File Meta).  A part is complete only when
the next delimiter has arrived, so a response cut short leaves only complete files.
"""
from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["MultipartFiles", "NotDicom", "boundary_of", "meta_sop_uid"]

_HEAD = 64 * 1024  # bytes kept of each part's start (its File Meta)
_LONG_VR = (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")


class NotDicom(ValueError):
    """A part that is not a DICOM instance (or the body is not multipart as announced)."""


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a multipart Content-Type (quoted or not)."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if value:
                return value.encode("latin-1")
    raise NotDicom(f"no multipart boundary in the Content-Type {content_type!r}")


def meta_sop_uid(head: bytes) -> str | None:
    """Media Storage SOP Instance UID (0002,0003) from the start of a Part-10 file, or None."""
    if len(head) < 144 or head[128:132] != b"DICM":
        return None
    off, n = 132, len(head)
    while off + 8 <= n:
        group, elem = struct.unpack_from("<HH", head, off)
        if group != 2:
            return None
        vr = bytes(head[off + 4:off + 6])
        if vr in _LONG_VR:
            if off + 12 > n:
                return None
            length = struct.unpack_from("<I", head, off + 8)[0]
            off += 12
        else:
            length = struct.unpack_from("<H", head, off + 6)[0]
            off += 8
        if off + length > n:
            return None
        if elem == 3:
            return bytes(head[off:off + length]).decode("ascii", "replace").strip("\0 ") or None
        off += length
    return None


def _dataset_sop_uid(path: str) -> str:
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"], force=True)
    meta = getattr(ds, "file_meta", None)
    uid = ds.get("SOPInstanceUID") or getattr(meta, "MediaStorageSOPInstanceUID", None)
    if not uid:
        raise ValueError("no SOP Instance UID")
    return str(uid)


class MultipartFiles:
    """Feed a ``multipart/related`` body (:meth:`feed`); each complete part becomes
    ``<folder>/<SOPInstanceUID>.dcm`` and ``on_part(path, size)`` is called.  ``before_part()`` runs when a
    part starts (a cancel check may raise there).  :meth:`finish` says whether the closing delimiter came;
    :meth:`discard` removes a part in progress."""

    PREAMBLE, AFTER, HEADERS, BODY, END = range(5)

    def __init__(self, boundary: bytes, folder: str | os.PathLike[str],
                 on_part: Callable[[Path, int], None],
                 before_part: Callable[[], None] | None = None) -> None:
        self.delim = b"\r\n--" + boundary
        self.folder = os.fspath(folder)
        self.on_part = on_part
        self.before_part = before_part
        self.buf = bytearray(b"\r\n")  # the first delimiter may open the body without a CRLF before it
        self.state = self.PREAMBLE
        self.fd = -1
        self.tmp = ""
        self.head = bytearray()
        self.size = 0

    # parts
    def _open(self) -> None:
        if self.before_part is not None:
            self.before_part()
        self.tmp = os.path.join(self.folder, f".medio-{uuid.uuid4().hex[:12]}-wado.dcm.part")
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.head = bytearray()
        self.size = 0

    def _write(self, view: memoryview) -> None:
        if len(self.head) < _HEAD:
            self.head += view[:_HEAD - len(self.head)]
        n = os.write(self.fd, view)
        while n < len(view):
            n += os.write(self.fd, view[n:])
        self.size += len(view)

    def _close_part(self) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)
        uid = meta_sop_uid(self.head)
        if uid is None:
            try:
                uid = _dataset_sop_uid(self.tmp)
            except Exception as exc:
                self._unlink()
                raise NotDicom(f"a part that is not a DICOM instance ({exc})") from None
        from .dimse import valid_uid

        if not valid_uid(uid):
            self._unlink()
            raise NotDicom(f"a part with an invalid SOP Instance UID {uid!r}")
        target = os.path.join(self.folder, uid + ".dcm")
        os.replace(self.tmp, target)
        self.tmp = ""
        self.on_part(Path(target), self.size)

    def _unlink(self) -> None:
        if self.tmp:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = ""

    def discard(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
        self._unlink()

    # parsing
    def feed(self, chunk: bytes) -> None:
        buf = self.buf
        buf += chunk
        delim = self.delim
        keep = len(delim) - 1
        pos = 0
        try:
            while True:
                state = self.state
                if state == self.BODY:
                    i = buf.find(delim, pos)
                    end = i if i >= 0 else len(buf) - keep
                    if end > pos:
                        with memoryview(buf) as mv:
                            self._write(mv[pos:end])
                        pos = end
                    if i < 0:
                        break
                    pos = i + len(delim)
                    self._close_part()
                    self.state = self.AFTER
                elif state == self.AFTER:  # "--" closes the body, else the rest of the delimiter line
                    if len(buf) - pos < 2:
                        break
                    if buf[pos:pos + 2] == b"--":
                        self.state = self.END
                        pos = len(buf)
                        break
                    j = buf.find(b"\r\n", pos)
                    if j < 0:
                        if len(buf) - pos > 1024:
                            raise NotDicom("a multipart delimiter line without its end")
                        break
                    pos = j + 2
                    self.state = self.HEADERS
                elif state == self.HEADERS:
                    if len(buf) - pos < 2:
                        break
                    if buf[pos:pos + 2] == b"\r\n":  # no part headers
                        pos += 2
                    else:
                        j = buf.find(b"\r\n\r\n", pos)
                        if j < 0:
                            if len(buf) - pos > _HEAD:
                                raise NotDicom("multipart part headers longer than 64 KiB")
                            break
                        pos = j + 4
                    self._open()
                    self.state = self.BODY
                elif state == self.PREAMBLE:
                    i = buf.find(delim, pos)
                    if i < 0:
                        pos = max(pos, len(buf) - keep)
                        break
                    pos = i + len(delim)
                    self.state = self.AFTER
                else:  # END: the epilogue is ignored
                    pos = len(buf)
                    break
        finally:
            try:
                del buf[:pos]
            except BufferError:  # a view is still held by an exception's traceback: start a new buffer
                self.buf = bytearray(buf[pos:])

    def finish(self) -> bool:
        """True when the body ended with its closing delimiter (else a part in progress is removed)."""
        if self.state != self.END:
            self.discard()
            return False
        return True
