"""``[masking]`` and ``[[masks]]`` in policies.toml: which masks apply to whom.

```toml
[masking]
builtins = ["private-key", "cloud-key", "jwt", "bearer", "secret-assignment",
            "url-credentials", "card-number"]   # the default: all of them
live = true          # mask exec output without a PTY (and SFTP reads) before the client

[[masks]]
id = "employee-id"
regex = "EMP-[0-9]{6}"      # a Python regular expression over bytes (ASCII \\w, \\d)
replacement = "EMP-******"  # default "****"
groups = ["contractors"]    # scope, like [[rules]]: users, groups, targets, logins
```

A mask rule with no scope applies to every session. The audit log is masked with every
rule (scoped or not): it is shared by all sessions.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field, field_validator

from ..schema import Section
from .mask import BUILTIN_MASKS, Masker, MaskRule

__all__ = ["MaskSection", "MaskingConfig", "MaskingSection", "masking_config"]

BuiltinName = Literal[
    "private-key",
    "cloud-key",
    "jwt",
    "bearer",
    "secret-assignment",
    "url-credentials",
    "card-number",
]


class MaskingSection(Section):
    builtins: list[BuiltinName] = [rule.name for rule in BUILTIN_MASKS]  # type: ignore[misc]
    live: bool = True


class MaskSection(Section):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    regex: Annotated[str, Field(min_length=1, max_length=2000)]
    replacement: str = "****"
    users: list[str] = []
    groups: list[str] = []
    targets: list[str] = []
    logins: list[str] = []

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            pattern = re.compile(value.encode())
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if pattern.match(b""):
            raise ValueError("matches the empty string, so it would mask between every byte")
        return value


@dataclass(frozen=True)
class _Scoped:
    rule: MaskRule
    users: frozenset[str]
    groups: frozenset[str]
    targets: frozenset[str]
    logins: frozenset[str]

    def applies(self, user: str, groups: Collection[str], target: str, login: str) -> bool:
        return (
            (not self.users or user in self.users)
            and (not self.groups or any(g in self.groups for g in groups))
            and (not self.targets or target in self.targets)
            and (not self.logins or login in self.logins)
        )


@dataclass
class MaskingConfig:
    """The built-ins kept and the ``[[masks]]`` rules, ready to build maskers."""

    builtins: tuple[str, ...] = tuple(rule.name for rule in BUILTIN_MASKS)
    live: bool = True
    custom: tuple[_Scoped, ...] = ()
    _cache: dict[tuple[object, ...], Masker] = field(default_factory=dict, repr=False)

    def for_session(self, user: str, groups: Collection[str], target: str, login: str) -> Masker:
        """The masker for one session: built-ins plus the rules in its scope."""
        rules = [s.rule for s in self.custom if s.applies(user, groups, target, login)]
        key = tuple(r.name for r in rules)
        masker = self._cache.get(key)
        if masker is None:
            builtin = [r for r in BUILTIN_MASKS if r.name in self.builtins]
            masker = self._cache[key] = Masker([*builtin, *rules])
        return masker

    def for_audit(self) -> Masker:
        """Every rule at once, for the shared audit log."""
        builtin = [r for r in BUILTIN_MASKS if r.name in self.builtins]
        return Masker([*builtin, *(s.rule for s in self.custom)])


def masking_config(section: MaskingSection, masks: list[MaskSection]) -> MaskingConfig:
    """Typed config from the checked sections."""
    custom = tuple(
        _Scoped(
            MaskRule(m.id, re.compile(m.regex.encode()), m.replacement.encode()),
            frozenset(m.users),
            frozenset(m.groups),
            frozenset(m.targets),
            frozenset(m.logins),
        )
        for m in masks
    )
    return MaskingConfig(tuple(section.builtins), section.live, custom)
