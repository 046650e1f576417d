"""Who may run what, where: the checks a generation passes before the bot answers anyone.

Each returns a sentence for the user (the refusal, and what to do) or None. They run before the
interaction's first response, so a refusal is an ephemeral message from its first byte and the
channel never sees that someone asked. The operator's rules come from ``[discord]`` (DMs, banned
words); a server's from ``/admin`` (allowed channels and models, more banned words).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import discord

from agent_tools.config import DiscordSettings

from .records import BotRecords

NEEDED = (("view_channel", "View Channel"), ("send_messages", "Send Messages"), ("embed_links", "Embed Links"),
          ("attach_files", "Attach Files"))
"""What the bot needs in a channel to post progress and results, with Discord's names for them."""
NEEDED_IN_THREADS = (("view_channel", "View Channel"), ("send_messages_in_threads", "Send Messages in Threads"),
                     ("embed_links", "Embed Links"), ("attach_files", "Attach Files"))

DMS_OFF = ("The bot does not take requests in direct messages on this installation; run the command in a "
           "server channel where the bot is.")


def missing_permissions(interaction: discord.Interaction) -> list[str]:
    """Names of the channel permissions the bot lacks here (``app_permissions``; none in a DM)."""
    if interaction.guild_id is None:
        return []
    channel = interaction.channel
    in_thread = isinstance(channel, discord.Thread) or getattr(channel, "type", None) in (
        discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)
    granted = interaction.app_permissions
    return [label for name, label in (NEEDED_IN_THREADS if in_thread else NEEDED) if not getattr(granted, name)]


def permissions_refusal(missing: list[str]) -> str:
    names = " and ".join(", ".join(missing).rsplit(", ", 1)) if len(missing) > 1 else missing[0]
    noun = "permission" if len(missing) == 1 else "permissions"
    return (f"I cannot post results in this channel: I am missing the {names} {noun} here. Nothing was charged. "
            f"Ask a server admin to give the bot {names} in this channel (Edit Channel → Permissions), or run "
            "the command in another channel.")


def banned_word(texts: Iterable[str], words: Iterable[str]) -> str | None:
    """The first banned word (whole word, any case) found in ``texts``."""
    joined = "\n".join(texts).lower()
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", joined):
            return word
    return None


def prompt_texts(arguments: Mapping[str, Any]) -> list[str]:
    """The free text a person typed into a generation: every ``…prompt`` field."""
    return [v for k, v in arguments.items() if "prompt" in k and isinstance(v, str)]


def channel_ids(interaction: discord.Interaction) -> set[str]:
    """The channel and, for a thread, its parent: a thread of an allowed channel is allowed."""
    ids = {str(interaction.channel_id)}
    parent = getattr(interaction.channel, "parent_id", None)
    if parent:
        ids.add(str(parent))
    return ids


async def refusal(interaction: discord.Interaction, settings: DiscordSettings, records: BotRecords, tool: str | None,
                  arguments: Mapping[str, Any]) -> str | None:
    """Why this generation may not run here, or None. Cheapest checks first. ``tool`` None: no model
    is chosen yet (a chat conversation starting), so the allowed-models rule waits for one."""
    if interaction.guild_id is None:
        if not settings.allow_dms:
            return DMS_OFF
    else:
        channels = await records.rules(interaction.guild_id, "channel")
        if channels and not channel_ids(interaction) & set(channels):
            listed = ", ".join(f"<#{c}>" for c in channels[:10])
            return f"This server runs generations only in {listed}; run the command there. Nothing was charged."
        models = await records.rules(interaction.guild_id, "model")
        if models and tool is not None and tool not in models:
            return (f"This server allows only these models: {', '.join(models[:15])}. `/models` lists them; "
                    "nothing was charged.")
        missing = missing_permissions(interaction)
        if missing:
            return permissions_refusal(missing)
    words = list(settings.banned_words)
    if interaction.guild_id is not None:
        words += await records.rules(interaction.guild_id, "word")
    found = banned_word(prompt_texts(arguments), words)
    if found:
        return (f"Your prompt contains a word this server does not allow (\"{found}\"). Rephrase it and run the "
                "command again; nothing was charged.")
    return None
