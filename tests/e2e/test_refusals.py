"""What the bastion refuses, and that each refusal says why."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import asyncssh

from bastion.ssh.certs import generate_key, issue_user_cert

from .conftest import LOGIN, make_client

TARGET = f"{LOGIN}@web1"


def _client_with_cert(world, name, cert_for):
    """A client whose certificate is made by cert_for(key) (None: a plain key)."""
    d = world.tmp / name
    d.mkdir(exist_ok=True)
    client = make_client(d, world.home, world.bastion.port, "alice", ["ops"])
    key = asyncssh.read_private_key(str(client.key))
    cert = cert_for(key)
    cert_file = d / "id_ed25519-cert.pub"
    if cert is None:
        cert_file.unlink()
    else:
        cert.write_certificate(str(cert_file))
    return client


def test_plain_key_is_refused(world):
    client = _client_with_cert(world, "plain", lambda key: None)
    r = client.ssh("-J", "bastion", TARGET, "true")
    assert r.returncode == 255
    assert b"plain key is not accepted" in r.stderr
    assert b"bastion-cli login" in r.stderr


def test_expired_certificate_is_refused(world):
    ca = asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    now = int(time.time())

    def expired(key):
        return ca.generate_user_certificate(
            key, "alice", principals=["alice"], valid_after=now - 7200, valid_before=now - 3600
        )

    client = _client_with_cert(world, "expired", expired)
    r = client.ssh("-J", "bastion", TARGET, "true")
    assert r.returncode == 255
    assert b"certificate expired" in r.stderr


def test_certificate_from_another_ca_is_refused(world):
    other_ca = generate_key()
    client = _client_with_cert(
        world,
        "otherca",
        lambda key: issue_user_cert(other_ca, key, principals=["alice"], groups=["ops"], ttl=600),
    )
    r = client.ssh("-J", "bastion", TARGET, "true")
    assert r.returncode == 255
    assert b"CA this bastion does not trust" in r.stderr


def test_wrong_principal_is_refused(world):
    r = world.alice.ssh("-J", "mallory@bastion", TARGET, "true")
    assert r.returncode == 255
    assert b"not a principal of your certificate" in r.stderr


def test_source_address_is_enforced(world):
    ca = asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    client = _client_with_cert(
        world,
        "srcaddr",
        lambda key: issue_user_cert(
            ca, key, principals=["alice"], groups=["ops"], ttl=600, source_address=["10.9.9.0/24"]
        ),
    )
    r = client.ssh("-J", "bastion", TARGET, "true")
    assert r.returncode == 255
    assert b"not valid from address" in r.stderr


def test_unknown_target_is_refused(world):
    r = world.alice.ssh("-J", "bastion", f"{LOGIN}@nosuchhost", "true")
    assert r.returncode == 255
    assert b"unknown target 'nosuchhost'" in r.stderr


def test_no_raw_tcp_tunnel_to_an_address(world):
    # -W asks for a plain TCP forward to the sshd port: there is no target by that name.
    r = world.alice.ssh("-W", f"127.0.0.1:{world.sshd.port}", "bastion", input=b"")
    assert r.returncode == 255
    assert b"is a target's SSH port: use ssh -J" in r.stderr


def test_login_not_allowed_for_groups(world):
    r = world.alice.ssh("-J", "bastion", f"{LOGIN}@db1", "true")
    assert r.returncode == 255
    assert b"no login on db1 is allowed for alice" in r.stderr

    r = world.alice.ssh("-J", "bastion", "nobody@web1", "true")
    assert r.returncode == 255
    assert b"login 'nobody' on web1 is not allowed" in r.stderr

    r = world.alice.ssh("-p", str(world.bastion.port), f"{LOGIN}@db1@127.0.0.1", "true")
    assert r.returncode == 255
    assert b"not allowed" in r.stderr


def test_changed_target_host_key_is_refused(world):
    r = world.alice.ssh("-J", "bastion", f"{LOGIN}@moved", "echo should-not-run")
    assert r.returncode == 255
    assert b"host key changed on moved" in r.stderr
    assert b"should-not-run" not in r.stdout


def test_target_down_is_reported(world):
    r = world.alice.ssh("-J", "bastion", f"{LOGIN}@down", "true")
    assert r.returncode == 255
    assert b"down: connection refused" in r.stderr


def test_local_port_forward_on_inner_connection_is_refused(world):
    r = world.alice.ssh(
        "-J", "bastion", "-o", "ExitOnForwardFailure=yes", "-L", "0:127.0.0.1:22", TARGET, "true"
    )
    assert r.returncode == 255 or b"forward" in r.stderr.lower()


def test_inner_connection_must_use_the_outer_certificate(world):
    """An agent holding two certificates cannot jump as one and act as the other."""
    import asyncio

    ca = asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    alice_key = asyncssh.read_private_key(str(world.alice.key))
    alice_cert = asyncssh.read_certificate(str(world.alice.key) + "-cert.pub")
    bob_key = generate_key()
    bob_cert = issue_user_cert(ca, bob_key, principals=["bob"], groups=["ops", "dba"], ttl=600)
    known = asyncssh.import_known_hosts(
        f"@cert-authority * {(world.home / 'keys' / 'host_ca.pub').read_text()}"
    )

    async def attempt() -> str:
        async with asyncssh.connect(
            "127.0.0.1",
            world.bastion.port,
            username="alice",
            client_keys=[(alice_key, alice_cert)],
            known_hosts=known,
            agent_path=None,
            config=None,
        ) as outer:
            try:
                async with asyncssh.connect(
                    "web1",
                    22,
                    tunnel=outer,
                    username=LOGIN,
                    client_keys=[(bob_key, bob_cert)],
                    known_hosts=known,
                    agent_path=None,
                    config=None,
                ):
                    return "connected"
            except asyncssh.PermissionDenied:
                return "refused"

    assert asyncio.run(attempt()) == "refused"


def test_connection_outliving_its_certificate_opens_no_new_channel(world):
    """ControlPersist keeps a connection past the certificate's end: the command that
    ran while it was valid is fine, the next one is refused, saying why."""
    ca = asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    client = _client_with_cert(
        world,
        "shortlived",
        lambda key: issue_user_cert(ca, key, principals=["alice"], groups=["ops"], ttl=4),
    )
    opts = ["-o", "ControlMaster=auto", "-o", "ControlPersist=60"]
    try:
        ok = client.ssh(*opts, "-J", "bastion", TARGET, "echo fresh")
        assert ok.stdout == b"fresh\n", ok.stderr
        time.sleep(4.5)
        r = client.ssh(*opts, "-J", "bastion", TARGET, "echo stale")
        assert r.returncode == 255 and r.stdout == b""
        assert b"certificate expired" in r.stderr
    finally:
        client.ssh(*opts, "-O", "exit", TARGET)


def _garbage_peer(port: int, payload: bytes) -> bytes:
    """Read the bastion's banner, send ``payload``, wait for the bastion to hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        banner = s.recv(256)
        try:
            s.sendall(payload)
            while s.recv(4096):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass  # dropped with our junk unread: that is the point
        return banner


def test_malformed_peers_do_not_disturb_other_sessions(world):
    """Garbage instead of SSH, a packet with an absurd length, a flood of junk: each
    connection is dropped on its own while a session in progress carries on."""
    running = subprocess.Popen(
        ["ssh", "-F", str(world.alice.config), "-J", "bastion", TARGET, "sleep 2; echo alive"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    port = world.bastion.port
    banner = _garbage_peer(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert banner == b"SSH-2.0-bastion\r\n"  # no library name or version to target
    _garbage_peer(port, b"SSH-2.0-evil\r\n" + b"\xff\xff\xff\xff" + os.urandom(64))
    _garbage_peer(port, b"SSH-2.0-evil\r\n" + os.urandom(256 * 1024))
    out, err = running.communicate(timeout=30)
    assert running.returncode == 0, err
    assert out == b"alive\n"
    r = world.alice.ssh("-J", "bastion", TARGET, "echo still serving")
    assert r.returncode == 0 and r.stdout == b"still serving\n", r.stderr
