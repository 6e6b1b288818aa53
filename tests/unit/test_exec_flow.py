"""The exec flow without any SSH: fakes for the client channel and the target."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bastion.approvals import ApprovalService, ApprovalSettings
from bastion.config import load_policy_file
from bastion.flows.base import FlowContext
from bastion.flows.exec import ExecFlow
from bastion.flows.ports import ExitResult
from bastion.identity import Identity
from bastion.record import AuditLog, RecordingSettings, SessionInfo, SessionRecorder
from bastion.storage import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


class FakeClient:
    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.result: ExitResult | None = None

    def write(self, data: bytes) -> None:
        self.out += data

    def write_stderr(self, data: bytes) -> None:
        self.err += data

    def write_eof(self) -> None:
        pass

    def exit(self, result: ExitResult) -> None:
        self.result = result

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class FakeRemote:
    def __init__(self, sink, output: bytes) -> None:
        self.sink, self.output, self.written = sink, output, b""
        self.done: asyncio.Future[ExitResult] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.sink.remote_output(self.output, False)
        self.sink.remote_eof()
        self.sink.remote_exited()
        self.done.set_result(ExitResult(status=0))

    def result(self):
        return self.done.result() if self.done.done() else None

    async def wait(self) -> ExitResult:
        return await self.done

    def write(self, data: bytes) -> None:
        self.written += data

    def write_eof(self) -> None: ...
    def resize(self, *a) -> None: ...
    def signal(self, name: str) -> None: ...
    def send_break(self, msec: int) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class FakeUpstream:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def start(self, command, *, env, term, sink):
        self.started.append(command)
        remote = FakeRemote(sink, b"output\n")
        asyncio.get_running_loop().call_soon(remote.start)
        return remote


@pytest.fixture
def run_flow(tmp_path):
    policy = load_policy_file(ROOT)
    store = SQLiteStore(tmp_path / "state.db")
    audit = AuditLog(tmp_path / "audit.jsonl")

    def run(command: str, refusal: str = "", wait: str = "0"):
        client, upstream = FakeClient(), FakeUpstream()

        async def main():
            approvals = ApprovalService(store, ApprovalSettings(), audit)
            info = SessionInfo("s", "conn=1", "peer", "alice", ("ops",), "web1", "root", "exec",
                               command)  # fmt: skip
            recorder = SessionRecorder(
                info, RecordingSettings(tmp_path / "casts", 1 << 20, False), audit, store
            )
            ctx = FlowContext(
                identity=Identity("alice", ("ops",), "k", 1, "ca", "fp", 2**40, ("alice",)),
                target="web1",
                login="root",
                session_id="s",
                client=client,
                recorder=recorder,
                upstream=upstream,
                policy=policy,
                approvals=approvals,
                log=logging.getLogger("test"),
                options={"BASTION_WAIT": wait},
                refusal=refusal,
            )
            await ExecFlow(ctx, command).run()

        asyncio.run(main())
        return client, upstream

    yield run
    asyncio.run(store.close())


def test_allowed_command_runs_exactly_those_bytes(run_flow):
    client, upstream = run_flow("uptime")
    assert upstream.started == ["uptime"]
    assert client.out == b"output\n" and client.result == ExitResult(status=0)


def test_denied_command_never_reaches_the_target(run_flow):
    client, upstream = run_flow("rm -rf /")
    assert upstream.started == []
    assert client.result == ExitResult(status=77)
    assert client.err.startswith(b"bastion: denied (destructive-rm):")


@pytest.mark.parametrize("command", ["", "  ", "\n"])
def test_empty_command_is_refused(run_flow, command):
    client, upstream = run_flow(command)
    assert upstream.started == [] and client.result == ExitResult(status=77)
    assert b"denied (empty-command)" in client.err


def test_a_bad_request_is_refused_before_deciding(run_flow):
    client, upstream = run_flow("ls", refusal="nul-byte: the command contains a NUL byte")
    assert upstream.started == [] and client.result == ExitResult(status=77)
    assert client.err == b"bastion: denied (nul-byte): the command contains a NUL byte\n"


def test_held_without_waiting_ends_with_75_and_the_request_id(run_flow):
    client, upstream = run_flow("c=echo; $c hi", wait="0")
    assert upstream.started == [] and client.result == ExitResult(status=75)
    assert b"request:" in client.err and b"bastion-cli approve" in client.err
