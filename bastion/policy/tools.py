"""Readings for particular tools that run code in their own ways, and for what a command
line sets up for the commands after it.

- unknown programs may run their arguments (see ``unknown``);
- git runs code from ``config`` values, ``rebase --exec``, ``bisect run``, ``submodule
  foreach``, ``filter-branch`` filters; ``ip netns exec``/``ip vrf exec`` run a command;
- pkill/killall patterns are matched against init, systemd and sshd (a regex, or a
  name with ``-i``/``-I``), and against every process (``.``, ``-v``, ``-P 1``);
- a file a shell or git runs later (``~/.bashrc``, ``/etc/profile.d/*``, ``.git/hooks/*``)
  written with known text (echo, printf, a here-doc into cat or tee): that text is parsed
  as commands; written with text we cannot see: ``dynamic-code``;
- symbolic links and bind mounts made earlier in the same input (``ln -s / x; rm -rf x/``)
  are followed when later paths go through them.

Limits: links and mounts that exist on the target already are not known (see
``effects``); a git config file written directly is not read.
"""

from __future__ import annotations

import fnmatch
import re
import warnings

from .effects import program_name, resolve_path, stdin_of
from .getopt import OptRead, read_options, spec
from .programs import OPT_SPECS
from .readings import Readings
from .shparse import SimpleCommand, parse
from .unknown import MAX_READINGS, is_trigger
from .words import DYN, MORE, ShellSyntaxError, Word, ansi_c_decode
from .wrappers import KNOWN_PROGRAMS, WRAPPERS

__all__ = ["ToolReadings", "kill_tag", "user_regex", "STARTUP_FILES"]

#: Shells and interpreters: named last (``poetry env use python3``) they are an argument.
_RUNNERS = frozenset(
    "sh bash dash zsh ksh mksh ash fish csh tcsh python python2 python3 perl ruby php".split()
)
#: Common subcommand words too, so they start a reading only when arguments follow
#: (``pm2 kill`` is not ``kill``; ``gosu root kill -9 1`` is).
_WEAK_TRIGGERS = frozenset({"kill", "git", "find", "tee", "mv", "cp"}) | (
    frozenset(WRAPPERS) - {"env", "time", "watch", "script", "sg"}
)
_SHELL_CHARS = frozenset(" \t\n;|&'\"\\$`<>(")
MAX_GUESSES = 3


#: Tools whose subcommands are named like power commands: vagrant halt, virsh reboot
#: act on a virtual machine, not on this host.
_VM_TOOLS = frozenset(
    "vagrant virsh VBoxManage vboxmanage docker-machine multipass lxc incus qm pct xl "
    "limactl colima prlctl vmrun".split()
)
_POWER = frozenset({"halt", "reboot", "shutdown", "poweroff", "init", "telinit", "suspend"})


def _starts_reading(value: str, more: bool, after: str = "", tool: str = "") -> bool:
    """Whether an argument naming this program starts a reading of the rest (``after``:
    the argument that follows it, if any; ``tool``: the unknown program)."""
    prog = program_name(value)
    if tool in _VM_TOOLS and prog in _POWER:
        return False
    if prog == "halt":
        return True
    if prog in _RUNNERS:
        return more
    if is_trigger(prog):
        return True
    if prog in _WEAK_TRIGGERS:
        return more
    if prog in ("init", "telinit"):  # init 0, not kubeadm init --config x
        return bool(re.fullmatch(r"[0-6sSqQuU]", after))
    return value.startswith("/") and prog in KNOWN_PROGRAMS  # /sbin/init, /usr/bin/halt


#: Process names and command lines a pattern must spare not to signal every process.
_PROCESS_SAMPLES = ("systemd", "init", "sshd", "bash", "kthreadd", "cron", "x", "Z9", "/sbin/init")
#: Processes whose death takes the host or the way in with it.
_CRITICAL_NAMES = ("init", "systemd", "sshd")
_CRITICAL_LINES = (
    "/sbin/init",
    "/lib/systemd/systemd --system --deserialize 31",
    "/usr/sbin/sshd -D",
    "sshd: root@pts/0",
)


_POSIX_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "xdigit": "0-9A-Fa-f",
    "punct": "!-/:-@\\[-`{-~",
    "print": " -~",
    "graph": "!-~",
    "cntrl": "\\x00-\\x1f\\x7f",
    "word": "a-zA-Z0-9_",
}


def user_regex(text: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    """A POSIX extended regex as pkill and killall read it, in Python's syntax (character
    classes such as ``[[:alpha:]]``, GNU ``\\<`` ``\\>``); None if it does not compile."""
    if len(text) > 200:
        return None
    text = re.sub(r"\[:([a-z]+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), text)
    text = text.replace("\\<", "\\b").replace("\\>", "\\b")
    try:
        with warnings.catch_warnings():  # FutureWarning on "[[" and friends: not ours
            warnings.simplefilter("ignore")
            return re.compile(text, re.I if ignore_case else 0)
    except (re.error, RecursionError, OverflowError):
        return None


def kill_tag(name: str, args: list[Word]) -> str | None:
    """``kills-everything`` for pkill/killall that signal every process (``pkill -v x``,
    ``pkill -P 1``, a pattern matching any name); ``kills-critical`` for one that matches
    init, systemd or sshd (``pkill ssh``, ``killall -I SSHD``); else None."""
    read = read_options(args, OPT_SPECS[name])
    names = {o for o, _ in read.options}
    if name == "pkill" and names & {"-v", "--inverse"}:
        return "kills-everything"
    for opt, value in read.options:
        if opt in ("-P", "--parent") and value is not None and "1" in value.value.split(","):
            return "kills-everything"
    regex = name == "pkill" or bool(names & {"-r", "--regexp"})
    ignore_case = bool(names & {"-i", "-I", "--ignore-case"})
    full = name == "pkill" and bool(names & {"-f", "--full"})
    critical = _CRITICAL_LINES + _CRITICAL_NAMES if full else _CRITICAL_NAMES
    tag = None
    for w in read.operands:
        if w.dynamic:
            continue
        if not regex:
            if ignore_case and w.value.lower() in _CRITICAL_NAMES:
                tag = "kills-critical"
            continue
        pattern = user_regex(w.value, ignore_case)
        if pattern is None:
            continue
        if name == "pkill" and names & {"-x", "--exact"}:
            hit = [s for s in critical if pattern.fullmatch(s)]
        else:
            hit = [s for s in critical if pattern.search(s)]
        if all(pattern.search(s) for s in _PROCESS_SAMPLES):
            return "kills-everything"
        if hit:
            tag = "kills-critical"
    return tag


#: Files a shell runs at login or start, and git hooks: what is written there runs later.
STARTUP_FILES = (
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.bash_logout",
    "~/.profile",
    "~/.zshrc",
    "~/.zshenv",
    "~/.zprofile",
    "~/.zlogin",
    "~/.zlogout",
    "~/.kshrc",
    "~/.mkshrc",
    "~/.cshrc",
    "~/.tcshrc",
    "~/.login",
    "~/.config/fish/*",
    "~/.ssh/rc",
    "~/.xinitrc",
    "~/.xsession*",
    "~/.xprofile",
    "~/.config/autostart/*",
    "/etc/profile",
    "/etc/profile.d/*",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zsh/*",
    "/etc/zshrc",
    "/etc/zprofile",
    "/etc/environment",
    "/etc/rc.local",
    "/etc/ssh/sshrc",
    "/root/.*",
    "*/.git/hooks/*",
    ".git/hooks/*",
)
_STARTUP_RE = re.compile("|".join(fnmatch.translate(p) for p in STARTUP_FILES))

#: git config keys whose value is a command line git runs.
_GIT_CODE_KEYS = re.compile(
    r"(?i)^(core\.(pager|editor|sshcommand|fsmonitor|askpass|gitproxy)|sequence\.editor"
    r"|alias\..*|pager\..*|diff\..*\.(textconv|command)|diff\.external|filter\..*\."
    r"(clean|smudge|process)|merge\..*\.driver|credential(\..*)?\.helper|gpg(\..*)?\.program"
    r"|uploadpack\.packobjectshook|sendemail\.(smtpserver|tocmd|cccmd)|web\.browser"
    r"|browser\..*\.cmd|man\..*\.cmd|difftool\..*\.cmd|mergetool\..*\.cmd|remote\..*\."
    r"(receivepack|uploadpack|vcs)|protocol\..*\.allow|core\.hookspath|include\.path"
    r"|includeif\..*\.path|submodule\..*\.update|url\..*\.insteadof)$"
)
_GIT_CONFIG_FLAGS = spec(
    "f:",
    "file blob type default comment",
    "global system local worktree add replace-all unset unset-all get get-all bool int "
    "null includes no-includes show-origin show-scope path expiry-date",
)
_GIT_FILTERS = frozenset(
    {
        "--tree-filter",
        "--index-filter",
        "--msg-filter",
        "--env-filter",
        "--commit-filter",
        "--parent-filter",
        "--tag-name-filter",
    }
)


class ToolReadings(Readings):
    """Mixed into ``normalize.Normalizer``: the readings listed in the module doc."""

    guessing: int  # unknown-program readings in progress (they nest MAX_GUESSES deep)
    links: dict[str, tuple[str, bool]]  # path -> (what it leads to, a mount point)

    # ---- unknown programs ---------------------------------------------------------
    def unknown_program(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        assigns: tuple[str, ...],
    ) -> None:
        """A program we do not know may run its arguments (see ``unknown``): judge the
        words from each trigger program onward, and each argument that is a command line
        naming a known program, as commands it could run."""
        if self.guessing >= MAX_GUESSES:
            return
        here = f"if {name} runs its arguments {via}".strip()
        readings = 0
        self.guessing += 1
        trust, self.trust = self.trust, False  # gosu USER sets HOME; strings are strict
        try:
            for k, w in enumerate(args):
                if readings >= MAX_READINGS:
                    break
                if w.dynamic:
                    continue
                value = w.value
                if value.startswith("-") and "=" in value:  # --command=CMD, --exec=CMD
                    value = value.split("=", 1)[1]
                more = k + 1 < len(args) or stdin_of(sc)[1] != "none"  # sh <<EOF reads code
                after = args[k + 1].value if k + 1 < len(args) else ""
                if _starts_reading(value, more, after, name):
                    rest = [Word(value, w.raw, False, w.glob, w.quoted)] + args[k + 1 : k + 256]
                    prog = program_name(value)
                    if is_trigger(prog) and prog not in _RUNNERS:
                        rest.append(Word(DYN, MORE, True))  # it may append arguments
                    self.command(rest, sc, here, depth + 1, set(), assigns)
                    readings += 1
                elif len(value) < 4096 and any(c in value for c in _SHELL_CHARS):
                    readings += self.command_line_argument(value, sc, here, depth, assigns)
        finally:
            self.guessing -= 1
            self.trust = trust

    def command_line_argument(
        self, value: str, sc: SimpleCommand, via: str, depth: int, assigns: tuple[str, ...]
    ) -> int:
        """Judge an argument as the command line it may be (``tmux new 'CMD'``, with its
        escapes too: ``screen -X stuff 'CMD\\n'``) where it names a known program."""
        found = 0
        for text in dict.fromkeys((value, ansi_c_decode(value))):
            try:
                cmds = parse(
                    text, self.timeout, trust=self.trust, digits=self.digits, inherited=True
                )
            except (ShellSyntaxError, RecursionError):
                continue
            for c in cmds:
                names = [program_name(w.value) for w in c.words]
                if (
                    names
                    and not c.words[0].dynamic
                    and (names[0] in KNOWN_PROGRAMS or is_trigger(names[0]))
                ):
                    self.run([c], via, depth + 1)
                    found += 1
                    continue
                for k, n in enumerate(names[1:], 1):  # tmux if-shell true 'run reboot'
                    after = c.words[k + 1].value if k + 1 < len(names) else ""
                    if not c.words[k].dynamic and _starts_reading(n, k + 1 < len(names), after):
                        rest = c.words[k:] + [Word(DYN, MORE, True)]
                        self.command(rest, sc, via, depth + 1, set(), assigns)
                        found += 1
                        break
        return found

    # ---- git ----------------------------------------------------------------------
    def git(
        self, args: list[Word], sc: SimpleCommand, via: str, depth: int, tags: set[str]
    ) -> None:
        """Code git runs from its subcommands' arguments and from config values."""
        read = read_options(args, OPT_SPECS["git"])
        ops = read.operands
        if not ops or ops[0].dynamic:
            return
        sub = ops[0].value
        start = next(i for i, w in enumerate(args) if w is ops[0]) + 1
        rest = args[start:]
        here = f"inside git {sub} {via}".strip()
        if any(o == "--exec-path" and v is not None for o, v in read.options[:1]):
            tags.add("script-file")  # git --exec-path=DIR: subcommands from DIR
        if sub == "config":
            self.git_config(rest, here, depth, tags)
        elif sub == "rebase":
            for k, w in enumerate(rest):
                v = w.value
                if v in ("-x", "--exec") and k + 1 < len(rest):
                    self.code_string(rest[k + 1], here, depth, tags)
                elif v.startswith("--exec="):
                    self.code_string(Word(v[7:], w.raw, w.dynamic), here, depth, tags)
                elif v.startswith("-x") and len(v) > 2:
                    self.code_string(Word(v[2:], w.raw, w.dynamic), here, depth, tags)
        elif sub == "bisect" and len(ops) > 1 and ops[1].value == "run":
            inner = args[next(i for i, w in enumerate(args) if w is ops[1]) + 1 :]
            if inner:
                self.command(inner, sc, here, depth + 1, set(), ())
        elif sub == "submodule" and any(w.value == "foreach" for w in rest):
            k = next(i for i, w in enumerate(rest) if w.value == "foreach") + 1
            while k < len(rest) and rest[k].value.startswith("--"):
                k += 1
            if k < len(rest):
                text = " ".join(w.value.replace(DYN, "${_}") for w in rest[k:])
                dynamic = any(w.dynamic for w in rest[k:])
                self.code_string(Word(text, dynamic=dynamic), here, depth, tags)
        elif sub in ("filter-branch", "difftool", "mergetool", "grep"):
            for k, w in enumerate(rest):
                name, eq, value = w.value.partition("=")
                if name in _GIT_FILTERS or name in (
                    "-x",
                    "--extcmd",
                    "-O",
                    "--open-files-in-pager",
                    "-t",
                    "--tool",
                ):
                    if name in ("-t", "--tool"):
                        continue  # a tool name from config, not a command
                    if eq:
                        self.code_string(Word(value, w.raw, w.dynamic), here, depth, tags)
                    elif k + 1 < len(rest):
                        self.code_string(rest[k + 1], here, depth, tags)

    def git_config(self, rest: list[Word], via: str, depth: int, tags: set[str]) -> None:
        """git config [--global] KEY VALUE, git config set KEY VALUE: a command-valued key
        (core.pager, alias.*, core.sshCommand, ...) sets code git runs later."""
        read: OptRead = read_options(rest, _GIT_CONFIG_FLAGS)
        ops = list(read.operands)
        if ops and ops[0].value in ("set", "add"):
            ops = ops[1:]
        if len(ops) < 2:
            return
        key, value = ops[0], ops[1]
        if key.dynamic:
            tags.add("dynamic-code")
            return
        if _GIT_CODE_KEYS.match(key.value):
            if (
                key.value.lower() in ("core.hookspath", "include.path")
                or ".path" in key.value.lower()
            ):
                tags.add("script-file")  # hooks or config from a directory we cannot see
                return
            if key.value.lower().endswith(".insteadof") or key.value.lower().startswith(
                "protocol."
            ):
                return
            text = value.value.lstrip("!")
            self.code_string(Word(text, value.raw, value.dynamic), via, depth, tags)

    # ---- ip -----------------------------------------------------------------------
    def ip(self, args: list[Word], sc: SimpleCommand, via: str, depth: int) -> None:
        """ip [-n NS] netns exec NAME CMD, ip -all netns exec CMD, ip vrf exec NAME CMD."""
        values = [w.value for w in args]
        for k in range(len(values) - 1):
            if values[k] in ("netns", "vrf", "netn", "net") and values[k + 1] == "exec":
                skip = 0 if "-all" in values[:k] or "-a" in values[:k] else 1
                inner = args[k + 2 + skip :]
                if inner:
                    self.command(
                        inner, sc, f"via ip {values[k]} exec {via}".strip(), depth + 1, set(), ()
                    )
                return

    # ---- files run later ------------------------------------------------------------
    def startup_write(
        self,
        program: str,
        args: list[Word],
        sc: SimpleCommand,
        targets: list[Word],
        via: str,
        depth: int,
    ) -> bool:
        """Text written to a file a shell or git runs later is judged as commands; False
        when a write to such a file has text we cannot see."""
        files = [
            t
            for t in targets
            if (p := resolve_path(t.value, self.cwd)) is not None and _STARTUP_RE.fullmatch(p)
        ]
        if not files:
            return True
        here = f"written to {files[0].value}, run later {via}".strip()
        texts: list[str] = []
        if program in ("echo", "printf"):
            if any(w.dynamic for w in args):
                return False
            words = [w.value for w in args if not re.fullmatch(r"-[neE]+", w.value)]
            text = " ".join(words)
            texts = list(dict.fromkeys((text, ansi_c_decode(text))))
        elif program in ("tee", "sponge") or (
            program == "cat" and all(w.value.startswith("-") for w in args)
        ):
            found, kind = stdin_of(sc)
            if kind != "text":
                return False
            texts = found
        else:
            return False
        ok = True
        for text in texts:
            ok = self.shell_text(text, here, depth) and ok
        return ok

    # ---- links made earlier in the input --------------------------------------------
    def note_link(self, program: str, read: OptRead, cwd: str | None) -> None:
        """ln -s TARGET LINK, mount --bind SRC DIR: later paths under LINK are TARGET."""
        names = {o for o, _ in read.options}
        ops = [w for w in read.operands if not w.dynamic]
        if program == "ln" and names & {"-s", "--symbolic"} and len(ops) == 2:
            target, link = ops
        elif (
            program == "mount"
            and (
                names & {"--bind", "--rbind", "-B", "-R"}
                or any(v is not None and "bind" in v.value for o, v in read.options if o == "-o")
            )
            and len(ops) == 2
        ):
            target, link = ops
        else:
            return
        if program == "ln":  # a relative target is relative to the link's directory
            base = resolve_path(link.value, cwd)
            base = base.rsplit("/", 1)[0] or "/" if base else None
            src = resolve_path(target.value, base) if base else None
        else:
            src = resolve_path(target.value, cwd)
        dst = resolve_path(link.value, cwd)
        if src is not None and dst is not None and dst != src:
            self.links[dst] = (src, program == "mount")

    def through_links(self, word: Word, cwd: str | None, on_link: bool) -> Word | None:
        """The word with a link made earlier in the input followed, or None. ``on_link``:
        the program acts on a symlink named exactly, not on what it leads to (rm, mv)."""
        if not self.links or word.dynamic:
            return None
        path = resolve_path(word.value, cwd)
        if path is None:
            return None
        for link, (target, mount) in self.links.items():
            if path == link or path.startswith(link.rstrip("/") + "/"):
                rest = path[len(link) :]
                if not rest and on_link and not mount and not word.value.endswith("/"):
                    continue  # rm -rf LINK removes the link itself
                return Word(target.rstrip("/") + rest or "/", word.raw, False, word.glob)
        return None
