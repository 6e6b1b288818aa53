"""Token verification against a local issuer served over loopback HTTP: each refusal
names its reason, and only the provider's published asymmetric keys are accepted."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from bastion.identity.oidc import TokenRefused, Verifier
from bastion.identity.settings import IdentitySettings, ProviderSettings

from .issuer import LocalIssuer, hs256_with_public_key, rsa_key, tamper, unsigned_token


def provider(url: str, **changes: object) -> ProviderSettings:
    base = ProviderSettings(
        name="ci",
        issuer=url,
        client_id="",
        audience="bastion",
        username_claim="name",
        groups_claim="groups",
        extra_groups=(),
        allowed_groups=(),
        certificate_ttl=3600,
        kind="workload",
        algorithms=("RS256", "ES256"),
        scopes=("openid",),
        permit_pty_groups=(),
        permit_port_forwarding_groups=("*",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def issuer():
    with LocalIssuer() as running:
        yield running


def verify(settings: IdentitySettings, token: str, **kw: object):
    return asyncio.run(Verifier(settings).verify(token, **kw))  # type: ignore[arg-type]


def refused(settings: IdentitySettings, token: str, **kw: object) -> str:
    with pytest.raises(TokenRefused) as caught:
        verify(settings, token, **kw)
    return str(caught.value)


def test_a_good_token_passes(issuer):
    settings = IdentitySettings(providers=(provider(issuer.url),))
    verified = verify(settings, issuer.token())
    assert verified.subject == "system:serviceaccount:ci:deployer"
    assert verified.provider.name == "ci"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda i: i.token(exp=int(time.time()) - 3600), "expired"),
        (lambda i: i.token(aud="another-service"), "another audience"),
        (lambda i: i.token(iss="https://evil.example.com"), "not trusted here"),
        (lambda i: unsigned_token(i.claims()), "unsigned (alg none)"),
        (lambda i: hs256_with_public_key(i, i.claims()), "HMAC-signed"),
        (lambda i: tamper(i.token(), name="root"), "signature is not valid"),
        (lambda i: tamper(i.token(), groups=["admins"]), "signature is not valid"),
        (lambda i: i.token(nbf=int(time.time()) + 3600), "not valid yet"),
        (lambda i: i.token(iat=int(time.time()) + 3600), "issued in the future"),
        (lambda i: i.token(exp=None), "lacks a required claim (exp)"),
        (lambda i: i.token(sub=None), "lacks a required claim (sub)"),
        (lambda i: i.token(alg="PS256"), "not allowed for ci"),
        (lambda i: i.token(kid="nobody"), "does not publish"),
        (lambda i: "not-a-jwt", "not a signed JWT"),
        (lambda i: "a.b.c.d.e", "not a signed JWT"),
    ],
)
def test_bad_tokens_are_refused_with_their_reason(issuer, make, expected):
    settings = IdentitySettings(providers=(provider(issuer.url),))
    assert expected in refused(settings, make(issuer))


def test_a_foreign_key_with_a_known_kid_is_refused(issuer):
    settings = IdentitySettings(providers=(provider(issuer.url),))
    foreign = rsa_key("foreign", "k1")
    assert "signature is not valid" in refused(settings, issuer.token(key=foreign))


def test_leeway_accepts_small_clock_skew_only(issuer):
    settings = IdentitySettings(leeway_seconds=60, providers=(provider(issuer.url),))
    verify(settings, issuer.token(exp=int(time.time()) - 30))
    assert "expired" in refused(settings, issuer.token(exp=int(time.time()) - 90))


def test_nonce_must_match_when_the_flow_has_one(issuer):
    settings = IdentitySettings(providers=(provider(issuer.url),))
    verify(settings, issuer.token(nonce="n-123"), nonce="n-123")
    assert "nonce" in refused(settings, issuer.token(nonce="n-123"), nonce="other")
    assert "nonce" in refused(settings, issuer.token(), nonce="n-123")


def test_another_client_azp_is_refused(issuer):
    settings = IdentitySettings(providers=(provider(issuer.url, client_id="bastion"),))
    assert "another client" in refused(settings, issuer.token(azp="someone-else"))


def test_a_named_provider_must_be_the_tokens_issuer(issuer):
    other = provider("https://login.example.com", name="corp")
    settings = IdentitySettings(providers=(provider(issuer.url), other))
    assert "not provider corp's issuer" in refused(settings, issuer.token(), provider="corp")


def test_unknown_kid_refreshes_once_after_rotation_and_is_rate_limited(issuer):
    """A kid the cached JWKS lacks triggers one refresh; within jwks_refresh_seconds
    another unknown kid does not fetch again."""
    settings = IdentitySettings(jwks_refresh_seconds=3600, providers=(provider(issuer.url),))
    clock = [1000.0]
    verifier = Verifier(settings, monotonic=lambda: clock[0])

    async def run() -> None:
        await verifier.verify(issuer.token())  # first fetch
        assert issuer.fetches == 1
        future = rsa_key("future", "k2")
        with pytest.raises(TokenRefused, match="does not publish"):
            await verifier.verify(issuer.token(key=future))  # not rotated yet
        assert issuer.fetches == 1  # rate limit: refreshed less than an hour ago
        clock[0] += 3601
        issuer.keys.append(future)  # the provider rotates
        verified = await verifier.verify(issuer.token(key=future))
        assert verified.subject
        assert issuer.fetches == 2
        with pytest.raises(TokenRefused, match="does not publish"):
            await verifier.verify(issuer.token(kid="made-up"))
        assert issuer.fetches == 2  # a flood of made-up kids costs no fetches

    asyncio.run(run())


def test_rotated_key_is_refused_before_and_accepted_after_rotation(issuer):
    settings = IdentitySettings(jwks_refresh_seconds=0, providers=(provider(issuer.url),))
    verifier = Verifier(settings)
    new = rsa_key("new", "k2")

    async def run() -> None:
        with pytest.raises(TokenRefused, match="does not publish"):
            await verifier.verify(issuer.token(key=new))
        issuer.keys.append(new)
        await verifier.verify(issuer.token(key=new))

    asyncio.run(run())


def test_symmetric_keys_in_a_jwks_are_never_used(issuer):
    from joserfc.jwk import OctKey

    secret = OctKey.generate_key(256, parameters={"kid": "shared"})
    issuer.keys.append(secret)
    settings = IdentitySettings(providers=(provider(issuer.url),))
    token = issuer.token(key=secret, alg="HS256")
    assert "HMAC-signed" in refused(settings, token)


def test_an_unreachable_provider_refuses(issuer):
    settings = IdentitySettings(providers=(provider("http://127.0.0.1:9"),))
    token = issuer.token(iss="http://127.0.0.1:9")
    assert "cannot check the token now" in refused(settings, token)
