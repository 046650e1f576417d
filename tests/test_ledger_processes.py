"""Many processes, one database: reservations never overspend and the books balance (issues 4, 14).

Each worker process opens its own database (its own connection, or pool of them on PostgreSQL)
and fires its share of reservations at once with ``asyncio.gather``; the processes are released
together by the parent so their transactions really race — on a SQLite file (writers queue on its
lock) and on a PostgreSQL schema (reservations queue on advisory locks). Run as a script, this file is the worker:

    python tests/test_ledger_processes.py WORKER DB_PATH INDEX COUNT ESTIMATE_MICROS DAILY_USD
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

if __name__ == "__main__":  # the worker, started by the test below with the project on sys.path
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from agent_tools.config import Settings
from agent_tools.store import open_database
from agent_tools.ledger import Ledger, QuotaExceeded, Requester

from processes import die_with_parent, worker_env

PROCESSES = 4
PER_PROCESS = 75
ESTIMATE = 500_000  # $0.50
DAILY_USD = "10"  # room for exactly 20 holds
ACCOUNT = "alice"


def settings_for(db_path: str | Path, daily_usd: str) -> Settings:
    # Only a daily cap: no concurrency, hourly or monthly limit may refuse anything here.
    return Settings.model_validate({"storage": {"database": str(db_path)},
                                    "quotas": {"default": {"daily_usd": daily_usd}}})


async def worker(db_path: str, index: int, count: int, estimate: int, daily_usd: str) -> dict:
    db = await open_database(db_path)
    try:
        ledger = Ledger(db, settings_for(db_path, daily_usd))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # the parent's "go"
        results = await asyncio.gather(
            *(ledger.reserve(Requester(ACCOUNT), estimate, f"p{index}-r{i}", tool="pika_text_to_video")
              for i in range(count)),
            return_exceptions=True)
    finally:
        await db.close()
    return {"index": index,
            "granted": [r.hold_id for r in results if not isinstance(r, BaseException)],
            "refused": sum(isinstance(r, QuotaExceeded) for r in results),
            "errors": [repr(r) for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaExceeded)]}


async def run_workers(db_path: Path, processes: int, count: int, estimate: int, daily_usd: str) -> list[dict]:
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, "WORKER", str(db_path), str(i), str(count), str(estimate), daily_usd,
        env=worker_env(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        for i in range(processes)]
    try:
        for proc in procs:  # every process has its connection open before any of them starts
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.strip() == b"ready", (line, await proc.stderr.read())
        for proc in procs:
            proc.stdin.write(b"go\n")
        for proc in procs:
            await proc.stdin.drain()
        outputs = [await asyncio.wait_for(proc.communicate(), 30) for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    results = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    return results


async def test_300_reservations_from_4_processes_grant_exactly_what_fits_and_the_books_balance(database_url):
    db_path = database_url
    async with await open_database(db_path):  # created and migrated once, like an installed deployment
        pass
    results = await run_workers(db_path, PROCESSES, PER_PROCESS, ESTIMATE, DAILY_USD)

    # Every reservation got an answer, and only a quota's: the writers queued (on SQLite's
    # busy_timeout, on PostgreSQL's advisory locks) rather than failing. How fast they queue is
    # measured in bench/bench_ledger.py and bench/bench_scale.py, not asserted here.
    granted = [hold for r in results for hold in r["granted"]]
    assert [r["errors"] for r in results] == [[]] * PROCESSES, "no 'database is locked' or other errors"
    assert len(granted) == 20 and len(set(granted)) == 20
    assert sum(r["refused"] for r in results) == PROCESSES * PER_PROCESS - 20

    settings = settings_for(db_path, DAILY_USD)
    async with await open_database(db_path) as db:
        ledger = Ledger(db, settings)
        books = await ledger.books()
        assert books == {"settled_micros": 0, "open_micros": 20 * ESTIMATE, "released": 0, "holds": 20,
                         "audit_settled_micros": 0, "audit_reserves": 20}
        assert (await ledger.check_books()).differences == (), "the running totals survived the race exactly"
        # The jobs end: half succeed at their own actual costs (one above its estimate), half fail.
        actuals = {}
        for i, hold in enumerate(sorted(granted)):
            if i % 2 == 0:
                actuals[hold] = 700_000 if i == 0 else 100_000 * (i % 5 + 1)
                assert await ledger.settle(hold, actuals[hold], detail="test")
            else:
                assert await ledger.release(hold, detail="test")
        spent = sum(actuals.values())

        books = await ledger.books()
        assert books["settled_micros"] == spent == books["audit_settled_micros"]
        assert books["open_micros"] == 0, "no hold leaked"
        assert books["released"] == 10 and books["holds"] == 20 and books["audit_reserves"] == 20

        rows = await db.fetchall("SELECT h.id, h.state, h.actual_micros, a.event, a.amount FROM holds h"
                                 " JOIN audit a ON a.hold_id = h.id ORDER BY a.seq")
        assert {r["id"] for r in rows if r["event"] == "reserve"} == set(granted)
        settled_rows = [r for r in rows if r["event"] == "settled"]
        assert {r["id"]: r["amount"] for r in settled_rows} == actuals and len(settled_rows) == 10
        assert all(r["amount"] == r["actual_micros"] for r in settled_rows)
        released_rows = [r for r in rows if r["event"] == "released"]
        assert len(released_rows) == 10 and all(r["amount"] == 0 and r["actual_micros"] == 0 for r in released_rows)
        assert await db.scalar("SELECT COUNT(*) FROM holds WHERE state IN ('held', 'submitted')") == 0
        assert await db.scalar("SELECT COUNT(*) FROM audit WHERE hold_id IS NOT NULL AND hold_id NOT IN"
                               " (SELECT id FROM holds)") == 0, "no audit row for a refused reservation"

        [row] = await ledger.spend(account=ACCOUNT)
        assert (row.settled_micros, row.open_micros, row.jobs) == (spent, 0, 10)
        [daily] = [s for s in await ledger.status(Requester(ACCOUNT)) if s.kind == "daily"]
        assert daily.used == spent and daily.remaining == 10_000_000 - spent

        # What was released is spendable again, to the micro-dollar: exactly as many fit as the money left.
        more = await asyncio.gather(*(ledger.reserve(Requester(ACCOUNT), ESTIMATE, f"after-{i}", tool="pika_text_to_video")
                                      for i in range(20)), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in more) == (10_000_000 - spent) // ESTIMATE
        assert all(isinstance(r, QuotaExceeded) for r in more if isinstance(r, BaseException))
        assert (await ledger.check_books()).differences == ()


if __name__ == "__main__" and sys.argv[1:2] == ["WORKER"]:
    die_with_parent()
    _, _, path, index, count, estimate, daily = sys.argv
    print(json.dumps(asyncio.run(worker(path, int(index), int(count), int(estimate), daily))), flush=True)
