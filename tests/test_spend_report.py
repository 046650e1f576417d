"""Spend reports summed by SQLite (``Ledger.spend``, ``Ledger.spend_by_day``) agree, figure for figure,
with a plain Python sum over the holds — per account, model and calendar day, in UTC and in a time zone
whose days change length (Europe/Paris across the end of summer time: the days are numbered by a
CASE there, by arithmetic elsewhere), with settled, open and released holds."""

from __future__ import annotations

import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from agent_tools.config import Settings
from agent_tools.db import Database
from agent_tools.ledger import Ledger, Requester

START = datetime(2026, 10, 20, 12, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()  # summer time ends 2026-10-25


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reference(rows, by: str, since: date | None, zone: ZoneInfo) -> dict[str, tuple[int, int, int]]:
    groups: dict[str, list[int]] = {}
    for account, tool, created_at, state, estimate, actual in rows:
        day = datetime.fromtimestamp(created_at, zone).date()
        if since and day < since:
            continue
        key = {"account": account, "model": tool, "day": day.isoformat()}[by]
        row = groups.setdefault(key, [0, 0, 0])
        if state == "settled":
            row[0] += 1
            row[1] += actual or 0
        elif state in ("held", "submitted"):
            row[0] += 1
            row[2] += estimate
    return {k: tuple(v) for k, v in groups.items()}


@pytest.mark.parametrize("zone_name", ["Europe/Paris", "UTC"])
async def test_sql_sums_match_a_python_sum_over_every_hold(tmp_path, zone_name):
    zone = ZoneInfo(zone_name)
    clock = Clock(START)
    settings = Settings.model_validate({"storage": {"database": str(tmp_path / "v.db")},
                                        "quotas": {"timezone": zone_name, "default": {}}})
    db = await Database.open(settings.storage.database)
    ledger = Ledger(db, settings, clock=clock)
    chance = random.Random(16)
    try:
        for i in range(400):
            clock.now = START + i * 3 * 3600 + chance.randint(0, 3000)  # 50 days, a hold every ~3 h
            who = Requester(chance.choice(["alice", "bob", "carol"]))
            tool = chance.choice(["pika_text_to_video", "veo3_fast", "hunyuan_image_v3"])
            hold = await ledger.reserve(who, chance.randint(1, 9) * 100_000, f"k{i}", tool=tool)
            fate = chance.random()
            if fate < 0.6:
                await ledger.settle(hold.hold_id, chance.randint(0, 9) * 100_000)
            elif fate < 0.8:
                await ledger.release(hold.hold_id)
        rows = await db.fetchall("SELECT account, tool, created_at, state, estimate_micros, actual_micros FROM holds")
        for by in ("account", "model", "day"):
            for since in (None, date(2026, 10, 24), date(2026, 11, 20)):
                for account in (None, "alice"):
                    mine = [r for r in rows if account is None or r[0] == account]
                    got = {r.key: (r.jobs, r.settled_micros, r.open_micros)
                           for r in await ledger.spend(by=by, since=since, account=account)}
                    assert got == reference(mine, by, since, zone), (by, since, account)
        chart = await ledger.spend_by_day(by="model", since=date(2026, 10, 22))
        expected: dict[str, dict[str, int]] = {}
        for account, tool, created_at, state, estimate, actual in rows:
            day = datetime.fromtimestamp(created_at, zone).date()
            if state == "settled" and day >= date(2026, 10, 22):
                per = expected.setdefault(day.isoformat(), {})
                per[tool] = per.get(tool, 0) + (actual or 0)
        assert chart == expected
        assert "2026-10-25" in chart  # in Paris, the 25-hour day is one day
        assert await ledger.spend(by="day", since=date(2027, 1, 1)) == []
    finally:
        await db.close()
