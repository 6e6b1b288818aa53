"""asciinema v2 cast writer. Depends on nothing of ours.

Every event is one complete JSON line written with a single ``os.write`` on an
unbuffered, append-only file, so a crash (even ``kill -9``) leaves a valid cast up to
the last event. Output is decoded as UTF-8 incrementally (a character split across
chunks is kept whole); bytes that are not UTF-8 are recorded as U+FFFD, since a cast
holds text. Once the events take ``max_output_bytes`` of file, further output is
counted, not stored, and a marker says how much was left out: bulk transfers must not
fill the disk (or cost the relay more than the transfer: JSON stores a NUL byte as six).
"""

from __future__ import annotations

import codecs
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CastWriter", "cast_path"]


def cast_path(root: Path, session_id: str, when: float | None = None) -> Path:
    """sessions/YYYY/MM/DD/<session id>.cast"""
    day = datetime.fromtimestamp(time.time() if when is None else when, tz=UTC)
    return root / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / f"{session_id}.cast"


class CastWriter:
    """Writes one asciinema v2 cast, event by event, flushed as it goes."""

    def __init__(
        self,
        path: Path,
        *,
        width: int = 80,
        height: int = 24,
        command: str | None = None,
        title: str | None = None,
        env: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        max_output_bytes: int = 64 * 1024 * 1024,
    ):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o640
        )
        self._start = time.monotonic()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max = max_output_bytes
        self.output_bytes = 0  # output bytes recorded
        self.dropped_bytes = 0  # output bytes past the limit, counted only
        self.stored_bytes = 0
        header: dict[str, Any] = {
            "version": 2,
            "width": max(1, width or 80),
            "height": max(1, height or 24),
            "timestamp": int(time.time()),
        }
        if command is not None:
            header["command"] = command
        if title:
            header["title"] = title
        if env:
            header["env"] = env
        if extra:
            header.update(extra)
        self._write_line(json.dumps(header, ensure_ascii=False))
        self.stored_bytes = 0  # the limit applies to events, not the header

    @property
    def closed(self) -> bool:
        return self._fd is None

    def _write_line(self, line: str) -> None:
        if self._fd is None:
            return
        data = (line + "\n").encode("utf-8", errors="replace")
        self.stored_bytes += len(data)
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def _event(self, code: str, text: str) -> None:
        elapsed = round(time.monotonic() - self._start, 6)
        self._write_line(json.dumps([elapsed, code, text], ensure_ascii=False))

    def output(self, data: bytes) -> None:
        """Record bytes the client received (stdout or stderr)."""
        if self._fd is None or not data:
            return
        if self.stored_bytes >= self._max:
            self.dropped_bytes += len(data)
            return
        self.output_bytes += len(data)
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)
        if self.stored_bytes >= self._max:
            self._flush_decoder()
            self.marker(f"recording limit of {self._max} bytes reached; further output not stored")

    def input(self, data: bytes) -> None:
        if self._fd is not None and data:
            self._event("i", data.decode("utf-8", errors="replace"))

    def resize(self, width: int, height: int) -> None:
        if self._fd is not None:
            self._event("r", f"{width}x{height}")

    def marker(self, label: str) -> None:
        if self._fd is not None:
            self._event("m", label)

    def _flush_decoder(self) -> None:
        rest = self._decoder.decode(b"", final=True)
        if rest:
            self._event("o", rest)

    def close(self, note: str | None = None) -> None:
        """Flush any partial character, add a closing marker, close the file."""
        if self._fd is None:
            return
        try:
            self._flush_decoder()
            if self.dropped_bytes:
                self.marker(f"{self.dropped_bytes} bytes of output not stored (recording limit)")
            if note:
                self.marker(note)
        finally:
            os.close(self._fd)
            self._fd = None
