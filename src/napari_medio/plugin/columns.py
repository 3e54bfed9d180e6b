"""Tables that fit their dock: every column visible at the dock's width, long text elided in the middle.

:func:`fit_columns` sets a table up once (interactive, user-resizable columns,
middle elision, no horizontal scrolling unless even the headers do not fit) and
keeps the columns fitted whenever the table is resized or refilled: each column
gets what its contents need, the widest ones are cut down to a fair share (never
below their header's width), and what is left goes to the ``stretch`` column.
:func:`path_item` makes a cell showing a path with the full path as its tooltip.
"""
from __future__ import annotations

import os
from typing import Any

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QTableWidgetItem

__all__ = ["TABLE_DOCK_WIDTH", "fit_columns", "path_item", "refit", "text_item"]

#: Below this width (px) a column shows nothing readable.
MIN_COLUMN = 36
#: Header titles wider than this (px) may be elided when the room is short.
_MAX_HEADER = 80
#: Docks with tables of files and options ask for at least this width (px).
TABLE_DOCK_WIDTH = 400


class _Fitter(QObject):
    """Refits a table's columns when the table is resized or its rows change."""

    def __init__(self, table: QTableView, stretch: int | None) -> None:
        super().__init__(table)
        self.table = table
        self.stretch = stretch
        self._busy = False
        table.installEventFilter(self)
        model = table.model()
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.dataChanged):
            signal.connect(self._changed)  # a bound method: dropped with this object

    def _changed(self, *_: Any) -> None:
        self.fit()

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if obj is self.table and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.fit()
        return False

    def fit(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            _fit(self.table, self.stretch)
        except RuntimeError:  # the table is being deleted (its model empties itself)
            pass
        finally:
            self._busy = False


def _fit(table: QTableView, stretch: int | None) -> None:
    header = table.horizontalHeader()
    columns = [c for c in range(header.count()) if not header.isSectionHidden(c)]
    if not columns:
        return
    avail = table.viewport().width()
    if avail <= 0:
        return
    if table.property("medio_data_table"):
        for c in columns:
            header.resizeSection(c, max(MIN_COLUMN, min(table.sizeHintForColumn(c) + 8, avail // 2),
                                        min(header.sectionSizeHint(c), avail // 2)))
        return
    mins = {c: max(MIN_COLUMN, min(header.sectionSizeHint(c), _MAX_HEADER)) for c in columns}
    want = {c: max(mins[c], table.sizeHintForColumn(c) + 8) for c in columns}
    if sum(want.values()) <= avail:
        widths = dict(want)
    else:
        # Water-fill: find the cap so that min(want, max(cap, min)) sums to the room there is.
        lo, hi = 0, max(want.values())
        while lo < hi:
            cap = (lo + hi + 1) // 2
            total = sum(min(want[c], max(cap, mins[c])) for c in columns)
            lo, hi = (cap, hi) if total <= avail else (lo, cap - 1)
        widths = {c: min(want[c], max(lo, mins[c])) for c in columns}
    spare = avail - sum(widths.values())
    if spare > 0:
        target = stretch if stretch in widths else columns[-1]
        widths[target] += spare
    for c in columns:
        if header.sectionSize(c) != widths[c]:
            header.resizeSection(c, widths[c])


def fit_columns(table: QTableView, stretch: int | None = None, row_numbers: bool = False,
                min_width: int = 0, data: bool = False) -> QTableView:
    """Make ``table``'s columns fit its width from now on; ``stretch`` takes the room left (default: last).

    ``min_width``: the table's minimum width (px), which makes the dock that holds it open wide enough.
    ``data``: the columns are a data table's (any number of them): each gets what its contents need, up
    to half the width, and the table scrolls sideways when they do not all fit.
    """
    header = table.horizontalHeader()
    header.setStretchLastSection(False)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setMinimumSectionSize(MIN_COLUMN)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.setWordWrap(False)
    table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.verticalHeader().setVisible(row_numbers)
    if min_width:
        table.setMinimumWidth(min_width)
    table.setProperty("medio_data_table", bool(data))
    old = getattr(table, "_medio_fitter", None)
    if old is not None:
        old.stretch = stretch
    else:
        table._medio_fitter = _Fitter(table, stretch)
    table._medio_fitter.fit()
    return table


def refit(table: QTableView) -> None:
    """Fit ``table``'s columns again now (after cell widgets changed)."""
    fitter = getattr(table, "_medio_fitter", None)
    if fitter is not None:
        fitter.fit()


def text_item(text: Any, tooltip: str | None = None, editable: bool = False) -> QTableWidgetItem:
    """A cell with ``text`` ("" for None), its tooltip the text itself (or ``tooltip``)."""
    shown = "" if text is None else str(text)
    item = QTableWidgetItem(shown)
    if tooltip or shown:
        item.setToolTip(tooltip or shown)
    if not editable:
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def path_item(path: str | os.PathLike[str], editable: bool = False) -> QTableWidgetItem:
    """A cell showing a path (elided in the middle by the table), the full path as its tooltip."""
    return text_item(os.fspath(path), tooltip=os.fspath(path), editable=editable)
