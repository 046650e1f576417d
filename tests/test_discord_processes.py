"""Several bot processes on one database post every result exactly once (issue 10).

Each bot process is the real ``VideoBot`` with the recording harness of ``test_discord_bot`` (real
interactions through the command tree, every Discord call recorded, nothing sent), a Toolkit on
the shared database (a SQLite file, then a PostgreSQL schema) and the simulator (in the test process) on loopback. One process starts jobs
and is killed with ``kill -9`` before they finish; two others start jobs of their own and watch:
each result is posted by exactly one process, the dead one's after its claims lapse. Run as a
script, this file is the bot process:

    python tests/test_discord_processes.py WORKER SETTINGS_JSON NAME START_COUNT EXPECTED_TOTAL CLOCK_OFFSET

Leases are long, so a live process on a loaded machine never misses a renewal; the dead process's
leases lapse because the live processes' clocks run ``TAKEOVER_SKEW`` ahead of its own (as if that
much time had passed since it died), not because the test waits for them in wall time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # the worker, started by the test below with the project on sys.path
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

LEASE = 30.0  # job leases and delivery claims alike: far longer than any stall of a live process
TAKEOVER_SKEW = 2 * LEASE  # the survivors' clocks are this far ahead: every lease of the dead one has lapsed


async def worker(base: dict[str, Any], name: str, start_count: int, expected: int, clock_offset: float) -> None:
    import discord
    from discord.webhook import async_ as webhook_async

    from agent_tools.toolkit import Toolkit
    from bots.discord.app import VideoBot
    from processes import settings_for
    from test_discord_bot import APP_ID, BOT_USER, CHECKS_NEVER_SLOW, Clock, Recorder, slash

    clock = Clock()
    clock.offset = clock_offset
    toolkit = await Toolkit.open(settings_for(base, name), lease_seconds=LEASE, clock=clock)
    bot = VideoBot(toolkit, clock=clock, progress_interval=0.05, delivery_lease=LEASE,
                   check_seconds=CHECKS_NEVER_SLOW, intents=discord.Intents.none())
    bot._connection.user = discord.ClientUser(state=bot._connection, data=BOT_USER)
    bot._connection.application_id = APP_ID
    recorder = Recorder()
    bot.http.request = recorder.bot_request
    webhook_async.async_context.set(recorder)
    await bot.prepare()
    await bot.deliveries.resume()
    watcher = asyncio.create_task(bot.deliveries.watch(LEASE / 2))
    try:
        for i in range(start_count):
            await slash(bot, "text-to-video pika_text_to_video", prompt=f"[sim:slow=1.5] {name} clip {i}")
        print("started", flush=True)
        if expected < 0:  # the process to be killed: it never finishes anything
            await asyncio.sleep(3600)
        while len(await bot.state.known()) < expected or await bot.state.undelivered() > 0:
            await asyncio.sleep(0.05)
        await asyncio.gather(*bot.deliveries.tasks.values(), return_exceptions=True)
    finally:
        watcher.cancel()
        await bot.deliveries.aclose()
        await toolkit.close()
    posts = []
    for call in recorder.calls:
        ids = [c["custom_id"] for row in (call["body"] or {}).get("components") or [] for c in row["components"]]
        if call["method"] == "POST" and any(i.startswith("vg:reroll:") for i in ids):
            posts.append({"job": next(i for i in ids if i.startswith("vg:reroll:")).split(":")[2], "via": call["via"]})
    print(json.dumps(posts), flush=True)


async def spawn(base: dict[str, Any], name: str, start_count: int, expected: int, clock_offset: float = 0.0):
    from processes import worker_env

    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "WORKER", json.dumps(base), name, str(start_count), str(expected),
        str(clock_offset), env=worker_env(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def test_three_bot_processes_post_each_result_once_and_take_over_a_dead_ones(tmp_path, database_url):
    from processes import Recording, base_settings, finish, rows, start_sim

    recording = Recording()
    # The doomed process never learns that its jobs ended, so on a slow machine it cannot post one
    # before it is killed: every one of them is left to the survivors.
    recording.stall_polls.add("doomed")
    sim = await start_sim(recording)
    db = database_url
    try:
        base = base_settings(tmp_path, sim, database_url)
        doomed = await spawn(base, "doomed", 3, -1)
        try:
            assert (await asyncio.wait_for(doomed.stdout.readline(), 60)).strip() == b"started", \
                await doomed.stderr.read()
        finally:
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            recording.released.set()
        # Both survivors' clocks are ahead of the dead one's by the same skew, so they agree on
        # each other's leases while the dead one's have all lapsed.
        bots = [await spawn(base, "bot-a", 3, 6, TAKEOVER_SKEW), await spawn(base, "bot-b", 0, 6, TAKEOVER_SKEW)]
        outputs = [await finish(proc, 120) for proc in bots]
    finally:
        await sim.stop()

    posts = {name: json.loads(out.strip().splitlines()[-1]) for name, out in zip(("bot-a", "bot-b"), outputs)}
    jobs = {r["id"]: json.loads(r["params"])["prompt"] for r in rows(db, "SELECT id, params FROM jobs")}
    assert len(jobs) == 6
    posted = [p["job"] for ps in posts.values() for p in ps]
    assert sorted(posted) == sorted(jobs), (f"each result posted exactly once: {posts}",
                                            [dict(r) for r in rows(db, "SELECT id, state, owner, error FROM jobs")],
                                            [dict(r) for r in rows(db, "SELECT * FROM discord_deliveries")])
    for p in posts["bot-a"] + posts["bot-b"]:
        started_by_a = "bot-a" in jobs[p["job"]]
        # bot-a answers its own users through their interactions; the dead process's jobs are
        # posted with the bot's token by whichever live process claimed them.
        assert p["via"] == ("webhook" if started_by_a else "bot")
    assert {p["job"] for p in posts["bot-a"] if p["via"] == "webhook"} == {i for i, t in jobs.items() if "bot-a" in t}
    undelivered = rows(db, "SELECT COUNT(*) AS n FROM discord_deliveries WHERE delivered_at IS NULL")[0]["n"]
    assert undelivered == 0
    for request_id, keys in recording.polls.items():  # one poller at a time: a job changes hands once at most
        runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
        assert len(runs) <= 2 and len(set(runs)) == len(runs), (request_id, runs)


async def test_a_delivery_claim_is_held_renewed_and_taken_over_only_once_lapsed(tmp_path):
    from agent_tools.db import Database
    from bots.discord.state import BotState

    now = [1000.0]
    async with await Database.open(tmp_path / "bot.db") as db:
        first, second, third = (BotState(db, clock=lambda: now[0], lease_seconds=60) for _ in range(3))
        assert await first.expect("job1") and not await second.expect("job1")
        assert await second.pending() == [] and not await second.claim("job1")
        now[0] += 50
        await first.renew(["job1"])
        now[0] += 50  # 100 s after the claim, 50 s after the renewal: still first's
        assert not await second.claim("job1")
        now[0] += 11  # lapsed: exactly one of two takes it
        assert [await second.claim("job1"), await third.claim("job1")] == [True, False]
        await second.delivered("job1", 42)
        assert not await first.claim("job1") and await first.pending() == [] and await first.undelivered() == 0
        assert await first.expect("job2")
        await first.release()  # a clean stop hands it over at once
        assert await third.pending() == ["job2"] and await third.claim("job2")


if __name__ == "__main__" and sys.argv[1:2] == ["WORKER"]:
    from processes import die_with_parent

    die_with_parent()
    asyncio.run(worker(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])))
