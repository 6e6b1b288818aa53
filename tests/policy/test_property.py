"""Random disguises of a held or denied command never come out allowed."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bastion.policy import decide, load_policy
from bastion.tomlsource import TomlSource

from .conftest import ROOT

SHIPPED = load_policy(TomlSource.load(ROOT / "policies.toml"))

DENIED = [
    "rm -rf /",
    "mkfs.ext4 /dev/sda",
    "dd if=/dev/zero of=/dev/sda",
    "reboot",
    "chmod -R 777 /",
    "kubectl delete ns prod",
    "redis-cli flushall",
    "kill -9 1",
    # held or denied classes of issue #10 §2 and #14
    "systemctl stop auditd",
    "journalctl --vacuum-time=1s",
    "cat /etc/shadow",
    "cp /root/.ssh/id_rsa /tmp/k",
    "history -c",
    "truncate -s0 /var/log/auth.log",
    "setenforce 0",
    "useradd -m bob",
    "systemctl stop nginx",
    "pkill -f gunicorn",
    "git reset --hard",
    "dropdb app",
    "umount -a",
    "scp -t /etc/cron.d/",
    "/usr/lib/openssh/sftp-server",
    "tar -cf x.tar /tmp --checkpoint-action=exec=id",
    "pg_dumpall",
]


def _quote_word(word: str, how: int) -> str:
    if how == 0:
        return word
    if how == 1:
        return "'" + word + "'"
    if how == 2:
        return '"' + word + '"'
    if how == 3:
        return "$'" + "".join(f"\\x{ord(c):02x}" for c in word) + "'"
    if how == 4 and len(word) > 1:
        return word[0] + "''" + word[1:]
    if how == 5:
        return "\\" + word[0] + word[1:]
    return word


WRAP = [
    "{}",
    "sudo {}",
    "env A=1 {}",
    "nice {}",
    "timeout 3 {}",
    "bash -c {q}",
    "sh -c {q}",
    "eval {q}",
    "xargs -0 {}",
    "nohup {}",
    "command {}",
    "( {} )",
    "{{ {}; }}",
    "true && {}",
    "echo $({})",
    "f() {{ {}; }}; f",
    "ssh h {q}",
    "su -c {q}",
    "busybox {}",
    "echo {q} | sh",
    "time {}",
    "stdbuf -o0 {}",
    "setsid {}",
]


def _squote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(DENIED),
    st.lists(st.integers(0, 5), min_size=6, max_size=6),
    st.lists(st.sampled_from(WRAP), min_size=1, max_size=3),
    st.sampled_from(["", "/usr/bin/", "/bin/../bin/"]),
)
def test_disguised_denied_never_allowed(base, quoting, wraps, prefix):
    words = base.split()
    words[0] = prefix + words[0]
    cmd = " ".join(_quote_word(w, quoting[i % len(quoting)]) for i, w in enumerate(words))
    for w in wraps:
        cmd = (
            w.replace("{q}", _squote(cmd)).replace("{}", cmd)
            if "{q}" in w
            else w.replace("{{", "\x01")
            .replace("}}", "\x02")
            .replace("{}", cmd)
            .replace("\x01", "{")
            .replace("\x02", "}")
        )
    d = decide(SHIPPED, user="u", groups=[], target="t", login="root", command=cmd)
    assert d.action != "allow", (cmd, d.reason)


_SHELLISH = st.lists(
    st.sampled_from(list("ab -/$'\"`\\(){}[]<>|&;#!*?~=\n\t0123456789") + ["rm", "<<E", "E\n"]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _SHELLISH))
def test_decide_never_raises(text):
    """decide catches every internal error (fail closed) and says so in the reason: the
    test fails on that reason, so an exception inside the analysis is seen."""
    d = decide(SHIPPED, user="u", groups=[], target="t", login="root", command=text)
    assert d.action in ("allow", "deny", "review")
    assert "internal error" not in d.reason, (text, d.reason)
    assert d.action != "deny" or d.run == "", (text, d)
    assert d.action != "allow" or d.run.endswith(text), (text, d)


_PLAIN_TOKENS = [
    "ls",
    "rm",
    "-rf",
    "/",
    "a",
    "b.txt",
    "x=1",
    "PATH=/bin",
    "if",
    "then",
    "fi",
    "while",
    "do",
    "done",
    "for",
    "in",
    "until",
    "else",
    "elif",
    "time",
    "[",
    "]",
    "-f",
    "*.log",
    "~/x",
    "2>&1",
    ">",
    ">>",
    "<",
    "|",
    "||",
    "&&",
    ";",
    "&",
    "\n",
    "2>",
    "&>",
    "1",
    "echo",
    "sudo",
    "case",
    "esac",
    "select",
    "-1",
    "kill",
    "a,b",
    "@x",
    "%1",
    "x+y",
    "?",
    "[ab]",
]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_PLAIN_TOKENS), min_size=1, max_size=12),
    st.lists(st.sampled_from([" ", "", "\t", "  "]), min_size=12, max_size=12),
)
def test_plain_input_needs_no_crosscheck(tokens, seps):
    """Where the cross-check is skipped, bashlex could neither add a command nor fail."""
    from bastion.policy.crosscheck import bashlex_command_spans, needs_crosscheck
    from bastion.policy.normalize import normalize
    from bastion.policy.shparse import parse
    from bastion.policy.words import ShellSyntaxError

    text = "".join(t + s for t, s in zip(tokens, seps, strict=False))
    assume("<<" not in text)  # "<" "<" joined: a here-doc, which is cross-checked
    assert not needs_crosscheck(text)
    try:
        seen = {c.rendered for c in normalize(parse(text, 1.0), None, 1.0)}
    except ShellSyntaxError:
        return  # unreadable: on_unknown whatever bashlex says
    for span in bashlex_command_spans(text) or ():
        extra = normalize(parse(span, 1.0, partial=True), None, 1.0)
        assert {c.rendered for c in extra} <= seen, (text, span)
