"""Plain text documents (``.txt``, ``.xml``, ``.json`` that no real format claims), shown read-only."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kinds import DataKind

__all__ = ["Text"]


@dataclass
class Text:
    """A text file's content (decoded), its syntax ("text", "xml", "json") and, for JSON, the parsed value."""

    text: str
    syntax: str = "text"
    encoding: str = "utf-8"
    parsed: Any = None
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.TEXT

    @property
    def n_lines(self) -> int:
        return len(self.text.splitlines())

    def pretty(self) -> str:
        """The text for display: JSON indented, everything else as is."""
        if self.syntax == "json" and self.parsed is not None:
            import json

            return json.dumps(self.parsed, indent=2, ensure_ascii=False)
        return self.text

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out: dict[str, Any] = {"kind": DataKind.TEXT, "name": self.name, "syntax": self.syntax,
                               "encoding": self.encoding, "n_lines": self.n_lines, "n_chars": len(self.text)}
        if self.syntax == "json" and isinstance(self.parsed, dict):
            out["top_level_keys"] = list(self.parsed)[:50]
        if self.syntax == "xml" and self.metadata.get("root"):
            out["root"] = self.metadata["root"]
        if self.source:
            out["source"] = self.source
        return out
