"""The interactive shell's settings, as the flows use them ([shell] in policies.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ShellSettings"]


@dataclass(frozen=True)
class ShellSettings:
    history_dir: Path
    history_size: int = 1000
    idle_timeout: float = 3600.0  # seconds at the prompt without a key; 0: never
    record_input: bool = False  # keystrokes in the cast ("i"), never while a password is asked
    side_timeout: float = 10.0  # a side exec (cd check, completion) gives up after this
