"""The bastion's own verbs, run for ``bastion-cli`` over the reserved SSH user.

A request is the exec command of a session on the reserved user: words, e.g.
``approve 1f2e3d4c5b --reason 'looks right'``. Every verb validates its arguments,
answers with one JSON object on stdout and an exit status (0 done, 1 refused with a
sentence in ``error``, 2 a malformed request). No verb runs a shell or touches a
target. Transport-free: ``bastion.ssh.control`` feeds it, tests call it directly.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..approvals import ApprovalError, ApprovalService
from ..identity import Identity
from ..record import AuditLog
from ..storage import ApprovalRequest

__all__ = ["ControlContext", "Reply", "VERBS", "request_json", "run_verb"]

_ID = re.compile(r"[0-9a-f]{6,32}")
MAX_REASON = 500
MAX_WAIT = 3600.0


@dataclass
class ControlContext:
    """What a verb may use: the caller's identity and the approvals service."""

    identity: Identity
    approvals: ApprovalService
    audit: AuditLog
    conn: str = ""


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class BadRequest(Exception):
    """Malformed arguments: exit status 2 and the usage."""


def request_json(r: ApprovalRequest, now: float) -> dict[str, Any]:
    """A request as ``bastion-cli ... --json`` prints it (stable keys)."""
    return {
        "id": r.id,
        "status": r.status,
        "user": r.user,
        "groups": list(r.groups),
        "target": r.target,
        "login": r.login,
        "cwd": r.cwd,
        "command": r.command,
        "rule": r.rule,
        "reason": r.reason,
        "approvers": list(r.approvers),
        "approvals_required": r.required,
        "approvals": [{"user": a.user, "reason": a.reason, "at": a.at} for a in r.approvals],
        "created": r.created,
        "age_seconds": round(max(0.0, now - r.created), 1),
        "expires": r.expires,
        "expires_in_seconds": round(r.expires - now, 1),
        "decided_by": r.decided_by,
        "decision_reason": r.decision_reason,
        "decided_at": r.decided_at,
        "waiting": r.waiting,
    }


def _take_id(args: list[str]) -> str:
    if not args:
        raise BadRequest("give the request id")
    request_id = args.pop(0)
    if not _ID.fullmatch(request_id):
        raise BadRequest(f"{request_id[:40]!r} is not a request id")
    return request_id


def _take_option(args: list[str], name: str) -> str | None:
    if name not in args:
        return None
    i = args.index(name)
    if i + 1 >= len(args):
        raise BadRequest(f"{name} needs a value")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def _reason(args: list[str], required: bool) -> str:
    reason = _take_option(args, "--reason")
    if reason is None:
        if required:
            raise BadRequest("give a reason: --reason TEXT")
        return ""
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise BadRequest(f"the reason must be printable text of at most {MAX_REASON} characters")
    return reason


def _no_more(args: list[str]) -> None:
    if args:
        raise BadRequest(f"unexpected argument {args[0][:40]!r}")


async def _whoami(ctx: ControlContext, args: list[str]) -> Reply:
    _no_more(args)
    ident = ctx.identity
    return Reply(
        0,
        {
            "user": ident.user,
            "principals": list(ident.principals),
            "groups": list(ident.groups),
            "key_id": ident.key_id,
            "valid_before": ident.valid_before,
            "expires_in_seconds": round(ident.valid_before - time.time()),
        },
    )


async def _requests(ctx: ControlContext, args: list[str]) -> Reply:
    show_all = "--all" in args
    args = [a for a in args if a != "--all"]
    _no_more(args)
    found = await ctx.approvals.list(pending_only=not show_all)
    now = ctx.approvals.clock()
    return Reply(0, {"requests": [request_json(r, now) for r in found]})


async def _show(ctx: ControlContext, args: list[str]) -> Reply:
    request_id = _take_id(args)
    _no_more(args)
    request = await ctx.approvals.get(request_id)
    return Reply(0, {"request": request_json(request, ctx.approvals.clock())})


async def _decide(ctx: ControlContext, args: list[str], approve: bool) -> Reply:
    request_id = _take_id(args)
    reason = _reason(args, required=not approve)
    _no_more(args)
    request = await ctx.approvals.decide(request_id, ctx.identity, approve=approve, reason=reason)
    return Reply(0, {"request": request_json(request, ctx.approvals.clock())})


async def _approve(ctx: ControlContext, args: list[str]) -> Reply:
    return await _decide(ctx, args, True)


async def _deny(ctx: ControlContext, args: list[str]) -> Reply:
    return await _decide(ctx, args, False)


async def _wait(ctx: ControlContext, args: list[str]) -> Reply:
    request_id = _take_id(args)
    timeout_text = _take_option(args, "--timeout")
    _no_more(args)
    timeout = MAX_WAIT
    if timeout_text is not None:
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise BadRequest("--timeout takes seconds") from None
        if not 0 <= timeout <= MAX_WAIT:
            raise BadRequest(f"--timeout must be between 0 and {MAX_WAIT:g} seconds")
    request = await ctx.approvals.get(request_id)
    if request.user != ctx.identity.user and not any(
        g in ctx.identity.groups for g in request.approvers
    ):
        raise ApprovalError(f"request {request_id} is neither yours nor yours to decide")
    request = await ctx.approvals.wait(request_id, timeout=timeout)
    return Reply(0, {"request": request_json(request, ctx.approvals.clock())})


Verb = Callable[[ControlContext, list[str]], Awaitable[Reply]]

VERBS: dict[str, Verb] = {
    "whoami": _whoami,
    "requests": _requests,
    "show": _show,
    "approve": _approve,
    "deny": _deny,
    "wait": _wait,
}

USAGE = (
    "verbs: whoami | requests [--all] | show ID | approve ID [--reason TEXT] | "
    "deny ID --reason TEXT | wait ID [--timeout SECONDS]"
)


async def run_verb(ctx: ControlContext, command: str) -> Reply:
    """Parse and run one request; never raises."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return Reply(2, {"error": f"cannot read the request: {exc}", "usage": USAGE})
    if not words or words[0] not in VERBS:
        verb = words[0][:40] if words else ""
        return Reply(2, {"error": f"unknown verb {verb!r}", "usage": USAGE})
    verb, args = words[0], words[1:]
    try:
        reply = await VERBS[verb](ctx, args)
    except BadRequest as exc:
        reply = Reply(2, {"error": str(exc), "usage": USAGE})
    except ApprovalError as exc:
        reply = Reply(1, {"error": str(exc)})
    ctx.audit.write(
        "control",
        conn=ctx.conn,
        user=ctx.identity.user,
        verb=verb,
        args=[a[:100] for a in args[:6]],
        status=reply.status,
        error=reply.body.get("error"),
    )
    return reply
