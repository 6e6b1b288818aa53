"""The admin CLI through click's CliRunner: output and errors read as sentences."""

from __future__ import annotations

import subprocess

from click.testing import CliRunner

from bastion.cli import main, user_main
from bastion.ssh.certs import generate_key, write_private_key


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_init_cert_issue_and_known_hosts(tmp_path):
    home = tmp_path / "home"
    r = _run("init", "--home", str(home))
    assert r.exit_code == 0 and "bastion home ready" in r.output
    assert (home / "keys" / "user_ca").stat().st_mode & 0o077 == 0
    again = _run("init", "--home", str(home))
    assert again.exit_code == 0 and "created" not in again.output  # nothing overwritten

    key = generate_key()
    write_private_key(key, tmp_path / "id_ed25519")
    r = _run(
        "cert",
        "issue",
        "--home",
        str(home),
        "--principal",
        "alice",
        "--group",
        "ops",
        "--ttl",
        "1h",
        str(tmp_path / "id_ed25519.pub"),
    )
    assert r.exit_code == 0, r.output
    cert = tmp_path / "id_ed25519-cert.pub"
    listing = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(cert)], capture_output=True, text=True, check=True
    ).stdout
    assert "alice" in listing and "groups@bastion" in listing

    r = _run("ca", "known-hosts", "--home", str(home))
    # scoped to the bastion's own names (and targets'), never "*"
    assert r.output.startswith("@cert-authority localhost,[localhost]:2222,127.0.0.1,")
    assert " * " not in r.output and r.output.split()[2] == "ssh-ed25519"


def test_target_add_with_host_key_file_and_list(tmp_path):
    home = tmp_path / "home"
    _run("init", "--home", str(home))
    write_private_key(generate_key(), tmp_path / "target_key")
    write_private_key(generate_key(), tmp_path / "host_key")
    r = _run(
        "target",
        "add",
        "web1",
        "--home",
        str(home),
        "--host",
        "10.0.0.5",
        "--login",
        "root",
        "--key-file",
        str(tmp_path / "target_key"),
        "--allow-group",
        "ops",
        "--host-key",
        str(tmp_path / "host_key.pub"),
    )
    assert r.exit_code == 0, r.output
    r = _run("target", "list", "--home", str(home))
    assert "web1  10.0.0.5:22" in r.output and "root: groups ops" in r.output


def test_errors_are_one_line_without_traceback(tmp_path):
    r = CliRunner().invoke(main, ["serve", "--home", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.startswith("error: ") and "file not found" in r.output
    assert "Traceback" not in r.output

    _run("init", "--home", str(tmp_path))
    r = CliRunner().invoke(
        main,
        [
            "cert",
            "issue",
            "--home",
            str(tmp_path),
            "--principal",
            "a",
            "--ttl",
            "soon",
            str(tmp_path / "keys" / "user_ca.pub"),
        ],
    )
    assert r.exit_code == 2 and "bad duration" in r.output


def test_home_from_environment(tmp_path):
    r = CliRunner().invoke(main, ["init"], env={"BASTION_HOME": str(tmp_path / "h")})
    assert r.exit_code == 0 and (tmp_path / "h" / "policies.toml").exists()


def test_user_cli_prints_ssh_config():
    r = CliRunner().invoke(
        user_main, ["ssh-config", "--bastion", "b.example.com:2222", "--user", "alice"]
    )
    assert r.exit_code == 0
    assert "Port 2222" in r.output and "ProxyJump bastion" in r.output
    assert "replace web1 db1" in r.output
    r = CliRunner().invoke(
        user_main, ["ssh-config", "--bastion", "b:2222", "--target", "web1", "--target", "db9"]
    )
    assert "\nHost web1 db9\n    ProxyJump bastion" in r.output


def test_init_prints_no_library_warning(tmp_path):
    """A fresh interpreter, as an operator runs it: only our own lines, no warnings
    from cryptography or asyncssh on the terminal."""
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "bastion", "init", "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "Warning" not in r.stdout


def test_bastion_cli_says_which_bastion_it_needs(tmp_path, monkeypatch):
    monkeypatch.delenv("BASTION_ADDR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    r = CliRunner().invoke(user_main, ["requests"])
    assert r.exit_code == 2
    assert "which bastion? give --bastion HOST:PORT" in r.output


def test_bastion_cli_names_a_missing_certificate(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    key = generate_key()
    write_private_key(key, tmp_path / "id_ed25519")
    (tmp_path / "known_hosts").write_text("")
    r = CliRunner().invoke(
        user_main,
        ["--bastion", "127.0.0.1:1", "-i", str(tmp_path / "id_ed25519"),
         "--known-hosts", str(tmp_path / "known_hosts"), "requests"],
    )  # fmt: skip
    assert r.exit_code == 2
    assert "no certificate at" in r.output and "bastion-cli login" in r.output
