"""One hop per transaction (issue 11): a reserve (with its job record), a settle and a job's state
change (with the ledger's side) each cross to the database thread exactly once. Counted by
wrapping ``Database._hop``; a behaviour check, not a timing.
"""

from __future__ import annotations

import sqlite3

import pytest

from agent_tools.config import Settings
from agent_tools.db import Database
from agent_tools.jobs import JobEngine, JobState
from agent_tools.ledger import Ledger, Requester
from agent_tools.media import MediaStore
from agent_tools.toolkit import LedgerSettlement


@pytest.fixture
async def counted(tmp_path, monkeypatch):
    settings = Settings.model_validate({"storage": {"database": str(tmp_path / "v.db")},
                                        "quotas": {"default": {"daily_usd": "10", "jobs_per_hour": 100}}})
    db = await Database.open(tmp_path / "v.db")
    ledger = Ledger(db, settings)
    await ledger.ensure_totals()
    engine = JobEngine(db, {}, MediaStore(tmp_path / "media", max_bytes=1), settlement=LedgerSettlement(ledger))
    hops: list[str] = []
    real = Database._hop

    async def hop(self, fn, *args):
        hops.append(getattr(fn, "__qualname__", repr(fn)))
        return await real(self, fn, *args)

    monkeypatch.setattr(Database, "_hop", hop)
    yield ledger, engine, hops
    await db.close()


async def test_a_reserve_with_its_job_and_a_settle_each_make_one_hop(counted):
    ledger, engine, hops = counted
    created = []

    def record(conn: sqlite3.Connection, hold_id: str) -> str:
        created.append(engine.create_in(conn, account="alice", tool="pika_text_to_video", params={"prompt": "x"},
                                        estimate_micros=200_000, hold_id=hold_id))
        return created[0].id

    reservation = await ledger.reserve(Requester("alice"), 200_000, "k1", tool="pika_text_to_video", tx_hook=record)
    assert len(hops) == 1 and created and not reservation.existing
    assert await ledger.settle(reservation.hold_id, 150_000)
    assert len(hops) == 2
    assert (await ledger.check_books()).ok


async def test_a_job_transition_and_its_release_make_one_hop(counted):
    ledger, engine, hops = counted
    job = await engine.create(account="alice", tool="pika_text_to_video", params={"prompt": "x"}, estimate_micros=1)
    hold = await ledger.reserve(Requester("alice"), 200_000, "k2", tool="pika_text_to_video")
    await ledger.db.run(lambda conn: conn.execute("UPDATE jobs SET hold_id = ? WHERE id = ?", (hold.hold_id, job.id)))
    hops.clear()
    failed = await engine.fail_pending(job.id, "test", "stopped")
    assert failed is not None and failed.state is JobState.FAILED
    assert len(hops) == 1, hops  # the state change, its event and the hold's release together
    assert [h.state for h in await ledger.holds(states=("released",))] == ["released"]
