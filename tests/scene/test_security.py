"""Hostile input: malicious archives and XML are refused with a clear error; nothing lands outside the target."""
from __future__ import annotations

import os
import stat
import zipfile

import pytest

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.scene import mrb
from napari_medio.scene.mrml import parse_mrml

SCENE = b'<?xml version="1.0" encoding="UTF-8"?>\n<MRML version="Slicer 5.8.1 33241"></MRML>\n'


def _zip(path, members, symlink=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, symlink[1])
    return path


def _outside_untouched(tmp_path):
    names = {p.name for p in tmp_path.parent.iterdir()}
    assert "evil.txt" not in names


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt",
                                    "..\\evil.txt", "a/..\\..\\evil.txt"])
def test_traversal_and_absolute_members_refused(tmp_path, member):
    bad = _zip(tmp_path / "bad.mrb", [("s/s.mrml", SCENE), (member, b"x")])
    target = tmp_path / "out"
    with pytest.raises(FormatError, match="absolute|outside"):
        mrb.safe_extract(bad, target)
    assert not target.exists() or not any(target.rglob("*"))
    with pytest.raises(FormatError):
        registry.read(bad)
    _outside_untouched(tmp_path)


def test_symlink_member_refused(tmp_path):
    bad = _zip(tmp_path / "bad.mrb", [("s/s.mrml", SCENE)], symlink=("s/link", "/etc/passwd"))
    with pytest.raises(FormatError, match="symbolic link"):
        mrb.safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "s" / "link").exists()


def test_zip_bomb_ratio_refused(tmp_path):
    bad = tmp_path / "bomb.mrb"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("s/s.mrml", SCENE)
        zf.writestr("s/Data/zeros.raw", b"\0" * (64 << 20))
    assert bad.stat().st_size < (1 << 20)
    with pytest.raises(FormatError, match="compression ratio"):
        mrb.safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "s" / "Data" / "zeros.raw").exists()


def test_zip_bomb_member_count_and_total_size_refused(tmp_path):
    bad = _zip(tmp_path / "many.mrb", [("s/s.mrml", SCENE)] + [(f"s/{i}", b"") for i in range(50)])
    with pytest.raises(FormatError, match="entries"):
        mrb.safe_extract(bad, tmp_path / "out", max_members=20)
    with pytest.raises(FormatError, match="inflates to more"):
        mrb.safe_extract(bad, tmp_path / "out2", max_total=10)


def test_member_lying_about_its_size_is_stopped(tmp_path):
    path = _zip(tmp_path / "lie.mrb", [("s/s.mrml", SCENE), ("s/big", b"a" * 100_000)])
    # Shrink the declared size in the central directory and local header.
    import struct

    data = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        start = 0
        while True:
            i = data.find(sig, start)
            if i < 0:
                break
            size = struct.unpack_from("<I", data, i + off)[0]
            if size == 100_000:
                struct.pack_into("<I", data, i + off, 10)
            start = i + 4
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError):
        mrb.safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out" / "s" / "big").exists()


def test_stored_member_with_a_wrong_crc_is_refused(tmp_path):
    """A stored (uncompressed) member whose bytes do not match its CRC-32 is corrupt: nothing is kept."""
    path = tmp_path / "crc.mrb"
    payload = bytes(range(256)) * 8192  # 2 MiB, stored
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("s/s.mrml", SCENE)
        zf.writestr("s/Data/v.nrrd", payload)
    data = bytearray(path.read_bytes())
    data[data.find(payload[:4096]) + 1_000_000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="v.nrrd.*corrupt"):
        mrb.safe_extract(path, tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE MRML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<MRML><Volume id="v" name="&xxe;"/></MRML>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<MRML><Volume id="v" name="&lol3;"/></MRML>"""


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_unsafe_xml_refused(tmp_path, payload):
    with pytest.raises(FormatError, match="unsafe XML"):
        parse_mrml(payload, "x.mrml")
    p = tmp_path / "evil.mrml"
    p.write_bytes(payload)
    with pytest.raises(FormatError, match="evil.mrml"):
        registry.read(p)


@pytest.mark.parametrize("content", [b"", b"<MRML><Volume", os.urandom(2000), b"<NotMRML/>",
                                     b"PK\x03\x04garbage"], ids=["empty", "truncated", "random", "wrong-root",
                                                                 "broken-zip"])
@pytest.mark.parametrize("ext", [".mrml", ".mrb"])
def test_bad_input_is_a_format_error(tmp_path, content, ext):
    p = tmp_path / f"bad{ext}"
    p.write_bytes(content)
    with pytest.raises(FormatError) as info:
        registry.read(p)
    assert "bad" in str(info.value)


def test_bundle_refers_outside_itself(tmp_path):
    scene = (b'<MRML><ModelStorage id="s" fileName="../../../etc/passwd"/>'
             b'<Model id="m" name="m" references="storage:s;"/></MRML>')
    bad = _zip(tmp_path / "out.mrb", [("s/s.mrml", scene)])
    with pytest.raises(FormatError, match="outside the bundle"):
        registry.read(bad)


def test_zip_without_scene_is_not_a_scene(tmp_path):
    z = _zip(tmp_path / "plain.zip", [("a.txt", b"hello")])
    from napari_medio.scene.format import _sniff_bundle

    assert not _sniff_bundle(z.read_bytes()[:4096], z)
