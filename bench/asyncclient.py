"""Figures driven from one Python process with asyncssh as the client: scale, keystrokes.

500 ``ssh`` processes would measure the 2-core machine's process scheduler, not the
bastion; one asyncio client holds every connection instead. Each client is what
``ssh -J`` does: an outer connection to the bastion with the certificate, then an inner
connection to ``web1`` tunnelled through it, then the session.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any

import asyncssh
from figures import percentile
from world import LOGIN, PRINCIPAL, TARGET, World

__all__ = ["keystrokes", "rss_kib", "scale"]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS, KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class _PeakRss:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> _PeakRss:
        self.peak = rss_kib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def _common(world: World) -> dict[str, Any]:
    return {
        "known_hosts": str(world.known_hosts),
        "agent_path": None,
        "config": None,
        "preferred_auth": ["publickey"],
        "connect_timeout": 30,
    }


async def _connect_bastion(world: World) -> tuple[asyncssh.SSHClientConnection, ...]:
    """Outer connection to the bastion, inner connection to web1 through it."""
    keys = [(str(world.key), str(world.cert))]
    outer = await asyncssh.connect(
        "127.0.0.1", world.bastion_port, username=PRINCIPAL, client_keys=keys, **_common(world)
    )
    try:
        inner = await asyncssh.connect(
            TARGET, 22, tunnel=outer, username=LOGIN, client_keys=keys, **_common(world)
        )
    except BaseException:
        outer.close()
        raise
    return outer, inner


async def _connect_direct(world: World) -> tuple[asyncssh.SSHClientConnection, ...]:
    conn = await asyncssh.connect(
        "127.0.0.1",
        world.target.port,
        username=LOGIN,
        client_keys=[str(world.key)],
        **_common(world),
    )
    return (conn,)


def _close(conns: list[tuple[asyncssh.SSHClientConnection, ...]]) -> None:
    for pair in conns:
        for conn in reversed(pair):
            conn.close()


async def _scale(world: World, sessions: int, parallel: int, command: str) -> dict[str, Any]:
    pid = world.bastion_pid
    gate = asyncio.Semaphore(parallel)
    errors: list[str] = []
    conns: list[tuple[asyncssh.SSHClientConnection, ...]] = []

    async def connect_one() -> None:
        async with gate:
            try:
                conns.append(await asyncio.wait_for(_connect_bastion(world), 60))
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                errors.append(f"connect: {type(exc).__name__}: {exc}")

    async def run_one(inner: asyncssh.SSHClientConnection) -> None:
        try:
            done = await asyncio.wait_for(inner.run(command), 120)
            if done.exit_status != 0 or done.stdout != "ok\n":
                errors.append(
                    f"run: exit {done.exit_status}, stdout {done.stdout!r}, "
                    f"stderr {str(done.stderr).strip()[-120:]!r}"
                )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            errors.append(f"run: {type(exc).__name__}: {exc}")

    base = rss_kib(pid)
    try:
        with _PeakRss(pid) as connect_peak:
            start = time.perf_counter()
            await asyncio.gather(*(connect_one() for _ in range(sessions)))
            connect_wall = time.perf_counter() - start
        await asyncio.sleep(1)
        idle = rss_kib(pid)
        with _PeakRss(pid) as run_peak:
            start = time.perf_counter()
            await asyncio.gather(*(run_one(pair[-1]) for pair in conns))
            run_wall = time.perf_counter() - start
        await asyncio.sleep(1)
        idle_after = rss_kib(pid)
    finally:
        _close(conns)
    connected = max(1, len(conns))
    return {
        "sessions": sessions,
        "command": command,
        "connected": len(conns),
        "errors": len(errors),
        "error_samples": errors[:5],
        "connect_wall_s": connect_wall,
        "run_wall_s": run_wall,
        "rss_base_mib": base / 1024,
        "rss_idle_mib": idle / 1024,
        "rss_peak_mib": max(connect_peak.peak, run_peak.peak) / 1024,
        "rss_idle_after_run_mib": idle_after / 1024,
        "rss_per_idle_conn_kib": (idle - base) / connected,
        "rss_per_conn_after_run_kib": (idle_after - base) / connected,
    }


def scale(world: World, sessions: int, parallel: int = 25) -> dict[str, Any]:
    """``sessions`` clients connect (``parallel`` handshakes at a time) and stay
    connected; then each runs one small command, all at once; bastion RSS throughout.

    The command sleeps 1 s so the sessions really overlap. RSS per connection is the
    growth over the bastion's RSS before the first client, divided by the clients.
    """
    return asyncio.run(_scale(world, sessions, parallel, "sleep 1; echo ok"))


async def _echo_once(proc: asyncssh.SSHClientProcess, key: str, timeout: float) -> float:
    start = time.perf_counter()
    proc.stdin.write(key)
    seen = ""
    while key not in seen:
        chunk = await asyncio.wait_for(proc.stdout.read(256), timeout)
        if not chunk:
            raise RuntimeError("the shell closed while waiting for an echo")
        seen += chunk
    return time.perf_counter() - start


async def _drain(proc: asyncssh.SSHClientProcess) -> None:
    """Read whatever is waiting (the prompt), for at most 50 quiet-checks."""
    for _ in range(50):
        try:
            if not await asyncio.wait_for(proc.stdout.read(4096), 0.05):
                return
        except TimeoutError:
            return


async def _keystrokes(world: World, path: str, concurrency: int, keys: int) -> dict[str, Any]:
    connect = _connect_bastion if path == "bastion" else _connect_direct
    per_conn = 8  # below the target sshd's MaxSessions (10)
    conns = [await connect(world) for _ in range(-(-concurrency // per_conn))]
    samples: list[float] = []
    try:
        procs = []
        for i in range(concurrency):
            proc = await conns[i // per_conn][-1].create_process(
                term_type="xterm", term_size=(80, 24), encoding="utf-8"
            )
            procs.append(proc)
        await asyncio.sleep(1.0)  # let the prompts arrive
        for proc in procs:
            if proc.exit_status is not None or proc.stdout.at_eof():
                err = (await proc.stderr.read()).strip()
                raise NotImplementedError(err or f"shell exited with {proc.exit_status}")
            await _drain(proc)
        # every shell echoes once before the clock starts: a login shell that is still
        # starting (a slow ~/.bashrc) would be measured as echo latency
        await asyncio.gather(*(_echo_once(p, "x", 120) for p in procs))
        await asyncio.gather(*(_drain(p) for p in procs))

        async def typist(proc: asyncssh.SSHClientProcess) -> None:
            for _ in range(keys):
                samples.append(await _echo_once(proc, "x", 10))
                await asyncio.sleep(0.02)

        await asyncio.gather(*(typist(p) for p in procs))
        for proc in procs:
            proc.close()
    finally:
        _close(conns)
    return {f"p{q}_ms": percentile(samples, q) * 1e3 for q in (50, 99)}


def keystrokes(world: World, levels: tuple[int, ...], keys: int) -> dict[str, Any]:
    """Echo latency of one typed key in an interactive shell, bastion vs direct.

    A shell the bastion refuses (a limit, a target down) makes the figure ``n/a``.
    """
    out: dict[str, Any] = {}
    for level in levels:
        try:
            bastion = asyncio.run(_keystrokes(world, "bastion", level, keys))
        except NotImplementedError as exc:
            return {"n/a": f"the shell did not start ({str(exc)[:120]})"}
        direct = asyncio.run(_keystrokes(world, "direct", level, keys))
        out[str(level)] = {
            "bastion": bastion,
            "direct": direct,
            "added_p50_ms": bastion["p50_ms"] - direct["p50_ms"],
            "added_p99_ms": bastion["p99_ms"] - direct["p99_ms"],
        }
    return out


async def _line_once(proc: asyncssh.SSHClientProcess, n: int, timeout: float) -> float:
    """Enter ``echo mN`` at a prompt; seconds until its output line (not the echo)."""
    mark = f"m{n}x"
    start = time.perf_counter()
    proc.stdin.write(f"echo {mark}\r")
    seen = ""
    output = re.compile(rf"(?<!echo ){mark}\r\n")  # the output line, not the typed echo
    while not output.search(seen):
        chunk = await asyncio.wait_for(proc.stdout.read(4096), timeout)
        if not chunk:
            raise RuntimeError("the shell closed while waiting for a line's output")
        seen += chunk
    elapsed = time.perf_counter() - start
    await _drain(proc)  # the next prompt
    return elapsed


async def _lines(world: World, path: str, lines: int) -> dict[str, Any]:
    connect = _connect_bastion if path == "bastion" else _connect_direct
    conns = [await connect(world)]
    samples: list[float] = []
    try:
        proc = await conns[0][-1].create_process(
            term_type="xterm", term_size=(200, 24), encoding="utf-8"
        )
        await asyncio.sleep(1.0)
        await _drain(proc)
        for n in range(lines):
            samples.append(await _line_once(proc, n, 60))
        proc.close()
    finally:
        _close(conns)
    return {f"p{q}_ms": percentile(samples, q) * 1e3 for q in (50, 99)}


def line_latency(world: World, lines: int) -> dict[str, Any]:
    """Enter to output of ``echo`` in an interactive shell, bastion vs direct: what the
    bastion adds is the line's decision and its own upstream channel (a direct shell
    runs ``echo`` as a builtin in a shell that is already running)."""
    audit = world.home / "audit.jsonl"
    skip = len(audit.read_bytes().splitlines()) if audit.exists() else 0
    bastion = asyncio.run(_lines(world, "bastion", lines))
    direct = asyncio.run(_lines(world, "direct", lines))
    own = [
        record["decide_and_open_ms"] / 1e3
        for record in map(json.loads, audit.read_bytes().splitlines()[skip:])
        if record.get("event") == "shell_line"
    ]
    return {
        "bastion": bastion,
        "direct": direct,
        "added_p50_ms": bastion["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": bastion["p99_ms"] - direct["p99_ms"],
        # measured inside the bastion: from Enter to the line's channel being open
        "decide_open_p50_ms": percentile(own, 50) * 1e3 if own else float("nan"),
        "decide_open_p99_ms": percentile(own, 99) * 1e3 if own else float("nan"),
    }
