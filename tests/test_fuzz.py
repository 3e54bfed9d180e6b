"""Seeded, bounded fuzzing: mutants of the test files, each read by ``napari_medio.read`` in a child process.

Every mutant (a truncation, flipped bytes, a header number made huge, zero or negative, or random bytes
after the first few) must be read or refused with a ``MedioError``: a signal, a timeout, an exhausted
memory cap or any other exception fails the test.  ``MEDIO_FUZZ_COUNT`` (mutants per family, default
200) and ``MEDIO_FUZZ_SEED`` change the campaign; the children batch many files, so two thousand
mutants take about a minute.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.childread import read_in_child
from tests.conftest import DATA_DIR

FAMILIES = ("colors", "dicom", "images", "markups", "models", "other", "scenes", "segmentations", "tables",
            "transforms")
#: Families with known failures, and why (each entry is a bug to fix, not a tolerance).
KNOWN_FAILING: dict[str, str] = {}
COUNT = int(os.environ.get("MEDIO_FUZZ_COUNT", "200"))
SEED = int(os.environ.get("MEDIO_FUZZ_SEED", "20261205"))
_NUMBER = re.compile(rb"(?<![\w.])\d{1,6}(?![\w.])")
_HOSTILE_NUMBERS = (b"0", b"-5", b"65535", b"2147483647", b"4294967296", b"99999999999999999999")


def _seeds(family: str) -> list[Path]:
    folder = DATA_DIR / family
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "MANIFEST.md"
             and 0 < p.stat().st_size < (2 << 20)]
    return files


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(4)
    n = len(data)
    if kind == 0:  # truncation
        return data[:int(rng.integers(1, max(n, 2)))]
    if kind == 1:  # flipped bytes, mostly in the header
        out = bytearray(data)
        span = min(n, 4096) if rng.random() < 0.8 else n
        for _ in range(int(rng.integers(1, 9))):
            out[int(rng.integers(span))] = int(rng.integers(256))
        return bytes(out)
    if kind == 2:  # a header number made hostile
        numbers = list(_NUMBER.finditer(data[:8192]))
        if numbers:
            m = numbers[int(rng.integers(len(numbers)))]
            return data[:m.start()] + _HOSTILE_NUMBERS[int(rng.integers(len(_HOSTILE_NUMBERS)))] + data[m.end():]
    keep = int(rng.integers(0, 64))  # random bytes after the magic
    return data[:keep] + rng.bytes(max(n - keep, 16))


def _mutants(family: str, folder: Path) -> list[Path]:
    rng = np.random.default_rng([SEED, FAMILIES.index(family)])
    seeds = _seeds(family)
    out = []
    for i in range(COUNT):
        seed = seeds[int(rng.integers(len(seeds)))]
        target = folder / f"m{i:04d}" / seed.name  # own folder: no sibling files join a series or scene
        target.parent.mkdir(parents=True)
        target.write_bytes(_mutate(seed.read_bytes(), rng))
        out.append(target)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_fuzzed_files_are_read_or_refused(tmp_path, family):
    if family in KNOWN_FAILING:
        pytest.xfail(KNOWN_FAILING[family])
    mutants = _mutants(family, tmp_path)
    results = read_in_child(mutants, timeout=60 + 2.0 * len(mutants))
    bad = {os.path.relpath(p, tmp_path): r for p, r in results.items()
           if r[0] not in ("ok", "MedioError", "CancelledError")}
    assert len(results) == len(mutants)
    assert not bad, f"{len(bad)} of {len(mutants)} mutants broke the reader (seed {SEED}): {bad}"
