"""Certificate checks, below the SSH layer: every refusal says what to do."""

from __future__ import annotations

import base64
import time

import pytest

from bastion.errors import AuthError
from bastion.ssh.certs import (
    TrustedCA,
    generate_key,
    issue_user_cert,
    parse_ttl,
    verify_user_cert,
)

CA = generate_key()
CAS = [TrustedCA("test CA", CA.convert_to_public(), ())]


def _cert(**kw):
    key = generate_key()
    args = {"principals": ["alice"], "groups": ["ops", "dev"], "ttl": 600}
    args.update(kw)
    return issue_user_cert(CA, key, **args)


def test_valid_certificate_gives_identity():
    cert, identity = verify_user_cert(_cert().public_data, "alice", "127.0.0.1", CAS)
    assert identity.user == "alice" and identity.groups == ("ops", "dev")
    assert identity.ca == "test CA"


def test_direct_mode_uses_first_principal():
    _, identity = verify_user_cert(
        _cert(principals=["bob", "b2"]).public_data, None, "127.0.0.1", CAS
    )
    assert identity.user == "bob"


def test_plain_key_refused():
    with pytest.raises(AuthError, match="plain key"):
        verify_user_cert(generate_key().public_data, "alice", "127.0.0.1", CAS)


def test_unknown_ca_refused():
    other = issue_user_cert(generate_key(), generate_key(), principals=["alice"], groups=[], ttl=60)
    with pytest.raises(AuthError, match="does not trust"):
        verify_user_cert(other.public_data, "alice", "127.0.0.1", CAS)


def test_expired_and_not_yet_valid_refused():
    now = int(time.time())
    key = generate_key()
    old = CA.generate_user_certificate(
        key, "a", principals=["alice"], valid_after=now - 100, valid_before=now - 10
    )
    with pytest.raises(AuthError, match="expired"):
        verify_user_cert(old.public_data, "alice", "127.0.0.1", CAS)
    future = CA.generate_user_certificate(
        key, "a", principals=["alice"], valid_after=now + 600, valid_before=now + 900
    )
    with pytest.raises(AuthError, match="not valid yet"):
        verify_user_cert(future.public_data, "alice", "127.0.0.1", CAS)


def test_principal_mismatch_refused():
    with pytest.raises(AuthError, match="not a principal"):
        verify_user_cert(_cert().public_data, "root", "127.0.0.1", CAS)


def test_source_address_enforced():
    cert = _cert(source_address=["10.0.0.0/8"])
    verify_user_cert(cert.public_data, "alice", "10.1.2.3", CAS)
    with pytest.raises(AuthError, match="not valid from address"):
        verify_user_cert(cert.public_data, "alice", "127.0.0.1", CAS)


def test_force_command_refused():
    key = generate_key()
    cert = CA.generate_user_certificate(key, "a", principals=["alice"], force_command="ls")
    with pytest.raises(AuthError, match="force-command"):
        verify_user_cert(cert.public_data, "alice", "127.0.0.1", CAS)


def test_host_certificate_cannot_log_in():
    cert = CA.generate_host_certificate(generate_key(), "h", principals=["alice"])
    with pytest.raises(AuthError):
        verify_user_cert(cert.public_data, "alice", "127.0.0.1", CAS)


def test_tampered_certificate_refused():
    blob = bytearray(_cert().public_data)
    blob[-80] ^= 1  # inside the signed part
    with pytest.raises(AuthError):
        verify_user_cert(bytes(blob), "alice", "127.0.0.1", CAS)


def test_default_groups_of_a_trusted_ca():
    ext_ca = generate_key()
    cas = [*CAS, TrustedCA("step-ca", ext_ca.convert_to_public(), ("staff",))]
    cert = ext_ca.generate_user_certificate(generate_key(), "a", principals=["alice"])
    _, identity = verify_user_cert(cert.public_data, "alice", "127.0.0.1", cas)
    assert identity.groups == ("staff",) and identity.ca == "step-ca"


def test_groups_extension_is_readable_by_openssh(tmp_path):
    import subprocess

    path = tmp_path / "k-cert.pub"
    _cert().write_certificate(str(path))
    out = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "groups@bastion" in out and "alice" in out


@pytest.mark.parametrize(
    ("text", "seconds"), [("8h", 28800), ("30m", 1800), ("90", 90), ("2d", 172800)]
)
def test_parse_ttl(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "0", "soon"])
def test_parse_ttl_rejects(text):
    with pytest.raises(ValueError):
        parse_ttl(text)


def test_unknown_critical_option_refused(tmp_path):
    """A certificate made by ssh-keygen with a critical option we do not know."""
    import subprocess

    from bastion.ssh.certs import write_private_key

    write_private_key(CA, tmp_path / "ca")
    write_private_key(generate_key(), tmp_path / "user")
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-s",
            str(tmp_path / "ca"),
            "-I",
            "id",
            "-n",
            "alice",
            "-O",
            "critical:verify-everything@example.com=yes",
            str(tmp_path / "user.pub"),
        ],
        check=True,
        capture_output=True,
    )
    blob = base64.b64decode((tmp_path / "user-cert.pub").read_text().split()[1])
    with pytest.raises(AuthError, match="critical option"):
        verify_user_cert(blob, "alice", "127.0.0.1", CAS)
