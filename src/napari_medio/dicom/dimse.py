"""A lean DICOM upper layer and DIMSE receive path: C-GET and C-MOVE SCU, C-STORE SCP, C-ECHO.

Written by hand (from PS3.8 "Network Communication Support for Message Exchange" and PS3.7
"Message Exchange") because receiving with pynetdicom is too slow for a retrieve a user waits
for: it decodes every C-STORE-RQ command set with pydicom, builds PDU and primitive objects,
dispatches events, hands the GIL between two threads per association and polls with 1 ms
sleeps -- about 5 ms of Python per instance.  A 300-instance C-GET from Orthanc takes 5.2-6.7x
longer with plain pynetdicom than with this module (docs/performance.md, "DICOM network";
``benchmarks/bench_dicom_net.py``), and the files written are byte for byte pynetdicom's
(tests/dicom_net/test_dimse.py).  C-STORE SCU (sending) is here too: pynetdicom 3.0's
``send_c_store`` pauses its reactor racily, so over a fast link (``TCP_NODELAY``) about one
response in a few hundred is taken by the idle reactor and dropped, and the send then fails with a
DIMSE timeout; without ``TCP_NODELAY`` every instance waits ~50 ms for a delayed ACK (5x slower).
C-FIND and C-ECHO are pynetdicom's.

What is here, and nothing more:

* the upper-layer PDUs (PS3.8 9.3): A-ASSOCIATE-RQ/AC/RJ with the application context,
  presentation contexts and user information (maximum PDU length, implementation class UID
  and version name, SCP/SCU role selection for C-GET); P-DATA-TF with its PDV fragments;
  A-RELEASE-RQ/RP; A-ABORT;
* DIMSE command sets (PS3.7 9.3 and E.1), Implicit VR Little Endian, group 0000 only, encoded and
  parsed by hand: C-STORE, C-GET, C-MOVE and C-ECHO requests and responses;
* :func:`associate` (the requestor side) and :class:`Association` with ``c_echo``, ``c_store`` and
  ``retrieve`` (C-GET, C-MOVE); :class:`StoreSCP`, the acceptor used as the C-MOVE destination and by
  ``network.StorageListener``.

One plain blocking socket per association (``TCP_NODELAY``), read through one reusable buffer;
no threads per message (the SCP has one thread per association).  A received data set is never
decoded: its PDV fragments go from the receive buffer straight into
``<folder>/.medio-<random>-<SOPInstanceUID>.dcm.part`` behind the hand-encoded Part-10 File Meta
header (:func:`part10_header`, byte for byte what pynetdicom writes), and the file is renamed to
``<SOPInstanceUID>.dcm`` when its last fragment has arrived, so an interrupted transfer leaves
only complete files.  Timeouts: connecting, the association answer (ARTIM), every wait for
data and the release answer are bounded; an idle wait can call a ``tick`` (cancel checks).

The identifiers of C-GET/C-MOVE requests are encoded with pydicom (through pynetdicom's
``dsutils.encode``), once per request; C-STORE data sets are not touched.
"""
from __future__ import annotations

import os
import re
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DimseError", "Refused", "NotAssociated", "ConnectionLost", "Aborted", "Malformed", "Timeout", "Stopped",
    "Command", "encode_command", "parse_command", "encode_associate_rq", "encode_associate_ac",
    "encode_associate_rj", "encode_p_data", "encode_abort", "parse_associate", "Association", "associate",
    "StoreSCP", "part10_header", "IMPLICIT_LE", "EXPLICIT_LE", "VERIFICATION", "GET_STUDY_ROOT",
    "MOVE_STUDY_ROOT", "FIND_STUDY_ROOT",
]

# -- constants ----------------------------------------------------------------------------------------------
# PDU types (PS3.8 9.3.1)
A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = range(1, 8)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
FIND_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.2"
GET_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.3"
#: napari-medio's implementation class UID (as in the files ``dicom.export`` writes)
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1467.1"

# Command Field values (PS3.7 E.1)
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_CANCEL_RQ = 0x0FFF
NO_DATASET = 0x0101

# Command elements, group 0000 (element numbers)
GROUP_LENGTH = 0x0000
AFFECTED_SOP_CLASS = 0x0002
REQUESTED_SOP_CLASS = 0x0003
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
RESPONDED_TO = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
DATASET_TYPE = 0x0800
STATUS = 0x0900
OFFENDING_ELEMENT = 0x0901
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE = 0x1000
REQUESTED_SOP_INSTANCE = 0x1001
REMAINING = 0x1020
COMPLETED = 0x1021
FAILED = 0x1022
WARNING = 0x1023
MOVE_ORIGINATOR_AE = 0x1030
MOVE_ORIGINATOR_ID = 0x1031

_UI_ELEMENTS = frozenset((AFFECTED_SOP_CLASS, REQUESTED_SOP_CLASS, AFFECTED_SOP_INSTANCE,
                          REQUESTED_SOP_INSTANCE))
_PENDING = (0xFF00, 0xFF01)
_UID = re.compile(r"[0-9]+(\.[0-9]+)*\Z")

#: The largest command set, and the largest non-C-STORE data set (identifiers), we accept.
MAX_COMMAND = 64 * 1024
MAX_IDENTIFIER = 64 * 1024 * 1024
#: The largest non-P-DATA PDU we read (an A-ASSOCIATE-RQ with 128 contexts x 45 syntaxes is ~0.2 MB).
MAX_CONTROL_PDU = 8 * 1024 * 1024
#: Receive buffer per association.
BUFFER = 1 << 20
#: PDV fragment size we send when the peer sets no limit.
SEND_FRAGMENT = 1 << 20

ABORT_REASONS = {0: "reason not specified", 1: "unrecognized PDU", 2: "unexpected PDU",
                 4: "unrecognized PDU parameter", 5: "unexpected PDU parameter",
                 6: "invalid PDU parameter value"}
_REJECT_REASONS = {
    1: {1: "no reason given", 2: "application context name not supported",
        3: "Calling AE title not recognised", 7: "Called AE title not recognised"},
    2: {1: "no reason given", 2: "protocol version not supported"},
    3: {1: "temporary congestion", 2: "local limit exceeded"},
}


def implementation_version() -> str:
    try:
        from .. import __version__

        version = str(__version__)
    except Exception:  # pragma: no cover
        version = "0"
    return ("MEDIO_" + version)[:16]


# -- errors -----------------------------------------------------------------------------------------------
class DimseError(Exception):
    """A DIMSE association failed (the caller turns it into a PacsError naming the server)."""


class Refused(DimseError):
    """The TCP connection could not be made."""


class NotAssociated(DimseError):
    """The peer rejected (``how == "rejected"``), aborted or closed the association request."""

    def __init__(self, how: str, reason: str = "") -> None:
        self.how = how
        self.reason = reason
        super().__init__(f"association {how}" + (f": {reason}" if reason else ""))


class ConnectionLost(DimseError):
    """The peer closed the connection (or it broke) in the middle of the association."""


class Aborted(DimseError):
    """The peer sent an A-ABORT."""

    def __init__(self, source: int, reason: int) -> None:
        self.source = source
        self.reason = reason
        self.why = ABORT_REASONS.get(reason, f"reason {reason}") if source == 2 else "by its user"
        super().__init__(f"the peer aborted the association ({self.why})")


class Malformed(DimseError):
    """The peer sent something that is not valid DICOM upper layer / DIMSE (we abort)."""


class Timeout(DimseError):
    """Nothing arrived within the timeout."""


class Stopped(DimseError):
    """The caller asked to stop (cancel); the association was aborted."""


# -- DIMSE command sets (PS3.7 6.3.1, 9.3, E.1) --------------------------------------------------------------
class Command(dict):
    """A parsed command set: ``{element number: raw value bytes}`` (group 0000)."""

    def us(self, elem: int, default: int = 0) -> int:
        v = self.get(elem)
        return struct.unpack_from("<H", v)[0] if v is not None and len(v) >= 2 else default

    def text(self, elem: int, default: str = "") -> str:
        v = self.get(elem)
        return v.decode("ascii", "replace").strip("\0 ") if v is not None else default

    @property
    def field(self) -> int:
        return self.us(COMMAND_FIELD, -1)

    @property
    def status(self) -> int:
        return self.us(STATUS, -1)

    @property
    def has_dataset(self) -> bool:
        return self.us(DATASET_TYPE, NO_DATASET) != NO_DATASET


def encode_command(fields: dict) -> bytes:
    """A command set (Implicit VR Little Endian) from ``{element: int (US) or str (UI, AE, LO)}``, sorted,
    with its Command Group Length."""
    parts = []
    for elem in sorted(fields):
        value = fields[elem]
        if isinstance(value, int):
            raw = struct.pack("<H", value)
        else:
            raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
            if len(raw) % 2:
                raw += b"\0" if elem in _UI_ELEMENTS else b" "
        parts.append(struct.pack("<HHI", 0, elem, len(raw)) + raw)
    body = b"".join(parts)
    return struct.pack("<HHII", 0, GROUP_LENGTH, 4, len(body)) + body


def parse_command(data: bytes) -> Command:
    """Parse a command set; :class:`Malformed` when it is not group-0000 Implicit VR LE."""
    cmd = Command()
    n, off = len(data), 0
    while off < n:
        if off + 8 > n:
            raise Malformed("truncated DIMSE command element")
        group, elem, length = struct.unpack_from("<HHI", data, off)
        off += 8
        if group != 0 or off + length > n:
            raise Malformed("a DIMSE command set with an element outside group 0000 or past its end")
        cmd[elem] = data[off:off + length]
        off += length
    if COMMAND_FIELD not in cmd:
        raise Malformed("a DIMSE command set without a Command Field")
    return cmd


# -- upper-layer PDUs (PS3.8 9.3, PS3.7 D.3) -----------------------------------------------------------------
def _item(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(payload)) + payload


def _ae(title: str) -> bytes:
    raw = title.encode("ascii", "replace")[:16]
    return raw + b" " * (16 - len(raw))


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def _user_info(max_pdu: int, roles: Sequence[tuple] = (), version: str | None = None) -> bytes:
    subs = [_item(0x51, struct.pack(">I", max_pdu)), _item(0x52, IMPLEMENTATION_UID.encode())]
    for uid, scu, scp in roles:
        raw = uid.encode()
        subs.append(_item(0x54, struct.pack(">H", len(raw)) + raw + bytes((int(bool(scu)), int(bool(scp))))))
    subs.append(_item(0x55, (version or implementation_version()).encode()))
    return _item(0x50, b"".join(subs))


def encode_associate_rq(called: str, calling: str, contexts: Sequence[tuple], max_pdu: int = 0,
                        roles: Sequence[tuple] = ()) -> bytes:
    """A-ASSOCIATE-RQ; ``contexts`` are ``(id, abstract syntax, [transfer syntaxes])``, ``roles``
    ``(SOP class, SCU role, SCP role)``."""
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for cid, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)
        items.append(_item(0x20, bytes((cid, 0, 0, 0)) + sub))
    items.append(_user_info(max_pdu, roles))
    head = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + b"\0" * 32
    return _pdu(A_ASSOCIATE_RQ, head + b"".join(items))


def encode_associate_ac(called: bytes, calling: bytes, results: Sequence[tuple], max_pdu: int = 0) -> bytes:
    """A-ASSOCIATE-AC; ``called``/``calling``: the RQ's 16-byte fields; ``results``: (id, result, syntax)."""
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for cid, result, ts in results:
        items.append(_item(0x21, bytes((cid, 0, result, 0)) + _item(0x40, ts.encode())))
    items.append(_user_info(max_pdu))
    return _pdu(A_ASSOCIATE_AC, struct.pack(">HH", 1, 0) + called + calling + b"\0" * 32 + b"".join(items))


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(A_ASSOCIATE_RJ, bytes((0, result, source, reason)))


def encode_abort(source: int = 0, reason: int = 0) -> bytes:
    return _pdu(A_ABORT, bytes((0, 0, source, reason)))


RELEASE_RQ = _pdu(A_RELEASE_RQ, b"\0\0\0\0")
RELEASE_RP = _pdu(A_RELEASE_RP, b"\0\0\0\0")


def encode_p_data(fragments: Sequence[tuple]) -> bytes:
    """One P-DATA-TF PDU holding ``(context id, control header, bytes)`` PDVs (control: bit 0 command,
    bit 1 last fragment)."""
    body = b"".join(struct.pack(">IBB", len(data) + 2, cid, control) + bytes(data)
                    for cid, control, data in fragments)
    return _pdu(P_DATA_TF, body)


@dataclass
class AssociateInfo:
    """A parsed A-ASSOCIATE-RQ or -AC."""

    called: bytes = b""
    calling: bytes = b""
    protocol: int = 1
    application_context: str = ""
    #: RQ: ``{id: (abstract syntax, [transfer syntaxes])}``; AC: ``{id: (result, transfer syntax)}``
    contexts: dict = field(default_factory=dict)
    max_pdu: int = 0
    implementation_uid: str = ""
    implementation_version: str = ""
    roles: dict = field(default_factory=dict)


def _uid(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip("\0 ")


def _items(data: bytes, off: int, end: int) -> Iterator[tuple]:
    while off < end:
        if off + 4 > end:
            raise Malformed("truncated PDU item")
        kind, _, length = struct.unpack_from(">BBH", data, off)
        off += 4
        if off + length > end:
            raise Malformed(f"PDU item 0x{kind:02X} runs past its PDU")
        yield kind, off, off + length
        off += length


def parse_associate(body: bytes, request: bool) -> AssociateInfo:
    """Parse the body (after the 6-byte header) of an A-ASSOCIATE-RQ (``request``) or -AC."""
    if len(body) < 68:
        raise Malformed("A-ASSOCIATE PDU too short")
    info = AssociateInfo(called=bytes(body[4:20]), calling=bytes(body[20:36]))
    info.protocol = struct.unpack_from(">H", body, 0)[0]
    for kind, start, end in _items(body, 68, len(body)):
        if kind == 0x10:
            info.application_context = _uid(body[start:end])
        elif kind in (0x20, 0x21):
            if end - start < 4:
                raise Malformed("presentation context item too short")
            cid, result = body[start], body[start + 2]
            syntaxes, abstract = [], ""
            for sub, s0, s1 in _items(body, start + 4, end):
                if sub == 0x30:
                    abstract = _uid(body[s0:s1])
                elif sub == 0x40:
                    syntaxes.append(_uid(body[s0:s1]))
            if request:
                info.contexts[cid] = (abstract, syntaxes)
            else:
                info.contexts[cid] = (result, syntaxes[0] if syntaxes else "")
        elif kind == 0x50:
            for sub, s0, s1 in _items(body, start, end):
                if sub == 0x51 and s1 - s0 >= 4:
                    info.max_pdu = struct.unpack_from(">I", body, s0)[0]
                elif sub == 0x52:
                    info.implementation_uid = _uid(body[s0:s1])
                elif sub == 0x55:
                    info.implementation_version = _uid(body[s0:s1])
                elif sub == 0x54 and s1 - s0 >= 4:
                    n = struct.unpack_from(">H", body, s0)[0]
                    if s0 + 2 + n + 2 <= s1:
                        info.roles[_uid(body[s0 + 2:s0 + 2 + n])] = (body[s0 + 2 + n], body[s0 + 3 + n])
    return info


# -- Part 10 files -------------------------------------------------------------------------------------------
def _meta_element(tag: int, vr: bytes, value: bytes, pad: bytes = b"\0") -> bytes:
    if len(value) % 2:
        value += pad
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


_META_TAIL: bytes | None = None


def part10_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and File Meta Information for a received C-STORE data set: the same elements as
    pynetdicom's ``Event.file_meta`` (byte for byte, tested) -- so a file is the same whichever DIMSE path
    received it -- encoded without building a pydicom data set."""
    global _META_TAIL
    if _META_TAIL is None:
        from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

        _META_TAIL = (_meta_element(0x00020012, b"UI", str(PYNETDICOM_IMPLEMENTATION_UID).encode("ascii"))
                      + _meta_element(0x00020013, b"SH",
                                      str(PYNETDICOM_IMPLEMENTATION_VERSION).encode("ascii"), b" "))
    body = b"".join((
        _meta_element(0x00020001, b"OB", b"\0\1"),
        _meta_element(0x00020002, b"UI", sop_class_uid.encode("ascii")),
        _meta_element(0x00020003, b"UI", sop_instance_uid.encode("ascii")),
        _meta_element(0x00020010, b"UI", transfer_syntax.encode("ascii")),
        _META_TAIL,
    ))
    return b"\0" * 128 + b"DICM" + _meta_element(0x00020000, b"UL", struct.pack("<I", len(body))) + body


class FileSink:
    """One received data set on its way to ``<folder>/<SOPInstanceUID>.dcm``: written to a hidden
    ``.part`` file behind its File Meta header, renamed when complete (:meth:`commit`), removed
    otherwise (:meth:`discard`).  A write error (disk full) is kept and reported at commit."""

    __slots__ = ("fd", "tmp", "target", "size", "error")

    def __init__(self, folder: str | os.PathLike[str], sop_class: str, sop_uid: str,
                 transfer_syntax: str) -> None:
        folder = os.fspath(folder)
        self.target = os.path.join(folder, sop_uid + ".dcm")
        self.tmp = os.path.join(folder, f".medio-{uuid.uuid4().hex[:12]}-{sop_uid}.dcm.part")
        self.error: OSError | None = None
        self.size = 0
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.write(part10_header(sop_class, sop_uid, transfer_syntax))

    def write(self, data: Any) -> None:
        if self.error is not None:
            return
        try:
            n = os.write(self.fd, data)
            total = len(data)
            while n < total:
                n += os.write(self.fd, data[n:])
            self.size += total
        except OSError as exc:
            self.error = exc

    def commit(self) -> Path:
        fd, self.fd = self.fd, -1
        try:
            os.close(fd)
        except OSError as exc:
            self.error = self.error or exc
        if self.error is not None:
            self._unlink()
            raise self.error
        try:
            os.replace(self.tmp, self.target)
        except OSError:
            self._unlink()
            raise
        return Path(self.target)

    def discard(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.close(fd)
            except OSError:
                pass
        self._unlink()

    def _unlink(self) -> None:
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def valid_uid(uid: str) -> bool:
    """A UID we can use as a file name (digits and dots, at most 64 characters)."""
    return 0 < len(uid) <= 64 and _UID.match(uid) is not None


def part10_meta(path: str | os.PathLike[str]) -> tuple[str, str, str, int]:
    """(SOP Class UID, SOP Instance UID, transfer syntax UID, offset of the data set) of a Part-10 file, from
    its File Meta (read with pydicom); ValueError when it is not a Part-10 file."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_file_meta_info

    try:
        meta = read_file_meta_info(path)
    except InvalidDicomError as exc:
        raise ValueError(f"not a DICOM Part-10 file ({exc})") from None
    try:
        found = (str(meta.MediaStorageSOPClassUID), str(meta.MediaStorageSOPInstanceUID),
                 str(meta.TransferSyntaxUID), 144 + int(meta.FileMetaInformationGroupLength))
    except (AttributeError, TypeError, ValueError):
        raise ValueError("its File Meta Information lacks the SOP class, instance, transfer syntax or group "
                         "length") from None
    return found


# -- transport -----------------------------------------------------------------------------------------------
class _Channel:
    """One association's socket, read through one reusable buffer.

    ``timeout``: the longest wait for data (Timeout).  ``tick``: when set, waits are cut into
    ``tick_interval`` slices and ``tick()`` runs between them (it may raise, e.g. Stopped);
    ``activity()`` (optional) returns the time of activity elsewhere that also counts as not idle
    (the C-MOVE association is silent while the sub-operations run on another one)."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sock = sock
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.start = self.end = 0
        self.timeout = float(timeout)
        self.tick: Callable[[], None] | None = None
        self.tick_interval = 0.1
        self.activity: Callable[[], float] | None = None
        self.closed = False
        self._wait: float | None = None

    # receiving
    def _fill(self) -> None:
        """Receive at least one more byte (as many as the kernel has, up to the buffer's end)."""
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):  # only a few header bytes are ever left over here
            n = self.end - self.start
            self.buf[:n] = self.buf[self.start:self.end]
            self.start, self.end = 0, n
        sock = self.sock
        wait = self.tick_interval if self.tick is not None else self.timeout
        if wait != self._wait:  # settimeout costs a system call: only when it changes
            sock.settimeout(wait)
            self._wait = wait
        waited_since = time.monotonic()
        while True:
            try:
                n = sock.recv_into(self.view[self.end:])
            except TimeoutError:
                if self.tick is None:
                    raise Timeout(f"no data for {self.timeout:g} s") from None
                self.tick()
                last = waited_since
                if self.activity is not None:
                    last = max(last, self.activity())
                if time.monotonic() - last >= self.timeout:
                    raise Timeout(f"no data for {self.timeout:g} s") from None
                continue
            except InterruptedError:  # pragma: no cover - retried by Python already
                continue
            except OSError as exc:
                raise ConnectionLost(f"connection broken: {exc.strerror or exc}") from None
            if not n:
                raise ConnectionLost("the peer closed the connection")
            self.end += n
            return

    def header(self, fmt: str, size: int) -> tuple:
        while self.end - self.start < size:
            self._fill()
        out = struct.unpack_from(fmt, self.buf, self.start)
        self.start += size
        return out

    def take(self, n: int) -> bytes:
        if self.end - self.start >= n:
            out = bytes(self.view[self.start:self.start + n])
            self.start += n
            return out
        parts = []
        while n:
            if self.start == self.end:
                self._fill()
            k = min(n, self.end - self.start)
            parts.append(bytes(self.view[self.start:self.start + k]))
            self.start += k
            n -= k
        return b"".join(parts)

    def pour(self, n: int, write: Callable[[Any], None]) -> None:
        """Hand ``n`` bytes to ``write`` as they arrive, as memoryview slices of the buffer."""
        view = self.view
        while n:
            if self.start == self.end:
                self._fill()
            k = min(n, self.end - self.start)
            write(view[self.start:self.start + k])
            self.start += k
            n -= k

    def skip(self, n: int) -> None:
        self.pour(n, lambda _: None)

    # sending
    def send(self, data: bytes) -> None:
        try:
            if self._wait != self.timeout:
                self.sock.settimeout(self.timeout)
                self._wait = self.timeout
            self.sock.sendall(data)
        except TimeoutError:
            raise Timeout(f"could not send for {self.timeout:g} s") from None
        except OSError as exc:
            raise ConnectionLost(f"connection broken: {exc.strerror or exc}") from None

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """Send an A-ABORT (best effort) and close."""
        if not self.closed:
            try:
                self.sock.settimeout(1.0)
                self._wait = 1.0
                self.sock.sendall(encode_abort(source, reason))
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass
class Message:
    """A received DIMSE message (``command``, ``data`` for small data sets or ``sink`` for a stored one),
    or ``kind == "release"`` for an A-RELEASE-RQ, ``"release-rp"`` for an A-RELEASE-RP."""

    kind: str = "dimse"
    context: int = 0
    command: Command | None = None
    data: bytes | None = None
    sink: FileSink | None = None
    refused: int = 0  # status to answer when the C-STORE data set was drained instead of stored


#: ``store(command, context id)`` -> a FileSink, or an int status to drain the data set and refuse it
StoreFactory = Callable[[Command, int], "FileSink | int"]


class Association:
    """An established association (either side): sends DIMSE messages, receives them PDU by PDU."""

    def __init__(self, chan: _Channel, contexts: dict, peer_max_pdu: int, requestor: bool) -> None:
        self.chan = chan
        #: ``{context id: (abstract syntax, transfer syntax)}`` of the accepted presentation contexts
        self.contexts = contexts
        self.peer_max_pdu = int(peer_max_pdu)
        self.requestor = requestor
        self.released = False
        self._remaining = 0  # bytes of the current P-DATA-TF PDU not read yet
        self._message_id = 0

    def context_for(self, abstract: str) -> int | None:
        for cid, (a, _) in self.contexts.items():
            if a == abstract:
                return cid
        return None

    def next_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    # sending
    def send(self, context: int, command: dict | bytes, dataset: bytes | None = None) -> None:
        """Send one DIMSE message (command set, then the data set), fragmented to the peer's maximum PDU."""
        raw = command if isinstance(command, (bytes, bytearray)) else encode_command(command)
        size = self.peer_max_pdu - 6 if self.peer_max_pdu > 6 else SEND_FRAGMENT
        size = min(size, SEND_FRAGMENT)
        out = []
        for kind, data in ((1, raw), (0, dataset)):
            if data is None:
                continue
            view = memoryview(data)
            if not len(view):
                out.append(encode_p_data([(context, kind | 2, b"")]))
            for off in range(0, len(view), size):
                last = 2 if off + size >= len(view) else 0
                out.append(encode_p_data([(context, kind | last, view[off:off + size])]))
        self.chan.send(b"".join(out))

    def release(self, timeout: float = 5.0) -> None:
        """A-RELEASE-RQ, wait (bounded) for the A-RELEASE-RP, close."""
        try:
            self.chan.send(RELEASE_RQ)
            self.chan.timeout = min(self.chan.timeout, timeout)
            self.chan.tick = None
            while True:
                msg = self.receive(lambda cmd, cid: 0xA700)  # a late C-STORE: drained, not stored
                if msg.kind == "release-rp":
                    break
                if msg.kind == "release":  # both sides released at once (collision): answer, done
                    self.chan.send(RELEASE_RP)
                    break
        except DimseError:
            pass
        finally:
            self.released = True
            self.chan.close()

    def abort(self) -> None:
        self.chan.abort(0, 0)

    def close(self) -> None:
        self.chan.close()

    # receiving
    def _malformed(self, why: str, reason: int = 0) -> Malformed:
        self.chan.abort(2, reason)
        return Malformed(why)

    def receive(self, store: StoreFactory | None = None) -> Message:
        """The next DIMSE message.  A C-STORE-RQ's data set goes to ``store(command, context)``'s FileSink
        as it arrives (the caller commits it); other data sets (identifiers) are collected in memory."""
        chan = self.chan
        cmd: Command | None = None
        cmd_parts: list = []
        cmd_size = 0
        cmd_ctx = 0
        data_parts: list | None = None
        data_size = 0
        sink: FileSink | None = None
        refused = 0
        try:
            while True:
                if self._remaining == 0:
                    kind, _, length = chan.header(">BBI", 6)
                    if kind != P_DATA_TF:
                        return self._control_pdu(kind, length)
                    self._remaining = length
                    if length == 0:
                        continue
                if self._remaining < 6:
                    raise self._malformed("a P-DATA-TF PDU with a truncated PDV item", 6)
                item_len, ctx, control = chan.header(">IBB", 6)
                if item_len < 2 or item_len + 4 > self._remaining:
                    raise self._malformed("a PDV item longer than its P-DATA-TF PDU", 6)
                self._remaining -= item_len + 4
                n = item_len - 2
                if ctx not in self.contexts:
                    raise self._malformed(f"a PDV on presentation context {ctx}, which was not accepted", 6)
                if control & 1:  # command fragment
                    if cmd is not None:
                        raise self._malformed("a command fragment where the data set was expected", 5)
                    if cmd_parts and ctx != cmd_ctx:
                        raise self._malformed("command fragments on different presentation contexts", 5)
                    cmd_size += n
                    if cmd_size > MAX_COMMAND:
                        raise self._malformed("a DIMSE command set larger than 64 KiB", 6)
                    cmd_ctx = ctx
                    cmd_parts.append(chan.take(n))
                    if not control & 2:
                        continue
                    try:
                        cmd = parse_command(b"".join(cmd_parts))
                    except Malformed as exc:
                        raise self._malformed(str(exc), 6) from None
                    if not cmd.has_dataset:
                        return Message(context=ctx, command=cmd)
                    if store is not None and cmd.field == C_STORE_RQ:
                        got = store(cmd, ctx)
                        if isinstance(got, int):
                            refused = got
                        else:
                            sink = got
                    else:
                        data_parts = []
                else:  # data set fragment
                    if cmd is None or ctx != cmd_ctx:
                        raise self._malformed("a data set fragment without its command", 5)
                    if sink is not None:
                        chan.pour(n, sink.write)
                    elif data_parts is not None:
                        data_size += n
                        if data_size > MAX_IDENTIFIER:
                            raise self._malformed("a non-C-STORE data set larger than 64 MiB", 6)
                        data_parts.append(chan.take(n))
                    else:
                        chan.skip(n)
                    if control & 2:
                        data = b"".join(data_parts) if data_parts is not None else None
                        msg = Message(context=ctx, command=cmd, data=data, sink=sink, refused=refused)
                        sink = None
                        return msg
        finally:
            if sink is not None:  # an error before the data set was complete: no partial file
                sink.discard()

    def _control_pdu(self, kind: int, length: int) -> Message:
        chan = self.chan
        if kind in (A_RELEASE_RQ, A_RELEASE_RP, A_ABORT):
            if length != 4:
                raise self._malformed(f"a PDU of type 0x{kind:02X} with length {length}", 6)
            body = chan.take(4)
            if kind == A_ABORT:
                chan.close()
                raise Aborted(body[2], body[3])
            return Message(kind="release" if kind == A_RELEASE_RQ else "release-rp")
        if kind in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ):
            raise self._malformed(f"an unexpected A-ASSOCIATE PDU (type 0x{kind:02X}) in the association", 2)
        raise self._malformed(f"an unrecognised PDU type 0x{kind:02X}", 1)

    # -- services --------------------------------------------------------------------------------------------
    def context_for_syntax(self, abstract: str, transfer_syntax: str) -> int | None:
        """The accepted presentation context for an abstract syntax in one transfer syntax, or None."""
        for cid, pair in self.contexts.items():
            if pair == (abstract, transfer_syntax):
                return cid
        return None

    def c_store(self, context: int, sop_class: str, sop_uid: str, dataset: bytes) -> int:
        """C-STORE one data set (already encoded in the context's transfer syntax); returns the status."""
        mid = self.next_message_id()
        self.send(context, {AFFECTED_SOP_CLASS: sop_class, COMMAND_FIELD: C_STORE_RQ, MESSAGE_ID: mid,
                            PRIORITY: 0, DATASET_TYPE: 0x0000, AFFECTED_SOP_INSTANCE: sop_uid}, dataset)
        while True:
            msg = self.receive(lambda cmd, cid: 0xA700)  # a C-STORE from the peer here: drained, refused
            if msg.kind != "dimse":
                raise ConnectionLost("the peer released the association during C-STORE")
            if msg.command.field == C_STORE_RSP and msg.command.us(RESPONDED_TO) == mid:
                return msg.command.status

    def c_echo(self) -> int:
        ctx = self.context_for(VERIFICATION)
        if ctx is None:
            raise NotAssociated("rejected", "the Verification presentation context was not accepted")
        mid = self.next_message_id()
        self.send(ctx, {AFFECTED_SOP_CLASS: VERIFICATION, COMMAND_FIELD: C_ECHO_RQ, MESSAGE_ID: mid,
                        DATASET_TYPE: NO_DATASET})
        while True:
            msg = self.receive()
            if msg.kind != "dimse":
                raise ConnectionLost("the peer released the association during C-ECHO")
            if msg.command.field == C_ECHO_RSP and msg.command.us(RESPONDED_TO) == mid:
                return msg.command.status

    def _identifier(self, ctx: int, ds: Any) -> bytes:
        from pynetdicom.dsutils import encode

        implicit = self.contexts[ctx][1] == IMPLICIT_LE
        raw = encode(ds, implicit, True)
        if raw is None:
            raise ValueError("the identifier could not be encoded")
        return raw

    def retrieve(self, kind: str, ds: Any, folder: str | os.PathLike[str], *, destination: str = "",
                 model: str | None = None, on_stored: Callable[[Path, int], None] | None = None,
                 on_pending: Callable[[Command], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_store_error: Callable[[str], None] | None = None) -> Command:
        """C-GET (``kind="get"``, the C-STORE sub-operations come on this association and are written into
        ``folder``) or C-MOVE (``"move"`` to ``destination``; they come to another AE); returns the final
        response.  ``should_stop()`` is asked before each instance and while waiting: True aborts
        (:class:`Stopped`)."""
        get = kind == "get"
        model = model or (GET_STUDY_ROOT if get else MOVE_STUDY_ROOT)
        ctx = self.context_for(model)
        if ctx is None:
            raise NotAssociated("rejected", f"the C-{kind.upper()} presentation context was not accepted")
        mid = self.next_message_id()
        fields = {AFFECTED_SOP_CLASS: model, COMMAND_FIELD: C_GET_RQ if get else C_MOVE_RQ, MESSAGE_ID: mid,
                  PRIORITY: 0, DATASET_TYPE: 0x0001}
        if not get:
            fields[MOVE_DESTINATION] = destination
        rsp_field = C_GET_RSP if get else C_MOVE_RSP
        self.send(ctx, fields, self._identifier(ctx, ds))
        folder = os.fspath(folder)
        chan = self.chan

        def stop_check() -> None:
            if should_stop is not None and should_stop():
                self.abort()
                raise Stopped("stopped on request")

        def store(cmd: Command, cid: int) -> FileSink | int:
            stop_check()
            return _open_sink(folder, cmd, self.contexts[cid], on_store_error)

        previous = chan.tick
        if should_stop is not None:
            chan.tick = stop_check
        try:
            while True:
                msg = self.receive(store if get else None)
                if msg.kind != "dimse":
                    if msg.kind == "release":
                        chan.send(RELEASE_RP)
                    raise ConnectionLost("the peer released the association before the final response")
                cmd = msg.command
                f = cmd.field
                if f == C_STORE_RQ and get:
                    path, size, status = _finish_store(msg, on_store_error)
                    self.send(msg.context, _store_rsp(cmd, status))
                    if path is not None and on_stored is not None:
                        on_stored(path, size)
                elif f == rsp_field and cmd.us(RESPONDED_TO) == mid:
                    if cmd.status in _PENDING:
                        if on_pending is not None:
                            on_pending(cmd)
                        continue
                    return cmd
                # anything else (a stray response): ignored
        finally:
            chan.tick = previous


def _open_sink(folder: str, cmd: Command, context: tuple,
               on_error: Callable[[str], None] | None) -> FileSink | int:
    """A FileSink for a C-STORE-RQ, or the failure status to answer (its data set is then drained)."""
    sop_class = cmd.text(AFFECTED_SOP_CLASS)
    sop_uid = cmd.text(AFFECTED_SOP_INSTANCE)
    if not valid_uid(sop_uid) or not valid_uid(sop_class):
        if on_error is not None:
            on_error(f"a C-STORE with an invalid SOP Instance/Class UID {sop_uid!r}/{sop_class!r} refused")
        return 0xC000  # cannot understand
    try:
        return FileSink(folder, sop_class, sop_uid, context[1])
    except OSError as exc:
        if on_error is not None:
            on_error(f"cannot write {sop_uid}: {exc.strerror or exc}")
        return 0xA700  # out of resources


def _finish_store(msg: Message, on_error: Callable[[str], None] | None) -> tuple:
    """(path or None, bytes, status) for a received C-STORE-RQ."""
    if msg.sink is None:
        return None, 0, msg.refused or 0xA700
    try:
        path = msg.sink.commit()
    except OSError as exc:
        if on_error is not None:
            on_error(f"cannot write {msg.command.text(AFFECTED_SOP_INSTANCE)}: {exc.strerror or exc}")
        return None, 0, 0xA700
    return path, msg.sink.size, 0x0000


def _store_rsp(cmd: Command, status: int) -> bytes:
    return encode_command({AFFECTED_SOP_CLASS: cmd.text(AFFECTED_SOP_CLASS), COMMAND_FIELD: C_STORE_RSP,
                           RESPONDED_TO: cmd.us(MESSAGE_ID), DATASET_TYPE: NO_DATASET, STATUS: status,
                           AFFECTED_SOP_INSTANCE: cmd.text(AFFECTED_SOP_INSTANCE)})


# -- requestor -----------------------------------------------------------------------------------------------
def associate(host: str, port: int, called_ae: str, calling_ae: str, contexts: Sequence[tuple], *,
              roles: Sequence[tuple] = (), timeout: float = 30.0, connect_timeout: float = 10.0,
              max_pdu: int = 0) -> Association:
    """Open an association.  ``contexts``: ``(abstract syntax, [transfer syntaxes])`` (at most 128),
    ``roles``: ``(SOP class, SCU role, SCP role)``.  Raises :class:`Refused` (no TCP connection) or
    :class:`NotAssociated` (rejected, aborted, closed or no answer within ``timeout``)."""
    if len(contexts) > 128:
        raise ValueError("at most 128 presentation contexts per association")
    try:
        sock = socket.create_connection((host, int(port)), timeout=connect_timeout)
    except OSError as exc:
        raise Refused(exc.strerror or str(exc)) from None
    chan = _Channel(sock, timeout)
    proposed = [(2 * i + 1, abstract, list(syntaxes)) for i, (abstract, syntaxes) in enumerate(contexts)]
    try:
        chan.send(encode_associate_rq(called_ae, calling_ae, proposed, max_pdu, roles))
        kind, _, length = chan.header(">BBI", 6)
        if kind == A_ASSOCIATE_RJ and length == 4:
            body = chan.take(4)
            chan.close()
            result, source, reason = body[1], body[2], body[3]
            text = _REJECT_REASONS.get(source, {}).get(reason, f"source {source}, reason {reason}")
            raise NotAssociated("rejected", text + (" (transient)" if result == 2 else ""))
        if kind == A_ABORT and length == 4:
            body = chan.take(4)
            chan.close()
            raise NotAssociated("aborted", ABORT_REASONS.get(body[3], ""))
        if kind != A_ASSOCIATE_AC or length > MAX_CONTROL_PDU:
            chan.abort(2, 2)
            raise NotAssociated("aborted", f"the peer answered with a PDU of type 0x{kind:02X}")
        try:
            info = parse_associate(chan.take(length), request=False)
        except Malformed as exc:
            chan.abort(2, 6)
            raise NotAssociated("aborted", f"malformed A-ASSOCIATE-AC: {exc}") from None
    except Timeout:
        chan.abort(2, 0)
        raise NotAssociated("timed out", f"no answer to the association request in {timeout:g} s") from None
    except ConnectionLost:
        chan.close()
        raise NotAssociated("closed", "the peer closed the connection") from None
    offered = {cid: (abstract, syntaxes) for cid, abstract, syntaxes in proposed}
    accepted = {}
    for cid, (result, ts) in info.contexts.items():
        if result == 0 and cid in offered and ts in offered[cid][1]:
            accepted[cid] = (offered[cid][0], ts)
    return Association(chan, accepted, info.max_pdu, requestor=True)


# -- acceptor (C-STORE SCP) ----------------------------------------------------------------------------------
class StoreSCP:
    """A C-STORE (and Verification) SCP: one listening socket, one thread per association.

    Received instances are streamed to ``folder`` (see :class:`FileSink`); ``on_stored(path, size)``
    runs after each one (before its C-STORE-RSP goes out).  ``sop_classes`` limits the storage SOP
    classes accepted (default: every storage class); each presentation context is accepted with the
    first of ``transfer_syntaxes`` (the preference order) that the requestor offers, else the first it
    offers.  ``should_stop()`` (optional) is asked before each instance: True aborts that association.
    """

    def __init__(self, ae_title: str, port: int = 0, folder: str | os.PathLike[str] = ".", *,
                 host: str = "0.0.0.0", require_called_aet: bool = True, sop_classes: Sequence[str] = (),
                 storage_classes: Sequence[str] = (), transfer_syntaxes: Sequence[str] = (),
                 on_stored: Callable[[Path, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 timeout: float = 60.0, artim: float = 30.0, max_pdu: int = 0) -> None:
        self.ae_title = ae_title
        self.host = host
        self.requested_port = int(port)
        self.port = int(port)
        self.folder = os.fspath(folder)
        self.require_called_aet = require_called_aet
        self.sop_classes = frozenset(sop_classes)
        self.storage_classes = frozenset(storage_classes)
        self.transfer_syntaxes = list(transfer_syntaxes) or [EXPLICIT_LE, IMPLICIT_LE]
        self.on_stored = on_stored
        self.should_stop = should_stop
        self.on_error = on_error
        self.timeout = float(timeout)
        self.artim = float(artim)
        self.max_pdu = int(max_pdu)
        #: time.monotonic() of the last data received on any association (for a C-MOVE's idle timeout)
        self.last_activity = time.monotonic()
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active: dict = {}  # thread -> channel

    @property
    def running(self) -> bool:
        return self._sock is not None

    def start(self) -> StoreSCP:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(16)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, name=f"medio-scp-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting; give running associations ``grace`` seconds to end, then close them (a data set
        cut short leaves no file)."""
        if self._sock is None:
            return
        sock, self._sock = self._sock, None
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        sock.close()
        for s in (self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass
        deadline = time.monotonic() + grace
        with self._lock:
            threads = list(self._active)
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            left = list(self._active.items())
        for t, chan in left:
            chan.close()
            t.join(timeout=5)

    def _accept_loop(self) -> None:
        sock, wake = self._sock, self._wake_r
        while True:
            try:
                ready, _, _ = select.select([sock, wake], [], [])
            except (OSError, ValueError):
                return
            if wake in ready or self._sock is None:
                return
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.setblocking(True)
            t = threading.Thread(target=self._serve, args=(conn,), name=f"medio-scp-assoc-{self.port}",
                                 daemon=True)
            chan = _Channel(conn, self.artim)
            with self._lock:
                self._active[t] = chan
            t.start()

    def _error(self, text: str) -> None:
        if self.on_error is not None:
            try:
                self.on_error(text)
            except Exception:
                pass

    def _accepts(self, abstract: str) -> bool:
        if abstract == VERIFICATION:
            return True
        if self.sop_classes:
            return abstract in self.sop_classes
        return abstract in self.storage_classes or abstract.startswith("1.2.840.10008.5.1.4.1.1.")

    def _negotiate(self, info: AssociateInfo) -> tuple[bytes, dict]:
        """(A-ASSOCIATE-AC or -RJ PDU, accepted contexts)."""
        if info.protocol & 1 == 0:
            return encode_associate_rj(1, 2, 2), {}
        if info.application_context != APPLICATION_CONTEXT:
            return encode_associate_rj(1, 1, 2), {}
        called = info.called.decode("ascii", "replace").strip()
        if self.require_called_aet and called != self.ae_title.strip():
            return encode_associate_rj(1, 1, 7), {}
        results, accepted = [], {}
        for cid, (abstract, offered) in info.contexts.items():
            if not self._accepts(abstract):
                results.append((cid, 3, offered[0] if offered else IMPLICIT_LE))
                continue
            ts = next((t for t in self.transfer_syntaxes if t in offered), None)
            if ts is None and abstract != VERIFICATION:
                ts = offered[0] if offered else None  # stored as received: any syntax will do
            if ts is None:
                results.append((cid, 4, offered[0] if offered else IMPLICIT_LE))
                continue
            results.append((cid, 0, ts))
            accepted[cid] = (abstract, ts)
        return encode_associate_ac(info.called, info.calling, results, self.max_pdu), accepted

    def _serve(self, conn: socket.socket) -> None:
        me = threading.current_thread()
        with self._lock:
            chan = self._active[me]
        try:
            self._serve_association(chan)
        except Malformed as exc:
            self._error(f"association aborted: malformed data from the sender ({exc})")
        except Aborted:
            pass
        except (ConnectionLost, Timeout, Stopped) as exc:
            if not isinstance(exc, ConnectionLost):
                chan.abort(2, 0)
        except Exception as exc:  # a bug or an OS error: never kill the listener
            self._error(f"association failed: {exc}")
            chan.abort(2, 0)
        finally:
            chan.close()
            with self._lock:
                self._active.pop(me, None)

    def _serve_association(self, chan: _Channel) -> None:
        kind, _, length = chan.header(">BBI", 6)  # within ARTIM
        if kind != A_ASSOCIATE_RQ or length > MAX_CONTROL_PDU:
            chan.abort(2, 2 if kind in range(1, 8) else 1)
            raise Malformed(f"expected an A-ASSOCIATE-RQ, got a PDU of type 0x{kind:02X}")
        try:
            info = parse_associate(chan.take(length), request=True)
        except Malformed:
            chan.abort(2, 6)
            raise
        answer, accepted = self._negotiate(info)
        chan.send(answer)
        if answer[0] != A_ASSOCIATE_AC:
            chan.close()
            return
        chan.timeout = self.timeout
        assoc = Association(chan, accepted, info.max_pdu, requestor=False)
        folder = self.folder

        def store(cmd: Command, cid: int) -> FileSink | int:
            if self.should_stop is not None and self.should_stop():
                assoc.abort()
                raise Stopped("stopped on request")
            if accepted[cid][0] == VERIFICATION:
                return 0x0122  # SOP class not supported
            return _open_sink(folder, cmd, accepted[cid], self._error)

        while True:
            msg = assoc.receive(store)
            self.last_activity = time.monotonic()
            if msg.kind == "release":
                chan.send(RELEASE_RP)
                chan.close()
                return
            if msg.kind != "dimse":
                continue
            cmd = msg.command
            f = cmd.field
            if f == C_STORE_RQ:
                path, size, status = _finish_store(msg, self._error)
                if path is not None and self.on_stored is not None:
                    try:
                        self.on_stored(path, size)
                    except Exception as exc:
                        self._error(f"after receiving {path.name}: {exc}")
                assoc.send(msg.context, _store_rsp(cmd, status))
            elif f == C_ECHO_RQ:
                assoc.send(msg.context, {AFFECTED_SOP_CLASS: cmd.text(AFFECTED_SOP_CLASS) or VERIFICATION,
                                         COMMAND_FIELD: C_ECHO_RSP, RESPONDED_TO: cmd.us(MESSAGE_ID),
                                         DATASET_TYPE: NO_DATASET, STATUS: 0x0000})
            elif f == C_CANCEL_RQ:
                continue
            else:  # a service we do not provide on a storage association
                raise assoc._malformed(f"an unsupported DIMSE command 0x{f:04X} on a storage association")

    def __enter__(self) -> StoreSCP:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

