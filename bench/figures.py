"""Figures measured with the real OpenSSH client: throughput, setup, per-command latency.

Every path runs the same ssh binary with the same config; only the route differs
(bastion, OpenSSH ``-J`` through a stock sshd, direct). Runs of the paths are
interleaved so that background noise on the 2-core machine hits them alike. Every
subprocess has a timeout and every loop a fixed count.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from world import PATHS, World

__all__ = ["command_latency", "percentile", "setup_time", "throughput"]

MB = 1_000_000
_CHUNK = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: p99 of 500 samples is the 495th smallest, a real sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _CHUNK)
    except OSError:
        pass


def _download(world: World, path: str, size: int, timeout: float) -> float:
    """Seconds from the first byte to EOF of ``head -c SIZE /dev/zero`` on stdout."""
    proc = subprocess.Popen(
        world.ssh(path, "-n") + [f"head -c {size} /dev/zero"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    _grow_pipe(fd)
    deadline = time.monotonic() + timeout
    received, first = 0, 0.0
    try:
        while time.monotonic() < deadline:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            if not received:
                first = time.perf_counter()
            received += len(chunk)
        end = time.perf_counter()
        proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if received != size or proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise RuntimeError(
            f"download via {path}: got {received} of {size} bytes, exit {proc.returncode}: {err}"
        )
    return end - first


def _upload(world: World, path: str, size: int, timeout: float) -> float:
    """Seconds from the first byte written to ``wc -c`` reporting all of them.

    The remote side prints ``ready`` first, so the connection setup is not counted.
    """
    proc = subprocess.Popen(
        world.ssh(path) + ["echo ready; wc -c"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    _grow_pipe(proc.stdin.fileno())
    zeros = memoryview(bytes(_CHUNK))
    deadline = time.monotonic() + timeout
    try:
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"upload via {path}: expected 'ready', got {line!r}")
        start = time.perf_counter()
        sent = 0
        while sent < size and time.monotonic() < deadline:
            n = os.write(proc.stdin.fileno(), zeros[: min(_CHUNK, size - sent)])
            sent += n
        proc.stdin.close()
        counted = proc.stdout.read()
        end = time.perf_counter()
        proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if counted.strip() != str(size).encode() or proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        raise RuntimeError(
            f"upload via {path}: remote counted {counted.strip()!r} of "
            f"{size}, exit {proc.returncode}: {err}"
        )
    return end - start


def throughput(world: World, size: int, repeats: int, timeout: float = 180) -> dict[str, Any]:
    """MB/s per path and direction: the best of ``repeats`` interleaved runs."""
    out: dict[str, Any] = {"bytes": size, "repeats": repeats}
    for direction, run in (("download", _download), ("upload", _upload)):
        seconds: dict[str, list[float]] = {p: [] for p in PATHS}
        for _ in range(repeats):
            for path in PATHS:
                seconds[path].append(run(world, path, size, timeout))
        out[direction] = {
            p: {"mb_s": size / MB / min(s), "runs_mb_s": [round(size / MB / x, 1) for x in s]}
            for p, s in seconds.items()
        }
    return out


def _timed(cmd: list[str], timeout: float) -> tuple[float, str | None]:
    """Wall seconds of one ssh run, and why it failed (None: exit 0)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"timed out after {timeout:g} s"
    wall = time.perf_counter() - start
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[-200:]
        return wall, f"exit {done.returncode}: {err or '(no message)'}"
    return wall, None


def _sampled(
    world: World, runs: int, warmup: int, timeout: float, extra: dict[str, list[str]]
) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """Interleaved runs of ``true`` per path; failed runs are counted, not timed.

    More than half failing on any path aborts the figure: it would mean nothing.
    """
    walls: dict[str, list[float]] = {p: [] for p in PATHS}
    errors: dict[str, list[str]] = {p: [] for p in PATHS}
    for i in range(warmup + runs):
        for path in PATHS:
            wall, error = _timed(world.ssh(path, "-n", *extra.get(path, [])) + ["true"], timeout)
            if i < warmup:
                continue
            if error:
                errors[path].append(error)
                if len(errors[path]) > max(3, runs // 2):
                    raise RuntimeError(f"via {path}: {len(errors[path])} failures, last: {error}")
            else:
                walls[path].append(wall)
    return walls, errors


def setup_time(world: World, runs: int, timeout: float = 30) -> dict[str, Any]:
    """Wall time of a fresh ``ssh ... true`` (new connection each run), per path.

    One warm-up round first: it fills caches and the bastion's upstream pool, which a
    bastion in service always has warm.
    """
    walls, errors = _sampled(world, runs, 1, timeout, {})
    return {
        p: {
            "median_ms": percentile(w, 50) * 1e3,
            "p95_ms": percentile(w, 95) * 1e3,
            "runs": runs,
            "errors": len(errors[p]),
            "error_samples": errors[p][:3],
        }
        for p, w in walls.items()
    }


def _control_path(world: World, path: str) -> Path:
    return world.client_dir / f"cm-{path}"


def _start_master(world: World, path: str, timeout: float = 30) -> None:
    control = _control_path(world, path)
    subprocess.run(
        world.ssh(
            path,
            "-o",
            "ControlMaster=yes",
            "-o",
            f"ControlPath={control}",
            "-o",
            "ControlPersist=300",
            "-f",
            "-N",
            "-E",
            str(world.root / f"master-{path}.log"),
        ),
        # The master lives on in the background: it must not hold our pipes open.
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        check=True,
    )
    subprocess.run(
        world.ssh(path, "-o", f"ControlPath={control}", "-O", "check"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=True,
    )


def _stop_master(world: World, path: str) -> None:
    subprocess.run(
        world.ssh(path, "-o", f"ControlPath={_control_path(world, path)}", "-O", "exit"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )


def command_latency(world: World, commands: int, timeout: float = 30) -> dict[str, Any]:
    """Wall time of ``true`` over a ControlMaster connection, per path, and the added part.

    Each sample includes starting the ssh mux client (the same on every path); the
    bastion's added latency is its percentile minus the direct path's.
    """
    try:
        for path in PATHS:
            _start_master(world, path)
        mux = {
            p: ["-o", "ControlMaster=no", "-o", f"ControlPath={_control_path(world, p)}"]
            for p in PATHS
        }
        walls, errors = _sampled(world, commands, 5, timeout, mux)
    finally:
        for path in PATHS:
            _stop_master(world, path)
    out: dict[str, Any] = {"commands": commands}
    for path, w in walls.items():
        out[path] = {f"p{q}_ms": percentile(w, q) * 1e3 for q in (50, 90, 99)}
        out[path]["errors"] = len(errors[path])
        out[path]["error_samples"] = errors[path][:3]
    for path in ("bastion", "osjump"):
        out[path]["added_p50_ms"] = out[path]["p50_ms"] - out["direct"]["p50_ms"]
        out[path]["added_p99_ms"] = out[path]["p99_ms"] - out["direct"]["p99_ms"]
    return out
