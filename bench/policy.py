"""Benchmark the command policy: decisions/s and p50/p99 latency, cold and warm cache.

Usage: python bench/policy.py [--json FILE] [--rounds N]
Cold: the analysis cache is cleared before each decision (every command parsed anew).
Warm: repeated commands hit the per-policy LRU cache, as agents repeating commands do.
Also times a 64 KB input (decided or refused). Prints the figures; no assertions.
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
from bastion.tomlsource import TomlSource  # noqa: E402
from tests.policy.cases import EVERYDAY, destructive_cases  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(rounds: int) -> dict[str, float]:
    policy = load_policy(TomlSource.load(ROOT / "policies.toml"))
    corpus = [c for c in EVERYDAY + destructive_cases()[:100] if len(c) < 200]
    kw = dict(user="alice", groups=["ops"], target="web1", login="root")
    cold: list[float] = []
    for _ in range(rounds):
        for c in corpus:
            policy.analyze.cache_clear()
            t = time.perf_counter()
            decide(policy, command=c, **kw)
            cold.append(time.perf_counter() - t)
    warm: list[float] = []
    t0 = time.perf_counter()
    for _ in range(rounds * 5):
        for c in corpus:
            t = time.perf_counter()
            decide(policy, command=c, **kw)
            warm.append(time.perf_counter() - t)
    warm_total = time.perf_counter() - t0
    big = "echo hello world; ls -la /tmp | grep x && cat /etc/hosts\n" * 1200
    big = big[:65536]
    t = time.perf_counter()
    d = decide(policy, command=big, **kw)
    big_ms = (time.perf_counter() - t) * 1000
    return {
        "corpus_size": len(corpus),
        "cold_p50_ms": _pct(cold, 0.5) * 1000,
        "cold_p99_ms": _pct(cold, 0.99) * 1000,
        "cold_decisions_per_s": len(cold) / sum(cold),
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
    args = ap.parse_args()
    figures = run(args.rounds)
    for key, value in figures.items():
        print(f"{key:24} {value:.3f}" if isinstance(value, float) else f"{key:24} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
