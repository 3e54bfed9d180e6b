"""ITK transform files (``.h5``, ``.tfm``, ``.txt``, ``.mat``) and displacement-field images.

Files hold the **from-parent** (resampling) transform in LPS, as Slicer writes
them (``vtkMRMLTransformStorageNode``).  SimpleITK reads and writes them; text
files with classes SimpleITK cannot instantiate (``Rigid3DTransform``, the ITKv3
``BSplineDeformableTransform`` with its additive bulk transform, ...) are
parsed here.  Displacement fields (``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``,
``.nii``, ``.nii.gz`` with 3-component voxels) go through napari-medio's volume
readers and writers; NRRD's ``displacement field type`` (``resampling`` /
``modeling``) is honoured and written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.transform import ThinPlateSpline, Transform
from ..core.volume import AxisInfo, Volume
from .naming import base_name

__all__ = ["read_itk_transform", "write_itk_transform", "read_displacement_field", "write_displacement_field"]

_TEXT_MAGIC = b"#Insight Transform File"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

#: Linear ITK classes whose text parameters are a 3x3 matrix followed by a translation.
_MATRIX_CLASSES = ("AffineTransform", "MatrixOffsetTransformBase", "Rigid3DTransform", "ScalableAffineTransform",
                   "FixedCenterOfRotationAffineTransform", "CenteredAffineTransform")


def _sniff_text(head: bytes, path: Path) -> bool:
    return head.lstrip().startswith(_TEXT_MAGIC)


def _sniff_h5(head: bytes, path: Path) -> bool:
    return head.startswith(_HDF5_MAGIC)


def _sniff_mat(head: bytes, path: Path) -> bool:
    # ITK writes MATLAB v4 matrices named after the transform class ("AffineTransform_double_3_3").
    return len(head) > 20 and b"Transform_" in head[:200] and (b"_double_" in head[:200] or b"_float_" in head[:200])


def _sniff_any(head: bytes, path: Path) -> bool:
    return _sniff_text(head, path) or _sniff_h5(head, path) or _sniff_mat(head, path)


# -- text parser (fallback) ------------------------------------------------------------------------------
def _parse_text(path: Path) -> list[dict]:
    text = path.read_bytes().decode("latin-1")
    if not text.lstrip().startswith("#Insight Transform File"):
        raise FormatError(path, "line 1: not an ITK transform file (no '#Insight Transform File' header)")
    blocks: list[dict] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key, sep, value = s.partition(":")
        if not sep:
            raise FormatError(path, f"line {lineno}: expected 'Key: value', got {s[:60]!r}")
        key = key.strip()
        if key == "Transform":
            blocks.append({"class": value.strip(), "line": lineno})
            continue
        if not blocks:
            raise FormatError(path, f"line {lineno}: {key} before any 'Transform:' line")
        if key in ("Parameters", "FixedParameters"):
            try:
                blocks[-1][key] = np.array([float(x) for x in value.split()], dtype=float)
            except ValueError:
                raise FormatError(path, f"line {lineno}: {key} are not all numbers") from None
    if not blocks:
        raise FormatError(path, "no 'Transform:' entry in the file")
    blocks = [b for b in blocks if not b["class"].startswith("CompositeTransform")]  # a container, no parameters
    if not blocks:
        raise FormatError(path, "the composite transform holds no transforms")
    for b in blocks:
        if "Parameters" not in b:
            raise FormatError(path, f"line {b['line']}: transform {b['class']} has no Parameters (truncated file?)")
        if "FixedParameters" not in b:
            raise FormatError(path, f"line {b['line']}: transform {b['class']} has no FixedParameters "
                                    "(truncated file?)")
    return blocks


def _linear_from_block(b: dict, path: Path) -> np.ndarray | None:
    cls = b["class"].split("_")[0]
    p, fp = b["Parameters"], b["FixedParameters"]
    if cls in _MATRIX_CLASSES:
        if p.size != 12:
            raise FormatError(path, f"line {b['line']}: {cls} needs 12 parameters, got {p.size}")
        center = fp[:3] if fp.size >= 3 else np.zeros(3)
        m = np.eye(4)
        m[:3, :3] = p[:9].reshape(3, 3)
        m[:3, 3] = p[9:12] + center - m[:3, :3] @ center
        return m
    if cls == "TranslationTransform":
        m = np.eye(4)
        m[:3, 3] = p[:3]
        return m
    return None


def _from_text_blocks(blocks: list[dict], path: Path, name: str) -> Transform:
    import SimpleITK as sitk

    parts: list[Transform] = []
    i = 0
    while i < len(blocks):
        b = blocks[i]
        cls = b["class"].split("_")[0]
        lin = _linear_from_block(b, path)
        if lin is not None:
            parts.append(Transform.from_matrix_from_parent(lin))
        elif cls in ("BSplineDeformableTransform", "BSplineTransform"):
            fp, p = b["FixedParameters"], b["Parameters"]
            if fp.size != 18:
                raise FormatError(path, f"line {b['line']}: {cls} needs 18 fixed parameters, got {fp.size}")
            n_nodes = int(np.prod(fp[:3]))
            if p.size != 3 * n_nodes:
                raise FormatError(path, f"line {b['line']}: {cls} grid {fp[:3].astype(int).tolist()} needs "
                                        f"{3 * n_nodes} parameters, got {p.size}")
            coeffs = p.reshape(3, n_nodes)
            bulk = None
            if cls == "BSplineDeformableTransform" and i + 1 < len(blocks):
                bulk = _linear_from_block(blocks[i + 1], path)  # ITKv3 additive bulk transform
                if bulk is not None:
                    i += 1
            if bulk is not None:
                # T(x) = B(x) + d(x) == B(x + B_lin^-1 d(x)): scale the coefficients, compose after.
                coeffs = np.linalg.inv(bulk[:3, :3]) @ coeffs
            tx = sitk.BSplineTransform(3, 3)
            tx.SetFixedParameters(fp.tolist())
            tx.SetParameters(coeffs.reshape(-1).tolist())
            bs = Transform("bspline", itk=tx)
            if bulk is not None:
                parts.append(Transform("composite", components=[Transform.from_matrix_from_parent(bulk), bs],
                                       metadata={"itkv3_bulk": True}))
            else:
                parts.append(bs)
        elif cls == "ThinPlateSplineKernelTransform":
            parts.append(Transform("thinplate", itk=_tps(b["Parameters"], b["FixedParameters"], path,
                                                         f"line {b['line']}: ")))
        else:
            raise FormatError(path, f"line {b['line']}: unsupported transform type {b['class']!r}")
        i += 1
    if len(parts) == 1:
        t = parts[0]
        t.name = name
        return t
    return Transform("composite", name=name, components=parts)


def _tps(params: np.ndarray, fixed: np.ndarray, path: Path, where: str) -> ThinPlateSpline:
    """ITK's kernel transforms keep the source landmarks in the parameters, the targets in the fixed ones."""
    if fixed.size != params.size or fixed.size % 3 or not fixed.size:
        raise FormatError(path, f"{where}ThinPlateSplineKernelTransform needs as many parameters (source "
                                f"landmarks) as fixed parameters (target landmarks), a multiple of 3; got "
                                f"{params.size} and {fixed.size}")
    try:
        return ThinPlateSpline(params.reshape(-1, 3), fixed.reshape(-1, 3))
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise FormatError(path, f"{where}{exc}") from None


def _check_bspline_grid(cls: str, params_size: int, fixed: np.ndarray, path: Path, where: str) -> None:
    """A B-spline's fixed parameters (grid size, origin, spacing, direction) agree with its parameter count.

    ITK allocates the grid before comparing it with the parameters (a huge or negative grid corrupts its
    heap), so this runs before ITK sees the file.
    """
    tail = cls.rsplit("_", 1)[-1]
    dim = int(tail) if tail.isdigit() and 2 <= int(tail) <= 3 else 3
    if fixed.size != dim * (dim + 3):
        raise FormatError(path, f"{where}{cls} needs {dim * (dim + 3)} fixed parameters, got {fixed.size}")
    grid = fixed[:dim]
    if not np.isfinite(fixed).all() or (grid < 1).any() or (grid != np.round(grid)).any():
        raise FormatError(path, f"{where}{cls} grid size {fixed[:dim].tolist()} is not whole positive numbers")
    if (fixed[2 * dim:3 * dim] == 0).any():
        raise FormatError(path, f"{where}{cls} grid spacing {fixed[2 * dim:3 * dim].tolist()} has a zero")
    nodes = int(np.prod(grid.astype(np.int64)))
    if grid.max() > params_size or nodes * dim != params_size:
        raise FormatError(path, f"{where}{cls} grid {grid.astype(np.int64).tolist()} needs {nodes * dim} "
                                f"parameters, got {params_size}")


def _check_text_grids(path: Path) -> None:
    for b in _parse_text(path):
        if "BSpline" in b["class"]:
            _check_bspline_grid(b["class"], b["Parameters"].size, b["FixedParameters"], path, f"line {b['line']}: ")


def _check_h5_grids(path: Path) -> None:
    """B-spline grids of an ITK HDF5 transform file, checked without loading the parameters."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f.get("TransformGroup")
            for k in (group.keys() if isinstance(group, h5py.Group) else ()):
                g = group[k]
                ttype = g["TransformType"][()] if "TransformType" in g else b""
                ttype = ttype[0] if getattr(ttype, "shape", ()) else ttype
                ttype = ttype.decode("latin-1") if isinstance(ttype, bytes) else str(ttype)
                if "BSpline" not in ttype:
                    continue
                where = f"TransformGroup/{k}: "
                fixed = _h5_dataset(g, "TransformFixedParameters")
                params = next((g[n] for n in ("TransformParameters", "TranformParameters") if n in g), None)
                if fixed is None or params is None:
                    raise FormatError(path, f"{where}missing TransformParameters or TransformFixedParameters")
                _check_bspline_grid(ttype, int(params.size), fixed.reshape(-1), path, where)
    except FormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FormatError(path, f"cannot read HDF5: {exc}") from None


def _h5_dataset(group: Any, name: str) -> np.ndarray | None:
    """A parameter dataset of an ITK HDF5 transform group; older ITK spelled the names ``Tranform...``."""
    for key in (name, name.replace("Transform", "Tranform", 1)):
        if key in group:
            return np.asarray(group[key][()], float)
    return None


def _read_h5_kernel(path: Path) -> Transform | None:
    """A thin-plate spline in an ITK HDF5 file (SimpleITK cannot instantiate the class); None when not one."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f.get("TransformGroup")
            if group is None:
                return None
            keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else 0)
            parts = []
            for k in keys:
                g = group[k]
                ttype = g["TransformType"][()]
                ttype = (ttype[0] if getattr(ttype, "shape", ()) else ttype)
                ttype = ttype.decode() if isinstance(ttype, bytes) else str(ttype)
                if ttype.startswith("CompositeTransform"):
                    continue
                if not ttype.startswith("ThinPlateSplineKernelTransform"):
                    return None
                where = f"TransformGroup/{k}: "
                params, fixed = _h5_dataset(g, "TransformParameters"), _h5_dataset(g, "TransformFixedParameters")
                if params is None or fixed is None:
                    raise FormatError(path, f"{where}missing TransformParameters or TransformFixedParameters")
                parts.append(Transform("thinplate", itk=_tps(params, fixed, path, where)))
    except OSError as exc:
        raise FormatError(path, f"cannot read HDF5: {exc}") from None
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Transform("composite", components=parts)


def read_itk_transform(path: str | os.PathLike[str]) -> list[Transform]:
    """An ITK transform file as a from-parent LPS :class:`Transform`."""
    import SimpleITK as sitk

    p = Path(path)
    head = p.read_bytes()[:4096]
    if not head:
        raise FormatError(p, "file is empty")
    if not _sniff_any(head, p):
        raise FormatError(p, "not an ITK transform file (no '#Insight Transform File' header, HDF5 or MATLAB "
                             "transform signature)")
    name = base_name(p)
    if _sniff_text(head, p):
        _check_text_grids(p)
    elif _sniff_h5(head, p):
        _check_h5_grids(p)
    try:
        tx = sitk.ReadTransform(os.fspath(p))
    except RuntimeError as exc:
        kernel = _read_h5_kernel(p) if _sniff_h5(head, p) else None
        if _sniff_text(head, p):
            t = _from_text_blocks(_parse_text(p), p, name)
        elif kernel is not None:
            t = kernel
            t.name = name
        else:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise FormatError(p, f"ITK cannot read this transform: {reason[:200]}") from None
    else:
        if _sniff_text(head, p):
            # ITK fills missing parameters silently: check the text is complete.
            blocks = _parse_text(p)
            n_text = sum(b["Parameters"].size for b in blocks)
            n_fixed = sum(b["FixedParameters"].size for b in blocks)
            want, want_fixed = _count_parameters(tx)
            if n_text != want or n_fixed != want_fixed:
                raise FormatError(p, f"line {blocks[-1]['line']}: {blocks[-1]['class']} has {n_text} parameters and "
                                     f"{n_fixed} fixed parameters; {want} and {want_fixed} expected (truncated file?)")
        try:
            t = Transform.from_sitk(tx, name=name)
        except ValueError as exc:
            raise FormatError(p, str(exc)) from None
    if t.is_linear:
        try:
            _ = t.matrix_to_parent_lps  # computing it checks that the matrix is invertible
        except np.linalg.LinAlgError:
            raise FormatError(p, "the transform matrix is not invertible") from None
    t.source = os.fspath(p)
    return [t]


def _count_parameters(tx: Any) -> tuple[int, int]:
    import SimpleITK as sitk

    tx = tx.Downcast() if hasattr(tx, "Downcast") else tx
    if tx.GetName() == "CompositeTransform":
        comp = sitk.CompositeTransform(tx)
        counts = [_count_parameters(comp.GetNthTransform(i)) for i in range(comp.GetNumberOfTransforms())]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)
    return tx.GetNumberOfParameters(), tx.GetNumberOfFixedParameters()


def write_itk_transform(transform: Any, path: str | os.PathLike[str]) -> list[str]:
    """Write a transform as Slicer does: the from-parent LPS transform (linear as ``AffineTransform``)."""
    import SimpleITK as sitk

    p = Path(path)
    t = _as_transform(transform, p)
    if t.type == "thinplate" and isinstance(t.itk, ThinPlateSpline):
        return _write_tps(t, p)
    if t.is_linear:
        tx = t.as_linear().to_sitk()
    else:
        if p.suffix.lower() == ".mat":
            raise WriteError(p, "MATLAB .mat transform files hold linear transforms only; use .h5 or .tfm")
        tx = t.to_sitk()
    with atomic_output(p) as tmp:
        sitk.WriteTransform(tx, os.fspath(tmp))
    return [os.fspath(p)]


def _write_tps(t: Transform, p: Path) -> list[str]:
    """A thin-plate spline as ITK writes it (text or HDF5): Parameters = source, FixedParameters = target."""
    tps = t.itk
    if t.stored_direction != "from_parent":
        raise WriteError(p, "only a from-parent (resampling) thin-plate spline can be written")
    cls = "ThinPlateSplineKernelTransform_double_3_3"
    lower = p.name.lower()
    if lower.endswith(".mat"):
        raise WriteError(p, "MATLAB .mat transform files hold linear transforms only; use .h5 or .tfm")
    with atomic_output(p) as tmp:
        if lower.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(tmp, "w") as f:
                for key, value in (("HDFVersion", "HDF5 library version: " + h5py.version.hdf5_version),
                                   ("ITKVersion", "napari-medio"), ("OSName", os.name), ("OSVersion", "")):
                    f.create_dataset(key, data=np.array([value.encode()], dtype=object),
                                     dtype=h5py.string_dtype("ascii"))
                g = f.create_group("TransformGroup").create_group("0")
                g.create_dataset("TransformType", data=np.array([cls.encode()], dtype=object),
                                 dtype=h5py.string_dtype("ascii"))
                g.create_dataset("TransformFixedParameters", data=np.asarray(tps.GetFixedParameters(), float))
                g.create_dataset("TransformParameters", data=np.asarray(tps.GetParameters(), float))
        else:
            def nums(v: Any) -> str:
                return " ".join(f"{x:.17g}" for x in v)

            tmp.write_text("#Insight Transform File V1.0\n#Transform 0\n"
                           f"Transform: {cls}\nParameters: {nums(tps.GetParameters())}\n"
                           f"FixedParameters: {nums(tps.GetFixedParameters())}\n", encoding="ascii")
    return [os.fspath(p)]


def _as_transform(obj: Any, p: Path) -> Transform:
    if isinstance(obj, Transform):
        return obj
    if isinstance(obj, np.ndarray) and obj.shape == (4, 4):
        return Transform.from_matrix_to_parent(obj)
    raise WriteError(p, f"a transform file holds a transform, not {type(obj).__name__}")


# -- displacement fields --------------------------------------------------------------------------------
_VOLUME_FORMAT = {".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "metaimage", ".mhd": "metaimage",
                  ".nii": "nifti", ".nii.gz": "nifti"}


def _image_format(path: Path) -> str:
    lower = path.name.lower()
    for ext, fmt in sorted(_VOLUME_FORMAT.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(ext):
            return fmt
    raise FormatError(path, "a displacement field must be .nrrd, .nhdr, .mha, .mhd, .nii or .nii.gz")


def _sniff_field(head: bytes, path: Path) -> bool:
    if head.startswith(b"NRRD"):
        return b"displacement field type:=" in head
    if len(head) >= 348:
        import struct

        for endian in ("<", ">"):
            if struct.unpack(endian + "i", head[:4])[0] == 348:
                return struct.unpack(endian + "h", head[68:70])[0] == 1006  # NIFTI_INTENT_DISPVECT
    return False


def read_displacement_field(path: str | os.PathLike[str], interpolation: str = "cubic") -> list[Transform]:
    """A grid transform from a 3-component vector image (LPS vectors; resampling unless NRRD says modeling).

    ``interpolation`` between the grid nodes: ``cubic`` as Slicer maps points, or ``linear`` as ITK.
    """
    from ..core import registry
    from ..core.transform import GRID_INTERPOLATIONS

    p = Path(path)
    if interpolation not in GRID_INTERPOLATIONS:
        raise FormatError(p, f"unknown interpolation {interpolation!r}; expected one of {GRID_INTERPOLATIONS}")
    objects = registry.read(p, format=_image_format(p))
    if not objects or not isinstance(objects[0], Volume):
        raise FormatError(p, "no image in the file")
    vol = objects[0]
    if vol.components is None or vol.n_components != 3 or vol.geometry.ndim != 3:
        raise FormatError(p, f"a displacement field needs 3D voxels of 3 components; got shape {vol.shape}")
    custom = (vol.metadata.get("nrrd") or {}).get("custom") or {}
    kind = str(custom.get("displacement field type", "resampling")).strip().lower()
    direction = "to_parent" if kind == "modeling" else "from_parent"
    mf = vol.metadata.get("measurement_frame")
    if mf is not None and not np.allclose(np.asarray(mf, dtype=float), np.eye(3)):
        raise FormatError(p, "displacement fields with a non-identity measurement frame are not supported")
    vol = vol.with_array(np.asarray(vol.array, dtype=np.float64))
    t = Transform("grid", name=base_name(p), displacement=vol, stored_direction=direction, source=os.fspath(p),
                  interpolation=interpolation)
    if kind not in ("resampling", "modeling"):
        t.metadata["warning"] = f"unknown displacement field type {kind!r}; read as resampling"
    return [t]


def write_displacement_field(transform: Any, path: str | os.PathLike[str], **options: Any) -> list[str]:
    """Write a grid transform as a vector image (``displacement field type`` in NRRD)."""
    from ..core import registry

    p = Path(path)
    t = _as_transform(transform, p)
    if t.type != "grid" or t.displacement is None:
        raise WriteError(p, f"only grid (displacement field) transforms can be written as images, not {t.type}")
    fmt = _image_format(p)
    if t.stored_direction == "to_parent" and fmt != "nrrd":
        raise WriteError(p, "a to-parent (modeling) displacement field can only be written to .nrrd")
    vol = t.displacement
    md = dict(vol.metadata)
    nrrd_md = dict(md.get("nrrd") or {})
    custom = dict(nrrd_md.get("custom") or {})
    if fmt == "nrrd":
        custom["displacement field type"] = "modeling" if t.stored_direction == "to_parent" else "resampling"
    nrrd_md["custom"] = custom
    md["nrrd"] = nrrd_md
    md["measurement_frame"] = np.eye(3).tolist()
    md["displacement_field"] = True  # NIfTI: intent 1006 (displacement vector)
    vol = vol.with_array(vol.array, metadata=md, components=AxisInfo(name="vector", kind="vector"))
    return registry.write(vol, p, format=fmt, **options)


# -- registration -----------------------------------------------------------------------------------------
register(FileFormat(
    name="itk-transform",
    description="ITK transform (linear, b-spline, thin-plate, composite; HDF5, text or MATLAB)",
    extensions=(".h5", ".hdf5", ".tfm", ".txt", ".mat"),
    read=read_itk_transform,
    write=write_itk_transform,
    sniff=_sniff_any,
    kinds=(DataKind.TRANSFORM,),
    priority=5,
    backend="SimpleITK",
))

register(FileFormat(
    name="displacement-field",
    description="Displacement field transform (3-component vector image, Slicer grid transform)",
    extensions=(".nrrd", ".nhdr", ".mha", ".mhd", ".nii", ".nii.gz"),
    read=read_displacement_field,
    write=write_displacement_field,
    sniff=_sniff_field,
    kinds=(DataKind.TRANSFORM,),
    priority=10,
    backend="napari-medio volume I/O",
))
