"""Session recordings (asciinema v2 casts), the append-only audit log, and the
recorder that owns both for one channel."""

from __future__ import annotations

from .audit import AuditLog
from .cast import CastWriter, cast_path
from .recorder import RecordingError, RecordingSettings, SessionInfo, SessionRecorder

__all__ = [
    "AuditLog",
    "CastWriter",
    "RecordingError",
    "RecordingSettings",
    "SessionInfo",
    "SessionRecorder",
    "cast_path",
]
