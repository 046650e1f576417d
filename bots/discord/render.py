"""Every message and embed the bot shows: plain functions from Toolkit values to text.

Nothing here sends anything or touches the Toolkit, so the wording is easy to read and to test.
Discord's limits that matter here: 2,000 characters of content, embed fields of 1,024, 6,000 per
embed in total.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import discord

from agent_tools.catalog import CATALOG, Category, ModelSpec, OutputKind, Quote
from agent_tools.config import Settings
from agent_tools.errors import InvalidArguments, UserError
from agent_tools.jobs import Job, JobState
from agent_tools.ledger import Limits, LimitStatus, QuotaExceeded, SpendRow, resets_phrase
from agent_tools.media import format_size
from agent_tools.money import format_usd
from agent_tools.toolkit import Estimate

from .options import shorten
from .records import Card

MAX_CONTENT = 2000
MAX_FIELD = 1024

STATE_TEXT = {
    JobState.PENDING: "📨 Sending to the provider",
    JobState.SUBMITTING: "📨 Sending to the provider",
    JobState.QUEUED: "⏳ Queued",
    JobState.RUNNING: "🎬 Generating",
    JobState.FETCHING: "📥 Fetching the result",
    JobState.SUCCEEDED: "✅ Done",
    JobState.FAILED: "❌ Failed",
    JobState.CANCELLED: "🚫 Cancelled",
    JobState.UNKNOWN: "⚠️ Outcome unknown",
}
COLORS = {
    JobState.SUCCEEDED: discord.Colour.green(),
    JobState.FAILED: discord.Colour.red(),
    JobState.CANCELLED: discord.Colour.light_grey(),
    JobState.UNKNOWN: discord.Colour.orange(),
}
RUNNING_COLOR = discord.Colour.blurple()

ADVICE = {
    "content_policy": "The provider's safety filter refused it. Rephrase the prompt (or use another image) and "
                      "run the command again.",
    "invalid_input": "The provider refused these settings. Check the option descriptions (or `/models`) and run "
                     "the command again.",
    "media_download_failed": "The provider could not fetch your image. Attach it again, or give a public https:// "
                             "link that opens without logging in.",
    "authentication": "The bot's provider key was refused: tell the bot's operator. Nothing to change on your side.",
    "out_of_balance": "The operator's provider account is out of credit: tell the bot's operator.",
    "rate_limited": "The provider is busy. Try again in a minute (Re-roll reuses your settings).",
    "transient": "The provider had a temporary problem. Try again (Re-roll reuses your settings).",
}
DEFAULT_ADVICE = "Try again; if it keeps failing, tell the bot's operator the job id."
INTERNAL_ERROR = ("Something went wrong inside the bot; nothing was charged for this request. Try again, and if it "
                  "keeps happening tell the bot's operator.")
SCOPE_LABEL = {"account": "You", "guild": "This server", "global": "Everyone (operator's cap)"}
WINDOW = {"daily": "today", "monthly": "this month"}


@dataclass(frozen=True)
class Header:
    """What the progress message shows besides the job itself: price, budget, warnings, a note."""

    cost: str
    budget: str | None = None
    warnings: tuple[str, ...] = ()
    note: str | None = None


def clock_text(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def ago(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 129600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def model_name(spec: ModelSpec) -> str:
    """``Sora 2`` from ``Sora 2 — text to video (fal)``."""
    return spec.title.split(" — ")[0]


def kind_noun(job: Job) -> str:
    spec = CATALOG.get(job.tool)
    if spec is not None and spec.output.kind is OutputKind.IMAGES:
        return "image" if len(job.outputs) == 1 else "images"
    return "video"


def quote_text(quote: Quote) -> str:
    """``$0.40`` and, below it, the arithmetic (``10 s / 5 s × $0.20 (720p) = $0.40``)."""
    return f"{quote.usd} reserved\n{shorten(quote.formula, 200)}"


# -- progress --------------------------------------------------------------------------------

def status_line(job: Job) -> str:
    text = STATE_TEXT[job.state]
    if job.state is JobState.QUEUED and job.queue_position is not None:
        text += f" — position {job.queue_position + 1} in the provider's line"
    elif job.state is JobState.RUNNING and job.logs:
        text += f" — {shorten(job.logs[-1], 120)}"
    return text


def cost_status(job: Job) -> str:
    if job.state is JobState.SUCCEEDED:
        return f"{format_usd(job.actual_micros if job.actual_micros is not None else job.estimate_micros)} charged"
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        return "nothing charged"
    if job.state is JobState.UNKNOWN:
        return f"{format_usd(job.estimate_micros)} held until an admin resolves it"
    return f"{format_usd(job.estimate_micros)} reserved"


def settings_text(job: Job, spec: ModelSpec | None) -> str:
    """The parameters a person chose, minus the prompt and image links (shown elsewhere)."""
    media = spec.media_fields() if spec else {}
    shown = [f"{k}={v}" for k, v in job.params.items()
             if k != "prompt" and k not in media and not isinstance(v, (list, dict)) and v not in ("", None)]
    shown += [f"{k}={v['width']}×{v['height']}" for k, v in job.params.items()
              if isinstance(v, dict) and {"width", "height"} <= set(v)]
    return shorten(" · ".join(shown), MAX_FIELD) or "defaults"


def job_embed(job: Job, header: Header, *, now: float, simulated: bool = False) -> discord.Embed:
    """The one progress message, from "sending" to its final state."""
    spec = CATALOG.get(job.tool)
    title = spec.title if spec else job.tool
    prompt = job.params.get("prompt")
    embed = discord.Embed(title=shorten(title, 256), colour=COLORS.get(job.state, RUNNING_COLOR),
                          description=f">>> {shorten(prompt, 1000)}" if prompt else None)
    if header.note:
        embed.add_field(name="About", value=shorten(header.note, MAX_FIELD), inline=False)
    embed.add_field(name="Status", value=status_line(job), inline=False)
    if job.failover_note:
        embed.add_field(name="Provider", value=shorten(job.failover_note, MAX_FIELD), inline=False)
    embed.add_field(name="Elapsed", value=clock_text(job.elapsed(now)))
    embed.add_field(name="Cost", value=cost_status(job) if job.finished else header.cost)
    if header.budget and not job.finished:
        embed.add_field(name="Budget left", value=shorten(header.budget, MAX_FIELD))
    embed.add_field(name="Settings", value=settings_text(job, spec), inline=False)
    for warning in header.warnings:
        embed.add_field(name="⚠️ Budget", value=shorten(warning, MAX_FIELD), inline=False)
    footer = f"job {job.id}"
    if simulated or job.origin.get("simulated"):
        footer += " · SIMULATED: a test clip from the built-in simulator, not a real model"
    embed.set_footer(text=footer)
    return embed


def resumed_header(job: Job) -> Header:
    return Header(cost=cost_status(job), note="The bot restarted while this job ran; it was picked up "
                                                             "again and the result will be posted here.")


# -- results and failures -------------------------------------------------------------------

def result_content(job: Job, user_id: int | str, links: Sequence[str], *, now: float) -> str:
    spec = CATALOG.get(job.tool)
    name = model_name(spec) if spec else job.tool
    cost = format_usd(job.actual_micros if job.actual_micros is not None else job.estimate_micros)
    lines = [f"<@{user_id}> your {name} {kind_noun(job)} is ready — {clock_text(job.elapsed(now))}, {cost}."]
    lines += list(links)
    if job.failover_note:
        lines.append(f"-# {job.failover_note}")
    if job.seed is not None:
        lines.append(f"-# seed {job.seed} · job {job.id}")
    else:
        lines.append(f"-# job {job.id}")
    if job.origin.get("simulated"):
        lines.append("-# SIMULATED: made by the built-in simulator, not a real model.")
    return shorten_lines(lines)


def link_line(index: int, total: int, output: dict[str, Any], limit: int, *, spoiler: bool = False) -> str:
    """Why an output is a link rather than an upload, and the link (hidden as a spoiler if asked)."""
    which = f"Output {index + 1}" if total > 1 else "The file"
    url = output.get("url") or ""
    size = output.get("size")
    if size and size > limit:
        why = f"{which} is {format_size(size)}, over this channel's {format_size(limit)} upload limit"
    else:
        why = f"{which} could not be uploaded here"
    if url.startswith(("http://", "https://")):
        shown = f"||<{url}>||" if spoiler else f"<{url}>"
        return f"{why}; download it here (the provider's link expires after a while): {shown}"
    return f"{why}, and the provider gave no public link; the bot's operator has it in the media folder."


def nsfw_notes(job: Job, withheld: Sequence[int], spoiler_mode: bool) -> list[str]:
    """What the channel is told about outputs the provider flagged as NSFW."""
    flagged = [i for i, o in enumerate(job.outputs) if o.get("nsfw")]
    if not flagged:
        return []
    if withheld:
        which = "The result was" if len(job.outputs) == 1 else f"{len(withheld)} of {len(job.outputs)} outputs were"
        return [f"⚠️ {which} flagged as NSFW by the provider and is not shown here (this channel is not "
                "age-restricted); the link was sent to you privately."]
    if spoiler_mode:
        return ["⚠️ Flagged as NSFW by the provider: hidden behind a spoiler."]
    return []


def withheld_private(job: Job, links: Sequence[str]) -> str:
    spec = CATALOG.get(job.tool)
    name = model_name(spec) if spec else job.tool
    return shorten_lines([f"Your {name} result (job `{job.id}`) was flagged as NSFW by the provider, so it is "
                          "not posted in that channel. Here it is, only for you:", *links])


TOLD = {"ephemeral": "told the user privately", "dm": "sent to the user by DM",
        "notice": "DMs closed: shown with the user's next command"}


def delivery_problem(exc: discord.HTTPException, channel_id: int | str) -> str:
    """Why a result could not be posted, in words (403: no access or permission; 404: gone)."""
    if exc.status == 404:
        return f"channel {channel_id} no longer exists (404 {exc.code or ''} {exc.text or 'Not Found'})".replace("  ", " ")
    return f"the bot may not post in channel {channel_id} (403 {exc.code or ''} {exc.text or 'Forbidden'})".replace(
        "  ", " ")


def undelivered_text(job: Job, reason: str) -> str:
    """The user's copy of a result that could not be posted where they asked for it."""
    spec = CATALOG.get(job.tool)
    name = model_name(spec) if spec else job.tool
    if job.state is not JobState.SUCCEEDED:
        return failure_text(job)
    links = [render_link(i, len(job.outputs), o) for i, o in enumerate(job.outputs)]
    return shorten_lines([f"Your {name} {kind_noun(job)} (job `{job.id}`) is ready, but I could not post it where "
                          f"you asked: {reason}.", *links,
                          "`/show` posts it again in a channel where I can post."])


def render_link(index: int, total: int, output: dict[str, Any]) -> str:
    which = f"Output {index + 1}" if total > 1 else "Download"
    url = output.get("url") or ""
    if url.startswith(("http://", "https://")):
        spoiler = output.get("nsfw")
        return f"{which} (the provider's link expires after a while): " + (f"||<{url}>||" if spoiler else f"<{url}>")
    return f"{which}: the provider gave no public link; the bot's operator has it in the media folder."


def shorten_lines(lines: Iterable[str], limit: int = MAX_CONTENT) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_text(job: Job) -> str:
    spec = CATALOG.get(job.tool)
    name = model_name(spec) if spec else job.tool
    if job.state is JobState.UNKNOWN:
        return shorten_lines([
            f"Your {name} job `{job.id}` ended with an unknown outcome: {job.error or 'the provider could not be asked.'}",
            f"Its cost ({format_usd(job.estimate_micros)}) stays reserved until an admin checks the provider and "
            "settles or releases it (`videogen holds`)."])
    return shorten_lines([
        f"Your {name} job `{job.id}` failed: {job.error or 'the provider gave no reason.'}",
        ADVICE.get(job.error_kind or "", DEFAULT_ADVICE),
        "Nothing was charged."])


def user_error(exc: UserError) -> str:
    """An error that stops a request before anything is charged, with what to do next."""
    if isinstance(exc, QuotaExceeded):
        return shorten_lines([str(exc), "Nothing was charged. `/quota` shows your limits and when they reset; "
                                        "an admin can raise them with `/admin set-limits`."])
    if isinstance(exc, InvalidArguments):
        noun = "a problem" if len(exc.problems) == 1 else f"{len(exc.problems)} problems"
        return shorten_lines([f"That request has {noun}:", *(f"• {p}" for p in exc.problems),
                              "Fix it and run the command again; nothing was charged."])
    return shorten_lines([str(exc)])


def not_allowed(action: str) -> str:
    verb = {"cancel": "cancel", "reroll": "re-roll", "animate": "animate"}.get(action, action)
    return f"Only the person who started this job, or a bot admin, can {verb} it."


# -- price cards ------------------------------------------------------------------------------

def price_card(estimate: Estimate, budget: str | None, expires_at: float) -> discord.Embed:
    """The private question before an expensive run: what it costs, why, and what is left."""
    spec = estimate.spec
    embed = discord.Embed(title=f"Run {shorten(spec.title, 200)}?", colour=discord.Colour.gold(),
                          description=f"Nothing is reserved until you press **Run**. This card expires "
                                      f"<t:{int(expires_at)}:R>.")
    embed.add_field(name="Price", value=estimate.quote.usd)
    if budget:
        embed.add_field(name="Budget left now", value=shorten(budget, MAX_FIELD))
    embed.add_field(name="How it is priced", value=shorten(estimate.quote.formula, MAX_FIELD), inline=False)
    prompt = estimate.params.public_params().get("prompt")
    if prompt:
        embed.add_field(name="Prompt", value=shorten(prompt, MAX_FIELD), inline=False)
    embed.set_footer(text="/settings ask changes when you are asked")
    return embed


def card_gone(card: Card | None) -> str:
    """Why a Run or Cancel did nothing: the card already ran, was cancelled, or expired."""
    if card is None:
        return "That price card no longer exists; run the command again."
    if card.state == "run":
        return "This run was already started (one click is enough); its progress is in the channel."
    if card.state == "cancelled":
        return "You cancelled this run; nothing was reserved. Run the command again to start over."
    return "This price card expired; run the command again for a fresh price. Nothing was reserved."


def estimate_text(spec: ModelSpec, quote: Quote, budget: str | None, command: str) -> str:
    """``/estimate``: the price of one run and the arithmetic, without starting anything."""
    lines = [f"**{spec.title}**: {quote.usd}", shorten(quote.formula, 300)]
    if budget:
        lines.append(f"Your budget: {budget}")
    lines.append(f"Nothing was started; {command} runs it.")
    return shorten_lines(lines)


def user_settings_text(saved: Mapping[str, Any], reset: bool) -> str:
    """``/settings``: what is saved now."""
    if not saved:
        return ("Your defaults are cleared." if reset else "You have no defaults yet.") + (
            " Options: animate_model, resolution, aspect_ratio, ask.")
    labels = {"animate_model": "Animate uses", "resolution": "Resolution", "aspect_ratio": "Aspect ratio",
              "ask": "Price card"}
    lines = ["Your defaults (used where you leave an option out and the model offers the value):"]
    lines += [f"• {labels.get(k, k)}: {v}" for k, v in sorted(saved.items())]
    return shorten_lines(lines)


# -- quota, jobs, models ------------------------------------------------------------------------

def limit_line(status: LimitStatus, now: float, tz: ZoneInfo) -> str:
    who = SCOPE_LABEL.get(status.scope, status.scope)
    if status.kind in WINDOW:
        return (f"**{who}, {WINDOW[status.kind]}:** {format_usd(status.used)} of {format_usd(status.limit)} used, "
                f"**{format_usd(status.remaining)} left** ({resets_phrase(status.resets_at, now, tz)})")
    if status.kind == "concurrent":
        return f"**{who}, at once:** {status.used} of {status.limit} jobs running"
    return f"**{who}, per hour:** {status.used} of {status.limit} jobs started in the last hour"


def quota_text(statuses: Sequence[LimitStatus], now: float, tz: ZoneInfo) -> str:
    if not statuses:
        return "No limits apply to you: generations are only limited by the operator's provider accounts."
    return shorten_lines(["Your limits:", *(f"• {limit_line(s, now, tz)}" for s in statuses)])


def budget_line(statuses: Sequence[LimitStatus]) -> str | None:
    """``$4.60 left today · $49.60 left this month`` (after this job's reservation)."""
    parts = []
    for status in statuses:
        if status.kind in WINDOW:
            who = "" if status.scope == "account" else f" ({SCOPE_LABEL.get(status.scope, status.scope).lower()})"
            parts.append(f"{format_usd(status.remaining)} left {WINDOW[status.kind]}{who}")
    return " · ".join(parts) or None


def jobs_text(jobs: Sequence[Job], now: float) -> str:
    if not jobs:
        return "You have no jobs yet: `/models` lists what you can run."
    lines = ["Your recent jobs (newest first):"]
    for job in jobs:
        spec = CATALOG.get(job.tool)
        cost = cost_status(job)
        moved = f" · {job.failover_brief}" if job.failover_brief else ""
        lines.append(f"• `{job.id}` {STATE_TEXT[job.state]} · {model_name(spec) if spec else job.tool} "
                     f"({job.tool}){moved} · {cost} · {ago(now - job.created_at)}")
    if any(not j.finished for j in jobs):
        lines.append("`/cancel` stops one that is still running.")
    return shorten_lines(lines)


def command_for(spec: ModelSpec) -> str:
    """``/image-to-video sora_2_image_to_video``: how a person runs this model (one command per category)."""
    return f"/{spec.category.value} {spec.tool}"


def models_embed(specs: Iterable[ModelSpec], settings: Settings) -> discord.Embed:
    embed = discord.Embed(title="Models", colour=RUNNING_COLOR,
                          description="Each is a subcommand; the price of your exact settings is shown before a "
                                      "job starts. Defaults are in each option's description.")
    by_category: dict[Category, list[str]] = {}
    for spec in specs:
        quote = spec.default_quote(settings.price_overrides(spec.tool))
        by_category.setdefault(spec.category, []).append(
            f"`{command_for(spec)}` — {shorten(spec.title.split(' — ', 1)[-1], 60)}, from {quote.usd}")
    for category, lines in by_category.items():
        embed.add_field(name=category.value.replace("-", " ").capitalize(), value=shorten("\n".join(lines), MAX_FIELD),
                        inline=False)
    return embed


# -- admin ------------------------------------------------------------------------------------

def limits_text(label: str, limits: Limits) -> str:
    parts = []
    if limits.daily_micros is not None:
        parts.append(f"daily {format_usd(limits.daily_micros)}")
    if limits.monthly_micros is not None:
        parts.append(f"monthly {format_usd(limits.monthly_micros)}")
    if limits.concurrent_jobs is not None:
        parts.append(f"{limits.concurrent_jobs} jobs at once")
    if limits.jobs_per_hour is not None:
        parts.append(f"{limits.jobs_per_hour} jobs per hour")
    if limits.warn_at is not None:
        parts.append(f"warn at {round(limits.warn_at * 100)} %")
    return f"{label}: " + (", ".join(parts) if parts else "no overrides (the configured defaults apply)")


def rules_text(rules: Mapping[str, Sequence[str]], operator_words: Sequence[str]) -> str:
    """``/admin rules``: what this server allows, and which words it refuses."""
    channels = ", ".join(f"<#{c}>" for c in rules.get("channel", ())) or "every channel"
    models = ", ".join(rules.get("model", ())) or "every model"
    words = ", ".join(rules.get("word", ())) or "none"
    lines = [f"**Channels:** {channels}", f"**Models:** {models}", f"**Banned words (this server):** {words}"]
    if operator_words:
        lines.append(f"**Banned words (operator, everywhere):** {', '.join(operator_words)}")
    return shorten_lines(lines)


def spend_text(rows: Sequence[SpendRow], by: str) -> str:
    if not rows:
        return "No spend recorded for that period."
    width = max(len(by), *(len(r.key) for r in rows), 5)
    lines = [f"{by.upper():<{width}}  JOBS  SPENT       RESERVED"]
    for r in rows:
        lines.append(f"{r.key:<{width}}  {r.jobs:>4}  {format_usd(r.settled_micros):<10}  {format_usd(r.open_micros)}")
    lines.append(f"{'total':<{width}}  {sum(r.jobs for r in rows):>4}  "
                 f"{format_usd(sum(r.settled_micros for r in rows)):<10}  {format_usd(sum(r.open_micros for r in rows))}")
    body = "\n".join(lines)
    if len(body) > MAX_CONTENT - 20:
        body = body[: MAX_CONTENT - 40] + "\n… (more in `videogen spend`)"
    return f"```\n{body}\n```"
