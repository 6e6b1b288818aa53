"""asciinema v2 cast writer. Depends on nothing of ours.

Every event is one complete JSON line written with a single ``os.write`` on an
unbuffered, append-only file, so a crash (even ``kill -9``) leaves a valid cast up to
the last event. Output is decoded as UTF-8 incrementally (a character split across
chunks is kept whole).

Binary and bulk output is not text a person reads, and JSON stores a NUL byte as six:
a chunk that is not UTF-8 or holds a NUL, and any output once the events take
``max_output_bytes`` of file, goes to a side file (``<session>.bin``, raw bytes, sparse
where they are zeros, 0640). An ``"m"`` marker says where
each binary run starts in the side file, and the closing marker gives its size and
sha256, so ``asciinema cat`` still works and an investigator gets the bytes back
(``cat`` of the side file). Past ``max_binary_bytes`` output is counted only.
Without a side file path (``side_path=None``) such output is counted, not stored. Side
file bytes are hashed and written a MiB at a time by one worker thread for the whole
process (sha256 and writes release the GIL, so they run beside the event loop); a crash
loses at most the last two MiB of a side file, never a cast event.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
        side_path: Path | None = None,
        max_binary_bytes: int = 1024 * 1024 * 1024,
        redact: Callable[[str], str] | None = None,
    ):
        self.path = path
        self._redact = redact or (lambda text: text)
        self.side = SideFile(side_path, max_binary_bytes) if side_path is not None else None
        self._in_binary = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o640
        )
        self._start = time.monotonic()
        # strict with a side file (what is not UTF-8 goes there), else U+FFFD in the cast
        errors = "strict" if self.side is not None else "replace"
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
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
            header["command"] = self._redact(command)
        if title:
            header["title"] = self._redact(title)
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
        text = None
        if self.side is None and self.stored_bytes < self._max:
            text = self._decoder.decode(data)  # errors="replace": no side file to go to
        elif self.stored_bytes < self._max and b"\x00" not in data:
            try:
                text = self._decoder.decode(data)
            except UnicodeDecodeError:
                self._decoder.reset()
        if text is None:
            self._binary(data)
            return
        if self._in_binary:
            self._in_binary = False
            self.marker("text output again")
        self.output_bytes += len(data)
        if text:
            self._event("o", text)
        if self.stored_bytes >= self._max:
            self._flush_decoder()
            where = "goes to the side file" if self.side else "not stored"
            self.marker(f"recording limit of {self._max} bytes reached; further output {where}")

    def _binary(self, data: bytes) -> None:
        side = self.side
        if side is None:
            self.dropped_bytes += len(data)
            return
        if not self._in_binary:
            self._in_binary = True
            self._flush_decoder()
            side.open(data)
            self.marker(f"binary output from byte {side.size} of {side.path.name}")
        stored = side.write(data)
        self.output_bytes += stored
        self.dropped_bytes += len(data) - stored

    def input(self, data: bytes) -> None:
        if self._fd is not None and data:
            self._event("i", data.decode("utf-8", errors="replace"))

    def resize(self, width: int, height: int) -> None:
        if self._fd is not None:
            self._event("r", f"{width}x{height}")

    def marker(self, label: str) -> None:
        if self._fd is not None:
            self._event("m", self._redact(label))

    def _flush_decoder(self) -> None:
        try:
            rest = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            rest = "\ufffd"  # a character cut short at the end of the text
        self._decoder.reset()
        if rest:
            self._event("o", rest)

    def close(self, note: str | None = None) -> None:
        """Flush any partial character, add a closing marker, close the file."""
        if self._fd is None:
            return
        try:
            self._flush_decoder()
            if self.side is not None and self.side.opened:
                self.side.close()
                self.marker(self.side.summary())
            if self.dropped_bytes:
                self.marker(f"{self.dropped_bytes} bytes of output not stored (recording limit)")
            if note:
                self.marker(note)
        finally:
            os.close(self._fd)
            self._fd = None


#: Side-file bytes gathered before they go to the worker thread.
BATCH_BYTES = 1024 * 1024
#: Blocks of zeros this large are left as holes in the (sparse) side file.
HOLE_BYTES = 64 * 1024
_ZEROS = bytes(HOLE_BYTES)


class SideFile:
    """The raw bytes of one channel's binary output, with their size and sha256.

    Stored as they came: compressed downloads (the usual binary) do not compress again,
    and compressing costs more CPU than relaying. Runs of zeros become holes in a sparse
    file, which read back as zeros and take no disk."""

    def __init__(self, path: Path, limit: int):
        self.path = path
        self.limit = limit
        self.size = 0  # bytes accepted
        self.sha256 = hashlib.sha256()
        self._fd: int | None = None
        self._offset = 0  # bytes handled by the worker
        self.opened = False
        self._batch: list[bytes] = []
        self._batched = 0
        self._pending: Future[None] | None = None

    def open(self, first: bytes = b"") -> None:
        if self.opened:
            return
        self.opened = True
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)

    def write(self, data: bytes) -> int:
        """Store what fits under the limit; returns how many bytes were stored (hashed
        and written a MiB at a time: a crash loses at most the last two MiB)."""
        if self._fd is None:
            return 0
        room = self.limit - self.size
        if room <= 0:
            return 0
        if len(data) > room:
            data = data[:room]
        self.size += len(data)
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH_BYTES:
            self._submit()
        return len(data)

    def _submit(self) -> None:
        """Hash and write the batch on the shared worker thread (sha256 and writes
        release the GIL, so they run beside the event loop). At most one batch per file
        waits: the next one first waits for it, which bounds memory and keeps order."""
        if not self._batch:
            return
        batch, self._batch, self._batched = self._batch, [], 0
        if self._pending is not None:
            self._pending.result()  # raises the worker's OSError here: fail closed
        self._pending = _worker().submit(self._work, b"".join(batch))

    def _work(self, data: bytes) -> None:
        if self._fd is None:
            return
        self.sha256.update(data)
        view = memoryview(data)
        for start in range(0, len(data), HOLE_BYTES):
            if data.startswith(_ZEROS, start):  # memcmp; a memoryview compare is 50x slower
                continue  # a hole: nothing written, reads back as zeros
            block = view[start : start + HOLE_BYTES]
            _pwrite_all(self._fd, block, self._offset + start)
        self._offset += len(data)

    def close(self) -> None:
        if self._fd is None:
            return
        self._submit()
        try:
            if self._pending is not None:
                self._pending.result()
            os.ftruncate(self._fd, self._offset)  # a trailing hole still counts
        finally:
            os.close(self._fd)
            self._fd = None

    def summary(self) -> str:
        return (
            f"binary output: {self.size} bytes in {self.path.name}, "
            f"sha256 {self.sha256.hexdigest()}"
        )


_executor: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    """One thread for every side file of the process (not a thread per session)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bastion-side-file")
    return _executor


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written
