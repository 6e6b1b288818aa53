"""Programs that take the terminal by themselves: pagers, editors and interactive tools
they start, and interactive tools that act (``top`` can kill any process).

Under ``ssh -t`` a ``systemctl status`` pages through ``less``, whose ``!cmd`` runs a
shell the bastion never sees; ``crontab -e`` and ``git commit`` start an editor (``:!cmd``)
even without a terminal, reading the session's stdin. The bastion takes the escape away
for good instead of guessing which invocation pages: the text sent upstream starts with
a safe environment (``runtext``): pagers are ``cat``, a ``less`` still started runs in
secure mode, editors started by a program are ``false``. That environment does not reach
a program started by a wrapper that makes a new one (``sudo``, ``su``, ``doas``,
``env -i``, ``ssh``, ``systemd-run``, container and cluster exec), so there a program that
starts a pager (with a terminal) or an editor (always) is tagged ``takes-terminal`` and
held by the shipped ``terminal-program`` rule. ``top``/``htop`` and the like with a
terminal are held unless started in batch, secure or read-only mode.

Limits: the lists name the common tools; the safe environment is sent only when a listed
program is in the command (so most commands run exactly as typed), and a program not
listed that starts a pager or an editor by itself is not seen.
"""

from __future__ import annotations

import re

from .normalize import Command

__all__ = [
    "terminal_tags",
    "wants_safe_environment",
    "PAGER_STARTERS",
    "starts_pager",
    "starts_editor",
    "acts_interactively",
    "new_environment",
]

#: Programs that page their output through $PAGER/less when stdout is a terminal.
PAGER_STARTERS = frozenset(
    "systemctl journalctl coredumpctl busctl loginctl timedatectl hostnamectl localectl "
    "networkctl resolvectl machinectl bootctl userdbctl homectl portablectl systemd-analyze "
    "systemd-cgls git man info perldoc pydoc pydoc3 ri dpkg dpkg-query apt apt-get "
    "aptitude aws gh glab bat batcat delta psql mycli pgcli nmcli dmesg ansible-doc "
    "hg svn virsh lnav".split()
)
#: Cloud CLIs whose help pages through less.
_HELP_PAGERS = frozenset({"gcloud", "gsutil", "az", "doctl", "oci"})
#: Programs that start $EDITOR/$VISUAL (or their own editor) for some invocations.
_EDITOR_ALWAYS = frozenset({"visudo", "vipw", "vigr", "sudoedit", "edquota", "crontab -e"})
_EDITOR_SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "systemctl": ("edit",),
    "kubectl": ("edit",),
    "oc": ("edit",),
    "virsh": ("edit",),
    "git": ("commit", "rebase", "tag", "merge", "config", "notes", "add", "revert", "pull"),
    "hg": ("commit", "histedit"),
    "svn": ("commit", "ci"),
    "ansible-vault": ("edit", "create"),
    "npm": ("edit",),
    "gh": ("pr", "issue", "release", "repo"),
    "apt": ("edit-sources",),
    "pass": ("edit",),
    "lxc": ("edit",),
    "crm": ("edit", "configure"),
}
#: Options that give the text inline, so no editor starts.
_NO_EDITOR_OPTS = frozenset(
    {"-m", "--message", "-F", "--file", "--no-edit", "-C", "--reuse-message", "--fixup"}
)
#: Interactive tools that act on the system from keys typed at them, with their safe modes.
_ACTS: dict[str, frozenset[str]] = {
    "top": frozenset({"-b", "--batch", "-s", "--secure-mode", "-h", "-v"}),
    "htop": frozenset({"--readonly", "-h", "--help", "-V", "--version"}),
    "btop": frozenset({"-h", "--help", "-v", "--version"}),
    "atop": frozenset({"-w", "-r", "-P", "-V"}),
    "iotop": frozenset({"-b", "--batch", "-h", "--help", "--version"}),
    "glances": frozenset({"--stdout", "--stdout-csv", "--export", "-h", "--help", "-V"}),
    "ncdu": frozenset({"-r", "-o", "-h", "--help", "-v", "--version"}),
    "nmtui": frozenset(),
    "alsamixer": frozenset({"-h", "--help", "-v", "--version"}),
    "tig": frozenset({"-h", "--help", "-v", "--version"}),
    "lazygit": frozenset({"-h", "--help", "-v", "--version"}),
    "lazydocker": frozenset({"-h", "--help", "-v", "--version"}),
    "k9s": frozenset({"--readonly", "-h", "--help", "version"}),
    "mutt": frozenset(),
    "irssi": frozenset(),
}
#: Wrappers that start their program in a new environment (the safe one does not reach).
_NEW_ENV = re.compile(
    r"\bvia (sudo|su|doas|runuser|pkexec|ssh|systemd-run|machinectl|nsenter|chroot|setpriv"
    r"|docker|podman|nerdctl|kubectl|oc|lxc|incus|env|sg|newgrp|at|batch|watch)\b"
)


def _words(cmd: Command) -> list[str]:
    return [w.value for w in cmd.words]


def starts_pager(cmd: Command) -> bool:
    """Whether the program may page through $PAGER/less when it has a terminal."""
    if "--no-pager" in cmd.options or (cmd.program == "git" and "-P" in cmd.options):
        return False
    if cmd.program in PAGER_STARTERS:
        return True
    return cmd.program in _HELP_PAGERS and any(w.value in ("help", "--help") for w in cmd.words)


def starts_editor(cmd: Command) -> bool:
    """Whether the program may start an editor (``crontab -e``, ``git commit``...)."""
    prog = cmd.program
    if prog in _EDITOR_ALWAYS:
        return True
    if prog == "crontab":
        return "-e" in cmd.options
    if prog == "fc":
        return not ({"-l", "-s"} & cmd.options)
    subs = _EDITOR_SUBCOMMANDS.get(prog)
    if not subs:
        return False
    operands = [w.value for w in cmd.operands[:3]]
    if not any(s in operands for s in subs):
        return False
    if prog == "git":
        if "rebase" in operands:
            return bool({"-i", "--interactive", "--edit-todo"} & cmd.options)
        if "config" in operands:
            return bool({"-e", "--edit"} & cmd.options)
        if "add" in operands:
            return bool({"-e", "--edit", "-p", "--patch", "-i", "--interactive"} & cmd.options)
        if "tag" in operands:
            return bool({"-a", "-s", "--annotate", "--sign"} & cmd.options) and not (
                _NO_EDITOR_OPTS & cmd.options
            )
        if "pull" in operands or "merge" in operands:
            return "--edit" in cmd.options or "-e" in cmd.options
    return not (_NO_EDITOR_OPTS & cmd.options)


def acts_interactively(cmd: Command) -> bool:
    """``top``, ``htop``...: keys typed at them kill or renice processes, delete files."""
    safe = _ACTS.get(cmd.program)
    if safe is None:
        return False
    return not (safe & cmd.options or safe & set(_words(cmd)))


def new_environment(cmd: Command) -> bool:
    """Whether a wrapper started the command in a new environment (``sudo systemctl``)."""
    return bool(_NEW_ENV.search(cmd.via))


def terminal_tags(cmd: Command, pty: bool) -> bool:
    """Whether ``cmd`` takes the terminal in a way the safe environment cannot prevent."""
    if (pty and acts_interactively(cmd)) or cmd.program in _EDITOR_ALWAYS:
        return True
    if not new_environment(cmd):
        return False
    return starts_editor(cmd) or (pty and starts_pager(cmd))


def wants_safe_environment(cmds: tuple[Command, ...]) -> bool:
    """Whether any command may start a pager or an editor (then the prefix is sent)."""
    return any(starts_pager(c) or starts_editor(c) or c.program in ("less", "more") for c in cmds)
