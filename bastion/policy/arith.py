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

__all__ = ["tainted_reads", "numeric_value", "only_digit_substitutions", "DIGIT_PRINTERS"]

_NAME = re.compile(r"(?<![A-Za-z0-9_#@.])\$?\{?([A-Za-z_][A-Za-z0-9_]*)")
_POSITIONAL = re.compile(r"\$\{?[0-9@*]")
_ASSIGN_AT = re.compile(r"\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)")
#: Substitutions whose output is digits (and blanks): safe inside arithmetic.
DIGIT_PRINTERS = re.compile(
    r"\s*(?:id\s+-[ug]|nproc|date(?:\s+(?:-u|--utc|-d\s*(?:\"[^\"`$]*\"|'[^']*'|[^\s\"'`$|;&()]+)))*"
    r"\s+\+%s|wc\s+-[lcmw]\b[^|;&`$()]*|grep\s+-c\b[^|;&`$()]*"
    r"|stat\s+-c\s*%[sYXZ]\b[^|;&`$()]*|getconf\s+[A-Z_]+)\s*"
)
_SUBST = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
_NUMERIC_VALUE = re.compile(
    r"-?[0-9]+|\$\(\([^`]*\)\)|\$\{#[A-Za-z_][A-Za-z0-9_]*(\[[@*]\])?\}|\"?\$[?#$!]\"?"
)


def tainted_reads(text: str, tainted: set[str]) -> list[str]:
    """What arithmetic ``text`` reads that is only known at run time (empty: nothing).
    Names it assigns are numbers afterwards, so they leave ``tainted``."""
    bad: list[str] = []
    text = _SUBST.sub(lambda m: "0" if _digits(m) else "\x00", text)
    if "\x00" in text or "$(" in text or "`" in text:
        bad.append("a substitution")
    if _POSITIONAL.search(text):
        bad.append("a positional parameter")
    for m in _NAME.finditer(text):
        name = m.group(1)
        if not m.group().startswith("$") and _ASSIGN_AT.match(text, m.end()):
            tainted.discard(name)  # x = ..., x += ...: a number from now on
        elif name in tainted:
            bad.append(name)
    return bad


def only_digit_substitutions(text: str) -> bool:
    """Whether every substitution in arithmetic ``text`` prints only digits
    (``$(( $(date +%s) - $(stat -c %Y f) ))``): their output cannot hold ``a[$(cmd)]``."""
    if "$[" in text:
        return False
    rest = _SUBST.sub(lambda m: "0" if _digits(m) else "\x00", text)
    return not any(x in rest for x in ("\x00", "$(", "`"))


def _digits(m: re.Match[str]) -> bool:
    inner = m.group(1) if m.group(1) is not None else m.group(2)
    return bool(DIGIT_PRINTERS.fullmatch(inner))


def numeric_value(raw: str) -> bool:
    """Whether an assignment's raw value text always gives a number."""
    if _NUMERIC_VALUE.fullmatch(raw):
        return True
    m = _SUBST.fullmatch(raw.strip('"'))
    return bool(m and _digits(m))
