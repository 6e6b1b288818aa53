"""Deciding off the event loop.

``policy.decide`` is pure but may wait on bash's parser (the structure check, bounded by
``structure_timeout_ms``) and may take milliseconds on a large input; called on the
event loop it would stall every session. Flows await ``decide_off_loop`` instead: the
decision runs on a small, shared pool of threads (two, not one per session), so a slow
one does not hold up the others behind it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from ..policy import Decision, Policy, decide

__all__ = ["decide_off_loop"]

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bastion-decide")


async def decide_off_loop(
    policy: Policy,
    *,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
    command: str,
    cwd: str | None = None,
    pty: bool = False,
) -> Decision:
    """``decide`` with the same arguments, run on the decision threads."""
    call = functools.partial(
        decide,
        policy,
        user=user,
        groups=tuple(groups),
        target=target,
        login=login,
        command=command,
        cwd=cwd,
        pty=pty,
    )
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
