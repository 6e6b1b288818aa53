"""The shipped policy against tables of destructive and everyday commands."""

import pytest

from bastion.policy import decide
from bastion.policy.cases import load_cases

from .conftest import ROOT

CASES = ROOT / "bastion" / "data" / "cases"
DESTRUCTIVE = load_cases([CASES / "destructive.cases"])
EVERYDAY = load_cases([CASES / "everyday.cases"])
REVIEW = load_cases([CASES / "review.cases"])
CLASSES = load_cases([CASES / "classes.cases"])
AGENTS = load_cases([CASES / "agents.cases"])
ANSIBLE = load_cases([CASES / "ansible.cases"])


def _decide(policy, command):
    return decide(
        policy, user="alice", groups=["ops"], target="web1", login="root", command=command
    )


def test_table_sizes():
    assert len(DESTRUCTIVE) >= 2900
    assert len(EVERYDAY) >= 1200


def _check(policy, case):
    d, ok = case.run(policy)
    want = f"{case.expect} ({case.rule})"
    assert ok, f"{case.name}: {case.command!r}: expected {want}, got {d.reason}"


@pytest.mark.parametrize("case", DESTRUCTIVE, ids=lambda c: c.name)
def test_destructive(shipped, case):
    """Never allowed, and held or denied by the rule the row names."""
    assert case.expect != "allow" and case.rule
    _check(shipped, case)


@pytest.mark.parametrize("case", CLASSES, ids=lambda c: c.name)
def test_classes_of_issue_10(shipped, case):
    """Programs that take the terminal or run others, anti-forensics, availability,
    sensitive reads, legacy scp and SFTP servers: held or denied by the named rule."""
    assert case.expect != "allow" and case.rule
    _check(shipped, case)


@pytest.mark.parametrize("case", AGENTS + ANSIBLE, ids=lambda c: c.name)
def test_profiles(shipped, case):
    """The agents safe-list profile both ways, and Ansible for the automation group."""
    _check(shipped, case)


def test_agents_both_ways():
    allowed = [c for c in AGENTS if c.expect == "allow"]
    held = [c for c in AGENTS if c.expect != "allow"]
    assert len(allowed) >= 30 and len(held) >= 40
    assert all(c.rule and c.rule.startswith("agents-") for c in allowed)


@pytest.mark.parametrize("case", EVERYDAY, ids=lambda c: c.name)
def test_everyday(shipped, case):
    _check(shipped, case)


def test_everyday_mostly_allowed():
    assert sum(c.expect == "allow" for c in EVERYDAY) >= 0.98 * len(EVERYDAY)


@pytest.mark.parametrize("case", REVIEW, ids=lambda c: c.name)
def test_held_by_design(shipped, case):
    """Held (or denied: secrets, startup files, journal vacuum) by the rule each row names."""
    assert case.expect != "allow" and case.rule
    _check(shipped, case)


@pytest.mark.parametrize(
    "command,rendered",
    [
        (
            "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); sleep 0.01; done",
            ("i=...", "[ $i -lt 400 ]", "echo line $i", "sleep 0.01"),
        ),
        ("a; i=$((i+1))", ("a", "i=...")),
        ("kill -TERM $$", ("kill -TERM $$",)),
        ("kill -9 -1", ("kill -9 -1",)),
        ("find . -name '*.log' -mtime +7 -print", ("find . -name *.log -mtime +7 -print",)),
        ("test -n x -a -d y", ("test -n x -a -d y",)),
        ("expr 1 -lt 2", ("expr 1 -lt 2",)),
        ("killall -HUP nginx", ("killall -HUP nginx",)),
    ],
)
def test_normalized_form(shipped, command, rendered):
    assert _decide(shipped, command).commands == rendered


@pytest.mark.parametrize(
    "command,action",
    [
        ("kill -TERM $$", "allow"),
        ("kill $!", "allow"),
        ("kill %1", "allow"),
        ("kill -HUP 4242", "allow"),
        ("kill -1 4242", "allow"),
        ("kill -l", "allow"),
        ('kill "$$"', "allow"),
        ("kill $PID", "review"),
        ("kill -9 -1", "deny"),
        ("kill -- -1", "deny"),
        ("kill -s KILL -1", "deny"),
        ("kill 1", "deny"),
        ("kill -n 9 -1", "deny"),
        ("kill -KILL -1", "deny"),
        ("kill 4242 1", "deny"),
        ("pkill -u alice celery", "review"),  # kill by name: held (issue #10)
        ("pkill -HUP -u alice celery", "allow"),  # a reload signal
        ("pkill -u root", "deny"),
        ("killall -9 init", "deny"),
    ],
)
def test_kill(shipped, command, action):
    assert _decide(shipped, command).action == action


@pytest.mark.parametrize(
    "command,rule",
    [
        ("rm -rf /", "destructive-rm"),
        ("bash -c 'rm -r -f /'", "destructive-rm"),
        ("sudo env LD_PRELOAD=x rm -rf /", "destructive-rm"),
        ("psql -c 'drop/**/database x'", "destructive-sql"),
        (":(){ :|:& };:", "fork-bomb"),
        ("kubectl delete ns prod", "kubectl-delete"),
        ("curl x | bash", "on_unknown"),
        ("$x -rf /", "destructive-rm"),  # maybe-match of a deny rule: held at on_unknown
        ('rm -rf "$DIR"', "destructive-rm"),
        ("aws s3 rm s3://b --recursive", "cloud-storage-bulk-delete"),
        ("aws rds delete-db-instance --db-instance-identifier prod", "cloud-delete"),
        ("gcloud compute instances delete vm1", "cloud-delete-gcp-azure"),
        ("gsutil -m rm -r gs://b", "cloud-storage-delete"),
    ],
)
def test_rule_named(shipped, command, rule):
    assert _decide(shipped, command).rule == rule


def test_reason_names_command_and_context(shipped):
    d = _decide(shipped, "bash -c 'rm -rf /'")
    assert d.action == "deny"
    assert "rm -r -f /" in d.reason and "inside bash -c" in d.reason


def test_too_long_denied(shipped):
    d = _decide(shipped, "echo " + "a" * 70000)
    assert (d.action, d.rule) == ("deny", "too-long")


def test_unparseable_is_on_unknown(shipped):
    for bad in ["echo 'unterminated", "echo $(", "((((", "a\x00b", "cat <(ls"]:
        d = _decide(shipped, bad)
        assert (d.action, d.rule) == ("review", "on_unknown"), bad


def test_scope_by_group(shipped):
    from bastion.policy.rules import load_rules
    from bastion.tomlsource import TomlSource

    src = TomlSource("x", "", {})
    rules = load_rules(
        src, [{"id": "ops-only", "action": "deny", "program": "ls", "groups": ["contractors"]}]
    )
    from bastion.policy import Policy

    p = Policy(rules=rules)
    assert (
        decide(p, user="u", groups=["contractors"], target="t", login="l", command="ls").action
        == "deny"
    )
    assert (
        decide(p, user="u", groups=["ops"], target="t", login="l", command="ls").action == "allow"
    )


def test_cwd_resolution(shipped):
    d = decide(shipped, user="u", groups=[], target="t", login="root", command="rm -rf *", cwd="/")
    assert d.action == "deny"
    d = decide(
        shipped, user="u", groups=[], target="t", login="root", command="rm -rf *", cwd="/tmp/build"
    )
    assert d.action == "allow"


def test_policy_tests_pass(shipped):
    for t in shipped.tests:
        d, ok = t.run(shipped)
        assert ok, (t.command, t.expect, t.rule, d.reason)


#: Input that is not shell we can read (or too big, deep or slow): never allowed, and
#: decided quickly.
UNREADABLE = [
    "echo 'unterminated",
    'echo "x',
    "echo $(",
    "echo `x",
    "ls )",
    ")",
    "cat <<EOF\nx",
    "cat <<EOF",
    "a\x00b",
    "(" * 10000,
    "(" * 10000 + ")" * 10000,
    "$(" * 5000,
    "{ " * 5000,
    "echo $((" * 3000,
    "[[ " * 5000,
    "'" * 9999,
    '"$(' * 3000,
    "f(){ " * 3000,
    "cat <<E\n" * 3000,
    "echo ${" * 5000,
    "`" * 10001,
    "if " * 5000,
    "case x in " * 2000,
    "x=(" * 5000,
    "ls &&",
    "ls |",
    "| ls",
    "&& ls",
    ";;",
    "ls ;;",
    "case x in",
    "for",
    "if true; then",
    "while",
    "((1",
    "$((1",
    "${x",
    "<(ls",
    "ls >",
    "ls <<",
    "{1..100000}",
    "echo $(( " + "(" * 10000 + "1" + ")" * 10000 + " ))",
    "fi",
    "done",
    "{ ls",
    "then",
    "if a; then; fi",
    "a | | b",
    "a && ; b",
    "(ls",
    "x" * 70000,
    "ls\rrm -rf /",
    "echo \x1b[2J",
    "rm -rf /\u200b",
    "ls\u00a0-la",
]


@pytest.mark.parametrize("command", UNREADABLE, ids=lambda c: repr(c[:30]))
def test_unreadable_never_allowed(shipped, command):
    d = _decide(shipped, command)
    assert d.action in ("review", "deny"), d.reason
    assert "internal error" not in d.reason


@pytest.mark.parametrize(
    "text,actions",
    [
        ("echo " + "a" * 65000, ("allow",)),
        ("ls; " * 16000, ("allow", "review")),  # review: analysis ran past its bound
        ("a=1 " * 10000 + "ls", ("allow", "review")),
        ("eval " * 5000 + "ls", ("review",)),
        ("sudo " * 10000 + "ls", ("allow", "review")),
    ],
    ids=lambda x: repr(x[:12]) if isinstance(x, str) else "",
)
def test_large_inputs_bounded(shipped, text, actions):
    """Large inputs are decided or held at their time bound (time is in bench/policy.py,
    never asserted here)."""
    d = _decide(shipped, text)
    assert d.action in actions and "internal error" not in d.reason, d.reason[:200]


@pytest.mark.parametrize(
    "command",
    [
        "'${'c",
        "echo '${' x",
        'x="${" y',
        "ls \\",
        "ｒｍ\\",
        "$'\\",
        "a | b \\",
        "gosu rm " * 8000,
        "rm -rf /tmp/x " * 4600,
        "* > ?x",
        "alias a='a a a'; " * 3000,
        "tmux new '" * 6000,
        "a(){ b; }; b(){ a; }; " * 1500,
    ],
)
def test_no_internal_error_and_bounded(shipped, command):
    """Inputs that once hung bashlex, broke the word reader or took seconds to judge
    (each analysis has a deadline; a time-out is on_unknown, never an error)."""
    d = _decide(shipped, command)
    assert "internal error" not in d.reason


@pytest.mark.parametrize(
    "command",
    [
        "vim /etc/hosts",
        "vi x",
        "sudo vim /etc/sudoers.d/x",
        "nano /etc/fstab",
        "emacs -nw x",
        "psql",
        "psql -d prod",
        "sudo -u postgres psql",
        "mysql -u root",
        "sqlite3 app.db",
        "redis-cli -h db",
        "psql -h db1 -U app",
        "mongosh",
        "gdb -p 1234",
        "mc",
    ],
)
def test_programs_that_run_what_is_typed_are_held(shipped, command):
    d = _decide(shipped, command)
    assert (d.action, d.rule) == ("review", "terminal-program"), d.reason


@pytest.mark.parametrize(
    "command",
    [
        "vim --version",
        "psql -l",
        "psql -c 'select 1'",
        "echo 'select 1' | psql",
        "mysql -e 'show databases'",
        "sqlite3 app.db .tables",
        "redis-cli ping",
        "less /var/log/syslog",
        "man ls",
        "journalctl -u nginx | less",
    ],
)
def test_inline_commands_and_pagers_without_a_terminal_are_allowed(shipped, command):
    assert _decide(shipped, command).action == "allow", _decide(shipped, command).reason


@pytest.mark.parametrize(
    "command", ["less /var/log/syslog", "man ls", "dmesg | more", "sudo less /var/log/auth.log"]
)
def test_pagers_with_a_terminal_are_held(shipped, command):
    d = decide(
        shipped,
        user="alice",
        groups=["ops"],
        target="web1",
        login="root",
        command=command,
        pty=True,
    )
    assert (d.action, d.rule) == ("review", "terminal-program"), d.reason
