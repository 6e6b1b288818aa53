"""The bastion's own verbs (approvals), reached over its SSH port by ``bastion-cli``."""

from __future__ import annotations

from .verbs import VERBS, ControlContext, Reply, request_json, run_verb

__all__ = ["VERBS", "ControlContext", "Reply", "request_json", "run_verb"]
