"""Batch conversion of many files or DICOM series on dask (locally or on a cluster).

:func:`convert_batch` converts every :class:`BatchItem` to one output file in
``out_dir`` with the chosen format, one dask task per item:

* ``scheduler=None`` / ``"processes"`` -- dask's local process pool (all cores);
  ``"threads"`` and ``"sync"`` are dask's other local schedulers;
* a ``dask.distributed`` scheduler address (``"tcp://host:8786"``) or a
  ``distributed.Client`` -- the work runs on that cluster (its workers must see
  the input and output paths, e.g. a shared file system).

An item that fails (corrupt input, unsupported data) is recorded with its
reason and does not stop the others.  Every output is written atomically, so an
existing output is complete: a rerun skips it (``overwrite=False``) and only
does what is left.  An item read as several volumes (a DICOM series with 7 echoes)
writes every one: the first to ``name.ext``, the others to ``name-2.ext`` ... (see
:func:`output_paths`), and its result lists them all.  The summary -- one entry per item with its status
(``done``, ``skipped``, ``failed``), output and reason -- is written to
``out_dir / "medio-batch-summary.json"``.  A
:class:`~napari_medio.core.progress.Progress` counts finished items and can
cancel the run.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import CancelledError, MedioError

__all__ = ["BatchItem", "BatchReport", "convert_batch", "convert_one", "items_from_paths", "items_from_database",
           "output_paths", "SUMMARY_NAME", "TARGETS"]

SUMMARY_NAME = "medio-batch-summary.json"
#: Output formats by the name given to ``--to``: the file extension written.
TARGETS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "ome.zarr": ".ome.zarr", "seg.nrrd": ".seg.nrrd",
           "mha": ".mha"}


@dataclass
class BatchItem:
    """One thing to convert: a file/folder (``kind="file"``) or a DICOM series in a database."""

    source: str
    name: str
    kind: str = "file"
    series_uid: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BatchReport:
    """What a batch run did: one result dict per item, the summary file and the counts."""

    results: list[dict] = field(default_factory=list)
    summary_path: str | None = None
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)

    @property
    def files_written(self) -> int:
        """How many files the done items wrote (an item read as several volumes writes each)."""
        return sum(len(r.get("outputs") or []) for r in self.results if r["status"] == "done")

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if r["status"] == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed


_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _safe_name(text: str) -> str:
    return _SAFE.sub("_", text).strip("._") or "item"


def _strip_extension(name: str) -> str:
    from .formats.naming import base_name

    try:
        return base_name(Path(name))
    except Exception:  # pragma: no cover - base_name is simple
        return Path(name).stem


def items_from_paths(paths: Iterable[str | os.PathLike[str]]) -> list[BatchItem]:
    """Items for files/folders; a ``.txt``/``.lst`` file lists one path per line (``#`` comments)."""
    items: list[BatchItem] = []
    for raw in paths:
        p = Path(raw)
        if p.suffix.lower() in (".txt", ".lst") and p.is_file():
            base = p.parent
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    items.extend(items_from_paths([q if q.is_absolute() else base / q]))
            continue
        items.append(BatchItem(source=os.path.abspath(os.fspath(p)), name=_safe_name(_strip_extension(p.name))))
    return items


def items_from_database(folder: str | os.PathLike[str], search: str = "") -> list[BatchItem]:
    """One item per series of the napari-medio DICOM database in ``folder``."""
    try:
        from .dicom.database import DicomDatabase
    except ImportError as exc:  # pragma: no cover - the DICOM package is part of napari-medio
        raise MedioError(folder, f"the DICOM database is not available: {exc}") from None
    items = []
    with DicomDatabase(folder) as db:
        for s in db.series(search=search):
            label = "_".join(str(x) for x in (s.get("number"), s.get("description"), s.get("modality")) if x)
            name = _safe_name(f"{label}_{s['uid'][-12:]}" if label else s["uid"])
            items.append(BatchItem(source=os.path.abspath(os.fspath(folder)), name=name, kind="dicom-series",
                                   series_uid=s["uid"]))
    return items


def _unique_names(items: Sequence[BatchItem]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for it in items:
        n = seen.get(it.name, 0)
        seen[it.name] = n + 1
        out.append(it.name if n == 0 else f"{it.name}_{n + 1}")
    return out


def convert_one(item: dict, output: str, options: dict | None = None) -> dict:
    """Convert one item (a :class:`BatchItem` dict) to ``output``; never raises for bad input.

    Returns ``{"source", "name", "output", "outputs", "objects", "status": "done"|"failed", "reason",
    "seconds"}``: ``outputs`` lists every file written (see :func:`output_paths`).
    """
    from .core import registry

    options = dict(options or {})
    read_options = dict(options.pop("read_options", None) or {})
    start = time.perf_counter()
    result = {"source": item["source"], "name": item["name"], "series_uid": item.get("series_uid"),
              "output": output, "outputs": [], "objects": 0, "status": "done", "reason": ""}
    try:
        if item.get("kind") == "dicom-series":
            from .dicom.database import DicomDatabase

            with DicomDatabase(item["source"]) as db:
                objects = db.load_series(item["series_uid"])
        else:
            objects = registry.read(item["source"], **read_options)
        if not objects:
            raise MedioError(item["source"], "holds no data")
        result.update(_write_all(objects, output, options))
    except CancelledError:
        raise
    except (MedioError, OSError, ValueError, TypeError, KeyError, IndexError, MemoryError, RuntimeError) as exc:
        result["status"] = "failed"
        result["reason"] = str(exc) if isinstance(exc, MedioError) else f"{type(exc).__name__}: {exc}"
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def output_paths(output: str, count: int) -> list[str]:
    """The files for ``count`` objects of one item: ``output`` first, then ``name-2.ext`` ... beside it."""
    ext = next((e for e in sorted(TARGETS.values(), key=len, reverse=True) if output.endswith(e)), "")
    stem = output[: len(output) - len(ext)] if ext else output
    return [output] + [f"{stem}-{i}{ext}" for i in range(2, count + 1)]


def _write_all(objects: list, output: str, options: dict) -> dict:
    """Write every object of the first object's kind; the first goes to ``output``, written last.

    Writing ``output`` last keeps a rerun's skip rule sound: when it exists, so do the others.
    Objects of another kind (a scene's models beside its volumes) are counted, not written.
    """
    from .core import registry

    kind = getattr(objects[0], "kind", None)
    same = [o for o in objects if getattr(o, "kind", None) == kind]
    paths = output_paths(output, len(same))
    for obj, path in list(zip(same, paths))[1:] + [(same[0], paths[0])]:
        registry.write(obj, path, **options)
    other = len(objects) - len(same)
    note = f"{other} object(s) of another kind than {kind} not written" if other else ""
    return {"outputs": paths, "objects": len(same), "reason": note}


def _write_summary(out_dir: Path, report: BatchReport, to: str) -> str:
    from .core.fileio import write_text

    path = out_dir / SUMMARY_NAME
    doc = {"to": to, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": round(report.seconds, 3),
           "counts": {s: report.count(s) for s in ("done", "skipped", "failed")},
           "files_written": report.files_written,
           "failed": [{"source": r["source"], "series_uid": r.get("series_uid"), "reason": r["reason"]}
                      for r in report.failed],
           "items": report.results}
    return write_text(path, json.dumps(doc, indent=2))[0]


def convert_batch(
    items: Sequence[BatchItem],
    out_dir: str | os.PathLike[str],
    to: str = "nii.gz",
    *,
    scheduler: Any = None,
    workers: int | None = None,
    overwrite: bool = False,
    write_options: dict | None = None,
    progress: Any = None,
) -> BatchReport:
    """Convert ``items`` into ``out_dir`` as ``to`` (``nii.gz``, ``nrrd``, ``ome.zarr``, ...) on dask.

    See the module docstring for schedulers, skipping and the summary file.
    """
    from .core import registry
    from .core.progress import ensure_progress

    if to.lstrip(".") not in TARGETS:
        raise MedioError(None, f"unknown target {to!r}; choose one of {', '.join(TARGETS)}")
    ext = TARGETS[to.lstrip(".")]
    registry.check_write_options(f"*{ext}", dict(write_options or {}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prog = ensure_progress(progress)
    started = time.perf_counter()
    report = BatchReport()
    names = _unique_names(items)
    todo: list[tuple[dict, str]] = []
    for item, name in zip(items, names):
        target = os.fspath(out / (name + ext))
        if os.path.exists(target) and not overwrite:
            report.results.append({"source": item.source, "name": name, "series_uid": item.series_uid,
                                   "output": target, "status": "skipped", "reason": "output exists", "seconds": 0.0})
        else:
            todo.append((item.to_dict(), target))
    prog.start(len(items), f"converting to {to}")
    prog.advance(len(items) - len(todo))
    options = dict(write_options or {})
    try:
        if todo:
            report.results.extend(_run(todo, options, scheduler, workers, prog))
    finally:
        report.seconds = time.perf_counter() - started
        order = {os.fspath(out / (n + ext)): i for i, n in enumerate(names)}
        report.results.sort(key=lambda r: order.get(r["output"], 0))
        report.summary_path = _write_summary(out, report, to)
    return report


def _run(todo: list[tuple[dict, str]], options: dict, scheduler: Any, workers: int | None, prog) -> list[dict]:
    if scheduler is None or scheduler in ("processes", "threads", "sync", "synchronous", "single-threaded"):
        return _run_local(todo, options, scheduler or "processes", workers, prog)
    return _run_distributed(todo, options, scheduler, prog)


def _run_local(todo, options, scheduler: str, workers: int | None, prog) -> list[dict]:
    import dask
    from dask.callbacks import Callback

    results: list[dict] = []

    class _Count(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):  # noqa: N802 - dask's hook name
            if isinstance(result, dict) and "status" in result:
                prog.advance(1)

    tasks = [dask.delayed(convert_one, pure=False)(item, target, options) for item, target in todo]
    kwargs: dict[str, Any] = {"scheduler": "sync" if scheduler in ("synchronous", "single-threaded") else scheduler}
    if workers and kwargs["scheduler"] != "sync":
        kwargs["num_workers"] = int(workers)
    with _Count():
        results.extend(dask.compute(*tasks, **kwargs))
    return results


def _run_distributed(todo, options, scheduler: Any, prog) -> list[dict]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futures = [client.submit(convert_one, item, target, options, pure=False) for item, target in todo]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[dict | None] = [None] * len(futures)
        try:
            for fut in as_completed(futures):
                i = index[fut.key]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # a worker died or the task raised despite convert_one
                    item, target = todo[i]
                    results[i] = {"source": item["source"], "name": item["name"],
                                  "series_uid": item.get("series_uid"), "output": target, "status": "failed",
                                  "reason": f"{type(exc).__name__}: {exc}", "seconds": 0.0}
                prog.advance(1)
        except BaseException:
            client.cancel(futures)
            raise
        return [r for r in results if r is not None]
    finally:
        if own:
            client.close()
