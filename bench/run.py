"""bastion vs OpenSSH, side by side, on this machine: one command, a table and a JSON file.

    python3 bench/run.py [--quick] [--json bench/results/latest.json] [--only throughput,...]

Sections: throughput, binary, setup, latency, keystrokes, scale, policy (see bench/README.md).
Everything runs on 127.0.0.1 in a temp dir (kept with --keep): a target sshd, the bastion
(a subprocess, as in production), and a stock sshd as the OpenSSH jump host.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bastion.logs import capture_warnings  # noqa: E402

capture_warnings()  # library warnings (cryptography on asyncssh's import) stay out of the table

import asyncclient  # noqa: E402
import datapath  # noqa: E402
import figures  # noqa: E402
from world import World, build_world  # noqa: E402

SECTIONS = ("throughput", "binary", "setup", "latency", "keystrokes", "scale", "policy")
BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class Row:
    """One line of the table; ``met`` is None when the figure has no goal."""

    figure: str
    bastion: str
    osjump: str = "-"
    direct: str = "-"
    ratio: str = "-"
    goal: str = "-"
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "-"}[self.met]


@dataclass(frozen=True)
class Sizes:
    bytes: int
    repeats: int
    setups: int
    commands: int
    sessions: int
    key_levels: tuple[int, ...]
    keys: int


FULL = Sizes(300_000_000, 2, 50, 500, 500, (1, 50, 200), 50)
QUICK = Sizes(50_000_000, 1, 10, 100, 100, (1, 50), 10)


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def throughput_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    data = raw["throughput"] = figures.throughput(world, sizes.bytes, sizes.repeats)
    rows = []
    for direction in ("download", "upload"):
        mbs = {p: v["mb_s"] for p, v in data[direction].items()}
        ratio = mbs["bastion"] / mbs["osjump"]
        rows.append(
            Row(
                f"throughput {direction} ({sizes.bytes // figures.MB} MB)",
                f"{mbs['bastion']:.0f} MB/s",
                f"{mbs['osjump']:.0f} MB/s",
                f"{mbs['direct']:.0f} MB/s",
                f"{ratio:.2f}x",
                ">= 1.0x -J (floor 0.6x)" + (" BELOW FLOOR" if ratio < 0.6 else ""),
                ratio >= 1.0,
            )
        )
    return rows


def binary_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    """Issue #14: a binary download through exec and SFTP, recording on."""
    size = 100_000_000 if sizes is FULL else 30_000_000
    data = raw["binary"] = datapath.binary_downloads(world, size, sizes.repeats)
    rows = []
    for key, label, goal in (
        ("exec_gzip", "exec `cat` of a .gz", True),
        ("sftp_gzip", "sftp get of a .gz", True),
        ("exec_random", "exec `cat` of raw random bytes", False),
        ("sftp_random", "sftp get of raw random bytes", False),
    ):
        best = {p: v["best_s"] for p, v in data[key].items()}
        ratio = best["osjump"] / best["bastion"]  # speed ratio: > 1 is faster than -J
        rows.append(
            Row(
                f"binary download {size // 1_000_000} MB, {label}",
                f"{best['bastion']:.2f} s",
                f"{best['osjump']:.2f} s",
                f"{best['direct']:.2f} s",
                f"{ratio:.2f}x",
                ">= 0.9x -J wall time" if goal else "- (masking searches it)",
                ratio >= 0.9 if goal else None,
            )
        )
    return rows


def setup_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    data = raw["setup"] = figures.setup_time(world, sizes.setups)
    rows = []
    for key, label in (("median_ms", "median"), ("p95_ms", "p95")):
        ratio = data["bastion"][key] / data["osjump"][key]
        rows.append(
            Row(
                f"setup `ssh -J .. true` {label} ({sizes.setups} runs)",
                _ms(data["bastion"][key]),
                _ms(data["osjump"][key]),
                _ms(data["direct"][key]),
                f"{ratio:.2f}x",
                "<= 1.2x -J" if key == "median_ms" else "-",
                ratio <= 1.2 if key == "median_ms" else None,
            )
        )
    errors = {p: data[p]["errors"] for p in ("bastion", "osjump", "direct")}
    if any(errors.values()):
        rows.append(
            Row(
                "setup errors",
                *(str(errors[p]) for p in errors),
                goal="0",
                met=errors["bastion"] == 0,
            )
        )
    return rows


def latency_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    data = raw["latency"] = figures.command_latency(world, sizes.commands)
    b, j, d = data["bastion"], data["osjump"], data["direct"]
    n = sizes.commands
    return [
        Row(
            f"mux `true` wall p50 ({n} cmds)", _ms(b["p50_ms"]), _ms(j["p50_ms"]), _ms(d["p50_ms"])
        ),
        Row(
            f"mux `true` wall p99 ({n} cmds)", _ms(b["p99_ms"]), _ms(j["p99_ms"]), _ms(d["p99_ms"])
        ),
        Row(
            "added per-command latency p50",
            _ms(b["added_p50_ms"]),
            _ms(j["added_p50_ms"]),
            "(baseline)",
            goal="<= 3 ms",
            met=b["added_p50_ms"] <= 3,
        ),
        Row(
            "added per-command latency p99",
            _ms(b["added_p99_ms"]),
            _ms(j["added_p99_ms"]),
            "(baseline)",
            goal="<= 10 ms",
            met=b["added_p99_ms"] <= 10,
        ),
        Row(
            "mux exec errors (exit 255)",
            str(b["errors"]),
            str(j["errors"]),
            str(d["errors"]),
            goal="0",
            met=b["errors"] == 0,
        ),
    ]


def keystroke_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    # the line figure first: the direct path's 200 login shells load the machine after
    line = raw["shell_line"] = asyncclient.line_latency(world, sizes.keys)
    data = raw["keystrokes"] = asyncclient.keystrokes(world, sizes.key_levels, sizes.keys)
    if "n/a" in data:
        return [Row("keystroke echo, added p99", f"n/a: {data['n/a'][:80]}")]
    rows = []
    rows.append(
        Row(
            "shell line: decision + channel open p50/p99",
            f"{line['decide_open_p50_ms']:.2f}/{line['decide_open_p99_ms']:.2f} ms",
            goal="<= 5 ms p50",
            met=line["decide_open_p50_ms"] <= 5,
        )
    )
    rows.append(
        Row(
            "shell line: Enter to output, added p50/p99",
            f"{line['added_p50_ms']:.2f}/{line['added_p99_ms']:.2f} ms",
            "-",
            f"{line['direct']['p50_ms']:.2f}/{line['direct']['p99_ms']:.2f} ms",
        )
    )
    for level, figure in data.items():
        rows.append(
            Row(
                f"keystroke echo added p50/p99, {level} sessions",
                f"{figure['added_p50_ms']:.2f}/{figure['added_p99_ms']:.2f} ms",
                "-",
                f"{figure['direct']['p50_ms']:.2f}/{figure['direct']['p99_ms']:.2f} ms",
                ratio="bastion {:.2f}/{:.2f}".format(
                    figure["bastion"]["p50_ms"], figure["bastion"]["p99_ms"]
                ),
                goal="<= 2 ms p99",
                met=figure["added_p99_ms"] <= 2,
            )
        )
    return rows


def scale_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    world.start_bastion()  # a fresh process: RSS growth is the connections' alone
    data = raw["scale"] = asyncclient.scale(world, sizes.sessions)
    n = sizes.sessions
    return [
        Row(
            f"scale: {n} concurrent exec sessions, errors",
            str(data["errors"]),
            goal="0",
            met=data["errors"] == 0,
        ),
        Row(
            f"scale: wall connect / run ({n})",
            f"{data['connect_wall_s']:.1f} s / {data['run_wall_s']:.1f} s",
        ),
        Row(
            "scale: bastion RSS base / idle / peak",
            f"{data['rss_base_mib']:.0f} / {data['rss_idle_mib']:.0f} / "
            f"{data['rss_peak_mib']:.0f} MiB",
        ),
        Row(
            "scale: RSS per idle connection",
            f"{data['rss_per_idle_conn_kib']:.0f} KiB",
            goal="<= 1024 KiB",
            met=data["rss_per_idle_conn_kib"] <= 1024,
        ),
        Row(
            "scale: RSS per connection after its command",
            f"{data['rss_per_conn_after_run_kib']:.0f} KiB",
            goal="<= 1024 KiB",
            met=data["rss_per_conn_after_run_kib"] <= 1024,
        ),
    ]


def _find(data: Any, *names: str) -> float | None:
    """First number under any of ``names`` (searched depth-first): policy.py owns its keys."""
    if isinstance(data, dict):
        for name in names:
            if isinstance(data.get(name), int | float) and not isinstance(data[name], bool):
                return float(data[name])
        for value in data.values():
            found = _find(value, *names)
            if found is not None:
                return found
    return None


def policy_rows(world: World, sizes: Sizes, raw: dict[str, Any]) -> list[Row]:
    script = BENCH_DIR / "policy.py"
    if not script.exists():
        raw["policy"] = {"n/a": "bench/policy.py does not exist yet"}
        return [Row("policy decisions/s", "n/a (bench/policy.py missing)")]
    out = world.root / "policy.json"
    quick = ["--quick"] if sizes is QUICK else []
    done = subprocess.run(
        [sys.executable, str(script), "--json", str(out), *quick],
        capture_output=True,
        timeout=600,
        cwd=BENCH_DIR.parent,
    )
    if done.returncode == 2 and quick:  # no --quick: run it as it is
        done = subprocess.run(
            [sys.executable, str(script), "--json", str(out)],
            capture_output=True,
            timeout=600,
            cwd=BENCH_DIR.parent,
        )
    if done.returncode != 0 or not out.exists():
        err = done.stderr.decode(errors="replace").strip()[-300:]
        raw["policy"] = {"error": f"exit {done.returncode}: {err}"}
        return [Row("policy decisions/s", f"n/a (bench/policy.py failed: exit {done.returncode})")]
    data = raw["policy"] = json.loads(out.read_text())
    rows = []
    for cache in ("cold", "warm"):  # the keys bench/policy.py writes today
        rate, p50, p99 = (data.get(f"{cache}_{k}") for k in ("decisions_per_s", "p50_ms", "p99_ms"))
        if None not in (rate, p50, p99):
            rows.append(
                Row(
                    f"policy decisions/s, p50/p99 ({cache} cache)",
                    f"{rate:,.0f}/s, {p50 * 1e3:.0f}/{p99 * 1e3:.0f} us",
                )
            )
    if not rows:  # another layout: show what can be found
        rate = _find(data, "decisions_per_s", "decisions_per_second", "rate")
        rows.append(Row("policy decisions/s", f"{rate:,.0f}" if rate else "see JSON"))
    return rows


RUNNERS: dict[str, Callable[[World, Sizes, dict[str, Any]], list[Row]]] = {
    "throughput": throughput_rows,
    "binary": binary_rows,
    "setup": setup_rows,
    "latency": latency_rows,
    "keystrokes": keystroke_rows,
    "scale": scale_rows,
    "policy": policy_rows,
}


def print_table(rows: list[Row]) -> None:
    header = Row("figure", "bastion", "OpenSSH -J", "direct", "ratio", "goal")
    table = [header, *rows]
    cells = [
        [
            r.figure,
            r.bastion,
            r.osjump,
            r.direct,
            r.ratio,
            r.goal,
            "met/missed" if r is header else r.verdict,
        ]
        for r in table
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for i, line in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def _machine() -> dict[str, Any]:
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    import asyncssh

    return {
        "python": platform.python_version(),
        "asyncssh": asyncssh.__version__,
        "openssh": ssh,
        "cpus": os.cpu_count(),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
        "kernel": platform.release(),
    }


def main(argv: list[str] | None = None) -> int:
    """Build the world, run the chosen sections, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default all: {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a policies.toml setting of the bastion, e.g. "
        "--set recording.max_output_mb=1 (a TOML value; repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, casts)")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {SECTIONS}")
    # One identity drives every section (200 shells, 500 sessions at once): the limits
    # that keep one identity from starving others are lifted, since this measures
    # capacity, not fairness (tests/e2e/test_hardening.py checks the limits).
    overrides = {
        "limits.sessions_per_identity": "1024",
        "limits.jumps_per_identity": "1024",
        "limits.channels_per_connection": "1024",
        "limits.upstream_channels_per_identity": "1024",
    }
    overrides.update(item.split("=", 1) for item in args.set)
    sizes = QUICK if args.quick else FULL

    root = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    started = time.monotonic()
    raw: dict[str, Any] = {}
    rows: list[Row] = []
    failures: dict[str, str] = {}
    world = build_world(root, overrides)
    try:
        for section in only:
            t0 = time.monotonic()
            print(f"[{section}] running...", file=sys.stderr, flush=True)
            try:
                rows += RUNNERS[section](world, sizes, raw)
            except Exception as exc:  # one broken section must not lose the others
                failures[section] = f"{type(exc).__name__}: {exc}"
                rows.append(Row(f"{section}: FAILED", str(exc)[:100]))
            print(f"[{section}] {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        world.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(rows)
    total = time.monotonic() - started
    print(
        f"\n{'quick' if args.quick else 'full'} run, {total:.0f} s"
        + (f"; kept {root}" if args.keep else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "mode": "quick" if args.quick else "full",
                    "sizes": asdict(sizes),
                    "bastion_overrides": overrides,
                    "machine": _machine(),
                    "seconds": round(total, 1),
                    "table": [asdict(r) | {"verdict": r.verdict} for r in rows],
                    "figures": raw,
                    "failures": failures,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
