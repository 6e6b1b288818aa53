"""What the exec and script flows share: one upstream command relayed to the client,
possibly held for approval first, and one way a run ends (never taking down others)."""

from __future__ import annotations

import asyncio

from ..errors import BastionError
from ..record import RecordingError
from .base import EXIT_BASTION_ERROR, Flow
from .hold import Hold
from .ports import ExitResult, RemoteCommand
from .relay import Relay

__all__ = ["RelayedFlow"]


class RelayedFlow(Flow):
    """Base of ``ExecFlow`` and ``ScriptFlow``: subclasses set ``relay``, ``remote`` and
    ``hold`` in ``__init__`` and implement ``_run``."""

    kind = "relayed"  # named in the log when a run fails unexpectedly
    relay: Relay
    remote: RemoteCommand | None
    hold: Hold

    # ---- events ----
    def signal_received(self, name: str) -> None:
        if self.remote is not None:
            self.remote.signal(name)
        elif self.hold.pending:
            self.hold.cancel(f"cancelled by the requester (signal {name})")

    def client_paused(self) -> None:
        self.relay.client_paused()

    def client_resumed(self) -> None:
        self.relay.client_resumed()

    def client_gone(self) -> None:
        self.hold.cancel("the requester disconnected")
        self.relay.close()
        if self.remote is not None:
            self.remote.close()

    def shutdown(self) -> None:
        self.relay.close()
        if self.remote is not None:
            self.remote.close()
        super().shutdown()

    def _recording_failed(self, exc: RecordingError) -> None:
        """Fail closed, and only this channel: the upstream connection is shared."""
        self.ctx.log.error("%s", exc)
        if self.remote is not None:
            self.remote.close()
        self.relay.close()
        self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))

    # ---- the flow ----
    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            await self.hold.cancel_now()
            if not self.finished:
                self.gone(self.hold.cancel_reason or "client disconnected")
            raise
        except BastionError as exc:  # a RecordingError too
            self.finish(ExitResult(status=EXIT_BASTION_ERROR, error=str(exc)), str(exc))
        except Exception:  # never let one channel take down others
            self.ctx.log.exception("%s flow failed", self.kind)
            self.finish(
                ExitResult(status=EXIT_BASTION_ERROR, error="internal error"),
                "internal error in the bastion; see its log",
            )
        finally:
            self.relay.close()

    async def _run(self) -> None:
        raise NotImplementedError
