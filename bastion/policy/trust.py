"""What a reading may take for granted about values only known at run time, and when
it may not.

A *trusted reading* (``shparse.parse(trust=True)``) reads ``$HOME`` as ``~`` and words
whose expansions print only digits as ``safe``; it is given only where nothing in the
input can change HOME or IFS or redefine the printers (``trusted``). The readings that
trust run-time values (digit printers in arithmetic, the names arithmetic reads, a
daemon's pid file) are voided by ``run_time_trust`` when the input may change them.
"""

from __future__ import annotations

import re

from .arith import ArithNames
from .normalize import UNKNOWN_TAGS, Command

__all__ = ["trusted", "run_time_trust"]

#: Expansions a trusted reading knows more about (see ``shparse.parse``).
_TRUST_HINT = re.compile(
    r"\$\{?(HOME|USER|LOGNAME)\b|[$`]\(?\s*(date|id|nproc|pgrep|pidof|hostname|whoami|uname)\b"
    r"|\$[$?#]|\$\{[#$?]|\$\(\("
    r"|\$\{?(E?UID|PPID)\b"
)
#: An assignment of a non-empty IFS (``while IFS= read`` splits nothing).
_SETS_IFS = re.compile(r"\bIFS\+?=(?![\s;&|)]|$)")
_VAR_REFS = re.compile(r"\$(HOME|USER|LOGNAME)(?![A-Za-z0-9_])|\$\{(HOME|USER|LOGNAME)\}")
#: Commands that can change HOME/USER or what date/id/nproc print in this shell: with any
#: of them the strict reading stands. (Wrappers that start a program in another
#: environment, sudo or ssh, only lose the trusted reading for strings they run: see
#: normalize._NEW_ENV.)
_ENV_CHANGERS = frozenset(
    "unset declare typeset local export readonly read mapfile readarray printf getopts "
    "eval source . alias unalias machinectl newgrp hash enable builtin let wait coproc "
    "trap".split()
)
#: Builtins that can define functions or aliases, or point a name at another file, from
#: text not read as a definition here: arithmetic then trusts no program's digits.
_REDEFINERS = frozenset({"eval", "alias", "hash", "enable", "source", "."})
_LOOP = re.compile(r"\b(?:for|while|until|select)\b")


def run_time_trust(
    command: str, cmds: list[Command], digits: set[str], names: ArithNames
) -> str | None:
    """Why a run-time value the readings trusted cannot be vouched for, if it cannot:
    a name arithmetic reads that the input sets from run-time text, a pid file the
    input may change before the kill reads it, a digit printer or ``cat`` it may
    redefine."""
    if unsafe := names.unsafe():
        return (
            f"arithmetic reads {', '.join(unsafe[:3])}, which this input sets from run-time "
            "text (bash runs a[$(cmd)] hidden in it)"
        )
    printers = set(digits)
    if any("pid-file" in c.tags for c in cmds):
        printers.add("cat")  # kill $(cat /run/x.pid) trusts cat to print the id
        if _LOOP.search(command) or not _pid_file_read_first(cmds):
            return "cannot vouch for the pid file: the input may change it first"
    if printers and any(c.program in _REDEFINERS or _redefines(c.via, printers) for c in cmds):
        return f"trusts what {', '.join(sorted(printers))} print, which this input may redefine"
    return None


def _pid_file_read_first(cmds: list[Command]) -> bool:
    """Whether nothing runs before the first kill that trusts a pid file but its own
    reading (``cat`` of the file, and its ``pkill NAME`` reading): no command of the input
    can have written the file (by a writer we do not know, or through a link) first."""
    for c in cmds:
        if "pid-file" in c.tags:
            return True
        own = (c.program == "cat" and all(w.value.endswith(".pid") for w in c.words)) or (
            c.program == "pkill" and "as kill" in c.via
        )
        if (c.program or c.assigns) and not own:
            return False  # IFS=2 before it splits the id into 1 and 34
    return True


_FUNCTION_OF = re.compile(r"\bin function (\S+)")


def _redefines(via: str, names: set[str]) -> bool:
    """Whether a command runs in the body of a function named like one of ``names``."""
    return any(m.group(1) in names for m in _FUNCTION_OF.finditer(via))


_REDEFINED = re.compile(r"\bin function (date|id|nproc|pgrep|pidof|hostname|whoami|uname)\b")


def trusted(command: str, cmds: list[Command]) -> bool:
    """Whether ``command`` may be read trusting $HOME, $USER, $LOGNAME and digit-only
    expansions: it uses one, never names those variables otherwise, and runs nothing that
    could change them or redefine ``date``/``id``/``nproc`` (judged on the strict reading,
    which sees every command)."""
    if not _TRUST_HINT.search(command):
        return False
    rest = _VAR_REFS.sub("", command)
    if "HOME" in rest or "USER" in rest or "LOGNAME" in rest or "${!" in command:
        return False
    if _SETS_IFS.search(command):  # IFS=2 splits $(date +%Y) into pieces
        return False
    return not any(
        c.program in _ENV_CHANGERS or c.tags & UNKNOWN_TAGS or _REDEFINED.search(c.via)
        for c in cmds
    )
