"""Algorithm and window choices, in one place so benchmarks can see what changed.

AES-GCM first: OpenSSL's AES-NI code through ``cryptography`` is the cheapest AEAD
asyncssh can use, and the bastion pays for encryption on three hops (outer, inner,
upstream) where a stock ProxyJump host pays for one.
"""

from __future__ import annotations

__all__ = ["ENCRYPTION_ALGS", "MAX_PKTSIZE", "WINDOW", "common_options"]

# Only AES-GCM, on purpose: SSH lets the client's preference win, and OpenSSH prefers
# chacha20-poly1305 and then aes-ctr with a separate MAC, both several calls per packet
# in asyncssh where AES-GCM is one (every OpenSSH since 6.2 speaks AES-GCM). Measured:
# see the README's performance section.
ENCRYPTION_ALGS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
# Channel window and largest packet we accept. OpenSSH sends at most 32 KiB per packet
# on session channels; a larger window keeps a fast stream from stalling on adjusts.
WINDOW = 4 * 1024 * 1024
MAX_PKTSIZE = 32768


def common_options() -> dict[str, object]:
    return {"encryption_algs": ENCRYPTION_ALGS, "compression_algs": ["none"]}
