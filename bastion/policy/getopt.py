"""GNU-style option reading for arbitrary programs and for wrappers.

Why two readers: rules want options "in any spelling" for any program (``-rf``,
``-r -f``, ``--recursive``, ``--rec``, options after operands), while wrappers (sudo,
env, timeout, ...) stop at their first operand, which starts the inner command.

Limits: for programs without a spec we do not know which short options take a value, so
``-ofile`` reads as ``-o -f -i -l -e`` and a value after an option may be read as an
operand; both err towards seeing more options and operands, never fewer. For wrappers, an
option we do not know is read both ways (flag, or taking the next word), and every
reading of the inner command is checked.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from .words import DYN, Word

__all__ = ["Spec", "OptRead", "read_options", "wrapper_options", "spec", "could_be_option"]


@dataclass(frozen=True)
class Spec:
    """Which options take a value. ``short`` is a getopt string ("ab:c::")."""

    short_arg: frozenset[str] = frozenset()  # take a value (attached or next word)
    short_opt: frozenset[str] = frozenset()  # take an attached value only (getopt "::")
    short_flag: frozenset[str] = frozenset()
    long_arg: frozenset[str] = frozenset()
    long_flag: frozenset[str] = frozenset()
    single_dash_long: bool = False  # find, terraform: "-delete" is one option
    numeric: bool = False  # nice -10, kill -9: "-<digits>" is one option
    #: "gnu" (getopt_long with permutation), "operands" (no options at all: test, [,
    #: expr, echo: every word is an operand), "kill" (one leading signal spec, then
    #: operands only: ``kill -9 -1``), "leading" (options only before the first operand,
    #: as POSIX getopt without permutation: ``java -jar x.jar -rf``)
    style: str = "gnu"


def spec(short: str = "", long_arg: str = "", long_flag: str = "", **kw: bool | str) -> Spec:
    """Build a Spec from a getopt string and space-separated long option names.

    With ``single_dash_long`` the long names are spelled with one dash (``-name``).
    """
    s = short.lstrip("+")
    args, opts, flags = set(), set(), set()
    i = 0
    while i < len(s):
        ch = s[i]
        if s[i + 1 : i + 3] == "::":
            opts.add(ch)
            i += 3
        elif s[i + 1 : i + 2] == ":":
            args.add(ch)
            i += 2
        else:
            flags.add(ch)
            i += 1
    dash = "-" if kw.get("single_dash_long") else "--"
    return Spec(
        frozenset(args),
        frozenset(opts),
        frozenset(flags),
        frozenset(dash + x for x in long_arg.split()),
        frozenset(dash + x for x in long_flag.split()),
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class OptRead:
    """Options read from argv: (name, value) pairs, operands, and rendered words."""

    options: list[tuple[str, Word | None]]
    operands: list[Word]
    rendered: list[str]
    #: operands only known at run time that could turn out to be options (a variable,
    #: or an unquoted glob that could match a file named ``-rf``)
    maybe: list[Word] = field(default_factory=list)


def could_be_option(w: Word) -> bool:
    """A run-time word (expansion or glob) whose value could start with ``-``."""
    if w.dynamic:
        static = w.value.split(DYN, 1)[0]
        if static == "" and w.safe and not w.raw.lstrip('"').startswith(("$((", "$[")):
            return False  # $USER, $$, $(date +%s): a name or digits, never a dash
        return static == "" or static.startswith("-")
    return w.glob and w.value[:1] in "*?["


_SPACE = re.compile(r"\s")


def _q(text: str) -> str:
    """Quote a word for display when it would otherwise read as several."""
    return shlex.quote(text) if (not text or _SPACE.search(text)) else text


_SIGNALS = frozenset(
    "HUP INT QUIT ILL TRAP ABRT IOT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD "
    "CLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO POLL PWR SYS".split()
)


def _one_word_option(v: str, sp: Spec) -> bool:
    """Whether ``v`` (starting with -) is one option rather than a cluster of letters."""
    if v.startswith("--") or sp.single_dash_long:
        return True
    if sp.numeric and v[1:].isdigit():
        return True
    return sp.numeric and (
        v[1:] in _SIGNALS
        or (v[1:4] == "SIG" and v[4:] in _SIGNALS)
        or v[1:].startswith("RTMIN")
        or v[1:].startswith("RTMAX")
    )


def _dashes(name: str, sp: Spec) -> str:
    """Single-dash long options also read with two (sqlite3 and Go's flag package:
    ``--cmd`` is ``-cmd``, ``--destroy`` is ``-destroy``)."""
    if (
        sp.single_dash_long
        and name.startswith("--")
        and len(name) > 2
        and name not in sp.long_arg | sp.long_flag
    ):
        return name[1:]
    return name


def _long_name(name: str, known: frozenset[str]) -> str:
    """Expand an unambiguous abbreviation (``--rec`` -> ``--recursive``) when we know it."""
    if name in known or not name.startswith("--"):  # single-dash long names: never
        return name
    hits = [k for k in known if k.startswith(name)]
    return hits[0] if len(hits) == 1 else name


def _operands_only(
    argv: list[Word], opts: list[tuple[str, Word | None]], rendered: list[str]
) -> OptRead:
    return OptRead(opts, list(argv), rendered + [_q(w.shown()) for w in argv])


def _maybe(read: OptRead, before: list[Word]) -> OptRead:
    read.maybe = [w for w in before if could_be_option(w)]
    return read


def _read_kill(argv: list[Word]) -> OptRead:
    """kill [-s SIG | -n NUM | -SIG | -NUM] [--] PID...; or kill -l/-L [SIG]."""
    opts: list[tuple[str, Word | None]] = []
    rendered: list[str] = []
    i = 0
    if argv and not argv[0].dynamic:
        v = argv[0].value
        if v in ("-s", "-n", "--signal") and len(argv) > 1:
            opts.append(("-s", argv[1]))
            rendered += [v, _q(argv[1].shown())]
            i = 2
        elif v in ("-l", "-L", "--list", "--table"):
            return _operands_only(argv[1:], [(v, None)], [v])
        elif v.startswith("-") and v != "--" and len(v) > 1:
            opts.append(("-s", Word(v[1:])))
            rendered.append(v)
            i = 1
    if i < len(argv) and argv[i].value == "--" and not argv[i].dynamic:
        rendered.append("--")
        i += 1
    return _operands_only(argv[i:], opts, rendered)


def read_options(argv: list[Word], sp: Spec | None = None) -> OptRead:
    """Read options the way the program does (``Spec.style``; GNU permutation by default)."""
    sp = sp or Spec()
    if sp.style == "operands":
        return _operands_only(argv, [], [])
    if sp.style == "kill":
        return _read_kill(argv)
    opts: list[tuple[str, Word | None]] = []
    operands: list[Word] = []
    rendered: list[str] = []
    i, n = 0, len(argv)
    while i < n:
        w = argv[i]
        v = w.value
        if w.dynamic or v == "-" or not v.startswith("-") or len(v) < 2:
            if sp.style == "leading":
                return _maybe(_operands_only(argv[i:], opts, rendered), argv[i : i + 1])
            operands.append(w)
            rendered.append(_q(w.shown()))
            i += 1
            continue
        if v == "--":
            rendered.append("--")
            read = _maybe(OptRead(opts, list(operands), rendered), operands)
            for rest in argv[i + 1 :]:
                read.operands.append(rest)
                rendered.append(_q(rest.shown()))
            return read
        if _one_word_option(v, sp):
            name, eq, val = v.partition("=")
            name = _long_name(_dashes(name, sp), sp.long_arg | sp.long_flag)
            value: Word | None = Word(val) if eq else None
            if not eq and name in sp.long_arg and i + 1 < n:
                value = argv[i + 1]
                i += 1
            opts.append((name, value))
            sep = "=" if eq else " "
            rendered.append(name + (sep + _q(value.shown()) if value else ""))
            i += 1
            continue
        j = 1
        while j < len(v):
            ch = v[j]
            if ch in sp.short_arg or ch in sp.short_opt:
                attached = v[j + 1 :]
                value = Word(attached) if attached else None
                if not attached and ch in sp.short_arg and i + 1 < n:
                    value = argv[i + 1]
                    i += 1
                opts.append(("-" + ch, value))
                rendered.append("-" + ch + (" " + _q(value.shown()) if value else ""))
                break
            opts.append(("-" + ch, None))
            rendered.append("-" + ch)
            j += 1
        i += 1
    return _maybe(OptRead(opts, operands, rendered), operands)


def wrapper_options(
    argv: list[Word], sp: Spec, max_readings: int = 4
) -> list[tuple[list[tuple[str, Word | None]], int]]:
    """Read a wrapper's leading options; return each possible (options, index of rest).

    Stops at the first operand or ``--``. An option not in ``sp`` may or may not take a
    value, so both readings are returned (up to ``max_readings``).
    """
    results: list[tuple[list[tuple[str, Word | None]], int]] = []
    stack: list[tuple[int, list[tuple[str, Word | None]]]] = [(0, [])]
    while stack and len(results) < max_readings:
        i, opts = stack.pop()
        n = len(argv)
        while i < n:
            w = argv[i]
            v = w.value
            if v == "--":
                i += 1
                break
            if w.dynamic or not v.startswith("-") or len(v) < 2:
                break
            if _one_word_option(v, sp):
                name, eq, val = v.partition("=")
                name = _long_name(_dashes(name, sp), sp.long_arg | sp.long_flag)
                if eq:
                    opts = opts + [(name, Word(val))]
                elif name in sp.long_arg:
                    opts = opts + [(name, argv[i + 1] if i + 1 < n else None)]
                    i += 1
                elif name not in sp.long_flag and not (
                    sp.numeric and v[1:].isdigit() or v[1:] in _SIGNALS
                ):
                    if i + 1 < n:  # unknown: also read it as taking the next word
                        stack.append((i + 2, opts + [(name, argv[i + 1])]))
                    opts = opts + [(name, None)]
                else:
                    opts = opts + [(name, None)]
                i += 1
                continue
            j = 1
            while j < len(v):
                ch = v[j]
                if ch in sp.short_arg or ch in sp.short_opt:
                    attached = v[j + 1 :]
                    if attached:
                        opts = opts + [("-" + ch, Word(attached))]
                    elif ch in sp.short_arg:
                        opts = opts + [("-" + ch, argv[i + 1] if i + 1 < n else None)]
                        i += 1
                    else:
                        opts = opts + [("-" + ch, None)]
                    break
                if ch not in sp.short_flag and j == len(v) - 1 and i + 1 < n:
                    stack.append((i + 2, opts + [("-" + ch, argv[i + 1])]))
                opts = opts + [("-" + ch, None)]
                j += 1
            i += 1
        results.append((opts, i))
    return results
