"""From an authenticated session channel to its flow: recorder, context, flow kind.

A session channel on an inner (jump) or direct-mode connection goes to one target as
one login. Its request picks the flow: ``exec`` runs one decided command; ``shell``
(and an exec of a plain ``bash``/``sh``) gets the bastion's own shell with a terminal,
its script reader without one; the ``sftp`` subsystem is relayed request by request
(``flows.sftp``); other subsystems are refused with a sentence. Every channel gets its
own recorder; variables the client set are split into the bastion's own options
(``BASTION_*``) and the locale variables passed on to the target.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Target
from ..flows.base import EXIT_DENIED, Flow, FlowContext
from ..flows.exec import ExecFlow
from ..flows.ports import ExitResult
from ..flows.script import ScriptFlow
from ..flows.sftp import SftpFlow
from ..flows.shell import ShellFlow
from ..identity import Identity
from ..logs import ContextLog
from ..record import RecordingSettings, SessionInfo, SessionRecorder
from ..shell import ShellSettings
from ..shell.bare import is_bare_shell
from .validate import forwardable_env, is_bastion_option

if TYPE_CHECKING:
    from .adapter import ChannelRequest, SessionAdapter
    from .server import Services

__all__ = ["RefusedFlow", "Route", "make_flow", "new_session_id"]


def new_session_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


@dataclass(frozen=True)
class Route:
    """An authenticated connection's destination."""

    services: Services
    identity: Identity
    target: Target
    login: str
    conn_label: str
    peer: str


class RefusedFlow(Flow):
    """A request the bastion does not serve: recorded, one sentence, status 77."""

    def __init__(self, ctx: FlowContext, rule: str, reason: str):
        super().__init__(ctx)
        self.rule, self.reason = rule, reason

    async def run(self) -> None:
        try:
            self.ctx.recorder.open()
            self.ctx.recorder.decision("deny", self.rule, self.reason)
        except OSError:
            pass
        self.finish(ExitResult(status=EXIT_DENIED), self.reason)

    def client_gone(self) -> None:
        if not self.finished:
            self.gone()


def make_flow(route: Route, adapter: SessionAdapter, request: ChannelRequest) -> Flow:
    """Build the recorder, context and flow for one session channel."""
    services = route.services
    config = services.config
    session_id = new_session_id()
    term = request.term
    what = request.command if request.kind == "exec" else None
    kind = request.kind if request.kind != "subsystem" else f"subsystem:{request.subsystem}"
    info = SessionInfo(
        session_id=session_id,
        conn=route.conn_label,
        peer=route.peer,
        user=route.identity.user,
        groups=route.identity.groups,
        target=route.target.name,
        login=route.login,
        kind=kind,
        command=what,
        term_type=term.type if term else None,
        width=term.width if term else 80,
        height=term.height if term else 24,
    )
    shell = request.kind == "shell" or (
        request.kind == "exec" and is_bare_shell(request.command or "")
    )
    record_input = config.shell.record_input if shell else config.recording.record_input
    masker = config.masking.for_session(
        route.identity.user, route.identity.groups, route.target.name, route.login
    )
    recorder = SessionRecorder(
        info,
        RecordingSettings(
            config.recording.dir,
            config.recording.max_output_bytes,
            record_input,
            config.recording.max_binary_bytes,
        ),
        services.audit,
        services.store,
        masker,
    )
    log = ContextLog(
        "bastion.session",
        f"{route.conn_label} session={session_id} user={route.identity.user} "
        f"target={route.target.name} login={route.login}",
    )
    ctx = FlowContext(
        identity=route.identity,
        target=route.target.name,
        login=route.login,
        session_id=session_id,
        client=adapter,
        recorder=recorder,
        upstream=services.pool.for_session(route.target, route.login, route.identity.user),
        policy=config.policy,
        approvals=services.approvals,
        log=log,
        term=term,
        env=forwardable_env(request.env),
        options={k: v for k, v in request.env.items() if is_bastion_option(k)},
        refusal=request.refusal,
        masker=masker if config.masking.live else None,
    )
    if shell:
        return shell_flow(ctx, services)
    if request.kind == "exec":
        return ExecFlow(ctx, request.command or "")
    if request.subsystem == "sftp":
        return SftpFlow(ctx)
    return RefusedFlow(
        ctx,
        "unsupported",
        f"the {request.subsystem} subsystem is not available through this bastion",
    )


def shell_flow(ctx: FlowContext, services: Services) -> Flow:
    """The bastion's own shell: line editor with a terminal, script reader without."""
    if ctx.term is None:
        return ScriptFlow(ctx)
    config = services.config
    settings = ShellSettings(
        history_dir=config.paths.history,
        history_size=config.shell.history_size,
        idle_timeout=float(config.shell.idle_timeout),
        record_input=config.shell.record_input,
        side_timeout=config.server.connect_timeout,
    )
    return ShellFlow(ctx, settings)
