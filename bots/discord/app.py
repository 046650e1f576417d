"""The bot process: a ``discord.Client`` around one Toolkit.

Start-up (``setup_hook``, after login and before the gateway connects): register the restart-safe
buttons, create the bot's two tables, sync the slash commands if their payload changed since the
last sync (a hash per application and target in ``discord_meta``; Discord allows 200 command
creates a day per guild, so syncing on every start is a mistake), then resume every delivery a
previous process left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import discord

from agent_tools.config import Settings
from agent_tools.errors import UserError
from agent_tools.toolkit import Account, Toolkit
from agent_tools.webhooks.mount import serve_aiohttp

from .chat import DiscordChat, ask_command
from .commands import CommandTree, install, payload, role_ids
from .delivery import RETRY_DELAYS, Deliveries
from .payloads import payload_hash, validate_payload
from .records import BotRecords
from .state import DELIVERY_LEASE_SECONDS, BotState
from .views import CardButton, JobButton

log = logging.getLogger(__name__)

MISSING_TOKEN = ("No Discord bot token: set DISCORD_TOKEN (or [discord] token in the config file). Create one in the "
                 "Discord Developer Portal → your application → Bot → Reset Token.")


def default_intents(settings: Settings) -> discord.Intents:
    """Guilds for the slash commands; with the chat agent also message events (not privileged:
    messages that mention the bot carry their text), and the privileged Message Content intent only
    if ``[discord] message_content`` is on (then every reply in a chat thread continues it)."""
    intents = discord.Intents(guilds=True)
    if settings.llm.model:
        intents.guild_messages = intents.dm_messages = True
        intents.message_content = settings.discord.message_content
    return intents


class VideoBot(discord.Client):
    def __init__(self, toolkit: Toolkit, *, clock: Callable[[], float] = time.time, progress_interval: float = 5.0,
                 expiry_margin: float = 60.0, check_seconds: float = 2.0,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS, simulated: bool = False,
                 force_sync: bool = False, delivery_lease: float = DELIVERY_LEASE_SECONDS,
                 intents: discord.Intents | None = None, chat_edit_interval: float = 1.0, **options: Any) -> None:
        super().__init__(intents=intents or default_intents(toolkit.settings), **options)
        self.toolkit = toolkit
        self.clock = clock
        self.progress_interval = progress_interval
        """Seconds between progress edits of one job's message (Discord rate-limits edits)."""
        self.expiry_margin = expiry_margin
        """Stop using an interaction's token this many seconds before its 15 minutes end."""
        self.retry_delays = retry_delays
        """Pauses between attempts to post a result after a transient failure."""
        self.check_seconds = check_seconds
        """Checks taking longer than this defer the interaction privately (Discord's limit is 3 s)."""
        self.simulated = simulated
        self.force_sync = force_sync
        self.tz = ZoneInfo(toolkit.settings.quotas.timezone)
        self.tree = CommandTree(self)
        install(self.tree, toolkit.settings.discord)
        self.state = BotState(toolkit.db, clock=clock, lease_seconds=delivery_lease)
        self.records = BotRecords(toolkit.db, clock=clock)
        self.deliveries = Deliveries(self)
        self.chat = DiscordChat.for_bot(self, edit_interval=chat_edit_interval)
        """The chat agent (mentions and ``/ask``), or None without ``[llm]`` settings."""
        if self.chat is not None:
            self.tree.add_command(ask_command(toolkit.settings.discord.allow_dms))
        self._watcher: asyncio.Task[None] | None = None

    @property
    def settings(self) -> Settings:
        return self.toolkit.settings

    async def account_for(self, interaction: discord.Interaction) -> Account:
        return await self.toolkit.account_for_discord(interaction.user.id, interaction.guild_id,
                                                      role_ids(interaction.user))

    # -- start-up ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Everything start-up does that needs no network: buttons and tables."""
        self.add_dynamic_items(JobButton, CardButton)

    async def setup_hook(self) -> None:
        await self.prepare()
        await self.sync_commands(force=self.force_sync)
        resumed = await self.deliveries.resume()
        if resumed:
            log.info("resumed %d Discord job(s) from before the restart: %s", len(resumed), ", ".join(resumed))
        # Another bot process on this database may die: its deliveries are taken over once their
        # claims lapse (checked every half lease).
        self._watcher = asyncio.create_task(self.deliveries.watch(self.state.lease_seconds / 2))

    async def on_message(self, message: discord.Message) -> None:
        if self.chat is None:
            return
        try:
            await self.chat.on_message(message)
        except discord.HTTPException as exc:
            log.warning("could not answer message %s in channel %s: %s", message.id, message.channel.id, exc)

    async def on_ready(self) -> None:
        log.info("logged in as %s (application %s) in %d guild(s)", self.user, self.application_id, len(self.guilds))

    def command_payload(self) -> list[dict[str, Any]]:
        return payload(self.tree)

    @property
    def syncs_commands(self) -> bool:
        """Only the process that runs shard 0 (or an unsharded one) syncs: the others share its commands."""
        shard_ids = getattr(self, "shard_ids", None)
        return shard_ids is None or 0 in shard_ids

    async def sync_commands(self, *, force: bool = False) -> list[str]:
        """Sync to each configured guild (instant) or globally, only where the payload changed."""
        if not self.syncs_commands:
            log.info("not syncing slash commands: shard 0 runs in another process, which syncs them")
            return []
        commands = self.command_payload()
        problems = validate_payload(commands)
        if problems:
            raise UserError("The slash commands break Discord's limits:\n  " + "\n  ".join(problems))
        digest = payload_hash(commands)
        guild_ids = self.settings.discord.guild_ids
        targets: list[discord.Object | None] = [discord.Object(g) for g in guild_ids] or [None]
        synced = []
        for guild in targets:
            where = f"guild {guild.id}" if guild else "global"
            key = f"commands:{self.application_id}:{where}"
            if not force and await self.state.get(key) == digest:
                log.info("slash commands unchanged (%s); not syncing", where)
                continue
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            try:
                await self.tree.sync(guild=guild)
            except discord.Forbidden:
                log.error("Discord refused to register the commands (%s): invite the bot with the scopes "
                          "'bot applications.commands' (and check the guild id).", where)
                continue
            except discord.HTTPException as exc:
                log.error("syncing the slash commands (%s) failed: %s", where, exc)
                continue
            await self.state.put(key, digest)
            synced.append(where)
            log.info("slash commands synced (%s)", where)
        return synced

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.deliveries.aclose()
        if self.chat is not None:
            await self.chat.aclose()
        await super().close()


class ShardedVideoBot(VideoBot, discord.AutoShardedClient):
    """The same bot on several gateway shards (discord.py's ``AutoShardedClient``): with
    ``[discord] shard_ids`` a process runs only those shards, so several processes split the guilds.
    Results are posted through REST, so any process can finish any job."""


def make_bot(toolkit: Toolkit, **options: Any) -> VideoBot:
    """A sharded bot when ``[discord] shard_count`` is set, else a plain one."""
    discord_settings = toolkit.settings.discord
    if discord_settings.shard_count is None:
        return VideoBot(toolkit, **options)
    return ShardedVideoBot(toolkit, shard_count=discord_settings.shard_count, shard_ids=discord_settings.shard_ids,
                           **options)


async def serve(settings: Settings, *, simulate: bool = False, force_sync: bool = False,
                log_to_stderr: bool = False) -> None:
    """Run the bot until it is stopped. ``simulate``: providers are the built-in simulator."""
    from agent_tools.simulator.session import simulated

    token = settings.discord.token
    if token is None or not token.get_secret_value().strip():
        raise UserError(MISSING_TOKEN)
    if log_to_stderr:
        discord.utils.setup_logging()
    async with simulated(settings, simulate) as effective:
        toolkit = await Toolkit.open(effective)
        bot = make_bot(toolkit, simulated=simulate, force_sync=force_sync)
        hooks = effective.webhooks
        receiver = (await serve_aiohttp(toolkit.webhooks, hooks.listen_host, hooks.listen_port)
                    if hooks.public_url else None)  # provider callbacks, behind [webhooks] public_url
        try:
            async with bot:
                await bot.start(token.get_secret_value().strip())
        except discord.LoginFailure:
            raise UserError("Discord refused the bot token (401 Unauthorized): copy it again from the Developer "
                            "Portal → Bot → Reset Token, into DISCORD_TOKEN.") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UserError(f"Cannot reach Discord ({exc}). Check this machine's internet access, proxy or "
                            "firewall, then start the bot again.") from None
        finally:
            if receiver is not None:
                await receiver.cleanup()
            await toolkit.close()
