"""Test driver: a DICOM database import that pauses after each committed batch.

Run as a script by the SIGKILL and two-process tests (``python _import_driver.py
PATH... --db DIR [--copy] [--batch-size N] [--delay S] [--hold-after K]``): the
pause is the ``on_batch`` callback of :meth:`DicomDatabase.import_paths`, so the
import code itself carries no test switch.  ``--hold-after K`` holds the import
after its K-th committed batch until the process is killed (a kill that cannot
come too late, however loaded the machine).  Prints the import report as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from napari_medio.dicom.database import DicomDatabase


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--db", required=True)
    ap.add_argument("--copy", action="store_true")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--hold-after", type=int, default=0)
    args = ap.parse_args(argv)
    batches = [0]

    def on_batch(report) -> None:
        batches[0] += 1
        time.sleep(args.delay)
        while args.hold_after and batches[0] >= args.hold_after:
            time.sleep(1)  # held here until killed

    with DicomDatabase(args.db) as db:
        report = db.import_paths(args.paths, copy=args.copy, workers=1, batch_size=args.batch_size,
                                 on_batch=on_batch)
    json.dump(report.to_dict(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
