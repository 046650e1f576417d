"""The ledger (issue 4): windows, idempotent settle/release, what failures cost, refusals that
explain themselves, bad limits, a broken database, crash recovery and tokens.

Windows are tested with an injected clock; generations go end to end through the Toolkit against
the simulator on loopback. The many-process race is in test_ledger_processes.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from datetime import date, datetime, timedelta
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import ValidationError

import agent_tools.db as dbmod
import agent_tools.toolkit as toolkit_module
from agent_tools.config import Settings
from agent_tools.db import Database, DatabaseUnavailable
from agent_tools.errors import UserError
from agent_tools.jobs import JobNotFound, JobState
from agent_tools.ledger import Ledger, Limits, QuotaExceeded, Requester, parse_usd, validate_limits
from agent_tools.money import usd
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.store import open_database
from agent_tools.toolkit import Account, Toolkit

from test_jobs import until_state

ALICE = Account("alice")
BOB = Account("bob")
ADMIN = Account("root", is_admin=True)
PIKA = "pika_text_to_video"  # $0.20 for the default 5 s
PIKA_COST = 200_000


# -- helpers ----------------------------------------------------------------------------------

def ts(text: str, zone: str = "UTC") -> float:
    """A wall-clock time in a zone, as the timestamp an injected clock returns."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


class Clock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def at(self, text: str, zone: str = "UTC") -> "Clock":
        self.now = ts(text, zone)
        return self


def make_settings(tmp_path: Path, *, default: dict | None = None, glob: dict | None = None, timezone: str = "UTC",
                  sim: Simulator | None = None, admins: list[str] | None = None, database: str | None = None) -> Settings:
    data: dict = {
        "storage": {"database": database or str(tmp_path / "videogen.db"), "media_dir": str(tmp_path / "media")},
        "quotas": {"timezone": timezone, "default": default or {}, "global": glob or {}},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
        "admins": {"accounts": admins or []},
    }
    if sim is not None:
        data["fal"] = {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url}
        data["wavespeed"] = {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url}
    return Settings.model_validate(data)


@pytest.fixture
async def open_ledger(tmp_path, database_url):
    """``await open_ledger(default=..., clock=...)``: a Ledger on a fresh database (a SQLite file,
    then a PostgreSQL schema), closed afterwards."""
    opened: list[Database] = []

    async def make(*, clock=None, **options) -> Ledger:
        settings = make_settings(tmp_path, database=database_url, **options)
        db = await open_database(settings.storage.database)
        opened.append(db)
        return Ledger(db, settings, clock=clock or time.time)

    yield make
    for db in opened:
        await db.close()


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


LIMITED = {"daily_usd": "5", "concurrent_jobs": 5, "jobs_per_hour": 100}


@pytest.fixture
async def kit(tmp_path, sim, database_url):
    toolkit = await Toolkit.open(make_settings(tmp_path, default=LIMITED, sim=sim, database=database_url))
    yield toolkit
    await toolkit.close()


async def reserve(ledger: Ledger, micros: int, key: str, who: Requester | str = "alice", **kw):
    who = Requester(who) if isinstance(who, str) else who
    return await ledger.reserve(who, micros, key, tool=PIKA, what="This clip", **kw)


async def counts(db: Database) -> dict[str, int]:
    return {table: await db.scalar(f"SELECT COUNT(*) FROM {table}")
            for table in ("holds", "audit", "jobs", "accounts", "job_events")}


async def hold_row(db: Database, hold_id: str) -> dict:
    return dict(await db.fetchone("SELECT * FROM holds WHERE id = ?", (hold_id,)))


async def audit_events(db: Database, hold_id: str) -> list[tuple[str, int | None]]:
    rows = await db.fetchall("SELECT event, amount FROM audit WHERE hold_id = ? ORDER BY seq", (hold_id,))
    return [(r["event"], r["amount"]) for r in rows]


async def assert_books_agree(ledger: Ledger) -> None:
    """The running totals are what the holds say, and the holds what the audit says."""
    report = await ledger.check_books()
    assert report.differences == () and report.ok


def kind(statuses, kind_: str, scope: str = "account"):
    [status] = [s for s in statuses if s.kind == kind_ and s.scope == scope]
    return status


# -- 2. windows roll over with the clock ----------------------------------------------------------

@pytest.mark.parametrize(("zone", "abbrev"), [("UTC", "UTC"), ("America/New_York", "EST"), ("Asia/Kolkata", "IST")])
async def test_daily_cap_reached_at_2359_is_free_at_midnight_in_the_configured_zone(open_ledger, zone, abbrev):
    clock = Clock().at("2026-11-21T23:59:00", zone)
    ledger = await open_ledger(default={"daily_usd": "1"}, timezone=zone, clock=clock)
    await ledger.settle((await reserve(ledger, 1_000_000, "a")).hold_id, 1_000_000)
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 10_000, "b")
    assert str(refused.value) == f"This clip costs $0.01; you have $0.00 left today (resets at 00:00 {abbrev}, in 1 min)."
    assert refused.value.resets_at == ts("2026-11-22T00:00:00", zone) and refused.value.limit == "today"
    assert refused.value.remaining_micros == 0 and refused.value.asked_micros == 10_000

    if zone == "America/New_York":  # midnight UTC (19:00 there) is not this zone's midnight
        clock.at("2026-11-22T00:00:00", "UTC")
        with pytest.raises(QuotaExceeded):
            await reserve(ledger, 10_000, "c")
    clock.at("2026-11-21T23:59:59.9", zone)
    with pytest.raises(QuotaExceeded):
        await reserve(ledger, 10_000, "d")
    clock.at("2026-11-22T00:00:00", zone)
    granted = await reserve(ledger, 1_000_000, "e")
    assert not granted.existing
    assert kind(await ledger.status(Requester("alice")), "daily").used == 1_000_000


@pytest.mark.parametrize(("day", "start", "probe", "reset_in"), [
    # spring forward: a 23-hour day; fall back: a 25-hour day. The window is the local day either way.
    ("2026-03-08", "2026-03-08T00:30:00", "2026-03-08T03:30:00", "in 20 h 30 min"),
    ("2026-11-01", "2026-11-01T00:30:00", "2026-11-01T00:45:00", "in 1 d 0 h"),
])
async def test_daily_window_follows_daylight_saving_days(open_ledger, day, start, probe, reset_in):
    zone = "America/New_York"
    clock = Clock().at(start, zone)
    ledger = await open_ledger(default={"daily_usd": "1"}, timezone=zone, clock=clock)
    await reserve(ledger, 1_000_000, "a")
    clock.at(probe, zone)
    with pytest.raises(QuotaExceeded, match=reset_in):
        await reserve(ledger, 1, "b")
    clock.at(f"{day}T23:59:00", zone)
    with pytest.raises(QuotaExceeded, match=r"resets at 00:00 E[SD]T, in 1 min\)"):
        await reserve(ledger, 1, "c")
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    clock.at(f"{next_day}T00:00:00", zone)
    await reserve(ledger, 1_000_000, "d")


@pytest.mark.parametrize(("last", "first"), [("2026-01-31", "2026-02-01"), ("2026-12-31", "2027-01-01"),
                                             ("2028-02-29", "2028-03-01")])
async def test_monthly_cap_rolls_over_on_the_first(open_ledger, last, first):
    clock = Clock().at(f"{last}T23:59:00")
    ledger = await open_ledger(default={"monthly_usd": "2"}, clock=clock)
    await reserve(ledger, 2_000_000, "a")
    with pytest.raises(QuotaExceeded, match=r"you have \$0.00 left this month \(resets at 00:00 UTC, in 1 min\)"):
        await reserve(ledger, 1, "b")
    clock.at(f"{first}T00:00:00")
    await reserve(ledger, 2_000_000, "c")
    with pytest.raises(QuotaExceeded, match="this month"):
        await reserve(ledger, 1, "d")


async def test_a_monthly_reset_weeks_away_is_given_as_a_date(open_ledger):
    ledger = await open_ledger(default={"monthly_usd": "2"}, clock=Clock().at("2026-01-15T00:30:00"))
    await reserve(ledger, 1_500_000, "a")
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 1_000_000, "b")
    assert str(refused.value) == ("This clip costs $1.00; you have $0.50 left this month "
                                  "(resets at Feb 01, 00:00 UTC, in 16 d 23 h).")


async def test_hourly_job_count_frees_after_an_hour(open_ledger):
    t0 = ts("2026-11-21T10:00:00")
    clock = Clock(t0)
    ledger = await open_ledger(default={"jobs_per_hour": 2}, clock=clock)
    await ledger.release((await reserve(ledger, 1, "a")).hold_id)  # a released job still counts as started
    clock.now = t0 + 60
    await ledger.settle((await reserve(ledger, 1, "b")).hold_id, 1)
    for later in (120, 3599, 3600):
        clock.now = t0 + later
        with pytest.raises(QuotaExceeded, match="started 2 job\\(s\\) in the last hour, the limit is 2 per hour"):
            await reserve(ledger, 1, f"c{later}")
    clock.now = t0 + 3601
    await reserve(ledger, 1, "d")
    with pytest.raises(QuotaExceeded, match="per hour"):
        await reserve(ledger, 1, "e")
    clock.now = t0 + 3661
    await reserve(ledger, 1, "f")


async def test_hourly_count_reaches_back_past_midnight_and_forward_to_clocks_ahead(open_ledger):
    """A reservation counts the last hour's holds only when the day totals say enough were made to
    reach the limit: that bound takes in the day before midnight and holds stamped later by a process
    whose clock runs ahead, and token charges in it (money, not jobs) never refuse a job."""
    clock = Clock(ts("2026-11-21T23:50:00", "Europe/Paris"))
    ledger = await open_ledger(default={"jobs_per_hour": 2}, clock=clock, timezone="Europe/Paris")
    await reserve(ledger, 1, "late")
    clock.now += 20 * 60  # 00:10 the next day: the first job is still in the last hour
    await reserve(ledger, 1, "early")
    with pytest.raises(QuotaExceeded, match="started 2 job\\(s\\) in the last hour"):
        await reserve(ledger, 1, "third")

    clock.at("2026-11-22T23:55:00", "Europe/Paris")
    ahead = Ledger(ledger.db, ledger.settings, clock=lambda: clock.now + 600)  # already the 23rd there
    for key in ("b1", "b2"):
        await reserve(ahead, 1, key, who="bob")
    with pytest.raises(QuotaExceeded, match="started 2 job\\(s\\) in the last hour"):
        await reserve(ledger, 1, "b3", who="bob")

    for key in ("t1", "t2", "t3"):
        await ledger.reserve(Requester("carol"), 1, key, tool="llm:some-model")
    await reserve(ledger, 1, "c1", who="carol")
    await reserve(ledger, 1, "c2", who="carol")
    with pytest.raises(QuotaExceeded, match="started 2 job\\(s\\) in the last hour"):
        await reserve(ledger, 1, "c3", who="carol")
    assert [s.used for s in await ledger.status(Requester("carol")) if s.kind == "hourly"] == [2]
    await assert_books_agree(ledger)


async def test_a_charge_belongs_to_the_window_its_hold_was_created_in(open_ledger):
    clock = Clock().at("2026-01-31T23:59:00")
    ledger = await open_ledger(default={"daily_usd": "1", "monthly_usd": "10"}, clock=clock)
    hold = (await reserve(ledger, 1_000_000, "late-night")).hold_id
    clock.at("2026-02-01T00:01:00")  # the job finishes after midnight, on a new day and month
    assert await ledger.settle(hold, 800_000)
    statuses = await ledger.status(Requester("alice"))
    assert kind(statuses, "daily").used == 0 and kind(statuses, "monthly").used == 0
    clock.at("2026-01-31T23:59:30")  # seen from the old day, the charge is there at its actual cost
    statuses = await ledger.status(Requester("alice"))
    assert kind(statuses, "daily").used == 800_000 and kind(statuses, "monthly").used == 800_000
    clock.at("2026-02-01T00:02:00")
    await reserve(ledger, 1_000_000, "today")  # the whole new day's budget is free
    by_day = {row.key: row for row in await ledger.spend(by="day")}
    assert by_day["2026-01-31"].settled_micros == 800_000 and by_day["2026-02-01"].open_micros == 1_000_000


async def test_an_open_hold_from_yesterday_still_counts_as_running(open_ledger):
    clock = Clock().at("2026-11-21T23:00:00")
    ledger = await open_ledger(default={"daily_usd": "1", "concurrent_jobs": 1}, clock=clock)
    await reserve(ledger, 1_000_000, "a")
    clock.at("2026-11-22T01:00:00")
    statuses = await ledger.status(Requester("alice"))
    assert kind(statuses, "daily").used == 0 and kind(statuses, "concurrent").used == 1
    with pytest.raises(QuotaExceeded, match="1 job\\(s\\) running, the limit at once is 1"):
        await reserve(ledger, 1, "b")


# -- 3. settle and release are idempotent; the audit is append-only ------------------------------

async def test_repeated_settle_and_release_are_no_ops(open_ledger):
    ledger = await open_ledger()
    a = (await reserve(ledger, 500_000, "a")).hold_id
    b = (await reserve(ledger, 500_000, "b")).hold_id
    assert await ledger.mark_submitted(a, "job-a")
    assert not await ledger.mark_submitted(a, "job-a")

    assert await ledger.settle(a, 300_000)
    assert not await ledger.settle(a, 300_000)
    assert not await ledger.settle(a, 999_000)  # a different amount does not re-charge either
    assert not await ledger.release(a)  # release after settle
    assert not await ledger.mark_submitted(a, "job-x")

    assert await ledger.release(b)
    assert not await ledger.release(b)
    assert not await ledger.settle(b, 500_000)  # settle after release

    assert await audit_events(ledger.db, a) == [("reserve", 500_000), ("submitted", None), ("settled", 300_000)]
    assert await audit_events(ledger.db, b) == [("reserve", 500_000), ("released", 0)]
    row_a, row_b = await hold_row(ledger.db, a), await hold_row(ledger.db, b)
    assert (row_a["state"], row_a["actual_micros"], row_a["job_id"]) == ("settled", 300_000, "job-a")
    assert (row_b["state"], row_b["actual_micros"]) == ("released", 0)
    assert await ledger.books() == {"settled_micros": 300_000, "open_micros": 0, "released": 1, "holds": 2,
                                    "audit_settled_micros": 300_000, "audit_reserves": 2}


async def test_racing_settles_and_releases_of_one_hold_apply_once(open_ledger):
    ledger = await open_ledger()
    hold = (await reserve(ledger, 500_000, "a")).hold_id
    outcomes = await asyncio.gather(*(ledger.settle(hold, 100_000 * (i + 1)) if i % 2 else ledger.release(hold)
                                      for i in range(10)))
    assert outcomes.count(True) == 1
    assert len([e for e in await audit_events(ledger.db, hold) if e[0] != "reserve"]) == 1
    await assert_books_agree(ledger)


async def test_a_retried_reservation_returns_the_same_hold_even_when_the_cap_is_full(open_ledger):
    ledger = await open_ledger(default={"daily_usd": "1"})
    first = await reserve(ledger, 1_000_000, "interaction-1")
    again = await reserve(ledger, 1_000_000, "interaction-1")
    assert again.existing and again.hold_id == first.hold_id
    assert (await ledger.books())["audit_reserves"] == 1


async def test_negative_amounts_are_refused(open_ledger):
    ledger = await open_ledger()
    with pytest.raises(ValueError):
        await reserve(ledger, -1, "a")
    hold = (await reserve(ledger, 1, "b")).hold_id
    with pytest.raises(ValueError):
        await ledger.settle(hold, -5)
    assert (await hold_row(ledger.db, hold))["state"] == "held"


async def test_the_audit_refuses_update_and_delete(open_ledger):
    ledger = await open_ledger()
    hold = (await reserve(ledger, 500_000, "a")).hold_id
    await ledger.settle(hold, 500_000)
    refused = (sqlite3.IntegrityError, psycopg.errors.RaiseException)  # the engine's own rule, either engine
    with pytest.raises(refused, match="audit is append-only"):
        async with ledger.db.transaction() as tx:
            await tx.execute("UPDATE audit SET amount = 0 WHERE event = 'settled'")
    with pytest.raises(refused, match="audit is append-only"):
        async with ledger.db.transaction() as tx:
            await tx.execute("DELETE FROM audit")
    # another process, outside the app's code
    other = (sqlite3.connect(ledger.db.path) if isinstance(ledger.db, Database)
             else psycopg.connect(ledger.db.url, autocommit=True))
    try:
        for sql in ("UPDATE audit SET detail = 'x'", "DELETE FROM audit WHERE seq = 1"):
            with pytest.raises(refused, match="append-only"):
                other.execute(sql)
    finally:
        other.close()
    assert await ledger.db.scalar("SELECT COUNT(*) FROM audit WHERE detail = 'x'") == 0
    assert await audit_events(ledger.db, hold) == [("reserve", 500_000), ("settled", 500_000)]


# -- 4. a failed, refused or cancelled job costs nothing -----------------------------------------

@pytest.mark.parametrize("prompt", ["[sim:content_policy] a fox", "[sim:server_error] a fox"])
async def test_failed_jobs_release_their_hold(kit, prompt):
    job = await kit.generate(ALICE, PIKA, {"prompt": prompt})
    assert job.state is JobState.FAILED and job.hold_id
    hold = await hold_row(kit.db, job.hold_id)
    assert (hold["state"], hold["actual_micros"], hold["job_id"]) == ("released", 0, job.id)
    events = [e for e, _ in await audit_events(kit.db, job.hold_id)]
    assert events[0] == "reserve" and events[-1] == "released" and "settled" not in events
    assert kind(await kit.quota_status(ALICE), "daily").used == 0
    assert [(r.settled_micros, r.open_micros) for r in await kit.spend_report(ALICE)] in ([], [(0, 0)])
    books = await kit.ledger.books()
    assert books["settled_micros"] == books["open_micros"] == books["audit_settled_micros"] == 0


async def test_a_cancelled_running_job_costs_nothing(kit):
    job = await kit.generate(ALICE, PIKA, {"prompt": "[sim:slow=5] a fox"}, wait=0)
    assert (await hold_row(kit.db, job.hold_id))["state"] == "submitted"
    await until_state(kit, job.id, {JobState.RUNNING})
    await kit.cancel_job(ALICE, job.id)
    final = await kit.wait_for_job(ALICE, job.id, timeout=5)
    assert final.state is JobState.CANCELLED
    hold = await hold_row(kit.db, job.hold_id)
    assert (hold["state"], hold["actual_micros"]) == ("released", 0)
    assert kind(await kit.quota_status(ALICE), "daily").used == 0
    assert kind(await kit.quota_status(ALICE), "concurrent").used == 0


async def test_a_successful_job_is_settled_at_its_estimate(kit):
    job = await kit.generate(ALICE, PIKA, {"prompt": "a fox"})
    assert job.state is JobState.SUCCEEDED, job.error
    hold = await hold_row(kit.db, job.hold_id)
    assert (hold["state"], hold["actual_micros"], hold["estimate_micros"]) == ("settled", PIKA_COST, PIKA_COST)
    assert [e for e, _ in await audit_events(kit.db, job.hold_id)] == ["reserve", "submitted", "settled"]
    [row] = await kit.spend_report(ALICE)
    assert (row.key, row.jobs, row.settled_micros, row.open_micros) == ("alice", 1, PIKA_COST, 0)
    assert kind(await kit.quota_status(ALICE), "daily").used == PIKA_COST
    books = await kit.ledger.books()
    assert books["settled_micros"] == books["audit_settled_micros"] == PIKA_COST and books["open_micros"] == 0


# -- 5. an invalid request never reaches the ledger ----------------------------------------------

@pytest.mark.parametrize(("tool", "args", "message"), [
    ("sora_2_pro_text_to_video", {"prompt": "x", "resolution": "4k"}, "not allowed"),
    ("hunyuan_image_v3", {"prompt": "x", "num_images": 99}, "from 1 to 4"),
    ("sora_2_pro_text_to_video", {"duration": 8}, "prompt: required"),
    ("no_such_tool", {"prompt": "x"}, "Unknown tool"),
    ("pika_image_to_video", {"prompt": "x", "image_url": "MISSING"}, "does not exist"),
])
async def test_an_invalid_request_never_reaches_the_ledger(kit, sim, tmp_path, tool, args, message):
    if args.get("image_url") == "MISSING":
        args = {**args, "image_url": str(tmp_path / "missing.png")}
    before = await counts(kit.db)
    with pytest.raises(UserError, match=message):
        await kit.generate(ALICE, tool, args)
    assert await counts(kit.db) == before
    assert before["holds"] == before["audit"] == before["jobs"] == 0
    assert await kit.db.scalar("SELECT COUNT(*) FROM accounts WHERE name = 'alice'") == 0
    assert sim.stats.requests == 0


async def test_a_refused_reservation_leaves_no_job_and_no_hold(kit, sim):
    with pytest.raises(QuotaExceeded):
        await kit.generate(ALICE, "sora_2_pro_text_to_video", {"prompt": "x", "duration": 12})  # $6.00 > $5
    assert (await counts(kit.db))["holds"] == (await counts(kit.db))["jobs"] == 0
    assert await kit.db.scalar("SELECT COUNT(*) FROM audit WHERE event = 'reserve'") == 0
    assert sim.stats.requests == 0


# -- 6. a crash between reserve and submit -------------------------------------------------------

async def reserve_job(kit: Toolkit, key: str, account: str = "alice", estimate: int = 3_200_000):
    """Reserve and record a job in one transaction, exactly as Toolkit.generate does."""
    created = []

    async def record(tx, hold_id):
        created.append(await kit.engine.create(account=account, tool="veo3_fast", params={"prompt": key},
                                               estimate_micros=estimate, hold_id=hold_id, idempotency_key=key, tx=tx))
        return created[-1].id

    await kit.ledger.reserve(Requester(account), estimate, key, tool="veo3_fast", tx_hook=record)
    return created[0]


async def crash_during_submit(tmp_path, sim) -> tuple[Toolkit, object, object]:
    """Two reserved jobs, one pending and one mid-submit, when the process dies; then a new
    process starts after their leases lapsed. Returns (new toolkit, pending job, submitting job)."""
    settings = make_settings(tmp_path, default={"daily_usd": "20", "concurrent_jobs": 5}, sim=sim)
    crash = ts("2026-06-15T09:00:00")  # fixed, so "10,000 s later" is the same day whenever the test runs
    kit = await Toolkit.open(settings, clock=lambda: crash)
    pending = await reserve_job(kit, "pending")
    submitting = await reserve_job(kit, "submitting")
    await kit.engine._transition(submitting.id, JobState.SUBMITTING, {JobState.PENDING})
    await kit.close()  # the process dies here
    return await Toolkit.open(settings, clock=lambda: crash + 10_000), pending, submitting


async def test_a_crash_between_reserve_and_submit_leaves_a_visible_recoverable_hold(tmp_path, sim):
    later, pending, submitting = await crash_during_submit(tmp_path, sim)
    try:
        failed = await later.engine.get(pending.id)
        assert failed.state is JobState.FAILED and "nothing was charged" in failed.error
        assert (await hold_row(later.db, pending.hold_id))["state"] == "released"

        unknown = await later.engine.get(submitting.id)
        assert unknown.state is JobState.UNKNOWN and unknown.hold_id == submitting.hold_id
        with pytest.raises(UserError, match="Only admins"):
            await later.open_holds(ALICE)
        [hold] = await later.open_holds(ADMIN)
        assert (hold.id, hold.state, hold.estimate_micros) == (submitting.hold_id, "held", 3_200_000)
        assert [h.id for h in await later.ledger.holds()] == [hold.id]
        statuses = await later.quota_status(ALICE)  # still counted: the provider may bill it
        assert kind(statuses, "daily").used == 3_200_000 and kind(statuses, "concurrent").used == 1

        # The operator checks the provider dashboard and resolves it, once.
        with pytest.raises(UserError, match="Only admins"):
            await later.resolve_hold(ALICE, hold.id, charge_micros=None)
        assert await later.resolve_hold(ADMIN, hold.id, charge_micros=3_200_000)
        assert not await later.resolve_hold(ADMIN, hold.id, charge_micros=None)
        assert await later.open_holds(ADMIN) == []
        assert (await audit_events(later.db, hold.id))[-1] == ("settled", 3_200_000)
        assert sim.stats.total_submits == 0
        await assert_books_agree(later.ledger)
    finally:
        await later.close()


async def test_the_hold_of_an_unknown_job_is_listed_with_its_job(tmp_path, sim):
    later, _, submitting = await crash_during_submit(tmp_path, sim)
    try:
        [hold] = await later.open_holds(ADMIN)
        assert (hold.id, hold.job_id, hold.job_state) == (submitting.hold_id, submitting.id, "unknown")
        await assert_books_agree(later.ledger)
    finally:
        await later.close()


async def test_a_bare_hold_is_listed_until_the_operator_releases_it(open_ledger):
    ledger = await open_ledger()
    hold = (await reserve(ledger, 700_000, "orphan")).hold_id
    [listed] = await ledger.holds()
    assert (listed.id, listed.state, listed.job_id, listed.job_state) == (hold, "held", None, None)
    assert await ledger.release(hold, detail="no job behind it", actor="root")
    assert await ledger.holds() == []
    assert [h.id for h in await ledger.holds(states=("released",))] == [hold]


async def test_a_generate_cancelled_before_submit_releases_its_hold(kit, monkeypatch):
    never = asyncio.Event()

    async def stuck_upload(spec, params, adapter):
        await never.wait()  # a slow upload of a local file; the client gives up meanwhile

    monkeypatch.setattr(toolkit_module, "prepare_inputs", stuck_upload)
    task = asyncio.create_task(kit.generate(ALICE, PIKA, {"prompt": "x"}))
    for _ in range(500):
        if await kit.db.scalar("SELECT COUNT(*) FROM holds"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [job] = await kit.list_jobs(ALICE)
    assert job.state is not JobState.PENDING
    assert (await hold_row(kit.db, job.hold_id))["state"] == "released"


# -- 7. accounts see only their own jobs and usage -------------------------------------------------

async def test_quota_and_spend_are_private_to_their_account(kit):
    job = await kit.generate(ALICE, PIKA, {"prompt": "x"})
    running = await kit.generate(ALICE, PIKA, {"prompt": "[sim:slow=5] x"}, wait=0)
    alice, bob = await kit.quota_status(ALICE), await kit.quota_status(BOB)
    assert kind(alice, "daily").used == 2 * PIKA_COST and kind(alice, "concurrent").used == 1
    assert all(s.used == 0 for s in bob) and {s.scope_id for s in bob} == {"bob"}
    assert await kit.spend_report(BOB) == []
    with pytest.raises(UserError, match="Only admins can see every account's spend"):
        await kit.spend_report(BOB, all_accounts=True)
    assert {r.key for r in await kit.spend_report(ADMIN, all_accounts=True)} == {"alice"}
    assert [r.key for r in await kit.spend_report(ALICE, by="model")] == [PIKA]
    for call in (kit.get_job(BOB, job.id), kit.wait_for_job(BOB, running.id, timeout=0),
                 kit.cancel_job(BOB, running.id)):
        with pytest.raises(JobNotFound):
            await call
    assert await kit.list_jobs(BOB) == []
    assert (await kit.engine.get(running.id)).cancel_requested is False
    await kit.cancel_job(ALICE, running.id)


async def test_an_idempotency_key_does_not_reach_another_accounts_job(kit):
    first = await kit.generate(ALICE, PIKA, {"prompt": "alice's private prompt"}, idempotency_key="req-42")
    try:
        second = await kit.generate(BOB, PIKA, {"prompt": "x"}, idempotency_key="req-42")
    except UserError:
        return  # refusing the reused key is as good as a job of bob's own
    assert second.account == "bob" and second.id != first.id


# -- 8. QuotaExceeded explains itself ------------------------------------------------------------

async def test_a_budget_refusal_says_cost_what_is_left_and_when_it_resets(tmp_path, sim):
    clock = Clock().at("2026-11-21T20:48:00")
    settings = make_settings(tmp_path, default={"daily_usd": "5", "concurrent_jobs": 2}, sim=sim)
    async with await Toolkit.open(settings, clock=clock) as kit:
        earlier = await kit.ledger.reserve(ALICE.requester, 3_900_000, "earlier", tool="veo3_fast")
        await kit.ledger.settle(earlier.hold_id, 3_900_000)
        before = await counts(kit.db)
        with pytest.raises(QuotaExceeded) as refused:
            await kit.generate(ALICE, "sora_2_pro_text_to_video", {"prompt": "x", "resolution": "1080p", "duration": 8})
        assert await counts(kit.db) == before
    assert str(refused.value) == ("This Sora 2 Pro clip costs $4.00; you have $1.10 left today "
                                  "(resets at 00:00 UTC, in 3 h 12 min).")
    e = refused.value
    assert (e.asked_micros, e.remaining_micros, e.scope, e.limit) == (4_000_000, 1_100_000, "account", "today")
    assert e.resets_at == ts("2026-11-22T00:00:00")
    assert sim.stats.requests == 0


async def test_concurrency_and_hourly_refusals_say_the_limit_and_what_to_do(open_ledger):
    ledger = await open_ledger(default={"concurrent_jobs": 2, "jobs_per_hour": 3})
    first = (await reserve(ledger, 1, "a")).hold_id
    await reserve(ledger, 1, "b")
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 1, "c")
    assert str(refused.value) == ("You have 2 job(s) running, the limit at once is 2; wait for one to finish or "
                                  "cancel one, then try again.")
    assert refused.value.limit == "concurrent jobs"
    await ledger.release(first)
    await reserve(ledger, 1, "d")  # a slot is free again
    await ledger.release((await ledger.holds())[0].id)
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 1, "e")
    assert str(refused.value) == ("You have started 3 job(s) in the last hour, the limit is 3 per hour; "
                                  "try again in a few minutes.")
    assert refused.value.limit == "jobs per hour"


async def test_a_guild_cap_covers_everyone_in_it(open_ledger):
    ledger = await open_ledger(clock=Clock().at("2026-11-21T12:00:00"))
    await ledger.set_limits("guild", "g1", Limits(daily_micros=usd("2"), concurrent_jobs=2))
    in_g1 = {name: Requester(name, guild_id="g1") for name in ("alice", "bob", "carol")}
    await ledger.settle((await reserve(ledger, 1_500_000, "a", in_g1["alice"])).hold_id, 1_500_000)
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 1_000_000, "b", in_g1["bob"])
    assert str(refused.value) == ("This clip costs $1.00; this server has $0.50 left today "
                                  "(resets at 00:00 UTC, in 12 h 0 min).")
    assert refused.value.scope == "guild"
    await reserve(ledger, 1_000_000, "b-dm", Requester("bob"))  # outside the server, bob's own (unlimited) budget
    await reserve(ledger, 100_000, "c", in_g1["carol"])
    await reserve(ledger, 100_000, "d", in_g1["bob"])
    with pytest.raises(QuotaExceeded, match="^This server has 2 job\\(s\\) running, the limit at once is 2"):
        await reserve(ledger, 1, "e", in_g1["alice"])
    bob_status = await ledger.status(in_g1["bob"])
    assert kind(bob_status, "daily", "guild").used == 1_700_000
    assert [s for s in bob_status if s.scope == "account"] == []  # bob has no account limits of his own


async def test_the_global_cap_refuses_everyone(open_ledger):
    ledger = await open_ledger(glob={"daily_usd": "3"}, clock=Clock().at("2026-11-21T23:00:00"))
    await ledger.settle((await reserve(ledger, 2_500_000, "a", "alice")).hold_id, 2_500_000)
    with pytest.raises(QuotaExceeded) as refused:
        await reserve(ledger, 1_000_000, "b", "bob")
    assert str(refused.value) == ("This clip costs $1.00; the operator's budget has $0.50 left today "
                                  "(resets at 00:00 UTC, in 1 h 0 min).")
    assert refused.value.scope == "global"
    await ledger.set_limits("global", "", Limits(daily_micros=usd("10")))  # the operator raises it at run time
    await reserve(ledger, 1_000_000, "c", "bob")


async def test_the_most_generous_role_wins_and_the_account_override_beats_roles(open_ledger):
    ledger = await open_ledger(default={"daily_usd": "5", "concurrent_jobs": 1})
    await ledger.set_limits("role", "supporter", Limits(daily_micros=usd("10"), concurrent_jobs=3))
    await ledger.set_limits("role", "patron", Limits(daily_micros=usd("20"), concurrent_jobs=2))
    await ledger.add_account("alice")

    def limits(statuses):
        return {s.kind: s.limit for s in statuses if s.scope == "account"}

    both = Requester("alice", role_ids=("supporter", "patron", "unknown-role"))
    assert limits(await ledger.status(both)) == {"daily": usd("20"), "concurrent": 3}
    assert limits(await ledger.status(Requester("alice", role_ids=("unknown-role",)))) == {"daily": usd("5"),
                                                                                           "concurrent": 1}
    await reserve(ledger, usd("15"), "big", both)  # only the patron role makes room for this

    await ledger.set_limits("account", "alice", Limits(daily_micros=usd("16")))
    assert limits(await ledger.status(both)) == {"daily": usd("16"), "concurrent": 3}  # inherits the rest
    with pytest.raises(QuotaExceeded, match=r"you have \$1.00 left today"):
        await reserve(ledger, usd("2"), "more", both)


async def test_a_warning_comes_with_the_reservation_that_crosses_the_threshold(open_ledger):
    ledger = await open_ledger(default={"daily_usd": "5", "warn_at": 0.8}, clock=Clock().at("2026-11-21T20:00:00"))
    assert (await reserve(ledger, usd("3"), "a")).warnings == ()
    [warning] = (await reserve(ledger, usd("1"), "b")).warnings
    assert "80 %" in warning and "$1.00 left" in warning and "resets at 00:00 UTC, in 4 h 0 min" in warning
    assert (await reserve(ledger, usd("0.5"), "c")).warnings == ()  # said once, when crossing


# -- 9. bad limits are refused with the reason -----------------------------------------------------

@pytest.mark.parametrize(("limits", "reason"), [
    (Limits(daily_micros=-1), "--daily must be a dollar amount from 0 to 1000000"),
    (Limits(monthly_micros=usd("2000000")), "--monthly must be a dollar amount from 0 to 1000000 (got $2000000.00)"),
    (Limits(concurrent_jobs=-1), "--concurrent must be a whole number from 0 to 1000000 (got -1)"),
    (Limits(jobs_per_hour=10**9), "--hourly must be a whole number"),
    (Limits(warn_at=0), "--warn-at must be a share above 0 and at most 1"),
    (Limits(warn_at=1.5), "(got 1.5)"),
])
def test_validate_limits_names_the_problem(limits, reason):
    with pytest.raises(UserError, match="^Invalid limit: ") as refused:
        validate_limits(limits)
    assert reason in str(refused.value)


def test_validate_limits_lists_every_problem_and_accepts_edges():
    with pytest.raises(UserError) as refused:
        validate_limits(Limits(daily_micros=-1, concurrent_jobs=-2))
    assert str(refused.value).count("--") == 2
    validate_limits(Limits(daily_micros=0, monthly_micros=usd("1000000"), concurrent_jobs=0, warn_at=1))


@pytest.mark.parametrize(("text", "micros"), [("5", 5_000_000), ("2.50", 2_500_000), ("$3", 3_000_000),
                                              (" 0.045 ", 45_000), ("0", 0), ("1000000", 10**12)])
def test_parse_usd_accepts_dollar_amounts(text, micros):
    assert parse_usd(text, "--daily") == micros


@pytest.mark.parametrize(("text", "reason"), [
    ("abc", "--daily takes a dollar amount such as 5 or 2.50, not 'abc'"), ("", "takes a dollar amount"),
    ("5 dollars", "takes a dollar amount"), ("-5", "from 0 to 1000000, not '-5'"), ("$-5", "from 0 to 1000000"),
    ("1e9", "from 0 to 1000000"), ("1000000.01", "from 0 to 1000000"), ("nan", "not 'nan'"), ("inf", "not 'inf'"),
])
def test_parse_usd_refuses_with_the_reason(text, reason):
    with pytest.raises(UserError) as refused:
        parse_usd(text, "--daily")
    assert reason in str(refused.value)


async def test_set_limits_refuses_unknown_accounts_scopes_and_bad_values(open_ledger):
    ledger = await open_ledger()
    await ledger.add_account("bob")
    await ledger.add_account("alice")
    with pytest.raises(UserError) as refused:
        await ledger.set_limits("account", "zed", Limits(daily_micros=1))
    assert str(refused.value) == "No account 'zed'. Accounts: alice, bob. `videogen accounts add NAME` creates one."
    with pytest.raises(UserError, match="^Unknown scope 'team'; use one of account, role, guild, global.$"):
        await ledger.set_limits("team", "x", Limits(daily_micros=1))
    with pytest.raises(UserError, match="--concurrent must be a whole number"):
        await ledger.set_limits("account", "alice", Limits(concurrent_jobs=-3))
    with pytest.raises(UserError, match="already exists"):
        await ledger.add_account("alice")
    with pytest.raises(UserError, match="not a usable account name"):
        await ledger.add_account("al ice; DROP")
    assert await ledger.db.scalar("SELECT COUNT(*) FROM limits") == 0
    assert await ledger.db.scalar("SELECT COUNT(*) FROM audit WHERE event = 'limits_set'") == 0


@pytest.mark.parametrize("quotas", [{"default": {"daily_usd": -1}}, {"default": {"daily_usd": "lots"}},
                                    {"global": {"monthly_usd": 10**7}}, {"default": {"concurrent_jobs": -1}},
                                    {"timezone": "Mars/Olympus_Mons"}])
def test_bad_limits_in_the_config_are_refused(quotas):
    with pytest.raises(ValidationError):
        Settings.model_validate({"quotas": quotas})


async def test_set_limits_merges_into_the_stored_override(open_ledger):
    ledger = await open_ledger()
    await ledger.add_account("alice")
    await ledger.set_limits("account", "alice", Limits(daily_micros=usd("7")))
    merged = await ledger.set_limits("account", "alice", Limits(concurrent_jobs=3))
    assert (merged.daily_micros, merged.concurrent_jobs) == (usd("7"), 3)
    assert await ledger.db.scalar("SELECT COUNT(*) FROM audit WHERE event = 'limits_set'") == 2


async def test_concurrent_limit_changes_to_one_scope_are_both_kept(open_ledger):
    ledger = await open_ledger()
    await ledger.add_account("alice")
    await asyncio.gather(ledger.set_limits("account", "alice", Limits(daily_micros=usd("7"))),
                         ledger.set_limits("account", "alice", Limits(concurrent_jobs=3)))
    stored = await ledger.stored_limits("account", "alice")
    assert (stored.daily_micros, stored.concurrent_jobs) == (usd("7"), 3)


# -- 10. a corrupt or locked database ---------------------------------------------------------------

async def test_a_corrupt_database_file_gives_a_clear_error(tmp_path, sim):
    path = tmp_path / "videogen.db"
    path.write_bytes(b"this is not SQLite, just garbage " * 200)
    with pytest.raises(DatabaseUnavailable) as refused:
        await Database.open(path)
    assert "not a usable SQLite database" in str(refused.value) and str(path) in str(refused.value)
    with pytest.raises(DatabaseUnavailable, match="not a usable SQLite database"):
        await Toolkit.open(make_settings(tmp_path, sim=sim))
    assert path.read_bytes().startswith(b"this is not SQLite"), "the file is left for recovery"


async def test_a_database_path_that_is_a_directory_gives_a_clear_error(tmp_path):
    (tmp_path / "db-dir").mkdir()
    with pytest.raises(DatabaseUnavailable, match="cannot be used"):
        await Database.open(tmp_path / "db-dir")


@pytest.fixture
def short_busy_timeout(monkeypatch):
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)


async def test_no_paid_job_is_submitted_while_the_database_is_locked(tmp_path, sim, short_busy_timeout):
    settings = make_settings(tmp_path, default=LIMITED, sim=sim)
    async with await Toolkit.open(settings) as kit:
        other = sqlite3.connect(settings.storage.database, isolation_level=None)  # another process
        other.execute("BEGIN EXCLUSIVE")
        try:
            # The reservation waited on the lock for the busy timeout (200 ms here), then SQLite
            # answered "database is locked" and the job stopped before anything reached the provider.
            assert await kit.db.scalar("PRAGMA busy_timeout") == 200
            with pytest.raises(DatabaseUnavailable, match="database is locked.*another process holds a write lock"):
                await kit.generate(ALICE, PIKA, {"prompt": "x"})
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert sim.stats.requests == 0 and sim.stats.total_submits == 0
        assert (await counts(kit.db))["holds"] == 0
        job = await kit.generate(ALICE, PIKA, {"prompt": "x"})  # and it works again once the lock is gone
        assert job.state is JobState.SUCCEEDED
        await assert_books_agree(kit.ledger)


async def test_a_lock_between_reserve_and_submit_stops_the_submit_and_is_recovered(tmp_path, sim, monkeypatch,
                                                                                   short_busy_timeout):
    settings = make_settings(tmp_path, default=LIMITED, sim=sim)
    other = sqlite3.connect(settings.storage.database, isolation_level=None)

    async def lock_then_upload(spec, params, adapter):
        other.execute("BEGIN EXCLUSIVE")  # someone takes the write lock just before the submit is recorded
        return params

    monkeypatch.setattr(toolkit_module, "prepare_inputs", lock_then_upload)
    kit = await Toolkit.open(settings)
    try:
        with pytest.raises(DatabaseUnavailable):
            await kit.generate(ALICE, PIKA, {"prompt": "x"})
        assert sim.stats.total_submits == 0 and sim.stats.requests == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
        await kit.close()
    async with await Toolkit.open(settings, clock=lambda: time.time() + 10_000) as later:
        [job] = await later.list_jobs(ALICE)
        assert job.state is JobState.FAILED and "nothing was charged" in job.error
        assert (await hold_row(later.db, job.hold_id))["state"] == "released"
        assert await later.open_holds(ADMIN) == []
        await assert_books_agree(later.ledger)


def other_writer(db) -> tuple[Any, Callable[[], None], Callable[[], None]]:
    """Another process's connection, and how it takes and lets go of what a reservation waits
    for: SQLite's write lock, or PostgreSQL's advisory lock on the global spend scope."""
    if isinstance(db, Database):
        other = sqlite3.connect(db.path, isolation_level=None, timeout=0.5)
        return other, lambda: other.execute("BEGIN EXCLUSIVE"), lambda: other.execute("ROLLBACK")
    other = psycopg.connect(db.url, autocommit=True)

    def take() -> None:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(hashtextextended('spend:global:', 0))")
    return other, take, lambda: other.execute("ROLLBACK")


async def test_a_reservation_cancelled_while_waiting_for_the_lock_leaves_the_database_usable(open_ledger):
    ledger = await open_ledger()
    other, take, let_go = other_writer(ledger.db)
    take()
    task = asyncio.create_task(reserve(ledger, 1, "a"))
    await asyncio.sleep(0.2)  # waiting: on busy_timeout inside BEGIN IMMEDIATE, or on the advisory lock
    task.cancel()  # e.g. the Discord interaction or MCP request was given up
    await asyncio.sleep(0.05)
    let_go()  # the other process lets go soon after (else the cancel waits out busy_timeout)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ledger.db.scalar("SELECT COUNT(*) FROM holds") == 0, "the cancelled reservation left no hold"
    await asyncio.sleep(0.3)
    third, take, let_go = other_writer(ledger.db)
    try:
        take()  # another process can still write
        let_go()
        await reserve(ledger, 1, "b")  # and so can this one
    finally:
        third.close()
        other.close()
    assert await ledger.db.scalar("SELECT COUNT(*) FROM holds") == 1
    await assert_books_agree(ledger)


# -- 11. tokens -------------------------------------------------------------------------------------

async def test_tokens_are_shown_once_and_stored_only_as_their_hash(tmp_path, open_ledger):
    ledger = await open_ledger()
    await ledger.add_account("alice")
    token = await ledger.create_token("alice", label="laptop")
    other = await ledger.create_token("alice", label="ci")
    assert token.startswith("vg_") and len(token) >= 40 and token != other
    assert await ledger.account_for_token(token) == "alice"
    assert await ledger.account_for_token(token + "x") is None
    assert await ledger.account_for_token("") is None
    assert await ledger.account_for_token("vg_" + "A" * 43) is None
    stored = {r["token_hash"] for r in await ledger.db.fetchall("SELECT token_hash FROM tokens")}
    assert stored == {hashlib.sha256(token.encode()).hexdigest(), hashlib.sha256(other.encode()).hexdigest()}
    with pytest.raises(UserError, match="No account 'zed'"):
        await ledger.create_token("zed")

    async with ledger.db.transaction() as tx:
        await tx.execute("UPDATE tokens SET revoked_at = 1 WHERE token_hash = ?",
                         (hashlib.sha256(other.encode()).hexdigest(),))
    assert await ledger.account_for_token(other) is None

    if not isinstance(ledger.db, Database):
        return  # the rows above are all PostgreSQL stores; the bytes on disk are the server's
    path = ledger.db.path
    await ledger.db.close()  # checkpoint the WAL into the file; then look at every byte on disk
    on_disk = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert token.encode() not in on_disk and other.encode() not in on_disk
    assert token[3:].encode() not in on_disk and token[3:20].encode() not in on_disk
    assert hashlib.sha256(token.encode()).hexdigest().encode() in on_disk
    async with await Database.open(path) as db:  # let the fixture close a fresh connection
        assert await Ledger(db, make_settings(tmp_path)).account_for_token(token) == "alice"


async def test_toolkit_tokens_and_discord_identities_resolve_to_accounts(tmp_path, sim):
    settings = make_settings(tmp_path, sim=sim, admins=["ops"])
    async with await Toolkit.open(settings) as kit:
        for name in ("alice", "ops"):
            await kit.ledger.add_account(name)
        alice_token = await kit.ledger.create_token("alice")
        ops_token = await kit.ledger.create_token("ops")
        assert await kit.account_for_token(alice_token) == Account("alice")
        assert await kit.account_for_token(ops_token) == Account("ops", is_admin=True)
        assert await kit.account_for_token("vg_nope") is None

        stranger = await kit.account_for_discord(111, guild_id=5, role_ids=(7,))
        assert stranger == Account("discord-111", guild_id="5", role_ids=("7",))
        await kit.ledger.link_discord("alice", 222)
        linked = await kit.account_for_discord(222, guild_id=5)
        assert linked.name == "alice" and linked.requester == Requester("alice", "5", ())


async def test_check_refuses_what_reserve_would_refuse_and_writes_nothing(open_ledger):
    """The read-only check a surface runs before answering anyone (Discord's private refusals)."""
    ledger = await open_ledger(default={"daily_usd": "1", "concurrent_jobs": 1})
    await ledger.check(Requester("alice"), usd("0.60"), tool=PIKA, what="This clip")
    assert (await counts(ledger.db))["holds"] == 0 and (await counts(ledger.db))["audit"] == 0
    await reserve(ledger, usd("0.60"), "a")
    before = await counts(ledger.db)
    with pytest.raises(QuotaExceeded, match="This clip costs \\$0.60; you have \\$0.40 left today"):
        await ledger.check(Requester("alice"), usd("0.60"), tool=PIKA, what="This clip")
    with pytest.raises(QuotaExceeded, match="1 job\\(s\\) running, the limit at once is 1"):
        await ledger.check(Requester("alice"), usd("0.10"), tool=PIKA, what="This clip")
    await ledger.check(Requester("bob"), usd("0.60"), tool=PIKA)  # someone else's budget is untouched
    assert await counts(ledger.db) == before
