"""Is the target asking for a password right now? (keystrokes are then not recorded)

A heuristic on the last line the target printed, since the bastion cannot see the
target terminal's echo flag: a line that ends in ``password:``, ``passphrase ...:``,
``PIN:``, ``token:`` or ``verification code:`` (any case, also ``[sudo] password for
x:`` and ``Enter passphrase for key '...':``) means the next keys up to Enter are a
secret. Limits: a program that asks with other words, or draws its own prompt with
cursor moves, is not seen; a program that prints such a line for another reason makes
one line of keystrokes go unrecorded.
"""

from __future__ import annotations

import re

__all__ = ["PasswordWatch"]

_ASKING = re.compile(
    rb"(pass(word|phrase|code)|\bpin\b|token|verification code|one-time code|otp)"
    rb"[^\n]{0,80}:\s*$",
    re.IGNORECASE,
)
_TAIL = 512


class PasswordWatch:
    """Follows output and input; ``asking`` is true while a secret is being typed."""

    def __init__(self) -> None:
        self._tail = b""
        self.asking = False

    def output(self, data: bytes) -> None:
        self._tail = (self._tail + data)[-_TAIL:]
        last = self._tail.replace(b"\r", b"\n").rsplit(b"\n", 1)[-1]
        self.asking = bool(_ASKING.search(last))

    def input(self, data: bytes) -> bool:
        """Whether ``data`` may be recorded; Enter ends a secret."""
        if not self.asking:
            return True
        if b"\r" in data or b"\n" in data:
            self.asking = False
            self._tail = b""
        return False

    def reset(self) -> None:
        self._tail = b""
        self.asking = False
