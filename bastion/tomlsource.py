"""Read a TOML file and point at the line of any key, for error messages.

tomllib gives values but no positions; ``TomlSource.line_of`` recovers the line of a
key path by scanning table headers and keys. It is a best effort for messages only:
when it cannot find a key it names the nearest table header instead.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["KeyPath", "TomlSource"]

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


def _dotted(s: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in s.split("."))


@dataclass
class TomlSource:
    """A parsed TOML file that can name the line of a key in an error."""

    path: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> TomlSource:
        path = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("file not found", path=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", path=path) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            if line is None:
                m = re.search(r"line (\d+)", str(exc))
                line = int(m.group(1)) if m else None
            raise ConfigError(f"TOML syntax error: {exc}", path=path, line=line) from None
        return cls(path=path, text=text, data=data)

    def line_of(self, key: KeyPath) -> int | None:
        """Line number (1-based) of a key path like ("targets", 0, "port")."""
        table: tuple[str, ...] = ()
        counts: dict[tuple[str, ...], int] = {}
        want_table = tuple(k for k in key if isinstance(k, str))
        want_index = [k for k in key if isinstance(k, int)]
        best: int | None = None
        for number, raw in enumerate(self.text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _HEADER.match(line)
            if m:
                table = _dotted(m.group(2))
                index = None
                if m.group(1) == "[[":
                    index = counts.get(table, -1) + 1
                    counts[table] = index
                cur_index = [index] if index is not None else []
                if table == want_table[: len(table)] and cur_index == want_index[: len(cur_index)]:
                    best = number
                    if table == want_table:
                        return number
                continue
            km = _KEY.match(line)
            if km:
                full = table + _dotted(km.group(1))
                cur_index = [counts[table]] if table in counts else []
                if full == want_table[: len(full)] and cur_index == want_index[: len(cur_index)]:
                    return number
        return best

    def error(self, key: KeyPath, message: str) -> ConfigError:
        """A ConfigError naming this file, the key's line and the dotted key."""
        name = ".".join(str(k) if isinstance(k, str) else f"[{k}]" for k in key).replace(".[", "[")
        return ConfigError(message, path=self.path, line=self.line_of(key), key=name)
