"""Which arguments of a builtin name the variables it stores into.

Shared by the parser (a subscript in such a name is arithmetic: ``unset 'a[$(cmd)]'``,
``printf -v 'a[n]'``) and the normalizer (``read GIT_PAGER`` is an assignment the rules
judge).
"""

from __future__ import annotations

from .getopt import read_options, spec
from .words import Word

__all__ = ["NAME_SETTERS", "DECLARERS", "name_words"]

#: Builtins that declare variables named by NAME[=VALUE] words.
DECLARERS = frozenset({"export", "declare", "typeset", "local", "readonly"})
#: Builtins that store into variables named by their arguments, with their options.
NAME_SETTERS = {
    "read": spec("a:d:i:n:N:p:t:u:ers", ""),
    "mapfile": spec("d:n:O:s:u:C:c:t", ""),
    "readarray": spec("d:n:O:s:u:C:c:t", ""),
    "printf": spec("v:", ""),
    "getopts": spec(style="operands"),
    "wait": spec("fnp:", ""),  # wait -p NAME stores a job's id in NAME
}


def name_words(name: str, args: list[Word]) -> list[Word]:
    """The words of ``name ARGS`` that name a variable it sets or unsets (with any
    ``=VALUE`` still attached for the declarers)."""
    if name in DECLARERS or name == "unset":
        return [w for w in args if not w.value.startswith(("-", "+"))]
    if name not in NAME_SETTERS:
        return []
    read = read_options(args, NAME_SETTERS[name])
    if name == "printf":
        return [v for o, v in read.options if o == "-v" and v is not None]
    if name == "getopts":
        return read.operands[1:2]
    if name == "wait":
        return [v for o, v in read.options if o == "-p" and v is not None]
    if name == "read":
        return [v for o, v in read.options if o == "-a" and v is not None] + read.operands
    return read.operands[:1]
