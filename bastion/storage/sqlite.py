"""The embedded back end: one SQLite file (WAL), written from one worker thread.

Every statement runs on a single dedicated thread, in submission order, so the event
loop never blocks on the disk and writes never run inside asyncssh callbacks. The file
is created 0600: it holds every command that was run or asked for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

from .interface import Approval, ApprovalRequest, SessionRow

__all__ = ["SQLiteStore"]

log = logging.getLogger("bastion.storage")
T = TypeVar("T")

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
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    binding TEXT NOT NULL,
    status TEXT NOT NULL,
    user TEXT NOT NULL,
    target TEXT NOT NULL,
    login TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    waiting INTEGER NOT NULL,
    owner TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, created);
CREATE INDEX IF NOT EXISTS approvals_binding ON approvals(binding, user, status);
"""


def _encode(request: ApprovalRequest) -> str:
    return json.dumps(asdict(request), ensure_ascii=False)


def _decode(body: str) -> ApprovalRequest:
    data = json.loads(body)
    data["groups"] = tuple(data["groups"])
    data["approvers"] = tuple(data["approvers"])
    data["approvals"] = tuple(Approval(**a) for a in data["approvals"])
    return ApprovalRequest(**data)


def create_private_file(path: Path) -> None:
    """Create ``path`` 0600 if missing; tighten it if group or others may read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


class SQLiteStore:
    """The Store contract on one SQLite file."""

    def __init__(self, path: Path):
        self.path = path
        create_private_file(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-sqlite")
        self._db: sqlite3.Connection = self._pool.submit(self._open).result()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        return db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._pool.submit(fn))

    def _fire(self, what: str, sql: str, args: tuple[Any, ...]) -> None:
        """Queue an index write; a failure is logged, never raised into a session."""

        def done(future: Future[Any]) -> None:
            exc = future.exception()
            if exc is not None:
                log.error("session index write failed in %s: %s", what, exc)

        self._pool.submit(self._db.execute, sql, args).add_done_callback(done)

    # ---- session index ----
    def session_started(self, row: SessionRow) -> None:
        self._fire(
            "session_started",
            "INSERT INTO sessions (id, started, user, target, login, kind, command, cast_path)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.started, row.user, row.target, row.login, row.kind, row.command,
             row.cast_path),
        )  # fmt: skip

    def session_decided(self, session_id: str, decision: str, rule: str) -> None:
        self._fire(
            "session_decided",
            "UPDATE sessions SET decision = ?, rule = ? WHERE id = ?",
            (decision, rule, session_id),
        )

    def session_ended(self, session_id: str, exit_status: int | None) -> None:
        self._fire(
            "session_ended",
            "UPDATE sessions SET ended = ?, exit_status = ? WHERE id = ?",
            (time.time(), exit_status, session_id),
        )

    async def recent_sessions(self, limit: int = 50) -> list[SessionRow]:
        def query() -> list[SessionRow]:
            rows = self._db.execute(
                "SELECT id, started, user, target, login, kind, command, cast_path, decision,"
                " rule, exit_status, ended FROM sessions ORDER BY started DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [SessionRow(*row) for row in rows]

        return await self._run(query)

    # ---- approval requests ----
    async def create_request(self, request: ApprovalRequest) -> None:
        def insert() -> None:
            self._db.execute(
                "INSERT INTO approvals (id, binding, status, user, target, login, created,"
                " expires, waiting, owner, version, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (request.id, request.binding, request.status, request.user, request.target,
                 request.login, request.created, request.expires, int(request.waiting),
                 request.owner, request.version, _encode(request)),
            )  # fmt: skip

        await self._run(insert)

    async def get_request(self, request_id: str) -> ApprovalRequest | None:
        def query() -> ApprovalRequest | None:
            row = self._db.execute(
                "SELECT body FROM approvals WHERE id = ?", (request_id,)
            ).fetchone()
            return _decode(row[0]) if row else None

        return await self._run(query)

    async def list_requests(
        self, *, pending_only: bool = True, limit: int = 200
    ) -> list[ApprovalRequest]:
        def query() -> list[ApprovalRequest]:
            where = "WHERE status = 'pending'" if pending_only else ""
            rows = self._db.execute(
                f"SELECT body FROM approvals {where} ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
            return [_decode(r[0]) for r in rows]

        return await self._run(query)

    async def update_request(self, request: ApprovalRequest) -> bool:
        def cas() -> bool:
            stored = replace(request, version=request.version + 1)
            cur = self._db.execute(
                "UPDATE approvals SET status = ?, waiting = ?, version = ?, body = ?"
                " WHERE id = ? AND version = ?",
                (stored.status, int(stored.waiting), stored.version, _encode(stored),
                 request.id, request.version),
            )  # fmt: skip
            return cur.rowcount == 1

        return await self._run(cas)

    async def find_approved(self, binding: str, user: str) -> list[ApprovalRequest]:
        def query() -> list[ApprovalRequest]:
            rows = self._db.execute(
                "SELECT body FROM approvals WHERE binding = ? AND user = ? AND status ="
                " 'approved' ORDER BY created",
                (binding, user),
            ).fetchall()
            return [_decode(r[0]) for r in rows]

        return await self._run(query)

    async def cancel_waiting(self, owner: str, reason: str, now: float) -> int:
        def cancel() -> int:
            rows = self._db.execute(
                "SELECT body FROM approvals WHERE status = 'pending' AND waiting = 1 AND owner = ?",
                (owner,),
            ).fetchall()
            count = 0
            for (body,) in rows:
                old = _decode(body)
                new = replace(
                    old,
                    status="cancelled",
                    waiting=False,
                    decided_at=now,
                    decision_reason=reason,
                    version=old.version + 1,
                )
                cur = self._db.execute(
                    "UPDATE approvals SET status = ?, waiting = 0, version = ?, body = ?"
                    " WHERE id = ? AND version = ?",
                    (new.status, new.version, _encode(new), old.id, old.version),
                )
                count += cur.rowcount
            return count

        return await self._run(cancel)

    async def close(self) -> None:
        def close() -> None:
            self._db.close()

        try:
            await self._run(close)
        finally:
            self._pool.shutdown(wait=True)

    def close_now(self) -> None:
        """Close from synchronous code (admin commands, shutdown paths)."""
        self._pool.submit(self._db.close).result()
        self._pool.shutdown(wait=True)
