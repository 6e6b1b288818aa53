"""Logging with context, and where dependencies' warnings go.

Every line carries its context (conn=N, session, user, target) through ``ContextLog``.
Warnings raised by libraries (cryptography deprecating an algorithm asyncssh still
imports, say) are routed into logging by ``capture_warnings`` and shown only in a
DEBUG log: an operator's terminal gets our sentences, never a library's warnings.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

__all__ = ["ContextLog", "capture_warnings", "setup_logging"]


class ContextLog(logging.LoggerAdapter):
    """Prefixes each message with its context string."""

    def __init__(self, name: str, context: str):
        super().__init__(logging.getLogger(name), {})
        self.context = context

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.context} {msg}", kwargs


class _DebugOnly(logging.Filter):
    """Let a captured warning through only when the log shows DEBUG lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def capture_warnings() -> None:
    """Send Python warnings to the ``py.warnings`` logger, visible at DEBUG only.

    Call before importing asyncssh (whose import triggers cryptography's warnings)."""
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # once per location, not once per call
    logger = logging.getLogger("py.warnings")
    if not any(isinstance(f, _DebugOnly) for f in logger.filters):
        logger.addFilter(_DebugOnly())
    if not logging.getLogger().handlers:
        # No logging set up yet (a quick admin command): keep warnings off stderr
        # instead of letting logging's last-resort handler print them.
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    warned = logging.getLogger("py.warnings")
    warned.propagate = True  # the server's log now exists: DEBUG shows them there
    warned.handlers = [h for h in warned.handlers if not isinstance(h, logging.NullHandler)]
