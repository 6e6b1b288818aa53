"""Claims -> certificate grant: the principal is a valid name or refused (never folded),
groups are kept or dropped by name, permits only as the provider grants them, the
lifetime is capped; rate limits; the identity sections of policies.toml."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bastion.errors import ConfigError
from bastion.identity.issue import IssueRefused, RateLimiter, grant_for, principal_from_claim
from bastion.identity.oidc import VerifiedToken
from bastion.identity.settings import IdentitySettings, load_identity
from bastion.tomlsource import TomlSource

from .test_oidc import provider


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("alice.smith@example.com", "alice.smith"),
        ("0b7e-41f2", "0b7e-41f2"),  # sub-style identifiers
    ],
)
def test_principals_from_claims(value, expected):
    assert principal_from_claim(value, "preferred_username") == expected


@pytest.mark.parametrize(
    "value",
    ["", "alice smith", "al/ice", "../root", "ålice", "a" * 65, "bastion-ctl", "x,y", 42, None],
)
def test_unusable_names_are_refused_not_rewritten(value):
    with pytest.raises(IssueRefused, match="not a valid user name|no preferred_username"):
        principal_from_claim(value, "preferred_username")


def token(claims: dict, **provider_changes: object) -> VerifiedToken:
    p = replace(provider("https://idp.example.com"), **provider_changes)  # type: ignore[arg-type]
    base = {"sub": "s-1", "name": "alice", "groups": ["ops"]}
    return VerifiedToken(p, {**base, **claims})


def test_groups_permits_and_ttl():
    settings = IdentitySettings(max_certificate_ttl=1800)
    grant = grant_for(
        token({"groups": ["ops", "bad,group", "x y", "ops"]}, certificate_ttl=8 * 3600),
        settings,
    )
    assert grant.groups == ("ops",)
    assert grant.dropped_groups == ("bad,group", "x y")
    assert grant.ttl == 1800  # capped by [identity] max_certificate_ttl
    assert grant.permits == frozenset({"port-forwarding"})  # a workload: no pty by default
    assert grant.key_id == "alice via ci (iss https://idp.example.com sub s-1)"


def test_permits_follow_the_groups_the_provider_names():
    settings = IdentitySettings()
    g = grant_for(token({}, permit_pty_groups=("ops",), permit_port_forwarding_groups=()), settings)
    assert g.permits == frozenset({"pty"})
    g = grant_for(token({"groups": "dev, qa"}, permit_pty_groups=("ops",)), settings)
    assert g.groups == ("dev", "qa") and "pty" not in g.permits


def test_allowed_groups_gate_and_extra_groups():
    settings = IdentitySettings()
    with pytest.raises(IssueRefused, match="none of the groups allowed"):
        grant_for(token({"groups": ["interns"]}, allowed_groups=("ops",)), settings)
    g = grant_for(token({"groups": None}, extra_groups=("ci",)), settings)
    assert g.groups == ("ci",)


def test_rate_limiter_slides():
    now = [0.0]
    limiter = RateLimiter(2, window=60, clock=lambda: now[0])
    assert limiter.allow("k") and limiter.allow("k")
    assert not limiter.allow("k")
    assert limiter.allow("other")
    now[0] = 61
    assert limiter.allow("k")


def load(text: str) -> IdentitySettings:
    import tomllib

    return load_identity(TomlSource("policies.toml", text, tomllib.loads(text)))


def test_provider_sections_are_checked():
    settings = load(
        '[[identity_providers]]\nname = "corp"\nissuer = "https://idp.example.com/"\n'
        'client_id = "bastion"\n'
    )
    p = settings.providers[0]
    assert p.issuer == "https://idp.example.com" and p.audience == "bastion"
    assert p.permit_pty_groups == ("*",) and p.certificate_ttl == 8 * 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "c"\nissuer = "http://idp.example.com"\nclient_id = "b"', "https://"),
        ('name = "c"\nissuer = "https://i"\nclient_id = "b"\nalgorithms = ["HS256"]', "one of"),
        ('name = "c"\nissuer = "https://i"\nclient_id = "b"\nalgorithms = ["none"]', "one of"),
        ('name = "c"\nissuer = "https://i"', "client_id is required"),
        ('name = "c"\nissuer = "https://i"\nkind = "robot"\naudience = "x"', "one of"),
        ('name = "c"\nissuer = "https://i"\nclient_id = "b"\ncolor = "red"', "unknown key"),
    ],
)
def test_bad_provider_sections_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        load(f"[[identity_providers]]\n{text}\n")


def test_ssh_login_provider_must_be_an_interactive_provider():
    with pytest.raises(ConfigError, match="not a \\[\\[identity_providers\\]\\] entry"):
        load('[identity]\nssh_login_provider = "nobody"\n')


class Records:
    def __init__(self) -> None:
        self.certs: list = []
        self.events: list = []

    async def record_certificate(self, cert: object) -> None:
        self.certs.append(cert)

    def write(self, event: str, **fields: object) -> None:
        self.events.append((event, fields))


def issuer_for(settings: IdentitySettings, records: Records):
    from bastion.identity.issue import Issuer

    def sign(grant, public_key):  # the SSH layer's signer, not needed here
        return f"cert-for-{grant.principal}", 7, 0, 10**10

    return Issuer(settings, None, records, records, sign)  # type: ignore[arg-type]


def test_an_interactive_token_buys_one_certificate_a_workload_token_more():
    import asyncio
    import time

    records = Records()
    settings = IdentitySettings()
    issuer = issuer_for(settings, records)
    exp = {"exp": int(time.time()) + 300}
    person = token(exp, kind="user", client_id="bastion")
    agent = token(exp)

    async def run() -> None:
        await issuer.issue("tok-1", public_key=b"", fingerprint="k1", verified=person)
        with pytest.raises(IssueRefused, match="already used"):
            await issuer.issue("tok-1", public_key=b"", fingerprint="k2", verified=person)
        for key in ("k3", "k4"):
            await issuer.issue("tok-2", public_key=b"", fingerprint=key, verified=agent)

    asyncio.run(run())
    assert len(records.certs) == 3
    refused = [f for e, f in records.events if f.get("result") == "refused"]
    assert "already used" in refused[0]["reason"] and refused[0]["fingerprint"] == "k2"


def test_rate_limit_per_key_is_audited():
    import asyncio

    records = Records()
    issuer = issuer_for(IdentitySettings(issue_per_key_per_hour=2), records)

    async def run() -> None:
        for _ in range(2):
            await issuer.issue("t", public_key=b"", fingerprint="k", verified=token({}))
        with pytest.raises(IssueRefused, match="too many certificate requests for this key"):
            await issuer.issue("t", public_key=b"", fingerprint="k", verified=token({}))

    asyncio.run(run())


def test_required_claims_keep_other_tenants_of_a_shared_issuer_out():
    """A CI issuer signs tokens for every customer, with any audience they ask for:
    only the claims the provider requires tell ours from theirs."""
    settings = IdentitySettings()
    required = (("repository", ("my-org/deploy",)), ("ref", ("refs/heads/main",)))
    ours = {"repository": "my-org/deploy", "ref": "refs/heads/main", "name": "my-org"}
    grant = grant_for(token(ours, required_claims=required, principal_prefix="gh-"), settings)
    assert grant.principal == "gh-my-org"
    for other in (
        {**ours, "repository": "evil/deploy"},
        {**ours, "ref": "refs/heads/feature"},
        {k: v for k, v in ours.items() if k != "ref"},
        {**ours, "ref": ["refs/heads/feature"]},
    ):
        with pytest.raises(IssueRefused, match="is not one ci accepts"):
            grant_for(token(other, required_claims=required), settings)


def test_a_prefix_keeps_a_workload_from_taking_a_persons_name():
    settings = IdentitySettings()
    grant = grant_for(token({"name": "alice"}, principal_prefix="ci-"), settings)
    assert grant.principal == "ci-alice"


def test_required_claims_and_prefix_in_policies_toml():
    settings = load(
        '[[identity_providers]]\nname = "gh"\nissuer = "https://token.example.com"\n'
        'audience = "bastion"\nkind = "workload"\nprincipal_prefix = "gh-"\n'
        'required_claims = { repository = ["my-org/deploy"] }\n'
    )
    p = settings.providers[0]
    assert p.required_claims == (("repository", ("my-org/deploy",)),)
    assert p.principal_prefix == "gh-"
    with pytest.raises(ConfigError, match="list the values"):
        load(
            '[[identity_providers]]\nname = "gh"\nissuer = "https://t"\naudience = "b"\n'
            'kind = "workload"\nrequired_claims = { repository = [] }\n'
        )


def test_the_commented_examples_in_policies_toml_load():
    """The shipped file documents providers in comments: uncommented, they must load."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "policies.toml").read_text()
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("# [[identity_providers]]"):
            current = ["[[identity_providers]]"]
            blocks.append(current)
        elif current is not None and line.startswith("# ") and "=" in line:
            current.append(line[2:])
        elif current is not None and not line.startswith("#"):
            current = None
    assert len(blocks) == 2
    settings = load("\n".join("\n".join(b) for b in blocks) + "\n")
    assert [p.name for p in settings.providers] == ["corp", "gh"]
