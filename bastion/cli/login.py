"""``bastion-cli login``: a token from the OpenID provider -> a certificate for your key.

Steps: use (or create, ed25519) the key; verify the bastion (``--ca-fingerprint`` or
known_hosts); get a token (browser with PKCE, ``--device``, or ``--token-file``); have
the bastion certify the key; write ``KEY-cert.pub``; add the bastion's
``@cert-authority`` line, scoped to its name and your targets' names, to known_hosts;
print (or with ``--ssh-config FILE`` write) the ssh config block for plain ``ssh -J``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import BastionError

__all__ = ["LoginRequest", "config_block", "known_hosts_line", "run_login"]

BEGIN, END = "# >>> bastion-cli login {} >>>", "# <<< bastion-cli login {} <<<"


@dataclass(frozen=True)
class LoginRequest:
    provider: str | None
    device: bool
    token_file: str | None
    ca_fingerprint: str | None
    ssh_config: Path | None
    browser: bool
    alias: str


def _load_or_create_key(path: Path) -> Any:
    import asyncssh

    from ..ssh.certs import generate_key, write_private_key

    if path.exists():
        try:
            return asyncssh.read_private_key(str(path))
        except asyncssh.KeyImportError as exc:
            if "assphrase" not in str(exc) or not sys.stdin.isatty():
                raise BastionError(f"cannot read the key {path}: {exc}") from None
        except OSError as exc:
            raise BastionError(f"cannot read the key {path}: {exc.strerror}") from None
        passphrase = click.prompt(f"Passphrase for {path}", hide_input=True, err=True)
        try:
            return asyncssh.read_private_key(str(path), passphrase)
        except asyncssh.KeyImportError:
            raise BastionError(f"wrong passphrase for {path}") from None
    key = generate_key()
    write_private_key(key, path, f"{os.environ.get('USER', 'user')} bastion key")
    click.echo(f"created a new ed25519 key {path}", err=True)
    return key


def _say(text: str) -> None:
    click.echo(text, err=True)


def _open_browser(url: str) -> bool:
    if sys.platform != "darwin" and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    import webbrowser

    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _host_pattern(name: str, port: int) -> str:
    return name if port == 22 else f"[{name}]:{port}"


def known_hosts_line(host: str, port: int, targets: list[dict[str, Any]], ca_key: str) -> str:
    """``@cert-authority`` for the bastion's name and the targets' names only."""
    names = [_host_pattern(host, port)]
    for t in targets:
        name = str(t.get("name", ""))
        if name:
            names.append(name)
            if int(t.get("port", 22)) != 22:
                names.append(_host_pattern(name, int(t["port"])))
    return f"@cert-authority {','.join(dict.fromkeys(names))} {ca_key}"


def _add_known_hosts(path: Path, line: str) -> None:
    """Replace the line for the same CA key, or append it."""
    ca_key = " ".join(line.split()[2:4])
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [
        existing
        for existing in lines
        if not (existing.startswith("@cert-authority ") and ca_key in existing)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([*kept, line]) + "\n")


def config_block(
    alias: str,
    host: str,
    port: int,
    user: str,
    key: Path,
    known_hosts: Path,
    targets: list[str],
) -> str:
    """The ~/.ssh/config block for ``ssh -J``-free use: ``ssh LOGIN@TARGET``."""
    common = (
        f"    IdentityFile {key}\n"
        f"    CertificateFile {key}-cert.pub\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {known_hosts}\n"
    )
    block = f"Host {alias}\n    HostName {host}\n    Port {port}\n    User {user}\n{common}"
    if targets:
        block += f"\nHost {' '.join(targets)}\n    ProxyJump {alias}\n{common}"
    tag = f"{alias} {host}:{port}"
    return f"{BEGIN.format(tag)}\n{block}{END.format(tag)}\n"


def _write_config(path: Path, block: str) -> None:
    """Replace our earlier block in ``path`` (same markers), or append it."""
    first, last = block.splitlines()[0], block.rstrip("\n").splitlines()[-1]
    text = path.read_text() if path.exists() else ""
    start, end = text.find(first), text.find(last)
    if start >= 0 and end > start:
        text = text[:start] + block + text[end + len(last) + 1 :]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)


async def _token(request: LoginRequest, bastion: Any) -> tuple[str, str | None, str | None]:
    """(token, nonce, provider name) by the flow the user chose."""
    from ..identity.login import DeviceFlow, code_flow, read_token_file
    from ..ssh.login_client import trusted_providers

    if request.token_file:
        return read_token_file(request.token_file), None, request.provider
    providers = [p for p in await trusted_providers(bastion) if p.kind == "user"]
    if request.provider:
        providers = [p for p in providers if p.name == request.provider]
    if not providers:
        wanted = f" named {request.provider!r}" if request.provider else ""
        raise BastionError(f"the bastion has no interactive identity provider{wanted}")
    if len(providers) > 1:
        names = ", ".join(p.name for p in providers)
        raise BastionError(f"choose a provider with --provider ({names})")
    provider = providers[0]
    if request.device:
        flow = await DeviceFlow(provider).start()
        _say(flow.instructions())
        _say("Waiting for you to sign in...")
        tokens = await flow.wait()
    else:
        tokens = await code_flow(
            provider, open_browser=_open_browser if request.browser else lambda _: False, say=_say
        )
    return tokens.id_token, tokens.nonce, provider.name


def run_login(settings: Any, request: LoginRequest) -> None:
    """The whole of ``bastion-cli login``; BastionError for anything that stops it."""
    from ..ssh.login_client import Bastion, request_certificate

    key = _load_or_create_key(settings.identity)
    bastion = Bastion(settings, key, request.ca_fingerprint)

    async def flow() -> dict[str, Any]:
        token, nonce, provider = await _token(request, bastion)
        return await request_certificate(bastion, token, provider=provider, nonce=nonce)

    answer = asyncio.run(flow())
    cert_path = Path(f"{settings.identity}-cert.pub")
    cert_path.write_text(str(answer["certificate"]).strip() + "\n")
    targets = [t for t in answer.get("targets", []) if isinstance(t, dict)]
    if bastion.host_ca is not None:
        ca_key = bastion.host_ca.export_public_key("openssh").decode().strip()
        line = known_hosts_line(settings.host, settings.port, targets, ca_key)
        _add_known_hosts(settings.known_hosts, line)
        _say(f"trusted the bastion's host CA {request.ca_fingerprint} in {settings.known_hosts}")
    left = int(answer["valid_before"] - time.time())
    groups = ", ".join(answer.get("groups", [])) or "none"
    click.echo(
        f"logged in as {answer['user']} (groups {groups}); certificate {cert_path} "
        f"valid for {left // 3600}h{left % 3600 // 60:02d}m"
    )
    block = config_block(
        request.alias,
        settings.host,
        settings.port,
        str(answer["user"]),
        settings.identity,
        settings.known_hosts,
        [str(t["name"]) for t in targets],
    )
    if request.ssh_config:
        _write_config(request.ssh_config, block)
        click.echo(f"wrote the ssh config block to {request.ssh_config}")
    else:
        click.echo("\nAdd this to ~/.ssh/config (or run again with --ssh-config ~/.ssh/config):\n")
        click.echo(block)
