"""Shell builtins the normalizer reads itself: where ``cd`` leaves the working
directory, the code that ``eval``, ``trap``, ``alias``, ``bind -x`` and ``mapfile -C`` run,
and which variables a builtin sets by name (``export``/``declare`` NAME=VALUE or NAME,
``declare -n`` targets, ``read``, ``mapfile``, ``printf -v``, ``getopts``), so the rules
judge them like ``NAME=VALUE cmd`` (``export LD_PRELOAD=...``, ``read PAGER``).

A mixin of ``normalize.Normalizer``, like ``tools.ToolReadings``.
"""

from __future__ import annotations

import posixpath
import re

from .effects import path_hijack, resolve_path
from .getopt import read_options, spec
from .launchers import join_words
from .readings import Readings
from .varnames import DECLARERS, NAME_SETTERS, name_words
from .words import DYN, Word

__all__ = [
    "BuiltinReadings",
    "DECLARERS",
    "DECLARED",
    "MAX_NESTED_TEXT",
    "NAME_SETTERS",
    "SHELL_BUILTINS",
    "assigned",
    "declared",
    "exported_as_is",
]

MAX_NESTED_TEXT = 8192  # bytes of a string run two or more levels down

DECLARED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\+?=")
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def declared(args: list[Word]) -> tuple[str, ...]:
    """The variable names ``export A=1 B+=2 C[0]=3`` assigns (options left out)."""
    return tuple(m.group(1) for w in args if (m := DECLARED.match(w.value)))


def exported_as_is(args: list[Word]) -> tuple[str, ...]:
    """Names ``export NAME`` / ``declare -x NAME`` give without a value: a variable set
    earlier (``printf -v LD_PRELOAD ...``) then reaches every later command."""
    return tuple(w.value for w in args if _BARE_NAME.fullmatch(w.value))


def _above_home(value: str, cwd: str | None) -> str:
    """Where ``cd`` goes above the home, whose depth is unknown: two levels up from a
    home (/root, /home/u) is / whatever its depth; one level up stays relative to the
    home (``~/..``: paths under it resolve to nothing known)."""
    base = cwd or "~"
    if DYN in value or not base.startswith("~"):
        return "?"
    parts = posixpath.normpath(posixpath.join(base[1:].lstrip("/") or ".", value)).split("/")
    ups = len(parts) - len([p for p in parts if p != ".."])
    if ".." in parts[ups:]:
        return "?"
    return "/".join(["~", *parts]) if ups < 2 else "/" + "/".join(parts[ups:])


_VAR_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[.*\])?", re.S)


def assigned(name: str, args: list[Word]) -> tuple[tuple[str, ...], bool]:
    """Variables a builtin stores into besides NAME=VALUE words (``read GIT_PAGER``,
    ``printf -v 'PAGER[0]'``, ``getopts o LD_PRELOAD``), and for ``declare -n REF=NAME``
    the name a nameref makes writable under another name; True when that name is only
    known at run time (``declare -n r; r=PATH``, ``local -n r=$1``)."""
    if name in DECLARERS:
        names = declared(args) + exported_as_is(args)
        if name == "export" or not any(w.value.startswith("-") and "n" in w.value for w in args):
            return names, False
        refs = [w for w in args if not w.value.startswith(("-", "+"))]
        targets = [w.value.partition("=")[2] for w in refs]
        unknown = any(
            w.dynamic or "=" not in w.value or not _VAR_NAME.fullmatch(t)
            for w, t in zip(refs, targets, strict=True)
        )
        found = tuple(m.group(1) for t in targets if (m := _VAR_NAME.fullmatch(t)))
        return names + found, unknown
    if name not in NAME_SETTERS:
        return (), False
    words = name_words(name, args)
    unknown = any(w.dynamic for w in words)
    return tuple(m.group(1) for w in words if (m := _VAR_NAME.fullmatch(w.value))), unknown


#: Builtins ``BuiltinReadings.shell_builtin`` reads.
SHELL_BUILTINS = DECLARERS | frozenset(
    "cd pushd popd eval source . hash enable fc r mapfile readarray complete compgen bind "
    "trap alias".split()
)


class BuiltinReadings(Readings):
    """Mixin for the normalizer: shell builtins."""

    cdpath: bool
    aliases: dict[str, str]

    def through_links(  # pragma: no cover - see tools
        self, word: Word, cwd: str | None, on_link: bool
    ) -> Word | None:
        raise NotImplementedError

    def shell_builtin(
        self, name: str, args: list[Word], via: str, depth: int, tags: set[str]
    ) -> None:
        """Follow ``cd``; read the code a builtin runs; tag what cannot be read."""
        if name in ("cd", "pushd", "popd"):
            ops = [w for w in args if w.value == "-" or not w.value.startswith("-")]
            searched = self.cdpath and ops and not ops[0].value.startswith(("/", ".", "~"))
            if via or name != "cd" or searched or (ops and (ops[0].dynamic or ops[0].value == "-")):
                self.cwd = "?"
            else:
                self.cwd = (resolve_path(ops[0].value, self.cwd) if ops else "~") or _above_home(
                    ops[0].value, self.cwd
                )
                followed = self.through_links(Word(self.cwd), None, False) if self.cwd else None
                if followed is not None:
                    self.cwd = followed.value
        elif name == "eval":
            text, _ = join_words(args)
            if (depth and len(text) > MAX_NESTED_TEXT) or not self.shell_text(
                text, f"inside eval {via}".strip(), depth
            ):  # eval eval eval ...: each level would read the rest again
                tags.add("dynamic-code")
        elif name in ("source", "."):
            # an existing file: a script like any other (run-existing-script; written in
            # this input, in /tmp or a stream: held); a name known at run time: unseen
            known = args and not args[0].dynamic and args[0].value not in ("", "-")
            tags.add("script-file" if known else "source")
        elif name in DECLARERS:
            if any(
                w.value.startswith("PATH=") and path_hijack(Word(w.value[5:], w.raw[5:], w.dynamic))
                for w in args
            ):
                tags.add("path-hijack")
        elif name in ("hash", "enable") and any(
            w.value.startswith("-") and ("p" in w.value or "f" in w.value) for w in args
        ):
            tags.add("rebinds-command")  # hash -p /bin/rm ls; enable -f x.so NAME
        elif name in ("fc", "r") and not any(w.value.startswith("-l") for w in args):
            tags.add("history-expansion")  # runs a command from history
        elif name in ("mapfile", "readarray", "complete", "compgen", "bind"):
            for opt, value in read_options(args, spec("C:x:", "")).options:
                if opt in ("-C", "-x") and value is not None:  # callbacks run as shell code
                    if name == "bind":  # bind -x '"KEYS": CMD'
                        text = re.sub(r'^\s*("(?:[^"\\]|\\.)*"|[^:]*)\s*:', "", value.value)
                        value = Word(text, value.raw, value.dynamic)
                    self.code_string(value, f"inside {name} {opt} {via}".strip(), depth, tags)
        elif name == "trap":
            ops = [w for w in args if not w.value.startswith("-")]
            if ops:
                self.code_string(ops[0], f"inside trap {via}".strip(), depth, tags)
        elif name == "alias":
            for w in args:
                if "=" in w.value:
                    alias, body = w.value.split("=", 1)
                    here = f"inside alias {via}".strip()
                    self.code_string(Word(body, w.raw, w.dynamic), here, depth, tags)
                    if not w.dynamic:
                        self.aliases[alias] = body
