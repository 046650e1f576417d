"""The slash commands: one command per catalog category (``/text-to-video <model>``,
``/image-to-video <model>``, …, ``/text-to-image <model>``) generated from the catalog, and
``/models``, ``/quota``, ``/jobs``, ``/cancel`` and ``/admin``.

Why one command per category: Discord counts 8,000 characters per top-level command (every name,
description and choice of every subcommand). With one ``/video`` holding every video model, the
descriptions had to be cut to fit and a handful more models would not have fit at all. A category
holds a few models each, so every command stays far below the limit with whole descriptions, and a
new model grows one category by one subcommand (``BUDGET``; a test checks twice today's models).

A model's subcommand has a synthetic signature built from ``options.plan_tool`` (one
``SchemaOption`` transformer per option carries type, range and choices), so discord.py derives
the options itself; ``payloads.validate_payload`` checks the result.

Callbacks stay thin: they find the bot through ``interaction.client`` and call the Toolkit.
"""

from __future__ import annotations

import inspect
import json
import logging
from datetime import date
from collections.abc import Mapping
from typing import Any, Literal

import discord
from discord import app_commands
from discord.app_commands import Choice, Transformer
from discord.enums import AppCommandOptionType

from agent_tools.catalog import CATALOG, Category, ModelSpec, get
from agent_tools.config import DiscordSettings
from agent_tools.errors import UserError
from agent_tools.jobs import JobNotFound, JobState
from agent_tools.ledger import Limits, parse_usd
from agent_tools.toolkit import Account

from . import render
from .delivery import reply_private
from .options import OptionPlan, ToolPlan, plan_tool, shorten
from .payloads import MAX_COMMAND_CHARS

log = logging.getLogger(__name__)
P = inspect.Parameter

OPTION_TYPES = {"string": AppCommandOptionType.string, "integer": AppCommandOptionType.integer,
                "number": AppCommandOptionType.number, "boolean": AppCommandOptionType.boolean,
                "attachment": AppCommandOptionType.attachment}
GROUPS = {
    Category.TEXT_TO_VIDEO: "Make a video from a description",
    Category.IMAGE_TO_VIDEO: "Animate a picture into a video",
    Category.REFERENCE_TO_VIDEO: "Make a video that keeps the subject of your reference pictures",
    Category.FIRST_LAST_FRAME_TO_VIDEO: "Make a video between a first and a last picture",
    Category.TEXT_TO_IMAGE: "Make pictures from a description",
}
"""Top-level command name (the category's value) → its description."""
BUDGET = MAX_COMMAND_CHARS * 70 // 100
"""A command may use 70 % of Discord's 8,000 characters, so it has room for more models."""
GUILD_ONLY: dict[str, Any] = {"guild_only": True, "allowed_contexts": app_commands.AppCommandContext(guild=True),
                              "allowed_installs": app_commands.AppInstallationType(guild=True)}
WITH_DMS: dict[str, Any] = {"allowed_contexts": app_commands.AppCommandContext(guild=True, dm_channel=True),
                            "allowed_installs": app_commands.AppInstallationType(guild=True)}
"""Where commands may be used: servers only, or also the bot's DMs (``[discord] allow_dms``)."""


class SchemaOption(Transformer):
    """One option's Discord type, range and choices, read from its ``OptionPlan``."""

    def __init__(self, plan: OptionPlan) -> None:
        self.plan = plan

    @property
    def type(self) -> AppCommandOptionType:
        return OPTION_TYPES[self.plan.kind]

    @property
    def min_value(self) -> int | float | None:
        return self.plan.min_length if self.plan.kind == "string" else self.plan.min_value

    @property
    def max_value(self) -> int | float | None:
        return self.plan.max_length if self.plan.kind == "string" else self.plan.max_value

    @property
    def choices(self) -> list[Choice[Any]] | None:
        return [Choice(name=name, value=value) for name, value in self.plan.choices] or None

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        return value  # checked again by the model's own validation in the Toolkit


class NotAdmin(app_commands.CheckFailure):
    def __init__(self) -> None:
        super().__init__("Only the bot's admins can use /admin. Admins are Discord users or roles listed in the "
                         "bot's config ([admins] discord_user_ids / discord_role_ids).")


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    """A member's role ids as Discord sent them with the interaction.

    ``Member.roles`` lists only roles of a cached guild; the ids themselves always arrive with the
    interaction, and role limits and admin roles need exactly those ids.
    """
    return tuple(getattr(user, "_roles", ()) or ())


def subcommand_description(spec: ModelSpec) -> str:
    return shorten(f"{spec.title} · {spec.price_unit}", 100)


def tool_command(plan: ToolPlan, parent: app_commands.Group) -> app_commands.Command[Any, ..., Any]:
    params = [P("interaction", P.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    for option in plan.options:
        params.append(P(option.name, P.KEYWORD_ONLY, annotation=SchemaOption(option),
                        default=P.empty if option.required else None))

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await interaction.client.deliveries.run_command(interaction, plan, values)  # type: ignore[attr-defined]
        await notices(interaction)

    callback.__name__ = callback.__qualname__ = plan.spec.tool
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command = app_commands.Command(name=plan.spec.tool, description=subcommand_description(plan.spec),
                                   callback=callback, parent=parent, extras={"tool": plan.spec.tool})
    app_commands.describe(**{o.name: o.description() for o in plan.options})(command)
    return command


def model_groups(catalog: Mapping[str, ModelSpec] = CATALOG, contexts: Mapping[str, Any] = GUILD_ONLY
                 ) -> list[app_commands.Group]:
    """One command per category, one subcommand per catalog entry in it."""
    groups = []
    for category, description in GROUPS.items():
        plans = [plan_tool(spec) for spec in catalog.values() if spec.category is category]
        if not plans:
            continue
        group = app_commands.Group(name=category.value, description=description, **contexts)
        for plan in plans:
            group.add_command(tool_command(plan, group))
        groups.append(group)
    return groups


# -- /models, /quota, /jobs, /cancel -------------------------------------------------------------

async def notices(interaction: discord.Interaction) -> None:
    """After a command: what the user could not be told before (a result whose channel was gone,
    with their DMs closed), privately."""
    await interaction.client.deliveries.show_notices(interaction)  # type: ignore[attr-defined]


async def models(interaction: discord.Interaction) -> None:
    bot: Any = interaction.client
    await interaction.response.send_message(embed=render.models_embed(bot.toolkit.list_tools(), bot.toolkit.settings),
                                            ephemeral=True)
    await notices(interaction)


async def quota(interaction: discord.Interaction) -> None:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    statuses = await bot.toolkit.quota_status(account)
    await interaction.response.send_message(render.quota_text(statuses, bot.clock(), bot.tz), ephemeral=True)
    await notices(interaction)


async def jobs(interaction: discord.Interaction) -> None:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    recent = await bot.toolkit.list_jobs(account, limit=10)
    await interaction.response.send_message(render.jobs_text(recent, bot.clock()), ephemeral=True)
    await notices(interaction)


async def cancel(interaction: discord.Interaction, job: str) -> None:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        found, message = await bot.toolkit.cancel_job(account, job.strip())
    except JobNotFound:
        raise UserError(f"You have no job `{shorten(job.strip(), 40)}`; `/jobs` lists yours "
                        "(only its owner or a bot admin can cancel a job).") from None
    await interaction.followup.send(f"Job `{found.id}`: {message}", ephemeral=True)
    await notices(interaction)


async def cancel_autocomplete(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    running = [j for j in await bot.toolkit.list_jobs(account, limit=25) if not j.finished]
    return [Choice(name=shorten(f"{j.id} · {j.tool} · {j.state.value}", 100), value=j.id)
            for j in running if current.lower() in j.id][:25]


# -- /show, /estimate, /settings -------------------------------------------------------------------

async def show(interaction: discord.Interaction, job: str) -> None:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    try:
        found = await bot.toolkit.get_job(account, job.strip())
    except JobNotFound:
        raise UserError(f"You have no job `{shorten(job.strip(), 40)}`; `/jobs` lists yours.") from None
    await bot.deliveries.show(interaction, found)
    await notices(interaction)


async def show_autocomplete(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
    bot: Any = interaction.client
    account = await bot.account_for(interaction)
    done = [j for j in await bot.toolkit.list_jobs(account, limit=50) if j.state is JobState.SUCCEEDED]
    return [Choice(name=shorten(f"{j.id} · {j.tool} · {j.params.get('prompt') or ''}", 100), value=j.id)
            for j in done if current.lower() in j.id or current.lower() in str(j.params.get("prompt", "")).lower()
            ][:25]


async def estimate(interaction: discord.Interaction, model: str, settings: str | None = None) -> None:
    bot: Any = interaction.client
    arguments = parse_settings(settings or "")
    spec = get(model.strip())
    params, _ = spec.validate_for_pricing(arguments)
    quote = spec.price(params, bot.toolkit.settings.price_overrides(spec.tool))
    account = await bot.account_for(interaction)
    budget = render.budget_line(await bot.toolkit.quota_status(account))
    await interaction.response.send_message(render.estimate_text(spec, quote, budget, render.command_for(spec)),
                                            ephemeral=True)
    await notices(interaction)


def parse_settings(text: str) -> dict[str, Any]:
    """``duration=10 resolution=1080p`` → arguments; numbers and true/false become JSON values."""
    arguments: dict[str, Any] = {}
    for token in text.replace(",", " ").split():
        name, sep, raw = token.partition("=")
        if not sep or not name:
            raise UserError(f"settings takes name=value pairs such as duration=10 resolution=1080p, not {token!r}.")
        try:
            arguments[name] = json.loads(raw)
        except ValueError:
            arguments[name] = raw
    return arguments


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
    return model_choices(current)


async def settings(interaction: discord.Interaction, animate_model: str | None = None,
                   resolution: str | None = None, aspect_ratio: str | None = None,
                   ask: Literal["over-limit", "always", "never"] | None = None, reset: bool = False) -> None:
    bot: Any = interaction.client
    saved = {} if reset else await bot.records.user_settings(interaction.user.id)
    if animate_model is not None:
        spec = get(animate_model.strip())
        if spec.category is not Category.IMAGE_TO_VIDEO:
            raise UserError(f"{spec.tool} does not animate a picture; choose an image-to-video model (`/models`).")
        saved["animate_model"] = spec.tool
    for name, value in (("resolution", resolution), ("aspect_ratio", aspect_ratio), ("ask", ask)):
        if value is not None:
            saved[name] = value.strip()
    if reset or any(v is not None for v in (animate_model, resolution, aspect_ratio, ask)):
        await bot.records.save_user_settings(interaction.user.id, saved)
    await interaction.response.send_message(render.user_settings_text(saved, reset), ephemeral=True)
    await notices(interaction)


def utility_commands(dms: bool = False) -> list[app_commands.Command[Any, ..., Any]]:
    made = [
        app_commands.command(name="models", description="Every model you can run, with its starting price")(models),
        app_commands.command(name="quota", description="Your limits, what you have spent and when they reset")(quota),
        app_commands.command(name="jobs", description="Your recent jobs and their state")(jobs),
    ]
    stop = app_commands.command(name="cancel", description="Cancel one of your running jobs")(cancel)
    app_commands.describe(job="The job id (shown under the progress message; suggestions list your running jobs)")(stop)
    app_commands.autocomplete(job=cancel_autocomplete)(stop)
    made.append(stop)
    again = app_commands.command(name="show", description="Post one of your results again, here")(show)
    app_commands.describe(job="The job id (suggestions list your finished jobs)")(again)
    app_commands.autocomplete(job=show_autocomplete)(again)
    price = app_commands.command(name="estimate", description="What a run would cost, without starting it")(estimate)
    app_commands.describe(model="The model's name, as in /models",
                          settings="Options as name=value, e.g. duration=10 resolution=1080p")(price)
    app_commands.autocomplete(model=model_autocomplete)(price)
    prefs = app_commands.command(name="settings", description="Your defaults; with no options, shows them")(settings)
    app_commands.describe(animate_model="The image-to-video model the Animate button uses",
                          resolution="Used when you leave resolution out and the model offers it, e.g. 1080p",
                          aspect_ratio="Used when you leave aspect_ratio out and the model offers it, e.g. 9:16",
                          ask="When to show the price first: over the server's limit, always or never",
                          reset="Forget all your defaults")(prefs)
    app_commands.autocomplete(animate_model=model_autocomplete)(prefs)
    made += [again, price, prefs]
    for command in made:
        app_commands.allowed_contexts(guilds=True, dms=dms, private_channels=False)(command)
        app_commands.allowed_installs(guilds=True, users=False)(command)
        if not dms:
            app_commands.guild_only()(command)  # after allowed_contexts, which resets it
    return made


# -- /admin ------------------------------------------------------------------------------------

def _scope(interaction: discord.Interaction, user: discord.User | None, role: discord.Role | None
           ) -> tuple[str, str | None, str]:
    """(scope, id or None for a user still to resolve, label) for at most one of user/role, else the guild."""
    if user is not None and role is not None:
        raise UserError("Give a user or a role, not both (neither means this server).")
    if user is not None:
        return "account", None, f"{user.mention}"
    if role is not None:
        return "role", str(role.id), f"role {role.mention}"
    return "guild", str(interaction.guild_id), "this server"


class AdminGroup(app_commands.Group):
    """Hidden by default from members without Manage Server; checked again against the configured admins."""

    def __init__(self) -> None:
        super().__init__(name="admin", description="Limits and spend for this server (bot admins only)",
                         default_permissions=discord.Permissions(manage_guild=True), **GUILD_ONLY)

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        account = await interaction.client.account_for(interaction)  # type: ignore[attr-defined]
        if not account.is_admin:
            raise NotAdmin()
        return True

    @staticmethod
    async def _resolve(interaction: discord.Interaction, user: discord.User | None, role: discord.Role | None
                       ) -> tuple[Account, str, str, str]:
        bot: Any = interaction.client
        admin = await bot.account_for(interaction)
        scope, scope_id, label = _scope(interaction, user, role)
        if scope_id is None and user is not None:
            scope_id = (await bot.toolkit.account_for_discord(user.id)).name
            label += f" (account {scope_id})"
        return admin, scope, scope_id or "", label

    @app_commands.command(name="limits", description="Show the limit overrides of a user, a role or this server")
    @app_commands.describe(user="Whose limits (default: this server's)", role="A role's limits instead")
    async def limits(self, interaction: discord.Interaction, user: discord.User | None = None,
                     role: discord.Role | None = None) -> None:
        bot: Any = interaction.client
        admin, scope, scope_id, label = await self._resolve(interaction, user, role)
        stored = await bot.toolkit.stored_limits(admin, scope, scope_id)
        lines = [render.limits_text(label, stored)]
        if user is not None:
            who = await bot.toolkit.account_for_discord(user.id, interaction.guild_id, role_ids(user))
            lines.append(render.quota_text(await bot.toolkit.quota_status(who), bot.clock(), bot.tz))
        await interaction.response.send_message(render.shorten_lines(lines), ephemeral=True)

    @app_commands.command(name="set-limits", description="Set limits for a user, a role or this server")
    @app_commands.describe(daily="Dollars per calendar day, e.g. 5 or 2.50", monthly="Dollars per calendar month",
                           concurrent="Jobs running at once", hourly="Jobs started per hour",
                           warn_at="Warn when this share of a budget is used, e.g. 0.8",
                           user="Whose limits (default: this server's)", role="A role's limits instead")
    async def set_limits(self, interaction: discord.Interaction, daily: str | None = None, monthly: str | None = None,
                         concurrent: app_commands.Range[int, 0, 1_000_000] | None = None,
                         hourly: app_commands.Range[int, 0, 1_000_000] | None = None,
                         warn_at: app_commands.Range[float, 0.01, 1.0] | None = None,
                         user: discord.User | None = None, role: discord.Role | None = None) -> None:
        bot: Any = interaction.client
        if all(v is None for v in (daily, monthly, concurrent, hourly, warn_at)):
            raise UserError("Give at least one of daily, monthly, concurrent, hourly or warn_at.")
        limits = Limits(daily_micros=None if daily is None else parse_usd(daily, "daily"),
                        monthly_micros=None if monthly is None else parse_usd(monthly, "monthly"),
                        concurrent_jobs=concurrent, jobs_per_hour=hourly, warn_at=warn_at)
        admin, scope, scope_id, label = await self._resolve(interaction, user, role)
        merged = await bot.toolkit.set_limits(admin, scope, scope_id, limits)
        await interaction.response.send_message("Saved. " + render.limits_text(label, merged), ephemeral=True)

    @app_commands.command(name="spend", description="Spend per account, model or day")
    @app_commands.describe(by="How to group it (default account)", since="From this date, YYYY-MM-DD (default: all)")
    async def spend(self, interaction: discord.Interaction, by: Literal["account", "model", "day"] = "account",
                    since: str | None = None) -> None:
        bot: Any = interaction.client
        try:
            start = date.fromisoformat(since) if since else None
        except ValueError:
            raise UserError(f"since takes a date as YYYY-MM-DD, not '{since}'.") from None
        admin = await bot.account_for(interaction)
        rows = await bot.toolkit.spend_report(admin, by=by, since=start, all_accounts=True)
        await interaction.response.send_message(render.spend_text(rows, by), ephemeral=True)


    # -- rules for public servers -------------------------------------------------------------

    @staticmethod
    async def _edit_rule(interaction: discord.Interaction, kind: str, action: str, value: str, shown: str,
                         noun: str) -> None:
        records = interaction.client.records  # type: ignore[attr-defined]
        guild = interaction.guild_id
        if action == "add":
            done = await records.add_rule(guild, kind, value)
            text = f"Added {shown} to this server's {noun}." if done else f"{shown} was already in this server's {noun}."
        else:
            done = await records.remove_rule(guild, kind, value)
            text = (f"Removed {shown} from this server's {noun}." if done
                    else f"{shown} was not in this server's {noun}.")
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="channels", description="Allow generations only in listed channels (none = all)")
    @app_commands.describe(action="Add or remove", channel="The channel (its threads count too)")
    async def channels(self, interaction: discord.Interaction, action: Literal["add", "remove"],
                       channel: app_commands.AppCommandChannel) -> None:
        await self._edit_rule(interaction, "channel", action, str(channel.id), f"<#{channel.id}>", "allowed channels")

    @app_commands.command(name="models", description="Allow only listed models on this server (none = all)")
    @app_commands.describe(action="Add or remove", model="The model's name, as in /models")
    async def models(self, interaction: discord.Interaction, action: Literal["add", "remove"], model: str) -> None:
        model = model.strip()
        if model not in CATALOG:
            raise UserError(f"There is no model {shorten(model, 40)!r}; `/models` lists their names.")
        await self._edit_rule(interaction, "model", action, model, model, "allowed models")

    @models.autocomplete("model")
    async def _model_names(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return model_choices(current)

    @app_commands.command(name="banned-words", description="Refuse prompts with these words on this server")
    @app_commands.describe(action="Add or remove", word="A word or phrase, matched whole and in any case")
    async def banned_words(self, interaction: discord.Interaction, action: Literal["add", "remove"],
                           word: app_commands.Range[str, 1, 100]) -> None:
        word = " ".join(word.lower().split())
        await self._edit_rule(interaction, "word", action, word, word, "banned words")

    @app_commands.command(name="rules", description="This server's allowed channels and models and banned words")
    async def rules(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        guild = interaction.guild_id
        rules = {kind: await bot.records.rules(guild, kind) for kind in ("channel", "model", "word")}
        await interaction.response.send_message(
            render.rules_text(rules, bot.toolkit.settings.discord.banned_words), ephemeral=True)


def model_choices(current: str) -> list[Choice[str]]:
    """Up to 25 catalog models whose name or title contains what was typed."""
    typed = current.lower().strip()
    found = [spec for spec in CATALOG.values() if typed in spec.tool or typed in spec.title.lower()]
    return [Choice(name=shorten(f"{spec.tool} · {spec.title}", 100), value=spec.tool) for spec in found][:25]


# -- the tree ------------------------------------------------------------------------------------

class CommandTree(app_commands.CommandTree):
    """Every refusal is an ephemeral message that says what to do; nothing else is ever shown."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, UserError):
            text = render.user_error(original)
        elif isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You cannot use this command here."
        else:
            log.error("command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=original)
            text = render.INTERNAL_ERROR
        try:
            await reply_private(interaction, text)
        except discord.HTTPException:
            log.warning("could not tell the user about an error in interaction %s", interaction.id)
            return
        await notices(interaction)


def install(tree: app_commands.CommandTree, settings: DiscordSettings | None = None) -> None:
    """Add every command to ``tree`` (fresh objects each time, so several trees can coexist)."""
    dms = settings is not None and settings.allow_dms
    for group in model_groups(contexts=WITH_DMS if dms else GUILD_ONLY):
        tree.add_command(group)
    for command in utility_commands(dms):
        tree.add_command(command)
    tree.add_command(AdminGroup())


def payload(tree: app_commands.CommandTree) -> list[dict[str, Any]]:
    """The JSON that ``tree.sync()`` would send."""
    return [command.to_dict(tree) for command in tree.get_commands()]


def build_payload(settings: DiscordSettings | None = None) -> list[dict[str, Any]]:
    """The payload without a bot, a token or a database: for ``--dump-commands`` and the tests."""
    tree = CommandTree(discord.Client(intents=discord.Intents.none()))
    install(tree, settings)
    return payload(tree)
