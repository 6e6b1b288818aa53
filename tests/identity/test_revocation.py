"""The revocation list in SQLite: by serial exactly; by key id and by subject for the
certificates issued until the revocation, not later ones; `bastion cert list|revoke`."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from bastion.cli.admin import main
from bastion.home import init_home
from bastion.identity import Identity
from bastion.identity.revocation import new_revocation, revocation_reason
from bastion.storage import IssuedCertificate, SQLiteStore


def cert(serial: int, *, subject: str = "sub-a", key_id: str = "alice via corp", issued: float):
    return IssuedCertificate(
        serial, key_id, "alice", ("ops",), subject, "https://idp", "corp", "SHA256:x",
        issued, issued + 3600, "login",
    )  # fmt: skip


def identity(serial: int, key_id: str = "alice via corp", valid_after: int = 0) -> Identity:
    return Identity("alice", ("ops",), key_id, serial, "bastion user CA", "SHA256:x",
                    int(time.time()) + 3600, valid_after=valid_after)  # fmt: skip


def test_revocation_kinds(tmp_path):
    store = SQLiteStore(tmp_path / "state.db")

    async def run() -> None:
        now = time.time()
        await store.record_certificate(cert(1, issued=now - 10))
        await store.record_certificate(cert(2, subject="sub-b", key_id="bob", issued=now - 10))
        assert await revocation_reason(store, identity(1)) == ""
        covered = await store.add_revocation(new_revocation("subject", "sub-a", "offboarded"))
        assert covered == 1
        assert "offboarded" in await revocation_reason(store, identity(1))
        assert await revocation_reason(store, identity(2, "bob")) == ""
        # A certificate issued after the revocation (the person came back) is fine.
        await store.record_certificate(cert(3, issued=time.time() + 1))
        assert await revocation_reason(store, identity(3)) == ""
        # By serial: exactly that one, whoever signed it.
        await store.add_revocation(new_revocation("serial", "2"))
        assert "revoked" in await revocation_reason(store, identity(2, "bob"))
        # By key id: also certificates this bastion never recorded (another CA's),
        # judged by their valid_after.
        await store.add_revocation(new_revocation("key_id", "step-ca:carol"))
        old = identity(99, "step-ca:carol", valid_after=int(now) - 60)
        assert "revoked" in await revocation_reason(store, old)
        new = identity(98, "step-ca:carol", valid_after=int(time.time()) + 120)
        assert await revocation_reason(store, new) == ""
        listed = await store.list_certificates(active_only=False)
        assert {c.serial: bool(c.revoked) for c in listed} == {1: True, 2: True, 3: False}
        assert [c.serial for c in await store.list_certificates()] == [3]
        await store.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [("serial", "12x", "a serial is a number"), ("name", "x", "revoke by one of"),
     ("subject", " ", "give the subject")],
)  # fmt: skip
def test_bad_revocations_are_sentences(kind, value, message):
    with pytest.raises(ValueError, match=message):
        new_revocation(kind, value)


def test_a_store_that_cannot_answer_refuses():
    class Broken:
        async def revocation_for(self, *args: object) -> None:
            raise OSError("disk gone")

    reason = asyncio.run(revocation_reason(Broken(), identity(1)))  # type: ignore[arg-type]
    assert "cannot check revocations" in reason


def test_cert_issue_list_and_revoke_through_the_cli(tmp_path):
    from bastion.ssh.certs import generate_key, write_private_key

    home = tmp_path / "home"
    init_home(home)
    write_private_key(generate_key(), tmp_path / "id_ed25519")
    runner = CliRunner()
    issued = runner.invoke(
        main, ["cert", "issue", "--home", str(home), "--principal", "carol", "--group", "ops",
               str(tmp_path / "id_ed25519.pub")],
    )  # fmt: skip
    assert issued.exit_code == 0, issued.output
    listed = runner.invoke(main, ["cert", "list", "--home", str(home)])
    assert "carol" in listed.output and "admin" in listed.output and "valid" in listed.output
    serial = listed.output.split()[0]
    both = runner.invoke(main, ["cert", "revoke", "--home", str(home), "--serial", serial,
                                "--subject", "x"])  # fmt: skip
    assert both.exit_code == 2 and "exactly one of" in both.output
    revoked = runner.invoke(
        main, ["cert", "revoke", "--home", str(home), "--serial", serial, "--reason", "lost"]
    )
    assert revoked.exit_code == 0 and "covers 1 certificate" in revoked.output
    listed = runner.invoke(main, ["cert", "list", "--all", "--home", str(home)])
    assert "revoked" in listed.output
