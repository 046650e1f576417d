"""SQLite against PostgreSQL in the same run (issue 14).

1. Reserve + settle from 1 and from 4 processes (``bench_ledger``'s workers: each process its own
   connection — a pool on PostgreSQL — running N reserve → settle pairs one after the other, with
   account, global and hourly limits on, so every reserve does all its checks). SQLite serialises
   writers on its file lock; PostgreSQL serialises reservations only on the scopes they share
   (here the global cap) with advisory locks. PostgreSQL is measured twice: as configured by
   default (each commit waits for its WAL flush) and with ``[storage] postgres_synchronous_commit
   = false`` (the operator's option that trades the last fraction of a second of commits on a
   server crash for no flush wait — what SQLite's WAL with ``synchronous=NORMAL`` already does).
2. Reserve p50 with 0 and with ``--history`` settled holds this month (the running totals keep a
   reserve from summing the history; this shows it holds on both engines), 1 process.
   Part 1 also gives each worker process's own CPU time per pair: on SQLite that is the whole
   cost, on PostgreSQL only the client's (the server's backends spend theirs besides).

Parts 1 and 2 report medians over ``--rounds`` rounds (at least 3), each on a fresh store.
3. ``--jobs`` simulated generations across two processes, half each, all started at once against
   the simulator (in this process, on loopback): wall time until every job has succeeded.

Each engine gets a fresh store per measurement: a temporary SQLite file, or a new database on the
PostgreSQL server (``--postgres-url``, default the test server), dropped afterwards.

Run:  .venv/bin/python bench/bench_scale.py [--pairs 300] [--rounds 3] [--history 100000] [--jobs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ledger  # noqa: E402

from agent_tools.config import Settings  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.asynccontextmanager
async def fresh_store(engine: str, admin_url: str) -> AsyncIterator[str]:
    """A new empty store: a SQLite path, or the URL of a new PostgreSQL database."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield str(Path(tmp) / "bench.db")
        return
    import psycopg
    from psycopg import sql

    name = f"videogen_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


CONFIGS = {"SQLite": ("sqlite", {}), "PostgreSQL": ("postgres", {}),
           "PostgreSQL, async commit": ("postgres", {"postgres_synchronous_commit": False})}
"""What part 1 compares: an engine and the ``[storage]`` settings its workers run with."""


async def ledger_rounds(engine: str, admin_url: str, processes: int, pairs: int, rounds: int, history: int,
                        storage: dict | None = None) -> dict:
    results = []
    for _ in range(rounds):
        async with fresh_store(engine, admin_url) as store:
            results.append(await bench_ledger.run_round(processes, pairs, history, database=store, storage=storage))
    return bench_ledger.median_of(results)


# -- 2,000 jobs across two processes ----------------------------------------------------------------

def job_settings(store: str, sim_urls: dict, media: str) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "bench-key", "queue_url": sim_urls["queue"], "rest_url": sim_urls["rest"]},
        "wavespeed": {"key": "bench-key", "base_url": sim_urls["wavespeed"]},
        "storage": {"database": store, "media_dir": media},
        "polling": {"initial_seconds": 0.5, "max_seconds": 2.0, "factor": 1.5},
        "quotas": {"default": {}},
    })


async def job_worker(store: str, sim_urls: dict, media: str, index: int, jobs: int) -> dict:
    from agent_tools.toolkit import Account, Toolkit

    kit = await Toolkit.open(job_settings(store, sim_urls, media))
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.time()
        done = await asyncio.gather(*(kit.generate(Account("bench"), "hailuo_02_text_to_video",
                                                   {"prompt": f"p{index} clip {i}"}) for i in range(jobs)))
        finished = time.time()
    finally:
        await kit.close()
    return {"started": started, "finished": finished, "succeeded": sum(j.state.value == "succeeded" for j in done)}


async def jobs_round(engine: str, admin_url: str, jobs: int) -> dict:
    from agent_tools.simulator import SimSettings, Simulator
    from agent_tools.toolkit import Toolkit

    sim = Simulator(SimSettings(queue_seconds=0.0, run_seconds=2.0))
    await sim.start(host="127.0.0.1", port=0)
    urls = {"queue": sim.fal_queue_url, "rest": sim.fal_rest_url, "wavespeed": sim.wavespeed_base_url}
    try:
        async with fresh_store(engine, admin_url) as store:
            with tempfile.TemporaryDirectory() as media:
                async with await Toolkit.open(job_settings(store, urls, media)):
                    pass  # created and migrated once
                results = await bench_ledger.run_together(
                    [[sys.executable, __file__, "--job-worker", store, json.dumps(urls), media, str(i), str(jobs // 2)]
                     for i in range(2)])
    finally:
        await sim.stop()
    wall = max(r["finished"] for r in results) - min(r["started"] for r in results)
    return {"jobs": jobs, "succeeded": sum(r["succeeded"] for r in results), "wall_s": wall, "jobs_s": jobs / wall}


async def main(pairs: int, rounds: int, history: int, jobs: int, admin_url: str) -> None:
    engines = ("sqlite", "postgres")
    ledger = {(c, p): await ledger_rounds(e, admin_url, p, pairs, rounds, 0, storage)
              for c, (e, storage) in CONFIGS.items() for p in (1, 4)}
    flat = {(e, h): await ledger_rounds(e, admin_url, 1, pairs, rounds, h) for e in engines for h in (0, history)}
    runs = {e: await jobs_round(e, admin_url, jobs) for e in engines}

    print(f"1. reserve+settle, {pairs} pairs per process, medians of {rounds} rounds")
    print(f"{'':36}" + "".join(f"{c:>26}" for c in CONFIGS))
    for label, key, procs in (("1 process: pairs/s", "aggregate_pairs_s", 1),
                              ("4 processes: aggregate pairs/s", "aggregate_pairs_s", 4),
                              ("4 processes: slowest process pairs/s", "slowest_process_pairs_s", 4),
                              ("1 process: reserve p50, ms", "reserve_p50_ms", 1),
                              ("4 processes: reserve p50, ms", "reserve_p50_ms", 4),
                              ("4 processes: reserve p99, ms", "reserve_p99_ms", 4),
                              ("4 processes: settle p50, ms", "settle_p50_ms", 4),
                              ("1 process: its own CPU per pair, ms", "process_cpu_ms_per_pair", 1)):
        print(f"{label:36}" + "".join(f"{ledger[(c, procs)][key]:>26.2f}" for c in CONFIGS))
    print(f"2. reserve p50 (1 process, {pairs} pairs, medians of {rounds} rounds) with settled holds of history"
          " this month")
    print(f"{'':36}{'SQLite':>12}{'PostgreSQL':>14}")
    for h in (0, history):
        print(f"{f'{h:,} holds: reserve p50, ms':36}{flat[('sqlite', h)]['reserve_p50_ms']:>12.2f}"
              f"{flat[('postgres', h)]['reserve_p50_ms']:>14.2f}")
    print(f"3. {jobs} simulated jobs across 2 processes (2 s each at the simulator)")
    for e in engines:
        r = runs[e]
        print(f"  {e:10} {r['succeeded']}/{r['jobs']} succeeded, wall {r['wall_s']:.1f} s, {r['jobs_s']:.0f} jobs/s")
    print(json.dumps({"ledger": {f"{c}-{p}": v for (c, p), v in ledger.items()},
                      "history": {f"{e}-{h}": v for (e, h), v in flat.items()}, "jobs": runs}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--job-worker"]:
        _, _, store, urls, media, index, count = sys.argv
        print(json.dumps(asyncio.run(job_worker(store, json.loads(urls), media, int(index), int(count)))), flush=True)
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--pairs", type=int, default=300, help="reserve+settle pairs per process")
        parser.add_argument("--rounds", type=int, default=3, help="rounds of parts 1 and 2 (medians; at least 3)")
        parser.add_argument("--history", type=int, default=100_000, help="settled holds for the flatness check")
        parser.add_argument("--jobs", type=int, default=2000, help="simulated jobs across the two processes")
        parser.add_argument("--postgres-url", default=DEFAULT_PG, help="a server where databases may be created")
        args = parser.parse_args()
        if args.rounds < 3:
            parser.error("--rounds must be at least 3: parts 1 and 2 report medians over rounds")
        asyncio.run(main(args.pairs, args.rounds, args.history, args.jobs, args.postgres_url))
