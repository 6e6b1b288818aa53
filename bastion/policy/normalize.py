"""Simple commands as written -> normalized commands as they would run.

For each simple command: the program name without its path, options read the way that
program reads them (``programs``; GNU-style by default),
wrappers unwrapped recursively (sudo, env, timeout, xargs, find -exec, ssh, kubectl exec,
...), strings a shell will run parsed again (``bash -c``, ``eval``, ``trap``, ``alias``,
``su -c``, here-docs and literal pipes into shells, psql ``\\!``), aliases defined earlier
in the input expanded with their arguments, and findings recorded as tags. Tags in
``UNKNOWN_TAGS`` mean "we cannot know what runs": the policy gives them its on_unknown
action unless a rule allows that command. Readings for particular tools (git, ip, pkill,
files run later, links) are in ``tools``; for programs that start others (wrappers,
``find -exec``, containers, SQL clients) in ``launchers``; for shell builtins (``cd``,
``eval``, ``trap``, ``alias``, variables set by name) in ``shell_builtins``; programs we do not
know in ``unknown``.

Limits: we do not run anything, so a script file, a pipe from ``curl``/``base64 -d`` into
a shell, inline interpreter code (``python -c``, ``perl -e``, ``awk system()``, ``sed e``),
or a dynamic word in command position is unknown, never guessed; so is a program named
by a path outside the system bin directories (``./deploy.sh``, ``/tmp/x``), a REPL, a
``PATH`` that puts a user-writable directory first, and ``hash -p``/``enable -f``.
Variables are not tracked (``x=/; rm -rf $x`` is judged with ``$x`` unknown; the trusted
reading of ``$HOME``, ``$USER`` and digit-only expansions is in ``decide.trusted``). A
program run through a wrapper we do not list gets the readings of ``unknown`` (its
arguments from a known program on; command lines among them). Recursion through
wrappers and nested shells stops at ``MAX_NEST`` (deeper is unknown), and a string run
two or more levels down is read only up to ``MAX_NESTED_TEXT`` bytes. Paths, stdin and
written files: see ``effects``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from .arith import ArithNames
from .effects import (
    backup_copy,
    dest,
    path_hijack,
    program_name,
    resolve_path,
    sed_runs_code,
    stdin_of,
    system_bin,
    writes,
)
from .getopt import Spec, _q, read_options, spec, wrapper_options
from .killing import KillReadings, pid_file_rechecked
from .launchers import COMPOSE, INFO_ONLY, LauncherReadings
from .pipelines import runs_command
from .program_kinds import (
    AWK_CODE,
    AWKS,
    EDITORS,
    PY_CODE,
    PY_PROGRAMS,
    PY_REPLS,
    RESERVED,
    RUNTIME_TOOLS,
    SCRIPT_RUNNERS,
    SHELL_STARTERS,
    TERMINAL_PROGRAMS,
    TMUX_SHELL,
)
from .programs import GLOBAL_SPECS, OPT_SPECS, RUNS_COMMAND, TAKES_COMMAND_OPTS
from .scripts import ScriptReadings
from .shell_builtins import (
    DECLARED,
    DECLARERS,
    MAX_NESTED_TEXT,
    NAME_SETTERS,
    SHELL_BUILTINS,
    BuiltinReadings,
    assigned,
    declared,
    exported_as_is,
)
from .shparse import SimpleCommand, parse
from .tools import ToolReadings, kill_tag
from .unknown import BUILTINS, NOT_WRAPPERS, SHORT_NAMES, TRIGGERS
from .words import DYN, MANY_WORDS, AnalysisTimeout, ShellSyntaxError, Word
from .wrappers import INTERPRETERS, KNOWN_PROGRAMS, SHELLS, SQL_CLIENTS, WRAPPERS

__all__ = [
    "Command",
    "UNKNOWN_TAGS",
    "ALLOWABLE_TAGS",
    "normalize",
    "resolve_path",
]

MAX_NEST = 12
UNKNOWN_TAGS = frozenset(
    {
        "dynamic-command",
        "glob-command",
        "pipe-to-shell",
        "script-file",
        "interpreter-code",
        "source",
        "arith-substitution",
        "arith-runtime",
        "written-then-run",
        "untrusted-script",
        "history-expansion",
        "dynamic-code",
        "too-deep",
        "path-hijack",
        "rebinds-command",
        "glob-variable",
        "runtime-names",
    }
)

#: Unknown findings an allow rule may accept for a command (the issue's "unless a rule
#: allows it"); the others are held whatever the rules say.
ALLOWABLE_TAGS = frozenset({"script-file", "interpreter-code", "untrusted-script"})
#: Writing these keeps nothing a later program could run (curl -o /dev/null).
_SINKS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"})

_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
#: Programs ``special`` reads its own way (no unknown-program reading for them).
_HANDLED = (
    frozenset(WRAPPERS)
    | SHELLS
    | frozenset(INTERPRETERS)
    | SQL_CLIENTS
    | AWKS
    | COMPOSE
    | {"sed", "find", "eval", "source", ".", "trap", "alias", "at", "batch", "less", "more"}
    | {"most", "make", "gmake", "kubectl", "oc", "docker", "podman", "nerdctl", "hash"}
    | {"crictl", "lxc", "incus"}
    | {"enable", "fc", "r", "mapfile", "readarray", "complete", "compgen", "bind", "parted"}
    | {"export", "declare", "typeset", "local", "readonly", "git", "ip", "pkill", "killall"}
)
#: Cloud metadata endpoints that hand out the machine's credentials (AWS instance and ECS
#: task roles, Azure managed identities, GCP service accounts).
_METADATA_CREDENTIALS = re.compile(
    r"(169\.254\.169\.254|\[?fd00:ec2::254\]?|metadata\.google\.internal|169\.254\.170\.2)"
    r"[^\s]*/(security-credentials|identity/oauth2/token|service-accounts/[^/\s]+/token"
    r"|v2/credentials)",
    re.I,
)
_MODE_CLAUSE = re.compile(r"([ugoa]*)([-+=])([rwxXstugo]*)")


def _grants_setuid(name: str, args: list[Word]) -> bool:
    """``chmod u+s F``, ``chmod 4755 F``, ``install -m 4755``: a mode with set-user-ID;
    ``chmod --reference=/usr/bin/sudo F`` copies whatever mode that has. (Set-group-ID
    is left alone: ``chmod g+s DIR`` for shared directories is everyday.)"""
    if name == "chmod" and any(w.value.startswith("--reference") for w in args):
        return True
    if name == "install":
        read = read_options(args, OPT_SPECS.get("install"))
        modes = [v for o, v in read.options if o in ("-m", "--mode") and v is not None]
    else:
        modes = [w for w in args if not w.value.startswith("-") or _MODE_CLAUSE.fullmatch(w.value)]
        modes = modes[:1]
    for w in modes:
        if w.dynamic:
            continue
        if re.fullmatch(r"0*[4-7][0-7]{3}", w.value):
            return True
        for clause in w.value.split(","):
            m = _MODE_CLAUSE.fullmatch(clause)
            who = m.group(1) if m else ""
            if (
                m
                and m.group(2) in "+="
                and "s" in m.group(3)
                and (not who or set(who) & {"u", "a"})
            ):
                return True
    return False


#: Container tools whose exec/run start a command inside (the CRI client, LXD/Incus too).
_CONTAINER_TOOLS = frozenset(
    {"kubectl", "oc", "docker", "podman", "nerdctl", "crictl", "lxc", "incus"}
)


def _unit_file(args: list[Word]) -> bool:
    """``systemctl link|enable PATH``: a unit file given by path, whose commands run."""
    ops = read_options(args, OPT_SPECS.get("systemctl")).operands
    verbs = ("link", "enable", "reenable", "start", "restart")
    return bool(ops) and ops[0].value in verbs and any("/" in w.value for w in ops[1:])


_PARTED_INFO = frozenset({"-l", "--list", "-h", "--help", "-v", "--version"})


def _starts_terminal(name: str, args: list[Word]) -> bool:
    """tmux / screen / zellij starting or attaching to a shell (tmux new -d 'CMD' and
    screen -dm CMD run CMD instead: judged as unknown-program readings)."""
    values = [w.value for w in args]
    if name == "screen":
        if any(
            v in ("-ls", "-list", "-X", "-Q", "-v", "-version", "--version", "-wipe")
            for v in values
        ):
            return False
        if any(re.fullmatch(r"-[dD]?[rRx][rR]?", v) for v in values):
            return True  # screen -r NAME, -x, -RR: attaches to a shell
        read = read_options(args, spec("S:c:e:h:L:p:T:t:", "", ""))
        return not read.operands  # screen CMD runs CMD
    read = read_options(args, spec("L:S:f:c:T:", "", ""))
    ops = [w.value for w in read.operands]
    if not ops:
        return True
    if ops[0] not in TMUX_SHELL:
        return False
    sub = read_options(args[values.index(ops[0]) + 1 :], spec("c:e:F:n:s:t:x:y:l:p:", "", ""))
    return not sub.operands  # tmux new -s work 'make': runs make


@dataclass(frozen=True)
class Command:
    """One normalized simple command, ready for rules."""

    program: str  # name without path; "" for bare assignments/redirects; "?" if unknown
    words: tuple[Word, ...]  # the arguments after the program, as the program sees them
    options: frozenset[str]
    operands: tuple[Word, ...]
    redirects: tuple[tuple[str, Word], ...]
    assigns: tuple[str, ...]
    tags: frozenset[str]
    via: str
    sql: str | None
    cwd: str | None
    rendered: str
    option_values: tuple[tuple[str, str], ...] = ()
    #: operands only known at run time that could be options (see getopt.could_be_option)
    maybe_options: tuple[Word, ...] = ()
    dest: Word | None = None  # where cp/mv/install/ln/rsync/scp write
    #: literal text this input assigns or prints (x=/etc/shadow, for f in ..., echo P |
    #: xargs, $(echo P)): what a word only known at run time here may turn out to be
    literals: tuple[str, ...] = ()


class Normalizer(ScriptReadings, ToolReadings, LauncherReadings, BuiltinReadings, KillReadings):
    """Walks parsed commands in order, tracking the working directory across ``cd``
    (and aliases, links and mounts made earlier in the input)."""

    def __init__(self, cwd: str | None, timeout: float, trust: bool = False):
        self.cwd = cwd
        self.trust = trust  # nested strings are read the way the input was (see parse)
        self.deadline = time.monotonic() + timeout
        self.out: list[Command] = []
        self.aliases: dict[str, str] = {}  # alias NAME=BODY seen so far in this input
        self.expanding: set[str] = set()  # aliases being expanded (bash never recurses)
        self.guessing = 0  # readings of unknown programs' arguments in progress
        self.written: set[str] = set()  # paths written so far in this input (or globs)
        self.unknown_write = False  # and one whose name is only known at run time
        #: programs whose digits arithmetic trusted in strings this input runs, and the
        #: names their arithmetic reads and sets (see parse)
        self.digits: set[str] = set()
        self.arith_names = ArithNames()
        self.loose_left = 32  # readings of loose launchers' words left (launchers)
        self.links: dict[str, tuple[str, bool]] = {}  # see ToolReadings.note_link
        self.cdpath = False  # CDPATH set in this input: "cd NAME" may go anywhere
        self.literals: tuple[str, ...] = ()  # see Command.literals

    @property
    def timeout(self) -> float:
        """Time left for nested parses; the whole analysis shares one deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AnalysisTimeout("analysis took too long")
        return left

    def run(self, cmds: list[SimpleCommand], via: str = "", depth: int = 0) -> None:
        for sc in cmds:
            ctx = " ".join(x for x in (sc.context, via) if x)
            assigns = tuple(name for name, _ in sc.assigns if name)
            self.cdpath = self.cdpath or "CDPATH" in assigns
            tags = set(sc.tags)
            if any(name == "PATH" and path_hijack(value) for name, value in sc.assigns):
                tags.add("path-hijack")
            if not sc.words:
                self.emit("", [], sc, ctx, tags, assigns)
                continue
            self.command(list(sc.words), sc, ctx, depth, tags, assigns)

    def shell_text(self, text: str, via: str, depth: int) -> bool:
        """Parse a string a shell will run; False (and nothing emitted) if unreadable, or
        too big to read again at this depth (eval eval eval ...: each level re-reads it)."""
        if depth >= MAX_NEST or (depth >= 2 and len(text) > MAX_NESTED_TEXT):
            return False
        timeout = self.timeout  # raises when the shared deadline has passed
        try:
            cmds = parse(
                text,
                timeout,
                trust=self.trust,
                digits=self.digits,
                inherited=True,
                names=self.arith_names,
            )
        except (ShellSyntaxError, RecursionError):
            return False
        self.run(cmds, via, depth + 1)
        return True

    def emit(
        self,
        program: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        tags: set[str],
        assigns: tuple[str, ...],
        sql: str | None = None,
        opts: Spec | None = None,
        at: int | None = None,
        limit: int | None = None,
        linked: bool = False,
    ) -> Command:
        if program in ("tar", "bsdtar") and args and re.fullmatch(r"[A-Za-z]+", args[0].value):
            args = [Word("-" + args[0].value, args[0].raw)] + args[1:]  # old style: tar czf
        if opts is None and program in WRAPPERS and program not in OPT_SPECS:
            opts = WRAPPERS[program].spec  # strace -o FILE: its own options, read its way
        read = read_options(args[:limit], opts or OPT_SPECS.get(program))
        if (
            program in ("chmod", "chown", "chgrp")
            and read.operands
            and not any(o.startswith("--ref") for o, _ in read.options)
            and not MANY_WORDS.search(read.operands[0].raw)
        ):  # the mode or owner is not a path (chown -R $USER: dir); "$@" is mode and paths
            read.operands = read.operands[1:]
            read.maybe = [w for w in read.maybe if w in read.operands]
        if limit is not None:  # a wrapper: the inner command's words are not its options
            read.operands += args[limit:]
            read.rendered += [_q(w.shown()) for w in args[limit:]]
        reds = tuple((r.op, r.target) for r in sc.redirects if r.target is not None)
        shown = [program] if program else []
        shown += read.rendered + [f"{op} {t.shown()}" for op, t in reds]
        written = writes(program, read)
        target = dest(program, read)
        if "backup-copy" in tags and not linked:  # a new name nothing loads, holding what
            if target is not None:  # is already there (yet bash x.bak runs what cp wrote)
                self.note_written(target)
            written, target = [], None
        if written:  # files the program writes count as output redirects
            reds += tuple((">", w) for w in written)
        if not shown:
            shown = [f"{n}=..." for n in assigns]
        cmd = Command(
            program,
            tuple(args),
            frozenset(o for o, _ in read.options),
            tuple(read.operands),
            reds,
            assigns,
            frozenset(tags),
            via,
            sql,
            self.cwd,
            " ".join(shown),
            tuple((o, v.value) for o, v in read.options if v is not None),
            tuple(read.maybe),
            target,
            self.literals if any(w.dynamic for w in args) else (),
        )
        if at is None:
            self.out.append(cmd)
        else:
            self.out[at] = cmd
        if self.links and not linked:  # ln -s / x; rm -rf x/: judged as rm -rf /
            on_link = program in ("rm", "unlink", "rmdir", "mv", "ln")
            new_args = [self.through_links(w, self.cwd, on_link) or w for w in args]
            new_reds = [
                replace(r, target=self.through_links(r.target, self.cwd, False) or r.target)
                if r.target is not None
                else r
                for r in sc.redirects
            ]
            if new_args != args or new_reds != sc.redirects:
                here = f"through a link made earlier {via}".strip()
                linked_sc = replace(sc, redirects=new_reds)
                self.emit(
                    program, new_args, linked_sc, here, tags, assigns, sql, opts, None, limit, True
                )
        return cmd

    def command(
        self,
        words: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
        assigns: tuple[str, ...],
    ) -> None:
        first, args = words[0], words[1:]
        if depth >= MAX_NEST:
            tags.add("too-deep")
        if first.value in self.aliases and not first.quoted and depth < MAX_NEST:
            self.alias(first.value, args, sc, via, depth, tags)
        if first.dynamic:
            tags.add("dynamic-command")
            self.emit("?", args, sc, via, tags, assigns)
            if first.value.replace(DYN, "") == "":
                return
        name = program_name(first.value.replace(DYN, "*") if first.dynamic else first.value)
        if first.glob or first.dynamic:
            tags.add("glob-command")
            self.emit(name, args, sc, via, tags, assigns)
            for known in sorted(KNOWN_PROGRAMS):
                if fnmatchcase(known, name):
                    self.command([Word(known)] + args, sc, via, depth + 1, set(tags), assigns)
            return
        if "/" in first.value and name not in KNOWN_PROGRAMS and not system_bin(first.value):
            tags.add("script-file")  # ./deploy.sh, /tmp/x: a file we cannot see
        if name in RESERVED and args:  # "sudo { rm -rf /; }": what was meant is judged too
            self.command(args, sc, via, depth + 1, set(tags), assigns)
        at = len(self.out)
        self.out.append(None)  # type: ignore[arg-type]  # placeholder: inner ones follow
        sql = None
        if "too-deep" not in tags:
            sql = self.special(name, args, sc, via, depth, tags, assigns)
        limit = None
        if name in WRAPPERS:
            limit = wrapper_options(args, WRAPPERS[name].spec)[0][1]
        elif (
            args
            and "too-deep" not in tags
            and name not in _HANDLED
            and name not in TRIGGERS
            and name not in NOT_WRAPPERS
            and name not in BUILTINS
            and name not in RESERVED
        ):
            self.unknown_program(name, args, sc, via, depth, assigns)
            if name in SHORT_NAMES and name not in self.aliases and "/" not in first.value:
                tool = Word(SHORT_NAMES[name], first.raw)
                self.command(
                    [tool] + args,
                    sc,
                    f"if {name} is {tool.value} {via}".strip(),
                    depth + 1,
                    set(),
                    assigns,
                )
        # export LD_PRELOAD=x.so, read GIT_PAGER, declare -n r=PATH: assignments the
        # rules judge like NAME=VALUE prefixes
        stored, hidden = assigned(name, args)
        assigns += stored
        self.cdpath = self.cdpath or "CDPATH" in stored
        if hidden:
            tags.add("dynamic-code")
        given = declared(args) + exported_as_is(args) if name in DECLARERS else ()
        if "PATH" in stored and "PATH" not in given:
            tags.add("path-hijack")  # read PATH, declare -n r=PATH: a value we do not see
        if name == "unset" and not any(w.value in ("-f", "-fv") for w in args):
            if any(w.value == "PATH" or w.dynamic for w in args):
                tags.add("path-hijack")  # with no PATH, bash looks in its default, then .
        if (name in DECLARERS or name in NAME_SETTERS) and any(
            w.glob and not DECLARED.match(w.value) for w in args
        ):
            tags.add("glob-variable")  # export LD_PRELOA?=/x: files name the variable
        cmd = self.emit(name, args, sc, via, tags, assigns, sql, at=at, limit=limit)
        written = [t for op, t in cmd.redirects if op in _WRITES]
        if written and not self.startup_write(name, args, sc, written, via, depth):
            cmd = self.out[at] = replace(cmd, tags=cmd.tags | {"dynamic-code"})
        if self.runs_written(cmd, first):
            cmd = self.out[at] = replace(cmd, tags=cmd.tags | {"written-then-run"})
        if "script-file" in cmd.tags and self.untrusted_script(cmd, first, sc):
            self.out[at] = replace(cmd, tags=cmd.tags | {"untrusted-script"})
        for t in written + ([cmd.dest] if cmd.dest is not None else []):
            self.note_written(t)
        if name in ("ln", "mount"):
            self.note_link(name, read_options(args, OPT_SPECS.get(name)), self.cwd)

    def note_written(self, target: Word) -> None:
        """Remember a file this input writes (see ``ScriptReadings``): a glob is kept as
        a pattern; a name only known at run time, which may climb anywhere, as unknown."""
        if (path := resolve_path(target.value, self.cwd)) is not None and path not in _SINKS:
            self.written.add(path)
        elif path is None and not target.safe:
            self.unknown_write = True

    def special(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
        assigns: tuple[str, ...],
    ) -> str | None:
        """Handle programs that run other code; add tags; return SQL text if any."""
        if name == "kill":
            self.kill_lookups(args, sc, via, depth, assigns, tags)
        if name == "cp" and backup_copy(args):
            tags.add("backup-copy")
        if name in ("chmod", "install") and _grants_setuid(name, args):
            tags.add("grants-setuid")
        if name == "systemctl" and _unit_file(args):
            tags.add("script-file")  # systemctl link /tmp/x.service: its ExecStart= runs
        if any(_METADATA_CREDENTIALS.search(w.value) for w in args):
            tags.add("metadata-credentials")
        if name in SHELL_BUILTINS:
            self.shell_builtin(name, args, via, depth, tags)
        elif name in WRAPPERS:
            self.wrapper(name, args, sc, via, depth, tags, assigns)
        elif name in SHELLS:
            self.shell(name, args, sc, via, depth, tags)
        elif name == "run-parts" and not {w.value for w in args} & {"--list", "--test", "--help"}:
            tags.add("script-file")  # runs every file in a directory: the scripts it holds
        elif name == "gdb" and any(w.value == "--args" for w in args):
            k = next(i for i, w in enumerate(args) if w.value == "--args")
            if args[k + 1 :]:
                self.command(
                    args[k + 1 :], sc, f"via gdb --args {via}".strip(), depth + 1, set(), assigns
                )
        elif name in EDITORS and stdin_of(sc)[1] != "none":
            tags.add("interpreter-code")  # ed <<< '!cmd', vim -es < script: editor commands
        elif name in TERMINAL_PROGRAMS and not any(w.value in INFO_ONLY for w in args):
            tags.add("takes-terminal")  # vim FILE: :!cmd typed on the session runs unseen
        elif name in SHELL_STARTERS and not any(
            w.value in ("--version", "-V", "--help", "-?", "--print") for w in args
        ):
            tags.add("interactive-shell")  # newgrp, capsh --, ttyd bash: a shell unseen
        elif name in INTERPRETERS:
            self.interpreter(name, args, sc, tags, via, depth)
        elif name in AWKS:
            read = read_options(args, OPT_SPECS["awk"])
            if any(o == "-f" for o, _ in read.options):
                tags.add("script-file")
            elif read.operands and AWK_CODE.search(read.operands[0].value):
                tags.add("interpreter-code")
        elif name == "sed":
            read = read_options(args, OPT_SPECS["sed"])
            scripts = [v.value for o, v in read.options if o in ("-e", "--expression") and v]
            if any(o in ("-f", "--file") for o, _ in read.options):
                tags.add("script-file")
            if not scripts and read.operands:
                scripts = [read.operands[0].value]
            if any(sed_runs_code(s) for s in scripts):
                tags.add("interpreter-code")
        elif name == "find":
            self.find(args, sc, via, depth, assigns)
        elif name in ("pkill", "killall") and (tag := kill_tag(name, args)):
            tags.add(tag)
        elif name == "git":
            self.git(args, sc, via, depth, tags)
        elif name == "ip":
            self.ip(args, sc, via, depth)
            if any(w.value in ("-b", "-batch", "--batch") for w in args):
                tags.add("script-file")  # ip -batch FILE: ip commands the bastion cannot see
        elif name in ("tmux", "screen", "byobu", "zellij") and _starts_terminal(name, args):
            tags.add("interactive-shell")  # a shell the bastion does not see
        elif name == "parted":  # no command given: parted reads its commands from a terminal
            read = read_options(args, spec("", "", "list help version script machine"))
            if len(read.operands) <= 1 and not {o for o, _ in read.options} & _PARTED_INFO:
                tags.add("interactive-shell")
        elif name in ("at", "batch"):  # reads the commands to run later from stdin
            read = read_options(
                args,
                spec(
                    "q:f:t:",
                    "",
                    "",
                ),
            )
            names = {o for o, _ in read.options}
            if names & {"-f"}:
                tags.add("script-file")
            elif not names & {"-l", "-r", "-d", "-c"}:
                self.shell(name, [], sc, f"run later by {name} {via}".strip(), depth, tags)
        elif name in ("less", "more", "most"):  # +CMD: a less command, "!" runs a shell
            for w in args:
                if w.value.startswith("+") and "!" in w.value:
                    self.code_string(
                        Word(w.value.split("!", 1)[1], w.raw, w.dynamic),
                        f"inside {name} +! {via}".strip(),
                        depth,
                        tags,
                    )
                elif w.value.startswith("+") and "|" in w.value:
                    tags.add("dynamic-code")
        elif name in ("make", "gmake"):
            read = read_options(args, OPT_SPECS["make"])
            for opt, value in read.options:
                if opt in ("--eval", "-E") or (
                    opt in ("-f", "--file", "--makefile")
                    and value
                    and (
                        value.dynamic
                        or value.value in ("-", "/dev/stdin")
                        or value.value.startswith(("/dev/fd/", "/proc/"))
                    )
                ):
                    tags.add("interpreter-code")
        elif name in _CONTAINER_TOOLS or name in COMPOSE:
            self.container_exec(name, args, sc, via, depth, assigns)
        elif name in SQL_CLIENTS:
            return self.sql(name, args, sc, via, depth, tags)
        if name in RUNS_COMMAND and runs_command(name, args):
            tags.add("runs-command")
        if name in TAKES_COMMAND_OPTS:
            read = read_options(args, GLOBAL_SPECS.get(name) or OPT_SPECS.get(name))
            for opt, value in read.options:
                if opt in TAKES_COMMAND_OPTS[name] and value is not None:
                    text = value.value
                    if opt in ("-o", "-c", "--checkpoint-action") and "=" in text:
                        key, _, text = text.partition("=")
                        if opt == "-o" and key.lower() not in (
                            "proxycommand",
                            "localcommand",
                            "knownhostscommand",
                        ):
                            continue
                        if opt == "--checkpoint-action" and key != "exec":
                            continue
                    self.code_string(
                        Word(text.lstrip("!"), value.raw, value.dynamic),
                        f"inside {name} {opt} {via}".strip(),
                        depth,
                        tags,
                    )
        return None

    def alias(
        self, name: str, args: list[Word], sc: SimpleCommand, via: str, depth: int, tags: set[str]
    ) -> None:
        """An alias defined earlier in the input: its body with this command's arguments
        (``alias ls='rm -rf'; ls /`` runs ``rm -rf /``)."""
        if name in self.expanding:
            return
        body = self.aliases[name]
        try:
            cmds = parse(
                body,
                self.timeout,
                trust=self.trust,
                digits=self.digits,
                inherited=True,
                names=self.arith_names,
            )
        except (ShellSyntaxError, RecursionError):
            tags.add("dynamic-code")
            return
        if cmds and cmds[-1].words and not re.search(r"[;&|\n]\s*$", body):
            cmds[-1].words = cmds[-1].words + args  # the arguments continue the body
        elif args:
            cmds.append(SimpleCommand(words=list(args), redirects=list(sc.redirects)))
        self.expanding.add(name)
        try:
            self.run(cmds, f"via alias {name} {via}".strip(), depth + 1)
        finally:
            self.expanding.discard(name)

    def code_string(self, word: Word, via: str, depth: int, tags: set[str]) -> None:
        text = word.value.replace(DYN, "${_}")
        if not self.shell_text(text, via, depth) or word.dynamic:
            tags.add("dynamic-code")

    def shell(
        self, name: str, args: list[Word], sc: SimpleCommand, via: str, depth: int, tags: set[str]
    ) -> None:
        command_mode = False
        i = 0
        while i < len(args):
            v = args[i].value
            if args[i].dynamic:
                tags.add("dynamic-code")
                return
            if v == "--" or v == "-":
                i += 1
                break
            if v in ("--rcfile", "--init-file") and i + 1 < len(args):
                tags.add("script-file")  # bash -i runs it (judged as the script it is)
            if v in ("--rcfile", "--init-file", "-o", "+o", "-O", "+O"):
                i += 2
                continue
            if v.startswith("--"):
                i += 1
                continue
            if len(v) > 1 and v[0] in "-+":
                command_mode = command_mode or "c" in v[1:]
                i += 1
                continue
            break
        operands = args[i:]
        if command_mode:
            if operands:
                self.code_string(operands[0], f"inside {name} -c {via}".strip(), depth, tags)
            return
        if operands:
            tags.add("script-file")
            return
        texts, kind = stdin_of(sc)
        if kind == "text":
            for text in texts:
                if not self.shell_text(text, f"fed to {name} {via}".strip(), depth):
                    tags.add("dynamic-code")
        elif kind == "unknown":
            tags.add("pipe-to-shell")
            for text in texts:
                self.shell_text(text, f"fed to {name} {via}".strip(), depth)
        else:
            tags.add("interactive-shell")

    def interpreter(
        self, name: str, args: list[Word], sc: SimpleCommand, tags: set[str], via: str, depth: int
    ) -> None:
        ops = [w.value for w in args if not w.value.startswith("-")]
        if name in ("bun", "deno") and ops and ops[0] in RUNTIME_TOOLS:
            return  # bun install, deno fmt: the runtime's own tools, not a script
        code_opts = INTERPRETERS[name]
        short_code = {o[1] for o in code_opts if len(o) == 2}
        python = name.startswith(("python", "pypy"))
        for k, w in enumerate(args):
            v = w.value
            if v == "-m" and python and k + 1 < len(args):
                module = args[k + 1].value
                if module in PY_REPLS:
                    tags.add("interactive-shell")  # python3 -m code: a REPL
                elif module in PY_CODE:
                    tags.add("interpreter-code")  # python3 -m timeit 'CODE'
                elif module in PY_PROGRAMS:
                    here = f"via {name} -m {via}".strip()
                    self.command([Word(module), *args[k + 2 :]], sc, here, depth + 1, set(), ())
                return
            if v == "-i" and (python or name in ("node", "nodejs") or name in SHELLS):
                tags.add("interactive-shell")  # python3 -i app.py: a REPL after the script
                return
            if v in ("-m", "--version", "-V", "--help", "-h", "-v"):
                return
            if v in code_opts or v.split("=")[0] in code_opts:
                tags.add("interpreter-code")
                return
            if v.startswith("-") and not v.startswith("--") and short_code & set(v[1:]):
                tags.add("interpreter-code")
                return
            if v == "-" or not v.startswith("-"):
                if name in SCRIPT_RUNNERS:
                    tags.add("script-file" if v != "-" else "interpreter-code")
                return
        kind = stdin_of(sc)[1]
        if kind != "none" and name in SCRIPT_RUNNERS:
            tags.add("interpreter-code")
        elif kind == "none" and name in SCRIPT_RUNNERS:
            tags.add("interactive-shell")  # a REPL: runs unfiltered once started


def normalize(
    cmds: list[SimpleCommand],
    cwd: str | None,
    timeout: float = 0.2,
    trust: bool = False,
    digits: set[str] | None = None,
    names: ArithNames | None = None,
) -> list[Command]:
    """Normalize parsed simple commands (and everything they run) into Commands.

    ``trust``: the commands were parsed with ``parse(trust=True)``; strings they run are
    parsed the same way. ``digits``, ``names``: get what ``parse(digits=..., names=...)``
    gets for them."""
    n = Normalizer(cwd, timeout, trust)
    if digits is not None:
        n.digits = digits
    if names is not None:
        n.arith_names = names
    n.literals = _literals(cmds)
    n.run(cmds)
    if any("pid-file" in c.tags for c in n.out):  # written later, in a loop: not trusted
        n.out = [pid_file_rechecked(c, n.pid_file_written) for c in n.out]
    return n.out


_ARRAY_ITEM = re.compile(r"""'([^']*)'|"([^"$`\\]*)"|([^\s()'"$`]+)""")


def _literals(cmds: list[SimpleCommand]) -> tuple[str, ...]:
    """Literal words this input assigns (``x=P``, ``a=(P Q)``, ``for f in P``), prints
    (``echo P``, ``printf P``, ``set -- P``, ``ls P``) or feeds as a here-string: a run-time word
    may be any of them (at most 64, paths and names only)."""
    found: dict[str, None] = {}
    for sc in cmds:
        for _, value in sc.assigns:
            if not value.dynamic:
                found[value.value] = None
            elif value.raw.startswith("(") or "=(" in value.raw:  # a=(P Q): its items
                for m in _ARRAY_ITEM.finditer(value.raw.split("(", 1)[1].rstrip(")")):
                    found[next(g for g in m.groups() if g is not None)] = None
        words = sc.words
        if words and words[0].value in ("echo", "printf", "set", "ls"):
            found.update((w.value, None) for w in words[1:] if not w.dynamic)
        for r in sc.redirects:
            if r.op == "<<<" and r.target is not None and not r.target.dynamic:
                found.update((x, None) for x in r.target.value.split())
    return tuple(x for x in found if x and not x.startswith("-") and len(x) < 4096)[:64]
