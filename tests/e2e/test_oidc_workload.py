"""Agents and CI: a workload token signed by a local issuer's JWKS logs in with
`bastion-cli login --token-file`, the certificate jumps with plain `ssh -J`, groups
reach the decisions, bad tokens are refused with their reason, revocation is at once."""

from __future__ import annotations

import subprocess
import tempfile
import time

import pytest

from tests.identity.issuer import (
    LocalIssuer,
    hs256_with_public_key,
    rsa_key,
    tamper,
    unsigned_token,
)

from .conftest import LOGIN, start_bastion
from .oidc_support import ADMIN, audit_events, cli, host_ca_fingerprint, oidc_home, ssh


@pytest.fixture(scope="module")
def ci(world, tmp_path_factory):
    with LocalIssuer() as issuer:
        tmp = tmp_path_factory.mktemp("oidc-workload")
        providers = f"""
[[identity_providers]]
name = "ci"
issuer = "{issuer.url}"
audience = "bastion"
kind = "workload"
username_claim = "name"
groups_claim = "groups"
certificate_ttl = "15m"
"""
        home = oidc_home(
            world,
            tmp / "home",
            providers,
            "issue_per_key_per_hour = 1000\njwks_refresh_seconds = 1\n",
        )
        bastion = start_bastion(home)
        (tmp / "agent").mkdir()
        yield issuer, home, bastion, tmp / "agent"
        bastion.stop()


def login(ci, token: str, *extra: str) -> subprocess.CompletedProcess:
    issuer, home, bastion, agent = ci
    return cli(
        bastion.port,
        agent,
        "login",
        "--token-file",
        "-",
        "--ca-fingerprint",
        host_ca_fingerprint(home),
        "--ssh-config",
        str(agent / "ssh_config"),
        *extra,
        input=token,
    )


def test_workload_token_logs_in_and_jumps_with_plain_ssh(ci):
    issuer, home, bastion, agent = ci
    result = login(ci, issuer.token())
    assert result.returncode == 0, result.stderr
    assert "logged in as deployer (groups ci)" in result.stdout
    cert = (agent / "id_ed25519-cert.pub").read_text()
    assert cert.startswith("ssh-ed25519-cert-v01@openssh.com ")
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(agent / "id_ed25519-cert.pub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "deployer" in shown and "groups@bastion" in shown
    assert "permit-port-forwarding" in shown and "permit-pty" not in shown  # a workload
    assert f"iss {issuer.url} sub system:serviceaccount:ci:deployer" in shown  # key id
    known = (agent / "known_hosts").read_text()
    # Trusted for the bastion's name and the targets this identity may reach, no others.
    assert known.startswith(f"@cert-authority [127.0.0.1]:{bastion.port},web1,")
    assert "db1" not in known and " * " not in known
    # The group ci gives web1 (plain ssh with the written config) ...
    ok = ssh(agent / "ssh_config", f"{LOGIN}@web1", "echo via-oidc")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "via-oidc"
    # ... and not db1, which only admits dba.
    ca_key = " ".join(known.split()[2:4])
    (agent / "kh_any").write_text(f"@cert-authority * {ca_key}\n")
    kh = f"UserKnownHostsFile={agent / 'kh_any'}"
    key = ["-i", str(agent / "id_ed25519"), "-o", "IdentitiesOnly=yes"]
    refused = ssh(agent / "ssh_config", "-o", kh, *key, "-J", "bastion", f"{LOGIN}@db1", "echo no")
    assert refused.returncode != 0
    assert "no login on db1 is allowed for deployer" in refused.stderr
    issued = [e for e in audit_events(home, "certificate") if e["result"] == "issued"]
    assert issued and issued[-1]["user"] == "deployer" and issued[-1]["groups"] == ["ci"]


def test_the_token_reaches_policy_decisions_as_groups(ci):
    issuer, home, bastion, agent = ci
    assert login(ci, issuer.token(groups=["ops", "ci"])).returncode == 0
    ok = ssh(agent / "ssh_config", f"{LOGIN}@web1", "id -un")
    assert ok.returncode == 0 and ok.stdout.strip() == LOGIN
    decisions = audit_events(home, "auth")
    assert decisions[-1]["groups"] == ["ops", "ci"]


BAD_TOKENS = [
    ("expired", lambda i: i.token(exp=int(time.time()) - 3600), "the token expired"),
    ("wrong audience", lambda i: i.token(aud="another"), "another audience"),
    (
        "wrong issuer",
        lambda i: i.token(iss="https://accounts.example.com"),
        "tokens from issuer 'https://accounts.example.com' are not trusted here",
    ),
    ("alg none", lambda i: unsigned_token(i.claims()), "unsigned (alg none)"),
    ("HS256 with the public key", lambda i: hs256_with_public_key(i, i.claims()), "HMAC-signed"),
    ("foreign key", lambda i: i.token(key=rsa_key("foreign", "k1")), "signature is not valid"),
    ("tampered payload", lambda i: tamper(i.token(), name="root"), "signature is not valid"),
    ("unknown kid", lambda i: i.token(key=rsa_key("later", "k9")), "does not publish"),
    ("not a JWT", lambda i: "hello", "not a signed JWT"),
]


@pytest.mark.parametrize(("what", "make", "sentence"), BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
def test_bad_tokens_are_refused_with_a_sentence_and_audited(ci, what, make, sentence):
    issuer, home, bastion, agent = ci
    before = (
        (agent / "id_ed25519-cert.pub").read_bytes()
        if (agent / "id_ed25519-cert.pub").exists()
        else b""
    )
    result = login(ci, make(issuer))
    assert result.returncode == 2
    assert sentence in result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    after = (
        (agent / "id_ed25519-cert.pub").read_bytes()
        if (agent / "id_ed25519-cert.pub").exists()
        else b""
    )
    assert after == before  # nothing written
    refusals = [e for e in audit_events(home, "certificate") if e["result"] == "refused"]
    assert sentence in refusals[-1]["reason"]


def test_unknown_kid_is_accepted_once_the_issuer_publishes_it(ci):
    issuer, home, bastion, agent = ci
    new = rsa_key("rotation", "k-rotated")
    assert "does not publish" in login(ci, issuer.token(key=new)).stderr
    issuer.keys.append(new)
    time.sleep(1.1)  # [identity] jwks_refresh_seconds = 1 in this home
    result = login(ci, issuer.token(key=new))
    assert result.returncode == 0, result.stderr


def test_revocation_by_subject_stops_the_certificate_at_once(ci):
    issuer, home, bastion, agent = ci
    assert login(ci, issuer.token(sub="agent-to-revoke", name="revokee")).returncode == 0
    config = agent / "ssh_config"
    short = tempfile.mkdtemp(prefix="cm", dir="/tmp")  # unix socket paths are short
    master = subprocess.Popen(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "IdentityAgent=none",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"ControlPath={short}/%C",
         "-o", "ControlMaster=yes", "-N", "bastion"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.5)
        assert master.poll() is None, master.stderr.read() if master.stderr else ""
        listed = subprocess.run(
            [*ADMIN, "cert", "list", "--home", str(home)], capture_output=True, text=True
        )
        assert "revokee" in listed.stdout and "valid" in listed.stdout
        revoke = subprocess.run(
            [*ADMIN, "cert", "revoke", "--home", str(home), "--subject", "agent-to-revoke",
             "--reason", "offboarded"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert revoke.returncode == 0, revoke.stderr
        assert "covers 1 certificate" in revoke.stdout
        refused = ssh(config, f"{LOGIN}@web1", "echo should-not-run")
        assert refused.returncode == 255
        assert "revoked" in refused.stderr and "offboarded" in refused.stderr
        master.wait(10)  # the open ControlMaster connection is closed too
        assert "revoked" in (master.stderr.read() if master.stderr else "")
    finally:
        if master.poll() is None:
            master.kill()
            master.wait(5)
    listed = subprocess.run(
        [*ADMIN, "cert", "list", "--all", "--home", str(home)], capture_output=True, text=True
    )
    assert "revoked" in listed.stdout
    # A new login for the same subject gets a new certificate that works.
    assert login(ci, issuer.token(sub="agent-to-revoke", name="revokee")).returncode == 0
    assert ssh(config, f"{LOGIN}@web1", "true").returncode == 0


def test_the_issuance_user_reaches_nothing_but_issuance(ci):
    """`bastion-login` accepts any key, so it must lead nowhere: no jump, no shell, no
    command; an oversized or missing token gets a sentence; a token in the command
    line is never read as one."""
    import asyncio
    import json

    import asyncssh

    issuer, home, bastion, agent = ci

    async def probe() -> None:
        async with asyncssh.connect(
            "127.0.0.1",
            bastion.port,
            username="bastion-login",
            client_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            known_hosts=None,
        ) as conn:
            with pytest.raises(asyncssh.ChannelOpenError, match="cannot jump"):
                await conn.open_connection("web1", 22)
            marker = agent / "must-not-exist"
            ran = await conn.run(f"touch {marker}", check=False)
            assert ran.exit_status == 2 and "unknown verb" in str(ran.stdout)
            assert not marker.exists()
            shell = await conn.run(check=False)  # a shell request: the usage
            assert shell.exit_status == 2
            big = await conn.run("issue", input="x" * 20000, check=False)
            assert big.exit_status == 1
            assert "larger than 16384 bytes" in json.loads(str(big.stdout))["error"]
            in_argv = await conn.run(f"issue {issuer.token()}", input="", check=False)
            assert in_argv.exit_status == 2  # the token is only read from stdin
            listed = json.loads(str((await conn.run("providers")).stdout))
            assert listed["providers"][0]["name"] == "ci"
            assert "targets" not in listed  # nothing about targets before a sign-in

    asyncio.run(probe())


def test_an_encrypted_key_without_a_terminal_is_a_sentence(ci, tmp_path):
    import asyncssh

    issuer, home, bastion, agent = ci
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp_path / "id_ed25519"), passphrase="secret")
    result = cli(bastion.port, tmp_path, "login", "--token-file", "-", input=issuer.token())
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read the key ")
    assert "assphrase" in result.stderr and "Traceback" not in result.stderr


def test_token_groups_decide_commands_through_the_policy(ci, tmp_path):
    """The shipped policy's agents profile holds what is not read-only for the group
    "agents": the same command runs for a token without it, and is held with it."""
    issuer, home, bastion, agent = ci
    config = agent / "ssh_config"
    wait0 = ["-o", "SetEnv=BASTION_WAIT=0"]
    assert login(ci, issuer.token(groups=["ci", "agents"])).returncode == 0
    held = ssh(config, *wait0, f"{LOGIN}@web1", f"touch {tmp_path}/held-probe")
    assert held.returncode == 75, held.stderr
    assert "held for approval (profile:agents)" in held.stderr
    assert not (tmp_path / "held-probe").exists()
    assert login(ci, issuer.token(groups=["ci"])).returncode == 0
    ran = ssh(config, *wait0, f"{LOGIN}@web1", f"touch {tmp_path}/ran-probe")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "ran-probe").exists()
