"""Deciding without stalling the event loop.

``policy.decide`` is pure but may wait on bash's parser (the structure check, bounded by
``structure_timeout_ms``) and may take milliseconds on a large input; on the event loop
that would stall every session. Such decisions run on a small shared pool of threads
(two, not one per session), so a slow one does not hold up the others. A short command
in the plain word language (no structure check) is decided on the loop itself, in a
fraction of a millisecond: handing it to a thread costs more than deciding it, since
the thread then contends for the GIL with the loop's socket writes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from ..policy import Decision, Policy, decide
from ..policy.structure import needs_structure_check

__all__ = ["decide_off_loop", "decides_quickly"]

_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bastion-decide")
#: Longest command decided on the loop when it needs no structure check.
INLINE_BYTES = 1024


def decides_quickly(policy: Policy, command: str) -> bool:
    """Whether deciding ``command`` cannot block: short, and bash is not asked."""
    return len(command) <= INLINE_BYTES and not (
        policy.structure_check and needs_structure_check(command)
    )


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
    """``decide`` with the same arguments, on the loop when quick, else on the threads."""
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
    if decides_quickly(policy, command):
        return call()
    return await asyncio.get_running_loop().run_in_executor(_POOL, call)
