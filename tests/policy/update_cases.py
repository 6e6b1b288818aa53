"""Re-run case files against the shipped policy and rewrite rows whose result changed.

A developer's tool, run by hand after a deliberate policy change:
    python -m tests.policy.update_cases [--write] FILE...
It prints every changed row (old -> new) and, with --write, rewrites them. It refuses to
write a row of destructive.cases that would come out allow: fix the policy instead.
Review the printed list: every change must be intended.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bastion.policy import decide, load_policy
from bastion.policy.cases import format_case, parse_cases
from bastion.tomlsource import TomlSource

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    write = "--write" in argv
    files = [Path(a) for a in argv if a != "--write"]
    policy = load_policy(TomlSource.load(ROOT / "policies.toml")).for_tests()
    bad = 0
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        cases = {c.index: c for c in parse_cases("\n".join(lines), str(path))}
        for number, case in cases.items():
            d = decide(
                policy,
                user=case.user,
                groups=case.groups,
                target=case.target,
                login=case.login,
                command=case.command,
                cwd=case.cwd,
                pty=case.pty,
            )
            if d.action == case.expect and (case.rule is None or d.rule == case.rule):
                continue
            print(
                f"{path.name}:{number}: {case.command[:70]!r}: "
                f"{case.expect} ({case.rule}) -> {d.action} ({d.rule})"
            )
            if path.name == "destructive.cases" and d.action == "allow":
                bad += 1
                continue
            lines[number - 1] = format_case(case.command, d.action, d.rule)
        if write:
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if bad:
        print(f"{bad} destructive rows would be allowed: not written", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
