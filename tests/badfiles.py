"""Bad-input cases shared by every format family's tests: empty, truncated, random, mislabelled."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError

#: Content that is no binary or structured format at all, for "the extension lies" cases.
NOT_AN_IMAGE = b"Patient notes, not an image.\nThe extension says otherwise.\n" * 20


def variants(tmp_path: Path, good: Path, ext: str, cuts: Sequence[int] = ()) -> list[Path]:
    """Bad files with extension ``ext`` derived from a good file: truncations at ``cuts``
    (negative = from the end) plus 1 and 16 bytes and half (named without digits), an empty file, random bytes,
    and a text file under the extension."""
    data = good.read_bytes()
    out = []
    n = len(data)
    sizes = sorted({c if c >= 0 else n + c for c in (1, 16, n // 2, *cuts)} - {0, n})
    for i, size in enumerate(sizes):
        p = tmp_path / f"cut{'abcdefghij'[i]}{ext}"  # no digits: not a numbered series
        p.write_bytes(data[:size])
        out.append(p)
    for name, content in (("empty", b""), ("random", np.random.default_rng(7).bytes(max(n, 2048))),
                          ("text", NOT_AN_IMAGE)):
        p = tmp_path / f"{name}{ext}"
        p.write_bytes(content)
        out.append(p)
    return out


def assert_rejected(paths: Iterable[Path], **options) -> None:
    """Every path raises FormatError (a ValueError naming the file) through ``napari_medio.read``."""
    for p in paths:
        with pytest.raises(FormatError) as info:
            napari_medio.read(p, **options)
        assert isinstance(info.value, ValueError)
        assert str(p) in str(info.value), (p, str(info.value))


def no_temp_files(folder: Path) -> bool:
    """No leftover temporary files from an atomic write."""
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".part")]
