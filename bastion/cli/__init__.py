"""Command lines: `bastion` (server and admin) and `bastion-cli` (users, agents and
approvers). Entry points route library warnings to the log before anything runs."""

from __future__ import annotations

from .admin import main
from .user import user_main

__all__ = ["main", "run", "run_user", "user_main"]


def run() -> None:
    """Entry point of `bastion`: library warnings go to the log, not the terminal."""
    from ..logs import capture_warnings

    capture_warnings()
    main()


def run_user() -> None:
    """Entry point of `bastion-cli`."""
    from ..logs import capture_warnings

    capture_warnings()
    user_main()
