"""The bastion's own line editor: prompt_toolkit over a session channel's bytes.

The flow feeds the client's bytes in (``feed``) and gets terminal output back through
a callback; nothing here knows about SSH. Editing keys (arrows, Home/End, Ctrl-A/E/W/U/K,
Alt-B/F), history with Ctrl-R search, bracketed paste (a multi-line paste stays one
entry), Unicode and resizes are prompt_toolkit's; the bastion only supplies the input,
the output, the history store and a completer.

Keys are parsed in memory (``FeedInput``): no pipe, no file descriptor per session, and
a huge paste never blocks the event loop. What one prompt may take is bounded
(``max_bytes``); past it, input is dropped and the line is refused when entered, so a
line that was cut is never run. A redraw of a long entry costs tens of ms, so redraws
are spaced to keep one session's share of the CPU near ``RENDER_SHARE`` (typing then
shows in bursts, at least one redraw a second). Keys typed after Enter and before the
next prompt are dropped (``clear_typeahead``): the flow sends them to the running
command instead, or nowhere. Typed characters and backspace at the end of a one-line
entry are echoed without a full redraw (``_echo_at_once``). Limits: no cursor position
requests are sent (a completion menu near the bottom of the screen may overlap the
prompt); the escape key alone waits prompt_toolkit's usual short delay.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import re
import time
from collections.abc import Callable, Generator
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import create_app_session
from prompt_toolkit.completion import Completer
from prompt_toolkit.data_structures import Point, Size
from prompt_toolkit.history import History
from prompt_toolkit.input.base import Input
from prompt_toolkit.input.typeahead import clear_typeahead
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.layout.screen import Char
from prompt_toolkit.output.vt100 import Vt100_Output

__all__ = ["RENDER_SHARE", "FeedInput", "LineEditor", "LineTooLong"]

#: Most of the CPU one session's redraws may take (a redraw of a long entry waits).
RENDER_SHARE = 0.1
_PASTE_END = b"\x1b[201~"
_ENDING_KEYS = frozenset(b"\r\x03\x04")
_PRINTABLE = re.compile(rb"[\x20-\x7e]+")


class LineTooLong(Exception):
    """More was typed or pasted at one prompt than a command may hold."""


class FeedInput(Input):
    """prompt_toolkit input fed from memory: the client's bytes, parsed into keys."""

    _count = 0

    def __init__(self) -> None:
        FeedInput._count += 1
        self._id = FeedInput._count
        self._keys: list[KeyPress] = []
        self._parser = Vt100Parser(lambda key: self._keys.append(key))
        self._callback: Callable[[], None] | None = None
        self._closed = False

    def feed(self, text: str) -> None:
        if self._closed:
            return
        self._parser.feed(text)
        if self._callback is not None:  # even with no key yet: the app's flush timer starts
            self._callback()

    @property
    def pending(self) -> bool:
        """Keys parsed and not yet read by the application."""
        return bool(self._keys)

    def fileno(self) -> int:
        raise OSError("the bastion's line editor has no file descriptor")

    def typeahead_hash(self) -> str:
        return f"bastion-feed-{self._id}"

    def read_keys(self) -> list[KeyPress]:
        keys, self._keys = self._keys, []
        return keys

    def flush_keys(self) -> list[KeyPress]:
        self._parser.flush()
        return self.read_keys()

    @property
    def closed(self) -> bool:
        return self._closed

    def raw_mode(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def cooked_mode(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def attach(self, input_ready_callback: Callable[[], None]) -> Any:
        return self._attached(input_ready_callback)

    @contextlib.contextmanager
    def _attached(self, callback: Callable[[], None]) -> Generator[None, None, None]:
        previous, self._callback = self._callback, callback
        try:
            if self._keys:
                asyncio.get_running_loop().call_soon(callback)
            yield
        finally:
            self._callback = previous

    def detach(self) -> Any:
        return self._detached()

    @contextlib.contextmanager
    def _detached(self) -> Generator[None, None, None]:
        previous, self._callback = self._callback, None
        try:
            yield
        finally:
            self._callback = previous

    def close(self) -> None:
        self._closed = True
        if self._callback is not None:
            self._callback()


class _Writer:
    """The text stream prompt_toolkit writes to: UTF-8 bytes to the client."""

    encoding = "utf-8"

    def __init__(self, write: Callable[[bytes], None]):
        self._write = write

    def write(self, data: str) -> int:
        # no terminal between us and the client translates newlines
        self._write(data.replace("\n", "\r\n").encode("utf-8", errors="replace"))
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("the bastion's line editor has no file descriptor")


class LineEditor:
    """Reads one line at a time from a client terminal, echoing locally."""

    def __init__(
        self,
        write: Callable[[bytes], None],
        *,
        term: str,
        size: tuple[int, int],
        history: History,
        completer: Completer | None = None,
        max_bytes: int = 65536,
    ):
        self.input = FeedInput()
        self.size = size
        self.max_bytes = max_bytes
        self._taken = 0
        self._cut = False
        self._escape_pending = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.output = Vt100_Output(
            _Writer(write),  # type: ignore[arg-type]
            self._get_size,
            term=term or "xterm",
            enable_cpr=False,
        )
        with create_app_session(input=self.input, output=self.output):
            self.session: PromptSession[str] = PromptSession(
                history=history,
                completer=completer,
                complete_while_typing=False,
                enable_history_search=False,
                input=self.input,
                output=self.output,
            )
        # no suggestions: each would cost a second full redraw per key
        self.session.default_buffer.auto_suggest = None
        self.session.default_buffer.validator = None
        app = self.session.app
        app.terminal_size_polling_interval = None  # resizes come as events
        app.max_render_postpone_time = None  # echo a key at once, not after a busy loop
        # a long entry (a big paste) costs tens of ms per redraw: space redraws so that
        # one session's redraws take at most RENDER_SHARE of the CPU
        self._render_started = 0.0
        app.before_render += self._before_render
        app.after_render += self._after_render
        self.active = False

    def _before_render(self, app: Any) -> None:
        self._render_started = time.perf_counter()

    def _after_render(self, app: Any) -> None:
        took = time.perf_counter() - self._render_started
        app.min_redraw_interval = min(took / RENDER_SHARE, 1.0) if took > 0.002 else None

    def _get_size(self) -> Size:
        width, height = self.size
        return Size(rows=height, columns=width)

    def feed(self, data: bytes) -> None:
        """Client bytes while the prompt is shown."""
        self._taken += len(data)
        if self._taken > self.max_bytes:
            if not self._cut:
                self._cut = True
                self.output.bell()
                self.output.flush()
            # only what ends the line passes: a cut paste's end, Enter, Ctrl-C, Ctrl-D
            if _PASTE_END in data:
                self.input.feed(_PASTE_END.decode())
            ends = bytes(b for b in data if b in _ENDING_KEYS)
            if ends:
                self.input.feed(ends.decode())
            return
        if self._echo_at_once(data):
            return
        self._escape_pending = b"\x1b" in data
        self.input.feed(self._decoder.decode(data))

    def _echo_at_once(self, data: bytes) -> bool:
        """Typing (and backspace) at the end of a one-line entry, without a full render.

        prompt_toolkit redraws its whole layout for every key (a few ms of CPU), too
        slow for hundreds of people typing at once. Printable ASCII typed at the end of
        a line that fits on its row is inserted into the buffer and written as is; the
        renderer's model of the screen gets the same characters, so its next diff draws
        only what changed. Anything else (keys, escape sequences, completion, search,
        a cursor not at the end) takes prompt_toolkit's own path."""
        rubout = data in (b"\x7f", b"\x08")
        if not (rubout or _PRINTABLE.fullmatch(data)) or self._escape_pending:
            return False
        if self._decoder.getstate()[0] or self.input.pending:
            return False
        app = self.session.app
        buffer = app.current_buffer
        if not self.active or not app.is_running or app.is_done or app.invalidated:
            return False
        if app.context is None:
            return False
        if (
            buffer is not self.session.default_buffer
            or buffer.cursor_position != len(buffer.text)
            or buffer.complete_state is not None
            or buffer.selection_state is not None
            or buffer.validation_error is not None
            or "\n" in buffer.text
        ):
            return False
        keys = app.key_processor
        if keys.input_queue or keys.key_buffer or keys.arg is not None:
            return False
        renderer = app.renderer
        screen, pos = renderer._last_screen, renderer._cursor_pos
        if screen is None or pos.x + len(data) >= self.size[0] - 1:
            return False
        row = screen.data_buffer[pos.y]
        if rubout:
            if not buffer.text or not _PRINTABLE.fullmatch(buffer.text[-1:].encode()):
                return False
            if pos.x < 1 or row[pos.x - 1].char != buffer.text[-1]:
                return False  # the model does not show the line as expected: full render
            row[pos.x - 1] = Char(" ", "")
            renderer._cursor_pos = Point(x=pos.x - 1, y=pos.y)
            change: Any = (buffer.delete_before_cursor, 1)
            echo = "\b \b"
        else:
            echo = data.decode("ascii")
            style = row[pos.x - 1].style if pos.x > 0 else ""
            for i, char in enumerate(echo):
                row[pos.x + i] = Char(char, style)
            renderer._cursor_pos = Point(x=pos.x + len(echo), y=pos.y)
            change = (functools.partial(buffer.insert_text, fire_event=False), echo)
        app._invalidated = True  # the change must not schedule a full render
        try:
            # in the application's context, as its own key handlers run
            app.context.copy().run(*change)
        finally:
            app._invalidated = False
        self.output.write_raw(echo)
        self.output.flush()
        return True

    def resized(self, width: int, height: int) -> None:
        self.size = (width, height)
        if self.active:
            self.session.app._on_resize()

    async def read_line(self, prompt: str) -> str | None:
        """The entered line; "" after Ctrl-C; None on Ctrl-D at an empty line.

        Raises ``LineTooLong`` when the input was cut."""
        self._taken, self._cut = 0, False
        self.active = True
        try:
            with create_app_session(input=self.input, output=self.output):
                text = await self.session.prompt_async(
                    prompt, handle_sigint=False, set_exception_handler=False
                )
        except KeyboardInterrupt:
            return ""
        except EOFError:
            return None
        finally:
            self.active = False
            clear_typeahead(self.input)
            self.input.flush_keys()
        if self._cut:
            raise LineTooLong(
                f"the line is longer than {self.max_bytes} bytes and was cut; nothing was run"
            )
        return text

    def close(self) -> None:
        self.input.close()
