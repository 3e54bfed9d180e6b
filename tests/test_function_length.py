"""Short functions: at most five functions in the package are longer than 100 lines.

The few allowed are parsers that read best in one piece; anything else that grows
past 100 lines is split into named helpers that each do one thing.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_medio"
MAX_LINES = 100
MAX_LONG_FUNCTIONS = 5


def long_functions(root: Path = SRC, max_lines: int = MAX_LINES) -> list[tuple[int, str]]:
    """(length, "module.py:line name") of every function or method longer than ``max_lines``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > max_lines:
                    found.append((length, f"{path.relative_to(root).as_posix()}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def test_long_function_finder_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n", encoding="utf-8")
    assert long_functions(tmp_path) == [(MAX_LINES + 1, "m.py:5 long")]


def test_at_most_five_functions_over_100_lines():
    found = long_functions()
    listing = "\n".join(f"  {n} lines  {where}" for n, where in found)
    assert len(found) <= MAX_LONG_FUNCTIONS, (
        f"{len(found)} functions are longer than {MAX_LINES} lines (at most {MAX_LONG_FUNCTIONS}); "
        f"split them into named helpers:\n{listing}")
