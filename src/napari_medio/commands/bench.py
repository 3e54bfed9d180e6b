"""``medio bench FILE...``: time napari-medio's read/write against nibabel, pynrrd and SimpleITK.

For each file, in one process and interleaved (best of ``--repeat`` runs):

* read: napari-medio (voxels in memory), nibabel (.nii/.nii.gz), pynrrd (.nrrd),
  SimpleITK; for gzip data also the physical limit -- reading the file's bytes
  plus inflating them in one call of isal's ``igzip.decompress``;
* write (``--write``): napari-medio, SimpleITK (``useCompression=True``),
  nibabel and pynrrd with their default compression, the output sizes, and
  whether SimpleITK, nibabel and pynrrd read napari-medio's file bit for bit.

Ratios are printed against the fastest peer and the physical limit.  The same
functions drive ``benchmarks/bench_io.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["best_time", "read_timings", "write_timings", "add_subcommands"]


def best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (the result is dropped before the next call)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        del result
    return best


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".nii.gz", ".nii")):
        return "nifti"
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    return "other"


def _gzip_offset(path: Path) -> int | None:
    """Where gzip data starts in the file (0 for .nii.gz, after the header for gzip NRRD), or None."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head[:2] == b"\x1f\x8b":
        return 0
    if head.startswith(b"NRRD") and b"encoding: gz" in head:
        i = head.find(b"\n\n")
        return i + 2 if i >= 0 and head[i + 2:i + 4] == b"\x1f\x8b" else None
    return None


def _readers(path: Path) -> dict[str, Callable[[], Any]]:
    import napari_medio

    def ours() -> Any:
        obj = napari_medio.read(path)[0]
        return np.asarray(obj.array) if hasattr(obj, "array") else obj

    out: dict[str, Callable[[], Any]] = {"napari-medio": ours}
    kind = _kind(path)
    if path.name.lower().endswith((".seg.nrrd", ".seg.nhdr")):  # a Segmentation: also the voxels alone
        out["napari-medio voxels only"] = lambda: np.asarray(napari_medio.read(path, format="nrrd")[0].array)
    if kind == "nifti":
        import nibabel as nib

        out["nibabel"] = lambda: np.asarray(nib.load(os.fspath(path)).dataobj)
    if kind == "nrrd":
        import nrrd

        out["pynrrd"] = lambda: nrrd.read(os.fspath(path))[0]
    try:
        import SimpleITK as sitk

        out["SimpleITK"] = lambda: sitk.GetArrayFromImage(sitk.ReadImage(os.fspath(path)))
    except ImportError:  # pragma: no cover
        pass
    offset = _gzip_offset(path)
    if offset is not None:
        from ..core.fileio import gzip_decompress

        def limit() -> Any:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return gzip_decompress(fh.read())
        out["limit: read bytes + inflate"] = limit
    return out


def read_timings(path: str | os.PathLike[str], repeat: int = 3) -> dict[str, float]:
    """Best read time of every applicable reader, interleaved so caches treat them alike."""
    p = Path(path)
    readers = _readers(p)
    best = {name: float("inf") for name in readers}
    for _ in range(max(1, repeat)):
        for name, fn in readers.items():
            try:
                best[name] = min(best[name], best_time(fn, 1))
            except Exception as exc:  # a peer that cannot read the file is reported, not fatal
                best[name] = float("nan")
                print(f"  {name} cannot read {p.name}: {exc}", file=sys.stderr)
    return best


def write_timings(path: str | os.PathLike[str], repeat: int = 3, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """Write time and size of napari-medio and the peers for ``path``'s content and format, and readback checks."""
    import napari_medio

    p = Path(path)
    kind = _kind(p)
    ext = ".nii.gz" if kind == "nifti" else ".nrrd" if kind == "nrrd" else "".join(p.suffixes[-2:]) or p.suffix
    seg = p.name.lower().endswith((".seg.nrrd", ".seg.nhdr"))
    vol = napari_medio.read(p, **({"format": "nrrd", "labelmap": True} if seg else {}))[0]
    if seg:
        ext = ".seg.nrrd"
    vol = vol.with_array(np.ascontiguousarray(np.asarray(vol.array)))
    array = vol.array
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="medio-bench-") as tmp:
        writers: dict[str, Callable[[str], Any]] = {"napari-medio": lambda t: napari_medio.write(vol, t)}
        try:
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(array, isVector=vol.components is not None)
            img.SetSpacing(vol.geometry.spacing.tolist())
            img.SetOrigin(vol.geometry.origin.tolist())
            img.SetDirection(vol.geometry.direction.ravel().tolist())
            writers["SimpleITK"] = lambda t: sitk.WriteImage(img, t, True)
        except ImportError:  # pragma: no cover
            pass
        if kind == "nifti":
            import nibabel as nib

            nimg = nib.Nifti1Image(np.asarray(array).transpose(2, 1, 0), vol.geometry.index_to_ras_matrix())
            writers["nibabel"] = lambda t: nib.save(nimg, t)
        if kind == "nrrd":
            import nrrd

            writers["pynrrd"] = lambda t: nrrd.write(t, np.asarray(array).transpose(2, 1, 0),
                                                     {"encoding": "gzip"})
        for name in skip:
            writers.pop(name, None)
        for name in writers:
            out[name] = {"seconds": float("inf"), "bytes": 0}
        for r in range(max(1, repeat)):
            for name, fn in writers.items():
                if name == "pynrrd" and r:  # pynrrd's default level 9 is slow: once is enough
                    continue
                target = os.path.join(tmp, f"{name}{ext}")
                out[name]["seconds"] = min(out[name]["seconds"], best_time(lambda fn=fn, target=target: fn(target), 1))
                out[name]["bytes"] = os.path.getsize(target)
        ours = os.path.join(tmp, f"napari-medio{ext}")
        checks = {}
        if vol.components is None:
            expected = np.asarray(array)
            try:
                import SimpleITK as sitk

                checks["SimpleITK"] = bool(np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(ours)), expected))
            except Exception as exc:
                checks["SimpleITK"] = f"error: {exc}"
            if kind == "nifti":
                import nibabel as nib

                got = np.asarray(nib.load(ours).dataobj).transpose(2, 1, 0)
                checks["nibabel"] = bool(np.array_equal(got, expected))
            if kind == "nrrd":
                import nrrd

                checks["pynrrd"] = bool(np.array_equal(nrrd.read(ours)[0].transpose(2, 1, 0), expected))
        out["napari-medio"]["readback"] = checks
    return out


def _print_read(name: str, t: dict[str, float]) -> dict:
    peers = {k: v for k, v in t.items() if not k.startswith(("napari-medio", "limit")) and v == v}
    fastest = min(peers.items(), key=lambda kv: kv[1]) if peers else None
    ours = t["napari-medio"]
    print(f"{name}: read")
    for k, v in t.items():
        print(f"  {k:28s} {v:8.3f} s")
    summary = {"read_s": ours}
    if fastest:
        summary["read_vs_fastest_peer"] = ours / fastest[1]
        print(f"  ratio to fastest peer ({fastest[0]}): {ours / fastest[1]:.2f}x")
    lim = next((v for k, v in t.items() if k.startswith("limit")), None)
    if lim:
        summary["read_vs_limit"] = ours / lim
        print(f"  ratio to physical limit: {ours / lim:.2f}x")
    return summary


def _print_write(name: str, w: dict[str, dict]) -> dict:
    ours = w["napari-medio"]
    peers = {k: v for k, v in w.items() if k != "napari-medio"}
    print(f"{name}: write")
    for k, v in w.items():
        print(f"  {k:28s} {v['seconds']:8.3f} s  {v['bytes'] / 1e6:9.2f} MB")
    summary: dict[str, Any] = {"write_s": ours["seconds"], "readback": ours.get("readback")}
    if peers:
        fk, fv = min(peers.items(), key=lambda kv: kv[1]["seconds"])
        summary["write_vs_fastest_peer"] = ours["seconds"] / fv["seconds"]
        summary["size_vs_fastest_peer"] = ours["bytes"] / max(fv["bytes"], 1)
        print(f"  ratio to fastest peer ({fk}): {ours['seconds'] / fv['seconds']:.2f}x time, "
              f"{ours['bytes'] / max(fv['bytes'], 1):.3f}x size")
    print(f"  napari-medio's file read back bit for bit: {ours.get('readback')}")
    return summary


def cmd_bench(args: argparse.Namespace) -> int:
    results = {}
    for f in args.files:
        p = Path(f)
        if not p.exists():
            print(f"medio: {p}: file not found", file=sys.stderr)
            return 1
        entry = _print_read(p.name, read_timings(p, args.repeat))
        if args.write:
            entry.update(_print_write(p.name, write_timings(p, args.repeat,
                                                            skip=("pynrrd",) if args.skip_slow else ())))
        results[os.fspath(p)] = entry
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def add_subcommands(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="time reading/writing your files vs nibabel, pynrrd and SimpleITK")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--repeat", type=int, default=3, help="runs per reader/writer (best is kept)")
    p.add_argument("--write", action="store_true", help="also time writing the same data in the same format")
    p.add_argument("--skip-slow", action="store_true", help="skip pynrrd's writer (gzip level 9: very slow)")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    p.set_defaults(func=cmd_bench)
