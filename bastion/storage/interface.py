"""The storage contract: the session index and approval requests, one async interface.

Two back ends implement it (SQLite embedded by default; PostgreSQL for several bastions
later) and one contract test suite runs against each. Deciding an approval request is
an atomic compare-and-set on its ``version``: two approvers deciding at once, exactly
one wins. Session-index writes are fire-and-forget (``submit``-style methods return at
once, the write happens off the event loop, in order); the index is secondary to casts
and the audit log, so a failed index write is logged, never raised into a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "APPROVAL_STATES",
    "FINAL_STATES",
    "REVOCATION_KINDS",
    "Approval",
    "ApprovalRequest",
    "IssuedCertificate",
    "Revocation",
    "SessionRow",
    "Store",
]

#: pending -> approved -> used (ran once); pending -> denied | expired | cancelled.
APPROVAL_STATES = ("pending", "approved", "denied", "expired", "cancelled", "used")
FINAL_STATES = frozenset({"denied", "expired", "cancelled", "used"})


@dataclass(frozen=True)
class SessionRow:
    """One channel in the session index (``bastion sessions``)."""

    id: str
    started: float
    user: str
    target: str
    login: str
    kind: str
    command: str | None
    cast_path: str
    decision: str | None = None
    rule: str | None = None
    exit_status: int | None = None
    ended: float | None = None


@dataclass(frozen=True)
class Approval:
    """One approver's yes."""

    user: str
    reason: str
    at: float


@dataclass(frozen=True)
class ApprovalRequest:
    """A held command waiting for people, bound to the exact bytes that will run."""

    id: str
    binding: str  # sha256 of (user, target, login, cwd, command): what an approval is for
    status: str
    user: str
    groups: tuple[str, ...]
    target: str
    login: str
    cwd: str | None
    command: str  # the bytes the requester sent
    run: str  # the bytes that go to the target once approved
    rule: str
    reason: str
    approvers: tuple[str, ...]  # groups whose members may decide
    required: int
    created: float
    expires: float
    session_id: str = ""
    waiting: bool = True  # a connection waits on it (False: filed with BASTION_WAIT=0)
    owner: str = ""  # the bastion process that holds the waiting connection
    approvals: tuple[Approval, ...] = ()
    decided_at: float | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    version: int = 0
    extra: dict[str, str] = field(default_factory=dict)


# ---- issued certificates, revocations, bound keys (owned by bastion.identity) ----

#: serial: that certificate; key_id and subject: every certificate with that key id or
#: (OIDC) subject issued up to the moment of revocation, not those issued later.
REVOCATION_KINDS = ("serial", "key_id", "subject")


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate the bastion signed (``bastion cert list``)."""

    serial: int
    key_id: str
    principal: str
    groups: tuple[str, ...]
    subject: str  # the OIDC subject ("" for `bastion cert issue`)
    issuer: str
    provider: str
    fingerprint: str  # of the certified public key
    issued: float
    expires: float
    source: str  # "login", "ssh-login" (keyboard-interactive), "admin"
    revoked: float | None = None
    revoked_reason: str = ""


@dataclass(frozen=True)
class Revocation:
    """One entry of the revocation list, checked on every authentication."""

    kind: str  # one of REVOCATION_KINDS
    value: str
    at: float
    reason: str
    by: str = ""


class Store(Protocol):
    """What the bastion keeps besides casts and the audit log."""

    # ---- session index (fire and forget) ----
    def session_started(self, row: SessionRow) -> None: ...

    def session_decided(self, session_id: str, decision: str, rule: str) -> None: ...

    def session_ended(self, session_id: str, exit_status: int | None) -> None: ...

    async def recent_sessions(self, limit: int = 50) -> list[SessionRow]: ...

    # ---- approval requests ----
    async def create_request(self, request: ApprovalRequest) -> None: ...

    async def get_request(self, request_id: str) -> ApprovalRequest | None: ...

    async def list_requests(
        self, *, pending_only: bool = True, limit: int = 200
    ) -> list[ApprovalRequest]: ...

    async def update_request(self, request: ApprovalRequest) -> bool:
        """Store ``request`` if the stored version is still ``request.version``; the stored
        version becomes ``request.version + 1``. False: someone else changed it first."""
        ...

    async def find_approved(self, binding: str, user: str) -> list[ApprovalRequest]:
        """Approved, unused requests of ``user`` bound to ``binding``, oldest first."""
        ...

    async def cancel_waiting(self, owner: str, reason: str, now: float) -> int:
        """On start: requests a stopped bastion's connections waited on are cancelled."""
        ...

    # ---- issued certificates, revocations, bound keys ----
    async def record_certificate(self, cert: IssuedCertificate) -> None: ...

    async def list_certificates(
        self, *, active_only: bool = True, limit: int = 200, now: float = 0.0
    ) -> list[IssuedCertificate]: ...

    async def add_revocation(self, revocation: Revocation) -> int:
        """Store ``revocation``; how many recorded certificates it covers."""
        ...

    async def revocation_for(self, serial: int, key_id: str, valid_after: int) -> Revocation | None:
        """The revocation that covers this certificate, if any."""
        ...

    async def revocations_after(self, position: int) -> tuple[int, list[Revocation]]:
        """Revocations stored after ``position`` (0: all), and the new position."""
        ...

    async def bind_key(self, fingerprint: str, certificate: str, expires: float) -> None:
        """Keep a certificate for a plain key (keyboard-interactive login)."""
        ...

    async def bound_certificate(self, fingerprint: str, now: float) -> str | None: ...

    async def close(self) -> None: ...
