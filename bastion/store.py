"""The state database (SQLite, WAL): the session index, and later approvals.

Writes are small single-row statements, fast enough to run on the event loop.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["StateStore"]

log = logging.getLogger("bastion.store")


def _index_write(fn: Callable[..., None]) -> Callable[..., None]:
    """The index is secondary to casts and the audit log: a failed write is logged,
    never raised into a session (whose connection other sessions may share)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except sqlite3.Error as exc:
            log.error("session index write failed in %s: %s", fn.__name__, exc)

    return wrapper


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    user TEXT NOT NULL,
    target TEXT NOT NULL,
    login TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT,
    decision TEXT,
    rule TEXT,
    cast_path TEXT,
    exit_status INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started);
"""


class StateStore:
    """One SQLite file; opened once per process."""

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @_index_write
    def session_started(
        self,
        session_id: str,
        *,
        user: str,
        target: str,
        login: str,
        kind: str,
        command: str | None,
        cast_path: str,
    ) -> None:
        self._db.execute(
            "INSERT INTO sessions (id, started, user, target, login, kind, command, cast_path)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, time.time(), user, target, login, kind, command, cast_path),
        )

    @_index_write
    def session_decided(self, session_id: str, decision: str, rule: str) -> None:
        self._db.execute(
            "UPDATE sessions SET decision = ?, rule = ? WHERE id = ?", (decision, rule, session_id)
        )

    @_index_write
    def session_ended(self, session_id: str, exit_status: int | None) -> None:
        self._db.execute(
            "UPDATE sessions SET ended = ?, exit_status = ? WHERE id = ?",
            (time.time(), exit_status, session_id),
        )

    def recent_sessions(self, limit: int = 50) -> list[tuple]:
        return self._db.execute(
            "SELECT id, started, user, target, login, command, decision, rule, exit_status,"
            " cast_path FROM sessions ORDER BY started DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def close(self) -> None:
        self._db.close()
