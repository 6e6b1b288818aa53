"""The share of everyday web one-liners (bench/oneliners*.txt) allowed for ops as root.

Issue #10 §3 asks for >= 98%; the figure is printed by bench/policy.py. This test keeps
the measured share from sliding back (the floor is the share at the last deliberate
change) and names every held line in its message.
"""

from bastion.policy import decide

from .conftest import ROOT

FLOOR = 0.95


def _corpus() -> list[str]:
    files = ("oneliners.txt", "oneliners_more.txt")
    lines = [x for f in files for x in (ROOT / "bench" / f).read_text("utf-8").splitlines()]
    return [x for x in lines if x.strip() and not x.startswith("#")]


def test_everyday_web_share(shipped):
    corpus = _corpus()
    held = []
    for c in corpus:
        d = decide(shipped, user="alice", groups=["ops"], target="web1", login="root", command=c)
        if d.action != "allow":
            held.append(f"{d.rule}: {c}")
    share = 1 - len(held) / len(corpus)
    assert len(corpus) >= 500
    assert share >= FLOOR, "\n".join(held)
