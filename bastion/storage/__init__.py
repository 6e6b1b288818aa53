"""What the bastion keeps besides casts and the audit log: the session index and
approval requests, behind one async interface (``Store``)."""

from __future__ import annotations

from .interface import (
    APPROVAL_STATES,
    FINAL_STATES,
    REVOCATION_KINDS,
    Approval,
    ApprovalRequest,
    IssuedCertificate,
    Revocation,
    SessionRow,
    Store,
)
from .sqlite import SQLiteStore, create_private_file

__all__ = [
    "APPROVAL_STATES",
    "FINAL_STATES",
    "REVOCATION_KINDS",
    "Approval",
    "ApprovalRequest",
    "IssuedCertificate",
    "Revocation",
    "SQLiteStore",
    "SessionRow",
    "Store",
    "create_private_file",
]
