"""The benchmark's world, built in a temp dir: everything on 127.0.0.1, nothing global.

- ``target``: a stock sshd (LocalSshd) accepting the bastion's target key and the
  client's plain key (the direct and OpenSSH ``-J`` paths log in with the plain key);
- ``bastion``: ``python -m bastion serve`` on a free port, target ``web1`` allowed for
  group ``bench``;
- ``osjump``: a second stock sshd, the OpenSSH jump host (``ssh -J osjump``);
- a client key, a certificate for it (principal ``bench``, group ``bench``), a
  known_hosts with the bastion's ``@cert-authority`` line and both sshd host keys, and
  one ssh_config (BatchMode, strict host key checking, no agent, no ControlPath).

The certificate lives in its own file, named only by the bastion hosts' CertificateFile:
ssh would otherwise also offer it to the stock sshds, costing them a refused attempt.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bastion.home import add_target, init_home
from bastion.ssh.certs import generate_key, issue_user_cert, load_private_key, write_private_key
from bastion.sshd import LocalSshd, free_port

__all__ = ["LOGIN", "PATHS", "PRINCIPAL", "TARGET", "World", "build_world"]

LOGIN = getpass.getuser()
PRINCIPAL = "bench"
TARGET = "web1"
#: The three ways to reach the target, in table order.
PATHS = ("bastion", "osjump", "direct")


@dataclass
class World:
    """Handles on everything the figures need; ``close()`` stops every process."""

    root: Path
    home: Path
    target: LocalSshd
    osjump: LocalSshd
    bastion_port: int
    client_dir: Path
    ssh_config: Path
    key: Path
    cert: Path
    known_hosts: Path
    bastion: subprocess.Popen | None = None
    bastion_starts: int = field(default=0)

    @property
    def bastion_pid(self) -> int:
        assert self.bastion is not None
        return self.bastion.pid

    def target_args(self, path: str) -> list[str]:
        """ssh arguments (after -F) that reach the target through ``path``."""
        if path == "bastion":
            return ["-J", "bastion", f"{LOGIN}@{TARGET}"]
        if path == "osjump":
            return ["-J", "osjump", "-p", str(self.target.port), f"{LOGIN}@127.0.0.1"]
        if path == "direct":
            return ["-p", str(self.target.port), f"{LOGIN}@127.0.0.1"]
        raise ValueError(path)

    def ssh(self, path: str, *extra: str) -> list[str]:
        """A full ssh command line for ``path``; ``extra`` go before the destination."""
        return ["ssh", "-F", str(self.ssh_config), *extra, *self.target_args(path)]

    def start_bastion(self, timeout: float = 20.0) -> None:
        """Start (or restart) the bastion subprocess and wait for its SSH banner."""
        self.stop_bastion()
        self.bastion_starts += 1
        log = open(self.root / f"bastion-{self.bastion_starts}.log", "ab")  # noqa: SIM115
        self.bastion = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bastion",
                "serve",
                "--home",
                str(self.home),
                "--listen",
                f"127.0.0.1:{self.bastion_port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bastion.poll() is not None:
                raise RuntimeError(f"bastion exited at start; see {log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.bastion_port), 0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"bastion did not start within {timeout:g} s; see {log.name}")

    def stop_bastion(self) -> None:
        if self.bastion is not None and self.bastion.poll() is None:
            self.bastion.terminate()
            try:
                self.bastion.wait(10)
            except subprocess.TimeoutExpired:
                self.bastion.kill()
                self.bastion.wait(5)
        self.bastion = None

    def close(self) -> None:
        self.stop_bastion()
        self.target.stop()
        self.osjump.stop()


def _set_options(config: Path, options: dict[str, str]) -> None:
    """Apply ``section.key=value`` overrides (TOML values) to the home's policies.toml."""
    import tomlkit

    doc = tomlkit.parse(config.read_text())
    for dotted, value in options.items():
        section, _, key = dotted.rpartition(".")
        table = doc.setdefault(section, tomlkit.table()) if section else doc
        table[key] = tomlkit.parse(f"v = {value}")["v"]
    config.write_text(tomlkit.dumps(doc))


def build_world(root: Path, bastion_options: dict[str, str] | None = None) -> World:
    """Create keys, both sshds, the bastion home and the client files; start everything."""
    home = root / "home"
    init_home(home)
    if bastion_options:
        _set_options(home / "policies.toml", bastion_options)

    target_key = generate_key()
    write_private_key(target_key, root / "target_key", "bench target key")
    client_dir = root / "client"
    client_key = generate_key()
    key_path = client_dir / "id_ed25519"
    write_private_key(client_key, key_path, "bench client key")
    client_pub = client_key.export_public_key("openssh").decode().strip()
    cert_path = client_dir / "bastion-cert.pub"
    cert = issue_user_cert(
        load_private_key(home / "keys" / "user_ca"),
        client_key,
        principals=[PRINCIPAL],
        groups=["bench"],
        ttl=4 * 3600,
    )
    cert.write_certificate(str(cert_path))

    target_pub = target_key.export_public_key("openssh").decode().strip()
    # SHLVL=1 keeps bash from sourcing ~/.bashrc for every command (it does when started
    # by sshd): a slow .bashrc (pyenv init: ~100 ms here) would drown what we measure.
    target = LocalSshd(
        root / "target-sshd", [target_pub, client_pub], extra_config="SetEnv SHLVL=1\n"
    ).start()
    osjump = LocalSshd(
        root / "osjump-sshd", [client_pub], extra_config="AllowTcpForwarding yes\n"
    ).start()
    try:
        add_target(
            home,
            TARGET,
            host="127.0.0.1",
            port=target.port,
            login=LOGIN,
            key_file=root / "target_key",
            allow_groups=["bench"],
            host_key=target.host_key_pub.read_text().strip(),
        )
    except Exception:
        target.stop()
        osjump.stop()
        raise

    host_ca = (home / "keys" / "host_ca.pub").read_text().strip()
    known_hosts = client_dir / "known_hosts"
    known_hosts.write_text(
        f"@cert-authority * {host_ca}\n"
        f"[127.0.0.1]:{target.port} {target.host_key_pub.read_text().strip()}\n"
        f"[127.0.0.1]:{osjump.port} {osjump.host_key_pub.read_text().strip()}\n"
    )
    bastion_port = free_port()
    ssh_config = client_dir / "ssh_config"
    ssh_config.write_text(f"""\
Host bastion
    HostName 127.0.0.1
    Port {bastion_port}
    User {PRINCIPAL}
    CertificateFile {cert_path}

Host {TARGET}
    User {LOGIN}
    CertificateFile {cert_path}

Host osjump
    HostName 127.0.0.1
    Port {osjump.port}
    User {LOGIN}

Host *
    IdentityFile {key_path}
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 15
    ServerAliveInterval 0
    LogLevel ERROR
""")
    world = World(
        root=root,
        home=home,
        target=target,
        osjump=osjump,
        bastion_port=bastion_port,
        client_dir=client_dir,
        ssh_config=ssh_config,
        key=key_path,
        cert=cert_path,
        known_hosts=known_hosts,
    )
    try:
        world.start_bastion()
    except Exception:
        world.close()
        raise
    return world
