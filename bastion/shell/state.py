"""What the bastion's shell carries from one line to the next: directory and exports.

Every line runs on its own upstream channel, in a fresh shell on the target, so the
bastion keeps the working directory and the exported variables and puts them in front
of each line it sends (``compose``): ``cd -P -- DIR`` checked to land in DIR itself,
``export NAME='value'``, ``unset -v NAME``, then the decided bytes, all quoted by the
bastion.

A *state line* is one whose every statement is ``cd``, ``export`` or ``unset`` (joined by
``;``, ``&&`` or newlines). It runs, once decided, without a terminal and followed by a
trailer that prints its status, ``pwd -P`` and the exported variables, with builtins
only (``compose_state``); the
bastion reads the new directory and the variables that differ from the login's own
environment (``apply``). So ``cd`` into a missing directory fails on the target and
changes nothing, ``export PATH=$PATH:/opt/bin`` is expanded by the target, and
``unset`` removes. The directory is kept as its physical path, and a line runs only if
``cd -P`` lands there again: a directory swapped for a link between the decision and
the run (to make ``rm -r *`` run elsewhere) stops the line.

Limits, in the open: ``cd``/``export`` inside a line with other commands affect that
line only (the user is told); shell variables that are not exported, functions,
aliases and options do not carry; only variables with plain names
(``[A-Za-z_][A-Za-z0-9_]*``) and UTF-8 values are kept, at most ``MAX_STATE_BYTES``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

__all__ = [
    "MAX_STATE_BYTES",
    "ShellState",
    "StateChange",
    "STATE_BUILTINS",
    "is_state_line",
    "mentions_state",
    "probe_command",
]

#: Statements the bastion carries to the next line.
STATE_BUILTINS = frozenset({"cd", "export", "unset"})
#: Most bytes of carried variables (names and values).
MAX_STATE_BYTES = 64 * 1024
_MARK = b"\x00BASTION-STATE\x00"
#: After a state line the exported variables are listed with bash's builtins only: a
#: program run there would run with the environment the line set (``export $(cat .env)``
#: may set PATH or LD_PRELOAD), before the bastion has judged it. BASH_VERSINFO is
#: read-only in bash; a login shell accepted by opt-in gets ``env -0``.
_TRAILER = (
    'printf \'\\0BASTION-STATE\\0%s\\0%s\\0\' "$?" "$(pwd -P)"; '
    'if [ -n "${BASH_VERSINFO-}" ]; then eval \'compgen -e | while IFS= read -r n; '
    'do printf "%s=%s\\0" "$n" "${!n}"; done\'; else env -0; fi'
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Variables every shell sets for itself: never carried.
_OWN = frozenset({"PWD", "SHLVL", "_"})


def _statements(line: str) -> list[list[str]] | None:
    """Words of each statement split at ``;``, ``&&`` and newlines; None if the line
    has anything else at top level (pipes, ``||``, ``&``, here-docs) or cannot be read."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace = " \t"
    lexer.commenters = "#"
    statements: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in (";", "&&", "\n"):
                statements.append([])
            elif token and set(token) <= set(";&|"):
                return None
            else:
                statements[-1].append(token)
    except ValueError:
        return None
    return [s for s in statements if s]


def is_state_line(line: str) -> bool:
    """Every statement is cd, export or unset (a line the bastion carries)."""
    if "<<" in line or "\\\n" in line or line.rstrip().endswith("\\"):
        return False
    statements = _statements(line.replace("\n", " ; "))
    if not statements:
        return False
    return all(s[0] in STATE_BUILTINS for s in statements)


def mentions_state(line: str) -> bool:
    """A line that uses cd/export/unset among other commands (they will not carry)."""
    words = re.findall(r"(?:^|[;&|(\s])(cd|export|unset)(?=\s|$|;)", line)
    return bool(words)


def probe_command() -> str:
    """The side exec that reads the login's starting directory and environment."""
    return "true\n" + _TRAILER


@dataclass(frozen=True)
class StateChange:
    """What a state line did: its status, and the directory and variables after it."""

    status: int
    cwd: str
    env: dict[str, str]
    output: bytes  # what the line printed before the trailer (cd -, export -p)


@dataclass
class ShellState:
    """The carried directory and exported variables of one shell session."""

    cwd: str
    home: str
    base_env: dict[str, str]
    exports: dict[str, str] = field(default_factory=dict)
    unset: set[str] = field(default_factory=set)

    @classmethod
    def from_probe(cls, stdout: bytes) -> ShellState:
        change = parse_state(stdout)
        if change is None:
            raise ValueError("the target did not report its working directory")
        home = change.env.get("HOME", change.cwd)
        return cls(cwd=change.cwd, home=home, base_env=change.env)

    def prefix(self) -> str:
        where = shlex.quote(self.cwd)
        gone = "bastion: the working directory %s is gone or was replaced by a link\\n"
        lines = [
            f'cd -P -- {where} 2>/dev/null && [ "$PWD" = {where} ] || '
            f"{{ printf '{gone}' {where} >&2; exit 1; }}"
        ]
        if self.exports:
            lines.append(
                "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in self.exports.items())
            )
        if self.unset:
            lines.append("unset -v " + " ".join(sorted(self.unset)))
        return "\n".join(lines) + "\n"

    def compose(self, text: str) -> str:
        """What goes to the target for an ordinary line: the state, then the line."""
        return self.prefix() + text

    def compose_state(self, text: str) -> str:
        """What goes to the target for a state line: it, then the state report."""
        return self.prefix() + text + "\n" + _TRAILER

    def changed_variables(self, env: dict[str, str]) -> tuple[dict[str, str], set[str]]:
        """Variables (to export, to unset) relative to the login's own environment."""
        exports = {
            k: v
            for k, v in env.items()
            if k not in _OWN and _NAME.match(k) and self.base_env.get(k) != v
        }
        unset = {k for k in self.base_env if k not in env and k not in _OWN and _NAME.match(k)}
        return exports, unset

    def apply(self, change: StateChange) -> tuple[dict[str, str], set[str]] | str:
        """Take the directory and variables after a state line; returns the new
        (exports, unset) or a sentence saying why the variables were not kept."""
        exports, unset = self.changed_variables(change.env)
        size = sum(len(k) + len(v.encode()) + 2 for k, v in exports.items())
        self.cwd = change.cwd or self.cwd
        if size > MAX_STATE_BYTES:
            return (
                f"the exported variables take {size} bytes, more than the shell carries "
                f"({MAX_STATE_BYTES}); they were not kept"
            )
        return exports, unset

    def keep(self, exports: dict[str, str], unset: set[str]) -> None:
        self.exports, self.unset = exports, unset

    def new_variables(self, exports: dict[str, str]) -> dict[str, str]:
        """Of ``exports``, the ones that differ from what is carried now."""
        return {k: v for k, v in exports.items() if self.exports.get(k) != v}

    def shown_cwd(self) -> str:
        home = self.home.rstrip("/")
        if home and (self.cwd == home or self.cwd.startswith(home + "/")):
            return "~" + self.cwd[len(home) :]
        return self.cwd


def parse_state(stdout: bytes) -> StateChange | None:
    """Read the trailer's report at the end of a state line's output."""
    output, mark, report = stdout.rpartition(_MARK)
    if not mark:
        return None
    fields = report.split(b"\x00")
    if len(fields) < 2:
        return None
    try:
        status = int(fields[0])
        cwd = fields[1].decode("utf-8")
    except ValueError:
        return None
    env: dict[str, str] = {}
    for entry in fields[2:]:
        name, eq, value = entry.partition(b"=")
        if not eq:
            continue
        try:
            env[name.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not carried: the bastion sends text
    return StateChange(status, cwd, env, output)
