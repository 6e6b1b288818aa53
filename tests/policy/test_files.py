"""decide_file: the SFTP flow's entry point, and the same [[files]] rules for commands."""

import pytest

from bastion.policy import decide_file


def _file(policy, op, path, path2=None, login="root", groups=("ops",), cwd=None):
    return decide_file(
        policy,
        user="alice",
        groups=groups,
        target="web1",
        login=login,
        op=op,
        path=path,
        path2=path2,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "op,path,path2,login,action,rule",
    [
        ("read", "/etc/shadow", None, "root", "deny", "secret-read"),
        ("read", "/etc/gshadow", None, "root", "deny", "secret-read"),
        ("read", "/root/.ssh/id_rsa", None, "root", "deny", "secret-read"),
        ("read", ".ssh/id_ed25519", None, "deploy", "deny", "secret-read"),
        ("read", "~/.ssh/id_rsa.pub", None, "root", "allow", "default"),
        ("read", "/etc/ssl/private/server.key", None, "root", "deny", "secret-read"),
        ("read", "/home/deploy/.aws/credentials", None, "deploy", "deny", "secret-read"),
        ("read", ".kube/config", None, "root", "deny", "secret-read"),
        ("read", "/srv/app/key.pem", None, "root", "review", "pem-read"),
        ("read", "/etc/letsencrypt/live/x/fullchain.pem", None, "root", "allow", "default"),
        ("read", "/var/log/nginx/access.log", None, "root", "allow", "default"),
        ("write", "/etc/nginx/nginx.conf", None, "root", "deny", "system-write-sftp"),
        ("write", "/usr/local/bin/tool", None, "root", "deny", "system-write-sftp"),
        ("mkdir", "/boot/x", None, "root", "deny", "system-write-sftp"),
        ("setstat", "/etc/passwd", None, "root", "deny", "system-write-sftp"),
        ("write", ".bashrc", None, "deploy", "deny", "startup-write"),
        ("write", "/root/.ssh/authorized_keys", None, "root", "deny", "startup-write"),
        ("write", "/srv/app/.git/hooks/pre-commit", None, "root", "deny", "startup-write"),
        ("write", "/srv/app/release.tgz", None, "root", "allow", "default"),
        ("write", "/tmp/upload.bin", None, "deploy", "allow", "default"),
        ("remove", "/tmp/upload.bin", None, "deploy", "allow", "default"),
        ("rename", "/tmp/x", "/home/deploy/.profile", "deploy", "deny", "startup-write"),
        ("rename", "/tmp/x", "/tmp/y", "deploy", "allow", "default"),
        ("symlink", "/etc/shadow", "/tmp/s", "deploy", "deny", "secret-read"),
        ("symlink", "/tmp/hook", "/srv/app/.git/hooks/post-merge", "root", "deny", "startup-write"),
        ("read", "/etc/../etc/shadow", None, "root", "deny", "secret-read"),
        ("chmod", "/tmp/x", None, "root", "review", "on_unknown"),
        ("rename", "/tmp/x", None, "root", "review", "on_unknown"),
        ("read", "/tmp/\x00x", None, "root", "review", "on_unknown"),
    ],
)
def test_decide_file(shipped, op, path, path2, login, action, rule):
    d = _file(shipped, op, path, path2, login=login)
    assert (d.action, d.rule) == (action, rule), d.reason
    assert d.run == ""


def test_relative_to_cwd(shipped):
    d = _file(shipped, "read", "shadow", cwd="/etc")
    assert (d.action, d.rule) == ("deny", "secret-read")


def test_file_review_rule_carries_approval(tmp_path):
    from bastion.policy import load_policy
    from bastion.tomlsource import TomlSource

    path = tmp_path / "policies.toml"
    path.write_text(
        '[[files]]\nid = "uploads"\naction = "review"\nops = ["write"]\npaths = ["/srv/*"]\n'
        'approvers = ["leads"]\napproval_ttl = "1h"\n'
    )
    d = _file(load_policy(TomlSource.load(path)), "write", "/srv/app/x")
    assert (d.action, d.rule, d.approvers, d.approval_ttl) == (
        "review",
        "uploads",
        ("leads",),
        3600,
    )
