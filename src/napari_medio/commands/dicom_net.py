"""``medio dicom export|export-db|echo|query|retrieve|send|listen``: DICOM out and over the network.

Same code as the dock widgets (:mod:`napari_medio.dicom.export`, :mod:`napari_medio.dicom.network`).
These actions join the ``dicom`` command that :mod:`.dicom` creates (found in the
top-level subparsers); without it they live under ``medio dicom-net``.

SERVER is ``AE_TITLE@host:port`` (DIMSE) or a DICOMweb base URL (``http://host:8042/dicom-web``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..core.errors import MedioError
from ..core.kinds import DataKind


def _progress(desc: str, unit: str = "file"):
    """A tqdm progress callback on a terminal (else None) and its closer."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def _tags(args: argparse.Namespace):
    from ..dicom.export import ExportTags

    return ExportTags(patient_name=args.patient_name, patient_id=args.patient_id,
                      study_description=args.study_description, series_description=args.series_description,
                      series_number=args.series_number, modality=args.modality, inherit=not args.new_study)


def _as_label_object(obj: Any, force: bool) -> Any:
    """A label map to export as SEG: segmentations and label maps as they are; integer volumes with --reference."""
    import numpy as np

    from ..core.segmentation import Segmentation
    from ..core.volume import Volume

    if isinstance(obj, Segmentation) or (isinstance(obj, Volume) and obj.kind == DataKind.LABELMAP):
        return obj
    if isinstance(obj, Volume) and force and not obj.extra_axes and obj.components is None:
        if np.issubdtype(obj.dtype, np.integer) or obj.dtype == bool:
            from dataclasses import replace

            return replace(obj, kind=DataKind.LABELMAP)
        raise MedioError(obj.source, f"a label map must hold integers, not {obj.dtype}")
    return None


def cmd_export(args: argparse.Namespace) -> int:
    from ..core import registry
    from ..dicom.export import export_object, export_to_database

    tags = _tags(args)
    status = 0
    for path in args.files:
        try:
            objects = registry.read(path, **({"labelmap": True} if args.labelmap else {}))
        except MedioError as exc:
            print(f"medio: {exc}", file=sys.stderr)
            status = 1
            continue
        for obj in objects:
            label = _as_label_object(obj, force=args.labelmap or args.reference is not None)
            target = label if label is not None else obj
            update, close = _progress(f"export {Path(path).name}")
            try:
                if args.db is not None:
                    from ..dicom.database import DicomDatabase

                    with DicomDatabase(args.db) as db:
                        written = export_to_database(target, db, tags, reference=args.reference,
                                                     enhanced=args.enhanced, progress=update)
                    print(f"{path}: {len(written)} instance(s) into the database {args.db}")
                if args.out is not None:
                    files = export_object(target, args.out, tags, reference=args.reference, enhanced=args.enhanced,
                                          progress=update)
                    folders = sorted({os.fspath(Path(f).parent) for f in files})
                    print(f"{path}: {len(files)} file(s) in {', '.join(folders)}")
            except MedioError as exc:
                print(f"medio: {exc}", file=sys.stderr)
                status = 1
            finally:
                close()
    return status


def cmd_export_db(args: argparse.Namespace) -> int:
    from ..dicom.database import DicomDatabase
    from ..dicom.export import export_from_database

    update, close = _progress("export")
    try:
        files = export_from_database(DicomDatabase(args.db), args.out, series=args.series or (),
                                     studies=args.study or (), dicomdir=not args.flat, progress=update)
    finally:
        close()
    print(f"{len(files)} file(s) in {args.out}" + ("" if args.flat else " with a DICOMDIR"))
    return 0


def _client(args: argparse.Namespace):
    from ..dicom.network import connect

    return connect(args.server, calling_ae=args.aet, timeout=args.timeout)


def cmd_echo(args: argparse.Namespace) -> int:
    seconds = _client(args).echo()
    print(f"{args.server}: OK ({seconds * 1000:.1f} ms)")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    filters = {"PatientID": args.patient_id, "PatientName": args.patient_name, "StudyDate": args.study_date,
               "Modality": args.modality, "StudyInstanceUID": args.study_uid, "SeriesInstanceUID": args.series_uid,
               "AccessionNumber": args.accession}
    rows = _client(args).query(args.level, **filters)
    if args.json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        print("  ".join(f"{k}={v}" for k, v in r.items() if v not in ("", None, [])))
    print(f"{len(rows)} match(es)", file=sys.stderr)
    return 0


def cmd_retrieve(args: argparse.Namespace) -> int:
    if args.db is None and args.out is None:
        raise MedioError(None, "retrieve needs --db DIR or --out DIR")
    client = _client(args)
    update, close = _progress("retrieve")
    try:
        kwargs: dict = {"dest": args.out, "database": args.db, "progress": update}
        if hasattr(client, "node"):
            kwargs.update(method=args.method, move_port=args.move_port)
        result = client.retrieve(args.study_uid, args.series, **kwargs)
    finally:
        close()
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        rate = result.completed / result.seconds if result.seconds else 0.0
        print(f"{result.completed} instance(s) retrieved in {result.seconds:.2f} s ({rate:.1f}/s)"
              + (f"; {result.failed} failed" if result.failed else ""))
    return 0 if not result.failed else 1


def cmd_send(args: argparse.Namespace) -> int:
    files: list[str] = []
    if args.series:
        if args.db is None:
            raise MedioError(None, "--series needs --db DIR")
        from ..dicom.database import DicomDatabase

        db = DicomDatabase(args.db)
        for uid in args.series:
            present, missing = db.instance_files(uid)
            if missing or not present:
                raise MedioError(None, f"series {uid}: {len(missing)} file(s) missing, {len(present)} present")
            files += present
    for p in args.files:
        path = Path(p)
        if path.is_dir():
            from ..dicom.series import scan_files

            files += scan_files([path])
        else:
            files.append(os.fspath(path))
    if not files:
        raise MedioError(None, "nothing to send")
    update, close = _progress("send")
    try:
        result = _client(args).send(files, progress=update)
    finally:
        close()
    print(f"{result['sent']} instance(s) sent" + (f", {len(result['failed'])} failed" if result["failed"] else ""))
    for path, why in list(result["failed"].items())[:10]:
        print(f"medio: {path}: {why}", file=sys.stderr)
    return 0 if not result["failed"] else 1


def cmd_listen(args: argparse.Namespace) -> int:
    import time

    from ..dicom.network import StorageListener

    if args.db is None and args.out is None:
        raise MedioError(None, "listen needs --db DIR or --out DIR")
    listener = StorageListener(ae_title=args.aet, port=args.port, folder=args.out, database=args.db,
                               host=args.host)
    listener.start()
    print(f"listening as {args.aet} on port {listener.port} (Ctrl+C to stop)", flush=True)
    t0 = time.time()
    try:
        while True:
            time.sleep(0.2)
            if args.count and len(listener.received) >= args.count:
                break
            if args.duration and time.time() - t0 >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
    print(f"{len(listener.received)} instance(s) received into {listener.folder}")
    for e in listener.errors[:10]:
        print(f"medio: {e}", file=sys.stderr)
    return 0


def _dicom_subparsers(subparsers: Any) -> Any:
    """The ``dicom`` command's sub-action parsers when :mod:`.dicom` created them, else a ``dicom-net`` command."""
    parent = getattr(subparsers, "choices", {}).get("dicom")
    if parent is not None:
        for action in parent._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
    p = subparsers.add_parser("dicom-net", help="DICOM export and PACS (query, retrieve, send, listen)")
    sub = p.add_subparsers(dest="dicom_command", metavar="ACTION")
    sub.required = True
    return sub


def add_subcommands(subparsers: Any) -> None:
    sub = _dicom_subparsers(subparsers)

    q = sub.add_parser("export", help="write volumes as DICOM image series and segmentations as DICOM SEG")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--out", metavar="DIR", help="output folder (one sub-folder per series)")
    q.add_argument("--db", metavar="DIR", default=None, help="export into this DICOM database instead of / as well")
    q.add_argument("--reference", metavar="SERIES_DIR", default=None,
                   help="the DICOM image series a segmentation was drawn on (needed for DICOM SEG)")
    q.add_argument("--labelmap", action="store_true", help="read FILE as a label map (exported as DICOM SEG)")
    q.add_argument("--patient-name", default=None)
    q.add_argument("--patient-id", default=None)
    q.add_argument("--study-description", default=None)
    q.add_argument("--series-description", default=None)
    q.add_argument("--series-number", type=int, default=None)
    q.add_argument("--modality", default=None, help="CT, MR or another (secondary capture); default: the source's")
    q.add_argument("--new-study", action="store_true", help="do not inherit patient/study from the source")
    q.add_argument("--enhanced", action="store_true", help="one Enhanced multi-frame object (CT/MR) per volume")
    q.set_defaults(func=cmd_export)

    q = sub.add_parser("export-db", help="copy series or studies out of the database into a folder (DICOMDIR)")
    q.add_argument("--db", metavar="DIR", default=None, help="database folder (default: the napari-medio one)")
    q.add_argument("--out", metavar="DIR", required=True)
    q.add_argument("--series", nargs="+", metavar="UID")
    q.add_argument("--study", nargs="+", metavar="UID")
    q.add_argument("--flat", action="store_true", help="a flat folder without DICOMDIR")
    q.set_defaults(func=cmd_export_db)

    def server_args(q: Any) -> None:
        q.add_argument("server", metavar="SERVER", help="AE_TITLE@host:port or a DICOMweb URL")
        q.add_argument("--aet", default="MEDIO", help="our (calling) AE title (default MEDIO)")
        q.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")

    q = sub.add_parser("echo", help="C-ECHO (or a QIDO request) to check a server")
    server_args(q)
    q.set_defaults(func=cmd_echo)

    q = sub.add_parser("query", help="C-FIND / QIDO-RS query of a PACS")
    server_args(q)
    q.add_argument("--level", default="STUDY", choices=["PATIENT", "STUDY", "SERIES", "IMAGE"])
    q.add_argument("--patient-id", default=None)
    q.add_argument("--patient-name", default=None, help="wildcards allowed (DOE*)")
    q.add_argument("--study-date", default=None, help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    q.add_argument("--modality", default=None)
    q.add_argument("--accession", default=None)
    q.add_argument("--study-uid", default=None)
    q.add_argument("--series-uid", default=None)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_query)

    q = sub.add_parser("retrieve", help="C-GET / C-MOVE / WADO-RS a study or series into the database or a folder")
    server_args(q)
    q.add_argument("study_uid", metavar="STUDY_UID")
    q.add_argument("--series", default=None, metavar="UID")
    q.add_argument("--db", metavar="DIR", default=None)
    q.add_argument("--out", metavar="DIR", default=None)
    q.add_argument("--method", choices=["get", "move"], default="get")
    q.add_argument("--move-port", type=int, default=11113, help="our port for C-MOVE (the PACS must know it)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_retrieve)

    q = sub.add_parser("send", help="C-STORE / STOW-RS files, folders or database series to a PACS")
    server_args(q)
    q.add_argument("files", nargs="*", metavar="FILE")
    q.add_argument("--series", nargs="+", metavar="UID", help="series from the database (--db)")
    q.add_argument("--db", metavar="DIR", default=None)
    q.set_defaults(func=cmd_send)

    q = sub.add_parser("listen", help="a C-STORE listener storing what is pushed into the database or a folder")
    q.add_argument("--port", type=int, default=11112)
    q.add_argument("--host", default="0.0.0.0")
    q.add_argument("--aet", default="MEDIO")
    q.add_argument("--db", metavar="DIR", default=None)
    q.add_argument("--out", metavar="DIR", default=None)
    q.add_argument("--count", type=int, default=0, help="stop after this many instances")
    q.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    q.set_defaults(func=cmd_listen)
