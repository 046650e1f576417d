"""``videogen db copy --to postgresql://…`` (issue 14): a SQLite deployment with jobs, money,
tokens, limits and Discord deliveries moves to PostgreSQL, is verified row by row, and carries on
there (tokens resolve, the books balance, new audit rows and holds follow the copied ones).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest

from agent_tools.cli import main
from agent_tools.config import Settings
from agent_tools.errors import UserError
from agent_tools.dbcopy import copy_database
from agent_tools.jobs import JobState
from agent_tools.ledger import Limits
from agent_tools.money import usd
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.store import open_database
from agent_tools.toolkit import Account, Toolkit

ALICE = Account("alice")


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.02, run_seconds=0.05))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def settings_on(database, tmp_path, sim: Simulator) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "sim-fal-key", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "sim-ws-key", "base_url": sim.wavespeed_base_url},
        "storage": {"database": str(database), "media_dir": str(tmp_path / "media")},
        "polling": {"initial_seconds": 0.01, "max_seconds": 0.05, "factor": 1.5},
        "quotas": {"default": {"daily_usd": 20}},
    })


async def a_used_sqlite_deployment(tmp_path, sim) -> tuple[Settings, str]:
    """Finished and failed jobs, settled and released holds, a token, a limit, a Discord delivery."""
    settings = settings_on(tmp_path / "videogen.db", tmp_path, sim)
    async with await Toolkit.open(settings) as kit:
        await kit.ledger.add_account("alice")
        token = await kit.ledger.create_token("alice", label="laptop")
        await kit.ledger.set_limits("account", "alice", Limits(daily_micros=usd("9")))
        await kit.ledger.link_discord("alice", 4242)
        for i in range(3):
            assert (await kit.generate(ALICE, "pika_text_to_video", {"prompt": f"clip {i}"})).state is JobState.SUCCEEDED
        failed = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:content_policy] no"})
        assert failed.state is JobState.FAILED
        async with kit.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_deliveries(job_id, created_at, delivered_at, message_id) VALUES (?,?,?,?)",
                             (failed.id, time.time(), time.time(), "99"))
    return settings, token


async def test_a_copy_matches_row_for_row_and_carries_on_on_postgresql(tmp_path, sim, postgres_url):
    settings, token = await a_used_sqlite_deployment(tmp_path, sim)
    before = (tmp_path / "videogen.db").read_bytes()
    report = await copy_database(settings.storage.database, postgres_url, settings)
    assert report.ok, report
    counts = {t.name: t.target_rows for t in report.tables}
    assert counts["jobs"] == 4 and counts["holds"] == 4 and counts["accounts"] >= 2 and counts["audit"] >= 10
    assert all(t.same for t in report.tables) and report.books_source == report.books_target
    assert (tmp_path / "videogen.db").read_bytes() == before, "the SQLite file is only read"

    on_pg = settings.model_copy(update={"storage": settings.storage.model_copy(update={"database": postgres_url})})
    async with await Toolkit.open(on_pg) as kit:
        assert await kit.account_for_token(token) == Account("alice")
        assert await kit.account_for_discord(4242) == Account("alice")
        assert len(await kit.list_jobs(ALICE)) == 4
        last_seq = await kit.db.scalar("SELECT MAX(seq) FROM audit")
        job = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "after the move"})
        assert job.state is JobState.SUCCEEDED  # new holds, jobs, events and audit rows follow the copied ones
        assert await kit.db.scalar("SELECT MIN(seq) FROM audit WHERE hold_id = ?", (job.hold_id,)) > last_seq
        assert (await kit.check_books(kit.local_account())).ok


async def test_unfinished_work_is_refused_unless_forced(tmp_path, sim, postgres_url):
    settings, _ = await a_used_sqlite_deployment(tmp_path, sim)
    async with await Toolkit.open(settings, resume=False) as kit:
        await kit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=30] still running"}, wait=0)
    with pytest.raises(UserError, match=r"1 job\(s\) are unfinished and 1 hold\(s\) open.*videogen jobs list"):
        await copy_database(settings.storage.database, postgres_url, settings)
    report = await copy_database(settings.storage.database, postgres_url, settings, force=True)
    assert report.ok and report.books_target["open_micros"] > 0


async def test_a_target_with_data_is_refused_and_left_alone(tmp_path, sim, postgres_url):
    settings, _ = await a_used_sqlite_deployment(tmp_path, sim)
    assert (await copy_database(settings.storage.database, postgres_url, settings)).ok
    with pytest.raises(UserError, match="already has data.*never merges"):
        await copy_database(settings.storage.database, postgres_url, settings)


async def test_a_failed_copy_leaves_the_target_empty(tmp_path, sim, postgres_url):
    settings, _ = await a_used_sqlite_deployment(tmp_path, sim)
    with sqlite3.connect(settings.storage.database) as lite:  # a row PostgreSQL refuses: a hold whose
        lite.execute("PRAGMA foreign_keys=OFF")              # identity points at no account
        lite.execute("INSERT INTO identities(kind, external_id, account, created_at) VALUES ('discord', '7', 'ghost', 1)")
    with pytest.raises(UserError, match="Copying table identities failed .*foreign key.*nothing was written"):
        await copy_database(settings.storage.database, postgres_url, settings)
    async with await open_database(postgres_url) as pg:
        assert await pg.scalar("SELECT COUNT(*) FROM accounts") == 0, "one transaction: nothing half-copied"


async def test_the_command_copies_and_prints_what_it_compared(tmp_path, sim, postgres_url, clean_env, monkeypatch,
                                                              capsys):
    settings, _ = await a_used_sqlite_deployment(tmp_path, sim)
    monkeypatch.setenv("VIDEOGEN_DB", str(settings.storage.database))
    assert await asyncio.to_thread(main, ["db", "copy", "--to", postgres_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and {t["name"] for t in out["tables"]} >= {"accounts", "jobs", "holds", "audit", "spend_totals"}
    assert "secret" not in out["target"]
    assert await asyncio.to_thread(main, ["db", "copy", "--to", "mysql://x"]) == 2
    assert "--to takes a postgresql:// URL" in capsys.readouterr().err
