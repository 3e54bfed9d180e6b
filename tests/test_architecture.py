"""The package's import rules (docs/architecture.md), checked on the source with ``ast``.

Every import counts: module level, inside functions (lazy imports) and under
``TYPE_CHECKING``.  The rules:

* layers: a module imports only from its own package and the layers below it
  (:data:`LAYERS`); packages on the same level (``dicom`` and ``scene``, ``commands``
  and ``plugin``) do not import each other;
* no napari, Qt or magicgui below the plugin;
* no import cycle between modules;
* no ``_private`` name imported from (or used as an attribute of) another module;
  a ``_private`` module is imported only from inside its own package.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "napari_medio"

#: Layer of each top-level part of the package: a module may import from lower layers and its own part.
#: The root ``napari_medio/__init__.py`` (the Python API: read/write through the registry) sits with core.
LAYERS = {
    "core": 0,
    "formats": 1,
    "dicom": 2, "scene": 2,
    "batch": 3,
    "commands": 4, "plugin": 4,
    "cli": 5,
}

#: GUI packages only the plugin (and ``cli``, which starts the viewer) may import.
GUI_PACKAGES = {"napari", "qtpy", "magicgui", "npe2", "vispy", "superqt", "PyQt5", "PyQt6", "PySide2", "PySide6"}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    target: str  # napari_medio module or external top-level package
    names: tuple[str, ...]  # names taken from the target (empty for ``import x``)
    line: int
    lazy: bool  # inside a function

    def where(self) -> str:
        return f"{self.importer}:{self.line}{' (in a function)' if self.lazy else ''}"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


MODULES = _modules()


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _owner(name: str) -> str:
    """The napari_medio module that defines ``name`` (the longest existing prefix)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def _scan(module: str) -> tuple[list[Import], dict[str, str], ast.Module]:
    """Imports of ``module`` and the names it binds to napari_medio modules."""
    path, is_package = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imports: list[Import] = []
    bound: dict[str, str] = {}

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                        target = _owner(alias.name)
                        imports.append(Import(module, target, (), child.lineno, lazy))
                        if alias.asname:
                            bound[alias.asname] = target
                    else:
                        imports.append(Import(module, alias.name.split(".")[0], (), child.lineno, lazy))
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(module, is_package, child.level, child.module)
                if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                    imports.append(Import(module, base.split(".")[0], (), child.lineno, lazy))
                    continue
                names = []
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    if full in MODULES:  # a submodule
                        imports.append(Import(module, full, (), child.lineno, lazy))
                        bound[alias.asname or alias.name] = full
                    else:
                        names.append(alias.name)
                if names:
                    imports.append(Import(module, _owner(base), tuple(names), child.lineno, lazy))
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return imports, bound, tree


SCANS = {m: _scan(m) for m in MODULES}


def _internal(imp: Import) -> bool:
    return imp.target in MODULES


def _part(module: str) -> str:
    """``core``, ``formats``, ... (the root ``napari_medio/__init__.py`` and the ``_version`` module
    that setuptools-scm writes at install time count as core)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "_version" else "core"


def _package_of(module: str) -> str:
    return module if MODULES[module][1] else module.rsplit(".", 1)[0]


def test_every_module_has_a_layer():
    unknown = sorted({_part(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"give these parts of the package a layer in LAYERS (and docs/architecture.md): {unknown}"


def test_layers_import_only_downwards():
    bad = []
    for module, (imports, _, _) in SCANS.items():
        for imp in filter(_internal, imports):
            src, dst = _part(module), _part(imp.target)
            if src != dst and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{imp.where()} imports {imp.target} ({dst} is not below {src})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_core_imports_nothing_above_it():
    bad = [f"{imp.where()} imports {imp.target}" for module, (imports, _, _) in SCANS.items()
           if _part(module) == "core" for imp in filter(_internal, imports) if _part(imp.target) != "core"]
    assert not bad, "core imports from a higher layer:\n" + "\n".join(bad)


def test_no_gui_below_the_plugin():
    bad = []
    for module, (imports, _, _) in SCANS.items():
        if LAYERS[_part(module)] >= LAYERS["plugin"]:
            continue
        for imp in imports:
            if imp.target in GUI_PACKAGES:
                bad.append(f"{imp.where()} imports {imp.target}")
    assert not bad, "napari/Qt imported below the plugin:\n" + "\n".join(bad)


def _graph() -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {m: {} for m in MODULES}
    for module, (imports, _, _) in SCANS.items():
        for imp in filter(_internal, imports):
            if imp.target != module:
                graph[module].setdefault(imp.target, imp)
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _cycle_path(graph: dict[str, dict[str, Import]], component: list[str]) -> str:
    """One cycle through the component's first module, as ``a:line -> b:line -> ... -> a``."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = [start]
    while queue:  # breadth first: the shortest way back to start
        node = queue.pop(0)
        for child in graph[node]:
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                path.reverse()
                hops = [f"{a} (line {graph[a][b].line}{', in a function' if graph[a][b].lazy else ''})"
                        for a, b in zip(path, path[1:] + [start])]
                return " -> ".join(hops + [start])
            if child not in previous and child != start:
                previous[child] = node
                queue.append(child)
    return " <-> ".join(component)


def test_no_import_cycles():
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles (lazy imports included); move the shared code down a layer:\n" + "\n".join(
        _cycle_path(graph, c) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": Import("a", "b", (), 1, False)}, "b": {"c": Import("b", "c", (), 2, True)},
             "c": {"a": Import("c", "a", (), 3, False)}, "d": {"a": Import("d", "a", (), 4, False)}}
    [component] = _cycles(graph)
    assert component == ["a", "b", "c"]
    assert _cycle_path(graph, component) == "a (line 1) -> b (line 2, in a function) -> c (line 3) -> a"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_names_across_modules():
    bad = []
    for module, (imports, bound, tree) in SCANS.items():
        for imp in filter(_internal, imports):
            if imp.target == module:
                continue
            for name in imp.names:
                if _private(name):
                    bad.append(f"{imp.where()} imports {name} from {imp.target}")
            last = imp.target.rsplit(".", 1)[-1]
            if _private(last) and _package_of(module) != imp.target.rsplit(".", 1)[0]:
                bad.append(f"{imp.where()} imports {imp.target}, private to its package")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and bound[node.value.id] != module and _private(node.attr)):
                bad.append(f"{module}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    assert not bad, "make these public (one name, no alias) or move them where they are used:\n" + "\n".join(bad)
