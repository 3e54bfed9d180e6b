"""Progress reporting and cancellation for long loads, saves and batch runs (no napari here).

A :class:`Progress` is handed to a long operation (``read_nrrd(..., progress=p)``,
``write_nifti(..., progress=p)``, :func:`napari_medio.batch.convert_batch`).  The
operation calls :meth:`Progress.start` with the amount of work, :meth:`Progress.advance`
as it goes, and :meth:`Progress.check` at safe points; ``check`` raises
:class:`~napari_medio.core.errors.CancelledError` once :meth:`Progress.cancel` was
called (from any thread, e.g. a Cancel button).  Writers run inside
:func:`~napari_medio.core.fileio.atomic_output`, so a cancelled save leaves no
half-written file and the previous file intact.

The same object drives any bar with tqdm's interface -- ``tqdm.tqdm`` on the
command line and ``napari.utils.progress`` (a tqdm subclass) in the viewer::

    from tqdm import tqdm
    p = Progress.for_bar(tqdm(unit="B", unit_scale=True))
    vol = registry.read("ct.nii.gz", progress=p)

or any callback ``callback(done, total, description)``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .errors import CancelledError

__all__ = ["Progress", "ensure_progress", "tqdm_progress"]

Callback = Callable[[float, float | None, str], Any]


class Progress:
    """Thread-safe progress counter with a cancel flag and optional callbacks.

    ``callback(done, total, description)`` is called after every change; a
    callback returning ``False`` cancels the operation (a GUI can wire its
    Cancel button that way, or call :meth:`cancel`).
    """

    def __init__(self, total: float | None = None, description: str = "",
                 callback: Callback | None = None) -> None:
        self.total = total
        self.done = 0.0
        self.description = description
        self._callbacks: list[Callback] = [callback] if callback is not None else []
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.path: str | None = None

    # -- wiring --------------------------------------------------------------------------
    @classmethod
    def for_bar(cls, bar: Any, description: str = "") -> Progress:
        """A Progress that drives a tqdm-like bar (``tqdm.tqdm``, ``napari.utils.progress``)."""
        p = cls(description=description)
        state = {"shown": 0.0}

        def update(done: float, total: float | None, desc: str) -> None:
            if total is not None and getattr(bar, "total", None) != total:
                bar.total = total
                if hasattr(bar, "refresh"):
                    bar.refresh()
            if desc and hasattr(bar, "set_description") and getattr(bar, "_medio_desc", None) != desc:
                bar.set_description(desc)
                bar._medio_desc = desc
            step = done - state["shown"]
            if step:
                bar.update(step)
                state["shown"] = done

        p.add_callback(update)
        return p

    def add_callback(self, callback: Callback) -> None:
        """Also report to ``callback(done, total, description)``."""
        self._callbacks.append(callback)

    # -- reporting -----------------------------------------------------------------------
    def start(self, total: float | None, description: str | None = None) -> None:
        """Begin (or restart) counting toward ``total`` units."""
        with self._lock:
            self.total = total
            self.done = 0.0
            if description is not None:
                self.description = description
        self._notify()
        self.check()

    def advance(self, amount: float = 1) -> None:
        """Count ``amount`` more units done, then raise if cancelled."""
        with self._lock:
            self.done += amount
        self._notify()
        self.check()

    def __call__(self, done: float, total: float | None = None, description: str | None = None) -> None:
        """Report as a ``progress(done, total[, description])`` callback does, then raise if cancelled.

        So a Progress also serves the readers and writers that take such a callback
        (DICOM folders, scenes, exports).
        """
        with self._lock:
            self.done = float(done)
            if total is not None:
                self.total = total
            if description is not None:
                self.description = description
        self._notify()
        self.check()

    def set_description(self, description: str) -> None:
        """Change the text shown with the bar."""
        self.description = description
        self._notify()

    def _notify(self) -> None:
        for cb in list(self._callbacks):
            if cb(self.done, self.total, self.description) is False:
                self._cancel.set()

    # -- cancellation --------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the operation to stop at its next :meth:`check` (safe from any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`CancelledError` when cancelled."""
        if self._cancel.is_set():
            raise CancelledError(self.path, f"{self.description or 'operation'} cancelled")

    def __repr__(self) -> str:
        return f"Progress({self.description!r}, {self.done}/{self.total}, cancelled={self.cancelled})"


class _NullProgress(Progress):
    """Does nothing; used when the caller gives no Progress."""

    def _notify(self) -> None:  # no callbacks, no locking overhead worth having
        pass


def ensure_progress(progress: Progress | None) -> Progress:
    """``progress`` itself, or a silent Progress when None."""
    return progress if progress is not None else _NullProgress()


def tqdm_progress(description: str = "", unit: str = "B", **kwargs: Any) -> tuple[Progress, Any]:
    """A Progress on a new tqdm bar (bytes by default) for the CLI; returns ``(progress, bar)``."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit=unit, unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000,
               **kwargs)
    return Progress.for_bar(bar, description), bar
