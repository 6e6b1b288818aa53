"""Sessions of the reserved user names: the bastion's own verbs, never a target.

``bastion-ctl`` is the user name ``bastion-cli`` logs in with, using the person's usual
certificate; its exec requests are verbs (``bastion.control.verbs``) answered with one
JSON object and an exit status. A shell or subsystem request gets the usage and
status 2; nothing else is possible on these sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..control import ControlContext, run_verb
from ..control.verbs import USAGE
from ..identity import Identity
from .verbsession import VerbSession

if TYPE_CHECKING:
    from .server import Services

__all__ = ["CONTROL_USER", "RESERVED_USERS", "ControlSession"]

CONTROL_USER = "bastion-ctl"
RESERVED_USERS = frozenset({CONTROL_USER})


class ControlSession(VerbSession):
    """One verb: read the request, answer in JSON, exit with its status."""

    def __init__(self, services: Services, identity: Identity, conn_label: str):
        super().__init__()
        self.ctx = ControlContext(identity, services.approvals, services.audit, conn_label)

    async def _serve(self) -> None:
        if self.command is None:
            self._answer(2, {"error": "give a verb", "usage": USAGE})
            return
        reply = await run_verb(self.ctx, self.command)
        self._answer(reply.status, reply.body)
