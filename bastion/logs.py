"""Logging with context: every line carries conn=N, session, user, target."""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["ContextLog", "setup_logging"]


class ContextLog(logging.LoggerAdapter):
    """Prefixes each message with its context string."""

    def __init__(self, name: str, context: str):
        super().__init__(logging.getLogger(name), {})
        self.context = context

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.context} {msg}", kwargs


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
