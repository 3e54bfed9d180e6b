"""Bad-input files for the markups, transforms and tables tests: empty, truncated, random bytes, wrong content."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError

NOT_THIS = b"Patient notes, not this format.\nThe extension says otherwise.\n" * 20


def variants(tmp_path: Path, good: Path, ext: str, cuts: Sequence[int] = ()) -> list[Path]:
    """Truncations of ``good`` (at ``cuts``, 1 and 16 bytes and half), an empty file, random bytes, plain text."""
    data = good.read_bytes()
    n = len(data)
    out = []
    sizes = sorted({c if c >= 0 else n + c for c in (1, 16, n // 2, *cuts)} - {0, n})
    for i, size in enumerate(sizes):
        p = tmp_path / f"cut{'abcdefghij'[i]}{ext}"
        p.write_bytes(data[:size])
        out.append(p)
    for name, content in (("empty", b""), ("random", np.random.default_rng(7).bytes(max(n, 2048))),
                          ("text", NOT_THIS)):
        p = tmp_path / f"{name}{ext}"
        p.write_bytes(content)
        out.append(p)
    return out


def assert_rejected(paths: Iterable[Path], **options) -> None:
    """Every path raises FormatError naming the file through ``napari_medio.read``."""
    for p in paths:
        with pytest.raises(FormatError) as info:
            napari_medio.read(p, **options)
        assert str(p) in str(info.value), (p, str(info.value))
