"""The database is never lost silently (issue 10): a file deleted or replaced under a running process
stops it before it records or submits anything more, with the provider request id of a paid job on
stderr; a full disk, a read-only or a locked database gives the readable error, never a traceback."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agent_tools.config import Settings
from agent_tools.db import Database, DatabaseLost, DatabaseUnavailable
from agent_tools.jobs import JobState
from agent_tools.simulator import SimSettings, Simulator
from agent_tools.toolkit import Account, Toolkit
from processes import guarded

ALICE = Account("alice")
PIKA = "pika_text_to_video"


@pytest.fixture
async def sim():
    simulator = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    await simulator.start(host="127.0.0.1", port=0)
    yield simulator
    await simulator.stop()


def make_settings(db: Path, sim: Simulator) -> Settings:
    return Settings.model_validate({
        "fal": {"key": "k", "queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
        "wavespeed": {"key": "k", "base_url": sim.wavespeed_base_url},
        "storage": {"database": str(db), "media_dir": str(db.parent / "media")},
        "polling": {"initial_seconds": 0.02, "max_seconds": 0.1}, "quotas": {"default": {}}})


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_database_gone_mid_job_stops_the_process_and_names_the_paid_request(tmp_path, sim, capfd, how):
    db = tmp_path / "videogen.db"
    kit = await Toolkit.open(make_settings(db, sim))
    try:
        job = await kit.generate(ALICE, PIKA, {"prompt": "[sim:slow=1] x"}, wait=0)
        assert job.request_id
        if how == "deleted":
            remove_database(db)
        else:  # a backup restored over it: a different file at the same path
            shutil.copy(db, tmp_path / "copy.db")
            os.replace(tmp_path / "copy.db", db)
        with pytest.raises(DatabaseLost, match="deleted or replaced while this process was using it"):
            await kit.wait_for_job(ALICE, job.id, timeout=10)
        submits = sim.stats.total_submits
        with pytest.raises(DatabaseLost):
            await kit.generate(ALICE, PIKA, {"prompt": "another"})
        assert sim.stats.total_submits == submits, "nothing more is submitted"
    finally:
        await kit.close()
    err = capfd.readouterr().err
    assert f"job {job.id}" in err and f"request id {job.request_id}" in err and "record could not be written" in err


def test_the_cli_exits_with_the_error_when_the_database_is_deleted_mid_job(tmp_path):
    with subprocess.Popen(guarded(sys.executable, "-c", RUN_SIMULATOR), stdout=subprocess.PIPE, text=True) as server:
        try:
            url = server.stdout.readline().strip()
            env = {**os.environ, "VIDEOGEN_DB": str(tmp_path / "videogen.db"), "FAL_KEY": "k",
                   "VIDEOGEN_MEDIA_DIR": str(tmp_path / "media"), "VIDEOGEN_FAL_QUEUE_URL": f"{url}/fal/queue",
                   "VIDEOGEN_FAL_REST_URL": f"{url}/fal/rest", "VIDEOGEN_CONFIG": str(tmp_path / "none.toml")}
            (tmp_path / "none.toml").write_text("")
            # A run far longer than the test ever waits: however loaded the machine, the job is still
            # at the provider when the database goes, so only the loss can end the CLI.
            cli = subprocess.Popen(guarded(sys.executable, "-m", "agent_tools.cli", "generate", PIKA, "--prompt",
                                           "[sim:slow=30] x"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen = []
            for line in cli.stderr:  # delete the database at the job's first progress line: it is at the provider
                seen.append(line)
                # queued or already running (a loaded machine may poll first after the short queue):
                # either way its request id is recorded, since progress starts after the submit
                if re.match(r"\[\s*[\d.]+s\] \w+ (queued|running)", line):
                    remove_database(tmp_path / "videogen.db")
                    break
            rest = cli.stderr.read()
            cli.wait(timeout=120)
        finally:
            server.send_signal(signal.SIGTERM)
    err = "".join(seen) + rest
    assert cli.returncode == 2, err
    assert "Traceback" not in err and "deleted or replaced" in err
    assert "request id" in err and "record could not be written" in err


RUN_SIMULATOR = """
import asyncio, signal
from agent_tools.simulator import SimSettings, Simulator
async def main():
    sim = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.1))
    await sim.start(host="127.0.0.1", port=0)
    print(sim.base_url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await sim.stop()
asyncio.run(main())
"""


async def test_a_full_database_is_a_readable_error_and_submits_nothing(tmp_path, sim):
    """SQLite's own limit on the file's pages (``max_page_count``) fails writes exactly as a full disk does."""
    async with await Toolkit.open(make_settings(tmp_path / "videogen.db", sim)) as kit:
        await kit.generate(ALICE, PIKA, {"prompt": "fills a little"})
        pages = await kit.db.scalar("PRAGMA page_count")
        await kit.db.scalar(f"PRAGMA max_page_count = {pages}")
        submits = sim.stats.total_submits
        with pytest.raises(DatabaseUnavailable, match="is full; free some space") as caught:
            for i in range(200):  # until the last free page is used
                await kit.generate(ALICE, PIKA, {"prompt": f"{'long prompt ' * 150} {i}"}, wait=0)
        assert "cannot rollback" not in str(caught.value)
        assert sim.stats.total_submits - submits == i, "the job that could not be recorded was never sent"
        await kit.db.scalar("PRAGMA max_page_count = 1000000")
        assert (await kit.generate(ALICE, PIKA, {"prompt": "space again"})).state is JobState.SUCCEEDED


async def test_a_full_disk_is_a_readable_error(tmp_path, sim):
    """A real, small file system (tmpfs), filled up under the database."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small file system needs root")
    try:
        async with await Toolkit.open(make_settings(mount / "videogen.db", sim)) as kit:
            await kit.generate(ALICE, PIKA, {"prompt": "first"}, wait=0)
            with open(mount / "filler", "wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError:
                    pass
            with pytest.raises(DatabaseUnavailable, match="full|disk I/O") as caught:
                for i in range(200):
                    await kit.generate(ALICE, PIKA, {"prompt": f"{'long prompt ' * 150} {uuid.uuid4()}"}, wait=0)
            assert "cannot rollback" not in str(caught.value) and str(mount) in str(caught.value)
            (mount / "filler").unlink()
    finally:
        await asyncio.sleep(0.1)
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_read_only_database_is_a_readable_error(tmp_path, sim):
    async with await Toolkit.open(make_settings(tmp_path / "videogen.db", sim)) as kit:
        await kit.db.scalar("PRAGMA query_only = 1")  # as a read-only file or mount answers writes
        with pytest.raises(DatabaseUnavailable, match="writable"):
            await kit.generate(ALICE, PIKA, {"prompt": "x"})
        assert sim.stats.total_submits == 0


async def test_a_locked_database_is_a_readable_error(tmp_path):
    import sqlite3

    path = tmp_path / "videogen.db"
    async with await Database.open(path, busy_timeout_ms=100) as db:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(DatabaseUnavailable, match="another process holds a write lock"):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO accounts(name, created_at) VALUES ('x', 0)")
        finally:
            other.execute("ROLLBACK")
            other.close()
