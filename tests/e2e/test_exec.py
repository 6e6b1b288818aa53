"""ssh -J and direct mode through the bastion to a real sshd, driven by the real ssh."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import LOGIN

TARGET = f"{LOGIN}@web1"


def test_exec_output_and_exit_status(world):
    r = world.alice.ssh("-J", "bastion", TARGET, "echo hello; echo oops >&2; exit 0")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello\n"
    assert b"oops\n" in r.stderr and b"hello" not in r.stderr

    r = world.alice.ssh("-J", "bastion", TARGET, "exit 42")
    assert r.returncode == 42


def test_exit_signal_is_relayed(world):
    r = world.alice.ssh("-J", "bastion", TARGET, "kill -TERM $$")
    assert r.returncode == 255  # ssh reports a remote signal as 255
    assert b"bastion:" not in r.stderr


def test_binary_stdin_stdout_round_trip(world):
    data = os.urandom(5 * 1024 * 1024)
    r = world.alice.ssh("-J", "bastion", TARGET, "cat", input=data, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_stdin_eof_reaches_the_command(world):
    r = world.alice.ssh("-J", "bastion", TARGET, "wc -c", input=b"abc")
    assert r.returncode == 0
    assert r.stdout.strip() == b"3"


def test_only_locale_variables_reach_the_target(world):
    """A client may send any variable; only LANG and LC_* go on (LD_PRELOAD, BASH_ENV
    or PATH set by the client would change what the decided command does)."""
    env = "SetEnv=LANG=C.UTF-8 LC_ALL=C.UTF-8 LD_PRELOAD=/tmp/evil.so BASH_ENV=/tmp/x FOO=bar"
    r = world.alice.ssh(
        "-o", env, "-J", "bastion", TARGET,
        'echo "$LANG|$LC_ALL|$LD_PRELOAD|$BASH_ENV|$FOO"',
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"C.UTF-8|C.UTF-8|||\n"


def test_pty(world):
    r = world.alice.ssh("-tt", "-J", "bastion", TARGET, "tty; echo TERM=$TERM")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"/dev/pts/")


def test_pty_when_the_client_has_no_term(world, monkeypatch):
    # OpenSSH sends an empty terminal type when TERM is unset (Ansible under CI): a PTY
    # is still asked for, and the target gives one
    monkeypatch.delenv("TERM", raising=False)
    r = world.alice.ssh("-tt", "-J", "bastion", TARGET, "tty")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"/dev/pts/")


def test_direct_mode(world):
    r = world.alice.ssh("-p", str(world.bastion.port), f"{LOGIN}@web1@127.0.0.1", "echo direct")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"direct\n"


def test_control_master_reuse(world):
    opts = ["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
    try:
        first = world.alice.ssh(*opts, "-J", "bastion", TARGET, "echo one")
        assert first.returncode == 0, first.stderr
        check = world.alice.ssh(*opts, "-O", "check", TARGET)
        assert check.returncode == 0, check.stderr
        second = world.alice.ssh(*opts, "-J", "bastion", TARGET, "echo two")
        assert second.stdout == b"two\n"
    finally:
        world.alice.ssh(*opts, "-O", "exit", TARGET)


def test_shell_request_gets_the_bastions_own_shell(world):
    """No command: the bastion's shell (its script reader without a terminal; the
    line editor is tested in test_shell.py)."""
    r = world.alice.ssh("-T", "-J", "bastion", TARGET, input=b"echo from-the-script\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"from-the-script\n"


def test_jump_mode_session_on_bastion_explains(world):
    r = world.alice.ssh("bastion", "whatever")
    assert r.returncode != 0
    assert b"ssh -J" in r.stderr and b"web1" in r.stderr


def test_cast_is_valid_and_replays_the_output(world):
    marker = "cast-check-" + os.urandom(4).hex()
    r = world.alice.ssh("-J", "bastion", TARGET, f"printf '%s\\n' {marker} héllo; echo e >&2")
    assert r.returncode == 0
    casts = [p for p in world.bastion.casts() if marker in p.read_text()]
    assert len(casts) == 1
    lines = casts[0].read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["bastion"]["user"] == "alice"
    assert header["bastion"]["target"] == "web1" and header["command"].startswith("printf")
    events = [json.loads(line) for line in lines[1:]]
    assert any(e[1] == "m" and e[2].startswith("decision allow") for e in events)
    replay = subprocess.run(["asciinema", "cat", str(casts[0])], capture_output=True, timeout=30)
    assert replay.returncode == 0, replay.stderr
    assert (
        replay.stdout == f"{marker}\nhéllo\ne\n".encode()
        or replay.stdout == f"e\n{marker}\nhéllo\n".encode()
    )


def test_audit_log_ties_decision_to_cast(world):
    r = world.alice.ssh("-J", "bastion", TARGET, "echo audit-me")
    assert r.returncode == 0
    events = [json.loads(line) for line in (world.home / "audit.jsonl").read_text().splitlines()]
    decision = [e for e in events if e["event"] == "decision" and e["command"] == "echo audit-me"]
    assert decision and decision[-1]["decision"] == "allow" and decision[-1]["user"] == "alice"
    channel = [
        e for e in events if e["event"] == "channel" and e.get("session") == decision[-1]["session"]
    ]
    assert channel and channel[0]["cast"].endswith(".cast")


def test_scp_classic_protocol_round_trip(world, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(300_000))
    remote = world.tmp / f"scp-{os.urandom(4).hex()}.bin"
    cfg = ["-F", str(world.alice.config), "-O", "-J", "bastion"]
    up = subprocess.run(
        ["scp", *cfg, str(src), f"{TARGET}:{remote}"], capture_output=True, timeout=60
    )
    assert up.returncode == 0, up.stderr
    assert remote.read_bytes() == src.read_bytes()
    back = tmp_path / "down.bin"
    down = subprocess.run(
        ["scp", *cfg, f"{TARGET}:{remote}", str(back)], capture_output=True, timeout=60
    )
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == src.read_bytes()


def test_many_commands_over_one_control_master_keep_their_status(world):
    """The exit status must reach the client before EOF lets the master close the channel."""
    opts = ["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
    try:
        failures = []
        for i in range(80):
            r = world.alice.ssh(*opts, "-J", "bastion", TARGET, f"echo {i}; exit {i % 3}")
            if r.returncode != i % 3 or r.stdout != f"{i}\n".encode():
                failures.append((i, r.returncode, r.stdout, r.stderr))
        assert failures == []
    finally:
        world.alice.ssh(*opts, "-O", "exit", TARGET)


def test_status_survives_eof_long_before_exit_over_control_master(world):
    """The target's EOF comes well before its exit status (output closed, command runs
    on): the ControlMaster must still get the status instead of reporting 255."""
    opts = ["-o", "ControlMaster=auto", "-o", "ControlPersist=30"]
    try:
        r = world.alice.ssh(
            *opts, "-J", "bastion", TARGET, "echo early; exec >&- 2>&-; sleep 0.5; exit 3"
        )
        assert (r.returncode, r.stdout) == (3, b"early\n"), r.stderr
    finally:
        world.alice.ssh(*opts, "-O", "exit", TARGET)
