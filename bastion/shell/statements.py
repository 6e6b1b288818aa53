"""Cut a script read from stdin into statements, each decided on its own.

A statement is the shortest run of whole lines that reads as complete shell input: a
line ending in ``\\``, ``&&``, ``|``, an open quote, ``if`` without ``fi``, a here-doc
without its end line and the like take the following lines too. Completeness is judged
by the policy's own reader (``bastion.policy.shparse``), so what is decided is what the
policy can read. A line the reader rejects outright (``fi`` alone, ``;;`` out of a
``case``) is an error at once; input that is still incomplete at end of file, or that
grows past ``max_bytes`` without completing, is an error naming the line it began on.
Past ``_EVERY_LINE_BYTES`` an open statement is re-read only each time it doubles, so a
long one may take a few complete statements after it into the same decision (decided
together, never split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BastionError
from ..policy.shparse import ShellSyntaxError, parse

__all__ = ["ScriptError", "Statement", "StatementReader"]


class ScriptError(BastionError):
    """The script cannot be read: it stops here."""


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # where it starts, 1-based


_OFFSET = re.compile(r"at offset (\d+)")
#: Up to this size an open statement is re-read at every line; past it, when it doubled
#: (so a long here-doc costs O(n log n) reading, not O(n^2)).
_EVERY_LINE_BYTES = 4096


def _incomplete(error: ShellSyntaxError, text: str) -> bool:
    """Could more lines complete it? Anything but an unexpected word before the end
    (``f()`` waiting for its body fails at the very end: it may go on)."""
    message = str(error)
    if not message.startswith("unexpected") or "end of input" in message:
        return True
    found = _OFFSET.search(message)
    return found is not None and int(found.group(1)) >= len(text.rstrip())


class StatementReader:
    """Fed the script's bytes; hands out complete statements in order."""

    def __init__(self, max_bytes: int = 65536):
        self.max_bytes = max_bytes
        self._buffer = b""
        self._lines: list[str] = []
        self._start = 1
        self._next_line = 1
        self._tried = 0  # bytes of the open statement when it was last read
        self.eof = False

    @property
    def buffered(self) -> int:
        return len(self._buffer) + sum(len(line) for line in self._lines)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def end(self) -> None:
        self.eof = True

    def next(self) -> Statement | None:
        """The next complete statement, or None when more input is needed (or the
        script ended). Raises ``ScriptError`` when the script cannot be read."""
        while True:
            line = self._take_line()
            if line is None:
                if self.eof and self._lines:
                    return self._check(final=True)
                return None
            if not self._lines:
                self._start = self._next_line - 1
            self._lines.append(line)
            found = self._check(final=False)
            if found is not None:
                return found

    def _take_line(self) -> str | None:
        cut = self._buffer.find(b"\n")
        if cut < 0:
            if self.eof and self._buffer:
                raw, self._buffer = self._buffer, b""
            else:
                if self.buffered > self.max_bytes:
                    raise ScriptError(
                        f"line {self._next_line} is longer than {self.max_bytes} bytes"
                    )
                return None
        else:
            raw, self._buffer = self._buffer[:cut], self._buffer[cut + 1 :]
        self._next_line += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ScriptError(f"line {self._next_line - 1} is not UTF-8 text") from None

    def _check(self, *, final: bool) -> Statement | None:
        text = "\n".join(self._lines)
        if len(text.encode()) > self.max_bytes:
            raise ScriptError(
                f"the statement starting at line {self._start} is longer than "
                f"{self.max_bytes} bytes"
            )
        if text.rstrip().endswith("\\") and not final:
            return None
        if not final and len(text) > _EVERY_LINE_BYTES and len(text) < 2 * self._tried:
            return None  # a long open statement is re-read as it doubles, not every line
        self._tried = len(text)
        try:
            parse(text)
        except ShellSyntaxError as exc:
            if final or not _incomplete(exc, text):
                self._lines = []
                self._tried = 0
                raise ScriptError(
                    f"the statement starting at line {self._start} cannot be read: {exc}"
                ) from None
            return None
        self._lines = []
        self._tried = 0
        return Statement(text, self._start)
