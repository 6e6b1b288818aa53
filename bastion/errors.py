"""Error types. Users read these sentences; only ``bastion.ssh`` turns them into
SSH-level refusals, and the CLI prints them without a traceback."""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AuthError",
    "BastionError",
    "ConfigError",
    "HostKeyChangedError",
    "UpstreamError",
]


class BastionError(Exception):
    """Base of every error the bastion raises on purpose."""


class ConfigError(BastionError):
    """A config file is wrong: names file, line and key so the operator can fix it."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, key: str = ""):
        self.path = path
        self.line = line
        self.key = key
        self.detail = message
        where = path
        if path and line:
            where = f"{path}:{line}"
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class AuthError(BastionError):
    """The client's credential was refused; the message says what to do."""


class AccessError(BastionError):
    """An authenticated identity asked for something it may not have."""


class UpstreamError(BastionError):
    """The target could not be reached or refused the bastion."""


class HostKeyChangedError(UpstreamError):
    """The target presented a host key other than the pinned one."""
