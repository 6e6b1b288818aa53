"""bastion policy check / test through click's CliRunner."""

import json
import shutil

import pytest
from click.testing import CliRunner

from bastion.cli_policy import policy

from .conftest import ROOT


@pytest.fixture()
def home(tmp_path):
    shutil.copy(ROOT / "policies.toml", tmp_path / "policies.toml")
    return str(tmp_path)


def test_check_exit_codes(home):
    r = CliRunner()
    assert r.invoke(policy, ["check", "--home", home, "--", "ls -l"]).exit_code == 0
    res = r.invoke(policy, ["check", "--home", home, "--", "rm -rf /"])
    assert res.exit_code == 1 and "destructive-rm" in res.output
    assert r.invoke(policy, ["check", "--home", home, "--", "sudo -i"]).exit_code == 3


def test_check_json(home):
    res = CliRunner().invoke(
        policy, ["check", "--home", home, "--json", "--group", "ops", "--", "bash -c 'rm -rf /'"]
    )
    out = json.loads(res.output)
    assert out["decision"] == "deny" and out["commands"]


def test_batch(home):
    lines = [
        json.dumps({"command": "ls", "user": "a", "groups": ["x"], "target": "t", "login": "root"}),
        "not json",
        json.dumps({"command": 3}),
        json.dumps({"command": "reboot"}),
    ]
    res = CliRunner().invoke(
        policy, ["check", "--home", home, "--batch"], input="\n".join(lines) + "\n"
    )
    assert res.exit_code == 0
    outs = [json.loads(x) for x in res.output.splitlines()]
    assert outs[0]["decision"] == "allow"
    assert "error" in outs[1] and "error" in outs[2]
    assert outs[3]["decision"] == "deny"


def test_policy_test_command(home):
    res = CliRunner().invoke(policy, ["test", "--home", home])
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output


def test_bad_config_one_line(tmp_path):
    (tmp_path / "policies.toml").write_text('[policy]\non_unknown = "allow"\n')
    res = CliRunner().invoke(policy, ["check", "--home", str(tmp_path), "--", "ls"])
    assert res.exit_code == 2
    assert res.output.startswith("error: ") or "error: " in (res.stderr or "")
    assert "Traceback" not in res.output


def test_policy_test_cases(home, tmp_path):
    cases = tmp_path / "mine.cases"
    cases.write_text(
        "rm -rf / | deny | destructive-rm\nls -la | allow | *\n"
        "% groups=agents\nls -la | deny | nope\n"
    )
    res = CliRunner().invoke(policy, ["test", "--home", home, "--cases", str(cases)])
    assert res.exit_code == 1, res.output
    assert "mine.cases:4" in res.output and "2 failed" not in res.output
    assert "1 failed" in res.output


def test_policy_test_shipped_cases(home):
    res = CliRunner().invoke(policy, ["test", "--home", home, "--cases", "shipped"])
    assert res.exit_code == 0, res.output[-2000:]
    assert " passed, 0 failed" in res.output


def test_policy_test_bad_case_file(home, tmp_path):
    cases = tmp_path / "bad.cases"
    cases.write_text("ls -la | allow\n")
    res = CliRunner().invoke(policy, ["test", "--home", home, "--cases", str(cases)])
    assert res.exit_code == 2 and "bad.cases:1" in (res.stderr or res.output)
