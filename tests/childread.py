"""Read files with ``napari_medio.read`` in a child process, so a crash fails a test instead of killing pytest.

The child gets a memory cap (``RLIMIT_AS``) and the caller a time limit; it reports one JSON line per file:
``{"path": ..., "outcome": "ok" | "MedioError" | "CancelledError" | "<other exception type>", "message": ...}``
(for "ok", the message holds the warnings the read gave).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

#: Memory cap of the child (bytes of address space): far above any test file, far below a header-sized bomb.
MEMORY_CAP = 3 * 1024**3

_CHILD = r"""
import json, resource, sys, warnings
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import napari_medio
from napari_medio.core.errors import MedioError
for path in sys.stdin.read().splitlines():
    print(json.dumps({"path": path, "outcome": "start"}), flush=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            napari_medio.read(path)
        outcome, message = "ok", " | ".join(str(w.message) for w in caught)
    except MedioError as exc:
        outcome, message = "MedioError", str(exc)
    except MemoryError as exc:
        outcome, message = "MemoryError", str(exc)
    except BaseException as exc:
        outcome, message = type(exc).__name__, str(exc)
        if type(exc).__name__ == "CancelledError":
            outcome = "CancelledError"
    print(json.dumps({"path": path, "outcome": outcome, "message": message[:300]}), flush=True)
"""


def _src_path() -> str:
    import napari_medio

    return str(Path(napari_medio.__file__).resolve().parent.parent)


def read_in_child(paths: Sequence[os.PathLike | str], *, timeout: float = 120.0,
                  memory: int = MEMORY_CAP) -> dict[str, tuple[str, str]]:
    """``{path: (outcome, message)}`` for each path read in one child; a path during which the child died
    gets ``("signal N" | "exit N" | "timeout", stderr tail)`` and the rest are read in a new child."""
    todo = [os.fspath(p) for p in paths]
    results: dict[str, tuple[str, str]] = {}
    env = dict(os.environ, PYTHONPATH=_src_path() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    while todo:
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(memory)], input="\n".join(todo),
                                  capture_output=True, text=True, timeout=timeout, env=env)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
            failure = f"signal {-code}" if code < 0 else f"exit {code}"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            failure = "timeout"
        started = None
        for line in out.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec["outcome"] == "start":
                started = rec["path"]
            else:
                results[rec["path"]] = (rec["outcome"], rec.get("message", ""))
                started = None
        if started is None:
            missing = [p for p in todo if p not in results]
            for p in missing:  # child died before starting these (e.g. at import)
                results[p] = (failure, err[-500:])
            break
        results[started] = (failure, err[-500:])
        todo = todo[todo.index(started) + 1:]
    return results


def assert_refused_in_child(paths: Sequence[os.PathLike | str], **kwargs) -> None:
    """Every path gives a MedioError (naming the file) in a child process: no crash, hang or other exception."""
    results = read_in_child(paths, **kwargs)
    bad = {p: r for p, r in results.items() if r[0] != "MedioError" or Path(p).name not in r[1]}
    assert not bad, bad
