"""``[[files]]`` rules: which file operations on which paths are allowed, held or denied.

One set of path rules judges three ways of touching a file: an SFTP operation (the SFTP
flow calls ``decide_file`` once per operation), legacy scp's server side (``scp -t DEST``
writes DEST, ``scp -f SRC`` reads SRC) and every command that reads or writes a file
(``cat /etc/shadow``, ``tee ~/.bashrc``): ``command_ops`` says which operations a
normalized command performs on which words, and ``decide`` judges those with the same
rules. A rule may name the channels it judges (``via``), e.g. deny SFTP uploads under
/etc while commands that edit /etc are held by command rules instead.

Limits: paths are resolved lexically (``resolve_path``); symlinks on the target are not
followed, so a link made earlier outside the bastion to /etc/shadow reads as its own
name. A command's operations are known for the programs named here; any other program
given a path is taken to read it (a read-protected path named by any program is held),
except programs that only look at metadata (``ls``, ``stat``, ``test``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..schema import check
from ..tomlsource import TomlSource
from .effects import resolve_path
from .normalize import Command
from .rules import Approval, approval_of, in_scope, path_test
from .schema import FILE_OPS, FileRuleModel
from .words import DYN, Word

__all__ = ["FileRule", "load_file_rules", "command_ops", "resolve_file_path", "FILE_OPS"]


@dataclass
class FileRule:
    """One ``[[files]]`` entry, compiled."""

    id: str
    action: str
    message: str
    index: int
    ops: frozenset[str]
    paths: tuple[str, ...]
    not_paths: tuple[str, ...]
    via: frozenset[str]
    scope: dict[str, list[str]]
    approval: Approval

    def in_scope(self, user: str, groups: Collection[str], target: str, login: str) -> bool:
        return in_scope(self.scope, user, groups, target, login)

    def matches(self, op: str, path: str) -> bool:
        """Whether this rule judges ``op`` on the resolved ``path``."""
        if op not in self.ops:
            return False
        return _test(self.paths)(path) and not (self.not_paths and _test(self.not_paths)(path))

    def could_match(self, op: str, word: Word, cwd: str | None) -> bool | None:
        """Like ``matches`` for a command's word: None (maybe) if only known at run time."""
        if op not in self.ops:
            return False
        path = resolve_path(word.value, cwd)
        if path is not None and not word.glob:
            return self.matches(op, path)
        if path is not None:  # a glob: could it name a protected file?
            return None if _glob_meets(path, self.paths) else False
        static = word.value.split(DYN, 1)[0]
        base = resolve_path(static, cwd) if static.startswith(("/", "~")) else None
        if base is None:
            return None if static == "" or "/" not in static else False
        return None if _glob_meets(base + "*", self.paths) else False


@lru_cache(maxsize=256)
def _test(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    return path_test(patterns)


def _glob_meets(glob: str, patterns: tuple[str, ...]) -> bool:
    """Could a path matching ``glob`` also match one of ``patterns``? (A cheap over-
    approximation: the fixed prefixes are compatible.)"""
    fixed = re.split(r"[*?\[]", glob, maxsplit=1)[0]
    for p in patterns:
        if p.startswith("@"):
            return True
        pfix = re.split(r"[*?\[]", p, maxsplit=1)[0]
        if fixed.startswith(pfix) or pfix.startswith(fixed):
            if fnmatchcase(p.replace("*", "x"), glob) or "*" in glob or "*" in p:
                return True
    return False


def resolve_file_path(path: str, cwd: str | None, login: str) -> str:
    """An SFTP path made absolute: relative to ``cwd`` or the login's home. Both ``~``
    and the home's real name are tried by the rules (see ``decide_file``)."""
    home = "/root" if login == "root" else f"/home/{login}"
    if path.startswith("~"):
        path = home + path[1:] if path == "~" or path.startswith("~/") else path
    resolved = resolve_path(path, cwd or home)
    if resolved is None:
        return "?"
    if resolved.startswith("~"):
        resolved = home + resolved[1:]
    return resolved


def home_spelling(path: str, login: str) -> str | None:
    """The same path spelled from ``~`` when it lies in the login's home."""
    home = "/root" if login == "root" else f"/home/{login}"
    if path == home:
        return "~"
    if path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return None


def load_file_rules(source: TomlSource, raw: Any) -> list[FileRule]:
    """Validate ``[[files]]``; any mistake is a ConfigError naming file:line:key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise source.error(("files",), "must be an array of tables ([[files]])")
    out: list[FileRule] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        m = check(source, FileRuleModel, entry, ("files", i))
        if m.id in seen:
            raise source.error(("files", i, "id"), f"duplicate rule id {m.id!r}")
        seen.add(m.id)
        scope = {
            k: list(v)
            for k in ("groups", "not_groups", "users", "not_users", "targets", "not_targets")
            + ("logins", "not_logins")
            if (v := getattr(m, k)) is not None
        }
        out.append(
            FileRule(
                m.id,
                m.action,
                m.message,
                i,
                frozenset(m.ops),
                tuple(m.paths),
                tuple(m.not_paths or ()),
                frozenset(m.via),
                scope,
                approval_of(m),
            )
        )
    return out


# ---- what a command does to files ----------------------------------------------------
#: Programs that only look at a file's metadata or name, never its content.
_METADATA_ONLY = frozenset(
    "ls stat test [ [[ file du df realpath readlink basename dirname namei lsattr find "
    "getfacl touch chmod chown chgrp chattr setfacl mkdir rmdir locate which whereis "
    "type command echo printf mv ln cd pushd popd true false sleep".split()
)
_REMOVERS = frozenset({"rm", "unlink", "shred", "rmdir", "srm", "wipe"})
_SETSTAT = frozenset({"chmod", "chown", "chgrp", "chattr", "setfacl", "touch"})
_COPIERS = frozenset({"cp", "install", "rsync", "scp", "dd", "ditto"})
_OUT_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})


def command_ops(cmd: Command) -> list[tuple[str, Word]]:
    """(operation, word) for every file a normalized command reads, writes, removes or
    changes the metadata of, as far as we know (see the module doc)."""
    ops: list[tuple[str, Word]] = []
    for op, target in cmd.redirects:
        if op in _OUT_OPS or (op == ">&" and not re.fullmatch(r"\d+|-", target.value)):
            ops.append(("write", target))
        elif op in ("<", "<>"):
            ops.append(("read", target))
    if cmd.dest is not None:
        ops.append(("write", cmd.dest))
    prog = cmd.program
    operands = [w for w in cmd.operands if w is not cmd.dest]
    if prog in _REMOVERS:
        ops += [("remove", w) for w in operands]
    elif prog in _SETSTAT:
        ops += [("setstat", w) for w in operands]
    elif prog == "mv":
        ops += [("rename", w) for w in operands]
    elif prog in ("ln",):
        ops += [("symlink", w) for w in operands]
    elif prog in _COPIERS:
        ops += [("read", w) for w in operands]
    elif prog not in _METADATA_ONLY and prog:
        ops += [("read", w) for w in operands]
        ops += [("read", Word(v)) for _, v in cmd.option_values if v.startswith(("/", "~"))]
    return ops
