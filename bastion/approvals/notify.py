"""Webhook notifications for approval requests: new, approved, denied.

``[approvals] notify_url`` receives a JSON POST per event, with a Slack-compatible
``text`` field so an incoming-webhook URL works as is. A webhook that fails or hangs
never blocks a request: posts run in the background with a short time-out, and a
failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..storage import ApprovalRequest

__all__ = ["Notifier", "event_payload"]

log = logging.getLogger("bastion.approvals")
TIMEOUT_SECONDS = 5.0


def event_payload(event: str, request: ApprovalRequest) -> dict[str, Any]:
    """The JSON body for one event."""
    who = f"{request.user}@{request.target} as {request.login}"
    if event == "requested":
        text = (
            f"bastion: {who} asks to run `{request.command[:300]}` (rule {request.rule}). "
            f"Approve with: bastion-cli approve {request.id}"
        )
    else:
        by = f" by {request.decided_by}" if request.decided_by else ""
        why = f": {request.decision_reason}" if request.decision_reason else ""
        text = f"bastion: request {request.id} of {who} {event}{by}{why}"
    return {
        "event": f"approval.{event}",
        "text": text,
        "id": request.id,
        "status": request.status,
        "user": request.user,
        "groups": list(request.groups),
        "target": request.target,
        "login": request.login,
        "cwd": request.cwd,
        "command": request.command,
        "rule": request.rule,
        "reason": request.reason,
        "approvers": list(request.approvers),
        "required": request.required,
        "expires": request.expires,
        "decided_by": request.decided_by,
        "decision_reason": request.decision_reason,
    }


class Notifier:
    """Posts events to one URL, in the background, never raising."""

    def __init__(self, url: str):
        self.url = url
        self._client: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def announce(self, event: str, request: ApprovalRequest) -> None:
        if not self.url:
            return
        task = asyncio.get_running_loop().create_task(self._post(event_payload(event, request)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, payload: dict[str, Any]) -> None:
        import httpx

        try:
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
            response = await self._client.post(self.url, json=payload)
            if response.status_code >= 300:
                log.warning("approval webhook answered %s", response.status_code)
        except Exception as exc:  # noqa: BLE001 - a webhook never breaks a request
            log.warning("approval webhook failed: %s", exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=TIMEOUT_SECONDS)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
