"""XNAT catalogs (.xcat) and archives (.xar): the local files they list."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

CATALOG = """<?xml version="1.0" encoding="UTF-8"?>
<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog" ID="scan1">
  <cat:entries>
    <cat:entry URI="a.nrrd" ID="a"/>
    <cat:entry URI="sub/b.nrrd" ID="b"/>
    <cat:entry URI="https://xnat.example.org/data/c.nrrd" ID="c"/>
  </cat:entries>
</cat:Catalog>
"""


def _files(folder):
    (folder / "sub").mkdir(parents=True)
    for name in ("a.nrrd", "sub/b.nrrd"):
        registry.write(Volume(np.zeros((2, 3, 4), np.int16), Geometry.identity(), name=name), folder / name)
    (folder / "scan.xcat").write_text(CATALOG)


def test_catalog_reads_local_files(tmp_path):
    _files(tmp_path)
    with pytest.warns(UserWarning, match="remote"):
        objs = registry.read(tmp_path / "scan.xcat")
    assert [o.kind for o in objs] == ["volume", "volume"]


def test_archive_reads_its_catalog(tmp_path):
    _files(tmp_path / "in")
    with zipfile.ZipFile(tmp_path / "scan.xar", "w") as zf:
        for p in (tmp_path / "in").rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(tmp_path / "in").as_posix())
    with pytest.warns(UserWarning, match="remote"):
        objs = registry.read(tmp_path / "scan.xar")
    assert len(objs) == 2


def test_catalog_escaping_its_archive_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.xar", "w") as zf:
        zf.writestr("scan.xcat", CATALOG.replace('URI="a.nrrd"', 'URI="../../etc/passwd"'))
    with pytest.raises(FormatError, match="outside"):
        registry.read(tmp_path / "evil.xar")
