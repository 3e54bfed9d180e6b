"""npe2 reader contribution: any file or folder the format registry recognises.

The reader returns napari LayerData and needs no viewer.  When a napari viewer
exists (``napari.current_viewer()``) it also tells the user about what gives no
layer: objects kept in the session store (transforms, tables, colour tables,
text) are named in one notification line and their dock is opened; Slicer 4
annotation nodes of a scene, which napari-medio does not show, are named too.

A DICOM folder (or DICOMDIR) is scanned once (headers only).  Localizers
(:mod:`napari_medio.dicom.localizer`) are left out; one remaining image series
loads directly; several open the series chooser
(:mod:`napari_medio.plugin.series_chooser`) when a viewer exists, and the reader
returns no layer.  Without a viewer every series but the localizers loads.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from ..core import registry
from ..core.errors import MedioError
from ..core.kinds import DataKind
from .layers import to_layer_data

PathLike = Union[str, "os.PathLike[str]"]

#: Dock (widget display name in napari.yaml) that shows each kind of non-layer object.
DOCK_OF_KIND = {
    DataKind.TRANSFORM: "Transforms",
    DataKind.TABLE: "Tables and colour tables",
    DataKind.COLORTABLE: "Tables and colour tables",
    DataKind.VOLUME_PROPERTY: "Tables and colour tables",
    DataKind.SHADER_PROPERTY: "Text",
    DataKind.TEXT: "Text",
    DataKind.TERMINOLOGY: "Terminology",
}

#: Slicer 4 annotation node tags -> what they are called in a message.
ANNOTATION_TAGS = {"AnnotationFiducials": "fiducial", "AnnotationRuler": "ruler", "AnnotationROI": "ROI",
                   "AnnotationAngle": "angle", "AnnotationSplines": "spline", "AnnotationBidimensional":
                   "bidimensional"}


def _recognised(path: PathLike) -> bool:
    try:
        registry.find_reader(path)
        return True
    except MedioError:
        return False


def get_reader(path: PathLike | list) -> Callable[..., list] | None:
    """npe2 ``get_reader``: a reader function when napari-medio can read ``path`` (or every path in a list)."""
    paths = path if isinstance(path, (list, tuple)) else [path]
    if not paths or not all(_recognised(p) for p in paths):
        return None
    return read_layers


def _is_layer(ld: tuple) -> bool:
    return len(ld) >= 2 and ld[0] is not None


def read_layers(path: PathLike | list, **options: Any) -> list:
    """Read file(s) through the registry and return napari LayerData tuples.

    Errors are :class:`~napari_medio.core.errors.MedioError` naming the file, which
    napari shows as one notification line.  Objects that are not layers go to the
    session store (their docks list them) and, with a viewer, are announced.
    """
    from ..core.settings import load_settings

    settings = load_settings()
    options.setdefault("resample_oblique", settings.get("resample_oblique", False))
    paths = path if isinstance(path, (list, tuple)) else [path]
    layers: list = []
    for p in paths:
        read_opts = {k: v for k, v in options.items() if k not in ("resample_oblique",)}
        objects = read_dicom_folder(p, **read_opts) if _is_dicom_folder(p) else \
            registry.read(p if registry.is_url(p) else Path(p), **read_opts)
        if objects is None:  # the series chooser opened
            continue
        stored: list = []
        shown = 0
        nodes = {((getattr(o, "metadata", None) or {}).get("scene") or {}).get("node_id") for o in objects}
        for obj in objects:
            lds = to_layer_data(obj, **options)
            if any(_is_layer(ld) for ld in lds):
                shown += 1
            else:
                stored.append(obj)
            layers.extend(lds)
        announce(p, stored, shown, nodes - {None})
    # Objects that are not layers (transforms, tables: kept in the session store) give
    # napari's "no layer" marker; keep it only when nothing else was read.
    real = [ld for ld in layers if _is_layer(ld)]
    return real or [(None,)]


# -- DICOM folders: localizers left out, several series chosen -------------------------------------
def _is_dicom_folder(path: PathLike) -> bool:
    if registry.is_url(path):
        return False
    p = Path(os.fspath(path))
    if not (p.is_dir() or p.name.upper() == "DICOMDIR"):
        return False
    try:
        return registry.find_reader(p).name == "dicom"
    except MedioError:
        return False


def _viewer_window() -> Any:
    try:
        import napari
    except ImportError:  # pragma: no cover
        return None
    viewer = napari.current_viewer()
    return viewer if getattr(viewer, "window", None) is not None else None


def read_dicom_folder(path: PathLike, **options: Any) -> list | None:
    """The data objects to show for a DICOM folder: its series but the localizers (None: a chooser opened)."""
    from ..dicom.localizer import series_rows
    from ..dicom.series import is_image_header, scan_dicom_path

    scan = scan_dicom_path(path, cancel=options.get("cancel"))
    rows = series_rows(scan.series(), is_image_header)
    images = [r for r in rows if r.is_image and not r.localizer]
    left_out = [r for r in rows if r.localizer] if images else []
    viewer = _viewer_window()
    name = Path(os.fspath(path)).name
    if viewer is not None and (len(images) > 1 or left_out):
        from napari.utils.notifications import show_info

        from .series_chooser import open_series_chooser

        if len(images) > 1:
            loc = f", {len(left_out)} localizer{'s' if len(left_out) != 1 else ''}" if left_out else ""
            show_info(f"{name}: {len(rows)} series{loc}; choose the series to load in the DICOM series dock")
            open_series_chooser(viewer, scan, rows)
            return None
    keys = [r.key for r in rows if not (r.localizer and images)]
    objects = registry.read(Path(os.fspath(path)), scan=scan, series=keys, **options)
    if viewer is not None and left_out:
        from napari.utils.notifications import show_info

        from .series_chooser import open_series_chooser

        what = ", ".join(f"{r.number}: {r.description or r.modality}" if r.number is not None else
                         (r.description or r.modality) for r in left_out)
        show_info(f"{name}: localizer{'s' if len(left_out) != 1 else ''} not loaded ({what}); "
                  "the DICOM series dock lists them")
        open_series_chooser(viewer, scan, rows, loaded=set(keys))
    return objects


# -- telling the user what gives no layer ------------------------------------------------------
def _kind(obj: Any) -> str:
    return str(getattr(obj, "kind", "") or type(obj).__name__.lower())


def describe(obj: Any) -> str:
    """A few words naming a non-layer object and its size, e.g. ``linear transform "T"``."""
    kind = _kind(obj)
    name = getattr(obj, "name", "") or ""
    named = f' "{name}"' if name else ""
    if kind == DataKind.TRANSFORM:
        return f"{getattr(obj, 'type', '')} transform{named}".strip()
    if kind == DataKind.TABLE:
        return f"table{named} ({obj.n_rows} rows, {len(obj.columns)} columns)"
    if kind == DataKind.COLORTABLE:
        return f"colour table{named} ({obj.n_colors} colours)"
    if kind == DataKind.TEXT:
        return f"{str(getattr(obj, 'syntax', 'text')).upper()} text{named} ({obj.n_lines} lines)"
    if kind == DataKind.VOLUME_PROPERTY:
        return f"volume property{named}"
    if kind == DataKind.SHADER_PROPERTY:
        return f"shader property{named}"
    if kind == DataKind.TERMINOLOGY:
        return f"terminology{named}"
    return f"{kind}{named}"


def scene_annotations(path: PathLike, loaded: set[str] | frozenset[str] = frozenset()) -> Counter:
    """Slicer 4 annotation nodes of a scene (.mrml, .mrb) not among the ``loaded`` node IDs: tag -> count."""
    from ..scene.mrml import parse_mrml

    p = Path(os.fspath(path))
    suffix = p.name.lower()
    try:
        if suffix.endswith(".mrml"):
            data = p.read_bytes()
        elif suffix.endswith(".mrb"):
            import zipfile

            with zipfile.ZipFile(p) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".mrml")]
                if not names:
                    return Counter()
                data = zf.read(min(names, key=lambda n: n.count("/")))
        else:
            return Counter()
        doc = parse_mrml(data, p)
    except (OSError, MedioError, ValueError, KeyError):
        return Counter()
    return Counter(n.tag for n in doc.nodes if n.tag in ANNOTATION_TAGS and n.id not in loaded)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def announcement(path: PathLike, stored: list, shown: int, loaded: set[str] | frozenset[str] = frozenset()) -> str:
    """The one-line message for what ``path`` gave besides layers ("" when there is nothing to say).

    ``loaded``: the scene node IDs the objects read came from (annotations among them are shown).
    """
    parts = []
    if stored:
        kinds = Counter(_kind(o) for o in stored)
        if len(stored) <= 3:
            parts.append(", ".join(describe(o) for o in stored))
        else:
            parts.append(", ".join(_plural(n, k) for k, n in kinds.items()))
        docks = sorted({DOCK_OF_KIND.get(k, "") for k in kinds} - {""})
        if docks:
            parts[-1] += f" (shown in the {' and '.join(docks)} dock" + ("s)" if len(docks) > 1 else ")")
    annotations = scene_annotations(path, loaded) if not registry.is_url(path) else Counter()
    if annotations:
        what = ", ".join(_plural(n, ANNOTATION_TAGS[t]) for t, n in annotations.items())
        parts.append(f"Slicer 4 annotations not shown ({what}: no data file, or a kind napari-medio does not "
                     "read); open and re-save the scene in Slicer 5 to make them markups")
    if not parts and not shown:
        parts.append("no data napari-medio can show")
    if not parts:
        return ""
    return f"{Path(os.fspath(path)).name}: " + "; ".join(parts)


def announce(path: PathLike, stored: list, shown: int, loaded: set[str] | frozenset[str] = frozenset()) -> str:
    """Notify (one line) what ``path`` gave besides layers and open the docks that show it."""
    message = announcement(path, stored, shown, loaded)
    if not message:
        return ""
    try:
        import napari
        from napari.utils.notifications import show_info
    except ImportError:  # pragma: no cover - the plugin always has napari
        return message
    show_info(message)
    viewer = napari.current_viewer()
    window = getattr(viewer, "window", None)
    if window is None:
        return message
    for dock in sorted({DOCK_OF_KIND.get(_kind(o), "") for o in stored} - {""}):
        try:
            widget, _ = window.add_plugin_dock_widget("napari-medio", dock)
            widget.show()
            widget.raise_()
        except (KeyError, ValueError, RuntimeError):  # a dock that cannot open must not lose the data read
            continue
    return message
