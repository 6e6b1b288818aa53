"""End-to-end fixtures: a real OpenSSH sshd target, a real bastion process, and the
real ssh client, all on loopback.

One bastion serves the module's tests (started once, ~1 s); tests that need their own
(kill -9, bad config) start another.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from bastion.config import load_config
from bastion.home import add_target, init_home
from bastion.ssh.certs import generate_key, issue_user_cert, load_private_key, write_private_key
from bastion.sshd import LocalSshd, find_sshd, free_port

try:
    find_sshd()
    _MISSING = "" if shutil.which("ssh") else "the OpenSSH client (ssh)"
except FileNotFoundError:
    _MISSING = "the OpenSSH server (sshd)"
if _MISSING:
    # A missing sshd must not turn the end-to-end suite into a silent pass (CI included).
    if os.environ.get("BASTION_SKIP_E2E") == "1":
        pytest.skip(f"{_MISSING} not found; BASTION_SKIP_E2E=1", allow_module_level=True)
    raise pytest.UsageError(
        f"end-to-end tests need {_MISSING}: run scripts/setup "
        "(or set BASTION_SKIP_E2E=1 to skip them on purpose)"
    )

LOGIN = getpass.getuser()


@dataclass
class Client:
    """A user's key, certificate and ssh config for one bastion."""

    dir: Path
    config: Path
    key: Path

    def ssh(
        self,
        *args: str,
        input: bytes | None = None,
        timeout: float = 60,
        config: Path | None = None,
    ) -> subprocess.CompletedProcess:
        cmd = ["ssh", "-F", str(config or self.config), *args]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )


@dataclass
class Bastion:
    home: Path
    port: int
    proc: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def casts(self) -> list[Path]:
        return sorted((self.home / "sessions").rglob("*.cast"))


def start_bastion(home: Path, port: int | None = None, timeout: float = 15) -> Bastion:
    port = port or free_port()
    log = home / "bastion.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "serve",
            "--home",
            str(home),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bastion exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return Bastion(home, port, proc, log)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"bastion did not start: {log.read_text()}")


def make_client(
    dir: Path, home: Path, port: int, principal: str, groups: list[str], ttl: int = 3600
) -> Client:
    key = generate_key()
    write_private_key(key, dir / "id_ed25519", f"{principal} test key")
    ca = load_private_key(home / "keys" / "user_ca")
    cert = issue_user_cert(ca, key, principals=[principal], groups=groups, ttl=ttl)
    cert.write_certificate(str(dir / "id_ed25519-cert.pub"))
    host_ca = (home / "keys" / "host_ca.pub").read_text().strip()
    (dir / "known_hosts").write_text(f"@cert-authority * {host_ca}\n")
    config = dir / "ssh_config"
    # ControlPath must stay under 108 bytes whatever the test's directory: a short one
    control = tempfile.mkdtemp(prefix="bcm", dir="/tmp")
    config.write_text(f"""\
Host bastion
    HostName 127.0.0.1
    Port {port}
    User {principal}

Host *
    IdentityFile {dir}/id_ed25519
    CertificateFile {dir}/id_ed25519-cert.pub
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {dir}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 15
    ControlPath {control}/%C
""")
    return Client(dir, config, dir / "id_ed25519")


@dataclass
class World:
    home: Path
    sshd: LocalSshd
    bastion: Bastion
    alice: Client
    tmp: Path


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("e2e")
    home = tmp / "home"
    init_home(home)
    target_key = generate_key()
    write_private_key(target_key, tmp / "target_key")
    # The target accepts any variable, so a test sees exactly what the bastion passes on.
    sshd = LocalSshd(
        tmp / "sshd",
        [target_key.export_public_key("openssh").decode().strip()],
        extra_config="AcceptEnv *",
    )
    sshd.start()
    pinned = sshd.host_key_pub.read_text().strip()
    add_target(
        home,
        "web1",
        host="127.0.0.1",
        port=sshd.port,
        login=LOGIN,
        key_file=tmp / "target_key",
        allow_groups=["ops"],
        host_key=pinned,
    )
    add_target(
        home,
        "db1",
        host="127.0.0.1",
        port=sshd.port,
        login=LOGIN,
        key_file=tmp / "target_key",
        allow_groups=["dba"],
        host_key=pinned,
    )
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    add_target(
        home,
        "moved",
        host="127.0.0.1",
        port=sshd.port,
        login=LOGIN,
        key_file=tmp / "target_key",
        allow_groups=["ops"],
        host_key=wrong.strip(),
    )
    add_target(
        home,
        "down",
        host="127.0.0.1",
        port=free_port(),
        login=LOGIN,
        key_file=tmp / "target_key",
        allow_groups=["ops"],
        host_key=pinned,
    )
    bastion = start_bastion(home)
    (tmp / "alice").mkdir()
    alice = make_client(tmp / "alice", home, bastion.port, "alice", ["ops"])
    yield World(home, sshd, bastion, alice, tmp)
    bastion.stop()
    sshd.stop()


@pytest.fixture
def home_copy(world, tmp_path):
    """A copy of the shared world's home (targets, keys), for a bastion of one's own."""
    home = tmp_path / "home"
    shutil.copytree(
        world.home, home, ignore=shutil.ignore_patterns("sessions", "*.jsonl", "state.db*", "*.log")
    )
    # stored target keys are referenced relative to the home, so the copy is complete
    return home


def edit_config(home: Path, old: str, new: str) -> None:
    path = home / "policies.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def bastion_cli(client: Client, port: int, *args: str, timeout: float = 60):
    """Run the real `bastion-cli` as ``client`` against the bastion on ``port``."""
    cmd = [
        sys.executable,
        "-c",
        "import sys; from bastion.cli import run_user; sys.argv[0] = 'bastion-cli'; run_user()",
        "--bastion",
        f"127.0.0.1:{port}",
        "-i",
        str(client.key),
        "--known-hosts",
        str(client.dir / "known_hosts"),
        *args,
    ]
    return subprocess.run(
        cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, text=True
    )


class InProcessBastion:
    """A bastion served by this test process on a thread of its own, so a test can look
    at its insides (pool counters, stores) while real clients use it."""

    def __init__(self, home: Path):
        from bastion.service import build_services

        self.config = load_config(home)
        self.services = build_services(self.config)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        from bastion.service import run_until_stopped

        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self._stop = asyncio.Event()
            ready = asyncio.Event()
            task = asyncio.ensure_future(
                run_until_stopped(self.services, "127.0.0.1", self.port, ready, self._stop)
            )
            await ready.wait()
            self._ready.set()
            await task

        self.loop.run_until_complete(serve())

    def __enter__(self) -> InProcessBastion:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("in-process bastion did not start")
        return self

    def call(self, fn, timeout: float = 10):
        """Run ``fn()`` on the bastion's loop and return its result."""

        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
