"""The bot's records for public servers, in tables of their own (migration 4 in ``agent_tools/db.py``).

- ``discord_rules``: per guild, the channels and models it allows (none listed = all) and its
  banned words (added to ``[discord] banned_words``); edited with ``/admin``.
- ``discord_user_settings``: a user's defaults (``/settings``), one JSON object per user.
- ``discord_cards``: price cards waiting for Run. A card is run at most once whatever the clicks
  or processes: ``take`` flips it from ``open`` in one UPDATE, and only the winner starts the job.
- ``discord_notices``: what a user must still be told (a result that could not be posted where it
  was asked for, with DMs closed), shown with their next interaction.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent_tools.db import Database

RULE_KINDS = ("channel", "model", "word")


@dataclass(frozen=True)
class Card:
    id: str
    user_id: str
    tool: str
    arguments: dict[str, Any]
    note: str | None
    created_at: float
    expires_at: float
    state: str


class BotRecords:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # -- guild rules ---------------------------------------------------------------------------

    async def rules(self, guild_id: int | str, kind: str) -> list[str]:
        rows = await self.db.fetchall("SELECT value FROM discord_rules WHERE guild_id = ? AND kind = ? ORDER BY value",
                                      (str(guild_id), kind))
        return [r["value"] for r in rows]

    async def add_rule(self, guild_id: int | str, kind: str, value: str) -> bool:
        """False if it was already there."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("INSERT INTO discord_rules(guild_id, kind, value, created_at)"
                                      " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (str(guild_id), kind, value, self.clock()))
            return cursor.rowcount == 1

    async def remove_rule(self, guild_id: int | str, kind: str, value: str) -> bool:
        """False if it was not there."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM discord_rules WHERE guild_id = ? AND kind = ? AND value = ?",
                                      (str(guild_id), kind, value))
            return cursor.rowcount == 1

    # -- user settings -------------------------------------------------------------------------

    async def user_settings(self, user_id: int | str) -> dict[str, Any]:
        text = await self.db.scalar("SELECT settings FROM discord_user_settings WHERE user_id = ?", (str(user_id),))
        return json.loads(text) if text else {}

    async def save_user_settings(self, user_id: int | str, settings: Mapping[str, Any]) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_user_settings(user_id, settings, updated_at) VALUES (?, ?, ?)"
                             " ON CONFLICT(user_id) DO UPDATE SET settings = excluded.settings,"
                             " updated_at = excluded.updated_at",
                             (str(user_id), json.dumps(dict(settings), sort_keys=True), self.clock()))

    # -- price cards ---------------------------------------------------------------------------

    async def new_card(self, user_id: int | str, tool: str, arguments: Mapping[str, Any], note: str | None,
                       lifetime: float) -> Card:
        now = self.clock()
        card = Card(uuid.uuid4().hex, str(user_id), tool, dict(arguments), note, now, now + lifetime, "open")
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_cards(id, user_id, tool, arguments, note, created_at, expires_at,"
                             " state) VALUES (?, ?, ?, ?, ?, ?, ?, 'open')",
                             (card.id, card.user_id, tool, json.dumps(card.arguments), note, now, card.expires_at))
        return card

    async def card(self, card_id: str) -> Card | None:
        row = await self.db.fetchone("SELECT * FROM discord_cards WHERE id = ?", (card_id,))
        if row is None:
            return None
        return Card(row["id"], row["user_id"], row["tool"], json.loads(row["arguments"]), row["note"],
                    row["created_at"], row["expires_at"], row["state"])

    async def take(self, card_id: str, to: str) -> bool:
        """Move an open, unexpired card to ``run`` or ``cancelled``; True only for the one caller that did."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("UPDATE discord_cards SET state = ? WHERE id = ? AND state = 'open'"
                                      " AND expires_at > ?", (to, card_id, self.clock()))
            return cursor.rowcount == 1

    async def reopen(self, card_id: str) -> None:
        """A Run that was refused before anything was reserved (over budget now): the card stays usable."""
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE discord_cards SET state = 'open' WHERE id = ? AND state = 'run'", (card_id,))

    # -- notices -------------------------------------------------------------------------------

    async def add_notice(self, user_id: int | str, job_id: str, text: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO discord_notices(user_id, job_id, text, created_at) VALUES (?, ?, ?, ?)",
                             (str(user_id), job_id, text, self.clock()))

    async def take_notices(self, user_id: int | str) -> list[str]:
        """The user's unseen notices, marked seen (each is shown once). A read first, so the usual
        case (nothing to show) costs no write transaction."""
        rows = await self.db.fetchall("SELECT seq, text FROM discord_notices WHERE user_id = ? AND shown_at IS NULL"
                                      " ORDER BY seq", (str(user_id),))
        shown = []
        for row in rows:
            async with self.db.transaction() as tx:
                cursor = await tx.execute("UPDATE discord_notices SET shown_at = ? WHERE seq = ? AND shown_at IS NULL",
                                          (self.clock(), row["seq"]))
                if cursor.rowcount == 1:
                    shown.append(row["text"])
        return shown
