"""Benchmark the command policy: decisions/s and p50/p99 latency, cold and warm cache.

Usage: python bench/policy.py [--json FILE] [--rounds N] [--quick]

Corpus: bench/oneliners.txt and bench/oneliners_more.txt (everyday one-liners of the
kind people post and agents write; the second file holds longer ones, so the corpus mean
is about 60 characters as issue #10 asks), commands under 200 characters. Cold: the
analysis cache is cleared before each decision, so every command is parsed, normalized
and structure-checked (read by a bash kept running when the plain-language scanner cannot
vouch for it) anew. Warm: repeated commands hit the per-policy cache, as agents
repeating commands do. Also times a 64 KB input. Prints
the figures next to the goals of issue #10; no assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bastion.policy import decide, load_policy  # noqa: E402
from bastion.policy.structure import needs_structure_check  # noqa: E402
from bastion.tomlsource import TomlSource  # noqa: E402

CORPUS = (Path(__file__).with_name("oneliners.txt"), Path(__file__).with_name("oneliners_more.txt"))
#: Holds issue #10 itself asks for (programs that take the terminal or run typed
#: commands, account changes, recursive chown/chmod of application directories, killing
#: by name, startup-file writes, reads of tool credentials and secret stores, inline
#: interpreter code):
#: not false holds.
HELD_BY_DESIGN = frozenset(
    {"terminal-program", "nested-shell", "account-change", "chmod-recursive-system",
     "kill-by-name", "startup-write", "k8s-secret-read", "cloud-secret-read",
     "cloud-secret-read-ssm", "vault-secret-read", "kubeconfig-raw-read", "secret-dir-read"}
)  # fmt: skip
GOALS = {
    "everyday_not_falsely_held": (">= 0.98", lambda v: v >= 0.98),
    "cold_decisions_per_s": (">= 3000", lambda v: v >= 3000),
    "cold_p50_ms": ("<= 0.5 ms", lambda v: v <= 0.5),
    "cold_p99_ms": ("<= 2 ms", lambda v: v <= 2.0),
}


def corpus() -> list[str]:
    """The one-liners, comments and blank lines left out."""
    lines = [x for f in CORPUS for x in f.read_text(encoding="utf-8").splitlines()]
    return [x for x in lines if x.strip() and not x.startswith("#")]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(rounds: int) -> dict[str, float | int | str]:
    policy = load_policy(TomlSource.load(ROOT / "policies.toml"))
    cmds = [c for c in corpus() if len(c) < 200]
    kw = dict(user="alice", groups=["ops"], target="web1", login="root")
    decide(policy, command="ls", **kw)  # probe bash once, outside the timing
    cold: list[float] = []
    t0 = time.perf_counter()
    for _ in range(rounds):
        for c in cmds:
            policy.cache.data.clear()
            t = time.perf_counter()
            decide(policy, command=c, **kw)
            cold.append(time.perf_counter() - t)
    cold_total = time.perf_counter() - t0
    warm: list[float] = []
    t0 = time.perf_counter()
    for _ in range(rounds * 3):
        for c in cmds:
            t = time.perf_counter()
            decide(policy, command=c, **kw)
            warm.append(time.perf_counter() - t)
    warm_total = time.perf_counter() - t0
    big = ("echo hello world; ls -la /tmp | grep x && cat /etc/hosts\n" * 1200)[:65536]
    t = time.perf_counter()
    d = decide(policy, command=big, **kw)
    big_ms = (time.perf_counter() - t) * 1000
    everyday = [c for c in corpus()]
    decisions = [decide(policy, command=c, **kw) for c in everyday]
    held = [d for d in decisions if d.action != "allow"]
    by_design = [d for d in held if d.rule in HELD_BY_DESIGN or "inline interpreter" in d.reason]
    return {
        "everyday_allowed_share": round(1 - len(held) / len(everyday), 4),
        "everyday_held_by_design": len(by_design),
        "everyday_not_falsely_held": round(
            1 - (len(held) - len(by_design)) / (len(everyday) - len(by_design)), 4
        ),
        "corpus_size": len(cmds),
        "corpus_mean_chars": round(statistics.mean(len(c) for c in cmds), 1),
        "structure_checked_share": round(sum(map(needs_structure_check, cmds)) / len(cmds), 3),
        "cold_p50_ms": _pct(cold, 0.5) * 1000,
        "cold_p99_ms": _pct(cold, 0.99) * 1000,
        "cold_decisions_per_s": len(cold) / cold_total,
        "warm_p50_ms": _pct(warm, 0.5) * 1000,
        "warm_p99_ms": _pct(warm, 0.99) * 1000,
        "warm_decisions_per_s": len(warm) / warm_total,
        "mean_cold_ms": statistics.mean(cold) * 1000,
        "input_64k_ms": big_ms,
        "input_64k_action": d.action,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write the figures as JSON to this file")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one round")
    args = ap.parse_args()
    figures = run(1 if args.quick else args.rounds)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        goal = GOALS.get(key)
        if goal is not None and isinstance(value, float):
            shown = f"{shown:>12}   goal {goal[0]:10} {'met' if goal[1](value) else 'NOT met'}"
        print(f"{key:26} {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
