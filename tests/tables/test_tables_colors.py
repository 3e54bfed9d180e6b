"""Tables (csv/tsv + schema) and colour tables (ctbl, csv, ITK-SNAP): conformance, round trips, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import napari_medio
from napari_medio.core.colortable import ColorEntry, ColorTable
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.table import Table
from napari_medio.core.volume import Volume
from tests.badfiles import assert_rejected, variants
from tests.conftest import fixture_file


def test_table_fixture_with_schema():
    [t] = napari_medio.read(fixture_file("tables/table.csv"))
    assert isinstance(t, Table)
    assert t.columns == ["Segment", "TestBool", "TestString", "TestInt", "TestDouble", "TestFloat", "SUV"]
    assert t.n_rows == 10 and t.rows[0] == ["first", "0", "one", "-1", "0.1", "0.1", "-111"]
    assert t.column_type("TestDouble") == "double" and t.column_type("Segment") == "string"  # <default>
    assert t.column_type("TestBool") == "bit"
    assert t.column("TestInt")[:3] == [-1, 0, 1]
    assert t.column("TestDouble")[0] == 0.1 and t.column("TestDouble")[4] == 1.23e19
    assert t.column_properties("SUV")["unitCodeMeaning"] == "Standardized Uptake Value body weight"
    info = t.info()
    assert info["kind"] == "table" and info["n_rows"] == 10 and info["columns"] == t.columns


@pytest.mark.parametrize("ext", [".csv", ".tsv"])
def test_table_round_trip(tmp_path, ext):
    [t] = napari_medio.read(fixture_file("tables/table.csv"))
    out = tmp_path / f"t{ext}"
    written = napari_medio.write(t, out)
    assert sorted(written) == sorted([str(out), str(tmp_path / f"t.schema{ext}")])
    [back] = napari_medio.read(out)
    assert back.columns == t.columns and back.rows == t.rows
    assert back.schema == t.schema


def test_table_csv_tsv_convert_cli(tmp_path):
    subprocess.run([sys.executable, "-m", "napari_medio.cli", "convert", str(fixture_file("tables/table.csv")),
                    str(tmp_path / "x.tsv")], check=True, capture_output=True)
    assert "\t" in (tmp_path / "x.tsv").read_text()
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "info", "--json", str(tmp_path / "x.tsv")],
                         check=True, capture_output=True, text=True)
    [info] = json.loads(out.stdout)
    assert info["kind"] == "table" and info["n_rows"] == 10


def test_bad_tables(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(FormatError, match="line 3"):
        napari_medio.read(p)
    assert_rejected([v for v in variants(tmp_path, fixture_file("colors/ColorTest.ctbl"), ".csv")
                     if v.name.startswith(("empty", "random"))])


def test_colortable_fixtures():
    [ctbl] = napari_medio.read(fixture_file("colors/ColorTest.ctbl"))
    assert isinstance(ctbl, ColorTable) and ctbl.n_colors == 3
    assert ctbl.entries[0].name == "zero" and ctbl.entries[0].color == (0, 0, 0, 1.0)
    np.testing.assert_allclose(ctbl.entries[2].color, [41 / 255, 84 / 255, 1, 1])
    [csv_t] = napari_medio.read(fixture_file("colors/ColorTest.csv"))
    assert sorted(csv_t.entries) == [1, 5, 10] and csv_t.entries[10].name == "ten"
    [term] = napari_medio.read(fixture_file("colors/ColorTestWithTerminology.csv"))
    assert term.entries[1].terminology["Type"] == ("SCT", "64033007", "Kidney")
    assert term.entries[6].terminology["RegionModifier"] == ("SCT", "24028007", "Right")
    np.testing.assert_allclose(term.entries[1].color[3], 150 / 255)
    [gen] = napari_medio.read(fixture_file("colors/GenericAnatomyColors.txt"))
    assert gen.n_colors == 310 and gen.entries[309].name == "cyst" and gen.entries[0].name == "background"
    [vir] = napari_medio.read(fixture_file("colors/Viridis.txt"))
    assert vir.n_colors == 256
    info = ctbl.info()
    assert info["kind"] == "colortable" and info["n_colors"] == 3
    assert info["entries"][1] == {"value": 1, "label": 1, "name": "one", "rgba": [1.0, 59 / 255, 21 / 255, 1.0]}


def test_itksnap_labels(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text('################################################\n# ITK-SnAP Label Description File\n'
                 '    0     0    0    0        0  0  0    "Clear Label"\n'
                 '    1   255    0    0        1  1  1    "Label 1"\n'
                 '    2     0  255    0        1  1  0    "left kidney"\n')
    [t] = napari_medio.read(p)
    assert t.metadata["format"] == "itksnap" and t.entries[2].name == "left kidney"
    assert t.entries[1].color == (1.0, 0.0, 0.0, 1.0)
    p2 = tmp_path / "l.label"
    p2.write_text(p.read_text() + "garbage line\n")
    with pytest.raises(FormatError, match="line 6"):
        napari_medio.read(p2)


@pytest.mark.parametrize("ext", [".ctbl", ".txt", ".csv"])
def test_colortable_round_trip(tmp_path, ext):
    t = ColorTable({0: ColorEntry("background", (0, 0, 0, 0)), 3: ColorEntry("left kidney", (1, 0.2, 0.4, 1)),
                    7: ColorEntry("mass", (0.5, 0.5, 0.5, 1),
                                  terminology={"Type": ("SCT", "4147007", "Mass")})})
    out = tmp_path / f"c{ext}"
    napari_medio.write(t, out)
    [back] = napari_medio.read(out)
    assert sorted(back.entries) == [0, 3, 7]
    assert back.entries[3].name == "left kidney"
    np.testing.assert_allclose(back.entries[3].color, (1, 0.2, 0.4, 1), atol=1 / 255)
    if ext == ".csv":
        assert back.entries[7].terminology["Type"] == ("SCT", "4147007", "Mass")
    if ext != ".csv":
        assert (tmp_path / f"c{ext}").read_text().splitlines()[1] == "# 8 values"


def test_labelmap_colours_to_ctbl(tmp_path):
    vol = Volume(np.zeros((2, 2, 2), np.int16), Geometry.identity(), kind="labelmap",
                 metadata={"color_table": {1: {"name": "liver", "color": [1, 0, 0, 1]}}})
    napari_medio.write(vol, tmp_path / "l.ctbl")
    [t] = napari_medio.read(tmp_path / "l.ctbl")
    assert t.entries[1].name == "liver"


def test_txt_dispatch_by_content(tmp_path):
    assert type(napari_medio.read(fixture_file("transforms/affineTransform.txt"))[0]).__name__ == "Transform"
    assert type(napari_medio.read(fixture_file("colors/Viridis.txt"))[0]).__name__ == "ColorTable"
    p = tmp_path / "notes.txt"
    p.write_text("just some notes\nnothing to see\n")
    [t] = napari_medio.read(p)  # text that no format claims: the read-only text view
    assert t.kind == "text" and t.text.startswith("just some notes")
    p.write_bytes(b"just some notes\x00\x01\x02" * 50)  # binary with a .txt name: still an error
    with pytest.raises(FormatError) as info:
        napari_medio.read(p)
    assert str(p) in str(info.value)


def test_bad_colortables(tmp_path):
    p = tmp_path / "bad.ctbl"
    p.write_text("# Color table file x\n0 zero 0 0 0 255\n1 one 255 x 0 255\n")
    with pytest.raises(FormatError, match="line 3"):
        napari_medio.read(p)
    assert_rejected([v for v in variants(tmp_path, fixture_file("colors/ColorTest.ctbl"), ".ctbl")
                     if v.name.startswith(("empty", "random", "text"))])
