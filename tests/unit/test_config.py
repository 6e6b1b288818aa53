"""policies.toml validation: every mistake names file, line and key."""

from __future__ import annotations

import os

import pytest

from bastion.config import load_config, parse_listen
from bastion.errors import ConfigError
from bastion.home import add_target, init_home


@pytest.fixture
def home(tmp_path):
    init_home(tmp_path)
    return tmp_path


def _write(home, text):
    path = home / "policies.toml"
    path.write_text(text)
    return path


def _error(home) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(home)
    return info.value


def test_shipped_default_loads(home):
    config = load_config(home)
    assert config.server.listen_port == 2222
    assert "localhost" in config.server.hostnames
    assert config.targets == {}


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[server]\nlisten = 2222\n", 2, "server.listen", "must be a string"),
        ("[server]\n\nbogus = 1\n", 3, "server.bogus", "unknown key"),
        ("[servr]\nlisten = 'x'\n", 1, "servr", "unknown section"),
        ("[server]\nlisten = 'nope'\n", 2, "server.listen", "127.0.0.1:2222"),
        ("[recording]\nmax_output_mb = -1\n", 2, "recording.max_output_mb", "at least 1"),
        ("[recording]\nrecord_input = 'yes'\n", 2, "recording.record_input", "true or false"),
        (
            "[[targets]]\nname = 'a'\nhost = 'h'\nhost_keys = ['k']\n\n"
            "[[targets]]\nname = 'b'\nhost = 'h'\nport = 'x'\nhost_keys = ['k']\n",
            9,
            "targets[1].port",
            "must be an integer",
        ),
        ("[[targets]]\nname = 'a'\nhost = 'h'\n", 1, "targets[0].host_keys", "pin at least"),
        ("[[targets]]\nname = 'a'\nhost_keys = ['k']\n", 1, "targets[0].host", "missing"),
        (
            "[[trusted_ca]]\nname = 'x'\nfoo = 1\npublic_key = 'k'\n",
            3,
            "trusted_ca[0].foo",
            "unknown key",
        ),
    ],
)
def test_errors_name_line_and_key(home, text, line, key, words):
    _write(home, text)
    err = _error(home)
    assert err.path.endswith("policies.toml")
    assert err.line == line
    assert err.key == key
    assert words in str(err)
    assert str(err).startswith(f"{err.path}:{line}: {key}: ")


def test_syntax_error_has_a_line(home):
    _write(home, "[server]\nlisten = \n")
    err = _error(home)
    assert err.line == 2 and "syntax" in str(err)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path)


def test_missing_ca_key_says_run_init(home):
    os.unlink(home / "keys" / "user_ca")
    with pytest.raises(ConfigError, match="bastion init"):
        load_config(home)


def test_loose_key_mode_is_refused(home):
    os.chmod(home / "keys" / "host_ca", 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_config(home)


def test_target_add_round_trips_and_keeps_comments(home, tmp_path):
    from bastion.ssh.certs import generate_key, write_private_key

    key_dir = tmp_path / "k"
    write_private_key(generate_key(), key_dir / "id")
    host_key = generate_key().export_public_key("openssh").decode().strip()
    add_target(
        home,
        "web1",
        host="10.0.0.5",
        port=2200,
        login="root",
        key_file=key_dir / "id",
        allow_groups=["ops"],
        host_key=host_key,
    )
    add_target(
        home,
        "web1",
        host="10.0.0.5",
        port=2200,
        login="deploy",
        key_file=key_dir / "id",
        allow_groups=["ci", "ops"],
        host_key=None,
    )
    text = (home / "policies.toml").read_text()
    assert "# Where clients connect." in text  # comments survive
    config = load_config(home)
    web1 = config.targets["web1"]
    assert web1.port == 2200 and web1.host_keys == (host_key,)
    assert set(web1.logins) == {"root", "deploy"}
    assert web1.logins_for(("ci",)) == ["deploy"]
    assert oct((home / "keys" / "targets" / "web1-root").stat().st_mode & 0o777) == "0o600"


def test_target_needs_a_pinned_host_key(home, tmp_path):
    from bastion.errors import BastionError
    from bastion.ssh.certs import generate_key, write_private_key

    write_private_key(generate_key(), tmp_path / "id")
    with pytest.raises(BastionError, match="pin the host key"):
        add_target(
            home,
            "x",
            host="h",
            port=22,
            login="l",
            key_file=tmp_path / "id",
            allow_groups=["g"],
            host_key=None,
        )


def test_target_without_groups_is_usable_by_nobody(home, tmp_path):
    from bastion.ssh.certs import generate_key, write_private_key

    write_private_key(generate_key(), tmp_path / "id")
    add_target(
        home,
        "x",
        host="h",
        port=22,
        login="l",
        key_file=tmp_path / "id",
        allow_groups=[],
        host_key=generate_key().export_public_key().decode(),
    )
    target = load_config(home).targets["x"]
    assert target.logins_for(("ops",)) == [] and target.logins_for(()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2222", ("127.0.0.1", 2222)),
        ("[::1]:22", ("::1", 22)),
        (":2222", ("0.0.0.0", 2222)),
    ],
)
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


# ---- [shell] ---------------------------------------------------------------------------


def test_shell_section_defaults_and_overrides(home):
    config = load_config(home)
    assert (config.shell.idle_timeout, config.shell.history_size) == (3600, 1000)
    assert config.shell.record_input is False
    _write(home, "[recording]\nrecord_input = true\n[shell]\nidle_timeout = '0'\n")
    config = load_config(home)
    assert config.shell.idle_timeout == 0 and config.shell.record_input is True
    _write(home, "[recording]\nrecord_input = true\n[shell]\nrecord_input = false\n")
    assert load_config(home).shell.record_input is False


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[shell]\nidle_timeout = 'soon'\n", "shell.idle_timeout", "bad duration"),
        ("[shell]\nidle_timeout = 60\n", "shell.idle_timeout", "must be a string"),
        ("[shell]\nhistory_size = -1\n", "shell.history_size", "at least 0"),
        ("[shell]\nrecord_input = 'no'\n", "shell.record_input", "true or false"),
    ],
)
def test_shell_section_errors(home, text, key, words):
    _write(home, text)
    err = _error(home)
    assert err.key == key and words in str(err)
