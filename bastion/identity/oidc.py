"""Verify OpenID Connect ID tokens and workload tokens: discovery, JWKS, claims.

All JOSE work is joserfc's; this module only decides *which* key and algorithm a token
may use and which claims it must carry:

- the issuer is read from the (still unverified) payload to pick the configured
  provider; an issuer no ``[[identity_providers]]`` entry names is refused;
- the header's ``alg`` must be in that provider's allow-list, which only holds
  asymmetric algorithms: ``none`` and HMAC (``HS256`` signed with the public key) are
  refused before any key is touched;
- the key is the provider's JWKS key with the header's ``kid``. The JWKS is cached and
  re-fetched after ``jwks_max_age_seconds``; an unknown ``kid`` (the provider rotated
  its keys) triggers one refresh, at most once per ``jwks_refresh_seconds``, so a flood
  of made-up ``kid`` values cannot make the bastion hammer the provider;
- then ``iss``, ``aud``, ``exp``, ``iat`` (required), ``nbf`` (when present) with a small
  leeway, ``sub`` (required), ``nonce`` when the flow has one, and ``azp`` when present.

Every refusal is a ``TokenRefused`` whose message is one sentence for the user; callers
audit it. Limits: encrypted ID tokens (JWE) are not supported; a provider whose JWKS
is unreachable refuses every token until it answers again (fail closed).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet

from ..errors import BastionError
from .settings import IdentitySettings, ProviderSettings

__all__ = ["Fetch", "TokenRefused", "VerifiedToken", "Verifier", "http_get_json"]

MAX_TOKEN_BYTES = 16 * 1024
MAX_DOCUMENT_BYTES = 512 * 1024
Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class TokenRefused(BastionError):
    """A token the bastion does not accept; the message is the sentence users read."""

    def __init__(self, reason: str, *, provider: str = "", subject: str = ""):
        super().__init__(reason)
        self.reason, self.provider, self.subject = reason, provider, subject


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims passed every check."""

    provider: ProviderSettings
    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def issuer(self) -> str:
        return self.provider.issuer


async def http_get_json(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET a JSON object over HTTP(S) with a time and size bound; BastionError if not."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as r:
                if r.status_code != 200:
                    raise BastionError(f"{url} answered HTTP {r.status_code}")
                body = bytearray()
                async for chunk in r.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise BastionError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise BastionError(f"cannot fetch {url}: {exc.__class__.__name__}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise BastionError(f"{url} did not answer JSON") from None
    if not isinstance(data, dict):
        raise BastionError(f"{url} did not answer a JSON object")
    return data


@dataclass
class _ProviderKeys:
    """Discovery document and JWKS of one provider, cached; refreshes rate-limited."""

    provider: ProviderSettings
    fetch: Fetch
    refresh_seconds: float
    max_age: float
    clock: Callable[[], float]
    metadata: dict[str, Any] | None = None
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def discover(self) -> dict[str, Any]:
        if self.metadata is None or self.clock() - self.fetched_at > self.max_age:
            url = f"{self.provider.issuer}/.well-known/openid-configuration"
            metadata = await self.fetch(url)
            if str(metadata.get("issuer", "")).rstrip("/") != self.provider.issuer:
                raise BastionError(
                    f"the discovery document at {url} names another issuer "
                    f"({str(metadata.get('issuer'))[:100]!r})"
                )
            if not isinstance(metadata.get("jwks_uri"), str):
                raise BastionError(f"the discovery document at {url} has no jwks_uri")
            self.metadata = metadata
        return self.metadata

    async def _refresh(self) -> None:
        metadata = await self.discover()
        from .settings import check_url

        jwks_uri = str(metadata["jwks_uri"])
        try:
            check_url(jwks_uri)
        except ValueError as exc:
            raise BastionError(f"jwks_uri: {exc}") from None
        document = await self.fetch(jwks_uri)
        try:
            keys = KeySet.import_key_set(
                {"keys": [k for k in document.get("keys", []) if _is_public_signing_key(k)]}
            )
        except (JoseError, ValueError, TypeError) as exc:
            raise BastionError(f"the JWKS at {jwks_uri} is unreadable: {exc}") from None
        self.keys, self.fetched_at = keys, self.clock()

    async def key(self, kid: str | None, alg: str) -> Key:
        async with self.lock:
            now = self.clock()
            if self.keys is None or now - self.fetched_at > self.max_age:
                await self._refresh()
            found = self._find(kid, alg)
            if found is None and now - self.fetched_at >= self.refresh_seconds:
                await self._refresh()  # the provider may have rotated its keys
                found = self._find(kid, alg)
        if found is None:
            what = f"kid {kid[:64]!r}" if kid else "no kid"
            raise TokenRefused(
                f"the token is signed with a key ({what}) that {self.provider.name} does not "
                "publish", provider=self.provider.name,
            )  # fmt: skip
        return found

    def _find(self, kid: str | None, alg: str) -> Key | None:
        assert self.keys is not None
        candidates = [k for k in self.keys if kid is None or k.kid == kid]
        candidates = [k for k in candidates if k.get("alg") in (None, alg)]
        if kid is None and len(candidates) != 1:
            return None  # without a kid, only an unambiguous single key will do
        return candidates[0] if candidates else None


def _is_public_signing_key(jwk: object) -> bool:
    """Only asymmetric public keys meant for signatures: a symmetric ("oct") key in a
    JWKS is never used, whatever the token's header says."""
    return (
        isinstance(jwk, dict)
        and jwk.get("kty") in ("RSA", "EC", "OKP")
        and jwk.get("use", "sig") == "sig"
        and "d" not in jwk
    )


def _b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class Verifier:
    """Verifies tokens against the configured providers."""

    def __init__(
        self,
        settings: IdentitySettings,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.clock = clock
        self._keys = {
            p.name: _ProviderKeys(
                p,
                fetch or http_get_json,
                float(settings.jwks_refresh_seconds),
                float(settings.jwks_max_age_seconds),
                monotonic,
            )
            for p in settings.providers
        }

    async def discovery(self, provider: ProviderSettings) -> dict[str, Any]:
        """The provider's discovery document (cached); BastionError if unreachable."""
        return await self._keys[provider.name].discover()

    def _provider_for(self, issuer: object, audience: object, name: str | None) -> ProviderSettings:
        issuer = str(issuer or "").rstrip("/")
        matching = [p for p in self.settings.providers if p.issuer == issuer]
        if name is not None:
            matching = [p for p in matching if p.name == name]
        if not matching:
            shown = issuer[:100] or "none"
            if name is not None and self.settings.provider(name) is not None:
                raise TokenRefused(
                    f"the token's issuer ({shown}) is not provider {name}'s issuer",
                    provider=name,
                )
            raise TokenRefused(f"tokens from issuer {shown!r} are not trusted here")
        auds = audience if isinstance(audience, list) else [audience]
        for p in matching:
            if p.audience in auds:
                return p
        return matching[0]  # its audience check names the mismatch

    async def verify(
        self, token: str, *, provider: str | None = None, nonce: str | None = None
    ) -> VerifiedToken:
        """Verify ``token``; raises TokenRefused with the reason."""
        token = token.strip()
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRefused(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRefused(
                "this is not a signed JWT (three dot-separated parts); encrypted tokens are "
                "not supported"
            )
        try:
            header, unverified = _b64json(parts[0]), _b64json(parts[1])
        except (ValueError, UnicodeDecodeError):
            raise TokenRefused("the token is not valid base64url JSON") from None
        chosen = self._provider_for(unverified.get("iss"), unverified.get("aud"), provider)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenRefused("the token is unsigned (alg none)", provider=chosen.name)
        if alg.upper().startswith("HS"):
            raise TokenRefused(
                f"the token is HMAC-signed ({alg[:16]}), which {chosen.name} never does: "
                "only its published public keys are accepted",
                provider=chosen.name,
            )
        if alg not in chosen.algorithms:
            raise TokenRefused(
                f"algorithm {alg[:16]!r} is not allowed for {chosen.name} "
                f"(allowed: {', '.join(chosen.algorithms)})",
                provider=chosen.name,
            )
        if "crit" in header or "jku" in header or "x5u" in header or "jwk" in header:
            raise TokenRefused(
                "the token's header names its own key or critical extensions, which are "
                "never followed",
                provider=chosen.name,
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("the token's kid is not a string", provider=chosen.name)
        try:
            key = await self._keys[chosen.name].key(kid, alg)
        except TokenRefused:
            raise
        except BastionError as exc:
            raise TokenRefused(f"cannot check the token now: {exc}", provider=chosen.name) from None
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
        except BadSignatureError:
            raise TokenRefused("the token's signature is not valid", provider=chosen.name) from None
        except JoseError as exc:
            raise TokenRefused(
                f"the token cannot be read ({exc.error or exc.__class__.__name__})",
                provider=chosen.name,
            ) from None
        claims = dict(decoded.claims)
        self._check_claims(chosen, claims, nonce)
        return VerifiedToken(chosen, claims)

    def _check_claims(
        self, provider: ProviderSettings, claims: dict[str, Any], nonce: str | None
    ) -> None:
        subject = str(claims.get("sub", ""))[:200]
        now = int(self.clock())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self.settings.leeway_seconds,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.audience},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise TokenRefused(
                "the token expired", provider=provider.name, subject=subject
            ) from None
        except MissingClaimError as exc:
            raise TokenRefused(
                f"the token lacks a required claim ({exc.claim})",
                provider=provider.name,
                subject=subject,
            ) from None
        except ClaimError as exc:
            raise TokenRefused(
                _claim_sentence(exc.claim, claims, provider),
                provider=provider.name,
                subject=subject,
            ) from None
        if not isinstance(claims.get("sub"), str):
            raise TokenRefused("the token's sub is not a string", provider=provider.name)
        azp = claims.get("azp")
        if azp is not None and provider.client_id and azp != provider.client_id:
            raise TokenRefused(
                f"the token was issued to another client ({str(azp)[:64]!r})",
                provider=provider.name,
                subject=subject,
            )
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
                raise TokenRefused(
                    "the token's nonce does not match this login (a replayed token?)",
                    provider=provider.name,
                    subject=subject,
                )


def _claim_sentence(claim: str, claims: dict[str, Any], provider: ProviderSettings) -> str:
    value = str(claims.get(claim, ""))[:100]
    if claim == "aud":
        return f"the token is for another audience ({value!r}, expected {provider.audience!r})"
    if claim == "iss":
        return f"the token's issuer {value!r} is not {provider.issuer!r}"
    if claim == "nbf":
        return "the token is not valid yet (nbf is in the future; check the clocks)"
    if claim == "iat":
        return "the token was issued in the future (check the clocks)"
    return f"the token's {claim} claim is not valid"
