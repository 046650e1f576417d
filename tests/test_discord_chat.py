"""The chat agent in Discord, end to end without Discord: real message events (``discord.Message``
objects handed to the bot's ``on_message``) and real interactions through the command tree and the
view store, the scripted fake OpenAI server on loopback, the provider simulator, a real SQLite file.

Covered: a mention opens a thread, the agent plans → recommends → estimates → posts the price card;
only the asker can press Run, which takes the slash commands' path (checks, progress, posted result)
on the asker's own account; replies continue the thread; ``/ask``; a run over the quota; an LLM
error mid-turn; a restart mid-conversation; the token charges; the edit throttle; model text that
cannot ping anyone.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import discord
import pytest

from agent_tools.jobs import JobState
from agent_tools.ledger import Requester

from fake_llm import FakeLLM, tool_result
from test_chat import FOX, HAILUO
from test_discord_bot import (ALICE, APP_ID, BOB, BOT_PERMISSIONS, BOT_USER, CHANNEL_ID, GUILD_ID, Recorder, click, finish, jobs_of,
                              make_bot, make_settings, member, sim, slash, snowflake, stop_bot, until)  # noqa: F401

THREAD_ID = 910000000000000099
THREADS = (discord.Permissions(BOT_PERMISSIONS) | discord.Permissions(create_public_threads=True)).value


class ChatRecorder(Recorder):
    """The test recorder, answering a thread creation with a thread (Discord's ``Start Thread``)."""

    async def bot_request(self, route, *, files=None, form=None, **kwargs):
        result = await super().bot_request(route, files=files, form=form, **kwargs)
        if route.method == "POST" and route.url.endswith("/threads"):
            return thread_payload(kwargs.get("json", {}).get("name", "thread"))
        return result


def thread_payload(name: str = "thread") -> dict[str, Any]:
    return {"id": str(THREAD_ID), "guild_id": str(GUILD_ID), "parent_id": str(CHANNEL_ID), "owner_id": str(APP_ID),
            "name": name, "type": 11, "message_count": 0, "member_count": 1, "rate_limit_per_user": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                "archive_timestamp": datetime.now(timezone.utc).isoformat()}}


GUILD = {"id": str(GUILD_ID), "name": "test", "owner_id": ALICE["id"], "roles": [], "emojis": [], "stickers": [],
         "features": [], "channels": [{"id": str(CHANNEL_ID), "type": 0, "name": "gen", "position": 0,
                                       "permission_overwrites": [], "nsfw": False}],
         "members": [], "threads": [], "member_count": 2}


@pytest.fixture
def llm():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


async def chat_bot(tmp_path, sim, llm, *, quotas: dict | None = None, database: str | None = None,
                   **llm_settings: Any):
    settings = make_settings(tmp_path, sim, database, llm={"base_url": llm.base_url, "model": "fake-model", "api_key": "sk-x",
                                                 "usd_per_mtok_input": 2, "usd_per_mtok_output": 8,
                                                 "max_retries": 0, **llm_settings},
                             **({"quotas": {"default": quotas}} if quotas else {}))
    bot = await make_bot(settings, recorder=ChatRecorder())
    bot._connection._add_guild_from_data(GUILD)  # as GUILD_CREATE does before any message arrives
    bot.chat.edit_interval = 1000.0  # the clock does not move 1000 s in a test: one edit per turn, at its end
    return bot


def message(bot, content: str, user: dict[str, Any] = ALICE, *, in_thread: bool = False,
            mention: bool = True) -> discord.Message:
    """A message event as the gateway delivers it, in #gen or in the conversation's thread."""
    guild = bot.get_guild(GUILD_ID)
    channel = discord.Thread(guild=guild, state=bot._connection, data=thread_payload()) if in_thread \
        else guild.get_channel(CHANNEL_ID)
    data = {"id": str(snowflake()), "channel_id": str(channel.id), "guild_id": str(GUILD_ID), "type": 0,
            "content": (f"<@{APP_ID}> " if mention else "") + content, "author": user,
            "member": {k: v for k, v in member(user).items() if k != "user"}, "attachments": [], "embeds": [],
            "mentions": [BOT_USER] if mention else [], "mention_roles": [], "mention_everyone": False,
            "pinned": False, "tts": False, "timestamp": datetime.now(timezone.utc).isoformat(),
            "edited_timestamp": None, "flags": 0, "components": []}
    return discord.Message(state=bot._connection, channel=channel, data=data)


def posts(rec: Recorder, channel_id: int) -> list[dict[str, Any]]:
    return [c for c in rec.of("bot", "POST") if c["path"] == f"/channels/{channel_id}/messages"]


def last_edit(rec: Recorder) -> str:
    return [c for c in rec.of("bot", "PATCH") if f"/channels/{THREAD_ID}/messages/" in c["path"]][-1]["body"]["content"]


def card_script() -> list:
    return [
        {"text": "Looking for a cheap model.",
         "tool_calls": [("recommend_models", {"category": "text-to-video", "duration_seconds": 6, "max_cost_usd": 0.5})]},
        {"tool_calls": [("estimate_cost", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        {"tool_calls": [("generate", {"model": "hailuo_02_text_to_video", "arguments": HAILUO})]},
        lambda body: {"text": "Press Run on the card: " + tool_result(body, "generate")[:60]},
    ]


async def delivered_job(bot):
    """The one job of the test, once the bot has posted its outcome (a Run press returns before it starts)."""
    for _ in range(800):
        jobs = await jobs_of(bot)
        if jobs and await bot.state.is_delivered(jobs[0].id):
            await finish(bot)
            return jobs[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no job was delivered")


async def token_holds(bot, user=ALICE) -> list:
    account = await bot.toolkit.account_for_discord(user["id"])
    rows = await bot.toolkit.spend_report(account, by="model")
    return [r for r in rows if r.key.startswith("llm:")]


# -- the whole path --------------------------------------------------------------------------------

async def test_a_mention_becomes_a_thread_a_price_card_and_a_posted_video(tmp_path, sim, llm):
    llm.script = card_script()
    bot = await chat_bot(tmp_path, sim, llm)
    rec = bot.recorder
    try:
        await bot.on_message(message(bot, FOX))
        [thread] = [c for c in rec.of("bot", "POST") if c["path"].endswith("/threads")]
        assert thread["path"].startswith(f"/channels/{CHANNEL_ID}/messages/") and thread["body"]["name"] == FOX
        streamed, card = posts(rec, THREAD_ID)
        assert streamed["body"]["content"] == "…" and streamed["body"]["allowed_mentions"]["parse"] == []
        final = last_edit(rec)
        assert final.startswith("Looking for a cheap model.Press Run on the card: A price card for this run ($0.27")
        assert "-# ✓ recommend_models" in final and "-# ✓ estimate_cost · $0.27" in final
        assert "-# ✓ generate · $0.27" in final
        assert card["body"]["content"] == f"<@{ALICE['id']}>"
        assert card["body"]["embeds"][0]["title"].startswith("Run MiniMax Hailuo 02")
        run, cancel = [c["custom_id"] for row in card["body"]["components"] for c in row["components"]]
        assert run.startswith("vgcard:run:") and cancel.startswith("vgcard:drop:")
        assert await jobs_of(bot) == []  # nothing runs before Run

        # the model saw the conversation and the compact tools, as Alice's account
        assert llm.requests[0]["messages"][1] == {"role": "user", "content": FOX}
        [tokens] = await token_holds(bot)
        assert tokens.key == "llm:fake-model" and tokens.jobs == 4 and tokens.settled_micros == 4 * 480

        await click(bot, run, BOB)
        assert rec.ephemeral_texts()[-1] == "That price card is not yours, or no longer exists."
        await click(bot, run)
        job = await delivered_job(bot)
        assert job.state is JobState.SUCCEEDED and job.tool == "hailuo_02_text_to_video"
        assert job.account == f"discord-{ALICE['id']}" and job.params["prompt"] == HAILUO["prompt"]
        result = [c for c in rec.of("webhook", "POST") if (c["body"] or {}).get("content", "").startswith(
            f"<@{ALICE['id']}> your")]
        assert result and result[-1]["files"][0].endswith(".mp4")

        # a reply in the thread continues the conversation
        llm.script = [lambda body: {"text": f"You said {len([m for m in body['messages'] if m['role'] == 'user'])} "
                                            "things so far."}]
        await bot.on_message(message(bot, "thanks!", in_thread=True))
        assert last_edit(rec) == "You said 2 things so far."
    finally:
        await stop_bot(bot)


async def test_only_the_asker_continues_and_without_message_content_only_mentions_count(tmp_path, sim, llm):
    llm.script = [{"text": "Hi Alice."}]
    bot = await chat_bot(tmp_path, sim, llm)
    rec = bot.recorder
    try:
        await bot.on_message(message(bot, "hello"))
        await bot.on_message(message(bot, "no mention here", in_thread=True, mention=False))
        assert len(llm.requests) == 1  # without the Message Content intent, a reply must mention the bot
        await bot.on_message(message(bot, "me too", BOB, in_thread=True))
        assert "someone else's, on their budget" in rec.calls[-1]["body"]["content"]
        assert len(llm.requests) == 1 and await token_holds(bot, BOB) == []
        await bot.on_message(message(bot, "a bot's own words", BOT_USER | {"bot": True}))
        assert len(llm.requests) == 1
    finally:
        await stop_bot(bot)


async def test_ask_opens_a_thread_on_its_reply(tmp_path, sim, llm):
    llm.script = [{"text": "What style?"}]
    bot = await chat_bot(tmp_path, sim, llm)
    rec = bot.recorder
    try:
        await slash(bot, "ask", prompt=FOX, where={"app_permissions": THREADS})
        callback = rec.calls[0]
        assert callback["path"].endswith("/callback") and callback["body"]["data"]["content"].endswith(FOX)
        assert any(c["path"].endswith("/threads") for c in rec.of("bot", "POST"))
        assert last_edit(rec) == "What style?"
    finally:
        await stop_bot(bot)


async def test_ask_refuses_privately_where_generations_are_not_allowed(tmp_path, sim, llm):
    bot = await chat_bot(tmp_path, sim, llm)
    try:
        await slash(bot, "ask", prompt=FOX)  # the bot may not open threads here
        assert "missing the Create Public Threads permission" in bot.recorder.ephemeral_texts()[-1]
        await bot.records.add_rule(GUILD_ID, "channel", "123")
        await slash(bot, "ask", prompt=FOX, where={"app_permissions": THREADS})
        assert bot.recorder.ephemeral_texts()[-1].startswith("This server runs generations only in <#123>")
        assert llm.requests == [] and not any(c["path"].endswith("/threads") for c in bot.recorder.calls)
    finally:
        await stop_bot(bot)


# -- refusals and failures ------------------------------------------------------------------------

async def test_a_run_over_the_quota_goes_back_to_the_model_and_no_card_is_posted(tmp_path, sim, llm):
    llm.script = card_script()[1:3] + [lambda body: {"text": tool_result(body, "generate")}]
    bot = await chat_bot(tmp_path, sim, llm, quotas={"daily_usd": 0.2})
    try:
        await bot.on_message(message(bot, FOX))
        refusal = tool_result(llm.requests[-1], "generate")
        assert refusal.startswith("Error: ") and "daily" in refusal and "Nothing was submitted or charged" in refusal
        assert len(posts(bot.recorder, THREAD_ID)) == 1  # the streamed answer, no card
        assert await jobs_of(bot) == []
    finally:
        await stop_bot(bot)


async def test_a_banned_word_in_the_agents_prompt_is_refused_before_the_card(tmp_path, sim, llm):
    llm.script = [{"tool_calls": [("generate", {"model": "hailuo_02_text_to_video",
                                                "arguments": {"prompt": "a gory fox"}})]},
                  lambda body: {"text": tool_result(body, "generate")}]
    bot = await chat_bot(tmp_path, sim, llm)
    try:
        await bot.records.add_rule(GUILD_ID, "word", "gory")
        await bot.on_message(message(bot, "a fox"))
        assert "does not allow (\"gory\")" in tool_result(llm.requests[-1], "generate")
        assert len(posts(bot.recorder, THREAD_ID)) == 1
    finally:
        await stop_bot(bot)


async def test_a_banned_word_in_the_users_own_message_is_refused_before_the_model_sees_it(tmp_path, sim, llm):
    llm.script = [{"text": "Hi."}]
    bot = await chat_bot(tmp_path, sim, llm)
    try:
        await bot.records.add_rule(GUILD_ID, "word", "gory")
        await bot.on_message(message(bot, "a gory fox"))
        assert "does not allow (\"gory\")" in bot.recorder.calls[-1]["body"]["content"]
        assert llm.requests == [] and not any(c["path"].endswith("/threads") for c in bot.recorder.calls)
        await bot.on_message(message(bot, "hello"))
        await bot.on_message(message(bot, "now gory", in_thread=True))
        assert len(llm.requests) == 1 and "does not allow" in bot.recorder.calls[-1]["body"]["content"]
    finally:
        await stop_bot(bot)


async def test_an_llm_error_mid_turn_is_shown_in_the_thread(tmp_path, sim, llm):
    llm.script = [card_script()[0], {"status": 429}]
    bot = await chat_bot(tmp_path, sim, llm)
    try:
        await bot.on_message(message(bot, FOX))
        assert "⚠️ The language model at" in last_edit(bot.recorder) and "rate-limiting" in last_edit(bot.recorder)
        [tokens] = await token_holds(bot)
        assert tokens.settled_micros == 480 and tokens.open_micros == 0  # the failed call is released
    finally:
        await stop_bot(bot)


async def test_a_restart_mid_conversation_continues_it(tmp_path, sim, llm, database_url):
    """The conversation is stored (on either database) exactly as it is replayed to the model."""
    llm.script = [{"text": "Cartoon or real?"}]
    bot = await chat_bot(tmp_path, sim, llm, database=database_url)
    await bot.on_message(message(bot, FOX))
    await stop_bot(bot)
    llm.script = [lambda body: {"text": f"Cartoon it is ({[m['role'] for m in body['messages']]})."}]
    again = await chat_bot(tmp_path, sim, llm, database=database_url)
    try:
        await again.on_message(message(again, "cartoon", in_thread=True))
        assert last_edit(again.recorder) == "Cartoon it is (['system', 'user', 'assistant', 'user'])."
    finally:
        await stop_bot(again)


async def test_a_cheap_run_within_confirm_above_starts_at_once_on_the_slash_path(tmp_path, sim, llm):
    llm.script = card_script()[2:]
    bot = await chat_bot(tmp_path, sim, llm, confirm_above_usd=1)
    try:
        await bot.on_message(message(bot, FOX))
        job = await delivered_job(bot)
        assert job.state is JobState.SUCCEEDED and job.origin["channel_id"] == str(THREAD_ID)
        assert "Started as job" in tool_result(llm.requests[-1], "generate")
        result = [c for c in posts(bot.recorder, THREAD_ID) if c["body"]["content"].startswith(f"<@{ALICE['id']}> your")]
        assert result and result[0]["files"][0].endswith(".mp4")
    finally:
        await stop_bot(bot)


# -- streaming -----------------------------------------------------------------------------------------

async def test_the_answer_is_edited_at_most_once_per_interval_and_pings_no_one(tmp_path, sim, llm):
    long = "A fox. " * 40 + "@everyone <@&1>"
    llm.script = [{"text": long}, {"text": long}]
    bot = await chat_bot(tmp_path, sim, llm)
    rec = bot.recorder
    try:
        await bot.on_message(message(bot, "tell me"))  # the clock stays within one interval: one edit
        edits = [c for c in rec.of("bot", "PATCH") if f"/channels/{THREAD_ID}/messages/" in c["path"]]
        assert len(edits) == 1 and edits[0]["body"]["content"] == long.strip()
        assert edits[0]["body"]["allowed_mentions"] == {"parse": []}

        rec.calls.clear()
        bot.chat.edit_interval = 1.0
        ticks = iter(range(0, 10_000, 2))  # every reading of the clock is 2 s after the last
        bot.clock = lambda: float(next(ticks))
        await bot.on_message(message(bot, "again", in_thread=True))
        edits = [c for c in rec.of("bot", "PATCH") if f"/channels/{THREAD_ID}/messages/" in c["path"]]
        assert len(edits) > 5 and edits[-1]["body"]["content"] == long.strip()
    finally:
        await stop_bot(bot)


async def test_ask_and_message_events_exist_only_with_the_chat_agent(tmp_path, sim, llm):
    from agent_tools.config import Settings
    from bots.discord.app import default_intents
    from bots.discord.payloads import validate_payload

    bot = await chat_bot(tmp_path, sim, llm)
    try:
        payload = bot.command_payload()
        assert "ask" in [c["name"] for c in payload] and validate_payload(payload) == []
    finally:
        await stop_bot(bot)
    plain = await make_bot(make_settings(tmp_path / "plain", sim))
    try:
        assert plain.chat is None and "ask" not in [c["name"] for c in plain.command_payload()]
    finally:
        await stop_bot(plain)
    assert default_intents(Settings()).value == discord.Intents(guilds=True).value
    chatty = default_intents(Settings.model_validate({"llm": {"model": "m"}}))
    assert chatty.guild_messages and not chatty.message_content
    assert default_intents(Settings.model_validate({"llm": {"model": "m"},
                                                    "discord": {"message_content": True}})).message_content


async def test_with_message_content_every_reply_in_the_thread_continues(tmp_path, sim, llm):
    llm.script = [{"text": "Hi."}, {"text": "Sure."}]
    bot = await chat_bot(tmp_path, sim, llm)
    bot.settings.discord.message_content = True
    try:
        await bot.on_message(message(bot, "hello"))
        await bot.on_message(message(bot, "make it blue", in_thread=True, mention=False))
        assert len(llm.requests) == 2 and last_edit(bot.recorder) == "Sure."
        await bot.on_message(message(bot, "unrelated chatter", mention=False))  # outside any chat thread
        assert len(llm.requests) == 2
    finally:
        await stop_bot(bot)
