"""The npe2 manifest (napari.yaml) and the format registry name the same files.

napari offers napari-medio for a file only when a reader pattern matches, and
File > Save Layers offers only the manifest's writer extensions; the registry then
does the work.  So: every extension the registry reads is a reader pattern; every
reader pattern is one the registry reads (two deliberate exceptions below); every
writer extension has a registry writer for the data that layer type becomes.
"""
from __future__ import annotations

from collections import Counter
from importlib.resources import files

import pytest
import yaml

from napari_medio.core import registry
from napari_medio.core.errors import MedioError
from tests.conftest import fixture_file

MANIFEST = yaml.safe_load((files("napari_medio") / "napari.yaml").read_text(encoding="utf-8"))
READERS = MANIFEST["contributions"]["readers"]
WRITERS = MANIFEST["contributions"]["writers"]
PATTERNS = [p for reader in READERS for p in reader["filename_patterns"]]

#: What each layer type is saved as (plugin.layers.from_layer / plugin.convert_*).
LAYER_KINDS = {"image": "volume", "labels": "labelmap", "surface": "model", "points": "markups",
               "shapes": "markups"}

#: Reader patterns that are not an extension, and why the registry still reads what they match.
NOT_EXTENSIONS = {
    # Files without a known extension (DICOM files named IM0001, 4648, ...): the registry
    # decides by content, and the npe2 reader returns None for what nothing recognises.
    "*": "content",
    # A DICOM media directory is named DICOMDIR, with no extension; the DICOM format reads it by name.
    "DICOMDIR": "dicom",
}


def _extension(pattern: str) -> str | None:
    return pattern[1:].lower() if pattern.startswith("*.") else None


def test_every_registered_read_extension_is_a_reader_pattern():
    patterns = {p.lower() for p in PATTERNS}
    missing = [e for e in registry.all_read_extensions() if f"*{e}" not in patterns]
    assert not missing, f"add these to napari.yaml's reader patterns: {missing}"


def test_every_reader_pattern_is_read_by_the_registry():
    readable = set(registry.all_read_extensions())
    unread = [p for p in PATTERNS if p not in NOT_EXTENSIONS and _extension(p) not in readable]
    assert not unread, f"napari.yaml offers napari-medio for files no registered format reads: {unread}"


def test_reader_patterns_are_listed_once():
    repeated = [p for p, n in Counter(PATTERNS).items() if n > 1]
    assert not repeated, f"listed more than once in napari.yaml's reader patterns: {repeated}"


def test_the_patterns_that_are_not_extensions_are_read():
    assert set(NOT_EXTENSIONS) <= set(PATTERNS)
    dicomdir = fixture_file("dicom/pydicom/dicomdirtests/DICOMDIR")
    assert registry.find_reader(dicomdir).name == NOT_EXTENSIONS["DICOMDIR"]
    no_extension = fixture_file("dicom/pydicom/dicomdirtests/98892003/MR700/4648")
    assert registry.find_reader(no_extension).name.startswith("dicom")


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w["command"].rsplit(".", 1)[-1])
def test_every_writer_extension_is_written_by_the_registry(writer):
    bad = []
    for layer_type in writer["layer_types"]:
        kind = LAYER_KINDS[layer_type.rstrip("+?")]
        for ext in writer["filename_extensions"]:
            try:
                fmt = registry.find_writer(f"layer{ext}", kind=kind)
            except MedioError as exc:
                bad.append(f"{layer_type} {ext}: {exc}")
                continue
            if fmt.matches_extension(f"layer{ext}") != ext.lower():
                bad.append(f"{layer_type} {ext}: written as {fmt.name} ({fmt.matches_extension(f'layer{ext}')})")
    assert not bad, "napari.yaml offers extensions the registry cannot write for that layer:\n" + "\n".join(bad)
