"""bashlex as a second reader: every command node it sees is judged too.

Our own reader (``shparse``) is the primary one because bashlex raises on everyday bash.
When bashlex does parse an input, each of its command nodes is re-read from the source
text and normalized like any other command, so a disagreement between the two readers can
only add commands to judge (the most restrictive reading wins), never remove one.

When it is skipped (``needs_crosscheck``): an input made only of plain word characters,
blanks, newlines and the operators ``; & | < >`` (no quote, backslash, ``$``, backtick,
parenthesis, brace, ``#``, ``!``, ``^`` or here-doc) is a sequence of words split at
blanks and operators, a regular language both readers read the same way: bashlex could
only find the commands we found (a property test checks this over that alphabet), so
it is not run. Everything else is cross-checked, when the structure check is off
(``[policy] structure_check = false``): with it on, bash itself confirms that it reads no
command our reader missed, which is what bashlex approximates, and a command only
bashlex sees is then one of bashlex's own misreads (it reads ``'$(x)'`` in single
quotes as a substitution).

Limits: bashlex is pure Python and slow on large inputs, so it runs only on inputs up to
``MAX_CROSSCHECK`` bytes; above that only the primary reading counts. bashlex 0.18 loops
for ever on an unterminated ``${`` in a word; its parameter expansion is wrapped here to
raise instead (found by fuzzing bashlex alone; no other input class was found to hang
it). bashlex failures (ParsingError, NotImplementedError, AttributeError, RecursionError,
...) are ignored here: the primary reader decides whether the input is readable at all.
"""

from __future__ import annotations

import re
from typing import Any

import bashlex
import bashlex.errors
import bashlex.subst

_paramexpand = bashlex.subst._paramexpand


def _bounded_paramexpand(parserobj: Any, string: str, sindex: int) -> Any:
    """bashlex 0.18 loops for ever on a ``${`` with no ``}`` after it in the same word
    (``'${'x``): its search for the brace returns -1 and the scan restarts at 0."""
    if string.startswith("${", sindex) and string.find("}", sindex + 2) < 0:
        raise bashlex.errors.ParsingError("bad substitution: no closing }", string, sindex)
    return _paramexpand(parserobj, string, sindex)


bashlex.subst._paramexpand = _bounded_paramexpand

__all__ = ["MAX_CROSSCHECK", "bashlex_command_spans", "needs_crosscheck"]

MAX_CROSSCHECK = 8192
_PLAIN = re.compile(r"[A-Za-z0-9_./:=,@%+*?~\[\] \t\n;&|<>-]*")


def needs_crosscheck(src: str) -> bool:
    """False when ``src`` uses nothing two shell readers could read differently."""
    return not (_PLAIN.fullmatch(src) and "<<" not in src)


def bashlex_command_spans(src: str) -> list[str] | None:
    """Source text of every command node bashlex finds, or None if bashlex cannot parse."""
    if len(src) > MAX_CROSSCHECK:
        return None
    try:
        trees = bashlex.parse(src)
    except Exception:  # noqa: BLE001 - bashlex raises many types; the primary reader decides
        return None
    spans: list[str] = []
    stack: list[Any] = list(trees)
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if getattr(node, "kind", "") == "command":
            start, end = node.pos
            spans.append(src[start:end])
        for attr in ("parts", "list", "command", "output"):
            child = getattr(node, attr, None)
            if isinstance(child, list):
                stack.extend(child)
            elif child is not None and hasattr(child, "kind"):
                stack.append(child)
    return spans
