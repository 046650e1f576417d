"""The bot's own bookkeeping, in two tables of its own beside the Toolkit's (created by the
migrations in ``agent_tools/db.py``).

- ``discord_deliveries``: every job started from Discord until its result (or failure) was posted,
  so a restart posts what the previous process could not — also jobs another process finished.
- ``discord_meta``: small key/value facts, such as the hash of the last synced command payload.

Jobs, holds and accounts are the Toolkit's: this module never reads or writes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent_tools.db import Database


class BotState:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def expect(self, job_id: str) -> None:
        """A job whose outcome must be posted, even if this process stops first."""
        async with self.db.transaction() as tx:
            await tx.execute("INSERT OR IGNORE INTO discord_deliveries(job_id, created_at) VALUES (?, ?)",
                             (job_id, self.clock()))

    async def delivered(self, job_id: str, message_id: int | None = None) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO discord_deliveries(job_id, created_at, delivered_at, message_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(job_id) DO UPDATE SET delivered_at = excluded.delivered_at,"
                " message_id = excluded.message_id",
                (job_id, self.clock(), self.clock(), None if message_id is None else str(message_id)))

    async def is_delivered(self, job_id: str) -> bool:
        return await self.db.scalar("SELECT delivered_at IS NOT NULL FROM discord_deliveries WHERE job_id = ?",
                                    (job_id,)) == 1

    async def known(self) -> set[str]:
        return {r["job_id"] for r in await self.db.fetchall("SELECT job_id FROM discord_deliveries")}

    async def pending(self) -> list[str]:
        rows = await self.db.fetchall("SELECT job_id FROM discord_deliveries WHERE delivered_at IS NULL"
                                      " ORDER BY created_at")
        return [r["job_id"] for r in rows]

    async def get(self, key: str) -> str | None:
        return await self.db.scalar("SELECT value FROM discord_meta WHERE key = ?", (key,))

    async def put(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_meta(key, value, updated_at) VALUES (?, ?, ?)"
                             " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                             (key, value, self.clock()))
