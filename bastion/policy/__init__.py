"""Command policy: understand a shell command and decide allow, deny or review.

Pure Python; never imports asyncssh. The SSH layer calls ``decide`` for every command
before anything goes upstream. Pipeline: ``shparse`` (our lenient bash reader, with
bashlex as a cross-check) -> ``normalize`` (wrappers, nested shells, options) ->
``rules`` -> ``decide`` (most restrictive wins). Each module states its limits.
"""

from __future__ import annotations

from typing import Any

from ..tomlsource import TomlSource
from .decide import Decision, Policy, PolicyTest, decide
from .rules import ACTIONS, load_rules

__all__ = ["Decision", "Policy", "PolicyTest", "decide", "load_policy", "POLICY_SECTIONS"]

#: Top-level tables of policies.toml owned by the policy engine.
POLICY_SECTIONS = ("policy", "rules", "tests")

_POLICY_KEYS = {
    "on_unknown": str,
    "default": str,
    "max_command_bytes": int,
    "parse_timeout_ms": int,
    "cache_size": int,
    "crosscheck": bool,
}
_LIMITS = {
    "max_command_bytes": (1, 16 << 20),
    "parse_timeout_ms": (1, 5000),
    "cache_size": (0, 1_000_000),
}
_TEST_KEYS = {
    "command": str,
    "expect": str,
    "user": str,
    "groups": list,
    "target": str,
    "login": str,
    "cwd": str,
    "rule": str,
    "name": str,
}


def _settings(source: TomlSource, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise source.error(("policy",), "must be a table ([policy])")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _POLICY_KEYS.get(key)
        if kind is None:
            raise source.error(
                ("policy", key),
                "unknown key (expected one of " + ", ".join(sorted(_POLICY_KEYS)) + ")",
            )
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise source.error(("policy", key), f"must be a {kind.__name__}")
        if key in _LIMITS:
            low, high = _LIMITS[key]
            if not isinstance(value, int) or not low <= value <= high:
                raise source.error(("policy", key), f"must be between {low} and {high}")
        out[key] = value
    if out.get("on_unknown", "review") not in ("review", "deny"):
        raise source.error(
            ("policy", "on_unknown"),
            "must be review or deny (what we cannot understand is never allowed)",
        )
    if out.get("default", "allow") not in ACTIONS:
        raise source.error(("policy", "default"), "must be one of allow, deny, review")
    return out


def _tests(source: TomlSource, raw: Any) -> list[PolicyTest]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise source.error(("tests",), "must be an array of tables ([[tests]])")
    tests = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise source.error(("tests", i), "must be a table")
        for key, value in entry.items():
            kind = _TEST_KEYS.get(key)
            if kind is None:
                raise source.error(
                    ("tests", i, key),
                    "unknown key (expected one of " + ", ".join(sorted(_TEST_KEYS)) + ")",
                )
            if not isinstance(value, kind):
                raise source.error(("tests", i, key), f"must be a {kind.__name__}")
        if "command" not in entry:
            raise source.error(("tests", i), "missing key command")
        if entry.get("expect") not in ACTIONS:
            raise source.error(("tests", i, "expect"), "must be one of allow, deny, review")
        groups = entry.get("groups", [])
        if not all(isinstance(g, str) for g in groups):
            raise source.error(("tests", i, "groups"), "must be a list of strings")
        tests.append(
            PolicyTest(
                entry["command"],
                entry["expect"],
                entry.get("user", "test"),
                tuple(groups),
                entry.get("target", "test"),
                entry.get("login", "root"),
                entry.get("cwd"),
                entry.get("rule"),
                entry.get("name", ""),
                i,
            )
        )
    return tests


def load_policy(source: TomlSource) -> Policy:
    """Build the policy from [policy], [[rules]] and [[tests]]; ConfigError on any mistake.

    Strict on purpose: a typo in a rule must stop the bastion, not silently allow.
    """
    data = source.data or {}
    settings = _settings(source, data.get("policy"))
    rules = load_rules(source, data.get("rules"))
    tests = _tests(source, data.get("tests"))
    return Policy(rules=rules, tests=tests, **settings)
