"""Reconciliation: users' charges beside fal's per-request bill and WaveSpeed's per-day usage.

Real parts: jobs run end to end against the simulator, whose billing endpoints bill the catalog list
price unless ``core.billing`` scripts a discrepancy; the ledger is a SQLite file and every run ends
with ``check_books`` clean.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from agent_tools.cli.main import main
from agent_tools.errors import UserError
from agent_tools.jobs import JobState
from agent_tools.providers.billing import FalBilling, batches
from agent_tools.simulator import SimSettings, Simulator, running_simulator
from agent_tools.toolkit import Account, Toolkit
from tests.test_jobs import make_settings

ALICE = Account("alice")
ADMIN_KEY = "admin-sim-key"
IMAGE = "https://example.com/still.png"
WS_MODEL = "wavespeed-ai/hunyuan-video/i2v"


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def settings(tmp_path, sim, admin_key: str | None = ADMIN_KEY):
    fal = {"api_url": sim.fal_api_url, **({"admin_key": admin_key} if admin_key else {})}
    return make_settings(tmp_path, sim, fal=fal)


async def run_jobs(kit: Toolkit) -> dict[str, list]:
    fal = [await kit.generate(ALICE, "hunyuan_video_image_to_video", {"prompt": f"shot {i}", "image_url": IMAGE})
           for i in range(3)]
    ws = [await kit.generate(ALICE, "wavespeed_hunyuan_video_i2v", {"prompt": "w", "image": IMAGE, "duration": 10})
          for _ in range(2)]
    assert all(j.state is JobState.SUCCEEDED for j in fal + ws)
    return {"fal": fal, "wavespeed": ws}


def group(report, provider, model):
    [found] = [g for g in report.groups if g.provider == provider and g.model == model]
    return found


async def test_compare_records_the_bill_and_changes_nothing(tmp_path, sim):
    async with await Toolkit.open(settings(tmp_path, sim)) as kit:
        jobs = await run_jobs(kit)
        sim.core.billing.overrides[jobs["fal"][0].request_id] = 300_000  # fal billed $0.10 less
        sim.core.billing.missing.add(jobs["fal"][2].request_id)  # no billing event yet
        sim.core.billing.multipliers[WS_MODEL] = Decimal("1.5")
        report = await kit.reconcile(kit.local_account())
        today = datetime.now(UTC).date().isoformat()
        fal = group(report, "fal", "hunyuan_video_image_to_video")
        assert (fal.day, fal.jobs, fal.charged_micros, fal.billed_micros, fal.unbilled_jobs) == (
            today, 3, 1_200_000, 700_000, 1)
        assert fal.difference_micros == -500_000
        ws = group(report, "wavespeed", WS_MODEL)
        assert (ws.jobs, ws.charged_micros, ws.billed_micros, ws.difference_micros) == (2, 1_600_000, 2_400_000, 800_000)
        assert not report.adjustments and any("no billing event yet" in n for n in report.notes)
        rows = await kit.db.fetchall("SELECT job_id, charged_micros, billed_micros, applied_at FROM provider_charges"
                                     " ORDER BY billed_micros")
        assert [tuple(r) for r in rows] == [(jobs["fal"][0].id, 400_000, 300_000, None),
                                           (jobs["fal"][1].id, 400_000, 400_000, None)]
        usage = await kit.db.fetchone("SELECT jobs, charged_micros, requests, billed_micros FROM provider_usage")
        assert tuple(usage) == (2, 1_600_000, 2, 2_400_000)
        assert [h.actual_micros for h in await kit.ledger.holds(states=("settled",))] == [400_000] * 3 + [800_000] * 2
        assert (await kit.ledger.check_books()).ok


async def test_apply_sets_fal_charges_to_the_bill_through_the_ledger(tmp_path, sim):
    async with await Toolkit.open(settings(tmp_path, sim)) as kit:
        jobs = await run_jobs(kit)
        cheaper, dearer, lagging = jobs["fal"]
        sim.core.billing.overrides.update({cheaper.request_id: 300_000, dearer.request_id: 450_000})
        sim.core.billing.missing.add(lagging.request_id)
        total = "SELECT charge_micros FROM spend_totals WHERE scope = 'account' AND scope_id = 'alice' AND period = 'all'"
        total_before = (await kit.db.fetchone(total))[0]
        report = await kit.reconcile(kit.local_account(), apply=True)
        assert sorted((a.job_id, a.old_micros, a.new_micros) for a in report.adjustments) == sorted(
            [(cheaper.id, 400_000, 300_000), (dearer.id, 400_000, 450_000)])
        assert (await kit.get_job(ALICE, cheaper.id)).actual_micros == 300_000
        assert (await kit.get_job(ALICE, lagging.id)).actual_micros == 400_000, "no bill yet: left alone"
        check = await kit.ledger.check_books()
        assert check.ok, check.differences
        adjusted = await kit.db.fetchall("SELECT amount, actor FROM audit WHERE event = 'adjusted' ORDER BY amount")
        assert [tuple(r) for r in adjusted] == [(300_000, "local"), (450_000, "local")]
        spend = await kit.spend_report(kit.local_account(), by="model", all_accounts=True)
        assert {r.key: r.settled_micros for r in spend}["hunyuan_video_image_to_video"] == 1_150_000
        assert (await kit.db.fetchone(total))[0] == total_before - 50_000, "the running totals follow the adjustment"
        again = await kit.reconcile(kit.local_account(), apply=True)
        assert not again.adjustments, "a second run finds nothing left to adjust"
        assert group(again, "fal", "hunyuan_video_image_to_video").difference_micros == -400_000  # the lagging one
        assert (await kit.ledger.check_books()).ok


async def test_apply_to_a_closed_day_leaves_todays_budget_alone(tmp_path, sim):
    """Yesterday's refusals were made against yesterday's totals: a bill that lowers yesterday's
    charges corrects yesterday and the all-time total, and frees nothing today."""
    offset = [0.0]
    limited = make_settings(tmp_path, sim, fal={"api_url": sim.fal_api_url, "admin_key": ADMIN_KEY},
                            quotas={"default": {"daily_usd": 1}})
    args = {"prompt": "a shot", "image_url": IMAGE}
    async with await Toolkit.open(limited, clock=lambda: time.time() + offset[0]) as kit:
        yesterday = [await kit.generate(ALICE, "hunyuan_video_image_to_video", args) for _ in range(2)]
        with pytest.raises(UserError, match=r"costs \$0.40; you have \$0.20 left today"):
            await kit.generate(ALICE, "hunyuan_video_image_to_video", args)
        offset[0] = 86_400.0  # the next day
        await kit.generate(ALICE, "hunyuan_video_image_to_video", args)
        used_today = lambda statuses: next(s.used for s in statuses if s.kind == "daily")  # noqa: E731
        assert used_today(await kit.ledger.status(ALICE.requester)) == 400_000
        sim.core.billing.overrides.update({j.request_id: 100_000 for j in yesterday})
        report = await kit.reconcile(kit.local_account(), apply=True)
        assert sorted((a.job_id, a.new_micros) for a in report.adjustments) == sorted(
            (j.id, 100_000) for j in yesterday)
        assert used_today(await kit.ledger.status(ALICE.requester)) == 400_000, "today's budget is not credited"
        total = "SELECT charge_micros FROM spend_totals WHERE scope = 'account' AND scope_id = 'alice' AND period = 'all'"
        assert (await kit.db.fetchone(total))[0] == 600_000
        check = await kit.ledger.check_books()
        assert check.ok, check.differences


async def test_without_an_admin_key_it_names_the_key(tmp_path, sim):
    async with await Toolkit.open(settings(tmp_path, sim, admin_key=None)) as kit:
        await run_jobs(kit)
        report = await kit.reconcile(kit.local_account(), apply=True)
        fal = group(report, "fal", "hunyuan_video_image_to_video")
        assert fal.billed_micros is None and fal.difference_micros is None and not report.adjustments
        assert any("needs a fal ADMIN-scope API key" in n and "FAL_ADMIN_KEY" in n for n in report.notes)
        assert group(report, "wavespeed", WS_MODEL).difference_micros == 0
    assert "fal.billing_events" not in sim.stats.routes


async def test_an_inference_key_is_refused_with_what_to_set(tmp_path, sim):
    async with await Toolkit.open(settings(tmp_path, sim, admin_key="sim-fal-key")) as kit:
        await run_jobs(kit)
        with pytest.raises(UserError, match="HTTP 403.*ADMIN-scope.*FAL_ADMIN_KEY") as refused:
            await kit.reconcile(kit.local_account())
        assert "sim-fal-key" not in str(refused.value)
        with pytest.raises(UserError, match="Only admins"):
            await kit.reconcile(ALICE)


async def test_request_ids_are_batched(sim):
    async with FalBilling(ADMIN_KEY, sim.fal_api_url) as client:  # an empty bill: nothing was run
        assert await client.billed([("r1", 0.0)]) == {}
    now = datetime.now(UTC).timestamp()
    days = [(f"r{i}", now - i * 40 * 86400) for i in range(5)]
    spans = batches(days, size=2)
    assert [len(b) for b in spans] == [2, 2, 1] and all(b[-1][1] - b[0][1] < 90 * 86400 for b in spans)
    assert [len(b) for b in batches([(f"x{i}", now) for i in range(120)])] == [50, 50, 20]


async def test_billing_batches_against_the_simulator(tmp_path, sim):
    async with await Toolkit.open(settings(tmp_path, sim)) as kit:
        jobs = (await run_jobs(kit))["fal"]
    async with FalBilling(ADMIN_KEY, sim.fal_api_url, batch_size=2) as client:
        billed = await client.billed([(j.request_id, j.created_at) for j in jobs])
        assert billed == {j.request_id: 400_000 for j in jobs} and client.calls == 2


def test_cli_reconcile(clean_env, monkeypatch, capsys):
    with running_simulator(SimSettings(queue_seconds=0, run_seconds=0)) as sim:
        config = clean_env / "videogen.toml"
        config.write_text(
            f'[fal]\nkey = "sim-fal-key"\nqueue_url = "{sim.fal_queue_url}"\nrest_url = "{sim.fal_rest_url}"\n'
            f'api_url = "{sim.fal_api_url}"\n[wavespeed]\nkey = "sim-ws-key"\nbase_url = "{sim.wavespeed_base_url}"\n'
            f'[storage]\ndatabase = "{clean_env / "db.sqlite"}"\nmedia_dir = "{clean_env / "media"}"\n'
            '[polling]\ninitial_seconds = 0.02\nmax_seconds = 0.1\n[quotas.default]\n')
        assert main(["generate", "hunyuan_video_image_to_video", "--prompt", "x", "--image-url", IMAGE, "--json"]) == 0
        job = json.loads(capsys.readouterr().out)
        rid = asyncio.run(_request_id(clean_env / "db.sqlite", job["job_id"]))
        sim.core.billing.overrides[rid] = 350_000
        assert main(["reconcile"]) == 0, "no admin key: nothing compared, so no difference to alert on"
        captured = capsys.readouterr()
        assert "FAL_ADMIN_KEY" in captured.err and "hunyuan_video_image_to_video" in captured.out
        monkeypatch.setenv("FAL_ADMIN_KEY", ADMIN_KEY)
        assert main(["reconcile", "--since", (date.today() - timedelta(days=1)).isoformat()]) == 1
        out = capsys.readouterr()
        assert "$0.40" in out.out and "$0.35" in out.out and "-$0.05" in out.out and "--apply" in out.err
        assert main(["reconcile", "--apply", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["adjustments"] == [{"job_id": job["job_id"], "hold_id": report["adjustments"][0]["hold_id"],
                                          "old_micros": 400_000, "new_micros": 350_000}]
        assert main(["books", "check"]) == 0
        with pytest.raises(SystemExit) as bad:
            main(["reconcile", "--since", "yesterday"])
        assert bad.value.code == 2 and "not a date; use YYYY-MM-DD" in capsys.readouterr().err


async def _request_id(path, job_id: str) -> str:
    from agent_tools.db import Database
    async with await Database.open(path) as db:
        return (await db.fetchone("SELECT request_id FROM jobs WHERE id = ?", (job_id,)))[0]
