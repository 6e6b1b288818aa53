"""Append-only JSON-lines audit log: one typed event a line.

Each record is one ``os.write`` on a file opened with O_APPEND, so concurrent sessions
never interleave inside a line and a crash leaves whole lines only. With ``redact`` (the
masking of ``mask.py``) every string in a record is masked before it is written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["AuditLog", "MAX_FIELD", "bounded"]

#: Longest string a client controls that goes into one audit record, in characters.
MAX_FIELD = 4096


def bounded(text: str | None, limit: int = MAX_FIELD) -> dict[str, Any]:
    """A client-controlled text for an audit record: itself when short; else its first
    ``limit`` characters and its length (the cast header keeps it whole, masked). No hash
    of it: a hash of the unmasked text would let a weak secret in it be guessed."""
    if text is None or len(text) <= limit:
        return {"command": text}
    return {
        "command": text[:limit],
        "command_truncated": True,
        "command_bytes": len(text.encode("utf-8", "surrogatepass")),
    }


log = logging.getLogger("bastion.audit")


class AuditLog:
    """Writes events such as connection, auth, channel, decision, session_end."""

    def __init__(self, path: Path, redact: Callable[[str], str] | None = None):
        self.path = path
        self.redact = redact
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def write(self, event: str, **fields: Any) -> None:
        if self.redact is not None:
            fields = {key: _redacted_field(key, v, self.redact) for key, v in fields.items()}
        record = {"ts": round(time.time(), 6), "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            os.write(self._fd, line.encode("utf-8", errors="replace"))
        except OSError as exc:  # never let the audit log take a session's connection down
            log.error("audit log write failed (%s): %s", exc, line.strip())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


#: Fields whose values are never a client's free text (ids, names the bastion checked,
#: enumerations): masking them would only cost time on every event.
_NOT_FREE_TEXT = frozenset(
    {"session", "conn", "user", "groups", "target", "login", "kind", "fingerprint", "cast",
     "result", "decision", "rule", "status", "ca", "serial", "peer", "request", "by", "pty"}
)  # fmt: skip
#: A string this short holds no secret a mask recognises ("token:x" is 7).
_SHORTEST_SECRET = 7


def _redacted_field(key: str, value: Any, redact: Callable[[str], str]) -> Any:
    return value if key in _NOT_FREE_TEXT else _redacted(value, redact)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value) if len(value) >= _SHORTEST_SECRET else value
    if isinstance(value, (list, tuple)):
        return [_redacted(v, redact) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v, redact) for k, v in value.items()}
    return value
