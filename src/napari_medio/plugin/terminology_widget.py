"""Naming segments from a terminology: :func:`apply_terminology` and the Terminology dock.

Choosing a terminology entry for a label value of a Labels layer writes, in the
form the ``.seg.nrrd`` writer reads back (``convert_segmentation.segmentation_from_labels``
-> ``Segmentation.from_labelmap``):

* the segment name into the layer's ``features`` (``index`` / ``name`` rows),
* the recommended colour into the layer's direct label colormap,
* the segment (name, colour, ``TerminologyEntry`` tag) into
  ``layer.metadata["medio"]["metadata"]["segmentation"]["segments"]`` (created for a
  plain label map, which then saves as a segmentation with that entry), and the
  name and colour into ``...["metadata"]["color_table"]``.

Slicer's General Anatomy terminology ships with the package; loaded ``.term.json``
files are offered too.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import MedioError
from ..core.segmentation import TERMINOLOGY_TAG
from ..core.terminology import Terminology, TerminologyChoice

__all__ = ["apply_terminology", "label_terminology", "available_terminologies", "TerminologyDock"]


def available_terminologies() -> list[Terminology]:
    """The built-in Slicer General Anatomy terminology, then every ``.term.json`` loaded in this session."""
    from .convert_transform import STORE

    out = [t for t in STORE.terminologies if t.context_type == "segmentation"]
    builtin = _builtin_cache()
    if builtin is not None:
        out.insert(0, builtin)
    return out


_BUILTIN: list = []


def _builtin_cache() -> Terminology | None:
    if not _BUILTIN:
        from ..formats.terminology import builtin_terminology

        _BUILTIN.append(builtin_terminology())
    return _BUILTIN[0]


def _set_feature_name(layer: Any, value: int, name: str) -> None:
    import pandas as pd

    df = layer.features
    if df is None or not len(df.columns) or "name" not in df.columns:
        df = pd.DataFrame({"index": [0], "name": ["background"]})
    else:
        df = df.copy()
        if "index" not in df.columns:
            df.insert(0, "index", list(range(len(df))))
    hit = df.index[df["index"].astype(int) == value]
    if len(hit):
        df.loc[hit[0], "name"] = name
    else:
        row = {c: ("" if df[c].dtype == object else 0) for c in df.columns}
        row.update({"index": value, "name": name})
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True)
    layer.features = df.sort_values("index", kind="stable").reset_index(drop=True)


def _set_label_color(layer: Any, value: int, rgb: tuple) -> None:
    from napari.utils.colormaps import DirectLabelColormap

    cmap = layer.colormap
    if isinstance(cmap, DirectLabelColormap):
        colors = {k: tuple(float(x) for x in np.asarray(v).reshape(-1)[:4]) for k, v in cmap.color_dict.items()}
    else:  # a cyclic map: keep the colours the labels show now
        data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
        present = np.unique(np.asarray(data)) if isinstance(data, np.ndarray) else np.array([], dtype=int)
        colors = {}
        for v in present:
            if int(v) != 0:
                colors[int(v)] = tuple(float(x) for x in np.asarray(cmap.map(np.array([v]))).reshape(-1)[:4])
        colors[None] = (0.5, 0.5, 0.5, 1.0)
    colors[0] = (0.0, 0.0, 0.0, 0.0)
    colors[int(value)] = (float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0)
    layer.colormap = DirectLabelColormap(color_dict=colors)


def _unique_id(base: str, used: set) -> str:
    out, i = base, 1
    while out in used:
        i += 1
        out = f"{base}_{i}"
    return out


def apply_terminology(layer: Any, label_value: int, choice: TerminologyChoice, *,
                      name: str | None = None) -> dict:
    """Name label ``label_value`` of a Labels layer from a terminology entry; returns the segment written.

    The name (``name`` or the entry's Slicer name), the recommended colour and the
    ``TerminologyEntry`` string are stored so that saving the layer as ``.seg.nrrd``
    keeps them.
    """
    if type(layer).__name__ != "Labels":
        raise MedioError(getattr(layer, "name", None), "terminology names label values of a Labels layer")
    value = int(label_value)
    if value <= 0:
        raise MedioError(layer.name, "label value 0 is the background: choose a positive label value")
    seg_name = name or choice.name
    rgb = [float(c) for c in choice.color]
    entry = choice.terminology_entry()
    _set_feature_name(layer, value, seg_name)
    _set_label_color(layer, value, rgb)
    medio = layer.metadata.setdefault("medio", {})
    md = medio.setdefault("metadata", {})
    table = md.get("segmentation")
    if not table:
        table = {"segments": [], "layer": None, "n_layers": 1, "fields": {}, "name": layer.name}
        md["segmentation"] = table
    merged = table.get("merged_label_values")
    shown = table.get("layer")
    target = None
    for d in table.setdefault("segments", []):
        v = int(merged.get(d["id"], d.get("label_value", 1))) if merged else int(d.get("label_value", 1))
        if v == value and (merged or shown is None or int(d.get("layer", 0)) == int(shown)):
            target = d
            break
    if target is None:
        target = {"id": _unique_id(f"Segment_{value}", {d["id"] for d in table["segments"]}),
                  "label_value": value, "layer": int(shown or 0), "extent": None, "tags": {}}
        table["segments"].append(target)
        if merged is not None:
            merged[target["id"]] = value
    target["name"] = seg_name
    target["color"] = rgb
    target["tags"] = dict(target.get("tags") or {})
    target["tags"][TERMINOLOGY_TAG] = entry
    target["terminology"] = entry
    target["name_auto_generated"] = False
    target["color_auto_generated"] = False
    colors = md.setdefault("color_table", {})
    colors[value] = {"name": seg_name, "color": rgb + [1.0]}
    return dict(target)


def label_terminology(layer: Any, label_value: int) -> str | None:
    """The ``TerminologyEntry`` stored for a label value of a Labels layer (None when unset)."""
    table = (((layer.metadata or {}).get("medio") or {}).get("metadata") or {}).get("segmentation") or {}
    merged = table.get("merged_label_values")
    for d in table.get("segments", []):
        v = int(merged.get(d["id"], d.get("label_value", 1))) if merged else int(d.get("label_value", 1))
        if v == int(label_value):
            return (d.get("tags") or {}).get(TERMINOLOGY_TAG) or d.get("terminology")
    return None


def _qt():
    from qtpy import QtGui, QtWidgets

    return QtWidgets, QtGui


try:  # the dock needs Qt; the function above does not
    from qtpy.QtWidgets import QWidget as _QWidget
except Exception:  # pragma: no cover - headless without Qt
    _QWidget = object  # type: ignore[misc,assignment]


class TerminologyDock(_QWidget):  # type: ignore[misc,valid-type]
    """Pick a terminology entry for a label value of a Labels layer (name, colour, TerminologyEntry)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        QtWidgets, QtGui = _qt()
        from .convert_transform import STORE

        self.viewer = napari_viewer
        self.terminologies = QtWidgets.QComboBox()
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("Search (e.g. kidney)")
        self.entries = QtWidgets.QListWidget()
        self.layer = QtWidgets.QComboBox()
        self.value = QtWidgets.QSpinBox()
        self.value.setRange(1, 2**31 - 1)
        self.name = QtWidgets.QLineEdit()
        self.apply_button = QtWidgets.QPushButton("Name label from terminology")
        self.status = QtWidgets.QLabel("")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Terminology"))
        layout.addWidget(self.terminologies)
        layout.addWidget(self.search)
        layout.addWidget(self.entries)
        form = QtWidgets.QFormLayout()
        form.addRow("Labels layer", self.layer)
        form.addRow("Label value", self.value)
        form.addRow("Segment name", self.name)
        layout.addLayout(form)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.status)
        self._choices: list[TerminologyChoice] = []
        self._QtGui = QtGui
        self.terminologies.currentIndexChanged.connect(lambda *_: self.show_entries())
        self.search.textChanged.connect(lambda *_: self.show_entries())
        self.entries.currentRowChanged.connect(lambda *_: self._entry_changed())
        self.layer.currentIndexChanged.connect(lambda *_: self._layer_changed())
        self.apply_button.clicked.connect(lambda: self.apply())
        STORE.connect(self.refresh)
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        terms = available_terminologies()
        for combo, items in ((self.terminologies, [t.name or t.context_name for t in terms]),
                             (self.layer, [lyr.name for lyr in self.viewer.layers if type(lyr).__name__ == "Labels"])):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(items)
            if current in items:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        self.show_entries()
        self._layer_changed()

    def current_terminology(self) -> Terminology | None:
        terms = available_terminologies()
        i = self.terminologies.currentIndex()
        return terms[i] if 0 <= i < len(terms) else None

    def show_entries(self) -> None:
        term = self.current_terminology()
        self.entries.clear()
        self._choices = [] if term is None else (term.find(self.search.text()) if self.search.text().strip()
                                                 else list(term.choices()))
        for c in self._choices:
            pix = self._QtGui.QPixmap(12, 12)
            pix.fill(self._QtGui.QColor(*[int(round(v * 255)) for v in c.color]))
            from qtpy.QtWidgets import QListWidgetItem

            self.entries.addItem(QListWidgetItem(self._QtGui.QIcon(pix), c.display_name))

    def select(self, text: str) -> None:
        """Select the first entry whose display name contains ``text``."""
        for i, c in enumerate(self._choices):
            if text.lower() in c.display_name.lower():
                self.entries.setCurrentRow(i)
                return
        raise KeyError(text)

    def current_choice(self) -> TerminologyChoice | None:
        i = self.entries.currentRow()
        return self._choices[i] if 0 <= i < len(self._choices) else None

    def _entry_changed(self) -> None:
        c = self.current_choice()
        if c is not None:
            self.name.setText(c.name)

    def _layer_changed(self) -> None:
        name = self.layer.currentText()
        if name in self.viewer.layers:
            sel = int(getattr(self.viewer.layers[name], "selected_label", 1) or 1)
            self.value.setValue(max(1, sel))

    def apply(self) -> dict | None:
        c = self.current_choice()
        name = self.layer.currentText()
        if c is None or name not in self.viewer.layers:
            self.status.setText("choose an entry and a Labels layer")
            return None
        seg = apply_terminology(self.viewer.layers[name], self.value.value(), c, name=self.name.text() or None)
        self.status.setText(f"label {self.value.value()}: {seg['name']}")
        return seg
