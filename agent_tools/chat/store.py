"""Conversations in the database: one per Discord thread or terminal session, keyed by the surface.

Messages are stored exactly as they are replayed to the model (the Chat Completions shape), one
row each, as soon as they exist, so a restart — of this process or another shard's — continues
the conversation. ``history`` gives the last messages under ``[llm] history_messages``, starting
at a user message, with any tool call a crash left unanswered answered as interrupted, so the
replay is always a valid request.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..db import Database
from .llm import Usage

INTERRUPTED = "This call was interrupted (the agent restarted); it did not run. Call it again if still needed."


@dataclass(frozen=True)
class Conversation:
    id: str
    key: str
    account: str
    surface: str


class ConversationStore:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def find(self, key: str) -> Conversation | None:
        row = await self.db.fetchone("SELECT id, key, account, surface FROM chat_conversations WHERE key = ?", (key,))
        return None if row is None else Conversation(row["id"], row["key"], row["account"], row["surface"])

    async def open(self, key: str, *, account: str, surface: str) -> Conversation:
        """The conversation under ``key``, created for ``account`` if there is none yet."""
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO chat_conversations(id, key, account, surface, created_at, updated_at)"
                             " VALUES (?,?,?,?,?,?) ON CONFLICT(key) DO NOTHING",
                             (uuid.uuid4().hex[:16], key, account, surface, now, now))
        found = await self.find(key)
        assert found is not None
        return found

    async def append(self, conversation: Conversation, message: dict[str, Any], *, model: str | None = None,
                     usage: Usage | None = None, cost_micros: int | None = None) -> int:
        """Store one message after the last; returns its sequence number."""
        now = self.clock()
        async with self.db.transaction() as tx:
            row = await (await tx.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages"
                                          " WHERE conversation_id = ?", (conversation.id,))).fetchone()
            seq = row[0]
            await tx.execute(
                "INSERT INTO chat_messages(conversation_id, seq, role, message, model, input_tokens, output_tokens,"
                " cost_micros, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (conversation.id, seq, message["role"], json.dumps(message, ensure_ascii=False), model,
                 usage.input_tokens if usage else None, usage.output_tokens if usage else None, cost_micros, now))
            await tx.execute("UPDATE chat_conversations SET updated_at = ? WHERE id = ?", (now, conversation.id))
        return seq

    async def messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        rows = await self.db.fetchall("SELECT message FROM chat_messages WHERE conversation_id = ? ORDER BY seq",
                                      (conversation.id,))
        return [json.loads(r["message"]) for r in rows]

    async def history(self, conversation: Conversation, limit: int) -> list[dict[str, Any]]:
        """The messages to replay: the last ``limit`` (from a user message on), repaired."""
        rows = await self.db.fetchall(
            "SELECT message FROM chat_messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
            (conversation.id, limit))
        messages = [json.loads(r["message"]) for r in reversed(rows)]
        while messages and messages[0]["role"] != "user":
            messages.pop(0)  # never start inside an exchange of tool calls
        return answer_dangling_calls(messages)


def answer_dangling_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every assistant tool call followed by its tool message (``INTERRUPTED`` where a crash lost it)."""
    repaired: list[dict[str, Any]] = []
    pending: list[str] = []
    for message in messages:
        if pending and message["role"] != "tool":
            repaired += [{"role": "tool", "tool_call_id": c, "content": INTERRUPTED} for c in pending]
            pending = []
        if message["role"] == "tool" and message.get("tool_call_id") in pending:
            pending.remove(message["tool_call_id"])
        repaired.append(message)
        if message["role"] == "assistant":
            pending = [c["id"] for c in message.get("tool_calls") or ()]
    repaired += [{"role": "tool", "tool_call_id": c, "content": INTERRUPTED} for c in pending]
    return repaired
