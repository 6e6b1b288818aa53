"""`bastion`: the server and its administration (init, targets, certificates, CA,
sessions, policy tools, demo).

Commands only gather options and call into the package; errors are printed as one
sentence (`error: ...`) with exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from pathlib import Path
from typing import Any

import click

from ..config import default_home, load_config, parse_listen
from ..errors import BastionError
from .common import friendly, home_option

__all__ = ["main"]


def _home(home: Path | None) -> Path:
    return home.resolve() if home else default_home()


@click.group(
    context_settings={"auto_envvar_prefix": "BASTION", "help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="bastion")
def main() -> None:
    """bastion: an SSH bastion that understands every command before it runs.

    \b
    Quick start:
      bastion demo                      # throwaway target + bastion, prints the ssh command
    Real setup:
      bastion init --home /srv/bastion
      bastion target add web1 --host 10.0.0.5 --login root --key-file ./id_web1 \\
          --allow-group ops --scan --home /srv/bastion
      bastion cert issue --principal alice --group ops ~/.ssh/id_ed25519.pub --home /srv/bastion
      bastion serve --home /srv/bastion
    """


@main.command()
@home_option
@friendly
def init(home: Path | None) -> None:
    """Create a bastion home: CA keys, host key and certificate, policies.toml,
    sessions/ and the state database. Existing files are kept."""
    from ..home import init_home

    root = _home(home)
    created = init_home(root)
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"bastion home ready: {root}")
    click.echo("next: bastion target add ... ; bastion cert issue ... ; bastion serve")


@main.command()
@home_option
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Address to listen on. Default: [server] listen in policies.toml.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@friendly
def serve(home: Path | None, listen: str | None, log_level: str) -> None:
    """Run the bastion. Refuses to start on any config error or loose key-file mode.

    Logs one line per connection and decision to stderr; SIGTERM closes sessions and
    recordings cleanly."""
    from ..logs import setup_logging
    from ..service import serve as run

    config = load_config(_home(home))
    host, port = config.server.listen_host, config.server.listen_port
    if listen:
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--listen") from None
    setup_logging(log_level)
    run(config, host, port)


@main.group()
def target() -> None:
    """Targets: servers reached through the bastion with a stored key."""


@target.command("add")
@click.argument("name")
@home_option
@click.option("--host", required=True, help="Address the bastion connects to.")
@click.option("--port", default=22, show_default=True, type=click.IntRange(1, 65535))
@click.option("--login", required=True, help="User name on the target.")
@click.option(
    "--key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Private key for that login; copied into the home, 0600.",
)
@click.option(
    "--allow-group",
    "allow_groups",
    multiple=True,
    help="Group that may use this login (repeat; '*' for everyone).",
)
@click.option(
    "--host-key",
    "host_key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The target's public host key file to pin.",
)
@click.option("--scan", is_flag=True, help="Fetch the target's host key now and pin it.")
@click.option(
    "--probe/--no-probe",
    default=True,
    show_default=True,
    help="Log in once with the key to read the login's shell and record it (checked again "
    "at every connect).",
)
@click.option(
    "--shell-opt-in",
    is_flag=True,
    help="Accept a login shell other than bash (zsh, fish, ...): the bastion reads commands "
    "as bash does, so what another shell runs may differ from what was decided.",
)
@friendly
def target_add(
    name: str,
    home: Path | None,
    host: str,
    port: int,
    login: str,
    key_file: Path,
    allow_groups: tuple[str, ...],
    host_key_file: Path | None,
    scan: bool,
    probe: bool,
    shell_opt_in: bool,
) -> None:
    """Add a target (or a login on it): store its key, pin its host key, and record the
    login's shell."""
    from ..home import add_target

    if host_key_file and scan:
        raise click.UsageError("give either --host-key or --scan, not both")
    pinned = None
    if host_key_file:
        pinned = _read_public_key(host_key_file)
    elif scan:
        from ..ssh.upstream import scan_host_key

        key = asyncio.run(scan_host_key(host, port))
        pinned = key.export_public_key("openssh").decode().strip()
        click.echo(f"{host}:{port} host key {key.get_fingerprint()} ({key.get_algorithm()})")
        click.echo("check this fingerprint against the server before trusting it")
    stored = add_target(
        _home(home),
        name,
        host=host,
        port=port,
        login=login,
        key_file=key_file,
        allow_groups=list(allow_groups),
        host_key=pinned,
        shell_opt_in=shell_opt_in,
    )
    if probe:
        _record_shell(_home(home), name, login, shell_opt_in)
    click.echo(
        f"target {name}: login {login} for groups {', '.join(allow_groups) or 'none'}; "
        f"key stored in {stored}"
    )
    if not allow_groups:
        click.echo(
            f"note: no group may use {login}@{name} yet; run this again with --allow-group G "
            "('*' for every user)",
            err=True,
        )


def _record_shell(home: Path, name: str, login: str, opt_in: bool) -> None:
    """Read the login's shell over SSH and write it into the target's entry."""
    from ..home import set_login_shell
    from ..ssh.upstream import read_login_shell, shell_is_read

    config = load_config(home, check_keys=False)
    try:
        shell = asyncio.run(read_login_shell(config.targets[name], login))
    except BastionError as exc:
        click.echo(
            f"note: could not read the login shell yet ({exc}); it is read at connect", err=True
        )
        return
    set_login_shell(home, name, login, shell)
    click.echo(f"{login}@{name}: login shell {shell}")
    if not shell_is_read(shell) and not opt_in:
        click.echo(
            f"warning: {shell} is not bash: the bastion refuses commands for this login "
            "unless you accept the shell with --shell-opt-in",
            err=True,
        )


def _read_public_key(path: Path) -> str:
    import asyncssh

    try:
        key = asyncssh.read_public_key(str(path))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise BastionError(f"cannot read public key {path}: {exc}") from None
    return key.export_public_key("openssh").decode().strip()


@target.command("list")
@home_option
@friendly
def target_list(home: Path | None) -> None:
    """List targets, their logins and who may use them."""
    config = load_config(_home(home), check_keys=False)
    if not config.targets:
        click.echo("no targets; add one with `bastion target add`")
    for t in config.targets.values():
        click.echo(f"{t.name}  {t.host}:{t.port}")
        for login in t.logins.values():
            click.echo(f"  {login.login}: groups {', '.join(login.allow_groups) or 'none'}")


@main.group()
def cert() -> None:
    """User certificates signed by the bastion's user CA."""


@cert.command("issue")
@click.argument("pubkey", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@home_option
@click.option(
    "--principal",
    "principals",
    required=True,
    multiple=True,
    help="User name in the certificate (repeat for more).",
)
@click.option("--group", "groups", multiple=True, help="Group carried in the certificate (repeat).")
@click.option("--ttl", default="8h", show_default=True, help="Validity, e.g. 30m, 8h, 2d.")
@click.option("--source-address", multiple=True, help="Only valid from this address/CIDR (repeat).")
@friendly
def cert_issue(
    pubkey: Path,
    home: Path | None,
    principals: tuple[str, ...],
    groups: tuple[str, ...],
    ttl: str,
    source_address: tuple[str, ...],
) -> None:
    """Sign PUBKEY; writes <key>-cert.pub next to it."""
    import asyncssh

    from ..config import HomePaths
    from ..ssh.certs import issue_user_cert, load_private_key, parse_ttl

    try:
        seconds = parse_ttl(ttl)
        user_key = asyncssh.read_public_key(str(pubkey))
    except (ValueError, OSError, asyncssh.KeyImportError) as exc:
        raise BastionError(str(exc)) from None
    ca = load_private_key(HomePaths(_home(home)).user_ca)
    certificate = issue_user_cert(
        ca,
        user_key,
        principals=list(principals),
        groups=list(groups),
        ttl=seconds,
        source_address=list(source_address) or None,
    )
    _record_admin_certificate(_home(home), certificate, user_key)
    stem = str(pubkey).removesuffix(".pub")
    out = Path(f"{stem}-cert.pub")
    certificate.write_certificate(str(out))
    click.echo(
        f"wrote {out} (principals {', '.join(principals)}; groups "
        f"{', '.join(groups) or 'none'}; valid {ttl})"
    )


# ---- certificate list and revocation (bastion.identity.revocation) ----
def _open_store(home: Path | None):  # type: ignore[no-untyped-def]
    from ..config import HomePaths
    from ..storage import SQLiteStore

    paths = HomePaths(_home(home))
    if not paths.database.exists():
        raise BastionError(f"{paths.database} not found: run `bastion init` first")
    return SQLiteStore(paths.database)


@cert.command("revoke")
@home_option
@click.option("--serial", default=None, help="Revoke the certificate with this serial.")
@click.option("--key-id", default=None, help="Revoke every certificate with this key id.")
@click.option(
    "--subject", default=None, help="Revoke every certificate issued to this OIDC subject."
)
@click.option("--reason", default="", help="Why (the user reads it; kept in the audit log).")
@friendly
def cert_revoke(
    home: Path | None, serial: str | None, key_id: str | None, subject: str | None, reason: str
) -> None:
    """Revoke certificates at once: new connections are refused and open ones closed
    within seconds. --key-id and --subject cover certificates issued until now, not
    those issued later (a returning user can log in again)."""
    from ..identity.revocation import new_revocation

    given = [(k, v) for k, v in (("serial", serial), ("key_id", key_id), ("subject", subject)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --serial, --key-id, --subject")
    try:
        entry = new_revocation(*given[0], reason=reason, by=getpass.getuser())
    except ValueError as exc:
        raise BastionError(str(exc)) from None
    store = _open_store(home)
    try:
        covered = asyncio.run(store.add_revocation(entry))
    finally:
        store.close_now()
    click.echo(
        f"revoked {entry.kind} {entry.value!r}: covers {covered} certificate(s) this bastion "
        "issued (and any other certificate that matches)"
    )


@cert.command("list")
@home_option
@click.option("--all", "show_all", is_flag=True, help="Expired and revoked ones too.")
@click.option("--limit", default=200, show_default=True)
@friendly
def cert_list(home: Path | None, show_all: bool, limit: int) -> None:
    """Certificates this bastion issued (login, keyboard-interactive, cert issue)."""
    import time

    store = _open_store(home)
    try:
        rows = asyncio.run(store.list_certificates(active_only=not show_all, limit=limit))
    finally:
        store.close_now()
    if not rows:
        click.echo("no certificates" if show_all else "no valid certificates (--all: every one)")
    now = time.time()
    for c in rows:
        state = "revoked" if c.revoked else ("expired" if c.expires <= now else "valid")
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.expires))
        click.echo(
            f"{c.serial}  {state:7}  {c.principal}  groups={','.join(c.groups) or '-'}  "
            f"until {until}  {c.source}  key_id={c.key_id!r}"
        )


def _record_admin_certificate(home: Path, certificate: object, user_key: object) -> None:
    """Keep `bastion cert issue`'s certificates in `bastion cert list` too."""
    from ..config import HomePaths
    from ..storage import IssuedCertificate

    if not HomePaths(home).database.exists():
        return
    c: Any = certificate
    record = IssuedCertificate(
        serial=c._serial,
        key_id=c._key_id,
        principal=c.principals[0],
        groups=tuple(c.options.get("groups@bastion", ())),
        subject="",
        issuer="",
        provider="",
        fingerprint=user_key.get_fingerprint(),  # type: ignore[attr-defined]
        issued=time.time(),
        expires=float(c._valid_before),
        source="admin",
    )
    store = _open_store(home)
    try:
        asyncio.run(store.record_certificate(record))
    finally:
        store.close_now()


@main.group()
def ca() -> None:
    """The bastion's certificate authorities."""


@ca.command("known-hosts")
@home_option
@click.option(
    "--pattern",
    default=None,
    help="Host pattern(s) for the line, comma-separated. Default: the bastion's hostnames "
    "(with [name]:port when it does not listen on 22) and every target name.",
)
@click.option("--port", type=click.IntRange(1, 65535), help="Port clients use. Default: listen.")
@friendly
def ca_known_hosts(home: Path | None, pattern: str | None, port: int | None) -> None:
    """Print the @cert-authority line clients add to known_hosts to trust the bastion
    and the target names it presents, and only those names."""
    from ..home import cert_authority_line

    config = load_config(_home(home), check_keys=False)
    click.echo(cert_authority_line(config, port=port, pattern=pattern))


@main.command()
@click.option(
    "--port",
    default=2222,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Bastion port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo home here instead of a temporary directory.",
)
@friendly
def demo(port: int, home: Path | None) -> None:
    """Start a throwaway sshd target, a bastion in front of it and a certificate for
    you, then print the ssh command to try. Ctrl-C stops everything."""
    from ..demo import run_demo

    run_demo(port=port, home=home, user=getpass.getuser())


@main.command("sessions")
@home_option
@click.option("--limit", default=20, show_default=True)
@friendly
def sessions_cmd(home: Path | None, limit: int) -> None:
    """List recent sessions with their decision and cast (replay: asciinema play CAST)."""
    import time

    from ..config import HomePaths
    from ..storage import SQLiteStore

    paths = HomePaths(_home(home))
    if not paths.database.exists():
        raise BastionError(f"{paths.database} not found: run `bastion init` first")
    store = SQLiteStore(paths.database)
    try:
        rows = asyncio.run(store.recent_sessions(limit))
    finally:
        store.close_now()
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.started))
        status = row.exit_status if row.exit_status is not None else "-"
        click.echo(
            f"{when} {row.id} {row.user} -> {row.login}@{row.target} "
            f"[{row.decision or '-'}:{row.rule or '-'}] exit={status} {row.command!r}\n"
            f"    {row.cast_path}"
        )


from ..cli_policy import policy as _policy_group  # noqa: E402 - beside the engine

main.add_command(_policy_group)
