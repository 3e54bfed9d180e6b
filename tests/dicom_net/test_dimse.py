"""The DIMSE receive path (dicom/dimse.py): PDU and command codecs, the receive loop fed in awkward pieces,
malformed and aborted peers, interoperation with pynetdicom and dcmtk, and C-GET / C-MOVE / listener against
Orthanc writing the same files, byte for byte, as plain pynetdicom."""
from __future__ import annotations

import io
import os
import random
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest

from napari_medio.core.errors import CancelledError
from napari_medio.dicom import dimse
from napari_medio.dicom.dimse import (
    AFFECTED_SOP_CLASS,
    AFFECTED_SOP_INSTANCE,
    COMMAND_FIELD,
    DATASET_TYPE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    MESSAGE_ID,
    NO_DATASET,
    PRIORITY,
    RESPONDED_TO,
    STATUS,
)
from napari_medio.dicom.network import DicomNode, DimseClient, PacsError, StorageListener

from .conftest import free_port, pynetdicom_get, pynetdicom_listener, require_tool, start_orthanc

CT = "1.2.840.10008.5.1.4.1.1.2"


def _store_rq(uid: str = "1.2.3.4", mid: int = 7) -> dict:
    return {AFFECTED_SOP_CLASS: CT, COMMAND_FIELD: dimse.C_STORE_RQ, MESSAGE_ID: mid, PRIORITY: 0,
            DATASET_TYPE: 0x0001, AFFECTED_SOP_INSTANCE: uid}


# -- codecs --------------------------------------------------------------------------------------------------
def test_command_encoding_matches_pydicom():
    from pydicom.dataset import Dataset
    from pynetdicom.dsutils import encode

    fields = _store_rq("1.2.840.99.1")  # odd-length UIDs get a NUL pad
    raw = dimse.encode_command(fields)
    ds = Dataset()
    ds.AffectedSOPClassUID = CT
    ds.CommandField = dimse.C_STORE_RQ
    ds.MessageID = 7
    ds.Priority = 0
    ds.CommandDataSetType = 1
    ds.AffectedSOPInstanceUID = "1.2.840.99.1"
    body = encode(ds, True, True)
    assert raw == struct.pack("<HHII", 0, 0, 4, len(body)) + body
    cmd = dimse.parse_command(raw)
    assert cmd.field == dimse.C_STORE_RQ and cmd.us(MESSAGE_ID) == 7 and cmd.has_dataset
    assert cmd.text(AFFECTED_SOP_INSTANCE) == "1.2.840.99.1" and cmd.text(AFFECTED_SOP_CLASS) == CT
    # a C-MOVE-RQ's move destination (AE) is space padded
    move = dimse.encode_command({COMMAND_FIELD: dimse.C_MOVE_RQ, dimse.MOVE_DESTINATION: "ABC"})
    assert b"ABC " in move and dimse.parse_command(move).text(dimse.MOVE_DESTINATION) == "ABC"


def test_part10_header_matches_pynetdicom():
    from pydicom.dataset import FileMetaDataset
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.dsutils import encode_file_meta

    for sop, inst, ts in [(CT, "1.2.3.45", EXPLICIT_LE), ("1.2.840.10008.5.1.4.1.1.66.4", "2.25.1234567", IMPLICIT_LE)]:
        fm = FileMetaDataset()
        fm.FileMetaInformationVersion = b"\0\1"
        fm.MediaStorageSOPClassUID = sop
        fm.MediaStorageSOPInstanceUID = inst
        fm.TransferSyntaxUID = ts
        fm.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
        fm.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
        assert dimse.part10_header(sop, inst, ts) == b"\0" * 128 + b"DICM" + encode_file_meta(fm)


def test_command_parse_rejects_malformed():
    raw = dimse.encode_command(_store_rq())
    with pytest.raises(dimse.Malformed):
        dimse.parse_command(raw[:-3])  # truncated value
    with pytest.raises(dimse.Malformed):
        dimse.parse_command(raw[:5])  # truncated element header
    with pytest.raises(dimse.Malformed):
        dimse.parse_command(struct.pack("<HHI", 8, 0x18, 2) + b"CT")  # not group 0000
    with pytest.raises(dimse.Malformed):
        dimse.parse_command(struct.pack("<HHI", 0, 0x110, 2) + b"\1\0")  # no Command Field


def test_associate_rq_decodes_in_pynetdicom():
    from pynetdicom.pdu import A_ASSOCIATE_RQ

    contexts = [(1, dimse.GET_STUDY_ROOT, [IMPLICIT_LE, EXPLICIT_LE]),
                (3, CT, [EXPLICIT_LE, "1.2.840.10008.1.2.4.50"])]
    raw = dimse.encode_associate_rq("ORTHANC", "MEDIO", contexts, 4097, roles=[(CT, 0, 1)])
    pdu = A_ASSOCIATE_RQ()
    pdu.decode(raw)
    assert pdu.called_ae_title.strip() == "ORTHANC" and pdu.calling_ae_title.strip() == "MEDIO"
    got = {cx.context_id: (str(cx.abstract_syntax), [str(t) for t in cx.transfer_syntax])
           for cx in pdu.presentation_context}
    assert got == {cid: (a, t) for cid, a, t in contexts}
    user = {type(i).__name__: i for i in pdu.user_information.user_data}
    assert user["MaximumLengthSubItem"].maximum_length_received == 4097
    assert str(user["ImplementationClassUIDSubItem"].implementation_class_uid) == dimse.IMPLEMENTATION_UID
    role = user["SCP_SCU_RoleSelectionSubItem"]
    assert str(role.sop_class_uid) == CT and not role.scu_role and role.scp_role
    # and our parser reads it back
    info = dimse.parse_associate(raw[6:], request=True)
    assert info.contexts == {cid: (a, t) for cid, a, t in contexts}
    assert info.max_pdu == 4097 and info.roles == {CT: (0, 1)}
    assert info.implementation_version == dimse.implementation_version()


def test_associate_ac_rj_abort_release_and_p_data_layout():
    results = [(1, 0, EXPLICIT_LE), (3, 3, IMPLICIT_LE)]
    ac = dimse.encode_associate_ac(b"ME".ljust(16), b"YOU".ljust(16), results, 0)
    assert ac[0] == dimse.A_ASSOCIATE_AC and struct.unpack(">I", ac[2:6])[0] == len(ac) - 6
    info = dimse.parse_associate(ac[6:], request=False)
    assert info.contexts == {1: (0, EXPLICIT_LE), 3: (3, IMPLICIT_LE)} and info.max_pdu == 0
    assert info.called.strip() == b"ME" and info.application_context == dimse.APPLICATION_CONTEXT
    assert dimse.encode_associate_rj(1, 1, 7) == b"\x03\0\0\0\0\x04\0\x01\x01\x07"
    assert dimse.encode_abort(2, 1) == b"\x07\0\0\0\0\x04\0\0\x02\x01"
    assert dimse.RELEASE_RQ == b"\x05\0\0\0\0\x04\0\0\0\0" and dimse.RELEASE_RP[0] == 6
    assert dimse.encode_p_data([(5, 3, b"abcd")]) == b"\x04\0\0\0\0\x0a" + b"\0\0\0\x06\x05\x03abcd"
    with pytest.raises(dimse.Malformed):
        dimse.parse_associate(ac[6:-3], request=False)  # an item running past the PDU


# -- the receive loop, over a socket pair --------------------------------------------------------------------
def _pair(contexts=None, peer_max=0):
    a, b = socket.socketpair()
    contexts = contexts or {1: (CT, EXPLICIT_LE)}
    assoc = dimse.Association(dimse._Channel(a, 10), contexts, peer_max, requestor=False)
    return assoc, b


def _send_in_pieces(sock, data: bytes, seed: int = 0, close: bool = False) -> threading.Thread:
    def run():
        rng = random.Random(seed)
        off = 0
        while off < len(data):
            n = rng.choice((1, 2, 3, 5, 7, 64, 1000, 70000))
            sock.sendall(data[off:off + n])
            off += n
        if close:
            sock.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _sink_factory(folder):
    def store(cmd, cid):
        sop_class, sop_uid = cmd.text(AFFECTED_SOP_CLASS), cmd.text(AFFECTED_SOP_INSTANCE)
        return dimse.FileSink(folder, sop_class, sop_uid, EXPLICIT_LE)

    return store


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fragmented_data_set_across_pdvs_and_pdus(tmp_path, seed):
    """Command in three fragments, the last sharing a PDU with the first data fragment; the data set in PDVs
    of odd sizes, several per PDU; the bytes delivered in pieces of 1 byte to 70 kB."""
    rng = random.Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(150_001)) + b"\0"
    cmd = dimse.encode_command(_store_rq("1.2.3.4"))
    pdus = [dimse.encode_p_data([(1, 1, cmd[:10])]), dimse.encode_p_data([(1, 1, cmd[10:30])]),
            dimse.encode_p_data([(1, 3, cmd[30:]), (1, 0, data[:1])])]
    off = 1
    while off < len(data):
        pdvs = []
        for _ in range(rng.randint(1, 4)):
            n = rng.choice((1, 17, 4091, 16378, 40000))
            last = off + n >= len(data)
            pdvs.append((1, 2 if last else 0, data[off:off + n]))
            off += n
            if last:
                break
        pdus.append(dimse.encode_p_data(pdvs))
    echo = dimse.encode_command({AFFECTED_SOP_CLASS: dimse.VERIFICATION, COMMAND_FIELD: dimse.C_ECHO_RQ,
                                 MESSAGE_ID: 8, DATASET_TYPE: NO_DATASET})
    pdus.append(dimse.encode_p_data([(1, 3, echo)]) + dimse.RELEASE_RQ)
    assoc, peer = _pair()
    t = _send_in_pieces(peer, b"".join(pdus), seed)
    msg = assoc.receive(_sink_factory(tmp_path))
    assert msg.command.field == dimse.C_STORE_RQ and msg.sink is not None
    path = msg.sink.commit()
    assert path == tmp_path / "1.2.3.4.dcm"
    assert path.read_bytes() == dimse.part10_header(CT, "1.2.3.4", EXPLICIT_LE) + data
    assert assoc.receive().command.field == dimse.C_ECHO_RQ  # the next message, same buffer
    assert assoc.receive().kind == "release"
    t.join()
    assert [p.name for p in tmp_path.iterdir()] == ["1.2.3.4.dcm"]
    peer.close()
    assoc.close()


@pytest.mark.parametrize("peer_max", [0, 7, 17, 4097, 16384])
def test_send_respects_odd_peer_max_pdu(peer_max):
    """Our messages are fragmented to the peer's maximum PDU (checked on the wire) and reassemble."""
    a, b = socket.socketpair()
    sender = dimse.Association(dimse._Channel(a, 10), {1: (CT, EXPLICIT_LE)}, peer_max, requestor=True)
    data = os.urandom(20_001)
    wire = bytearray()

    def read():
        while chunk := b.recv(1 << 20):
            wire.extend(chunk)

    t = threading.Thread(target=read)
    t.start()
    sender.send(1, _store_rq(), data)
    a.shutdown(socket.SHUT_WR)
    t.join(30)
    off = 0
    while off < len(wire):
        length = struct.unpack_from(">I", wire, off + 2)[0]
        if peer_max > 6:
            assert length <= peer_max
        off += 6 + length
    assert off == len(wire)
    c, d = socket.socketpair()
    receiver = dimse.Association(dimse._Channel(c, 10), {1: (CT, EXPLICIT_LE)}, 0, requestor=False)
    t = _send_in_pieces(d, bytes(wire), close=True)
    msg = receiver.receive()
    t.join(30)
    assert msg.command.text(AFFECTED_SOP_INSTANCE) == "1.2.3.4" and msg.data == data
    for s in (a, b, c, d):
        s.close()


@pytest.mark.parametrize("garbage,reason", [
    (b"\x42\0\0\0\0\x04abcd", 1),                                            # unknown PDU type
    (dimse.encode_p_data([(9, 3, b"x" * 10)]), 6),                           # a context not accepted
    (b"\x04\0\0\0\0\x0a\0\0\0\x30\x01\x03abcd", 6),                          # PDV longer than its PDU
    (dimse.encode_p_data([(1, 2, b"data before any command")]), 5),          # data without a command
    (dimse.encode_p_data([(1, 3, b"\x08\0\x18\0\x02\0\0\0CT")]), 6),         # command outside group 0000
    (dimse.encode_associate_rj(1, 1, 1), 2),                                 # an A-ASSOCIATE PDU
])
def test_malformed_pdus_abort(tmp_path, garbage, reason):
    assoc, peer = _pair()
    peer.sendall(garbage)
    with pytest.raises(dimse.Malformed):
        assoc.receive(_sink_factory(tmp_path))
    peer.settimeout(5)
    assert peer.recv(100) == dimse.encode_abort(2, reason)  # the peer is told, then the connection closes
    assert peer.recv(100) == b""
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("how", ["abort", "close", "malformed"])
def test_cut_mid_data_set_leaves_no_file(tmp_path, how):
    cmd = dimse.encode_command(_store_rq("1.2.3.5"))
    head = dimse.encode_p_data([(1, 3, cmd)]) + dimse.encode_p_data([(1, 0, b"x" * 100_000)])
    tail = {"abort": dimse.encode_abort(0, 0), "close": b"", "malformed": b"\x04\0\0\0\0\x02\0\0"}[how]
    assoc, peer = _pair()
    t = _send_in_pieces(peer, head + tail, close=True)
    expected = {"abort": dimse.Aborted, "close": dimse.ConnectionLost, "malformed": dimse.Malformed}[how]
    with pytest.raises(expected):
        assoc.receive(_sink_factory(tmp_path))
    t.join()
    assert not list(tmp_path.iterdir())  # neither the .dcm nor its .part


def test_timeout_and_tick(tmp_path):
    assoc, peer = _pair()
    assoc.chan.timeout = 0.3
    t0 = time.monotonic()
    with pytest.raises(dimse.Timeout):
        assoc.receive()
    assert 0.25 < time.monotonic() - t0 < 3
    assoc, peer = _pair()
    ticks = []

    def tick():
        if len(ticks) == 3:
            raise dimse.Stopped("cancelled")
        ticks.append(1)

    assoc.chan.tick = tick
    assoc.chan.tick_interval = 0.02
    with pytest.raises(dimse.Stopped):
        assoc.receive()
    assert len(ticks) == 3


def test_file_sink_and_uid_checks(tmp_path):
    assert dimse.valid_uid("1.2.840.10008.1")
    assert not dimse.valid_uid("../../etc") and not dimse.valid_uid("1.2.")
    assert not dimse.valid_uid("1" * 65)
    cmd = dimse.parse_command(dimse.encode_command(_store_rq("../evil")))
    errors = []
    assert dimse._open_sink(os.fspath(tmp_path), cmd, (CT, EXPLICIT_LE), errors.append) == 0xC000
    assert errors and not list(tmp_path.iterdir())
    sink = dimse.FileSink(tmp_path, CT, "1.2.9", EXPLICIT_LE)
    sink.write(b"abc")
    sink.discard()
    assert not list(tmp_path.iterdir())


# -- interoperation: pynetdicom and dcmtk peers --------------------------------------------------------------
def test_our_requestor_with_a_pynetdicom_acceptor():
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="PYNET")
    ae.add_supported_context(Verification)
    server = ae.start_server(("127.0.0.1", 0), block=False)
    try:
        port = server.server_address[1]
        assoc = dimse.associate("127.0.0.1", port, "PYNET", "MEDIO", [(dimse.VERIFICATION, [IMPLICIT_LE])],
                                max_pdu=4097)
        assert assoc.c_echo() == 0x0000
        assert assoc.c_echo() == 0x0000
        assoc.release()
        assert assoc.released
        ae.require_called_aet = True
        with pytest.raises(dimse.NotAssociated, match="Called AE title not recognised") as info:
            dimse.associate("127.0.0.1", port, "NOTME", "MEDIO", [(dimse.VERIFICATION, [IMPLICIT_LE])])
        assert info.value.how == "rejected"
    finally:
        server.shutdown()
    with pytest.raises(dimse.Refused):
        dimse.associate("127.0.0.1", free_port(), "X", "Y", [(dimse.VERIFICATION, [IMPLICIT_LE])],
                        connect_timeout=2)


def _received_by_pynetdicom(folder, send):
    """What plain pynetdicom's C-STORE SCP writes for what ``send(port)`` sends it."""
    server = pynetdicom_listener(folder)
    try:
        send(server.server_address[1])
    finally:
        server.shutdown()
    return {p.name: p.read_bytes() for p in folder.glob("*.dcm")}


@pytest.mark.parametrize("max_pdu", [0, 4101, 16384])
def test_listener_writes_what_pynetdicom_writes(tmp_path, ct_series, max_pdu):
    """pynetdicom's C-STORE SCU sends to the listener (odd maximum PDU sizes: many fragments) and to a plain
    pynetdicom SCP: the same files, byte for byte."""
    files = sorted(p for p in ct_series.iterdir() if p.is_file())[:12]

    def send(port):
        client = DimseClient(DicomNode("MEDIO", "127.0.0.1", port))
        assert client.echo() < 5
        assert client.send(files) == {"sent": 12, "failed": {}}

    with StorageListener(ae_title="MEDIO", port=0, folder=tmp_path / "medio", host="127.0.0.1") as listener:
        listener._server.max_pdu = max_pdu
        send(listener.port)
        assert len(listener.received) == 12 and not listener.errors
    ours = {p.name: p.read_bytes() for p in (tmp_path / "medio").glob("*.dcm")}
    assert len(ours) == 12 and ours == _received_by_pynetdicom(tmp_path / "ref", send)
    for data in ours.values():
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_listener_with_storescu(tmp_path, ct_series):
    storescu = require_tool("storescu")
    files = sorted(p for p in ct_series.iterdir() if p.is_file())[:8]

    def send(port):  # storescu proposes each SOP class with several transfer syntax groups; 4 kB PDUs
        run = subprocess.run([storescu, "-aet", "SCANNER", "-aec", "MEDIO", "-pdu", "4096", "127.0.0.1",
                              str(port), *map(os.fspath, files)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr

    with StorageListener(ae_title="MEDIO", port=0, folder=tmp_path / "medio", host="127.0.0.1") as listener:
        send(listener.port)
        bad = subprocess.run([storescu, "-aec", "NOTME", "127.0.0.1", str(listener.port),
                              os.fspath(files[0])], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "Called AE" in (bad.stdout + bad.stderr)
        assert len(listener.received) == 8
    ours = {p.name: p.read_bytes() for p in (tmp_path / "medio").glob("*.dcm")}
    assert len(ours) == 8 and ours == _received_by_pynetdicom(tmp_path / "ref", send)


def test_listener_survives_malformed_clients(tmp_path):
    with StorageListener(ae_title="MEDIO", port=0, folder=tmp_path, host="127.0.0.1") as listener:
        port = listener.port
        # garbage instead of an A-ASSOCIATE-RQ: aborted (unrecognised PDU)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.recv(100) == dimse.encode_abort(2, 1)
        # a valid association, then a P-DATA on a context that was not accepted
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(dimse.encode_associate_rq("MEDIO", "X", [(1, CT, [EXPLICIT_LE])]))
            ac = s.recv(65536)
            assert ac[0] == dimse.A_ASSOCIATE_AC
            s.sendall(dimse.encode_p_data([(3, 3, dimse.encode_command(_store_rq()))]))
            assert s.recv(100) == dimse.encode_abort(2, 6)
        # a client that connects and says nothing does not block the others
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            assert DimseClient(DicomNode("MEDIO", "127.0.0.1", port)).echo() < 5
        finally:
            idle.close()
        deadline = time.time() + 5
        while len(listener.errors) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert any("malformed" in e for e in listener.errors), listener.errors
    assert not list(tmp_path.iterdir())


def test_listener_negotiation(tmp_path):
    """Each context gets the first transfer syntax of the listener's preference the requestor offers, else the
    first it offers (stored as received); non-storage classes are refused."""
    with StorageListener(ae_title="MEDIO", port=0, folder=tmp_path, host="127.0.0.1") as listener:
        contexts = [(1, CT, ["1.2.840.10008.1.2.2", IMPLICIT_LE, EXPLICIT_LE]), (3, CT, ["1.2.3.4.5.6.7"]),
                    (5, dimse.FIND_STUDY_ROOT, [IMPLICIT_LE]), (7, dimse.VERIFICATION, [IMPLICIT_LE])]
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
            s.sendall(dimse.encode_associate_rq("MEDIO", "X", contexts))
            head = s.recv(6)
            ac = b""
            while len(ac) < struct.unpack(">I", head[2:])[0]:
                ac += s.recv(65536)
            info = dimse.parse_associate(ac, request=False)
            s.sendall(dimse.RELEASE_RQ)
            assert s.recv(10) == dimse.RELEASE_RP
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    first = next(t for t in ALL_TRANSFER_SYNTAXES if t in contexts[0][2])
    assert info.contexts[1] == (0, first)
    assert info.contexts[3] == (0, "1.2.3.4.5.6.7")
    assert info.contexts[5][0] == 3 and info.contexts[7] == (0, IMPLICIT_LE)


# -- against Orthanc -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(orthanc, ct_series):
    files = sorted(p for p in ct_series.iterdir() if p.is_file())
    assert DimseClient(orthanc.node()).send(files) == {"sent": 93, "failed": {}}
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    return {"study": str(ds.StudyInstanceUID), "series": str(ds.SeriesInstanceUID), "files": files}


def _tree(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_get_and_move_write_what_pynetdicom_writes(orthanc, loaded, tmp_path):
    ref = tmp_path / "pynetdicom"
    assert pynetdicom_get(orthanc.node(), loaded["study"], ref, sop_classes=[CT]) == 93
    expected = _tree(ref)
    for method in ("get", "move"):
        progress = []
        result = DimseClient(orthanc.node()).retrieve(loaded["study"], loaded["series"], dest=tmp_path / method,
                                                      method=method, move_port=orthanc.move_port,
                                                      progress=lambda d, t, seen=progress: seen.append((d, t)))
        assert result.completed == 93 and result.failed == 0 and len(result.files) == 93
        assert progress[-1][0] == 93
        tree = _tree(tmp_path / method)
        assert result.bytes == sum(len(v) for v in tree.values())
        assert tree == expected, method
    src = pydicom.dcmread(loaded["files"][0])
    got = pydicom.dcmread(tmp_path / "get" / f"{src.SOPInstanceUID}.dcm")
    assert got.PixelData == src.PixelData


@pytest.mark.parametrize("max_pdu", [4097, 16383])
def test_get_with_odd_max_pdu(orthanc, loaded, tmp_path, max_pdu):
    result = DimseClient(orthanc.node(), max_pdu=max_pdu).retrieve(loaded["study"], dest=tmp_path / "a")
    assert result.completed == 93
    assert pynetdicom_get(orthanc.node(), loaded["study"], tmp_path / "b", sop_classes=[CT], max_pdu=max_pdu) == 93
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_listener_receives_from_orthanc(orthanc, loaded, tmp_path):
    with StorageListener(ae_title="MEDIO", port=orthanc.move_port, folder=tmp_path / "in",
                         host="127.0.0.1") as lst:
        orthanc_id = orthanc.rest("POST", "/tools/lookup", data=loaded["series"])[0]["ID"]
        orthanc.rest("POST", "/modalities/medio/store", json={"Resources": [orthanc_id], "Synchronous": True})
        assert len(lst.received) == 93 and not lst.errors


@pytest.mark.parametrize("method", ["get", "move"])
def test_cancel(orthanc, loaded, tmp_path, method):
    calls = {"n": 0}

    def progress(done, total):
        calls["n"] = done

    with pytest.raises(CancelledError):
        DimseClient(orthanc.node()).retrieve(loaded["study"], dest=tmp_path, method=method,
                                             move_port=orthanc.move_port, progress=progress,
                                             cancel=lambda: calls["n"] >= 5)
    got = list(tmp_path.glob("*.dcm"))
    assert 5 <= len(got) < 93
    assert not list(tmp_path.glob(".medio-*"))
    for f in got:  # every file kept is complete
        assert pydicom.dcmread(f).PixelData


def test_association_faults(orthanc, loaded, tmp_path):
    with pytest.raises(PacsError, match="connection refused"):
        nobody = DimseClient(DicomNode("ORTHANC", "127.0.0.1", free_port()))
        nobody.retrieve(loaded["study"], dest=tmp_path)
    with pytest.raises(PacsError, match="rejected the association: Called AE title not recognised"):
        wrong = DicomNode("WRONG", "127.0.0.1", orthanc.dicom_port)
        DimseClient(wrong).retrieve(loaded["study"], dest=tmp_path)
    with pytest.raises(PacsError, match="aborted the association.*'STRANGER' a known modality"):
        stranger = DimseClient(orthanc.node(), calling_ae="STRANGER")
        stranger.retrieve(loaded["study"], dest=tmp_path, method="move", move_port=free_port())
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("method", ["get", "move"])
def test_server_killed_mid_retrieve(tmp_path, method):
    import numpy as np

    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume
    from napari_medio.dicom.export import ExportTags, export_volume

    arr = np.random.default_rng(5).integers(-1000, 2000, (60, 512, 512), dtype=np.int16)
    vol = Volume(arr, Geometry([0.7, 0.7, 1.0], [0, 0, 0], np.eye(3)))
    files = export_volume(vol, tmp_path / "src", ExportTags(patient_id="KILL", modality="CT"))
    server = start_orthanc(tmp_path / "orthanc")
    try:
        server.upload(files)
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)

        def progress(done, total):
            if done == 10:
                server.kill()

        with pytest.raises(PacsError, match="stopped after") as info:
            client = DimseClient(server.node(), timeout=10)
            client.retrieve(study, series, dest=tmp_path / "in", method=method, move_port=server.move_port,
                            progress=progress)
        assert "retrieving again completes the study" in str(info.value)
        got = list((tmp_path / "in").glob("*.dcm"))
        assert 10 <= len(got) < 60 and not list((tmp_path / "in").glob(".medio-*"))
        restarted = start_orthanc(tmp_path / "orthanc")
        try:
            client = DimseClient(restarted.node())
            result = client.retrieve(study, series, dest=tmp_path / "in", method=method,
                                     move_port=restarted.move_port)
            assert result.completed == 60
        finally:
            restarted.stop()
        assert len(list((tmp_path / "in").glob("*.dcm"))) == 60
    finally:
        server.kill()


# -- a fake PACS that misbehaves during C-GET ----------------------------------------------------------------
class _FakePacs:
    """Accepts one association (every context, first syntax), reads the C-GET-RQ, then runs
    ``script(socket, association, storage context id, C-GET context id)``."""

    def __init__(self, script):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            chan = dimse._Channel(conn, 10)
            kind, _, length = chan.header(">BBI", 6)
            info = dimse.parse_associate(chan.take(length), request=True)
            results = [(cid, 0, ts[0]) for cid, (a, ts) in info.contexts.items()]
            conn.sendall(dimse.encode_associate_ac(info.called, info.calling, results, 0))
            accepted = {cid: (a, ts[0]) for cid, (a, ts) in info.contexts.items()}
            assoc = dimse.Association(chan, accepted, info.max_pdu, requestor=False)
            msg = assoc.receive()
            assert msg.command.field == dimse.C_GET_RQ
            storage = next(cid for cid, (a, _) in accepted.items() if a != dimse.GET_STUDY_ROOT)
            try:
                self.script(conn, assoc, storage, msg.context)
            except OSError:
                pass

    def node(self):
        return DicomNode("FAKE", "127.0.0.1", self.port)


#: The data set the fake PACS sends with each C-STORE (a CT SOP Class UID element).
_CT_DATA = b"\x08\x00\x16\x00\x1a\x00\x00\x00" + CT.encode() + b"\0" * 2


def _store(assoc, ctx, uid, data=_CT_DATA):
    assoc.send(ctx, _store_rq(uid), data)


def test_fake_pacs_malformed_mid_get(tmp_path, monkeypatch):
    def script(conn, assoc, ctx, get_ctx):
        _store(assoc, ctx, "1.2.3.1")
        assert assoc.receive().command.field == dimse.C_STORE_RSP
        conn.sendall(dimse.encode_p_data([(ctx, 1, dimse.encode_command(_store_rq("1.2.3.2"))[:20])]))
        conn.sendall(b"\x09\0\0\0\0\x02xx")  # an unknown PDU type in the middle of the command
        time.sleep(0.5)

    pacs = _FakePacs(script)
    monkeypatch.setattr(DimseClient, "_study_sop_classes", lambda self, study: [CT])
    with pytest.raises(PacsError, match="malformed data .*unrecognised PDU type 0x09.*kept"):
        DimseClient(pacs.node()).retrieve("1.2.3", dest=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["1.2.3.1.dcm"]


def test_fake_pacs_aborts_mid_data_set(tmp_path, monkeypatch):
    def script(conn, assoc, ctx, get_ctx):
        _store(assoc, ctx, "1.2.3.1")
        assoc.receive()
        conn.sendall(dimse.encode_p_data([(ctx, 3, dimse.encode_command(_store_rq("1.2.3.2")))]))
        conn.sendall(dimse.encode_p_data([(ctx, 0, b"\0" * 5000)]))
        conn.sendall(dimse.encode_abort(2, 0))
        time.sleep(0.5)

    pacs = _FakePacs(script)
    monkeypatch.setattr(DimseClient, "_study_sop_classes", lambda self, study: [CT])
    with pytest.raises(PacsError, match="stopped after 1 instance.*aborted"):
        DimseClient(pacs.node()).retrieve("1.2.3", dest=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["1.2.3.1.dcm"]


def test_fake_pacs_final_status_and_counts(tmp_path, monkeypatch):
    def script(conn, assoc, ctx, get_ctx):
        for i in (1, 2):
            _store(assoc, ctx, f"1.2.3.{i}")
            assert assoc.receive().command.status == 0
            assoc.send(get_ctx, {COMMAND_FIELD: dimse.C_GET_RSP, RESPONDED_TO: 1, DATASET_TYPE: NO_DATASET,
                                 STATUS: 0xFF00, dimse.REMAINING: 2 - i, dimse.COMPLETED: i, dimse.FAILED: 0,
                                 dimse.WARNING: 0})
        assoc.send(get_ctx, {COMMAND_FIELD: dimse.C_GET_RSP, RESPONDED_TO: 1, DATASET_TYPE: NO_DATASET,
                             STATUS: 0x0000, dimse.COMPLETED: 2, dimse.FAILED: 0, dimse.WARNING: 0})
        assert assoc.receive().kind == "release"
        conn.sendall(dimse.RELEASE_RP)

    pacs = _FakePacs(script)
    monkeypatch.setattr(DimseClient, "_study_sop_classes", lambda self, study: [CT])
    progress = []
    result = DimseClient(pacs.node()).retrieve("1.2.3", dest=tmp_path,
                                               progress=lambda d, t: progress.append((d, t)))
    assert result.completed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.2.3.1.dcm", "1.2.3.2.dcm"]
    assert progress == [(1, 0), (2, 2)]
    pacs.thread.join(5)
    assert not pacs.thread.is_alive()
