"""Start-up refusals on bad config, and recordings that survive SIGTERM and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import LOGIN, edit_config, make_client, start_bastion


def _serve(home, timeout=20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "serve", "--home", str(home), "--listen", "127.0.0.1:0"],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _edit(home, old, new):
    edit_config(home, old, new)


def test_syntax_error_names_file_and_line(home_copy):
    _edit(home_copy, "[server]", "[server")
    r = _serve(home_copy)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "policies.toml:" in err and "syntax" in err.lower()
    assert "Traceback" not in err


def test_unknown_key_is_named(home_copy):
    _edit(home_copy, "connect_timeout = 10", "connect_timeout = 10\nconect_timeout = 3")
    r = _serve(home_copy)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "server.conect_timeout" in err and "unknown key" in err
    line = [
        n
        for n, text in enumerate((home_copy / "policies.toml").read_text().splitlines(), 1)
        if text.startswith("conect_timeout")
    ][0]
    assert f"policies.toml:{line}:" in err


def test_wrong_type_is_named(home_copy):
    _edit(home_copy, "connect_timeout = 10", 'connect_timeout = "ten"')
    r = _serve(home_copy)
    assert r.returncode != 0
    assert "server.connect_timeout" in r.stderr.decode()


def test_missing_key_file_is_named(home_copy):
    os.unlink(home_copy / "keys" / "targets" / f"web1-{LOGIN}")
    r = _serve(home_copy)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "web1" in err and "not found" in err


def test_key_file_readable_by_others_is_refused(home_copy):
    os.chmod(home_copy / "keys" / "targets" / f"web1-{LOGIN}", 0o644)
    r = _serve(home_copy)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "readable by others" in err and "chmod 600" in err

    os.chmod(home_copy / "keys" / "targets" / f"web1-{LOGIN}", 0o600)
    os.chmod(home_copy / "keys" / "user_ca", 0o640)
    r = _serve(home_copy)
    assert r.returncode != 0 and "user_ca" in r.stderr.decode()


def _assert_casts_parse(bastion) -> list[list]:
    casts = bastion.casts()
    assert casts
    all_events = []
    for cast in casts:
        lines = cast.read_text().splitlines()
        header = json.loads(lines[0])
        assert header["version"] == 2
        events = [json.loads(line) for line in lines[1:]]
        for event in events:
            assert isinstance(event[0], float | int) and event[1] in "oirm"
        replay = subprocess.run(["asciinema", "cat", str(cast)], capture_output=True, timeout=30)
        assert replay.returncode == 0, replay.stderr
        all_events.append(events)
    return all_events


def _stream_then(home_copy, tmp_path, stop):
    bastion = start_bastion(home_copy)
    (tmp_path / "c").mkdir()
    client = make_client(tmp_path / "c", home_copy, bastion.port, "alice", ["ops"])
    proc = subprocess.Popen(
        [
            "ssh",
            "-F",
            str(client.config),
            "-J",
            "bastion",
            f"{LOGIN}@web1",
            "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); sleep 0.01; done",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(b"line"), proc.stderr.read() if proc.stderr else b""
        time.sleep(0.3)
        stop(bastion)
        proc.wait(30)
    finally:
        bastion.stop(signal.SIGKILL)  # no-op when already stopped; never leak a server
        proc.kill()
    return bastion


def test_kill_9_leaves_every_cast_parseable(home_copy, tmp_path):
    bastion = _stream_then(home_copy, tmp_path, lambda b: b.stop(signal.SIGKILL))
    events = _assert_casts_parse(bastion)
    assert any(e[1] == "o" and "line" in e[2] for evs in events for e in evs)


def test_sigterm_drains_and_closes_casts(home_copy, tmp_path):
    bastion = _stream_then(home_copy, tmp_path, lambda b: b.stop(signal.SIGTERM))
    assert bastion.proc.returncode == 0
    events = _assert_casts_parse(bastion)
    assert any(e[1] == "m" and "shutting down" in e[2] for evs in events for e in evs)


def test_slow_target_times_out_with_a_clear_error(home_copy, tmp_path):
    """A target that accepts TCP but never speaks SSH: the user hears so in bounded time."""
    import socket

    from bastion.home import add_target

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        from bastion.config import load_config

        pinned = load_config(home_copy, check_keys=False).targets["web1"].host_keys[0]
        add_target(
            home_copy,
            "slow",
            host="127.0.0.1",
            port=silent.getsockname()[1],
            login=LOGIN,
            key_file=home_copy / "keys" / "targets" / f"web1-{LOGIN}",
            allow_groups=["ops"],
            host_key=pinned,
        )
        _edit(home_copy, "connect_timeout = 10", "connect_timeout = 1")
        bastion = start_bastion(home_copy)
        try:
            (tmp_path / "c").mkdir()
            client = make_client(tmp_path / "c", home_copy, bastion.port, "alice", ["ops"])
            started = time.monotonic()
            r = client.ssh("-J", "bastion", f"{LOGIN}@slow", "true", timeout=30)
            assert r.returncode == 255
            assert b"slow (127.0.0.1:" in r.stderr and b"did not answer within 1 s" in r.stderr
            assert time.monotonic() - started < 20
        finally:
            bastion.stop()
    finally:
        silent.close()


def test_target_add_scan_pins_the_real_host_key(world, tmp_path):
    from click.testing import CliRunner

    from bastion.cli import main
    from bastion.config import load_config
    from bastion.home import init_home

    home = tmp_path / "scanhome"
    init_home(home)
    r = CliRunner().invoke(
        main,
        [
            "target",
            "add",
            "scanned",
            "--home",
            str(home),
            "--host",
            "127.0.0.1",
            "--port",
            str(world.sshd.port),
            "--login",
            LOGIN,
            "--key-file",
            str(world.tmp / "target_key"),
            "--allow-group",
            "ops",
            "--scan",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "SHA256:" in r.output
    pinned = load_config(home).targets["scanned"].host_keys[0]
    assert pinned.split()[:2] == world.sshd.host_key_pub.read_text().split()[:2]


def test_unrecordable_session_runs_nothing_and_spares_others(home_copy, tmp_path):
    from datetime import UTC, datetime

    bastion = start_bastion(home_copy)
    try:
        (tmp_path / "c").mkdir()
        client = make_client(tmp_path / "c", home_copy, bastion.port, "alice", ["ops"])
        year = home_copy / "sessions" / f"{datetime.now(UTC):%Y}"
        year.parent.mkdir(parents=True, exist_ok=True)
        year.write_text("a file where the day's folder should be")
        marker = tmp_path / "ran"
        r = client.ssh("-J", "bastion", f"{LOGIN}@web1", f"touch {marker}")
        assert r.returncode == 255
        assert b"cannot be recorded; nothing was run" in r.stderr
        assert not marker.exists()
        year.unlink()
        ok = client.ssh("-J", "bastion", f"{LOGIN}@web1", "echo still-serving")
        assert ok.stdout == b"still-serving\n"
    finally:
        bastion.stop()


def test_a_policy_whose_own_tests_fail_does_not_start(home_copy):
    """Every [[rules]] removed: `rm -rf /` would be allowed; the file's own test says
    it must be denied, so the bastion refuses to start and names that test."""
    path = home_copy / "policies.toml"
    kept, in_rule = [], False
    for line in path.read_text().splitlines():
        if line.startswith("["):
            in_rule = line.strip() == "[[rules]]"
        if not in_rule:
            kept.append(line)
    path.write_text("\n".join(kept) + "\n")
    assert "\n[[rules]]" not in path.read_text()
    r = _serve(home_copy)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "policy test 'rm -rf /' expects deny (destructive-rm)" in err, err
    assert "does not start on a failing policy test" in err


def test_a_login_listed_twice_is_refused(home_copy):
    _edit(
        home_copy,
        "\nlogins = [",
        f'\nlogins = [\n    {{ login = "{LOGIN}", key_file = "keys/targets/web1-{LOGIN}", '
        'allow_groups = ["*"] },',
    )
    r = _serve(home_copy)
    assert r.returncode != 0
    assert f"login '{LOGIN}' is listed twice on target 'web1'" in r.stderr.decode()


@pytest.mark.parametrize(
    "path,mode,words",
    [
        ("policies.toml", 0o666, "policies.toml may be changed by other users"),
        ("keys", 0o777, "the keys directory may be changed by other users"),
        (".", 0o777, "the bastion home may be changed by other users"),
    ],
)
def test_files_others_may_change_are_refused(home_copy, path, mode, words):
    os.chmod(home_copy / path, mode)
    r = _serve(home_copy)
    assert r.returncode != 0
    assert words in r.stderr.decode()


def test_a_home_owned_by_another_user_is_refused(home_copy):
    os.chown(home_copy / "policies.toml", 65534, 65534)
    r = _serve(home_copy)
    assert r.returncode != 0
    assert "policies.toml is owned by another user (uid 65534)" in r.stderr.decode()


def test_state_and_audit_files_are_private(world):
    assert (world.home / "state.db").stat().st_mode & 0o077 == 0
    assert (world.home / "audit.jsonl").stat().st_mode & 0o027 == 0
    cast = next((world.home / "sessions").rglob("*.cast"), None)
    if cast is not None:
        assert cast.stat().st_mode & 0o027 == 0


def test_the_bastion_names_its_own_machine_and_holds_commands_on_its_home(world):
    """The test targets are this machine: start-up says so, and a command naming the
    bastion's home there is held (rule bastion-home), never run."""
    log = world.bastion.log.read_text()
    assert "target web1 is this machine" in log
    r = world.alice.ssh(
        "-o", "SetEnv=BASTION_WAIT=0", "-J", "bastion", f"{LOGIN}@web1",
        f"cat {world.home}/keys/user_ca",
    )  # fmt: skip
    assert r.returncode == 75 and b"held for approval (bastion-home)" in r.stderr
    assert b"PRIVATE KEY" not in r.stdout


def test_a_bash_that_cannot_parse_without_running_is_named_at_start(home_copy):
    """Without bash >= 5.2 the structure check cannot run: start-up says so (commands
    outside plain words are then held; tests/policy checks that rule)."""
    _edit(home_copy, "[policy]\n", '[policy]\nbash = "/nonexistent/bash"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", "--home", str(home_copy), "--listen",
         "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            seen.append(line)
            if "listening on" in line or not line:
                break
        text = "".join(seen)
        assert "/nonexistent/bash cannot parse without running" in text, text
        assert "Traceback" not in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()
