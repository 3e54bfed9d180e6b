#!/usr/bin/env bash
# Check napari-medio as a user installs it: build a wheel from this checkout, install it
# with the `napari` extra into a fresh virtual environment (not .venv, and away from the
# source tree), then check that the installed `medio formats` runs, that napari's plugin
# manager (npe2) discovers napari-medio with a valid manifest, and that napari reads a
# test file through the plugin. Any failed check fails the script.
#   scripts/check_install.sh [WORKDIR]    # default: a temporary folder, removed afterwards
# pip's cache and configured indexes are used as they are, so a second run is fast.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ $# -gt 0 ]; then
  work="$1"; mkdir -p "$work"
else
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fi
step() { printf 'check-install: %s\n' "$*" >&2; }
quiet_pip() { grep -v "^WARNING: Location .* is ignored" || true; }

start=$SECONDS
step "building a wheel of $root"
rm -rf "$work/dist" "$work/venv"
"$PYTHON" -m pip wheel "$root" --no-deps -q -w "$work/dist" 2>&1 | quiet_pip
wheels=("$work"/dist/napari_medio-*.whl)
[ -f "${wheels[0]}" ] || { step "FAILED: no wheel built"; exit 1; }
step "built $(basename "${wheels[0]}") in $((SECONDS - start)) s"

start=$SECONDS
"$PYTHON" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q "${wheels[0]}[napari]" 2>&1 | quiet_pip
step "installed it with the napari extra into a fresh venv in $((SECONDS - start)) s"

start=$SECONDS
cd "$work"  # not the checkout: imports must come from the installed wheel
"$work/venv/bin/medio" formats > formats.txt
grep -q "^nrrd " formats.txt || { step "FAILED: 'medio formats' lists no nrrd"; cat formats.txt >&2; exit 1; }
step "medio formats: $(wc -l < formats.txt) formats"
"$work/venv/bin/npe2" validate napari-medio
"$py" - "$work/venv" "$root/tests/data/images/CTChest4.nrrd" <<'EOF'
import sys
from pathlib import Path

import npe2

import napari_medio

venv, sample = Path(sys.argv[1]).resolve(), sys.argv[2]
where = Path(napari_medio.__file__).resolve()
assert venv in where.parents, f"napari_medio imported from {where}, not from the installed wheel"
pm = npe2.PluginManager.instance()
pm.discover()
manifest = pm.get_manifest("napari-medio")  # raises KeyError when napari does not find the plugin
readers = [r.plugin_name for r in pm.iter_compatible_readers([sample])]
assert "napari-medio" in readers, f"napari-medio is no reader for {sample}: {readers}"
[(data, meta, kind)] = npe2.read([sample], stack=False, plugin_name="napari-medio")
assert kind == "image" and data.shape == (34, 128, 128), (kind, data.shape)
writers = {c.command for c in manifest.contributions.writers or []}
print(f"check-install: napari finds {manifest.name} {manifest.package_version}: "
      f"{len(writers)} writers, reads {Path(sample).name} as {kind} {data.shape}", file=sys.stderr)
EOF
step "checks passed in $((SECONDS - start)) s"
