"""How the normalizer reads programs that start other programs: wrappers (sudo, env,
nohup, timeout, xargs, parallel...), ``find -exec``, container exec/run (docker, podman,
kubectl, compose) and SQL clients (psql, mysql, sqlite3, redis-cli, mongosh).

A mixin of ``normalize.Normalizer``: each reading finds the command, script or SQL the
program runs and hands it back to ``Normalizer.command`` / ``shell_text`` to be judged
like any other; what cannot be read (a string only known at run time, a file of SQL we
cannot see) gets a tag that ``decide`` turns into on_unknown.
"""

from __future__ import annotations

import re

from .effects import path_hijack, resolve_path, stdin_of
from .getopt import read_options, spec, wrapper_options
from .pipelines import named_files, origin, xargs_item
from .programs import OPT_SPECS
from .readings import Readings
from .shparse import SimpleCommand, parse
from .sql import shell_escapes
from .words import DYN, FOUND, SOME, ShellSyntaxError, Word
from .wrappers import WRAPPERS

__all__ = ["LauncherReadings", "COMPOSE", "INFO_ONLY", "join_words"]

#: env and sudo take every leading word with "=" as NAME=VALUE (BASH_FUNC_f%%=... too)
_ENV_NAME = re.compile(r"^[^=\s-][^=]*=")

#: Options whose value is SQL (or a redis/mongo command) the client runs.
_SQL_OPTS = frozenset(
    {"-c", "--command", "-e", "--execute", "--eval", "-q", "--query", "-Q", "--cmd", "-cmd"}
)
#: Options naming a file of SQL (or a script) the client runs.
_SQL_FILE_OPTS = frozenset(
    {"-f", "--file", "-i", "--input-file", "--eval", "-init", "--init", "--init-command"}
)
#: SQL client commands that run another file: psql \i, mysql source / \., sqlite .read
_SQL_INCLUDE = re.compile(r"(?im)(^|;)\s*(\\i[r]?\s|\\\.\s|source\s|\.read\s)")

COMPOSE = frozenset({"docker-compose", "podman-compose"})

#: Wrappers that start a shell when given no command
_SHELL_WITHOUT_COMMAND = frozenset({"chroot", "script", "nsenter", "unshare", "sg"})

#: Wrappers that run their command with another HOME, USER or environment: a string
#: they run (sudo sh -c '...$HOME...') gets no trusted reading (see decide.trusted).
_NEW_ENV = frozenset(
    "sudo su doas runuser pkexec env systemd-run ssh chroot nsenter unshare setpriv sg exec "
    "busybox toybox at batch".split()
)

#: Options that only print something and exit
INFO_ONLY = frozenset({"--version", "-V", "--help", "-?", "-l", "--list"})

#: redis-cli modes that print and exit (or stream) without reading commands typed at it
#: and without writing (not --rdb FILE, which writes a dump wherever it is told, nor
#: --lru-test, which fills the server with keys and can evict real ones)
_REDIS_MODES = frozenset(
    "--scan --stat --latency --latency-history --latency-dist --bigkeys --memkeys "
    "--hotkeys --intrinsic-latency --replica".split()
)

_CONTAINER_SPEC = spec(
    "e:u:w:v:p:l:m:h:n:c:itdPqT",
    "env env-file user workdir detach-keys volume "
    "publish name network label mount entrypoint memory cpus hostname "
    "restart platform pull add-host dns device log-driver log-opt namespace "
    "container index",
    "interactive tty detach privileged rm init read-only no-TTY no-deps service-ports",
)


def _reads_null(sc: SimpleCommand) -> bool:
    """stdin is /dev/null (nothing to run)."""
    for red in reversed(sc.redirects):
        if red.op == "<" and red.target is not None:
            return red.target.value == "/dev/null"
        if red.op in ("<<", "<<-", "<<<", "<>", "<&"):
            return False
    return False


#: find tests that select some files only (then {} is some of what lies under a root)
_FIND_FILTERS = frozenset(
    {
        "-name",
        "-iname",
        "-path",
        "-ipath",
        "-regex",
        "-iregex",
        "-wholename",
        "-iwholename",
        "-mtime",
        "-mmin",
        "-atime",
        "-amin",
        "-ctime",
        "-cmin",
        "-newer",
        "-size",
        "-user",
        "-group",
        "-empty",
        "-perm",
        "-lname",
        "-inum",
        "-samefile",
        "-newermt",
        "-uid",
        "-gid",
        "-links",
    }
)


def join_words(words: list[Word]) -> tuple[str, bool]:
    """Join words into a string a shell will run; dynamic parts stay dynamic."""
    return " ".join(w.value.replace(DYN, "${_}") for w in words), any(w.dynamic for w in words)


#: How many readings of a loose launcher's words are judged (see ``loose_wrapper``).
_LOOSE_READINGS = 8


class LauncherReadings(Readings):
    """Mixin for the normalizer: wrappers, find -exec, containers, SQL clients."""

    loose_left: int

    def wrapper(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
        assigns: tuple[str, ...],
    ) -> None:
        trust = self.trust
        if name in _NEW_ENV:  # its words were expanded here; strings it runs are not
            self.trust = False
        try:
            self._wrapper(name, args, sc, via, depth, tags, assigns)
        finally:
            self.trust = trust

    def _wrapper(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
        assigns: tuple[str, ...],
    ) -> None:
        w = WRAPPERS[name]
        here = f"via {name} {via}".strip()
        if w.loose:
            self.loose_wrapper(name, w.after, args, sc, here, depth, assigns)
            return
        for opts, idx in wrapper_options(args, w.spec):
            names = {o for o, _ in opts}
            if name == "sudo" and names & {"-e", "--edit"} and idx is not None:
                # sudo -e FILE is sudoedit FILE: an editor on the files, as root
                files = [Word("sudoedit"), *args[idx:]]
                self.command(files, sc, here, depth + 1, set(), assigns)
            if names & w.no_exec:
                continue
            inner_assigns = assigns
            for opt, value in opts:
                if value is not None and opt in w.shell_opts:
                    self.code_string(value, f"inside {name} {opt} {via}".strip(), depth, tags)
            rest = list(args[idx:])
            if name in ("su", "runuser"):
                if "-u" not in names and "--user" not in names:
                    for k, word in enumerate(rest):  # su permutes: "su - root -c CMD"
                        if word.value in ("-c", "--command") and k + 1 < len(rest):
                            self.code_string(
                                rest[k + 1], f"inside {name} -c {via}".strip(), depth, tags
                            )
                        elif word.value.startswith("--command="):
                            self.code_string(
                                Word(word.value.split("=", 1)[1]),
                                f"inside {name} -c {via}".strip(),
                                depth,
                                tags,
                            )
                    if not (names & w.shell_opts):
                        tags.add("interactive-shell")
                    continue
            if name == "env":
                for opt, value in opts:
                    if opt in ("-S", "--split-string") and value is not None:
                        try:
                            split = parse(
                                value.value, self.timeout, trust=self.trust, digits=self.digits
                            )
                        except ShellSyntaxError:
                            tags.add("dynamic-code")
                            split = []
                        rest = (
                            [  # env -S 'LD_PRELOAD=x id': its assignments too
                                Word(f"{n}={v.value}", v.raw, v.dynamic)
                                for c in split[:1]
                                for n, v in c.assigns
                            ]
                            + [x for c in split[:1] for x in c.words]
                            + rest
                        )
                while rest and _ENV_NAME.match(rest[0].value):
                    inner_assigns += (rest[0].value.split("=", 1)[0],)
                    if rest[0].value.startswith("PATH=") and path_hijack(
                        Word(rest[0].value[5:], rest[0].raw[5:], rest[0].dynamic)
                    ):
                        tags.add("path-hijack")
                    rest = rest[1:]
            if name == "flock" and len(rest) >= 2 and rest[1].value in ("-c", "--command"):
                if len(rest) >= 3:
                    self.code_string(rest[2], f"inside flock -c {via}".strip(), depth, tags)
                continue
            inner = rest[w.skip :]
            if name == "script" and not (names & w.shell_opts):
                tags.add("interactive-shell")  # script [FILE]: $SHELL on the session's input
                continue
            if name == "ssh":
                for o2, i2 in wrapper_options(inner, w.spec):  # ssh host -p 22 cmd
                    for opt, value in o2:
                        if (
                            opt == "-o"
                            and value
                            and re.match(r"(?i)(proxy|local)command", value.value)
                        ):
                            self.code_string(
                                Word(value.value.split("=", 1)[-1].lstrip()),
                                f"inside ssh -o {via}".strip(),
                                depth,
                                tags,
                            )
                    inner = inner[i2:]
                    break
            if not inner:
                if names & w.shell_flags or name in _SHELL_WITHOUT_COMMAND:
                    tags.add("interactive-shell")  # nsenter -t 1 -a: $SHELL in init's namespaces
                continue
            if (
                names & w.shell_flags
                or w.shell_string
                or (name == "watch" and not (names & {"-x", "--exec"}))
            ):
                text, _ = join_words(inner)
                where = "on the remote host" if name == "ssh" else "inside " + name
                self.code_string(Word(text, dynamic=False), f"{where} {via}".strip(), depth, tags)
                continue
            if name == "xargs":
                repl = [v.value for o, v in opts if o in ("-I", "--replace", "-i") and v]
                base = None if any(o in ("-a", "--arg-file") for o, _ in opts) else origin(sc)
                root = base[:-3] if base and base.endswith("/**") else base
                item = DYN if root is None else root.rstrip("/") + "/" + DYN
                raw = "{stdin}" if base is None else FOUND if base != root else SOME
                for named in named_files(sc):  # ls FILE | xargs CMD: CMD FILE too
                    as_named = [
                        Word(x.value.replace(repl[0], named.value), x.raw, True)
                        if repl and repl[0] in x.value
                        else x
                        for x in inner
                    ] + ([] if repl else [Word(named.value, named.raw, True)])
                    self.command(as_named, sc, here, depth + 1, set(), inner_assigns)
                inner = [
                    xargs_item(x, repl[0], base) if repl and repl[0] in x.value else x
                    for x in inner
                ] + ([] if repl else [Word(item, raw, True)])
            if name == "parallel":  # CMD ::: ARGS: args are appended, {} replaced
                inner = self.parallel(inner, depth, tags)
                if not inner:
                    continue
            saved = self.cwd
            for opt, value in opts:
                if opt in w.chdir_opts and value is not None:
                    self.cwd = "?" if value.dynamic else resolve_path(value.value, self.cwd)
            self.command(inner, sc, here, depth + 1, set(), inner_assigns)
            self.cwd = saved

    def loose_wrapper(
        self,
        name: str,
        after: frozenset[str],
        args: list[Word],
        sc: SimpleCommand,
        here: str,
        depth: int,
        assigns: tuple[str, ...],
    ) -> None:
        """A launcher whose options we do not read word by word (``bwrap --bind / / sh``,
        ``setarch x86_64 sh``, ``npm exec -- CMD``): each word that is not an option may
        start the command it runs, and every such reading is judged (at most
        ``_LOOSE_READINGS``; a dynamic word could start one more, which is unknown)."""
        start = 0
        if after and name not in after:
            start = next((k + 1 for k, a in enumerate(args) if a.value in after), len(args))
        starts = [
            k
            for k in range(start, len(args))
            if not args[k].value.startswith("-")
            and not (args[k].value in (".", "..") and k == len(args) - 1)  # -p .: a path
        ]
        for k in starts[:_LOOSE_READINGS]:
            if self.loose_left <= 0:  # launchers inside launchers: too many readings
                self.command([Word(DYN, "{loose}", True)], sc, here, depth + 1, set(), assigns)
                return
            self.loose_left -= 1
            self.command(list(args[k:]), sc, here, depth + 1, set(), assigns)

    def parallel(self, inner: list[Word], depth: int, tags: set[str]) -> list[Word]:
        """GNU parallel: the command (a shell string if one word) with its arguments."""
        cut = next(
            (k for k, w in enumerate(inner) if w.value in (":::", "::::", ":::+")), len(inner)
        )
        values = [w for w in inner[cut:] if w.value not in (":::", "::::", ":::+")]
        if any(w.value in ("::::",) for w in inner[cut:]) or cut == len(inner):
            values.append(Word(DYN, "{input}", True))  # arguments from a file or stdin
        cmd = inner[:cut]
        for v in values:
            text = " ".join(w.value.replace("{}", v.value) for w in cmd)
            if not any("{}" in w.value for w in cmd):
                text += " " + v.value
            self.code_string(Word(text, dynamic=v.dynamic), "via parallel", depth, tags)
        return []

    def find(
        self, args: list[Word], sc: SimpleCommand, via: str, depth: int, assigns: tuple[str, ...]
    ) -> None:
        roots = []
        for w in args:
            if w.value.startswith(("-", "(", "!")) and not w.dynamic:
                break
            roots.append(w)
        roots = list({w.value: w for w in roots}.values()) or [Word(".")]
        filtered = any(w.value in _FIND_FILTERS for w in args)
        if len(roots) > 4:  # many roots: judge the first ones and "any path"
            roots = roots[:4] + [Word(DYN, "$root", True)]
        i = 0
        while i < len(args):
            if args[i].value in ("-exec", "-execdir", "-ok", "-okdir"):
                j = i + 1
                while j < len(args) and args[j].value not in (";", "+"):
                    j += 1
                inner = args[i + 1 : j]
                if inner:
                    for root in roots:  # {}: the root or anything under it
                        under = root.value.rstrip("/") + "/" + DYN
                        readings = (
                            [(under, SOME)] if filtered else [(root.value, None), (under, FOUND)]
                        )
                        for value, raw in readings:
                            sub = [
                                Word(
                                    x.value.replace("{}", value),
                                    (raw or x.raw)
                                    if x.value == "{}"
                                    else (SOME if raw and x.value.startswith("{}") else x.raw),
                                    x.dynamic or root.dynamic or raw is not None,
                                    x.glob,
                                )
                                if "{}" in x.value
                                else x
                                for x in inner
                            ]
                            self.command(
                                sub,
                                sc,
                                f"via find {args[i].value} {via}".strip(),
                                depth + 1,
                                {"from-find"},
                                assigns,
                            )
                i = j
            i += 1

    def container_exec(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        assigns: tuple[str, ...],
    ) -> None:
        """docker/podman/kubectl exec|run|debug, docker compose exec|run: the inner command
        is judged as if it ran here."""
        trust, self.trust = self.trust, False  # the container's HOME, USER, date, ...
        try:
            self._container_exec(name, args, sc, via, depth, assigns)
        finally:
            self.trust = trust

    def _container_exec(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        assigns: tuple[str, ...],
    ) -> None:
        read = read_options(args, OPT_SPECS.get(name))
        ops = read.operands
        pos = 1 if ops and ops[0].value == "compose" and name not in COMPOSE else 0
        if len(ops) <= pos or ops[pos].value not in ("exec", "run", "debug", "create"):
            return
        verb = ops[pos].value
        start = next(i for i, w in enumerate(args) if w is ops[pos]) + 1
        here = f"via {name} {verb} {via}".strip()
        values = [w.value for w in args[start:]]
        if "--" in values:
            inner = args[start + values.index("--") + 1 :]
            if inner:
                self.command(inner, sc, here, depth + 1, set(), assigns)
            return
        if name in ("kubectl", "oc") and verb != "exec":
            return
        for _opts, idx in wrapper_options(args[start:], _CONTAINER_SPEC):
            inner = args[start + idx + 1 :]  # skip the container / image / pod / service
            if inner:
                self.command(inner, sc, here, depth + 1, set(), assigns)

    def sql(
        self,
        name: str,
        args: list[Word],
        sc: SimpleCommand,
        via: str,
        depth: int,
        tags: set[str],
    ) -> str | None:
        read = read_options(args, OPT_SPECS.get(name))
        redis = name in ("redis-cli", "valkey-cli", "keydb-cli")
        code_opts = _SQL_OPTS - {"--eval"} if redis else _SQL_OPTS  # redis: --eval FILE
        parts = [v.value for o, v in read.options if v is not None and o in code_opts]
        if name in ("sqlite3",):
            parts += [w.value for w in read.operands[1:]]
        if redis:
            parts += [w.value for w in read.operands]
        if name == "cockroach":
            parts += [w.value for w in read.operands if w.value != "sql"]
        file_opts = {"--eval"} if redis else _SQL_FILE_OPTS - {"--eval"}  # redis -i: interval
        files = [v for o, v in read.options if v is not None and o in file_opts]
        if name in ("mongo", "mongosh"):
            files += [w for w in read.operands if w.value.endswith(".js")]
        from_stdin = not parts or any(
            f.value in ("-", "/dev/stdin") or f.value.startswith("/dev/fd/") for f in files
        )
        if redis and "-x" in dict(read.options):
            from_stdin = True
        if any(f.value not in ("-", "/dev/stdin") for f in files):
            tags.add("script-file")  # psql -f x.sql, redis-cli --eval x.lua: unseen code
        if from_stdin:
            texts, kind = stdin_of(sc)
            no_shell = INFO_ONLY | _REDIS_MODES if redis else INFO_ONLY
            if kind == "none" and not parts and not no_shell & {o for o, _ in read.options}:
                tags.add("takes-terminal")  # psql: a SQL shell on the session's stdin (\!)
            if kind == "unknown" and not _reads_null(sc):
                tags.add("script-file")  # psql < dump.sql, cat x | mysql: SQL we cannot see
            parts += texts
        sql = "\n".join(parts)
        if _SQL_INCLUDE.search(sql):
            tags.add("script-file")  # \i file, source file, .read file
        for cmd in shell_escapes(sql):
            self.shell_text(cmd, f"inside a {name} shell escape {via}".strip(), depth)
        return sql or None
