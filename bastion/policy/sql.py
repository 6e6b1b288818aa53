"""SQL (and redis/mongo commands) passed to database clients: matching text and escapes.

The SQL a client will run comes from ``-c``/``-e``/``--command=``/``--eval``, here-docs,
here-strings and literal pipes (``echo 'DROP ...' | psql``), collected in ``normalize``.
For matching, ``match_text`` gives two readings joined: the text as written and the text
with comments removed (``drop/**/database``), both lowercased with whitespace collapsed.
Stripping comments alone could hide a statement behind a ``--`` inside a string, so both
are kept and a rule matching either one matches.

Client shell escapes (psql ``\\!`` and ``\\o |cmd``, mysql ``system``, sqlite ``.shell``,
``COPY ... PROGRAM '...'``) are returned as shell command lines to be parsed like any other.

Limits: SQL from a file (``psql -f``, ``< dump.sql``) or from an unknown pipe is not seen;
dynamic SQL built inside the database (``EXECUTE format(...)``) is matched only as text.
MySQL version comments (``/*!50000 DROP */``) are kept as code.
"""

from __future__ import annotations

import re

__all__ = ["match_text", "shell_escapes"]

_BLOCK = re.compile(r"/\*(?![!+]).*?\*/", re.S)
_LINE = re.compile(r"(--|#)[^\n]*")
_VERSIONED = re.compile(r"/\*[!+]\d*|\*/")
_SPACE = re.compile(r"\s+")

_ESCAPES = [
    re.compile(r"(?m)\\!\s*([^\n]*)"),  # psql / mysql \! cmd
    re.compile(r"(?m)\\[ogw]\s*\|\s*([^\n]*)"),  # psql \o |cmd
    re.compile(r"(?im)(?:^|;)\s*(?:system|\.shell|\.system)\s+([^\n;]*)"),
    re.compile(r"(?is)\bprogram\s+'((?:[^']|'')*)'"),  # COPY ... PROGRAM 'cmd'
    # sqlite .output |cmd, .once '|cmd' (its own quotes around the pipe)
    re.compile(r"""(?im)^\s*\.(?:output|once)\s+(?:-\S+\s+)*['"]?\|\s*([^\n]*?)['"]?\s*$"""),
]


def match_text(sql: str) -> str:
    """Lowercased SQL as written, then again without comments, for rule regexes."""
    raw = _SPACE.sub(" ", _VERSIONED.sub(" ", sql)).strip().lower()
    stripped = _BLOCK.sub(" ", sql)
    stripped = _LINE.sub(" ", stripped)
    stripped = _SPACE.sub(" ", _VERSIONED.sub(" ", stripped)).strip().lower()
    return raw if raw == stripped else raw + "\n" + stripped


def shell_escapes(sql: str) -> list[str]:
    """Shell command lines a database client (or server) would run from this text."""
    if not sql:
        return []
    found: list[str] = []
    for pat in _ESCAPES:
        for m in pat.finditer(sql):
            found.append(m.group(1).replace("''", "'"))
    return found
