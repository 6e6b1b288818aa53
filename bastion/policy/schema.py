"""The schema of the policy's sections of policies.toml: one declarative place.

``[policy]`` settings, ``[[rules]]`` (commands), ``[[files]]`` (paths and file
operations, shared by SFTP, legacy scp and commands that read or write files),
``[[profiles]]`` (per-group defaults) and ``[[tests]]``. Closed vocabularies are typed
(actions, path classes, tags, file operations), so a typo is an error naming
file:line:key, never a rule that silently matches nothing; empty matchers and duplicate
entries are errors too. Loading into matchers happens in ``rules`` and ``files``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ..schema import Section

__all__ = [
    "Action",
    "FILE_OPS",
    "KNOWN_TAGS",
    "PATH_CLASSES",
    "FileRuleModel",
    "PolicySettings",
    "ProfileModel",
    "RuleModel",
    "TestModel",
    "parse_duration",
]

Action = Literal["allow", "deny", "review"]
FileOp = Literal["read", "write", "remove", "rename", "mkdir", "setstat", "symlink"]
Via = Literal["sftp", "scp", "command"]
FILE_OPS: tuple[str, ...] = ("read", "write", "remove", "rename", "mkdir", "setstat", "symlink")

#: Findings the normalizer records on a command (rules match them with ``tags``).
KNOWN_TAGS = frozenset(
    {
        "dynamic-command",
        "glob-command",
        "pipe-to-shell",
        "script-file",
        "interpreter-code",
        "source",
        "arith-substitution",
        "arith-runtime",
        "written-then-run",
        "untrusted-script",
        "history-expansion",
        "dynamic-code",
        "too-deep",
        "path-hijack",
        "rebinds-command",
        "interactive-shell",
        "takes-terminal",
        "recursive-function",
        "kills-everything",
        "kills-critical",
        "runs-command",
        "from-find",
        "pid-lookup",
        "backup-copy",
        "grants-setuid",
        "metadata-credentials",
        "sftp-server",
        "runtime-names",
    }
)
#: Path classes of ``paths``/``dest_paths``/``redirects``/``[[files]] paths``.
PATH_CLASSES = ("@root", "@system", "@device")
_WORD_CLASSES = ("@dynamic",)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
RESERVED_IDS = frozenset({"on_unknown", "default", "too-long", "structure"})


def parse_duration(text: str) -> int:
    """Seconds in "90s", "10m", "2h", "1d"; ValueError otherwise."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"must be a duration like 90s, 10m, 2h or 1d, not {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _nonempty_unique(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("must not be empty (an empty list matches nothing)")
    for v in values:
        if not v:
            raise ValueError("entries must be non-empty strings")
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"duplicate entry {v!r}")
        seen.add(v)
    return values


def _classes(allowed: tuple[str, ...]) -> AfterValidator:
    def check(values: list[str]) -> list[str]:
        for v in _nonempty_unique(values):
            if v.startswith("@") and v[1:].isalpha() and v not in allowed:
                raise ValueError(f"unknown class {v!r} (expected one of {', '.join(allowed)})")
        return values

    return AfterValidator(check)


def _tags(values: list[str]) -> list[str]:
    for v in _nonempty_unique(values):
        if v not in KNOWN_TAGS:
            raise ValueError(f"unknown tag {v!r} (expected one of {', '.join(sorted(KNOWN_TAGS))})")
    return values


def _options(values: list[str]) -> list[str]:
    for v in _nonempty_unique(values):
        if not v.startswith(("-", "+")):
            raise ValueError(f"option {v!r} must start with -")
    return values


def _regexes(values: list[str]) -> list[str]:
    for v in _nonempty_unique(values):
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"bad regular expression {v!r}: {exc}") from None
    return values


def _rule_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("must be a non-empty name of letters, digits, '-', '_', '.', ':'")
    if value in RESERVED_IDS:
        raise ValueError(f"{value!r} is a reserved rule id")
    return value


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[str], AfterValidator(_nonempty_unique)]
Paths = Annotated[list[str], _classes(PATH_CLASSES)]
WordPatterns = Annotated[list[str], _classes(PATH_CLASSES + _WORD_CLASSES)]
Tags = Annotated[list[str], AfterValidator(_tags)]
Options = Annotated[list[str], AfterValidator(_options)]
Regexes = Annotated[list[str], AfterValidator(_regexes)]
RuleId = Annotated[str, AfterValidator(_rule_id)]


class _Scoped(Section):
    """Who a rule applies to: groups, users, targets, logins and their ``not_`` forms."""

    groups: Names | None = None
    not_groups: Names | None = None
    users: Names | None = None
    not_users: Names | None = None
    targets: Names | None = None
    not_targets: Names | None = None
    logins: Names | None = None
    not_logins: Names | None = None

    @model_validator(mode="before")
    @classmethod
    def _strings_are_lists(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: _as_list(v) if k in _LISTS else v for k, v in data.items()}
        return data


class _Approvals(Section):
    """How a held command is approved (issue #11); defaults come from ``[approvals]``."""

    approvers: Names | None = None
    approvals_required: Annotated[int, Field(ge=1, le=100)] = 1
    approval_ttl: Annotated[str, AfterValidator(_duration)] | None = None


class RuleModel(_Scoped, _Approvals):
    """One ``[[rules]]`` entry (see the key list at the top of policies.toml)."""

    id: RuleId
    action: Action
    message: str = ""
    program: Names | None = None
    subcommand: Names | None = None
    options: Options | None = None
    options_all: Options | None = None
    not_options: Options | None = None
    args: WordPatterns | None = None
    not_args: WordPatterns | None = None
    operands: WordPatterns | None = None
    paths: Paths | None = None
    not_paths: Paths | None = None
    dest_paths: Paths | None = None
    redirects: Paths | None = None
    overwrites: Paths | None = None
    sql: Regexes | None = None
    tags: Tags | None = None
    not_tags: Tags | None = None
    assigns: Names | None = None

    @model_validator(mode="after")
    def _has_a_matcher(self) -> RuleModel:
        if not any(getattr(self, k) is not None for k in RULE_LIST_KEYS):
            raise ValueError("needs at least one matcher or scope key")
        if self.action != "review" and (
            self.approvers is not None
            or self.approval_ttl is not None
            or "approvals_required" in self.model_fields_set
        ):
            raise ValueError("approvers, approvals_required and approval_ttl need action = review")
        return self


class FileRuleModel(_Scoped, _Approvals):
    """One ``[[files]]`` entry: paths (globs and classes) and the operations it judges."""

    id: RuleId
    action: Action
    message: str = ""
    paths: Paths
    not_paths: Paths | None = None
    ops: Annotated[list[FileOp], AfterValidator(_nonempty_unique)]
    #: which ways of touching a file the rule judges (default: all)
    via: Annotated[list[Via], AfterValidator(_nonempty_unique)] = ["sftp", "scp", "command"]

    @model_validator(mode="after")
    def _approval_only_for_review(self) -> FileRuleModel:
        if self.action != "review" and (self.approvers is not None or self.approval_ttl):
            raise ValueError("approvers and approval_ttl need action = review")
        return self


class ProfileModel(_Scoped):
    """One ``[[profiles]]`` entry: the default action for commands no rule matched, for
    the identities in scope (the most restrictive profile in scope wins)."""

    id: RuleId
    default: Action
    message: str = ""

    @model_validator(mode="after")
    def _scoped(self) -> ProfileModel:
        if not any(getattr(self, k) is not None for k in _SCOPE_KEYS):
            raise ValueError("needs a scope key (groups, users, targets, logins or not_ forms)")
        return self


class PolicySettings(Section):
    """``[policy]``: what is never allowed, limits, and the structure check."""

    on_unknown: Literal["review", "deny"] = "review"
    default: Action = "allow"
    max_command_bytes: Annotated[int, Field(ge=1, le=16 << 20)] = 65536
    parse_timeout_ms: Annotated[int, Field(ge=1, le=5000)] = 150
    cache_size: Annotated[int, Field(ge=0, le=1_000_000)] = 4096
    crosscheck: bool = True
    #: confirm with bash's own parser (bash >= 5.2) that it reads what we read
    structure_check: bool = True
    bash: str = "/bin/bash"
    structure_timeout_ms: Annotated[int, Field(ge=10, le=10000)] = 1000
    #: files: what a file operation no [[files]] rule matched gets
    files_default: Action = "allow"
    #: environment set on every command sent upstream: pagers that cannot run commands
    safe_environment: bool = True


class TestModel(Section):
    """One ``[[tests]]`` entry: a command, who runs it where, the expected action/rule."""

    __test__ = False  # not a pytest class

    command: str
    expect: Action
    user: str = "test"
    groups: list[str] = []
    target: str = "test"
    login: str = "root"
    cwd: str | None = None
    rule: str | None = None
    name: str = ""
    pty: bool = False


_SCOPE_KEYS = (
    "groups",
    "not_groups",
    "users",
    "not_users",
    "targets",
    "not_targets",
    "logins",
    "not_logins",
)
RULE_LIST_KEYS = (
    "program",
    "subcommand",
    "options",
    "options_all",
    "not_options",
    "args",
    "not_args",
    "operands",
    "paths",
    "not_paths",
    "dest_paths",
    "redirects",
    "overwrites",
    "sql",
    "tags",
    "not_tags",
    "assigns",
) + _SCOPE_KEYS
_LISTS = frozenset(RULE_LIST_KEYS) | {"approvers", "ops", "via", "not_paths"}
