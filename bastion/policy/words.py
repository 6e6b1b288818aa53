"""Shell words after quote removal: the data types and the expansions we can do statically.

A word is built by the parser as characters plus, for each character, whether it was
quoted. That is enough to do what bash does before running a command and what we can
reproduce without running anything: quote removal, ANSI-C decoding (``$'\\x72m'``),
brace expansion (``{rm,-rf,/}``) and telling an unquoted glob from a quoted star.

Limits: parameter, command and arithmetic expansions are not evaluated. Their place in
the value holds ``DYN`` (a NUL, which cannot occur in a real command line) and the word
is marked ``dynamic``; callers treat such a word as unknown. Brace expansion is capped
(``MAX_BRACE_WORDS``); a word that would expand further raises ``ShellSyntaxError``, which
the policy turns into its on_unknown action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DYN",
    "FOUND",
    "SOME",
    "MORE",
    "MANY_WORDS",
    "Word",
    "ShellSyntaxError",
    "AnalysisTimeout",
    "ansi_c_decode",
    "brace_expand",
    "make_word",
]

#: Placeholder for any part of a word only known at run time.
DYN = "\x00"
MAX_BRACE_WORDS = 512
#: ``raw`` of the word find puts in place of ``{}``: any path under one of its roots.
FOUND = "{}"
#: ``raw`` of a word for some paths under a directory, not known which (find with a
#: filter such as -name, archive members): it matches only "maybe", and only where a
#: protected path lies under that directory.
SOME = "{some}"
#: ``raw`` of the word a guessed reading adds for arguments a program may append.
MORE = "{more}"
#: An expansion into any number of words: ``"$@"``, ``$*``, ``"${a[@]}"``.
MANY_WORDS = re.compile(r"\$(?:\{)?[@*]|\[[@*]\]\}")


class ShellSyntaxError(ValueError):
    """The input is not shell we can read; the policy treats it as unknown."""


class AnalysisTimeout(ShellSyntaxError):
    """The analysis ran past its deadline: on_unknown now, but never cached (the same
    command may be read in time when the process is less loaded)."""


@dataclass(frozen=True)
class Word:
    """One shell word. ``value`` is what the program would see (DYN for unknown parts)."""

    value: str
    raw: str = ""
    dynamic: bool = False  # holds a parameter/command/arithmetic expansion
    glob: bool = False  # holds an unquoted * ? [ (pathname expansion may change it)
    quoted: bool = False  # any quoting was present
    #: every expansion in it prints only digits and separators ($$, $(date +%F)): a
    #: path through it cannot climb (no slash, never empty, ".", "..") - trusted reading
    safe: bool = False

    def shown(self) -> str:
        """The word as a reviewer should read it (the source text where it is dynamic)."""
        return self.raw if self.dynamic else self.value


_SIMPLE_ESC = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def ansi_c_decode(body: str) -> str:
    """Decode the body of ``$'...'`` the way bash does (octal, hex, unicode, control)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m
            out.append(chr(int(m.group(), 8) & 0xFF))
            i += 1 + len(m.group())
        elif nxt in "xuU":
            limit = {"x": 2, "u": 4, "U": 8}[nxt]
            m = re.match(r"[0-9a-fA-F]{1,%s}" % (limit,), body[i + 2 :])  # noqa: UP031
            if not m:
                out.append("\\" + nxt)
                i += 2
                continue
            code = int(m.group(), 16)
            out.append(chr(code) if code < 0x110000 else "\ufffd")
            i += 2 + len(m.group())
        elif nxt == "c" and i + 2 < n:
            out.append(chr(ord(body[i + 2].upper()) ^ 0x40))
            i += 3
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out)


def make_word(
    chars: str,
    quoted_mask: str,
    raw: str,
    dynamic: bool,
    quoted: bool,
    expand_braces: bool = True,
    safe: bool = False,
) -> list[Word]:
    """Turn parser output into words: brace-expand, then note unquoted globs.

    ``quoted_mask`` has one character per character of ``chars``: "u" unquoted, "q" quoted.
    """
    pieces = brace_expand(chars, quoted_mask) if expand_braces else [(chars, quoted_mask)]
    words = []
    for value, mask in pieces:
        glob = _is_glob(value, mask)
        words.append(Word(value, raw, dynamic, glob, quoted, safe))
    return words


def _is_glob(value: str, mask: str) -> bool:
    """Unquoted ``*`` or ``?``, or an unquoted ``[`` closed later (a lone ``[`` is literal)."""
    for i, (c, m) in enumerate(zip(value, mask, strict=True)):
        if m == "u" and (c in "*?" or (c == "[" and "]" in value[i + 2 :])):
            return True
    return False


def _find_brace(chars: str, mask: str, start: int) -> tuple[int, int, list[int]] | None:
    """Find the first unquoted {..} group with a comma or a range; return open, close, commas."""
    n = len(chars)
    i = start
    while i < n:
        if chars[i] == "{" and mask[i] == "u" and not (i > 0 and chars[i - 1] == "$"):
            depth, commas, j = 0, [], i
            while j < n:
                c = chars[j]
                if mask[j] == "u":
                    if c == "{":
                        depth += 1
                    elif c == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    elif c == "," and depth == 1:
                        commas.append(j)
                j += 1
            if j < n and (commas or re.fullmatch(r"-?\w+\.\.-?\w+(\.\.-?\d+)?", chars[i + 1 : j])):
                return i, j, commas
        i += 1
    return None


def _range(body: str) -> list[str] | None:
    m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", body)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        step = abs(int(m.group(3) or 1)) or 1
        if abs(b - a) // step > MAX_BRACE_WORDS:
            raise ShellSyntaxError("brace range too large")
        seq = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [str(x) for x in seq]
    m = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?", body)
    if m:
        a, b = ord(m.group(1)), ord(m.group(2))
        step = abs(int(m.group(3) or 1)) or 1
        seq = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [chr(x) for x in seq]
    return None


def brace_expand(chars: str, mask: str) -> list[tuple[str, str]]:
    """Bash brace expansion over unquoted braces, left to right, capped in size."""
    found = _find_brace(chars, mask, 0)
    if found is None:
        return [(chars, mask)]
    i, j, commas = found
    pre, pre_m = chars[:i], mask[:i]
    post, post_m = chars[j + 1 :], mask[j + 1 :]
    alts: list[tuple[str, str]] = []
    if commas:
        bounds = [i] + commas + [j]
        for a, b in zip(bounds, bounds[1:], strict=False):
            alts.append((chars[a + 1 : b], mask[a + 1 : b]))
    else:
        seq = _range(chars[i + 1 : j])
        if seq is None:  # {a..b} with non-matching ends stays literal
            rest = brace_expand(post, post_m)
            return [(chars[: j + 1] + p, mask[: j + 1] + m) for p, m in rest]
        alts = [(s, "q" * len(s)) for s in seq]
    out: list[tuple[str, str]] = []
    for alt, alt_m in alts:
        for v, m in brace_expand(alt + post, alt_m + post_m):
            out.append((pre + v, pre_m + m))
            if len(out) > MAX_BRACE_WORDS:
                raise ShellSyntaxError("brace expansion too large")
    return out
