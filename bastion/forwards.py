"""``[[forwards]]``: the TCP forwards a group may open through the bastion.

Port forwarding is refused unless a rule allows it. A rule names the ``host:port``
pairs (host names or addresses as the client writes them, ``*`` in a port for any port)
and who may open them (``groups`` is required; ``users`` narrows further). An allowed
forward (``ssh -L PORT:HOST:PORT alice@bastion -N``, or ``-D`` whose connections name an
allowed pair) is connected by the bastion itself and audited with the bytes each way.

```toml
[[forwards]]
id = "ops-grafana"
groups = ["ops"]
to = ["grafana.internal:3000", "127.0.0.1:9090"]
```

Limits: the pair is matched as the client names it, before DNS; the bastion then
connects to that name. Remote forwards (``-R``), agent and X11 forwarding are always
refused. A jump (``-J``, a target's name) is never a forward, and no rule may name a
target's SSH address: the bastion never opens a raw tunnel to a target's SSH port.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator

from .schema import Section

__all__ = ["ForwardRule", "ForwardSection", "allowed_forward", "forward_rules"]


class ForwardSection(Section):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    groups: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    users: list[str] = []
    to: Annotated[list[str], Field(min_length=1)]

    @field_validator("to")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            host, sep, port = pair.rpartition(":")
            if not sep or not host.strip("[]") or not (port == "*" or port.isdigit()):
                raise ValueError(f"{pair!r} must be HOST:PORT (PORT a number or *)")
            if port.isdigit() and not 0 < int(port) < 65536:
                raise ValueError(f"{pair!r}: port out of range")
        return value


@dataclass(frozen=True)
class ForwardRule:
    id: str
    groups: frozenset[str]
    users: frozenset[str]
    to: tuple[tuple[str, str], ...]  # (host pattern, port or *)

    def allows(self, user: str, groups: Collection[str], host: str, port: int) -> bool:
        if not any(g in self.groups for g in groups):
            return False
        if self.users and user not in self.users:
            return False
        host = host.lower().strip("[]")
        return any(
            fnmatch.fnmatchcase(host, h) and (p == "*" or int(p) == port) for h, p in self.to
        )


def forward_rules(sections: list[ForwardSection]) -> tuple[ForwardRule, ...]:
    rules = []
    for s in sections:
        pairs = []
        for pair in s.to:
            host, _, port = pair.rpartition(":")
            pairs.append((host.lower().strip("[]"), port))
        rules.append(ForwardRule(s.id, frozenset(s.groups), frozenset(s.users), tuple(pairs)))
    return tuple(rules)


def allowed_forward(
    rules: tuple[ForwardRule, ...], user: str, groups: Collection[str], host: str, port: int
) -> ForwardRule | None:
    """The first rule allowing ``user`` to forward to ``host:port``, else None."""
    for rule in rules:
        if rule.allows(user, groups, host, port):
            return rule
    return None
