"""What both command lines share: errors as one sentence, the --home option."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import BastionError

__all__ = ["HOME_HELP", "fail", "friendly", "home_option"]

HOME_HELP = "Bastion home directory (keys, policies.toml, sessions/). Default: $BASTION_HOME or ."


def fail(message: str, status: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BastionError into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BastionError as exc:
            fail(str(exc))

    return wrapper


def home_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="BASTION_HOME",
        default=None,
        help=HOME_HELP,
    )(fn)
