"""SFTP and default scp through the bastion, with the real sftp, scp and paramiko.

Each operation is judged by the file policy before it reaches the target's SFTP server.
Denied paths are probes only: a write under /etc that must not appear, reads of
/etc/shadow (directly and through a symlink) that must not return its bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import paramiko

from .conftest import LOGIN


def _sftp(world, batch: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sftp", "-F", str(world.alice.config), "-b", "-", *args],
        input=batch.encode(),
        capture_output=True,
        timeout=timeout,
    )


def _jump(world, batch: str) -> subprocess.CompletedProcess:
    return _sftp(world, batch, "-J", "bastion", f"{LOGIN}@web1")


def _direct(world, batch: str) -> subprocess.CompletedProcess:
    return _sftp(world, batch, "-P", str(world.bastion.port), f"{LOGIN}@web1@127.0.0.1")


def _scp(world, *args: str) -> subprocess.CompletedProcess:
    cmd = ["scp", "-q", "-F", str(world.alice.config), "-J", "bastion", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sftp_events(world) -> list[dict]:
    lines = (world.home / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == "sftp"]


def test_put_and_get_50mb_through_jump_and_direct_mode(world, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(50 * 1024 * 1024))
    up, down = tmp_path / "remote.bin", tmp_path / "back.bin"
    r = _jump(world, f"put {src} {up}\nget {up} {down}\n")
    assert r.returncode == 0, r.stderr
    assert _sha(up) == _sha(src) == _sha(down)
    down2 = tmp_path / "back2.bin"
    r = _direct(world, f"get {up} {down2}\n")
    assert r.returncode == 0, r.stderr
    assert _sha(down2) == _sha(src)
    closes = [e for e in _sftp_events(world) if e.get("op") == "close" and e.get("path") == str(up)]
    assert any(e["bytes_written"] == 50 * 1024 * 1024 for e in closes)
    assert any(e["bytes_read"] == 50 * 1024 * 1024 for e in closes)


def test_default_scp_up_and_down(world, tmp_path):
    src = tmp_path / "scp-src.txt"
    src.write_bytes(b"scp through the bastion\n" * 1000)
    r = _scp(world, str(src), f"{LOGIN}@web1:{tmp_path}/scp-up.txt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "scp-up.txt").read_bytes() == src.read_bytes()
    r = _scp(world, f"{LOGIN}@web1:{tmp_path}/scp-up.txt", str(tmp_path / "scp-down.txt"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "scp-down.txt").read_bytes() == src.read_bytes()


def test_denied_write_gets_permission_error_and_nothing_is_written(world, tmp_path):
    probe = f"/etc/bastion-e2e-probe-{secrets.token_hex(4)}"
    src = tmp_path / "probe.txt"
    src.write_text("probe\n")
    r = _jump(world, f"put {src} {probe}\n")
    assert r.returncode != 0
    assert b"Permission denied" in r.stderr
    assert not os.path.exists(probe)
    denied = [e for e in _sftp_events(world) if e.get("path") == probe]
    assert denied and denied[-1]["result"] == "deny", denied


def test_denied_read_directly_and_through_a_symlink(world, tmp_path):
    link = tmp_path / "innocent.txt"
    link.symlink_to("/etc/shadow")
    for path in ("/etc/shadow", str(link)):
        out = tmp_path / f"got-{secrets.token_hex(3)}"
        r = _jump(world, f"get {path} {out}\n")
        assert r.returncode != 0, path
        assert b"Permission denied" in r.stderr, (path, r.stderr)
        assert not out.exists() or out.stat().st_size == 0


def test_rename_onto_a_denied_path_is_refused(world, tmp_path):
    src = tmp_path / "r.txt"
    src.write_text("x\n")
    probe = f"/etc/bastion-e2e-probe-{secrets.token_hex(4)}"
    r = _jump(world, f"rename {src} {probe}\n")
    assert r.returncode != 0 and b"Permission denied" in r.stderr
    assert src.exists() and not os.path.exists(probe)


def test_sftp_reads_are_masked_with_the_same_length(world, tmp_path):
    body = b"name=app\nDB_PASSWORD=hunter2-sftp\n" + b"x" * 70000 + b"\nAPI_KEY=abcdef123\n"
    src = tmp_path / "app.env"
    src.write_bytes(body)
    out = tmp_path / "app.env.got"
    r = _jump(world, f"get {src} {out}\n")
    assert r.returncode == 0, r.stderr
    got = out.read_bytes()
    assert len(got) == len(body)
    assert b"hunter2-sftp" not in got and b"abcdef123" not in got
    assert got.startswith(b"name=app\nDB_PASSWORD=************\n")
    assert got.replace(b"*", b"") == body.replace(b"hunter2-sftp", b"").replace(b"abcdef123", b"")


def test_paramiko_open_sftp(world, tmp_path):
    key = paramiko.Ed25519Key.from_private_key_file(str(world.alice.key))
    key.load_certificate(str(world.alice.key) + "-cert.pub")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        world.bastion.port,
        username=f"{LOGIN}@web1",
        pkey=key,
        allow_agent=False,
        look_for_keys=False,
        timeout=20,
    )
    try:
        sftp = client.open_sftp()
        target = tmp_path / "paramiko.txt"
        with sftp.open(str(target), "w") as f:
            f.write(b"from paramiko\n")
        assert target.read_bytes() == b"from paramiko\n"
        assert sftp.stat(str(target)).st_size == 14
        assert "paramiko.txt" in sftp.listdir(str(tmp_path))
        sftp.get(str(target), str(tmp_path / "paramiko.back"))
        assert (tmp_path / "paramiko.back").read_bytes() == b"from paramiko\n"
        try:
            sftp.open("/etc/shadow").read()
            raise AssertionError("read of /etc/shadow was not refused")
        except PermissionError:
            pass
        sftp.close()
    finally:
        client.close()


def test_other_subsystems_are_refused(world):
    r = world.alice.ssh("-s", "-J", "bastion", f"{LOGIN}@web1", "netconf")
    assert r.returncode == 77
    assert b"netconf subsystem is not available" in r.stderr


def test_links_and_metadata_changes_on_denied_paths_are_refused(world, tmp_path):
    """Probes only: the /etc path does not exist, so a wrongly allowed chmod would say
    "No such file" instead of "Permission denied" and change nothing."""
    link, hard = tmp_path / "shadow-link", tmp_path / "shadow-hard"
    probe = f"/etc/bastion-e2e-probe-{secrets.token_hex(4)}"
    for line, made in (
        (f"symlink /etc/shadow {link}\n", link),
        (f"ln /etc/shadow {hard}\n", hard),
        (f"chmod 777 {probe}\n", None),
        (f"mkdir {probe}\n", Path(probe)),
        (f"rm {probe}\n", None),
    ):
        r = _jump(world, line)
        assert r.returncode != 0, line
        assert b"Permission denied" in r.stderr, (line, r.stderr)
        if made is not None:
            assert not os.path.lexists(made), line


def test_asyncssh_sftp_client_through_a_tunnel(world, tmp_path):
    import asyncio

    import asyncssh

    key = asyncssh.read_private_key(str(world.alice.key))
    cert = asyncssh.read_certificate(str(world.alice.key) + "-cert.pub")
    known = asyncssh.import_known_hosts(
        f"@cert-authority * {(world.home / 'keys' / 'host_ca.pub').read_text()}"
    )
    args = {"client_keys": [(key, cert)], "known_hosts": known, "agent_path": None}
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(3_000_000))

    async def run() -> bytes:
        async with asyncssh.connect(
            "127.0.0.1", world.bastion.port, username="alice", config=None, **args
        ) as outer:
            async with asyncssh.connect(
                "web1", tunnel=outer, username=LOGIN, config=None, **args
            ) as inner:
                async with inner.start_sftp_client() as sftp:
                    await sftp.put(str(src), str(tmp_path / "b.bin"))
                    await sftp.get(str(tmp_path / "b.bin"), str(tmp_path / "c.bin"))
                    try:
                        await sftp.get("/etc/shadow", str(tmp_path / "shadow"))
                    except asyncssh.SFTPPermissionDenied:
                        return b"denied"
                    return b"read"

    assert asyncio.run(run()) == b"denied"
    assert (tmp_path / "c.bin").read_bytes() == src.read_bytes()


def test_startup_files_and_relative_escapes_are_refused(world, tmp_path):
    """A write to a startup file in any directory, and a read of /etc/shadow spelled
    relative to the login's home: both refused, nothing written."""
    src = tmp_path / "rc.txt"
    src.write_text("echo probe\n")
    rc = tmp_path / "home-like" / ".bashrc"
    rc.parent.mkdir()
    r = _jump(world, f"put {src} {rc}\n")
    assert r.returncode != 0 and b"Permission denied" in r.stderr, r.stderr
    assert not rc.exists()
    got = tmp_path / "shadow-copy"
    r = _jump(world, f"get ../../../../../../etc/shadow {got}\n")
    assert r.returncode != 0 and b"Permission denied" in r.stderr, r.stderr
    assert not got.exists() or got.stat().st_size == 0
