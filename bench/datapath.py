"""Binary downloads through exec (``cat``) and SFTP (``sftp get``), per path, timed.

The file is what a binary download usually is: a compressed artifact (gzip of random
bytes, ``size`` bytes). A second file of raw random bytes (no container magic, so masking
looks at every piece) is timed too, for the record. Recording is on, as shipped; the
bastion writes the exec output to a side file (size and sha256) and audits each SFTP
operation. Wall time of the whole client command, best of ``repeats`` interleaved runs.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from world import LOGIN, PATHS, World

__all__ = ["binary_downloads", "make_files"]

MB = 1_000_000


def make_files(root: Path, size: int) -> dict[str, Path]:
    """A gzip artifact and a raw random file of about ``size`` bytes each."""
    raw = os.urandom(size)
    files = {"gzip": root / "artifact.tar.gz", "random": root / "random.bin"}
    files["gzip"].write_bytes(gzip.compress(raw, 1)[:size])
    files["random"].write_bytes(raw)
    return files


def _sftp_args(world: World, path: str) -> list[str]:
    args = world.target_args(path)
    return ["-P" if a == "-p" else a for a in args]


def _run(cmd: list[str], batch: bytes | None, timeout: float) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        cmd,
        input=batch,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=None if batch is not None else subprocess.DEVNULL,
        timeout=timeout,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:6]}...: exit {done.returncode}: {done.stderr[-300:]!r}")
    return wall


def binary_downloads(world: World, size: int, repeats: int, timeout: float = 300) -> dict[str, Any]:
    files = make_files(world.root, size)
    out: dict[str, Any] = {"bytes": size, "repeats": repeats, "login": LOGIN}
    for kind, file in files.items():
        for how in ("exec", "sftp"):
            walls: dict[str, list[float]] = {p: [] for p in PATHS}
            for _ in range(repeats):
                for path in PATHS:
                    if how == "exec":
                        cmd = world.ssh(path) + [f"cat {file}"]
                        walls[path].append(_run(cmd, None, timeout))
                    else:
                        cmd = ["sftp", "-F", str(world.ssh_config), "-b", "-"]
                        cmd += _sftp_args(world, path)
                        batch = f"get {file} /dev/null\n".encode()
                        walls[path].append(_run(cmd, batch, timeout))
            out[f"{how}_{kind}"] = {p: {"best_s": min(w), "runs_s": w} for p, w in walls.items()}
    return out
