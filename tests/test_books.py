"""Running spend totals (issue 11): kept with every hold change, built for an older database,
rebuilt after a time-zone change, and checked by ``videogen books check`` against the holds and
the audit — which must notice a wrong total or a hold the audit does not explain.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agent_tools.cli import main
from agent_tools.config import Settings
from agent_tools.db import MIGRATIONS, Database, statements
from agent_tools.ledger import Ledger, Limits, QuotaExceeded, Requester
from agent_tools.store import open_database

PIKA = "pika_text_to_video"


def ts(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def settings_for(path, *, timezone: str = "UTC", daily_usd: str | None = None) -> Settings:
    default = {"daily_usd": daily_usd} if daily_usd else {}
    return Settings.model_validate({"storage": {"database": str(path)},
                                    "quotas": {"timezone": timezone, "default": default}})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def totals_of(db: Database) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    rows = await db.fetchall("SELECT scope, scope_id, period, charge_micros, holds, open_holds FROM spend_totals")
    return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


async def test_every_reserve_settle_and_release_moves_the_totals_of_each_scope(database_url):
    clock = Clock(ts("2026-03-31T23:30:00"))
    async with await open_database(database_url) as db:
        ledger = Ledger(db, settings_for(database_url), clock=clock)
        a = await ledger.reserve(Requester("alice", guild_id="g1"), 500_000, "a", tool=PIKA)
        b = await ledger.reserve(Requester("alice"), 300_000, "b", tool=PIKA)
        clock.now = ts("2026-04-01T00:30:00")  # a new day and month: the holds stay in March
        assert await ledger.settle(a.hold_id, 200_000)
        assert await ledger.release(b.hold_id)
        c = await ledger.reserve(Requester("bob", guild_id="g1"), 100_000, "c", tool=PIKA)
        assert not await ledger.settle(a.hold_id, 900_000)  # a repeat moves nothing

        got = await totals_of(db)
        assert got[("account", "alice", "day:2026-03-31")] == (200_000, 2, 0)
        assert got[("account", "alice", "month:2026-03")] == (200_000, 2, 0)
        assert got[("guild", "g1", "month:2026-03")] == (200_000, 1, 0)
        assert got[("guild", "g1", "month:2026-04")] == (100_000, 1, 1)
        assert got[("global", "", "all")] == (300_000, 3, 1)
        assert got[("account", "bob", "day:2026-04-01")] == (100_000, 1, 1)
        assert not any(key[1] == "alice" and key[2].endswith("04") for key in got), "no April row for alice"
        assert (await ledger.check_books()).ok
        assert await ledger.release(c.hold_id)
        assert (await totals_of(db))[("global", "", "all")] == (200_000, 3, 0)
        assert (await ledger.check_books()).ok


async def test_a_database_made_before_the_totals_gets_them_from_its_holds(tmp_path):
    path = tmp_path / "old.db"
    now = ts("2026-06-15T12:00:00")
    with sqlite3.connect(path, isolation_level=None) as conn:  # schema version 3, as an older videogen left it
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
        for i, (state, actual) in enumerate([("settled", 400_000), ("released", 0), ("held", None)]):
            conn.execute("INSERT INTO holds(id, idempotency_key, account, tool, estimate_micros, actual_micros, state,"
                         " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         (f"h{i}", f"k{i}", "alice", PIKA, 500_000, actual, state, now - 60 * i, now))
            conn.execute("INSERT INTO audit(hold_id, account, event, amount, at) VALUES (?, 'alice', 'reserve', 500000, ?)",
                         (f"h{i}", now))
            if state != "held":
                conn.execute("INSERT INTO audit(hold_id, account, event, amount, at) VALUES (?, 'alice', ?, ?, ?)",
                             (f"h{i}", state, actual, now))
    async with await Database.open(path) as db:
        ledger = Ledger(db, settings_for(path, daily_usd="1.5"), clock=lambda: now)
        used = {s.kind: s.used for s in await ledger.status(Requester("alice"))}
        assert used == {"daily": 900_000}  # 0.40 settled + 0.50 still held
        assert (await totals_of(db))[("account", "alice", "all")] == (900_000, 3, 1)
        assert (await ledger.check_books()).ok
        with pytest.raises(QuotaExceeded):  # 0.90 used, 0.60 left: the history counts
            await ledger.reserve(Requester("alice"), 700_000, "new", tool=PIKA)
        await ledger.reserve(Requester("alice"), 600_000, "fits", tool=PIKA)


async def test_a_time_zone_change_rebuilds_the_totals_in_the_new_zone(tmp_path):
    path = tmp_path / "v.db"
    late_evening_utc = ts("2026-06-15T22:00:00")  # already June 16 in Tokyo
    async with await Database.open(path) as db:
        utc = Ledger(db, settings_for(path), clock=lambda: late_evening_utc)
        await utc.reserve(Requester("alice"), 500_000, "a", tool=PIKA)
        tokyo = Ledger(db, settings_for(path, timezone="Asia/Tokyo", daily_usd="10"), clock=lambda: late_evening_utc)
        report = await tokyo.check_books()
        assert not report.ok and "time zone UTC" in report.differences[0] and "Asia/Tokyo" in report.differences[0]
        [daily] = await tokyo.status(Requester("alice"))
        assert daily.used == 500_000
        assert ("account", "alice", "day:2026-06-16") in await totals_of(db)
        assert (await tokyo.check_books()).ok


async def reserve_and_settle(path) -> None:
    async with await Database.open(path) as db:
        ledger = Ledger(db, settings_for(path))
        hold = await ledger.reserve(Requester("alice"), 500_000, "a", tool=PIKA)
        await ledger.settle(hold.hold_id, 300_000)


def test_books_check_names_a_wrong_total_and_an_unexplained_hold(clean_env, monkeypatch, capsys):
    path = clean_env / "books.db"
    monkeypatch.setenv("VIDEOGEN_DB", str(path))
    monkeypatch.setenv("VIDEOGEN_MEDIA_DIR", str(clean_env / "media"))
    asyncio.run(reserve_and_settle(path))

    assert main(["books", "check"]) == 0
    assert "books agree" in capsys.readouterr().out

    with sqlite3.connect(path) as conn:  # a total drifts, and a hold appears that the audit never saw
        conn.execute("UPDATE spend_totals SET charge_micros = charge_micros + 1"
                     " WHERE scope = 'account' AND scope_id = 'alice' AND period = 'all'")
        conn.execute("INSERT INTO holds(id, idempotency_key, account, tool, estimate_micros, state, created_at,"
                     " updated_at) VALUES ('ghost', 'g', 'bob', ?, 100, 'held', 0, 0)", (PIKA,))
    assert main(["books", "check"]) == 1
    err = capsys.readouterr().err
    assert "account alice all: the totals say $0.300001 over 1 hold(s), 0 open; the holds say $0.30" in err
    assert "hold ghost: the audit has reserve amount(s) [], the hold's estimate is 100" in err
    assert "account bob" in err  # the ghost's totals are missing too

    assert main(["books", "check", "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out


async def test_the_books_check_reads_one_state_while_another_process_reserves(database_url, monkeypatch):
    """Another process's reservation commits between the check's read of the holds and its read of
    the totals and the audit: the check must compare one state (before it, or after it), never
    the holds of one moment with the totals of the next, which would report differences that are
    not there. It must not hold the write lock meanwhile either: the reservation goes through."""
    settings = settings_for(database_url)
    async with await open_database(database_url) as checking, await open_database(database_url) as other:
        ledger, elsewhere = Ledger(checking, settings), Ledger(other, settings)
        await ledger.reserve(Requester("alice"), 100_000, "before", tool=PIKA)
        loop = asyncio.get_running_loop()
        landed: list[str] = []

        def another_process_reserves() -> None:  # on the checking connection's thread, mid-check
            if not landed:
                landed.append("during")
                asyncio.run_coroutine_threadsafe(
                    elsewhere.reserve(Requester("bob"), 200_000, "during", tool=PIKA), loop).result(30)

        if database_url.startswith("postgres"):
            from agent_tools import postgres

            real = postgres.Connection.execute

            def execute(self, sql, args=()):
                if "FROM spend_totals" in sql:
                    another_process_reserves()
                return real(self, sql, args)

            monkeypatch.setattr(postgres.Connection, "execute", execute)
        else:
            await checking.read(lambda conn: conn.set_trace_callback(
                lambda sql: another_process_reserves() if "FROM spend_totals" in sql else None))
        during = await ledger.check_books()
        monkeypatch.undo()
        assert landed == ["during"], "the other reservation did not run during the check"
        assert during.ok, during.differences
        assert during.holds == 1  # the state from before bob's reservation, all of it
        after = await ledger.check_books()
        assert after.ok and after.holds == 2
