"""Scripts the bastion cannot vouch for: written in the same input, or not installed.

Running an existing script or program file is allowed for people by a shipped rule; these
readings mark the ones that are not "existing": a file this input wrote and then hands to
a program that runs what it holds (``written-then-run``), and a script in a temporary
directory, on stdin, from a pipe or a file descriptor (``untrusted-script``).

Limits: writes are known for redirects and the programs ``effects.writes`` knows; a
file written by an earlier, separate command is an existing file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .effects import resolve_path, stdin_of
from .shlexer import SimpleCommand
from .words import Word
from .wrappers import SHELLS, WRAPPERS

if TYPE_CHECKING:  # the normalizer imports this module
    from .normalize import Command

__all__ = ["ScriptReadings", "CONFIG_RUNNERS"]

#: Where a script is not an existing file of the target's (anyone can write there, or
#: it is a stream).
_UNTRUSTED_DIRS = (
    "/tmp/",
    "/var/tmp/",
    "/dev/shm/",
    "/dev/stdin/",
    "/dev/fd/",
    "/proc/",
    "/run/user/",
    "/dev/tcp/",
    "/dev/udp/",
)
#: A temporary directory anywhere (~/.ansible/tmp/..., ~/tmp/...): uploaded, not installed.
_TEMP_PART = re.compile(r"/\.?(?:tmp|temp|te?mp-[^/]*)/", re.I)
_UNTRUSTED_IN_TEXT = re.compile(
    r"(?:^|[\s'\"=])(?:/tmp|/var/tmp|/dev/shm|/dev/stdin|/dev/fd|/proc)/"
)
#: A word that is (or ends in) a process substitution: bash passes /dev/fd/N.
_PROCESS_SUB = re.compile(r"(?:^|=)[<>]\(")
#: Programs that run what a file they are given holds (configs, units, packages, scripts).
CONFIG_RUNNERS = frozenset(
    "logrotate crontab at batch dpkg apt apt-get rpm yum dnf zypper pip pip3 make gmake "
    "ansible-playbook source . awk gawk sed perl python python3 ruby node php tcpdump "
    "visudo systemctl docker podman kubectl helm terraform".split()
)


class ScriptReadings:
    """Mixin for the normalizer: ``written`` holds the paths this input wrote so far."""

    cwd: str | None
    written: set[str]

    def untrusted_script(self, cmd: Command, first: Word, sc: SimpleCommand) -> bool:
        """A script that is not an existing file of the target's: one in a directory
        anyone can write (/tmp), or read from stdin, a pipe or a file descriptor."""
        if any(_PROCESS_SUB.search(w.raw) for w in (first, *cmd.words)):
            return True  # python3 <(curl URL): a /dev/fd/N pipe, not a file
        values = [first.value] + [w.value for w in cmd.words]
        values += [t.value for op, t in cmd.redirects if op in ("<", "<>")]
        for value in values:
            path = resolve_path(value.split("=", 1)[-1], self.cwd)
            if path is not None and (
                (path + "/").startswith(_UNTRUSTED_DIRS) or _TEMP_PART.search(path)
            ):
                return True
            if _UNTRUSTED_IN_TEXT.search(value):  # psql -c '\i /tmp/x.sql'
                return True
        return stdin_of(sc)[1] == "text" or (cmd.program in SHELLS and sc.piped_from is not None)

    def runs_written(self, cmd: Command, first: Word) -> bool:
        """A script, config or package this input wrote, handed to a program that runs
        what it holds (``echo .. > x.sh; bash x.sh``, ``cat > l.conf; logrotate l.conf``)."""
        if (
            not self.written
            or cmd.program in WRAPPERS  # the command it starts is judged on its own
            or not (
                "script-file" in cmd.tags or cmd.program in CONFIG_RUNNERS or cmd.program in SHELLS
            )
        ):
            return False
        words = [first.value] + [w.value for w in cmd.words]
        for value in words:
            value = value.split("=", 1)[-1] if value.startswith("-") else value
            path = resolve_path(value, self.cwd)
            if path is not None and (path in self.written or path.rstrip("/") in self.written):
                return True
        return False
