"""People: `bastion-cli login` against a real OpenID provider on loopback (the certified
oidc-provider under node). The test is the person at the browser: it walks the
provider's own login and consent pages. Code + PKCE and the device flow both end in a
certificate that jumps with plain `ssh -J`, and the token's groups decide the logins."""

from __future__ import annotations

import asyncio
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest

from bastion.errors import BastionError
from bastion.identity.login import DeviceFlow, ProviderInfo

from .conftest import LOGIN, start_bastion
from .oidc_provider import browse, start_provider, wait_for_line
from .oidc_support import ADMIN, CLI, audit_events, cli, host_ca_fingerprint, oidc_home, ssh


@pytest.fixture(scope="module")
def corp(world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oidc-login")
    provider = start_provider(tmp / "provider.log")
    providers = f"""
[[identity_providers]]
name = "corp"
issuer = "{provider.url}"
client_id = "bastion"
username_claim = "preferred_username"
groups_claim = "groups"
scopes = ["openid", "profile", "groups"]
allowed_groups = ["ops", "dba"]
certificate_ttl = "1h"
"""
    home = oidc_home(world, tmp / "home", providers, 'ssh_login_provider = "corp"\n')
    config = home / "policies.toml"
    config.write_text(config.read_text().replace("login_timeout = 60", "login_timeout = 120"))
    bastion = start_bastion(home)
    yield provider, home, bastion, tmp
    bastion.stop()
    provider.stop()


def start_login(corp, person: str, *flags: str) -> subprocess.Popen:
    provider, home, bastion, tmp = corp
    user_dir = tmp / person
    user_dir.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            *CLI,
            "--bastion",
            f"127.0.0.1:{bastion.port}",
            "-i",
            str(user_dir / "id_ed25519"),
            "--known-hosts",
            str(user_dir / "known_hosts"),
            "login",
            "--ca-fingerprint",
            host_ca_fingerprint(home),
            "--ssh-config",
            str(user_dir / "ssh_config"),
            *flags,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_code_flow_with_pkce_gives_a_certificate_that_jumps(corp):
    provider, home, bastion, tmp = corp
    proc = start_login(corp, "alice", "--no-browser")
    assert proc.stderr is not None
    line = wait_for_line(proc.stderr, f"{provider.url}/auth?")
    url = line.strip()
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    redirect = query["redirect_uri"][0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", redirect)
    browse(url, "alice", callback_prefix=redirect)
    status, out, err = finish(proc)
    assert status == 0, err
    assert "logged in as alice (groups ops)" in out
    status_out = cli(bastion.port, tmp / "alice", "status")
    assert status_out.returncode == 0, status_out.stderr
    assert "user:    alice" in status_out.stdout and "groups:  ops" in status_out.stdout
    assert re.search(r"expires: in (59m|1h00m)", status_out.stdout)
    assert "alice via corp" in status_out.stdout
    config = tmp / "alice" / "ssh_config"
    ok = ssh(config, f"{LOGIN}@web1", "echo hello-from-alice")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "hello-from-alice"
    # ops gives web1; db1 is for dba only: the certificate's groups decide.
    key = ["-i", str(tmp / "alice" / "id_ed25519"), "-o", "IdentitiesOnly=yes"]
    kh = tmp / "alice" / "kh_any"
    ca = " ".join((tmp / "alice" / "known_hosts").read_text().split()[2:4])
    kh.write_text(f"@cert-authority * {ca}\n")
    no = ssh(config, "-o", f"UserKnownHostsFile={kh}", *key, "-J", "bastion", f"{LOGIN}@db1", "id")
    assert no.returncode != 0 and "no login on db1 is allowed for alice" in no.stderr
    issued = [e for e in audit_events(home, "certificate") if e["result"] == "issued"]
    assert issued[-1]["user"] == "alice" and issued[-1]["provider"] == "corp"


def test_device_flow_gives_a_certificate_with_the_tokens_groups(corp):
    provider, home, bastion, tmp = corp
    proc = start_login(corp, "bob", "--device")
    assert proc.stderr is not None
    line = wait_for_line(proc.stderr, "enter the code")
    found = re.search(r"open (\S+) and enter the code (\S+)", line)
    assert found, line
    page = browse(found.group(1), "bob", user_code=found.group(2))
    assert "Sign-in Success" in page or "success" in page.lower()
    status, out, err = finish(proc)
    assert status == 0, err
    assert "logged in as bob (groups dba)" in out
    ok = ssh(tmp / "bob" / "ssh_config", f"{LOGIN}@db1", "echo bob-on-db1")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "bob-on-db1"


def test_a_person_outside_the_allowed_groups_gets_no_certificate(corp):
    provider, home, bastion, tmp = corp
    proc = start_login(corp, "mallory", "--device")
    assert proc.stderr is not None
    line = wait_for_line(proc.stderr, "enter the code")
    found = re.search(r"open (\S+) and enter the code (\S+)", line)
    assert found
    browse(found.group(1), "mallory", user_code=found.group(2))
    status, out, err = finish(proc)
    assert status == 2
    assert "mallory is in none of the groups allowed to log in through corp (ops, dba)" in err
    assert not (tmp / "mallory" / "id_ed25519-cert.pub").exists()


def test_a_device_code_cannot_be_used_twice(corp):
    provider, home, bastion, tmp = corp
    info = ProviderInfo("corp", provider.url, "bastion", ("openid", "profile", "groups"))

    async def run() -> None:
        flow = await DeviceFlow(info).start()
        assert await flow.poll_once() is None  # pending until the person signs in
        await asyncio.to_thread(browse, flow.verification_uri, "alice", user_code=flow.user_code)
        tokens = await flow.wait()
        assert tokens.id_token.count(".") == 2
        with pytest.raises(BastionError, match="refused the device code"):
            await flow.poll_once()  # the same device code again: replayed

    asyncio.run(run())


def plain_client(corp, person: str) -> tuple[object, object]:
    """A person with only a plain key and the bastion's @cert-authority line."""
    from bastion.ssh.certs import generate_key, write_private_key

    provider, home, bastion, tmp = corp
    d = tmp / f"plain-{person}"
    d.mkdir()
    write_private_key(generate_key(), d / "id_ed25519", f"{person} plain key")
    ca = (home / "keys" / "host_ca.pub").read_text().strip()
    (d / "known_hosts").write_text(f"@cert-authority [127.0.0.1]:{bastion.port},web1 {ca}\n")
    config = d / "ssh_config"
    config.write_text(f"""\
Host bastion
    HostName 127.0.0.1
    Port {bastion.port}
    User {person}
Host *
    IdentityFile {d}/id_ed25519
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {d}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    PreferredAuthentications publickey,keyboard-interactive
""")
    return d, config


def test_plain_ssh_signs_in_through_keyboard_interactive_and_binds_the_key(corp):
    """Nothing installed: `ssh -J alice@bastion web1` in a terminal shows the device
    code; after the sign-in the jump runs, and later connections need no browser."""
    import pexpect

    provider, home, bastion, tmp = corp
    d, config = plain_client(corp, "alice")
    child = pexpect.spawn(
        "ssh",
        ["-F", str(config), "-J", "bastion", f"{LOGIN}@web1", "echo plain-ssh-ok"],
        timeout=60,
        encoding="utf-8",
    )
    try:
        child.expect(r"open (\S+) and enter the code (\S+)")
        url, code = child.match.group(1), child.match.group(2)
        child.expect("Press Enter once signed in: ")
        page = browse(url, "alice", user_code=code)
        assert "success" in page.lower()
        child.sendline("")
        child.expect("signed in as alice \\(groups ops\\)")
        child.expect("plain-ssh-ok")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    # The same key now works without a browser, even non-interactively.
    again = ssh(config, "-J", "bastion", f"{LOGIN}@web1", "echo no-browser-needed")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "no-browser-needed"
    issued = [e for e in audit_events(home, "certificate") if e["result"] == "issued"]
    assert issued[-1]["source"] == "ssh-login" and issued[-1]["user"] == "alice"


def test_plain_ssh_in_batch_mode_is_refused_with_a_sentence(corp):
    d, config = plain_client(corp, "carol")
    config.write_text(config.read_text() + "    BatchMode yes\n")  # the jump's ssh too
    result = ssh(config, "-J", "bastion", f"{LOGIN}@web1", "echo never")
    assert result.returncode == 255
    assert "is not signed in: sign in below (keyboard-interactive" in result.stderr
    assert "never" not in result.stdout


def test_revoking_a_subject_stops_a_bound_plain_key_at_once(corp):
    """Runs after the plain-ssh sign-in above: alice's bound key works until the
    administrator revokes her subject, then the very next connection is refused."""
    provider, home, bastion, tmp = corp
    config = tmp / "plain-alice" / "ssh_config"
    config.write_text(config.read_text() + "    BatchMode yes\n")  # the jump's ssh too
    batch: list[str] = []
    assert ssh(config, *batch, "-J", "bastion", f"{LOGIN}@web1", "true").returncode == 0
    revoke = subprocess.run(
        [*ADMIN, "cert", "revoke", "--home", str(home), "--subject", "alice",
         "--reason", "left the company"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert revoke.returncode == 0, revoke.stderr
    refused = ssh(config, *batch, "-J", "bastion", f"{LOGIN}@web1", "echo never")
    assert refused.returncode == 255
    assert "your certificate was revoked" in refused.stderr
    assert "left the company" in refused.stderr
    assert "never" not in refused.stdout
