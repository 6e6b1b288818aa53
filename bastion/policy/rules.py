"""Rules from ``[[rules]]``: load and validate them, and match them against commands.

A rule matches a normalized command when every matcher it sets matches (AND across
keys; a list inside one key means any of its entries). A matcher can also answer
"maybe": an operand, redirect target or argument only known at run time could be a
protected path. A maybe-match of a deny rule is held at the policy's on_unknown action,
never allowed. Allow rules never match on a maybe.

Path patterns: ``@root`` is ``/``; ``@system`` is ``/`` and the top-level system
directories (and a few critical ones below them); ``@device`` a disk, memory or port
device; anything else is a glob (``*`` also crosses ``/``). In ``args`` and ``operands``,
``@dynamic`` maybe-matches a word only known at run time. A ``safe`` word (see
``words.Word``) is judged as its static parts with its expansions empty or digits.
Paths are resolved lexically (``/usr/../etc/`` is ``/etc``) against the working
directory; symlinks on the target are not followed.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from ..schema import check as check_section
from ..tomlsource import TomlSource
from .effects import resolve_path
from .killing import PID_FILE
from .normalize import Command
from .schema import RULE_LIST_KEYS, FileRuleModel, RuleModel, parse_duration
from .sql import match_text
from .tools import user_regex
from .words import DYN, FOUND, SOME, Word

__all__ = [
    "ACTIONS",
    "SEVERITY",
    "Approval",
    "Rule",
    "load_rules",
    "SYSTEM_DIRS",
    "in_scope",
    "path_test",
    "approval_of",
]

ACTIONS = ("allow", "deny", "review")
SEVERITY = {"allow": 0, "review": 1, "deny": 2}

SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/snap",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local",
        "/usr/share",
        "/usr/include",
        "/var/lib",
        "/var/log",
        "/var/spool",
        "/var/cache",
        "/etc/ssh",
        "/etc/systemd",
        "/etc/ssl",
        "/boot/efi",
        "/lost+found",
    }
)
_SAMPLES = sorted(
    SYSTEM_DIRS
    | {
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/sudoers",
        "/etc/fstab",
        "/etc/hosts",
        "/etc/ld.so.preload",
        "/etc/crontab",
        "/dev/sda",
        "/dev/sda1",
        "/dev/sdb",
        "/dev/nvme0n1",
        "/dev/nvme0n1p1",
        "/dev/vda",
        "/dev/xvda",
        "/dev/hda",
        "/dev/mmcblk0",
        "/dev/md0",
        "/dev/mapper/root",
        "/dev/dm-0",
        "/dev/mem",
        "/dev/kmem",
        "/dev/port",
        "/boot/vmlinuz",
        "/boot/grub/grub.cfg",
        "/proc/sysrq-trigger",
        "/usr/bin/ls",
        "/root/.ssh/authorized_keys",
        "/home/user",
        "~",
        "/var/lib/mysql",
        "/var/lib/postgresql",
        # logs and histories: what "find /var/log -name X -exec cp /dev/null {}" may reach
        "/var/log/auth.log",
        "/var/log/syslog",
        "/var/log/wtmp",
        "/var/log/audit/audit.log",
        "/root/.bash_history",
    }
)


@dataclass(frozen=True)
class Approval:
    """Approval settings of a review rule: approver groups (empty: the [approvals]
    default), how many approvals, and how long one lasts (None: the default)."""

    approvers: tuple[str, ...] = ()
    required: int = 1
    ttl: int | None = None


NO_APPROVAL = Approval()

Match = bool | None  # None: maybe (only known at run time)

#: What the rule keys ask of a command's arguments (``Rule.covers_arguments``); a name
#: no program has stands in for one only known at run time.
_ARGUMENT_KEYS = (
    "subcommand options options_all args operands dest_paths paths redirects overwrites sql assigns"
).split()
_ANY_NAME = "\0any-program"


def _glob_prefix(pattern: str) -> str:
    m = re.search(r"[*?\[]", pattern)
    return pattern[: m.start()] if m else pattern


#: Expansions whose value is known to be a process id other than 1 (or empty): the
#: shell's own PID (never init for a command run over SSH) and the last background job.
_OWN_PIDS = frozenset({"$$", "$!", "${$}", "${!}"})


_PID_SUBST = re.compile(r'"?(?:\$\(|`)\s*(pgrep|pidof)\s+([^()`$;|&<>]*?)\s*(?:\)|`)"?')
_INIT_NAMES = ("init", "systemd", "/sbin/init", "/lib/systemd/systemd --system", "sshd")


def _pids_not_init(raw: str) -> bool:
    """``$(pgrep [-f] PATTERN)``, ``$(pidof NAME)`` whose pattern cannot select init,
    systemd or sshd: ids other than 1 (or none). Only for ``safe`` words (a trusted
    reading that checked pgrep and pidof are not redefined)."""
    m = _PID_SUBST.fullmatch(raw)
    if not m:
        return False
    try:
        args = shlex.split(m.group(2))
    except ValueError:
        return False
    names = [a for a in args if not a.startswith("-")]
    flags = "".join(a[1:] for a in args if a.startswith("-"))
    if m.group(1) == "pidof":
        return bool(names) and not any(n in ("init", "systemd", "sshd", "1") for n in names)
    if len(names) != 1:
        return False
    rx = user_regex(names[0], "i" in flags)
    if rx is None:
        return False
    test = rx.fullmatch if "x" in flags else rx.search
    return not any(test(s) for s in _INIT_NAMES)


def _could_match(word: Word, pattern: str) -> Match:
    """Does a word match a glob? Maybe, if its dynamic part could make it match.
    ``@dynamic`` matches (maybe) only a word known at run time: ``docker rm $(...)``."""
    if pattern == "@dynamic":
        return None if word.dynamic else False
    if not word.dynamic:
        return fnmatchcase(word.value, pattern)
    if word.raw.strip('"') in _OWN_PIDS or (
        word.safe and (_pids_not_init(word.raw) or PID_FILE.fullmatch(word.raw.strip('"')))
    ):
        hits = {fnmatchcase(pid, pattern) for pid in ("2", "4194304", "")}
        return hits.pop() if len(hits) == 1 else None
    return None if _globs_meet(word.value, pattern) else False


def _globs_meet(value: str, pattern: str) -> bool:
    """Could a word whose unknown parts are DYN take a value matching ``pattern``? Its
    known text must fit: ``"/$X/p"`` can never be ``/etc/ld.so.preload`` (it ends in /p)."""
    if not any(ch in pattern for ch in "*?["):
        return bool(re.fullmatch(".*".join(re.escape(p) for p in value.split(DYN)), pattern, re.S))
    static, suffix = value.split(DYN, 1)[0], value.rsplit(DYN, 1)[-1]
    prefix = _glob_prefix(pattern)
    tail = re.split(r"[*?\]]", pattern)[-1]
    fits_start = static.startswith(prefix) or prefix.startswith(static)
    fits_end = tail.endswith(suffix) or suffix.endswith(tail)
    return fits_start and fits_end


def _one_field(word: Word) -> bool:
    """A word that stays one argument at run time (all its expansions double-quoted)."""
    raw = word.raw
    return not word.glob and len(raw) >= 2 and raw[0] == raw[-1] == '"' and raw.count('"') == 2


_SAFE_DEVICES = frozenset(
    {
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/console",
        "/dev/ptmx",
        "/dev/kmsg",
        "/dev/log",
    }
)
_SAFE_DEVICE_DIRS = (
    "/dev/fd/",
    "/dev/pts/",
    "/dev/shm/",
    "/dev/tcp/",
    "/dev/udp/",
    "/dev/tty",
    "/dev/mqueue/",
    "/dev/hugepages/",
)


def _is_device(path: str) -> bool:
    """Anything under /dev that is not a stream, a terminal or shared memory: disks (by
    any name: /dev/sda, /dev/disk/by-id/..., /dev/mapper/...), memory, ports."""
    return (
        path.startswith("/dev/")
        and path not in _SAFE_DEVICES
        and not path.startswith(_SAFE_DEVICE_DIRS)
    )


def _path_is(path: str, pattern: str) -> bool:
    if pattern == "@root":
        return path == "/"
    if pattern == "@system":
        return path in SYSTEM_DIRS
    if pattern == "@device":
        return _is_device(path)
    return fnmatchcase(path, pattern)


def in_scope(
    c: dict[str, list[str]], user: str, groups: Collection[str], target: str, login: str
) -> bool:
    """Whether scope keys (groups, users, targets, logins and not_ forms) admit an identity."""
    if "groups" in c and not any(g in groups for g in c["groups"]):
        return False
    if "not_groups" in c and any(g in groups for g in c["not_groups"]):
        return False
    for key, value in (("users", user), ("targets", target), ("logins", login)):
        if key in c and not any(fnmatchcase(value, p) for p in c[key]):
            return False
        if "not_" + key in c and any(fnmatchcase(value, p) for p in c["not_" + key]):
            return False
    return True


@lru_cache(maxsize=512)
def path_test(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One test for a list of path patterns (one regex for the globs): judging a command
    with thousands of operands stays linear in the operands."""
    root, system, device = ("@root" in patterns, "@system" in patterns, "@device" in patterns)
    globs = [p for p in patterns if not p.startswith("@")]
    rx = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None

    def test(path: str) -> bool:
        return (
            (root and path == "/")
            or (system and path in SYSTEM_DIRS)
            or (device and _is_device(path))
            or bool(rx and rx.match(path))
        )

    return test


_ALL_NAMES = re.compile(r"(\*|\?|\.|\[[^\]]*\])+")


def _under(base: str, patterns: tuple[str, ...]) -> Match:
    """Could something found under directory ``base`` (find's ``{}``) match a pattern?"""
    prefix = base.rstrip("/") + "/"
    if any(s.startswith(prefix) and _path_is(s, p) for s in _SAMPLES for p in patterns):
        return True
    if base == "~":
        return False  # a home directory holds nothing our patterns name below it
    for p in patterns:
        if p == "@device":
            fixed = "/dev/"
        elif p.startswith("@"):
            continue  # the system dirs are all in the samples
        else:
            fixed = _glob_prefix(p)
        if fixed.startswith(prefix) or prefix.startswith(fixed.rstrip("/") + "/"):
            return None
    return False


#: Stands for the digits of a ``safe`` word's expansions (a character no path holds).
_DIGITS = "\x01"


@lru_cache(maxsize=65536)
def _path_matches(word: Word, cwd: str | None, patterns: tuple[str, ...]) -> Match:
    """Does the path a word names match one of the patterns? Maybe if only known at run
    time (cached: a command often names the same path many times)."""
    is_match = path_test(patterns)
    if word.safe and DYN in word.value:  # x.$$, backup-$(date +%F): digits, or nothing
        readings = [
            Word(word.value.replace(DYN, r), word.raw, False, word.glob) for r in ("", _DIGITS)
        ]
        return _any([_path_matches(w, cwd, patterns) for w in readings])
    path = resolve_path(word.value, cwd)
    if path is None:
        static = word.value.split(DYN, 1)[0]
        if word.raw in (FOUND, SOME) and static.endswith("/"):
            base = resolve_path(static, cwd)
            if base is not None:
                if word.raw == SOME:  # only some paths under base: never a certain match
                    return None if _under(base, patterns) is True else False
                return is_match(base) or _under(base, patterns)
        return None
    if is_match(path):
        return True
    if word.glob and path.startswith(("/", "~")):
        parent, _, last = path.rpartition("/")
        if _ALL_NAMES.fullmatch(last) and is_match(parent or "/"):  # DIR/*: judge DIR too
            return True
        return any(is_match(s) for s in _SAMPLES if fnmatchcase(s, path))
    return False


def _none_of(results: list[Match]) -> Match:
    """True when no result matched; maybe when one only maybe-matched."""
    if True in results:
        return False
    return None if None in results else True


def _any(results: list[Match]) -> Match:
    if True in results:
        return True
    return None if None in results else False


@dataclass
class Rule:
    """One [[rules]] entry, compiled into matchers."""

    id: str
    action: str
    message: str = ""
    index: int = 0
    conf: dict[str, list[str]] = field(default_factory=dict)
    sql_res: list[re.Pattern[str]] = field(default_factory=list)
    checks: list[Callable[[Command], Match]] = field(default_factory=list)
    prog_exact: frozenset[str] = frozenset()
    prog_re: re.Pattern[str] | None = None
    approval: Approval = NO_APPROVAL

    def in_scope(self, user: str, groups: Collection[str], target: str, login: str) -> bool:
        """Whether the rule applies to this identity at all (groups, users, targets, logins)."""
        return in_scope(self.conf, user, groups, target, login)

    def match(self, cmd: Command) -> Match:
        """True, False, or None (maybe) for one normalized command.

        A run-time word that could be an option is read both ways when it is the only
        one and one field (``"$x"``): as an operand, or as an option (and not an operand).
        """
        result = self._match(cmd)
        if result is None and len(cmd.maybe_options) == 1 and _one_field(cmd.maybe_options[0]):
            w = cmd.maybe_options[0]
            as_operand = self._match(replace(cmd, maybe_options=()))
            as_option = self._match(
                replace(cmd, operands=tuple(o for o in cmd.operands if o is not w))
            )
            result = _any([as_operand, as_option])
        return result

    def _match(self, cmd: Command) -> Match:
        result: Match = True
        for check in self.checks:
            r = check(cmd)
            if r is False:
                return False
            if r is None:
                result = None
        return result

    # ---- matchers -----------------------------------------------------------------
    def compile(self) -> None:
        c = self.conf
        paths = tuple(c.get("paths", ()))
        dest_paths = tuple(c.get("dest_paths", ()))
        if "program" in c:
            globs = [p for p in c["program"] if any(ch in p for ch in "*?[")]
            self.prog_exact = frozenset(p for p in c["program"] if p not in globs)
            self.prog_re = (
                re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None
            )
            self.checks.append(self._program)
        if "subcommand" in c:
            self.checks.append(self._subcommand)
        if "options" in c:
            self.checks.append(
                lambda cmd: (
                    any(self._has(cmd, o) for o in c["options"])
                    or (None if cmd.maybe_options else False)
                )
            )
        if "options_all" in c:
            self.checks.append(
                lambda cmd: (
                    all(self._has(cmd, o) for o in c["options_all"])
                    or (None if cmd.maybe_options else False)
                )
            )
        if "not_options" in c:
            self.checks.append(lambda cmd: not any(o in cmd.options for o in c["not_options"]))
        if "args" in c:
            self.checks.append(
                lambda cmd: _any([_could_match(w, p) for w in cmd.words for p in c["args"]])
            )
        if "not_args" in c:
            self.checks.append(
                lambda cmd: _none_of([_could_match(w, p) for w in cmd.words for p in c["not_args"]])
            )
        if "operands" in c:
            self.checks.append(
                lambda cmd: _any([_could_match(w, p) for w in cmd.operands for p in c["operands"]])
            )
        if "dest_paths" in c:
            self.checks.append(
                lambda cmd: cmd.dest is not None and _path_matches(cmd.dest, cmd.cwd, dest_paths)
            )
        if "paths" in c:
            unjudged = tuple(c.get("not_paths", ()))
            self.checks.append(
                lambda cmd: _any(
                    [
                        _path_matches(w, cmd.cwd, paths)
                        for w in cmd.operands
                        if not (unjudged and _path_matches(w, cmd.cwd, unjudged) is True)
                    ]
                )
            )
        if "redirects" in c:
            self.checks.append(self._redirects)
        if "overwrites" in c:
            self.checks.append(self._overwrites)
        if "sql" in c:
            self.checks.append(self._sql)
        if "tags" in c:
            self.checks.append(lambda cmd: any(t in cmd.tags for t in c["tags"]))
        if "not_tags" in c:
            self.checks.append(lambda cmd: not any(t in cmd.tags for t in c["not_tags"]))
        if "assigns" in c:
            assigns = re.compile("|".join(fnmatch.translate(p) for p in c["assigns"]))
            self.checks.append(lambda cmd: any(assigns.match(a) for a in set(cmd.assigns)))

    def covers_arguments(self, cmd: Command) -> bool:
        """Whether the rule asks something of the arguments (not only of the name) and
        the command gives it for sure: then, with a name only known at run time, the rule
        still says what the command would do."""
        asked = [k for k in _ARGUMENT_KEYS if k in self.conf and self.conf[k] != ["*"]]
        return bool(asked) and self._match(replace(cmd, program=_ANY_NAME)) is True

    def names(self, program: str) -> bool:
        """Whether the rule's ``program`` key (if any) names this program exactly."""
        if "program" not in self.conf:
            return True
        return program in self.prog_exact or bool(self.prog_re and self.prog_re.match(program))

    def _program(self, cmd: Command) -> Match:
        pats = self.conf["program"]
        if cmd.program == _ANY_NAME or self.names(cmd.program):
            return True
        if "glob-command" in cmd.tags or "dynamic-command" in cmd.tags:
            if "dynamic-command" in cmd.tags and cmd.program in ("?", "*"):
                return None
            return any(fnmatchcase(p, cmd.program) for p in pats)
        return False

    def _subcommand(self, cmd: Command) -> Match:
        ops = [w.value.lower() for w in cmd.operands]
        dynamic = any(w.dynamic for w in cmd.operands)
        for entry in self.conf["subcommand"]:
            want = entry.lower().split()
            if not want:
                continue
            if want[0] not in ops[:2]:
                continue
            it = iter(ops[ops.index(want[0]) + 1 :])
            if all(any(fnmatchcase(x, w) for x in it) for w in want[1:]):
                return True
        return None if dynamic and not ops[:1] else False

    def _sql(self, cmd: Command) -> Match:
        """A regex matches the SQL; maybe if part of the SQL is only known at run time."""
        if cmd.sql is None:
            return False
        text = match_text(cmd.sql.replace(DYN, " ${_} "))
        if any(r.search(text) for r in self.sql_res):
            return True
        return None if DYN in cmd.sql else False

    @staticmethod
    def _has(cmd: Command, option: str) -> bool:
        if option in cmd.options:
            return True
        if option.startswith("--"):  # GNU: any unambiguous prefix, we accept any prefix
            return any(
                o.startswith("--") and len(o) >= 3 and option.startswith(o) for o in cmd.options
            )
        return False

    def _overwrites(self, cmd: Command) -> Match:
        """Files emptied or replaced: a truncating redirect (``: > f``, not ``>>``), or
        the operands of ``truncate``/``shred``/``wipe``."""
        pats = tuple(self.conf["overwrites"])
        results: list[Match] = []
        appends = cmd.program == "tee" and ({"-a", "--append"} & cmd.options)
        for op, target in cmd.redirects:
            if appends and any(target is w for w in cmd.operands):
                continue  # tee -a FILE appends
            if op in (">", ">|", "&>") or (op == ">&" and not re.fullmatch(r"\d+|-", target.value)):
                results.append(_path_matches(target, cmd.cwd, pats))
        if cmd.program in ("truncate", "shred", "wipe", "srm"):
            results += [_path_matches(w, cmd.cwd, pats) for w in cmd.operands]
        return _any(results)

    def _redirects(self, cmd: Command) -> Match:
        results: list[Match] = []
        for op, target in cmd.redirects:
            if op not in (">", ">>", ">|", "&>", "&>>", "<>", ">&"):
                continue
            if op == ">&" and re.fullmatch(r"\d+|-", target.value):
                continue
            unjudged = tuple(self.conf.get("not_paths", ()))
            if unjudged and _path_matches(target, cmd.cwd, unjudged) is True:
                continue
            results.append(_path_matches(target, cmd.cwd, tuple(self.conf["redirects"])))
        return _any(results)


def load_rules(source: TomlSource, raw: Any) -> list[Rule]:
    """Validate ``[[rules]]`` with the schema; any mistake is a ConfigError at file:line:key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise source.error(("rules",), "must be an array of tables ([[rules]])")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        model = check_section(source, RuleModel, entry, ("rules", i))
        if model.id in seen:
            raise source.error(("rules", i, "id"), f"duplicate rule id {model.id!r}")
        seen.add(model.id)
        conf = {k: list(getattr(model, k)) for k in RULE_LIST_KEYS if getattr(model, k) is not None}
        rule = Rule(model.id, model.action, model.message, i, conf)
        rule.sql_res = [re.compile(p, re.I) for p in conf.get("sql", [])]
        rule.approval = approval_of(model)
        rule.compile()
        rules.append(rule)
    return rules


def approval_of(model: RuleModel | FileRuleModel) -> Approval:
    """The approval settings a review rule carries (defaults left to [approvals])."""
    ttl = parse_duration(model.approval_ttl) if model.approval_ttl else None
    return Approval(tuple(model.approvers or ()), model.approvals_required, ttl)
