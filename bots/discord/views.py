"""Buttons that keep working after a restart: the action and job id live in the ``custom_id``.

``JobButton`` is a ``discord.ui.DynamicItem`` registered once with ``client.add_dynamic_items``;
Discord sends back ``vg:<action>:<job id>[:<image>]`` and the state comes from the job record, never
from memory. The Toolkit decides who may touch a job: ``get_job`` shows a job only to its owner or
an admin, so a stranger's click is refused before anything happens.
"""

from __future__ import annotations

from typing import Any

import discord

from agent_tools.catalog import CATALOG, OutputKind
from agent_tools.followups import ANIMATE_TOOL  # noqa: F401  (the bot's Animate button)
from agent_tools.jobs import Job, JobNotFound

from . import render


MAX_ANIMATE_BUTTONS = 4
LABELS = {"cancel": "Cancel", "reroll": "Re-roll", "animate": "Animate", "edit": "Edit prompt", "delete": "Delete"}
STYLES = {"cancel": discord.ButtonStyle.danger, "reroll": discord.ButtonStyle.primary,
          "animate": discord.ButtonStyle.success, "edit": discord.ButtonStyle.secondary,
          "delete": discord.ButtonStyle.secondary}
EMOJI = {"cancel": "✖️", "reroll": "🎲", "animate": "🎞️", "edit": "✏️", "delete": "🗑️"}
MAX_PROMPT_INPUT = 4000
"""A modal's text input holds at most 4,000 characters (Discord's limit)."""


def custom_id(action: str, job_id: str, index: int | None = None) -> str:
    return f"vg:{action}:{job_id}" + ("" if index is None else f":{index}")


class JobButton(discord.ui.DynamicItem[discord.ui.Button],
                template=r"vg:(?P<action>cancel|reroll|animate|edit|delete):(?P<job_id>[0-9a-f]{8,32})(?::(?P<index>[0-9]))?"):
    def __init__(self, action: str, job_id: str, index: int | None = None, label: str | None = None) -> None:
        super().__init__(discord.ui.Button(label=(label or LABELS[action])[:80], style=STYLES[action],
                                           emoji=EMOJI[action], custom_id=custom_id(action, job_id, index)))
        self.action = action
        self.job_id = job_id
        self.index = index
        self.job: Job | None = None
        self.account: Any = None

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
                             ) -> "JobButton":
        index = match["index"]
        return cls(match["action"], match["job_id"], int(index) if index is not None else None)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        bot: Any = interaction.client
        self.account = await bot.account_for(interaction)
        try:
            self.job = await bot.toolkit.get_job(self.account, self.job_id)
        except JobNotFound:
            await interaction.response.send_message(render.not_allowed(self.action), ephemeral=True)
            return False
        return True

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        assert self.job is not None
        await bot.deliveries.on_button(interaction, self.action, self.job, self.account, self.index)


class CardButton(discord.ui.DynamicItem[discord.ui.Button],
                 template=r"vgcard:(?P<action>run|drop):(?P<card_id>[0-9a-f]{32})"):
    """Run or Cancel on a price card; the card itself is a row in ``discord_cards``."""

    def __init__(self, action: str, card_id: str) -> None:
        run = action == "run"
        super().__init__(discord.ui.Button(label="Run" if run else "Cancel", emoji="▶️" if run else "✖️",
                                           style=discord.ButtonStyle.success if run else discord.ButtonStyle.secondary,
                                           custom_id=f"vgcard:{action}:{card_id}"))
        self.action = action
        self.card_id = card_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
                             ) -> "CardButton":
        return cls(match["action"], match["card_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: Any = interaction.client
        await bot.deliveries.guarded(interaction, f"card {self.action}",
                                     bot.deliveries.cards.on_click(interaction, self.action, self.card_id))


def card_view(card_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CardButton("run", card_id))
    view.add_item(CardButton("drop", card_id))
    return view


def progress_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("cancel", job_id))
    return view


class EditPrompt(discord.ui.Modal):
    """Edit prompt: the job's prompt in a text box; Submit runs the same settings with the new text.

    Lives in memory between the click and the submit (Discord keeps a modal open only while the
    user types); the button that opens it is restart-safe like every other."""

    def __init__(self, job: Job, max_length: int | None) -> None:
        super().__init__(title="Edit the prompt", timeout=900, custom_id=f"vgedit:{job.id}")
        self.job = job
        limit = min(max_length or MAX_PROMPT_INPUT, MAX_PROMPT_INPUT)
        self.prompt: discord.ui.TextInput[EditPrompt] = discord.ui.TextInput(
            label="Prompt", style=discord.TextStyle.paragraph, default=str(job.params.get("prompt") or "")[:limit],
            max_length=limit, required=True)
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        bot: Any = interaction.client
        await bot.deliveries.guarded(interaction, f"editing the prompt of job {self.job.id}",
                                     bot.deliveries.run_edited(interaction, self.job, self.prompt.value))


def result_view(job: Job, animate_label: str | None = None) -> discord.ui.View:
    """Re-roll, Edit prompt (when the model has one) and Delete on every result; Animate for each
    image of an image result."""
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("reroll", job.id))
    if "prompt" in job.params:
        view.add_item(JobButton("edit", job.id))
    view.add_item(JobButton("delete", job.id))
    spec = CATALOG.get(job.tool)
    if spec is not None and spec.output.kind is OutputKind.IMAGES and animate_label:
        count = min(len(job.outputs), MAX_ANIMATE_BUTTONS)
        for index in range(count):
            label = animate_label if count == 1 else f"{index + 1}: {animate_label}"
            view.add_item(JobButton("animate", job.id, index, label=label))
    return view
