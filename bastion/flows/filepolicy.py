"""The file decision the SFTP flow asks for every operation: ``policy.decide_file``.

``bastion.policy.decide_file`` judges one operation (read, write, remove, rename, mkdir,
setstat, symlink) on one path by the ``[[files]]`` rules. Until the policy engine ships
it, this module stands in with a fixed, narrow rule (``files-interim``): reads and writes
under the login's home directory and /tmp only, everything else denied. Either way the
answer is a ``policy.Decision``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from typing import Any

from ..policy import Decision, Policy

try:  # the policy engine's entry point, once it has landed
    from ..policy import decide_file as _decide_file  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the policy engine's version
    _decide_file = None

__all__ = ["FILE_OPS", "decide_file_op", "interim"]

FILE_OPS = ("read", "write", "remove", "rename", "mkdir", "setstat", "symlink")


def decide_file_op(
    policy: Policy,
    *,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
    op: str,
    path: str,
    path2: str | None = None,
    cwd: str | None = None,
) -> Decision:
    """Allow, deny or review one file operation (never raises)."""
    if _decide_file is not None:
        decision: Any = _decide_file(
            policy,
            user=user,
            groups=groups,
            target=target,
            login=login,
            op=op,
            path=path,
            path2=path2,
            cwd=cwd,
        )
        return decision  # type: ignore[no-any-return]
    return interim(op, path, path2, cwd)


def interim(op: str, path: str, path2: str | None, cwd: str | None) -> Decision:
    """Reads and writes under the home (``cwd``) and /tmp; everything else denied."""
    roots = ["/tmp"] + ([cwd] if cwd and cwd != "/" else [])
    for p in (path, path2):
        if p is None:
            continue
        full = posixpath.normpath(posixpath.join(cwd or "/", p))
        if not any(full == r or full.startswith(r.rstrip("/") + "/") for r in roots):
            reason = f"deny (files-interim): {op} {full} — only the home and /tmp are open"
            return Decision("deny", "files-interim", reason)
    return Decision("allow", "files-interim", f"allow (files-interim): {op} {path}")
