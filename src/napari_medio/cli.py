"""The ``medio`` command line: ``info``, ``convert``, ``formats``, ``demo`` and subcommands
that other packages add (``dicom``, ``scene``, ...), all on the same core and registry.

Subcommand providers: every module of the ``napari_medio.commands`` package defines
``add_subcommands(subparsers)``; each subcommand sets ``func(args) -> int`` with
``set_defaults``.  A new command family is one new module there.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .core.errors import CancelledError, MedioError
from .core.jsonvalue import json_default

#: Package whose modules add subcommands: each defines ``add_subcommands(subparsers)``.
COMMANDS_PACKAGE = "napari_medio.commands"


def object_info(obj: Any) -> dict:
    """JSON-ready description of a data object (its ``info()`` when it has one)."""
    if hasattr(obj, "info"):
        return obj.info()
    return {"kind": getattr(obj, "kind", type(obj).__name__), "name": getattr(obj, "name", "")}


def cmd_info(args: argparse.Namespace) -> int:
    """Print what each file holds (one JSON object per data object with --json)."""
    from .core import registry

    results: list[dict] = []
    status = 0
    for path in args.paths:
        try:
            fmt = registry.find_reader(path)
            objects = registry.read(path)
        except MedioError as exc:
            print(f"medio: {exc}", file=sys.stderr)
            status = 1
            continue
        for obj in objects:
            info = object_info(obj)
            info.setdefault("path", os.fspath(path))
            info.setdefault("format", fmt.name)
            stored = info.get("coordinate_system")
            if stored and stored != COORDINATE_SYSTEM:
                info["file_coordinate_system"] = stored  # what the file stores; the numbers here are LPS
            info["coordinate_system"] = COORDINATE_SYSTEM
            results.append(info)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=json_default)
        sys.stdout.write("\n")
    else:
        for info in results:
            print(f"{info.get('path')}: {info.get('format')} {info.get('kind')}")
            for key in ("name", "shape", "dtype", "spacing", "origin", "direction"):
                if key in info:
                    print(f"  {key:10s} {info[key]}")
            for key in ("extra_axes", "components"):
                if info.get(key):
                    print(f"  {key:10s} {info[key]}")
            if info.get("window"):
                print(f"  {'window':10s} center {info['window']['center']:g}, width {info['window']['width']:g}")
            for line in _detail_lines(info):
                print(f"  {line}")
    return status


#: The coordinate system of every number ``medio info`` prints (patient LPS, millimetres).
COORDINATE_SYSTEM = "LPS"

#: Markup points printed before "... and N more".
_MAX_POINTS = 20


def _fmt_numbers(values: Any) -> str:
    return " ".join(f"{float(v):10.4f}" for v in values)


def _detail_lines(info: dict) -> list[str]:
    """Text lines for what ``medio info`` shows beyond the geometry: markup points, transform matrices."""
    lines: list[str] = []
    if info.get("kind") == "markups":
        points = info.get("points") or []
        lines.append(f"{'type':10s} {info.get('type')}, {len(points)} point(s), LPS mm"
                     + (f" (stored as {info['file_coordinate_system']})" if info.get("file_coordinate_system") else ""))
        for p in points[:_MAX_POINTS]:
            pos = p.get("position")
            where = _fmt_numbers(pos) if pos is not None else "(not placed)"
            lines.append(f"  {str(p.get('label') or p.get('id') or ''):12s} {where}")
        if len(points) > _MAX_POINTS:
            lines.append(f"  ... and {len(points) - _MAX_POINTS} more (--json lists them all)")
        for key in ("center", "normal", "size"):
            if info.get(key) is not None:
                lines.append(f"{key:10s} {_fmt_numbers(info[key])}")
    if info.get("kind") == "transform":
        lines.append(f"{'type':10s} {info.get('type')}")
        matrix = info.get("matrix_to_parent_lps")
        if matrix is not None:
            lines.append("to parent (LPS, 4x4):")
            lines.extend(f"  {_fmt_numbers(row)}" for row in matrix)
        for c in info.get("components") or []:
            lines.append(f"component  {c.get('type')}")
            if c.get("matrix_to_parent_lps") is not None:
                lines.extend(f"  {_fmt_numbers(row)}" for row in c["matrix_to_parent_lps"])
    return lines


def cmd_convert(args: argparse.Namespace) -> int:
    """Read IN and write OUT in the format OUT's extension names."""
    from .core import registry

    read_options: dict[str, Any] = {}
    if args.labelmap:
        read_options["labelmap"] = True
    write_options: dict[str, Any] = {}
    if args.no_compress:
        write_options["compress"] = False
    if args.compression_level is not None:
        write_options["compression_level"] = args.compression_level
    try:
        objects = registry.read(args.input, **read_options)
        if not objects:
            raise MedioError(args.input, "holds no data")
        if len(objects) > 1 and not args.index:
            print(f"medio: {args.input} holds {len(objects)} objects; writing the first (use --index)", file=sys.stderr)
        obj = objects[args.index or 0]
        written = registry.write(obj, args.output, **write_options)
    except MedioError as exc:
        print(f"medio: {exc}", file=sys.stderr)
        return 1
    except IndexError:
        print(f"medio: {args.input}: no object number {args.index}", file=sys.stderr)
        return 1
    for w in written:
        print(w)
    return 0


def cmd_formats(args: argparse.Namespace) -> int:
    """List registered formats."""
    from .core import registry

    rows = []
    for f in sorted(registry.formats(), key=lambda f: f.name):
        rows.append({"name": f.name, "extensions": list(f.extensions), "read": f.read is not None,
                     "write": f.write is not None, "backend": f.backend, "description": f.description})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in rows:
            rw = ("r" if r["read"] else "-") + ("w" if r["write"] else "-")
            print(f"{r['name']:22s} {rw}  {' '.join(r['extensions'])}")
    return 0


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def start_virtual_display() -> Any | None:
    """Start Xvfb on a free display and point ``DISPLAY`` at it; the process (None: Xvfb is not installed)."""
    import shutil
    import subprocess

    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        return None
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        number = fh.readline().strip()
    if not number:
        proc.terminate()
        return None
    os.environ["DISPLAY"] = f":{number}"
    return proc


def cmd_demo(args: argparse.Namespace) -> int:
    """Open napari on the user's files (or the CT phantom), framed; with --screenshot write it and exit."""
    display = None
    if not _has_display():
        if not args.screenshot:
            print("medio: no display (DISPLAY is not set): run it in a desktop session, or add --screenshot PNG",
                  file=sys.stderr)
            return 1
        display = start_virtual_display()
        if display is None:
            print("medio: no display and no Xvfb to start one: install Xvfb (apt install xvfb, dnf install "
                  "xorg-x11-server-Xvfb) or set DISPLAY", file=sys.stderr)
            return 1
    try:
        return _demo(args)
    finally:
        if display is not None:
            display.terminate()
            display.wait(timeout=10)


def _demo(args: argparse.Namespace) -> int:
    import napari

    viewer = napari.Viewer(show=True)  # an unshown canvas renders black screenshots
    from .plugin.preferences import claim_reader_preferences

    claim_reader_preferences(notify=False)  # later drops open with napari-medio, as in the demo
    layers: list = []
    for path in args.paths:
        layers += viewer.open(path, plugin="napari-medio")
    if not args.paths:
        layers = viewer.open_sample("napari-medio", "ct-phantom")
    frame_layers(viewer, layers, phantom=not args.paths)
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=not args.window, flash=False)
        print(args.screenshot)
        viewer.close()
        return 0
    napari.run()
    return 0


def frame_layers(viewer: Any, layers: list, phantom: bool = False) -> None:
    """Show ``layers`` axial (as Slicer does), sliced through their middle and framed in the canvas."""
    try:
        from .plugin import set_view

        set_view(viewer, "axial")
    except ImportError:  # older plugin without views
        viewer.dims.ndisplay = 2
        viewer.dims.order = tuple(range(viewer.dims.ndim))
    if viewer.dims.ndim >= 3 and layers:
        import numpy as np

        extent = np.array([layer.extent.world for layer in layers if layer.ndim == viewer.dims.ndim])
        if extent.size:
            lo, hi = extent[:, 0, :].min(0), extent[:, 1, :].max(0)
            axis = viewer.dims.ndim - 3  # S: the axial slider
            middle = 10.0 if phantom else float((lo[axis] + hi[axis]) / 2)  # phantom: both markers in view
            viewer.dims.set_point(axis, middle)
    viewer.reset_view()


def build_parser() -> argparse.ArgumentParser:
    """The ``medio`` argument parser with every available subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="medio", description="napari-medio: medical image data in and out "
                                     "(every coordinate in patient LPS millimetres)",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"napari-medio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("info", help="describe files (geometry in LPS)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per data object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert IN to OUT (format from OUT's extension)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--labelmap", action="store_true", help="read IN as a label map")
    p.add_argument("--index", type=int, default=0, help="which data object of IN to write")
    p.add_argument("--no-compress", action="store_true", help="write uncompressed where the format allows")
    p.add_argument("--compression-level", type=int, default=None)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("formats", help="list the formats napari-medio reads and writes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_formats)

    p = sub.add_parser("demo", help="open napari on FILES (or the CT phantom), axial and framed")
    p.add_argument("paths", nargs="*", help="files or folders to open (none: the CT orientation phantom)")
    p.add_argument("--screenshot", metavar="PNG", help="write a screenshot of the canvas and exit")
    p.add_argument("--window", action="store_true", help="with --screenshot: capture the whole window")
    p.set_defaults(func=cmd_demo)

    import pkgutil

    commands = importlib.import_module(COMMANDS_PACKAGE)
    for info in sorted(pkgutil.iter_modules(commands.__path__, COMMANDS_PACKAGE + "."), key=lambda i: i.name):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name).add_subcommands(sub)
    parser.epilog = commands_overview(sub) + "\n\n" + database_note()
    return parser


def commands_overview(subparsers: Any) -> str:
    """Every subcommand with its help, and the actions of those that have some (``dicom import|list|load``)."""
    helps = {a.dest: a.help or "" for a in subparsers._choices_actions}
    lines = ["commands:"]
    for name, sub in subparsers.choices.items():
        lines.append(f"  {name:16s} {helps.get(name, '')}")
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                inner = {a.dest: a.help or "" for a in action._choices_actions}
                for act in action.choices:
                    lines.append(f"    {name} {act:<{max(1, 14 - len(name))}s} {inner.get(act, '')}")
    lines.append("  (medio COMMAND --help: the options of one command)")
    return "\n".join(lines)


def database_note() -> str:
    """Where the DICOM database lives: --db, $NAPARI_MEDIO_DICOM_DB, the saved setting, the default folder."""
    from platformdirs import user_data_dir

    default = os.path.join(user_data_dir("napari-medio"), "dicom")
    env = os.environ.get("NAPARI_MEDIO_DICOM_DB")
    return ("DICOM database: the folder given with --db DIR, else $NAPARI_MEDIO_DICOM_DB"
            + (f" (now {env})" if env else " (not set)")
            + ", else the one chosen in napari's DICOM browser, else " + default)


def _one_line_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                      line: str | None = None) -> None:
    """``warnings.showwarning`` for the command line: one line, no source file or code."""
    text = " ".join(str(message).split())
    kind = getattr(category, "__name__", "Warning")
    label = "warning" if kind in ("UserWarning", "Warning") else f"warning ({kind})"
    print(f"medio: {label}: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medio`` program; returns the exit status."""
    import warnings

    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MedioError as exc:
        print(f"medio: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, CancelledError):
        print("medio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open as stdout until exit  # noqa: SIM115 - stays open as stdout until exit
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
