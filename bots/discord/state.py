"""The bot's own bookkeeping, in two tables of its own beside the Toolkit's (created by the
migrations in ``agent_tools/db.py``).

- ``discord_deliveries``: every job started from Discord until its result (or failure) was posted,
  so a restart posts what the previous process could not — also jobs another process finished.
  Each row is *claimed* by the bot process that will post it (``owner``, ``lease_until``): any
  number of bot processes may share the database, a live claim is never taken, and a dead
  process's claims lapse after ``lease_seconds`` and are taken by exactly one other process.
- ``discord_meta``: small key/value facts, such as the hash of the last synced command payload.

Jobs, holds and accounts are the Toolkit's: this module never reads or writes them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from agent_tools.db import Database, claim_leases, placeholders

DELIVERY_LEASE_SECONDS = 60.0


class BotState:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time,
                 lease_seconds: float = DELIVERY_LEASE_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        """How long this process's delivery claims last unless renewed (they are, while it follows)."""
        self.owner = uuid.uuid4().hex

    async def expect(self, job_id: str) -> bool:
        """A job whose outcome must be posted, even if this process stops first; claimed by this
        process. False if another live process already holds its claim."""
        now = self.clock()

        def body(conn: Any) -> bool:  # the row and its claim in one transaction
            conn.execute("INSERT INTO discord_deliveries(job_id, created_at, owner, lease_until) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT DO NOTHING", (job_id, now, self.owner, now + self.lease_seconds))
            return bool(self._claim_in(conn, job_id, now))

        return await self.db.run(body)

    async def claim(self, job_id: str) -> bool:
        """Make this process the one to post ``job_id``: if it is already, or the row is unclaimed,
        or its owner's lease lapsed (``claim_leases``: of several processes exactly one wins)."""
        now = self.clock()
        return bool(await self.db.run(lambda conn: self._claim_in(conn, job_id, now)))

    def _claim_in(self, conn: Any, job_id: str, now: float) -> list[str]:
        return claim_leases(conn, "discord_deliveries", "job_id", "job_id = ? AND delivered_at IS NULL", (job_id,),
                            owner=self.owner, now=now, until=now + self.lease_seconds)

    async def renew(self, job_ids: Iterable[str]) -> None:
        """Extend this process's claims on the jobs it is following (one statement for all of them)."""
        ids = list(job_ids)
        if not ids:
            return
        async with self.db.transaction() as tx:
            await tx.execute(f"UPDATE discord_deliveries SET lease_until = ? WHERE owner = ? AND delivered_at IS NULL"
                             f" AND job_id IN ({placeholders(ids)})", (self.clock() + self.lease_seconds, self.owner, *ids))

    async def release(self) -> None:
        """End this process's unposted claims now (a clean shutdown), so another process takes them."""
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE discord_deliveries SET lease_until = 0 WHERE owner = ? AND delivered_at IS NULL",
                             (self.owner,))

    async def delivered(self, job_id: str, message_id: int | None = None) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO discord_deliveries(job_id, created_at, delivered_at, message_id, owner) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(job_id) DO UPDATE SET delivered_at = excluded.delivered_at,"
                " message_id = excluded.message_id, owner = excluded.owner WHERE discord_deliveries.delivered_at IS NULL",
                (job_id, self.clock(), self.clock(), None if message_id is None else str(message_id), self.owner))

    async def is_delivered(self, job_id: str) -> bool:
        return await self.db.scalar("SELECT delivered_at IS NOT NULL FROM discord_deliveries WHERE job_id = ?",
                                    (job_id,)) == 1

    async def known(self) -> set[str]:
        return {r["job_id"] for r in await self.db.fetchall("SELECT job_id FROM discord_deliveries")}

    async def pending(self) -> list[str]:
        """Undelivered jobs no live process has claimed (or this process's own)."""
        rows = await self.db.fetchall("SELECT job_id FROM discord_deliveries WHERE delivered_at IS NULL"
                                      " AND (owner = ? OR owner IS NULL OR lease_until < ?) ORDER BY created_at",
                                      (self.owner, self.clock()))
        return [r["job_id"] for r in rows]

    async def undelivered(self) -> int:
        """Jobs still awaiting a post, whoever holds them."""
        return await self.db.scalar("SELECT COUNT(*) FROM discord_deliveries WHERE delivered_at IS NULL")
    async def get(self, key: str) -> str | None:
        return await self.db.scalar("SELECT value FROM discord_meta WHERE key = ?", (key,))

    async def put(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_meta(key, value, updated_at) VALUES (?, ?, ?)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                             (key, value, self.clock()))
