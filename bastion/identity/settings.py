"""The ``[identity]`` and ``[[identity_providers]]`` sections of policies.toml.

Checked here, once, like every other section (``bastion.schema``): unknown keys, wrong
types and unknown vocabularies are errors naming file, line and key. An issuer must be
an ``https://`` URL; plain ``http://`` is accepted only for a loopback address (a
provider on the same machine, as in the test suite), never across a network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..schema import Section, check
from ..tomlsource import TomlSource

__all__ = [
    "DEFAULT_ALGORITHMS",
    "IDENTITY_SECTIONS",
    "IdentitySection",
    "IdentitySettings",
    "ProviderSection",
    "ProviderSettings",
    "check_url",
    "load_identity",
]

#: Asymmetric JWS algorithms only: an HMAC algorithm would let anyone holding the
#: provider's public key (everyone) sign tokens, and "none" signs nothing.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
IDENTITY_SECTIONS = ("identity", "identity_providers")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_GROUP = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,64}$")
Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256", "PS256", "EdDSA")


def check_url(value: str) -> str:
    """https://, or http:// to a loopback address only (a token never crosses a network
    in clear)."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return value
        except ValueError:
            pass
        raise ValueError(f"{value!r} must be https:// (http:// only on a loopback address)")
    raise ValueError(f"{value!r} is not an https:// URL")


def parse_duration(text: str) -> int:
    from ..config import parse_duration as parse  # config imports this module

    return parse(text)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


class IdentitySection(Section):
    max_certificate_ttl: str = "12h"
    leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 60
    jwks_refresh_seconds: Annotated[int, Field(ge=0, le=86400)] = 60
    jwks_max_age_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 3600
    issue_per_key_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 30
    issue_per_subject_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 60
    ssh_login_provider: str = ""

    _ttl = field_validator("max_certificate_ttl")(classmethod(lambda cls, v: _duration(v)))


class ProviderSection(Section):
    name: Annotated[str, Field(pattern=_NAME)]
    issuer: Annotated[str, Field(min_length=1)]
    client_id: str = ""
    audience: str = ""
    username_claim: Annotated[str, Field(min_length=1)] = "preferred_username"
    principal_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_.-]{0,16}$")] = ""
    required_claims: dict[str, list[Annotated[str, Field(min_length=1)]]] = {}
    groups_claim: str = "groups"
    extra_groups: list[Annotated[str, Field(pattern=_GROUP.pattern)]] = []
    allowed_groups: list[Annotated[str, Field(min_length=1)]] = []
    certificate_ttl: str = "8h"
    kind: Literal["user", "workload"] = "user"
    algorithms: list[Algorithm] = list(DEFAULT_ALGORITHMS)
    scopes: list[Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,64}$")]] = [
        "openid",
        "profile",
        "email",
    ]
    permit_pty_groups: list[Annotated[str, Field(min_length=1)]] | None = None
    permit_port_forwarding_groups: list[Annotated[str, Field(min_length=1)]] = ["*"]

    _ttl = field_validator("certificate_ttl")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return check_url(value).rstrip("/")

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one signature algorithm")
        return value

    @field_validator("required_claims")
    @classmethod
    def _required(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for claim, allowed in value.items():
            if not allowed:
                raise ValueError(f"required_claims.{claim}: list the values that may log in")
        return value

    @model_validator(mode="after")
    def _interactive(self) -> ProviderSection:
        if self.kind == "user" and not self.client_id:
            raise ValueError(
                f'provider {self.name!r}: client_id is required for kind = "user" '
                "(the browser and device flows need it)"
            )
        if not (self.audience or self.client_id):
            raise ValueError(f"provider {self.name!r}: set audience (the token's aud)")
        return self


class IdentitySections(Section):
    identity: IdentitySection = IdentitySection()
    identity_providers: list[ProviderSection] = []


@dataclass(frozen=True)
class ProviderSettings:
    """One OpenID provider the bastion trusts for issuing certificates."""

    name: str
    issuer: str
    client_id: str
    audience: str
    username_claim: str
    groups_claim: str
    extra_groups: tuple[str, ...]
    allowed_groups: tuple[str, ...]
    certificate_ttl: int
    kind: str
    algorithms: tuple[str, ...]
    scopes: tuple[str, ...]
    permit_pty_groups: tuple[str, ...]
    permit_port_forwarding_groups: tuple[str, ...]
    principal_prefix: str = ""
    required_claims: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def interactive(self) -> bool:
        return self.kind == "user"


@dataclass(frozen=True)
class IdentitySettings:
    """The identity sections, typed; ``providers`` in file order."""

    max_certificate_ttl: int = 12 * 3600
    leeway_seconds: int = 60
    jwks_refresh_seconds: int = 60
    jwks_max_age_seconds: int = 3600
    issue_per_key_per_hour: int = 30
    issue_per_subject_per_hour: int = 60
    ssh_login_provider: str = ""
    providers: tuple[ProviderSettings, ...] = ()

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)


def load_identity(source: TomlSource) -> IdentitySettings:
    """Check and type the identity sections of ``source``; ConfigError at file:line:key."""
    data = {k: v for k, v in source.data.items() if k in IDENTITY_SECTIONS}
    sections = check(source, IdentitySections, data)
    providers: list[ProviderSettings] = []
    for i, p in enumerate(sections.identity_providers):
        if any(q.name == p.name for q in providers):
            raise source.error(("identity_providers", i, "name"), f"{p.name!r} is listed twice")
        if any(q.issuer == p.issuer and q.audience == (p.audience or p.client_id)
               for q in providers):  # fmt: skip
            raise source.error(
                ("identity_providers", i, "issuer"),
                "another provider has the same issuer and audience: a token could match both",
            )
        pty = p.permit_pty_groups
        if pty is None:
            pty = ["*"] if p.kind == "user" else []
        providers.append(
            ProviderSettings(
                name=p.name,
                issuer=p.issuer,
                client_id=p.client_id,
                audience=p.audience or p.client_id,
                username_claim=p.username_claim,
                groups_claim=p.groups_claim,
                extra_groups=tuple(p.extra_groups),
                allowed_groups=tuple(p.allowed_groups),
                certificate_ttl=parse_duration(p.certificate_ttl),
                kind=p.kind,
                algorithms=tuple(p.algorithms),
                scopes=tuple(p.scopes),
                permit_pty_groups=tuple(pty),
                permit_port_forwarding_groups=tuple(p.permit_port_forwarding_groups),
                principal_prefix=p.principal_prefix,
                required_claims=tuple((k, tuple(v)) for k, v in p.required_claims.items()),
            )
        )
    ident = sections.identity
    if ident.ssh_login_provider:
        chosen = next((p for p in providers if p.name == ident.ssh_login_provider), None)
        if chosen is None or not chosen.interactive:
            raise source.error(
                ("identity", "ssh_login_provider"),
                f"{ident.ssh_login_provider!r} is not a [[identity_providers]] entry of "
                'kind = "user"',
            )
    max_ttl = parse_duration(ident.max_certificate_ttl)
    return IdentitySettings(
        max_certificate_ttl=max_ttl,
        leeway_seconds=ident.leeway_seconds,
        jwks_refresh_seconds=ident.jwks_refresh_seconds,
        jwks_max_age_seconds=ident.jwks_max_age_seconds,
        issue_per_key_per_hour=ident.issue_per_key_per_hour,
        issue_per_subject_per_hour=ident.issue_per_subject_per_hour,
        ssh_login_provider=ident.ssh_login_provider,
        providers=tuple(providers),
    )
