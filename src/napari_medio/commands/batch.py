"""``medio convert-batch``: convert many files or DICOM series on dask (see :mod:`napari_medio.batch`)."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_convert_batch(args: argparse.Namespace) -> int:
    """Convert LIST (files, folders or .txt lists) or every series of a DICOM database."""
    from ..batch import convert_batch, items_from_database, items_from_paths
    from ..core.errors import CancelledError
    from ..core.progress import tqdm_progress

    if not args.inputs and not args.db:
        print("medio: convert-batch needs input files (or a .txt list) or --db DIR", file=sys.stderr)
        return 2
    items = items_from_paths(args.inputs) if args.inputs else []
    if args.db:
        items += items_from_database(args.db, search=args.search or "")
    if not items:
        print("medio: nothing to convert", file=sys.stderr)
        return 1
    options: dict[str, Any] = {}
    if args.compression_level is not None:
        options["compression_level"] = args.compression_level
    if args.ngff_version:
        options["ngff_version"] = args.ngff_version
    progress, bar = tqdm_progress(f"convert-batch -> {args.to}", unit="item", total=len(items),
                                  disable=args.quiet or None)
    try:
        report = convert_batch(items, args.out, args.to, scheduler=args.scheduler, workers=args.workers,
                               overwrite=args.overwrite, write_options=options, progress=progress)
    except (KeyboardInterrupt, CancelledError):
        bar.close()
        print("medio: convert-batch interrupted; finished outputs are kept, rerun to continue", file=sys.stderr)
        return 130
    finally:
        bar.close()
    print(f"{report.count('done')} converted ({report.files_written} files written), "
          f"{report.count('skipped')} skipped (already done), "
          f"{report.count('failed')} failed in {report.seconds:.1f} s; summary: {report.summary_path}")
    for r in report.failed:
        print(f"  failed: {r['source']}{' ' + r['series_uid'] if r.get('series_uid') else ''}: {r['reason']}",
              file=sys.stderr)
    return 0 if report.ok else 1


def add_subcommands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert-batch",
        help="convert many files or DICOM series on dask (local processes or a dask.distributed cluster)",
        description="Convert every input (files, folders, or .txt files listing one path per line) or every "
                    "series of a DICOM database into OUT. Failures are reported in OUT/medio-batch-summary.json "
                    "and do not stop the rest; a rerun skips outputs that exist.")
    p.add_argument("inputs", nargs="*", metavar="LIST", help="files, folders or .txt lists of paths")
    p.add_argument("--db", metavar="DIR", help="convert every series of the DICOM database in DIR")
    p.add_argument("--search", help="with --db: only series matching this text")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--to", required=True, choices=["nii.gz", "nii", "nrrd", "ome.zarr", "seg.nrrd", "mha"])
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="dask.distributed scheduler address (tcp://host:8786); default: local processes "
                        "('threads' or 'sync' choose dask's other local schedulers)")
    p.add_argument("--workers", type=int, default=None, help="local worker count (default: all cores)")
    p.add_argument("--overwrite", action="store_true", help="convert again even when the output exists")
    p.add_argument("--compression-level", type=int, default=None)
    p.add_argument("--ngff-version", choices=["0.4", "0.5"], default=None, help="OME-Zarr version to write")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_convert_batch)
