"""The decision: every command that could run is judged; the most restrictive one wins.

Per normalized command: the most restrictive deny/review rule that matches decides (a
"maybe" match of a deny rule is held at on_unknown); otherwise a finding we cannot judge
(``normalize.UNKNOWN_TAGS``) gives on_unknown unless an allow rule matches that command;
otherwise an allow rule, else the policy default. Across commands the most restrictive
action wins; among equals, the first in source order names the rule and the reason (for
an allow, the first command as typed rather than one nested in a substitution or wrapper).

``decide`` is pure and never raises: an input too large is denied (rule ``too-long``), an
input we cannot read, or any internal error, gets on_unknown (rule ``on_unknown``).
Analysis of a command string (parse + normalize + bashlex cross-check) is cached with an
LRU per policy, since agents repeat commands; rules are evaluated on every call because
they depend on the identity.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import lru_cache

from .arith import ArithNames
from .crosscheck import bashlex_command_spans, needs_crosscheck
from .files import FileRule, command_ops
from .normalize import ALLOWABLE_TAGS, UNKNOWN_TAGS, Command, normalize
from .profiles import Profile, default_for
from .program_kinds import PAGERS, SCREEN_PROGRAMS
from .rules import NO_APPROVAL, SEVERITY, Approval, Rule
from .runtext import run_text
from .shparse import parse
from .structure import Reading, StructureCheck, needs_structure_check
from .terminal import terminal_tags, wants_safe_environment
from .trust import run_time_trust, trusted
from .words import AnalysisTimeout, ShellSyntaxError

__all__ = ["Decision", "Policy", "decide", "PolicyTest"]

TAG_TEXT = {
    "dynamic-command": "the command name is only known at run time",
    "glob-command": "the command name is a glob",
    "pipe-to-shell": "a shell reads code from a pipe or file we cannot see",
    "script-file": "runs a script file we cannot see",
    "interpreter-code": "runs inline interpreter code",
    "source": "sources a file we cannot see",
    "arith-substitution": "arithmetic contains a command substitution",
    "untrusted-script": "runs a script from a temporary directory, a pipe or stdin",
    "written-then-run": "runs a script, config or package written in the same command line",
    "arith-runtime": "arithmetic reads a value only known at run time (which can run commands)",
    "history-expansion": "uses history expansion",
    "dynamic-code": "runs a shell string only known at run time",
    "too-deep": "nesting is too deep to follow",
    "path-hijack": "puts a directory users can write first in PATH",
    "rebinds-command": "binds a command name to another program or library",
    "glob-variable": "names a variable with a glob (files decide which one is set)",
    "runtime-names": "sets or tests variables named only at run time (OPTIND=a[$(cmd)] or "
    "an array subscript there runs cmd)",
}


@dataclass(frozen=True)
class Decision:
    """The outcome for one command: action, the rule that decided, and why.

    ``run`` is the exact text to send upstream for allow (and, once approved, review):
    the command as decided, with the safe environment prefix of ``runtext`` when the
    policy sets one; "" for deny. The approval fields are those of the deciding review
    rule (empty ``approvers`` and ``approval_ttl`` None: the ``[approvals]`` defaults).
    """

    action: str  # "allow" | "deny" | "review"
    rule: str
    reason: str
    commands: tuple[str, ...] = ()
    run: str = ""
    approvers: tuple[str, ...] = ()
    approvals_required: int = 1
    approval_ttl: int | None = None


@dataclass(frozen=True)
class PolicyTest:
    """One [[tests]] entry: a command, who runs it where, and the expected action."""

    command: str
    expect: str
    user: str = "test"
    groups: tuple[str, ...] = ()
    target: str = "test"
    login: str = "root"
    cwd: str | None = None
    rule: str | None = None
    name: str = ""
    index: int = 0
    pty: bool = False

    def run(self, policy: Policy) -> tuple[Decision, bool]:
        """The decision for this entry, and whether it is the expected one."""
        d = decide(
            policy,
            user=self.user,
            groups=self.groups,
            target=self.target,
            login=self.login,
            command=self.command,
            cwd=self.cwd,
            pty=self.pty,
        )
        return d, d.action == self.expect and (self.rule is None or d.rule == self.rule)


class _Scoped:
    """What applies to one identity: rules indexed by program, the [[files]] rules that
    judge commands, and the default for a command no rule matched."""

    def __init__(self, rules: list[Rule], files: list[FileRule], default: tuple[str, str, str]):
        self.rules = rules
        self.files = files
        self.default = default
        self.by_program: dict[str, list[Rule]] = {}

    def for_command(self, cmd: Command) -> list[Rule]:
        if "glob-command" in cmd.tags or "dynamic-command" in cmd.tags:
            return self.rules  # a name only known at run time: every rule is judged
        found = self.by_program.get(cmd.program)
        if found is None:
            if len(self.by_program) > 4096:
                self.by_program.clear()
            found = self.by_program[cmd.program] = [r for r in self.rules if r.names(cmd.program)]
        return found


@dataclass(frozen=True)
class Verdict:
    """The judgement of one normalized command."""

    action: str
    rule: str
    message: str
    approval: Approval = NO_APPROVAL


class _Cache:
    """LRU of analyses by exact (command, cwd); a time-out is never stored."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[tuple[str, str | None], Analysis] = OrderedDict()

    def get(self, key: tuple[str, str | None]) -> Analysis | None:
        hit = self.data.get(key)
        if hit is not None:
            self.data.move_to_end(key)
        return hit

    def put(self, key: tuple[str, str | None], value: Analysis) -> None:
        if self.size <= 0 or value.timed_out:
            return
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


@dataclass(frozen=True)
class Analysis:
    """What a command string holds: normalized commands, or why it cannot be read."""

    commands: tuple[Command, ...]
    failure: str = ""
    timed_out: bool = False


@dataclass(eq=False)
class Policy:
    """Loaded, validated rules with the [policy] settings; build with ``load_policy``."""

    on_unknown: str = "review"
    default: str = "allow"
    rules: list[Rule] = field(default_factory=list)
    file_rules: list[FileRule] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    tests: list[PolicyTest] = field(default_factory=list)
    max_command_bytes: int = 65536
    parse_timeout_ms: int = 150
    cache_size: int = 4096
    crosscheck: bool = True
    structure_check: bool = True
    bash: str = "/bin/bash"
    structure_timeout_ms: int = 1000
    files_default: str = "allow"
    safe_environment: bool = True

    def __post_init__(self) -> None:
        self.cache = _Cache(self.cache_size)
        self.scoped = lru_cache(maxsize=256)(self._scoped)
        self.checker = StructureCheck(self.bash, self.structure_timeout_ms / 1000)

    def for_tests(self) -> Policy:
        """The same policy with a generous time bound: tests check rules, not load (a
        row held because the machine was busy would fail at random)."""
        return replace(self, parse_timeout_ms=max(self.parse_timeout_ms, 5000))

    def _scoped(self, user: str, groups: frozenset[str], target: str, login: str) -> _Scoped:
        """The rules that apply to one identity, indexed by program (cached)."""
        return _Scoped(
            [r for r in self.rules if r.in_scope(user, groups, target, login)],
            [
                f
                for f in self.file_rules
                if "command" in f.via and f.in_scope(user, groups, target, login)
            ],
            default_for(self.profiles, self.default, user, groups, target, login),
        )

    def analyze(self, command: str, cwd: str | None) -> Analysis:
        """Parse and normalize once per exact (command, cwd) (cached, time-outs excepted)."""
        key = (command, cwd)
        hit = self.cache.get(key)
        if hit is None:
            hit = self._analyze(command, cwd)
            self.cache.put(key, hit)
        return hit

    def _analyze(self, command: str, cwd: str | None) -> Analysis:
        checked = self.structure_check and needs_structure_check(command)
        reading = self.checker.begin(command) if checked else None
        try:
            return self._analyze_read(command, cwd, checked, reading)
        finally:
            if reading is not None:
                reading.cancel()  # our reader failed first: bash's reading is not needed

    def _analyze_read(
        self, command: str, cwd: str | None, checked: bool, reading: Reading | None
    ) -> Analysis:
        timeout = self.parse_timeout_ms / 1000
        start = time.monotonic()
        trust = False
        try:
            arith: list[tuple[int, int]] = []
            digits: set[str] = set()
            names = ArithNames()
            parsed = parse(command, timeout, arith=arith, digits=digits, names=names)
            left = max(timeout - (time.monotonic() - start), 0.001)
            cmds = normalize(parsed, cwd, left, digits=digits, names=names)
            if failure := run_time_trust(command, cmds, digits, names):
                return Analysis((), failure)
            if trusted(command, cmds):
                trust = True
                left = max(timeout - (time.monotonic() - start), 0.001)
                cmds = normalize(parse(command, left, trust=True), cwd, left, trust=True)
        except AnalysisTimeout as exc:
            return Analysis((), f"cannot parse: {exc}", timed_out=True)
        except ShellSyntaxError as exc:
            return Analysis((), f"cannot parse: {exc}")
        except RecursionError:
            return Analysis((), "cannot parse: nesting too deep")
        # bashlex is the second reader where bash's own does not confirm the structure:
        # once bash reads no command we did not, bashlex can only add its own misreads
        if self.crosscheck and not self.structure_check and needs_crosscheck(command):
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                return Analysis((), "cannot parse: analysis took too long", timed_out=True)
            spans = bashlex_command_spans(_blank(command, arith))
            seen = {c.rendered for c in cmds}
            for span in spans or ():
                try:
                    extra = normalize(
                        parse(span, left, partial=True, trust=trust), cwd, left, trust=trust
                    )
                except AnalysisTimeout:
                    return Analysis((), "cannot parse: analysis took too long", timed_out=True)
                except (ShellSyntaxError, RecursionError):
                    return Analysis((), f"cannot parse (second reader disagrees): {span[:60]!r}")
                for c in extra:
                    if c.rendered not in seen:
                        seen.add(c.rendered)
                        cmds.append(c)
        if checked:
            verdict = self.checker.confirm(command, cmds, trust, reading)
            if verdict.failure:
                return Analysis((), verdict.failure, timed_out=verdict.timed_out)
        return Analysis(tuple(cmds))

    def judge(self, cmd: Command, scoped: _Scoped) -> Verdict:
        """The verdict for one normalized command: command rules, then [[files]] rules."""
        rules = scoped.for_command(cmd)
        if cmd.program == "?" and not cmd.words and not cmd.redirects:
            rules = []  # a bare run-time name (eval "$(x)"): every rule is a maybe, none tells
        # With a name only known at run time every rule is a maybe; the one named is one
        # whose conditions on the arguments hold for sure (destructive-rm for
        # `$(which rm) -rf /`), else none is (see below). (severity, tells, action, rule)
        hidden = sorted(cmd.tags & {"dynamic-command", "glob-command"})
        best: tuple[int, bool, str, Rule | FileRule] | None = None
        allowed: Rule | None = None
        for rule in rules:
            m = rule.match(cmd)
            if m is False:
                continue
            if rule.action == "allow":
                if m is True and allowed is None:
                    allowed = rule
                continue
            action = rule.action
            if m is None and SEVERITY[self.on_unknown] < SEVERITY[action]:
                action = self.on_unknown
            tells = not hidden or m is True or rule.covers_arguments(cmd)
            if best is None or (SEVERITY[action], tells) > best[:2]:
                best = (SEVERITY[action], tells, action, rule)
        if scoped.files:
            for op, word in command_ops(cmd):
                for frule in scoped.files:
                    if frule.action == "allow":
                        continue
                    fm = frule.could_match(op, word, cmd.cwd)
                    if fm is False and word.dynamic and cmd.literals:
                        fm = frule.could_be_literal(op, word, cmd.literals, cmd.cwd)
                    if fm is False:
                        continue
                    action = frule.action
                    if fm is None and SEVERITY[self.on_unknown] < SEVERITY[action]:
                        action = self.on_unknown
                    if best is None or SEVERITY[action] > best[0]:
                        best = (SEVERITY[action], True, action, frule)
        if best is not None:
            _, tells, action, winner = best
            if not tells:
                # the rule only "maybe" matched because the name is unknown: naming it
                # ("disk-wipe" for `$c hi`) would claim a reading the bastion does not
                # have; its approval settings still apply, so nothing gets easier
                approval = winner.approval if action == "review" else NO_APPROVAL
                reason = TAG_TEXT[hidden[0]] + ", so any rule could apply"
                return Verdict(action, "on_unknown", reason, approval)
            msg = winner.message or (
                "" if action == winner.action else "an operand is only known at run time"
            )
            approval = winner.approval if action == "review" else NO_APPROVAL
            return Verdict(action, winner.id, msg, approval)
        unknown = sorted(cmd.tags & UNKNOWN_TAGS)
        if unknown and (allowed is None or not set(unknown) <= ALLOWABLE_TAGS):
            return Verdict(self.on_unknown, "on_unknown", TAG_TEXT.get(unknown[0], unknown[0]))
        if allowed is not None:
            return Verdict("allow", allowed.id, allowed.message)
        if not cmd.program:
            return Verdict("allow", "default", "")
        return Verdict(*scoped.default)


def _blank(command: str, spans: list[tuple[int, int]]) -> str:
    """The command with arithmetic text blanked for bashlex, which reads ``(( $# > 1 ))``
    as nested subshells running ``$#`` (our reader judges arithmetic itself)."""
    if not spans:
        return command
    chars = list(command)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _describe(action: str, rule: str, cmd: Command | None, message: str) -> str:
    text = f"{action} ({rule})"
    if cmd is not None:
        text += f": {cmd.rendered}" + (f" {cmd.via}" if cmd.via else "")
    if message:
        text += f" — {message}" if cmd is not None else f": {message}"
    return text


def decide(
    policy: Policy,
    *,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
    command: str,
    cwd: str | None = None,
    pty: bool = False,
) -> Decision:
    """Decide one command for one identity. Pure and never raises (see module doc).

    ``pty``: the command gets a terminal, so a pager in it can run what is typed at it
    (``!cmd`` in less): pagers are then tagged ``takes-terminal`` like editors."""
    try:
        return _decide(policy, user, groups, target, login, command, cwd, pty=pty)
    except Exception as exc:  # noqa: BLE001 - fail closed on any internal error
        action = getattr(policy, "on_unknown", "review")
        action = action if action in ("review", "deny") else "review"
        return Decision(
            action,
            "on_unknown",
            f"{action} (on_unknown): internal error while deciding: {type(exc).__name__}: {exc}",
        )


_CONTROL = re.compile(r"[\x01-\x08\x0b-\x1f\x7f]")
#: Look-alikes NFKC keeps apart from the ASCII they imitate.
_LOOKALIKE = str.maketrans(
    {
        "\u2215": "/",
        "\u2044": "/",
        "\u29f8": "/",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\ufe63": "-",
        "\u02bc": "'",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        # Cyrillic and Greek letters drawn like Latin ones
        "\u0430": "a",
        "\u0441": "c",
        "\u0435": "e",
        "\u043e": "o",
        "\u0440": "p",
        "\u0445": "x",
        "\u0443": "y",
        "\u0456": "i",
        "\u0458": "j",
        "\u0455": "s",
        "\u0501": "d",
        "\u04bb": "h",
        "\u0261": "g",
        "\u03bf": "o",
        "\u03b1": "a",
        "\u0410": "A",
        "\u0412": "B",
        "\u0415": "E",
        "\u041a": "K",
        "\u041c": "M",
        "\u041d": "H",
        "\u041e": "O",
        "\u0420": "P",
        "\u0421": "C",
        "\u0422": "T",
        "\u0425": "X",
    }
)


def _odd_character(command: str) -> str:
    """Describe a control, invisible or odd space character, or "" if there is none."""
    for ch in command:
        if ch in "\t\n" or (ch.isascii() and ch.isprintable()):
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") or (cat == "Zs" and ch != " "):
            return f"the character U+{ord(ch):04X} ({unicodedata.name(ch, cat)})"
    return ""


def _fold(command: str) -> str:
    """The ASCII a reader would see in full-width, accented or look-alike characters
    (``ｒｍ``, ``r\u0301m``, Cyrillic ``r\u0435boot``)."""
    if command.isascii():
        return command
    text = unicodedata.normalize("NFKD", command)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", text).translate(_LOOKALIKE)


def _decide(
    policy: Policy,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
    command: str,
    cwd: str | None,
    fold: bool = True,
    pty: bool = False,
) -> Decision:
    if not isinstance(command, str):
        return Decision(
            policy.on_unknown,
            "on_unknown",
            f"{policy.on_unknown} (on_unknown): the command is not text",
        )
    size = len(command.encode("utf-8", "surrogatepass"))
    if size > policy.max_command_bytes:
        return Decision(
            "deny",
            "too-long",
            f"deny (too-long): the command is {size} bytes, "
            f"more than the limit of {policy.max_command_bytes}",
        )
    if "\x00" in command:
        return Decision(
            policy.on_unknown,
            "on_unknown",
            f"{policy.on_unknown} (on_unknown): the command contains a NUL byte",
        )
    if fold and (not command.isascii() or _CONTROL.search(command)):
        odd = _odd_character(command)
        if odd:
            return Decision(
                policy.on_unknown,
                "on_unknown",
                f"{policy.on_unknown} (on_unknown): the command contains {odd}, "
                "which can make it read differently from what runs",
                run=run_text(command, policy.safe_environment),
            )
        folded = _fold(command)
        if folded != command:  # full-width and look-alike letters: judge the ASCII reading too
            plain = _decide(policy, user, groups, target, login, command, cwd, False, pty)
            other = _decide(policy, user, groups, target, login, folded, cwd, False, pty)
            worse = other if SEVERITY[other.action] > SEVERITY[plain.action] else plain
            return replace(worse, run=plain.run if worse.action != "deny" else "")
    analysis = policy.analyze(command, cwd)
    if analysis.failure:
        return Decision(
            policy.on_unknown,
            "on_unknown",
            _describe(policy.on_unknown, "on_unknown", None, analysis.failure),
            run=run_text(command, policy.safe_environment),  # unread: the safe line too
        )
    cmds = tuple(
        replace(c, tags=c.tags | {"takes-terminal"})
        if (pty and (c.program in PAGERS or c.program in SCREEN_PROGRAMS)) or terminal_tags(c, pty)
        else c
        for c in analysis.commands
    )
    rendered = tuple(dict.fromkeys(c.rendered + (f" ({c.via})" if c.via else "") for c in cmds))
    run = run_text(command, policy.safe_environment and wants_safe_environment(cmds))
    if not cmds:
        return Decision("allow", "default", "allow (default): empty command", (), run)
    scoped = policy.scoped(user, frozenset(groups), target, login)
    best: tuple[Verdict, Command] | None = None
    give_up = time.monotonic() + 2 * policy.parse_timeout_ms / 1000
    for n, cmd in enumerate(cmds):
        if n & 63 == 63 and time.monotonic() > give_up:  # judging is bounded too
            return Decision(
                policy.on_unknown,
                "on_unknown",
                _describe(policy.on_unknown, "on_unknown", None, "too many commands to judge"),
                rendered,
                run,
            )
        verdict = policy.judge(cmd, scoped)
        if (
            best is None
            or SEVERITY[verdict.action] > SEVERITY[best[0].action]
            or (verdict.action == best[0].action == "allow" and best[1].via and not cmd.via)
        ):  # an allow names the command as typed rather than one nested in it
            best = (verdict, cmd)
    assert best is not None
    v, cmd = best
    return Decision(
        v.action,
        v.rule,
        _describe(v.action, v.rule, cmd, v.message),
        rendered,
        "" if v.action == "deny" else run,
        v.approval.approvers,
        v.approval.required,
        v.approval.ttl,
    )
