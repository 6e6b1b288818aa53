"""Shared by the OIDC end-to-end tests: a bastion home trusting an identity provider,
and `bastion-cli` run as its own process, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bastion.home import add_target, init_home

from .conftest import LOGIN, World

CLI = [sys.executable, "-c", "from bastion.cli import run_user; run_user()"]
ADMIN = [sys.executable, "-m", "bastion"]


def oidc_home(world: World, home: Path, providers: str, identity: str = "") -> Path:
    """A home whose web1 admits group ci/ops and db1 group dba, trusting ``providers``."""
    init_home(home)
    pinned = world.sshd.host_key_pub.read_text().strip()
    for name, groups in (("web1", ["ci", "ops"]), ("db1", ["dba"])):
        add_target(
            home,
            name,
            host="127.0.0.1",
            port=world.sshd.port,
            login=LOGIN,
            key_file=world.tmp / "target_key",
            allow_groups=groups,
            host_key=pinned,
        )
    config = home / "policies.toml"
    text = config.read_text()
    for line in identity.splitlines():  # set keys of the shipped [identity] table
        key = line.split("=", 1)[0].strip()
        text, count = re.subn(rf"(?m)^{key} = .*$", line.strip(), text, count=1)
        assert count == 1, f"[identity] has no {key}"
    head, sep, rest = text.partition("# ---- command policy ----")
    config.write_text(f"{head}\n{providers}\n{sep}{rest}")
    return home


def host_ca_fingerprint(home: Path) -> str:
    import asyncssh

    return asyncssh.read_public_key(str(home / "keys" / "host_ca.pub")).get_fingerprint()


def cli(
    port: int, user_dir: Path, *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """`bastion-cli --bastion 127.0.0.1:PORT -i DIR/id_ed25519 --known-hosts DIR/kh ...`"""
    base = [
        *CLI,
        "--bastion",
        f"127.0.0.1:{port}",
        "-i",
        str(user_dir / "id_ed25519"),
        "--known-hosts",
        str(user_dir / "known_hosts"),
    ]
    return subprocess.run(
        [*base, *args], input=input, capture_output=True, text=True, timeout=timeout
    )


def ssh(config: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Plain ssh with the block `bastion-cli login --ssh-config` wrote, non-interactive."""
    options = ["-o", "BatchMode=yes", "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes"]
    return subprocess.run(
        ["ssh", "-F", str(config), *options, "-o", "GlobalKnownHostsFile=/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def audit_events(home: Path, event: str) -> list[dict]:
    lines = (home / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == event]
