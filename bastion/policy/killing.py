"""Killing by a process id that comes from a name: ``pgrep``, ``pidof``, a pid file.

``kill $(pidof auditd)`` is killing auditd by name, so it is also judged as ``pkill``
(kills-critical, security-agent-kill). ``kill -HUP $(cat /run/nginx.pid)`` names its
daemon too, and its id is never 1 or -1 as long as nothing wrote the file: a pid file
directly in ``/run`` (only root writes there; writing one is held by ``pid-file-write``)
that this input does not write, read before anything else in it runs
(``decide._pid_file_read_first``) and by a ``cat`` the input does not redefine.

Limits: a pid file written by an earlier, separate input through a writer the policy
does not know is trusted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from .getopt import read_options
from .programs import OPT_SPECS
from .readings import Readings
from .shlexer import SimpleCommand
from .words import Word

if TYPE_CHECKING:  # the normalizer imports this module
    from .normalize import Command

__all__ = ["KillReadings", "PID_FILE", "PID_LOOKUP", "pid_file_rechecked"]

#: A process-id lookup by name as a word: ``$(pidof NAME)``, `` `pgrep -f PATTERN` ``.
PID_LOOKUP = re.compile(r"(?:\$\(|`)\s*(pidof|pgrep)\s+([^`)]*?)\s*(?:\)|`)", re.S)
#: ``$(cat /run/nginx.pid)``: a pid file directly in /run (only root writes there).
PID_FILE = re.compile(
    r"(?:\$\(\s*(?:cat\s+|<\s*)|`\s*cat\s+)(/(?:var/)?run/([\w.@-]+)\.pid)\s*[)`]"
)


class KillReadings(Readings):
    """Mixin for the normalizer: ``written`` and ``unknown_write`` are the files this
    input wrote so far (see ``ScriptReadings``)."""

    written: set[str]
    unknown_write: bool

    def kill_lookups(
        self,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        assigns: tuple[str, ...],
        tags: set[str],
    ) -> None:
        """``kill $(pidof auditd)``, ``kill -9 `pgrep -f NAME```, ``kill -HUP $(cat
        /run/nginx.pid)``: killing by name, so also judged as ``pkill [SIGNAL] NAME``,
        tagged ``pid-lookup`` (kills-critical, security-agent-kill). A pid file this input
        did not write holds the id of its daemon, never 1: its word is marked ``safe``
        and the command ``pid-file`` (``decide`` voids that where ``cat`` may be
        redefined)."""
        # bash's kill takes one leading signal; a later -HUP is a (bad) process id
        read = read_options(args, OPT_SPECS.get("kill"))
        signals = [Word("--signal=" + v.value) for o, v in read.options if v is not None]
        for k, w in enumerate(args):
            raw = w.raw.strip('"')
            names: list[str] = []
            if (m := PID_LOOKUP.fullmatch(raw)) is not None:
                try:
                    names = shlex.split(m.group(2))
                except ValueError:
                    continue
                if m.group(1) == "pidof":
                    names = [x for x in names if not x.startswith("-")]
            elif (f := PID_FILE.fullmatch(raw)) is not None:
                names = [f.group(2)]
                if not self.pid_file_written(f.group(1)):
                    args[k] = replace(w, safe=True)
                    tags.add("pid-file")
            else:
                continue
            here = f"as kill {w.raw} {via}".strip()
            found = [Word(x) for x in names]
            lookup = {"pid-lookup"}  # kill-by-name leaves these to the rules below it
            self.command([Word("pkill"), *signals, *found], sc, here, depth + 1, lookup, assigns)

    def pid_file_written(self, path: str) -> bool:
        """Whether this input may write pid file ``path`` (/var/run is /run)."""
        if self.unknown_write:
            return True
        same = {
            path,
            "/run/" + path.removeprefix("/var/run/"),
            "/var/run/" + path.removeprefix("/run/"),
        }
        return any(fnmatchcase(p, w) for p in same for w in self.written)


def pid_file_rechecked(cmd: Command, written: Callable[[str], bool]) -> Command:
    """``cmd`` without its trust in pid files this input writes anywhere."""
    if "pid-file" not in cmd.tags:
        return cmd

    def unsafe(w: Word) -> Word:
        m = PID_FILE.fullmatch(w.raw.strip('"'))
        return replace(w, safe=False) if m and written(m.group(1)) else w

    if not any(w is not unsafe(w) for w in cmd.words):
        return cmd
    return replace(
        cmd,
        words=tuple(map(unsafe, cmd.words)),
        operands=tuple(map(unsafe, cmd.operands)),
        tags=cmd.tags - {"pid-file"},
    )
