"""PTY window changes and back-pressure, checked on the real data path."""

from __future__ import annotations

import asyncio
import subprocess
import time

import asyncssh

from .conftest import LOGIN


def _rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _connect_args(world):
    key = asyncssh.read_private_key(str(world.alice.key))
    cert = asyncssh.read_certificate(str(world.alice.key) + "-cert.pub")
    known = asyncssh.import_known_hosts(
        f"@cert-authority * {(world.home / 'keys' / 'host_ca.pub').read_text()}"
    )
    return {"client_keys": [(key, cert)], "known_hosts": known, "agent_path": None, "config": None}


def test_window_change_reaches_the_target(world):
    async def run() -> list[str]:
        args = _connect_args(world)
        async with asyncssh.connect(
            "127.0.0.1", world.bastion.port, username="alice", **args
        ) as outer:
            async with asyncssh.connect("web1", tunnel=outer, username=LOGIN, **args) as inner:
                proc = await inner.create_process(
                    "stty size; read x; stty size", term_type="xterm", term_size=(80, 24)
                )
                first = await asyncio.wait_for(proc.stdout.readline(), 20)
                proc.change_terminal_size(132, 43)
                await asyncio.sleep(0.3)
                proc.stdin.write("\n")
                rest = await asyncio.wait_for(proc.stdout.read(), 20)
                return [first.strip(), rest.strip().splitlines()[-1].strip()]

    first, last = asyncio.run(run())
    assert first == "24 80"
    assert last == "43 132"


def test_slow_reader_does_not_grow_bastion_memory(world):
    """200 MB offered while the client reads nothing for a while: the bastion must
    stop reading from the target instead of buffering."""
    pid = world.bastion.proc.pid
    before = _rss_kib(pid)
    ssh = subprocess.Popen(
        [
            "ssh",
            "-F",
            str(world.alice.config),
            "-J",
            "bastion",
            f"{LOGIN}@web1",
            "head -c 200000000 /dev/zero",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = before
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # nobody reads ssh's stdout meanwhile
        peak = max(peak, _rss_kib(pid))
        time.sleep(0.1)
    paused = peak
    assert ssh.stdout is not None
    total = 0
    while chunk := ssh.stdout.read(1 << 20):
        total += len(chunk)
        peak = max(peak, _rss_kib(pid))
    ssh.wait(60)
    assert total == 200_000_000
    # While nobody reads, the bastion holds at most its channel windows (4 + 2 + 2 MiB):
    # measured 5-7 MiB. Streaming at full speed afterwards churns the allocator (the
    # cast's JSON of the first 64 MiB): measured 20-63 MiB, whatever the stream's size.
    assert paused - before < 24 * 1024, f"bastion buffered {(paused - before) // 1024} MiB"
    assert peak - before < 96 * 1024, f"bastion RSS grew by {(peak - before) // 1024} MiB"


def test_exit_signal_reaches_the_client(world):
    async def run() -> tuple[object, object]:
        args = _connect_args(world)
        async with asyncssh.connect(
            "127.0.0.1", world.bastion.port, username="alice", **args
        ) as outer:
            async with asyncssh.connect("web1", tunnel=outer, username=LOGIN, **args) as inner:
                result = await asyncio.wait_for(inner.run("kill -TERM $$"), 20)
                return result.exit_signal, result.exit_status

    signal, status = asyncio.run(run())
    assert signal is not None and signal[0] == "TERM", (signal, status)
