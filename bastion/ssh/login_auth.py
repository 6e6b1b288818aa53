"""Authentication steps that come from OIDC login: the issuance user's key check and
the revocation check every certificate passes, outer and inner connections alike.

Kept apart from ``server.py`` so the listener only calls one function per step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import asyncssh
from asyncssh.public_key import decode_ssh_public_key

from ..errors import AuthError, BastionError
from ..identity import Identity
from ..identity.oidc import TokenRefused
from ..identity.revocation import revocation_reason
from .login import login_identity

if TYPE_CHECKING:
    from .server import BastionServer

__all__ = [
    "check_login_key",
    "kbdint_challenge",
    "kbdint_response",
    "kbdint_supported",
    "live_identities",
    "plain_key_auth",
    "plain_login_enabled",
    "revocation_refusal",
]


def check_login_key(key_data: bytes) -> tuple[asyncssh.SSHKey, Identity]:
    """The key a ``bastion-login`` client wants signed: a plain public key."""
    try:
        key = decode_ssh_public_key(key_data)
    except asyncssh.KeyImportError:
        raise AuthError(
            "bastion-login takes the plain key to be certified, not a certificate "
            "(bastion-cli login does this for you)"
        ) from None
    return key, login_identity(key)


async def revocation_refusal(owner: BastionServer, username: str, checked: Any) -> bool:
    """True if ``checked`` may authenticate; else tells the client why (audited)."""
    if checked.issuing:
        return True
    reason = await revocation_reason(owner.services.store, checked.identity)
    if not reason:
        return True
    owner._refuse(username, reason, certificate=True)
    return False


def live_identities(services: Any) -> list[tuple[Identity, Any]]:
    """(identity, close) for every authenticated connection, for the revocation watcher;
    ``close`` disconnects with the sentence (ssh prints it) and audits it."""
    found = []
    for conn in list(services.connections):
        owner = getattr(conn, "_owner", None)
        identity = getattr(owner, "identity", None)
        if identity is None or getattr(owner, "issuing", False):
            continue

        def close(reason: str, conn: Any = conn, owner: Any = owner) -> None:
            owner._audit_refusal("connection", reason)
            try:
                conn.disconnect(asyncssh.DISC_BY_APPLICATION, f"bastion: {reason}")
            except (OSError, asyncssh.Error):
                conn.abort()

        found.append((identity, close))
    return found


# ---- plain ssh, nothing installed: keyboard-interactive device-flow login ----
#
# A client with no certificate offers its plain key: the bastion says the key would do
# (PK_OK), so the client signs, proving it holds the key, and is then refused unless
# the key is bound. It goes on to keyboard-interactive, where the bastion shows the
# provider's device-flow URL and code; once the person has signed in, the bastion
# signs a certificate for the proven key and keeps it, bound to that key, for the
# certificate's lifetime: this connection, its jump and later connections with the
# same key authenticate through that certificate (expiry and revocation checked as for
# any certificate). OpenSSH shows the prompt; clients without keyboard-interactive
# (or with BatchMode) simply fail to log in.


def plain_login_enabled(owner: BastionServer) -> bool:
    services = owner.services
    return services.issuer is not None and bool(services.config.identity.ssh_login_provider)


async def plain_key_auth(
    owner: BastionServer, username: str, key_data: bytes, signed: bytes, signature: bytes
) -> bool:
    """Public-key authentication with a plain key, when plain ssh login is on."""
    from .login import LOGIN_USER

    if username == LOGIN_USER:
        checked = owner.check_key(username, key_data)
        if checked is None or not signed:
            return checked is not None
        if not checked.key.verify(signed, signature):
            return False
        owner.accept(username, checked)
        return True
    try:
        key = decode_ssh_public_key(key_data)
    except asyncssh.KeyImportError:
        return False
    line = await owner.services.store.bound_certificate(key.get_fingerprint(), time.time())
    if not signed:  # a query: outer connections prove every key; inner ones need a binding
        return line is not None or owner.parent is None
    if not key.verify(signed, signature):
        return False
    if line is not None and await accept_certificate(owner, username, line):
        return True
    if owner.parent is None and len(owner.proven_keys) < 8:
        owner.proven_keys.append(key)  # a sign-in may bind it (again, if its binding lapsed)
        owner._refuse(
            username,
            f"key {key.get_fingerprint()} is not signed in: sign in below "
            "(keyboard-interactive, from a terminal) or run `bastion-cli login`",
            certificate=False,
        )
    return False


async def accept_certificate(owner: BastionServer, username: str, line: str) -> bool:
    """Authenticate with a stored certificate whose key the client proved to hold."""
    try:
        blob = asyncssh.import_certificate(line).public_data
    except (asyncssh.KeyImportError, ValueError):
        return False
    checked = owner.check_key(username, blob)
    if checked is None or not await revocation_refusal(owner, username, checked):
        return False
    owner.accept(username, checked)
    return True


def kbdint_supported(owner: BastionServer) -> bool:
    return owner.parent is None and plain_login_enabled(owner)


async def kbdint_challenge(owner: BastionServer, username: str) -> Any:
    """Start the device flow and show its URL and code (one prompt: press Enter)."""
    from ..identity.login import DeviceFlow, ProviderInfo
    from .control import RESERVED_USERS
    from .login import LOGIN_USER

    if username in RESERVED_USERS or username == LOGIN_USER:
        return False
    if not owner.proven_keys:
        owner._refuse(
            username,
            "sign-in needs an SSH key to bind: create one with `ssh-keygen -t ed25519` and "
            "connect again",
            certificate=False,
        )
        return False
    issuer = owner.services.issuer
    if issuer is None or not issuer.sign_ins.allow(owner.peer):
        owner._refuse(
            username, "too many sign-ins from your address; wait and try again", certificate=False
        )
        return False
    settings = owner.services.config.identity
    provider = settings.provider(settings.ssh_login_provider)
    assert provider is not None
    info = ProviderInfo(provider.name, provider.issuer, provider.client_id, provider.scopes)
    try:
        owner.device_flow = await DeviceFlow(info).start()
    except BastionError as exc:
        owner._refuse(username, f"cannot start the sign-in now: {exc}", certificate=False)
        return False
    flow = owner.device_flow
    instructions = f"{flow.instructions()}\r\nThen press Enter here.\r\n"
    return "bastion sign-in", instructions, "", (("Press Enter once signed in: ", True),)


async def kbdint_response(owner: BastionServer, username: str) -> bool:
    """Wait for the sign-in, certify and bind the proven key, authenticate with it."""
    flow = owner.device_flow
    issuer = owner.services.issuer
    if flow is None or issuer is None or not owner.proven_keys:
        return False
    owner.device_flow = None
    key = owner.proven_keys[0]
    deadline = time.monotonic() + owner.services.config.server.login_timeout
    try:
        tokens = await flow.wait(deadline)
        verified = await issuer.verifier.verify(tokens.id_token, provider=flow.provider.name)
        issued = await issuer.issue(
            tokens.id_token,
            public_key=key.public_data,
            fingerprint=key.get_fingerprint(),
            verified=verified,
            source="ssh-login",
            conn=owner.label,
        )
    except TokenRefused as exc:
        owner.services.audit.write(
            "certificate", conn=owner.label, result="refused", reason=str(exc), source="ssh-login"
        )
        owner._refuse(username, f"sign-in refused: {exc}", certificate=True)
        return False
    except BastionError as exc:
        owner._refuse(username, f"sign-in failed: {exc}", certificate=True)
        return False
    if issued.grant.principal != username and "@" not in username:
        owner._refuse(
            username,
            f"you signed in as {issued.grant.principal}, not {username}: "
            f"connect as {issued.grant.principal}@BASTION",
            certificate=True,
        )
        return False
    await owner.services.store.bind_key(
        key.get_fingerprint(), issued.certificate, float(issued.valid_before)
    )
    until = time.strftime("%H:%M UTC", time.gmtime(issued.valid_before))
    try:
        assert owner.conn is not None
        owner.conn.send_auth_banner(
            f"bastion: signed in as {issued.grant.principal} (groups "
            f"{', '.join(issued.grant.groups) or 'none'}); key {key.get_fingerprint()} "
            f"works without a browser until {until}\r\n"
        )
    except (OSError, asyncssh.Error, AssertionError):
        pass
    return await accept_certificate(owner, username, issued.certificate)
