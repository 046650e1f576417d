"""Helpers for tests that run several processes on one database against the simulator.

The simulator runs in the test process; ``Recording`` (an aiohttp middleware added before it
starts) records which process — told apart by its API key — made each provider call, and can hold
a chosen call (an upload, a submit, a file download) open so a worker can be killed at an exact
point of a job's life, or leave one process's status polls unanswered so its jobs never end for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_tools.config import Settings


def settings_for(base: dict[str, Any], key: str) -> Settings:
    from agent_tools.config import Settings  # here, so that running this file as ``GUARD`` stays light

    data = json.loads(json.dumps(base))
    data["fal"]["key"] = key
    data["wavespeed"]["key"] = key
    return Settings.model_validate(data)


class Recording:
    """Provider calls seen by the simulator, by process key; and calls to hold open on request."""

    def __init__(self) -> None:
        self.polls: dict[str, list[str]] = defaultdict(list)  # request id → keys, in order
        self.submits: list[str] = []
        self.hold: dict[str, float] = {}  # "upload" / "submit" / "file" → seconds to hold it
        self.arrived: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.stall_polls: set[str] = set()
        """Keys whose status polls get no answer until ``released`` is set: however slowly that
        process runs, it never sees its jobs end (so it cannot finish or post them itself)."""
        self.released = asyncio.Event()

    def middleware(self):
        from aiohttp import web

        @web.middleware
        async def record(request: web.Request, handler):
            key = request.headers.get("Authorization", "").removeprefix("Key ")
            path = request.path
            if "/requests/" in path and path.endswith("/status"):
                self.polls[path.split("/requests/")[1].split("/")[0]].append(key)
                if key in self.stall_polls:
                    await self.released.wait()
            kind = ("upload" if path.endswith("/storage/upload/initiate") else
                    "submit" if request.method == "POST" and path.startswith("/fal/queue/") else
                    "file" if path.startswith("/files/") else None)
            if kind == "submit":
                self.submits.append(key)
            delay = self.hold.get(kind or "")
            if not delay:
                return await handler(request)
            self.arrived[kind].set()
            if kind != "file":
                await asyncio.sleep(delay)
                return await handler(request)
            # A download that stalls half-way, so the worker has a temp file open when it is killed.
            response = await handler(request)
            body = response.body
            stream = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type,
                                                                         "Content-Length": str(len(body))})
            await stream.prepare(request)
            await stream.write(body[: len(body) // 2])
            self.arrived["file-half"].set()
            await asyncio.sleep(delay)
            await stream.write(body[len(body) // 2:])
            await stream.write_eof()
            return stream

        return record


async def start_sim(recording: Recording):
    from agent_tools.simulator import SimSettings, Simulator

    sim = Simulator(SimSettings(queue_seconds=0.05, run_seconds=0.15))
    sim.app.middlewares.append(recording.middleware())
    await sim.start(host="127.0.0.1", port=0)
    return sim


def base_settings(tmp_path: Path, sim, database: str | None = None) -> dict[str, Any]:
    """Settings every process shares: the simulator, the media folder and one database (a SQLite
    file by default, or ``database``, such as a PostgreSQL URL)."""
    return {"fal": {"queue_url": sim.fal_queue_url, "rest_url": sim.fal_rest_url},
            "wavespeed": {"base_url": sim.wavespeed_base_url},
            "storage": {"database": database or str(tmp_path / "shared.db"), "media_dir": str(tmp_path / "media")},
            "polling": {"initial_seconds": 0.02, "max_seconds": 0.1, "factor": 1.5},
            "quotas": {"default": {}}}


async def finish(proc, timeout: float = 60) -> str:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def rows(database: Path | str, sql: str, *args: Any) -> list[Any]:
    """Rows (by column name) read straight from the shared database, past every process's code."""
    if str(database).startswith("postgresql://"):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(str(database), row_factory=dict_row) as conn:
            return conn.execute(sql.replace("?", "%s"), args).fetchall()
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def books(db_path: Path | str) -> dict[str, int]:
    """Settled spend against the audit, open holds, releases: the checks of test_ledger_processes."""
    [holds] = rows(db_path, "SELECT COALESCE(SUM(CASE WHEN state = 'settled' THEN actual_micros END), 0) AS settled,"
                            " COALESCE(SUM(CASE WHEN state IN ('held','submitted') THEN estimate_micros END), 0) AS open,"
                            " COALESCE(SUM(CASE WHEN state = 'released' THEN 1 ELSE 0 END), 0) AS released,"
                            " COUNT(*) AS holds FROM holds")
    [audit] = rows(db_path, "SELECT COALESCE(SUM(CASE WHEN event = 'settled' THEN amount END), 0) AS settled,"
                            " COALESCE(SUM(CASE WHEN event = 'settled' THEN 1 ELSE 0 END), 0) AS settles,"
                            " COALESCE(SUM(CASE WHEN event = 'released' THEN 1 ELSE 0 END), 0) AS releases FROM audit")
    return {"settled": holds["settled"], "open": holds["open"], "released": holds["released"],
            "holds": holds["holds"], "audit_settled": audit["settled"], "audit_settles": audit["settles"],
            "audit_releases": audit["releases"]}


# -- worker processes die with the test process ------------------------------------------------

PARENT_PID = "TEST_WORKER_PARENT_PID"
"""The environment variable that tells a worker which process it must not outlive."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def worker_env(**extra: str) -> dict[str, str]:
    """The environment for a worker process: this one's, naming this process as the parent the
    worker must not outlive (``die_with_parent``), plus ``extra``."""
    return {**os.environ, PARENT_PID: str(os.getpid()), **extra}


def die_with_parent(*, then: Callable[[], None] = lambda: None, linux: bool = sys.platform.startswith("linux")) -> None:
    """End this worker when the test process that spawned it ends, however that ends (``kill -9``
    of pytest, a Ctrl-C that skips the cleanup): an orphaned worker would go on polling, holding
    leases and database connections, until someone killed it by hand.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``, kept across
    ``exec``); elsewhere a daemon thread sees the process re-parented, calls ``then`` and exits.
    A parent that died before this ran is caught by comparing with ``PARENT_PID``."""
    expected = int(os.environ.get(PARENT_PID) or os.getppid())
    if linux:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        def watch() -> None:
            while os.getppid() == expected:
                time.sleep(0.2)
            then()
            os._exit(1)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    if os.getppid() != expected:  # the parent was gone before the death signal was set
        then()
        os._exit(1)


def guarded(*command: str) -> list[str]:
    """``command`` (a program other than these workers, such as ``videogen mcp --http``) started
    through ``die_with_parent``: on Linux this file sets the death signal and execs the command in
    its own place; elsewhere it stays the command's parent, passes SIGTERM and SIGINT on to it, and
    kills it when the test process is gone. Spawn it with ``env=worker_env(...)``."""
    return [sys.executable, __file__, "GUARD", *command]


def _guard(command: list[str], linux: bool = sys.platform.startswith("linux")) -> int:
    import subprocess

    if linux:
        die_with_parent()
        os.execv(command[0], command)
    child = subprocess.Popen(command)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda received, _frame: child.send_signal(received))
    die_with_parent(then=child.kill, linux=False)
    return child.wait()


if __name__ == "__main__" and sys.argv[1:2] == ["GUARD"]:
    sys.exit(_guard(sys.argv[2:]))
