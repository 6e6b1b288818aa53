"""Keys and OpenSSH certificates: generate, issue, and verify user certificates.

Groups travel in the user-certificate extension ``groups@bastion`` (comma-separated).
asyncssh knows only the standard extensions, so this module registers that one name
with its certificate codec; every other unknown extension is ignored, and unknown
*critical* options make the certificate unreadable, so it is refused.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncssh
from asyncssh.packet import SSHPacket, String
from asyncssh.public_key import (
    CERT_TYPE_HOST,
    CERT_TYPE_USER,
    SSHOpenSSHCertificate,
    SSHOpenSSHCertificateV01,
    _certificate_alg_map,
    decode_ssh_certificate,
)

from ..config import check_private_mode, parse_duration
from ..errors import AuthError, ConfigError
from ..identity import Identity

__all__ = [
    "GROUPS_EXTENSION",
    "TrustedCA",
    "check_private_mode",
    "generate_key",
    "issue_host_cert",
    "issue_user_cert",
    "load_private_key",
    "verify_user_cert",
    "write_private_key",
]

GROUPS_EXTENSION = "groups@bastion"


def _encode_groups(value: object) -> bytes:
    return String(",".join(value) if isinstance(value, (list, tuple)) else str(value))


def _decode_groups(packet) -> tuple[str, ...]:
    text = packet.get_string().decode("utf-8", errors="strict")
    return tuple(g for g in (part.strip() for part in text.split(",")) if g)


# Keep extensions sorted by name, as OpenSSH writes them.
SSHOpenSSHCertificateV01._user_extension_encoders = tuple(  # type: ignore[assignment]
    sorted(
        (*SSHOpenSSHCertificateV01._user_extension_encoders, (GROUPS_EXTENSION, _encode_groups)),
        key=lambda item: item[0],
    )
)
SSHOpenSSHCertificateV01._user_extension_decoders = {
    **SSHOpenSSHCertificateV01._user_extension_decoders,
    GROUPS_EXTENSION.encode(): _decode_groups,
}


@dataclass(frozen=True)
class TrustedCA:
    """A CA whose user certificates the bastion accepts."""

    name: str
    key: asyncssh.SSHKey
    default_groups: tuple[str, ...] = ()

    @property
    def public_data(self) -> bytes:
        return self.key.public_data


def generate_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def write_private_key(key: asyncssh.SSHKey, path: Path, comment: str = "") -> None:
    """Write a private key 0600 (created with that mode, never widened) and its .pub."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if comment:
        key.set_comment(comment)
    data = key.export_private_key("openssh")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    Path(f"{path}.pub").write_bytes(key.export_public_key("openssh"))


def load_private_key(path: Path) -> asyncssh.SSHKey:
    check_private_mode(path)
    try:
        return asyncssh.read_private_key(str(path))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise ConfigError(f"cannot read private key: {exc}", path=str(path)) from None


def parse_ttl(text: str) -> int:
    """'8h', '30m', '90s', '2d' or plain seconds -> seconds."""
    return parse_duration(text)


def issue_user_cert(
    ca_key: asyncssh.SSHKey,
    user_key: asyncssh.SSHKey,
    *,
    principals: list[str],
    groups: list[str],
    ttl: int,
    key_id: str = "",
    source_address: list[str] | None = None,
    permits: frozenset[str] = frozenset({"pty", "port-forwarding"}),
    serial: int | None = None,
) -> asyncssh.SSHCertificate:
    """A short-lived user certificate; backdated a minute for clock skew.

    ``permits`` names the permit-* extensions it carries: "port-forwarding" is needed
    for ``ssh -J``, "pty" for a terminal; the bastion decides what each allows."""
    now = int(time.time())
    unknown = permits - {"pty", "port-forwarding"}
    if unknown:
        raise ValueError(f"unknown permits: {', '.join(sorted(unknown))}")
    options: dict[str, object] = {f"permit-{name}": True for name in sorted(permits)}
    if groups:
        options[GROUPS_EXTENSION] = list(groups)
    if source_address:
        from ipaddress import ip_network

        options["source-address"] = [ip_network(a, strict=False) for a in source_address]
    return ca_key._generate_certificate(
        user_key,
        1,
        serial if serial is not None else secrets.randbits(63),
        CERT_TYPE_USER,
        key_id or principals[0],
        principals,
        now - 60,
        now + ttl,
        options,
        (),
        (),
    )


def issue_host_cert(
    ca_key: asyncssh.SSHKey, host_key: asyncssh.SSHKey, names: list[str], ttl: int = 366 * 86400
) -> asyncssh.SSHCertificate:
    now = int(time.time())
    return ca_key.generate_host_certificate(
        host_key,
        key_id=f"bastion host {names[0]}",
        principals=names,
        valid_after=now - 3600,
        valid_before=now + ttl,
    )


def _algorithm(key_data: bytes) -> bytes:
    """The key type named at the start of an SSH public key blob."""
    length = int.from_bytes(key_data[:4], "big")
    return key_data[4 : 4 + length] if 0 < length < 100 else b""


_PERMITS = ("pty", "port-forwarding", "agent-forwarding", "X11-forwarding", "user-rc")


def signature_algorithm(cert_blob: bytes) -> bytes:
    """The algorithm of the CA's signature on a certificate (b"" if unreadable)."""
    try:
        packet = SSHPacket(cert_blob)
        alg = packet.get_string()
        key_handler, cert_handler = _certificate_alg_map[alg]
        cert_handler._decode(packet, key_handler)  # type: ignore[attr-defined]
        packet.get_string()  # the signing key
        return SSHPacket(packet.get_string()).get_string()
    except Exception:  # noqa: BLE001 - an unreadable blob was refused already
        return b""


def verify_user_cert(
    key_data: bytes,
    username_principal: str | None,
    peer_addr: str,
    cas: list[TrustedCA],
) -> tuple[SSHOpenSSHCertificate, Identity]:
    """Check a presented user certificate; raise AuthError saying what to do."""
    try:
        cert = decode_ssh_certificate(key_data)
    except asyncssh.KeyImportError as exc:
        if _algorithm(key_data).endswith(b"-cert-v01@openssh.com"):
            raise AuthError(
                f"certificate refused ({exc}): it has an unknown critical option, a bad "
                "signature or an unsupported key type"
            ) from None
        raise AuthError(
            "a plain key is not accepted here: log in with `bastion-cli login` "
            "or ask an administrator for a certificate"
        ) from None
    if not isinstance(cert, SSHOpenSSHCertificate):
        raise AuthError("only OpenSSH user certificates are accepted")
    ca = next((c for c in cas if c.public_data == cert.signing_key.public_data), None)
    if ca is None:
        raise AuthError(
            "certificate is signed by a CA this bastion does not trust: "
            "get a new one with `bastion-cli login`"
        )
    if cert._cert_type != CERT_TYPE_USER:
        raise AuthError("a host certificate cannot log in")
    now = time.time()
    if now < cert._valid_after:
        raise AuthError("certificate is not valid yet (check the clock)")
    if now >= cert._valid_before:
        raise AuthError("certificate expired: run `bastion-cli login` for a fresh one")
    if not cert.principals:
        raise AuthError("certificate names no principal")
    if username_principal is not None and username_principal not in cert.principals:
        raise AuthError(
            f"user name {username_principal!r} is not a principal of your certificate "
            f"(it is for {', '.join(cert.principals)})"
        )
    allowed = cast(list, cert.options.get("source-address") or [])
    if allowed:
        from ipaddress import ip_address

        ip = ip_address(peer_addr)
        if not any(ip in net for net in allowed):
            raise AuthError(f"certificate is not valid from address {peer_addr}")
    if cert.options.get("force-command"):
        raise AuthError("certificates with force-command are not supported by this bastion")
    if signature_algorithm(key_data) == b"ssh-rsa":
        raise AuthError(
            "certificate is signed with ssh-rsa (RSA with SHA-1), which is refused as OpenSSH "
            "refuses it since 8.2: re-sign it with rsa-sha2-512 or an ed25519 CA"
        )
    user = username_principal or cert.principals[0]
    groups = tuple(cast(tuple, cert.options.get(GROUPS_EXTENSION, ()))) or ca.default_groups
    identity = Identity(
        user=user,
        groups=groups,
        key_id=cert._key_id,
        serial=cert._serial,
        ca=ca.name,
        fingerprint=cert.key.get_fingerprint(),
        valid_before=cert._valid_before,
        valid_after=cert._valid_after,
        principals=tuple(cert.principals),
        permits=frozenset(name for name in _PERMITS if cert.options.get(f"permit-{name}")),
    )
    return cert, identity


__all__ += ["CERT_TYPE_HOST", "parse_ttl"]
