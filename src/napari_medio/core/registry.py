"""The format registry: every reader and writer is found here, and only here.

Each format module calls :func:`register` with a :class:`FileFormat` that names
its extensions, a cheap content sniff on the first bytes of a file, and its
read/write functions.  The npe2 reader and writers, the ``medio`` CLI, the
Python API and the scene loader all call :func:`read` / :func:`write`, so a new
format is one new module.

Dispatch on read: the formats whose extension matches are tried first, in
order of extension length (``.seg.nrrd`` before ``.nrrd``); a format whose
sniff rejects the content is passed over, and the content decides among all
formats when the extension lies (a NIfTI named ``.nrrd`` is read as NIfTI).  A
file that nothing recognises raises :class:`UnsupportedFormatError`.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import pkgutil
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CancelledError, FormatError, MedioError, OptionError, UnsupportedFormatError
from .fileio import check_regular

__all__ = [
    "FileFormat",
    "register",
    "formats",
    "get_format",
    "find_reader",
    "find_writer",
    "read",
    "write",
    "read_head",
    "option_names",
    "applicable_options",
    "check_write_options",
    "COMMON_OPTIONS",
    "matching_extension",
    "all_read_extensions",
    "all_write_extensions",
]

#: Options every reader and writer takes through :func:`read` / :func:`write`: passed on to a
#: format function that declares them, else handled here (a ``progress`` is checked for a cancel).
COMMON_OPTIONS = ("progress",)

#: Bytes given to sniff functions.
HEAD_SIZE = 4096

#: Packages whose modules register formats when imported (missing ones are skipped).
PROVIDER_PACKAGES = (
    "napari_medio.formats",
    "napari_medio.dicom",
    "napari_medio.scene",
)

Sniff = Callable[[bytes, Path], bool]
Reader = Callable[..., list]
Writer = Callable[..., Any]


@dataclass
class FileFormat:
    """A file format: what it is called, how to recognise it, how to read and write it.

    ``extensions`` are lower-case with the leading dot, compound ones included
    (``".nii.gz"``).  ``sniff(head, path)`` gets the first :data:`HEAD_SIZE`
    bytes and returns True when the content is this format; formats without a
    magic number (raw data, ambiguous text) leave it ``None`` and are chosen by
    extension only; ``content_sniff=False`` marks a sniff too loose to pick a format
    against the extension (CSV, plain text).  ``read(path, **options)`` returns a list of data objects;
    ``write(obj, path, **options)`` writes one.  ``kinds`` lists the data
    object kinds (:class:`~napari_medio.core.kinds.DataKind`) the writer
    accepts.  ``directories`` marks readers that take a folder.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    read: Reader | None = None
    write: Writer | None = None
    sniff: Sniff | None = None
    kinds: tuple[str, ...] = ()
    directories: bool = False
    priority: int = 0
    #: False for formats whose sniff only says "plausible" (plain text, CSV): they are
    #: chosen by extension, never when the content has to decide for a lying extension.
    content_sniff: bool = True
    #: True when ``read`` also takes fsspec URLs (``https://``, ``s3://``, ...) as strings.
    remote: bool = False
    backend: str = ""
    #: Keyword options of ``read`` / ``write`` with a one-line description each; options the
    #: function's signature names are known without being listed here.
    read_options: dict = field(default_factory=dict)
    write_options: dict = field(default_factory=dict)

    def matches_extension(self, path: str | os.PathLike[str]) -> str | None:
        """The longest of this format's extensions that ``path`` ends with, or None."""
        lower = os.fspath(path).lower()
        hits = [e for e in self.extensions if lower.endswith(e)]
        return max(hits, key=len) if hits else None


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def option_names(fmt: FileFormat, operation: str) -> frozenset[str] | None:
    """The keyword options ``fmt``'s reader (``operation="read"``) or writer (``"write"``) knows.

    These are the keyword parameters of its function after the data arguments
    (path; object and path), the options the format documents and
    :data:`COMMON_OPTIONS`.  None when the function passes any keyword on
    (``**options``) and documents none: whatever it delegates to checks them.
    """
    params = list(_parameters(getattr(fmt, operation)))[1 if operation == "read" else 2:]
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    documented = fmt.read_options if operation == "read" else fmt.write_options
    if any(p.kind == p.VAR_KEYWORD for p in params) and not documented:
        return None
    return frozenset(named | set(documented) | set(COMMON_OPTIONS))


@functools.cache
def _parameters(function: Callable) -> tuple[inspect.Parameter, ...]:
    return tuple(inspect.signature(function).parameters.values())


def applicable_options(fmt: FileFormat, operation: str, options: dict) -> dict:
    """The part of ``options`` that ``fmt``'s reader (``"read"``) or writer (``"write"``) knows.

    For callers that offer an option (a label map, no compression) to whatever
    format a file turns out to be; everyone else gets :class:`OptionError`.
    """
    known = option_names(fmt, operation)
    return dict(options) if known is None else {k: v for k, v in options.items() if k in known}


def check_write_options(path: str | os.PathLike[str], options: dict) -> None:
    """Raise :class:`OptionError` for an option no writer of ``path``'s extension knows.

    For callers that write many objects of kinds not yet known (a batch): a
    misspelled option is reported once, before anything is written.
    """
    writers = _by_extension(Path(path), [f for f in formats() if f.write])
    known: set[str] = set()
    for fmt in writers:
        names = option_names(fmt, "write")
        known |= names or set()  # None: a writer passing options on to another writer
    unknown = sorted(set(options) - known)
    if known and unknown:
        named = [f.name for f in writers if option_names(f, "write") is not None]
        raise OptionError(path, f"unknown option {unknown[0]!r} for the {', '.join(named)} "
                                f"writer{'s' if len(named) > 1 else ''}; "
                                f"known: {', '.join(sorted(known))}")


def _options_for(fmt: FileFormat, operation: str, path: Any, options: dict) -> dict:
    """``options`` as ``fmt``'s function takes them; an unknown option raises :class:`OptionError`."""
    known = option_names(fmt, operation)
    unknown = sorted(set(options) - known) if known is not None else []
    if unknown:
        role = "reader" if operation == "read" else "writer"
        raise OptionError(path, f"unknown option {unknown[0]!r} for the {fmt.name} {role}; "
                                f"known: {', '.join(sorted(known))}")
    params = _parameters(getattr(fmt, operation))
    passes_any = any(p.kind == p.VAR_KEYWORD for p in params)
    taken = {p.name for p in params}
    out = dict(options)
    for name in COMMON_OPTIONS:
        if name in out and name not in taken and not passes_any:
            check = getattr(out.pop(name), "check", None)
            if callable(check):
                check()  # the format reports no progress itself: at least honour a cancel
    return out


def is_url(path: str | os.PathLike[str]) -> bool:
    """True for a URL such as ``https://host/data.ome.zarr`` or ``s3://bucket/key`` (not ``file`` paths)."""
    return isinstance(path, str) and bool(_URL.match(path)) and not path.startswith("file://")


_FORMATS: dict[str, FileFormat] = {}
_LOADED = False


def register(fmt: FileFormat) -> FileFormat:
    """Add (or replace) a format in the registry; returns it for decorator-style use."""
    fmt.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in fmt.extensions)
    _FORMATS[fmt.name] = fmt
    return fmt


def load_providers() -> None:
    """Import every format module once (they register themselves)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for package_name in PROVIDER_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as exc:
            if exc.name == package_name:
                continue
            raise
        for info in pkgutil.iter_modules(getattr(package, "__path__", []), package_name + "."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            importlib.import_module(info.name)


def formats() -> list[FileFormat]:
    """All registered formats."""
    load_providers()
    return list(_FORMATS.values())


def get_format(name: str) -> FileFormat:
    """The format registered under ``name``."""
    load_providers()
    try:
        return _FORMATS[name]
    except KeyError:
        raise UnsupportedFormatError(None, f"no format named {name!r}") from None


def all_read_extensions() -> list[str]:
    """Every extension some reader accepts."""
    return sorted({e for f in formats() if f.read for e in f.extensions})


def all_write_extensions() -> list[str]:
    """Every extension some writer accepts."""
    return sorted({e for f in formats() if f.write for e in f.extensions})


def matching_extension(path: str | os.PathLike[str]) -> str | None:
    """The longest registered extension that ``path`` ends with."""
    hits = [f.matches_extension(path) for f in formats()]
    hits = [h for h in hits if h]
    return max(hits, key=len) if hits else None


def read_head(path: str | os.PathLike[str], size: int = HEAD_SIZE) -> bytes:
    """The first ``size`` bytes of a file ('' for a folder); raises FormatError when unreadable."""
    p = Path(path)
    if p.is_dir():
        return b""
    check_regular(p)
    try:
        with open(p, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError:
        raise FormatError(p, "file not found") from None
    except OSError as exc:
        raise FormatError(p, f"cannot open file: {exc.strerror or exc}") from None


def _sniff(fmt: FileFormat, head: bytes, path: Path) -> bool | None:
    if fmt.sniff is None:
        return None
    try:
        return bool(fmt.sniff(head, path))
    except Exception:  # a sniff must never break dispatch
        return False


def _by_extension(path: Path, candidates: Iterable[FileFormat]) -> list[FileFormat]:
    scored = []
    for fmt in candidates:
        ext = fmt.matches_extension(path)
        if ext:
            scored.append((len(ext), fmt.priority, fmt))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [t[2] for t in scored]


def find_reader(path: str | os.PathLike[str], format: str | None = None) -> FileFormat:
    """The format that reads ``path``: by content where it can be sniffed, else by extension."""
    if format is not None:
        return get_format(format)
    readers = [f for f in formats() if f.read is not None]
    if is_url(path):  # remote data: chosen by extension among readers that take URLs
        remote = _by_extension(Path(str(path).rstrip("/").split("?", 1)[0]), [f for f in readers if f.remote])
        if not remote:
            raise UnsupportedFormatError(path, "no reader opens this kind of URL (remote reading: OME-Zarr)")
        return remote[0]
    p = Path(path)
    if p.is_dir():
        folder_readers = sorted((f for f in readers if f.directories), key=lambda f: -f.priority)
        for fmt in folder_readers:
            if _sniff(fmt, b"", p) is not False:
                return fmt
        raise UnsupportedFormatError(p, "no reader recognises this folder")
    if not p.exists():
        raise FormatError(p, "file not found")
    head = read_head(p)
    if not head:
        raise FormatError(p, "file is empty")
    by_ext = _by_extension(p, readers)
    for fmt in by_ext:
        verdict = _sniff(fmt, head, p)
        if verdict is True:
            return fmt
    # The extension's formats rejected the content: let the content decide.  The most
    # general reader of that content wins (lowest priority: priorities exist to let
    # specialised readers beat general ones on a shared extension, e.g. .seg.nrrd).
    for fmt in sorted(readers, key=lambda f: f.priority):
        if fmt in by_ext or not fmt.content_sniff or (fmt.directories and not fmt.extensions):
            continue
        if _sniff(fmt, head, p) is True:
            return fmt
    for fmt in by_ext:
        if fmt.sniff is None:
            return fmt
    if by_ext:
        names = ", ".join(f.name for f in by_ext)
        raise FormatError(p, f"content is not a valid {names} file (and matches no other known format)")
    raise UnsupportedFormatError(p, "unknown file type: no registered reader for this extension or content")


def find_writer(path: str | os.PathLike[str], kind: str | None = None, format: str | None = None) -> FileFormat:
    """The format that writes ``path`` (chosen by its extension) for data of ``kind``."""
    if format is not None:
        return get_format(format)
    p = Path(path)
    writers = [f for f in formats() if f.write is not None]
    candidates = _by_extension(p, writers)
    if kind is not None:
        suitable = [f for f in candidates if not f.kinds or kind in f.kinds]
        if candidates and not suitable:
            names = ", ".join(f.name for f in candidates)
            raise UnsupportedFormatError(p, f"{names} cannot hold a {kind}")
        candidates = suitable
    if not candidates:
        raise UnsupportedFormatError(p, "no writer for this extension")
    return candidates[0]


def read(path: str | os.PathLike[str], format: str | None = None, **options: Any) -> list:
    """Read a file, folder or (for remote-capable formats) URL into a list of data objects."""
    p: Any = path if is_url(path) else Path(path)
    if not is_url(p):
        check_regular(p)
    fmt = find_reader(p, format=format)
    options = _options_for(fmt, "read", p, options)
    try:
        objects = fmt.read(p, **options)
    except (MedioError, CancelledError):
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # any library failure becomes one clear error
        raise FormatError(p, f"cannot read as {fmt.name}: {type(exc).__name__}: {exc}") from exc
    for obj in objects:
        if getattr(obj, "source", None) is None:
            try:
                obj.source = os.fspath(p)
            except AttributeError:
                pass
    return objects


def _convert_for_writer(obj: Any, path: Path, format: str | None) -> tuple[FileFormat, Any]:
    """A writer for ``path`` after converting ``obj`` with its ``convert_to(kind)`` (e.g. segmentation -> labelmap)."""
    convert = getattr(obj, "convert_to", None)
    candidates = [get_format(format)] if format else _by_extension(path, [f for f in formats() if f.write])
    if convert is not None:
        for fmt in candidates:
            for kind in fmt.kinds:
                converted = convert(kind)
                if converted is not None:
                    return fmt, converted
    # Nothing converts: raise the original, informative error.
    find_writer(path, kind=getattr(obj, "kind", None), format=format)
    raise UnsupportedFormatError(path, "no writer for this data")  # pragma: no cover


def write(obj: Any, path: str | os.PathLike[str], format: str | None = None, **options: Any) -> list[str]:
    """Write one data object to ``path`` in the format its extension names; returns written paths."""
    p = Path(path)
    try:
        fmt = find_writer(p, kind=getattr(obj, "kind", None), format=format)
    except UnsupportedFormatError:
        fmt, obj = _convert_for_writer(obj, p, format)
    options = _options_for(fmt, "write", p, options)
    try:
        result = fmt.write(obj, p, **options)
    except (MedioError, CancelledError):
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        from .errors import WriteError

        raise WriteError(p, f"cannot write as {fmt.name}: {type(exc).__name__}: {exc}") from exc
    if result is None:
        return [os.fspath(p)]
    if isinstance(result, (str, os.PathLike)):
        return [os.fspath(result)]
    return [os.fspath(r) for r in result]


def describe(paths: Sequence[str]) -> list[dict]:
    """Format name and description for each path (for ``medio info`` and widgets)."""
    out = []
    for path in paths:
        fmt = find_reader(path)
        out.append({"path": os.fspath(path), "format": fmt.name, "description": fmt.description})
    return out
