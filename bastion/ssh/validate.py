"""Checks on every string a client sends that could go upstream. No asyncssh here.

A target's sshd drops the whole connection on some malformed strings (a NUL byte in a
variable or terminal type), and that connection is shared by other users' sessions: so
nothing a client sends reaches a target unchecked, and a bad string fails only the
channel that sent it.

Environment: only locale variables are passed on (the exact names ``LANG``, ``LC_ALL``
and the ``LC_*`` categories), and only with values naming a UTF-8 locale or C/POSIX:
under a multi-byte locale such as Shift-JIS or GBK, bash reads some bytes of a command
differently from the bastion's reader. ``BASTION_*`` variables are options for the
bastion itself and never passed on. Everything else is dropped, as OpenSSH does without
``AcceptEnv``. Counts and sizes are bounded per channel (``[limits]``).
"""

from __future__ import annotations

import re

__all__ = [
    "LOCALE_NAMES",
    "clip",
    "forwardable_env",
    "is_bastion_option",
    "locale_value_ok",
    "signal_name_ok",
    "term_type_ok",
]

LOCALE_NAMES = frozenset(
    {
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "LC_COLLATE",
        "LC_MESSAGES",
        "LC_MONETARY",
        "LC_NUMERIC",
        "LC_TIME",
        "LC_ADDRESS",
        "LC_IDENTIFICATION",
        "LC_MEASUREMENT",
        "LC_NAME",
        "LC_PAPER",
        "LC_TELEPHONE",
    }
)
_LOCALE = re.compile(
    r"(?:C|POSIX|C\.(?:UTF-8|utf8|UTF8|utf-8)"
    r"|[a-z]{2,3}(?:_[A-Z]{2})?\.(?:UTF-8|utf8|UTF8|utf-8)(?:@[A-Za-z0-9]{1,16})?)"
)
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_SIGNAL = re.compile(r"[A-Z][A-Z0-9]{0,15}")
_OPTION = re.compile(r"BASTION_[A-Z_]{1,32}")


def locale_value_ok(value: str) -> bool:
    """A UTF-8 locale (``en_US.UTF-8``, ``C.UTF-8``) or C/POSIX; nothing else."""
    return _LOCALE.fullmatch(value) is not None


def is_bastion_option(name: str) -> bool:
    """``BASTION_WAIT`` and friends: read by the bastion, never passed on."""
    return _OPTION.fullmatch(name) is not None


def forwardable_env(env: dict[str, str]) -> dict[str, str]:
    """The variables that may go to the target (locale ones with safe values)."""
    return {k: v for k, v in env.items() if k in LOCALE_NAMES and locale_value_ok(v)}


def term_type_ok(term: str) -> bool:
    """A terminal type like ``xterm-256color``: letters, digits, ``._+-``, short; or
    empty, as OpenSSH sends it when the client has no ``TERM`` (Ansible in CI)."""
    return term == "" or _TERM.fullmatch(term) is not None


def signal_name_ok(name: str) -> bool:
    return _SIGNAL.fullmatch(name) is not None


def clip(text: object, limit: int = 200) -> str:
    """A client-controlled string made safe for one log line: bounded, no controls."""
    s = str(text)
    if len(s) > limit:
        s = s[:limit] + f"...({len(s) - limit} more)"
    return (
        s.encode("unicode_escape", "backslashreplace").decode("ascii") if not s.isprintable() else s
    )
