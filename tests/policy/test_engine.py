"""Engine behaviour beyond the tables: caching, approval settings, profiles, run text."""

import os

import pytest

from bastion.policy import decide, load_policy
from bastion.policy.decide import Policy
from bastion.tomlsource import TomlSource


def _policy(tmp_path, text):
    path = tmp_path / "policies.toml"
    path.write_text(text)
    return load_policy(TomlSource.load(path))


def _decide(policy, command, groups=("ops",), **kw):
    return decide(
        policy, user="alice", groups=groups, target="web1", login="root", command=command, **kw
    )


def test_time_out_is_never_cached():
    policy = Policy(parse_timeout_ms=1)
    command = "; ".join(f"echo {i} $(date) | grep -v x" for i in range(1500))
    first = _decide(policy, command)
    assert (first.action, first.rule) == ("review", "on_unknown")
    assert "too long" in first.reason
    assert not policy.cache.data  # held under load once, not for the life of the process
    _decide(policy, "ls -l")
    assert ("ls -l", None) in policy.cache.data  # verdicts are cached


def test_review_rule_carries_its_approval_settings(tmp_path):
    policy = _policy(
        tmp_path,
        '[[rules]]\nid = "drop"\naction = "review"\nprogram = "dropdb"\n'
        'approvers = ["dba", "leads"]\napprovals_required = 2\napproval_ttl = "15m"\n',
    )
    d = _decide(policy, "sudo -u postgres dropdb app")
    assert (d.action, d.rule) == ("review", "drop")
    assert (d.approvers, d.approvals_required, d.approval_ttl) == (("dba", "leads"), 2, 900)
    plain = _decide(policy, "ls")
    assert (plain.approvers, plain.approvals_required, plain.approval_ttl) == ((), 1, None)


@pytest.mark.parametrize(
    "groups,command,action,rule",
    [
        (("agents",), "ls -la", "allow", "ro"),
        (("agents",), "touch x", "review", "profile:agents"),
        (("agents",), "rm -rf /", "deny", "rm"),
        (("ops",), "touch x", "allow", "default"),
        (("ops", "agents"), "touch x", "review", "profile:agents"),
    ],
)
def test_profile_default(tmp_path, groups, command, action, rule):
    policy = _policy(
        tmp_path,
        '[[rules]]\nid = "rm"\naction = "deny"\nprogram = "rm"\n'
        '[[rules]]\nid = "ro"\naction = "allow"\nprogram = "ls"\ngroups = ["agents"]\n'
        '[[profiles]]\nid = "agents"\ndefault = "review"\ngroups = ["agents"]\n',
    )
    d = _decide(policy, command, groups=groups)
    assert (d.action, d.rule) == (action, rule)


def test_run_text_is_the_command_after_a_safe_environment(shipped):
    d = _decide(shipped, "git log -5")
    assert d.action == "allow"
    prefix, _, command = d.run.partition("\n")
    assert command == "git log -5"
    assert "GIT_PAGER=cat" in prefix and "LESSSECURE=1" in prefix
    assert _decide(shipped, "rm -rf /").run == ""


def test_run_text_without_safe_environment(tmp_path, shipped):
    assert _decide(shipped, "ls -l").run == "ls -l"  # nothing that pages: exactly as typed
    policy = _policy(tmp_path, "[policy]\nsafe_environment = false\n")
    assert _decide(policy, "git log").run == "git log"


@pytest.mark.parametrize(
    "command,rule,says",
    [
        # a name only known at run time: no rule is named unless its conditions on the
        # arguments hold, and the reason says why the command is held
        ("c=echo; $c hi", "on_unknown", "only known at run time"),
        ("$EDITOR notes", "on_unknown", "only known at run time"),
        ("$(which rm) -rf /srv", "wipe-srv", "wipes /srv"),
    ],
)
def test_run_time_name_names_a_rule_only_when_its_arguments_match(tmp_path, command, rule, says):
    policy = _policy(
        tmp_path,
        '[[rules]]\nid = "mkfs"\naction = "review"\nmessage = "formats a disk"\n'
        'program = ["mkfs"]\napprovers = ["storage"]\n'
        '[[rules]]\nid = "wipe-srv"\naction = "review"\nmessage = "wipes /srv"\n'
        'program = ["rm"]\noptions = ["-r"]\npaths = ["/srv"]\n',
    )
    d = _decide(policy, command)
    assert (d.action, d.rule) == ("review", rule)
    assert says in d.reason and ("formats a disk" not in d.reason)
    if rule == "on_unknown":
        # the held rule's approval settings still apply: an unknown name is not easier
        assert d.approvers == ("storage",)


def _bash_children() -> int:
    me = str(os.getpid())
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                name, rest = f.read().rsplit(")", 1)
            count += rest.split()[1] == me and name.endswith("(bash")
        except OSError:
            pass
    return count


def test_bash_reading_begun_is_collected_when_our_reader_fails_first():
    """bash starts reading while our reader works; when ours fails (a syntax error), the
    bash process is killed and reaped and its pipe closed, never left behind."""
    policy = Policy()
    _decide(policy, "for f in *; do echo $f; done")  # warm: the reader pool is full
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(40):
        d = _decide(policy, f"for f in {i}; do echo $f; done )")
        assert (d.action, d.rule) == ("review", "on_unknown") and "cannot parse" in d.reason
    assert len(os.listdir("/proc/self/fd")) < fds + 10  # a leak would be one per input
    ok = _decide(policy, "for f in a b; do echo $f; done")
    assert ok.action == "allow"  # the pool still serves readings


def test_bash_readers_are_reused_and_bounded():
    """The structure check keeps a few bash readers running and reuses them: many
    inputs, including ones read by a bash of their own (a trailing backslash) and ones
    that forge a sentinel line, leave no processes or pipes behind."""
    policy = Policy()
    _decide(policy, "for f in *; do echo $f; done")
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(60):
        assert _decide(policy, f"for f in {i}; do echo $f; done").action == "allow"
        forged = _decide(policy, f"for f in {i}; do echo $f; done\n: bastion-end-{i:032x}")
        assert forged.action == "allow", forged.reason
        alone = _decide(policy, f"for f in {i}; do echo $f; done \\")  # its own bash
        assert alone.action == "allow", alone.reason
    assert len(os.listdir("/proc/self/fd")) < fds + 10
    assert _bash_children() <= 3  # the pool's readers (2) and one being started
    for _ in range(5):
        reloaded = Policy()  # a reloaded policy shares the readers
        assert _decide(reloaded, "for f in a b; do echo $f; done").action == "allow"
    assert _bash_children() <= 3


def test_without_a_bash_that_parses_only_plain_words_are_decided():
    policy = Policy(bash="/nonexistent/bash")
    held = _decide(policy, "for f in a b; do echo $f; done")
    assert (held.action, held.rule) == ("review", "on_unknown")
    assert "cannot confirm how bash reads it" in held.reason
    assert _decide(policy, "ls -la /var/log | tail -5").action == "allow"


@pytest.mark.parametrize(
    "command",
    [
        # a comment inside the substitution hides the ")" our scan would end it at
        "echo $(( $(wc -l f # )\nprintf 'a[\\x24(touch /tmp/probe)]') ))",
        # the redefinition comes on a later line, as bash -c reads it
        "shopt -s expand_aliases\nalias date='cat /tmp/p'\necho $(( $(date +%s) ))",
        "x=$(date +%s)\nhash -p /tmp/p date\necho $(( x + $(date +%s) ))",
    ],
)
def test_arithmetic_trusts_no_digits_it_cannot_vouch_for(shipped, command):
    d = _decide(shipped, command)
    assert (d.action, d.rule) == ("review", "on_unknown"), d.reason


def test_arithmetic_over_digit_printers_flows(shipped):
    d = _decide(shipped, 'echo $(( ($(date -d "$(cat when.txt)" +%s) - $(date +%s)) / 86400 ))')
    assert d.action == "allow", d.reason
