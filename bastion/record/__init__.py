"""Session recordings (asciinema v2 casts) and the append-only audit log."""

from __future__ import annotations

from .audit import AuditLog
from .cast import CastWriter, cast_path

__all__ = ["AuditLog", "CastWriter", "cast_path"]
