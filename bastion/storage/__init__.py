"""What the bastion keeps besides casts and the audit log: the session index and
approval requests, behind one async interface (``Store``)."""

from __future__ import annotations

from .interface import (
    APPROVAL_STATES,
    FINAL_STATES,
    Approval,
    ApprovalRequest,
    SessionRow,
    Store,
)
from .sqlite import SQLiteStore, create_private_file

__all__ = [
    "APPROVAL_STATES",
    "FINAL_STATES",
    "Approval",
    "ApprovalRequest",
    "SQLiteStore",
    "SessionRow",
    "Store",
    "create_private_file",
]
