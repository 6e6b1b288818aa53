"""Shell history per identity and target, kept in the bastion home.

One file per (identity, target): ``<home>/history/<user>/<target>.jsonl``, one JSON
string per line (a multi-line paste stays one entry), mode 0600 in 0700 directories.
At most ``size`` entries are loaded; the file is rewritten to its last ``size`` entries
once it holds twice as many; entries longer than ``MAX_ENTRY_BYTES`` are not kept.
Every entered line is kept, denied and held ones too, as a shell would (history recall
of a held line is decided again, never run as is).
Limits: history files hold what people typed, secrets included when typed on a
command line; they are as private as the bastion's keys, not masked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from prompt_toolkit.history import History

__all__ = ["MAX_ENTRY_BYTES", "ShellHistory", "history_path"]

#: Longer entries (big pastes) are not kept, so a history file stays small to load.
MAX_ENTRY_BYTES = 16 * 1024


def _safe(name: str) -> str:
    text = quote(name, safe="@-_+") or "_"
    return text.replace(".", "%2E")[:200]


def history_path(root: Path, user: str, target: str) -> Path:
    return root / _safe(user) / f"{_safe(target)}.jsonl"


class ShellHistory(History):
    """prompt_toolkit history backed by a private JSON-lines file."""

    def __init__(self, path: Path, size: int = 1000):
        super().__init__()
        self.path = path
        self.size = size
        self._lines_in_file = 0

    def load_history_strings(self) -> Iterable[str]:
        entries: list[str] = []
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        value = json.loads(line)
                    except ValueError:
                        continue  # a torn last line after a crash
                    if isinstance(value, str):
                        entries.append(value)
        except FileNotFoundError:
            return []
        except OSError:
            return []
        self._lines_in_file = len(entries)
        return list(reversed(entries[-self.size :]))

    def store_string(self, string: str) -> None:
        if self.size <= 0 or len(string.encode("utf-8", errors="replace")) > MAX_ENTRY_BYTES:
            return
        try:
            self._append(string)
        except OSError:
            pass  # history is a convenience: never fails a session

    def _append(self, string: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        line = json.dumps(string, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, line.encode("utf-8", errors="replace"))
        finally:
            os.close(fd)
        self._lines_in_file += 1
        if self._lines_in_file >= 2 * self.size:
            self._compact()

    def _compact(self) -> None:
        keep = list(reversed(list(self.load_history_strings())))
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in keep).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._lines_in_file = len(keep)
