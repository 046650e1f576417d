"""The chat agent in Discord: mention the bot (or ``/ask``) and it answers in a thread.

A mention in a channel opens a thread on that message (``/ask`` on its own public reply); the
thread is the conversation (``discord:<thread id>`` in the chat store), so any bot process, and
the next one after a restart, continues it. In the thread the asker's later messages continue it:
those that mention the bot, or every message when the operator turns on the Message Content
intent (``[discord] message_content``). The answer streams into one message, edited at most once
per ``chat_edit_interval`` (1 s); tool calls show as small lines under it.

Everything runs as the asker's own account, with their roles and their guild's caps; the model's
tokens are booked on the same ledger. A generation is never run by the model: the asker gets the
slash commands' price card in the thread (Run / Cancel, only they can press it), and Run takes
the same path as a slash command — every check again (the server's rules, the bot's permissions,
the options, the budget), the operator's safety switches, progress, the posted result. A run
within ``[llm] confirm_above_usd`` starts at once on that same path, without the card.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands

from agent_tools.agent.executor import ToolResult
from agent_tools.chat.agent import Answer, ChatAgent, PendingRun, TurnUI
from agent_tools.chat.llm import LlmClient, LlmUnavailable
from agent_tools.chat.store import Conversation
from agent_tools.errors import UserError
from agent_tools.money import format_usd
from agent_tools.toolkit import Account

from . import policy, render, views
from .commands import role_ids
from .delivery import Reply, reply_private

log = logging.getLogger(__name__)

MAX_CONTENT = 2000
THREAD_NAME = 100
NOT_SET_UP = ("The chat agent is not set up on this bot: the operator sets [llm] model and api_key (or base_url) "
              "and installs videogen[chat]. The slash commands work without it.")
NOT_YOURS = ("This conversation is someone else's, on their budget; mention me in a channel (or use `/ask`) to "
             "start your own.")
THREAD_PERMISSIONS = (("create_public_threads", "Create Public Threads"),
                      ("send_messages_in_threads", "Send Messages in Threads"))
QUIET = discord.AllowedMentions.none()
"""Model text never pings anyone (``@everyone``, roles or users)."""


@dataclass(frozen=True)
class Place:
    """Where a conversation happens and who asked, as ``policy`` reads it from an interaction."""

    guild_id: int | None
    channel_id: int
    channel: Any
    user_id: int
    app_permissions: discord.Permissions


def place_of_message(message: discord.Message, channel: Any = None) -> Place:
    """A message's place. The bot's permissions there come from the cached guild; a Run press is
    checked again with Discord's own ``app_permissions``, so an unknown one here is not the last word."""
    channel = channel or message.channel
    granted = discord.Permissions.all()
    me = message.guild.me if message.guild is not None else None
    if me is not None and hasattr(channel, "permissions_for"):
        granted = channel.permissions_for(me)
    return Place(message.guild.id if message.guild else None, channel.id, channel, message.author.id, granted)


def is_nsfw(channel: Any) -> bool:
    """Whether a channel is age-restricted (a thread inherits its parent's flag)."""
    parent = getattr(channel, "parent", None)
    return bool(getattr(parent if parent is not None else channel, "nsfw", False))


class StreamedMessage:
    """The answer of one turn: one message edited at most once per ``interval`` of the bot's clock,
    a new one past Discord's 2,000 characters."""

    def __init__(self, bot: Any, channel: Any, interval: float) -> None:
        self.bot = bot
        self.channel = channel
        self.interval = interval
        self.text = ""
        self.lines: list[str] = []
        self.message: Any = None
        self._shown = ""
        self._last = float("-inf")

    def content(self, *, done: bool) -> str:
        body = self.text.strip() or ("" if done else "…")
        tail = "\n".join(f"-# {line}" for line in self.lines[-6:])
        text = "\n".join(part for part in (body, tail) if part) or "…"
        return text if len(text) <= MAX_CONTENT else text[:MAX_CONTENT - 1] + "…"

    async def start(self) -> None:
        self.message = await self.channel.send("…", allowed_mentions=QUIET)
        self._shown, self._last = "…", self.bot.clock()

    async def add_text(self, delta: str) -> None:
        self.text += delta
        if len(self.content(done=False)) >= MAX_CONTENT and len(self.text) > MAX_CONTENT // 2:
            await self._roll_over()
        await self.update()

    async def add_line(self, line: str) -> None:
        self.lines.append(line)
        await self.update()

    async def _roll_over(self) -> None:
        """Close this message at a paragraph (or line) boundary and go on in a new one."""
        cut = max(self.text.rfind("\n\n", 0, MAX_CONTENT - 200), self.text.rfind("\n", 0, MAX_CONTENT - 200))
        cut = cut if cut > 0 else MAX_CONTENT - 200
        head, self.text = self.text[:cut], self.text[cut:].lstrip("\n")
        await self._edit(head.strip() or "…")
        self.lines = []
        self.message = await self.channel.send("…", allowed_mentions=QUIET)
        self._shown = "…"

    async def update(self, *, force: bool = False) -> None:
        now = self.bot.clock()
        if not force and now - self._last < self.interval:
            return
        await self._edit(self.content(done=force))

    async def _edit(self, text: str) -> None:
        if text == self._shown or self.message is None:
            return
        try:
            await self.message.edit(content=text, allowed_mentions=QUIET)
        except discord.HTTPException as exc:
            log.warning("could not edit the chat message %s: %s", getattr(self.message, "id", "?"), exc)
        self._shown, self._last = text, self.bot.clock()


class DiscordTurn(TurnUI):
    """One turn in a thread: streams the answer, shows tool calls, and puts generations to the asker."""

    def __init__(self, chat: "DiscordChat", place: Place, account: Account, stream: StreamedMessage) -> None:
        self.chat = chat
        self.place = place
        self.account = account
        self.stream = stream

    async def text(self, delta: str) -> None:
        await self.stream.add_text(delta)

    async def tool_started(self, name: str, arguments: Mapping[str, Any]) -> None:
        await self.stream.add_line(f"🔧 {name}…")

    async def tool_finished(self, name: str, arguments: Mapping[str, Any], result: ToolResult,
                            price_micros: int | None) -> None:
        price = f" · {format_usd(price_micros)}" if price_micros is not None else ""
        mark = "⚠️" if result.is_error else "✓"
        self.stream.lines[-1] = f"{mark} {name}{price}"
        await self.stream.update()

    async def confirm(self, pending: PendingRun) -> Answer:
        """The asker's price card in the thread, or (within ``[llm] confirm_above_usd``) the run itself."""
        bot = self.chat.bot
        deliveries = bot.deliveries
        tool = pending.spec.tool
        arguments = deliveries.operator_arguments(tool, pending.arguments)
        why = await policy.refusal(self.place, bot.settings.discord, bot.records, tool, arguments)  # type: ignore[arg-type]
        if why:
            return Answer(False, f"Refused by this server's rules, nothing was charged: {why}")
        estimate = await bot.toolkit.preflight(self.account, tool, arguments, allow_local_files=False)
        await self.stream.update(force=True)
        if not pending.must_ask:
            job = await self.chat.launch(self.place, self.account, tool, arguments, estimate)
            return Answer(False, f"Started as job {job.id} ({estimate.quote.usd} reserved); its progress and result "
                                 "are posted in this thread. Tell the user briefly; don't call generate again for it.")
        card = await bot.records.new_card(self.place.user_id, tool, arguments, "Asked for in a chat with the bot",
                                          bot.settings.discord.confirm_seconds)
        budget = render.budget_line(await bot.toolkit.quota_status(self.account))
        await self.place.channel.send(content=f"<@{self.place.user_id}>",
                                      embed=render.price_card(estimate, budget, card.expires_at),
                                      view=views.card_view(card.id),
                                      allowed_mentions=discord.AllowedMentions(users=[discord.Object(self.place.user_id)],
                                                                               everyone=False, roles=False))
        return Answer(False, f"A price card for this run ({estimate.quote.usd}, {estimate.quote.formula}) is posted "
                             "with Run and Cancel; nothing is reserved until the user presses Run, and then it runs and "
                             "is posted in this thread. Tell the user briefly; don't call generate again for it.")


class DiscordChat:
    """The bot's chat agent: message events, ``/ask``, one lock per conversation in this process."""

    def __init__(self, bot: Any, llm: LlmClient, *, edit_interval: float = 1.0) -> None:
        self.bot = bot
        self.llm = llm
        self.edit_interval = edit_interval
        self.agent = ChatAgent(bot.toolkit, llm, bot.settings.llm, follow_jobs=False,
                               origin={"surface": "discord-chat"})
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def for_bot(cls, bot: Any, **options: Any) -> "DiscordChat | None":
        """The chat agent if ``[llm]`` is set up (and the openai package is there), else None."""
        if not bot.settings.llm.model:
            return None
        try:
            llm = LlmClient.from_settings(bot.settings.llm)
        except LlmUnavailable as exc:
            log.warning("chat agent off: %s", exc)
            return None
        return cls(bot, llm, **options)

    async def aclose(self) -> None:
        await self.llm.aclose()

    # -- entry points -----------------------------------------------------------------------------

    def mentions_me(self, message: discord.Message) -> bool:
        me = self.bot.user
        return me is not None and any(u.id == me.id for u in message.mentions)

    def text_of(self, message: discord.Message) -> str:
        """The message without the bot's mention."""
        me = self.bot.user
        text = message.content
        if me is not None:
            text = text.replace(f"<@{me.id}>", "").replace(f"<@!{me.id}>", "")
        return " ".join(text.split())

    async def on_message(self, message: discord.Message) -> None:
        """A new message: continue the thread's conversation, or start one on a mention."""
        if message.author.bot or (self.bot.user is not None and message.author.id == self.bot.user.id):
            return
        conversation = await self.agent.store.find(f"discord:{message.channel.id}")
        mentioned = self.mentions_me(message)
        if conversation is None and not mentioned:
            return
        if conversation is not None and not (mentioned or self.bot.settings.discord.message_content):
            return
        text = self.text_of(message)
        if not text:
            return
        account = await self.bot.toolkit.account_for_discord(message.author.id, message.guild.id if message.guild
                                                             else None, role_ids(message.author))
        if conversation is not None:
            if conversation.account != account.name:
                await message.reply(NOT_YOURS, allowed_mentions=QUIET)
                return
            why = await self._refusal(place_of_message(message), text)
            if why:
                await message.reply(why, allowed_mentions=QUIET)
                return
            await self.turn(conversation, place_of_message(message), account, text)
            return
        why = await self._refusal(place_of_message(message), text)
        if why:
            await message.reply(why, allowed_mentions=QUIET)
            return
        if message.guild is not None:
            thread = await message.create_thread(name=text[:THREAD_NAME], auto_archive_duration=1440)
            place = place_of_message(message, thread)
        else:
            place = place_of_message(message)
        conversation = await self.agent.store.open(f"discord:{place.channel_id}", account=account.name,
                                                   surface="discord")
        await self.turn(conversation, place, account, text)

    async def ask(self, interaction: discord.Interaction, prompt: str) -> None:
        """``/ask``: every check first (private refusals), then a public reply with a thread on it."""
        place = Place(interaction.guild_id, interaction.channel_id or 0, interaction.channel, interaction.user.id,
                      interaction.app_permissions)
        why = await self._refusal(place, prompt)
        if why:
            await reply_private(interaction, why)
            return
        account = await self.bot.account_for(interaction)
        await interaction.response.send_message(f"<@{interaction.user.id}> asked: {prompt}"[:MAX_CONTENT],
                                                allowed_mentions=QUIET)
        if interaction.guild_id is not None:
            message = await interaction.original_response()
            thread = await message.create_thread(name=prompt[:THREAD_NAME], auto_archive_duration=1440)
            place = Place(interaction.guild_id, thread.id, thread, interaction.user.id, interaction.app_permissions)
        conversation = await self.agent.store.open(f"discord:{place.channel_id}", account=account.name,
                                                   surface="discord")
        await self.turn(conversation, place, account, prompt)

    async def _refusal(self, place: Place, text: str) -> str | None:
        """The server's rules for a user's message to the agent: DMs, allowed channels, banned words
        (in what they wrote, as in a slash command's prompt) and, for a new thread, its permissions."""
        settings = self.bot.settings.discord
        why = await policy.refusal(place, settings, self.bot.records, None,  # type: ignore[arg-type]
                                   {"prompt": text})
        if why:
            return why
        if place.guild_id is not None and not isinstance(place.channel, discord.Thread):
            missing = [label for name, label in THREAD_PERMISSIONS if not getattr(place.app_permissions, name)]
            if missing:
                return policy.permissions_refusal(missing)
        return None

    # -- a turn ---------------------------------------------------------------------------------

    async def turn(self, conversation: Conversation, place: Place, account: Account, text: str) -> None:
        lock = self._locks.setdefault(conversation.key, asyncio.Lock())
        async with lock:
            stream = StreamedMessage(self.bot, place.channel, self.edit_interval)
            await stream.start()
            try:
                await self.agent.turn(conversation, account, text, DiscordTurn(self, place, account, stream))
            except UserError as exc:
                stream.lines.append(f"⚠️ {render.user_error(exc)}")
            except Exception:
                log.exception("chat turn in %s failed", conversation.key)
                stream.lines.append(f"⚠️ {render.INTERNAL_ERROR}")
            await stream.update(force=True)

    async def launch(self, place: Place, account: Account, tool: str, arguments: Mapping[str, Any],
                     estimate: Any) -> Any:
        """A run within ``[llm] confirm_above_usd``: the slash commands' progress and result flow, with
        the bot's own token (there is no interaction to answer)."""
        bot = self.bot
        message = await place.channel.send(f"📨 Starting {render.model_name(estimate.spec)}…", allowed_mentions=QUIET)
        origin = {"surface": "discord", "channel_id": str(place.channel_id), "user_id": str(place.user_id),
                  "guild_id": str(place.guild_id) if place.guild_id else None, "message_id": str(message.id),
                  "original": False, "nsfw_channel": is_nsfw(place.channel)}
        if bot.simulated:
            origin["simulated"] = True
        job = await bot.toolkit.generate(account, tool, arguments, wait=0, allow_local_files=False, origin=origin)
        await bot.state.expect(job.id)
        header = render.Header(cost=render.quote_text(estimate.quote),
                               budget=render.budget_line(await bot.toolkit.quota_status(account)),
                               warnings=bot.toolkit.warnings.pop(job.id, ()), note="Asked for in a chat with the bot")
        bot.deliveries.follow(job, Reply.from_origin(bot, origin), header)
        return job


def ask_command(dms: bool = False) -> app_commands.Command[Any, ..., Any]:
    """``/ask prompt``: start a conversation with the agent in a thread."""

    async def ask(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 1500]) -> None:
        chat = getattr(interaction.client, "chat", None)
        if chat is None:
            await reply_private(interaction, NOT_SET_UP)
            return
        await chat.ask(interaction, prompt)

    command = app_commands.command(name="ask", description="Describe the video or picture you want; "
                                                           "the agent picks a model, prices it and asks you")(ask)
    app_commands.describe(prompt="What you want, e.g. a 6-second clip of a fox in the snow, something cheap")(command)
    app_commands.allowed_contexts(guilds=True, dms=dms, private_channels=False)(command)
    app_commands.allowed_installs(guilds=True, users=False)(command)
    if not dms:
        app_commands.guild_only()(command)
    return command

