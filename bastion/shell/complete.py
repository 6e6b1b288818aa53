"""Tab completion of command names and remote paths, asked of the target.

The word before the cursor is completed by ``compgen`` on the target, in a side exec on
the same upstream connection with the shell's carried directory and variables: command
names for the first word of a line, paths otherwise (directories get a trailing ``/``).
The word is quoted by the bastion; nothing of it runs. At most ``MAX_CANDIDATES`` are
shown. Limits: no completion of options, variables or ``~user``; a slow target makes
Tab slow (typing goes on meanwhile); a failed side exec completes to nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

__all__ = ["MAX_CANDIDATES", "RemoteCompleter", "completion_command"]

MAX_CANDIDATES = 200
_UNSAFE = re.compile(r"([^\w@%+=:,./~-])")


def completion_command(word: str, *, command: bool) -> str:
    """The side exec that lists completions of ``word`` (quoted, never run)."""
    quoted = shlex.quote(word)
    if command:
        return f"compgen -c -- {quoted} | sort -u | head -n {MAX_CANDIDATES}"
    return (
        f"compgen -f -- {quoted} | head -n {MAX_CANDIDATES} | "
        'while IFS= read -r f; do if [ -d "$f" ]; then printf \'%s/\\n\' "$f"; '
        "else printf '%s\\n' \"$f\"; fi; done"
    )


class RemoteCompleter(Completer):
    """A prompt_toolkit completer whose answers come from the target."""

    def __init__(self, ask: Callable[[str], Awaitable[list[str]]]):
        self.ask = ask  # command text -> candidate lines

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return []  # completion needs the target: only the async path answers

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        before = document.text_before_cursor
        word = re.split(r"[\s;&|()<>]", before)[-1]
        head = before[: len(before) - len(word)]
        first = not head.strip() or head.rstrip()[-1:] in (";", "&", "|", "(")
        command = first and "/" not in word
        if command and not word:
            return
        try:
            candidates = await self.ask(completion_command(word, command=command))
        except Exception:  # noqa: BLE001 - completion is a convenience
            return
        for candidate in candidates:
            if candidate.startswith(word):
                yield Completion(_UNSAFE.sub(r"\\\1", candidate), start_position=-len(word))
