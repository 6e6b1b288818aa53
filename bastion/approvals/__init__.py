"""Just-in-time approval of held commands, bound to the exact bytes that will run."""

from __future__ import annotations

from .notify import Notifier, event_payload
from .service import ApprovalError, ApprovalService, ApprovalSettings, binding_of

__all__ = [
    "ApprovalError",
    "ApprovalService",
    "ApprovalSettings",
    "Notifier",
    "binding_of",
    "event_payload",
]
