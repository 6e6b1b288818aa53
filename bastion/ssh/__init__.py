"""The SSH layer: the only package that imports asyncssh. It turns protocol events
into calls on identity, policy and recording, and their errors into SSH refusals."""

from __future__ import annotations

from .server import BastionConnection, BastionServer, Services, start_listener

__all__ = ["BastionConnection", "BastionServer", "Services", "start_listener"]
