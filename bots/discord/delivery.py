"""A generation from a slash command or a button to the posted result, across the 15-minute rule
and across restarts.

The path: every check first — the server's rules and the bot's channel permissions (``policy``),
validation, a read-only quota check (``Toolkit.preflight``) — so a refusal is an ephemeral first
response; if the checks take longer than ``check_seconds`` the bot defers privately to keep
Discord's 3 seconds, and a refusal stays private. Then a price card if the run is expensive
(``cards``), else the public progress message → submit through the Toolkit → that message edited at
most once per ``progress_interval`` → the result posted as a new message that mentions the user,
with the file attached when it fits ``interaction.filesize_limit`` and a link otherwise.

An interaction's token lasts 15 minutes. ``Reply`` uses it while it lives (with a safety margin)
and then the bot's own token: the progress message is edited through the channel endpoint and
the result is a plain channel message. A job's ``origin`` stores the channel, message, user and
limits, so after a restart ``Deliveries.resume`` can finish what the last process started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import discord

from agent_tools.catalog import CATALOG, ModelSpec, OutputKind, get
from agent_tools.errors import InvalidArguments, UserError
from agent_tools.followups import animate_arguments, reroll_arguments
from agent_tools.jobs import UNFINISHED, Job, JobNotFound, JobState
from agent_tools.toolkit import Account, Estimate, Toolkit

from . import policy, render, views
from .cards import Cards
from .options import ToolPlan, collect_arguments
from .records import BotRecords
from .state import BotState

log = logging.getLogger(__name__)

EXPIRED_TOKEN_CODES = {50027, 10015}  # invalid webhook token, unknown webhook
USER_DEFAULT_FIELDS = ("resolution", "aspect_ratio")
"""Options a user can preset with ``/settings``."""
RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0, 900.0)
"""Seconds between attempts to post a result after a transient failure (a 5xx, a dropped
connection); after the last one the next start tries again. 403 and 404 are final at once."""
TOO_LARGE_CODES = {40005}
MAX_FILES = 10
MAX_REQUEST_BYTES = 25 * 2**20
RESUME_EVERY = 12
"""While a job waits to be sent, ask the Toolkit to resume stale jobs every this many intervals."""


class BotHost(Protocol):
    """What deliveries need of the bot (``app.VideoBot``), named here so this module does not import
    the app that imports it."""

    toolkit: Toolkit
    state: BotState
    records: BotRecords
    clock: Callable[[], float]
    progress_interval: float
    expiry_margin: float
    check_seconds: float
    retry_delays: tuple[float, ...]
    simulated: bool
    http: Any

    async def account_for(self, interaction: discord.Interaction) -> Account: ...

    def get_guild(self, guild_id: int, /) -> discord.Guild | None: ...

    def get_partial_messageable(self, id: int, *, guild_id: int | None = None) -> discord.PartialMessageable: ...


def _expired(exc: discord.HTTPException) -> bool:
    return exc.code in EXPIRED_TOKEN_CODES or exc.status == 401


class Reply:
    """Where one job's messages go: the interaction's webhook while its token lives, then the bot's token."""

    def __init__(self, bot: BotHost, *, channel_id: int, guild_id: int | None, user_id: int, message_id: int,
                 expires_at: float | None = None, filesize_limit: int | None = None,
                 interaction: discord.Interaction | None = None, original: bool = True) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.user_id = user_id
        self.message_id = message_id
        self.expires_at = expires_at
        self.filesize_limit = filesize_limit
        self.interaction = interaction
        self.job_id: str | None = None
        self.original = original
        """Whether the progress message is the interaction's own response (else one of its followups)."""

    @classmethod
    def from_origin(cls, bot: BotHost, origin: Mapping[str, Any],
                    interaction: discord.Interaction | None = None) -> "Reply":
        """The job's channel and message; without the interaction (after a restart) the bot's token only."""
        guild = origin.get("guild_id")
        return cls(bot, channel_id=int(origin["channel_id"]), guild_id=int(guild) if guild else None,
                   user_id=int(origin["user_id"]), message_id=int(origin["message_id"]),
                   expires_at=origin.get("expires_at"), filesize_limit=origin.get("filesize_limit"),
                   interaction=interaction, original=origin.get("original", True))

    @property
    def live(self) -> bool:
        """Whether the interaction token may still be used (``expiry_margin`` before its 15 minutes end)."""
        return (self.interaction is not None and self.expires_at is not None
                and self.bot.clock() < self.expires_at - self.bot.expiry_margin)

    def upload_limit(self) -> int:
        """Bytes one uploaded file may have: the interaction's limit, or the guild's for the bot's own posts."""
        if self.live and self.interaction is not None:
            return self.interaction.filesize_limit
        guild = self.bot.get_guild(self.guild_id) if self.guild_id else None
        if guild is not None:
            return guild.filesize_limit
        return min(self.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
                   discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)

    def _channel(self) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(self.channel_id, guild_id=self.guild_id)

    def _mention(self, content: str) -> dict[str, Any]:
        return {"content": content,
                "allowed_mentions": discord.AllowedMentions(everyone=False, roles=False,
                                                            users=[discord.Object(self.user_id)])}

    async def edit(self, **fields: Any) -> None:
        """Edit the progress message."""
        if self.live and self.interaction is not None:
            try:
                if self.original:
                    await self.interaction.edit_original_response(**fields)
                else:
                    await self.interaction.followup.edit_message(self.message_id, **fields)
                return
            except discord.HTTPException as exc:
                if not _expired(exc):
                    raise
                self.interaction = None
        await self._channel().get_partial_message(self.message_id).edit(**fields)

    async def post(self, content: str, **fields: Any) -> discord.Message | None:
        """A new public message that mentions (and so notifies) the user."""
        if self.live and self.interaction is not None:
            try:
                return await self.interaction.followup.send(**self._mention(content), wait=True, **fields)
            except discord.HTTPException as exc:
                if not _expired(exc):
                    raise
                self.interaction = None
        return await self._channel().send(**self._mention(content), **fields)

    async def private(self, content: str) -> None:
        """Only for the user while the token lives; after that a channel message that mentions them."""
        if self.live and self.interaction is not None:
            try:
                await self.interaction.followup.send(content, ephemeral=True)
                return
            except discord.HTTPException as exc:
                if not _expired(exc):
                    raise
                self.interaction = None
        await self._channel().send(**self._mention(f"<@{self.user_id}> {content}"))


async def reply_private(interaction: discord.Interaction, content: str) -> None:
    """An ephemeral answer, as the first response or as a followup."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True)
    else:
        await interaction.response.send_message(content, ephemeral=True)


class Deliveries:
    """Starts generations for interactions and follows every job the bot must report on."""

    def __init__(self, bot: BotHost) -> None:
        self.bot = bot
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cards = Cards(self)
        self._keeper: asyncio.Task[None] | None = None

    @property
    def toolkit(self) -> Toolkit:
        return self.bot.toolkit

    # -- starting ----------------------------------------------------------------------------

    async def run_command(self, interaction: discord.Interaction, plan: ToolPlan, values: Mapping[str, Any]) -> None:
        """A model's slash command: Discord values → arguments → a job."""
        arguments, problems = collect_arguments(plan, values)
        if problems:
            fields = {field for field, _ in problems}
            texts = [text for _, text in problems]
            try:
                self.toolkit.estimate(plan.spec.tool, arguments)
            except InvalidArguments as exc:
                texts += [p for p in exc.problems if p.split(":", 1)[0].split(".")[0] not in fields]
            raise InvalidArguments(plan.spec.tool, texts)
        defaults = await self.bot.records.user_settings(interaction.user.id)
        await self.start(interaction, plan.spec.tool, with_user_defaults(plan.spec, arguments, defaults))

    async def start(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any], *,
                    note: str | None = None) -> Job | None:
        """Check, then (for an expensive run) ask first, else launch."""
        arguments = self.operator_arguments(tool, arguments)
        estimate = await self.checked(interaction, tool, arguments)
        if await self.cards.wanted(interaction, estimate):
            await self.cards.ask(interaction, tool, arguments, estimate, note)
            return None
        return await self.launch(interaction, tool, arguments, estimate, note=note)

    def operator_arguments(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The provider safety switches are the operator's (``[discord] provider_switches``): whatever
        arrives (a re-roll of an old job, a crafted request), they are set here, or left to the model."""
        switches = self.toolkit.settings.discord.provider_switches
        fixed = {k: v for k, v in arguments.items() if k not in get(tool).safety_fields()}
        fixed.update({k: switches[k] for k in get(tool).safety_fields() if k in switches})
        return fixed

    async def checked(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any]) -> Estimate:
        """Every check before the first response; ``UserError`` (shown privately) if one refuses.

        The checks read the database; if they have not answered within ``check_seconds`` the bot
        defers ephemerally (Discord wants an answer in 3 s), so a refusal is still private."""
        task = asyncio.ensure_future(self._preflight(interaction, tool, arguments))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.bot.check_seconds)
        except asyncio.TimeoutError:
            if not interaction.response.is_done():
                await interaction.response.defer(ephemeral=True, thinking=True)
            return await task

    async def _preflight(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any]) -> Estimate:
        self.toolkit.estimate(tool, arguments)  # a bad option is named before any rule is read
        why = await policy.refusal(interaction, self.toolkit.settings.discord, self.bot.records, tool, arguments)
        if why:
            raise UserError(why)
        account = await self.bot.account_for(interaction)
        return await self.toolkit.preflight(account, tool, arguments, allow_local_files=False)

    async def launch(self, interaction: discord.Interaction, tool: str, arguments: Mapping[str, Any],
                     estimate: Estimate, *, note: str | None = None, idempotency_key: str | None = None
                     ) -> Job | None:
        """The public progress message, the job, and its follower. ``interaction`` may already have
        been answered (a private defer, a price card's Run): then progress is a public followup."""
        original = not interaction.response.is_done()
        if original:
            await interaction.response.defer(thinking=True)
            message = await interaction.original_response()
        else:
            if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
                await interaction.edit_original_response(content="Checks passed; the job is starting below.")
            message = await interaction.followup.send(f"📨 Starting {render.model_name(estimate.spec)}…", wait=True)
        account = await self.bot.account_for(interaction)
        origin = {"surface": "discord", "channel_id": str(interaction.channel_id), "user_id": str(interaction.user.id),
                  "guild_id": str(interaction.guild_id) if interaction.guild_id else None,
                  "message_id": str(message.id), "expires_at": interaction.expires_at.timestamp(),
                  "filesize_limit": interaction.filesize_limit, "nsfw_channel": channel_is_nsfw(interaction)}
        if not original:
            origin["original"] = False
        if self.bot.simulated:
            origin["simulated"] = True
        try:
            job = await self.toolkit.generate(account, tool, arguments, wait=0, allow_local_files=False,
                                              idempotency_key=idempotency_key or f"discord-{interaction.id}",
                                              origin=origin)
        except UserError as exc:
            await self._withdraw(interaction, render.user_error(exc), original, message)
            return None
        except Exception:
            await self._withdraw(interaction, render.INTERNAL_ERROR, original, message)
            raise
        await self.bot.state.expect(job.id)  # a new job: this process claims its delivery
        budget = render.budget_line(await self.toolkit.quota_status(account))
        header = render.Header(cost=render.quote_text(estimate.quote), budget=budget,
                               warnings=self.toolkit.warnings.pop(job.id, ()), note=note)
        self.follow(job, Reply.from_origin(self.bot, origin, interaction), header)
        return job

    async def _withdraw(self, interaction: discord.Interaction, text: str, original: bool = True,
                        message: discord.Message | None = None) -> None:
        """Replace the public "thinking…" (or "Starting…") with an answer only the user sees. Rare: the
        checks passed a moment ago, and something changed before the reservation."""
        try:
            if original or message is None:
                await interaction.delete_original_response()
            else:
                await interaction.followup.delete_message(message.id)
        except discord.HTTPException:
            log.warning("could not delete the deferred response of interaction %s", interaction.id)
        await interaction.followup.send(text, ephemeral=True)

    # -- following ---------------------------------------------------------------------------

    def follow(self, job: Job, reply: Reply, header: render.Header) -> asyncio.Task[None]:
        """Follow a job whose delivery this process has claimed, until its outcome is posted."""
        task = self.tasks.get(job.id)
        if task is None or task.done():
            task = asyncio.create_task(self._follow(job, reply, header), name=f"discord-follow-{job.id}")
            self.tasks[job.id] = task
            task.add_done_callback(lambda t, j=job.id: self.tasks.pop(j, None) if self.tasks.get(j) is t else None)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_claims(), name="discord-delivery-claims")
        return task

    async def _keep_claims(self) -> None:
        """Renew the claims of the jobs being followed, a third of a lease apart, while there are any.
        A follow that ended without posting (an error) is no longer renewed: its claim lapses and the
        next ``resume`` here or in another process tries again."""
        state = self.bot.state
        while self.tasks:
            await asyncio.sleep(state.lease_seconds / 3)
            try:
                await state.renew(list(self.tasks))
            except Exception:
                log.exception("renewing the delivery claims failed; they may lapse and be taken over")

    async def _follow(self, job: Job, reply: Reply, header: render.Header) -> None:
        interval = self.bot.progress_interval
        account = Account(job.account)
        loop = asyncio.get_running_loop()
        shown: dict[str, Any] | None = None
        ticks = 0
        try:
            while True:
                embed = render.job_embed(job, header, now=self.bot.clock(), simulated=self.bot.simulated)
                if job.finished:
                    break
                if embed.to_dict() != shown:
                    await self._edit_progress(reply, embed=embed, view=views.progress_view(job.id))
                    shown = embed.to_dict()
                started = loop.time()
                job = await self.toolkit.wait_for_job(account, job.id, timeout=interval)
                ticks += 1
                if not job.finished:
                    if job.state not in (JobState.QUEUED, JobState.RUNNING, JobState.FETCHING) \
                            and ticks % RESUME_EVERY == 0:
                        await self.toolkit.resume()  # a job stuck in "submitting" by a dead process
                    await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
            await self.deliver_with_retries(job, reply, embed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following job %s failed; it will be picked up again on the next start", job.id)

    async def deliver_with_retries(self, job: Job, reply: Reply, embed: discord.Embed) -> None:
        """Post the outcome; retry transient failures with growing pauses, without a restart. A 403
        or 404 (the channel is gone, or the bot may not post there) will not get better: it is
        final, recorded on the job, and the user gets the result privately (``undeliverable``)."""
        delays = self.bot.retry_delays
        for attempt in range(len(delays) + 1):
            try:
                await self.deliver(job, reply, embed)
                return
            except (discord.Forbidden, discord.NotFound) as exc:
                await self.undeliverable(job, reply, exc)
                return
            except (discord.HTTPException, aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                if attempt == len(delays):
                    log.error("job %s: posting the result failed %d times (%s); the next start tries again",
                              job.id, attempt + 1, exc)
                    return
                log.warning("job %s: posting the result failed (%s); trying again in %.0f s", job.id, exc,
                            delays[attempt])
                await asyncio.sleep(delays[attempt])

    async def undeliverable(self, job: Job, reply: Reply, exc: discord.HTTPException) -> None:
        """The result cannot be posted where it was asked for: say so on the job, send it to the
        user by DM, or (DMs closed) keep it for their next interaction; never try the channel again."""
        reason = render.delivery_problem(exc, reply.channel_id)
        text = render.undelivered_text(job, reason)
        how = await self.tell_privately(reply, text, use_interaction=False)
        await self.toolkit.record_delivery(job.id, "failed", f"{reason}; {render.TOLD[how]}")
        await self.bot.state.delivered(job.id)
        log.warning("job %s: %s; the user was told %s", job.id, reason, render.TOLD[how])

    async def tell_privately(self, reply: Reply, text: str, *, use_interaction: bool = True) -> str:
        """Only for the user: ephemerally while the interaction lives, else by DM, else as a notice
        shown with their next interaction. Returns which ("ephemeral", "dm", "notice")."""
        if use_interaction and reply.live and reply.interaction is not None:
            try:
                await reply.interaction.followup.send(text, ephemeral=True)
                return "ephemeral"
            except discord.HTTPException as exc:
                log.info("could not answer privately through the interaction: %s", exc)
        try:
            channel = await self.bot.http.start_private_message(reply.user_id)
            await self.bot.get_partial_messageable(int(channel["id"])).send(
                text, allowed_mentions=discord.AllowedMentions.none())
            return "dm"
        except discord.HTTPException as exc:
            log.info("could not DM user %s (%s); keeping a notice for their next interaction", reply.user_id, exc)
        await self.bot.records.add_notice(reply.user_id, reply.job_id or "", text)
        return "notice"

    async def show_notices(self, interaction: discord.Interaction) -> None:
        """What could not reach the user before (DMs closed), after their next command, privately."""
        if not interaction.response.is_done():
            return
        notices = await self.bot.records.take_notices(interaction.user.id)
        if notices:
            try:
                await interaction.followup.send(render.shorten_lines(notices), ephemeral=True)
            except discord.HTTPException as exc:
                log.warning("could not show notices to user %s: %s", interaction.user.id, exc)

    async def _edit_progress(self, reply: Reply, **fields: Any) -> None:
        """A progress edit that fails (message deleted, a hiccup) must not stop the job's delivery."""
        if not reply.original:
            fields.setdefault("content", None)  # the followup's "Starting…" gives way to the embed
        try:
            await reply.edit(**fields)
        except discord.HTTPException as exc:
            log.warning("could not edit the progress message %s: %s", reply.message_id, exc)

    async def deliver(self, job: Job, reply: Reply, embed: discord.Embed) -> None:
        """Show the final state in the progress message, post the outcome, and remember that it was posted."""
        if not await self.bot.state.claim(job.id):
            log.info("job %s: another bot process holds its delivery now; it posts the result", job.id)
            return
        reply.job_id = job.id
        await self._edit_progress(reply, embed=embed, view=None)
        message = None
        if job.state is JobState.SUCCEEDED:
            message = await self._post_result(job, reply)
        elif job.state in (JobState.FAILED, JobState.UNKNOWN):
            await reply.private(render.failure_text(job))
        await self.bot.state.delivered(job.id, message.id if message is not None else None)

    async def _post_result(self, job: Job, reply: Reply) -> discord.Message | None:
        nsfw_channel = bool(job.origin.get("nsfw_channel"))
        withheld = self.withheld(job, nsfw_channel)
        if withheld:
            links = [render.link_line(i, len(job.outputs), job.outputs[i], 0) for i in withheld]
            how = await self.tell_privately(reply, render.withheld_private(job, links))
            await self.toolkit.record_delivery(job.id, "withheld", f"{len(withheld)} output(s) flagged NSFW by the "
                                                                   f"provider; {render.TOLD[how]}")
        content, files, view = self.result_message(job, reply.user_id, reply.upload_limit(), withheld)
        try:
            return await reply.post(content, files=files, view=view) if files else await reply.post(content, view=view)
        except discord.HTTPException as exc:
            if not (exc.status == 413 or exc.code in TOO_LARGE_CODES):
                raise
            content, _, view = self.result_message(job, reply.user_id, 0, withheld)
            return await reply.post(content, view=view)
        finally:
            for file in files:
                file.close()

    def withheld(self, job: Job, nsfw_channel: bool) -> list[int]:
        """Outputs not to post here: flagged NSFW, ``[discord] nsfw = "withhold"``, not an age-restricted channel."""
        if self.toolkit.settings.discord.nsfw != "withhold" or nsfw_channel:
            return []
        return [i for i, output in enumerate(job.outputs) if output.get("nsfw")]

    def result_message(self, job: Job, user_id: int, limit: int, withheld: list[int]
                       ) -> tuple[str, list[discord.File], discord.ui.View]:
        """The result post: files that fit ``limit`` (as spoilers when flagged NSFW), links for the rest."""
        spoiler_mode = self.toolkit.settings.discord.nsfw == "spoiler"
        uploads, links, total = [], [], 0
        for index, output in enumerate(job.outputs):
            if index in withheld:
                continue
            spoiler = spoiler_mode and bool(output.get("nsfw"))
            path = output.get("path")
            size = output.get("size") or 0
            fits = (path and Path(path).is_file() and size <= limit and len(uploads) < MAX_FILES
                    and total + size <= MAX_REQUEST_BYTES)
            if fits:
                uploads.append((output, spoiler))
                total += size
            else:
                links.append(render.link_line(index, len(job.outputs), output, limit, spoiler=spoiler))
        notes = render.nsfw_notes(job, withheld, spoiler_mode)
        content = render.result_content(job, user_id, [*notes, *links], now=self.bot.clock())
        files = [discord.File(o["path"], filename=Path(o["path"]).name.split("-", 1)[-1], spoiler=spoiler)
                 for o, spoiler in uploads]
        return content, files, views.result_view(job, self.animate_label(job))

    # -- buttons -----------------------------------------------------------------------------

    def animate_label(self, job: Job) -> str | None:
        """``Animate (Hailuo 02, $0.27)`` on image results, else None."""
        spec = CATALOG.get(job.tool)
        if spec is None or spec.output.kind is not OutputKind.IMAGES:
            return None
        animate = get(views.ANIMATE_TOOL)
        quote = animate.default_quote(self.toolkit.settings.price_overrides(animate.tool))
        return f"Animate ({render.model_name(animate)}, {quote.usd})"

    async def on_button(self, interaction: discord.Interaction, action: str, job: Job, account: Account,
                        index: int | None) -> None:
        """A Cancel, Re-roll or Animate click by someone ``JobButton`` already allowed to touch the job."""
        await self.guarded(interaction, f"the {action} button of job {job.id}",
                           self._on_button(interaction, action, job, account, index))

    async def _on_button(self, interaction: discord.Interaction, action: str, job: Job, account: Account,
                         index: int | None) -> None:
        if action == "cancel":
            await interaction.response.defer(ephemeral=True, thinking=True)
            _, message = await self.toolkit.cancel_job(account, job.id)
            await interaction.followup.send(message, ephemeral=True)
        elif action == "reroll":
            await self.start(interaction, job.tool, reroll_arguments(job),
                             note=f"Re-roll of job {job.id} with a new seed")
        elif action == "animate":
            await self._animate(interaction, job, index or 0)
        elif action == "edit":
            prompt = get(job.tool).schema().get("properties", {}).get("prompt", {})
            await interaction.response.send_modal(views.EditPrompt(job, prompt.get("maxLength")))
        elif action == "delete":
            await interaction.response.send_message(
                f"Deleted. The job stays on record: `/show {job.id}` posts it again.", ephemeral=True)
            if interaction.message is not None:
                await interaction.message.delete()  # the bot's own message: no Manage Messages needed

    async def run_edited(self, interaction: discord.Interaction, job: Job, prompt: str) -> None:
        """Edit prompt's submit: the job's settings (and seed) with the new prompt."""
        arguments = {k: v for k, v in job.params.items() if v != "**********"}
        arguments["prompt"] = prompt
        await self.start(interaction, job.tool, arguments, note=f"Edited prompt of job {job.id}")

    async def guarded(self, interaction: discord.Interaction, what: str, work: Awaitable[Any]) -> None:
        """Run a button's work; a refusal or a crash is answered privately, as commands are."""
        try:
            await work
        except UserError as exc:
            await reply_private(interaction, render.user_error(exc))
        except Exception:
            log.exception("%s failed", what)
            await reply_private(interaction, render.INTERNAL_ERROR)

    async def _animate(self, interaction: discord.Interaction, job: Job, position: int) -> None:
        """Image-to-video from one image of a result, preferring the copy Discord serves for that message."""
        attachments = interaction.message.attachments if interaction.message else []
        url = (attachments[position].url if position < len(attachments)
               else (job.outputs[position]["url"] if position < len(job.outputs) else None))
        if not url:
            await reply_private(interaction, "That image is no longer available to animate.")
            return
        chosen = (await self.bot.records.user_settings(interaction.user.id)).get("animate_model")
        animate = get(chosen if chosen in CATALOG else views.ANIMATE_TOOL)
        why = "your choice in `/settings`" if chosen in CATALOG else "the bot's default image-to-video model"
        await self.start(interaction, animate.tool, animate_arguments(job, url, animate.tool),
                         note=f"Animating image {position + 1} of job {job.id} with {animate.title} "
                              f"({why}; `/image-to-video` offers the others)")

    # -- /show ---------------------------------------------------------------------------------

    async def show(self, interaction: discord.Interaction, job: Job) -> None:
        """Post one of the user's results again, here (after the same checks as a new run)."""
        if job.state is not JobState.SUCCEEDED:
            raise UserError(f"Job `{job.id}` {job.state.value}; only a finished result can be shown again.")
        why = await policy.refusal(interaction, self.toolkit.settings.discord, self.bot.records, job.tool, {})
        if why:
            raise UserError(why)
        await interaction.response.defer(thinking=True)
        withheld = self.withheld(job, channel_is_nsfw(interaction))
        if withheld:
            links = [render.link_line(i, len(job.outputs), job.outputs[i], 0) for i in withheld]
            await interaction.followup.send(render.withheld_private(job, links), ephemeral=True)
        content, files, view = self.result_message(job, interaction.user.id, interaction.filesize_limit, withheld)
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[interaction.user])
        try:
            await interaction.edit_original_response(content=content, attachments=files, view=view,
                                                     allowed_mentions=mentions)
        finally:
            for file in files:
                file.close()

    # -- restarts ----------------------------------------------------------------------------

    async def resume(self) -> list[str]:
        """Follow or post every Discord job whose outcome was not posted yet and whose delivery no
        live process holds (claiming each: of several bot processes exactly one gets it); returns
        their ids. Run at start-up and then every ``watch`` interval."""
        pending = await self.bot.state.pending()
        known = await self.bot.state.known()
        # A Discord job with no delivery row: ``launch`` records its claim right after creating it,
        # so only one older than a claim's lease was started by a process that died in between. A
        # younger one is being launched by a live process, which keeps it (and posts through its
        # interaction); adopting it here would steal it between ``generate`` and ``expect``.
        orphaned_before = self.bot.clock() - self.bot.state.lease_seconds
        for job in await self.toolkit.engine.list(states=UNFINISHED, limit=10_000):
            if job.origin.get("surface") == "discord" and job.id not in known and job.created_at < orphaned_before:
                pending.append(job.id)
        resumed = []
        for job_id in pending:
            if job_id in self.tasks and not self.tasks[job_id].done():
                continue  # followed here already
            if job_id in known:
                if not await self.bot.state.claim(job_id):
                    continue  # another live process took it first
            elif not await self.bot.state.expect(job_id):
                continue
            try:
                job = await self.toolkit.engine.get(job_id)
            except JobNotFound:
                await self.bot.state.delivered(job_id)
                continue
            if not {"channel_id", "user_id", "message_id"} <= set(job.origin):
                await self.bot.state.delivered(job_id)
                continue
            reply = Reply.from_origin(self.bot, job.origin)
            self.follow(job, reply, render.resumed_header(job))
            resumed.append(job_id)
        return resumed

    async def watch(self, interval: float) -> None:
        """Pick up, every ``interval`` seconds, deliveries whose process died (their claim lapsed)."""
        while True:
            await asyncio.sleep(interval)
            try:
                resumed = await self.resume()
            except Exception:
                log.exception("looking for undelivered jobs failed; trying again in %.0f s", interval)
                continue
            if resumed:
                log.info("took over %d Discord delivery(ies) from a stopped process: %s", len(resumed),
                         ", ".join(resumed))

    async def aclose(self) -> None:
        """Stop following (the jobs go on; the next start resumes them)."""
        tasks = list(self.tasks.values()) + ([self._keeper] if self._keeper else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.bot.state.release()  # a clean stop hands its deliveries to the next process at once
        except Exception:
            log.warning("could not hand over this process's deliveries; they are taken once their claims lapse")


def with_user_defaults(spec: ModelSpec, arguments: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The user's ``/settings`` (resolution, aspect ratio) where they left an option out and the
    model offers that value; anything they gave, and anything the model does not take, wins."""
    merged = dict(arguments)
    props = spec.schema().get("properties", {})
    for name in USER_DEFAULT_FIELDS:
        value = defaults.get(name)
        if value is None or name in merged or name not in props:
            continue
        if value in [str(v) for v in props[name].get("enum", ())]:
            merged[name] = next(v for v in props[name]["enum"] if str(v) == value)
    return merged


def channel_is_nsfw(interaction: discord.Interaction) -> bool:
    """Whether the channel is age-restricted (a thread inherits its parent's flag)."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread):
        channel = channel.parent
    return bool(getattr(channel, "nsfw", False))
