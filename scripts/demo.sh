#!/usr/bin/env bash
# Launch napari with napari-medio and its sample data (sets itself up first).
#   scripts/demo.sh                        # a napari window with the CT phantom
#   scripts/demo.sh some.nii.gz            # ... and your files
#   scripts/demo.sh --screenshot out.png   # no display needed: renders under xvfb-run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  exec xvfb-run -a -s "-screen 0 1280x1024x24" "$root/.venv/bin/medio" demo "$@"
fi
exec "$root/.venv/bin/medio" demo "$@"
