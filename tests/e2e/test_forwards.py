"""Port, agent and X11 forwarding: refused by default; a [[forwards]] rule allows one
host:port for one group, relayed by the bastion and audited with the bytes each way.

The destination is a small echo server on 127.0.0.2 started by the test; the bastion is
this module's own (its policies.toml has the rule).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from bastion.home import add_target, init_home
from bastion.sshd import free_port

from .conftest import LOGIN, make_client, start_bastion

RULE = """
[[forwards]]
id = "e2e-echo"
groups = ["fwd"]
to = ["127.0.0.2:*", "localhost:*"]
"""


class Echo:
    """A TCP echo server on 127.0.0.2 for the length of the module."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            while data := conn.recv(65536):
                conn.sendall(data)


@pytest.fixture(scope="module")
def fwd(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fwd")
    home = tmp / "home"
    init_home(home)
    with open(home / "policies.toml", "a") as f:
        f.write(RULE)
    add_target(
        home,
        "web1",
        host="127.0.0.1",
        port=world.sshd.port,
        login=LOGIN,
        key_file=world.tmp / "target_key",
        allow_groups=["fwd", "ops"],
        host_key=world.sshd.host_key_pub.read_text().strip(),
    )
    bastion = start_bastion(home)
    (tmp / "carol").mkdir()
    (tmp / "dave").mkdir()
    carol = make_client(tmp / "carol", home, bastion.port, "carol", ["fwd"])
    dave = make_client(tmp / "dave", home, bastion.port, "dave", ["ops"])
    echo = Echo()
    yield home, carol, dave, echo
    echo.sock.close()
    bastion.stop()


def _audit(home) -> list[dict]:
    return [json.loads(x) for x in (home / "audit.jsonl").read_text().splitlines()]


def test_allowed_forward_works_and_is_audited_with_bytes(fwd):
    home, carol, _, echo = fwd
    payload = os.urandom(100_000)
    r = carol.ssh("-W", f"127.0.0.2:{echo.port}", "bastion", input=payload, timeout=30)
    assert r.stdout == payload, r.stderr
    time.sleep(0.3)
    closed = [e for e in _audit(home) if e["event"] == "forward" and e.get("result") == "closed"]
    assert closed and closed[-1]["rule"] == "e2e-echo"
    assert closed[-1]["bytes_to_dest"] == 100_000 and closed[-1]["bytes_from_dest"] == 100_000


def test_local_forward_with_dash_L(fwd):
    _, carol, _, echo = fwd
    local = free_port()
    proc = subprocess.Popen(
        ["ssh", "-F", str(carol.config), "-N", "-o", "ExitOnForwardFailure=yes",
         "-L", f"127.0.0.1:{local}:127.0.0.2:{echo.port}", "bastion"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", local), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the local forward never listened"
                time.sleep(0.1)
        with conn:
            conn.sendall(b"ping through -L\n")
            assert conn.recv(100) == b"ping through -L\n"
    finally:
        proc.terminate()
        proc.wait(10)


def test_forward_refused_for_another_group_and_another_host(fwd, world):
    home, carol, dave, echo = fwd
    r = dave.ssh("-W", f"127.0.0.2:{echo.port}", "bastion", input=b"x", timeout=30)
    assert r.returncode != 0 and r.stdout == b""
    r = carol.ssh("-W", f"127.0.0.3:{echo.port}", "bastion", input=b"x", timeout=30)
    assert r.returncode != 0 and r.stdout == b""
    refused = [e for e in _audit(home) if e["event"] == "forward" and e.get("result") == "refused"]
    assert any("dave" in e["reason"] and "127.0.0.2" in e["reason"] for e in refused)
    # the shipped default (the shared bastion has no [[forwards]]): refused too
    r = world.alice.ssh("-W", f"127.0.0.2:{echo.port}", "bastion", input=b"x", timeout=30)
    assert r.returncode != 0 and r.stdout == b""


def test_forward_to_a_targets_ssh_port_is_refused_even_if_a_rule_matches(fwd, world):
    home, carol, _, _ = fwd
    r = carol.ssh("-W", f"127.0.0.1:{world.sshd.port}", "bastion", input=b"", timeout=30)
    assert r.returncode != 0
    assert b"SSH-2.0" not in r.stdout


def test_remote_forward_is_refused(fwd):
    _, carol, _, _ = fwd
    r = carol.ssh(
        "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.2:9", "bastion", timeout=30
    )
    assert r.returncode == 255
    assert b"remote port forwarding failed" in r.stderr.lower()


def test_agent_forwarding_never_reaches_the_target(fwd, tmp_path):
    _, carol, _, _ = fwd
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        r = carol.ssh(
            "-o", f"IdentityAgent={sock}", "-A", "-J", "bastion", f"{LOGIN}@web1",
            'echo "agent=[$SSH_AUTH_SOCK]"',
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"agent=[]\n"
    finally:
        agent.terminate()
        agent.wait(5)


def test_a_name_resolving_to_a_targets_ssh_address_is_refused(fwd, world):
    """localhost is allowed by the rule, but resolves to the target's sshd address."""
    home, carol, _, _ = fwd
    r = carol.ssh("-W", f"localhost:{world.sshd.port}", "bastion", input=b"", timeout=30)
    assert b"SSH-2.0" not in r.stdout
    time.sleep(0.3)
    refused = [e for e in _audit(home) if e["event"] == "forward" and e.get("result") == "refused"]
    assert any("target's SSH address" in e["reason"] for e in refused), refused
