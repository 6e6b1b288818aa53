"""Programs that run another program: how to find the inner command.

Each entry says which options the wrapper takes and how its inner command is given:
as the remaining words ("argv"), as a string a shell will run ("shell"), or after a
number of fixed operands (``timeout DURATION``, ``chroot DIR``, ``ssh HOST``).

Limits: option tables cover the common options of each tool; an unknown option is read
both as a flag and as taking a value (see ``getopt.wrapper_options``). ``ssh HOST CMD``
and ``kubectl exec``/``docker exec`` are unwrapped so their inner command is judged as if
it ran here; the remote shell's own state (aliases, functions) is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .getopt import Spec, spec

__all__ = [
    "Wrapper",
    "WRAPPERS",
    "SHELLS",
    "INTERPRETERS",
    "SQL_CLIENTS",
    "KNOWN_PROGRAMS",
    "VIM_VARIANTS",
]


@dataclass(frozen=True)
class Wrapper:
    """How a wrapper passes control to its inner command."""

    spec: Spec
    skip: int = 0  # fixed operands before the inner command
    shell_opts: frozenset[str] = frozenset()  # option whose value a shell runs (-c)
    shell_flags: frozenset[str] = frozenset()  # rest joined and run by a shell (sudo -s)
    no_exec: frozenset[str] = frozenset()  # options meaning nothing is run (command -v)
    shell_string: bool = False  # rest is joined and run by a shell (watch, ssh)
    chdir_opts: frozenset[str] = frozenset()  # option whose value is the inner command's cwd
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: Options of irregular shape (two values, attached values): every word that is not
    #: an option may start the inner command, and each such reading is judged.
    loose: bool = False
    #: With ``loose``: only after one of these words (``npm exec``, ``cmake -E``).
    after: frozenset[str] = frozenset()


def _w(short: str = "", long_arg: str = "", long_flag: str = "", **kw) -> Wrapper:
    numeric = kw.pop("numeric", False)
    return Wrapper(spec(short, long_arg, long_flag, numeric=numeric), **kw)


WRAPPERS: dict[str, Wrapper] = {
    "sudo": _w(
        "+Aa:BbC:c:D:Eeg:HiKklNnPp:R:r:SsT:t:U:u:Vv",  # -h [host]: read both ways
        "askpass close-from chdir group host prompt chroot role type command-timeout "
        "other-user user login-class",
        "background bell edit login list non-interactive preserve-env "
        "remove-timestamp reset-timestamp shell stdin validate version",
        shell_flags=frozenset({"-s", "-i", "--shell", "--login"}),
        chdir_opts=frozenset({"-D", "--chdir"}),
        no_exec=frozenset(
            {"-e", "--edit", "-l", "--list", "-v", "--validate", "-k", "-K", "-V", "--version"}
        ),
    ),
    "doas": _w("+a:C:Lnsu:", shell_flags=frozenset({"-s"}), no_exec=frozenset({"-C", "-L"})),
    "sudoedit": _w("+u:g:", no_exec=frozenset({"-u"})),
    "pkexec": _w("+u:", "user", "disable-internal-agent keep-cwd"),
    "command": _w("+pvV", no_exec=frozenset({"-v", "-V"})),
    "builtin": _w(""),
    "exec": _w("+cla:"),
    "nice": _w("+n:", "adjustment", numeric=True),
    "ionice": _w(
        "+c:n:p:P:u:t",
        "class classdata pid pgid uid",
        "ignore",
        no_exec=frozenset({"-p", "-P", "-u", "--pid", "--pgid", "--uid"}),
    ),
    "nohup": _w(""),
    "timeout": _w("+k:s:vf", "kill-after signal", "foreground preserve-status verbose", skip=1),
    "time": _w("+f:o:apqvV", "format output", "append portability verbose quiet"),
    "stdbuf": _w("+i:o:e:", "input output error"),
    "setsid": _w("+cfw", "", "ctty fork wait"),
    "taskset": _w("+apc", "", "all-tasks pid cpu-list", skip=1, no_exec=frozenset({"-p", "--pid"})),
    "chrt": _w(
        "+bdefiormpRvT:P:D:a",
        "sched-runtime sched-period sched-deadline",
        "batch deadline fifo idle other rr all-tasks max pid reset-on-fork verbose",
        skip=1,
        no_exec=frozenset({"-p", "--pid", "-m", "--max"}),
    ),
    "flock": _w(
        "+sexnouFE:w:c:",
        "conflict-exit-code timeout wait command",
        "shared exclusive nonblock nb unlock close no-fork verbose",
        skip=1,
        shell_opts=frozenset({"-c", "--command"}),
    ),
    "chroot": _w("", "userspec groups", "skip-chdir", skip=1),
    "strace": _w(
        "+a:b:e:o:O:p:P:s:S:u:E:X:I:U:cCdDfFhiqrtTvVwxyzkZn",
        "signal trace status decode-fds output attach user env",
        "",
        no_exec=frozenset({"-p", "--attach"}),
    ),
    "ltrace": _w("+a:A:D:e:F:l:n:o:p:s:u:x:X:bcCfhiLrStTVw", "", "", no_exec=frozenset({"-p"})),
    "watch": _w(
        "+n:dtbegcxpqwe",
        "interval equexit",
        "differences no-title beep errexit chgexit exec precise color no-color no-wrap no-rerun",
    ),
    "script": _w(
        "+ac:efqE:I:O:B:T:t::o:m:",
        "command echo log-in log-out log-io log-timing timing output-limit logging-format",
        "append return flush force quiet",
        shell_opts=frozenset({"-c", "--command"}),
    ),
    "systemd-run": _w(
        "+p:E:M:H:u:tPGqdS",
        "unit property description slice setenv working-directory uid gid "
        "nice on-active on-boot on-startup on-unit-active on-unit-inactive "
        "on-calendar on-clock-change on-timezone-change timer-property "
        "path-property socket-property service-type machine host "
        "background json",
        "user system scope pty pipe wait collect quiet "
        "same-dir shell no-block no-ask-password remain-after-exit send-sighup",
        chdir_opts=frozenset({"--working-directory"}),
        shell_flags=frozenset({"-S", "--shell"}),
    ),
    "runuser": _w(
        "+c:fg:G:lmpPs:u:w:",
        "command session-command group supp-group shell user whitelist-environment",
        "login preserve-environment pty",
        shell_opts=frozenset({"-c", "--command", "--session-command"}),
    ),
    "su": _w(
        "+c:fg:G:lmpPs:w:",
        "command session-command group supp-group shell whitelist-environment",
        "login preserve-environment pty",
        shell_opts=frozenset({"-c", "--command", "--session-command"}),
    ),
    "env": _w(
        "+0iC:S:u:P:v",
        "chdir split-string unset block-signal default-signal ignore-signal",
        "ignore-environment null debug list-signal-handling",
        chdir_opts=frozenset({"-C", "--chdir"}),
    ),
    "xargs": _w(
        "+0a:d:E:e::I:i::L:l::n:P:prs:txo",
        "arg-file delimiter eof replace max-lines max-args max-procs max-chars process-slot-var",
        "null interactive no-run-if-empty verbose exit open-tty show-limits",
    ),
    "nsenter": _w(
        "+t:m::u::i::n::p::U::C::T::S:G:r::w::FaZ",
        "target user-parent wd",
        "all preserve-credentials no-fork follow-context",
        chdir_opts=frozenset({"-w", "--wd"}),
    ),
    "unshare": _w(
        "+m::u::i::n::p::U::C::T::fr",
        "fork map-root-user kill-child propagation setgroups",
        "mount-proc",
    ),
    "catchsegv": _w(""),
    "valgrind": _w(""),
    "faketime": _w("+m:f:", skip=1),
    "proxychains": _w("+qf:"),
    "proxychains4": _w("+qf:"),
    "torsocks": _w("+u:p:a:P:idq"),
    "numactl": _w(
        "+aC:p:i:m:N:l", "interleave membind cpunodebind physcpubind preferred", "all localalloc"
    ),
    "cgexec": _w("+g:", "sticky"),
    "sg": _w("", skip=1, shell_string=True),
    "ssh": _w(
        "+46AaCfGgKkMNnqsTtVvXxYyB:b:c:D:E:e:F:I:i:J:L:l:m:O:o:P:p:Q:R:S:W:w:",
        skip=1,
        shell_string=True,
    ),
    "busybox": _w(""),
    "parallel": _w(
        "+j:S:a:d:E:I:",
        "jobs sshlogin arg-file delimiter eof replace joblog results tmpdir workdir",
        "dry-run keep-order line-buffer null tag verbose halt progress eta",
    ),
    "toybox": _w(""),
    # launchers whose option syntax is irregular: each later word may start the command
    **{
        n: _w("", loose=True)
        for n in (
            "setarch linux32 linux64 i386 x86_64 setpriv prlimit fakeroot fakeroot-ng "
            "firejail bwrap rlwrap unbuffer perf chpst gosu su-exec s6-setuidgid proot "
            "hwloc-bind dbus-run-session xvfb-run mpirun mpiexec srun start-stop-daemon "
            "daemonize nocache trickle cpulimit systemd-inhibit chronic dtach abduco tini "
            "dumb-init catatonit vipe ifne sem"
        ).split()
    },
    **{
        n: _w("", loose=True, after=frozenset(sub.split()))
        for n, sub in (
            ("npm", "exec x"),
            ("yarn", "exec dlx"),
            ("pnpm", "exec dlx"),
            ("npx", "npx"),
            ("poetry", "run"),
            ("pipenv", "run"),
            ("conda", "run"),
            ("uv", "run"),
            ("direnv", "exec"),
            ("cmake", "-E"),
            ("mamba", "run"),
            ("pixi", "run"),
        )
    },
}

SHELLS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "mksh",
        "ash",
        "fish",
        "csh",
        "tcsh",
        "rbash",
        "yash",
        "posh",
        "pdksh",
        "oksh",
        "loksh",
        "ksh93",
        "xonsh",
        "elvish",
        "nu",
        "ion",
    }
)

#: Debian's builds of vim under their own names (``vim -c`` is theirs too).
VIM_VARIANTS = ("vim.basic", "vim.tiny", "vim.nox", "vim.gtk", "vim.gtk3", "gvim")

#: Interpreters and the options that give them inline code.
INTERPRETERS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c"}),
    "python2": frozenset({"-c"}),
    "python3": frozenset({"-c"}),
    "pypy": frozenset({"-c"}),
    "pypy3": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "-p", "--eval", "--print"}),
    "nodejs": frozenset({"-e", "-p"}),
    "deno": frozenset(),
    "bun": frozenset({"-e", "--eval"}),
    "php": frozenset({"-r", "-R", "-B", "-E"}),
    "lua": frozenset({"-e"}),
    "luajit": frozenset({"-e"}),
    "Rscript": frozenset({"-e"}),
    "R": frozenset({"-e"}),
    "tclsh": frozenset(),
    "wish": frozenset(),
    "expect": frozenset({"-c"}),
    "osascript": frozenset({"-e"}),
    "pwsh": frozenset({"-c", "-Command", "-command"}),
    "jshell": frozenset(),
    "groovy": frozenset({"-e"}),
    "julia": frozenset({"-e"}),
    "gdb": frozenset({"-ex", "--ex", "-batch"}),
    "vim": frozenset({"-c", "--cmd", "-S"}),
    **{v: frozenset({"-c", "--cmd", "-S"}) for v in (*VIM_VARIANTS, "rvim")},
    "irb": frozenset({"-e"}),
    "pry": frozenset({"-e"}),
    "vi": frozenset({"-c", "-S"}),
    "nvim": frozenset({"-c", "--cmd", "-S"}),
    "ex": frozenset({"-c", "--cmd", "-S"}),
    # less common language runtimes: inline code options, else a script operand
    "jrunscript": frozenset({"-e"}),
    "octave": frozenset({"--eval"}),
    "ghci": frozenset({"-e"}),
    "runghc": frozenset(),
    "erl": frozenset({"-eval"}),
    "escript": frozenset(),
    "elixir": frozenset({"-e", "--eval"}),
    "scala": frozenset({"-e"}),
    "guile": frozenset({"-c"}),
    "racket": frozenset({"-e"}),
    "sbcl": frozenset({"--eval"}),
    "clisp": frozenset({"-x"}),
}

SQL_CLIENTS = frozenset(
    {
        "psql",
        "mysql",
        "mariadb",
        "sqlite3",
        "redis-cli",
        "mongo",
        "mongosh",
        "clickhouse-client",
        "cockroach",
        "sqlcmd",
        "cqlsh",
        "valkey-cli",
        "keydb-cli",
    }
)

#: Names a glob in command position is matched against (rules add their own).
KNOWN_PROGRAMS = (
    frozenset(WRAPPERS)
    | SHELLS
    | frozenset(INTERPRETERS)
    | SQL_CLIENTS
    | {
        "rm",
        "rmdir",
        "unlink",
        "shred",
        "wipefs",
        "dd",
        "mkfs",
        "mke2fs",
        "mkswap",
        "fdisk",
        "sfdisk",
        "parted",
        "gdisk",
        "sgdisk",
        "blkdiscard",
        "truncate",
        "mv",
        "cp",
        "ln",
        "chmod",
        "chown",
        "chgrp",
        "chattr",
        "setfacl",
        "shutdown",
        "reboot",
        "poweroff",
        "halt",
        "init",
        "telinit",
        "systemctl",
        "kill",
        "killall",
        "killall5",
        "pkill",
        "kubectl",
        "terraform",
        "docker",
        "podman",
        "git",
        "crontab",
        "iptables",
        "nft",
        "userdel",
        "usermod",
        "passwd",
        "tee",
        "find",
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "sed",
        "eval",
        "source",
        ".",
        "curl",
        "wget",
        "nc",
        "ncat",
        "socat",
        "tar",
        "rsync",
        "zfs",
        "zpool",
        "lvremove",
        "vgremove",
        "pvremove",
        "mdadm",
        "cryptsetup",
        "helm",
        "aws",
        "gcloud",
        "mkfs.ext4",
        "mkfs.xfs",
        "mkfs.btrfs",
        "mkfs.vfat",
        "trap",
        "alias",
        "at",
        "batch",
    }
)
