"""Guards for performance shortcuts that are only safe under stated conditions."""

from __future__ import annotations

from bastion.ssh.tuning import ENCRYPTION_ALGS


def test_only_aead_ciphers_are_offered():
    """The server skips asyncssh's empty IGNORE packets, a defence needed only by CBC
    modes; adding a non-AEAD cipher here must revisit BastionConnection.send_packet."""
    assert ENCRYPTION_ALGS
    assert all(
        alg.endswith("-gcm@openssh.com") or alg.startswith("chacha20-poly1305")
        for alg in ENCRYPTION_ALGS
    )
