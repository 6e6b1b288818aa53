"""Is an exec request just "a shell" (``ssh host bash``, ``ssh host sh -s``)?

Such a request gets the bastion's own shell (with a terminal) or script reader (without
one) instead of a shell on the target that would run unseen input. Only the plain forms
count: ``bash``/``sh`` (bare or in /bin, /usr/bin) with no options but ``-s``, ``-i``,
``-l``, ``--login`` and no arguments; anything else (``bash -c ...``, ``bash script``,
``sudo -i``) is an ordinary command for the policy to decide.
"""

from __future__ import annotations

import shlex

__all__ = ["is_bare_shell"]

_SHELLS = frozenset({"bash", "sh", "/bin/bash", "/bin/sh", "/usr/bin/bash", "/usr/bin/sh"})
_OPTIONS = frozenset({"-s", "-i", "-l", "--login", "-il", "-li", "-is", "-si", "-ls", "-sl"})


def is_bare_shell(command: str) -> bool:
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError:
        return False
    if not words or words[0] not in _SHELLS:
        return False
    if any(ch in command for ch in ";&|<>`$(){}\n"):
        return False
    return all(word in _OPTIONS for word in words[1:])
