"""Run Python code inside 3D Slicer's own libraries, to check files against Slicer itself.

3D Slicer's MRML library (storage nodes, scenes, volume/segmentation/markups readers) is on
PyPI as ``slicer-core``.  It pins ``vtk==9.6.2`` and takes the import name ``slicer``, so it
cannot share ``.venv`` with napari-medio: ``scripts/setup.sh`` installs it into a virtual
environment of its own, ``.venv-slicer`` in the repository root.  A test hands this module a
snippet of Python; the snippet runs there in a subprocess, and data goes both ways through
files in a temporary folder:

    from tests.slicer_harness import run_slicer

    out = run_slicer('''
        volume = read_volume(inputs["path"])        # vtkMRMLVolumeArchetypeStorageNode
        result["ijk_to_ras"] = volume["ijk_to_ras"]
        result["voxels"] = volume["voxels"]
    ''', inputs={"path": str(path)})
    out["voxels"]          # a NumPy array again

Inside the snippet these names are defined:

* ``inputs``: the ``inputs`` dict (JSON: strings, numbers, lists, dicts; pass paths as str);
* ``result``: a dict to fill; it comes back as the return value of :func:`run_slicer`.
  Values must be JSON or NumPy: arrays (any dtype, any shape) travel as ``.npy`` files and
  NumPy scalars become Python numbers;
* ``workdir``: a :class:`pathlib.Path` to a temporary folder (removed afterwards) for files
  the snippet writes;
* ``slicer``, ``vtk``, ``np`` (NumPy), and the Slicer-side helpers of this module:
  :func:`new_scene`, :func:`read_volume`, :func:`node_voxels`, :func:`node_ijk_to_ras`.

The snippet is dedented first, so it can be written as an indented triple-quoted string.
An exception in it fails the calling test with Slicer's traceback.  Where the Slicer
environment is missing the test is skipped, and fails when the ``CI`` environment variable
is set (CI runs ``scripts/setup.sh``, which makes it).  ``NAPARI_MEDIO_SLICER_PYTHON`` names
another interpreter that has ``slicer-core`` (e.g. the main checkout's when testing from a
git worktree).

The host side of this module imports only the standard library and NumPy; the Slicer-side
helpers import ``slicer`` and ``vtk`` when called, so the module imports in both
environments.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The Slicer environment made by scripts/setup.sh.
SLICER_VENV = REPO_ROOT / ".venv-slicer"

#: Marks a NumPy array in the JSON exchange: ``{"__npy__": "name.npy"}``.
_NPY = "__npy__"

# Runs in the Slicer environment: argv = [snippet file, inputs JSON, result JSON, work folder].
_RUNNER = """
import json, sys, textwrap
from pathlib import Path
sys.path.insert(0, {repo!r})
import numpy as np
import vtk
import slicer
from tests import slicer_harness as harness

snippet_file, inputs_file, result_file, workdir = sys.argv[1:5]
workdir = Path(workdir)
result = {{}}
namespace = {{"inputs": json.loads(Path(inputs_file).read_text()), "result": result, "workdir": workdir,
             "slicer": slicer, "vtk": vtk, "np": np, "new_scene": harness.new_scene,
             "read_volume": harness.read_volume, "node_voxels": harness.node_voxels,
             "node_ijk_to_ras": harness.node_ijk_to_ras}}
code = compile(Path(snippet_file).read_text(), "<slicer snippet>", "exec")
exec(code, namespace)
Path(result_file).write_text(json.dumps(harness.encode(result, workdir)))
"""


class SlicerError(RuntimeError):
    """The snippet failed (or timed out) inside the Slicer environment."""


def slicer_python() -> Path | None:
    """The Python interpreter that has ``slicer-core``, or None when there is none."""
    override = os.environ.get("NAPARI_MEDIO_SLICER_PYTHON")
    python = Path(override) if override else SLICER_VENV / "bin" / "python"
    return python if python.exists() else None


def require_slicer() -> Path:
    """The Slicer interpreter; skips the calling test when it is missing (fails on CI)."""
    import pytest

    python = slicer_python()
    if python is None:
        message = f"3D Slicer libraries not installed: run scripts/setup.sh (makes {SLICER_VENV})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def run_slicer(script: str, inputs: dict[str, Any] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run ``script`` in the Slicer environment and return the ``result`` dict it filled.

    ``inputs`` is passed in as JSON. NumPy arrays in the result come back as arrays.
    Raises :class:`SlicerError` with the subprocess's output when the snippet fails or
    takes longer than ``timeout`` seconds.
    """
    python = require_slicer()
    with tempfile.TemporaryDirectory(prefix="medio-slicer-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        work.mkdir()
        (tmp / "snippet.py").write_text(textwrap.dedent(script))
        (tmp / "inputs.json").write_text(json.dumps(inputs or {}))
        cmd = [str(python), "-c", _RUNNER.format(repo=str(REPO_ROOT)), str(tmp / "snippet.py"),
               str(tmp / "inputs.json"), str(tmp / "result.json"), str(work)]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=tmp,
                                  env=_clean_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise SlicerError(f"Slicer snippet did not finish in {timeout} s\n{exc.stdout or ''}{exc.stderr or ''}") \
                from exc
        if proc.returncode != 0:
            raise SlicerError(f"Slicer snippet failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return decode(json.loads((tmp / "result.json").read_text()), work)


def _clean_env() -> dict[str, str]:
    """The environment for the Slicer process: none of this venv's Python path settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def encode(value: Any, folder: Path) -> Any:
    """``value`` as JSON-able data: NumPy arrays saved as ``.npy`` files in ``folder``."""
    if isinstance(value, np.ndarray):
        n = 0
        while (folder / f"_result{n}.npy").exists():
            n += 1
        name = f"_result{n}.npy"
        np.save(folder / name, value, allow_pickle=False)
        return {_NPY: name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): encode(v, folder) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, folder) for v in value]
    return value


def decode(value: Any, folder: Path) -> Any:
    """The inverse of :func:`encode`: ``.npy`` references in ``folder`` loaded as arrays."""
    if isinstance(value, dict):
        if set(value) == {_NPY}:
            return np.load(folder / value[_NPY], allow_pickle=False)
        return {k: decode(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, folder) for v in value]
    return value


def assert_same_volume(voxels: np.ndarray, ijk_to_ras: np.ndarray, expected_voxels: np.ndarray,
                       expected_ijk_to_ras: np.ndarray, atol_mm: float = 1e-6) -> None:
    """Assert that two volumes are the same voxels at the same places, in RAS millimetres.

    Slicer may index a grid differently from the file: it reverses the k axis of a
    left-handed grid (moving the origin to the last slice), so the voxel arrays are compared
    through the geometry, not index by index. Every voxel centre of the expected grid must
    land on a voxel centre of the other grid within ``atol_mm`` (all voxels are checked, not
    only the corners), the map between the grids must be one to one, and the voxel values
    there must be equal (exactly; same dtype).
    """
    voxels, expected_voxels = np.asarray(voxels), np.asarray(expected_voxels)
    assert voxels.dtype == expected_voxels.dtype, (voxels.dtype, expected_voxels.dtype)
    assert voxels.shape[3:] == expected_voxels.shape[3:], (voxels.shape, expected_voxels.shape)
    k, j, i = np.indices(expected_voxels.shape[:3]).reshape(3, -1)
    ijk = np.stack([i, j, k, np.ones_like(i)]).astype(float)
    ras = np.asarray(expected_ijk_to_ras, dtype=float) @ ijk
    their_ijk = np.rint(np.linalg.solve(np.asarray(ijk_to_ras, dtype=float), ras)).astype(np.int64)
    offset = np.abs(np.asarray(ijk_to_ras, dtype=float) @ their_ijk - ras)[:3].max()
    assert offset <= atol_mm, f"voxel centres differ by up to {offset:.3g} mm (tolerance {atol_mm} mm)"
    size = np.array(voxels.shape[:3][::-1])[:, None]  # (i, j, k) extents of the other grid
    assert ((their_ijk[:3] >= 0) & (their_ijk[:3] < size)).all(), "voxels fall outside the other grid"
    flat = np.ravel_multi_index((their_ijk[2], their_ijk[1], their_ijk[0]), voxels.shape[:3])
    assert np.unique(flat).size == flat.size == int(np.prod(voxels.shape[:3])), "the grids are not one to one"
    theirs = voxels[their_ijk[2], their_ijk[1], their_ijk[0]]
    ours = expected_voxels[k, j, i]
    same = (theirs == ours) | (np.isnan(theirs) & np.isnan(ours)) if theirs.dtype.kind in "fc" else theirs == ours
    mismatch = np.flatnonzero(~same.reshape(len(k), -1).all(axis=1))
    assert mismatch.size == 0, (f"{mismatch.size} voxels differ; first at (k, j, i) = "
                                f"{(k[mismatch[0]], j[mismatch[0]], i[mismatch[0]])}: "
                                f"{theirs[mismatch[0]]} != {ours[mismatch[0]]}")


# -- Slicer side: called inside the snippet (they import slicer and vtk) --------------------------


def new_scene():
    """A fresh, empty ``vtkMRMLScene``."""
    import slicer

    return slicer.vtkMRMLScene()


def read_volume(path: str, labelmap: bool = False, scene=None) -> dict[str, Any]:
    """Read a volume file as Slicer's Add Data does, with ``vtkMRMLVolumeArchetypeStorageNode``.

    Returns ``{"node", "scene", "voxels", "ijk_to_ras"}``: the volume node (scalar or
    label map), its scene, the voxels in NumPy order ``[k, j, i]`` (a trailing component
    axis when there is more than one) and the 4x4 IJK-to-RAS matrix Slicer placed it with
    (RAS millimetres). Raises RuntimeError when Slicer cannot read the file.
    """
    import slicer

    scene = scene if scene is not None else new_scene()
    node = slicer.vtkMRMLLabelMapVolumeNode() if labelmap else slicer.vtkMRMLScalarVolumeNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    storage.SetSingleFile(True)  # this file only, not a numbered series beside it
    if not storage.ReadData(node):
        raise RuntimeError(f"Slicer could not read {path}")
    return {"node": node, "scene": scene, "voxels": node_voxels(node), "ijk_to_ras": node_ijk_to_ras(node)}


def node_voxels(node) -> np.ndarray:
    """A volume node's voxels as a NumPy array ``[k, j, i]`` (``[k, j, i, c]`` for vectors)."""
    from vtk.util import numpy_support

    image = node.GetImageData()
    i, j, k = image.GetDimensions()
    components = image.GetNumberOfScalarComponents()
    flat = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    shape = (k, j, i) if components == 1 else (k, j, i, components)
    return flat.reshape(shape).copy()


def node_ijk_to_ras(node) -> np.ndarray:
    """A volume node's 4x4 IJK-to-RAS matrix (voxel index to RAS millimetres)."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
