"""A throwaway OpenSSH sshd on loopback: the demo's target, and the tests' target.

It runs the system's real sshd (Debian's openssh-server) with a generated config in
its own directory; nothing global is touched except /run/sshd, which sshd needs when
started as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["LocalSshd", "find_sshd", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_sshd() -> str:
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        "OpenSSH sshd not found: install it (Debian: apt-get install openssh-server)"
    )


class LocalSshd:
    """sshd on 127.0.0.1:<port> accepting the given public keys for the current user."""

    def __init__(
        self,
        directory: Path,
        authorized_keys: list[str],
        port: int | None = None,
        extra_config: str = "",
    ):
        self.dir = directory
        self.port = port or free_port()
        self.authorized_keys = authorized_keys
        self.extra_config = extra_config
        self.proc: subprocess.Popen | None = None

    @property
    def host_key_pub(self) -> Path:
        return self.dir / "ssh_host_ed25519_key.pub"

    def start(self, timeout: float = 10.0) -> LocalSshd:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self.dir / "ssh_host_ed25519_key"
        if not key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        (self.dir / "authorized_keys").write_text("\n".join(self.authorized_keys) + "\n")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.dir / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {key}
PidFile {self.dir}/sshd.pid
AuthorizedKeysFile {self.dir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AcceptEnv LANG LC_*
# bash run by sshd reads ~/.bashrc unless it is a nested shell: SHLVL=1 makes it one,
# so this throwaway target does not run the login's ~/.bashrc (here: `pyenv init`, ~0.3 s
# and a lock file) before every command of the tests, the demo and the benchmarks
SetEnv SHLVL=1
MaxStartups 200:30:400
MaxSessions 10
LogLevel ERROR
Subsystem sftp internal-sftp
{self.extra_config}
""")
        self.proc = subprocess.Popen(
            [find_sshd(), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sshd.log", "ab"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.dir / "sshd.log").read_text(errors="replace")
                raise RuntimeError(f"sshd exited at start: {log.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None
