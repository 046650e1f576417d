"""Run a surface against the simulator: ``simulated(settings, enabled)``.

Every surface's ``--simulate`` flag (the CLI, the MCP server, the Discord bot, the dashboard) goes
through this one context manager, so they all start the simulator in-process and point both
providers at it the same way — and all keep simulated work off the real books the same way:

- **A sandbox of its own.** The database and the media folder move to ``simulated/`` beside the
  real database (``sandbox_storage``): ``spend``, ``quota show``, ``holds`` and ``jobs list`` of the
  real database never see a simulated job, and simulated jobs never use up a real quota.
- **The same people and limits.** Who is who is not money: at each simulated start the accounts,
  linked identities, API tokens and stored limits are copied from the real database (read-only)
  into the sandbox, so tokens work against a simulated HTTP server and ``videogen quota set``
  limits refuse the same requests there. Nothing ever flows back.
- **Nothing left open.** Each process runs its own simulator on a fresh port and the simulator keeps
  its requests in memory, so a simulated job cannot outlive its process: on the way out (and, for a
  process that was killed, at the next simulated start) every such job ends as failed at no charge
  and its hold is released — no ``unknown`` job and no open hold stays behind. Making the simulator
  persistent instead would buy resumable fake clips at the price of a fixed port shared by every
  simulated process; ending them is honest, since a simulated clip is worth nothing.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from ..config import Settings, StorageSettings, is_database_url

if TYPE_CHECKING:
    import httpx

SIMULATED_KEY = "simulated-key"
SANDBOX = "simulated"
ENDED = "Ended with its simulated run: the simulator that ran it has stopped. Nothing was charged."

log = logging.getLogger(__name__)


def sandbox_storage(storage: StorageSettings) -> StorageSettings:
    """Where simulated runs keep their database and media: ``simulated/`` beside the real database
    (a SQLite file even when the real one is a PostgreSQL server: then beside the media folder)."""
    if is_database_url(storage.database):
        folder, name = storage.media_dir.parent / SANDBOX, "videogen.db"
    else:
        folder, name = storage.database.parent / SANDBOX, storage.database.name
    return storage.model_copy(update={"database": folder / name, "media_dir": folder / "media"})


async def end_stranded_jobs(settings: Settings, simulator_url: str) -> int:
    """End, at no charge, every job in the sandbox that no simulator can finish any more: an
    ``unknown`` one, one whose owner is gone, one that ran on ``simulator_url`` (stopping now), or
    one whose simulator no longer answers (its process was killed). Returns how many."""
    import httpx

    from ..jobs import FINAL, JobState
    from ..toolkit import Toolkit

    if settings.storage.database.parent.name != SANDBOX:
        raise ValueError("simulated jobs are only ever ended in the simulation sandbox")
    kit = await Toolkit.open(settings, resume=False)
    try:
        ended = 0
        states = frozenset(JobState) - FINAL | {JobState.UNKNOWN}
        now = kit.engine.clock()
        answers: dict[str, bool] = {}
        async with httpx.AsyncClient(timeout=2.0) as client:
            for job in await kit.engine.list(states=states, limit=100_000):
                origin = _origin(job.status_url or "")
                if origin and origin != simulator_url and origin not in answers:
                    answers[origin] = await _answers(client, origin)
                if (job.state is JobState.UNKNOWN or job.owner_gone(now) or origin == simulator_url
                        or (origin and not answers[origin])):
                    ended += await kit.engine.end_at_no_charge(job.id, ENDED) is not None
        return ended
    finally:
        await kit.close()


IDENTITY_TABLES = ("accounts", "identities", "tokens", "limits")
"""Copied real → sandbox (in this order: identities and tokens refer to accounts)."""


async def copy_identities(real: Path | str, settings: Settings) -> None:
    """Copy who is who (accounts, identities, tokens, limits) from the real database, opened
    read-only, into the sandbox. No real database yet: nothing to copy."""
    from ..db import Database
    from ..store import open_database

    if is_database_url(real):
        async with await open_database(real) as source:  # only read
            tables = {}
            for name in IDENTITY_TABLES:
                rows = await source.fetchall(f"SELECT * FROM {name}")
                tables[name] = ([tuple(r) for r in rows], rows[0].keys() if rows else [])
    elif not Path(real).exists():
        return
    else:
        try:
            with contextlib.closing(sqlite3.connect(f"{Path(real).resolve().as_uri()}?mode=ro", uri=True)) as source:
                tables = {name: (source.execute(f"SELECT * FROM {name}").fetchall(),
                                 [c[1] for c in source.execute(f"PRAGMA table_info({name})")])
                          for name in IDENTITY_TABLES}
        except sqlite3.Error as exc:
            log.warning("could not read accounts and limits from %s (%s); the sandbox keeps its own", real, exc)
            return
    async with await Database.open(settings.storage.database) as sandbox:
        async with sandbox.transaction() as tx:
            for name in IDENTITY_TABLES:
                found, columns = tables[name]
                if found:
                    await tx.executemany(f"INSERT OR REPLACE INTO {name}({', '.join(columns)})"
                                         f" VALUES ({', '.join('?' * len(columns))})", found)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _answers(client: httpx.AsyncClient, origin: str) -> bool:
    """Whether a simulator still listens there (any HTTP answer will do)."""
    import httpx

    try:
        await client.get(origin + "/")
    except httpx.HTTPError:
        return False
    return True


@contextlib.asynccontextmanager
async def simulated(settings: Settings, enabled: bool) -> AsyncIterator[Settings]:
    """With ``--simulate``: start the simulator in this process, point both providers at it, and
    keep the books in the sandbox (see the module docstring)."""
    if not enabled:
        yield settings
        return
    from .scenarios import SimSettings  # imported here: the server pulls in aiohttp
    from .server import Simulator

    sim = Simulator(SimSettings())
    await sim.start(host="127.0.0.1", port=0)
    try:
        fal = settings.fal.model_copy(update={"key": SecretStr(SIMULATED_KEY), "queue_url": sim.fal_queue_url,
                                              "rest_url": sim.fal_rest_url})
        wavespeed = settings.wavespeed.model_copy(update={"key": SecretStr(SIMULATED_KEY),
                                                          "base_url": sim.wavespeed_base_url})
        effective = settings.model_copy(update={"fal": fal, "wavespeed": wavespeed,
                                                "storage": sandbox_storage(settings.storage)})
        await copy_identities(settings.storage.database, effective)
        await end_stranded_jobs(effective, sim.base_url)  # left by a simulated process that was killed
        print(f"SIMULATED: providers are the local simulator at {sim.base_url}; outputs are test clips, "
              "not real generations, and nothing is billed. Simulated jobs are kept apart from the real ones, "
              f"in {effective.storage.database.parent}.", file=sys.stderr)
        try:
            yield effective
        finally:
            try:
                await end_stranded_jobs(effective, sim.base_url)
            except Exception as exc:  # the next simulated start ends them instead
                log.warning("could not end this run's simulated jobs: %s", exc)
    finally:
        await sim.stop()
