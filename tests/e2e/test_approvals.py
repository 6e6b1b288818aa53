"""Held commands, decided by other people with the real bastion-cli, run exactly once.

The held command is a harmless one the shipped policy holds (a command name known only
at run time: ``c=echo; $c ...``), so nothing here could hurt the machine even if it ran.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from bastion.config import load_policy_file
from bastion.policy import decide
from bastion.ssh.client import ClientSettings, call

from .conftest import LOGIN, bastion_cli, edit_config, make_client, start_bastion

TARGET = f"{LOGIN}@web1"
NO_WAIT = ("-o", "SetEnv=BASTION_WAIT=0")
_ID = re.compile(r"request:\s+([0-9a-f]+)")


class Hooks(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps every JSON body posted to it."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", "0"))
        Hooks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hooks():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def approvals(world, hooks, tmp_path_factory):
    """A bastion of its own: webhooks on, room for 100 concurrent sessions."""
    import shutil

    tmp = tmp_path_factory.mktemp("approvals")
    home = tmp / "home"
    shutil.copytree(
        world.home, home, ignore=shutil.ignore_patterns("sessions", "*.jsonl", "state.db*", "*.log")
    )
    port = hooks.server_address[1]
    edit_config(home, 'ttl = "10m"', f'ttl = "10m"\nnotify_url = "http://127.0.0.1:{port}/hook"')
    edit_config(home, "sessions_per_identity = 64", "sessions_per_identity = 200")
    edit_config(home, "upstream_channels_per_identity = 16", "upstream_channels_per_identity = 32")
    bastion = start_bastion(home)
    people = {}
    for name, groups in {
        "alice": ["ops"],
        "bob": ["ops", "approvers"],
        "carol": ["ops"],
        "dave": ["approvers"],
    }.items():
        (tmp / name).mkdir()
        people[name] = make_client(tmp / name, home, bastion.port, name, groups)
    yield bastion, people
    bastion.stop()


def _held(client, command: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start ``command`` through the bastion; return the waiting process and request id."""
    proc = subprocess.Popen(
        ["ssh", "-F", str(client.config), *extra, "-J", "bastion", TARGET, command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        m = _ID.search(line.decode())
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError(f"no request id in: {seen!r}")


def _show(bastion, person, request_id: str) -> dict:
    r = bastion_cli(person, bastion.port, "show", request_id, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_held_exec_approved_by_another_identity_runs_with_its_own_status(approvals):
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c approved-output; exit 3")
    pending = bastion_cli(p["bob"], bastion.port, "requests", "--json")
    assert pending.returncode == 0, pending.stderr
    listed = {r["id"]: r for r in json.loads(pending.stdout)}
    assert listed[rid]["user"] == "alice" and listed[rid]["status"] == "pending"
    assert listed[rid]["command"] == "c=echo; $c approved-output; exit 3"
    assert listed[rid]["target"] == "web1" and listed[rid]["login"] == LOGIN
    expected = decide(
        load_policy_file(bastion.home),
        user="alice",
        groups=["ops"],
        target="web1",
        login=LOGIN,
        command="c=echo; $c approved-output; exit 3",
    )
    assert expected.action == "review" and listed[rid]["rule"] == expected.rule

    r = bastion_cli(p["bob"], bastion.port, "approve", rid, "--reason", "fine")
    assert r.returncode == 0 and f"approved {rid}" in r.stdout, r.stderr
    out, err = proc.communicate(timeout=30)
    assert out == b"approved-output\n", err
    assert proc.returncode == 3  # the command's own status
    assert _show(bastion, p["bob"], rid)["status"] == "used"


def test_denied_request_gives_the_reason_and_77(approvals):
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c never-printed")
    r = bastion_cli(p["bob"], bastion.port, "deny", rid, "--reason", "not on a Friday")
    assert r.returncode == 0, r.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 77
    assert out == b""
    assert f"request {rid} denied by bob: not on a Friday".encode() in err


def test_ctrl_c_cancels_the_request(approvals):
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c never-printed", "-tt")
    assert proc.stdin is not None
    proc.stdin.write(b"\x03")  # what a terminal sends for Ctrl-C under ssh -tt
    proc.stdin.flush()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75 and b"never-printed" not in out
    assert _show(bastion, p["bob"], rid)["status"] == "cancelled"
    late = bastion_cli(p["bob"], bastion.port, "approve", rid)
    assert late.returncode == 1 and "already cancelled" in late.stderr


def test_disconnect_cancels_the_request(approvals):
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c never-printed")
    proc.kill()
    proc.wait()
    for _ in range(50):
        if _show(bastion, p["bob"], rid)["status"] == "cancelled":
            break
        time.sleep(0.1)
    assert _show(bastion, p["bob"], rid)["status"] == "cancelled"


def test_nobody_approves_their_own_request_and_non_approvers_cannot(approvals, tmp_path):
    bastion, p = approvals
    # alice holding a second certificate that makes her an approver: still her request
    (tmp_path / "alice2").mkdir()
    alice_approver = make_client(
        tmp_path / "alice2", bastion.home, bastion.port, "alice", ["ops", "approvers"]
    )
    proc, rid = _held(p["alice"], "c=echo; $c self")
    try:
        own = bastion_cli(alice_approver, bastion.port, "approve", rid)
        assert own.returncode == 1 and "your own request" in own.stderr
        carol = bastion_cli(p["carol"], bastion.port, "approve", rid)
        assert carol.returncode == 1 and "not an approver" in carol.stderr
        unknown = bastion_cli(p["bob"], bastion.port, "approve", "00000000aa")
        assert unknown.returncode == 1 and "no request" in unknown.stderr
        assert _show(bastion, p["bob"], rid)["status"] == "pending"
    finally:
        proc.kill()
        proc.wait()


def test_agent_without_waiting_runs_the_approved_bytes_exactly_once(approvals):
    bastion, p = approvals
    command = "c=echo; $c agent-ran"
    r = p["alice"].ssh(*NO_WAIT, "-J", "bastion", TARGET, command)
    assert r.returncode == 75 and r.stdout == b""
    rid = _ID.search(r.stderr.decode()).group(1)
    assert b"bastion-cli wait" in r.stderr

    result: dict[str, subprocess.CompletedProcess] = {}
    waiter = threading.Thread(
        target=lambda: result.update(
            wait=bastion_cli(p["alice"], bastion.port, "wait", rid, "--timeout", "30")
        )
    )
    waiter.start()
    time.sleep(0.5)
    assert bastion_cli(p["bob"], bastion.port, "approve", rid).returncode == 0
    waiter.join(30)
    assert result["wait"].returncode == 0 and "approved" in result["wait"].stdout

    other = p["alice"].ssh(*NO_WAIT, "-J", "bastion", TARGET, "c=echo; $c other-bytes")
    assert other.returncode == 75 and other.stdout == b""  # the approval is for other bytes
    first = p["alice"].ssh(*NO_WAIT, "-J", "bastion", TARGET, command)
    assert first.returncode == 0 and first.stdout == b"agent-ran\n", first.stderr
    again = p["alice"].ssh(*NO_WAIT, "-J", "bastion", TARGET, command)
    assert again.returncode == 75 and again.stdout == b""  # single use: held again
    carol = p["carol"].ssh(*NO_WAIT, "-J", "bastion", TARGET, command)
    assert carol.returncode == 75  # bound to its requester too


def test_webhook_announces_new_and_decided_requests(approvals, hooks):
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c hooked")
    bastion_cli(p["bob"], bastion.port, "deny", rid, "--reason", "no")
    proc.communicate(timeout=30)
    for _ in range(50):
        events = [h for h in Hooks.received if h.get("id") == rid]
        if len(events) >= 2:
            break
        time.sleep(0.1)
    kinds = [h["event"] for h in events]
    assert kinds == ["approval.requested", "approval.denied"]
    assert f"bastion-cli approve {rid}" in events[0]["text"]
    assert events[0]["command"] == "c=echo; $c hooked" and events[0]["user"] == "alice"


def test_a_hundred_concurrent_requests_each_get_their_own_output(approvals):
    """100 connections wait at once; a script approves them in random order."""
    bastion, p = approvals
    alice = p["alice"]
    procs = []
    for n in range(100):
        proc = subprocess.Popen(
            [
                "ssh", "-F", str(alice.config), "-p", str(bastion.port),
                f"{LOGIN}@web1@127.0.0.1", f"c=echo; $c token-{n}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        procs.append(proc)
    try:
        ids: dict[str, int] = {}
        for n, proc in enumerate(procs):
            assert proc.stderr is not None
            line = b""
            while b"request:" not in line:
                line = proc.stderr.readline()
                assert line, f"session {n} ended without a request id"
            ids[_ID.search(line.decode()).group(1)] = n
        order = list(ids)
        random.shuffle(order)
        bob = p["bob"]
        settings = ClientSettings("127.0.0.1", bastion.port, bob.key, bob.dir / "known_hosts")

        async def approve_all() -> list[int]:
            gate = asyncio.Semaphore(10)

            async def one(rid: str) -> int:
                async with gate:
                    status, _ = await call(settings, ["approve", rid])
                    return status

            return await asyncio.gather(*(one(rid) for rid in order))

        assert asyncio.run(approve_all()) == [0] * 100
        for rid, n in ids.items():
            out, err = procs[n].communicate(timeout=60)
            assert out == f"token-{n}\n".encode(), (rid, err)
            assert procs[n].returncode == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_expired_request_says_so_with_75(home_copy, tmp_path):
    edit_config(home_copy, 'ttl = "10m"', 'ttl = "2s"')
    bastion = start_bastion(home_copy)
    try:
        (tmp_path / "a").mkdir()
        alice = make_client(tmp_path / "a", home_copy, bastion.port, "alice", ["ops"])
        proc, rid = _held(alice, "c=echo; $c too-late")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 75 and out == b""
        assert f"request {rid} expired".encode() in err
    finally:
        bastion.stop()


def test_restart_cancels_waiting_requests_and_keeps_filed_ones(home_copy, tmp_path):
    bastion = start_bastion(home_copy)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    alice = make_client(tmp_path / "a", home_copy, bastion.port, "alice", ["ops"])
    bob = make_client(tmp_path / "b", home_copy, bastion.port, "bob", ["approvers"])
    filed = alice.ssh(*NO_WAIT, "-J", "bastion", TARGET, "c=echo; $c filed")
    filed_id = _ID.search(filed.stderr.decode()).group(1)
    proc, waiting_id = _held(alice, "c=echo; $c waiting")
    bastion.stop(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 255  # the bastion went away under it
    bastion = start_bastion(home_copy, port=bastion.port)
    try:
        assert _show(bastion, bob, waiting_id)["status"] == "cancelled"
        assert _show(bastion, bob, filed_id)["status"] == "pending"
        assert bastion_cli(bob, bastion.port, "approve", filed_id).returncode == 0
        again = alice.ssh(*NO_WAIT, "-J", "bastion", TARGET, "c=echo; $c filed")
        assert again.returncode == 0 and again.stdout == b"filed\n"
    finally:
        bastion.stop()


def test_a_rule_can_ask_for_two_approvers_of_its_own_group(world, tmp_path):
    """approvals_required = 2 and approvers = [...] on the rule: one yes is not enough,
    and only the rule's group counts."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(
        world.home, home, ignore=shutil.ignore_patterns("sessions", "*.jsonl", "state.db*", "*.log")
    )
    with open(home / "policies.toml", "a") as f:
        f.write(
            '\n[[rules]]\nid = "two-person"\naction = "review"\nprogram = ["printf"]\n'
            'approvers = ["sre-leads"]\napprovals_required = 2\n'
            'message = "printf needs two SRE leads (a test rule)"\n'
        )
    bastion = start_bastion(home)
    try:
        people = {}
        for name, groups in {
            "alice": ["ops"],
            "bob": ["approvers"],
            "erin": ["sre-leads"],
            "frank": ["sre-leads"],
        }.items():
            (tmp_path / name).mkdir()
            people[name] = make_client(tmp_path / name, home, bastion.port, name, groups)
        proc, rid = _held(people["alice"], "printf 'two-person-ok\\n'")
        assert _show(bastion, people["erin"], rid)["rule"] == "two-person"
        bob = bastion_cli(people["bob"], bastion.port, "approve", rid)
        assert bob.returncode == 1 and "sre-leads" in bob.stderr  # not the rule's group
        first = bastion_cli(people["erin"], bastion.port, "approve", rid)
        assert first.returncode == 0 and "(1 of 2)" in first.stdout
        again = bastion_cli(people["erin"], bastion.port, "approve", rid)
        assert again.returncode == 1 and "already approved" in again.stderr
        assert proc.poll() is None  # still waiting
        second = bastion_cli(people["frank"], bastion.port, "approve", rid)
        assert second.returncode == 0 and "approved" in second.stdout
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and out == b"two-person-ok\n", err
    finally:
        bastion.stop()


def test_plain_ssh_can_speak_to_the_control_user(approvals):
    """An approver with nothing but OpenSSH: `ssh -l bastion-ctl bastion VERB` answers in
    JSON even though ssh closes its stdin at once."""
    bastion, p = approvals
    proc, rid = _held(p["alice"], "c=echo; $c by-plain-ssh")
    try:
        r = p["bob"].ssh("-l", "bastion-ctl", "bastion", "approve", rid, timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["request"]["status"] == "approved"
        out, err = proc.communicate(timeout=30)
        assert out == b"by-plain-ssh\n", err
        shell = p["bob"].ssh("-l", "bastion-ctl", "bastion", timeout=30)
        assert shell.returncode == 2 and b"usage" in shell.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
