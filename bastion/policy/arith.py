"""Arithmetic on values only known at run time: bash runs commands hidden in them.

Bash evaluates a variable's value as an expression wherever arithmetic reads it
(``$((x))``, ``((x > 1))``, ``for ((;i<n;))``, ``let``, the operands of ``-eq``/``-lt``...
in ``[[ ]]``, indexed-array subscripts ``${a[$i]}``, substring offsets ``${s:$n}``), and
an expression may hold ``a[$(cmd)]``, which runs ``cmd``. So ``x=$(cat f); echo $((x+1))``
runs whatever ``f`` says. A value is *tainted* when this input sets it from something
only known at run time (a substitution, ``read``, ``for x in``, ``declare``, a positional
parameter) and not from a number (digits, an arithmetic result, ``${#...}``, ``$?``...);
arithmetic that reads a tainted value, a positional parameter, or a substitution other
than a known digit printer (``$(id -u)``, ``$(nproc)``, ``$(wc -l < f)``...) makes the
command ``arith-runtime``: on_unknown.

Limits, in the open: a name this input never sets is taken from the environment, which
is the bastion's (the SSH layer passes only LANG and LC_*; an interactive session's
carried exports must not hold a ``[`` with ``$(`` or a backtick, see the README) and the
login's startup files (whose writing the policy denies). Variables are followed in
source order only, not through functions or loops; associative arrays are known from
``declare -A`` in the same input (``${m[k]}`` of an array declared elsewhere is held).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "tainted_reads",
    "numeric_value",
    "only_digit_substitutions",
    "printers_used",
    "DIGIT_PRINTERS",
    "DIGIT_PROGRAMS",
    "ArithNames",
    "BASH_NUMBERS",
    "BASH_INTEGERS",
    "BASH_RUNTIME",
]

_NAME = re.compile(r"(?<![A-Za-z0-9_#@.])\$?\{?([A-Za-z_][A-Za-z0-9_]*)")
_POSITIONAL = re.compile(r"\$\{?[0-9@*]")
_ASSIGN_AT = re.compile(r"\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)")
_EXPRESSION_END = re.compile(r"[,;]")
#: Substitutions whose output is digits (and blanks): safe inside arithmetic. Each is
#: spelled out with the options that keep it so and one input at most (``grep -c x a b``,
#: ``wc -l f`` and ``stat --printf`` print names or text, which may hold ``a[$(cmd)]``);
#: no ``#`` or newline (a comment could hide the ``)`` that ends the substitution).
#: ``date -d "$(...)" +%s`` prints digits whatever the date it is given.
_B = r"[ \t]+"
_PLAIN_WORD = r"[^-\s|;&`$()#*?\[\]<>'\"\\{}~][^\s|;&`$()#*?\[\]<>'\"\\{}]*"
_FILE = rf"(?:{_PLAIN_WORD}|'(?!-)[^'\n]*'|\"(?!-)[^\"`$\\\n]*\")"
_INPUT = rf"[ \t]*<[ \t]*{_FILE}"
_GREP_OPTS = r"-[ivEFwx]+"
DIGIT_PRINTERS = re.compile(
    rf"[ \t]*(?:id{_B}-[ug]|nproc(?:{_B}--all)?"
    rf"|date(?:{_B}(?:-u|--utc|-d[ \t]*"
    r"(?:\"[^\"`'#\\\n]*\"|'[^'\n]*'|[^ \t\n\"'`$|;&()#]+)))*" + rf"{_B}\+%s"
    rf"|wc{_B}-[lcmw](?:{_INPUT})?"
    rf"|grep(?:{_B}{_GREP_OPTS})*{_B}-[ivEFwx]*c[ivEFwx]*(?:{_B}{_GREP_OPTS})*{_B}{_FILE}"
    rf"(?:{_B}{_FILE}|{_INPUT})?"
    rf"|stat(?:{_B}-L)?{_B}-c[ \t]*(?:%[sYXZ]|'%[sYXZ]'|\"%[sYXZ]\")(?:{_B}-L)?{_B}{_FILE}"
    rf"|getconf{_B}(?:PAGESIZE|PAGE_SIZE|_NPROCESSORS_ONLN|_NPROCESSORS_CONF|ARG_MAX|LONG_BIT"
    r"|CLK_TCK|OPEN_MAX))[ \t]*"
)
#: The programs those are: a function of the same name in the input voids the trust.
DIGIT_PROGRAMS = frozenset({"id", "nproc", "date", "wc", "grep", "stat", "getconf"})
_NUMERIC_VALUE = re.compile(r"-?[0-9]+|\$\{#[A-Za-z_][A-Za-z0-9_]*(\[[@*]\])?\}|\"?\$[?#$!]\"?")


def tainted_reads(
    text: str,
    tainted: set[str],
    vouched: Callable[[str, str], bool] = lambda name, text: True,
    numeric: set[str] | None = None,
) -> list[str]:
    """What arithmetic ``text`` reads that is only known at run time (empty: nothing):
    a substitution, a positional parameter, a name set from run-time text, or a name
    ``vouched`` does not vouch for. Names it assigns are numbers afterwards (they leave
    ``tainted`` and join ``numeric``); ``x += 1`` and ``x = x + 1`` read the old value
    first."""
    bad: list[str] = []
    text = _digits_replaced(text)
    if "\x00" in text or "$(" in text or "`" in text:
        bad.append("a substitution")
    if _POSITIONAL.search(text):
        bad.append("a positional parameter")

    def read(name: str) -> None:
        if name in tainted or not vouched(name, text):
            bad.append(name)

    for m in _NAME.finditer(text):
        name = m.group(1)
        op = _ASSIGN_AT.match(text, m.end()) if not m.group().startswith("$") else None
        if op is None:
            read(name)
            continue
        rest = _EXPRESSION_END.split(text[op.end() :], 1)[0]
        if op.group().strip() != "=" or re.search(rf"(?<![A-Za-z0-9_]){name}\b", rest):
            read(name)  # x += 1, x = x + 1: the old value is read first
        tainted.discard(name)
        if numeric is not None:
            numeric.add(name)
    return bad


def only_digit_substitutions(text: str) -> bool:
    """Whether every substitution in arithmetic ``text`` prints only digits
    (``$(( $(date +%s) - $(stat -c %Y f) ))``): their output cannot hold ``a[$(cmd)]``."""
    if "$[" in text:
        return False
    rest = _digits_replaced(text)
    return not any(x in rest for x in ("\x00", "$(", "`"))


def numeric_value(raw: str) -> bool:
    """Whether an assignment's raw value text always gives a number."""
    if _NUMERIC_VALUE.fullmatch(raw):
        return True
    inner = raw.strip('"')
    if inner.startswith("$((") and "`" not in inner:  # one arithmetic expansion, whole
        return _substitution_end(inner, 2) == len(inner)
    return inner.startswith(("$(", "`")) and _digits_replaced(inner) == "0"


def printers_used(text: str) -> set[str]:
    """The programs whose output ``text``'s digit-printing substitutions trust."""
    if "$(" not in text and "`" not in text:
        return set()
    return {
        inner.split(None, 1)[0]
        for _, _, inner in _substitutions(text) or ()
        if DIGIT_PRINTERS.fullmatch(inner) and inner.strip()
    }


def _digits_replaced(text: str) -> str:
    """``text`` with each outermost substitution replaced: ``0`` where it prints only
    digits, NUL where not (and the whole text NUL where its end cannot be found)."""
    subs = _substitutions(text)
    if subs is None:
        return "\x00"
    out, last = [], 0
    for start, end, inner in subs:
        out += [text[last:start], "0" if DIGIT_PRINTERS.fullmatch(inner) else "\x00"]
        last = end
    return "".join(out) + text[last:]


def _substitutions(text: str) -> list[tuple[int, int, str]] | None:
    """The outermost ``$(...)`` and backquoted substitutions of ``text``: (start, end,
    inner text); None when one does not end (quotes and nested substitutions followed)."""
    found: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return None
            i = j + 1
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                return None
            found.append((i, j + 1, text[i + 1 : j]))
            i = j + 1
        elif text.startswith("$(", i) and not text.startswith("$((", i):
            end = _substitution_end(text, i + 2)
            if end < 0:
                return None
            found.append((i, end, text[i + 2 : end - 1]))
            i = end
        else:
            i += 1
    return found


def _substitution_end(text: str, i: int) -> int:
    """Index after the ``)`` that closes a ``$(`` whose text starts at ``i``; -1 if none."""
    depth, n = 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "'`":
            i = text.find(c, i + 1)
            if i < 0:
                return -1
        elif c == '"':
            i = _double_quote_end(text, i + 1)
            if i < 0:
                return -1
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _double_quote_end(text: str, i: int) -> int:
    """Index after the ``"`` that closes a string whose text starts at ``i``; -1 if none."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        elif text.startswith("$(", i):
            i = _substitution_end(text, i + 2)
            if i < 0:
                return -1
        elif c == "`":
            i = text.find("`", i + 1)
            if i < 0:
                return -1
            i += 1
        else:
            i += 1
    return -1


@dataclass
class ArithNames:
    """Names arithmetic reads and names the input sets to something other than a
    number, over the input and every string it runs (a function's body, a loop's next
    pass, a trap, ``eval`` or ``bash -c`` may set one after it was a number)."""

    reads: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)

    def unsafe(self) -> list[str]:
        """The names read that may hold run-time text (a nameref or ``export $(...)``
        may set any: ``*``)."""
        both = self.reads & self.changed
        return sorted(both) or (sorted(self.reads) if "*" in self.changed else [])


#: Bash's own variables that always hold numbers (reading them in arithmetic is safe).
BASH_NUMBERS = frozenset(
    "RANDOM SRANDOM SECONDS LINENO BASHPID PPID UID EUID EPOCHSECONDS OPTIND HISTCMD "
    "COLUMNS LINES PIPESTATUS".split()
)
#: Of those, the ones whose assignment bash evaluates as arithmetic.
BASH_INTEGERS = frozenset({"RANDOM", "SRANDOM", "OPTIND", "HISTCMD", "SECONDS", "LINENO"})
#: Bash's variables that hold run-time text (read, getopts, [[ =~ ]], mapfile, $_ ...).
BASH_RUNTIME = frozenset(
    "REPLY OPTARG _ BASH_REMATCH MAPFILE COPROC READLINE_LINE READLINE_POINT READLINE_MARK "
    "BASH_COMMAND BASH_ARGV BASH_ARGC FUNCNAME BASH_SOURCE COMP_WORDS COMP_LINE DIRSTACK "
    "BASH_EXECUTION_STRING".split()
)
