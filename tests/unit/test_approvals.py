"""The approval service: who may decide, N of M, single use, expiry, races."""

from __future__ import annotations

import asyncio
import time

import pytest

from bastion.approvals import ApprovalError, ApprovalService, ApprovalSettings, binding_of
from bastion.identity import Identity
from bastion.record import AuditLog
from bastion.storage import SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def person(user: str, *groups: str, principals: tuple[str, ...] = ()) -> Identity:
    return Identity(
        user, tuple(groups), "k", 1, "ca", f"SHA256:{user}", 2**40, principals or (user,)
    )


@pytest.fixture
def service(tmp_path):
    clock = Clock()
    store = SQLiteStore(tmp_path / "state.db")
    svc = ApprovalService(
        store, ApprovalSettings(ttl=600), AuditLog(tmp_path / "audit.jsonl"), clock=clock
    )
    yield svc, clock
    asyncio.run(store.close())


def _file(svc, **kw):
    args = dict(
        user="alice",
        groups=("ops",),
        target="web1",
        login="root",
        cwd=None,
        command="c=echo; $c hi",
        run="c=echo; $c hi",
        rule="r",
        reason="why",
    )
    args.update(kw)
    return svc.file(**args)


def test_binding_covers_every_part():
    base = binding_of("alice", "web1", "root", None, "ls")
    for other in (
        binding_of("bob", "web1", "root", None, "ls"),
        binding_of("alice", "web2", "root", None, "ls"),
        binding_of("alice", "web1", "admin", None, "ls"),
        binding_of("alice", "web1", "root", "/tmp", "ls"),
        binding_of("alice", "web1", "root", None, "ls "),
    ):
        assert other != base


@pytest.mark.parametrize(
    "approver,message",
    [
        (person("alice", "approvers"), "your own request"),
        (person("alice-admin", "approvers", principals=("alice-admin", "alice")), "your own"),
        (person("carol", "ops"), "not an approver"),
    ],
)
def test_who_may_not_decide(service, approver, message):
    svc, _ = service

    async def run():
        req = await _file(svc)
        with pytest.raises(ApprovalError, match=message):
            await svc.decide(req.id, approver, approve=True, reason="")
        return (await svc.get(req.id)).status

    assert asyncio.run(run()) == "pending"


def test_two_approvals_need_two_different_people(service):
    svc, _ = service
    bob, dave = person("bob", "approvers"), person("dave", "approvers")

    async def run():
        req = await _file(svc, required=2)
        first = await svc.decide(req.id, bob, approve=True, reason="ok")
        with pytest.raises(ApprovalError, match="already approved"):
            await svc.decide(req.id, bob, approve=True, reason="again")
        second = await svc.decide(req.id, dave, approve=True, reason="ok too")
        return first.status, second.status, [a.user for a in second.approvals]

    assert asyncio.run(run()) == ("pending", "approved", ["bob", "dave"])


def test_concurrent_decisions_have_one_winner(service):
    svc, _ = service
    bob, dave = person("bob", "approvers"), person("dave", "approvers")

    async def run():
        req = await _file(svc)
        results = await asyncio.gather(
            svc.decide(req.id, bob, approve=True, reason=""),
            svc.decide(req.id, dave, approve=False, reason="no"),
            return_exceptions=True,
        )
        return results, (await svc.get(req.id)).status

    results, status = asyncio.run(run())
    errors = [r for r in results if isinstance(r, ApprovalError)]
    assert len(errors) == 1 and "already" in str(errors[0])
    assert status in ("approved", "denied")


def test_an_approval_runs_once_and_only_for_its_bytes(service):
    svc, _ = service

    async def run():
        req = await _file(svc, waiting=False)
        await svc.decide(req.id, person("bob", "approvers"), approve=True, reason="")
        kw = dict(user="alice", target="web1", login="root", cwd=None)
        other = await svc.take_approved(command="c=echo; $c other", **kw)
        first = await svc.take_approved(command="c=echo; $c hi", **kw)
        second = await svc.take_approved(command="c=echo; $c hi", **kw)
        return other, first, second

    other, first, second = asyncio.run(run())
    assert other is None and second is None
    assert first is not None and first.status == "used" and first.run == "c=echo; $c hi"


def test_expiry(service):
    svc, clock = service

    async def run():
        req = await _file(svc)
        clock.now += 601
        with pytest.raises(ApprovalError, match="already expired"):
            await svc.decide(req.id, person("bob", "approvers"), approve=True, reason="")
        return (await svc.get(req.id)).status

    assert asyncio.run(run()) == "expired"


def test_wait_wakes_on_decision(service):
    svc, _ = service

    async def run():
        req = await _file(svc)
        waiter = asyncio.ensure_future(svc.wait(req.id, timeout=10))
        await asyncio.sleep(0.05)
        await svc.decide(req.id, person("bob", "approvers"), approve=False, reason="no")
        return await asyncio.wait_for(waiter, 1)

    outcome = asyncio.run(run())
    assert outcome.status == "denied" and outcome.decision_reason == "no"
