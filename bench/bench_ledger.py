"""Ledger benchmark (issue 4): reserve + settle throughput and latency on one SQLite file.

Each worker process opens its own ``Database`` (as the MCP server, the Discord bot and the CLI
do) and runs N reserve → settle pairs one after the other, timing every call. The same work is
run by 1 process and by 4 processes at once on a fresh file, ``--rounds`` times; the report gives
medians over rounds of

- per-process throughput (pairs/s and ops/s, an op being one reserve or one settle),
- aggregate throughput (all pairs / wall time from the first start to the last finish),
- p50 and p99 latency of reserve and of settle (over every call of every process in a round),

and the ratios 4 processes / 1 process. The same run also measures the stdlib baseline: one
process, the stdlib ``sqlite3`` on the project's own schema, ``BEGIN IMMEDIATE; INSERT INTO holds;
UPDATE holds; COMMIT`` in a loop (transactions/s), so the ledger's rate is given as a share of what
SQLite itself does on this machine at that moment. Each round runs the baseline, then 1 process,
then 4 processes, so a change in the machine's load (a shared machine) falls on all three alike
instead of on whichever was measured last; the share is the median of each round's own share. Limits are on (account daily and monthly caps, a global
monthly cap, jobs per hour), set high enough that every reservation is granted, so each reserve
does all its checks. ``--history N`` first inserts N settled holds earlier this month (with their
audit rows) and builds the running totals for them, as the migration of an older database does.

Run:  .venv/bin/python bench/bench_ledger.py [--pairs 1000] [--rounds 5] [--history 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_tools.config import Settings  # noqa: E402
from agent_tools.db import Database  # noqa: E402
from agent_tools.store import open_database  # noqa: E402
from agent_tools.ledger import Ledger, Requester  # noqa: E402

ESTIMATE = 200_000  # $0.20, a Pika clip
ACTUAL = 150_000


def settings_for(db_path: str | Path, storage: dict | None = None) -> Settings:
    """``storage``: more ``[storage]`` settings (``bench_scale`` sets PostgreSQL's options through them)."""
    return Settings.model_validate({
        "storage": {"database": str(db_path), **(storage or {})},
        "quotas": {"default": {"daily_usd": "100000", "monthly_usd": "1000000", "jobs_per_hour": 1_000_000},
                   "global": {"monthly_usd": "1000000"}},
    })


# -- the worker (one process) -------------------------------------------------------------------

async def worker(db_path: str, index: int, pairs: int, storage: dict | None = None) -> dict:
    settings = settings_for(db_path, storage)
    db = await open_database(db_path, settings.storage)
    try:
        ledger = Ledger(db, settings)
        who = Requester(f"bench-{index}")
        await ledger.ensure_account(who.account)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        reserve_us, settle_us = [], []
        started, cpu_started = time.time(), time.process_time()
        for i in range(pairs):
            t0 = time.perf_counter()
            hold = await ledger.reserve(who, ESTIMATE, f"{index}-{i}-{uuid.uuid4().hex[:8]}", tool="pika_text_to_video")
            t1 = time.perf_counter()
            settled = await ledger.settle(hold.hold_id, ACTUAL)
            t2 = time.perf_counter()
            assert settled and not hold.existing
            reserve_us.append(round((t1 - t0) * 1e6))
            settle_us.append(round((t2 - t1) * 1e6))
        finished, cpu = time.time(), time.process_time() - cpu_started
    finally:
        await db.close()
    return {"index": index, "started": started, "finished": finished, "reserve_us": reserve_us, "settle_us": settle_us,
            "cpu_s": cpu}


# -- the parent ---------------------------------------------------------------------------------

async def prefill(db_path: Path | str, history: int) -> None:
    """Settled holds from earlier this month (before the last hour, so the jobs-per-hour count
    does not see them), spread evenly over the four benchmark accounts (the same spread whether 1
    or 4 processes run), each with its reserve and settle audit rows; then the running totals."""
    if not history:
        return
    async with await open_database(db_path) as db:
        ledger = Ledger(db, settings_for(db_path))
        now = time.time()
        month_start = ledger.windows(now)["monthly"].start
        last = max(month_start, now - 3700)
        at = [month_start + (last - month_start) * i / history for i in range(history)]
        async with db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO holds(id, idempotency_key, account, tool, estimate_micros, actual_micros, state,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,'settled',?,?)",
                [(f"h{i}", f"history-{i}", f"bench-{i % 4}", "pika_text_to_video", 1, 1, at[i], at[i])
                 for i in range(history)])
            await tx.executemany(
                "INSERT INTO audit(hold_id, account, event, amount, at) VALUES (?,?,?,?,?)",
                [(f"h{i}", f"bench-{i % 4}", event, 1, at[i]) for i in range(history) for event in ("reserve", "settled")])
        await ledger.ensure_totals()  # as for a database made before the running totals


async def stdlib_baseline(transactions: int) -> float:
    """Transactions/s of the stdlib ``sqlite3`` doing one reserve-sized write transaction at a time
    (``BEGIN IMMEDIATE; INSERT; UPDATE; COMMIT``) on the same schema and pragmas."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.db"

        async with await Database.open(path):  # the project's schema
            pass
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        for i in range(transactions):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO holds(id, idempotency_key, account, tool, estimate_micros, state, created_at,"
                         " updated_at) VALUES (?,?,?,?,?,'held',?,?)", (f"b{i}", f"b{i}", "a", "t", 1, 0.0, 0.0))
            conn.execute("UPDATE holds SET state = 'settled', actual_micros = 1 WHERE id = ?", (f"b{i}",))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
    return transactions / elapsed


async def run_round(processes: int, pairs: int, history: int, database: str | None = None,
                    storage: dict | None = None) -> dict:
    """One round on a fresh SQLite file, or on ``database`` (a fresh, empty PostgreSQL database)
    with the ``[storage]`` settings ``storage``."""
    with tempfile.TemporaryDirectory() as tmp:
        db_path = database or str(Path(tmp) / "ledger.db")
        async with await open_database(db_path):
            pass
        await prefill(db_path, history)
        results = await run_together([[sys.executable, __file__, "--worker", str(db_path), str(i), str(pairs),
                                       json.dumps(storage or {})] for i in range(processes)])
    wall = max(r["finished"] for r in results) - min(r["started"] for r in results)
    reserves = sorted(us for r in results for us in r["reserve_us"])
    settles = sorted(us for r in results for us in r["settle_us"])
    per_process = [pairs / (r["finished"] - r["started"]) for r in results]
    return {"per_process_pairs_s": statistics.median(per_process),
            "slowest_process_pairs_s": min(per_process),
            "aggregate_pairs_s": processes * pairs / wall,
            "reserve_p50_ms": pct(reserves, 50) / 1000, "reserve_p99_ms": pct(reserves, 99) / 1000,
            "settle_p50_ms": pct(settles, 50) / 1000, "settle_p99_ms": pct(settles, 99) / 1000,
            "wall_s": wall,
            "process_cpu_ms_per_pair": statistics.median(r["cpu_s"] for r in results) / pairs * 1000}


async def run_together(commands: list[list[str]]) -> list[dict]:
    """One process per command, released together: each prints "ready" once its connections are
    open, then all get "go" at once (so their work really overlaps), and each one's last line of
    output is its result, as JSON. Used by this bench's rounds and bench_scale's job rounds."""
    procs = [await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
             for command in commands]
    for proc in procs:
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"worker did not start: {line!r} {(await proc.stderr.read()).decode()[-2000:]}")
    for proc in procs:
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    results = []
    for proc in procs:
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(err.decode()[-2000:])
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def pct(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))  # nearest rank
    return float(sorted_values[k])


def median_of(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


async def main(pairs: int, rounds: int, history: int) -> None:
    load_before = os.getloadavg()
    baselines: list[float] = []
    per_round: dict[int, list[dict]] = {1: [], 4: []}
    for _ in range(rounds):
        baselines.append(await stdlib_baseline(2 * pairs))
        for processes in (1, 4):
            per_round[processes].append(await run_round(processes, pairs, history))
    baseline = statistics.median(baselines)
    one, four = median_of(per_round[1]), median_of(per_round[4])
    load_after = os.getloadavg()
    print(f"ledger benchmark: {pairs} reserve+settle pairs per process, {rounds} rounds, "
          f"{history} settled holds of history; medians over rounds; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'':34}{'1 process':>12}{'4 processes':>14}{'4 / 1':>9}")
    rows = [
        ("per-process throughput, pairs/s", "per_process_pairs_s", "{:.0f}"),
        ("slowest process, pairs/s", "slowest_process_pairs_s", "{:.0f}"),
        ("aggregate throughput, pairs/s", "aggregate_pairs_s", "{:.0f}"),
        ("aggregate throughput, ops/s", None, "{:.0f}"),
        ("reserve p50, ms", "reserve_p50_ms", "{:.2f}"),
        ("reserve p99, ms", "reserve_p99_ms", "{:.2f}"),
        ("settle p50, ms", "settle_p50_ms", "{:.2f}"),
        ("settle p99, ms", "settle_p99_ms", "{:.2f}"),
        ("wall time of a round, s", "wall_s", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        a, b = (one["aggregate_pairs_s"] * 2, four["aggregate_pairs_s"] * 2) if key is None else (one[key], four[key])
        print(f"{label:34}{fmt.format(a):>12}{fmt.format(b):>14}{b / a if a else 0:>9.2f}")
    ratios = [f["aggregate_pairs_s"] / o["aggregate_pairs_s"] for o, f in zip(per_round[1], per_round[4])]
    print(f"aggregate 4 processes / 1 process in each round: {', '.join(f'{x:.2f}' for x in ratios)}")
    shares = [r["aggregate_pairs_s"] * 2 / b for r, b in zip(per_round[1], baselines)]
    share = statistics.median(shares)
    print(f"stdlib sqlite3 baseline: {baseline:.0f} transactions/s; the ledger in 1 process does "
          f"{one['aggregate_pairs_s'] * 2:.0f} transactions/s (each reserve or settle is one) = {share:.0%} of it "
          f"(median of the rounds' own shares: {', '.join(f'{x:.0%}' for x in shares)})")
    print(json.dumps({"pairs": pairs, "rounds": rounds, "history": history, "baseline_tx_s": baseline,
                      "baselines_tx_s": baselines, "ledger_share_of_baseline": share, "one": one, "four": four,
                      "load_before": load_before, "load_after": load_after}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _, _, path, index, count, storage = sys.argv
        print(json.dumps(asyncio.run(worker(path, int(index), int(count), json.loads(storage)))), flush=True)
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--pairs", type=int, default=1000, help="reserve+settle pairs per process")
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--history", type=int, default=0,
                            help="settled holds inserted this month before each round (the sums run over them)")
        args = parser.parse_args()
        asyncio.run(main(args.pairs, args.rounds, args.history))
