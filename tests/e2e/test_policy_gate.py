"""Every command passes the policy before anything reaches the target."""

from __future__ import annotations

import json
import os

from .conftest import LOGIN

TARGET = f"{LOGIN}@web1"
NO_WAIT = ("-o", "SetEnv=BASTION_WAIT=0")  # a held command ends at once with 75


def _marker(world) -> str:
    return str(world.tmp / f"ran-{os.urandom(4).hex()}")


def test_denied_command_never_reaches_the_target(world):
    marker = _marker(world)
    r = world.alice.ssh("-J", "bastion", TARGET, f"touch {marker}; rm -rf /")
    assert r.returncode == 77
    line = r.stderr.decode()
    assert line.startswith("bastion: denied (destructive-rm): rm -r -f /"), line
    assert line.count("destructive-rm") == 1 and line.count("\n") == 1, line
    assert not os.path.exists(marker)


def test_denied_in_direct_mode_and_over_control_master(world):
    marker = _marker(world)
    r = world.alice.ssh(
        "-p",
        str(world.bastion.port),
        f"{LOGIN}@web1@127.0.0.1",
        f"touch {marker} && mkfs.ext4 /dev/sda",
    )
    assert r.returncode == 77 and not os.path.exists(marker)

    opts = ["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
    try:
        ok = world.alice.ssh(*opts, "-J", "bastion", TARGET, "echo ok")
        assert ok.stdout == b"ok\n"
        r = world.alice.ssh(*opts, "-J", "bastion", TARGET, f"touch {marker}; shutdown -h now")
        assert r.returncode == 77 and not os.path.exists(marker)
    finally:
        world.alice.ssh(*opts, "-O", "exit", TARGET)


def test_review_is_held_and_not_run(world):
    marker = _marker(world)
    r = world.alice.ssh(*NO_WAIT, "-J", "bastion", TARGET, f"touch {marker}; sudo -i")
    assert r.returncode == 75
    assert r.stderr.startswith(b"bastion: held for approval (root-shell): "), r.stderr
    assert r.stderr.count(b"held for approval") == 1, r.stderr
    assert not os.path.exists(marker)


def test_disguised_destructive_commands_are_stopped(world):
    for command in [
        "r''m -rf /",
        "/usr/bin/../bin/rm -r -f /",
        "bash -c 'rm -rf /'",
        "echo cm0gLXJmIC8= | base64 -d | sh",
        "eval \"$(printf 'rm -rf /')\"",
    ]:
        r = world.alice.ssh(*NO_WAIT, "-J", "bastion", TARGET, command)
        assert r.returncode in (75, 77), (command, r.stderr)


def test_decision_is_recorded_in_cast_and_audit(world):
    r = world.alice.ssh("-J", "bastion", TARGET, "rm -rf / # audit-deny")
    assert r.returncode == 77
    events = [json.loads(line) for line in (world.home / "audit.jsonl").read_text().splitlines()]
    decision = [
        e for e in events if e["event"] == "decision" and e["command"] == "rm -rf / # audit-deny"
    ][-1]
    assert decision["decision"] == "deny" and decision["rule"]
    cast = [
        e for e in events if e["event"] == "channel" and e.get("session") == decision["session"]
    ][0]["cast"]
    lines = open(cast, encoding="utf-8").read().splitlines()
    marks = [json.loads(line)[2] for line in lines[1:] if json.loads(line)[1] == "m"]
    assert any(m.startswith("decision deny") for m in marks)
    outputs = "".join(json.loads(line)[2] for line in lines[1:] if json.loads(line)[1] == "o")
    assert "bastion: denied" in outputs  # the cast shows what the user saw


def test_nul_byte_in_command_is_denied(world):
    """sshd would cut the command at the NUL and run only its first part."""
    import asyncio

    import asyncssh

    key = asyncssh.read_private_key(str(world.alice.key))
    cert = asyncssh.read_certificate(str(world.alice.key) + "-cert.pub")
    known = asyncssh.import_known_hosts(
        f"@cert-authority * {(world.home / 'keys' / 'host_ca.pub').read_text()}"
    )
    marker = _marker(world)

    async def run():
        async with asyncssh.connect(
            "127.0.0.1",
            world.bastion.port,
            username=f"{LOGIN}@web1",
            client_keys=[(key, cert)],
            known_hosts=known,
            agent_path=None,
            config=None,
        ) as conn:
            return await conn.run(f"touch {marker}\x00/../x", check=False)

    result = asyncio.run(run())
    assert result.exit_status == 77
    assert "nul-byte" in result.stderr
    assert not os.path.exists(marker)


def test_a_pager_runs_without_a_terminal_and_is_held_with_one(world):
    """less reads `!cmd` from the terminal: with ssh -t it could run anything unseen."""
    plain = world.alice.ssh("-J", "bastion", TARGET, "less /etc/hostname")
    assert plain.returncode == 0 and plain.stdout, plain.stderr
    tty = world.alice.ssh("-tt", *NO_WAIT, "-J", "bastion", TARGET, "less /etc/hostname")
    assert tty.returncode == 75, tty.stderr
    assert b"held for approval (terminal-program)" in tty.stdout + tty.stderr
