"""Kinds of programs the normalizer knows by name: script runners and REPLs, editors
and other programs that run what is typed at them, programs that start a shell of their
own, pagers and full-screen programs (held with a terminal), ``python -m`` modules.

Knowledge only (names and small patterns); how each kind is read is in ``normalize``.
"""

from __future__ import annotations

import re

from .wrappers import SHELLS, VIM_VARIANTS

__all__ = [
    "SCRIPT_RUNNERS",
    "AWKS",
    "AWK_CODE",
    "RESERVED",
    "TMUX_SHELL",
    "RUNTIME_TOOLS",
    "EDITORS",
    "TERMINAL_PROGRAMS",
    "SHELL_STARTERS",
    "PY_REPLS",
    "PY_CODE",
    "PY_PROGRAMS",
    "PAGERS",
    "SCREEN_PROGRAMS",
]

SCRIPT_RUNNERS = SHELLS | {
    "irb",
    "pry",
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "php",
    "lua",
    "luajit",
    "Rscript",
    "tclsh",
    "expect",
    "pwsh",
    "bun",
    "groovy",
    "julia",
    "osascript",
    "wish",
    "jrunscript",
    "octave",
    "ghci",
    "runghc",
    "erl",
    "escript",
    "elixir",
    "scala",
    "guile",
    "racket",
    "sbcl",
    "clisp",
}
AWKS = {"awk", "gawk", "mawk", "nawk", "busybox-awk"}
AWK_CODE = re.compile(
    r"system\s*\(|\|\s*&?\s*getline|\b(print|printf)\b[^;{}]*[|>]"
    r"|\|&|@load|@include|extension\s*\("
    r"|@[A-Za-z_][A-Za-z0-9_]*\s*\("  # gawk @f("CMD") with f = "sys" "tem": an indirect call
)
#: Shell reserved words: a wrapper runs them as a program that does not exist
RESERVED = frozenset(
    {
        "{",
        "}",
        "!",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "case",
        "esac",
        "for",
        "select",
        "function",
        "time",
        "[[",
        "]]",
        "in",
        "coproc",
        "(",
        ")",
    }
)


#: tmux/screen subcommands that start (or attach to) a shell unless given a command
TMUX_SHELL = frozenset(
    "new new-session attach attach-session a at new-window neww split-window splitw".split()
)
#: Subcommands of bun and deno that run no script of the user's (task and run do)
RUNTIME_TOOLS = frozenset(
    "install i add remove rm update upgrade outdated link unlink pm create init test build "
    "fmt lint check info doc bench compile cache types publish audit".split()
)
#: Editors that take commands on stdin (``!cmd`` runs a shell, ``w`` writes)
EDITORS = frozenset(
    {"ed", "red", "ex", "vim", "vi", "nvim", "view", "vimdiff", *VIM_VARIANTS, "rvim",
     "rview", "editor", "sensible-editor", "nvi", "elvis", "vile"}
)  # fmt: skip
#: Programs that run what is typed at them, unseen by the policy, once started with the
#: session's own stdin (or terminal): editors with shell escapes, file managers.
TERMINAL_PROGRAMS = EDITORS | frozenset(
    {
        "emacs",
        "emacsclient",
        "nano",
        "pico",
        "joe",
        "jed",
        "mcedit",
        "micro",
        "mc",
        "ranger",
        "nnn",
        "vifm",
        "gdb",
        "lldb",
        "ftp",
        "lftp",
        "telnet",
        # more editors, and shells of programming tools
        "helix",
        "hx",
        "mg",
        "zile",
        "kak",
        "jove",
        "ne",
        "dte",
        "tilde",
        "cpan",
        "crash",
    }
)
#: Programs that start a shell of their own (``newgrp``, ``capsh --``, ``nix-shell``),
#: or serve one to the network (``ttyd bash``, ``telnetd -l /bin/sh``).
SHELL_STARTERS = frozenset(
    "newgrp capsh nix-shell schroot systemd-nspawn toolbox distrobox devbox ttyd telnetd "
    "gotty shellinaboxd sshd dropbear xterm urxvt".split()
)
#: ``python -m MODULE``: modules that are a REPL, that run code given as arguments, or
#: that are a program of their own (judged as that program).
PY_REPLS = frozenset({"code", "asyncio", "IPython", "ptpython", "bpython", "idlelib"})
PY_CODE = frozenset({"timeit", "pdb", "trace", "cProfile", "profile", "runpy"})
PY_PROGRAMS = frozenset({"pip", "pip3", "venv", "http.server", "ensurepip", "pytest"})
#: Pagers: ``!cmd`` runs a shell, but only with a terminal (see ``decide``'s pty)
PAGERS = frozenset({"less", "more", "most", "pg", "man"})
#: Full-screen programs with a shell escape (``!`` in iftop, ``b`` in ncdu, mail and chat
#: clients, text browsers): like pagers, only with a terminal.
SCREEN_PROGRAMS = frozenset(
    "iftop ncdu lynx w3m elinks links weechat irssi mutt neomutt tig lazygit aptitude".split()
)
