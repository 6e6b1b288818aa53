"""The structure check: bash's own parser confirms that it reads the commands we read.

Our reader (``shparse``) can misread bash (the red team found misreads in ANSI-C quoting,
here-documents, quotes inside ``${...}``, backticks in double quotes, ...). A misread
must not be exploitable, so for every input a simple word scanner cannot vouch for
(``needs_structure_check``) bash itself parses it, never executing it: the text goes to
``bash --pretty-print`` on standard input (with ``-c`` bash would RUN it), in an empty
environment (no ``BASH_ENV``), bounded in time. Bash prints the program as it read it:
here-documents, line continuations, ANSI-C quoting, comments and compound commands
come back in one canonical spelling. Our reader then reads that canonical text, and
every command in it must be one we found in the original: a command only bash's reading
holds is a disagreement, and the input gets on_unknown. So does any input bash cannot
parse (bash -c would run the commands before the syntax error), a time-out (never
cached) and a bash that cannot pretty-print (older than 5.2, or missing).

Limits: bash keeps the text of command substitutions and of words inside quotes as
written, so a misread confined to the inside of one word is compared with itself; the
differential tests (tests/policy/test_differential.py) hunt for those against bash's
reading, and each one found is fixed in the reader and becomes a table row. The check
costs one write and one read to a bash kept running (``_Reader``: inputs follow one
another, each with a random sentinel line after it), handed the input before our own
reader starts, so the two read at once (``begin``, ``Reading``); an input whose reading
there cannot be trusted is read again by a bash of its own. Results are cached with the
analysis, by exact bytes.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from .normalize import Command, normalize
from .shparse import parse
from .words import AnalysisTimeout, ShellSyntaxError

__all__ = ["Reading", "StructureCheck", "StructureResult", "needs_structure_check", "bash_reading"]

#: Inputs made of words of plain characters (braces and ``\\X`` escapes included),
#: single-quoted strings, double-quoted strings of plain characters, simple
#: ``$NAME``/``${NAME}`` references and ``$(...)`` of plain words (no nesting, no quotes),
#: separated by blanks and the operators ``; & | && || < > >> 2>&1``, with no reserved
#: word: a language two readers cannot read differently (a property test checks it
#: against bash's reading), so bash is not asked.
_PLAIN_CH = r"[A-Za-z0-9_./:=,@%+*?~^\[\]-]"
_VAR = r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\}|[0-9?$#@*!])"
_DQ_CH = r"[A-Za-z0-9_./:=,@%+*?~^\[\]{}()<>|&;#' \t-]"
_ESC = r"\\[A-Za-z0-9_./:=,@%+*?~^;{}-]"
_SUBST = rf"\$\((?:{_PLAIN_CH}|[ \t|{{}}]|{_VAR})*+\)"  # $(date +%F): no nesting, no quotes
_TOKEN = (
    rf"(?:{_PLAIN_CH}++|[{{}}]|{_ESC}|'[^']*+'|\"(?:{_DQ_CH}++|{_VAR}|{_SUBST})*+\"|{_VAR}|{_SUBST}"
    r"|[ \t]++|;|&&|\|\||\||&|[0-9]?>>?|[0-9]?<|2>&1|>&2)"
)
_SIMPLE = re.compile(rf"(?:{_TOKEN})*+")  # possessive: linear, never backtracks
#: An expansion inside brackets: an array subscript, evaluated (and run) by bash.
_SUBSCRIPT = re.compile(r"\[[^\]]*[$`]")
#: A redirection with no word after it (``> 2>&1``, ``> |``, ``<`` at the end).
_BAD_REDIRECT = re.compile(r"(?>>>|>&|&>|[<>])[ \t]*(?=$|[<>&;|]|[0-9]+[<>])")
_RESERVED = re.compile(
    r"(?:^|[;&|]\s*|\s)(?:if|then|else|elif|fi|case|esac|for|select|while|until|do|done|in"
    r"|function|coproc|time|\[\[|\]\]|\{|\}|!)(?=$|[\s;&|<>()])"
)


def needs_structure_check(src: str) -> bool:
    """False when ``src`` is in the plain word language (see above), where our reading
    and bash's cannot differ; True for everything else."""
    if len(src) > 4096 or "\n" in src or "<<" in src or "<>" in src:
        return True
    if not _SIMPLE.fullmatch(src) or _BAD_REDIRECT.search(src) or _SUBSCRIPT.search(src):
        return True
    return bool(_RESERVED.search(src))


@dataclass(frozen=True)
class StructureResult:
    """Empty ``failure``: bash reads no command we did not. Otherwise why not."""

    failure: str = ""
    timed_out: bool = False


_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
_ARGS = ("--norc", "--noprofile", "--pretty-print")
_SMALL = 32768  # inputs up to this size go to a bash kept running, in one write


def bash_reading(bash: str, src: str, timeout: float) -> tuple[int, str]:
    """(status, canonical text) of bash parsing ``src`` without executing it.

    Status 0: parsed; 2: syntax error; -1: timed out; -2: bash could not be started.
    The script goes on stdin: ``--pretty-print`` only parses when it reads a file or
    stdin (with ``-c`` it EXECUTES the string)."""
    try:
        out = subprocess.run(
            [bash, *_ARGS],
            input=src.encode("utf-8", "surrogateescape"),
            capture_output=True,
            timeout=timeout,
            env=_ENV,
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, ""
    except OSError:
        return -2, ""
    return (0 if out.returncode == 0 else 2), out.stdout.decode("utf-8", "surrogateescape")


class _Reader:
    """One bash --pretty-print kept running, reading one input after another from a
    pipe. Each input goes with a line of its own, ``: bastion-end-<random>``; bash prints
    each command as soon as it has read it, so the sentinel coming back as the last line
    means bash read the input as a whole, ended where it ends, and is waiting for the
    next: a reading costs one write and one read (about 0.1 ms), no process start.

    An input that does not end where it seems to (an open quote, here-document or
    compound command, a trailing ``|``) swallows the sentinel or joins it: that reading
    is not trusted, and the input is read again by a bash of its own (``bash_reading``),
    the reference. The sentinel is random per input, so no input can forge it."""

    #: A bash is retired after this many inputs (bounds whatever its parser keeps).
    MAX_USES = 2000
    #: How long an input may keep bash waiting for more before it gets end-of-file.
    GRACE = 0.05

    def __init__(self, bash: str):
        in_r, self.stdin = os.pipe()
        self.stdout, out_w = os.pipe()
        try:
            self.pid = os.posix_spawn(
                bash,
                [bash, *_ARGS],
                _ENV,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, in_r, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
                ],
            )
        except OSError:
            for fd in (self.stdin, self.stdout):
                os.close(fd)
            raise
        finally:
            os.close(in_r)
            os.close(out_w)
        self.uses = 0
        self.sentinel = b""
        self.alive = True

    def send(self, data: bytes) -> bool:
        """Hand bash one input; it parses while the caller goes on (see ``receive``)."""
        self.uses += 1
        self.sentinel = b": bastion-end-" + secrets.token_hex(16).encode() + b"\n"
        try:
            os.write(self.stdin, data + b"\n" + self.sentinel)
        except OSError:
            self.kill()
            return False
        return True

    def receive(self, deadline: float) -> str | None:
        """Bash's canonical text of the input sent, or None when this reading cannot be
        trusted (the sentinel did not come back as the last line, bash exited, or the
        deadline passed; the process is then gone). An input still open after a short
        grace gets end-of-file, so bash finishes (or fails) at once instead of waiting
        for more: the reader is then spent."""
        out = b""
        grace = min(deadline, time.monotonic() + self.GRACE)
        while True:
            until = grace if self.stdin >= 0 else deadline
            left = until - time.monotonic()
            ready = select.select([self.stdout], [], [], left)[0] if left > 0 else []
            if not ready:
                if self.stdin >= 0 and grace < deadline:
                    os.close(self.stdin)
                    self.stdin = -1
                    continue
                self.kill()
                return None
            chunk = os.read(self.stdout, 65536)
            if not chunk:
                self.kill()  # bash exited: a syntax error, or end-of-file after the grace
                return self._text(out)
            out += chunk
            if self.stdin >= 0 and out.endswith(self.sentinel):
                return self._text(out)

    def _text(self, out: bytes) -> str | None:
        """The canonical text before the sentinel, when the sentinel is the last line
        and comes once; otherwise None (the sentinel was joined to the input)."""
        if not out.endswith(self.sentinel):
            return None
        text = out[: -len(self.sentinel)]
        if self.sentinel in text or (text and not text.endswith(b"\n")):
            self.kill()
            return None
        return text.decode("utf-8", "surrogateescape")

    def kill(self) -> None:
        if not self.alive:
            return
        self.alive = False
        for fd in (self.stdin, self.stdout):
            if fd >= 0:
                os.close(fd)
        self.stdin = self.stdout = -1
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _pipe_safe(data: bytes) -> bool:
    """Whether the input can share a long-running bash: small, no NUL, and not ending in
    a backslash (which would join the input to the sentinel line after it)."""
    return len(data) <= _SMALL and b"\0" not in data and not data.endswith(b"\\")


class _Pool:
    """Long-running bash readers, each used for one input at a time and handed back.
    A daemon thread starts replacements for readers that ended (``posix_spawn`` waits
    about 1.3 ms for the exec), so a decision only writes and reads; with no reader
    ready it starts one itself."""

    def __init__(self, bash: str, size: int = 2):
        self.bash = bash
        self.size = size
        self.idle: list[_Reader] = []
        self.cond = threading.Condition()
        self.filler: threading.Thread | None = None

    def take(self) -> _Reader | None:
        """An idle reader (one started now if none is); None if bash cannot start."""
        with self.cond:
            reader = self.idle.pop() if self.idle else None
            if self.filler is None or not self.filler.is_alive():
                self.filler = threading.Thread(
                    target=self._fill, name="bastion-bash-readers", daemon=True
                )
                self.filler.start()
            self.cond.notify()
        if reader is None:
            try:
                reader = _Reader(self.bash)
            except OSError:
                return None
        return reader

    def give_back(self, reader: _Reader) -> None:
        """A reader whose last reading was whole goes back to serve the next input."""
        if not reader.alive:
            return
        if reader.uses >= _Reader.MAX_USES:
            reader.kill()
            return
        with self.cond:
            if len(self.idle) < self.size:
                self.idle.append(reader)
                return
        reader.kill()

    def _fill(self) -> None:
        """Keep ``size`` readers ready; stop when bash cannot be started."""
        while True:
            with self.cond:
                while len(self.idle) >= self.size:
                    self.cond.wait()
            try:
                reader = _Reader(self.bash)
            except OSError:
                return
            with self.cond:
                self.idle.append(reader)


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(bash: str) -> _Pool:
    """One pool per bash for the whole process: a reloaded policy reuses the readers
    instead of leaving its predecessor's running."""
    with _POOLS_LOCK:
        if bash not in _POOLS:
            _POOLS[bash] = _Pool(bash)
        return _POOLS[bash]


class Reading:
    """Bash reading one input in the background; collect it once with ``result``, or
    ``cancel`` it when the decision no longer needs it (never left to run on)."""

    def __init__(self, check: StructureCheck, src: str, reader: _Reader | None, deadline: float):
        self.check = check
        self.src = src
        self.reader = reader
        self.deadline = deadline
        self.done = False

    def result(self) -> tuple[int, str]:
        """(status, canonical text), as ``bash_reading`` gives them."""
        self.done = True
        if self.reader is not None:
            text = self.reader.receive(self.deadline)
            if text is not None:
                self.check.pool.give_back(self.reader)
                return 0, text
        # no reader, or its reading is not to be trusted: the reference, a bash of its own
        left = self.deadline - time.monotonic()
        if left <= 0:
            return -1, ""
        return bash_reading(self.check.bash, self.src, left)

    def cancel(self) -> None:
        if not self.done:
            self.done = True
            if self.reader is not None:
                self.reader.kill()


class StructureCheck:
    """Asks bash to read an input and compares its reading with ours."""

    def __init__(self, bash: str, timeout: float):
        self.bash = bash
        self.timeout = timeout
        self._usable: bool | None = None
        self.pool = _pool(bash)

    def usable(self) -> bool:
        """Whether this bash parses without executing (bash >= 5.2 ``--pretty-print``).
        Probed once: the probe would print its own text back if it were executed."""
        if self._usable is None:
            probe = "echo bastion-probe-$((6*7))\n"
            status, text = bash_reading(self.bash, probe, max(self.timeout, 2.0))
            self._usable = status == 0 and "$((6*7))" in text and "42" not in text
        return self._usable

    def begin(self, src: str) -> Reading | None:
        """Start bash reading ``src`` now, so it parses while our reader does (the two
        cores of a small bastion overlap); None where bash cannot pretty-print."""
        if not self.usable():
            return None
        deadline = time.monotonic() + self.timeout
        data = src.encode("utf-8", "surrogateescape")
        reader = self.pool.take() if _pipe_safe(data) else None
        if reader is not None and not reader.send(data):
            reader = None
        return Reading(self, src, reader, deadline)

    def confirm(
        self, src: str, ours: list[Command], trust: bool, reading: Reading | None = None
    ) -> StructureResult:
        """Whether bash's reading of ``src`` (begun with ``begin``, or now) holds only
        commands in ``ours``."""
        if not self.usable():
            return StructureResult(
                f"cannot confirm how bash reads it ({self.bash} >= 5.2 with --pretty-print "
                "is needed)"
            )
        start = time.monotonic()
        reading = reading or self.begin(src)
        assert reading is not None  # usable() holds
        status, canonical = reading.result()
        if status == -1:
            return StructureResult("cannot parse: bash took too long to read it", True)
        if status != 0:
            return StructureResult("bash cannot parse it (a syntax error)")
        if canonical.rstrip("\n") == src.rstrip("\n"):
            return StructureResult()  # bash prints the input as it is: our reading of it
        left = max(self.timeout - (time.monotonic() - start), 0.05)
        try:
            theirs = normalize(parse(canonical, left, trust=trust), None, left, trust=trust)
        except AnalysisTimeout:
            return StructureResult("cannot parse: analysis took too long", True)
        except (ShellSyntaxError, RecursionError):
            return StructureResult("bash reads it differently (its reading is unreadable here)")
        seen = {_key(c) for c in ours}
        for c in theirs:
            if (c.program or c.words) and _key(c) not in seen:
                return StructureResult(f"bash reads it differently: it would run {c.rendered!r}")
        return StructureResult()


def _key(cmd: Command) -> tuple[str, tuple[str, ...]]:
    return cmd.program, tuple(w.value for w in cmd.words)
