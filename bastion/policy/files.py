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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..schema import check
from ..tomlsource import TomlSource
from .effects import proc_view, resolve_path
from .getopt import wrapper_options
from .normalize import Command
from .programs import INPUT_OPTS, OUTPUT_OPTS
from .rules import Approval, approval_of, in_scope, path_test
from .schema import FILE_OPS, FileRuleModel
from .words import DYN, MANY_WORDS, Word
from .wrappers import WRAPPERS

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
        """Like ``matches`` for a command's word: None (maybe) for a glob or a run-time
        word that could name a protected path. A run-time word counts only through its
        fixed leading part (``cat "$f"`` reads no known secret; ``cat /etc/sh$x`` may)."""
        if op not in self.ops:
            return False
        if not word.dynamic and not word.glob:
            path = resolve_path(word.value, cwd)
            return self.matches(op, path) if path is not None else self._somewhere(op, word)
        static = word.value.split(DYN, 1)[0]
        probe = resolve_path(word.value.replace(DYN, "x"), cwd)
        if word.dynamic and probe is not None and self.matches(op, probe):
            return None  # "/etc/cron.d/$f" can be a file /etc/cron* names
        if word.dynamic and not static.startswith(("/", "~")):
            return False
        samples = _matching_samples(self.paths, self.not_paths)
        if word.dynamic:  # its known text must fit: "/$X/p" is never /etc/shadow
            head = resolve_path(static, cwd) if static not in ("/", "~") else static
            if head is None:
                return False
            parts = [head if static.endswith("/") or static in ("/", "~") else head]
            parts += word.value.split(DYN)[1:]
            shape = re.compile(".*".join(re.escape(p) for p in parts), re.S)
            return None if any(shape.fullmatch(x) for x in samples) else False
        glob = resolve_path(word.value, cwd)
        if glob is not None and (
            any(fnmatchcase(x, glob) for x in samples) or self.matches(op, _instance(glob))
        ):  # /etc/sha*; /home/*/.ssh/id_rsa (its own name fixed, the home any)
            return None
        return False

    def could_be_literal(
        self, op: str, word: Word, literals: tuple[str, ...], cwd: str | None
    ) -> bool | None:
        """Maybe, when a run-time word filled with literal text of the same input names
        a protected path (``x=/etc/shadow; cat $x``, ``echo /etc/shadow | xargs cat``)."""
        for lit in literals:
            for text in {lit, *lit.split()}:
                path = resolve_path(word.value.replace(DYN, text), cwd)
                if path is None:
                    continue
                if self.matches(op, _instance(path)) or (
                    path != _instance(path)
                    and self.could_match(op, Word(path, glob=True), cwd) is not False
                ):
                    return None
        return False

    def _somewhere(self, op: str, word: Word) -> bool | None:
        """A relative path from a directory only known at run time (``pushd /etc; cat
        shadow``, ``cd "$D"``), or one climbing above the home (``../../etc/shadow``):
        maybe, when some protected path ends with it."""
        value = word.value
        view = proc_view(value)
        if view is not None:  # /proc/1/cwd/shadow
            value = view.group(2) or ""
        parts = [p for p in value.split("/") if p not in ("", ".")]
        while parts and parts[0] == "..":
            parts.pop(0)
        if not parts or ".." in parts:
            return False
        tail = "/".join(parts)
        if self.not_paths and _test(self.not_paths)("/" + tail):
            return False
        for p in self.paths:
            ends = p.split("/")[-len(parts) :]
            if p.startswith("@") or len(ends) != len(parts) or _ANY_NAME.fullmatch("".join(ends)):
                continue  # ".../*" names no file in particular
            if fnmatchcase(tail, "/".join(ends)):
                return None
        return False


def _instance(glob: str) -> str:
    """One path a glob names (``*`` as ``u``, ``?`` as ``x``, ``[ab]`` as ``a``; a negated
    class as a character no protected name holds)."""
    glob = re.sub(r"\[[!^][^\]]*\]", "\x01", glob)
    return re.sub(r"\[(.)[^\]]*\]", r"\1", glob).replace("*", "u").replace("?", "x")


_ANY_NAME = re.compile(r"[*?]*")


@lru_cache(maxsize=256)
def _test(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    return path_test(patterns)


@lru_cache(maxsize=1024)
def _matching_samples(paths: tuple[str, ...], not_paths: tuple[str, ...]) -> tuple[str, ...]:
    """The samples of ``paths`` that the rule judges (computed once per rule, not per word)."""
    test, unjudged = _test(paths), _test(not_paths) if not_paths else None
    return tuple(x for x in _samples(paths) if test(x) and not (unjudged and unjudged(x)))


@lru_cache(maxsize=256)
def _samples(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Paths each pattern names, in the places a glob or a run-time word could reach them
    (``*/.ssh/id_*`` as ~/.ssh/id_x, /root/.ssh/id_x, /home/u/.ssh/id_x)."""
    out: list[str] = []
    for p in patterns:
        if p.startswith("@"):
            continue
        body = p.replace("?", "x").replace("[", "").replace("]", "")
        if body.startswith("*/"):
            tails = [body[2:]]
            heads = ["~/", "/root/", "/home/u/", "/"]
        elif body.startswith("*"):
            tails = [body[1:]]
            heads = ["~/x", "/root/x", "/home/u/x", "/etc/ssl/private/x", "/x"]
        else:
            tails, heads = [body], [""]
        for head in heads:
            for tail in tails:
                out.append(head + tail.replace("*", "x"))
    return tuple(out)


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
#: Programs whose operands are files they create (keys, certificates, archives).
_WRITE_ONLY = frozenset({"ssh-keygen", "mkdir", "mktemp", "touch", "truncate"})
#: Programs whose first operand is a pattern or a script, not a file.
_PATTERN_FIRST = frozenset(
    "grep egrep fgrep zgrep rg ag ack sed awk gawk mawk nawk jq yq perl expr".split()
)
_REMOVERS = frozenset({"rm", "unlink", "shred", "rmdir", "srm", "wipe"})
_SETSTAT = frozenset({"chmod", "chown", "chgrp", "chattr", "setfacl", "touch"})
_COPIERS = frozenset({"cp", "install", "rsync", "scp", "dd", "ditto"})
_OUT_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})


def _xargs_files(words: Sequence[Word]) -> list[Word]:
    """The files ``xargs -a FILE`` / ``--arg-file=FILE`` reads its arguments from, read
    with xargs's own option table (its options end at the command it runs)."""
    found: dict[str, Word] = {}
    for opts, _ in wrapper_options(list(words), WRAPPERS["xargs"].spec):
        for opt, value in opts:
            if opt in ("-a", "--arg-file") and value is not None:
                found.setdefault(value.value, value)
    return list(found.values())


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
    if prog == "xargs":  # xargs -a FILE reads FILE (the command it starts is judged alone)
        ops += [("read", w) for w in _xargs_files(cmd.words)]
    if prog in WRAPPERS or prog in _WRITE_ONLY:
        return ops  # the command a wrapper starts is judged on its own
    operands = [w for w in cmd.operands if w is not cmd.dest]
    if (
        prog in _PATTERN_FIRST
        and operands
        and not ({"-e", "-f", "--file", "--regexp", "--expression"} & cmd.options)
        and not MANY_WORDS.search(operands[0].raw)  # grep "$@": the pattern and files
    ):
        operands = operands[1:]  # grep PATTERN FILE, sed SCRIPT FILE, awk PROGRAM FILE
    if prog in _REMOVERS:
        ops += [("remove", w) for w in operands]
    elif prog in _SETSTAT:
        ops += [("setstat", w) for w in operands]
    elif prog == "mv":
        ops += [("rename", w) for w in operands]
    elif prog == "ln" or (prog == "cp" and cmd.options & {"-s", "--symbolic-link"}):
        ops += [("symlink", w) for w in operands]  # cp -s makes links too
    elif prog == "mount" and cmd.options & {"-B", "--bind", "-R", "--rbind"}:
        ops += [("symlink", w) for w in operands]  # a bind mount is a link that writes go through
    elif prog == "dd":  # dd if=/dev/mem: the input is named inside the operand
        ops += [
            ("read", Word(w.value[3:], w.raw, w.dynamic, w.glob))
            for w in operands
            if w.value.startswith("if=")
        ]
    elif prog in _COPIERS:
        ops += [("read", w) for w in operands]
    elif prog not in _METADATA_ONLY and prog:
        ops += [("read", w) for w in operands]
        outputs = OUTPUT_OPTS.get(prog, frozenset())
        ops += [
            ("read", Word(v))
            for o, v in cmd.option_values
            if v and "\x00" not in v and o not in outputs
        ]
    inputs = INPUT_OPTS.get(prog, frozenset())
    ops += [("read", Word(v)) for o, v in cmd.option_values if v and o in inputs]
    for w in cmd.words:
        if (embedded := _embedded_path(w)) is not None:
            ops.append(("read", embedded))
    return ops


#: An argument that names a file to read inside it: ``file:///etc/shadow``, curl's
#: ``-d @FILE`` and ``-F name=@FILE`` / ``name=<FILE``, httpie's ``field@FILE``.
_EMBEDDED = re.compile(
    r"(?:file://(?:localhost)?(?=/)|[@<]|[^\s=@<:/]+=[@<]|[^\s=@<:/]+=?@)(.+)", re.S
)


def _embedded_path(w: Word) -> Word | None:
    """The file an argument names inside it (see ``_EMBEDDED``), if any."""
    m = _EMBEDDED.fullmatch(w.value.split(";", 1)[0])
    if m is None or m.group(1) == "-":
        return None
    return Word(m.group(1), w.raw, w.dynamic, w.glob)
