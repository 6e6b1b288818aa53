"""Case files: tables of commands with the action and rule a policy must give them.

The same files drive the test suite and ``bastion policy test --cases FILE``, so an
operator can run the shipped tables (or their own) against their own policy. One case a
line::

    rm -rf / | deny | destructive-rm
    ls -la | allow | read-only

The command is everything before the last two `` | `` separators (a command may hold
pipes). The rule is a rule id, ``on_unknown``, ``default``, ``profile:ID``, or ``*``
for "any rule" (use sparingly: a row that names its rule fails when a command slips from
"denied by the right rule" to "held because unreadable"). A command that holds a
newline, starts or ends with blanks, or starts with ``#``, ``%`` or ``@`` is written as
``@json ["command", "expect", "rule"]``. Lines starting with ``#`` are comments;
``% key=value ...`` sets who runs the following cases (user, groups as a comma list,
target, login, cwd, pty=true|false); ``%`` alone resets to the defaults
(user alice, groups ops, target web1, login root).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError
from .decide import PolicyTest

__all__ = ["load_cases", "parse_cases", "format_case"]

_ACTIONS = ("allow", "deny", "review")


@dataclass(frozen=True)
class _Who:
    user: str = "alice"
    groups: tuple[str, ...] = ("ops",)
    target: str = "web1"
    login: str = "root"
    cwd: str | None = None
    pty: bool = False


def _directive(line: str, path: str, number: int) -> _Who:
    who = _Who()
    for item in line[1:].split():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"bad directive {item!r}: expected key=value", path=path, line=number)
        if key == "groups":
            who = replace(who, groups=tuple(g for g in value.split(",") if g))
        elif key == "pty":
            if value not in ("true", "false"):
                raise ConfigError("pty must be true or false", path=path, line=number)
            who = replace(who, pty=value == "true")
        elif key == "user":
            who = replace(who, user=value)
        elif key == "target":
            who = replace(who, target=value)
        elif key == "login":
            who = replace(who, login=value)
        elif key == "cwd":
            who = replace(who, cwd=value)
        else:
            raise ConfigError(f"unknown directive key {key!r}", path=path, line=number)
    return who


def parse_cases(text: str, path: str = "<cases>") -> list[PolicyTest]:
    """The cases of one file's text; ConfigError naming the line of any bad row."""
    out: list[PolicyTest] = []
    who = _Who()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("%"):
            who = _directive(line, path, number)
            continue
        if line.startswith("@json "):
            try:
                fields = json.loads(line[6:])
            except ValueError as exc:
                raise ConfigError(f"bad @json row: {exc}", path=path, line=number) from None
            if not (isinstance(fields, list) and len(fields) == 3):
                raise ConfigError(
                    "@json row must be [command, expect, rule]", path=path, line=number
                )
            command, expect, rule = (str(f) for f in fields)
        else:
            parts = line.rsplit(" | ", 2)
            if len(parts) != 3:
                raise ConfigError("expected 'command | expect | rule'", path=path, line=number)
            command, expect, rule = parts[0], parts[1].strip(), parts[2].strip()
        if expect not in _ACTIONS:
            raise ConfigError(
                f"expect must be one of {', '.join(_ACTIONS)}", path=path, line=number
            )
        if not rule:
            raise ConfigError("every row names its rule (or * for any)", path=path, line=number)
        out.append(
            PolicyTest(
                command,
                expect,
                who.user,
                who.groups,
                who.target,
                who.login,
                who.cwd,
                None if rule == "*" else rule,
                f"{Path(path).name}:{number}",
                number,
                who.pty,
            )
        )
    return out


def load_cases(paths: Iterable[str | Path]) -> list[PolicyTest]:
    """The cases of several files, in order."""
    out: list[PolicyTest] = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read cases: {exc}", path=str(p)) from None
        out += parse_cases(text, str(p))
    return out


def format_case(command: str, expect: str, rule: str) -> str:
    """One row, in the plain form when it reads back the same, else as @json."""
    plain = f"{command} | {expect} | {rule}"
    if (
        "\n" in command
        or "\r" in command
        or command != command.strip()
        or command.startswith(("#", "%", "@"))
        or not command
        or parse_cases(plain)[0].command != command
    ):
        return "@json " + json.dumps([command, expect, rule], ensure_ascii=False)
    return plain
