"""`bastion-cli`: for people and agents who connect through a bastion, and approvers.

Global options (before the command): ``--bastion HOST:PORT`` (or ``BASTION_ADDR``, or
``bastion = "HOST:PORT"`` in ``~/.config/bastion/cli.toml``), ``-i/--identity KEY`` (its
certificate is ``KEY-cert.pub``; default the first of ~/.ssh/id_ed25519, id_ecdsa,
id_rsa), ``--known-hosts FILE`` (default ~/.ssh/known_hosts). Every verb runs on the
bastion over its SSH port as the reserved user ``bastion-ctl`` with your certificate;
``login`` gets that certificate, as the reserved user ``bastion-login`` with your key
(``bastion.cli.login``).

Exit statuses: 0 done; 1 refused (the sentence says why: unknown id, already decided,
expired, not an approver, your own request); 2 usage or connection error. ``wait``:
0 approved (or already run), 1 denied, 3 expired, 4 cancelled, 5 still pending when
``--timeout`` ran out.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import BastionError
from .common import fail, friendly

__all__ = ["user_main"]

CONFIG_FILE = Path("~/.config/bastion/cli.toml")
WAIT_EXIT = {"approved": 0, "used": 0, "denied": 1, "expired": 3, "cancelled": 4, "pending": 5}


@dataclass
class Options:
    bastion: str | None
    identity: Path | None
    known_hosts: Path | None

    def settings(self) -> Any:
        from ..ssh.client import ClientSettings

        addr = self.bastion or os.environ.get("BASTION_ADDR") or _file_setting("bastion")
        if not addr:
            raise BastionError(
                "which bastion? give --bastion HOST:PORT, set BASTION_ADDR, or put "
                f'bastion = "HOST:PORT" in {CONFIG_FILE}'
            )
        host, _, port = addr.rpartition(":") if ":" in addr else (addr, "", "22")
        if not port.isdigit():
            raise BastionError(f"--bastion {addr!r} must look like bastion.example.com:2222")
        identity = self.identity or _file_path("identity") or default_identity()
        known = self.known_hosts or _file_path("known_hosts") or Path("~/.ssh/known_hosts")
        return ClientSettings(
            host.strip("[]"), int(port), identity.expanduser(), known.expanduser()
        )


def _file_setting(key: str) -> str | None:
    path = CONFIG_FILE.expanduser()
    if not path.exists():
        return None
    try:
        value = tomllib.loads(path.read_text()).get(key)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BastionError(f"{path}: {exc}") from None
    return str(value) if value else None


def _file_path(key: str) -> Path | None:
    value = _file_setting(key)
    return Path(value) if value else None


def default_identity() -> Path:
    """The user's usual key: the first of id_ed25519, id_ecdsa, id_rsa that exists."""
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        path = Path("~/.ssh").expanduser() / name
        if path.exists():
            return path
    return Path("~/.ssh/id_ed25519").expanduser()


def _call(ctx: click.Context, *words: str) -> dict[str, Any]:
    """Run a verb; a refusal ends the command with its sentence and status."""
    from ..ssh.client import call

    options: Options = ctx.obj
    status, body = asyncio.run(call(options.settings(), list(words)))
    if status != 0:
        fail(
            str(body.get("error") or f"the bastion answered with status {status}"),
            1 if status == 1 else 2,
        )
    return body


@click.group(
    context_settings={"auto_envvar_prefix": "BASTION_CLI", "help_option_names": ["-h", "--help"]}
)
@click.option("--bastion", metavar="HOST:PORT", help="The bastion. Default: $BASTION_ADDR.")
@click.option(
    "-i",
    "--identity",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your private key; its certificate is KEY-cert.pub. Default: ~/.ssh/id_ed25519.",
)
@click.option(
    "--known-hosts",
    type=click.Path(dir_okay=False, path_type=Path),
    help="known_hosts with the bastion's @cert-authority line. Default: ~/.ssh/known_hosts.",
)
@click.pass_context
def user_main(
    ctx: click.Context, bastion: str | None, identity: Path | None, known_hosts: Path | None
) -> None:
    """bastion-cli: for people and agents who connect through a bastion, and approvers.

    \b
    Everyone:
      bastion-cli --bastion HOST:PORT login [--device | --token-file F]
      bastion-cli status                      # who, groups, time left
    Approvers:
      bastion-cli requests [--watch]          # what waits for a decision
      bastion-cli show ID
      bastion-cli approve ID [--reason TEXT]
      bastion-cli deny ID --reason TEXT
    Agents (a command held with ssh -o SetEnv=BASTION_WAIT=0 exits 75 with its id):
      bastion-cli wait ID --timeout 600 && ssh ... 'the same command'
    """
    ctx.obj = Options(bastion, identity, known_hosts)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _table(requests: list[dict[str, Any]]) -> str:
    if not requests:
        return "no pending requests"
    rows = [("ID", "AGE", "USER", "GROUPS", "TARGET", "LOGIN", "CWD", "RULE", "EXPIRES", "COMMAND")]
    for r in requests:
        expires = _age(r["expires_in_seconds"]) if r["status"] == "pending" else r["status"]
        rows.append(
            (
                r["id"],
                _age(r["age_seconds"]),
                r["user"],
                ",".join(r["groups"]) or "-",
                r["target"],
                r["login"],
                r["cwd"] or "~",
                r["rule"],
                expires,
                r["command"] if len(r["command"]) <= 60 else r["command"][:57] + "...",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join(cells) + "  " + str(row[-1]))
    return "\n".join(lines)


def _describe(r: dict[str, Any]) -> str:
    lines = [
        f"request   {r['id']} ({r['status']})",
        f"user      {r['user']} (groups {', '.join(r['groups']) or '-'})",
        f"target    {r['login']}@{r['target']}   cwd {r['cwd'] or '~'}",
        f"command   {r['command']}",
        f"rule      {r['rule']}: {r['reason']}",
        f"approvers {' or '.join(r['approvers'])}; {r['approvals_required']} needed; "
        f"so far: {', '.join(a['user'] for a in r['approvals']) or 'none'}",
    ]
    if r["status"] == "pending":
        lines.append(f"expires   in {_age(r['expires_in_seconds'])}")
    if r["decided_by"] or r["decision_reason"]:
        lines.append(f"decided   by {r['decided_by'] or '-'}: {r['decision_reason'] or ''}")
    return "\n".join(lines)


@user_main.command()
@click.option("--all", "show_all", is_flag=True, help="Decided and expired requests too.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list (id, user, target, ...).")
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until Ctrl-C.")
@click.pass_context
@friendly
def requests(ctx: click.Context, show_all: bool, as_json: bool, watch: bool) -> None:
    """Pending approval requests: id, age, user, groups, target, login, cwd, rule,
    expiry, command."""
    words = ["requests", "--all"] if show_all else ["requests"]
    while True:
        found = _call(ctx, *words)["requests"]
        if watch:
            click.clear()
            click.echo(time.strftime("%H:%M:%S ") + f"{len(found)} request(s); Ctrl-C stops")
        click.echo(json.dumps(found, indent=2) if as_json else _table(found))
        if not watch:
            return
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return


@user_main.command()
@click.argument("request_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def show(ctx: click.Context, request_id: str, as_json: bool) -> None:
    """One request in full."""
    r = _call(ctx, "show", request_id)["request"]
    click.echo(json.dumps(r, indent=2) if as_json else _describe(r))


@user_main.command()
@click.argument("request_id", metavar="ID")
@click.option("--reason", default="", help="Why (kept in the audit log).")
@click.pass_context
@friendly
def approve(ctx: click.Context, request_id: str, reason: str) -> None:
    """Approve request ID: its exact command runs once, for its requester."""
    words = ["approve", request_id] + (["--reason", reason] if reason else [])
    r = _call(ctx, *words)["request"]
    if r["status"] == "approved":
        click.echo(f"approved {r['id']}: {r['user']} may now run it once on {r['target']}")
    else:
        got = len(r["approvals"])
        click.echo(f"recorded your approval of {r['id']} ({got} of {r['approvals_required']})")


@user_main.command()
@click.argument("request_id", metavar="ID")
@click.option("--reason", required=True, help="Why (shown to the requester).")
@click.pass_context
@friendly
def deny(ctx: click.Context, request_id: str, reason: str) -> None:
    """Deny request ID; the requester reads your reason."""
    r = _call(ctx, "deny", request_id, "--reason", reason)["request"]
    click.echo(f"denied {r['id']}")


@user_main.command()
@click.argument("request_id", metavar="ID")
@click.option("--timeout", type=float, default=None, help="Give up after S seconds (exit 5).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def wait(ctx: click.Context, request_id: str, timeout: float | None, as_json: bool) -> None:
    """Block until request ID is decided. Exit 0 approved, 1 denied, 3 expired,
    4 cancelled, 5 still pending at --timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = 600.0 if deadline is None else max(0.0, min(600.0, deadline - time.monotonic()))
        r = _call(ctx, "wait", request_id, "--timeout", f"{step:g}")["request"]
        if r["status"] != "pending" or (deadline is not None and time.monotonic() >= deadline):
            break
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        by = f" by {r['decided_by']}" if r["decided_by"] else ""
        why = f": {r['decision_reason']}" if r["decision_reason"] else ""
        click.echo(f"{r['id']} {r['status']}{by}{why}")
    sys.exit(WAIT_EXIT.get(r["status"], 2))


@user_main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def status(ctx: click.Context, as_json: bool) -> None:
    """Who the bastion says you are: user, groups, certificate time left."""
    me = _call(ctx, "whoami")
    if as_json:
        click.echo(json.dumps(me, indent=2))
        return
    click.echo(f"user:    {me['user']} (principals {', '.join(me['principals'])})")
    click.echo(f"groups:  {', '.join(me['groups']) or '-'}")
    click.echo(f"expires: in {_age(me['expires_in_seconds'])}")
    click.echo(f"cert:    {me['key_id']}")


@user_main.command("ssh-config")
@click.option(
    "--bastion",
    "bastion_addr",
    default=None,
    metavar="HOST[:PORT]",
    help="The bastion, e.g. bastion.example.com:2222 (default: the global --bastion).",
)
@click.option(
    "--user",
    default=getpass.getuser,
    show_default="your login name",
    help="Your principal on the bastion.",
)
@click.option("--identity", default="~/.ssh/id_ed25519", show_default=True)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="A target you reach through the bastion (repeat). `ssh bastion` lists yours.",
)
@click.pass_context
@friendly
def ssh_config(
    ctx: click.Context, bastion_addr: str | None, user: str, identity: str, targets: tuple[str, ...]
) -> None:
    """Print an ~/.ssh/config snippet to reach targets through the bastion.

    The Host line for targets must name them as the bastion knows them: the bastion
    reads the target from the name ssh asks it to jump to."""
    addr = bastion_addr or ctx.obj.bastion or os.environ.get("BASTION_ADDR")
    if not addr:
        raise BastionError("which bastion? give --bastion HOST:PORT")
    host, _, port = addr.partition(":")
    names = " ".join(targets) or "web1 db1"
    hint = "" if targets else "# replace web1 db1 with your targets (`ssh bastion` lists them)\n"
    click.echo(f"""Host bastion
    HostName {host}
    Port {port or 22}
    User {user}
    IdentityFile {identity}
    CertificateFile {identity}-cert.pub

{hint}Host {names}
    ProxyJump bastion
    IdentityFile {identity}
    CertificateFile {identity}-cert.pub""")


# ---- login (bastion.cli.login) ----
@user_main.command()
@click.option(
    "--provider", default=None, help="The identity provider, when the bastion has several."
)
@click.option("--device", is_flag=True, help="Device flow: sign in on another device with a code.")
@click.option(
    "--token-file",
    metavar="FILE",
    default=None,
    help="A workload token (agents, CI): a file, or - for stdin. No browser.",
)
@click.option(
    "--ca-fingerprint",
    metavar="SHA256:...",
    default=None,
    help="The bastion's host CA fingerprint (from your administrator), checked before "
    "anything is sent; its @cert-authority line is then added to known_hosts.",
)
@click.option(
    "--ssh-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the ssh config block into FILE (e.g. ~/.ssh/config) instead of printing it.",
)
@click.option("--alias", default="bastion", show_default=True, help="Host alias of the bastion.")
@click.option("--no-browser", is_flag=True, help="Print the sign-in URL; do not open a browser.")
@click.pass_context
@friendly
def login(
    ctx: click.Context,
    provider: str | None,
    device: bool,
    token_file: str | None,
    ca_fingerprint: str | None,
    ssh_config: Path | None,
    alias: str,
    no_browser: bool,
) -> None:
    """Sign in with your organisation's OpenID provider and get a short-lived certificate
    for your key (-i, created if missing) as KEY-cert.pub.

    \b
    bastion-cli --bastion HOST:PORT login --ca-fingerprint SHA256:...   # browser (PKCE)
    bastion-cli --bastion HOST:PORT login --device                      # code on another device
    bastion-cli --bastion HOST:PORT login --token-file /var/run/token   # agents and CI
    """
    from .login import LoginRequest, run_login

    if device and token_file:
        raise click.UsageError("give either --device or --token-file, not both")
    options: Options = ctx.obj
    request = LoginRequest(
        provider=provider,
        device=device,
        token_file=token_file,
        ca_fingerprint=ca_fingerprint,
        ssh_config=ssh_config.expanduser() if ssh_config else None,
        browser=not no_browser,
        alias=alias,
    )
    run_login(options.settings(), request)
