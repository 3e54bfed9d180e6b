#!/usr/bin/env bash
# Set up everything napari-medio needs on a Debian machine: the Debian packages a
# headless viewer and the DICOM peers need (when missing, and when we may install
# them), a virtual environment in .venv, and the package with all its extras; and
# .venv-slicer with 3D Slicer's libraries for the tests that compare with Slicer.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

DEBIAN_PACKAGES="xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libxkbcommon-x11-0 libxcb-icccm4 \
libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 \
libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1 dcmtk dicom3tools dcm2niix orthanc orthanc-dicomweb"

if command -v dpkg-query >/dev/null 2>&1; then
  missing=""
  for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ]; then
      echo "setup: installing Debian packages:$missing" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends $missing >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
      echo "setup: installing Debian packages with sudo:$missing" >&2
      sudo apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
      echo "setup: please install these Debian packages:$missing" >&2
    fi
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.napari-medio-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

# 3D Slicer's own libraries (PyPI slicer-core) for the tests that check files against Slicer
# (tests/slicer_harness.py). slicer-core pins vtk and takes the import name `slicer`, so it
# gets a virtual environment of its own and never goes into .venv.
SLICER_CORE="slicer-core==5.13.31053.0"
slicer_stamp=.venv-slicer/.napari-medio-installed
if [ ! -f "$slicer_stamp" ] || [ "$(cat "$slicer_stamp")" != "$SLICER_CORE" ]; then
  rm -rf .venv-slicer
  "$PYTHON" -m venv .venv-slicer
  .venv-slicer/bin/python -m pip install -q "$SLICER_CORE"
  .venv-slicer/bin/python -c "import slicer; slicer.vtkMRMLVolumeArchetypeStorageNode"
  echo "$SLICER_CORE" > "$slicer_stamp"
fi

# napari opens what napari-medio reads with napari-medio, without asking (reader preferences).
.venv/bin/python -c "from napari_medio.plugin.preferences import claim_reader_preferences as c; c(notify=False)" \
  || echo "setup: could not set napari's reader preferences (napari-medio sets them on first use)" >&2
