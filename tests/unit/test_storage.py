"""The Store contract, run against every back end (SQLite today)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace

import pytest

from bastion.storage import ApprovalRequest, SessionRow, SQLiteStore


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    s = SQLiteStore(tmp_path / "state.db")
    yield s
    asyncio.run(s.close())


def _request(**kw) -> ApprovalRequest:
    now = time.time()
    base = dict(
        id=os.urandom(5).hex(),
        binding="b" * 64,
        status="pending",
        user="alice",
        groups=("ops",),
        target="web1",
        login="root",
        cwd=None,
        command="c=echo; $c hi",
        run="c=echo; $c hi",
        rule="on_unknown",
        reason="the command name is only known at run time",
        approvers=("approvers",),
        required=1,
        created=now,
        expires=now + 600,
        owner="b1",
    )
    base.update(kw)
    return ApprovalRequest(**base)


def test_the_file_is_private(tmp_path):
    SQLiteStore(tmp_path / "state.db").close_now()
    assert (tmp_path / "state.db").stat().st_mode & 0o077 == 0


def test_session_index_round_trip(store):
    async def run():
        store.session_started(
            SessionRow("s1", time.time(), "alice", "web1", "root", "exec", "ls", "/c.cast")
        )
        store.session_decided("s1", "allow", "default")
        store.session_ended("s1", 0)
        return await store.recent_sessions(5)

    (row,) = asyncio.run(run())
    assert (row.id, row.decision, row.rule, row.exit_status) == ("s1", "allow", "default", 0)
    assert row.ended is not None


def test_request_round_trip_and_listing(store):
    req = _request()

    async def run():
        await store.create_request(req)
        got = await store.get_request(req.id)
        pending = await store.list_requests(pending_only=True)
        return got, pending

    got, pending = asyncio.run(run())
    assert got == req
    assert [r.id for r in pending] == [req.id]


def test_compare_and_set_has_exactly_one_winner(store):
    req = _request()

    async def run():
        await store.create_request(req)
        a = replace(req, status="approved", decided_by="bob")
        b = replace(req, status="denied", decided_by="dave")
        results = await asyncio.gather(store.update_request(a), store.update_request(b))
        return results, await store.get_request(req.id)

    results, stored = asyncio.run(run())
    assert sorted(results) == [False, True]
    assert stored is not None and stored.version == 1
    assert stored.status == ("approved" if results[0] else "denied")


def test_find_approved_is_by_binding_and_user(store):
    mine = _request(status="approved")
    other_user = _request(status="approved", user="carol")
    other_bytes = _request(status="approved", binding="c" * 64)

    async def run():
        for r in (mine, other_user, other_bytes):
            await store.create_request(r)
        return await store.find_approved("b" * 64, "alice")

    assert [r.id for r in asyncio.run(run())] == [mine.id]


def test_cancel_waiting_on_start_spares_filed_requests(store):
    waiting = _request()
    filed = _request(waiting=False)
    elsewhere = _request(owner="b2")

    async def run():
        for r in (waiting, filed, elsewhere):
            await store.create_request(r)
        count = await store.cancel_waiting("b1", "restart", time.time())
        return count, [await store.get_request(r.id) for r in (waiting, filed, elsewhere)]

    count, (w, f, e) = asyncio.run(run())
    assert count == 1
    assert (w.status, f.status, e.status) == ("cancelled", "pending", "pending")
