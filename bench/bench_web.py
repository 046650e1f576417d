"""Dashboard benchmark (issue 16): how long each page takes to render with 10,000 jobs in the database.

One account (``alice``) gets ``--jobs`` jobs spread over the last 30 days — each made the real way:
a reservation whose transaction records the job (``Ledger.reserve`` with the Toolkit's hook), then
settled, then marked succeeded with an output — so holds, running totals, audit rows and job rows
are what a busy database holds. Four other accounts get a tenth as many each.

Then every page is requested ``--requests`` times in this process through the ASGI app (httpx's
``ASGITransport``: no sockets, so the figure is the app's own time: the guard, the Toolkit's
queries, the template), signed in as alice, or as the admin for admin pages. The report gives
p50 / p95 / max per page in milliseconds, and the query plan of the gallery's page query.

Run:  .venv/bin/python bench/bench_web.py [--jobs 10000] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from agent_tools.config import Settings  # noqa: E402
from agent_tools.ledger import Requester  # noqa: E402
from agent_tools.toolkit import Toolkit  # noqa: E402
from agent_tools.web import create_app  # noqa: E402

DAYS = 30
TOOLS = ("pika_text_to_video", "sora_2_text_to_video", "veo3_fast", "hunyuan_image_v3")
PRICES = {"pika_text_to_video": 200_000, "sora_2_text_to_video": 400_000, "veo3_fast": 1_200_000,
          "hunyuan_image_v3": 104_858}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def seed(toolkit: Toolkit, clock: Clock, account: str, count: int, start: float, end: float) -> None:
    who = Requester(account)
    step = (end - start) / count
    for i in range(count):
        clock.now = start + i * step
        tool = TOOLS[i % len(TOOLS)]
        price = PRICES[tool]
        made: list[str] = []

        async def record(tx, hold_id, i=i, tool=tool, price=price):
            job = await toolkit.engine.create(account=account, tool=tool, params={"prompt": f"scene {i}"},
                                              estimate_micros=price, hold_id=hold_id, tx=tx)
            made.append(job.id)
            return job.id

        reservation = await toolkit.ledger.reserve(who, price, f"{account}:{i}", tool=tool, tx_hook=record)
        await toolkit.ledger.settle(reservation.hold_id, price)
        async with toolkit.db.transaction() as tx:
            await tx.execute("UPDATE jobs SET state = 'succeeded', actual_micros = ?, finished_at = ?, outputs = ?"
                             " WHERE id = ?", (price, clock.now + 30, json.dumps([{
                                 "url": "https://example.invalid/x.mp4", "path": f"/nonexistent/{made[0]}.mp4",
                                 "content_type": "video/mp4", "size": 1}]), made[0]))


async def time_page(client: httpx.AsyncClient, path: str, requests: int) -> dict:
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    times.sort()
    return {"p50": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1], "max": times[-1]}


async def sign_in(app, token: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = await client.post("/login", data={"csrf": csrf, "token": token})
    assert answer.status_code == 303, answer.text
    return client


async def main(jobs: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({
            "storage": {"database": f"{tmp}/bench.db", "media_dir": f"{tmp}/media"},
            "admins": {"accounts": ["boss"]},
            "quotas": {"default": {"daily_usd": "100000", "monthly_usd": "1000000", "jobs_per_hour": 1_000_000,
                                   "concurrent_jobs": 100}},
        })
        now = time.time()
        clock = Clock(now - DAYS * 86400)
        toolkit = await Toolkit.open(settings, resume=False, clock=clock)
        try:
            began = time.perf_counter()
            await seed(toolkit, clock, "alice", jobs, now - DAYS * 86400, now - 60)
            for other in ("bob", "carol", "dave", "erin"):
                await seed(toolkit, clock, other, jobs // 10, now - DAYS * 86400, now - 60)
            clock.now = now
            seeded = time.perf_counter() - began
            total = await toolkit.db.scalar("SELECT COUNT(*) FROM jobs")
            audit = await toolkit.db.scalar("SELECT COUNT(*) FROM audit")
            plan = await toolkit.db.fetchall(
                "EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE account = ? AND (created_at, id) < (?, ?)"
                " ORDER BY created_at DESC, id DESC LIMIT 25", ("alice", now, "f" * 16))
            await toolkit.ledger.ensure_account("boss")
            alice_token = await toolkit.ledger.create_token("alice")
            boss_token = await toolkit.ledger.create_token("boss")
            app = create_app(toolkit, secret=b"b" * 32, clock=clock)
            alice = await sign_in(app, alice_token)
            boss = await sign_in(app, boss_token)
            first = await alice.get("/")
            older = re.search(r'href="/\?(before=[^"]+)"', first.text).group(1).replace("&amp;", "&")
            job_id = re.search(r'data-job="([0-9a-f]+)"', first.text).group(1)
            pages = [
                (alice, "gallery, first page", "/"),
                (alice, "gallery, second page", f"/?{older}"),
                (alice, "gallery, model + state filter", "/?model=veo3_fast&state=succeeded"),
                (alice, "gallery, a date range", "/?since=" + time.strftime("%Y-%m-%d", time.gmtime(now - 10 * 86400))
                 + "&until=" + time.strftime("%Y-%m-%d", time.gmtime(now - 9 * 86400))),
                (alice, "job page", f"/jobs/{job_id}"),
                (alice, "job card (live update)", f"/jobs/{job_id}/card"),
                (alice, "usage (30 days)", "/usage"),
                (alice, "usage (90 days, by day)", "/usage?days=90&by=day"),
                (boss, "admin usage by account", "/admin"),
                (boss, "admin limits & holds", "/admin/limits"),
                (boss, "admin accounts & tokens", "/admin/accounts"),
                (boss, "admin audit log", "/admin/audit"),
            ]
            print(f"{total} jobs ({jobs} of alice's), {audit} audit rows, seeded in {seeded:.1f} s; "
                  f"{requests} requests per page")
            print("gallery query plan: " + "; ".join(row[3] for row in plan))
            print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for client, name, path in pages:
                await client.get(path)  # warm the template cache
                result = await time_page(client, path, requests)
                print(f"{name:34} {result['p50']:8.1f} {result['p95']:8.1f} {result['max']:8.1f}")
            await alice.aclose()
            await boss.aclose()
        finally:
            await toolkit.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    options = parser.parse_args()
    asyncio.run(main(options.jobs, options.requests))
