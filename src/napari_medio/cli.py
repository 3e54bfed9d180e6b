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
from typing import Any, Optional, Sequence

from .core.errors import CancelledError, MedioError

#: Package whose modules add subcommands: each defines ``add_subcommands(subparsers)``.
COMMANDS_PACKAGE = "napari_medio.commands"


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


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
            results.append(info)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=_json_default)
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
    return status


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


def cmd_demo(args: argparse.Namespace) -> int:
    """Launch napari with the plugin's sample data (or write a screenshot and exit)."""
    import napari

    from .plugin.preferences import claim_reader_preferences

    viewer = napari.Viewer(show=True)  # an unshown canvas renders black screenshots
    claim_reader_preferences()
    viewer.open_sample("napari-medio", "ct-phantom")
    for path in args.paths:
        viewer.open(path, plugin="napari-medio")
    viewer.dims.ndisplay = 2
    viewer.dims.order = tuple(range(viewer.dims.ndim))  # axial: S is the slider
    viewer.dims.set_point(viewer.dims.ndim - 3, 10.0)  # 10 mm superior: both markers in view
    viewer.reset_view()
    if args.screenshot:
        viewer.screenshot(args.screenshot, canvas_only=not args.window, flash=False)
        print(args.screenshot)
        viewer.close()
        return 0
    napari.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``medio`` argument parser with every available subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="medio", description="napari-medio: medical image data in and out")
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

    p = sub.add_parser("demo", help="open napari with the sample data")
    p.add_argument("paths", nargs="*", help="more files to open")
    p.add_argument("--screenshot", metavar="PNG", help="write a screenshot of the canvas and exit")
    p.add_argument("--window", action="store_true", help="with --screenshot: capture the whole window")
    p.set_defaults(func=cmd_demo)

    import pkgutil

    commands = importlib.import_module(COMMANDS_PACKAGE)
    for info in sorted(pkgutil.iter_modules(commands.__path__, COMMANDS_PACKAGE + "."), key=lambda i: i.name):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name).add_subcommands(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``medio`` program; returns the exit status."""
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
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
