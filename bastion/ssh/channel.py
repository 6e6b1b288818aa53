"""The server-side session channel, with the client's requests checked as they arrive.

asyncssh keeps every ``env`` request of a channel in a dict without bound, decodes a
PTY's terminal type as ASCII without looking for control characters, and answers an
exec request whose command is not UTF-8 with a bare failure. This subclass bounds the
environment (count and bytes per channel), refuses a bad terminal type or signal name,
and turns a command that is not UTF-8 into a refusal the session explains and audits.
What it refuses is noted in ``refusal`` for the flow to tell the user.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh
from asyncssh.packet import SSHPacket

from .validate import clip, signal_name_ok, term_type_ok

__all__ = ["BastionServerChannel"]

MAX_NAME = 64
MAX_VALUE = 4096


class BastionServerChannel(asyncssh.SSHServerChannel[bytes]):
    """A session channel whose requests are bounded and validated."""

    def __init__(
        self,
        conn: asyncssh.SSHServerConnection,
        loop: asyncio.AbstractEventLoop,
        *,
        window: int,
        max_pktsize: int,
        max_env: int,
        max_env_bytes: int,
    ):
        super().__init__(
            conn,  # type: ignore[arg-type]
            loop,
            True,  # allow_pty: the session decides (certificate permit-pty)
            False,  # line editor: off, the bastion relays bytes
            False,
            0,
            0,
            None,  # encoding: bytes
            "strict",
            window,
            max_pktsize,
        )
        self.max_env = max_env
        self.max_env_bytes = max_env_bytes
        self.env_count = 0
        self.env_bytes = 0
        self.client_env: dict[str, str] = {}
        self.refusal = ""  # "rule: sentence" for the flow to deny with
        self.dropped_env: list[str] = []

    def refuse(self, rule: str, reason: str) -> None:
        if not self.refusal:
            self.refusal = f"{rule}: {reason}"

    def _process_env_request(self, packet: SSHPacket) -> bool:
        name_bytes = packet.get_string()
        value_bytes = packet.get_string()
        packet.check_end()
        self.env_count += 1
        self.env_bytes += len(name_bytes) + len(value_bytes)
        if self.env_count > self.max_env or self.env_bytes > self.max_env_bytes:
            self.refuse(
                "too-many-variables",
                f"too many environment variables for one channel (at most {self.max_env}, "
                f"{self.max_env_bytes} bytes)",
            )
            return False
        try:
            name = name_bytes.decode("utf-8")
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            self.dropped_env.append(clip(name_bytes, 40))
            return False
        if (
            not name
            or len(name) > MAX_NAME
            or len(value) > MAX_VALUE
            or "\x00" in name
            or "\x00" in value
            or "=" in name
        ):
            self.dropped_env.append(clip(name, 40))
            return False
        self.client_env[name] = value
        return True

    def _process_pty_req_request(self, packet: SSHPacket) -> bool:
        start = packet._idx  # type: ignore[attr-defined]
        term_bytes = packet.get_string()
        try:
            term = term_bytes.decode("ascii")
        except UnicodeDecodeError:
            term = ""
        if not term_type_ok(term):
            self.refuse("bad-terminal", f"the terminal type {clip(term_bytes, 40)} is not valid")
            return False
        packet._idx = start  # type: ignore[attr-defined]  # let asyncssh read it again
        return bool(super()._process_pty_req_request(packet))

    def _process_exec_request(self, packet: SSHPacket) -> bool:
        command_bytes = packet.get_string()
        packet.check_end()
        try:
            command = command_bytes.decode("utf-8")
        except UnicodeDecodeError:
            self.refuse("bad-encoding", "the command is not valid UTF-8 text")
            command = command_bytes.decode("utf-8", "replace")
        if "\x00" in command:
            # sshd hands the command to the shell as a C string, cut at the NUL: what
            # would run is not what was decided
            self.refuse(
                "nul-byte",
                "the command contains a NUL byte, so the target would run only a part of it",
            )
        return bool(self._start_session(command=command))  # type: ignore[attr-defined]

    def _process_subsystem_request(self, packet: SSHPacket) -> bool:
        name_bytes = packet.get_string()
        packet.check_end()
        try:
            name = name_bytes.decode("ascii")
        except UnicodeDecodeError:
            self.refuse("bad-subsystem", "the subsystem name is not ASCII")
            name = "invalid"
        if not name.isprintable() or len(name) > 64:
            self.refuse("bad-subsystem", "the subsystem name is not valid")
            name = "invalid"
        return bool(self._start_session(subsystem=name))  # type: ignore[attr-defined]

    def _process_signal_request(self, packet: SSHPacket) -> bool:
        data: Any = packet.get_string()
        packet.check_end()
        try:
            name = data.decode("ascii")
        except UnicodeDecodeError:
            return False
        if not signal_name_ok(name):
            return False
        self._session.signal_received(name)  # type: ignore[union-attr]
        return True
