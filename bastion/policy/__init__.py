"""Command policy: understand a shell command and decide allow, deny or review.

Pure Python; never imports asyncssh. The SSH layer calls ``decide`` for every command
before anything goes upstream, and sends ``Decision.run`` (never the raw request) when
the action is allow or an approved review. The SFTP flow calls ``decide_file`` for every
file operation. Pipeline: ``shparse`` (our lenient bash reader, with bashlex as a
cross-check and bash's own parser as the structure check) -> ``normalize`` (wrappers,
nested shells, options) -> ``rules`` and ``files`` -> ``decide`` (most restrictive wins).
Each module states its limits.
"""

from __future__ import annotations

from ..schema import check
from ..tomlsource import TomlSource
from .decide import Decision, Policy, PolicyTest, decide
from .filedecide import decide_file
from .files import load_file_rules
from .profiles import load_profiles
from .rules import load_rules
from .schema import PolicySettings, TestModel

__all__ = [
    "Decision",
    "Policy",
    "PolicyTest",
    "decide",
    "decide_file",
    "load_policy",
    "POLICY_SECTIONS",
]

#: Top-level tables of policies.toml owned by the policy engine.
POLICY_SECTIONS = ("policy", "rules", "files", "profiles", "tests")


def _tests(source: TomlSource, raw: object) -> list[PolicyTest]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise source.error(("tests",), "must be an array of tables ([[tests]])")
    tests = []
    for i, entry in enumerate(raw):
        t = check(source, TestModel, entry, ("tests", i))
        tests.append(
            PolicyTest(
                t.command,
                t.expect,
                t.user,
                tuple(t.groups),
                t.target,
                t.login,
                t.cwd,
                t.rule,
                t.name,
                i,
                t.pty,
            )
        )
    return tests


def load_policy(source: TomlSource) -> Policy:
    """Build the policy from its sections of policies.toml; ConfigError on any mistake.

    Strict on purpose: a typo in a rule must stop the bastion, not silently allow.
    """
    data = source.data or {}
    settings = check(source, PolicySettings, data.get("policy"), ("policy",))
    rules = load_rules(source, data.get("rules"))
    files = load_file_rules(source, data.get("files"))
    ids = {r.id for r in rules}
    for f in files:
        if f.id in ids:
            raise source.error(("files", f.index, "id"), f"rule id {f.id!r} is also a [[rules]] id")
    profiles = load_profiles(source, data.get("profiles"))
    tests = _tests(source, data.get("tests"))
    return Policy(
        rules=rules,
        file_rules=files,
        profiles=profiles,
        tests=tests,
        **settings.model_dump(),
    )
