"""Reading DICOM files at the lowest level: the content sniff (:func:`sniff_dicom_bytes`), one checked
pydicom read (:func:`read_dataset`), and a fast header scanner for the tags that series assembly and
the database need.

pydicom builds a full :class:`~pydicom.dataset.Dataset` for every file; series
assembly needs ~50 top-level tags and the position of the pixel data.  This
module walks the data elements of little-endian files with ``struct`` (skipping
sequences, also those of undefined length), decodes only the wanted tags and
records where the pixel data starts, so that the voxels can be read straight
into the output array.  Anything unusual (big endian, deflate, a file that does
not parse) falls back to pydicom with ``stop_before_pixels=True``.

Kept because it is faster on what a user sees (docs/performance.md, "Hand-written code
against the libraries"): reading a 300-slice CT folder takes 3.7x and importing it into the
database 8x as long with pydicom's header parse (``specific_tags``, same dict), and
only with this scanner does a series load stay under 0.4x of SimpleITK's time.
tests/dicom/test_header_scanner.py checks it against pydicom on every DICOM test file.

The result is a plain ``dict`` (picklable, for process pools) keyed by pydicom
keywords plus a few private keys starting with ``_``:

``_path``, ``_ts`` (transfer syntax UID), ``_pixel_offset``/``_pixel_length``
(byte offset and length of native pixel data; length -1 when encapsulated),
``_pixel_tag`` (pixel data tag, 0 when there is none), ``_enhanced`` (has
functional groups: needs a full pydicom parse), ``_size`` (file size), and for
Siemens MOSAIC files the values of the CSA image header (0029,xx10) that place
the tiles: ``_csa_slice_normal`` (``SliceNormalVector``, whose sign says in
which direction the tiles are stored) and ``_csa_n_mosaic``
(``NumberOfImagesInMosaic``), read with :mod:`nibabel.nicom.csareader`.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from ..core.errors import FormatError

__all__ = ["WANTED", "parse_header", "read_dataset", "NotDicomError", "header_from_dataset", "IMPLICIT_LE",
           "EXPLICIT_LE", "NATIVE_SYNTAXES", "sniff_dicom_bytes"]


def sniff_dicom_bytes(head: bytes) -> bool:
    """True for 'DICM' at byte 128, or a plausible preamble-less start (group 0002/0008, explicit or implicit VR)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 12:
        return False
    group, elem = struct.unpack_from("<HH", head, 0)
    if group not in (0x0002, 0x0008):
        return False
    if elem > 0x0200:
        return False
    vr = head[4:6]
    if 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90:
        return True  # explicit VR
    (length,) = struct.unpack_from("<I", head, 4)
    if length > 0x10000 and length != 0xFFFFFFFF:
        return False
    # Implicit VR: the next element must also start with a small group number.
    nxt = 8 + length
    if length == 0xFFFFFFFF or nxt + 4 > len(head):
        return elem <= 0x0020
    g2, _ = struct.unpack_from("<HH", head, nxt)
    return g2 in (0x0002, 0x0008, 0x0010)


IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = (IMPLICIT_LE, EXPLICIT_LE)

# keyword: (tag, VR used when the file is implicit VR)
_WANTED_TAGS: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "ImageType": (0x00080008, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "StudyDate": (0x00080020, "DA"),
    "SeriesDate": (0x00080021, "DA"),
    "ContentDate": (0x00080023, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "SeriesTime": (0x00080031, "TM"),
    "AcquisitionTime": (0x00080032, "TM"),
    "ContentTime": (0x00080033, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "Modality": (0x00080060, "CS"),
    "Manufacturer": (0x00080070, "LO"),
    "InstitutionName": (0x00080080, "LO"),
    "ReferringPhysicianName": (0x00080090, "PN"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "ManufacturerModelName": (0x00081090, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "PatientSex": (0x00100040, "CS"),
    "PatientAge": (0x00101010, "AS"),
    "BodyPartExamined": (0x00180015, "CS"),
    "SliceThickness": (0x00180050, "DS"),
    "RepetitionTime": (0x00180080, "DS"),
    "EchoTime": (0x00180081, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "SpacingBetweenSlices": (0x00180088, "DS"),
    "TriggerTime": (0x00181060, "DS"),
    "ImagerPixelSpacing": (0x00181164, "DS"),
    "DiffusionBValue": (0x00189087, "FD"),
    "NumberOfImagesInMosaic": (0x0019100A, "US"),  # Siemens private (SIEMENS MR HEADER)
    "GEImageType": (0x0043102F, "SS"),  # GE private (GEMS_PARM_01): 0/1/2/3 magnitude/phase/real/imaginary
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
    "ImagePositionPatient": (0x00200032, "DS"),
    "ImageOrientationPatient": (0x00200037, "DS"),
    "FrameOfReferenceUID": (0x00200052, "UI"),
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "NumberOfTemporalPositions": (0x00200105, "IS"),
    "SliceLocation": (0x00201041, "DS"),
    "SamplesPerPixel": (0x00280002, "US"),
    "PhotometricInterpretation": (0x00280004, "CS"),
    "PlanarConfiguration": (0x00280006, "US"),
    "NumberOfFrames": (0x00280008, "IS"),
    "Rows": (0x00280010, "US"),
    "Columns": (0x00280011, "US"),
    "PixelSpacing": (0x00280030, "DS"),
    "BitsAllocated": (0x00280100, "US"),
    "BitsStored": (0x00280101, "US"),
    "HighBit": (0x00280102, "US"),
    "PixelRepresentation": (0x00280103, "US"),
    "WindowCenter": (0x00281050, "DS"),
    "WindowWidth": (0x00281051, "DS"),
    "RescaleIntercept": (0x00281052, "DS"),
    "RescaleSlope": (0x00281053, "DS"),
    "RescaleType": (0x00281054, "LO"),
    "DoseUnits": (0x30040002, "CS"),
    "DoseType": (0x30040004, "CS"),
    "DoseSummationType": (0x3004000A, "CS"),
    "GridFrameOffsetVector": (0x3004000C, "DS"),
    "DoseGridScaling": (0x3004000E, "DS"),
}
WANTED = frozenset(_WANTED_TAGS)
_BY_TAG: dict[int, tuple[str, str]] = {tag: (kw, vr) for kw, (tag, vr) in _WANTED_TAGS.items()}
_LAST_WANTED = max(_BY_TAG)
_FUNCTIONAL_GROUPS = (0x52009229, 0x52009230)
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_LONG_VRS = frozenset((b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV", b"SV", b"UV"))
_MULTI_NUMBER = frozenset(("DS", "IS"))
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD

_u16 = struct.Struct("<H").unpack_from
_u32 = struct.Struct("<I").unpack_from
_tag_s = struct.Struct("<HH").unpack_from
_BIN = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}

FIRST_READ = 1 << 14
_CSA_CREATOR = "SIEMENS CSA HEADER"


def _csareader() -> Any:
    import warnings

    with warnings.catch_warnings():  # nibabel.nicom warns that its DICOM *readers* are experimental
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader
    return csareader


def _siemens_csa(raw: bytes, out: dict) -> None:
    """``_csa_slice_normal`` and ``_csa_n_mosaic`` from a CSA image header (SV10 or CSA1) into ``out``."""
    if not raw:
        return
    try:
        csa = _csareader()
        info = csa.read(raw)
        normal = csa.get_slice_normal(info)
        n = csa.get_n_mosaic(info)
    except Exception:  # a damaged or unknown CSA block: the DICOM tags still apply
        return
    if normal is not None:
        try:
            vec = [float(v) for v in normal]
        except (TypeError, ValueError):
            vec = []
        if len(vec) == 3 and any(vec):
            out["_csa_slice_normal"] = vec
    if n:
        try:
            out["_csa_n_mosaic"] = int(n)
        except (TypeError, ValueError):
            pass


def _is_mosaic(out: dict) -> bool:
    it = out.get("ImageType")
    return "MOSAIC" in ([str(x).upper() for x in it] if isinstance(it, list) else str(it or "").upper().split("\\"))


class NotDicomError(ValueError):
    """The file is not DICOM (or its header cannot be parsed at all)."""


class _NeedMore(Exception):
    """The buffer ended inside the header: read more of the file."""


class _Fallback(Exception):
    """Something this scanner does not handle: use pydicom."""


def _decode_value(raw: bytes, vr: str, encoding: str) -> Any:
    if vr in _BIN:
        code = _BIN[vr]
        n = len(raw) // struct.calcsize(code)
        if n == 0:
            return None
        vals = struct.unpack("<" + code * n, raw[: n * struct.calcsize(code)])
        return vals[0] if n == 1 else list(vals)
    text_vr = vr in ("PN", "LO", "SH", "LT", "ST", "UT", "UC")
    text = raw.decode(encoding, "replace") if text_vr else raw.decode("latin-1")
    text = text.rstrip("\x00 ").lstrip(" ") if vr != "UI" else text.rstrip("\x00 ")
    if vr in _MULTI_NUMBER:
        parts = [p.strip() for p in text.split("\\")]
        try:
            nums = [float(p) if vr == "DS" else int(float(p)) for p in parts if p]
        except ValueError:
            return None
        if not nums:
            return None
        return nums[0] if len(nums) == 1 else nums
    if vr == "CS" and "\\" in text:
        return [p.strip() for p in text.split("\\")]
    return text


def _skip_undefined(buf: bytes, pos: int, explicit: bool) -> int:
    """Position after a sequence (or element) of undefined length starting its value at ``pos``."""
    end = len(buf)
    while True:
        if pos + 8 > end:
            raise _NeedMore
        g, e = _tag_s(buf, pos)
        tag = (g << 16) | e
        length = _u32(buf, pos + 4)[0]
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag == _ITEM_END:
            continue
        if tag != _ITEM:
            raise _Fallback("malformed sequence")
        if length != _UNDEFINED:
            pos += length
            continue
        # An item of undefined length: walk its elements until the item delimiter.
        while True:
            if pos + 8 > end:
                raise _NeedMore
            g, e = _tag_s(buf, pos)
            tag = (g << 16) | e
            if tag == _ITEM_END:
                pos += 8
                break
            pos, _, _ = _element_header_skip(buf, pos, explicit)


def _element_length(buf: bytes, pos: int, explicit: bool) -> tuple[bytes, int, int]:
    """(explicit VR, or b"" in implicit VR; value length; value start) of the element header at ``pos``."""
    if not explicit:
        return b"", _u32(buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4:pos + 6]
    if vr not in _LONG_VRS:
        return vr, _u16(buf, pos + 6)[0], pos + 8
    if pos + 12 > len(buf):
        raise _NeedMore
    return vr, _u32(buf, pos + 8)[0], pos + 12


def _element_header_skip(buf: bytes, pos: int, explicit: bool) -> tuple[int, int, int]:
    """Skip one element at ``pos`` (value included); returns (new pos, tag, value start)."""
    end = len(buf)
    if pos + 8 > end:
        raise _NeedMore
    g, e = _tag_s(buf, pos)
    tag = (g << 16) | e
    _, length, start = _element_length(buf, pos, explicit and g != 0xFFFE)
    if length == _UNDEFINED:
        return _skip_undefined(buf, start, explicit), tag, start
    if start + length > end:
        raise _NeedMore
    return start + length, tag, start


def _looks_explicit(buf: bytes, pos: int) -> bool:
    vr = buf[pos + 4:pos + 6]
    return len(vr) == 2 and 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90


def _scan(buf: bytes, file_size: int, out: dict) -> None:
    """Fill ``out`` from the header in ``buf`` (raises _NeedMore, _Fallback, NotDicomError)."""
    n = len(buf)
    pos = 0
    ts: str | None = None
    if n >= 132 and buf[128:132] == b"DICM":
        pos = 132
    elif n >= 8:
        g, e = _tag_s(buf, 0)
        if not (g in (0x0002, 0x0008) or (g in (0x0010, 0x0018, 0x0020, 0x0028) and e < 0x2000)):
            raise NotDicomError("no DICM prefix and no plausible DICOM group at the start")
    else:
        raise NotDicomError("too short for DICOM")
    # File meta group (always explicit VR little endian).
    while pos + 8 <= n:
        g, e = _tag_s(buf, pos)
        if g != 0x0002:
            break
        new_pos, tag, start = _element_header_skip(buf, pos, True)
        if tag == 0x00020010:
            ts = buf[start:new_pos].decode("latin-1").rstrip("\x00 ")
        elif tag == 0x00020002:
            out["_media_sop_class"] = buf[start:new_pos].decode("latin-1").rstrip("\x00 ")
        pos = new_pos
    if pos + 8 > n:
        if n < file_size:
            raise _NeedMore
        if ts is None:
            raise NotDicomError("no data elements")
    if ts is None:
        ts = EXPLICIT_LE if _looks_explicit(buf, pos) else IMPLICIT_LE
    out["_ts"] = ts
    if ts in (EXPLICIT_BE, DEFLATED_LE):
        raise _Fallback(ts)
    explicit = ts != IMPLICIT_LE
    if explicit and not _looks_explicit(buf, pos) and pos + 8 <= n:
        explicit = False  # files that lie about their syntax: pydicom does the same
    encoding = "latin-1"
    found = 0
    end = n
    csa_block = -1  # private block of "SIEMENS CSA HEADER" in group 0029
    while True:
        if pos >= file_size:
            break
        if pos + 8 > end:
            raise _NeedMore
        g, e = _tag_s(buf, pos)
        tag = (g << 16) | e
        if tag in _PIXEL_TAGS:
            if explicit:
                vr = buf[pos + 4:pos + 6]
                if pos + 12 > end:
                    raise _NeedMore
                length = _u32(buf, pos + 8)[0]
                start = pos + 12
            else:
                length = _u32(buf, pos + 4)[0]
                start = pos + 8
            out["_pixel_tag"] = tag
            out["_pixel_offset"] = start
            out["_pixel_length"] = -1 if length == _UNDEFINED else length
            return
        if tag in _FUNCTIONAL_GROUPS:
            out["_enhanced"] = True
        item = _BY_TAG.get(tag)
        if item is None:
            new_pos, _, start = _element_header_skip(buf, pos, explicit)
            if g == 0x0029 and new_pos - start < (1 << 24):
                if 0x10 <= e <= 0xFF:
                    if buf[start:new_pos].decode("latin-1").strip("\x00 ") == _CSA_CREATOR:
                        csa_block = e
                elif csa_block >= 0 and e == (csa_block << 8) | 0x10 and _is_mosaic(out):
                    _siemens_csa(buf[start:new_pos], out)
            pos = new_pos
            continue
        keyword, implicit_vr = item
        vr_b, length, start = _element_length(buf, pos, explicit)
        vr = vr_b.decode("latin-1") if explicit else implicit_vr
        if vr == "UN":
            vr = implicit_vr
        if length == _UNDEFINED:
            pos = _skip_undefined(buf, start, explicit)
            continue
        if start + length > end:
            raise _NeedMore
        raw = buf[start:start + length]
        pos = start + length
        if keyword == "NumberOfImagesInMosaic" and vr not in _BIN:
            vr = "US" if length == 2 else ("UL" if length == 4 else vr)
        if keyword == "GEImageType" and vr not in _BIN:
            vr = "SS" if length == 2 else vr
        value = _decode_value(raw, vr, encoding)
        if keyword == "SpecificCharacterSet":
            encoding = _python_encoding(value)
        out[keyword] = value
        found += 1
    out["_pixel_tag"] = 0


def _python_encoding(value: Any) -> str:
    if not value:
        return "latin-1"
    terms = value if isinstance(value, list) else [value]
    term = terms[-1] if terms[0] == "" else terms[0]
    try:
        from pydicom.charset import python_encoding

        return python_encoding.get(term, "latin-1")
    except Exception:  # pragma: no cover
        return "latin-1"


def read_dataset(path: str | os.PathLike[str], *, modality: str | None = None, sop_classes: tuple = (),
                 pixels: bool = True) -> Any:
    """pydicom Dataset of ``path`` (preamble optional); FormatError naming the file when not what is expected."""
    import pydicom

    p = Path(path)
    if not p.is_file():
        raise FormatError(p, "file not found")
    if p.stat().st_size == 0:
        raise FormatError(p, "file is empty")
    try:
        ds = pydicom.dcmread(p, force=True, stop_before_pixels=not pixels)
        sop = str(ds.get("SOPClassUID", "") or "")
        mod = str(ds.get("Modality", "") or "").upper()
    except Exception as exc:
        raise FormatError(p, f"not a readable DICOM file: {type(exc).__name__}: {exc}") from None
    if not sop and not mod:
        raise FormatError(p, "not a DICOM file (no SOP class or modality)")
    if (modality is not None or sop_classes) and not (mod == modality or sop in sop_classes):
        want = modality or ", ".join(sop_classes)
        raise FormatError(p, f"not a DICOM {want} object (modality {mod or 'missing'}, SOP class {sop or 'missing'})")
    return ds


def parse_header(path: str | os.PathLike[str], *, allow_fallback: bool = True) -> dict:
    """The wanted tags of one file and where its pixel data lies.

    Raises :class:`NotDicomError` for files that are not DICOM, ``OSError`` for
    unreadable ones.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise NotDicomError("file is empty")
        buf = fh.read(FIRST_READ)
        while True:
            out: dict = {"_path": path, "_size": size}
            try:
                _scan(buf, size, out)
                break
            except _NeedMore:
                if len(buf) >= size:
                    if "_ts" not in out:
                        raise NotDicomError("header ends early") from None
                    # The header runs to the end of the file without pixel data.
                    out.setdefault("_pixel_tag", 0)
                    out["_truncated_header"] = True
                    break
                more = fh.read(max(len(buf), 1 << 16))
                buf += more
            except _Fallback:
                if not allow_fallback:
                    raise NotDicomError("needs pydicom") from None
                return _pydicom_header(path, size)
            except (struct.error, IndexError, UnicodeDecodeError) as exc:
                if not allow_fallback:
                    raise NotDicomError(str(exc)) from None
                return _pydicom_header(path, size)
    if out.get("_enhanced"):
        # Functional groups (Enhanced multi-frame) live in nested sequences: let pydicom do them.
        return _pydicom_header(path, size)
    return out


def _pydicom_header(path: str, size: int) -> dict:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=False, force=True, defer_size=1024)
    except InvalidDicomError as exc:
        raise NotDicomError(str(exc)) from None
    except Exception as exc:
        raise NotDicomError(f"{type(exc).__name__}: {exc}") from None
    if "SOPInstanceUID" not in ds and "SOPClassUID" not in ds and "Modality" not in ds:
        raise NotDicomError("no DICOM identity tags")
    out = header_from_dataset(ds)
    out["_path"] = path
    out["_size"] = size
    return out


def _plain(value: Any) -> Any:
    from pydicom.multival import MultiValue
    from pydicom.valuerep import PersonName

    if isinstance(value, (MultiValue, list, tuple)):
        vals = [_plain(v) for v in value]
        return vals if len(vals) != 1 else vals[0]
    if isinstance(value, PersonName):
        return str(value)
    if isinstance(value, (float, int)):
        if type(value).__name__ in ("DSfloat", "DSdecimal"):
            return float(value)
        if type(value).__name__ == "IS":
            return int(value)
        return value
    if isinstance(value, bytes):
        return None
    return str(value) if not isinstance(value, (int, float)) else value


def header_from_dataset(ds: Any) -> dict:
    """The same dict :func:`parse_header` gives, from a pydicom Dataset."""
    out: dict = {}
    for keyword in WANTED:
        if keyword in ("NumberOfImagesInMosaic", "GEImageType"):
            elem = ds.get((0x0019, 0x100A) if keyword == "NumberOfImagesInMosaic" else (0x0043, 0x102F))
            if elem is not None:
                try:
                    v = elem.value
                    if isinstance(v, bytes):
                        code = "<H" if keyword == "NumberOfImagesInMosaic" else "<h"
                        v = struct.unpack(code, v[:2])[0] if len(v) >= 2 else None
                    out[keyword] = int(v) if v is not None else None
                except Exception:
                    pass
            continue
        elem = ds.get(keyword)
        if elem is None or elem == "":
            continue
        try:
            out[keyword] = _plain(elem)
        except Exception:
            continue
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts is None:
        ts = IMPLICIT_LE if getattr(ds, "is_implicit_VR", True) else EXPLICIT_LE
    out["_ts"] = str(ts)
    out["_pixel_tag"] = 0
    for tag in _PIXEL_TAGS:
        if tag in ds:
            out["_pixel_tag"] = tag
            break
    out["_pixel_offset"] = -1
    out["_pixel_length"] = -1
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        out["_enhanced"] = True
        out["_frames"] = _functional_groups(ds)
    if "DirectoryRecordSequence" in ds:
        out["_dicomdir"] = True
    if _is_mosaic(out):
        try:
            block = ds.private_block(0x0029, _CSA_CREATOR)
            elem = block[0x10]
        except (KeyError, ValueError):
            elem = None
        if elem is not None and isinstance(elem.value, bytes):
            _siemens_csa(elem.value, out)
    return out


def _first(seq_owner: Any, keyword: str) -> Any:
    seq = seq_owner.get(keyword) if seq_owner is not None else None
    if seq is None:
        return None
    try:
        return seq[0] if len(seq) else None
    except TypeError:
        return None


def _frame_values(group: Any, out: dict) -> None:
    """Per-frame (or shared) functional group values into ``out`` (keys as in the flat header)."""
    if group is None:
        return
    item = _first(group, "PlanePositionSequence")
    if item is not None and "ImagePositionPatient" in item:
        out["ImagePositionPatient"] = [float(v) for v in item.ImagePositionPatient]
    item = _first(group, "PlaneOrientationSequence")
    if item is not None and "ImageOrientationPatient" in item:
        out["ImageOrientationPatient"] = [float(v) for v in item.ImageOrientationPatient]
    item = _first(group, "PixelMeasuresSequence")
    if item is not None:
        if "PixelSpacing" in item:
            out["PixelSpacing"] = [float(v) for v in item.PixelSpacing]
        if item.get("SliceThickness") not in (None, ""):
            out["SliceThickness"] = float(item.SliceThickness)
        if item.get("SpacingBetweenSlices") not in (None, ""):
            out["SpacingBetweenSlices"] = float(item.SpacingBetweenSlices)
    item = _first(group, "PixelValueTransformationSequence")
    if item is not None:
        if item.get("RescaleSlope") not in (None, ""):
            out["RescaleSlope"] = float(item.RescaleSlope)
        if item.get("RescaleIntercept") not in (None, ""):
            out["RescaleIntercept"] = float(item.RescaleIntercept)
    item = _first(group, "FrameVOILUTSequence")
    if item is not None:
        for kw in ("WindowCenter", "WindowWidth"):
            if item.get(kw) not in (None, ""):
                out[kw] = _plain(item[kw].value)
    item = _first(group, "FrameContentSequence")
    if item is not None:
        if item.get("TemporalPositionIndex") not in (None, ""):
            out["TemporalPositionIdentifier"] = int(item.TemporalPositionIndex)
        if item.get("StackID") not in (None, ""):
            out["StackID"] = str(item.StackID)
        if item.get("InStackPositionNumber") not in (None, ""):
            out["InStackPositionNumber"] = int(item.InStackPositionNumber)
        if item.get("DimensionIndexValues") not in (None, ""):
            v = item.DimensionIndexValues
            values = v if isinstance(v, (list, tuple)) or hasattr(v, "__iter__") else [v]
            out["DimensionIndexValues"] = [int(x) for x in values]
        if item.get("FrameAcquisitionNumber") not in (None, ""):
            out["AcquisitionNumber"] = int(item.FrameAcquisitionNumber)
    item = _first(group, "MRDiffusionSequence")
    if item is not None and item.get("DiffusionBValue") not in (None, ""):
        out["DiffusionBValue"] = float(item.DiffusionBValue)
    item = _first(group, "MREchoSequence")
    if item is not None and item.get("EffectiveEchoTime") not in (None, ""):
        out["EchoTime"] = float(item.EffectiveEchoTime)
    item = _first(group, "CardiacSynchronizationSequence")
    if item is not None and item.get("NominalCardiacTriggerDelayTime") not in (None, ""):
        out["TriggerTime"] = float(item.NominalCardiacTriggerDelayTime)


def _functional_groups(ds: Any) -> list:
    """One dict per frame with the geometry and value transform of that frame."""
    shared: dict = {}
    sg = _first(ds, "SharedFunctionalGroupsSequence")
    _frame_values(sg, shared)
    frames = []
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    n = int(ds.get("NumberOfFrames", len(per)) or len(per) or 1)
    for i in range(n):
        f = dict(shared)
        if i < len(per):
            _frame_values(per[i], f)
        frames.append(f)
    return frames
