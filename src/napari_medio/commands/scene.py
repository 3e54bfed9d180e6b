"""``medio scene info|extract|save``: Slicer scenes on the command line (same code as the viewer)."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from ..core.errors import MedioError

__all__ = ["add_subcommands"]


def cmd_scene_info(args: argparse.Namespace) -> int:
    """List every data node a scene loads: kind, name, file, parent transform (LPS to-world), folder."""
    from ..scene.loader import scan_scene

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = scan_scene(args.scene)
    for w in caught:
        print(f"medio: {w.message}", file=sys.stderr)
    records = [e.info() for e in scan.entries]
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{args.scene}: {scan.document.version or 'no version (legacy)'}, {len(records)} data nodes")
        for r in records:
            flag = "" if r["exists"] else "  [missing]"
            folder = f"  folder={r['folder']}" if r["folder"] else ""
            tx = f"  transforms={' <- '.join(r['transforms'])}" if r["transforms"] else ""
            print(f"  {r['kind']:12s} {r['name']!s:30s} {r['file'] or '(in scene)'}{folder}{tx}{flag}")
    missing = [r for r in records if not r["exists"] and r["file"]]
    for r in missing:
        print(f"medio: {args.scene}: data file of {r['name']!r} not found: {r['file']}", file=sys.stderr)
    return 0


def cmd_scene_extract(args: argparse.Namespace) -> int:
    """Extract a .mrb/.zip safely into DIR."""
    from ..scene.mrb import find_main_mrml, safe_extract

    written = safe_extract(args.scene, args.directory)
    main = find_main_mrml(args.directory)
    print(f"{len(written)} files extracted to {args.directory}" + (f"; scene: {main}" if main else ""))
    return 0


def cmd_scene_save(args: argparse.Namespace) -> int:
    """Bundle data files (or scenes) into a scene Slicer opens: OUT.mrb or OUT.mrml."""
    from ..core import registry
    from ..scene.save import save_scene

    objects = []
    for path in args.files:
        objs = registry.read(path)
        if not objs:
            raise MedioError(path, "holds no data")
        objects.extend(objs)
    written = save_scene(objects, args.output)
    for w in written:
        print(w)
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``medio scene ...``."""
    p = subparsers.add_parser("scene", help="Slicer scenes (.mrml, .mrb): info, extract, save")
    sub = p.add_subparsers(dest="scene_command", metavar="SCENE_COMMAND")
    sub.required = True

    q = sub.add_parser("info", help="list the data nodes of a scene (.mrml, .mrb, .zip)")
    q.add_argument("scene")
    q.add_argument("--json", action="store_true", help="one JSON object per data node")
    q.set_defaults(func=cmd_scene_info)

    q = sub.add_parser("extract", help="extract a .mrb/.zip safely into a folder")
    q.add_argument("scene")
    q.add_argument("directory")
    q.set_defaults(func=cmd_scene_extract)

    q = sub.add_parser("save", help="bundle data files into a scene: OUT.mrb or OUT.mrml")
    q.add_argument("output")
    q.add_argument("files", nargs="+")
    q.set_defaults(func=cmd_scene_save)
