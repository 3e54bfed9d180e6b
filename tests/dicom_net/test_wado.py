"""The streaming WADO-RS multipart reader (dicom/_wado.py) and the WADO-RS retrieve against Orthanc."""
from __future__ import annotations

import random

import pydicom
import pytest

from napari_medio.dicom import _wado
from napari_medio.dicom.network import DicomWebClient, DicomWebServer, DimseClient


def _parts(ct_series, n=4):
    return [p.read_bytes() for p in sorted(ct_series.iterdir())[:n] if p.is_file()]


def _body(parts, boundary=b"b0undary", preamble=b"", epilogue=b"", close=True):
    out = preamble
    for p in parts:
        out += b"--" + boundary + b"\r\nContent-Type: application/dicom\r\nX-Other: 1\r\n\r\n" + p + b"\r\n"
    if close:
        out += b"--" + boundary + b"--\r\n" + epilogue
    return out


def _feed(body, folder, sizes, seed=0, boundary=b"b0undary"):
    got = []
    reader = _wado.MultipartFiles(boundary, folder, lambda path, size: got.append((path, size)))
    rng = random.Random(seed)
    off = 0
    while off < len(body):
        n = rng.choice(sizes)
        reader.feed(body[off:off + n])
        off += n
    return reader, got


@pytest.mark.parametrize("sizes", [(1,), (1, 2, 3, 70, 4096), (1 << 20,)])
def test_parts_written_whatever_the_chunking(tmp_path, ct_series, sizes):
    parts = _parts(ct_series, 3 if sizes == (1,) else 6)
    body = _body(parts, preamble=b"ignored preamble\r\n", epilogue=b"ignored epilogue")
    reader, got = _feed(body, tmp_path, sizes)
    assert reader.finish()
    assert len(got) == len(parts)
    for (path, size), data in zip(got, parts):
        uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert path.name == f"{uid}.dcm" and path.read_bytes() == data and size == len(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p, _ in got)


def test_cut_short_keeps_only_complete_parts(tmp_path, ct_series):
    parts = _parts(ct_series, 4)
    body = _body(parts, close=False)
    body = body[:-len(parts[-1]) // 2]  # the last part is cut in the middle
    reader, got = _feed(body, tmp_path, (1000, 65536))
    assert not reader.finish()
    assert len(got) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p, _ in got)  # no .part left
    # a part whose closing delimiter never came is not complete either
    for f in tmp_path.iterdir():
        f.unlink()
    reader, got = _feed(_body(parts, close=False)[:-2], tmp_path, (65536,))
    assert not reader.finish() and len(got) == 3


def test_boundary_and_meta_parsing(ct_series):
    assert _wado.boundary_of('multipart/related; type="application/dicom"; boundary="a:b c"') == b"a:b c"
    assert _wado.boundary_of("multipart/related;boundary=XYZ;type=application/dicom") == b"XYZ"
    with pytest.raises(_wado.NotDicom):
        _wado.boundary_of("multipart/related; type=application/dicom")
    data = _parts(ct_series, 1)[0]
    assert _wado.meta_sop_uid(data[:4096]) == pydicom.dcmread(ct_series / sorted(
        p.name for p in ct_series.iterdir())[0]).SOPInstanceUID
    assert _wado.meta_sop_uid(b"\0" * 200) is None and _wado.meta_sop_uid(data[:150]) is None


def test_part_without_meta_and_not_dicom(tmp_path, ct_series):
    from pynetdicom.dsutils import encode

    ds = pydicom.dcmread(sorted(ct_series.iterdir())[0])
    no_meta = encode(ds, True, True)  # a bare data set: no preamble, no File Meta
    reader, got = _feed(_body([no_meta]), tmp_path, (333,))
    assert reader.finish() and got[0][0].name == f"{ds.SOPInstanceUID}.dcm"
    for f in tmp_path.iterdir():
        f.unlink()
    with pytest.raises(_wado.NotDicom, match="not a DICOM instance"):
        _feed(_body([b"not dicom at all"]), tmp_path, (7,))
    assert not list(tmp_path.iterdir())


def test_wado_files_are_orthancs_files(orthanc, ct_series, tmp_path):
    """Orthanc keeps the uploaded bytes: what WADO-RS writes is the uploaded file, byte for byte."""
    files = sorted(p for p in ct_series.iterdir() if p.is_file())
    orthanc.upload(files)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    progress = []
    web = DicomWebClient(DicomWebServer(orthanc.dicomweb))
    result = web.retrieve(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), dest=tmp_path,
                          progress=lambda d, t: progress.append((d, t)))
    assert result.completed == 93 and progress[-1] == (93, 93)
    by_uid = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{u}.dcm" for u in by_uid)
    for uid, src in by_uid.items():
        assert (tmp_path / f"{uid}.dcm").read_bytes() == src.read_bytes()
    assert result.bytes == sum(f.stat().st_size for f in files)
    # the whole study (series listed by QIDO first)
    again = web.retrieve(str(ds.StudyInstanceUID), dest=tmp_path / "study")
    assert again.completed == 93
    assert DimseClient(orthanc.node()).query("STUDY", StudyInstanceUID=str(ds.StudyInstanceUID))


@pytest.mark.parametrize("gzipped", [False, True])
def test_chunked_and_gzipped_answer(tmp_path, ct_series, gzipped):
    """Servers other than Orthanc answer with chunked transfer coding, some gzip it: the reader gets the body
    decoded either way."""
    import gzip
    import http.server
    import threading

    parts = _parts(ct_series, 5)
    body = _body(parts, boundary=b"B")
    data = gzip.compress(body) if gzipped else body

    class Chunked(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            if not self.path.endswith("/series/1.2.3"):  # QIDO: nothing known
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")
                return
            self.send_response(200)
            self.send_header("Content-Type", 'multipart/related; type="application/dicom"; boundary=B')
            self.send_header("Transfer-Encoding", "chunked")
            if gzipped:
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            for i in range(0, len(data), 7777):
                self.wfile.write(b"%x\r\n" % len(data[i:i + 7777]) + data[i:i + 7777] + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chunked)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        web = DicomWebClient(DicomWebServer(f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web"))
        result = web.retrieve("1.2", "1.2.3", dest=tmp_path)
    finally:
        httpd.shutdown()
    assert result.completed == 5
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == sorted(parts)
