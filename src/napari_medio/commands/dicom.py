"""``medio dicom import|list|load``: the DICOM database on the command line (same code as the widget)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _db(args: argparse.Namespace):
    from ..dicom.database import DicomDatabase

    return DicomDatabase(args.db)


def _bar(desc: str, enabled: bool):
    """A tqdm progress callback (shown on a terminal only) and its closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="file", file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.n = done
        bar.refresh() if done == total else bar.update(0)

    return update, bar.close


def cmd_import(args: argparse.Namespace) -> int:
    db = _db(args)
    progress, close = _bar("import", sys.stderr.isatty() and not args.json)
    try:
        report = db.import_paths(args.paths, copy=args.copy, progress=progress, batch_size=args.batch_size,
                                 workers=args.workers)
    finally:
        close()
    # Every file scanned is added, unchanged, not DICOM, a problem, or a duplicate: an instance
    # (SOPInstanceUID) the database already holds from another file, or met twice in this import.
    duplicates = max(0, report.scanned - report.added - report.unchanged - report.non_dicom - len(report.errors))
    if args.json:
        json.dump({**report.to_dict(), "duplicates": duplicates}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        rate = report.scanned / report.seconds if report.seconds > 0 else 0.0
        archives = f" (from {report.archives} zip archive(s) stored in the database)" if report.archives else ""
        print(f"{report.scanned} file(s){archives}: {report.added} instance(s) added, {report.unchanged} unchanged, "
              f"{duplicates} duplicate(s) of an instance already imported, {report.non_dicom} not DICOM, "
              f"{len(report.errors)} problem(s); {report.copied} copied into the database; "
              f"{report.seconds:.2f} s ({rate:.0f} files/s) -> {db.folder}")
        for path, reason in report.errors[:20]:
            print(f"medio: {path}: {reason}", file=sys.stderr)
        if len(report.errors) > 20:
            print(f"medio: ... and {len(report.errors) - 20} more problems (--json lists them all)", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    db = _db(args)
    tree = db.tree()
    if args.json:
        json.dump({"database": str(db.folder), "patients": tree}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"DICOM database {db.folder}")
    for p in tree:
        print(f"{p['name'] or '(no name)'}  [{p['patient_id']}]  {p['birth_date'] or ''} {p['sex'] or ''}")
        for st in p["studies"]:
            print(f"  {st['date'] or '--------'}  {st['description'] or ''}  (study {st['uid']})")
            for se in st["series"]:
                print(f"    {se['number'] if se['number'] is not None else '-':>5}  {se['modality'] or '':6s} "
                      f"{(se['description'] or '')[:40]:40s} {se['images']:5d} images  {se['uid']}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from ..core import registry

    db = _db(args)
    progress, close = _bar("load", sys.stderr.isatty())
    try:
        volumes = db.load_series(args.series_uid, progress=progress)
    finally:
        close()
    if len(volumes) > 1 and args.index is None:
        print(f"medio: series holds {len(volumes)} volumes; writing the first (use --index)", file=sys.stderr)
    vol = volumes[args.index or 0]
    for written in registry.write(vol, args.output):
        print(written)
    return 0


def add_subcommands(subparsers: Any) -> None:
    p = subparsers.add_parser("dicom", help="DICOM database: import, list, load")
    sub = p.add_subparsers(dest="dicom_command", metavar="ACTION")
    sub.required = True

    def db_arg(q):
        q.add_argument("--db", metavar="DIR", default=None,
                       help="database folder (default: the napari-medio setting or the per-user data folder)")

    q = sub.add_parser("import", help="import files and folders (recursive) into the database")
    q.add_argument("paths", nargs="+")
    db_arg(q)
    q.add_argument("--copy", action="store_true",
                   help="copy the files into the database (default: link them; members of .zip archives are "
                        "always stored in the database)")
    q.add_argument("--json", action="store_true", help="print the import report as JSON")
    q.add_argument("--workers", type=int, default=None, help="header-parsing processes (default: all cores)")
    q.add_argument("--batch-size", type=int, default=500, help=argparse.SUPPRESS)
    q.set_defaults(func=cmd_import)

    q = sub.add_parser("list", help="patients, studies and series in the database")
    db_arg(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("load", help="write one series as a volume file (format from OUT's extension)")
    q.add_argument("series_uid")
    q.add_argument("output")
    db_arg(q)
    q.add_argument("--index", type=int, default=None, help="which volume of a split series to write")
    q.set_defaults(func=cmd_load)
