"""Ansible with its default configuration through the bastion (ProxyJump), as group
``automation``: ``-m ping``, ``-m copy`` and a playbook that gathers facts.

Everything Ansible does is harmless here: its own temporary directory under
~/.ansible/tmp (removed again by the test), a file copied into the test's temp dir,
facts read. Its transfers are SFTP through the bastion's file policy.

The shipped policy is used as it is: its rules for group ``automation`` allow Ansible's
module runs and the cleanup of its own temporary directory, nothing more.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bastion.config import load_policy_file
from bastion.home import add_target, init_home

from .conftest import LOGIN, make_client, start_bastion

ANSIBLE = str(Path(sys.executable).parent / "ansible")
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def _shipped_has_automation_rule(home: Path) -> bool:
    policy = load_policy_file(home)
    for rule in getattr(policy, "rules", []):
        conf = getattr(rule, "conf", None) or {}
        if "automation" in conf.get("groups", ()):
            return True
    return False


@pytest.fixture(scope="module")
def ansible_world(world, tmp_path_factory):
    if not Path(ANSIBLE).exists():
        pytest.fail("ansible-core is not installed (requirements-test.lock has it)")
    tmp = tmp_path_factory.mktemp("ansible")
    home = tmp / "home"
    init_home(home)
    assert _shipped_has_automation_rule(home), "the shipped policy lost its Ansible rules"
    add_target(
        home,
        "web1",
        host="127.0.0.1",
        port=world.sshd.port,
        login=LOGIN,
        key_file=world.tmp / "target_key",
        allow_groups=["automation"],
        host_key=world.sshd.host_key_pub.read_text().strip(),
    )
    bastion = start_bastion(home)
    (tmp / "robot").mkdir()
    robot = make_client(tmp / "robot", home, bastion.port, "robot", ["automation"])
    inventory = tmp / "inventory.ini"
    inventory.write_text(
        "[web]\n"
        f"web1 ansible_user={LOGIN} ansible_python_interpreter=/usr/bin/python3 "
        f"ansible_ssh_common_args='-F {robot.config} -J bastion'\n"
    )
    remote_tmp = Path(os.path.expanduser(f"~{LOGIN}")) / ".ansible" / "tmp"
    before = set(remote_tmp.iterdir()) if remote_tmp.exists() else set()
    env = {
        **os.environ,
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / "cp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    yield tmp, inventory, env, home
    bastion.stop()
    if remote_tmp.exists():  # what Ansible left behind on this machine, if anything
        for leftover in set(remote_tmp.iterdir()) - before:
            if leftover.name.startswith("ansible-tmp-"):
                shutil.rmtree(leftover, ignore_errors=True)


def _run(cmd: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, env=env, cwd=cwd, timeout=180)


def test_ping(ansible_world):
    tmp, inventory, env, _ = ansible_world
    r = _run([ANSIBLE, "all", "-i", str(inventory), "-m", "ping"], env, tmp)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert b'"ping": "pong"' in r.stdout


def test_copy_goes_through_the_file_policy(ansible_world):
    tmp, inventory, env, home = ansible_world
    src = tmp / "payload.txt"
    src.write_text("copied by ansible through the bastion\n")
    dest = tmp / "dest" / "payload.txt"
    dest.parent.mkdir(exist_ok=True)
    r = _run(
        [ANSIBLE, "all", "-i", str(inventory), "-m", "copy", "-a", f"src={src} dest={dest}"],
        env,
        tmp,
    )
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert dest.read_text() == src.read_text()
    audit = (home / "audit.jsonl").read_text()
    assert '"event": "sftp"' in audit and "AnsiballZ_copy.py" in audit


def test_playbook_with_facts(ansible_world):
    tmp, inventory, env, _ = ansible_world
    out = tmp / "facts.txt"
    book = tmp / "site.yml"
    book.write_text(
        "- hosts: all\n"
        "  gather_facts: true\n"
        "  tasks:\n"
        "    - name: write a fact\n"
        "      copy:\n"
        '        content: "{{ ansible_facts.hostname }}\\n"\n'
        f"        dest: {out}\n"
    )
    r = _run([PLAYBOOK, "-i", str(inventory), str(book)], env, tmp)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert out.read_text().strip() == socket.gethostname().split(".")[0]
    assert b"failed=0" in r.stdout


def test_cleanup_of_its_temporary_directory_is_allowed(ansible_world):
    tmp, inventory, env, _ = ansible_world
    r = _run([ANSIBLE, "all", "-i", str(inventory), "-m", "ping"], env, tmp)
    assert r.returncode == 0
    assert b"Error deleting remote temporary files" not in r.stdout + r.stderr
