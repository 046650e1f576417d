"""Hops to the database thread (issue 11). A reserve (with its job record), a settle and a job's
state change (with the ledger's side) are quick bodies: with the connection free they run on the
event loop's thread, crossing to the database thread zero times; when another process holds the
write lock, or the thread is still busy with an earlier call of ours, they cross exactly once and
wait there, never on the loop. Counted by wrapping ``Database._hop``; behaviour checks, not timings.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from agent_tools import db as db_module
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


async def until(condition, what: str) -> None:
    """Let the loop run until ``condition()`` (the database thread answers through it)."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.001)
    assert condition(), what


async def test_a_reserve_with_its_job_and_a_settle_run_on_the_loop_when_the_connection_is_free(counted):
    ledger, engine, hops = counted
    created = []

    def record(conn: sqlite3.Connection, hold_id: str) -> str:
        created.append(engine.create_in(conn, account="alice", tool="pika_text_to_video", params={"prompt": "x"},
                                        estimate_micros=200_000, hold_id=hold_id))
        return created[0].id

    reservation = await ledger.reserve(Requester("alice"), 200_000, "k1", tool="pika_text_to_video", tx_hook=record)
    assert hops == [] and created and not reservation.existing
    assert await ledger.settle(reservation.hold_id, 150_000)
    assert hops == []
    # committed, not merely done: another connection sees the hold settled and its job linked
    other = sqlite3.connect(ledger.db.path)
    try:
        assert other.execute("SELECT state, actual_micros, job_id FROM holds WHERE id = ?",
                             (reservation.hold_id,)).fetchone() == ("settled", 150_000, created[0].id)
    finally:
        other.close()
    assert (await ledger.check_books()).ok


async def test_a_job_transition_and_its_release_run_on_the_loop_in_one_transaction(counted):
    ledger, engine, hops = counted
    job = await engine.create(account="alice", tool="pika_text_to_video", params={"prompt": "x"}, estimate_micros=1)
    hold = await ledger.reserve(Requester("alice"), 200_000, "k2", tool="pika_text_to_video")
    await ledger.db.run(lambda conn: conn.execute("UPDATE jobs SET hold_id = ? WHERE id = ?", (hold.hold_id, job.id)))
    hops.clear()
    failed = await engine.fail_pending(job.id, "test", "stopped")
    assert failed is not None and failed.state is JobState.FAILED
    assert hops == []  # the state change, its event and the hold's release together, on the loop
    assert [h.state for h in await ledger.holds(states=("released",))] == ["released"]


async def test_a_reserve_waits_for_another_process_s_lock_on_the_database_thread_not_the_loop(counted):
    ledger, engine, hops = counted
    other = sqlite3.connect(ledger.db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        reserving = asyncio.ensure_future(ledger.reserve(Requester("alice"), 100_000, "k3", tool="pika_text_to_video"))
        await until(lambda: hops, "the reserve went to the database thread")
        ticks = 0
        for _ in range(20):  # the loop keeps running other tasks while the reserve waits
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 20 and not reserving.done()
        assert hops == ["Database.run.<locals>.whole"]
        other.execute("COMMIT")
        reservation = await reserving
    finally:
        other.close()
    assert not reservation.existing and hops == ["Database.run.<locals>.whole"]
    # the failed attempt on the loop left the connection as it was: the next quick body runs there
    assert await ledger.settle(reservation.hold_id, 100_000)
    assert len(hops) == 1
    assert (await ledger.check_books()).ok


async def test_a_quick_body_waits_for_a_call_the_database_thread_is_still_running(counted):
    """A read whose caller gave up is still running on the database thread: the connection is
    not free until the thread says it has finished, whatever became of the caller's future."""
    ledger, engine, hops = counted
    entered, release = threading.Event(), threading.Event()

    def slow_read(conn: sqlite3.Connection) -> int:
        entered.set()
        release.wait(30)
        return conn.execute("SELECT COUNT(*) FROM holds").fetchone()[0]

    reading = asyncio.ensure_future(ledger.db.read(slow_read))
    await until(entered.is_set, "the read started on the database thread")
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    reserving = asyncio.ensure_future(ledger.reserve(Requester("alice"), 100_000, "k4", tool="pika_text_to_video"))
    await until(lambda: len(hops) == 2, "the reserve queued behind the read")
    assert not reserving.done()
    release.set()
    reservation = await reserving
    assert hops[1:] == ["Database.run.<locals>.whole"]
    assert not reservation.existing and (await ledger.check_books()).ok


async def test_the_wal_is_checkpointed_on_the_database_thread_never_in_a_quick_commit(counted, monkeypatch):
    ledger, engine, hops = counted
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 5)
    real = db_module._checkpoint
    ran_on: list[str] = []

    def checkpoint(conn: sqlite3.Connection) -> None:
        ran_on.append(threading.current_thread().name)
        real(conn)

    monkeypatch.setattr(db_module, "_checkpoint", checkpoint)
    assert await ledger.db.read(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
    size_before = ledger.db.path.stat().st_size
    commits = 0
    while not ran_on:
        hold = await ledger.reserve(Requester("alice"), 1_000, f"c{commits}", tool="pika_text_to_video")
        assert await ledger.settle(hold.hold_id, 1_000)
        commits += 2
        assert commits <= 10, "no checkpoint after CHECKPOINT_EVERY commits"
        await ledger.db.read(lambda conn: None)  # a checkpoint queued before it has run by now
    assert ran_on == ["videogen-db"]
    assert ledger.db.path.stat().st_size > size_before  # the WAL's pages reached the database file
    assert (await ledger.check_books()).ok


async def test_a_quick_body_that_must_rebuild_the_totals_moves_to_the_database_thread(counted, monkeypatch):
    """Another process kept the running totals in another time zone: the next reservation rebuilds
    them from every hold, which is no work for the event loop's thread. The quick attempt rolls
    back and the reservation runs whole on the database thread."""
    ledger, engine, hops = counted
    await ledger.reserve(Requester("alice"), 1_000, "first", tool="pika_text_to_video")
    other = sqlite3.connect(ledger.db.path, isolation_level=None)
    try:
        other.execute("UPDATE ledger_meta SET value = 'Asia/Tokyo' WHERE key = 'totals_timezone'")
    finally:
        other.close()
    from agent_tools import totals

    real = totals.rebuild
    rebuilt_on: list[str] = []

    def rebuild(conn, tz):
        rebuilt_on.append(threading.current_thread().name)
        return real(conn, tz)

    monkeypatch.setattr(totals, "rebuild", rebuild)
    hops.clear()
    reservation = await ledger.reserve(Requester("alice"), 2_000, "second", tool="pika_text_to_video")
    assert rebuilt_on == ["videogen-db"] and hops == ["Database.run.<locals>.whole"]
    assert not reservation.existing
    assert await ledger.db.read(totals.stored_timezone) == "UTC"
    assert (await ledger.check_books()).ok
    assert len(await ledger.holds()) == 2  # the rolled-back attempt left nothing behind
