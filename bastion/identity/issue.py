"""From a verified token to a certificate grant: principal, groups, lifetime, permits.

- ``required_claims`` must all hold (e.g. ``repository`` and ``ref`` for a CI issuer that
  serves every customer: without them, anyone's job could log in).
- The principal is ``principal_prefix`` + the provider's ``username_claim``: for an
  e-mail style value the part before ``@``, lowercased; it must then be a valid name
  (``[a-z0-9_][a-z0-9_.-]*``, at most 64 characters, not starting with ``bastion-``).
  Nothing else is rewritten: a value that is not already a valid name is refused, so
  two people can never be folded into one principal by a lossy rewrite. With several
  providers, the same name from two of them is the same principal: give each its own
  ``principal_prefix``.
- Groups are the ``groups_claim`` (a list, or one string of names separated by commas
  or spaces) plus ``extra_groups``; a group name outside ``[A-Za-z0-9_.:/@+-]`` (a comma
  would split it inside the certificate) is dropped and named in the audit event.
  ``allowed_groups`` gates who may log in at all.
- ``permit-pty`` and ``permit-port-forwarding`` are granted only to the groups the
  provider lists (``"*"``: everyone it admits); without port forwarding a certificate
  cannot jump, without a pty it gets no terminal.
- The lifetime is the provider's ``certificate_ttl`` capped by
  ``[identity] max_certificate_ttl``.

``Issuer`` runs the whole request (rate limits, verification, grant, signing, record,
audit); it is transport-free: the SSH layer hands it the key and a signing function.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import BastionError
from ..record import AuditLog
from ..storage.interface import IssuedCertificate
from .oidc import TokenRefused, VerifiedToken, Verifier
from .settings import IdentitySettings, ProviderSettings

__all__ = [
    "Grant",
    "IssueRefused",
    "Issued",
    "Issuer",
    "RateLimiter",
    "grant_for",
    "principal_from_claim",
]

_PRINCIPAL = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,63}$")
_GROUP = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,64}$")
MAX_GROUPS = 64
HOUR = 3600.0
SIGN_INS_PER_ADDRESS_PER_HOUR = 30


class IssueRefused(BastionError):
    """A certificate request the bastion refuses; the message is for the user."""


@dataclass(frozen=True)
class Grant:
    """What a certificate will say about its holder."""

    principal: str
    groups: tuple[str, ...]
    ttl: int
    key_id: str
    permits: frozenset[str]
    provider: str
    issuer: str
    subject: str
    dropped_groups: tuple[str, ...] = ()


def principal_from_claim(value: object, claim: str, prefix: str = "") -> str:
    """The principal for a username claim's value; IssueRefused if it is not a name."""
    if not isinstance(value, str) or not value:
        raise IssueRefused(f"the token has no {claim} claim to name you by")
    name = value.split("@", 1)[0] if "@" in value else value
    name = prefix + name.lower()
    if not _PRINCIPAL.match(name) or name.startswith("bastion-"):
        raise IssueRefused(
            f"the {claim} claim ({value[:64]!r}) is not a valid user name here "
            "(letters, digits, '_', '.', '-'; at most 64): ask an administrator to use "
            "another username_claim"
        )
    return name


def _groups(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [g for g in re.split(r"[,\s]+", value) if g]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def _granted(groups: tuple[str, ...], to: tuple[str, ...]) -> bool:
    return "*" in to or any(g in to for g in groups)


def grant_for(token: VerifiedToken, settings: IdentitySettings) -> Grant:
    """Map a verified token to a grant; IssueRefused if the provider's rules say no."""
    provider: ProviderSettings = token.provider
    claims: dict[str, Any] = token.claims
    for claim, allowed in provider.required_claims:
        value = claims.get(claim)
        values = value if isinstance(value, list) else [value]
        if not any(isinstance(v, str) and v in allowed for v in values):
            raise IssueRefused(
                f"the token's {claim} claim ({str(value)[:64]!r}) is not one {provider.name} "
                "accepts"
            )
    principal = principal_from_claim(
        claims.get(provider.username_claim), provider.username_claim, provider.principal_prefix
    )
    raw = _groups(claims.get(provider.groups_claim)) if provider.groups_claim else []
    kept, dropped = [], []
    for group in [*raw, *provider.extra_groups]:
        if _GROUP.match(group) and group not in kept:
            kept.append(group)
        elif group not in kept:
            dropped.append(group[:64])
    if len(kept) > MAX_GROUPS:
        raise IssueRefused(f"the token carries more than {MAX_GROUPS} usable groups")
    groups = tuple(kept)
    if provider.allowed_groups and not any(g in provider.allowed_groups for g in groups):
        raise IssueRefused(
            f"{principal} is in none of the groups allowed to log in through "
            f"{provider.name} ({', '.join(provider.allowed_groups)})"
        )
    permits = set()
    if _granted(groups, provider.permit_pty_groups):
        permits.add("pty")
    if _granted(groups, provider.permit_port_forwarding_groups):
        permits.add("port-forwarding")
    ttl = min(provider.certificate_ttl, settings.max_certificate_ttl)
    subject = token.subject
    key_id = f"{principal} via {provider.name} (iss {provider.issuer} sub {subject[:128]})"
    return Grant(
        principal,
        groups,
        ttl,
        key_id,
        frozenset(permits),
        provider.name,
        provider.issuer,
        subject,
        tuple(dropped),
    )


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window).

    Memory is bounded: past ``max_keys`` keys, the oldest are forgotten (a forgotten
    key starts afresh, which only ever allows more)."""

    def __init__(
        self,
        limit: int,
        window: float = HOUR,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False (not counted) if it is over the limit."""
        now = self.clock()
        events = self._events.pop(key, None) or deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        allowed = len(events) < self.limit
        if allowed:
            events.append(now)
        self._events[key] = events  # most recent last
        while len(self._events) > self.max_keys:
            self._events.pop(next(iter(self._events)))
        return allowed


class CertificateLog(Protocol):
    async def record_certificate(self, cert: IssuedCertificate) -> None: ...


@dataclass(frozen=True)
class Issued:
    """A signed certificate and what it grants."""

    certificate: str  # the OpenSSH certificate line (KEY-cert.pub)
    grant: Grant
    serial: int
    valid_before: int


#: (grant, public key blob) -> (certificate line, serial, valid_after, valid_before)
Signer = Callable[[Grant, bytes], tuple[str, int, int, int]]


class Issuer:
    """Certificates for tokens: rate limits, verification, grant, signature, record."""

    def __init__(
        self,
        settings: IdentitySettings,
        verifier: Verifier,
        store: CertificateLog,
        audit: AuditLog,
        sign: Signer,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings, self.verifier, self.store, self.audit = settings, verifier, store, audit
        self.sign = sign
        self.per_key = RateLimiter(settings.issue_per_key_per_hour, clock=clock)
        self.per_subject = RateLimiter(settings.issue_per_subject_per_hour, clock=clock)
        self.sign_ins = RateLimiter(SIGN_INS_PER_ADDRESS_PER_HOUR, clock=clock)  # plain ssh
        self._used: dict[str, float] = {}  # sha256 of spent interactive tokens -> exp

    async def issue(
        self,
        token: str,
        *,
        public_key: bytes,
        fingerprint: str,
        provider: str | None = None,
        nonce: str | None = None,
        source: str = "login",
        conn: str = "",
        verified: VerifiedToken | None = None,
    ) -> Issued:
        """Sign ``public_key`` for the holder of ``token``; IssueRefused / TokenRefused
        (audited) if not. ``verified`` skips verification of a token checked already."""
        audit: dict[str, Any] = {"conn": conn, "fingerprint": fingerprint, "source": source}
        try:
            if not self.per_key.allow(fingerprint):
                raise IssueRefused(
                    "too many certificate requests for this key; wait and try again "
                    f"(at most {self.settings.issue_per_key_per_hour} an hour)"
                )
            if verified is None:
                if provider is not None and self.settings.provider(provider) is None:
                    raise IssueRefused(f"no identity provider is named {provider[:32]!r} here")
                verified = await self.verifier.verify(token, provider=provider, nonce=nonce)
            audit.update(provider=verified.provider.name, subject=verified.subject)
            self._spend(token, verified)
            grant = grant_for(verified, self.settings)
            if not self.per_subject.allow(f"{grant.issuer} {grant.subject}"):
                raise IssueRefused(
                    "too many certificate requests for this identity; wait and try again "
                    f"(at most {self.settings.issue_per_subject_per_hour} an hour)"
                )
        except (IssueRefused, TokenRefused) as exc:
            if isinstance(exc, TokenRefused):
                audit.setdefault("provider", exc.provider or None)
                audit.setdefault("subject", exc.subject or None)
            self.audit.write("certificate", result="refused", reason=str(exc), **audit)
            raise
        line, serial, valid_after, valid_before = self.sign(grant, public_key)
        record = IssuedCertificate(
            serial=serial,
            key_id=grant.key_id,
            principal=grant.principal,
            groups=grant.groups,
            subject=grant.subject,
            issuer=grant.issuer,
            provider=grant.provider,
            fingerprint=fingerprint,
            issued=time.time(),  # not valid_after, which is backdated for clock skew
            expires=float(valid_before),
            source=source,
        )
        await self.store.record_certificate(record)
        self.audit.write(
            "certificate",
            result="issued",
            user=grant.principal,
            groups=list(grant.groups),
            dropped_groups=list(grant.dropped_groups) or None,
            key_id=grant.key_id,
            serial=serial,
            valid_before=valid_before,
            permits=sorted(grant.permits),
            **audit,
        )
        return Issued(line, grant, serial, valid_before)

    def _spend(self, token: str, verified: VerifiedToken) -> None:
        """A browser or device-flow token buys one certificate: a copy of it (from a log,
        a proxy, a shared screen) cannot certify another key. Workload tokens are
        reusable until they expire (CI systems hand one token to a whole job). Kept in
        memory: several bastions do not share it."""
        if verified.provider.kind != "user":
            return
        now = time.time()
        for digest, exp in list(self._used.items()):
            if exp < now - self.settings.leeway_seconds:
                del self._used[digest]
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        if digest in self._used:
            raise IssueRefused("this sign-in was already used for a certificate: sign in again")
        self._used[digest] = float(verified.claims.get("exp", now))


__all__ += ["CertificateLog", "Signer"]
