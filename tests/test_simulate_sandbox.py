"""``--simulate`` is sealed off: its own database and media folder, and no simulated job outlives its
run — neither when the run ends cleanly nor when its process is killed (issue 10)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from agent_tools.config import Settings
from agent_tools.jobs import JobState
from agent_tools.simulator.session import sandbox_storage, simulated
from agent_tools.toolkit import Account, Toolkit
from processes import guarded

ALICE = Account("alice")


def real_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"storage": {"database": str(tmp_path / "real.db"),
                                                "media_dir": str(tmp_path / "real-media")},
                                    "polling": {"initial_seconds": 0.02, "max_seconds": 0.1}})


def sandbox_rows(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "simulated" / "real.db") as conn:
        return conn.execute(sql).fetchall()


def test_the_sandbox_is_beside_the_real_database(tmp_path):
    storage = sandbox_storage(real_settings(tmp_path).storage)
    assert storage.database == tmp_path / "simulated" / "real.db"
    assert storage.media_dir == tmp_path / "simulated" / "media"


async def test_a_job_still_running_when_the_run_ends_ends_at_no_charge(tmp_path):
    async with simulated(real_settings(tmp_path), True) as effective:
        assert effective.storage.database == tmp_path / "simulated" / "real.db"
        kit = await Toolkit.open(effective)
        job = await kit.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=60] x"}, wait=0)
        assert job.state is JobState.QUEUED
        await kit.close()
    [(state, actual, error)] = sandbox_rows(tmp_path, "SELECT state, actual_micros, error FROM jobs")
    assert (state, actual) == ("failed", 0) and "Nothing was charged" in error
    assert sandbox_rows(tmp_path, "SELECT state, actual_micros FROM holds") == [("released", 0)]
    assert not (tmp_path / "real.db").exists(), "the real database was never even created"


async def test_a_killed_simulated_run_is_ended_by_the_next_one(tmp_path):
    env = {**os.environ, "VIDEOGEN_DB": str(tmp_path / "real.db"), "VIDEOGEN_MEDIA_DIR": str(tmp_path / "real-media"),
           "VIDEOGEN_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    proc = await asyncio.create_subprocess_exec(
        *guarded(sys.executable, "-m", "agent_tools.cli", "generate", "pika_text_to_video", "--prompt",
                 "[sim:slow=60] x", "--simulate"), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        while True:  # progress on stderr: once the job is at the provider, kill the process
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "the simulated run ended early"
            if b"submitted" in line or b"queued" in line or b"running" in line:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert sandbox_rows(tmp_path, "SELECT state FROM jobs")[0][0] in ("queued", "running")
    async with simulated(real_settings(tmp_path), True):
        pass  # the next simulated start finds the job's simulator gone
    [(state, actual)] = sandbox_rows(tmp_path, "SELECT state, actual_micros FROM jobs")
    assert (state, actual) == ("failed", 0)
    assert sandbox_rows(tmp_path, "SELECT COUNT(*) FROM holds WHERE state IN ('held', 'submitted')") == [(0,)]


async def test_an_unknown_simulated_job_is_ended_and_a_live_ones_is_not(tmp_path):
    async with simulated(real_settings(tmp_path), True) as effective:
        async with await Toolkit.open(effective) as kit:
            unknown = await kit.engine.create(account="alice", tool="pika_text_to_video", params={"prompt": "x"},
                                              estimate_micros=200_000)
            await kit.engine._transition(unknown.id, JobState.SUBMITTING, {JobState.PENDING})
            await kit.engine._transition(unknown.id, JobState.UNKNOWN, {JobState.SUBMITTING})
        async with await Toolkit.open(effective) as other:  # another simulated process, still running its job
            live = await other.generate(ALICE, "pika_text_to_video", {"prompt": "[sim:slow=60] y"}, wait=0)
            async with simulated(real_settings(tmp_path), True):
                pass  # a second simulated run starts and stops meanwhile
            assert (await other.get_job(ALICE, live.id)).state in (JobState.QUEUED, JobState.RUNNING)
    states = dict(sandbox_rows(tmp_path, "SELECT id, state FROM jobs"))
    assert states[unknown.id] == "failed"  # an unknown simulated outcome costs nothing: no operator needed
    assert states[live.id] == "failed"  # ended with its own run, not by the other one
    assert sandbox_rows(tmp_path, "SELECT COUNT(*) FROM holds WHERE state IN ('held', 'submitted')") == [(0,)]


def test_ending_jobs_is_refused_outside_the_sandbox(tmp_path):
    from agent_tools.simulator.session import end_stranded_jobs

    with pytest.raises(ValueError, match="sandbox"):
        asyncio.run(end_stranded_jobs(real_settings(tmp_path), "http://127.0.0.1:1"))
