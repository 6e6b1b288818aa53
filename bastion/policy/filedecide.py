"""``decide_file``: the pure entry point the SFTP flow (and legacy scp) calls per operation.

One SFTP operation on one path (two for rename and symlink) is judged by the
``[[files]]`` rules in scope for the identity: the most restrictive matching rule
decides; no match gets ``[policy] files_default``. Paths are resolved against ``cwd``
(else the login's home) and matched both as absolute paths and, inside the login's home,
spelled from ``~`` (so ``~/.ssh/id_*`` protects /root/.ssh/id_rsa for root).

Like ``decide`` it never raises: a bad operation name or path gets on_unknown.
"""

from __future__ import annotations

from collections.abc import Collection

from .decide import Decision, Policy
from .files import FILE_OPS, FileRule, home_spelling, resolve_file_path
from .rules import SEVERITY

__all__ = ["decide_file"]


def decide_file(
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
    via: str = "sftp",
) -> Decision:
    """Decide one file operation (``op`` in read, write, remove, rename, mkdir, setstat,
    symlink) on ``path`` (and ``path2``: rename's new name, symlink's link path).

    For rename, ``path`` is removed and ``path2`` written, so ``path`` is judged as
    ``rename`` and ``path2`` as ``rename`` and ``write``; for symlink, ``path2`` (the new
    link) as ``symlink`` and ``write``, and its target ``path`` as ``read``."""
    try:
        return _decide_file(policy, user, groups, target, login, op, path, path2, cwd, via)
    except Exception as exc:  # noqa: BLE001 - fail closed on any internal error
        action = policy.on_unknown if policy.on_unknown in ("review", "deny") else "review"
        return Decision(action, "on_unknown", f"{action} (on_unknown): internal error: {exc}")


def _checks(op: str, path: str, path2: str | None) -> list[tuple[str, str]]:
    if op == "rename" and path2 is not None:
        return [("rename", path), ("rename", path2), ("write", path2)]
    if op == "symlink" and path2 is not None:
        return [("read", path), ("symlink", path2), ("write", path2)]
    return [(op, path)]


def _decide_file(
    policy: Policy,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
    op: str,
    path: str,
    path2: str | None,
    cwd: str | None,
    via: str,
) -> Decision:
    unknown = policy.on_unknown
    if op not in FILE_OPS:
        return Decision(unknown, "on_unknown", f"{unknown} (on_unknown): unknown operation {op!r}")
    if (op in ("rename", "symlink")) != (path2 is not None):
        return Decision(unknown, "on_unknown", f"{unknown} (on_unknown): {op} needs two paths")
    for p in (path, path2 or ""):
        if "\x00" in p or not isinstance(p, str):
            return Decision(unknown, "on_unknown", f"{unknown} (on_unknown): a bad path")
    rules = [
        r
        for r in policy.file_rules
        if via in r.via and r.in_scope(user, frozenset(groups), target, login)
    ]
    best: tuple[FileRule, str, str] | None = None
    allowed: tuple[FileRule, str, str] | None = None
    for check_op, raw in _checks(op, path, path2):
        resolved = resolve_file_path(raw, cwd, login)
        if resolved == "?":
            why = f"{unknown} (on_unknown): cannot resolve {raw!r}"
            return Decision(unknown, "on_unknown", why)
        spellings = [resolved]
        if (home := home_spelling(resolved, login)) is not None:
            spellings.append(home)
        for rule in rules:
            if not any(rule.matches(check_op, s) for s in spellings):
                continue
            if rule.action == "allow":
                allowed = allowed or (rule, check_op, resolved)
            elif best is None or SEVERITY[rule.action] > SEVERITY[best[0].action]:
                best = (rule, check_op, resolved)
    if best is None and allowed is not None:
        best = allowed
    if best is None:
        action = policy.files_default
        return Decision(action, "default", f"{action} (default): {op} {path}")
    rule, check_op, resolved = best
    text = f"{rule.action} ({rule.id}): {check_op} {resolved}"
    if rule.message:
        text += f" — {rule.message}"
    approval = rule.approval if rule.action == "review" else None
    return Decision(
        rule.action,
        rule.id,
        text,
        approvers=approval.approvers if approval else (),
        approvals_required=approval.required if approval else 1,
        approval_ttl=approval.ttl if approval else None,
    )
