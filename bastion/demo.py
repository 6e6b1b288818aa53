"""`bastion demo`: a throwaway target sshd, a bastion in front of it, a certificate.

Everything lives in one directory (a temporary one unless --home is given) and is left
there on exit so the recordings can still be replayed.
"""

from __future__ import annotations

import asyncio
import shlex
import tempfile
from pathlib import Path

import click

from .config import load_config
from .home import add_target, cert_authority_line, init_home
from .logs import setup_logging
from .service import build_services, run_until_stopped
from .ssh.certs import generate_key, issue_user_cert, load_private_key, write_private_key
from .sshd import LocalSshd

__all__ = ["prepare_demo", "run_demo"]


def prepare_demo(home: Path, user: str, bastion_port: int) -> tuple[LocalSshd, Path]:
    """Home, target sshd, client key + certificate + ssh config; returns (sshd, ssh_config)."""
    init_home(home)
    target_key = generate_key()
    write_private_key(target_key, home / "demo-target-key", "demo target key")
    sshd = LocalSshd(
        home / "target-sshd", [target_key.export_public_key("openssh").decode().strip()]
    ).start()
    add_target(
        home,
        "demo",
        host="127.0.0.1",
        port=sshd.port,
        login=user,
        key_file=home / "demo-target-key",
        allow_groups=["demo"],
        host_key=sshd.host_key_pub.read_text().strip(),
    )
    client = home / "client"
    ca = load_private_key(home / "keys" / "user_ca")
    # you (group demo) and a second person who may approve what the policy holds
    for directory, principal, groups in (
        (client, user, ["demo"]),
        (home / "approver", "approver", ["approvers"]),
    ):
        key = generate_key()
        write_private_key(key, directory / "id_ed25519", f"{principal} demo key")
        cert = issue_user_cert(ca, key, principals=[principal], groups=groups, ttl=8 * 3600)
        cert.write_certificate(str(directory / "id_ed25519-cert.pub"))
    line = cert_authority_line(load_config(home, check_keys=False), port=bastion_port)
    for directory in (client, home / "approver"):
        (directory / "known_hosts").write_text(line + "\n")
    ssh_config = client / "ssh_config"
    ssh_config.write_text(f"""\
Host bastion
    HostName 127.0.0.1
    Port {bastion_port}
    User {user}

Host *
    IdentityFile {client}/id_ed25519
    CertificateFile {client}/id_ed25519-cert.pub
    IdentitiesOnly yes
    UserKnownHostsFile {client}/known_hosts
    StrictHostKeyChecking yes
    ControlPath {client}/cm-%C
""")
    return sshd, ssh_config


def run_demo(port: int, home: Path | None, user: str) -> None:
    root = (home or Path(tempfile.mkdtemp(prefix="bastion-demo-"))).resolve()
    if port == 0:
        from .sshd import free_port

        port = free_port()
    sshd, ssh_config = prepare_demo(root, user, port)
    cfg = shlex.quote(str(ssh_config))
    approver = shlex.quote(str(root / "approver"))
    click.echo(f"""
bastion demo is up.
  home:      {root}
  target:    demo (a throwaway sshd on 127.0.0.1:{sshd.port}, reached with the bastion's key)
  bastion:   127.0.0.1:{port}, your certificate: {root}/client/id_ed25519-cert.pub

Try (another terminal):
  ssh -F {cfg} -J bastion {user}@demo 'uname -a; id'
  ssh -F {cfg} -J bastion {user}@demo                    # the bastion's own shell
  ssh -F {cfg} -p {port} {user}@demo@127.0.0.1 'hostname' # direct mode
  bastion policy check --home {shlex.quote(str(root))} -- 'rm -rf /'   # denied, never sent

A command the policy holds waits for someone else's approval, e.g. a command name
known only at run time (harmless: it prints "hi"):
  ssh -F {cfg} -J bastion {user}@demo 'c=echo; $c hi'
and, as the demo's approver, in a third terminal:
  bastion-cli --bastion 127.0.0.1:{port} -i {approver}/id_ed25519 \\
      --known-hosts {approver}/known_hosts requests
  bastion-cli --bastion 127.0.0.1:{port} -i {approver}/id_ed25519 \\
      --known-hosts {approver}/known_hosts approve ID

Recordings land in {root}/sessions/ ; replay one with:
  asciinema play {root}/sessions/YYYY/MM/DD/<session>.cast
Ctrl-C stops the bastion and the target.
""")
    setup_logging("INFO")
    try:
        asyncio.run(run_until_stopped(build_services(load_config(root)), "127.0.0.1", port))
    finally:
        sshd.stop()
        click.echo(f"stopped; the demo home with its recordings is still at {root}")
