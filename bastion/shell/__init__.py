"""The bastion's own command line: line editor, carried state, history, completion.

Transport-free glue used by ``bastion.flows.shell`` and ``bastion.flows.script``; never
imports asyncssh.
"""

from __future__ import annotations

from .editor import LineEditor, LineTooLong
from .history import ShellHistory, history_path
from .password import PasswordWatch
from .settings import ShellSettings
from .state import ShellState, is_state_line, mentions_state
from .statements import ScriptError, StatementReader

__all__ = [
    "LineEditor",
    "LineTooLong",
    "PasswordWatch",
    "ScriptError",
    "ShellHistory",
    "ShellSettings",
    "ShellState",
    "StatementReader",
    "history_path",
    "is_state_line",
    "mentions_state",
]
