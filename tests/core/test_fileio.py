"""Safe writes (core/fileio.py): temporary files renamed into place, replaced files freed in the background."""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from napari_medio.core import fileio
from napari_medio.core.errors import WriteError


def _settle_remover() -> None:
    """Wait until the background remover has freed every replaced file queued so far."""
    if fileio._REMOVER:
        fileio._REMOVER[0].submit(lambda: None).result()


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".medio-"))


def _held_deleted(name: str) -> list[str]:
    """Descriptors of this process still open on a deleted file called ``name`` (Linux)."""
    fds = Path("/proc/self/fd")
    out = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.endswith(f"/{name} (deleted)"):
                out.append(link)
    return out


posix_only = pytest.mark.skipif(os.name != "posix" or not Path("/proc/self/fd").is_dir(),
                                reason="the replaced file is held open only on POSIX (checked through /proc)")


@posix_only
def test_overwriting_a_big_file_frees_it_in_the_background(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    first = os.urandom(fileio._FREE_LATER_ABOVE + 1)
    second = os.urandom(fileio._FREE_LATER_ABOVE * 2)
    gate = threading.Event()
    real_close = fileio._close_quietly
    monkeypatch.setattr(fileio, "_close_quietly", lambda fd: (gate.wait(10), real_close(fd)))
    for payload in (first, second):
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(payload)
        # the directory never shows a second name, not even while the old file is being freed
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    assert target.read_bytes() == second and os.stat(target).st_nlink == 1
    assert len(_held_deleted("out.bin")) == 1  # the first file, waiting for the background close
    gate.set()
    _settle_remover()
    assert _held_deleted("out.bin") == []


def test_a_reader_holding_the_old_file_keeps_its_bytes(tmp_path):
    target = tmp_path / "out.bin"
    old = os.urandom(fileio._FREE_LATER_ABOVE + 10)
    target.write_bytes(old)
    with open(target, "rb") as held:
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(b"new")
        _settle_remover()
        assert held.read() == old
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


@posix_only
def test_small_files_symlinks_fifos_and_hard_linked_targets_are_replaced_in_place(tmp_path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"x")
    with fileio.atomic_output(small) as temp:
        temp.write_bytes(b"y")
    assert small.read_bytes() == b"y"

    real = tmp_path / "real.bin"
    real.write_bytes(os.urandom(fileio._FREE_LATER_ABOVE + 1))
    before = real.read_bytes()
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with fileio.atomic_output(link) as temp:
        temp.write_bytes(b"through the link name")
    assert not link.is_symlink() and link.read_bytes() == b"through the link name"
    assert real.read_bytes() == before  # the symlink's target is not touched

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with fileio.atomic_output(fifo) as temp:  # never opened (that would wait for a writer)
        temp.write_bytes(b"now a file")
    assert fifo.read_bytes() == b"now a file"

    shared = tmp_path / "shared.bin"
    twin = tmp_path / "twin.bin"
    shared.write_bytes(os.urandom(fileio._FREE_LATER_ABOVE + 1))
    os.link(shared, twin)
    kept = twin.read_bytes()
    with fileio.atomic_output(shared) as temp:
        temp.write_bytes(b"new")
    assert shared.read_bytes() == b"new" and twin.read_bytes() == kept
    _settle_remover()
    assert _leftovers(tmp_path) == []
    assert _held_deleted("shared.bin") == [] and _held_deleted("real.bin") == []


def test_failed_write_leaves_the_old_file_and_no_temporaries(tmp_path):
    target = tmp_path / "out.bin"
    old = os.urandom(fileio._FREE_LATER_ABOVE + 1)
    target.write_bytes(old)
    with pytest.raises(RuntimeError):
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == old
    assert _leftovers(tmp_path) == []


@posix_only
def test_failed_rename_keeps_the_old_file_and_closes_it(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    old = os.urandom(fileio._FREE_LATER_ABOVE + 1)
    target.write_bytes(old)

    def refuse(src, dst):
        raise PermissionError(13, "refused")

    monkeypatch.setattr(fileio.os, "replace", refuse)
    with pytest.raises(PermissionError):
        with fileio.atomic_output(target) as temp:
            temp.write_bytes(b"new")
    monkeypatch.undo()
    _settle_remover()
    assert target.read_bytes() == old and os.stat(target).st_nlink == 1
    assert _leftovers(tmp_path) == []
    fds = [os.readlink(f) for f in Path("/proc/self/fd").iterdir() if os.path.exists(f)]
    assert str(target) not in fds  # the descriptor taken before the rename was closed


def test_unreadable_old_file_is_replaced_by_the_rename_itself(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(os.urandom(fileio._FREE_LATER_ABOVE + 1))
    real_open = os.open

    def no_read(path, flags, *a, **k):
        if Path(path) == target:
            raise PermissionError(13, "not readable")
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(fileio.os, "open", no_read)
    with fileio.atomic_output(target) as temp:
        temp.write_bytes(b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_uncreatable_target_is_a_write_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(WriteError, match="cannot create file: .*file is a file, not a folder"):
        with fileio.atomic_output(blocker / "inside.bin"):
            pass
    with pytest.raises(WriteError, match="file is a file, not a folder"):
        with fileio.atomic_output(blocker / "deeper" / "inside.bin"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
