"""napari's reader preferences: what napari-medio reads opens with napari-medio, without a question.

napari chooses a reader from ``settings.plugins.extension2reader`` (fnmatch patterns
matched against the whole path; a folder's path ends in ``/``) before it imports any
plugin, and asks the user whenever two plugins claim a file and no pattern matches.
So :func:`claim_reader_preferences` writes napari-medio's manifest patterns there
(napari-medio for every extension it declares, upper-case variants, ``DICOMDIR`` and
every folder), wherever the user has no choice saved and napari-medio has not set
the pattern before; the npe2 ``on_activate`` hook (:func:`activate`), ``medio demo``
and ``scripts/setup.sh`` call it.

napari-medio's manifest also declares the catch-all ``*`` (DICOM files have no
extension, and any file is recognised by its content), which makes napari-medio a
candidate for every file: napari would then ask (or, in ``viewer.open``, refuse) for
formats only another plugin reads (``.npy``, ``.gif``, ...).  Those patterns are set
to that one other plugin, as napari chose before napari-medio was installed.
Hand-written: napari has no "preferred reader" field in the npe2 manifest.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["FOLDER_PATTERN", "PLUGIN_NAME", "activate", "claim_reader_preferences", "medio_patterns",
           "other_readers_patterns"]

#: The plugin name napari stores in its preferences.
PLUGIN_NAME = "napari-medio"
#: napari appends the path separator to a folder before matching it.
FOLDER_PATTERN = "*" + os.sep
#: Key in napari-medio's settings: patterns already set, per napari settings file.
_CLAIMED_KEY = "claimed_reader_preferences"


def _manifest_patterns() -> list[str]:
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(Path(__file__).resolve().parent.parent / "napari.yaml")
    return [p for reader in manifest.contributions.readers or [] for p in reader.filename_patterns]


def _as_path_pattern(pattern: str) -> str:
    """A manifest pattern (matched on the file name) as napari's preference (matched on the whole path)."""
    return pattern if pattern.startswith("*") else "*" + os.sep + pattern


def medio_patterns() -> list[str]:
    """Preference patterns for what napari-medio reads: manifest patterns, upper-case variants, folders."""
    out: list[str] = []
    for pattern in _manifest_patterns():
        if pattern == "*":
            continue
        for variant in (pattern, pattern.upper()):
            variant = _as_path_pattern(variant)
            if variant not in out:
                out.append(variant)
    out.append(FOLDER_PATTERN)
    return out


def other_readers_patterns(plugin_manager: Any = None) -> dict[str, str]:
    """Patterns that exactly one other installed reader plugin declares and napari-medio does not read."""
    if plugin_manager is None:
        from npe2 import PluginManager

        plugin_manager = PluginManager.instance()
        if not list(plugin_manager.iter_manifests()):
            plugin_manager.discover()
    ours = tuple(p.lower().lstrip("*") for p in _manifest_patterns() if p != "*")
    owners: dict[str, set[str]] = {}
    for manifest in plugin_manager.iter_manifests(disabled=False):
        if manifest.name == PLUGIN_NAME:
            continue
        for reader in manifest.contributions.readers or []:
            for pattern in reader.filename_patterns:
                if pattern and pattern != "*" and not pattern.lower().endswith(ours):
                    owners.setdefault(_as_path_pattern(pattern), set()).add(manifest.name)
    return {p: next(iter(names)) for p, names in owners.items() if len(names) == 1}


def _napari_settings_key(settings: Any) -> str:
    path = getattr(settings, "config_path", None)
    return str(Path(path).resolve()) if path else ""


def claim_reader_preferences(settings: Any = None, *, notify: bool = True,
                             plugin_manager: Any = None) -> dict[str, str]:
    """Write napari reader preferences (``settings.plugins.extension2reader``) where none is saved.

    ``settings`` is a ``napari.settings.NapariSettings`` (default: napari's own, saved to
    its settings file).  A pattern the user has saved is never changed, and a pattern
    napari-medio set once for this settings file is not set again (a user who deleted it
    wants napari to ask).  Returns the patterns set now; with ``notify`` a napari
    notification says what was set and where to change it.
    """
    from ..core.settings import load_settings, save_settings

    if settings is None:
        from napari.settings import get_settings

        settings = get_settings()
    wanted = {p: PLUGIN_NAME for p in medio_patterns()}
    wanted.update(other_readers_patterns(plugin_manager))
    key = _napari_settings_key(settings)
    claimed = dict(load_settings().get(_CLAIMED_KEY) or {})
    done = set(claimed.get(key, []))
    current = dict(settings.plugins.extension2reader)
    added = {p: r for p, r in wanted.items() if p not in current and p not in done}
    if added:
        settings.plugins.extension2reader = {**current, **added}
        claimed[key] = sorted(done | set(added))
        save_settings(**{_CLAIMED_KEY: claimed})
        if notify:
            _notify(added)
    return added


def _notify(added: dict[str, str]) -> None:
    from napari.utils.notifications import show_info

    def examples(patterns: list[str]) -> str:
        shown = [p.lstrip("*") for p in patterns if p != FOLDER_PATTERN and p == p.lower()]
        return f"{len(shown)} file types (" + ", ".join(shown[:5]) + (", ...)" if len(shown) > 5 else ")")

    ours = [p for p, r in added.items() if r == PLUGIN_NAME]
    text = f"napari-medio set napari's reader preferences: {examples(ours)}"
    text += " and folders open with napari-medio" if FOLDER_PATTERN in ours else " open with napari-medio"
    for plugin in sorted({r for r in added.values() if r != PLUGIN_NAME}):
        theirs = [p for p, r in added.items() if r == plugin]
        text += f"; {examples(theirs)} that only {plugin} reads stay with {plugin}"
    show_info(text + ". Change them in Preferences > Plugins.")


def activate(context: Any = None) -> None:
    """npe2 ``on_activate``: claim napari's reader preferences the first time napari uses napari-medio."""
    try:
        claim_reader_preferences()
    except (OSError, ValueError) as exc:  # a settings file that cannot be written must not stop reading
        import warnings

        warnings.warn(f"napari-medio could not set napari's reader preferences: {exc}", stacklevel=2)
