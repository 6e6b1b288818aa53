"""The SSH layer's back doors, closed: each case reproduced with a real client, and a
harmless probe (a file under a temp dir) showing nothing ran that should not."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time

import asyncssh
import paramiko
import pytest

from bastion.ssh.certs import GROUPS_EXTENSION

from .conftest import LOGIN, InProcessBastion, edit_config, make_client

TARGET = f"{LOGIN}@web1"


def _marker(world) -> str:
    return str(world.tmp / f"probe-{os.urandom(4).hex()}")


def _connect_kwargs(client) -> dict:
    key = asyncssh.read_private_key(str(client.key))
    cert = asyncssh.read_certificate(str(client.key) + "-cert.pub")
    known = asyncssh.read_known_hosts(str(client.dir / "known_hosts"))
    return {"client_keys": [(key, cert)], "known_hosts": known, "agent_path": None, "config": None}


async def _direct(world, client, run):
    """Connect in direct mode (login@target) with asyncssh and hand the connection to run."""
    async with asyncssh.connect(
        "127.0.0.1", world.bastion.port, username=f"{LOGIN}@web1", **_connect_kwargs(client)
    ) as conn:
        return await run(conn)


def _paramiko(world, client) -> paramiko.SSHClient:
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    key = paramiko.Ed25519Key.from_private_key_file(str(client.key))
    key.load_certificate(str(client.key) + "-cert.pub")
    ssh.connect(
        "127.0.0.1",
        world.bastion.port,
        username=f"{LOGIN}@web1",
        pkey=key,
        allow_agent=False,
        look_for_keys=False,
        timeout=15,
    )
    return ssh


@pytest.mark.parametrize("command", ["", "   ", "\t\n"])
def test_empty_exec_is_refused_and_never_becomes_a_shell(world, command):
    """asyncssh's client would turn an empty command into a shell request upstream: the
    target's login shell would then run whatever arrives on stdin."""
    marker = _marker(world)
    ssh = _paramiko(world, world.alice)
    try:
        stdin, stdout, stderr = ssh.exec_command(command, timeout=20)
        try:
            stdin.write(f"touch {marker}\nexit\n")  # what a shell would run, were there one
            stdin.channel.shutdown_write()
        except OSError:
            pass  # the bastion refused and closed first
        status = stdout.channel.recv_exit_status()
        err = stderr.read().decode()
    finally:
        ssh.close()
    assert status == 77
    assert "denied (empty-command)" in err
    time.sleep(0.3)
    assert not os.path.exists(marker)


def test_only_utf8_locales_reach_the_target(world):
    """Under Shift-JIS or GBK bash reads some bytes differently from the bastion's reader;
    names that merely start with LANG or LC_ are not locale variables."""
    env = (
        "SetEnv=LANG=ja_JP.SJIS LC_ALL=zh_CN.GBK LANGUAGE=fr LANGFOO=x LC_CTYPE=en_US.UTF-8 "
        "LC_TIME=C LC_FOO=C.UTF-8"
    )
    r = world.alice.ssh(
        "-o", env, "-J", "bastion", TARGET,
        'echo "$LANG|$LC_ALL|$LANGUAGE|$LANGFOO|$LC_CTYPE|$LC_TIME|$LC_FOO"',
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"||||en_US.UTF-8|C|\n"


def test_too_many_variables_fail_only_that_channel(world):
    async def run(conn):
        env = {f"LC_X{i}": "C" for i in range(100)}
        flood = await conn.run("echo should-not-run", env=env, check=False)
        normal = await conn.run("echo fine", check=False)
        return flood, normal

    flood, normal = asyncio.run(_direct(world, world.alice, run))
    assert flood.exit_status == 77 and "too-many-variables" in flood.stderr
    assert "should-not-run" not in flood.stdout
    assert normal.exit_status == 0 and normal.stdout == "fine\n"


def test_nul_bytes_in_variables_and_terminal_type_fail_only_their_own_channel(world):
    """A NUL forwarded to the target's sshd drops the shared upstream connection, and every
    other user's session on it: it never goes upstream."""
    bob_dir = world.tmp / "bob-nul"
    bob_dir.mkdir(exist_ok=True)
    bob = make_client(bob_dir, world.home, world.bastion.port, "bob", ["ops"])
    running = subprocess.Popen(
        ["ssh", "-F", str(bob.config), "-J", "bastion", TARGET, "sleep 2; echo alive"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.7)

    async def run(conn):
        nul_value = await conn.run('echo "[$LANG]"', env={"LANG": "C\x00x"}, check=False)
        nul_name = await conn.run("echo named", env={"LC_\x00ALL": "C"}, check=False)
        try:
            await conn.run("echo term", term_type="xterm\x00evil", check=False)
            nul_term = "accepted"
        except asyncssh.ChannelOpenError as exc:
            nul_term = exc.reason
        return nul_value, nul_name, nul_term

    nul_value, nul_name, nul_term = asyncio.run(_direct(world, world.alice, run))
    assert nul_value.exit_status == 0 and nul_value.stdout == "[]\n"  # dropped, not passed
    assert nul_name.exit_status == 0 and nul_name.stdout == "named\n"
    assert nul_term == "PTY request failed"  # refused on the bastion, never sent on
    out, err = running.communicate(timeout=30)
    assert running.returncode == 0 and out == b"alive\n", err


def test_command_that_is_not_utf8_is_refused_and_audited(world):
    async def run(conn):
        chan, session = await conn.create_session(
            asyncssh.SSHClientSession, b"echo \xff\xfe caf\xe9", encoding=None
        )
        await chan.wait_closed()
        return chan.get_exit_status()

    assert asyncio.run(_direct(world, world.alice, run)) == 77
    events = [json.loads(x) for x in (world.home / "audit.jsonl").read_text().splitlines()]
    assert any(e["event"] == "decision" and e["rule"] == "bad-encoding" for e in events)


def _cert_client(world, name, *, permits, sig_alg=(), ca_key=None):
    """A client whose certificate carries only ``permits`` (and is signed as asked)."""
    d = world.tmp / name
    d.mkdir(exist_ok=True)
    client = make_client(d, world.home, world.bastion.port, "alice", ["ops"])
    key = asyncssh.read_private_key(str(client.key))
    ca = ca_key or asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    now = int(time.time())
    options: dict[str, object] = {f"permit-{p}": True for p in permits}
    options[GROUPS_EXTENSION] = ["ops"]
    cert = ca._generate_certificate(
        key, 1, 7, 1, "test", ["alice"], now - 60, now + 600, options, sig_alg, ()
    )
    cert.write_certificate(str(client.key) + "-cert.pub")
    return client


def test_certificate_without_permit_pty_gets_no_terminal(world):
    """As with OpenSSH's sshd: the PTY request fails, so ssh -t gives up, and a command
    without -t runs with no terminal."""
    client = _cert_client(world, "nopty", permits=["port-forwarding"])
    marker = _marker(world)
    r = client.ssh("-tt", "-J", "bastion", TARGET, f"touch {marker}")
    assert r.returncode == 255 and b"PTY allocation request failed" in r.stderr
    assert not os.path.exists(marker)
    plain = client.ssh("-J", "bastion", TARGET, "tty; true")
    assert plain.returncode == 0 and b"not a tty" in plain.stdout


def test_certificate_without_port_forwarding_cannot_jump(world):
    client = _cert_client(world, "nofwd", permits=["pty"])
    r = client.ssh("-o", "LogLevel=ERROR", "-J", "bastion", TARGET, "echo should-not-run")
    assert r.returncode == 255 and b"should-not-run" not in r.stdout
    assert b"does not permit port forwarding" in r.stderr


def test_ssh_rsa_sha1_ca_signature_is_refused(world, tmp_path):
    rsa_ca = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    # the bastion's own CA is ed25519; trust an RSA CA through a bastion of our own
    home = tmp_path / "home"
    import shutil

    shutil.copytree(
        world.home, home, ignore=shutil.ignore_patterns("sessions", "*.jsonl", "state.db*", "*.log")
    )
    pub = rsa_ca.export_public_key("openssh").decode().strip()
    with open(home / "policies.toml", "a") as f:
        f.write(f'\n[[trusted_ca]]\nname = "legacy"\npublic_key = "{pub}"\n')
    with InProcessBastion(home) as bastion:
        (tmp_path / "c").mkdir()
        client = make_client(tmp_path / "c", home, bastion.port, "alice", ["ops"])
        key = asyncssh.read_private_key(str(client.key))
        now = int(time.time())
        options = {"permit-pty": True, "permit-port-forwarding": True, GROUPS_EXTENSION: ["ops"]}
        for alg, ok in (("ssh-rsa", False), ("rsa-sha2-512", True)):
            cert = rsa_ca._generate_certificate(
                key, 1, 9, 1, "rsa", ["alice"], now - 60, now + 600, options, alg, ()
            )
            cert.write_certificate(str(client.key) + "-cert.pub")
            r = client.ssh("-J", "bastion", TARGET, "echo in")
            if ok:
                assert r.returncode == 0 and r.stdout == b"in\n", r.stderr
            else:
                assert r.returncode == 255 and b"ssh-rsa (RSA with SHA-1)" in r.stderr


def test_refusal_is_one_sentence_without_a_contradiction(world):
    """An expired certificate is refused; the client then offers the bare key: the user
    reads why the certificate was refused, not a second, contradicting line."""
    ca = asyncssh.read_private_key(str(world.home / "keys" / "user_ca"))
    d = world.tmp / "expired-once"
    d.mkdir(exist_ok=True)
    client = make_client(d, world.home, world.bastion.port, "alice", ["ops"])
    key = asyncssh.read_private_key(str(client.key))
    now = int(time.time())
    ca.generate_user_certificate(
        key, "alice", principals=["alice"], valid_after=now - 7200, valid_before=now - 3600
    ).write_certificate(str(client.key) + "-cert.pub")
    r = client.ssh("-J", "bastion", TARGET, "true")
    lines = [x for x in r.stderr.decode().splitlines() if x.startswith("bastion:")]
    assert lines == ["bastion: certificate expired: run `bastion-cli login` for a fresh one"]


def test_refused_jump_is_explained_even_at_log_level_error(world):
    r = world.alice.ssh("-o", "LogLevel=ERROR", "-J", "bastion", f"{LOGIN}@db1", "true")
    assert r.returncode == 255
    assert b"no login on db1 is allowed for alice" in r.stderr


def test_local_forward_through_the_bastion_carries_nothing(world):
    """-L on the inner connection: the listener is the client's, the bastion refuses the
    channel, so a connection to it never reaches the target's sshd."""
    from bastion.sshd import free_port

    port = free_port()
    ssh = subprocess.Popen(
        [
            "ssh", "-F", str(world.alice.config), "-N", "-J", "bastion",
            "-L", f"{port}:127.0.0.1:{world.sshd.port}", TARGET,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        import socket

        deadline = time.monotonic() + 15
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "the client never listened"
                time.sleep(0.1)
        with s:
            s.settimeout(5)
            data = s.recv(64)
        assert not data.startswith(b"SSH-")  # the target's sshd would greet us
    finally:
        ssh.terminate()
        try:
            _, err = ssh.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            ssh.kill()
            _, err = ssh.communicate(timeout=10)
    assert b"port forwarding is not allowed" in err


def test_clients_killed_mid_open_leave_nothing_behind(home_copy):
    """50 clients disconnect while their upstream channel opens: every lease is returned
    and, once idle, the pooled connections close."""
    edit_config(home_copy, "sessions_per_identity = 64", "sessions_per_identity = 100")
    edit_config(home_copy, "upstream_idle_seconds = 60", "upstream_idle_seconds = 1")
    with InProcessBastion(home_copy) as bastion:
        client_dir = home_copy.parent / "killer"
        client_dir.mkdir()
        client = make_client(client_dir, home_copy, bastion.port, "alice", ["ops"])
        procs = [
            subprocess.Popen(
                [
                    "ssh",
                    "-F",
                    str(client.config),
                    "-p",
                    str(bastion.port),
                    f"{LOGIN}@web1@127.0.0.1",
                    "sleep 5",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for _ in range(50)
        ]
        for proc in random.sample(procs, len(procs)):
            time.sleep(random.uniform(0, 0.02))
            proc.kill()
        for proc in procs:
            proc.wait()
        pool = bastion.services.pool
        for _ in range(100):
            if (
                bastion.call(lambda: pool.open_channels) == 0
                and bastion.call(lambda: pool.open_connections) == 0
            ):
                break
            time.sleep(0.1)
        assert bastion.call(lambda: pool.open_channels) == 0
        assert bastion.call(lambda: pool.open_connections) == 0
        assert bastion.call(lambda: dict(bastion.services.sessions_by_user)) == {}
        assert bastion.call(lambda: dict(pool._shares)) == {}


def test_limits_refuse_clearly_and_one_identity_cannot_starve_another(home_copy):
    edit_config(home_copy, "channels_per_connection = 32", "channels_per_connection = 3")
    edit_config(home_copy, "sessions_per_identity = 64", "sessions_per_identity = 8")
    edit_config(
        home_copy, "upstream_channels_per_identity = 16", "upstream_channels_per_identity = 2"
    )
    with InProcessBastion(home_copy) as bastion:
        dirs = {}
        for name in ("alice", "bob"):
            dirs[name] = home_copy.parent / f"lim-{name}"
            dirs[name].mkdir()
        alice = make_client(dirs["alice"], home_copy, bastion.port, "alice", ["ops"])
        bob = make_client(dirs["bob"], home_copy, bastion.port, "bob", ["ops"])

        async def per_connection():
            async with asyncssh.connect(
                "127.0.0.1", bastion.port, username=f"{LOGIN}@web1", **_connect_kwargs(alice)
            ) as conn:
                return await asyncio.gather(
                    *(conn.run("sleep 1; echo ok", check=False) for _ in range(4))
                )

        results = asyncio.run(per_connection())
        refused = [r for r in results if r.exit_status == 255]
        assert len(refused) == 1 and "too many channels on one connection" in refused[0].stderr

        # alice keeps 6 commands waiting on their stdin (more than her 2 upstream turns:
        # 4 of them queue); bob is not queued behind them: his echo returns while all of
        # hers are still there, then hers finish in turn once fed
        alice_procs = [
            subprocess.Popen(
                [
                    "ssh",
                    "-F",
                    str(alice.config),
                    "-p",
                    str(bastion.port),
                    f"{LOGIN}@web1@127.0.0.1",
                    "read x; echo alice-$x",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for _ in range(6)
        ]
        for _ in range(100):
            if bastion.call(lambda: bastion.services.pool.open_channels) >= 2:
                break
            time.sleep(0.1)
        r = bob.ssh("-p", str(bastion.port), f"{LOGIN}@web1@127.0.0.1", "echo bob")
        assert r.returncode == 0 and r.stdout == b"bob\n", r.stderr
        assert all(p.poll() is None for p in alice_procs)
        for p in alice_procs:  # feed all first: the queued ones start as turns free up
            assert p.stdin is not None
            p.stdin.write(b"done\n")
            p.stdin.close()
        outputs = []
        for p in alice_procs:
            assert p.stdout is not None
            outputs.append(p.stdout.read())
            p.wait(60)
        assert outputs == [b"alice-done\n"] * 6  # queued, not refused

        over = [
            subprocess.Popen(
                [
                    "ssh",
                    "-F",
                    str(alice.config),
                    "-p",
                    str(bastion.port),
                    f"{LOGIN}@web1@127.0.0.1",
                    "sleep 2",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )  # fmt: skip
            for _ in range(10)
        ]
        errs = [p.communicate(timeout=60)[1] for p in over]
        assert sum(b"too many sessions at once for alice" in e for e in errs) == 2
