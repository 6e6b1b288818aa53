"""Stream one command's bytes between the client and the target, with back-pressure.

Client input that arrives before the command has started (while it is being decided,
held for approval, or while the channel opens) is kept, never sent unless the command
runs, and reading stops once ``HOLD_LIMIT`` bytes wait. Output is recorded before it is
written to the client. When one side's send buffer fills, the other side stops
reading, so a stream of any size keeps the bastion's memory flat.

With a ``masker`` (exec without a PTY), stdout and stderr each go through their own
``StreamMasker`` before the client and the recording see them. What a masker holds
back (a partial line that may still become a secret) goes out at the target's EOF, or,
masked as it is, once the stream has been quiet for ``MASK_IDLE_SECONDS``: a program
that waits for an answer after a partial line (a prompt, a protocol such as git's)
must not wait for ever. A secret whose pieces come further apart than that is not
recognised.

EOF from the target waits for the exit status (sshd may send EOF first, and an OpenSSH
ControlMaster closes a channel as soon as EOF has gone both ways, losing the status)
for at most ``EOF_HOLD_SECONDS``; a command that closed its output and runs on still
gets its EOF passed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..record.mask import Masker, StreamMasker
from .ports import ClientChannel, RemoteCommand

__all__ = ["EOF_HOLD_SECONDS", "HOLD_LIMIT", "MASK_IDLE_SECONDS", "Relay"]

#: Longest a target's EOF waits for the exit status that usually follows it at once.
EOF_HOLD_SECONDS = 5.0
#: Quiet time after which what the maskers hold back is sent as it is (masked).
MASK_IDLE_SECONDS = 0.5
#: Client bytes kept while a command is not running yet, before reading pauses.
HOLD_LIMIT = 256 * 1024


class Relay:
    """Connects a client channel to one remote command; records what the client sees."""

    def __init__(
        self,
        client: ClientChannel,
        output: Callable[[bytes], None],
        *,
        pass_eof: bool = True,
        masker: Masker | None = None,
    ):
        self.client = client
        self._record_output = output
        self.pass_eof = pass_eof  # exec: the target's EOF is the client's; shell: it is not
        self.remote: RemoteCommand | None = None
        self.client_eof = False
        self.closed = False
        self._held: list[bytes] = []
        self._held_size = 0
        self._eof_timer: asyncio.TimerHandle | None = None
        self._paused_client = False
        self.masking = bool(masker)
        self._masks = (StreamMasker(masker), StreamMasker(masker)) if masker else None
        self._idle_timer: asyncio.TimerHandle | None = None

    # ---- client -> target ----
    def from_client(self, data: bytes) -> None:
        if self.closed:
            return
        if self.remote is not None:
            self.remote.write(data)
            return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size >= HOLD_LIMIT and not self._paused_client:
            self._paused_client = True
            self.client.pause_reading()

    def client_sent_eof(self) -> None:
        self.client_eof = True
        if self.remote is not None and not self.closed:
            self.remote.write_eof()

    def attach(self, remote: RemoteCommand) -> None:
        """The command runs: send what the client typed meanwhile, then stream."""
        self.remote = remote
        held, self._held, self._held_size = self._held, [], 0
        for data in held:
            remote.write(data)
        if self.client_eof:
            remote.write_eof()
        if self._paused_client:
            self._paused_client = False
            self.client.resume_reading()

    def discard_held(self) -> None:
        """The command will not run: what the client typed for it is dropped."""
        self._held, self._held_size = [], 0
        if self._paused_client:
            self._paused_client = False
            self.client.resume_reading()

    # ---- target -> client (RemoteSink) ----
    def remote_output(self, data: bytes, stderr: bool) -> None:
        if self.closed:
            return
        if self._masks is not None:
            data = self._masks[stderr].feed(data)
            self._arm_idle_flush()
            if not data:
                return
        self._record_output(data)
        if stderr:
            self.client.write_stderr(data)
        else:
            self.client.write(data)

    def _arm_idle_flush(self) -> None:
        assert self._masks is not None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if any(m.held for m in self._masks):
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(MASK_IDLE_SECONDS, self.flush_masked)

    def flush_masked(self) -> None:
        """Send what the maskers hold (the stream ended or went quiet)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._masks is None or self.closed:
            return
        for stderr, masker in enumerate(self._masks):
            rest = masker.flush()
            if rest:
                self._record_output(rest)
                if self.closed:
                    return
                (self.client.write_stderr if stderr else self.client.write)(rest)

    def remote_eof(self) -> None:
        self.flush_masked()
        if self.closed or not self.pass_eof:
            return
        if self.remote is not None and self.remote.result() is None:
            loop = asyncio.get_running_loop()
            self._eof_timer = loop.call_later(EOF_HOLD_SECONDS, self._pass_eof)

    def remote_exited(self) -> None:
        self._cancel_eof_timer()

    def remote_paused(self) -> None:
        self.client.pause_reading()

    def remote_resumed(self) -> None:
        self.client.resume_reading()

    # ---- client flow control (the client's window is full / has room) ----
    def client_paused(self) -> None:
        if self.remote is not None:
            self.remote.pause_reading()

    def client_resumed(self) -> None:
        if self.remote is not None:
            self.remote.resume_reading()

    def _pass_eof(self) -> None:
        self._eof_timer = None
        if not self.closed:
            self.client.write_eof()

    def _cancel_eof_timer(self) -> None:
        if self._eof_timer is not None:
            self._eof_timer.cancel()
            self._eof_timer = None

    def close(self) -> None:
        """Stop relaying (the command ended or the client left)."""
        self.closed = True
        self._cancel_eof_timer()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._held, self._held_size = [], 0
