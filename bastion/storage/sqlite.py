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

from .interface import Approval, ApprovalRequest, IssuedCertificate, Revocation, SessionRow

__all__ = ["SQLiteStore"]

log = logging.getLogger("bastion.storage")
#: How long session-index writes gather before they go to the worker in one transaction.
BATCH_SECONDS = 0.05
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

# Issued certificates, the revocation list and keys bound by keyboard-interactive login
# (bastion.identity).
_IDENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    groups TEXT NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    provider TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    issued REAL NOT NULL,
    expires REAL NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_subject ON certificates(subject);
CREATE INDEX IF NOT EXISTS certificates_key_id ON certificates(key_id);
CREATE TABLE IF NOT EXISTS revocations (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL,
    by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS revocations_value ON revocations(kind, value);
CREATE TABLE IF NOT EXISTS bound_keys (
    fingerprint TEXT PRIMARY KEY,
    certificate TEXT NOT NULL,
    expires REAL NOT NULL
);
"""

# The first revocation covering a certificate (serial, key id, valid_after): by serial;
# by key id when issued up to the revocation (recorded issue time, else valid_after);
# by subject when the bastion recorded that subject for this serial, issued up to then.
_REVOKED_SQL = """
SELECT r.kind, r.value, r.at, r.reason, r.by FROM revocations r
LEFT JOIN certificates c ON c.serial = :serial
WHERE (r.kind = 'serial' AND r.value = :serial_text)
   OR (r.kind = 'key_id' AND r.value = :key_id AND COALESCE(c.issued, :valid_after) <= r.at)
   OR (r.kind = 'subject' AND c.subject = r.value AND c.subject != '' AND c.issued <= r.at)
ORDER BY r.position LIMIT 1
"""

_COVERED_SQL = {
    "serial": "SELECT COUNT(*) FROM certificates WHERE serial = CAST(:value AS INTEGER)",
    "key_id": "SELECT COUNT(*) FROM certificates WHERE key_id = :value AND issued <= :at",
    "subject": "SELECT COUNT(*) FROM certificates WHERE subject = :value AND issued <= :at",
}


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
        self._pending: list[tuple[str, str, tuple[Any, ...]]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._db: sqlite3.Connection = self._pool.submit(self._open).result()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        db.executescript(_IDENTITY_SCHEMA)
        return db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._pool.submit(fn))

    def _fire(self, what: str, sql: str, args: tuple[Any, ...]) -> None:
        """Queue an index write; a failure is logged, never raised into a session.

        Writes are gathered for ``BATCH_SECONDS`` and run as one transaction: one hand-off
        to the worker thread for many sessions' rows, instead of three per command (each
        hand-off makes the event loop's socket writes wait for the GIL)."""
        self._pending.append((what, sql, args))
        if self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (an admin command): write now
                self._flush()
                return
            self._flush_timer = loop.call_later(BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return

        def write() -> None:
            self._db.execute("BEGIN")
            try:
                for what, sql, args in batch:
                    try:
                        self._db.execute(sql, args)
                    except sqlite3.Error as exc:
                        log.error("session index write failed in %s: %s", what, exc)
            finally:
                self._db.execute("COMMIT")

        def done(future: Future[Any]) -> None:
            exc = future.exception()
            if exc is not None:
                log.error("session index write failed: %s", exc)

        self._pool.submit(write).add_done_callback(done)

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
        self._flush()  # what was just written is read back

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

    # ---- issued certificates, revocations, bound keys (bastion.identity) ----
    async def record_certificate(self, cert: IssuedCertificate) -> None:
        def insert() -> None:
            self._db.execute(
                "INSERT OR REPLACE INTO certificates (serial, key_id, principal, groups,"
                " subject, issuer, provider, fingerprint, issued, expires, source)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (cert.serial, cert.key_id, cert.principal, json.dumps(list(cert.groups)),
                 cert.subject, cert.issuer, cert.provider, cert.fingerprint, cert.issued,
                 cert.expires, cert.source),
            )  # fmt: skip

        await self._run(insert)

    async def list_certificates(
        self, *, active_only: bool = True, limit: int = 200, now: float = 0.0
    ) -> list[IssuedCertificate]:
        def query() -> list[IssuedCertificate]:
            where = "WHERE c.expires > ?" if active_only else "WHERE ? IS NOT NULL"
            rows = self._db.execute(
                "SELECT c.serial, c.key_id, c.principal, c.groups, c.subject, c.issuer,"
                " c.provider, c.fingerprint, c.issued, c.expires, c.source FROM certificates c"
                f" {where} ORDER BY c.issued DESC LIMIT ?",
                (now or time.time(), limit),
            ).fetchall()
            found = []
            for row in rows:
                serial, key_id, principal, groups, *rest = row
                cert = IssuedCertificate(serial, key_id, principal, tuple(json.loads(groups)),
                                         *rest)  # fmt: skip
                hit = self._db.execute(
                    _REVOKED_SQL,
                    {"serial": cert.serial, "serial_text": str(cert.serial),
                     "key_id": cert.key_id, "valid_after": cert.issued},
                ).fetchone()  # fmt: skip
                if hit:
                    cert = replace(cert, revoked=hit[2], revoked_reason=hit[3])
                if not (active_only and hit):
                    found.append(cert)
            return found

        return await self._run(query)

    async def add_revocation(self, revocation: Revocation) -> int:
        def insert() -> int:
            r = revocation
            self._db.execute(
                "INSERT INTO revocations (kind, value, at, reason, by) VALUES (?,?,?,?,?)",
                (r.kind, r.value, r.at, r.reason, r.by),
            )
            return int(self._db.execute(_COVERED_SQL[r.kind], {"value": r.value, "at": r.at})
                       .fetchone()[0])  # fmt: skip

        return await self._run(insert)

    async def revocation_for(self, serial: int, key_id: str, valid_after: int) -> Revocation | None:
        def query() -> Revocation | None:
            row = self._db.execute(
                _REVOKED_SQL,
                {"serial": serial, "serial_text": str(serial), "key_id": key_id,
                 "valid_after": valid_after},
            ).fetchone()  # fmt: skip
            return Revocation(*row) if row else None

        return await self._run(query)

    async def revocations_after(self, position: int) -> tuple[int, list[Revocation]]:
        def query() -> tuple[int, list[Revocation]]:
            rows = self._db.execute(
                "SELECT position, kind, value, at, reason, by FROM revocations"
                " WHERE position > ? ORDER BY position",
                (position,),
            ).fetchall()
            last = rows[-1][0] if rows else position
            return last, [Revocation(*row[1:]) for row in rows]

        return await self._run(query)

    async def bind_key(self, fingerprint: str, certificate: str, expires: float) -> None:
        def upsert() -> None:
            self._db.execute(
                "INSERT OR REPLACE INTO bound_keys (fingerprint, certificate, expires)"
                " VALUES (?, ?, ?)",
                (fingerprint, certificate, expires),
            )
            self._db.execute("DELETE FROM bound_keys WHERE expires < ?", (time.time(),))

        await self._run(upsert)

    async def bound_certificate(self, fingerprint: str, now: float) -> str | None:
        def query() -> str | None:
            row = self._db.execute(
                "SELECT certificate FROM bound_keys WHERE fingerprint = ? AND expires > ?",
                (fingerprint, now),
            ).fetchone()
            return str(row[0]) if row else None

        return await self._run(query)

    async def close(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush()

        def close() -> None:
            self._db.close()

        try:
            await self._run(close)
        finally:
            self._pool.shutdown(wait=True)

    def close_now(self) -> None:
        """Close from synchronous code (admin commands, shutdown paths)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush()
        self._pool.submit(self._db.close).result()
        self._pool.shutdown(wait=True)
