"""The test data in tests/data: every file has a MANIFEST row naming its source and licence,
every licence has its text in tests/data/LICENSES, and git keeps the files byte for byte."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT

#: Licence named in a MANIFEST row -> its text in tests/data/LICENSES (per source, with the copyright notice).
LICENCE_TEXTS = {
    "Slicer License (BSD-style)": ["Slicer-License.txt"],
    "BSD-3-Clause": ["dcmqi-BSD-3-Clause.txt"],
    "BSD-2-Clause": ["dcm_qa-BSD-2-Clause.txt"],
    "Apache-2.0": ["ITKElastix-Apache-2.0.txt"],
    "MIT": ["highdicom-MIT.txt", "nibabel-MIT.txt", "pydicom-MIT.txt", "pynrrd-MIT.txt", "pyvista-MIT.txt",
            "slicerio-MIT.txt", "trimesh-MIT.md"],
}
_NOT_DATA = {"README.md", "MANIFEST.md"}


def _rows(manifest: Path) -> list[dict[str, str]]:
    """The table rows of one MANIFEST.md whose header has a licence column, as {column: cell}."""
    rows, header = [], None
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
        elif not set(line) <= set("|-: ") and "license" in header:
            rows.append(dict(zip(header, cells)))
    return rows


def _covers(entry: str, rel: str) -> bool:
    """Whether a MANIFEST file entry (a path, ``folder/`` or ``folder/*``) covers the file ``rel``."""
    if entry.endswith("/*"):
        entry = entry[:-1]
    return rel == entry or (entry.endswith("/") and rel.startswith(entry))


def _families() -> list[Path]:
    return sorted(p for p in DATA_DIR.iterdir() if p.is_dir() and p.name != "LICENSES")


def test_every_family_has_a_manifest():
    families = _families()
    assert len(families) == 11, [f.name for f in families]
    assert all((family / "MANIFEST.md").is_file() for family in families)


@pytest.mark.parametrize("family", _families(), ids=lambda p: p.name)
def test_every_file_has_a_row_with_source_and_licence(family):
    rows = _rows(family / "MANIFEST.md")
    entries = [row["file"].strip("`") for row in rows]
    files = [p.relative_to(family).as_posix() for p in family.rglob("*") if p.is_file() and p.name not in _NOT_DATA]
    assert files, family
    unlisted = [rel for rel in files if not any(_covers(e, rel) for e in entries)]
    assert unlisted == [], f"{family.name}/MANIFEST.md lists no row for {unlisted}"
    for row in rows:
        source = next(v for k, v in row.items() if k.startswith("source"))
        assert re.search(r"@[0-9a-f]{7,}:|==[\w.]+:", source), f"{family.name}: {row['file']} source {source!r}"
        assert row["license"] in LICENCE_TEXTS, f"{family.name}: {row['file']} licence {row['license']!r}"


def test_licence_texts_are_there():
    named = {name for texts in LICENCE_TEXTS.values() for name in texts}
    present = {p.name for p in (DATA_DIR / "LICENSES").iterdir()}
    assert named == present
    for name in named:
        text = (DATA_DIR / "LICENSES" / name).read_text(encoding="utf-8")
        assert "copyright" in text.lower() or "Brigham" in text, name


@pytest.mark.skipif(shutil.which("git") is None or not (REPO_ROOT / ".git").exists(),
                    reason="not a git checkout (e.g. an unpacked sdist)")
def test_git_keeps_the_data_byte_for_byte():
    crlf = DATA_DIR / "markups" / "L1.fcsv"
    assert b"\r\n" in crlf.read_bytes()  # a file git would otherwise normalise
    out = subprocess.run(["git", "check-attr", "text", "--", str(crlf.relative_to(REPO_ROOT))], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("text: unset"), out
    ignored = subprocess.run(["git", "status", "--ignored", "--porcelain", "--", "tests/data"], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert not [line for line in ignored.splitlines() if line.startswith("!!")], ignored
