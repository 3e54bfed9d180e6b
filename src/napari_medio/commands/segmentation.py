"""``medio export-surfaces``: one surface file per segment (Slicer's "export to models")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import MedioError
from ..core.kinds import VOLUME_KINDS
from ..formats.surfaces import SURFACE_FORMATS as FORMATS
from ..formats.surfaces import write_segment_surfaces


def export_surfaces(seg_path: str, outdir: str, fmt: str = "stl", smooth: int = 0, decimate: float = 0.0,
                    method: str = "surface_nets") -> list[str]:
    """Write one ``<segment name>.<fmt>`` per segment of the file ``seg_path`` into ``outdir``; returns the paths."""
    import napari_medio

    from ..core.segmentation import Segmentation

    objs = napari_medio.read(seg_path)
    seg = next((o for o in objs if isinstance(o, Segmentation)), None)
    if seg is None:
        vol = next((o for o in objs if getattr(o, "kind", None) in VOLUME_KINDS), None)
        if vol is None:
            raise MedioError(seg_path, "holds no segmentation or label map")
        seg = Segmentation.from_labelmap(vol)
    return write_segment_surfaces(seg, outdir, fmt, smooth, decimate, method, stem=seg.name or Path(seg_path).stem)


def cmd_export_surfaces(args: argparse.Namespace) -> int:
    try:
        written = export_surfaces(args.segmentation, args.outdir, args.format, args.smooth, args.decimate,
                                  args.method)
    except MedioError as exc:
        print(f"medio: {exc}", file=sys.stderr)
        return 1
    for w in written:
        print(w)
    return 0


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser("export-surfaces", help="write one surface per segment (stl/obj/vtk/ply/gltf)")
    p.add_argument("segmentation", help=".seg.nrrd, label map or other segmentation file")
    p.add_argument("outdir")
    p.add_argument("--format", choices=FORMATS, default="stl")
    p.add_argument("--smooth", type=int, default=0, metavar="N", help="smoothing iterations (0: none)")
    p.add_argument("--decimate", type=float, default=0.0, metavar="F", help="target reduction 0-1 (0: none)")
    p.add_argument("--method", choices=("surface_nets", "flying_edges"), default="surface_nets")
    p.set_defaults(func=cmd_export_surfaces)
