"""One channel's records: its cast, its audit events and its row in the session index.

Flows call the recorder and never touch the three stores themselves. What it writes is
masked (``mask.py``): output it is given unmasked (a terminal session's) goes through
its own stream masker, markers and the cast header through the session's masker. Every state change
(a decision, an approval request and its outcome, the end) is both an ``"m"`` marker in
the cast and an audit event, so an investigator finds the same story in both. Opening
fails with ``OSError`` when the cast cannot be created: the caller then runs nothing
(nothing runs unrecorded). Index writes are queued (``Store`` fire-and-forget methods).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import BastionError
from ..storage import SessionRow
from .audit import AuditLog, bounded
from .cast import CastWriter, cast_path
from .mask import Masker, StreamMasker

__all__ = ["RecordingError", "RecordingSettings", "SessionInfo", "SessionRecorder"]


class RecordingError(BastionError):
    """The cast could not be written: the session stops (fail closed)."""


class _Index(Protocol):
    def session_started(self, row: SessionRow) -> None: ...

    def session_decided(self, session_id: str, decision: str, rule: str) -> None: ...

    def session_ended(self, session_id: str, exit_status: int | None) -> None: ...


@dataclass(frozen=True)
class SessionInfo:
    """Who opened the channel, where it goes and what it asked for."""

    session_id: str
    conn: str
    peer: str
    user: str
    groups: tuple[str, ...]
    target: str
    login: str
    kind: str  # exec | shell | subsystem:sftp | ...
    command: str | None
    term_type: str | None = None
    width: int = 80
    height: int = 24


@dataclass(frozen=True)
class RecordingSettings:
    directory: Path
    max_output_bytes: int
    record_input: bool
    max_binary_bytes: int = 1024 * 1024 * 1024


class SessionRecorder:
    """Owns one channel's cast, audit events and index row."""

    def __init__(
        self,
        info: SessionInfo,
        settings: RecordingSettings,
        audit: AuditLog,
        index: _Index,
        masker: Masker | None = None,
    ):
        self.info = info
        self.settings = settings
        self.audit = audit
        self.index = index
        self.cast: CastWriter | None = None
        self.closed = False
        self._path: Path | None = None
        self.masker = masker
        self._stream = StreamMasker(masker) if masker else None

    @property
    def path(self) -> Path:
        if self._path is None:  # the day's directory, fixed at the first use
            self._path = cast_path(self.settings.directory, self.info.session_id)
        return self._path

    def open(self) -> None:
        """Create the cast, announce the channel; OSError if it cannot be recorded."""
        info = self.info
        what = info.command if info.command is not None else info.kind
        self.cast = CastWriter(
            self.path,
            width=info.width,
            height=info.height,
            command=what,
            title=f"{info.user} -> {info.login}@{info.target}: {what}"[:200],
            env={"TERM": info.term_type} if info.term_type else None,
            extra={
                "bastion": {
                    "session": info.session_id,
                    "user": info.user,
                    "groups": list(info.groups),
                    "target": info.target,
                    "login": info.login,
                    "kind": info.kind,
                    "peer": info.peer,
                }
            },
            max_output_bytes=self.settings.max_output_bytes,
            side_path=self.path.with_suffix(".bin"),
            max_binary_bytes=self.settings.max_binary_bytes,
            redact=self.masker.mask_text if self.masker else None,
        )
        self.index.session_started(
            SessionRow(
                id=info.session_id,
                started=time.time(),
                user=info.user,
                target=info.target,
                login=info.login,
                kind=info.kind,
                command=info.command,
                cast_path=str(self.path),
            )
        )
        self.audit.write(
            "channel",
            session=info.session_id,
            conn=info.conn,
            user=info.user,
            target=info.target,
            login=info.login,
            kind=info.kind,
            pty=info.term_type is not None,
            **bounded(info.command),
            cast=str(self.path),
        )

    def decision(
        self, action: str, rule: str, reason: str, commands: tuple[str, ...] = (), **extra: Any
    ) -> None:
        info = self.info
        self.marker(f"decision {action} ({rule}) for {info.user}: {reason}")
        self.index.session_decided(info.session_id, action, rule)
        self.audit.write(
            "decision",
            session=info.session_id,
            user=info.user,
            target=info.target,
            login=info.login,
            **bounded(extra.pop("command", info.command)),
            decision=action,
            rule=rule,
            reason=reason,
            commands=list(commands),
            **extra,
        )

    def event(self, kind: str, label: str, **fields: Any) -> None:
        """A state change: a marker in the cast and an audit event of type ``kind``."""
        self.marker(label)
        self.audit.write(kind, session=self.info.session_id, user=self.info.user, **fields)

    def marker(self, label: str) -> None:
        if self.cast is not None:
            try:
                self.cast.marker(label)
            except OSError as exc:
                raise RecordingError(f"the session could not be recorded: {exc}") from None

    def output(self, data: bytes, *, masked: bool = False) -> None:
        """Bytes the client received; ``masked`` when the live stream was masked already."""
        if self.cast is not None:
            if not masked and self._stream is not None:
                data = self._stream.feed(data)
            try:
                self.cast.output(data)
            except OSError as exc:
                raise RecordingError(f"the session could not be recorded: {exc}") from None

    def input(self, data: bytes) -> None:
        if self.cast is not None and self.settings.record_input:
            try:
                self.cast.input(data)
            except OSError as exc:
                raise RecordingError(f"the session could not be recorded: {exc}") from None

    def resize(self, width: int, height: int) -> None:
        if self.cast is not None:
            try:
                self.cast.resize(width, height)
            except OSError as exc:
                raise RecordingError(f"the session could not be recorded: {exc}") from None

    def close(self, status: int | None, note: str | None = None) -> None:
        """Close the cast with a last marker and end the index row; once."""
        if self.closed:
            return
        self.closed = True
        output_bytes = 0
        side = None
        if self.cast is not None:
            if self._stream is not None and self._stream.held:
                try:
                    self.cast.output(self._stream.flush())
                except OSError:
                    pass
            output_bytes = self.cast.output_bytes + self.cast.dropped_bytes
            if self.cast.side is not None and self.cast.side.opened:
                side = self.cast.side
            try:
                self.cast.close(note or (f"exit status {status}" if status is not None else None))
            except OSError:
                pass  # the audit event below still tells the end
        self.index.session_ended(self.info.session_id, status)
        self.audit.write(
            "session_end",
            session=self.info.session_id,
            user=self.info.user,
            target=self.info.target,
            exit_status=status,
            note=note,
            output_bytes=output_bytes,
            **(
                {
                    "side_file": str(side.path),
                    "side_bytes": side.size,
                    "side_sha256": side.sha256.hexdigest(),
                }
                if side is not None
                else {}
            ),
        )
