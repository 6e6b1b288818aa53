"""`bastion policy check` and `bastion policy test`: the command policy from a shell.

Exit status of `check`: 0 allow, 1 deny, 3 review, 2 usage or config error. In --batch
mode the exit status is 0 unless the policy cannot be loaded; each input line gets one
JSON line back, in order, and a bad line gets {"error": ...} instead of a crash.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .config import load_policy_file
from .errors import ConfigError
from .policy import Decision, Policy, PolicyTest, decide
from .policy.cases import load_cases

__all__ = ["policy"]

EXIT = {"allow": 0, "deny": 1, "review": 3}
HOME_HELP = "Bastion home directory (holds policies.toml). Default: $BASTION_HOME or ."


def _load(home: str | None) -> Policy:
    """Load the policy of a home; ConfigError ends the command with one line, exit 2."""
    home = home or os.environ.get("BASTION_HOME") or "."
    try:
        return load_policy_file(home)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _as_json(d: Decision) -> dict[str, Any]:
    return {
        "decision": d.action,
        "rule": d.rule,
        "reason": d.reason,
        "commands": list(d.commands),
        "run": d.run,
        "approvers": list(d.approvers),
        "approvals_required": d.approvals_required,
        "approval_ttl": d.approval_ttl,
    }


def _batch_line(pol: Policy, line: str) -> dict[str, Any]:
    try:
        req = json.loads(line)
    except ValueError as exc:
        return {"error": f"not JSON: {exc}"}
    if not isinstance(req, dict) or not isinstance(req.get("command"), str):
        return {"error": 'expected an object with a string "command"'}
    groups = req.get("groups", [])
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return {"error": '"groups" must be a list of strings'}
    fields = {}
    for key, default in (("user", "user"), ("target", "target"), ("login", "root")):
        value = req.get(key, default)
        if not isinstance(value, str):
            return {"error": f'"{key}" must be a string'}
        fields[key] = value
    cwd = req.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        return {"error": '"cwd" must be a string'}
    pty = req.get("pty", False)
    if not isinstance(pty, bool):
        return {"error": '"pty" must be true or false'}
    d = decide(pol, groups=groups, command=req["command"], cwd=cwd, pty=pty, **fields)
    return _as_json(d)


@click.group("policy")
def policy() -> None:
    """Check commands against the command policy and run its [[tests]]."""


@policy.command("check")
@click.option("--home", default=None, help=HOME_HELP)
@click.option("--user", default="user", show_default=True, help="Who runs the command.")
@click.option("--group", "groups", multiple=True, help="A group of the user (repeatable).")
@click.option("--target", default="target", show_default=True, help="Target name.")
@click.option("--login", default="root", show_default=True, help="Login on the target.")
@click.option("--cwd", default=None, help="Working directory on the target, if known.")
@click.option(
    "--pty",
    is_flag=True,
    help="As if the session had a terminal (ssh -t): pagers can run commands then.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.option(
    "--batch",
    is_flag=True,
    help="Read JSON lines {command, user, groups, target, login[, cwd, pty]} from stdin and "
    "write one JSON decision per line.",
)
@click.argument("command", nargs=-1)
def check(
    home: str | None,
    user: str,
    groups: tuple[str, ...],
    target: str,
    login: str,
    cwd: str | None,
    pty: bool,
    as_json: bool,
    batch: bool,
    command: tuple[str, ...],
) -> None:
    """Decide COMMAND (give it after --) as the policy would.

    Prints the action, the rule that decided, the reason and the normalized commands.
    Exit status: 0 allow, 1 deny, 3 review, 2 error. With --batch: 0, one JSON line per
    input line (a bad line gets {"error": ...}).
    """
    pol = _load(home)
    if batch:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = _batch_line(pol, line)
            except Exception as exc:  # noqa: BLE001 - one bad line never ends the batch
                out = {"error": f"{type(exc).__name__}: {exc}"}
            click.echo(json.dumps(out, ensure_ascii=False))
            sys.stdout.flush()
        return
    if not command:
        click.echo("error: give the command after --, e.g. bastion policy check -- ls -l", err=True)
        sys.exit(2)
    text = command[0] if len(command) == 1 else " ".join(command)
    d = decide(
        pol, user=user, groups=groups, target=target, login=login, command=text, cwd=cwd, pty=pty
    )
    if as_json:
        click.echo(json.dumps(_as_json(d), ensure_ascii=False))
    else:
        click.echo(f"decision: {d.action}")
        click.echo(f"rule:     {d.rule}")
        click.echo(f"reason:   {d.reason}")
        click.echo("commands:")
        for c in d.commands:
            click.echo(f"  {c}")
    sys.exit(EXIT[d.action])


@policy.command("test")
@click.option("--home", default=None, help=HOME_HELP)
@click.option(
    "--cases",
    "case_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A case file (command | expect | rule per line) to run too (repeatable). "
    "The shipped tables: --cases shipped.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print passing tests too.")
def test(home: str | None, case_files: tuple[str, ...], verbose: bool) -> None:
    """Run the [[tests]] of policies.toml and any case files; exit 1 if any fails.

    Runs with a generous analysis time bound, so a busy machine cannot fail a row."""
    pol = _load(home).for_tests()
    cases: list[PolicyTest] = list(pol.tests)
    try:
        cases += load_cases(_case_paths(case_files))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    failed = 0
    for t in cases:
        d, ok = t.run(pol)
        if not ok:
            failed += 1
        if verbose or not ok:
            want = t.expect + (f" ({t.rule})" if t.rule else "")
            label = t.name or f"tests[{t.index}]"
            click.echo(
                f"{'ok  ' if ok else 'FAIL'} {label} {t.command!r}: expected {want}, got {d.reason}"
            )
    click.echo(f"{len(cases) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def _case_paths(names: tuple[str, ...]) -> list[Path]:
    """Case files named on the command line; ``shipped`` is the tables shipped with us."""
    out: list[Path] = []
    for name in names:
        if name == "shipped":
            shipped = Path(str(resources.files("bastion").joinpath("data/cases")))
            out += sorted(shipped.glob("*.cases"))
        else:
            out.append(Path(name))
    return out
