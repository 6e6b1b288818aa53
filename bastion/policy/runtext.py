"""The text the bastion sends upstream for a decided command (``Decision.run``).

What runs is what was decided: the command's own bytes (bash's reading of them was
confirmed by ``structure``). When the command holds a program that starts a pager or an
editor by itself (``terminal``: ``systemctl status``, ``journalctl``, ``git log``,
``man``, ``crontab -e``, ``git commit``), a fixed line comes first that takes the escape
away: pagers become ``cat`` and, where a ``less`` still runs, it runs in secure mode (no
``!cmd``, no ``v`` editor, no log files); editors started by a program fail instead of
opening.

Limits: ``sudo``, ``su``, ``env -i`` and the like start the program with a new
environment, so the prefix does not reach it; the normalizer holds those pager and
editor starters under such wrappers when a terminal is attached (``takes-terminal``).
The prefix is plain assignments followed by the command on its own line, so the command
is parsed by bash exactly as it was decided (a here-document or a trailing comment in it
is unaffected).
"""

from __future__ import annotations

__all__ = ["SAFE_ENVIRONMENT", "run_text"]

#: Variables that make pagers and program-started editors harmless.
SAFE_ENVIRONMENT = (
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("MANPAGER", "cat"),
    ("SYSTEMD_PAGER", "cat"),
    ("SYSTEMD_PAGERSECURE", "1"),
    ("LESSSECURE", "1"),
    ("AWS_PAGER", ""),
    ("PSQL_PAGER", "cat"),
    ("GH_PAGER", "cat"),
    ("GLAB_PAGER", "cat"),
    ("BAT_PAGER", "cat"),
    ("DELTA_PAGER", "cat"),
    ("EDITOR", "false"),
    ("VISUAL", "false"),
    ("GIT_EDITOR", "false"),
    ("GIT_SEQUENCE_EDITOR", "false"),
    ("SYSTEMD_EDITOR", "false"),
    ("KUBE_EDITOR", "false"),
    ("FCEDIT", "false"),
)
_PREFIX = "export " + " ".join(f"{k}={v}" if v else f"{k}=''" for k, v in SAFE_ENVIRONMENT)


def run_text(command: str, safe_environment: bool = True) -> str:
    """The text to send upstream for ``command``: with the safe environment first when
    ``safe_environment`` (see the module doc)."""
    if not safe_environment:
        return command
    return _PREFIX + "\n" + command
