"""``[[profiles]]``: per-group defaults, e.g. a safe-list profile for AI agents.

A profile sets the action for a command no rule matched, for the identities in its scope
(the first profile in scope, in file order, wins; else ``[policy] default``). The shipped
``agents`` profile says review: an agent's command is allowed only when every simple
command in it matches an allow rule of the read-only list, and deny rules still deny.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..schema import check
from ..tomlsource import TomlSource
from .rules import in_scope
from .schema import ProfileModel

__all__ = ["Profile", "load_profiles", "default_for"]

_SCOPE = ("groups", "not_groups", "users", "not_users", "targets", "not_targets", "logins")


@dataclass(frozen=True)
class Profile:
    """One ``[[profiles]]`` entry."""

    id: str
    default: str
    message: str
    scope: dict[str, list[str]]

    def in_scope(self, user: str, groups: Collection[str], target: str, login: str) -> bool:
        return in_scope(self.scope, user, groups, target, login)


def load_profiles(source: TomlSource, raw: Any) -> list[Profile]:
    """Validate ``[[profiles]]``; any mistake is a ConfigError naming file:line:key."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise source.error(("profiles",), "must be an array of tables ([[profiles]])")
    out: list[Profile] = []
    for i, entry in enumerate(raw):
        m = check(source, ProfileModel, entry, ("profiles", i))
        if any(p.id == m.id for p in out):
            raise source.error(("profiles", i, "id"), f"duplicate profile id {m.id!r}")
        scope = {k: list(v) for k in _SCOPE + ("not_logins",) if (v := getattr(m, k)) is not None}
        out.append(Profile(m.id, m.default, m.message, scope))
    return out


def default_for(
    profiles: list[Profile],
    fallback: str,
    user: str,
    groups: Collection[str],
    target: str,
    login: str,
) -> tuple[str, str, str]:
    """(action, rule id, message) for a command no rule matched, for this identity."""
    for p in profiles:
        if p.in_scope(user, groups, target, login):
            return p.default, f"profile:{p.id}", p.message or "no rule of the profile matched"
    return fallback, "default", "no rule matched"
